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
from dataclasses import dataclass
from typing import Any

import numpy as np

STALENESS_WEIGHT = 0.1
PACER_MODES = ("paper", "fedscale")
T_MODES = ("percentile", "absolute")
PLATEAU = 0.1
SWING = 5.0


@dataclass(frozen=True)
class OortConfig:
    """Oort's knobs with the paper's defaults (§4.2 and the §7 setup); job_conf keys map onto them by name.

    ``exploration_factor``/``exploration_decay``/``exploration_min``: epsilon starts at 0.9 and
    is multiplied by 0.98 each round down to 0.2 (Algorithm 1). ``round_penalty`` is alpha of
    Eq. (2). ``cut_off_util`` is c: explored clients with utility >= c x the boundary utility are
    admitted (Algorithm 1). ``clip_bound`` is the quantile at which rewards are clipped and
    ``blacklist_rounds``/``blacklist_max_len`` exclude clients picked more than that many times,
    at most that fraction of the fleet (§4.3); -1 turns the blacklist off. ``pacer_step`` is W,
    ``pacer_delta`` is Delta, ``pacer_mode`` picks the relax rule (module docstring).
    ``t_mode``/``round_threshold`` give the initial T: a percentile of the clients' durations or
    seconds. ``sample_window``: unexplored clients considered per exploration pick.
    """

    exploration_factor: float = 0.9
    exploration_decay: float = 0.98
    exploration_min: float = 0.2
    round_penalty: float = 2.0
    cut_off_util: float = 0.95
    clip_bound: float = 0.95
    blacklist_rounds: int = -1
    blacklist_max_len: float = 0.3
    pacer_step: int = 20
    pacer_delta: float = 5.0
    pacer_mode: str = "paper"
    t_mode: str = "percentile"
    round_threshold: float = 30.0
    sample_window: float = 5.0

    def __post_init__(self) -> None:
        self._require_number("exploration_factor", 0, 1)
        self._require_number("exploration_decay", 0, 1, above=True)
        self._require_number("exploration_min", 0, self.exploration_factor)
        self._require_number("round_penalty", 0)
        self._require_number("cut_off_util", 0, 1)
        self._require_number("clip_bound", 0, 1, above=True)
        self._require_number("blacklist_rounds", -1, integer=True)
        self._require("blacklist_rounds", self.blacklist_rounds != 0, "-1 (off) or a positive integer")
        self._require_number("blacklist_max_len", 0, 1)
        self._require_number("pacer_step", 1, integer=True)
        self._require_number("pacer_delta", 0)
        self._require("pacer_mode", self.pacer_mode in PACER_MODES, f"one of {PACER_MODES}")
        self._require("t_mode", self.t_mode in T_MODES, f"one of {T_MODES}")
        if self.t_mode == "percentile":
            self._require_number("round_threshold", 0, 100)
        else:
            self._require_number("round_threshold", 0, above=True)
        self._require_number("sample_window", 1)

    def _require(self, name: str, ok: bool, rule: str) -> None:
        """Raise a ValueError naming the field, its value and the rule it breaks."""
        if not ok:
            raise ValueError(f"{type(self).__name__}.{name} = {getattr(self, name)!r}: must be {rule}")

    def _require_number(self, name: str, low: float = -math.inf, high: float = math.inf, *,
                        above: bool = False, below: bool = False, integer: bool = False) -> None:
        """Require a finite number (an integer if ``integer``) between low and high, each bound
        inclusive unless ``above`` (excludes low) or ``below`` (excludes high)."""
        value = getattr(self, name)
        kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
        ok = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (value > low if above else value >= low) and (value < high if below else value <= high)
        interval = f"{'(' if above else '['}{low:g}, {high:g}{')' if below or high == math.inf else ']'}"
        self._require(name, ok, f"{'an integer' if integer else 'a number'} in {interval}")


def as_ids(values: Any, name: str) -> np.ndarray:
    """``values`` as a 1-D int64 array of client ids; a ValueError if they are not integers."""
    ids = np.asarray(values)
    if ids.size == 0:
        return np.empty(0, dtype=np.int64)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D array of integer client ids, got {ids.dtype} of shape {ids.shape}")
    return ids.astype(np.int64, copy=False)


