"""A sweep's runs as a Kubernetes Indexed Job of cells, without a cluster: a stand-in cluster runs
each index's container command, as rendered, as a local process, and the sweep folder must be the
one a local sweep fills; --render-only and the refusals go through the real command line."""
from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from kubernetes import client

from fedscale.cli import main
from fedscale.cloud.config_parser import DEFAULT_JOB
from fedscale.deploy import kubernetes as k8s
from fedscale.sweep.cell import run_cell
from fedscale.sweep.kubernetes_sweep import KubernetesSweepRunner
from fedscale.sweep.plan import write_plan
from fedscale.sweep.runner import SweepRunner
from fedscale.sweep.spec import from_flags
from tests.jobs import driver_env, interrupt_once_runs_started, run_driver
from tests.test_kubernetes import container, validate
from tests.test_sweep_cluster import METRICS, RUN_FILES, rounds, two_run_sweep
from tests.test_sweep_e2e import processes_mentioning

CLAIM = "sweeps"


class LocalCluster:
    """A stand-in for a cluster that runs an Indexed Job's pods as local processes: ``create``
    validates the manifest strictly and runs each index's container command (``python`` this
    Python) with ``JOB_COMPLETION_INDEX`` set, at most ``parallelism`` at once; ``jobs`` reports
    the ended indexes and the Job's end as the API does; ``delete`` ends the pods as the cluster
    does (SIGTERM, SIGKILL after their grace), then the Job is gone. The pod of an index in
    ``killed`` is killed (SIGKILL, an out-of-memory kill) as soon as it starts. ``pods`` shows a
    pod that cannot pull its image, and one being created, while the Job runs."""

    context, where = "lab", "lab/research"

    def __init__(self, env: dict[str, str], namespace: str = "", killed: tuple[int, ...] = ()) -> None:
        self.namespace = namespace or "research"
        self.env, self.killed = env, set(killed)
        self.docs: list[dict] = []
        self.deleted: list[tuple[str, str, str]] = []
        self.codes: dict[int, int] = {}
        self.lock = threading.Lock()
        self.deleting = threading.Event()
        self.gone = threading.Event()

    def version(self) -> tuple[int, int]:
        return 1, 30

    def create(self, doc: dict) -> str:
        validate([doc])
        assert doc["metadata"]["namespace"] == self.namespace
        self.docs.append(doc)
        threading.Thread(target=self._run, args=(doc,), daemon=True).start()
        return "uid-1"

    def _run(self, doc: dict) -> None:
        spec, cell = doc["spec"], container(doc)
        command = [sys.executable if word == "python" else word for word in cell["command"] + cell["args"]]
        env = {**self.env, **{entry["name"]: entry["value"] for entry in cell["env"]}}
        pending, running = list(range(spec["completions"])), {}
        while pending or running:
            while pending and len(running) < spec["parallelism"] and not self.deleting.is_set():
                index = pending.pop(0)
                running[index] = subprocess.Popen(command, env={**env, "JOB_COMPLETION_INDEX": str(index)},
                                                  stdout=subprocess.DEVNULL, start_new_session=True)
                if index in self.killed:
                    running[index].kill()
            if self.deleting.is_set():
                pending.clear()
                self._end_pods(list(running.values()), doc["spec"]["template"]["spec"])
            for index, proc in list(running.items()):
                if proc.poll() is not None:
                    with self.lock:
                        self.codes[index] = proc.returncode
                    del running[index]
            time.sleep(0.1)
        if self.deleting.is_set():
            self.gone.set()

    @staticmethod
    def _end_pods(procs: list[subprocess.Popen], pod: dict) -> None:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + pod["terminationGracePeriodSeconds"]
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def jobs(self, run: str) -> dict[str, client.V1Job]:
        (doc,) = self.docs
        assert run == doc["metadata"]["labels"][k8s.JOB_LABEL] == doc["metadata"]["name"]
        if self.gone.is_set():
            return {}
        with self.lock:
            codes = dict(self.codes)
        status = {"completedIndexes": ",".join(str(i) for i in sorted(codes) if codes[i] == 0),
                  "failedIndexes": ",".join(str(i) for i in sorted(codes) if codes[i] != 0)}
        if len(codes) == doc["spec"]["completions"]:
            status["conditions"] = [{"type": "Failed" if status["failedIndexes"] else "Complete", "status": "True"}]
        return {run: client.V1Job.from_dict({**doc, "status": status})}

    def pods(self, run: str) -> list[client.V1Pod]:
        def waiting(name: str, reason: str, message: str = "") -> client.V1Pod:
            return client.V1Pod.from_dict({"metadata": {"name": name}, "status": {"containerStatuses": [
                {"name": "sweep-cell", "image": "i", "imageID": "", "ready": False, "restartCount": 0,
                 "state": {"waiting": {"reason": reason, "message": message}}}]}})
        return [waiting(f"{run}-0-x1", "ErrImagePull", "pull access denied"),
                waiting(f"{run}-1-x2", "ContainerCreating")]

    def delete(self, kind: str, name: str, uid: str = "") -> None:
        self.deleted.append((kind, name, uid))
        self.deleting.set()

    def wait(self, timeout: float = 180) -> None:
        """Until every index of the one Job created has ended."""
        deadline = time.monotonic() + timeout
        while len(self.codes) < self.docs[0]["spec"]["completions"] and time.monotonic() < deadline:
            time.sleep(0.2)


