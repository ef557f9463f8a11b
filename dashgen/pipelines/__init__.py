"""The export paths, side by side: how the app's metrics reach the TSDB decides their names.

Each path is one module with one function, ``export(specs, pipeline) -> Exported``: the
declarations in, the families that deployment stores out. The checks never know which path
ran; adding one is a module here and a member of :class:`PipelineName`.

- ``prometheus_exporter``: the Python pull exporter (``PrometheusMetricReader``), run for real;
- ``otlp``: the real SDK and OTLP exporter, then the Prometheus OTLP translator's naming
  (Prometheus 3, Mimir, Grafana Cloud, the Collector's Prometheus exporters);
- ``victoriametrics``: the same OTLP payload posted to a real VictoriaMetrics, whose own
  naming is read back from its API.

Two more paths read the families from the app rather than from declarations, for verify:
``prometheus_client_registry`` (apps instrumented with prometheus_client) and
``exposition_text`` (``--scrape``: any app's /metrics, or a saved copy).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING

from dashgen.errors import DashgenError
from dashgen.families import joined
from dashgen.isolate import in_parallel, worth_splitting
from dashgen.pipelines.otlp_names import Strategy

if TYPE_CHECKING:
    from dashgen.declare import MetricSpec
    from dashgen.families import Exported


class PipelineName(StrEnum):
    PROMETHEUS_EXPORTER = "prometheus-exporter"
    OTLP = "otlp"
    VICTORIAMETRICS = "victoriametrics"
    PROMETHEUS_CLIENT = "prometheus-client"
    SCRAPE = "scrape"


#: Paths that export each declaration on its own in process, so that two halves of the
#: declarations can be exported at once (not ``victoriametrics``: one server names all).
_SPLITTABLE = frozenset({PipelineName.PROMETHEUS_EXPORTER, PipelineName.OTLP})

#: Paths that read families from the app itself rather than from dashgen declarations.
FROM_THE_APP = frozenset({PipelineName.PROMETHEUS_CLIENT, PipelineName.SCRAPE})


@dataclass(frozen=True)
class Pipeline:
    """Which export path the app is deployed with, and that path's settings."""

    name: PipelineName = PipelineName.PROMETHEUS_EXPORTER
    translation_strategy: Strategy = Strategy.UNDERSCORE_ESCAPING_WITH_SUFFIXES
    """``otlp``: the server's ``translation_strategy``."""
    promote_resource_attributes: tuple[str, ...] = ()
    """``otlp``: resource attributes the server copies onto every series as labels."""
    prometheus_naming: bool = False
    """``victoriametrics``: its ``-opentelemetry.usePrometheusNaming`` flag."""

    def export(self, specs: Sequence[MetricSpec]) -> Exported:
        """The families this path makes of the declarations; its module is imported only
        now, so that a memo hit imports no export path at all."""
        module = self.imported()
        if module is None:
            raise DashgenError(
                f"pipeline={self.name}",
                "reads the families from the app, not from dashgen declarations: use it with "
                "`dashgen verify --instruments module:function` or `--scrape URL|FILE`",
            )
        export: Callable[[Sequence[MetricSpec]], Exported] = partial(module.export, pipeline=self)
        if self.name in _SPLITTABLE and worth_splitting(len(specs)):
            halves = _exported_in_halves(export, specs)
            if halves is not None:
                return halves
        return export(specs)

    def imported(self) -> ModuleType | None:
        """This path's module (with the SDK and exporter it runs), imported now; ``None``
        for a path that reads the families from the app."""
        if self.name in FROM_THE_APP:
            return None
        return importlib.import_module(f"dashgen.pipelines.{self.name.replace('-', '_')}")

    def claim(self, owners: dict[str, MetricSpec], stored_as: str, spec: MetricSpec) -> None:
        """Record that ``spec`` is stored as ``stored_as``; two declarations stored under
        one name would read as one metric, so the second is refused."""
        first = owners.setdefault(stored_as, spec)
        if first is not spec:
            raise DashgenError(
                spec.where,
                f"collides with '{first.name}' ({first.file}:{first.line}): both are stored "
                f"as '{stored_as}' with {self.describe()}",
            )

    def describe(self) -> str:
        if self.name is PipelineName.OTLP:
            return f"pipeline=otlp ({self.translation_strategy})"
        if self.name is PipelineName.VICTORIAMETRICS:
            naming = "true" if self.prometheus_naming else "false"
            return f"pipeline=victoriametrics (prometheus_naming={naming})"
        return f"pipeline={self.name}"


def _exported_in_halves(
    export: Callable[[Sequence[MetricSpec]], Exported], specs: Sequence[MetricSpec]
) -> Exported | None:
    """Both halves of the declarations exported at once, on two cores, and joined; ``None``
    when a half fails or the halves share a name: then only the whole export can say which
    declaration collides with which, in the words it always used."""
    middle = len(specs) // 2
    try:
        first, second = in_parallel(export, specs[:middle], specs[middle:], shared=specs)
    except DashgenError:
        return None
    return joined(first, second)
