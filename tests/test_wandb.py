"""W&B: one run per job from the aggregator, read back from its offline run file; the key stays
out of every command line and file; a missing package is a note."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from fedscale.cloud import commons
from tests.jobs import DRIVER, driver_env, events, job_pids, run_dirs, wait_for_event, write_job

pb = pytest.importorskip("wandb.proto.wandb_internal_pb2")

TOKEN = "0123456789abcdef0123456789abcdef01234567"  # a W&B key's shape: 40 hex digits
BLOCK, HEADER = 32768, 7


def records(path: Path) -> Iterator[Any]:
    """The records of a W&B run file (``run-<id>.wandb``): a 7-byte header, then 32 KiB blocks
    of chunks (crc32, length, type: full, first, middle or last) holding protobuf Records."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, pending = HEADER, b""
    while position + HEADER <= len(data):
        if BLOCK - position % BLOCK < HEADER:
            position += BLOCK - position % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + HEADER])
        pending += data[position + HEADER:position + HEADER + length]
        position += HEADER + length
        if kind in (1, 4) and pending:
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def offline_run(run_dir: Path) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """(the run record, the history rows, the summary) of the job's one offline W&B run."""
    files = list(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    run, history, summary = None, [], {}
    for record in records(files[0]):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
        elif kind == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.history.item})
        elif kind == "summary":
            summary.update({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.summary.update})
    return run, history, summary


def offline_env(folder: Path) -> dict[str, str]:
    return dict(driver_env(folder), WANDB_MODE="offline")


def test_a_job_logs_every_round_to_one_offline_run_and_the_key_stays_secret(tmp_path):
    job = write_job(tmp_path, executors=2, rounds=4, eval_interval=2, wandb_token=TOKEN)
    driver = subprocess.Popen([sys.executable, str(DRIVER), "submit", str(job)], cwd=tmp_path,
                              env=offline_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = None
    while run_dir is None and driver.poll() is None:
        run_dir = next(iter(run_dirs(tmp_path)), None)
        time.sleep(0.05)
    wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.ROUND_BEGIN, round=2)
    command_lines = [p.read_bytes() for p in Path("/proc").glob("[0-9]*/cmdline") if p.exists()]
    environments = {" ".join(command.split()[:2]): Path(f"/proc/{pid}/environ").read_bytes()
                    for pid, command in job_pids(run_dir).items()}
    assert len(environments) == 4 and not any(TOKEN.encode() in block for block in environments.values())
    stdout, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 0, stderr
    assert not any(TOKEN.encode() in line for line in command_lines)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p != job and TOKEN.encode() in p.read_bytes()]
    assert TOKEN not in stdout + stderr

    log = events(run_dir / commons.AGGREGATOR_LOG)
    run, history, summary = offline_run(run_dir)
    assert run.display_name == "small" and run.project == "fedscale"
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["rounds"] == 4 and config["wandb_token"] == ""
    trained = {row["round"]: row for row in history if "train/loss" in row}
    tested = {row["round"]: row for row in history if "test/accuracy" in row}
    ends = [e for e in log if e["tag"] == commons.ROUND_END]
    assert sorted(trained) == [e["round"] for e in ends] == [1, 2, 3, 4]
    for end in ends:
        row = trained[end["round"]]
        assert row["train/loss"] == pytest.approx(end["train_loss"])
        assert row["virtual_time"] == pytest.approx(end["virtual_time"])
        assert row["clients/aggregated"] == end["aggregated"]
        assert row["round/duration"] == pytest.approx(end["round_duration"])
    tests = [e for e in log if e["tag"] == commons.TEST_RESULT]
    assert sorted(tested) == [e["round"] for e in tests] == [2, 4]
    for test in tests:
        assert tested[test["round"]]["test/accuracy"] == pytest.approx(test["accuracy"])
        assert tested[test["round"]]["test/loss"] == pytest.approx(test["loss"])
    assert summary["status"] == "completed" and summary["rounds_completed"] == 4
    assert summary["final/accuracy"] == pytest.approx(tests[-1]["accuracy"])


def test_without_the_package_the_job_runs_with_a_one_line_note(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import sys\nsys.modules['wandb'] = None\n")
    env = dict(offline_env(tmp_path), PYTHONPATH=os.pathsep.join([str(shim), driver_env(tmp_path)["PYTHONPATH"]]))
    done = subprocess.run([sys.executable, str(DRIVER), "submit", str(write_job(tmp_path, executors=1, rounds=2))],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "W&B" in line]
    assert len(notes) == 1 and "wandb package is not installed" in notes[0]
    assert not list(run_dirs(tmp_path)[-1].glob("wandb"))


def test_a_sweep_groups_its_runs_and_names_them(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(DRIVER), "sweep", "--strategies", "FedAvg,FedMedian", "--rounds", "2",
                           "--out", str(out)], env=offline_env(tmp_path), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    for run_id, strategy in (("0_FedAvg", "FedAvg"), ("1_FedMedian", "FedMedian")):
        run_dir = next((out / run_id / "logs").glob("*/*"))
        run, history, _ = offline_run(run_dir)
        assert (run.run_group, run.job_type, run.display_name) == ("out", strategy, run_id)
        assert [row["round"] for row in history if "train/loss" in row] == [1, 2]


def test_the_run_id_comes_from_the_run_folder_so_a_resumed_job_goes_on_in_the_same_run(tmp_path):
    from fedscale.cloud.logger.wandb_run import run_id
    run_dir = tmp_path / "logs" / "small" / "20261204_120000"
    assert run_id(run_dir) == "small-20261204_120000"
    assert run_id(tmp_path / "logs" / "a b" / "x:y") == "a-b-x-y"

