"""Time-budget adaptive local training: the client fits its work and its upload to a deadline.

Each client gets a budget ``t_budget`` (seconds from the round's start for download, compute
and upload) and simulates its own times with the job's ``TimeModel``, the one the aggregator
plans with (``fedscale.cloud.time_model``: the same factors, ``clock_factor`` included), so
both ends agree.

Phase 1 (coarse fill) trains in chunks of ``budget_recheck_steps``: before each chunk it
checks that the remaining budget still covers the chunk plus a full upload at the current
rates, using per-step compute time smoothed as an EWMA of what earlier chunks took
(``ewma_lambda``), so the decision uses what the client has observed rather than the trace's
future. A client the time model counts as lost mid-training stops and fails (``ClientFailure``;
under ``dynamic``, once it goes offline; under ``fedscale`` only the finish time counts).
Without phase 2, the steps that still fit run as one last block and the dense update is sent.

Phase 2 (fine trade-off) goes one step at a time: after each step the payload fraction
``keep = clip(budget left / full upload time, min_payload_frac, 1)`` is the largest top-k
upload that fits, and the step's marginal utility is the change in the norm of the top-k
compressed update (a proxy for how much the upload would move the model). An EWMA of that
gain (``ewma_lambda``) stopping at zero, the payload floor, or the budget ends the phase.
Prior art: PyramidFL (Li et al., MobiCom 2022) fills idle time with local steps and shrinks
uploads; TimelyFL (Zhang et al., 2023) adapts the local workload to a round deadline; adaptive
top-k sparsification (Han et al., ICDCS 2020) trades communication for computation.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from fedscale.cloud.execution.compression import topk_sparsify
from fedscale.cloud.execution.torch_client import ClientFailure, ClientUpdate, LocalRun, TorchClient
from fedscale.cloud.time_model import TimeModel


@dataclass(frozen=True)
class AdaptiveSettings:
    """The job's adaptive-training knobs."""

    ewma_lambda: float
    min_payload_frac: float
    budget_recheck_steps: int
    run_phase_2: bool
    batch_size: int


@dataclass
class AdaptiveOutcome:
    """A client's adaptive round: its update and its simulated times."""

    update: ClientUpdate
    t_download: float
    t_compute: float
    t_upload: float
    phase1_steps: int
    phase2_steps: int

    @property
    def wall(self) -> float:
        return self.t_download + self.t_compute + self.t_upload


class AdaptiveTorchClient(TorchClient):
    """TorchClient plus ``train_adaptive``: local steps and upload size chosen under a budget."""

    def __init__(self, *args, time_model: Callable[[int], TimeModel], **kwargs) -> None:
        """``time_model`` builds the job's time model for a model of the given size in bytes
        (the model's own, which this client knows once it holds it)."""
        super().__init__(*args, **kwargs)
        self.times = time_model(self.weights.nbytes)

    def _compute(self, device: np.ndarray, at: float, steps: int, s: AdaptiveSettings) -> float:
        return float(self.times.compute_time(device, at, steps * s.batch_size)[0])

    def _upload(self, device: np.ndarray, at: float, nbytes: float) -> float:
        return float(self.times.upload_time(device, at, nbytes)[0])

    def train_adaptive(self, global_vector: torch.Tensor, client_id: int, round_index: int, learning_rate: float,
                       device: int, round_start: float, t_download: float, t_budget: float,
                       s: AdaptiveSettings, *, proximal_mu: float = 0.0, byzantine: bool = False) -> AdaptiveOutcome:
        """Train client ``client_id`` on device row ``device`` within ``t_budget`` seconds;
        ClientFailure if the device goes offline or the budget does not cover one step."""
        started = time.perf_counter()
        dev = np.array([device])
        model_bytes = self.weights.nbytes
        run = self.start(global_vector, client_id, round_index, s.batch_size, learning_rate, proximal_mu=proximal_mu,
                         byzantine=byzantine)
        now = round_start + t_download
        budget = t_budget - t_download
        step_estimate = self._compute(dev, now, 1, s)
        phase1, chunk = 0, s.budget_recheck_steps
        while True:
            fits = math.floor((budget - self._upload(dev, now, model_bytes)) / step_estimate)
            if fits < chunk:
                break
            elapsed = self._compute(dev, now, chunk, s)
            self.run_steps(run, chunk)
            phase1 += chunk
            budget, now = budget - elapsed, now + elapsed
            if self.times.lost(dev, round_start, now)[0]:
                raise ClientFailure("the device went offline during training")
            step_estimate = s.ewma_lambda * step_estimate + (1 - s.ewma_lambda) * elapsed / chunk
        keep, phase2 = 1.0, 0
        if s.run_phase_2:
            keep, phase2, budget, now = self._phase_2(run, global_vector, dev, budget, now, model_bytes, s)
        elif fits > 0:
            elapsed = self._compute(dev, now, fits, s)
            self.run_steps(run, fits)
            phase1 += fits
            budget, now = budget - elapsed, now + elapsed
        if run.steps == 0:
            raise ClientFailure("the budget does not cover one step and the upload")
        t_compute = now - round_start - t_download
        t_upload = self._upload(dev, now, keep * model_bytes)
        if not self.times.completes(dev, round_start, now + t_upload)[0]:
            raise ClientFailure("the device went offline before finishing")
        update = self.finish(run, global_vector, keep, started)
        return AdaptiveOutcome(update, t_download, t_compute, t_upload, phase1, phase2)

    def _phase_2(self, run: LocalRun, global_vector: torch.Tensor, dev: np.ndarray, budget: float, now: float,
                 model_bytes: int, s: AdaptiveSettings) -> tuple[float, int, float, float]:
        """Step by step until the smoothed marginal gain of the compressed update turns non-positive."""
        keep, steps, gain, previous = 1.0, 0, 0.0, 0.0
        while budget > 0:
            elapsed = self._compute(dev, now, 1, s)
            self.run_steps(run, 1)
            steps += 1
            budget, now = budget - elapsed, now + elapsed
            full_upload = self._upload(dev, now, model_bytes)
            keep = min(1.0, max(s.min_payload_frac, budget / full_upload if full_upload > 0 else 1.0))
            utility = float(topk_sparsify(self.weights.vector - global_vector, keep).norm())
            gain = s.ewma_lambda * gain + (1 - s.ewma_lambda) * (utility - previous)
            previous = utility
            if gain <= 0 or keep <= s.min_payload_frac:
                break
        return keep, steps, budget, now
