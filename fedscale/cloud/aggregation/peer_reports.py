"""What the aggregator accepts from an executor that holds the job secret.

The secret authenticates a peer; it does not make what the peer reports true. Each check here
compares a report with what the aggregator knows itself and returns the reason it is refused
(None when it is accepted): a Hello must describe samples of bounded size and, after the first
one, the same data as the first; a client's result must carry the sample count the aggregator
knows for that client, no more local steps than were asked, and finite numbers; a test result
must cover exactly the shard it was asked for. The wire (``channels.assigned_tasks``) has
already checked that results name the executor's own clients and carry updates of the model's
size.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from fedscale.cloud.channels import job_api_pb2 as pb

MAX_SAMPLE_ELEMENTS = 1 << 18      # elements of one input sample (3 x 256 x 256 fits)
MAX_SAMPLE_DIMS = 4
MAX_CLASSES = 1 << 16


def hello_problem(hello: pb.Hello, reference: pb.Hello | None) -> str | None:
    """Why ``hello`` is refused: out of bounds, or (``reference`` being the first accepted one)
    describing other data than ``reference``; None if accepted."""
    shape = list(hello.input_shape)
    if not 1 <= len(shape) <= MAX_SAMPLE_DIMS or min(shape) < 1 or math.prod(shape) > MAX_SAMPLE_ELEMENTS:
        return (f"input_shape {_bounded(shape)} must have 1 to {MAX_SAMPLE_DIMS} positive dimensions and at most "
                f"{MAX_SAMPLE_ELEMENTS} elements")
    if not 1 <= hello.num_classes <= MAX_CLASSES:
        return f"num_classes {hello.num_classes} must be between 1 and {MAX_CLASSES}"
    if not hello.client_sample_counts or min(hello.client_sample_counts) < 0:
        return "client_sample_counts must list a non-negative count for every client"
    if hello.test_samples < 1:
        return f"test_samples {hello.test_samples} must be positive"
    if reference is None:
        return None
    for field in ("input_shape", "num_classes", "test_samples", "client_sample_counts"):
        if _plain(getattr(hello, field)) != _plain(getattr(reference, field)):
            return f"its {field} differs from {reference.executor_id}'s (the first executor's)"
    return None


_RESULT_STATISTICS = tuple(f.name for f in pb.ClientResult.DESCRIPTOR.fields if f.type == f.TYPE_DOUBLE)


def result_problem(result: pb.ClientResult, update_finite: bool, samples: int, max_steps: int | None) -> str | None:
    """Why a client's ``result`` and its update are refused (``update_finite``: every value of
    the update is finite, see ``finite_rows``; ``samples``: the client's sample count;
    ``max_steps``: the local steps asked, None when a time budget decides); None if accepted."""
    if result.num_samples != samples:
        return f"reported {result.num_samples} samples, the client holds {samples}"
    if max_steps is not None and not 1 <= result.local_steps <= max_steps:
        return f"reported {result.local_steps} local steps, 1 to {max_steps} were asked"
    bad = next((name for name in _RESULT_STATISTICS if not math.isfinite(getattr(result, name))), None)
    if bad is not None:
        return f"non-finite {bad}"
    if not update_finite:
        return "non-finite update"
    return None


def finite_rows(updates: np.ndarray) -> np.ndarray:
    """Per row of a batch of updates, whether all its values are finite: one pass over the batch."""
    return np.isfinite(updates).all(axis=1)


def evaluation_problem(result: pb.TestResult, shard_samples: int, predictions_per_sample: int = 1) -> str | None:
    """Why a test ``result`` for a shard of ``shard_samples`` samples is refused; None if
    accepted. ``num_samples`` counts the predictions scored: one per sample for a classifier; for
    a language model one per non-pad next token, so from one to ``predictions_per_sample`` (the
    sequence length) per sample. A non-finite loss is not refused here: an honest executor
    reports one for a diverged model (see ``evaluation_diverged``)."""
    if not shard_samples <= result.num_samples <= shard_samples * predictions_per_sample:
        return (f"test result scores {result.num_samples} predictions, the shard's {shard_samples} samples make "
                f"{shard_samples} to {shard_samples * predictions_per_sample}")
    if not 0 <= result.correct <= result.num_samples:
        return f"test result counts {result.correct} correct of {result.num_samples} samples"
    if result.loss_sum < 0:
        return f"test result has a negative loss sum {result.loss_sum}"
    return None


def evaluation_diverged(result: pb.TestResult) -> bool:
    """True when an executor's test of the global model gave a non-finite loss."""
    return not math.isfinite(result.loss_sum)


def finite(vector: torch.Tensor) -> bool:
    """True when every entry of ``vector`` is finite."""
    return bool(torch.isfinite(vector).all())


def _plain(value: object) -> object:
    return value if isinstance(value, int) else list(value)


def _bounded(values: list[int]) -> str:
    return "[" + ", ".join(map(str, values[:5])) + (", ..." if len(values) > 5 else "") + "]"
