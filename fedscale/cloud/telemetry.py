"""OpenTelemetry for a job: one trace per round across the aggregator and every executor, and the
rounds' metrics.

Spans: ``fl.round`` on the aggregator (round, virtual start and end, participants, aggregated,
stragglers, failures, loss, accuracy), with children ``fl.select``, ``fl.dispatch`` (tasks out,
results in), ``fl.aggregate`` and ``fl.test``; a tested round's span ends with its test. On the
executors, ``fl.client.train`` per client (client id, samples, loss, simulated download, compute
and upload seconds) and ``fl.client.evaluate`` per test shard. The gRPC session is one long
stream, so per-call instrumentation would give one span per job: instead the aggregator writes
its round span's context (W3C traceparent) into each Task's ``trace_context`` and the executor
parents its spans on it. Span times are wall-clock; virtual time is in attributes.

Metrics: ``fl.round.loss``, ``fl.round.accuracy``, ``fl.round.clients``, ``fl.round.duration``
(attribute ``clock``: virtual or wall), ``fl.client.examples``, ``fl.client.loss``, and
``fl.bytes`` (attribute ``direction``: sent or received) for the messages of each process.

On when the environment asks for an exporter: ``OTEL_TRACES_EXPORTER`` = ``console`` and/or
``otlp``, or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (OTLP over HTTP/protobuf; metrics follow
``OTEL_METRICS_EXPORTER``, else the traces' choice); ``OTEL_SDK_DISABLED=true`` keeps it off.
Off, calls go to the API's no-op tracer and meter. The providers are this module's own, never
OTel's globals, and are flushed on every way a process ends. The SDK and exporters are the
``otel`` extra; without them a job asking for telemetry runs with a one-line note.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

PROPAGATOR = TraceContextTextMapPropagator()
NO_SPAN = contextlib.nullcontext(trace.INVALID_SPAN)
EXPORTERS = ("console", "otlp")
METRIC_INTERVAL_MS = 5000
FLUSH_SECONDS = 3.0  # with W&B's 6 s, within the 10 s the driver waits for a job's processes after its end
MISSING = ("note: OpenTelemetry was asked for (OTEL_*) but its SDK is not installed (pip install "
           "'fedscale[otel]'); the job runs without it")


def exporter_names(environ: Mapping[str, str], kind: str) -> tuple[str, ...]:
    """The exporters the environment asks for, for ``kind`` traces or metrics ("" when none)."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return ()
    chosen = environ.get(f"OTEL_{kind.upper()}_EXPORTER") or environ.get("OTEL_TRACES_EXPORTER", "")
    if not chosen and environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        chosen = "otlp"
    return tuple(name for name in (n.strip().lower() for n in chosen.split(",")) if name in EXPORTERS)


@dataclass
class Instruments:
    """The job's metric instruments (no-ops when telemetry is off)."""

    round_loss: Any
    round_accuracy: Any
    round_clients: Any
    round_duration: Any
    client_examples: Any
    client_loss: Any
    bytes: Any

    @classmethod
    def of(cls, meter: metrics.Meter) -> Instruments:
        return cls(round_loss=meter.create_histogram("fl.round.loss", description="mean training loss of a round"),
                   round_accuracy=meter.create_histogram("fl.round.accuracy", description="test accuracy"),
                   round_clients=meter.create_histogram("fl.round.clients", description="clients aggregated"),
                   round_duration=meter.create_histogram("fl.round.duration", unit="s",
                                                         description="a round's duration (clock: virtual or wall)"),
                   client_examples=meter.create_counter("fl.client.examples", description="samples trained on"),
                   client_loss=meter.create_histogram("fl.client.loss", description="a client's training loss"),
                   bytes=meter.create_counter("fl.bytes", unit="By", description="message bytes (direction)"))