def runner(sweep, out: Path, cluster: LocalCluster, **options) -> KubernetesSweepRunner:
    return KubernetesSweepRunner(sweep, out, stream=io.StringIO(), claim=CLAIM, image="fedscale:1",
                                 cluster=lambda namespace: cluster, **options)


def assert_same_runs(ours: Path, theirs: Path, run_ids: tuple[str, ...]) -> None:
    for run_id in run_ids:
        assert {p.name for p in (ours / run_id).iterdir()} == {p.name for p in (theirs / run_id).iterdir()} == RUN_FILES
        assert {p.name for p in (ours / run_id).glob("logs/*/*/*")} == {p.name for p in
                                                                       (theirs / run_id).glob("logs/*/*/*")}
        summary, same = (json.loads((f / run_id / "summary.json").read_text()) for f in (ours, theirs))
        assert summary["status"] == "completed"
        assert {k: summary[k] for k in METRICS} == {k: same[k] for k in METRICS}
        assert rounds(ours / run_id) == rounds(theirs / run_id) and len(rounds(ours / run_id)) == 2


def test_an_indexed_job_fills_the_sweep_folder_a_local_sweep_does_and_resume_runs_what_is_left(tmp_path):
    sweep = two_run_sweep(tmp_path)
    out, local_out = tmp_path / "k8s_sweep", tmp_path / "local_sweep"
    cluster = LocalCluster(driver_env(tmp_path))
    ours = runner(sweep, out, cluster)
    comparison = ours.run()
    assert not ours.failed and not ours.interrupted and ours.parallel == 2
    expected = SweepRunner(sweep, local_out, parallel=2, stream=io.StringIO()).run()

    (job,) = cluster.docs
    assert [job] == list(yaml.safe_load_all((out / k8s.MANIFESTS).read_text()))
    name = job["metadata"]["name"]
    assert name.startswith("sweep-k8s-sweep-") and job["spec"]["completions"] == job["spec"]["parallelism"] == 2
    cell = container(job)
    assert cell["args"] == ["--sweep-dir", str(out)] and cell["image"] == "fedscale:1"
    assert cell["resources"]["requests"]["cpu"] == "1"
    assert cell["volumeMounts"] == [{"name": "sweep", "mountPath": str(out)}]
    assert job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": CLAIM}
    console = ours.stream.getvalue()
    assert f"kubernetes: Job {name} in lab/research, 2 cells, image fedscale:1" in console and "[2/2]" in console
    assert console.count("ErrImagePull: pull access denied") == 1 and "ContainerCreating" not in console

    assert {p.name for p in out.iterdir()} == {p.name for p in local_out.iterdir()} | {k8s.MANIFESTS}
    assert_same_runs(out, local_out, ("0_FedAvg", "1_FedMedian"))
    ranked = [(r["run_id"], r["status"], r["summary"]["final_accuracy"]) for r in comparison["runs"]]
    assert ranked == [(r["run_id"], r["status"], r["summary"]["final_accuracy"]) for r in expected["runs"]]
    manifest = json.loads((out / "manifest.json").read_text())
    assert {r["run_id"]: r["status"] for r in manifest["runs"]} == {"0_FedAvg": "completed", "1_FedMedian": "completed"}
    assert manifest["wall_seconds"] > 0 and json.loads((out / "plan.json").read_text()) == sweep.model_dump()

    # --resume: the Job has a cell for the one run left, which runs that run (--runs)
    kept = (out / "0_FedAvg" / "summary.json").read_text()
    (out / "1_FedMedian" / "summary.json").unlink()
    cluster = LocalCluster(driver_env(tmp_path), namespace="team")
    resumed = runner(sweep, out, cluster, resume=True, namespace="team")
    resumed.run()
    assert not resumed.failed
    (job,) = cluster.docs
    assert job["spec"]["completions"] == 1 and container(job)["args"][-2:] == ["--runs", "1"]
    assert (out / "0_FedAvg" / "summary.json").read_text() == kept
    assert_same_runs(out, local_out, ("0_FedAvg", "1_FedMedian"))


def test_a_pod_killed_before_its_run_ended_is_an_error_naming_its_index(tmp_path):
    sweep = two_run_sweep(tmp_path)
    out = tmp_path / "out"
    write_plan(sweep, out)
    run_cell(str(out), 0)  # an earlier sweep's completed run, kept by --resume
    cluster = LocalCluster(driver_env(tmp_path), killed=(0,))
    ours = runner(sweep, out, cluster, resume=True)
    comparison = ours.run()
    assert ours.failed and [container(job)["args"][-1] for job in cluster.docs] == ["1"]
    statuses = {r["run_id"]: (r["status"], r["reason"]) for r in comparison["runs"]}
    name = cluster.docs[0]["metadata"]["name"]
    assert statuses == {"0_FedAvg": ("completed", ""), "1_FedMedian": (
        "error", f"Kubernetes Job {name} index 0 ended before its run did (it failed); see kubectl describe pods "
                 f"-n research -l job-name={name},{k8s.INDEX_KEY}=0")}


