"""Bliss v1: client selection by predicted utility, learned from device state and history.

Bliss (public code: github.com/Bossbap/Bliss, commit 67534d7, a FedScale fork; no paper is
published) picks each round's participants by *predicting* how useful each online client
would be, instead of trusting the utility it reported the last time it ran. Two regressors do
it: ``g`` scores clients never tried, from their device's recent state (the last five trace
values of bandwidth, free CPU and battery, skipping the steps it spent offline) and its static
specs; ``h`` re-scores clients already tried, from how their state changed since then, their
specs and their last outcome.
This module implements "Bliss v1", the public code's algorithm with its defects fixed, as
``docs/bliss.md`` specifies it; the rules and where they come from:

1. Pacer on the round-time budget ``t_budget`` (seconds): every ``pacer_step`` rounds, from
   twice that on, compare the summed per-round mean utility of the successful participants
   over the last ``pacer_step`` rounds (A) with the ``pacer_step`` before (B); relax by
   ``bliss_pacer_delta`` seconds on a plateau (``|A - B| <= 0.1 B``), tighten on a swing
   (``>= 5 B``), never below ``bliss_pacer_delta``. This is the rule of Oort's artifact
   (SymbioticLab/Oort ``oort/oort.py``) and FedScale's Oort code (Lai et al., OSDI 2021, §4.2),
   which the public Bliss code applies to ``t_budget`` (``fedscale.selection.pacer``) with a
   step of 50 s (its ``config_parser.py`` default; its speech job uses 10 s). The step has its
   own key because Oort's ``pacer_delta`` is in Oort's units (percentile points by default).
2. Candidate pools among the online clients: up to ``number_clients_to_predict_utility``
   never-tried clients, uniformly (public code); the ``number_clients_to_refresh_utility``
   tried clients with the highest stored utility (public code) plus a ``bliss_refresh_random``
   share of that number drawn uniformly from the other tried clients (fix: in the public code
   a client whose last round failed has utility 0 and is never refreshed again).
3. Fit ``g`` on tried clients, rows ``[window when picked || static] -> utility``, and ``h`` on
   clients tried at least twice, rows ``[window change between their last two picks ||
   static || previous utility, previous success, rounds between the two picks] -> utility``
   (public code, with a fix: its ``h`` rows carry absolute round indices and, at prediction
   time, leave the success and round slots at 0 while training rows fill them; here the
   prediction row is built exactly like a training row, one participation later, and rounds
   enter only as a gap). Training rows are drawn uniformly by default (the public code draws
   them in proportion to utility, which ``bliss_train_sampling: utility`` keeps).
4. Predict with ``g`` for the first pool and ``h`` for the second, clipped at 0.
5. Select. ``topk`` (public code): the ``num`` best predictions. ``weighted`` (default; fix:
   the public code has no exploration at all): ``round(epsilon x num)`` from the never-tried
   pool and the rest from the tried pool, a short pool handing its share to the other; within
   each, Oort's admission (clients within ``cut_off_util`` of the boundary prediction) and
   draws without replacement proportional to prediction (Oort, Algorithm 1). ``epsilon`` follows
   Oort's schedule (``exploration_factor`` times ``exploration_decay`` per round, floored).
6. Bookkeeping for the picked: times picked, the rounds of their last two picks, and the
   window they had when picked (the public code stores it too).
7. Feedback: the target is the reported utility if the client succeeded, else 0 (public
   code). On the non-adaptive path a successful client slower than ``t_budget`` has its target
   multiplied by ``(t_budget / duration)^round_penalty`` (Oort's Eq. (2); fix: the public code
   inverts the ratio and so rewards slowness). The stored utility is an exponential moving
   average with weight ``ema_alpha`` on the new target (fix: the public code defines the knob
   but stores the raw target).

Decisions beyond the specification, and why:

- The first target a client reports initialises its average: an average started at 0 would
  understate every once-tried client by ``1 - ema_alpha`` next to often-tried ones.
- A pool is never smaller than ``num`` (when enough clients exist), so that asking for more
  clients than the configured pool sizes still scores every pick.
- A row trains ``g``/``h`` only once the outcome of the participation it describes has been fed
  back, so a client picked but not yet heard from does not teach its stale utility.
- The weight floor ``epsilon_0`` of step 5 is ``WEIGHT_FLOOR`` times the pool's best prediction, so a client
  predicted at 0 keeps a small chance once admitted; all-zero pools are drawn uniformly.
- Until ``g`` is fitted the never-tried clients are scored with the median stored utility of
  the clients it would train on (a uniform draw); until ``h`` is fitted a tried client's
  score is its stored utility.
- A fit that lacks rows (fewer than ``bliss_min_train``, or all targets 0) keeps the previous
  model rather than discarding it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from fedscale.selection.base import Feedback, Needs, Selector, SelectorState, WindowSource
from fedscale.selection.config import ExplorationConfig, PacerConfig, PenaltyConfig
from fedscale.selection.pacer import Pacer, relax_on_plateau
from fedscale.selection.registration import as_ids, check_registration
from thirdparty.bliss.encode import (DENSE_DIM, STATIC_DIM, WINDOW_DIM, CompactStatic, compact_static,
                                     encode_windows, expand_static)
from thirdparty.bliss.regressor import RegressorName, make_regressor
from thirdparty.oort.oort import OortSelector

WEIGHT_FLOOR = 1e-3
H_HISTORY = ("last_utility", "last_success", "round_gap")
G_DIM = WINDOW_DIM + STATIC_DIM
H_DIM = WINDOW_DIM + STATIC_DIM + len(H_HISTORY)


class BlissConfig(ExplorationConfig, PacerConfig, PenaltyConfig):
    """Bliss's knobs; each is the job_conf key of the same name (module docstring for the rules).

    Pools and training sets: ``number_clients_to_predict_utility`` (never-tried clients scored
    by g), ``number_clients_to_refresh_utility`` (tried clients re-scored by h),
    ``amount_clients_predict_train_set`` / ``amount_clients_refresh_train_set`` (rows per fit,
    at least ``bliss_min_train``), ``bliss_min_train`` (fewer rows: no fit),
    ``bliss_retrain_every`` (rounds between fits), ``bliss_train_sampling``,
    ``bliss_refresh_random``. Models: ``g_model``/``h_model``. Feedback: ``ema_alpha``,
    ``round_penalty`` (non-adaptive path only). Pacer: ``t_budget`` (initial seconds),
    ``pacer_step`` (shared with Oort), ``bliss_pacer_delta`` (seconds). Selection:
    ``bliss_selection`` and, for ``weighted``, the epsilon schedule and ``cut_off_util``. ``collect_data`` keeps every pick's features and
    outcome for ``training_data``.
    """

    number_clients_to_predict_utility: int = Field(300, ge=0, description=(
        "Bliss: online clients never seen whose utility g predicts each round."))
    number_clients_to_refresh_utility: int = Field(300, ge=0, description=(
        "Bliss: online seen clients (top by utility) whose utility h refreshes each round."))
    amount_clients_predict_train_set: int = Field(500, ge=1, description="Bliss: most training rows for g.")
    amount_clients_refresh_train_set: int = Field(500, ge=1, description="Bliss: most training rows for h.")
    g_model: RegressorName = Field("xgboost", description="Bliss: regressor predicting unseen clients' utility.")
    h_model: RegressorName = Field("xgboost", description="Bliss: regressor refreshing seen clients' utility.")
    ema_alpha: float = Field(0.7, gt=0, le=1,
                             description="Bliss: weight of the newest observed utility in its moving average.")
    bliss_selection: Literal["weighted", "topk"] = Field("weighted", description=(
        "Bliss: draw participants proportionally to predicted utility (weighted) or take the best (topk)."))
    bliss_train_sampling: Literal["uniform", "utility"] = Field(
        "uniform", description="Bliss: how g's and h's training rows are drawn.")
    bliss_retrain_every: int = Field(1, ge=1, description="Bliss: rounds between refits of g and h.")
    bliss_min_train: int = Field(20, ge=1, description="Bliss: fewest rows g or h is fitted on.")
    bliss_refresh_random: float = Field(0.1, ge=0, description=(
        "Bliss: extra refresh candidates drawn uniformly from the other seen online clients, as a "
        "share of number_clients_to_refresh_utility."))
    collect_data: bool = Field(False, description="Bliss: dump g's and h's training rows to the run folder.")
    t_budget: float = Field(300.0, gt=0, le=86400, description=(
        "Seconds a round allows each client for download, compute and upload (Bliss's pacer moves it)."))
    bliss_pacer_delta: float = Field(50.0, ge=0, description=(
        "Bliss: seconds by which the pacer relaxes or tightens t_budget (never below this step)."))

    @model_validator(mode="after")
    def _train_sets_fit(self) -> BlissConfig:
        for key in ("amount_clients_predict_train_set", "amount_clients_refresh_train_set"):
            if getattr(self, key) < self.bliss_min_train:
                raise ValueError(f"{key}: expected at least bliss_min_train ({self.bliss_min_train}), "
                                 f"got {getattr(self, key)}")
        return self


class BlissSelector(Selector):
    """Bliss v1 over a fleet held in arrays indexed by client id (module docstring for the rules).

    Fleet arrays (length = largest registered id + 1, grown by doubling): ``registered``;
    ``utility``/``last_utility`` (smoothed utility now and before the latest feedback);
    ``success``/``last_success`` (the latest two outcomes); ``seen`` (times picked);
    ``picked_round``/``previous_round`` (rounds of the latest two picks, -1 none);
    ``feedback_round`` (round of the latest feedback, -1 none); ``window``/``previous_window``
    (encoded dynamic windows at the latest two picks); ``static_dense``/``brand``/``model``
    (the ``CompactStatic`` device encoding). A ``window_source`` must be given at registration
    before the first selection: it returns each client's ``[5, 3]`` windows at virtual time ``t``.
    Each ``select_participants`` call is round 1, 2, ...; all randomness comes from the seed.
    Bliss needs device metadata and trace windows, learns from failed clients too (their target
    is 0) and sets the round's time budget.
    """

    Config = BlissConfig
    needs = Needs(static_features=True, trace_windows=True, failure_feedback=True, time_budget=True)

    _FLEET_ARRAYS: tuple[tuple[str, Any, Any, int], ...] = (
        ("registered", np.bool_, False, 0),
        ("utility", np.float64, 0.0, 0),
        ("last_utility", np.float64, 0.0, 0),
        ("success", np.bool_, False, 0),
        ("last_success", np.bool_, False, 0),
        ("seen", np.int32, 0, 0),
        ("picked_round", np.int64, -1, 0),
        ("previous_round", np.int64, -1, 0),
        ("feedback_round", np.int64, -1, 0),
        ("window", np.float32, 0.0, WINDOW_DIM),
        ("previous_window", np.float32, 0.0, WINDOW_DIM),
        ("static_dense", np.float32, 0.0, DENSE_DIM),
        ("brand", np.int16, -1, 0),
        ("model", np.int16, -1, 0),
    )

    registered: np.ndarray
    utility: np.ndarray
    last_utility: np.ndarray
    success: np.ndarray
    last_success: np.ndarray
    seen: np.ndarray
    picked_round: np.ndarray
    previous_round: np.ndarray
    feedback_round: np.ndarray
    window: np.ndarray
    previous_window: np.ndarray
    static_dense: np.ndarray
    brand: np.ndarray
    model: np.ndarray

    _sample = OortSelector._sample
    _candidates = OortSelector._candidates
    _check_registered = OortSelector._check_registered

    config: BlissConfig

    def __init__(self, config: BlissConfig, seed: int) -> None:
        super().__init__(config, seed)
        self.round = 0
        self.epsilon = float(config.exploration_factor)
        self.window_source: WindowSource | None = None
        self.g = make_regressor(config.g_model, seed)
        self.h = make_regressor(config.h_model, seed + 1)
        self.last_predict_pool = np.empty(0, dtype=np.int64)
        self.last_refresh_pool = np.empty(0, dtype=np.int64)
        self.pacer = Pacer(float(config.t_budget), config.pacer_step, config.bliss_pacer_delta, relax_on_plateau,
                           needs_base=True)
        self._rng = np.random.default_rng(seed)
        self._last: dict[str, Any] = {}
        self._rows = _RowLog() if config.collect_data else None
        for name, dtype, fill, width in self._FLEET_ARRAYS:
            setattr(self, name, np.full((0, width) if width else 0, fill, dtype=dtype))

    @property
    def time_budget(self) -> float:
        """The round-time budget in seconds, as the pacer last set it."""
        return self.pacer.value

    def register_clients(self, client_ids: np.ndarray, num_samples: np.ndarray, durations: np.ndarray, *,
                         static: Mapping[str, Any] | None = None, window_source: WindowSource | None = None) -> None:
        """Register many clients at once, encoding their devices in one vectorised pass.

        ``static`` maps device columns (``encode.encode_static``'s, aligned with
        ``client_ids``; labels may be ``Categorical``-like codes into a vocabulary) to arrays;
        absent columns and values are encoded as unknown. ``num_samples`` and ``durations`` are
        checked but not kept: Bliss learns a client's worth from its device and outcomes. A
        client registered again starts afresh, never tried. ``window_source``, if given,
        replaces the one windows are read from.
        """
        if window_source is not None:
            self.window_source = window_source
        ids = as_ids(client_ids, "client_ids")
        check_registration(ids, np.asarray(num_samples), np.asarray(durations, dtype=np.float64))
        if ids.size == 0:
            return
        compact = compact_static(static or {}, num_clients=len(ids))
        self._reserve(int(ids.max()) + 1)
        again = ids[self.registered[ids]]
        if len(again):
            for name, _, fill, _ in self._FLEET_ARRAYS:
                getattr(self, name)[again] = fill
        self.registered[ids] = True
        self.static_dense[ids], self.brand[ids], self.model[ids] = compact

    def select_participants(self, num: int, cur_time: float, online_ids: np.ndarray) -> list[int]:
        """Pick ``num`` of the online registered clients for the next round, best prediction first.

        Runs steps 1-6 of the module docstring at virtual time ``cur_time``; unknown ids in
        ``online_ids`` are ignored and, with ``num`` or fewer candidates, all are picked.
        """
        if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 0:
            raise ValueError(f"num must be a non-negative integer, got {num!r}")
        if self.window_source is None:
            raise RuntimeError("BlissSelector needs a window_source, given at registration, before the first selection")
        config = self.config
        self.round += 1
        move = self.pacer.start_round(self.round)
        candidates = self._candidates(online_ids, np.empty(0, dtype=np.int64))
        tried = self.seen[candidates] > 0
        predict_pool = self._draw_uniform(candidates[~tried], max(config.number_clients_to_predict_utility, num))
        refresh_pool, refresh_random = self._refresh_pool(candidates[tried], num)
        self.last_predict_pool, self.last_refresh_pool = predict_pool, refresh_pool
        pooled = np.concatenate([predict_pool, refresh_pool])
        windows = self._windows(pooled, cur_time)
        trainable = np.flatnonzero((self.seen > 0) & (self.feedback_round == self.picked_round))
        retrain = (self.round - 1) % config.bliss_retrain_every == 0
        g_rows, h_rows = self._fit(trainable) if retrain else (0, 0)
        scores, h_features = self._predict(predict_pool, refresh_pool, windows, trainable)
        chosen = self._choose(scores, pooled, len(predict_pool), num)
        chosen = chosen[np.lexsort((pooled[chosen], -scores[chosen]))]
        picked = pooled[chosen]
        from_refresh = chosen >= len(predict_pool)
        if self._rows is not None:
            h_picked = np.full((len(chosen), H_DIM), np.nan, dtype=np.float32)
            h_picked[from_refresh] = h_features[chosen[from_refresh] - len(predict_pool)]
            self._rows.append(self.round, picked, from_refresh, self.g_rows(picked, windows[chosen]), h_picked,
                              scores[chosen])
        self._book(picked, windows[chosen])
        from_predict = int(np.count_nonzero(~from_refresh))
        self._last = {
            "round": self.round, "selection": config.bliss_selection, "epsilon": self.epsilon,
            "t_budget": self.time_budget, "pacer_move": move, "pacer_moves": self.pacer.moves,
            "num_candidates": len(candidates), "num_unseen_online": int(np.count_nonzero(~tried)),
            "predict_pool": len(predict_pool), "refresh_pool": len(refresh_pool), "refresh_random": refresh_random,
            "g_predictions": len(predict_pool) if self.g.fitted else 0,
            "h_predictions": len(refresh_pool) if self.h.fitted else 0,
            "g_fitted": self.g.fitted, "h_fitted": self.h.fitted, "g_train_rows": g_rows, "h_train_rows": h_rows,
            "num_from_predict": from_predict, "num_from_refresh": len(picked) - from_predict,
            "seen_total": int(np.count_nonzero(self.seen)),
        }
        self.epsilon = max(self.epsilon * config.exploration_decay, config.exploration_min)
        return picked.tolist()

    def register_feedback(self, feedback: Feedback) -> None:
        """Fold in a batch of outcomes of round ``feedback.round_index`` (step 7 of the module docstring).

        ``rewards`` are the utilities the clients reported (Oort's ``|B| x RMS loss``),
        ``durations`` their seconds for the round; ``feedback.adaptive`` means the clients
        trained under the time budget, so no duration penalty applies. Successful outcomes feed
        the pacer, in the order given.
        """
        ids = self._check_registered(feedback.client_ids)
        stamp, success, rewards, durations = (feedback.round_index, feedback.success, feedback.rewards,
                                              feedback.durations)
        if stamp > self.round:
            raise ValueError(f"round_index must be a round index in [1, {self.round}], got {stamp}")
        target = np.where(success & np.isfinite(rewards), np.maximum(rewards, 0.0), 0.0)
        budget = self.time_budget
        penalised = np.flatnonzero((target > 0) & np.isfinite(durations) & (durations > budget)) \
            if not feedback.adaptive else np.empty(0, dtype=np.int64)
        # Python's pow, element by element: numpy's vectorised power can differ in the last bit.
        target[penalised] *= [ratio ** self.config.round_penalty for ratio in (budget / durations[penalised]).tolist()]
        alpha = np.where(self.feedback_round[ids] >= 0, self.config.ema_alpha, 1.0)
        self.last_utility[ids], self.last_success[ids] = self.utility[ids], self.success[ids]
        self.utility[ids] = alpha * target + (1.0 - alpha) * self.utility[ids]
        self.success[ids] = success
        self.feedback_round[ids] = stamp
        self.pacer.record(stamp, self.utility[ids[success]])
        if self._rows is not None:
            self._rows.record_outcomes(stamp, ids, target, self.utility[ids])

    def details(self) -> dict[str, Any]:
        """Facts about the last selection for the round log (JSON-serialisable; empty before the first).

        ``epsilon`` as used; ``t_budget`` after the pacer; ``pacer_move`` (this round's move, or
        None) and ``pacer_moves``; candidate and never-tried online counts; pool sizes
        (``refresh_random``: the uniformly drawn part of the refresh pool); predictions made by
        each fitted model; fitted flags and rows of this round's fits (0: no fit); picks per
        pool; ``seen_total`` (clients ever picked).
        """
        return dict(self._last)

    def training_data(self) -> dict[str, np.ndarray] | None:
        """Every pick's features and outcome when ``collect_data`` is on (None otherwise), ready
        for ``np.savez``: ``round``, ``client``, ``pool`` (0 g, 1 h), ``g_features``,
        ``h_features`` (NaN for never-tried picks), ``prediction``, ``target`` (the feedback's
        target, NaN until it arrives) and ``utility`` (the smoothed utility after it)."""
        return None if self._rows is None else self._rows.as_dict()

    def state(self) -> SelectorState:
        """The fleet arrays, the round, epsilon, the last pools, the pacer, the generator's state,
        g's and h's training rows (``Regressor.state``) and the collected rows, if any."""
        return {"round": self.round, "epsilon": self.epsilon, "rng": self._rng.bit_generator.state,
                "pacer": self.pacer.state(), "g": self.g.state(), "h": self.h.state(),
                "last_predict_pool": self.last_predict_pool, "last_refresh_pool": self.last_refresh_pool,
                "rows": None if self._rows is None else self._rows.state(),
                "fleet": {name: getattr(self, name) for name, *_ in self._FLEET_ARRAYS}}

    def restore(self, state: SelectorState) -> None:
        self.round, self.epsilon = int(state["round"]), float(state["epsilon"])
        self._rng.bit_generator.state = state["rng"]
        self.pacer.restore(state["pacer"])
        self.g.restore(state["g"])
        self.h.restore(state["h"])
        self.last_predict_pool = np.array(state["last_predict_pool"], dtype=np.int64)
        self.last_refresh_pool = np.array(state["last_refresh_pool"], dtype=np.int64)
        if self._rows is not None:
            self._rows.restore(state["rows"])
        for name, dtype, _, _ in self._FLEET_ARRAYS:
            setattr(self, name, np.array(state["fleet"][name], dtype=dtype))

    def g_rows(self, client_ids: np.ndarray, current: np.ndarray | None = None) -> np.ndarray:
        """g's feature rows ``[windows || static]``: the windows ``current`` (encoded, now) to
        predict from, or, without ``current``, the windows stored at each client's last pick
        (training rows, whose target is ``utility``)."""
        ids = as_ids(client_ids, "client_ids")
        windows = self.window[ids] if current is None else current
        return np.hstack([windows, self._static(ids)], dtype=np.float64)

    def h_rows(self, client_ids: np.ndarray, current: np.ndarray | None = None) -> np.ndarray:
        """h's feature rows ``[window change || static || last utility, last success, round gap]``.

        With ``current`` (encoded windows now) the rows predict the next utility at round
        ``round``: change since the last pick, the stored utility and success, rounds since the
        last pick. Without, the training rows for the latest utility: change between the last
        two picks, the utility and success before the latest feedback, rounds between the picks.
        """
        ids = as_ids(client_ids, "client_ids")
        if current is None:
            change = self.window[ids] - self.previous_window[ids]
            gap = self.picked_round[ids] - self.previous_round[ids]
            history = (self.last_utility[ids], self.last_success[ids], gap)
        else:
            change = current - self.window[ids]
            history = (self.utility[ids], self.success[ids], self.round - self.picked_round[ids])
        return np.hstack([change, self._static(ids), np.column_stack(history)], dtype=np.float64)

    def _refresh_pool(self, tried: np.ndarray, num: int) -> tuple[np.ndarray, int]:
        """Step 2's refresh pool among the online tried clients: the ``max(n_ref, num)`` with the
        highest utility, then ``round(bliss_refresh_random x n_ref)`` of the others uniformly;
        and the size of that uniform part."""
        config = self.config
        top = min(max(config.number_clients_to_refresh_utility, num), len(tried))
        if top < len(tried):
            best = np.zeros(len(tried), dtype=bool)
            best[np.argpartition(-self.utility[tried], top - 1)[:top]] = True
            extra = math.floor(config.bliss_refresh_random * config.number_clients_to_refresh_utility + 0.5)
            others = self._draw_uniform(tried[~best], extra)
            return np.concatenate([tried[best], others]), len(others)
        return tried, 0

    def _windows(self, ids: np.ndarray, cur_time: float) -> np.ndarray:
        """Encoded dynamic windows of ``ids`` at ``cur_time`` from ``window_source``."""
        if len(ids) == 0:
            return np.empty((0, WINDOW_DIM), dtype=np.float32)
        windows = encode_windows(self.window_source(ids, cur_time))
        if len(windows) != len(ids):
            raise ValueError(f"window_source returned {len(windows)} rows for {len(ids)} clients")
        return windows

    def _fit(self, trainable: np.ndarray) -> tuple[int, int]:
        """Step 3: refit g on the trainable clients and h on those tried twice; rows used by each (0: kept as was)."""
        twice = trainable[self.seen[trainable] >= 2]
        g_ids = self._training_sample(trainable, self.config.amount_clients_predict_train_set)
        h_ids = self._training_sample(twice, self.config.amount_clients_refresh_train_set)
        return (self._fit_one(self.g, g_ids, self.g_rows), self._fit_one(self.h, h_ids, self.h_rows))

    def _fit_one(self, model: Any, ids: np.ndarray, rows: Callable[[np.ndarray], np.ndarray]) -> int:
        targets = self.utility[ids]
        if len(ids) < self.config.bliss_min_train or not targets.any():
            return 0
        model.fit(rows(ids), targets)
        return len(ids)

    def _training_sample(self, ids: np.ndarray, size: int) -> np.ndarray:
        """Up to ``size`` of ``ids``: uniformly, or proportionally to utility (``bliss_train_sampling``)."""
        if len(ids) <= size:
            return ids
        if self.config.bliss_train_sampling == "utility":
            return ids[self._sample(self.utility[ids], size)]
        return self._draw_uniform(ids, size)

    def _predict(self, predict_pool: np.ndarray, refresh_pool: np.ndarray, windows: np.ndarray,
                 trainable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step 4: scores of both pools (g's first, clipped at 0) from their encoded ``windows``
        now, and h's feature rows for the refresh pool."""
        now_g, now_h = windows[:len(predict_pool)], windows[len(predict_pool):]
        h_features = self.h_rows(refresh_pool, now_h)
        if self.g.fitted:
            g_scores = self.g.predict(self.g_rows(predict_pool, now_g))
        else:
            prior = float(np.median(self.utility[trainable])) if len(trainable) else 0.0
            g_scores = np.full(len(predict_pool), prior)
        h_scores = self.h.predict(h_features) if self.h.fitted else self.utility[refresh_pool]
        return np.maximum(np.concatenate([g_scores, h_scores]), 0.0), h_features

    def _choose(self, scores: np.ndarray, ids: np.ndarray, num_predicted: int, num: int) -> np.ndarray:
        """Step 5: positions into ``scores`` of ``ids`` (g's pool first, then h's) of the picked
        clients; ``topk`` breaks ties by lower id."""
        if self.config.bliss_selection == "topk" or len(scores) <= num:
            return np.lexsort((ids, -scores))[:num]
        g_scores, h_scores = scores[:num_predicted], scores[num_predicted:]
        from_g = min(math.floor(self.epsilon * num + 0.5), len(g_scores))
        from_h = min(num - from_g, len(h_scores))
        from_g = min(num - from_h, len(g_scores))
        return np.concatenate([self._admit_and_draw(g_scores, from_g),
                               num_predicted + self._admit_and_draw(h_scores, from_h)])

    def _admit_and_draw(self, scores: np.ndarray, n: int) -> np.ndarray:
        """n positions of ``scores``: admit those >= ``cut_off_util`` x the n-th best (Oort's
        admission), then draw without replacement proportionally to score + ``WEIGHT_FLOOR`` x best."""
        if n == 0:
            return np.empty(0, dtype=np.int64)
        boundary = np.partition(scores, len(scores) - n)[len(scores) - n]
        admitted = np.flatnonzero(scores >= self.config.cut_off_util * boundary)
        weights = scores[admitted] + WEIGHT_FLOOR * scores.max()
        return admitted[self._sample(weights, n)]

    def _book(self, picked: np.ndarray, windows: np.ndarray) -> None:
        """Step 6: count the picks, shift their last two pick rounds and windows."""
        self.seen[picked] += 1
        self.previous_round[picked] = self.picked_round[picked]
        self.picked_round[picked] = self.round
        self.previous_window[picked] = self.window[picked]
        self.window[picked] = windows

    def _draw_uniform(self, ids: np.ndarray, size: int) -> np.ndarray:
        """``size`` of ``ids`` uniformly without replacement (all of them if there are not more)."""
        if size >= len(ids):
            return ids
        return ids[self._rng.choice(len(ids), size, replace=False)]

    def _static(self, ids: np.ndarray) -> np.ndarray:
        return expand_static(CompactStatic(self.static_dense[ids], self.brand[ids], self.model[ids]))

    def _reserve(self, size: int) -> None:
        """Grow every fleet array to at least ``size`` rows (doubling), new rows at their fill value."""
        old = len(self.registered)
        if size <= old:
            return
        new = max(size, 2 * old)
        for name, dtype, fill, width in self._FLEET_ARRAYS:
            shape = (new, width) if width else new
            grown = np.zeros(shape, dtype=dtype) if fill == 0 else np.full(shape, fill, dtype=dtype)
            grown[:old] = getattr(self, name)
            setattr(self, name, grown)


class _RowLog:
    """``collect_data``'s rows, one per pick, in growable arrays; feedback fills in the outcome."""

    _COLUMNS: tuple[tuple[str, Any, tuple[int, ...], Any], ...] = (
        ("round", np.int64, (), 0), ("client", np.int64, (), 0), ("pool", np.int8, (), 0),
        ("g_features", np.float32, (G_DIM,), np.nan), ("h_features", np.float32, (H_DIM,), np.nan),
        ("prediction", np.float64, (), np.nan), ("target", np.float64, (), np.nan),
        ("utility", np.float64, (), np.nan),
    )

    def __init__(self) -> None:
        self.size = 0
        self.columns = {name: np.empty((0, *shape), dtype=dtype) for name, dtype, shape, _ in self._COLUMNS}
        self.round_rows: dict[int, slice] = {}

    def append(self, round_index: int, clients: np.ndarray, pool: np.ndarray, g_features: np.ndarray,
               h_features: np.ndarray, prediction: np.ndarray) -> None:
        """Add one round's picks (outcome columns NaN until ``record_outcome``)."""
        start, stop = self.size, self.size + len(clients)
        if stop > len(self.columns["round"]):
            capacity = max(stop, 2 * len(self.columns["round"]))
            for name, dtype, shape, fill in self._COLUMNS:
                grown = np.full((capacity, *shape), fill, dtype=dtype)
                grown[:start] = self.columns[name][:start]
                self.columns[name] = grown
        rows = slice(start, stop)
        for name, values in (("round", round_index), ("client", clients), ("pool", pool),
                             ("g_features", g_features), ("h_features", h_features), ("prediction", prediction)):
            self.columns[name][rows] = values
        self.round_rows[round_index] = rows
        self.size = stop

    def record_outcomes(self, round_index: int, clients: np.ndarray, targets: np.ndarray,
                        utilities: np.ndarray) -> None:
        """Set the target and smoothed utility of each of ``clients``' picks in ``round_index``, if logged."""
        rows = self.round_rows.get(round_index)
        if rows is None or len(clients) == 0:
            return
        order = np.argsort(clients)
        logged = self.columns["client"][rows]
        at = np.minimum(np.searchsorted(clients[order], logged), len(clients) - 1)
        found = clients[order][at] == logged
        match, source = rows.start + np.flatnonzero(found), order[at[found]]
        self.columns["target"][match] = targets[source]
        self.columns["utility"][match] = utilities[source]

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: column[:self.size].copy() for name, column in self.columns.items()}

    def state(self) -> dict[str, Any]:
        """The rows so far and which rows each round's picks are, for a checkpoint."""
        spans = np.array([[r, rows.start, rows.stop] for r, rows in self.round_rows.items()], dtype=np.int64)
        return {"columns": self.as_dict(), "round_rows": spans.reshape(-1, 3)}

    def restore(self, state: dict[str, Any]) -> None:
        self.columns = {name: np.array(state["columns"][name], dtype=dtype) for name, dtype, _, _ in self._COLUMNS}
        self.size = len(self.columns["round"])
        self.round_rows = {int(r): slice(int(start), int(stop)) for r, start, stop in state["round_rows"]}
