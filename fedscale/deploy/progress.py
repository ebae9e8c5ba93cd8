"""Shows a running job's progress from its aggregator's event log.

On a terminal: a live bar (rich) with round r/R, virtual time, last test accuracy and the
estimated wall time left (from the pace of the rounds so far), notes printed above it. Otherwise
(a pipe, a CI log): one plain line per finished round and per test.
"""
from __future__ import annotations

import sys
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, TextColumn
from rich.progress import Progress as Bar

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
        self._bar: Bar | None = None
        self._last_end: dict[str, Any] | None = None  # the last ROUND_END drawn, redrawn when a test comes in
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

    def _draw(self, event: dict[str, Any]) -> None:
        """Redraw the live bar at ``event``'s round (started at the first round's end)."""
        line = self.status_line(event) + self._eta(event)
        if self._bar is None:
            console = Console(file=self.stream, force_terminal=True, highlight=False)
            self._bar = Bar(BarColumn(bar_width=BAR_WIDTH), TextColumn("{task.fields[line]}"), console=console,
                            auto_refresh=False)
            self._bar.add_task("job", total=self.total, line=line)
            self._bar.start()
        self._bar.update(self._bar.task_ids[0], completed=event["round"], line=line)
        self._bar.refresh()

    def note(self, text: str) -> None:
        """Print ``text`` on a line of its own (above the bar on a terminal)."""
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
            return
        self.stream.write(text + "\n")
        self.stream.flush()

    def on_event(self, event: dict[str, Any]) -> None:
        tag = event.get("tag")
        if tag == commons.TEST_RESULT:
            self.accuracy = event["accuracy"]
            if self._last_end is not None:
                self._draw(self._last_end)
            if not self.tty:
                self.note(f"test  round {event['round']}/{self.total}  accuracy {_number(event['accuracy'])}  "
                          f"loss {_number(event['loss'])}")
        elif tag == commons.ROUND_END:
            if self.tty:
                self._last_end = event
                self._draw(event)
            else:
                self.note(self.status_line(event))
        elif tag == commons.EXECUTOR_LOST:
            self.note(f"warning: executor {event['executor']} lost: {event['reason']}")
        elif tag == commons.JOB_END:
            self.finish()

    def finish(self) -> None:
        """Leave the bar drawn where it is, the cursor on the next line."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            self._last_end = None
