"""Plain OTel code through the real pipeline, without reading private SDK attributes.

dashgen installs one ``CapturingMeterProvider`` as the global provider (OTel allows that
once per process). Every instrument the app creates through it is created on the current
``Capture``'s private SDK provider, each on a meter scope of its own so that the exporter's
output says which family came from which instrument, and is handed back wrapped, so that
dashgen knows every instrument, where it was created, and what the app recorded.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import metrics as otel
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.util.types import Attributes
from prometheus_client import CollectorRegistry

from dashgen.errors import DashgenError
from dashgen.families import Family
from dashgen.hints import Kind

#: Exemplars only cost time here: dashgen reads names, never trace links.
ALWAYS_OFF = AlwaysOffExemplarFilter()
_SCOPE_PREFIX = "dashgen.capture."
_SKIPPED_DIRS = tuple(
    os.path.dirname(os.path.abspath(module.__file__ or "")) + os.sep
    for module in (sys.modules[__name__.split(".")[0]], otel)
)


def _creation_site() -> str:
    """The first frame outside dashgen and the OTel API: where the app made the instrument."""
    frame = sys._getframe(1)
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _SKIPPED_DIRS
    ):
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


@dataclass
class CapturedInstrument:
    """One instrument the app created, and what the app (not dashgen) recorded into it."""

    index: int
    kind: Kind
    name: str
    unit: str
    description: str
    scope: str
    site: str
    sdk: Any
    measurements: int = 0
    attribute_keys: set[str] = field(default_factory=set)

    def note(self, attributes: Attributes) -> None:
        self.measurements += 1
        if attributes:
            self.attribute_keys.update(attributes)


class Capture:
    """One private SDK pipeline that the global provider routes new instruments into."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.provider = MeterProvider(
            metric_readers=[PrometheusMetricReader(registry=self.registry)],
            shutdown_on_exit=False,
            exemplar_filter=ALWAYS_OFF,
        )
        self.instruments: list[CapturedInstrument] = []
        self._lock = threading.Lock()

    def create(
        self, kind: Kind, scope: str, name: str, unit: str, description: str, **extra: Any
    ) -> CapturedInstrument:
        with self._lock:
            index = len(self.instruments)
            meter = self.provider.get_meter(f"{_SCOPE_PREFIX}{index}")
            factory = getattr(meter, _FACTORIES[kind])
            sdk = factory(name, unit=unit, description=description, **extra)
            captured = CapturedInstrument(
                index, kind, name, unit, description, scope, _creation_site(), sdk
            )
            self.instruments.append(captured)
            return captured

    def trigger_all(self) -> None:
        """Record once into every synchronous instrument, the way the seed test did:
        whichever of ``add``, ``record``, ``set`` it has. Not counted as the app's."""
        for captured in self.instruments:
            for method in ("add", "record", "set"):
                if hasattr(captured.sdk, method):
                    getattr(captured.sdk, method)(1)
                    break

    def families(self) -> list[Family]:
        """Families as exported; label sets unknown (``None``): dashgen never guesses them."""
        found = []
        for prom in self.registry.collect():
            scopes = {s.labels.get("otel_scope_name", "") for s in prom.samples}
            owners = sorted(
                self.instruments[int(scope[len(_SCOPE_PREFIX) :])].site
                for scope in scopes
                if scope.startswith(_SCOPE_PREFIX)
            )
            found.append(
                Family(
                    name=prom.name,
                    type=prom.type,
                    samples=tuple(sorted({s.name for s in prom.samples})),
                    labels=None,
                    source=", ".join(owners),
                )
            )
        return sorted(found, key=lambda f: f.name)

    def close(self) -> None:
        self.provider.shutdown()


_FACTORIES = {
    Kind.COUNTER: "create_counter",
    Kind.UP_DOWN_COUNTER: "create_up_down_counter",
    Kind.HISTOGRAM: "create_histogram",
    Kind.GAUGE: "create_gauge",
    Kind.OBSERVABLE_COUNTER: "create_observable_counter",
    Kind.OBSERVABLE_UP_DOWN_COUNTER: "create_observable_up_down_counter",
    Kind.OBSERVABLE_GAUGE: "create_observable_gauge",
}


class _Recording:
    """The instrument the app holds: forwards to the SDK and counts what the app records."""

    def __init__(self, captured: CapturedInstrument) -> None:
        self._captured = captured
        self.name = captured.name
        self.unit = captured.unit
        self.description = captured.description

    def _forward(self, method: str, amount: float, attributes: Attributes, **extra: Any) -> None:
        self._captured.note(attributes)
        getattr(self._captured.sdk, method)(amount, attributes, **extra)


class _Adding(_Recording):
    def add(self, amount: float, attributes: Attributes = None, **extra: Any) -> None:
        self._forward("add", amount, attributes, **extra)


class _HistogramRecording(_Recording):
    def record(self, amount: float, attributes: Attributes = None, **extra: Any) -> None:
        self._forward("record", amount, attributes, **extra)


class _GaugeSetting(_Recording):
    def set(self, amount: float, attributes: Attributes = None, **extra: Any) -> None:
        self._forward("set", amount, attributes, **extra)


