"""The user's side: declare a metric once, panel it by hint, record through it at run time.

The same object serves the build (``spec()`` turns it into plain data for the pipeline)
and the application (``add``/``record``/``set`` create the real OTel instrument on first
use, on the global MeterProvider or on the one passed to ``bind``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, TypedDict, Unpack

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from dashgen.hints import Hint, Kind, default_hints

Attributes = Mapping[str, str | bool | int | float]
ObservableCallback = Callable[[CallbackOptions], Iterable[Observation]]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

#: The declaration whose instrument is being created right now: a capturing MeterProvider
#: reads it to name the declaration, not the first ``add`` caller, as the creation site.
CREATING: ContextVar[Metric | None] = ContextVar("dashgen_creating", default=None)


def _caller_origin() -> tuple[str, int]:
    """File and line of the user code that made the declaration, for error messages."""
    frame = sys._getframe(1)
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _PACKAGE_DIR + os.sep
    ):
        frame = frame.f_back
    return frame.f_code.co_filename, frame.f_lineno


@dataclass(frozen=True)
class MetricSpec:
    """A declaration as plain data: everything the pipeline needs, nothing it must not run."""

    name: str
    kind: Kind
    unit: str
    description: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] | None
    hints: tuple[Hint, ...]
    exclude_reason: str | None
    file: str
    line: int


class Options(TypedDict, total=False):
    """What every declaration kind accepts besides its name."""

    unit: str
    description: str
    labels: Sequence[str]
    hint: Hint | Sequence[Hint] | None
    exclude: str | None
    scope: str


class Metric:
    """Base of the seven declaration kinds; not instantiated directly."""

    kind: Kind

    def __init__(
        self,
        name: str,
        *,
        unit: str = "",
        description: str = "",
        labels: Sequence[str] = (),
        hint: Hint | Sequence[Hint] | None = None,
        exclude: str | None = None,
        scope: str = "dashgen",
    ) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self.labels = tuple(labels)
        if hint is None:
            self.hints = default_hints(self.kind)
        elif isinstance(hint, Hint):
            self.hints = (hint,)
        else:
            self.hints = tuple(hint)
        self.exclude = exclude
        self.scope = scope
        self.file, self.line = _caller_origin()
        self._provider: MeterProvider | None = None
        self._instrument: Any = None

    def spec(self) -> MetricSpec:
        return MetricSpec(
            name=self.name,
            kind=self.kind,
            unit=self.unit,
            description=self.description,
            labels=self.labels,
            buckets=None,
            hints=self.hints,
            exclude_reason=self.exclude,
            file=self.file,
            line=self.line,
        )

    def bind(self, provider: MeterProvider | None = None) -> Metric:
        """Record into ``provider`` (default: the global one) from now on."""
        self._provider = provider
        self._instrument = None
        return self

    def _meter_provider(self) -> MeterProvider:
        return self._provider or otel_metrics.get_meter_provider()

    def _create(self) -> Any:
        raise NotImplementedError

    def _get(self) -> Any:
        if self._instrument is None:
            token = CREATING.set(self)
            try:
                self._instrument = self._create()
            finally:
                CREATING.reset(token)
        return self._instrument

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Counter(Metric):
    kind = Kind.COUNTER

    def _create(self) -> Any:
        meter = self._meter_provider().get_meter(self.scope)
        return meter.create_counter(self.name, unit=self.unit, description=self.description)

    def add(self, amount: int | float, attributes: Attributes | None = None) -> None:
        self._get().add(amount, attributes)


class UpDownCounter(Metric):
    kind = Kind.UP_DOWN_COUNTER

    def _create(self) -> Any:
        meter = self._meter_provider().get_meter(self.scope)
        return meter.create_up_down_counter(self.name, unit=self.unit, description=self.description)

    def add(self, amount: int | float, attributes: Attributes | None = None) -> None:
        self._get().add(amount, attributes)


class Gauge(Metric):
    kind = Kind.GAUGE

    def _create(self) -> Any:
        meter = self._meter_provider().get_meter(self.scope)
        return meter.create_gauge(self.name, unit=self.unit, description=self.description)

    def set(self, amount: int | float, attributes: Attributes | None = None) -> None:
        self._get().set(amount, attributes)


class Histogram(Metric):
    kind = Kind.HISTOGRAM

    def __init__(
        self, name: str, *, buckets: Sequence[float] | None = None, **options: Unpack[Options]
    ) -> None:
        super().__init__(name, **options)
        self.buckets = None if buckets is None else tuple(float(b) for b in buckets)

    def spec(self) -> MetricSpec:
        return replace(super().spec(), buckets=self.buckets)

    def _create(self) -> Any:
        meter = self._meter_provider().get_meter(self.scope)
        return meter.create_histogram(
            self.name,
            unit=self.unit,
            description=self.description,
            explicit_bucket_boundaries_advisory=None
            if self.buckets is None
            else list(self.buckets),
        )

    def record(self, amount: int | float, attributes: Attributes | None = None) -> None:
        self._get().record(amount, attributes)


class _Observable(Metric):
    """Observable kinds: the app hands over callbacks; they fire on every collection."""

    def __init__(
        self,
        name: str,
        *,
        callbacks: Sequence[ObservableCallback] = (),
        **options: Unpack[Options],
    ) -> None:
        super().__init__(name, **options)
        self.callbacks: list[ObservableCallback] = list(callbacks)

    def observe(self, callback: ObservableCallback) -> ObservableCallback:
        """Add a callback (usable as a decorator); takes effect at the next ``start``."""
        self.callbacks.append(callback)
        return callback

    def start(self, provider: MeterProvider | None = None) -> None:
        """Create the instrument now, so that its callbacks run on every collection."""
        self.bind(provider)
        self._get()


class ObservableCounter(_Observable):
    kind = Kind.OBSERVABLE_COUNTER

    def _create(self) -> Any:
        meter = self._meter_provider().get_meter(self.scope)
        return meter.create_observable_counter(
            self.name, callbacks=self.callbacks, unit=self.unit, description=self.description
        )


class ObservableUpDownCounter(_Observable):
    kind = Kind.OBSERVABLE_UP_DOWN_COUNTER

    def _create(self) -> Any:
        meter = self._meter_provider().get_meter(self.scope)
        return meter.create_observable_up_down_counter(
            self.name, callbacks=self.callbacks, unit=self.unit, description=self.description
        )


class ObservableGauge(_Observable):
    kind = Kind.OBSERVABLE_GAUGE

    def _create(self) -> Any:
        meter = self._meter_provider().get_meter(self.scope)
        return meter.create_observable_gauge(
            self.name, callbacks=self.callbacks, unit=self.unit, description=self.description
        )


@dataclass(frozen=True)
class Row:
    """A titled group of metrics; each metric's hints become the row's panels."""

    title: str
    metrics: Sequence[Metric]
    collapsed: bool = False


class Dashboard:
    """One dashboard file. ``uid`` defaults to a slug of the title (stable, never random)."""

    def __init__(
        self,
        title: str,
        *,
        rows: Sequence[Row],
        uid: str | None = None,
        description: str = "",
        tags: Sequence[str] = (),
        refresh: str = "30s",
        time_from: str = "now-6h",
    ) -> None:
        self.title = title
        self.rows = tuple(rows)
        self.uid = uid
        self.description = description
        self.tags = tuple(tags)
        self.refresh = refresh
        self.time_from = time_from
        self.file, self.line = _caller_origin()

    def __repr__(self) -> str:
        return f"Dashboard({self.title!r})"
