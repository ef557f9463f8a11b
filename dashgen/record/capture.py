"""dashgen's global MeterProvider: it knows every instrument the app creates, where, and what
the app records into it, and costs the app almost nothing.

dashgen installs one ``CapturingMeterProvider`` as the global provider (OTel allows that
once per process). Every instrument the app creates through it goes to the current
``Capture`` and the app gets back an object whose ``add``/``record``/``set`` only count:
how many measurements, which attribute keys and values, and (in recording mode) who made
them. No SDK runs while the app does; the readers of the recording put what was counted
through the real export path later (``dashgen.record.replay``).

This module imports the OTel API only, so that recording mode keeps pytest start-up light.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

from opentelemetry import metrics as otel
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.util.types import Attributes

from dashgen.declare import CREATING
from dashgen.errors import DashgenError
from dashgen.hints import Kind
from dashgen.record.tally import APP, OTHER, TEST

try:
    from dashgen.record._tally import Tally
except ImportError:  # built without a compiler: the same in Python, slower
    from dashgen.record.tally import Tally

_SKIPPED_DIRS = tuple(
    os.path.dirname(os.path.abspath(module.__file__ or "")) + os.sep
    for module in (sys.modules[__name__.split(".")[0]], otel)
)
_logger = logging.getLogger(__name__)

Callback = Callable[[CallbackOptions], Iterable[Observation]]

#: The meter method that creates each kind of instrument.
FACTORIES = {
    Kind.COUNTER: "create_counter",
    Kind.UP_DOWN_COUNTER: "create_up_down_counter",
    Kind.HISTOGRAM: "create_histogram",
    Kind.GAUGE: "create_gauge",
    Kind.OBSERVABLE_COUNTER: "create_observable_counter",
    Kind.OBSERVABLE_UP_DOWN_COUNTER: "create_observable_up_down_counter",
    Kind.OBSERVABLE_GAUGE: "create_observable_gauge",
}


def _creation_site() -> tuple[str, int]:
    """Where the app made the instrument: a dashgen metric's declaration, else the first
    frame outside dashgen and the OTel API."""
    declaration = CREATING.get()
    if declaration is not None:
        return declaration.file, declaration.line
    frame = sys._getframe(1)
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _SKIPPED_DIRS
    ):
        frame = frame.f_back
    return frame.f_code.co_filename, frame.f_lineno


def plain(value: Any) -> Any:
    """An attribute value as plain JSON-able data: a ``StrEnum`` member or another ``str``
    subclass as ``str``, an ``Enum`` as its value, a sequence as a list. pytest-xdist hands
    a worker's recording over with execnet, which refuses anything else and would lose it."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return str(value)


def _plain(callback: Any) -> Callback:
    """A generator callback (the API allows one) as a function, driven the way the SDK does."""
    if not isinstance(callback, Generator):
        return callback  # type: ignore[no-any-return]
    next(callback)

    def send(options: CallbackOptions) -> Iterable[Observation]:
        try:
            return callback.send(options)  # type: ignore[no-any-return]
        except StopIteration:
            return []

    return send


_MAX_COMBINATIONS = 64
_TEST_DIRS = frozenset({"tests", "test", "testing"})


