"""The pacer: a threshold moved by comparing the utility of the last window of rounds with the one before.

Lai et al., "Oort", OSDI 2021, §4.2 (Algorithm 1): every W rounds, from 2W on, A and B are the
sums over the last W rounds and the W before of each round's mean utility; the paper relaxes the
preferred round duration by Delta when A < B (``relax_on_fall``). The authors' artifact
(SymbioticLab/Oort ``oort/oort.py``) and FedScale's copy instead relax when ``|A - B| <= 0.1 B``
and tighten when ``|A - B| >= 5 B`` (``relax_on_plateau``); tightening never goes below Delta nor
raises the threshold. Oort paces its duration threshold, Bliss (Bossbap/Bliss) its round-time
budget. The paper's windows count rounds from 1; the references' utility history starts with an
empty round 0, so their decisions fall in rounds 2W, 3W, ... and their first "previous" window
holds round 0 (``origin=0``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

PLATEAU = 0.1
SWING = 5.0

Rule = Callable[[float, float], int]


def relax_on_fall(recent: float, previous: float) -> int:
    """The paper's rule: +1 (relax) when the recent window's utility is below the previous one's, else 0."""
    return 1 if recent < previous else 0


def relax_on_plateau(recent: float, previous: float) -> int:
    """The artifact's rule: +1 on a plateau (change <= 10% of previous), -1 on a swing (>= 5x), else 0."""
    change = abs(recent - previous)
    return 1 if change <= PLATEAU * previous else -1 if change >= SWING * previous else 0


def moved(value: float, direction: int, delta: float, cap: float = math.inf) -> float:
    """``value`` relaxed by ``+delta`` (at most ``cap``) or tightened by ``-delta``, never below
    ``delta`` nor raised by tightening, per the sign of ``direction``."""
    new = value + delta if direction > 0 else max(value - delta, min(value, delta)) if direction < 0 else value
    return min(new, cap)


class Pacer:
    """A threshold (``value``) paced by per-round utilities, rounds numbered 1, 2, ...

    ``start_round(r)`` opens round r and may move the value; ``record(r, utilities)`` adds round
    r's utilities (summed in the order given). A round's utility is their mean, 0 if none. With
    ``needs_base`` nothing moves while the earlier window's sum is not positive (Bliss). ``origin``
    is the first round the windows count: 1 (the paper), or 0, an empty round (the references).
    """

    def __init__(self, value: float, step: int, delta: float, rule: Rule, *, cap: float = math.inf,
                 needs_base: bool = False, origin: int = 1) -> None:
        self.value = value
        self.moves = 0
        self.step, self.delta, self.rule, self.cap, self.needs_base = step, delta, rule, cap, needs_base
        self.origin = origin
        self._sums = [0.0]
        self._counts = [0]

    def record(self, round_index: int, utilities: np.ndarray) -> None:
        """Add round ``round_index``'s utilities, left to right."""
        if len(utilities):
            total = np.cumsum(np.concatenate(([self._sums[round_index]], utilities)))[-1]
            self._sums[round_index] = float(total)
            self._counts[round_index] += len(utilities)

    def start_round(self, round_index: int) -> dict[str, Any] | None:
        """Open round ``round_index``; after every ``step`` rounds counted from ``origin``, from ``2 step``
        on, compare the last two windows and maybe move the value. The move (round, from, to, recent,
        previous) or None."""
        self._sums.append(0.0)
        self._counts.append(0)
        window, done = self.step, round_index - 1
        counted = round_index - self.origin
        if counted < 2 * window or counted % window:
            return None
        span = slice(done - 2 * window + 1, done + 1)
        means = [total / count if count else 0.0 for total, count in zip(self._sums[span], self._counts[span])]
        previous, recent = sum(means[:window]), sum(means[window:])
        if self.needs_base and previous <= 0:
            return None
        old = self.value
        new = moved(old, self.rule(recent, previous), self.delta, self.cap)
        if new == old:
            return None
        self.value = new
        self.moves += 1
        return {"round": round_index, "from": old, "to": new, "recent": recent, "previous": previous}

    def state(self) -> dict[str, Any]:
        """The value, the moves so far and the per-round sums and counts, for a checkpoint."""
        return {"value": self.value, "moves": self.moves, "sums": np.array(self._sums, dtype=np.float64),
                "counts": np.array(self._counts, dtype=np.int64)}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what ``state`` returned."""
        self.value, self.moves = float(state["value"]), int(state["moves"])
        self._sums, self._counts = np.asarray(state["sums"]).tolist(), np.asarray(state["counts"]).tolist()