Callback = Callable[[CallbackOptions], Iterable[Observation]]


def _counted(callbacks: Sequence[Any] | None, captured: list[CapturedInstrument]) -> list[Any]:
    """Wrap plain callbacks so that their observations count as the app's recordings."""

    def wrap(callback: Any) -> Any:
        if not callable(callback):
            return callback  # a generator: the SDK drives it; it cannot be counted here

        def counting(options: CallbackOptions) -> Iterable[Observation]:
            observations = list(callback(options))
            for observation in observations:
                captured[0].note(observation.attributes)
            return observations

        return counting

    return [wrap(c) for c in callbacks or ()]


class _CapturingMeter(otel.Meter):
    def __init__(self, provider: CapturingMeterProvider, name: str, version: str | None) -> None:
        super().__init__(name, version)
        self._provider = provider

    def _sync(self, kind: Kind, wrapper: type[_Recording], name: str, **kwargs: Any) -> Any:
        return wrapper(self._provider.current().create(kind, self.name, name, **kwargs))

    def _observable(
        self, kind: Kind, name: str, callbacks: Sequence[Any] | None, unit: str, description: str
    ) -> Any:
        holder: list[CapturedInstrument] = []
        captured = self._provider.current().create(
            kind, self.name, name, unit, description, callbacks=_counted(callbacks, holder)
        )
        holder.append(captured)
        return captured.sdk

    def create_counter(self, name: str, unit: str = "", description: str = "") -> Any:
        return self._sync(Kind.COUNTER, _Adding, name, unit=unit, description=description)

    def create_up_down_counter(self, name: str, unit: str = "", description: str = "") -> Any:
        return self._sync(Kind.UP_DOWN_COUNTER, _Adding, name, unit=unit, description=description)

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> Any:
        return self._sync(Kind.GAUGE, _GaugeSetting, name, unit=unit, description=description)

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> Any:
        return self._sync(
            Kind.HISTOGRAM,
            _HistogramRecording,
            name,
            unit=unit,
            description=description,
            explicit_bucket_boundaries_advisory=explicit_bucket_boundaries_advisory,
        )

    def create_observable_counter(
        self,
        name: str,
        callbacks: Sequence[Any] | None = None,
        unit: str = "",
        description: str = "",
    ) -> Any:
        return self._observable(Kind.OBSERVABLE_COUNTER, name, callbacks, unit, description)

    def create_observable_up_down_counter(
        self,
        name: str,
        callbacks: Sequence[Any] | None = None,
        unit: str = "",
        description: str = "",
    ) -> Any:
        return self._observable(Kind.OBSERVABLE_UP_DOWN_COUNTER, name, callbacks, unit, description)

    def create_observable_gauge(
        self,
        name: str,
        callbacks: Sequence[Any] | None = None,
        unit: str = "",
        description: str = "",
    ) -> Any:
        return self._observable(Kind.OBSERVABLE_GAUGE, name, callbacks, unit, description)


class CapturingMeterProvider(otel.MeterProvider):
    """The global provider dashgen installs; each ``capture()`` gets a fresh pipeline."""

    def __init__(self) -> None:
        self._captures: list[Capture] = []

    def current(self) -> Capture:
        if not self._captures:
            raise RuntimeError("no dashgen capture is active")
        return self._captures[-1]

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> otel.Meter:
        return _CapturingMeter(self, name, version)

    @contextmanager
    def capturing(self) -> Iterator[Capture]:
        session = Capture()
        self._captures.append(session)
        try:
            yield session
        finally:
            self._captures.remove(session)
            session.close()


_GLOBAL: CapturingMeterProvider | None = None


def install_global() -> CapturingMeterProvider:
    """Make dashgen's provider the global one, once; fail loudly if the app got there first."""
    global _GLOBAL
    if _GLOBAL is None:
        _GLOBAL = CapturingMeterProvider()
        otel.set_meter_provider(_GLOBAL)
    if otel.get_meter_provider() is not _GLOBAL:
        raise DashgenError(
            "instruments",
            "another MeterProvider is already the global one: dashgen must install its own "
            "before the app's code runs (call it before importing the app)",
        )
    return _GLOBAL


def families_from_callable(target: str, search_path: Path) -> list[Family]:
    """Run ``module:function`` under dashgen's provider and export what it created.

    The module is looked up from ``search_path`` (the project root) first, as the app's
    own test runner would find it.
    """
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise DashgenError("--instruments", f"expected 'module:function', got {target!r}")
    provider = install_global()
    with provider.capturing() as session:
        sys.path.insert(0, str(search_path))
        try:
            function = getattr(importlib.import_module(module_name), function_name)
            function()
        except DashgenError:
            raise
        except Exception as error:
            raise DashgenError(
                target, f"creating the instruments failed: {type(error).__name__}: {error}"
            ) from None
        finally:
            sys.path.remove(str(search_path))
        if not session.instruments:
            raise DashgenError(target, "created no instruments through the global MeterProvider")
        session.trigger_all()
        return session.families()