class Callers:
    """Who recorded a measurement: the nearest frame that is the project's own code and not
    the instrument's wrapper: a method of a class in the module that created the instrument
    (a ``BaseMetrics``), or of a subclass of one elsewhere (nested wrappers). A plain function
    beside the instrument (``checkout()``) is the app's own code, not a wrapper.
    Production when that frame is not under the test paths; else (a test that calls the
    wrapper or the declaration directly, or no such frame at all) test-only.

    Files are classified once each, so a measurement costs a few frame hops."""

    def __init__(self, root: Path, test_paths: Sequence[str] = ()) -> None:
        self.root = str(root.resolve()) + os.sep
        self.test_paths = tuple(str((root / p).resolve()) + os.sep for p in test_paths)
        self._files: dict[str, tuple[int, str]] = {}

    def verdict(self, frame: Any, wrapper: str) -> int:
        """What a frame's code is to an instrument created in the module at absolute path
        ``wrapper``: the app's (``APP``), a test's (``TEST``), or one to look past
        (``OTHER``: libraries, dashgen, and the instrument's wrapper methods). Instruments
        remember it per code object, so each code is judged once."""
        code = frame.f_code
        kind, _ = self.file_of(code.co_filename)
        if kind == OTHER:
            return OTHER
        if code.co_argcount and code.co_varnames[0] in ("self", "cls"):
            owner = frame.f_locals.get(code.co_varnames[0])
            classes = owner.__mro__ if isinstance(owner, type) else type(owner).__mro__
            if any(_module_path(cls) == wrapper for cls in classes):
                return OTHER
        return kind

    def file_of(self, filename: str) -> tuple[int, str]:
        """The kind of a source file and its path relative to the root, once per file."""
        known = self._files.get(filename)
        if known is None:
            path = os.path.abspath(filename)
            known = self._files[filename] = (
                self._kind(path),
                path[len(self.root) :].replace(os.sep, "/"),
            )
        return known

    def _kind(self, path: str) -> int:
        if not path.startswith(self.root) or path.startswith(_SKIPPED_DIRS):
            return OTHER
        relative = path[len(self.root) :]
        parts = relative.split(os.sep)
        if "site-packages" in parts or any(part.startswith(".") for part in parts[:-1]):
            return OTHER  # a venv inside the project
        name = parts[-1]
        if (
            path.startswith(self.test_paths)
            or _TEST_DIRS.intersection(parts[:-1])
            or name.startswith("test_")
            or name.endswith("_test.py")
            or name == "conftest.py"
        ):
            return TEST
        return APP


def _module_path(cls: type) -> str:
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    return os.path.abspath(file) if file else ""


