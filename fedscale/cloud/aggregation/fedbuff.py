"""FedBuff on the virtual clock: who trains from which model version, when their updates count,
and how much.

Nguyen, Malik, Zhan, Yousefpour, Rabbat, Malek & Huba, "Federated Learning with Buffered
Asynchronous Aggregation", AISTATS 2022 (FedBuff). Up to ``C`` clients (``max_concurrency``)
train at once, each from the global model version ``v`` current when it starts. When it finishes,
the server holds version ``t`` and the update's staleness is ``τ = t - v``. Updates with
``τ <= max_staleness`` join the server's buffer, staler ones are discarded; at the ``K``-th
buffered update (``num_participants``, also named ``async_buffer``) the server takes one
aggregation step, the paper's Algorithm 1 (the buffered updates summed, divided by ``K``, applied
by the server optimiser) with each update scaled by its staleness function:

    s(τ) = 1 / sqrt(1 + τ)
    Δ = Σ_i n_i s(τ_i) Δ_i / Σ_i n_i
    w_{t+1} = step(w_t, Δ)

``n_i`` is client i's sample count, the weight of the synchronous rounds' FedAvg mean (equal
counts give the paper's ``1/K``), and ``step`` the job's server algorithm (fed-avg adds ``Δ``;
the paper's server learning rate is that of fed-avgm or fed-yogi). FedScale's AsyncAggregator
divides by ``Σ_i s(τ_i)`` instead, so a stale buffer there moves the model as far as a fresh one;
here, as in the paper, it moves it less.

``BufferSchedule`` is the server's side of it on the virtual clock, with no process or network:
clients start (``start``), finish in virtual-time order (``finish``; ties by start order), join
the buffer if ``fresh`` (``add``), and a full buffer is emptied by one aggregation step
(``close_step``). A client takes part at most once per step: while it trains, and once it has
finished within the step, it is ``busy``, so each buffered update comes from a distinct client
and each client trains at most once from each model version.
"""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import numpy as np

__all__ = ["BufferSchedule", "Launch", "admitted", "staleness_weights"]


def staleness_weights(staleness: np.ndarray) -> np.ndarray:
    """FedBuff's staleness scaling ``s(τ) = 1 / sqrt(1 + τ)`` of each update's staleness ``τ >= 0``."""
    return 1.0 / np.sqrt(1.0 + np.asarray(staleness, dtype=np.float64))


def admitted(staleness: np.ndarray, max_staleness: int) -> np.ndarray:
    """Which updates join the buffer: those no staler than ``max_staleness`` (the others are discarded)."""
    return np.asarray(staleness) <= max_staleness


@dataclass(frozen=True)
class Launch:
    """One client's training: the job's ``seq``-th start, of ``client`` from model ``version`` at
    virtual time ``start``, taking ``times`` (download, compute, upload seconds); ``delivers``
    is whether its device is still there to upload when it finishes (the job's time model)."""

    seq: int
    client: int
    version: int
    start: float
    times: tuple[float, float, float]
    delivers: bool

    @property
    def duration(self) -> float:
        return self.times[0] + self.times[1] + self.times[2]

    @property
    def finish(self) -> float:
        return self.start + self.duration


class BufferSchedule:
    """FedBuff's server state: the model version, up to ``concurrency`` clients training, the
    clients done in the current step, and the buffer that ``buffer`` updates fill."""

    def __init__(self, concurrency: int, buffer: int, max_staleness: int) -> None:
        self.concurrency = concurrency
        self.buffer = buffer
        self.max_staleness = max_staleness
        self.version = 0
        self.buffered: list[tuple[Launch, int]] = []
        self._running: list[tuple[float, int, Launch]] = []
        self._done: set[int] = set()
        self._seq = itertools.count()

    @property
    def free_slots(self) -> int:
        return self.concurrency - len(self._running)

    @property
    def training(self) -> int:
        """Clients training now."""
        return len(self._running)

    @property
    def full(self) -> bool:
        return len(self.buffered) >= self.buffer

    def busy(self) -> np.ndarray:
        """The clients that cannot start now, ascending: those training and those done in this step."""
        return np.array(sorted(self._done.union(entry[2].client for entry in self._running)), dtype=np.int64)

    def start(self, client: int, start: float, times: tuple[float, float, float], delivers: bool) -> Launch:
        """``client`` starts at ``start`` from the current version, in a free slot."""
        if not self.free_slots:
            raise ValueError(f"no free slot for client {client}: {self.concurrency} are training")
        launch = Launch(next(self._seq), client, self.version, start, times, delivers)
        heapq.heappush(self._running, (launch.finish, launch.seq, launch))
        return launch

    def next_finish(self) -> Launch | None:
        """The training that ends first (None if none is running)."""
        return self._running[0][2] if self._running else None

    def finish(self) -> Launch:
        """End the training that ends first; its client is done for this step."""
        launch = heapq.heappop(self._running)[2]
        self._done.add(launch.client)
        return launch

    def staleness(self, launch: Launch) -> int:
        """Model versions taken since ``launch`` started."""
        return self.version - launch.version

    def fresh(self, launch: Launch) -> bool:
        """Whether ``launch``'s update may join the buffer now (``admitted``)."""
        return bool(admitted(self.staleness(launch), self.max_staleness))

    def add(self, launch: Launch) -> None:
        """Buffer the update of ``launch``, a fresh one that finished."""
        if not self.fresh(launch) or launch.client not in self._done:
            raise ValueError(f"client {launch.client}'s update cannot join the buffer")
        self.buffered.append((launch, self.staleness(launch)))

    def close_step(self) -> list[tuple[Launch, int]]:
        """Empty the full buffer into one aggregation step (the model's next version); its updates
        with their staleness, in the order they arrived."""
        if not self.full:
            raise ValueError(f"the buffer holds {len(self.buffered)} of {self.buffer} updates")
        step, self.buffered = self.buffered, []
        self._done.clear()
        self.version += 1
        return step
