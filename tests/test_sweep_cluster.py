"""A sweep's runs away from the sweep's process: one cell by index, and a Slurm job array of cells
through submitit (its local executor standing in for Slurm), filling the folder a local sweep fills."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import submitit

from fedscale.cli import main
from fedscale.sweep.plan import write_plan
from fedscale.sweep.runner import SweepRunner
from fedscale.sweep.slurm import SlurmSweepRunner
from fedscale.sweep.spec import from_flags, load_sweep
from tests.jobs import TWO_RUN_SWEEP, driver_env, interrupt_once_runs_started
from tests.test_sweep_e2e import processes_mentioning

RUN_FILES = {"config.json", "driver.out", "job.yml", "logs", "outcome.json", "rounds.csv", "summary.json"}
METRICS = ("status", "rounds", "virtual_seconds", "final_accuracy", "best_accuracy", "final_loss", "best_loss")


def local_executor(folder: Path) -> submitit.AutoExecutor:
    return submitit.AutoExecutor(folder=folder, cluster="local")


def two_run_sweep(folder: Path):
    spec = folder / "two.toml"
    spec.write_text(TWO_RUN_SWEEP)
    return load_sweep(str(spec))


def rounds(folder: Path) -> list[dict[str, str]]:
    with open(folder / "rounds.csv") as f:
        return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in csv.DictReader(f)]


def test_a_cell_runs_the_run_of_its_index_and_a_wrong_index_is_one_line(tmp_path):
    out = tmp_path / "out"
    write_plan(two_run_sweep(tmp_path), out)
    cell = [sys.executable, "-m", "fedscale.sweep.cell", "--sweep-dir", str(out)]
    result = subprocess.run(cell, env=dict(driver_env(tmp_path), JOB_COMPLETION_INDEX="1"), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{out / '1_FedMedian'}: completed"
    assert sorted(p.name for p in out.iterdir()) == ["1_FedMedian", "plan.json"]
    folder = out / "1_FedMedian"
    assert {p.name for p in folder.iterdir()} == RUN_FILES
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["rounds"] == 2 and summary["run_id"] == "1_FedMedian"
    assert len(rounds(folder)) == 2
    assert json.loads((folder / "config.json").read_text())["spec"]["run_id"] == "1_FedMedian"
    assert json.loads((folder / "outcome.json").read_text())["exit_code"] == 0

    for env, message in (({"JOB_COMPLETION_INDEX": "2"}, f"error: {out}: no run 2; the sweep has 2 runs, 0 to 1"),
                         ({"SLURM_ARRAY_TASK_ID": "one"}, "error: SLURM_ARRAY_TASK_ID='one': expected a run index"),
                         ({}, "error: no run index: give --index or set JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID")):
        bad = subprocess.run(cell, env={**{k: v for k, v in driver_env(tmp_path).items()
                                          if k not in ("JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID")}, **env},
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and bad.stderr.startswith(message) and len(bad.stderr.splitlines()) == 1, bad.stderr
    bad = subprocess.run([*cell[:-1], str(tmp_path), "--index", "0"], env=driver_env(tmp_path), capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr == f"error: {tmp_path}: not a prepared sweep folder (no readable plan.json)\n"


def test_a_slurm_array_fills_the_sweep_folder_a_local_sweep_does(tmp_path):
    sweep = two_run_sweep(tmp_path)
    console = io.StringIO()
    runner = SlurmSweepRunner(sweep, tmp_path / "slurm_sweep", stream=console, executor=local_executor)
    comparison = runner.run()
    assert not runner.failed and not runner.interrupted and runner.parallel == 2
    assert "slurm: job array" in console.getvalue() and "[2/2]" in console.getvalue()
    local = SweepRunner(sweep, tmp_path / "local_sweep", parallel=2, stream=io.StringIO())
    expected = local.run()

    slurm_out, local_out = tmp_path / "slurm_sweep", tmp_path / "local_sweep"
    assert {p.name for p in slurm_out.iterdir()} == {p.name for p in local_out.iterdir()} | {"slurm"}
    assert {"plan.json", "manifest.json", "comparison.json", "comparison.md"} <= {p.name for p in local_out.iterdir()}
    assert list((slurm_out / "slurm").glob("*_0_log.out"))
    for run_id in ("0_FedAvg", "1_FedMedian"):
        ours, theirs = slurm_out / run_id, local_out / run_id
        assert {p.name for p in ours.iterdir()} == {p.name for p in theirs.iterdir()} == RUN_FILES
        assert ({p.name for p in ours.glob("logs/*/*/*")} == {p.name for p in theirs.glob("logs/*/*/*")}
                and list(ours.glob("logs/*/*/aggregator.jsonl")))
        summary, same = (json.loads((f / "summary.json").read_text()) for f in (ours, theirs))
        assert summary["status"] == "completed"
        assert {k: summary[k] for k in METRICS} == {k: same[k] for k in METRICS}
        assert rounds(ours) == rounds(theirs) and len(rounds(ours)) == 2
    ranked = [(r["run_id"], r["status"], r["summary"]["final_accuracy"]) for r in comparison["runs"]]
    assert ranked == [(r["run_id"], r["status"], r["summary"]["final_accuracy"]) for r in expected["runs"]]
    manifest = json.loads((slurm_out / "manifest.json").read_text())
    assert {r["run_id"]: r["status"] for r in manifest["runs"]} == {"0_FedAvg": "completed", "1_FedMedian": "completed"}
    assert manifest["wall_seconds"] > 0 and json.loads((slurm_out / "plan.json").read_text()) == sweep.model_dump()


def test_ctrl_c_cancels_the_array_and_records_the_runs_as_stopped(tmp_path):
    out = tmp_path / "out"
    runner = SlurmSweepRunner(from_flags(["FedAvg", "FedMedian"], rounds=100000), out, stream=io.StringIO(),
                              executor=local_executor)

    interrupt_once_runs_started(out, 2)
    comparison = runner.run()
    assert runner.interrupted
    assert {r["run_id"]: r["status"] for r in comparison["runs"]} == {"0_FedAvg": "stopped", "1_FedMedian": "stopped"}
    deadline = time.monotonic() + 30
    while processes_mentioning(str(out)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_mentioning(str(out)) == []


def test_slurm_options_without_slurm_are_one_line_errors(tmp_path, capsys):
    out = tmp_path / "out"
    no_slurm = [] if shutil.which("srun") else [
        (["--cluster", "slurm"], "error: sweep: --cluster slurm: no Slurm here (srun not found)")]
    for args, message in (*no_slurm,
                          (["--slurm-partition", "gpu"], "error: sweep: --slurm-partition and --slurm-time need "
                                                         "--cluster slurm"),
                          (["--cluster", "slurm", "--slurm-time", "0"], "error: sweep: --slurm-time: expected whole "
                                                                         "minutes >= 1, got 0")):
        assert main(["sweep", "--strategies", "FedAvg", "--rounds", "1", "--out", str(out), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and len(err.splitlines()) == 1, err
    assert not out.exists()