class OortSelector:
    """Oort's participant selection (§4, Algorithm 1) over a fleet held in arrays indexed by client id.

    Fleet arrays (length = largest registered id + 1, grown by doubling): ``registered``,
    ``num_samples``, ``profiled_duration`` (seconds for one round, given at registration),
    ``duration`` (latest observed, else profiled), ``reward`` (latest statistical utility),
    ``last_round`` (L_i, round of the latest feedback), ``picks`` (times selected),
    ``explored`` and ``exploited_in`` (round in which the client was last picked by exploitation).
    Each ``select_participants`` call is the next round R = 1, 2, ...; everything is a function
    of the seed and the calls made.
    """

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

    def __init__(self, config: OortConfig, seed: int) -> None:
        self.config = config
        self.round = 0
        self.epsilon = float(config.exploration_factor)
        self.round_threshold = float(config.round_threshold)
        self._rng = np.random.default_rng(seed)
        self._num_registered = 0
        self._round_reward_sum = [0.0]
        self._round_reward_count = [0]
        self._pacer_moves = 0
        self._last: dict[str, Any] = {}
        for name, dtype, fill in self._FLEET_ARRAYS:
            setattr(self, name, np.full(0, fill, dtype=dtype))

    def register_client(self, client_id: int, static_info: dict[str, Any]) -> None:
        """Register one client from ``static_info["num_samples"]`` and ``static_info["duration"]``."""
        self.register_clients(np.array([client_id]), np.array([static_info["num_samples"]]),
                              np.array([static_info["duration"]], dtype=np.float64))

    def register_clients(self, client_ids: np.ndarray, num_samples: np.ndarray, durations: np.ndarray) -> None:
        """Register many clients at once; a client registered again starts afresh, unexplored.

        ``durations`` are profiled seconds for one round on each client's device: they rank
        unexplored clients for exploration (Algorithm 1, "sample by speed") and stand in for
        ``t_i`` of Eq. (2) until the client reports a duration of its own.
        """
        ids = as_ids(client_ids, "client_ids")
        samples = np.asarray(num_samples, dtype=np.int64)
        seconds = np.asarray(durations, dtype=np.float64)
        if samples.shape != ids.shape or seconds.shape != ids.shape:
            raise ValueError(f"client_ids, num_samples and durations differ in shape: "
                             f"{ids.shape}, {samples.shape}, {seconds.shape}")
        if ids.size == 0:
            return
        if ids.min() < 0:
            raise ValueError(f"client ids must be >= 0, got {int(ids.min())}")
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
        self._round_reward_sum.append(0.0)
        self._round_reward_count.append(0)
        move = self._pace()
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
            "blacklist_size": len(excluded), "pacer_move": move, "pacer_moves": self._pacer_moves,
        }
        self.epsilon = max(self.epsilon * self.config.exploration_decay, self.config.exploration_min)
        return picked.tolist()

    def register_feedback(self, client_id: int, reward: float, time_stamp: int, duration: float,
                          success: bool, **extra: Any) -> None:
        """Fold in one client's outcome of round ``time_stamp`` (1-based).

        ``reward`` is the statistical utility of Eq. (1) and ``duration`` the seconds the round
        took on the client (t_i of Eq. (2)); a non-finite value (or a non-positive duration)
        leaves the previous one in place, so a failure can omit what it did not measure. The
        client becomes explored and L_i = ``time_stamp``. Successful feedback of clients picked
        by exploitation in that round feeds the pacer. ``extra`` is for subclasses.
        """
        cid = int(self._check_registered(np.array([client_id]))[0])
        if isinstance(time_stamp, bool) or not isinstance(time_stamp, (int, np.integer)) or time_stamp < 1:
            raise ValueError(f"time_stamp must be a round index >= 1, got {time_stamp!r}")
        if math.isfinite(reward):
            self.reward[cid] = reward
        if math.isfinite(duration) and duration > 0:
            self.duration[cid] = duration
        self.last_round[cid] = time_stamp
        self.explored[cid] = True
        if success and math.isfinite(reward) and self.exploited_in[cid] == time_stamp:
            self._round_reward_sum[time_stamp] += reward
            self._round_reward_count[time_stamp] += 1

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

    def _pace(self) -> dict[str, Any] | None:
        """The pacer (§4.2): after every W completed rounds from 2W on, maybe move the threshold.

        A and B are the sums, over the last W rounds and the W before, of each round's mean
        reward of successful exploited clients. Paper: relax when A < B. FedScale: relax when
        |A - B| <= 0.1 B, tighten when |A - B| >= 5 B. Relaxing adds Delta (capped at 100 in
        percentile mode); tightening subtracts it, never below Delta.
        """
        window, done = self.config.pacer_step, self.round - 1
        if done < 2 * window or done % window:
            return None
        means = [total / count if count else 0.0 for total, count in
                 zip(self._round_reward_sum[done - 2 * window + 1:done + 1],
                     self._round_reward_count[done - 2 * window + 1:done + 1])]
        previous, recent = sum(means[:window]), sum(means[window:])
        change = abs(recent - previous)
        if self.config.pacer_mode == "paper":
            direction = 1 if recent < previous else 0
        else:
            direction = 1 if change <= PLATEAU * previous else -1 if change >= SWING * previous else 0
        old, delta = self.round_threshold, self.config.pacer_delta
        new = old + delta if direction > 0 else max(old - delta, min(old, delta)) if direction < 0 else old
        if self.config.t_mode == "percentile":
            new = min(new, 100.0)
        if new == old:
            return None
        self.round_threshold = new
        self._pacer_moves += 1
        return {"round": self.round, "from": old, "to": new, "recent": recent, "previous": previous}

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
