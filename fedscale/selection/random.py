"""Uniform random participant selection: the baseline every other policy is measured against."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fedscale.selection.base import Feedback, Selector, SelectorState, WindowSource
from fedscale.selection.config import SelectorConfig


class RandomSelector(Selector):
    """Draws participants uniformly without replacement from the online clients; learns nothing."""

    def __init__(self, config: SelectorConfig, seed: int) -> None:
        super().__init__(config, seed)
        self.rng = np.random.default_rng(seed)

    def register_clients(self, client_ids: np.ndarray, num_samples: np.ndarray, durations: np.ndarray, *,
                         static: Mapping[str, Any] | None = None, window_source: WindowSource | None = None) -> None:
        """Nothing to remember: every online client is equally likely."""

    def select_participants(self, num: int, cur_time: float, online_ids: np.ndarray) -> list[int]:
        take = min(num, len(online_ids))
        return sorted(int(c) for c in self.rng.choice(online_ids, size=take, replace=False))

    def register_feedback(self, feedback: Feedback) -> None:
        """Feedback does not change a uniform draw."""

    def state(self) -> SelectorState:
        """The generator's state: a uniform draw remembers nothing else."""
        return {"rng": self.rng.bit_generator.state}

    def restore(self, state: SelectorState) -> None:
        self.rng.bit_generator.state = state["rng"]
