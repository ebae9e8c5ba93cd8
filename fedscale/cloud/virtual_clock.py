"""The simulation's virtual clock: the virtual time, in seconds since the job began, and the round.

Virtual time is the time the simulated deployment would have taken (DESIGN.md, "Virtual time"),
not the wall time the simulator takes. The aggregator owns the clock and alone moves it: each
round starts at the first time an eligible client is online and lasts as long as the round's
plan says. Event logs read the clock to stamp every line; an executor's clock only follows the
round of the task it serves and keeps virtual time 0.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class VirtualClock:
    """The current virtual time (seconds) and round (0 before the first)."""

    time: float = 0.0
    round: int = 0

    def start_round(self, round_index: int) -> None:
        """Round ``round_index`` begins; the time does not move."""
        self.round = round_index

    def advance_to(self, time: float) -> None:
        """Move to virtual time ``time`` (no earlier than now)."""
        if not time >= self.time:
            raise ValueError(f"the virtual clock cannot move from {self.time} back to {time}")
        self.time = time

    def advance_by(self, seconds: float) -> None:
        """Move ``seconds`` (>= 0) forward."""
        self.advance_to(self.time + seconds)
