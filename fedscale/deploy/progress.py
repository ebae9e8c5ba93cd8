"""Shows a running job's progress from its aggregator's event log.

On a terminal: one line redrawn in place, with a bar and the estimated wall time left (from the
pace of the rounds so far). Otherwise (a pipe, a CI log): one plain line per finished round.
Either way: round r/R, virtual time, last test accuracy.
"""
from __future__ import annotations

import sys
from typing import Any, TextIO

from fedscale.cloud import commons

BAR_WIDTH = 24


def _number(value: float | None) -> str:
    """A metric for display; a diverged model logs its non-finite loss as null."""
    return "nan" if value is None else f"{value:.4f}"


class Progress:
    def __init__(self, total_rounds: int, stream: TextIO = sys.stdout, tty: bool | None = None) -> None:
        self.total = total_rounds
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.accuracy: float | None = None
        self._drawn = False
        self._first_end: tuple[int, float] | None = None  # (round, wall time) of the first round seen ending

    def status_line(self, event: dict[str, Any]) -> str:
        acc = "-" if self.accuracy is None else _number(self.accuracy)
        return (f"round {event['round']}/{self.total}  virtual_time {event['virtual_time']:.1f} s  "
                f"test_accuracy {acc}")

    def _eta(self, event: dict[str, Any]) -> str:
        """``  eta N s`` from the wall time per round since the first round seen ending; empty
        until two rounds have ended (or without wall times)."""
        if "wall_time" not in event:
            return ""
        if self._first_end is None:
            self._first_end = (event["round"], event["wall_time"])
            return ""
        first_round, first_wall = self._first_end
        if event["round"] <= first_round:
            return ""
        per_round = (event["wall_time"] - first_wall) / (event["round"] - first_round)
        return f"  eta {per_round * max(self.total - event['round'], 0):.0f} s"

    def _bar(self, done: int) -> str:
        filled = BAR_WIDTH * done // max(self.total, 1)
        return "[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]"

    def note(self, text: str) -> None:
        """Print ``text`` on a line of its own (below the bar on a terminal)."""
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def on_event(self, event: dict[str, Any]) -> None:
        tag = event.get("tag")
        if tag == commons.TEST_RESULT:
            self.accuracy = event["accuracy"]
            if not self.tty:
                self.note(f"test  round {event['round']}/{self.total}  accuracy {_number(event['accuracy'])}  "
                           f"loss {_number(event['loss'])}")
        elif tag == commons.ROUND_END:
            line = self.status_line(event)
            if self.tty:
                self.stream.write("\r" + self._bar(event["round"]) + " " + line + self._eta(event) + "\x1b[K")
                self.stream.flush()
                self._drawn = True
            else:
                self.note(line)
        elif tag == commons.EXECUTOR_LOST:
            self.note(f"warning: executor {event['executor']} lost: {event['reason']}")
        elif tag == commons.JOB_END:
            self.finish()

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
