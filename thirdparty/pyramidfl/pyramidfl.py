"""PyramidFL: Oort's selection, then per-participant upload dropout and extra local steps.

Li, Zeng, Zhang, Cao, "PyramidFL: A Fine-grained Client Selection Framework for Efficient
Federated Learning", MobiCom 2022 (artifact: liecn/PyramidFL, commit dd1d143a). The abstract
states the idea: choose clients by utility from the server's global view, as Oort does, then
exploit the data and system heterogeneity *among the chosen* so each spends the round usefully.
Once the aggregator knows which K clients will run, those with the most useful updates upload
more of them, those with less upload less (dropout shortens their communication), and clients
that would otherwise wait for the round's slowest run extra local iterations in that idle time.

The rules below follow the authors' artifact (``training/param_server.py``,
``prune_client_tasks``, and the client's ``run_client`` in ``training/learner.py``), which
produced the paper's Figs. 10-13: (1) rank the participants by gradient utility
``||update|| * samples trained / 100``, clients that never ran by their data size (the prior
the artifact registers them with), all of them treated alike from there on; (2) upload dropout
linear in rank between ``dropout_low`` and ``dropout_high``; (3) each client's time with
dropout, ``t' = t_comp + (1 - P) t_comm``, sets the round's length ``max t'``; (4) idle time
before it is filled with extra local iterations, scaled by beta, capped at ``max_extra_factor``
times the base iterations I (the server's cap) and all iterations at ``max(5 epochs of the
client's data, I)`` (the client's cap).

How a client drops the fraction P of its update is ``pyramidfl_dropout``: ``topk`` (default;
the largest-magnitude ``1 - P`` of the entries are sent, as the Bliss re-implementation does)
or ``layer_random`` (the artifact's client, ``training/learner.py``: each model tensor is sent
whole or zeroed with probability P, no rescaling, drawn from a seed of job seed, round and
client). The time model charges an upload of ``(1 - P)`` of the model in both: exactly for
``topk``, the expectation for ``layer_random``. The round is planned before anyone trains, so
the layers actually kept (the executor reports their share as the result's ``keep_fraction``)
cannot shorten or lengthen it; this is the artifact's own accounting, whose server times the
round with ``(1 - P) t_comm`` as well.
"""
from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from fedscale.selection.base import Feedback, Needs, Overrides, UploadDropout
from fedscale.selection.registration import as_ids
from thirdparty.oort.oort import OortConfig, OortSelector


class PyramidFLConfig(OortConfig):
    """Oort's knobs plus PyramidFL's, with the defaults of the released runs (artifact configs and logs).

    ``dropout_low``/``dropout_high``: upload dropout of the highest- and lowest-ranked
    participant. ``adaptive_epoch_beta``: share of a participant's idle time filled with extra
    iterations (1 in the paper's runs; at most 1 keeps the round from lengthening).
    ``max_extra_factor``: extra iterations are capped at this multiple of the base steps;
    ``max_local_epochs``: all iterations at this many epochs of the client's data, unless that is
    below the base steps (the artifact's client, ``training/learner.py`` ``run_client``, 5 epochs).
    Oort's rules default to ``oort_variant: artifact``: the artifact's selection is a copy of
    Oort's own code (SymbioticLab/Oort ``oort/oort.py``).
    """

    default_variant: ClassVar[str] = "artifact"

    dropout_low: float = Field(0.1, ge=0, lt=1,
                               description="PyramidFL: upload dropout of the highest-utility participant.")
    dropout_high: float = Field(0.6, ge=0, lt=1,
                                description="PyramidFL: upload dropout of the lowest-utility participant.")
    adaptive_epoch_beta: float = Field(1.0, ge=0, le=1, description=(
        "PyramidFL: share of a participant's idle time filled with extra local steps."))
    max_extra_factor: float = Field(10.0, ge=0,
                                    description="PyramidFL: cap on extra local steps, as a multiple of local_steps.")
    max_local_epochs: int = Field(5, ge=1, description=(
        "PyramidFL: a participant's steps are capped at this many epochs of its data (never below local_steps)."))
    pyramidfl_dropout: UploadDropout = Field("topk", description=(
        "PyramidFL: how a participant drops its share of the update: topk keeps its largest-magnitude "
        "entries; layer_random (the authors' artifact) zeroes whole tensors at random."))

    @model_validator(mode="after")
    def _dropout_ordered(self) -> PyramidFLConfig:
        if self.dropout_low > self.dropout_high:
            raise ValueError(f"dropout_low: expected at most dropout_high ({self.dropout_high}), got {self.dropout_low}")
        return self


