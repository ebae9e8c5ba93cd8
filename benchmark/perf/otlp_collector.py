"""A minimal OpenTelemetry collector for tests: an HTTP server on 127.0.0.1 that takes what the
OTLP/HTTP (protobuf) exporters post to /v1/traces and /v1/metrics and keeps the spans and metric
points, so a test reads what every process of a real job exported."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


@dataclass
class Span:
    name: str
    service: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


@dataclass
class Collected:
    spans: list[Span] = field(default_factory=list)
    points: list[tuple[str, str, dict[str, Any], Any]] = field(default_factory=list)  # service, metric, attrs, point


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


class Collector:
    """Serve on a free port of 127.0.0.1 until ``close``; ``endpoint`` is for OTEL_EXPORTER_OTLP_ENDPOINT."""

    def __init__(self) -> None:
        self.collected = Collected()
        lock, collected = threading.Lock(), self.collected

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    if self.path == "/v1/traces":
                        _spans(body, collected)
                    elif self.path == "/v1/metrics":
                        _points(body, collected)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _service(resource: Any) -> str:
    return str(_attributes(resource.attributes).get("service.name", ""))


def _walk(request: Any, resources: str, scopes: str, items: str) -> Iterator[tuple[str, Any]]:
    """(service name, item) for each span or metric of an export request."""
    for resource in getattr(request, resources):
        service = _service(resource.resource)
        for scope in getattr(resource, scopes):
            for item in getattr(scope, items):
                yield service, item


def _spans(body: bytes, collected: Collected) -> None:
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
    for service, span in _walk(request, "resource_spans", "scope_spans", "spans"):
        collected.spans.append(Span(span.name, service, span.trace_id.hex(), span.span_id.hex(),
                                    span.parent_span_id.hex(), _attributes(span.attributes)))


def _points(body: bytes, collected: Collected) -> None:
    request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
    for service, metric in _walk(request, "resource_metrics", "scope_metrics", "metrics"):
        for point in getattr(metric, metric.WhichOneof("data")).data_points:
            collected.points.append((service, metric.name, _attributes(point.attributes), point))
