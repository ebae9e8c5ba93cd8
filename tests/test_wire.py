"""The wire: a real gRPC server on 127.0.0.1 and real executor connections."""
import filecmp
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fedscale.cloud.channels import job_api_pb2 as pb
from fedscale.cloud.channels.client import AggregatorConnection, AggregatorLost, Unauthenticated
from fedscale.cloud.channels.server import JOINED, LOST, RESULTS, AggregatorServer
from fedscale.cloud.channels.tensor_codec import CHUNK_BYTES, TensorAssembler, WireError, chunks, framed, headers

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cret-for-tests"


def hello(name="executor-1"):
    return pb.Hello(executor_id=name, client_sample_counts=[3, 4], test_samples=10)


@pytest.fixture
def server():
    srv = AggregatorServer("127.0.0.1", 0, SECRET, max_executors=2, heartbeat_interval=0.2, timeout=1.0)
    yield srv
    srv.stop(0)


def next_event(srv, kind, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = srv.events.get(timeout=deadline - time.monotonic())
        if event.kind == kind:
            return event
    raise AssertionError(f"no {kind} event")


def test_committed_stubs_match_the_proto(tmp_path):
    pytest.importorskip("grpc_tools")
    subprocess.run([sys.executable, str(ROOT / "protos" / "generate.py"), str(tmp_path)], check=True)
    for name in ("job_api_pb2.py", "job_api_pb2_grpc.py"):
        generated = tmp_path / "fedscale/cloud/channels" / name
        assert filecmp.cmp(generated, ROOT / "fedscale/cloud/channels" / name, shallow=False), \
            f"{name} is stale: run python protos/generate.py"


def test_codec_round_trip_keeps_dtype_shape_and_bytes():
    arrays = [("w", np.arange(12, dtype=np.float32).reshape(3, 4)),
              ("empty", np.zeros((0, 5), dtype=np.float64)),
              ("big_endian", np.arange(5, dtype=">i8")),
              ("flags", np.array([True, False]))]
    asm = TensorAssembler(headers(arrays))
    for c in chunks(arrays, chunk_bytes=7):
        asm.add(c)
    out = asm.arrays()
    for name, a in arrays:
        assert out[name].shape == a.shape and out[name].dtype.name == a.dtype.name
        np.testing.assert_array_equal(out[name], a)


def test_codec_rejects_inconsistent_data():
    arrays = [("w", np.ones(4, dtype=np.float32))]
    asm = TensorAssembler(headers(arrays))
    with pytest.raises(WireError):
        asm.add(pb.TensorChunk(tensor=0, data=b"x" * 17))
    with pytest.raises(WireError):
        TensorAssembler([pb.TensorHeader(name="x", dtype="object", shape=[1])])
    with pytest.raises(WireError):
        TensorAssembler([pb.TensorHeader(name="x", dtype="float64", shape=[1 << 40])])


def test_task_and_result_round_trip_a_300mb_tensor(server):
    conn = AggregatorConnection(f"127.0.0.1:{server.port}", SECRET, hello())
    session = next_event(server, JOINED).session
    model = np.random.default_rng(0).standard_normal(75_000_000, dtype=np.float32)  # 300 MB
    session.send_task(pb.Task(task_id=1, kind=pb.TRAIN, round=1, client_ids=[0]), [("model", model)])
    task, tensors = conn.next_task()
    assert task.task_id == 1 and list(task.client_ids) == [0]
    np.testing.assert_array_equal(tensors["model"], model)
    updates = [("updates", tensors["model"][None])]
    batch = pb.TaskResults(task_id=1, results=[pb.ClientResult(client_id=0, num_samples=3)], final=True,
                           tensors=headers(updates))
    conn.send(pb.ExecutorMessage(results=batch), updates)
    event = next_event(server, RESULTS, timeout=60)
    assert event.message.results[0].client_id == 0 and event.message.final
    np.testing.assert_array_equal(event.tensors["updates"][0], model)
    conn.close()


def test_wrong_secret_is_refused(server):
    with pytest.raises(Unauthenticated):
        AggregatorConnection(f"127.0.0.1:{server.port}", "wrong", hello())
    assert server.sessions == []


def test_silent_executor_is_declared_lost(server):
    conn = AggregatorConnection(f"127.0.0.1:{server.port}", SECRET, hello())
    session = next_event(server, JOINED).session
    conn._closed.set()  # stops its heartbeats, as a hung process would
    started = time.monotonic()
    event = next_event(server, LOST, timeout=10)
    assert event.session is session and not session.alive
    assert time.monotonic() - started < 5


def test_executor_learns_when_the_aggregator_goes_away(server):
    conn = AggregatorConnection(f"127.0.0.1:{server.port}", SECRET, hello())
    next_event(server, JOINED)
    server.stop(0)
    with pytest.raises(AggregatorLost):
        conn.next_task()
    conn.close()


def test_a_full_job_refuses_more_executors_until_one_leaves(server):
    first = AggregatorConnection(f"127.0.0.1:{server.port}", SECRET, hello("executor-1"))
    second = AggregatorConnection(f"127.0.0.1:{server.port}", SECRET, hello("executor-2"))
    gone = [next_event(server, JOINED).session for _ in range(2)][0]
    with pytest.raises(AggregatorLost, match="has all the executors it expects"):
        AggregatorConnection(f"127.0.0.1:{server.port}", SECRET, hello("executor-3"))
    first.close()
    assert next_event(server, LOST).session is gone
    third = AggregatorConnection(f"127.0.0.1:{server.port}", SECRET, hello("executor-3"))
    assert next_event(server, JOINED).session.index == 2
    assert sorted(s.executor_id for s in server.live_sessions()) == ["executor-2", "executor-3"]
    second.close()
    third.close()


def test_a_restarted_executor_takes_the_place_of_its_earlier_session(server):
    AggregatorConnection(f"127.0.0.1:{server.port}", SECRET, hello("executor-1"))
    AggregatorConnection(f"127.0.0.1:{server.port}", SECRET, hello("executor-2"))
    earlier = [next_event(server, JOINED).session for _ in range(2)][0]
    again = AggregatorConnection(f"127.0.0.1:{server.port}", SECRET, hello("executor-1"))
    lost = next_event(server, LOST)
    assert lost.session is earlier and "replaced by a new connection" in lost.message
    assert next_event(server, JOINED).session.executor_id == "executor-1"
    assert len(server.live_sessions()) == 2
    again.close()


def test_no_aggregator_is_a_clear_error():
    with pytest.raises(AggregatorLost, match="no aggregator answered"):
        AggregatorConnection("127.0.0.1:1", SECRET, hello(), connect_timeout=0.5)


def test_a_busy_port_is_an_os_error_naming_the_address():
    import socket

    from fedscale.cloud.channels.server import AggregatorServer
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=rf"cannot listen on 127\.0\.0\.1:{port} \(the port is in use"):
            AggregatorServer("127.0.0.1", port, "secret", max_executors=1)


