"""Driving the real OTel SDK with the declarations, as every export path starts.

Each declaration gets a meter scope of its own and every attribute a marker value, so that
whatever an exporter makes of them, its output says which declaration and attribute each
family, sample and label came from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk import metrics as sdk_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader

from dashgen.declare import MetricSpec
from dashgen.errors import DashgenError
from dashgen.hints import Kind

ObservableCallback = Callable[[CallbackOptions], Iterable[Observation]]
_SCOPE_PREFIX = "dashgen.catalog."
#: Recorded once into each histogram; the sample equal to it is ``_sum``, the one equal
#: to 1 is ``_count``. Read from the output, not assumed from suffixes.
HISTOGRAM_PROBE = 2.5


def _exemplars_off() -> dict[str, Any]:
    """Exemplars only cost time here: dashgen reads names, never trace links. SDKs from 1.26
    record them unless told not to; older ones record none and take no filter."""
    always_off = getattr(sdk_metrics, "AlwaysOffExemplarFilter", None)
    return {} if always_off is None else {"exemplar_filter": always_off()}


def private_provider(readers: Sequence[MetricReader]) -> MeterProvider:
    """A MeterProvider of dashgen's own, which only names metrics: it must work where the
    app's environment sets ``OTEL_SDK_DISABLED=true`` (pytest-env often does), which the SDK
    reads when a provider is made and which then gives no-op meters that export nothing."""
    disabled = os.environ.pop("OTEL_SDK_DISABLED", None)
    try:
        return MeterProvider(
            metric_readers=list(readers), shutdown_on_exit=False, **_exemplars_off()
        )
    finally:
        if disabled is not None:
            os.environ["OTEL_SDK_DISABLED"] = disabled


def marker(index: int) -> str:
    """The value attribute ``index`` of a declaration is recorded with."""
    return f"dashgen-attribute-{index}"


def declaration_of_scope(scope: str) -> int | None:
    """Which declaration a meter scope belongs to (``None``: not one of dashgen's)."""
    return int(scope[len(_SCOPE_PREFIX) :]) if scope.startswith(_SCOPE_PREFIX) else None


def trigger_all(provider: MeterProvider, specs: Sequence[MetricSpec]) -> None:
    """Create every declaration's instrument on ``provider`` and record once through it
    with marker attribute values; observables report the same on collection."""
    for index, spec in enumerate(specs):
        attributes = {label: marker(i) for i, label in enumerate(spec.labels)}

        def observe(_: CallbackOptions, attributes: dict[str, str] = attributes) -> Any:
            return [Observation(1, attributes)]

        instrument = create_instrument(declaration_meter(provider, index), spec, observe)
        probe = HISTOGRAM_PROBE if spec.kind is Kind.HISTOGRAM else 1
        record(instrument, spec.kind, probe, attributes)


def declaration_meter(provider: MeterProvider, index: int) -> Meter:
    """Declaration ``index``'s own scope, so exported samples say whose they are."""
    return provider.get_meter(f"{_SCOPE_PREFIX}{index}")


def create_instrument(meter: Meter, spec: MetricSpec, callback: ObservableCallback) -> Any:
    """The real SDK instrument for a declaration; observables report through ``callback``.

    Raises :class:`DashgenError` when the SDK rejects the name or unit.
    """
    common: dict[str, Any] = {"name": spec.name, "unit": spec.unit, "description": spec.description}
    try:
        match spec.kind:
            case Kind.COUNTER:
                return meter.create_counter(**common)
            case Kind.UP_DOWN_COUNTER:
                return meter.create_up_down_counter(**common)
            case Kind.GAUGE:
                return meter.create_gauge(**common)
            case Kind.HISTOGRAM:
                return _histogram(meter, common, spec.buckets)
            case Kind.OBSERVABLE_COUNTER:
                return meter.create_observable_counter(**common, callbacks=[callback])
            case Kind.OBSERVABLE_UP_DOWN_COUNTER:
                return meter.create_observable_up_down_counter(**common, callbacks=[callback])
            case Kind.OBSERVABLE_GAUGE:
                return meter.create_observable_gauge(**common, callbacks=[callback])
    except Exception as error:
        raise DashgenError(spec.where, f"the OpenTelemetry SDK rejects it: {error}") from None


def _histogram(meter: Meter, common: Mapping[str, Any], buckets: Sequence[float] | None) -> Any:
    """The declared buckets go in as the API's advice (1.23 and later); an older API takes
    none, and its default buckets give the histogram the same names."""
    if buckets is None:
        return meter.create_histogram(**common)
    try:
        return meter.create_histogram(**common, explicit_bucket_boundaries_advisory=list(buckets))
    except TypeError:
        return meter.create_histogram(**common)


def record(instrument: Any, kind: Kind, value: float, attributes: Mapping[str, str]) -> None:
    """One measurement through a synchronous instrument; observables record on collection."""
    match kind:
        case Kind.COUNTER | Kind.UP_DOWN_COUNTER:
            instrument.add(value, attributes)
        case Kind.HISTOGRAM:
            instrument.record(value, attributes)
        case Kind.GAUGE:
            instrument.set(value, attributes)
