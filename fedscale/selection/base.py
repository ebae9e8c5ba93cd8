"""The selector interface: what ClientManager calls, what a selector declares it needs, and the
typed data (one round's feedback, per-client work overrides) that crosses between them.

A selector is built as ``SelectorClass(config, seed)`` from its pydantic ``Config`` and is
deterministic given the seed. Its learned state between rounds (``state``/``restore``) is plain
data, numpy arrays and JSON values, so a job's checkpoint holds it without pickling. ClientManager reads only ``needs`` to decide what to hand over:
device metadata and a trace-window source at registration, failed clients in the feedback,
the round's time budget from ``time_budget``, per-participant work from ``client_overrides``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np

from fedscale.selection.config import SelectorConfig

STATIC_COLUMNS: tuple[str, ...] = ("brand", "model", "os_version", "ram_gb", "storage_gb", "battery_mah",
                                   "cpu_flops", "gpu_flops", "peak_throughput_mbps")
"""Device metadata columns offered to selectors that declare ``static_features``: labels for brand,
model and OS version, then RAM and storage (GB), battery (mAh), CPU and GPU FLOPS, peak Wi-Fi Mb/s."""

WindowSource = Callable[[np.ndarray, float], np.ndarray]
"""``(client_ids, t) -> [n, 5, 3]``: each client's last five trace values at or before virtual time
t, oldest first, of (bandwidth as a fraction of its nominal rate, free-CPU fraction, battery %)."""


@dataclass(frozen=True)
class Needs:
    """What a selector asks ClientManager for, beyond ids, data sizes and profiled durations.

    ``static_features``: ``STATIC_COLUMNS`` at registration. ``trace_windows``: a ``WindowSource``
    at registration. ``failure_feedback``: clients that went offline or whose executor failed are
    fed back (unsuccessful) too. ``time_budget``: the selector sets the round's budget through
    ``Selector.time_budget``. ``client_overrides``: the selector shapes each participant's work
    through ``Selector.client_overrides``.
    """

    static_features: bool = False
    trace_windows: bool = False
    failure_feedback: bool = False
    time_budget: bool = False
    client_overrides: bool = False


@dataclass(frozen=True)
class Feedback:
    """The outcome of round ``round_index`` (1-based) for a batch of distinct clients, one entry each.

    ``rewards`` is the statistical utility each reported (Oort's Eq. (1)), ``durations`` its
    seconds for the round, ``success`` whether its update was aggregated. ``gradient_norm``
    (NaN where not measured) is PyramidFL's gradient utility; ``adaptive`` says the successful
    clients trained under the time budget. Scalars are read as one-client batches.
    """

    round_index: int
    client_ids: np.ndarray
    rewards: np.ndarray
    durations: np.ndarray
    success: np.ndarray
    gradient_norm: np.ndarray = field(default_factory=lambda: np.empty(0))
    adaptive: bool = False

    def __post_init__(self) -> None:
        ids = np.atleast_1d(np.asarray(self.client_ids))
        if ids.size and (ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(f"client_ids must be a 1-D array of integer client ids, got {ids.dtype} of shape {ids.shape}")
        ids = ids.astype(np.int64)
        norms = np.full(len(ids), np.nan) if np.size(self.gradient_norm) == 0 else self.gradient_norm
        columns = {"client_ids": ids, "rewards": np.atleast_1d(np.asarray(self.rewards, dtype=np.float64)),
                   "durations": np.atleast_1d(np.asarray(self.durations, dtype=np.float64)),
                   "success": np.atleast_1d(np.asarray(self.success, dtype=bool)),
                   "gradient_norm": np.atleast_1d(np.asarray(norms, dtype=np.float64))}
        shapes = {name: column.shape for name, column in columns.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"feedback columns differ in shape: {shapes}")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("client_ids must be distinct within one round's feedback")
        index = self.round_index
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 1:
            raise ValueError(f"round_index must be a round index >= 1, got {index!r}")
        for name, column in columns.items():
            object.__setattr__(self, name, column)
        object.__setattr__(self, "round_index", int(index))


SelectorState = dict[str, Any]
"""A selector's state: names to numpy arrays, JSON values (numbers, strings, booleans, None, lists)
or nested ``SelectorState``."""

UploadDropout = Literal["topk", "layer_random"]
"""How a client drops a fraction of its update (``fedscale.cloud.execution.compression``)."""


class Overrides(NamedTuple):
    """Per-participant work for the round: local steps, the fraction of the update not uploaded,
    and how that fraction is dropped."""

    local_steps: np.ndarray
    dropout: np.ndarray
    dropout_mode: UploadDropout = "topk"


class Selector(ABC):
    """A client-selection policy over a fleet held in arrays indexed by client id.

    Subclasses set ``Config`` (a ``SelectorConfig``) and, when they need more than ids, data
    sizes and durations, ``needs``; a declared ``time_budget`` or ``client_overrides`` must be
    implemented, which is checked when the class is defined.
    """

    Config: ClassVar[type[SelectorConfig]] = SelectorConfig
    needs: ClassVar[Needs] = Needs()

    def __init__(self, config: SelectorConfig, seed: int) -> None:
        if not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} needs a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for need in ("time_budget", "client_overrides"):
            if getattr(cls.needs, need) and getattr(cls, need) is getattr(Selector, need):
                raise TypeError(f"{cls.__name__} declares needs.{need} but does not implement {need}")

    @abstractmethod
    def register_clients(self, client_ids: np.ndarray, num_samples: np.ndarray, durations: np.ndarray, *,
                         static: Mapping[str, Any] | None = None, window_source: WindowSource | None = None) -> None:
        """Register clients with their sample counts and profiled seconds for one round; ``static``
        (``STATIC_COLUMNS``) and ``window_source`` are given when ``needs`` declares them."""

    @abstractmethod
    def select_participants(self, num: int, cur_time: float, online_ids: np.ndarray) -> list[int]:
        """Up to ``num`` of the online registered clients for the next round, at virtual time ``cur_time``."""

    @abstractmethod
    def register_feedback(self, feedback: Feedback) -> None:
        """Fold in one round's outcomes for a batch of clients."""

    def details(self) -> dict[str, Any]:
        """Facts about the last selection for the round log (JSON-serialisable)."""
        return {}

    def training_data(self) -> dict[str, np.ndarray] | None:
        """Rows the selector kept to learn from, as named arrays the aggregator saves to the run
        folder at the end of the job (``np.savez``); None when it keeps none (the default)."""
        return None

    def state(self) -> SelectorState:
        """Everything the selector learned and drew so far (its random generator's state included),
        such that ``restore`` on a selector built from the same config, seed and registration makes
        the next calls return what this one's would."""
        raise NotImplementedError(f"{type(self).__name__} does not implement state() and restore(), "
                                  f"so a job using it cannot be checkpointed (set save_checkpoint: false)")

    def restore(self, state: SelectorState) -> None:
        """Take back what ``state`` returned (after ``register_clients``, before the next selection)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement state() and restore()")

    @property
    def time_budget(self) -> float | None:
        """The round's time budget in seconds when ``needs.time_budget`` is declared, else None."""
        return None

    def client_overrides(self, client_ids: np.ndarray, t_comp: np.ndarray, t_comm: np.ndarray, base_steps: int,
                         batch_size: int, t_fixed: np.ndarray | None = None) -> Overrides:
        """Work of the clients that will run this round, from their compute, upload (compressible)
        and fixed seconds at ``base_steps`` steps of ``batch_size`` samples; called only when
        ``needs.client_overrides`` is declared."""
        raise NotImplementedError(f"{type(self).__name__} does not shape its clients' work")
