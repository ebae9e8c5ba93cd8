"""What an executor may send back: results for the TRAIN tasks it was given, nothing else.

The aggregator records each TRAIN task it sends to a session (its clients and the model's
dtype and element count). A results batch is admitted only if it names such a task, reports
each of that task's clients at most once and no other client, carries exactly one update row of
the model's size per result, and, when ``final``, leaves none of the task's clients unreported.
This is checked on the batch's headers, before any of its tensor bytes are received, so a peer
holding the job secret still cannot make the aggregator allocate more than the update batch it
asked for.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from fedscale.cloud.channels import job_api_pb2 as pb
from fedscale.cloud.channels.tensor_codec import WireError

UPDATES = "updates"


@dataclass
class _Assignment:
    pending: set[int]
    dtype: str
    numel: int


class AssignedTasks:
    """The TRAIN tasks of one session whose results are still due (thread-safe: the aggregator
    assigns, the session's reader admits)."""

    def __init__(self) -> None:
        self._tasks: dict[int, _Assignment] = {}
        self._lock = threading.Lock()

    def assign(self, task: pb.Task, model: np.ndarray) -> None:
        """Expect results for ``task``'s clients, with updates shaped like ``model``."""
        with self._lock:
            self._tasks[task.task_id] = _Assignment(set(task.client_ids), model.dtype.name, model.size)

    def admit(self, batch: pb.TaskResults) -> None:
        """Accept ``batch`` (its clients are then no longer due) or raise WireError saying why."""
        with self._lock:
            task = self._tasks.get(batch.task_id)
            if task is None:
                raise WireError(f"results for task {batch.task_id}, which is not a training task of this executor "
                                "awaiting results")
            reported = [r.client_id for r in batch.results] + [f.client_id for f in batch.failures]
            foreign = sorted(set(reported) - task.pending)
            if foreign:
                raise WireError(f"results for clients {foreign[:5]} not assigned to this executor in task "
                                f"{batch.task_id} (or already reported)")
            if len(set(reported)) != len(reported):
                raise WireError(f"task {batch.task_id}: a client is reported twice in one batch")
            _check_updates(batch, task)
            task.pending -= set(reported)
            if batch.final:
                if task.pending:
                    raise WireError(f"task {batch.task_id}: the final batch leaves clients "
                                    f"{sorted(task.pending)[:5]} unreported")
                del self._tasks[batch.task_id]


def _check_updates(batch: pb.TaskResults, task: _Assignment) -> None:
    expected = [(UPDATES, task.dtype, [len(batch.results), task.numel])] if batch.results else []
    announced = [(h.name, h.dtype, list(h.shape)) for h in batch.tensors]
    if announced != expected:
        raise WireError(f"task results announce tensors {_describe(announced)}, expected {_describe(expected)}")


def _describe(tensors: list[tuple[str, str, list[int]]]) -> str:
    """A bounded one-line rendering of announced tensors (a peer's lists may be long)."""
    def one(name: str, dtype: str, shape: list[int]) -> str:
        return f"{name[:40]} {dtype[:16]} [{', '.join(map(str, shape[:4]))}{', ...' if len(shape) > 4 else ''}]"
    return "[" + ", ".join(one(*t) for t in tensors[:3]) + (", ..." if len(tensors) > 3 else "") + "]"
