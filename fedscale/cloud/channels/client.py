"""The executor's side of the wire: one session stream to the aggregator.

A reader thread drains the server's stream as it arrives (tasks with their tensors, pings) so
that liveness is tracked even while the executor is busy training; a heartbeat thread keeps
the aggregator informed the other way. If the aggregator disconnects or goes silent for longer
than the timeout it announced, ``next_task`` raises ``AggregatorLost`` (and a busy executor is
ended by its heartbeat thread), so an executor never outlives its job for long.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterator

import grpc
import numpy as np

from fedscale.cloud.channels import job_api_pb2 as pb
from fedscale.cloud.channels import job_api_pb2_grpc as pb_grpc
from fedscale.cloud.channels.server import GRPC_OPTIONS
from fedscale.cloud.channels.tensor_codec import NamedArrays, PayloadReader, WireError, framed
from fedscale.cloud.channels.tls import TARGET_NAME_OPTION, JobCertificates
from fedscale.cloud.commons import SECRET_METADATA_KEY

class AggregatorLost(RuntimeError):
    """The aggregator is gone: its stream ended, broke, or stayed silent too long."""


class Unauthenticated(RuntimeError):
    """The aggregator refused this executor's secret."""


class AggregatorConnection:
    """Opens the session, sends ``hello`` and exposes the task stream.

    ``connect_timeout`` bounds the wait for the aggregator to accept the session. ``on_lost`` is
    called from the heartbeat thread when the aggregator falls silent, for a caller that may be
    too busy to notice through ``next_task`` (an executor exits there). With ``credentials`` the
    channel is mutual TLS (see ``tls``); a failed handshake is an aggregator that never answered.
    """

    def __init__(self, address: str, secret: str, hello: pb.Hello, connect_timeout: float = 30.0,
                 on_lost: Callable[[str], None] | None = None, credentials: JobCertificates | None = None) -> None:
        self._on_lost = on_lost
        self._outbox: queue.Queue = queue.Queue()
        self._tasks: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        self.last_seen = time.monotonic()
        if credentials is None:
            self._channel = grpc.insecure_channel(address, options=GRPC_OPTIONS)
        else:
            self._channel = grpc.secure_channel(address, credentials.channel_credentials(),
                                                options=GRPC_OPTIONS + [TARGET_NAME_OPTION])
        stub = pb_grpc.JobServiceStub(self._channel)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=connect_timeout)
        except grpc.FutureTimeoutError:
            error = _connect_error(stub)
            self._channel.close()
            where = f"{address} over TLS" if credentials is not None else address
            detail = f" (last error: {error})" if error else ""
            raise AggregatorLost(f"no aggregator answered at {where} within {connect_timeout:g} s{detail}") from None
        self._outbox.put(iter((pb.ExecutorMessage(hello=hello),)))
        self._call = stub.Session(self._requests(), metadata=((SECRET_METADATA_KEY, secret),))
        try:
            first = next(self._call)
        except grpc.RpcError as err:
            self._channel.close()
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise Unauthenticated(f"the aggregator at {address} refused the job secret") from None
            raise AggregatorLost(f"the aggregator at {address} refused the session: {err.details()}") from None
        self.welcome = first.welcome
        self.timeout = self.welcome.timeout or 5.0
        self._reader = threading.Thread(target=self._read, name="aggregator-reader", daemon=True)
        self._reader.start()
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()

    def _requests(self) -> Iterator[pb.ExecutorMessage]:
        while True:
            item = self._outbox.get()
            if item is None:
                return
            yield from item

    def _read(self) -> None:
        reason = "the aggregator closed the session"
        payload = PayloadReader()
        try:
            for msg in self._call:
                self.last_seen = time.monotonic()
                kind = msg.WhichOneof("body")
                if kind == "task":
                    payload.start(msg.task, msg.task.tensors)
                elif kind == "chunk":
                    payload.add(msg.chunk)
                payload.add_all(msg.chunks)
                done = payload.take()
                if done is not None:
                    self._tasks.put(done)
        except grpc.RpcError as err:
            reason = f"the aggregator's connection broke ({err.code().name})"
        except WireError as err:
            reason = f"the aggregator sent malformed data: {err}"
        self._tasks.put(AggregatorLost(reason))

    def _heartbeat(self) -> None:
        interval = self.welcome.heartbeat_interval or 1.0
        while not self._closed.wait(interval):
            if time.monotonic() - self.last_seen > self.timeout:
                self._call.cancel()
                if self._on_lost is not None:
                    self._on_lost(f"no message from the aggregator for {self.timeout:g} s")
                return
            self._outbox.put(iter((pb.ExecutorMessage(heartbeat=pb.Heartbeat()),)))

    def next_task(self) -> tuple[pb.Task, dict[str, np.ndarray]]:
        """Block until the next complete task arrives; raise AggregatorLost if it never will."""
        while True:
            try:
                item = self._tasks.get(timeout=self.timeout)
            except queue.Empty:
                if time.monotonic() - self.last_seen > self.timeout:
                    raise AggregatorLost(f"no message from the aggregator for {self.timeout:g} s") from None
                continue
            if isinstance(item, AggregatorLost):
                raise item
            return item

    def send(self, message: pb.ExecutorMessage, arrays: NamedArrays = ()) -> None:
        """Queue ``message`` followed by the chunks of ``arrays``, sent back to back (``framed``:
        inside the message when small)."""
        self._outbox.put(framed(message, arrays, lambda chunk: pb.ExecutorMessage(chunk=chunk)))

    def close(self) -> None:
        """End the session: send what is queued, half-close, wait briefly for the server to finish."""
        self._closed.set()
        self._outbox.put(None)
        self._reader.join(timeout=2.0)
        self._call.cancel()
        self._channel.close()


def _connect_error(stub: pb_grpc.JobServiceStub) -> str:
    """gRPC's last reason for not reaching the aggregator (a refused TLS handshake names its cause),
    learnt from a session request that fails at once on a channel that cannot connect."""
    call = stub.Session(iter(()), timeout=0.5)
    if call.code() != grpc.StatusCode.UNAVAILABLE:
        return ""
    return " ".join((call.details() or "").rsplit("last error: ", 1)[-1].split())