@dataclass(frozen=True)
class Snapshot:
    """One instrument and what the app recorded into it, as plain data that can cross into
    another process (a pytest-xdist controller, the replay helper)."""

    kind: Kind
    name: str
    unit: str
    description: str
    scope: str
    file: str
    line: int
    measurements: int
    attribute_sets: tuple[Mapping[str, Any], ...]
    """The first attributes of each distinct key set the app recorded with."""
    samples: tuple[Mapping[str, Any], ...] = ()
    """Distinct attribute combinations the app recorded with (the first few dozen)."""
    production: int | None = None
    """Of ``measurements``, those the project's own non-test code made (None: not told)."""
    production_sites: tuple[str, ...] = ()
    test_sites: tuple[str, ...] = ()
    """Where test-only measurements came from (the test that called the wrapper)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "name": self.name,
            "unit": self.unit,
            "description": self.description,
            "scope": self.scope,
            "file": self.file,
            "line": self.line,
            "measurements": self.measurements,
            "attribute_sets": [dict(a) for a in self.attribute_sets],
            "samples": [dict(a) for a in self.samples],
            "production": self.production,
            "production_sites": list(self.production_sites),
            "test_sites": list(self.test_sites),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        return cls(
            **{
                **data,
                "kind": Kind(data["kind"]),
                "attribute_sets": (*data["attribute_sets"],),
                "samples": (*data.get("samples", ()),),
                "production_sites": (*data.get("production_sites", ()),),
                "test_sites": (*data.get("test_sites", ()),),
            }
        )


@dataclass(eq=False, slots=True)
class CapturedInstrument:
    """One instrument the app created, and what the app recorded into it."""

    kind: Kind
    name: str
    unit: str
    description: str
    scope: str
    file: str
    line: int
    callbacks: list[Callback]
    """The app's callbacks of an observable; run by ``Capture.observe``."""
    callers: Callers | None = None
    """Set in recording mode: who made each measurement."""
    attribute_sets: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)
    combinations: set[tuple[tuple[str, Any], ...]] = field(default_factory=set)
    """The distinct attribute combinations seen, up to ``_MAX_COMBINATIONS``."""
    samples: list[Mapping[str, Any]] = field(default_factory=list)
    """The combinations above as plain data: real values per key, for ``verify --live``."""
    sites: set[tuple[int, int]] = field(default_factory=set)
    """(code id, bytecode offset) of each frame that made measurements; the code's verdict
    says whether it is production or a test. Offsets become lines at the end."""
    wrapper: str = ""
    """The absolute path of ``file``: its classes' methods are the wrapper, never the caller."""
    verdicts: dict[int, int] = field(default_factory=dict)
    """Code id -> what that code is to this instrument (see ``Callers.verdict``)."""
    codes: dict[int, CodeType] = field(default_factory=dict)
    """Code id -> code: held, so that no id is reused while it is a key above."""
    tally: Tally = field(init=False)
    """Counts what the app records: its ``record`` is the app's ``add``/``record``/``set``."""

    def __post_init__(self) -> None:
        self.wrapper = os.path.abspath(self.file)
        judge = None if self.callers is None else self._judge
        self.tally = Tally(judge, self._keep, self.verdicts, self.sites)

    def _judge(self, frame: FrameType) -> int:
        """A code the tally has not met: judged once, then cached."""
        code = frame.f_code
        assert self.callers is not None  # the tally only judges in recording mode
        verdict = self.verdicts[id(code)] = self.callers.verdict(frame, self.wrapper)
        self.codes[id(code)] = code
        return verdict

    def _keep(self, attributes: Mapping[str, Any]) -> bool:
        """A combination the tally did not know: a new key set is always kept, values up to
        a bound (past it, which ones are kept would depend on the order of the tests).
        True when the combination is known from now on, so the tally need not ask again."""
        try:
            combination: tuple[tuple[str, Any], ...] | None = tuple(attributes.items())
            if combination in self.combinations:
                return True
        except TypeError:  # a sequence value: unhashable, and rare
            combination = None
        plain_attributes = {key: plain(v) for key, v in attributes.items()}
        keys = tuple(attributes)
        if keys not in self.attribute_sets:
            self.attribute_sets[keys] = plain_attributes
        if len(self.samples) >= _MAX_COMBINATIONS:
            return False
        self.samples.append(plain_attributes)
        if combination is None:
            return False
        self.combinations.add(combination)
        return True

    def observe(self, options: CallbackOptions) -> None:
        """Observations are production measurements: the app's callback made them, and
        the SDK's reader would run it in production as dashgen runs it here."""
        for callback in self.callbacks:
            try:
                observations = list(callback(options))
            except Exception:  # the SDK logs a failing callback and carries on; so does dashgen
                _logger.exception("dashgen: a callback of observable %r failed", self.name)
                continue
            for observation in observations:
                self.tally.measurements += 1
                self.tally.production += 1
                if observation.attributes:
                    self._keep(observation.attributes)

    def snapshot(self) -> Snapshot:
        production_sites: tuple[str, ...] = ()
        test_sites: tuple[str, ...] = ()
        if self.callers is not None:
            production_sites, test_sites = self._sites(self.callers)
        return Snapshot(
            kind=self.kind,
            name=self.name,
            unit=self.unit,
            description=self.description,
            scope=self.scope,
            file=self.file,
            line=self.line,
            measurements=self.tally.measurements,
            attribute_sets=tuple(self.attribute_sets.values()),
            samples=tuple(self.samples),
            production=None if self.callers is None else self.tally.production,
            production_sites=production_sites,
            test_sites=test_sites,
        )

    def _sites(self, callers: Callers) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The production and the test sites, as file:line."""
        named: tuple[set[str], set[str]] = (set(), set())
        for code_id, offset in list(self.sites):
            code = self.codes[code_id]
            is_app = self.verdicts[code_id] == APP
            named[is_app].add(f"{callers.file_of(code.co_filename)[1]}:{_line(code, offset)}")
        return tuple(sorted(named[True])), tuple(sorted(named[False]))


def _line(code: CodeType, offset: int) -> int:
    """The source line of the instruction at bytecode ``offset`` of ``code``."""
    for start, end, line in code.co_lines():
        if start <= offset < end and line is not None:
            return line
    return code.co_firstlineno


class Capture:
    """The instruments created while this capture is the provider's current one."""

    def __init__(self, callers: Callers | None = None) -> None:
        self.callers = callers
        self.instruments: list[CapturedInstrument] = []
        self._observables: list[CapturedInstrument] = []
        self._lock = threading.Lock()

    def create(
        self,
        kind: Kind,
        scope: str,
        name: str,
        unit: str,
        description: str,
        callbacks: Sequence[Any] | None = None,
    ) -> CapturedInstrument:
        file, line = _creation_site()
        captured = CapturedInstrument(
            kind,
            name,
            unit,
            description,
            scope,
            file,
            line,
            [_plain(c) for c in callbacks or ()],
            self.callers,
        )

        with self._lock:
            self.instruments.append(captured)
            if captured.callbacks:
                self._observables.append(captured)
        return captured

    def observe(self) -> None:
        """Run the app's observable callbacks once, as a periodic reader would; what they
        observe counts as the app's recordings."""
        options = CallbackOptions()
        for captured in list(self._observables):
            captured.observe(options)

    def snapshots(self) -> list[Snapshot]:
        return [captured.snapshot() for captured in self.instruments]


