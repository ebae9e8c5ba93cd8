"""Uniform random participant selection: the baseline every other policy is measured against."""
from __future__ import annotations

from typing import Any

import numpy as np


class RandomSelector:
    """Draws participants uniformly without replacement from the online clients; learns nothing."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def register_client(self, client_id: int, static_info: dict[str, Any]) -> None:
        """Nothing to remember: every online client is equally likely."""

    def register_clients(self, client_ids: np.ndarray, num_samples: np.ndarray, durations: np.ndarray) -> None:
        """Nothing to remember: every online client is equally likely."""

    def select_participants(self, num: int, cur_time: float, online_ids: np.ndarray) -> list[int]:
        take = min(num, len(online_ids))
        return sorted(int(c) for c in self.rng.choice(online_ids, size=take, replace=False))

    def register_feedback(self, client_id: int, reward: float, time_stamp: int, duration: float,
                          success: bool, **extra: Any) -> None:
        """Feedback does not change a uniform draw."""

    def details(self) -> dict[str, Any]:
        return {}
