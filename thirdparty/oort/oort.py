"""Oort's training-participant selector, with the whole fleet held in numpy arrays.

Lai, Zhu, Madhyastha, Chowdhury, "Oort: Efficient Federated Learning via Guided Participant
Selection", OSDI 2021. Oort treats selection as a multi-armed bandit: a client's reward is its
statistical utility (how much its data would move the model) discounted by how much it would
lengthen the round, and an epsilon-greedy split keeps trying clients never seen before.

Where each rule comes from in the paper (section and equation numbers to the best of our
reading; every rule was cross-checked against the authors' artifact, SymbioticLab/Oort
``oort/oort.py``, and FedScale's copy, ``thirdparty/oort/oort.py``):

- §4.1, Eq. (1): statistical utility ``U_i = |B_i| sqrt((1/|B_i|) sum_{k in B_i} Loss(k)^2)``.
  The caller computes it and hands it in as ``reward``.
- §4.1, Eq. (2): ``Util_i = U_i x (T / t_i)^(alpha x 1[t_i > T])``: clients slower than the
  preferred round duration ``T`` are penalised polynomially, faster ones not at all.
- §4.2, Algorithm 1: the staleness (temporal-uncertainty) bonus ``sqrt(0.1 ln R / L_i)``;
  the epsilon-greedy split, decayed each round down to a floor; admission of every explored
  client within a factor ``c`` of the exploitation boundary, then sampling by utility;
  exploration of unexplored clients by speed; the pacer, which relaxes ``T`` by ``Delta`` when
  the utility accumulated over the last ``W`` rounds falls below that of the ``W`` before.
- §4.3: robustness to outliers: utilities clipped at an upper percentile (95th), clients picked
  too often excluded (blacklist). §7.2.3 evaluates alpha (Fig. 14) and outliers (Fig. 15).

Choices beyond the paper, and why:

- Clipped utilities are divided by the clip value, so they lie in [0, 1] before the staleness
  bonus is added: a UCB bonus of order one would vanish next to raw rewards in the thousands.
  Dividing (rather than FedScale's min-max shift) keeps the ratios between clients. Negative
  rewards (possible when clients add privacy noise) count as zero.
- ``T`` is either FedScale's percentile of the registered clients' latest durations
  (``t_mode="percentile"``, the pacer moving the percentile) or the paper's seconds
  (``t_mode="absolute"``). The pacer rule is the paper's (relax on a fall) or FedScale's (relax
  on a plateau, tighten on a swing), by ``pacer_mode``.
- The pacer's per-round quantity is the mean reward of that round's successful exploited
  clients (FedScale's quantity). A mean rather than a sum, so that the exploitation share
  growing as epsilon decays does not by itself read as rising utility.
- A client is explored once it has given feedback, successful or not; its pick count (for the
  blacklist) grows when it is selected.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, get_args

import numpy as np
from pydantic import Field, model_validator

from fedscale.selection.base import Feedback, Selector, WindowSource
from fedscale.selection.config import ExplorationConfig, PacerConfig, PenaltyConfig
from fedscale.selection.pacer import Pacer, relax_on_fall, relax_on_plateau
from fedscale.selection.registration import as_ids, check_registration

STALENESS_WEIGHT = 0.1
PacerMode = Literal["paper", "fedscale"]
TMode = Literal["percentile", "absolute"]
PACER_RULES = dict(zip(get_args(PacerMode), (relax_on_fall, relax_on_plateau)))
T_MODES: tuple[str, ...] = get_args(TMode)


class OortConfig(ExplorationConfig, PacerConfig, PenaltyConfig):
    """Oort's knobs with the paper's defaults (§4.2 and the §7 setup), each named as its job_conf key.

    Shared with other selectors: the epsilon schedule and ``cut_off_util`` (c of Algorithm 1),
    the pacer's W (``pacer_step``) and Delta (``pacer_delta``), alpha of Eq. (2)
    (``round_penalty``). Oort's own: ``clip_bound``, the quantile at which rewards are clipped,
    and ``blacklist_rounds``/``blacklist_max_len``, which exclude clients picked more than that
    many times, at most that fraction of the fleet (§4.3; -1 turns the blacklist off);
    ``pacer_mode`` picks the relax rule (module docstring); ``t_mode``/``round_threshold`` give
    the initial T, a percentile of the clients' durations or seconds; ``sample_window``:
    unexplored clients considered per exploration pick.
    """

    round_threshold: float = Field(30.0, gt=0, description=(
        "Oort: initial preferred round duration T: a percentile of the clients' durations (t_mode "
        "percentile) or seconds (t_mode absolute)."))
    t_mode: TMode = Field("percentile", description="Oort: unit of round_threshold and pacer_delta.")
    clip_bound: float = Field(0.95, gt=0, le=1, description="Oort: quantile at which outlier client utilities are clipped.")
    blacklist_rounds: int = Field(-1, description="Oort: exclude a client once picked more than this many times (-1: never).")
    blacklist_max_len: float = Field(0.3, ge=0, le=1,
                                     description="Oort: largest fraction of the clients that may be excluded.")
    sample_window: float = Field(5.0, ge=1,
                                 description="Oort: unexplored candidates considered, as a multiple of those picked.")
    pacer_mode: PacerMode = Field("paper", description=(
        "Oort: relax when the window's utility falls (paper) or on a plateau, tightening on a swing (fedscale)."))

    @model_validator(mode="after")
    def _oort_rules(self) -> OortConfig:
        if self.blacklist_rounds == 0 or self.blacklist_rounds < -1:
            raise ValueError(f"blacklist_rounds: expected -1 (off) or a positive integer, got {self.blacklist_rounds}")
        if self.t_mode == "percentile" and self.round_threshold > 100:
            raise ValueError(f"round_threshold: expected at most 100 when t_mode is 'percentile', "
                             f"got {self.round_threshold}")
        return self


class OortSelector(Selector):
    """Oort's participant selection (§4, Algorithm 1) over a fleet held in arrays indexed by client id.

    Fleet arrays (length = largest registered id + 1, grown by doubling): ``registered``,
    ``num_samples``, ``profiled_duration`` (seconds for one round, given at registration),
    ``duration`` (latest observed, else profiled), ``reward`` (latest statistical utility),
    ``last_round`` (L_i, round of the latest feedback), ``picks`` (times selected),
    ``explored`` and ``exploited_in`` (round in which the client was last picked by exploitation).
    Each ``select_participants`` call is the next round R = 1, 2, ...; everything is a function
    of the seed and the calls made.
    """

    Config = OortConfig

    _FLEET_ARRAYS: tuple[tuple[str, Any, Any], ...] = (
        ("registered", np.bool_, False),
        ("num_samples", np.int64, 0),
        ("profiled_duration", np.float64, np.nan),
        ("duration", np.float64, np.nan),
        ("reward", np.float64, 0.0),
        ("last_round", np.int64, 0),
        ("picks", np.int64, 0),
        ("explored", np.bool_, False),
        ("exploited_in", np.int64, 0),
    )

    registered: np.ndarray
    num_samples: np.ndarray
    profiled_duration: np.ndarray
    duration: np.ndarray
    reward: np.ndarray
    last_round: np.ndarray
    picks: np.ndarray
    explored: np.ndarray
    exploited_in: np.ndarray

    config: OortConfig

    def __init__(self, config: OortConfig, seed: int) -> None:
        super().__init__(config, seed)
        self.round = 0
        self.epsilon = float(config.exploration_factor)
        self.pacer = Pacer(float(config.round_threshold), config.pacer_step, config.pacer_delta,
                           PACER_RULES[config.pacer_mode], cap=100.0 if config.t_mode == "percentile" else math.inf)
        self._rng = np.random.default_rng(seed)
        self._num_registered = 0
        self._last: dict[str, Any] = {}
        for name, dtype, fill in self._FLEET_ARRAYS:
            setattr(self, name, np.full(0, fill, dtype=dtype))

    @property
    def round_threshold(self) -> float:
        """T as the pacer last set it: a percentile or seconds, per ``t_mode``."""
        return self.pacer.value

    def register_clients(self, client_ids: np.ndarray, num_samples: np.ndarray, durations: np.ndarray, *,
                         static: Mapping[str, Any] | None = None, window_source: WindowSource | None = None) -> None:
        """Register many clients at once; a client registered again starts afresh, unexplored.

        ``durations`` are profiled seconds for one round on each client's device: they rank
        unexplored clients for exploration (Algorithm 1, "sample by speed") and stand in for
        ``t_i`` of Eq. (2) until the client reports a duration of its own.
        """
        ids = as_ids(client_ids, "client_ids")
        samples = np.asarray(num_samples, dtype=np.int64)
        seconds = np.asarray(durations, dtype=np.float64)
        check_registration(ids, samples, seconds)
        if ids.size == 0:
            return
        if samples.min() < 0:
            raise ValueError(f"num_samples must be >= 0, got {int(samples.min())}")
        if not np.all(np.isfinite(seconds) & (seconds > 0)):
            raise ValueError("durations must be finite and positive")
        self._reserve(int(ids.max()) + 1)
        fresh = np.sort(ids[~self.registered[ids]])
        self._num_registered += len(fresh) - int(np.count_nonzero(fresh[1:] == fresh[:-1]))
        for name, _, fill in self._FLEET_ARRAYS:
            getattr(self, name)[ids] = fill
        self.registered[ids] = True
        self.num_samples[ids] = samples
        self.profiled_duration[ids] = seconds
        self.duration[ids] = seconds

    def select_participants(self, num: int, cur_time: float, online_ids: np.ndarray) -> list[int]:
        """Pick ``num`` of the online clients for the next round (Algorithm 1), ids ascending.

        Candidates are the registered, non-blacklisted ``online_ids`` (unknown ids are ignored);
        if there are at most ``num`` of them, all are returned. Otherwise
        ``floor((1 - epsilon) num)`` are exploited among the explored candidates: rank by
        ``exploitation_utility``, admit those >= ``cut_off_util`` x the utility of the
        boundary (the n-th best), draw n of the admitted without replacement with probability
        proportional to utility. The other picks explore: among the unexplored candidates take
        the ``ceil(sample_window x n)`` fastest by profiled duration, then draw n of them
        without replacement with probability proportional to speed (1 / duration). A side
        short of candidates hands its share to the other. Before picking, the pacer may move T
        (§4.2); after, epsilon decays. ``cur_time`` (virtual seconds) is not used: Oort counts
        rounds.
        """
        if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 0:
            raise ValueError(f"num must be a non-negative integer, got {num!r}")
        self.round += 1
        move = self.pacer.start_round(self.round)
        preferred = self.preferred_duration()
        excluded = self.blacklist()
        candidates = self._candidates(online_ids, excluded)
        seen = self.explored[candidates]
        explored, unexplored = candidates[seen], candidates[~seen]
        if len(candidates) <= num:
            exploit, explore, admitted = explored, unexplored, len(explored)
        else:
            wanted = min(math.floor((1.0 - self.epsilon) * num + 1e-9), len(explored))
            n_explore = min(num - wanted, len(unexplored))
            exploit, admitted = self._exploit(explored, num - n_explore, preferred)
            explore = self._explore(unexplored, n_explore)
        picked = np.sort(np.concatenate([exploit, explore]))
        self.picks[picked] += 1
        self.exploited_in[exploit] = self.round
        self._last = {
            "round": self.round, "epsilon": self.epsilon,
            "preferred_duration": preferred if math.isfinite(preferred) else None,
            "round_threshold": self.round_threshold, "t_mode": self.config.t_mode,
            "num_candidates": len(candidates), "num_exploited": len(exploit), "num_explored": len(explore),
            "num_admitted": admitted, "explored_total": int(np.count_nonzero(self.explored)),
            "blacklist_size": len(excluded), "pacer_move": move, "pacer_moves": self.pacer.moves,
        }
        self.epsilon = max(self.epsilon * self.config.exploration_decay, self.config.exploration_min)
        return picked.tolist()

    def register_feedback(self, feedback: Feedback) -> None:
        """Fold in a batch of outcomes of round ``feedback.round_index``.

        ``rewards`` are the statistical utility of Eq. (1) and ``durations`` the seconds the
        round took on each client (t_i of Eq. (2)); a non-finite value (or a non-positive
        duration) leaves the previous one in place, so a failure can omit what it did not
        measure. The clients become explored with L_i = the round. Successful feedback of
        clients picked by exploitation in that round feeds the pacer.
        """
        ids = self._check_registered(feedback.client_ids)
        rewards, durations, stamp = feedback.rewards, feedback.durations, feedback.round_index
        measured = np.isfinite(rewards)
        self.reward[ids[measured]] = rewards[measured]
        timed = np.isfinite(durations) & (durations > 0)
        self.duration[ids[timed]] = durations[timed]
        self.last_round[ids] = stamp
        self.explored[ids] = True
        self.pacer.record(stamp, rewards[feedback.success & measured & (self.exploited_in[ids] == stamp)])

    def details(self) -> dict[str, Any]:
        """Facts about the last selection for the round log (JSON-serialisable; empty before the first).

        ``epsilon`` and ``preferred_duration`` (T in seconds, None when unbounded) as used;
        ``round_threshold`` (percentile or seconds, per ``t_mode``); candidate, exploited,
        explored and admitted counts; ``explored_total`` (clients explored so far);
        ``blacklist_size``; ``pacer_move`` (this round's move of the threshold, or None) and
        ``pacer_moves`` (moves so far).
        """
        return dict(self._last)

    def preferred_duration(self) -> float:
        """T of Eq. (2) in seconds: ``round_threshold`` itself, or that percentile of durations.

        In percentile mode T is the duration at index ``min(floor(n p / 100), n - 1)`` of the
        n registered clients' latest durations sorted ascending (FedScale's rule), and unbounded
        once the pacer has taken p to 100.
        """
        if self.config.t_mode == "absolute":
            return self.round_threshold
        if self.round_threshold >= 100 or self._num_registered == 0:
            return math.inf
        durations = self.duration if self._num_registered == len(self.registered) else self.duration[self.registered]
        index = min(int(len(durations) * self.round_threshold / 100), len(durations) - 1)
        return float(np.partition(durations, index)[index])

    def blacklist(self) -> np.ndarray:
        """Clients excluded for having been picked more than ``blacklist_rounds`` times (§4.3).

        At most ``floor(blacklist_max_len x registered)`` of them, the most picked first (ties:
        lower id first), so the blacklist can never swallow the fleet.
        """
        limit = self.config.blacklist_rounds
        if limit < 0:
            return np.empty(0, dtype=np.int64)
        over = np.flatnonzero(self.picks > limit)
        cap = int(self.config.blacklist_max_len * self._num_registered)
        if len(over) > cap:
            over = np.sort(over[np.argsort(-self.picks[over], kind="stable")[:cap]])
        return over

    def exploitation_utility(self, client_ids: np.ndarray, round_index: int, preferred: float) -> np.ndarray:
        """Util_i of explored clients at round R = ``round_index`` under T = ``preferred``.

        Rewards are clipped at the ``clip_bound`` quantile of these clients' rewards (the
        ``ceil(clip_bound x n)``-th smallest; §4.3) and divided by it; the staleness bonus
        ``sqrt(0.1 ln R / L_i)`` is added (§4.2, Algorithm 1); the sum is multiplied by
        ``(T / t_i)^alpha`` for clients slower than T (Eq. (2)).
        """
        ids = as_ids(client_ids, "client_ids")
        if ids.size == 0:
            return np.empty(0)
        rewards = self.reward[ids]
        rank = min(max(math.ceil(self.config.clip_bound * len(ids) - 1e-9) - 1, 0), len(ids) - 1)
        clip = float(np.partition(rewards, rank)[rank])
        statistical = np.clip(rewards, 0.0, clip) / clip if clip > 0 else np.zeros(len(ids))
        utility = statistical + np.sqrt(STALENESS_WEIGHT * math.log(round_index) / self.last_round[ids])
        durations = self.duration[ids]
        slow = durations > preferred
        utility[slow] *= (preferred / durations[slow]) ** self.config.round_penalty
        return utility

    def _candidates(self, online_ids: np.ndarray, excluded: np.ndarray) -> np.ndarray:
        """Registered, non-excluded online ids, unique and ascending (independent of input order)."""
        ids = as_ids(online_ids, "online_ids")
        ids = ids[(ids >= 0) & (ids < len(self.registered))]
        mask = np.zeros(len(self.registered), dtype=bool)
        mask[ids] = True
        mask &= self.registered
        mask[excluded] = False
        return np.flatnonzero(mask)

    def _exploit(self, ids: np.ndarray, n: int, preferred: float) -> tuple[np.ndarray, int]:
        """n explored clients by cut-off admission and utility-proportional sampling; and how many were admitted."""
        if n == 0:
            return np.empty(0, dtype=np.int64), 0
        utility = self.exploitation_utility(ids, self.round, preferred)
        boundary = np.partition(utility, len(utility) - n)[len(utility) - n]
        admitted = utility >= self.config.cut_off_util * boundary
        return ids[admitted][self._sample(utility[admitted], n)], int(np.count_nonzero(admitted))

    def _explore(self, ids: np.ndarray, n: int) -> np.ndarray:
        """n unexplored clients: the sample_window x n fastest, then sampled proportionally to speed."""
        if n == 0:
            return np.empty(0, dtype=np.int64)
        seconds = self.profiled_duration[ids]
        window = min(len(ids), math.ceil(self.config.sample_window * n - 1e-9))
        if window < len(ids):
            fastest = np.argpartition(seconds, window - 1)[:window]
            ids, seconds = ids[fastest], seconds[fastest]
        return ids[self._sample(1.0 / seconds, n)]

    def _sample(self, weights: np.ndarray, n: int) -> np.ndarray:
        """Indices of n weights drawn without replacement, each draw proportional to weight.

        Gumbel-top-k (Efraimidis-Spirakis): the n largest of ``log w + Gumbel noise`` have the
        law of n sequential weighted draws. Zero weights come last, uniformly among themselves.
        """
        if n >= len(weights):
            return np.arange(len(weights))
        keys = np.log(np.maximum(weights, np.finfo(np.float64).tiny)) + self._rng.gumbel(size=len(weights))
        return np.argpartition(-keys, n - 1)[:n]

    def _check_registered(self, ids: np.ndarray) -> np.ndarray:
        """``ids`` as int64, or a ValueError naming the first one that is not registered."""
        ids = as_ids(ids, "client_ids")
        known = (ids >= 0) & (ids < len(self.registered))
        known[known] = self.registered[ids[known]]
        if not known.all():
            raise ValueError(f"client {int(ids[~known][0])} is not registered")
        return ids

    def _reserve(self, size: int) -> None:
        """Grow every fleet array to at least ``size`` entries (doubling), new entries at their fill value."""
        old = len(self.registered)
        if size <= old:
            return
        new = max(size, 2 * old)
        for name, dtype, fill in self._FLEET_ARRAYS:
            grown = np.full(new, fill, dtype=dtype)
            grown[:old] = getattr(self, name)
            setattr(self, name, grown)
