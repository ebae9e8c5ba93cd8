"""The device time model: how long each client's round takes (download, compute, upload) and
whether it completes, from the fleet's capacities, traces and availability.

Both ends of a round use one ``TimeModel``: the client manager plans rounds with it and the
adaptive client fits its work to the budget with it, so the two always agree. ``time_model``
chooses between two models:

* ``fedscale`` (``FedScaleTimeModel``): FedScale's own formula (Lai et al., "FedScale", ICML
  2022; SymbioticLab/FedScale ``fedscale/cloud/internal/client_metadata.py``
  ``get_completion_time`` and ``aggregation/aggregator.py`` ``tictak_client_tasks``) on the
  fleet's constant capacities, no trace.
* ``dynamic`` (``DynamicTimeModel``): the same capacities modulated over time by the fleet's
  bandwidth (LiveLab) and free-CPU (Carat) traces, as Bliss's fork of FedScale does
  (github.com/Bossbap/Bliss), each trace rescaled to mean 1 so the measured capacity stays the
  long-run mean, with Bliss's asymmetric link.

``clock_factor`` multiplies each phase's work, so it scales the whole round time (download +
compute + upload): exactly under ``fedscale``, and under ``dynamic`` each phase lasts as long as
``clock_factor`` times its work takes at the trace's rates. FedScale's own flag ("refactor the
clock time given the profile", multiplied by a per-model speed ratio in its ``config_parser``)
describes compute speed; to scale compute only, scale ``augmentation_factor`` instead, which
multiplies compute alone.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from fedscale.cloud.config.components import FleetConfig
from fedscale.cloud.internal.client_metadata import BITS_PER_KILOBIT, Fleet, Times

__all__ = ["TimeModel", "FedScaleTimeModel", "DynamicTimeModel", "build_time_model"]

FEDSCALE_BITS_PER_KILOBIT = 1024.0


@dataclass(frozen=True)
class TimeModel(ABC):
    """Phase durations and the completion rule of one fleet under one job's factors.

    ``rows`` are device rows of ``fleet``; every method is vectorised over them.
    """

    fleet: Fleet
    augmentation_factor: float = 3.0
    clock_factor: float = 1.0
    payload_scale: float = 1.0

    def charged(self, nbytes: Times) -> np.ndarray:
        """The bytes a transfer of ``nbytes`` of the trained model is timed as: ``payload_scale``
        times them, so a job can train a small model while timing the links for a large one
        (``model_size``)."""
        return self.payload_scale * np.asarray(nbytes, dtype=np.float64)

    def nominal_compute(self, rows: np.ndarray, samples: Times) -> np.ndarray:
        """Seconds to train on ``samples`` at the measured latency: FedScale's
        ``augmentation_factor * samples * ms_per_sample / 1000`` (the factor 3 covers forward
        and backward passes on AI-Benchmark's inference latency), times ``clock_factor``."""
        work = (self.augmentation_factor * self.clock_factor / 1000.0) * np.asarray(samples, dtype=np.float64)
        return work * self.fleet.compute_ms[rows]

    @abstractmethod
    def download_time(self, rows: np.ndarray, t0: Times, nbytes: Times) -> np.ndarray:
        """Seconds to receive ``nbytes`` starting at ``t0``."""

    @abstractmethod
    def compute_time(self, rows: np.ndarray, t0: Times, samples: Times) -> np.ndarray:
        """Seconds to train on ``samples`` starting at ``t0``."""

    @abstractmethod
    def upload_time(self, rows: np.ndarray, t0: Times, nbytes: Times) -> np.ndarray:
        """Seconds to send ``nbytes`` starting at ``t0``."""

    @abstractmethod
    def completes(self, rows: np.ndarray, t0: Times, finish: Times) -> np.ndarray:
        """Whether a client that started at ``t0`` and finishes at ``finish`` delivers its update."""

    @abstractmethod
    def lost(self, rows: np.ndarray, t0: Times, t: Times) -> np.ndarray:
        """Whether a client that started at ``t0`` has already failed at ``t``, whatever follows
        (lets a client stop training early)."""

    def round_times(self, rows: np.ndarray, t0: Times, batch_size: int, local_steps: Times, model_bytes: float,
                    upload_bytes: Times | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(t_dl, t_comp, t_ul)`` of one round: download the model from ``t0``, then train
        ``batch_size * local_steps`` samples, then upload ``upload_bytes`` (default: the model)."""
        rows = np.asarray(rows)
        start = np.asarray(t0, dtype=np.float64)
        t_dl = self.download_time(rows, start, model_bytes)
        t_comp = self.compute_time(rows, start + t_dl, batch_size * np.asarray(local_steps, dtype=np.float64))
        sent = model_bytes if upload_bytes is None else upload_bytes
        t_ul = self.upload_time(rows, start + t_dl + t_comp, sent)
        return t_dl, t_comp, t_ul


@dataclass(frozen=True)
class FedScaleTimeModel(TimeModel):
    """FedScale's round (Lai et al., ICML 2022; SymbioticLab/FedScale ``client_metadata.py``
    ``get_completion_time``, ``aggregator.py`` ``tictak_client_tasks``).

    Compute ``augmentation_factor * batch * steps * ms_per_sample / 1000``; communication
    ``(upload + download) / bandwidth`` on one symmetric link at the constant measured rate
    (MobiPerf kbps), payloads in FedScale's kilobits of 1,024 bits (``bytes / 1024 * 8``). The
    communication is split as download then upload (each payload over the bandwidth) for the
    log and for selectors that trade upload size. A candidate counts if it is online at its
    finish time (``is_active(start + duration)``), whatever happened in between.
    """

    def _transfer(self, rows: np.ndarray, nbytes: Times) -> np.ndarray:
        kilobits = self.charged(nbytes) * 8.0 / FEDSCALE_BITS_PER_KILOBIT
        return self.clock_factor * kilobits / self.fleet.bandwidth_kbps[rows].astype(np.float64)

    def download_time(self, rows: np.ndarray, t0: Times, nbytes: Times) -> np.ndarray:
        return self._transfer(np.asarray(rows), nbytes)

    def compute_time(self, rows: np.ndarray, t0: Times, samples: Times) -> np.ndarray:
        return self.nominal_compute(np.asarray(rows), samples)

    def upload_time(self, rows: np.ndarray, t0: Times, nbytes: Times) -> np.ndarray:
        return self._transfer(np.asarray(rows), nbytes)

    def completes(self, rows: np.ndarray, t0: Times, finish: Times) -> np.ndarray:
        return self.fleet.is_active(rows, finish)

    def lost(self, rows: np.ndarray, t0: Times, t: Times) -> np.ndarray:
        return np.zeros(len(rows), dtype=bool)


@dataclass(frozen=True)
class DynamicTimeModel(TimeModel):
    """Trace-modulated rates (Bliss's time-varying FedScale model, github.com/Bossbap/Bliss),
    without discounting measured capacities a second time.

    The downlink is ``bandwidth_kbps * rate(t) / mean(rate)``: ``bandwidth_kbps`` is MobiPerf's
    measured throughput and ``rate`` the LiveLab 802.11 PHY-rate factor (Shepard et al.,
    SIGMETRICS PER 2011), divided by its template's cycle mean so that it only redistributes the
    measured throughput over time. The uplink is the downlink times ``reduction_factor``
    (Bliss's asymmetric-link assumption; FedScale uses one symmetric link). Compute runs at the
    measured AI-Benchmark latency divided by ``cpu(t) / mean(cpu)``, the Carat free-CPU trace
    (Oliner et al., SenSys 2013) likewise rescaled. A phase that crosses trace steps is timed by
    inverting the running integral of its rate. A candidate counts only if it stays online from
    the round's start until it finishes.
    """

    reduction_factor: float = 0.5

    def _transfer(self, rows: np.ndarray, t0: Times, nbytes: Times, link_factor: float) -> np.ndarray:
        bits_per_second = self.fleet.bandwidth_kbps[rows].astype(np.float64) * BITS_PER_KILOBIT * link_factor
        nominal = self.clock_factor * self.charged(nbytes) * 8.0 / bits_per_second
        trace = self.fleet.rate
        return trace.time_to_accumulate(rows, t0, nominal * trace.cycle_mean(rows))

    def download_time(self, rows: np.ndarray, t0: Times, nbytes: Times) -> np.ndarray:
        return self._transfer(np.asarray(rows), t0, nbytes, 1.0)

    def compute_time(self, rows: np.ndarray, t0: Times, samples: Times) -> np.ndarray:
        rows = np.asarray(rows)
        trace = self.fleet.cpu
        return trace.time_to_accumulate(rows, t0, self.nominal_compute(rows, samples) * trace.cycle_mean(rows))

    def upload_time(self, rows: np.ndarray, t0: Times, nbytes: Times) -> np.ndarray:
        return self._transfer(np.asarray(rows), t0, nbytes, self.reduction_factor)

    def completes(self, rows: np.ndarray, t0: Times, finish: Times) -> np.ndarray:
        return self.fleet.stays_active(rows, t0, finish)

    def lost(self, rows: np.ndarray, t0: Times, t: Times) -> np.ndarray:
        return ~self.fleet.stays_active(rows, t0, t)


def build_time_model(fleet: Fleet, conf: FleetConfig, model_bytes: int) -> TimeModel:
    """The job's ``time_model`` on ``fleet`` with the job's factors, for a trained model of
    ``model_bytes``; ``model_size`` (FedScale's kilobits of 1,024 bits), when set, is the size
    the links are timed for instead."""
    scale = conf.model_size * FEDSCALE_BITS_PER_KILOBIT / 8.0 / model_bytes if conf.model_size else 1.0
    if conf.time_model == "fedscale":
        return FedScaleTimeModel(fleet, conf.augmentation_factor, conf.clock_factor, scale)
    return DynamicTimeModel(fleet, conf.augmentation_factor, conf.clock_factor, scale, conf.reduction_factor)
