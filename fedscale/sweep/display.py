"""How a running sweep shows itself: a live table on a terminal (rich), plain lines otherwise."""
from __future__ import annotations

import time
from typing import Any, TextIO


def _accuracy(state: Any) -> str:
    return "-" if state.accuracy is None else f"{state.accuracy:.4f}"


class PlainLines:
    """One line when a run starts or ends."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream, self.total, self.done = stream, total, 0

    def changed(self, state: Any) -> None:
        if state.status == "running":
            line = f"start {state.spec.run_id}" + (f" (cores {','.join(map(str, state.cores))})" if state.cores else "")
        else:
            self.done += 1
            summary = state.record.get("summary", {})
            acc = summary.get("final_accuracy")
            line = (f"[{self.done}/{self.total}] {state.spec.run_id} {state.status}"
                    + (f": final accuracy {acc:.4f}" if acc is not None else "")
                    + (f" after {summary.get('rounds')} rounds" if summary.get("rounds") else "")
                    + (f" ({state.reason})" if state.reason else ""))
        print(line, file=self.stream, flush=True)

    def refresh(self, states: list[Any]) -> None:
        pass

    def close(self) -> None:
        pass


class LiveTable:
    """A table of every run (state, round, virtual time, last accuracy, elapsed), redrawn in place."""

    def __init__(self, stream: TextIO, total: int) -> None:
        from rich.console import Console
        from rich.live import Live
        self._live = Live(console=Console(file=stream), refresh_per_second=4, transient=False)
        self._live.start()
        self.total = total

    def _table(self, states: list[Any]) -> Any:
        from rich.table import Table
        table = Table(title=f"sweep: {sum(s.status not in ('pending', 'running') for s in states)}/{self.total} done")
        for column in ("run", "state", "round", "virtual time", "accuracy", "elapsed"):
            table.add_column(column)
        now = time.monotonic()
        for s in states:
            elapsed = s.elapsed or (now - s.started if s.started else 0.0)
            table.add_row(s.spec.run_id, s.status, str(s.round or "-"), f"{s.virtual_time:.0f} s",
                          _accuracy(s), f"{elapsed:.1f} s" if s.started else "-")
        return table

    def changed(self, state: Any) -> None:
        pass

    def refresh(self, states: list[Any]) -> None:
        self._live.update(self._table(states))

    def close(self) -> None:
        self._live.stop()
