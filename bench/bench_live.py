"""Benchmark `dashgen verify --live` on the bundled example and on a 200-panel catalog.

    python bench/bench_live.py [--repeat 3]

For each engine, the best of ``--repeat`` fresh processes, split as dashgen reports it:
ingest (the real export pipeline over the window), server start (including backfill or
import into the server) and queries. The static verify of the same catalog, measured in
the same run, is the baseline the live check adds to.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_build import write_catalog

REPO = Path(__file__).resolve().parent.parent
ENGINES = ("prometheus", "victoria-metrics")


def run(project: Path, *args: str) -> tuple[float, dict[str, object]]:
    command = [
        sys.executable,
        "-m",
        "dashgen",
        "verify",
        "--project",
        str(project),
        "--format",
        "json",
        *args,
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    report: dict[str, object] = json.loads(done.stdout)
    return elapsed, report


def measure(name: str, project: Path, repeat: int) -> None:
    static = min(run(project)[0] for _ in range(repeat))
    print(f"{name}: static verify {static:.3f} s")
    for engine in ENGINES:
        runs = [run(project, "--live", "--engine", engine) for _ in range(repeat)]
        wall, report = min(runs, key=lambda item: item[0])
        live = report["live"]
        assert isinstance(live, dict)
        seconds = live["seconds"]
        assert isinstance(seconds, dict)
        print(
            f"  {engine:<16} {live['queries']:>4} queries: {wall:.3f} s wall "
            f"(+{wall - static:.3f} s over static) = ingest {seconds['ingest']:.3f} s"
            f" + server start {seconds['start']:.3f} s + queries {seconds['queries']:.3f} s"
            f"; {live['with_data']} with data"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    measure("bundled example", REPO, options.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # 180 families over 10 dashboards: about 200 panels (some histograms carry two hints).
        write_catalog(root, 180, dashboards=10)
        subprocess.run(
            [sys.executable, "-m", "dashgen", "build", "--project", str(root)],
            check=True,
            capture_output=True,
        )
        panels = sum(
            len([p for p in json.loads(f.read_text())["panels"] if p["type"] != "row"])
            for f in (root / "out").glob("*.json")
        )
        measure(f"synthetic, {panels} panels", root, options.repeat)


if __name__ == "__main__":
    main()
