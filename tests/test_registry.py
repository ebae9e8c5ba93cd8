"""The running-jobs registry: records, and records left behind by a driver killed outright."""
import json
import subprocess
import time

from fedscale.deploy import registry
from fedscale.deploy.submit import stop


def test_a_stale_record_whose_pids_were_reused_is_ignored_and_never_signalled(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDSCALE_STATE_DIR", str(tmp_path))
    driver = subprocess.Popen(["sleep", "60"], start_new_session=True)
    group = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        launcher = {"kind": "local", "pgid": group.pid, "pgid_start": registry.process_start(group.pid)}
        registry.register("old", driver_pid=driver.pid, run_dir=str(tmp_path), launcher=launcher)
        assert registry.lookup("old")["driver_pid"] == driver.pid
        record = json.loads((tmp_path / "old.json").read_text())
        (tmp_path / "old.json").write_text(json.dumps(dict(record, driver_start=record["driver_start"] - 1)))
        assert registry.lookup("old") is None and registry.running() == []
        assert not stop("old")
        stale_group = dict(launcher, pgid_start=launcher["pgid_start"] - 1)
        (tmp_path / "old.json").write_text(json.dumps(dict(record, launcher=stale_group)))
        assert stop("old", timeout=2)
        assert driver.wait(timeout=5) != 0
        time.sleep(0.2)
        assert group.poll() is None
    finally:
        for process in (driver, group):
            process.kill()
            process.wait()
