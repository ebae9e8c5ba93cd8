"""The aggregator's side of the wire: a gRPC server holding one session per executor.

Each executor keeps one bidirectional ``Session`` stream open. Tasks are queued on the
session's outbox and written as soon as they exist (no polling); everything the executor
sends is turned into ``ServerEvent``s on one queue that the aggregator's main loop consumes.
A session whose peer disconnects, or stays silent longer than ``timeout`` seconds (executors
heartbeat every ``heartbeat_interval``), is closed and reported as lost; so is one that sends
what it was not asked for (see ``assigned_tasks``) or data that cannot be read.
"""
from __future__ import annotations

import hmac
import itertools
import queue
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import grpc
import numpy as np

from fedscale.cloud.channels import job_api_pb2 as pb
from fedscale.cloud.channels import job_api_pb2_grpc as pb_grpc
from fedscale.cloud.channels.assigned_tasks import AssignedTasks
from fedscale.cloud.channels.tensor_codec import NamedArrays, PayloadReader, WireError, framed, headers
from fedscale.cloud.channels.tls import JobCertificates
from fedscale.cloud.commons import SECRET_ENV, SECRET_METADATA_KEY, console_output_name

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]

# Without port reuse a second aggregator on a busy port fails to bind instead of sharing it.
SERVER_OPTIONS = GRPC_OPTIONS + [("grpc.so_reuseport", 0)]

JOINED, RESULTS, TEST, ERROR, LOST = "joined", "results", "test", "error", "lost"
_CLOSE = object()


@dataclass
class ServerEvent:
    """Something an executor did: ``kind`` is one of JOINED, RESULTS, TEST, ERROR (an internal
    error; ``message`` is its reason), LOST."""

    kind: str
    session: "ExecutorSession"
    message: Any = None
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


class ExecutorSession:
    """The aggregator's handle on one connected executor; ``console`` names the file its
    process's output (an internal error's traceback) goes to."""

    def __init__(self, index: int, hello: pb.Hello) -> None:
        self.index = index
        self.hello = hello
        self.executor_id = hello.executor_id
        self.console = console_output_name(hello.executor_id)
        self.alive = True
        self.last_seen = time.monotonic()
        self.assigned = AssignedTasks()
        self._outbox: queue.Queue = queue.Queue()

    def send(self, message: pb.ServerMessage, arrays: NamedArrays = ()) -> None:
        """Queue a message and the chunks of ``arrays``, written back to back on the stream
        (``framed``: inside the message when small)."""
        self._outbox.put(framed(message, arrays, lambda chunk: pb.ServerMessage(chunk=chunk)))

    def send_task(self, task: pb.Task, arrays: NamedArrays = ()) -> None:
        """Queue ``task`` with ``arrays`` as its tensors; a TRAIN task's results (updates shaped
        like its tensor "model") are then expected from this executor."""
        task.tensors.extend(headers(arrays))
        if task.kind == pb.TRAIN:
            self.assigned.assign(task, dict(arrays)["model"])
        self.send(pb.ServerMessage(task=task), arrays)

    def close(self) -> None:
        self._outbox.put(_CLOSE)


class _Servicer(pb_grpc.JobServiceServicer):
    def __init__(self, server: "AggregatorServer") -> None:
        self._server = server

    def Session(self, request_iterator: Iterator[pb.ExecutorMessage],
                context: grpc.ServicerContext) -> Iterable[pb.ServerMessage]:
        srv = self._server
        metadata = dict(context.invocation_metadata())
        if not hmac.compare_digest(metadata.get(SECRET_METADATA_KEY, "").encode(), srv.secret.encode()):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "wrong or missing job secret")
        try:
            first = next(request_iterator)
        except (StopIteration, grpc.RpcError):
            return
        if first.WhichOneof("body") != "hello":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the first message must be a hello")
        session = srv.join(first.hello)
        if session is None:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the job has all the executors it expects")
        yield pb.ServerMessage(welcome=pb.Welcome(
            executor_index=session.index, heartbeat_interval=srv.heartbeat_interval, timeout=srv.timeout))
        reader = threading.Thread(target=srv._read, args=(session, request_iterator),
                                  name=f"read-{session.executor_id}", daemon=True)
        reader.start()
        yield from srv._write(session, context)


