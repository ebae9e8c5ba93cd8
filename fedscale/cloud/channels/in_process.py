"""An executor in the aggregator's own process: the same session, tasks and checks, without the wire.

An executor in a process of its own pays on every round for the model going out and the
updates coming back through gRPC, each way a serialised copy and several thread hand-offs:
about a millisecond and a half in all, a sixth of a light round. On this machine the
aggregator, idle while its executors train, hosts ``executor-1`` instead, which serves it from
a thread of its process: its session (``InProcessSession``) queues each task with its arrays
for the executor, and what the executor sends goes through the server's ``deliver``, where
results are admitted as those read off the wire (``assigned_tasks``). The arrays are shared,
not copied: the aggregator replaces its global model with each step, never changes it in
place, and an executor only reads the model it is sent.
"""
from __future__ import annotations

import queue

import numpy as np

from fedscale.cloud.channels import job_api_pb2 as pb
from fedscale.cloud.channels.client import AggregatorLost
from fedscale.cloud.channels.server import AggregatorServer, ExecutorSession
from fedscale.cloud.channels.tensor_codec import NamedArrays
from fedscale.cloud.commons import console_output_name

AGGREGATOR_CONSOLE = console_output_name("aggregator")


class InProcessSession(ExecutorSession):
    """The aggregator's handle on an executor in its process: tasks go to ``tasks`` as they are
    sent; ``None`` there ends the session. The executor's output is the aggregator's."""

    def __init__(self, index: int, hello: pb.Hello) -> None:
        super().__init__(index, hello)
        self.console = AGGREGATOR_CONSOLE
        self.tasks: queue.Queue[tuple[pb.Task, dict[str, np.ndarray]] | None] = queue.Queue()

    def send(self, message: pb.ServerMessage, arrays: NamedArrays = ()) -> None:
        if message.WhichOneof("body") == "task":
            self.tasks.put((message.task, dict(arrays)))

    def close(self) -> None:
        self.tasks.put(None)


class InProcessConnection:
    """The executor's end of an in-process session on ``server`` (what ``AggregatorConnection``
    is over gRPC): joins with ``hello``, then takes tasks and sends results."""

    def __init__(self, server: AggregatorServer, hello: pb.Hello) -> None:
        session = server.join(hello, InProcessSession)
        if session is None:
            raise AggregatorLost("the aggregator has all the executors it expects")
        self.session: InProcessSession = session
        self.welcome = pb.Welcome(executor_index=session.index)
        self._server = server

    def next_task(self) -> tuple[pb.Task, dict[str, np.ndarray]]:
        """The next task and its arrays; AggregatorLost once the session is closed."""
        item = self.session.tasks.get()
        if item is None:
            self.session.tasks.put(None)
            raise AggregatorLost("the aggregator closed the session")
        return item

    def send(self, message: pb.ExecutorMessage, arrays: NamedArrays = ()) -> None:
        self._server.deliver(self.session, message, dict(arrays))

    def close(self) -> None:
        """Nothing to release: the session ends with the aggregator's ``close``."""
