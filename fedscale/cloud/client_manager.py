"""The client fleet as the aggregator sees it: who exists, how much data each holds, who is picked.

Until device traces are configured every client is the same reference device and always
online, and participants are drawn uniformly at random without replacement from the clients
that hold at least one sample. The draw uses the job's seed, so a job picks the same clients
every time it runs.
"""
from __future__ import annotations

import numpy as np

REFERENCE_COMPUTE_SECONDS_PER_SAMPLE = 0.02
REFERENCE_BANDWIDTH_BYTES_PER_SECOND = 10e6 / 8


class ClientManager:
    """Registered clients (ids ``0..n-1``) with their sample counts, and the selection policy."""

    def __init__(self, sample_counts: np.ndarray, seed: int) -> None:
        self.sample_counts = np.asarray(sample_counts, dtype=np.int64)
        self.eligible = np.flatnonzero(self.sample_counts > 0)
        self.rng = np.random.default_rng(seed)

    @property
    def num_clients(self) -> int:
        return len(self.sample_counts)

    def select_participants(self, num: int, cur_time: float) -> list[int]:
        """``num`` distinct eligible clients, uniformly at random, in ascending id order."""
        if num > len(self.eligible):
            raise ValueError(f"num_participants={num} but only {len(self.eligible)} clients hold data")
        return sorted(int(c) for c in self.rng.choice(self.eligible, size=num, replace=False))

    def get_completion_time(self, client_ids: list[int], batch_size: int, local_steps: int,
                            model_bytes: int) -> np.ndarray:
        """Virtual seconds each client needs to download, train and upload on the reference device."""
        compute = local_steps * batch_size * REFERENCE_COMPUTE_SECONDS_PER_SAMPLE
        transfer = 2 * model_bytes / REFERENCE_BANDWIDTH_BYTES_PER_SECOND
        return np.full(len(client_ids), compute + transfer)