@dataclass
class Telemetry:
    """A process's tracer, meter and instruments, and how to flush them."""

    tracer: trace.Tracer
    meter: metrics.Meter
    enabled: bool = False
    _shutdown: list[Callable[[], Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.instruments = Instruments.of(self.meter)

    @classmethod
    def off(cls) -> Telemetry:
        return cls(trace.NoOpTracer(), metrics.NoOpMeter("fedscale"))

    @classmethod
    def start(cls, service: str, job: str, environ: Mapping[str, str] = os.environ,
              span_exporter: Any = None, metric_reader: Any = None) -> Telemetry:
        """The telemetry of process ``service`` of ``job``: exporters from ``environ``, or the
        given ones (tests: an in-memory span exporter and metric reader); off if none."""
        span_names, metric_names = exporter_names(environ, "traces"), exporter_names(environ, "metrics")
        if span_exporter is None and metric_reader is None and not span_names and not metric_names:
            return cls.off()
        try:
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            print(MISSING, file=sys.stderr)
            return cls.off()
        resource = Resource.create({"service.name": f"fedscale-{service}", "fedscale.job": job})
        tracer_provider = TracerProvider(resource=resource)
        for exporter in ([span_exporter] if span_exporter is not None
                         else [_span_exporter(n, environ) for n in span_names]):
            tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
        readers = [metric_reader] if metric_reader is not None else [
            PeriodicExportingMetricReader(_metric_exporter(n, environ), export_interval_millis=METRIC_INTERVAL_MS)
            for n in metric_names]
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        return cls(tracer_provider.get_tracer("fedscale"), meter_provider.get_meter("fedscale"), True,
                   [tracer_provider.shutdown, meter_provider.shutdown])

    def span(self, name: str, context: Context | None = None,
             attributes: dict[str, Any] | None = None) -> contextlib.AbstractContextManager[trace.Span]:
        """Span ``name`` (a child of ``context``) around a block; nothing at all when off."""
        if not self.enabled:
            return NO_SPAN
        return self.tracer.start_as_current_span(name, context=context, attributes=attributes)

    def shutdown(self) -> None:
        """Export what is pending and stop, giving up after ``FLUSH_SECONDS`` (an unreachable
        collector must not hold up the job's end); once is enough."""
        steps, self._shutdown = self._shutdown, []
        if not steps:
            return
        worker = threading.Thread(target=_run_all, args=(steps,), name="telemetry-flush", daemon=True)
        worker.start()
        worker.join(FLUSH_SECONDS)
        if worker.is_alive():
            print(f"note: telemetry not flushed within {FLUSH_SECONDS:g} s (is the collector reachable?)",
                  file=sys.stderr)


def _run_all(steps: list[Callable[[], Any]]) -> None:
    for step in steps:
        try:
            step()
        except Exception as err:
            print(f"note: telemetry not flushed: {type(err).__name__}: {err}", file=sys.stderr)


def _endpoint(environ: Mapping[str, str], path: str) -> str | None:
    """The OTLP/HTTP URL of ``path`` under ``environ``'s OTEL_EXPORTER_OTLP_ENDPOINT (None: the
    exporter's own default and per-signal variables)."""
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return f"{base.rstrip('/')}/{path}" if base else None


def _span_exporter(name: str, environ: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        return ConsoleSpanExporter(out=sys.stdout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=_endpoint(environ, "v1/traces"))


def _metric_exporter(name: str, environ: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
        return ConsoleMetricExporter(out=sys.stdout)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    return OTLPMetricExporter(endpoint=_endpoint(environ, "v1/metrics"))


def inject(span: trace.Span) -> dict[str, str]:
    """The trace context of ``span`` as text, for a Task's ``trace_context``."""
    carrier: dict[str, str] = {}
    if span.get_span_context().is_valid:
        PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def extract(carrier: Mapping[str, str]) -> Context:
    """The context a Task's ``trace_context`` carries (an empty one when it carries none)."""
    return PROPAGATOR.extract(dict(carrier))
