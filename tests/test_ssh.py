"""The ssh launcher against a real OpenSSH server on 127.0.0.1 (and, where network namespaces
work, a second host with its own address): hosts checked before anything starts, executors
started and stopped over SSH with nothing left behind, the secret never on a command line."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from fedscale.cloud import commons
from tests import sshd
from tests.jobs import (events, job_pids, run_driver, run_dirs, start_driver, wait_for_event, wait_for_run_dir,
                        wait_until_gone, write_job)

pytestmark = pytest.mark.skipif(not sshd.available(), reason="OpenSSH's sshd is not installed (.ci/run installs it)")


def ssh_job(folder: Path, server: sshd.SshServer, hosts: list[str] | None = None, **conf) -> Path:
    path = write_job(folder, **conf)
    job = yaml.safe_load(path.read_text())
    job.update(launcher="ssh", auth=server.auth)
    if hosts:
        job["worker_ips"] = hosts
    path.write_text(yaml.safe_dump(job))
    return path


def descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def test_executors_start_through_sshd_and_stop_leaves_nothing_on_the_host(tmp_path):
    with sshd.sshd(tmp_path / "sshd") as server:
        job = ssh_job(tmp_path, server, rounds=1000)
        driver = start_driver(tmp_path, "submit", str(job))
        try:
            run_dir = wait_for_run_dir(tmp_path)
            wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.ROUND_BEGIN, round=2)
            processes = job_pids(run_dir)
            executors = [pid for pid, cmd in processes.items() if "fedscale.cloud.execution.executor" in cmd]
            assert len(executors) == 2
            assert all(descends_from(pid, server.process.pid) for pid in executors)  # started by sshd
            assert all(os.getpgid(pid) == pid for pid in executors)  # each leads its own group
            secret = next(e for e in (Path(f"/proc/{executors[0]}/environ").read_bytes().split(b"\0"))
                          if e.startswith(commons.SECRET_ENV.encode())).split(b"=", 1)[1]
            assert len(secret) == 64
            for pid in processes:
                assert secret not in Path(f"/proc/{pid}/cmdline").read_bytes()
            assert secret not in (run_dir / commons.JOB_FILE).read_bytes()

            status = run_driver(tmp_path, "status")
            assert "ssh, 2 executors on 127.0.0.1" in status.stdout
            record = json.loads((tmp_path / "state" / "small.json").read_text())
            groups = record["launcher"]["hosts"][0]["groups"]
            assert sorted(pgid for pgid, _ in groups) == sorted(executors)

            stopped = run_driver(tmp_path, "stop", "small")
            assert stopped.returncode == 0, stopped.stderr
            assert driver.wait(timeout=30) == 130
            wait_until_gone(run_dir, timeout=10)
            for pgid in executors:
                with pytest.raises(ProcessLookupError):
                    os.killpg(pgid, 0)
        finally:
            if driver.poll() is None:
                driver.kill()
            driver.communicate()


def test_a_job_over_ssh_completes_with_the_same_results_as_locally(tmp_path):
    (tmp_path / "local").mkdir()
    local = run_driver(tmp_path / "local", "submit", "--no-plots", str(write_job(tmp_path / "local")))
    assert local.returncode == 0, local.stderr
    with sshd.sshd(tmp_path / "sshd") as server:
        (tmp_path / "ssh").mkdir()
        done = run_driver(tmp_path / "ssh", "submit", "--no-plots", str(ssh_job(tmp_path / "ssh", server)))
    assert done.returncode == 0, done.stderr
    over_ssh, here = (events(run_dirs(tmp_path / d)[0] / commons.AGGREGATOR_LOG) for d in ("ssh", "local"))
    tests = [[(e["round"], e["accuracy"], e["loss"]) for e in log if e["tag"] == commons.TEST_RESULT]
             for log in (over_ssh, here)]
    assert tests[0] == tests[1] and len(tests[0]) == 2
    run_dir = run_dirs(tmp_path / "ssh")[0]
    assert (run_dir / commons.executor_log_name("executor-2")).exists()


@pytest.mark.parametrize("breakage, expected", [
    ("unknown host key", "is not in"),
    ("wrong key", "authentication as"),
    ("missing data", "does not exist there"),
])
def test_a_host_that_fails_its_checks_is_named_in_one_line_and_nothing_starts(tmp_path, breakage, expected):
    with sshd.sshd(tmp_path / "sshd") as server:
        path = ssh_job(tmp_path, server)
        job = yaml.safe_load(path.read_text())
        if breakage == "unknown host key":
            (tmp_path / "empty_known_hosts").write_text("")
            job["auth"]["ssh_known_hosts"] = str(tmp_path / "empty_known_hosts")
        elif breakage == "wrong key":
            sshd.keygen(tmp_path / "other_key")
            job["auth"]["ssh_private_key"] = str(tmp_path / "other_key")
        else:
            job["job_conf"].append({"data_dir": str(tmp_path / "no-such-data")})
        path.write_text(yaml.safe_dump(job))
        result = run_driver(tmp_path, "submit", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "worker_ips: host root@127.0.0.1:" in lines[0] and expected in lines[0], lines
    assert run_dirs(tmp_path) == []


def test_min_workers_lets_a_job_go_on_without_a_host_that_fails(tmp_path):
    with sshd.sshd(tmp_path / "sshd") as server:
        hosts = ["127.0.0.1:[1]", "127.0.0.2:[1]"]  # nothing answers SSH on 127.0.0.2
        refused = run_driver(tmp_path, "submit", str(ssh_job(tmp_path, server, hosts=hosts)))
        assert refused.returncode == 2 and "127.0.0.2" in refused.stderr and "refused" in refused.stderr.lower()
        path = ssh_job(tmp_path, server, hosts=hosts, rounds=2)
        job = yaml.safe_load(path.read_text())
        job["min_workers"] = 1
        path.write_text(yaml.safe_dump(job))
        done = run_driver(tmp_path, "submit", "--no-plots", str(path))
    assert done.returncode == 0, done.stderr
    assert "going on without" in done.stderr and "127.0.0.2" in done.stderr
    log = events(run_dirs(tmp_path)[0] / commons.AGGREGATOR_LOG)
    assert {e["executor"] for e in log if e["tag"] == commons.EXECUTOR_JOINED} == {"executor-1"}


NETNS = "fedscale-test-host"
HOST_ADDRESS, WORKER_ADDRESS = "10.231.0.1", "10.231.0.2"


def _make_namespace() -> bool:
    _remove_namespace()
    commands = [
        ["ip", "netns", "add", NETNS],
        ["ip", "link", "add", "fsveth0", "type", "veth", "peer", "name", "fsveth1"],
        ["ip", "link", "set", "fsveth1", "netns", NETNS],
        ["ip", "addr", "add", f"{HOST_ADDRESS}/24", "dev", "fsveth0"],
        ["ip", "link", "set", "fsveth0", "up"],
        ["ip", "netns", "exec", NETNS, "ip", "addr", "add", f"{WORKER_ADDRESS}/24", "dev", "fsveth1"],
        ["ip", "netns", "exec", NETNS, "ip", "link", "set", "fsveth1", "up"],
        ["ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up"],
    ]
    for command in commands:
        if subprocess.run(command, capture_output=True).returncode != 0:
            _remove_namespace()
            return False
    return True


def _remove_namespace() -> None:
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
    subprocess.run(["ip", "link", "del", "fsveth0"], capture_output=True)


def test_a_second_host_in_a_network_namespace_reaches_the_aggregator_over_tls(tmp_path):
    if not _make_namespace():
        pytest.skip("network namespaces cannot be made here (ip netns needs CAP_NET_ADMIN)")
    try:
        with sshd.sshd(tmp_path / "sshd", address=WORKER_ADDRESS, netns=NETNS) as server:
            path = ssh_job(tmp_path, server, hosts=[f"{WORKER_ADDRESS}:[2]"], rounds=2)
            job = yaml.safe_load(path.read_text())
            job["ps_ip"] = HOST_ADDRESS
            path.write_text(yaml.safe_dump(job))
            done = run_driver(tmp_path, "submit", "--no-plots", str(path))
        assert done.returncode == 0, done.stderr
        log = events(run_dirs(tmp_path)[0] / commons.AGGREGATOR_LOG)
        begin = next(e for e in log if e["tag"] == commons.JOB_BEGIN)
        assert begin["address"].startswith(HOST_ADDRESS) and begin["tls"] is True
        assert log[-1]["tag"] == commons.JOB_END and log[-1]["status"] == commons.STATUS_COMPLETED
    finally:
        _remove_namespace()


def test_a_killed_driver_leaves_no_executor_behind_on_the_host(tmp_path):
    with sshd.sshd(tmp_path / "sshd") as server:
        driver = start_driver(tmp_path, "submit", str(ssh_job(tmp_path, server, rounds=1000)))
        try:
            run_dir = wait_for_run_dir(tmp_path)
            wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.ROUND_BEGIN, round=2)
            assert len([c for c in job_pids(run_dir).values() if "execution.executor" in c]) == 2
            driver.kill()  # no chance to stop anything: the SSH connection drops, the aggregator dies with it
            wait_until_gone(run_dir, timeout=20)
        finally:
            if driver.poll() is None:
                driver.kill()
            driver.communicate()
