"""Real sweeps: each run a real job (aggregator and executors over gRPC) started by the driver."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.jobs import DRIVER, TWO_RUN_SWEEP

SPEC = TWO_RUN_SWEEP + """
[[runs]]
name = "Krum_noise"
strategy = "Krum"
  [[runs.attacks]]
  type = "gaussian_noise"
  intensity = 5.0
  fraction = 0.2

[[runs]]
name = "broken"
strategy = "FedAvg"
data_set = "femnist"
data_dir = "{empty}"
"""


def sweep(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DRIVER), "sweep", *args], capture_output=True, text=True,
                          timeout=timeout)


def processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and int(pid) != os.getpid():
            found.append(cmdline)
    return found


def test_a_four_run_sweep_with_a_failing_run_writes_everything_and_report_rebuilds_it(tmp_path):
    (tmp_path / "empty").mkdir()
    spec = tmp_path / "robust.toml"
    spec.write_text(SPEC.format(empty=tmp_path / "empty"))
    out = tmp_path / "out"
    result = sweep(str(spec), "--out", str(out), "--parallel", "2")
    assert result.returncode == 1, result.stderr
    assert "[4/4]" in result.stdout and "3_broken error" in result.stdout
    assert "ranked by final accuracy:" in result.stdout and f"comparison: {out / 'comparison.md'}" in result.stdout
    comparison = json.loads((out / "comparison.json").read_text())
    status = {r["run_id"]: r["status"] for r in comparison["runs"]}
    assert status == {"0_FedAvg": "completed", "1_FedMedian": "completed", "2_Krum_noise": "completed",
                      "3_broken": "error"}
    broken = next(r for r in comparison["runs"] if r["run_id"] == "3_broken")
    assert "femnist" in broken["reason"].lower() or "data" in broken["reason"].lower(), broken["reason"]
    for run_id in ("0_FedAvg", "1_FedMedian", "2_Krum_noise"):
        folder = out / run_id
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["rounds"] == 2 and 0 < summary["final_accuracy"] <= 1 and summary["status"] == "completed"
        rows = (folder / "rounds.csv").read_text().splitlines()
        assert rows[0] == ("round,virtual_time,clients,aggregated,byzantine_aggregated,train_loss,test_loss,"
                           "test_accuracy,round_duration,wall_seconds") and len(rows) == 3
        assert json.loads((folder / "outcome.json").read_text())["exit_code"] == 0
        config = json.loads((folder / "config.json").read_text())
        assert config["spec"]["run_id"] == run_id and len(config["config_hash"]) == 16
        assert list(folder.glob("logs/*/*/aggregator.jsonl")) and not list(folder.glob("logs/*/*/*.png"))
    krum = next(c for c in comparison["cells"] if c["group"] == "Krum_noise")
    assert krum["attack"] == "gaussian_noise(sigma=5.0)" and krum["strategy"] == "Krum"
    ranked = [c["metrics"]["final_accuracy"]["mean"] for c in comparison["cells"] if c["metrics"]["final_accuracy"]]
    assert ranked == sorted(ranked, reverse=True) and comparison["cells"][-1]["group"] == "broken"
    markdown = (out / "comparison.md").read_text()
    assert "| Rank | Run | Strategy | Selector | Attack | Final acc |" in markdown
    assert "3_broken: error:" in markdown
    for plot in ("accuracy_vs_round.png", "loss_vs_virtual_time.png"):
        assert (out / plot).read_bytes().startswith(b"\x89PNG")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["python"] == sys.version.split()[0] and manifest["packages"]["torch"]
    assert manifest["host"]["cpus"] >= 1 and manifest["host"]["memory_gib"] > 0 and "git_commit" in manifest
    assert manifest["parallel"] == 2 and manifest["wall_seconds"] > 0
    assert {r["run_id"]: r["status"] for r in manifest["runs"]} == status
    assert [r["run_id"] for r in manifest["spec"]["runs"]] == list(status)

    rebuilt = subprocess.run([sys.executable, str(DRIVER), "report", str(out)], capture_output=True, text=True,
                             timeout=120)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads((out / "comparison.json").read_text()) == comparison

    # --resume keeps the completed runs (same config hash) and runs the failed one again
    started = {run_id: (out / run_id / "driver.out").stat().st_mtime_ns for run_id in status}
    again = sweep(str(spec), "--out", str(out), "--parallel", "2", "--resume")
    assert again.returncode == 1
    after = {run_id: (out / run_id / "driver.out").stat().st_mtime_ns for run_id in status}
    assert [r for r in status if after[r] != started[r]] == ["3_broken"]
    assert "start 0_FedAvg" not in again.stdout and "start 3_broken" in again.stdout


def test_ctrl_c_stops_every_job_within_seconds_and_still_writes_the_comparison(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(DRIVER), "sweep", "--strategies", "FedAvg,FedMedian",
                             "--rounds", "100000", "--parallel", "1", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("0_FedAvg/logs/*/*/aggregator.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)
    assert processes_mentioning(str(out)), "the sweep's jobs should be running"
    proc.send_signal(signal.SIGINT)
    began = time.monotonic()
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - began < 25
    assert processes_mentioning(str(out)) == []
    comparison = json.loads((out / "comparison.json").read_text())
    assert {r["run_id"]: r["status"] for r in comparison["runs"]} == {"0_FedAvg": "stopped",
                                                                    "1_FedMedian": "not_run"}
    assert (out / "comparison.md").exists()


def test_a_wall_budget_stops_the_run_and_keeps_what_it_did(tmp_path):
    spec = tmp_path / "budget.toml"
    spec.write_text('[shared]\nrounds = 100000\neval_interval = 1\nexecutors = 1\nwall_budget = 6\n\n'
                    '[[runs]]\nname = "long"\nstrategy = "FedAvg"\n')
    out = tmp_path / "out"
    began = time.monotonic()
    result = sweep(str(spec), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - began < 40
    summary = json.loads((out / "0_long" / "summary.json").read_text())
    assert summary["status"] == "wall_budget" and summary["rounds"] > 0 and summary["final_accuracy"] > 0
    assert processes_mentioning(str(out)) == []