class PyramidFLSelector(OortSelector):
    """Oort's selector plus ``client_overrides``: per-participant local steps and upload dropout.

    Adds the fleet array ``gradient_norm``: the last update norm each client reported (NaN
    until it has run), fed back as ``Feedback.gradient_norm``.
    """

    Config = PyramidFLConfig
    needs = Needs(client_overrides=True)

    _FLEET_ARRAYS = OortSelector._FLEET_ARRAYS + (("gradient_norm", np.float64, np.nan),)

    gradient_norm: np.ndarray
    config: PyramidFLConfig

    def register_feedback(self, feedback: Feedback) -> None:
        """Oort's feedback, plus each finite ``gradient_norm``: it ranks the client the next time
        it runs (artifact step 2: gradient utility)."""
        super().register_feedback(feedback)
        norms = feedback.gradient_norm
        reported = np.isfinite(norms)
        self.gradient_norm[feedback.client_ids[reported]] = norms[reported]

    def client_overrides(self, client_ids: np.ndarray, t_comp: np.ndarray, t_comm: np.ndarray,
                         base_steps: int, batch_size: int, t_fixed: np.ndarray | None = None) -> Overrides:
        """(local steps, upload dropout fraction) for each of the K clients that will run this round.

        ``t_comp``/``t_comm`` are each client's compute and (compressible, upload)
        communication seconds at ``base_steps`` = I iterations of ``batch_size`` samples;
        ``t_fixed`` is time neither changes (the download), 0 if omitted. Following the
        artifact's ``prune_client_tasks`` (``training/param_server.py``) and its client's cap
        (``training/learner.py``, ``run_client``), every participant alike, whether it ran before or not:

        1. Rank the K clients by gradient utility, largest first; a client that never reported
           one ranks by its data size (the artifact registers clients with that prior). Ties keep
           the input order.
        2. Dropout ``P_i = dropout_low + rank_i (dropout_high - dropout_low) / (K - 1)``, linear
           from the best rank to the worst (``dropout_low`` when K = 1).
        3. Round time with dropout ``t'_i = t_fixed_i + t_comp_i + (1 - P_i) t_comm_i``;
           ``T_r = max_i t'_i``.
        4. Extra iterations fill the idle time: ``extra_i = min(floor(max_extra_factor x I),
           floor(beta floor((T_r - t'_i) / (t_comp_i / I))))``. Since each extra iteration costs
           ``t_comp_i / I``, with beta <= 1 no client runs past ``T_r``.
        5. Steps ``min(I + extra_i, max(max_local_epochs x E_i, I))`` with ``E_i = ceil(n_i /
           batch_size)`` steps per epoch of the client's ``n_i`` samples. The artifact's loader
           drops a last partial batch (``floor``); ours trains on every sample, so an epoch is the
           ceiling.
        """
        ids = self._check_registered(as_ids(client_ids, "client_ids"))
        comp = np.asarray(t_comp, dtype=np.float64)
        comm = np.asarray(t_comm, dtype=np.float64)
        fixed = np.zeros_like(comp) if t_fixed is None else np.asarray(t_fixed, dtype=np.float64)
        if not comp.shape == comm.shape == fixed.shape == ids.shape:
            raise ValueError(f"client_ids, t_comp, t_comm and t_fixed differ in shape: {ids.shape}, "
                             f"{comp.shape}, {comm.shape}, {fixed.shape}")
        if not all(np.all(np.isfinite(t) & (t >= 0)) for t in (comp, comm, fixed)):
            raise ValueError("t_comp, t_comm and t_fixed must be finite and non-negative")
        for name, value in (("base_steps", base_steps), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        count = len(ids)
        if count == 0:
            return Overrides(np.empty(0, dtype=np.int64), np.empty(0), self.config.pyramidfl_dropout)
        norms = self.gradient_norm[ids]
        rank = np.empty(count, dtype=np.int64)
        rank[np.argsort(-np.where(np.isfinite(norms), norms, self.num_samples[ids]), kind="stable")] = np.arange(count)
        low, high = self.config.dropout_low, self.config.dropout_high
        spacing = (high - low) / (count - 1) if count > 1 else 0.0
        dropout = low + rank * spacing
        with_dropout = fixed + comp + (1.0 - dropout) * comm
        idle = with_dropout.max() - with_dropout
        cap = math.floor(self.config.max_extra_factor * base_steps)
        fits = np.full(count, float(cap))
        busy = comp > 0
        fits[busy] = np.floor(self.config.adaptive_epoch_beta * np.floor(idle[busy] / (comp[busy] / base_steps)))
        epochs_cap = np.maximum(self.config.max_local_epochs * -(-self.num_samples[ids] // batch_size), base_steps)
        steps = np.minimum(base_steps + np.minimum(fits, cap).astype(np.int64), epochs_cap)
        return Overrides(steps.astype(np.int64), dropout, self.config.pyramidfl_dropout)
