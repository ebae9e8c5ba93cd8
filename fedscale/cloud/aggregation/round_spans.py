"""The aggregator's spans and metrics of its rounds (see ``fedscale.cloud.telemetry``).

A round's ``fl.round`` span opens when it starts, has ``fl.select``, ``fl.dispatch`` and
``fl.aggregate`` as children, and closes when the round ends, or, for a tested round, when its
``fl.test`` child does (the test runs while the next round is planned and sent). Its context
travels to the executors in each Task of the round and of its test.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from fedscale.cloud.telemetry import Telemetry, inject


@dataclass
class TestSpans:
    """A test's span and the span of the round it tests, with that round's trace context."""

    round: trace.Span
    test: trace.Span
    context: dict[str, str]


class RoundSpans:
    """Spans and metrics of the aggregator's rounds, no-ops when telemetry is off."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.enabled = telemetry.enabled
        self.instruments = telemetry.instruments
        self.round: trace.Span | None = None
        self.context: dict[str, str] = {}  # the open round's trace context, for its Tasks

    def begin(self, round_index: int, virtual_start: float) -> None:
        self.round = self.telemetry.tracer.start_span(
            "fl.round", attributes={"fl.round": round_index, "fl.virtual_start": virtual_start})
        self.context = inject(self.round) if self.enabled else {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """A child span ``fl.<name>`` of the open round around the block."""
        with self.telemetry.span(f"fl.{name}", trace.set_span_in_context(self.round)):
            yield

    def round_ended(self, end: dict[str, Any], participants: int) -> None:
        """Record the round's ROUND_END event ``end`` on its span and in the metrics."""
        loss = end["train_loss"]
        if self.enabled:
            self.round.set_attributes({
                "fl.virtual_end": end["virtual_time"], "fl.participants": participants,
                "fl.aggregated": end["aggregated"], "fl.stragglers": len(end["stragglers"]),
                "fl.failures": len(end["failures"]), **({"fl.loss": loss} if _number(loss) else {})})
        if _number(loss):
            self.instruments.round_loss.record(loss)
        self.instruments.round_clients.record(end["aggregated"])
        self.instruments.round_duration.record(end["round_duration"], {"clock": "virtual"})
        self.instruments.round_duration.record(end["wall_seconds"], {"clock": "wall"})

    def close_round(self) -> None:
        """End the open round's span (an untested round)."""
        if self.round is not None:
            self.round.end()
            self.round = None

    def start_test(self) -> TestSpans:
        """Open the test of the round just ended, which now owns that round's span."""
        round_span, self.round = self.round, None
        test = self.telemetry.tracer.start_span("fl.test", context=trace.set_span_in_context(round_span))
        return TestSpans(round_span, test, inject(round_span) if self.enabled else {})

    def end_test(self, spans: TestSpans, result: dict[str, Any]) -> None:
        """Close a test with its ``result`` (accuracy, loss, num_samples), then its round."""
        if self.enabled:
            spans.test.set_attributes({"fl.accuracy": result["accuracy"], "fl.loss": result["loss"],
                                       "fl.samples": result["num_samples"]})
            spans.round.set_attribute("fl.accuracy", result["accuracy"])
        self.instruments.round_accuracy.record(result["accuracy"])
        spans.test.end()
        spans.round.end()

    def fail(self, error: BaseException, test: TestSpans | None) -> None:
        """End whatever is open, marked with ``error`` (the job is ending)."""
        for span in ([self.round] if self.round else []) + ([test.test, test.round] if test else []):
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            span.end()
        self.round = None

    def sent(self, nbytes: int) -> None:
        self.instruments.bytes.add(nbytes, {"direction": "sent"})

    def received(self, nbytes: int) -> None:
        self.instruments.bytes.add(nbytes, {"direction": "received"})


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
