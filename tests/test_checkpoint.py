"""The checkpoint writer: rounds never wait for the disk, the latest state is the one written,
writes are spaced, and the last state is written at close."""
import time

import numpy as np

from fedscale.cloud.aggregation.checkpoint import CheckpointWriter, read_checkpoint


def test_submits_between_spaced_writes_coalesce_to_the_latest_state(tmp_path):
    path, synced = tmp_path / "checkpoint.npz", []
    writer = CheckpointWriter(path, lambda: synced.append(time.monotonic()), spacing=0.4)
    writer.submit({"round": 1, "model": np.full(3, 1, np.float32)})
    time.sleep(0.1)
    assert read_checkpoint(path)["round"] == 1  # the first state is written at once
    started = time.monotonic()
    for round_index in range(2, 51):
        writer.submit({"round": round_index, "model": np.full(3, round_index, np.float32)})
    submitting = time.monotonic() - started
    assert read_checkpoint(path)["round"] == 1  # the next write waits for the spacing
    writer.close()
    state = read_checkpoint(path)
    assert state["round"] == 50 and state["model"].tolist() == [50.0] * 3
    assert submitting < 0.4 and len(synced) == 2  # submit never waited; the close wrote the last state


def test_states_further_apart_than_the_spacing_are_each_written(tmp_path):
    path, written = tmp_path / "checkpoint.npz", []
    writer = CheckpointWriter(path, lambda: None, spacing=0.05)
    for round_index in range(1, 4):
        writer.submit({"round": round_index})
        time.sleep(0.2)
        written.append(read_checkpoint(path)["round"])
    writer.close()
    assert written == [1, 2, 3]