def test_ctrl_c_deletes_the_job_and_records_the_runs_as_stopped(tmp_path):
    out = tmp_path / "out"
    cluster = LocalCluster(driver_env(tmp_path))
    ours = runner(from_flags(["FedAvg", "FedMedian"], rounds=100000), out, cluster)

    interrupt_once_runs_started(out, 2)
    comparison = ours.run()
    assert ours.interrupted and cluster.deleted == [("Job", cluster.docs[0]["metadata"]["name"], "uid-1")]
    assert {r["run_id"]: r["status"] for r in comparison["runs"]} == {"0_FedAvg": "stopped", "1_FedMedian": "stopped"}
    assert cluster.gone.is_set() and processes_mentioning(str(out)) == []


def test_render_only_writes_what_kubectl_and_report_need(tmp_path):
    out = tmp_path / "sweeps" / "robustness"
    sweep = two_run_sweep(tmp_path)
    result = run_driver(tmp_path, "sweep", str(tmp_path / "two.toml"), "--cluster", "kubernetes", "--claim", CLAIM,
                        "--render-only", "--namespace", "research", "--image", "fedscale:1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [k8s.MANIFESTS, "manifest.json", "plan.json"]
    (job,) = yaml.safe_load_all((out / k8s.MANIFESTS).read_text())
    validate([job])
    name = job["metadata"]["name"]
    assert job["metadata"]["namespace"] == "research" and container(job)["image"] == "fedscale:1"
    lines = result.stdout.splitlines()
    assert lines[1:] == [f"run:    kubectl apply -f {out / k8s.MANIFESTS}",
                         f"follow: kubectl get job -n research {name}",
                         f"report: fedscale report {out}   (once every cell has ended)"]
    assert json.loads((out / "plan.json").read_text()) == sweep.model_dump()

    # what the cluster would run, then the report
    cluster = LocalCluster(driver_env(tmp_path))
    cluster.create(job)
    cluster.wait()
    assert cluster.codes == {0: 0, 1: 0}
    report = run_driver(tmp_path, "report", str(out))
    assert report.returncode == 0, report.stderr
    comparison = json.loads((out / "comparison.json").read_text())
    assert [r["status"] for r in comparison["runs"]] == ["completed", "completed"]


def test_without_a_cluster_or_a_claim_the_sweep_is_one_line_and_touches_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    env = {key: value for key, value in driver_env(tmp_path).items() if key != "KUBERNETES_SERVICE_HOST"}
    result = subprocess.run([sys.executable, "-m", "fedscale.cli", "sweep", "--strategies", "FedAvg", "--rounds", "1",
                             "--cluster", "kubernetes", "--claim", CLAIM, "--out", str(out)],
                            env={**env, "KUBECONFIG": str(tmp_path / "missing")}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and result.stderr == (
        f"error: sweep: --cluster kubernetes: no cluster to run on (no kubeconfig at {tmp_path / 'missing'}); "
        f"--render-only writes the sweep's manifests for kubectl apply instead\n")
    for args, message in (
            (["--cluster", "kubernetes"], "error: sweep: --cluster kubernetes needs --claim NAME"),
            (["--claim", CLAIM], "error: sweep: --claim, --namespace, --image and --render-only need --cluster "
                                 "kubernetes"),
            (["--cluster", "slurm", "--render-only"], "error: sweep: --claim, --namespace, --image and "
                                                      "--render-only need --cluster kubernetes"),
            (["--cluster", "kubernetes", "--claim", CLAIM, "--render-only", "--resume"],
             "error: sweep: --render-only writes every run's cell; --resume needs"),
            (["--cluster", "kubernetes", "--claim", CLAIM, "--render-only", "--base", str(DEFAULT_JOB)],
             f"error: sweep: --cluster kubernetes: run 0_FedAvg's base job file {DEFAULT_JOB} is not in --out")):
        assert main(["sweep", "--strategies", "FedAvg", "--rounds", "1", "--out", str(out), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_a_cell_index_beyond_its_listed_runs_is_one_line(tmp_path, capsys):
    from fedscale.sweep.cell import main as cell
    write_plan(two_run_sweep(tmp_path), tmp_path / "out")
    for runs, message in (("1", "error: --runs 1: no cell 1; the cells are 0 to 0\n"),
                          ("1,x", "error: --runs '1,x': expected run indexes separated by commas\n")):
        assert cell(["--sweep-dir", str(tmp_path / "out"), "--runs", runs, "--index", "1"]) == 2
        assert capsys.readouterr().err == message
