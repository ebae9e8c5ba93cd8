"""The client fleet as the aggregator sees it: devices, availability, selection and round plans.

Each data client is bound to a device of the fleet (client ``i`` to device row
``i mod fleet size``, as FedScale maps its clients onto its device table), which gives it a
compute speed, bandwidth traces and availability intervals. Clients outside the
``filter_less``..``filter_more`` sample-count bounds never take part. The selector
(``sample_mode``, a ``fedscale.selection`` ``Selector``) is called only through
``register_clients`` / ``select_participants`` / ``register_feedback``; what else it gets
(device metadata, trace windows, failures, its own time budget, per-client work) follows
its declared ``needs``.

``plan_round`` is the non-adaptive round of FedScale/Oort (Lai et al., OSDI 2021, Sec. 5):
over-commit ``overcommitment x K`` online candidates, simulate each one's download, compute
and upload at the current virtual time with the job's time model, keep the K fastest that
complete (under ``time_model: fedscale``, online at their finish time; under ``dynamic``,
online throughout); the round lasts as long as the K-th. Stragglers and clients that drop
offline are reported back to the selector as unsuccessful.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedscale.cloud.config.components import AdaptiveConfig, FleetConfig, TrainingConfig
from fedscale.cloud.config.job_conf import JobConf
from fedscale.cloud.internal.client_metadata import Fleet, OnlineCursor
from fedscale.cloud.time_model import build_time_model
from fedscale.selection.base import STATIC_COLUMNS, Feedback, Selector, UploadDropout
from fedscale.selection.registry import selector_class

__all__ = ["ClientManager", "RoundPlan", "make_selector"]


def make_selector(conf: JobConf) -> Selector:
    """The job's selector: the ``sample_mode`` class built from the job's validated selector
    Config and seeded by ``seed``."""
    return selector_class(conf.selection.sample_mode)(conf.selector, conf.training.seed)


@dataclass
class RoundPlan:
    """Who trains this round, how much, and how long the round lasts in virtual time."""

    round_index: int
    start_time: float
    participants: np.ndarray                  # client ids dispatched, fastest first
    local_steps: np.ndarray                   # per participant
    keep_fraction: np.ndarray                 # per participant: fraction of the update uploaded
    t_dl: np.ndarray
    t_comp: np.ndarray
    t_ul: np.ndarray
    stragglers: np.ndarray                    # candidates that finished too late to be kept
    straggler_durations: np.ndarray
    offline: np.ndarray                       # candidates that went offline before finishing
    num_online: int
    duration: float                           # the K-th finish; if none finishes, the last candidate's
    base_durations: np.ndarray                # per participant: its round time at the job's local steps with
                                              # the full upload, which selectors learn its speed from
    selector: dict[str, Any] = field(default_factory=dict)
    dropout_mode: UploadDropout = "topk"      # how each participant drops 1 - keep_fraction of its update

    @property
    def totals(self) -> np.ndarray:
        return self.t_dl + self.t_comp + self.t_ul

    def log_fields(self) -> dict[str, Any]:
        """The plan as ROUND_BEGIN fields."""
        return {"clients": self.participants.tolist(), "num_online": self.num_online,
                "predicted_durations": self.totals.tolist(), "t_download": self.t_dl.tolist(),
                "t_compute": self.t_comp.tolist(), "t_upload": self.t_ul.tolist(),
                "local_steps": self.local_steps.tolist(), "keep_fraction": self.keep_fraction.tolist(),
                "stragglers": self.stragglers.tolist(), "offline": self.offline.tolist(),
                "planned_duration": self.duration, "selector": self.selector}


def eligible_clients(sample_counts: np.ndarray, fleet: FleetConfig) -> np.ndarray:
    """The clients that may take part: those holding filter_less..filter_more samples (at least one)."""
    counts = np.asarray(sample_counts)
    return np.flatnonzero((counts >= max(fleet.filter_less, 1)) & (counts <= fleet.filter_more))


class ClientManager:
    """Registered clients, their devices, the online set at a virtual time, and the selector.

    ``time_model`` gives the eligibility bounds, the time model and its factors, and the
    over-commitment; ``training`` the round's size and work; ``adaptive`` the job's time budget and path."""

    def __init__(self, sample_counts: np.ndarray, fleet: Fleet, model_bytes: int, selector: Selector, *,
                 time_model: FleetConfig, training: TrainingConfig, adaptive: AdaptiveConfig) -> None:
        self.time_model = time_model
        self.training = training
        self.adaptive = adaptive
        self.fleet = fleet
        self.times = build_time_model(fleet, time_model, model_bytes)
        self.selector = selector
        self.model_bytes = model_bytes
        self.sample_counts = np.asarray(sample_counts, dtype=np.int64)
        self.device = np.arange(len(self.sample_counts)) % fleet.num_clients
        self.eligible = eligible_clients(self.sample_counts, time_model)
        self._cursor = OnlineCursor(fleet, self.device[self.eligible])
        profiled = self.get_completion_time(self.eligible, 0.0, np.full(len(self.eligible), training.local_steps))
        needs = selector.needs
        static = None
        if needs.static_features:
            devices = fleet.take(self.device[self.eligible])
            static = {name: getattr(devices, name) for name in STATIC_COLUMNS}
        selector.register_clients(self.eligible, self.sample_counts[self.eligible], sum(profiled), static=static,
                                  window_source=self.dynamic_windows if needs.trace_windows else None)

    @property
    def num_clients(self) -> int:
        return len(self.sample_counts)

    def online(self, cur_time: float) -> np.ndarray:
        """Eligible clients whose device is available at ``cur_time``."""
        return self.eligible[self._cursor.advance(cur_time)]

    def next_online_time(self, cur_time: float) -> float:
        """Earliest time >= ``cur_time`` at which some eligible client is available."""
        return self._cursor.next_online_time(cur_time)

    def dynamic_windows(self, client_ids: np.ndarray, cur_time: float) -> np.ndarray:
        """Each client's last five trace values at or before ``cur_time`` of (bandwidth as a
        fraction of its nominal rate, free-CPU fraction, battery %), skipping the steps it spent
        offline (``Fleet.dynamic_windows``): the dynamic features Bliss learns from."""
        return self.fleet.dynamic_windows(self.device[np.asarray(client_ids, dtype=np.int64)], cur_time)

    def select_participants(self, num: int, cur_time: float) -> list[int]:
        return self.selector.select_participants(num, cur_time, self.online(cur_time))

    def available(self, cur_time: float, busy: np.ndarray) -> np.ndarray:
        """Eligible clients online at ``cur_time`` and not in ``busy`` (an asynchronous job's
        clients that are training or took part in the current step)."""
        return np.setdiff1d(self.online(cur_time), busy, assume_unique=True)

    def select_available(self, num: int, cur_time: float, available: np.ndarray) -> np.ndarray:
        """Up to ``num`` of the ``available`` clients (see ``available``), chosen by the selector."""
        return np.asarray(self.selector.select_participants(num, cur_time, available), dtype=np.int64)

    def next_available_time(self, cur_time: float, busy: np.ndarray) -> float:
        """Earliest time ``>= cur_time`` at which an eligible client not in ``busy`` is online."""
        return self._cursor.next_online_time(cur_time, np.isin(self.eligible, busy, invert=True))

    def completes(self, client_ids: np.ndarray, start: float, finish: np.ndarray) -> np.ndarray:
        """Whether each client, starting at ``start`` and finishing at ``finish``, delivers its
        update under the job's time model."""
        return self.times.completes(self.device[client_ids], start, finish)

    def get_completion_time(self, client_ids: np.ndarray, cur_time: float, local_steps: np.ndarray,
                         keep_fraction: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(download, compute, upload) seconds of each client's round starting at ``cur_time``."""
        upload = self.model_bytes * (1.0 if keep_fraction is None else keep_fraction)
        return self.times.round_times(self.device[client_ids], cur_time, self.training.batch_size, local_steps,
                                      self.model_bytes, upload_bytes=upload)

    def plan_round(self, round_index: int, cur_time: float) -> RoundPlan:
        """Over-commit, simulate, keep the K fastest that complete (the non-adaptive path)."""
        training = self.training
        online = self.online(cur_time)
        wanted = math.ceil(self.time_model.overcommitment * training.num_participants)
        candidates = np.asarray(self.selector.select_participants(wanted, cur_time, online), dtype=np.int64)
        steps = np.full(len(candidates), training.local_steps)
        t_dl, t_comp, t_ul = self.get_completion_time(candidates, cur_time, steps)
        finish = cur_time + t_dl + t_comp + t_ul
        completes = self.times.completes(self.device[candidates], cur_time, finish)
        order = np.argsort(np.where(completes, finish, np.inf), kind="stable")
        kept = order[:min(training.num_participants, int(completes.sum()))]
        base_durations = (t_dl + t_comp + t_ul)[kept]
        keep_fraction, dropout_mode = np.ones(len(kept)), "topk"
        if self.selector.needs.client_overrides and len(kept):
            steps_k, dropout, dropout_mode = self.selector.client_overrides(
                candidates[kept], t_comp[kept], t_ul[kept], training.local_steps, training.batch_size,
                t_fixed=t_dl[kept])
            steps[kept], keep_fraction = np.asarray(steps_k), 1.0 - np.asarray(dropout)
            k_dl, k_comp, k_ul = self.get_completion_time(candidates[kept], cur_time, steps[kept], keep_fraction)
            t_dl[kept], t_comp[kept], t_ul[kept] = k_dl, k_comp, k_ul
            # the work a selector adds may carry a client past the moment it goes offline
            still = self.times.completes(self.device[candidates[kept]], cur_time, cur_time + k_dl + k_comp + k_ul)
            completes[kept[~still]] = False
            kept, keep_fraction, base_durations = kept[still], keep_fraction[still], base_durations[still]
        totals = t_dl + t_comp + t_ul
        ranked = min(training.num_participants, len(order))
        late = order[ranked:][completes[order[ranked:]]]
        return RoundPlan(
            round_index=round_index, start_time=cur_time, participants=candidates[kept],
            local_steps=steps[kept], keep_fraction=keep_fraction, t_dl=t_dl[kept], t_comp=t_comp[kept],
            t_ul=t_ul[kept], stragglers=candidates[late], straggler_durations=totals[late],
            offline=np.sort(candidates[~completes]), num_online=len(online),
            duration=float(totals[kept].max() if len(kept) else totals.max(initial=0.0)),
            base_durations=base_durations, selector=self.selector.details(), dropout_mode=dropout_mode)

    @property
    def t_budget(self) -> float:
        """The round's time budget: the selector's if it declares one (Bliss's pacer moves it), else the job's."""
        return float(self.selector.time_budget if self.selector.needs.time_budget else self.adaptive.t_budget)

    def plan_adaptive_round(self, round_index: int, cur_time: float) -> RoundPlan:
        """The adaptive path's plan: every over-committed candidate is dispatched with the
        round's budget; its download is simulated here, the rest by the client itself."""
        training = self.training
        online = self.online(cur_time)
        wanted = math.ceil(self.time_model.overcommitment * training.num_participants)
        candidates = np.asarray(self.selector.select_participants(wanted, cur_time, online), dtype=np.int64)
        budget = self.t_budget
        t_dl = self.times.download_time(self.device[candidates], cur_time, self.model_bytes)
        t_comp = np.maximum(budget - t_dl, 0.0)
        count, nothing = len(candidates), np.empty(0, dtype=np.int64)
        return RoundPlan(
            round_index=round_index, start_time=cur_time, participants=candidates,
            local_steps=np.full(count, training.local_steps), keep_fraction=np.ones(count), t_dl=t_dl,
            t_comp=t_comp, t_ul=np.zeros(count), stragglers=nothing, straggler_durations=np.empty(0),
            offline=nothing, num_online=len(online), duration=budget, base_durations=t_dl + t_comp,
            selector=self.selector.details())

    def get_client_conf(self, plan: RoundPlan, positions: list[int]) -> list[dict[str, Any]]:
        """Per-client settings of an adaptive task for the plan's participants at ``positions``:
        the device whose traces the client simulates itself on, its download time and the budget."""
        clients = plan.participants[positions]
        return [{"device": d, "download_seconds": t, "t_budget": plan.duration}
                for d, t in zip(self.device[clients].tolist(), plan.t_dl[positions].tolist())]

    def settle_adaptive_round(self, plan: RoundPlan, results: dict[int, Any]) -> RoundPlan:
        """The round as it happened: the K fastest successful clients (by their reported
        download + compute + upload) are kept, the other successful ones are stragglers, the rest
        failed; the round lasts as long as the slowest kept client (the budget if none)."""
        done = np.array([c for c in plan.participants.tolist() if c in results], dtype=np.int64)
        report = [results[c] for c in done.tolist()]
        t_dl = np.array([r.t_download for r in report])
        t_comp = np.array([r.t_compute for r in report])
        t_ul = np.array([r.t_upload for r in report])
        walls = t_dl + t_comp + t_ul
        order = np.argsort(walls, kind="stable")
        kept, late = order[:self.training.num_participants], order[self.training.num_participants:]
        return dataclasses.replace(
            plan, participants=done[kept], local_steps=np.array([r.local_steps for r in report])[kept],
            keep_fraction=np.array([r.keep_fraction for r in report])[kept], t_dl=t_dl[kept], t_comp=t_comp[kept],
            t_ul=t_ul[kept], stragglers=done[late], straggler_durations=walls[late],
            offline=np.setdiff1d(plan.participants, done), base_durations=walls[kept],
            duration=float(walls[kept].max()) if len(kept) else plan.duration)

    def finish_round(self, plan: RoundPlan, results: dict[int, Any]) -> None:
        """Feed the round's outcome back to the selector, as one batch.

        Aggregated clients report their measured utility and their base duration (``RoundPlan.
        base_durations``: a selector's own work overrides, PyramidFL's idle-filling extra steps and
        upload dropout, are not the client's speed; PyramidFL's artifact feeds Oort the base-step
        duration too), and PyramidFL's
        gradient utility ``||update|| * samples trained / 100`` (its authors' scaling); stragglers get
        the round's mean utility and their own simulated duration, unsuccessful (as FedScale does
        for clients cut by over-commitment). Clients that went offline, or whose executor
        failed, get no feedback, except for selectors that declare ``failure_feedback`` (Bliss:
        target 0), which get them last, with the round's duration.
        """
        mean_utility = float(np.mean([res.utility for res in results.values()])) if results else 0.0
        done = [(i, c) for i, c in enumerate(plan.participants.tolist()) if c in results]
        report = [results[c] for _, c in done]
        positions = np.array([i for i, _ in done], dtype=np.int64)
        batch_size = self.training.batch_size
        trained = np.array([min(r.num_samples, r.local_steps * batch_size) for r in report], dtype=np.float64)
        norms = np.array([r.update_norm for r in report], dtype=np.float64) * trained / 100
        failed = plan.offline if self.selector.needs.failure_feedback else np.empty(0, dtype=np.int64)
        clients = np.concatenate([np.array([c for _, c in done], dtype=np.int64), plan.stragglers, failed])
        unsuccessful = len(plan.stragglers) + len(failed)
        self.selector.register_feedback(Feedback(
            round_index=plan.round_index, client_ids=clients,
            rewards=np.concatenate([[r.utility for r in report], np.full(len(plan.stragglers), mean_utility),
                                    np.zeros(len(failed))]),
            durations=np.concatenate([plan.base_durations[positions], plan.straggler_durations,
                                      np.full(len(failed), plan.duration)]),
            success=np.arange(len(clients)) < len(report),
            gradient_norm=np.concatenate([norms, np.full(unsuccessful, np.nan)]),
            adaptive=self.adaptive.adaptive_training))
