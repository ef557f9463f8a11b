"""The user's side: declare a metric once, panel it by hint, record through it at run time.

The same object serves the build (``spec()`` turns it into plain data for the pipeline)
and the application (``add``/``record``/``set`` create the real OTel instrument on first
use, on the global MeterProvider or on the one passed to ``bind``).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from types import UnionType
from typing import Any, ClassVar, TypedDict, Unpack

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from dashgen.expr import Expr
from dashgen.hints import CurrentStyle, Hint, Kind, Threshold, default_hints

Attributes = Mapping[str, str | bool | int | float]
ObservableCallback = Callable[[CallbackOptions], Iterable[Observation]]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

#: The declaration whose instrument is being created right now: a capturing MeterProvider
#: reads it to name the declaration, not the first ``add`` caller, as the creation site.
CREATING: ContextVar[Metric | None] = ContextVar("dashgen_creating", default=None)


def _caller_origin() -> tuple[str, int]:
    """File and line of the user code that made the declaration, for error messages."""
    frame = sys._getframe(1)
    while frame.f_back is not None and _is_dashgen_file(frame.f_code.co_filename):
        frame = frame.f_back
    return frame.f_code.co_filename, frame.f_lineno


@functools.cache
def _is_dashgen_file(filename: str) -> bool:
    """Cached: every declaration asks, about the same few files."""
    return os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep)


class DeclarationError(Exception):
    """A declaration given a value of the wrong type, raised where the user wrote it; the
    catalog stage turns it into one line naming the file, the line and the declaration."""

    def __init__(self, origin: tuple[str, int], subject: str, message: str) -> None:
        super().__init__(message)
        self.file, self.line = origin
        self.subject = subject
        self.message = message


def describe_value(value: object) -> str:
    """``'oops' (a str)``: what the user passed, short enough for one line."""
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{text} (a {type(value).__name__})"


def _subject(noun: str, name: object) -> str:
    """``metric 'x'``, or just ``metric`` when the name itself is what is wrong."""
    return f"{noun} {name!r}" if isinstance(name, str) else noun


class _Checked:
    """Type checks of one declaration's options, each failure naming the option."""

    def __init__(self, origin: tuple[str, int], subject: str) -> None:
        self.origin = origin
        self.subject = subject

    def fail(self, message: str) -> DeclarationError:
        return DeclarationError(self.origin, self.subject, message)

    def text(self, option: str, value: object, *, optional: bool = False) -> Any:
        """A plain ``str`` (a ``StrEnum`` member becomes its value); ``None`` if optional."""
        if value is None and optional:
            return None
        if not isinstance(value, str):
            expected = "a string or None" if optional else "a string"
            raise self.fail(f"{option}= takes {expected}, got {describe_value(value)}")
        return str.__str__(value)

    def texts(self, option: str, value: object) -> tuple[str, ...]:
        """A list of plain strings; a lone string is refused, not split into letters."""
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise self.fail(f"{option}= takes a list of strings, got {describe_value(value)}")
        return tuple(self.text(option, item) for item in value)

    def items(
        self, option: str, value: object, kind: type | UnionType, noun: str
    ) -> tuple[Any, ...]:
        """A list (or tuple) of ``kind`` objects."""
        if not isinstance(value, list | tuple):
            raise self.fail(f"{option}= takes a list of {noun}, got {describe_value(value)}")
        for item in value:
            if not isinstance(item, kind):
                raise self.fail(
                    f"{option}= takes a list of {noun}, got {describe_value(item)} in it"
                )
        return tuple(value)

    def label_values(
        self, value: object, labels: tuple[str, ...]
    ) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """``values={"label": ["a", "b"]}``: real values of declared labels."""
        if value is None:
            return ()
        if not isinstance(value, Mapping):
            example = '{"label": ["a", "b"]}'
            raise self.fail(
                f"values= takes a mapping such as {example}, got {describe_value(value)}"
            )
        checked = []
        for label, listed in sorted(value.items(), key=lambda item: str(item[0])):
            if label not in labels:
                raise self.fail(f"values= names '{label}', which is not in labels=")
            texts = self.texts(f"values['{label}']", listed)
            if not texts:
                raise self.fail(f"values['{label}'] is empty: list at least one value")
            checked.append((label, texts))
        return tuple(checked)

    def flag(self, option: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.fail(f"{option}= takes True or False, got {describe_value(value)}")
        return value


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
    label_values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Real values of some labels (``values=``), which ``verify --live`` feeds so that a
    hand-written matcher such as ``{payment_method="card"}`` finds its series."""

    @property
    def where(self) -> str:
        """The declaration, as error messages name it."""
        return f"{self.file}:{self.line}: metric '{self.name}'"


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
    recording_method: ClassVar[str] = ""
    """The method the app records with (``add``, ``set``, ``record``); none for observables."""

    def __init__(
        self,
        name: str,
        *,
        unit: str = "",
        description: str = "",
        labels: Sequence[str] = (),
        values: Mapping[str, Sequence[str]] | None = None,
        hint: Hint | Sequence[Hint] | None = None,
        exclude: str | None = None,
        scope: str = "dashgen",
    ) -> None:
        self.file, self.line = _caller_origin()
        check = _Checked((self.file, self.line), _subject("metric", name))
        self.name: str = check.text("name", name)
        self.unit: str = check.text("unit", unit)
        self.description: str = check.text("description", description)
        self.labels = check.texts("labels", labels)
        self.values = check.label_values(values, self.labels)
        if hint is None:
            self.hints = default_hints(self.kind)
        elif isinstance(hint, Hint):
            self.hints = (hint,)
        elif isinstance(hint, list | tuple):
            self.hints = tuple(hint)
        else:
            got = "a string" if isinstance(hint, str) else describe_value(hint)
            raise check.fail(f"hint= takes dashgen.hints objects such as hints.Rate(), got {got}")
        self.exclude: str | None = check.text("exclude", exclude, optional=True)
        self.scope: str = check.text("scope", scope)
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
            label_values=self.values,
        )

    def bind(self, provider: MeterProvider | None = None) -> Metric:
        """Record into ``provider`` (default: the global one) from now on."""
        self._provider = provider
        self._instrument = None
        if self.recording_method:
            self.__dict__.pop(self.recording_method, None)
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
            if self.recording_method:
                # From now on the app calls the instrument's own method: one Python call
                # less per measurement, in production and in recording mode alike.
                method = self.recording_method
                setattr(self, method, getattr(self._instrument, method))
        return self._instrument

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Counter(Metric):
    kind = Kind.COUNTER
    recording_method = "add"

    def _create(self) -> Any:
        meter = self._meter_provider().get_meter(self.scope)
        return meter.create_counter(self.name, unit=self.unit, description=self.description)

    def add(self, amount: int | float, attributes: Attributes | None = None) -> None:
        self._get().add(amount, attributes)


class UpDownCounter(Metric):
    kind = Kind.UP_DOWN_COUNTER
    recording_method = "add"

    def _create(self) -> Any:
        meter = self._meter_provider().get_meter(self.scope)
        return meter.create_up_down_counter(self.name, unit=self.unit, description=self.description)

    def add(self, amount: int | float, attributes: Attributes | None = None) -> None:
        self._get().add(amount, attributes)


class Gauge(Metric):
    kind = Kind.GAUGE
    recording_method = "set"

    def _create(self) -> Any:
        meter = self._meter_provider().get_meter(self.scope)
        return meter.create_gauge(self.name, unit=self.unit, description=self.description)

    def set(self, amount: int | float, attributes: Attributes | None = None) -> None:
        self._get().set(amount, attributes)


class Histogram(Metric):
    kind = Kind.HISTOGRAM
    recording_method = "record"

    def __init__(
        self, name: str, *, buckets: Sequence[float] | None = None, **options: Unpack[Options]
    ) -> None:
        super().__init__(name, **options)
        self.buckets = None
        if buckets is not None:
            check = _Checked((self.file, self.line), _subject("metric", name))
            numbers = check.items("buckets", buckets, int | float, "numbers")
            if any(isinstance(b, bool) for b in numbers):
                raise check.fail(f"buckets= takes a list of numbers, got {list(numbers)!r}")
            self.buckets = tuple(float(b) for b in numbers)

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
class PanelSpec:
    """A custom panel as plain data: its queries name metrics, never Prometheus names."""

    title: str
    exprs: tuple[Expr, ...]
    description: str
    unit: str
    legend: str | None
    thresholds: tuple[Threshold, ...]
    base: str | None
    style: CurrentStyle
    width: int | None
    height: int
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}: panel '{self.title}'"


class Panel:
    """A panel of queries written over declared metrics with ``dashgen.expr`` (an error
    ratio, a saturation, an SLO burn rate): placed in a ``Row`` beside metrics, rendered like
    the hints' panels, and checked like every query, so a rename cannot leave it dead."""

    def __init__(
        self,
        title: str,
        expr: Expr | Sequence[Expr],
        *,
        description: str = "",
        unit: str = "short",
        legend: str | None = None,
        thresholds: Sequence[Threshold] = (),
        base: str | None = None,
        style: CurrentStyle = "timeseries",
        width: int | None = None,
        height: int = 8,
    ) -> None:
        self.file, self.line = _caller_origin()
        check = _Checked((self.file, self.line), _subject("panel", title))
        exprs = (expr,) if isinstance(expr, Expr) else expr
        self.spec = PanelSpec(
            title=check.text("title", title),
            exprs=check.items("expr", exprs, Expr, "dashgen.expr queries"),
            description=check.text("description", description),
            unit=check.text("unit", unit),
            legend=check.text("legend", legend, optional=True),
            thresholds=tuple(thresholds),
            base=check.text("base", base, optional=True),
            style=style,
            width=width,
            height=height,
            file=self.file,
            line=self.line,
        )
        if not self.spec.exprs:
            raise check.fail("expr= needs at least one query")

    def __repr__(self) -> str:
        return f"Panel({self.spec.title!r})"


class Row:
    """A titled group of metrics and custom panels; each metric's hints become panels."""

    def __init__(
        self, title: str, metrics: Sequence[Metric | Panel], collapsed: bool = False
    ) -> None:
        check = _Checked(_caller_origin(), _subject("row", title))
        self.title: str = check.text("title", title)
        self.entries: tuple[Metric | Panel, ...] = check.items(
            "metrics", metrics, Metric | Panel, "metric declarations or Panel(...)"
        )
        self.metrics = tuple(entry for entry in self.entries if isinstance(entry, Metric))
        self.collapsed = check.flag("collapsed", collapsed)

    def __repr__(self) -> str:
        return f"Row({self.title!r}, {list(self.entries)!r})"


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
        folder: str | None = None,
        filters: Sequence[str] = (),
    ) -> None:
        self.file, self.line = _caller_origin()
        check = _Checked((self.file, self.line), _subject("dashboard", title))
        self.title: str = check.text("title", title)
        self.rows: tuple[Row, ...] = check.items("rows", rows, Row, "Row(...) objects")
        self.uid: str | None = check.text("uid", uid, optional=True)
        self.description: str = check.text("description", description)
        self.tags = check.texts("tags", tags)
        self.refresh: str = check.text("refresh", refresh)
        self.time_from: str = check.text("time_from", time_from)
        self.filters = check.texts("filters", filters)
        """Declared attribute keys the dashboard gets a variable for and filters by."""
        self.folder: str | None = check.text("folder", folder, optional=True)
        """The Grafana folder to provision it into (a subdir of the output dir)."""

    def __repr__(self) -> str:
        return f"Dashboard({self.title!r})"
