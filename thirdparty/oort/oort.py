"""Oort's training-participant selector, with the whole fleet held in numpy arrays.

Lai, Zhu, Madhyastha, Chowdhury, "Oort: Efficient Federated Learning via Guided Participant
Selection", OSDI 2021. Oort treats selection as a multi-armed bandit: a client's reward is its
statistical utility (how much its data would move the model) discounted by how much it would
lengthen the round, and an epsilon-greedy split keeps trying clients never seen before.

Rules common to every variant (paper section, cross-checked against both reference codes):

- §4.1, Eq. (1): statistical utility ``U_i = |B_i| sqrt((1/|B_i|) sum_{k in B_i} Loss(k)^2)``.
  The caller computes it and hands it in as ``reward``.
- §4.1, Eq. (2): ``Util_i = U_i x (T / t_i)^(alpha x 1[t_i > T])``: clients slower than the
  preferred round duration ``T`` are penalised polynomially, faster ones not at all.
- §4.2, Algorithm 1: the staleness bonus ``sqrt(0.1 ln R / L_i)`` (L_i: round of the client's
  latest feedback); the epsilon-greedy split, decayed each round down to a floor; admission of
  explored clients near the exploitation boundary, then sampling by utility; the pacer.
- §4.3: utilities clipped at an upper quantile; an optional blacklist of clients picked too often.

``oort_variant`` picks which reference the rest follows, as one coherent set of rules and
defaults (keys set explicitly still override a variant's defaults):

- ``fedscale`` (default): FedScale's copy, SymbioticLab/FedScale ``thirdparty/oort/oort.py``
  (commit 7ec441c), with ``fedscale/cloud/config_parser.py``'s defaults: epsilon x0.98 per round
  down to 0.3, decayed before use; rewards clipped at the 0.9 quantile (index ``int(0.9 n)``
  of the candidates' positive rewards, unexplored clients' priors included) and min-max
  normalised, ``(u - 0.999 min) / (max - 0.999 min)``, the score then taken as ``|score|``;
  ``n_explore = int(eps K)``; the cut-off is ``cut_off_util = 0.05`` x the score of the
  (n+1)-th best, and the pool keeps at least the ``10 n + 1`` best, so it is nearly proportional
  sampling over the top of the ranking; exploration draws among the ``int(sample_window x n)``
  unexplored clients of highest prior, ``min(samples, local_steps x batch_size)`` penalised by
  Eq. (2), proportionally to it; T the ``round_threshold`` = 30th percentile of the registered
  clients' latest durations; the pacer relaxes on a plateau and tightens on a swing, moving the
  percentile by 5 points, its windows counted from an empty round 0. Two differences: where
  FedScale, short of online unexplored clients, returns fewer than K (or, with none, re-uses the
  previous round's exploration list, which may hold clients now offline), the shortfall is
  exploited here; where it would fail (no explored client, or all of them needed, so that the
  (n+1)-th best does not exist), the last one is the boundary.
- ``artifact``: the authors' artifact, SymbioticLab/Oort ``oort/oort.py`` (commit 05a3aa1), with
  ``training/argParser.py``'s defaults: as ``fedscale`` but epsilon x0.95 down to 0.2,
  ``n_exploit = int((1 - eps) K)``, rewards clipped at the 0.98 quantile and not made absolute,
  admission of every client scoring at least ``cut_off_util = 0.7`` x the (n+1)-th best's, T
  starting at the 10th percentile; a short exploration share is topped up with clients drawn
  uniformly among the other candidates, and once no registered client is unexplored,
  exploration stops for good (epsilon and its floor set to 0).
- ``paper``: Algorithm 1 as published: T in seconds (``t_mode: absolute``) starting at Delta
  (``pacer_delta``) and relaxed by Delta when the last window's utility fell below the previous
  one's; admission within ``cut_off_util = 0.95`` of the n-th best; rewards clipped at the 95th
  percentile (the ``ceil(0.95 n)``-th smallest explored reward) and divided by it, so they lie in
  [0, 1] as the UCB bonus does (negative rewards count as 0); exploration by speed: among the
  ``int(sample_window x n)`` fastest unexplored clients by profiled duration, drawn
  proportionally to 1 / duration; epsilon 0.9, x0.98 per round after use, down to 0.2; a short
  side hands its share to the other.

In every variant the pacer's per-round quantity is the mean reward of that round's exploited
clients that gave feedback (the paper variant: successful ones only) (the references' quantity, a mean so that the exploitation share growing as
epsilon decays does not by itself read as rising utility). A client is explored once it has given
feedback, successful or not; its pick count (for the blacklist) grows when it is selected.
``exploration_alpha``, a staleness weight both references read only for a logged diagnostic, has
no effect here either.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

import numpy as np
from pydantic import Field, model_validator

from fedscale.selection.base import Feedback, Selector, SelectorState, WindowSource
from fedscale.selection.config import ExplorationConfig, PacerConfig, PenaltyConfig
from fedscale.selection.pacer import Pacer, relax_on_fall, relax_on_plateau
from fedscale.selection.registration import as_ids, check_registration

STALENESS_WEIGHT = 0.1
OortVariant = Literal["fedscale", "artifact", "paper"]
PacerMode = Literal["paper", "fedscale"]
TMode = Literal["percentile", "absolute"]
PACER_RULES = dict(zip(get_args(PacerMode), (relax_on_fall, relax_on_plateau)))
T_MODES: tuple[str, ...] = get_args(TMode)

VARIANT_DEFAULTS: dict[str, dict[str, Any]] = {
    "fedscale": {"exploration_decay": 0.98, "exploration_min": 0.3, "cut_off_util": 0.05, "clip_bound": 0.9,
                 "pacer_mode": "fedscale", "t_mode": "percentile", "round_threshold": 30.0},
    "artifact": {"exploration_decay": 0.95, "exploration_min": 0.2, "cut_off_util": 0.7, "clip_bound": 0.98,
                 "pacer_mode": "fedscale", "t_mode": "percentile", "round_threshold": 10.0},
    "paper": {"exploration_decay": 0.98, "exploration_min": 0.2, "cut_off_util": 0.95, "clip_bound": 0.95,
              "pacer_mode": "paper", "t_mode": "absolute", "round_threshold": 30.0},
}


@dataclass(frozen=True)
class VariantRules:
    """The rules an ``oort_variant`` fixes beyond its keys' defaults (module docstring).

    ``scores``: ``clip`` (clip and divide, over explored clients) or ``minmax`` (the references'
    normalisation over all candidates' positive rewards); ``absolute``: take |score| (FedScale);
    ``boundary_offset``: the cut-off is relative to the (n + offset)-th best; ``min_pool``: the
    pool keeps at least the ``min_pool x n + 1`` best (FedScale; 0: off); ``split``: whose
    formula sets the exploit/explore counts and what fills a short side; ``decay_first``: epsilon
    decays before the round uses it; ``explore_by``: ``speed`` or ``prior`` (data size,
    speed-penalised); ``pacer_origin``: first round the pacer's windows count;
    ``pacer_successes_only``: only successful exploited clients feed the pacer (the paper's
    "successful" utility; both references count every exploited client that gave feedback).
    """

    scores: Literal["clip", "minmax"]
    absolute: bool
    boundary_offset: int
    min_pool: int
    split: OortVariant
    decay_first: bool
    explore_by: Literal["speed", "prior"]
    pacer_origin: int
    pacer_successes_only: bool


VARIANT_RULES: dict[str, VariantRules] = {
    "fedscale": VariantRules("minmax", True, 1, 10, "fedscale", True, "prior", 0, False),
    "artifact": VariantRules("minmax", False, 1, 0, "artifact", True, "prior", 0, False),
    "paper": VariantRules("clip", False, 0, 0, "paper", False, "speed", 1, True),
}


class OortConfig(ExplorationConfig, PacerConfig, PenaltyConfig):
    """Oort's knobs, each named as its job_conf key; those left unset take ``oort_variant``'s default.

    Shared with other selectors: the epsilon schedule and ``cut_off_util`` (c of Algorithm 1),
    the pacer's W (``pacer_step``), alpha of Eq. (2) (``round_penalty``). Oort's own: the
    pacer's Delta (``pacer_delta``); ``oort_variant``; ``clip_bound``, the quantile at which
    rewards are clipped; ``blacklist_rounds``/``blacklist_max_len``, which exclude clients picked
    more than that many times, at most that fraction of the fleet (§4.3; -1 turns the blacklist
    off); ``pacer_mode`` (the relax rule); ``t_mode``/``round_threshold`` (the initial T, a
    percentile of the clients' durations or seconds; in seconds it defaults to ``pacer_delta``,
    T = Delta of Algorithm 1); ``sample_window`` (unexplored clients considered per exploration
    pick); ``local_steps`` x ``batch_size`` caps the data-size prior of the reference variants.
    """

    default_variant: ClassVar[str] = "fedscale"

    pacer_delta: float = Field(5.0, ge=0, description=(
        "Oort: step by which the pacer moves the preferred round duration (percentile points, or seconds when "
        "t_mode is absolute)."))
    oort_variant: OortVariant | None = Field(None, description=(
        "Oort: which reference the selection follows, with its defaults: fedscale (FedScale's thirdparty/oort), "
        "artifact (the authors' SymbioticLab/Oort code) or paper (Algorithm 1 of the OSDI'21 paper) (unset: "
        "fedscale for oort; artifact for pyramidfl, whose authors built on that code)."))
    round_threshold: float | None = Field(None, gt=0, description=(
        "Oort: initial preferred round duration T: a percentile of the clients' durations (t_mode percentile) or "
        "seconds (t_mode absolute) (unset: 30 for fedscale, 10 for artifact; pacer_delta seconds when absolute)."))
    t_mode: TMode | None = Field(None, description=(
        "Oort: unit of round_threshold and pacer_delta (unset: percentile for fedscale and artifact, absolute for "
        "paper)."))
    clip_bound: float | None = Field(None, gt=0, le=1, description=(
        "Oort: quantile at which outlier client utilities are clipped (unset: 0.9 fedscale, 0.98 artifact, 0.95 "
        "paper)."))
    blacklist_rounds: int = Field(-1, description="Oort: exclude a client once picked more than this many times (-1: never).")
    blacklist_max_len: float = Field(0.3, ge=0, le=1,
                                     description="Oort: largest fraction of the clients that may be excluded.")
    sample_window: float = Field(5.0, ge=1,
                                 description="Oort: unexplored candidates considered, as a multiple of those picked.")
    pacer_mode: PacerMode | None = Field(None, description=(
        "Oort: relax when the window's utility falls (paper) or on a plateau, tightening on a swing (fedscale) "
        "(unset: fedscale for the fedscale and artifact variants, paper for paper)."))
    local_steps: int = Field(20, ge=1, le=1_000_000, description="Local training steps per client per round.")
    batch_size: int = Field(30, ge=1, le=1_000_000, description="Training batch size.")

    @classmethod
    def selector_defaults(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """The chosen ``oort_variant``'s defaults; T in seconds starts at ``pacer_delta``."""
        variant = values.get("oort_variant") or cls.default_variant
        defaults = dict(VARIANT_DEFAULTS.get(variant, VARIANT_DEFAULTS[cls.default_variant]), oort_variant=variant)
        if (values.get("t_mode") or defaults["t_mode"]) == "absolute":
            defaults["round_threshold"] = values.get("pacer_delta", cls.model_fields["pacer_delta"].default)
        return defaults

    @model_validator(mode="after")
    def _oort_rules(self) -> OortConfig:
        if self.blacklist_rounds == 0 or self.blacklist_rounds < -1:
            raise ValueError(f"blacklist_rounds: expected -1 (off) or a positive integer, got {self.blacklist_rounds}")
        if self.t_mode == "percentile" and self.round_threshold > 100:
            raise ValueError(f"round_threshold: expected at most 100 when t_mode is 'percentile', "
                             f"got {self.round_threshold}")
        if self.round_threshold <= 0:
            raise ValueError("round_threshold: expected a number > 0 (pacer_delta, its default in seconds, is 0)")
        return self

    @property
    def rules(self) -> VariantRules:
        """The rules of ``oort_variant``."""
        return VARIANT_RULES[self.oort_variant]


class OortSelector(Selector):
    """Oort's participant selection (§4, Algorithm 1) over a fleet held in arrays indexed by client id.

    Fleet arrays (length = largest registered id + 1, grown by doubling): ``registered``,
    ``num_samples``, ``profiled_duration`` (seconds for one round, given at registration),
    ``duration`` (latest observed, else profiled), ``reward`` (latest statistical utility),
    ``last_round`` (L_i, round of the latest feedback), ``picks`` (times selected),
    ``explored`` and ``exploited_in`` (round in which the client was last picked by exploitation).
    ``reward`` of a client not yet explored is its data-size prior, ``min(samples, local_steps x
    batch_size)`` (the references' registration reward). Each ``select_participants`` call is the
    next round R = 1, 2, ...; everything is a function of the seed and the calls made.
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
        self.rules = config.rules
        self.epsilon = float(config.exploration_factor)
        self.epsilon_floor = float(config.exploration_min)
        self.pacer = Pacer(float(config.round_threshold), config.pacer_step, config.pacer_delta,
                           PACER_RULES[config.pacer_mode], cap=100.0 if config.t_mode == "percentile" else math.inf,
                           origin=self.rules.pacer_origin)
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
        self.reward[ids] = np.minimum(samples, self.config.local_steps * self.config.batch_size)

    def select_participants(self, num: int, cur_time: float, online_ids: np.ndarray) -> list[int]:
        """Pick ``num`` of the online clients for the next round (Algorithm 1), ids ascending.

        Candidates are the registered, non-blacklisted ``online_ids`` (unknown ids are ignored);
        if there are at most ``num`` of them, all are returned. Otherwise the variant's split
        (``_split``) sets how many are exploited among the explored candidates (``_exploit``)
        and how many explore the unexplored ones (``_explore``); the artifact variant tops a short
        selection up with other candidates drawn uniformly. Before picking, the pacer may move T
        (§4.2); epsilon decays before or after the round uses it, per variant. ``cur_time``
        (virtual seconds) is not used: Oort counts rounds.
        """
        if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 0:
            raise ValueError(f"num must be a non-negative integer, got {num!r}")
        self.round += 1
        move = self.pacer.start_round(self.round)
        preferred = self.preferred_duration()
        excluded = self.blacklist()
        candidates = self._candidates(online_ids, excluded)
        if self.rules.decay_first:
            self._decay()
        epsilon = self.epsilon
        seen = self.explored[candidates]
        explored, unexplored = candidates[seen], candidates[~seen]
        top_up = np.empty(0, dtype=np.int64)
        if len(candidates) <= num:
            exploit, explore, admitted = explored, unexplored, len(explored)
        else:
            n_exploit, n_explore = self._split(num, len(explored), len(unexplored))
            exploit, admitted = self._exploit(explored, n_exploit, preferred, candidates)
            explore = self._explore(unexplored, n_explore, preferred)
            if self.rules.split == "artifact":
                top_up = self._top_up(candidates, np.concatenate([exploit, explore]), num)
        picked = np.sort(np.concatenate([exploit, explore, top_up]))
        self.picks[picked] += 1
        self.exploited_in[exploit] = self.round
        self._last = {
            "round": self.round, "oort_variant": self.config.oort_variant, "epsilon": epsilon,
            "preferred_duration": preferred if math.isfinite(preferred) else None,
            "round_threshold": self.round_threshold, "t_mode": self.config.t_mode,
            "num_candidates": len(candidates), "num_exploited": len(exploit), "num_explored": len(explore),
            "num_topped_up": len(top_up), "num_admitted": admitted,
            "explored_total": int(np.count_nonzero(self.explored)),
            "blacklist_size": len(excluded), "pacer_move": move, "pacer_moves": self.pacer.moves,
        }
        if not self.rules.decay_first:
            self._decay()
        return picked.tolist()

    def _decay(self) -> None:
        """One round's decay of epsilon down to its floor (Algorithm 1)."""
        self.epsilon = max(self.epsilon * self.config.exploration_decay, self.epsilon_floor)

    def _split(self, num: int, n_explored: int, n_unexplored: int) -> tuple[int, int]:
        """(exploited, explored) counts for ``num`` picks from more than ``num`` candidates.

        paper: ``floor((1 - eps) num)`` exploited, a short side handing its share to the other.
        fedscale (FedScale ``getTopK``): ``int(eps num)`` explored, the exploited the rest, a
        short side handing its share to the other. artifact (SymbioticLab/Oort ``getTopK``):
        ``int((1 - eps) num)`` exploited (at most the explored), the rest explored while there are
        unexplored candidates; once no registered client is unexplored, exploration stops for good.
        """
        eps = self.epsilon
        if self.rules.split == "artifact":
            n_exploit = min(int(num * (1.0 - eps)), n_explored)
            if np.count_nonzero(self.explored) >= self._num_registered:
                self.epsilon = self.epsilon_floor = 0.0
                return n_exploit, 0
            return n_exploit, min(n_unexplored, num - n_exploit)
        if self.rules.split == "fedscale":
            n_exploit = min(num - min(int(num * eps), n_unexplored), n_explored)
        else:
            n_exploit = num - min(num - min(math.floor((1.0 - eps) * num + 1e-9), n_explored), n_unexplored)
        return n_exploit, num - n_exploit

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
        counted = measured & (self.exploited_in[ids] == stamp)
        if self.rules.pacer_successes_only:
            counted &= feedback.success
        self.pacer.record(stamp, rewards[counted])

    def details(self) -> dict[str, Any]:
        """Facts about the last selection for the round log (JSON-serialisable; empty before the first).

        ``epsilon`` and ``preferred_duration`` (T in seconds, None when unbounded) as used;
        ``round_threshold`` (percentile or seconds, per ``t_mode``); candidate, exploited,
        explored and admitted counts; ``explored_total`` (clients explored so far);
        ``blacklist_size``; ``pacer_move`` (this round's move of the threshold, or None) and
        ``pacer_moves`` (moves so far).
        """
        return dict(self._last)

    def state(self) -> SelectorState:
        """The fleet arrays, the round, epsilon and its floor, the pacer and the generator's state."""
        return {"round": self.round, "epsilon": self.epsilon, "epsilon_floor": self.epsilon_floor,
                "num_registered": self._num_registered, "rng": self._rng.bit_generator.state,
                "pacer": self.pacer.state(), "fleet": {name: getattr(self, name) for name, *_ in self._FLEET_ARRAYS}}

    def restore(self, state: SelectorState) -> None:
        self.round, self._num_registered = int(state["round"]), int(state["num_registered"])
        self.epsilon, self.epsilon_floor = float(state["epsilon"]), float(state["epsilon_floor"])
        self._rng.bit_generator.state = state["rng"]
        self.pacer.restore(state["pacer"])
        for name, dtype, _ in self._FLEET_ARRAYS:
            setattr(self, name, np.array(state["fleet"][name], dtype=dtype))

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

    def exploitation_utility(self, client_ids: np.ndarray, round_index: int, preferred: float,
                             population: np.ndarray | None = None) -> np.ndarray:
        """Util_i of explored clients at round R = ``round_index`` under T = ``preferred``.

        The statistical part, by variant (§4.3 and module docstring): ``clip``: rewards clipped
        at the ``ceil(clip_bound x n)``-th smallest of these clients' rewards and divided by it;
        ``minmax``: with ``P`` the positive rewards of ``population`` (default: these clients;
        the references pass every candidate, unexplored ones' priors included), clipped at
        ``P[int(clip_bound x |P|)]`` (sorted) then mapped to ``(u - 0.999 min P) / max(max P -
        0.999 min P, 1e-4)``. The staleness bonus ``sqrt(0.1 ln R / L_i)`` is added (§4.2), the
        sum multiplied by ``(T / t_i)^alpha`` for clients slower than T (Eq. (2)), and made
        absolute for FedScale.
        """
        ids = as_ids(client_ids, "client_ids")
        if ids.size == 0:
            return np.empty(0)
        rewards = self.reward[ids]
        if self.rules.scores == "clip":
            rank = min(max(math.ceil(self.config.clip_bound * len(ids) - 1e-9) - 1, 0), len(ids) - 1)
            clip = float(np.partition(rewards, rank)[rank])
            statistical = np.clip(rewards, 0.0, clip) / clip if clip > 0 else np.zeros(len(ids))
        else:
            pool = self.reward[ids if population is None else as_ids(population, "population")]
            positive = pool[pool > 0]
            if positive.size:
                rank = min(int(len(positive) * self.config.clip_bound), len(positive) - 1)
                clip = float(np.partition(positive, rank)[rank])
                low = float(positive.min()) * 0.999
                statistical = (np.minimum(rewards, clip) - low) / max(float(positive.max()) - low, 1e-4)
            else:
                statistical = np.zeros(len(ids))
        utility = statistical + np.sqrt(STALENESS_WEIGHT * math.log(round_index) / self.last_round[ids])
        utility = self._penalised(utility, self.duration[ids], preferred)
        return np.abs(utility) if self.rules.absolute else utility

    def exploration_prior(self, client_ids: np.ndarray, preferred: float) -> np.ndarray:
        """Weight of unexplored clients for exploration: speed (1 / profiled duration, paper) or
        the data-size prior penalised by Eq. (2) under T = ``preferred`` (the references)."""
        ids = as_ids(client_ids, "client_ids")
        if self.rules.explore_by == "speed":
            return 1.0 / self.profiled_duration[ids]
        return self._penalised(self.reward[ids].astype(np.float64), self.duration[ids], preferred)

    def _penalised(self, utility: np.ndarray, durations: np.ndarray, preferred: float) -> np.ndarray:
        """``utility`` x (T / t)^alpha where t > T (Eq. (2))."""
        slow = durations > preferred
        utility = utility.copy()
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

    def _exploit(self, ids: np.ndarray, n: int, preferred: float, candidates: np.ndarray) -> tuple[np.ndarray, int]:
        """n explored clients by cut-off admission and utility-proportional sampling; and how many were admitted.

        The boundary is the n-th best (paper) or the (n+1)-th (the references; the last one when
        there are only n). Admitted: utility >= ``cut_off_util`` x the boundary's; FedScale also
        keeps at least the ``10 n + 1`` best.
        """
        if n == 0:
            return np.empty(0, dtype=np.int64), 0
        utility = self.exploitation_utility(ids, self.round, preferred, candidates)
        rank = min(n + self.rules.boundary_offset, len(ids))
        boundary = np.partition(utility, len(utility) - rank)[len(utility) - rank]
        admitted = utility >= self.config.cut_off_util * boundary
        if self.rules.min_pool:
            admitted |= _best(utility, min(self.rules.min_pool * n + 1, len(ids)))
        return ids[admitted][self._sample(utility[admitted], n)], int(np.count_nonzero(admitted))

    def _explore(self, ids: np.ndarray, n: int, preferred: float) -> np.ndarray:
        """n unexplored clients: the ``int(sample_window x n)`` of highest ``exploration_prior``
        (ties: lower id first), then sampled proportionally to it."""
        if n == 0:
            return np.empty(0, dtype=np.int64)
        weights = self.exploration_prior(ids, preferred)
        window = _best(weights, min(len(ids), int(self.config.sample_window * n)))
        return ids[window][self._sample(weights[window], n)]

    def _top_up(self, candidates: np.ndarray, picked: np.ndarray, num: int) -> np.ndarray:
        """Other candidates drawn uniformly until ``num`` are picked (the artifact's top-up)."""
        rest = candidates[~np.isin(candidates, picked)]
        return rest[self._sample(np.ones(len(rest)), num - len(picked))]

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


def _best(values: np.ndarray, k: int) -> np.ndarray:
    """Mask of the k largest ``values``, ties at the k-th broken toward lower positions."""
    mask = np.zeros(len(values), dtype=bool)
    if k <= 0:
        return mask
    kth = np.partition(values, len(values) - k)[len(values) - k]
    mask[values > kth] = True
    mask[np.flatnonzero(values == kth)[:k - int(np.count_nonzero(mask))]] = True
    return mask