class AggregatorServer:
    """Accepts up to ``max_executors`` live, authenticated executor sessions on ``host:port``; an
    executor that left may be replaced by a new one at any time. With ``credentials`` the port
    speaks mutual TLS only (see ``tls``), else plaintext."""

    def __init__(self, host: str, port: int, secret: str, max_executors: int,
                 heartbeat_interval: float = 1.0, timeout: float = 5.0,
                 credentials: JobCertificates | None = None) -> None:
        if not secret:
            raise ValueError(f"refusing to serve without a job secret: set {SECRET_ENV} (the driver does)")
        self.secret = secret
        self.max_executors = max_executors
        self.heartbeat_interval = heartbeat_interval
        self.timeout = timeout
        self.events: queue.Queue[ServerEvent] = queue.Queue()
        self.sessions: list[ExecutorSession] = []
        self._indices = itertools.count()
        self._lock = threading.Lock()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2 * max_executors + 4),
                                 options=SERVER_OPTIONS)
        pb_grpc.add_JobServiceServicer_to_server(_Servicer(self), self._grpc)
        try:
            if credentials is None:
                self.port = self._grpc.add_insecure_port(f"{host}:{port}")
            else:
                self.port = self._grpc.add_secure_port(f"{host}:{port}", credentials.server_credentials())
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            raise OSError(f"cannot listen on {host}:{port} (the port is in use, or the address is not this "
                          "machine's)")
        self._grpc.start()

    def join(self, hello: pb.Hello,
             session_type: Callable[[int, pb.Hello], ExecutorSession] = ExecutorSession) -> ExecutorSession | None:
        """A session (of ``session_type``) for ``hello``, or None when ``max_executors`` are live. A
        restarted executor takes the place of its earlier session, which is ended (its process is
        gone, or about to be)."""
        with self._lock:
            earlier = [s for s in self.sessions if s.alive and s.executor_id == hello.executor_id]
            self.sessions = [s for s in self.sessions if s.alive]
            if len(self.sessions) - len(earlier) >= self.max_executors:
                return None
            session = session_type(next(self._indices), hello)
            self.sessions.append(session)
        for old in earlier:
            self._lose(old, "replaced by a new connection of the same executor")
        self.events.put(ServerEvent(JOINED, session, hello))
        return session

    def drop(self, session: ExecutorSession, reason: str) -> None:
        """End ``session`` for ``reason``; it is reported as LOST like any executor that goes away."""
        self._lose(session, reason)

    def _lose(self, session: ExecutorSession, reason: str) -> None:
        with self._lock:
            if not session.alive:
                return
            session.alive = False
        session.close()
        self.events.put(ServerEvent(LOST, session, reason))

    def _read(self, session: ExecutorSession, request_iterator: Iterator[pb.ExecutorMessage]) -> None:
        payload = PayloadReader()
        reason = "the executor closed its connection"
        try:
            for msg in request_iterator:
                session.last_seen = time.monotonic()
                kind = msg.WhichOneof("body")
                if kind == "chunk":
                    payload.add(msg.chunk)
                elif kind == "results":
                    session.assigned.admit(msg.results)
                    payload.start(msg.results, msg.results.tensors)
                elif kind in ("test", "error"):
                    self.deliver(session, msg)
                payload.add_all(msg.chunks)
                done = payload.take()
                if done is not None:
                    self.events.put(ServerEvent(RESULTS, session, *done))
        except grpc.RpcError:
            reason = "the executor's connection broke"
        except WireError as err:
            reason = f"the executor sent malformed data: {err}"
        except Exception as err:  # whatever a peer sends, the session ends with a reason, never the thread alone
            reason = f"the executor's messages could not be read: {type(err).__name__}: {err}"
        self._lose(session, reason)

    def _write(self, session: ExecutorSession, context: grpc.ServicerContext) -> Iterator[pb.ServerMessage]:
        while session.alive and context.is_active():
            try:
                item = session._outbox.get(timeout=self.heartbeat_interval)
            except queue.Empty:
                item = iter((pb.ServerMessage(ping=pb.Ping()),))
            if item is _CLOSE:
                return
            if time.monotonic() - session.last_seen > self.timeout:
                self._lose(session, f"no message from the executor for {self.timeout:g} s")
                return
            yield from item
        self._lose(session, "the executor's stream ended")

    def deliver(self, session: ExecutorSession, message: pb.ExecutorMessage,
                tensors: dict[str, np.ndarray] | None = None) -> None:
        """Turn ``message`` of ``session``'s executor, its ``tensors`` complete, into an event: the
        path of test results and errors, and of all an in-process executor sends (its results are
        admitted as those read off the wire, see ``assigned_tasks``)."""
        kind = message.WhichOneof("body")
        if kind == "results":
            try:
                session.assigned.admit(message.results)
            except WireError as err:
                self._lose(session, f"the executor sent malformed data: {err}")
                return
            self.events.put(ServerEvent(RESULTS, session, message.results, tensors or {}))
        elif kind == "test":
            self.events.put(ServerEvent(TEST, session, message.test))
        elif kind == "error":
            self.events.put(ServerEvent(ERROR, session, message.error.reason))

    def live_sessions(self) -> list[ExecutorSession]:
        with self._lock:
            return [s for s in self.sessions if s.alive]

    def stop(self, grace: float = 1.0) -> None:
        """Close every session and stop serving."""
        for session in list(self.sessions):
            session.close()
        self._grpc.stop(grace).wait(grace + 1.0)