class _Held:
    """The instrument the app holds; its recording method is the captured ``record``."""

    def __init__(self, captured: CapturedInstrument) -> None:
        self.name = captured.name
        self.unit = captured.unit
        self.description = captured.description


class _Adding(_Held):
    def __init__(self, captured: CapturedInstrument) -> None:
        super().__init__(captured)
        self.add = captured.tally.record


class _Recording(_Held):
    def __init__(self, captured: CapturedInstrument) -> None:
        super().__init__(captured)
        self.record = captured.tally.record


class _Setting(_Held):
    def __init__(self, captured: CapturedInstrument) -> None:
        super().__init__(captured)
        self.set = captured.tally.record


class _CapturingMeter(otel.Meter):
    def __init__(self, provider: CapturingMeterProvider, name: str, version: str | None) -> None:
        super().__init__(name, version)
        self._provider = provider

    def _create(
        self,
        kind: Kind,
        held: type[_Held],
        name: str,
        unit: str,
        description: str,
        callbacks: Sequence[Any] | None = None,
    ) -> Any:
        current = self._provider.current()
        if current is None:
            # No capture runs (the app's own process after an --instruments check, say):
            # behave as the API does without an SDK, instead of failing the app.
            noop = getattr(otel.NoOpMeter(self.name), FACTORIES[kind])
            extra = {} if held is not _Held else {"callbacks": callbacks}
            return noop(name, unit=unit, description=description, **extra)
        return held(current.create(kind, self.name, name, unit, description, callbacks))

    def create_counter(self, name: str, unit: str = "", description: str = "") -> Any:
        return self._create(Kind.COUNTER, _Adding, name, unit, description)

    def create_up_down_counter(self, name: str, unit: str = "", description: str = "") -> Any:
        return self._create(Kind.UP_DOWN_COUNTER, _Adding, name, unit, description)

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> Any:
        return self._create(Kind.GAUGE, _Setting, name, unit, description)

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> Any:
        """Buckets do not change exported names, so they are not kept."""
        return self._create(Kind.HISTOGRAM, _Recording, name, unit, description)

    def create_observable_counter(
        self,
        name: str,
        callbacks: Sequence[Any] | None = None,
        unit: str = "",
        description: str = "",
    ) -> Any:
        return self._create(Kind.OBSERVABLE_COUNTER, _Held, name, unit, description, callbacks)

    def create_observable_up_down_counter(
        self,
        name: str,
        callbacks: Sequence[Any] | None = None,
        unit: str = "",
        description: str = "",
    ) -> Any:
        kind = Kind.OBSERVABLE_UP_DOWN_COUNTER
        return self._create(kind, _Held, name, unit, description, callbacks)

    def create_observable_gauge(
        self,
        name: str,
        callbacks: Sequence[Any] | None = None,
        unit: str = "",
        description: str = "",
    ) -> Any:
        return self._create(Kind.OBSERVABLE_GAUGE, _Held, name, unit, description, callbacks)


class CapturingMeterProvider(otel.MeterProvider):
    """The global provider dashgen installs; instruments go to the latest started capture."""

    def __init__(self) -> None:
        self._captures: list[Capture] = []

    def current(self) -> Capture | None:
        return self._captures[-1] if self._captures else None

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> otel.Meter:
        return _CapturingMeter(self, name, version)

    def start(self, callers: Callers | None = None) -> Capture:
        """Take every new instrument, until ``stop`` (recording mode: the whole session)."""
        capture = Capture(callers)
        self._captures.append(capture)
        return capture

    def stop(self, capture: Capture) -> None:
        self._captures.remove(capture)

    @contextmanager
    def capturing(self) -> Iterator[Capture]:
        capture = self.start()
        try:
            yield capture
        finally:
            self.stop(capture)


PROVIDER = CapturingMeterProvider()


def install_global() -> CapturingMeterProvider:
    """Make dashgen's provider the global one, once; fail loudly if the app got there first.

    Instruments that code made through the API before are created on it right here: on the
    current capture if one runs (recording mode starts its capture first), else as no-ops.
    """
    if otel.get_meter_provider() is not PROVIDER:
        otel.set_meter_provider(PROVIDER)
    if otel.get_meter_provider() is not PROVIDER:
        raise DashgenError(
            "instruments",
            "another MeterProvider is already the global one: dashgen must install its own "
            "before the app's code runs (call it before importing the app)",
        )
    return PROVIDER