def test_a_second_aggregator_on_the_same_port_is_refused():
    from fedscale.cloud.channels.server import AggregatorServer
    first = AggregatorServer("127.0.0.1", 0, "secret", max_executors=1)
    try:
        with pytest.raises(OSError, match=rf"cannot listen on 127\.0\.0\.1:{first.port} \(the port is in use"):
            AggregatorServer("127.0.0.1", first.port, "other secret", max_executors=1)
    finally:
        first.stop(0)


def test_an_aggregator_without_a_secret_refuses_to_serve():
    from fedscale.cloud.channels.server import AggregatorServer
    with pytest.raises(ValueError, match="refusing to serve without a job secret: set FEDSCALE_JOB_SECRET"):
        AggregatorServer("127.0.0.1", 0, "", max_executors=1)


def test_a_small_payload_travels_inside_its_message_and_a_large_one_after_it():
    def messages(numel):
        arrays = [("model", np.arange(numel, dtype=np.float32))]
        task = pb.ServerMessage(task=pb.Task(task_id=1, kind=pb.TRAIN, tensors=headers(arrays)))
        return list(framed(task, arrays, lambda chunk: pb.ServerMessage(chunk=chunk)))

    small = messages(CHUNK_BYTES // 4)
    assert len(small) == 1 and len(small[0].chunks) == 1 and len(small[0].chunks[0].data) == CHUNK_BYTES
    large = messages(CHUNK_BYTES // 4 + 1)
    assert len(large) == 3 and not large[0].chunks and [m.WhichOneof("body") for m in large] == ["task", "chunk", "chunk"]


def test_chunks_carried_by_a_message_that_announces_no_tensor_drop_the_session(server):
    conn = AggregatorConnection(f"127.0.0.1:{server.port}", SECRET, hello())
    session = next_event(server, JOINED).session
    conn.send(pb.ExecutorMessage(test=pb.TestResult(task_id=1), chunks=[pb.TensorChunk(tensor=0, data=b"x")]))
    event = next_event(server, LOST)
    assert event.session is session and "tensor chunk without a header" in event.message
    conn.close()


def test_an_overflowing_shape_is_a_wire_error():
    with pytest.raises(WireError, match="exceeds"):
        TensorAssembler([pb.TensorHeader(name="x", dtype="float32", shape=[2 ** 62, 3])])


def train_task(session, task_id=1, clients=(0, 1), numel=5):
    session.send_task(pb.Task(task_id=task_id, kind=pb.TRAIN, round=1, client_ids=list(clients)),
                      [("model", np.zeros(numel, dtype=np.float32))])


@pytest.mark.parametrize("batch, reason", [
    (pb.TaskResults(task_id=9, final=True), "results for task 9, which is not a training task of this executor"),
    (pb.TaskResults(task_id=1, failures=[pb.ClientFailure(client_id=7)], final=True),
     "results for clients [7] not assigned to this executor in task 1"),
    (pb.TaskResults(task_id=1, failures=[pb.ClientFailure(client_id=0)], final=True),
     "the final batch leaves clients [1] unreported"),
    (pb.TaskResults(task_id=1, results=[pb.ClientResult(client_id=0)],
                    tensors=[pb.TensorHeader(name="updates", dtype="float32", shape=[2 ** 62, 3])]),
     "announce tensors [updates float32 [4611686018427387904, 3]], expected [updates float32 [1, 5]]"),
])
def test_results_not_asked_for_drop_the_session_at_once(server, batch, reason):
    conn = AggregatorConnection(f"127.0.0.1:{server.port}", SECRET, hello())
    session = next_event(server, JOINED).session
    train_task(session)
    conn.next_task()
    conn.send(pb.ExecutorMessage(results=batch))
    event = next_event(server, LOST)
    assert event.session is session and reason in event.message
    conn.close()


def test_results_for_the_assigned_clients_are_accepted_in_batches(server):
    conn = AggregatorConnection(f"127.0.0.1:{server.port}", SECRET, hello())
    session = next_event(server, JOINED).session
    train_task(session)
    conn.next_task()
    for client, final in ((1, False), (0, True)):
        updates = [("updates", np.full((1, 5), client, dtype=np.float32))]
        conn.send(pb.ExecutorMessage(results=pb.TaskResults(
            task_id=1, results=[pb.ClientResult(client_id=client)], final=final, tensors=headers(updates))), updates)
        event = next_event(server, RESULTS)
        assert event.message.results[0].client_id == client and event.tensors["updates"][0, 0] == client
    conn.close()
