"""How a running sweep shows itself: plain lines off a terminal, a live table on one."""
from __future__ import annotations

import io
import time
from types import SimpleNamespace

from fedscale.sweep.runner import make_display


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def state(status: str, **extra) -> SimpleNamespace:
    return SimpleNamespace(spec=SimpleNamespace(run_id="0_FedAvg"), status=status, round=3, virtual_time=120.0,
                           accuracy=0.8125, elapsed=0.0, started=time.monotonic() - 2, cores=(1,), reason="",
                           record={}, **extra)


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    display = make_display(out, 2)
    display.changed(state("running"))
    ended = state("completed")
    ended.record = {"summary": {"final_accuracy": 0.8125, "rounds": 3}}
    display.changed(ended)
    display.close()
    assert out.getvalue().splitlines() == ["start 0_FedAvg (cores 1)",
                                           "[1/2] 0_FedAvg completed: final accuracy 0.8125 after 3 rounds"]


def test_a_live_table_on_a_terminal():
    out = Terminal()
    display = make_display(out, 2)
    display.refresh([state("running")])
    display.close()
    text = out.getvalue()
    for cell in ("sweep: 0/2 done", "0_FedAvg", "running", "120 s", "0.8125"):
        assert cell in text
