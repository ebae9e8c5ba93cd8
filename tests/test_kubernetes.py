"""The kubernetes launcher without a cluster: its manifests validated against the Kubernetes 1.37
schemas (strict), their command lines run as real local processes, the aggregator's log followed
from a stand-in log stream, and its one-line refusals."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes import client

from fedscale.cloud import commons
from fedscale.cloud.channels.tls import JobCertificates
from fedscale.cloud.config.deployment import CONTAINER_ROOT
from fedscale.cloud.config_parser import ConfigError, JobSpec, load_job
from fedscale.deploy import kubernetes as k8s
from fedscale.deploy.launcher import launcher_class
from tests.fedscale_examples import FEDSCALE_K8S, on_loopback
from tests.jobs import ROOT, events, write_job

SCHEMA = kubernetes_validate.latest_version()
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
SECRET = "job-secret-5f1e"
WANDB_KEY = "wandb-key-7c2a"
RUN = "small-20250101-120000"


def process_env() -> dict[str, str]:
    """What the driver hands the launcher: its own environment, the job secret, TLS certificates."""
    return {**os.environ, commons.SECRET_ENV: SECRET, **JobCertificates.create(["0.0.0.0"]).to_env()}


def credentials(env: dict[str, str]) -> list[str]:
    """The job secret, the TLS certificates and keys, the W&B key."""
    return [value for key, value in env.items() if key == commons.SECRET_ENV or key.startswith("FEDSCALE_TLS_")] + [
        WANDB_KEY]


def kubernetes_job(folder: Path, executors: int, ps_port: int = 0, **conf) -> JobSpec:
    """tests.jobs' small job with ``executors`` executors on a cluster, ``data_path`` ``folder``."""
    path = write_job(folder, executors=executors, torch_threads=2, executor_restarts=2, **conf)
    job = yaml.safe_load(path.read_text())
    job.update(launcher="kubernetes", data_path=str(folder), ps_port=ps_port)
    path.write_text(yaml.safe_dump(job))
    return load_job(str(path))


def validate(docs: list[dict]) -> None:
    for doc in docs:
        kubernetes_validate.validate(doc, SCHEMA, strict=True)
        sent = client.ApiClient().sanitize_for_serialization(getattr(client, f"V1{doc['kind']}").from_dict(doc))
        assert sent == doc  # what the launcher sends the API server is the manifest, field for field
        name = doc["metadata"]["name"]
        assert DNS_LABEL.fullmatch(name) and len(name) <= 63, name
        assert doc["metadata"]["labels"][k8s.NAME_LABEL] == "fedscale"


def by_name(docs: list[dict]) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs}


def container(job_doc: dict) -> dict:
    (only,) = job_doc["spec"]["template"]["spec"]["containers"]
    return only


@pytest.mark.parametrize("executors", [1, 3])
def test_job_manifests_are_valid_and_consistent(tmp_path, executors):
    job = kubernetes_job(tmp_path, executors)
    env = process_env()
    docs = k8s.render_job(job, RUN, "registry.example/fedscale:1", "research", env, {"WANDB_API_KEY": WANDB_KEY})
    validate(docs)
    names = k8s.JobObjects(RUN)
    assert [doc["kind"] for doc in docs] == ["ConfigMap", "Secret", "Service", "Job", "Job"]
    docs_by_name = by_name(docs)
    config_map, secret, service = (docs_by_name[n] for n in (names.config_map, names.secret, names.service))
    aggregator, executor_job = docs_by_name[names.aggregator], docs_by_name[names.executors]
    for doc in docs:
        assert doc["metadata"]["namespace"] == "research" and doc["metadata"]["labels"][k8s.JOB_LABEL] == RUN
    for doc in (aggregator, executor_job):
        assert doc["spec"]["template"]["metadata"]["labels"][k8s.JOB_LABEL] == RUN
        assert doc["spec"]["template"]["spec"]["restartPolicy"] == "Never"

    # credentials: in the Secret, and nowhere else
    assert secret["stringData"][commons.SECRET_ENV] == SECRET and secret["stringData"]["WANDB_API_KEY"] == WANDB_KEY
    assert set(secret["stringData"]) == {key for key in env if key.startswith("FEDSCALE_")} | {"WANDB_API_KEY"}
    elsewhere = yaml.safe_dump_all([doc for doc in docs if doc is not secret])
    assert [value for value in credentials(env) if value in elsewhere or value.replace("\n", "\\n") in elsewhere] == []
    executor_env = {e["name"]: e for e in container(executor_job)["env"]}
    aggregator_env = {e["name"]: e for e in container(aggregator)["env"]}
    assert "WANDB_API_KEY" not in executor_env and "WANDB_API_KEY" in aggregator_env
    for entry in [*executor_env.values(), *aggregator_env.values()]:
        assert "value" not in entry or entry["name"] == "PYTHONUNBUFFERED"

    # the resolved job, as the pods read it: every interface of the aggregator's pod, a fixed port
    pod_job = JobSpec.from_dict(json.loads(config_map["data"][commons.JOB_FILE]))
    assert pod_job.ps_ip == "0.0.0.0" and pod_job.num_executors == executors
    port = pod_job.ps_port
    assert port == job.ps_port or (job.ps_port == 0 and port == k8s.DEFAULT_PORT)
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"] == [{"name": "grpc", "port": port, "targetPort": port}]
    assert service["spec"]["selector"].items() <= aggregator["spec"]["template"]["metadata"]["labels"].items()
    assert container(aggregator)["ports"] == [{"name": "grpc", "containerPort": port}]
    args = container(executor_job)["args"]
    assert args[args.index("--address") + 1] == f"{names.service}.research.svc:{port}"
    assert args[args.index("--executor-id") + 1] == "auto"
    assert container(aggregator)["args"] == ["--run-dir", k8s.RUN_DIR, "--events-stdout"]

    assert aggregator["spec"]["backoffLimit"] == 0
    spec = executor_job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == executors
    assert spec["backoffLimitPerIndex"] == 2
    for doc in (aggregator, executor_job):
        resources = container(doc)["resources"]
        assert resources["requests"]["cpu"] == resources["limits"]["cpu"] == "2"
        assert resources["requests"]["memory"] and resources["limits"]["memory"]
        assert container(doc)["image"] == "registry.example/fedscale:1"
        mounts = {m["mountPath"]: m for m in container(doc)["volumeMounts"]}
        assert mounts[f"{k8s.RUN_DIR}/{commons.JOB_FILE}"]["subPath"] == commons.JOB_FILE
        assert mounts[CONTAINER_ROOT]["name"] == mounts[str(tmp_path)]["name"] == "data"
        assert mounts[CONTAINER_ROOT]["readOnly"] and mounts[str(tmp_path)]["readOnly"]
        volumes = {v["name"]: v for v in doc["spec"]["template"]["spec"]["volumes"]}
        assert volumes["data"]["hostPath"]["path"] == str(tmp_path)
        assert volumes["job"]["configMap"]["name"] == names.config_map


def test_a_claim_replaces_data_path(tmp_path):
    docs = k8s.render_job(kubernetes_job(tmp_path, 1), RUN, data_claim="femnist-data")
    validate(docs)
    volumes = {v["name"]: v for v in docs[-1]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "femnist-data", "readOnly": True}


def test_run_names_are_dns_labels():
    for job_name, stamp in [("small", "20250101_120000"), ("0_Job.Name", "x"), ("a" * 80, "20250101_120000_2")]:
        name = k8s.run_name(job_name, stamp)
        assert DNS_LABEL.fullmatch(name) and name[0].isalpha() and len(name) <= k8s.MAX_NAME, name
    assert k8s.run_name("a" * 80, "1") != k8s.run_name("a" * 80, "2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_command(doc: dict, run_dir: Path, address: str) -> list[str]:
    """A manifest's container command line as a local process: this Python, the run folder
    ``run_dir`` for /run, the aggregator at 127.0.0.1."""
    spec = container(doc)
    line = [sys.executable if word == "python" else word for word in spec["command"] + spec["args"]]
    return [str(run_dir) if word == k8s.RUN_DIR else word.replace(address, "127.0.0.1") for word in line]


def local_env(doc: dict, secret: dict, **extra: str) -> dict[str, str]:
    """The container's environment, its secretKeyRefs resolved from the Secret ``secret``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FEDSCALE_")}
    for entry in container(doc)["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"]
            env[entry["name"]] = secret["stringData"][ref["key"]]
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_manifest_commands_run_a_job_locally(tmp_path):
    """The aggregator's and the executors' command lines and environment, as rendered, run a job
    to completion; the aggregator's stdout (its pod's log) carries its event log line for line."""
    job = kubernetes_job(tmp_path, 2, rounds=2, ps_port=free_port())
    docs = by_name(k8s.render_job(job, RUN, env=process_env()))
    names = k8s.JobObjects(RUN)
    run_dir = tmp_path / "pod-run"
    run_dir.mkdir()
    (run_dir / commons.JOB_FILE).write_text(docs[names.config_map]["data"][commons.JOB_FILE])
    address = f"{names.service}.default.svc"
    secret = docs[names.secret]
    with open(tmp_path / "aggregator.log", "wb") as pod_log:
        aggregator = subprocess.Popen(local_command(docs[names.aggregator], run_dir, address),
                                      env=local_env(docs[names.aggregator], secret), stdout=pod_log,
                                      stderr=subprocess.DEVNULL)
    executors = [subprocess.Popen(local_command(docs[names.executors], run_dir, address),
                                  env=local_env(docs[names.executors], secret, JOB_COMPLETION_INDEX=str(index)),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for index in range(2)]
    try:
        assert aggregator.wait(timeout=180) == 0
        assert [proc.wait(timeout=30) for proc in executors] == [0, 0]
    finally:
        for proc in (aggregator, *executors):
            proc.kill()
    log = events(run_dir / commons.AGGREGATOR_LOG)
    assert log[-1]["tag"] == commons.JOB_END and log[-1]["status"] == commons.STATUS_COMPLETED
    assert log[0]["tag"] == commons.JOB_BEGIN and log[0]["tls"] is True
    assert sum(e["tag"] == commons.ROUND_END for e in log) == 2
    for index in (1, 2):
        assert any(e["tag"] == commons.EXECUTOR_JOINED for e in events(run_dir / f"executor-{index}.jsonl"))

    # the pod's log, followed as the launcher follows it, gives back the event log
    followed = tmp_path / "followed"
    followed.mkdir()
    stamped = b"".join(b"2025-01-01T12:00:00.%09dZ %s\n" % (n, line)
                       for n, line in enumerate((tmp_path / "aggregator.log").read_bytes().splitlines()))
    k8s.PodLog(followed).feed([stamped])
    assert (followed / commons.AGGREGATOR_LOG).read_bytes() == (run_dir / commons.AGGREGATOR_LOG).read_bytes()


def test_executor_id_from_the_completion_index(monkeypatch):
    from fedscale.cloud.execution.executor import executor_name
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "4")
    assert executor_name("auto") == "executor-5" and executor_name("executor-2") == "executor-2"
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "x")
    with pytest.raises(SystemExit, match="JOB_COMPLETION_INDEX") as exit_:
        executor_name("auto")
    assert "\n" not in str(exit_.value)


def test_sweep_manifest(tmp_path):
    sweep_dir = tmp_path / "sweeps" / "robustness"
    sweep_dir.mkdir(parents=True)
    docs = k8s.render_sweep(str(sweep_dir), 5, "shared-sweeps", image="fedscale:1", parallel=2, cpus=3,
                            mount_path=str(tmp_path / "sweeps"))
    validate(docs)
    (job,) = docs
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 5 and spec["parallelism"] == 2
    assert spec["backoffLimitPerIndex"] == 0 and spec["template"]["spec"]["restartPolicy"] == "Never"
    cell = container(job)
    assert cell["command"] + cell["args"] == ["python", "-m", "fedscale.sweep.cell", "--sweep-dir", str(sweep_dir)]
    assert cell["resources"]["requests"]["cpu"] == "3"
    assert cell["volumeMounts"] == [{"name": "sweep", "mountPath": str(tmp_path / "sweeps")}]
    assert spec["template"]["spec"]["volumes"] == [{"name": "sweep",
                                                    "persistentVolumeClaim": {"claimName": "shared-sweeps"}}]
    assert spec["template"]["metadata"]["labels"][k8s.JOB_LABEL] == job["metadata"]["name"]

    path = k8s.write_sweep_manifests(str(sweep_dir), 2, "shared-sweeps")
    (written,) = yaml.safe_load_all(path.read_text())
    validate([written])
    assert written["spec"]["parallelism"] == 2 and container(written)["volumeMounts"][0]["mountPath"] == str(sweep_dir)
    with pytest.raises(ConfigError, match="not under") as error:
        k8s.render_sweep(str(sweep_dir), 2, "shared-sweeps", mount_path=str(tmp_path / "elsewhere"))
    assert "\n" not in str(error.value)


def test_fedscale_k8s_example_renders(tmp_path, monkeypatch):
    """FedScale's own example, with a data set and model this tool has (digits, mlp): its files under
    /FedScale/benchmark are read as under data_path, where the driver checks they exist."""
    monkeypatch.setenv("FEDSCALE_HOME", str(tmp_path))
    text = on_loopback(FEDSCALE_K8S, data_set="digits", model="mlp")
    for file in re.findall(rf"(?:data_map_file|device_conf_file|device_avail_file): {CONTAINER_ROOT}/(\S+)", text):
        (tmp_path / "benchmark" / file).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "benchmark" / file).touch()
    path = tmp_path / "femnist_k8s.yml"
    path.write_text(text)
    job = load_job(str(path))
    assert job.deployment.mode(False) == "kubernetes" and launcher_class("kubernetes") is k8s.KubernetesLauncher
    assert job.log_root == str(tmp_path / "benchmark")
    docs = k8s.render_job(job, k8s.run_name(job.conf.identity.job_name, "20250101_120000"), env=process_env())
    validate(docs)
    executors = docs[-1]["spec"]
    assert executors["completions"] == executors["parallelism"] == 2
    volumes = {v["name"]: v for v in executors["template"]["spec"]["volumes"]}
    assert volumes["data"]["hostPath"]["path"] == str(tmp_path / "benchmark")
    mounts = {m["mountPath"] for m in container(docs[-1])["volumeMounts"]}
    pod_job = JobSpec.from_dict(json.loads(docs[0]["data"][commons.JOB_FILE]))
    assert pod_job.ps_ip == "0.0.0.0" and {CONTAINER_ROOT, str(tmp_path / "benchmark")} <= mounts
    assert any(pod_job.conf["device_conf_file"].startswith(mount + "/") for mount in mounts)


def test_shipped_example_renders():
    job = load_job(str(ROOT / "benchmark" / "configs" / "deploy" / "kubernetes.yml"))
    assert job.deployment.mode(False) == "kubernetes" and job.num_executors == 2
    validate(k8s.render_job(job, k8s.run_name(job.conf.identity.job_name, "20250101_120000"), env=process_env()))


def test_render_without_a_cluster(tmp_path, monkeypatch, capsys):
    """``python -m fedscale.deploy.kubernetes job.yml``: the manifests in a new run folder, the
    Secret apart and readable by its owner only."""
    job = kubernetes_job(tmp_path, 2)
    monkeypatch.chdir(tmp_path)
    assert k8s.main([job.source, "--namespace", "research", "--image", "fedscale:1"]) == 0
    (run_dir,) = (tmp_path / "logs" / "small").iterdir()
    manifests = list(yaml.safe_load_all((run_dir / k8s.MANIFESTS).read_text()))
    (secret,) = yaml.safe_load_all((run_dir / k8s.SECRET_MANIFESTS).read_text())
    validate(manifests + [secret])
    assert [doc["kind"] for doc in manifests] == ["ConfigMap", "Service", "Job", "Job"]
    assert secret["kind"] == "Secret" and len(secret["stringData"][commons.SECRET_ENV]) == 64
    assert secret["stringData"][commons.SECRET_ENV] not in (run_dir / k8s.MANIFESTS).read_text()
    assert stat.S_IMODE((run_dir / k8s.SECRET_MANIFESTS).stat().st_mode) == 0o600
    assert JobSpec.read(run_dir).ps_ip == "0.0.0.0"
    out = capsys.readouterr().out
    assert f"kubectl apply -f {run_dir / k8s.SECRET_MANIFESTS} -f {run_dir / k8s.MANIFESTS}" in out


def write_kubeconfig(path: Path, server: str = "https://127.0.0.1:1") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "me", "user": {"token": "t"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "me", "namespace": "research"}}]}))
    return path


def test_prepare_errors_are_one_line(tmp_path, monkeypatch):
    job = kubernetes_job(tmp_path, 1)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    notes = []
    cases = {
        "no kubeconfig": (tmp_path / "missing", "python -m fedscale.deploy.kubernetes"),
        "not a kubeconfig": (tmp_path / "broken", "kubeconfig"),
        "no server": (write_kubeconfig(tmp_path / "config"), "cannot reach the cluster at https://127.0.0.1:1"),
    }
    (tmp_path / "broken").write_text("clusters: [\n")
    for case, (path, expected) in cases.items():
        monkeypatch.setenv("KUBECONFIG", str(path))
        with pytest.raises(ConfigError) as error:
            k8s.KubernetesLauncher.prepare(job, notes.append)
        assert expected in str(error.value) and "\n" not in str(error.value), (case, str(error.value))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))
    assert k8s.Cluster().where == "lab/research"


class FakeCluster:
    """A stand-in for the cluster (none can run here), holding one run's objects as the API's own
    models: the aggregator's pod, pending, then running, then succeeded; its log, whose first
    reading breaks off; the executors' Job, index 0 completed and index 1 failed."""

    context, namespace, where = "lab", "research", "lab/research"

    def __init__(self, log_lines: list[bytes]) -> None:
        self.created: dict[str, dict] = {}
        self.deleted: list[tuple[str, str, str]] = []
        self.phase, self.waiting = "Pending", "ImagePullBackOff"
        self.readings = 0
        self.lines = [b"2025-01-01T12:00:%02d.5Z %s\n" % (n, line) for n, line in enumerate(log_lines)]
        self.lock = threading.Lock()

    def create(self, doc):
        self.created[doc["metadata"]["name"]] = doc
        return f"uid-{doc['metadata']['name']}"

    def delete(self, kind, name, uid=""):
        self.deleted.append((kind, name, uid))

    def jobs(self, run):
        status = {"completedIndexes": "0", "failedIndexes": "1"}
        return {name: client.V1Job.from_dict({**doc, "status": status if name.endswith("executors") else {}})
                for name, doc in self.created.items() if doc["kind"] == "Job"}

    def pods(self, run):
        with self.lock:
            state = ({"waiting": {"reason": self.waiting, "message": "pull access denied"}} if self.phase == "Pending"
                     else {"terminated": {"exitCode": 0}} if self.phase == "Succeeded" else {"running": {}})
            aggregator = {"metadata": {"name": f"{run}-aggregator-x1", "labels": {k8s.ROLE_LABEL: "aggregator"},
                                       "creationTimestamp": "2025-01-01T12:00:00Z"},
                          "status": {"phase": self.phase, "containerStatuses": [
                              {"name": "aggregator", "image": "i", "imageID": "", "ready": False, "restartCount": 0,
                               "state": state}]}}
        failed = {"metadata": {"name": f"{run}-executors-1-x2", "labels": {k8s.ROLE_LABEL: "executor"},
                               "annotations": {k8s.INDEX_KEY: "1"}, "creationTimestamp": "2025-01-01T12:00:01Z"},
                  "status": {"phase": "Failed", "containerStatuses": [
                      {"name": "executor", "image": "i", "imageID": "", "ready": False, "restartCount": 0,
                       "state": {"terminated": {"exitCode": 3}}}]}}
        return [client.V1Pod.from_dict(aggregator), client.V1Pod.from_dict(failed)]

    def pod_state(self, name):
        return k8s.ENDED if self.phase == "Succeeded" else self.phase

    def follow_log(self, pod):
        if self.phase == "Pending":
            raise ConfigError("400 container is waiting to start")
        self.readings += 1
        if self.readings == 1:
            yield b"".join(self.lines[:3]) + self.lines[3][:10]
            raise ConnectionResetError("the connection broke off")
        yield from self.lines
        with self.lock:
            self.phase = "Succeeded"

    def log_tail(self, pod):
        return b"executor-2: cannot load the data set\n"


def test_sync_follows_the_aggregator_pod(tmp_path, monkeypatch):
    monkeypatch.setattr(k8s, "STATUS_SECONDS", 0.01)
    monkeypatch.setattr(k8s, "LOG_RETRY_SECONDS", 0.01)
    event_lines = [json.dumps({"tag": tag, "round": n}).encode()
                   for n, tag in enumerate([commons.JOB_BEGIN, commons.ROUND_BEGIN, commons.ROUND_END])]
    event_lines.append(json.dumps({"tag": commons.JOB_END, "status": commons.STATUS_COMPLETED}).encode())
    console_line = b"aggregator: a note on stderr"
    cluster = FakeCluster([event_lines[0], console_line, *event_lines[1:]])
    job = kubernetes_job(tmp_path, 2)
    job = dataclasses.replace(job, conf=job.conf.replace(time_stamp="20250101_120000"))
    env = process_env()
    launcher = k8s.KubernetesLauncher(job, tmp_path, env, None, {"WANDB_API_KEY": WANDB_KEY}, cluster=cluster)
    aggregator = launcher.start_aggregator()
    first = launcher.start_executor("executor-1")
    second = launcher.start_executor("executor-2")
    assert launcher.start_executor("executor-2") is second  # the cluster restarts an index itself
    names = k8s.JobObjects(RUN)
    assert list(cluster.created) == [names.config_map, names.secret, names.service, names.aggregator, names.executors]

    launcher.sync()
    assert aggregator.poll() is None
    assert (tmp_path / "aggregator.out").read_text().startswith(f"pod {RUN}-aggregator-x1: ImagePullBackOff")
    with cluster.lock:
        cluster.phase = "Running"
    deadline = time.monotonic() + 10
    while aggregator.poll() is None and time.monotonic() < deadline:
        launcher.sync()
        time.sleep(0.01)
    assert aggregator.returncode == 0 and cluster.readings == 2
    assert (tmp_path / commons.AGGREGATOR_LOG).read_bytes() == b"".join(line + b"\n" for line in event_lines)
    assert (tmp_path / "aggregator.out").read_bytes().endswith(console_line + b"\n")
    assert (tmp_path / "aggregator.out").read_text().count("ImagePullBackOff") == 1
    assert first.poll() == 0 and second.poll() == 3
    assert (tmp_path / "executor-2.out").read_text() == "executor-2: cannot load the data set\n"
    assert launcher.wait_all(timeout=1.0)
    assert launcher.describe() == f"kubernetes lab/research job {RUN}"

    record = json.loads(json.dumps(launcher.record()))
    launcher.terminate()
    launcher.terminate()
    expected = [["Job", names.executors], ["Job", names.aggregator], ["Service", names.service],
                ["Secret", names.secret], ["ConfigMap", names.config_map]]
    assert [[kind, name] for kind, name, _ in record["objects"]] == expected
    assert cluster.deleted == [(kind, name, f"uid-{name}") for kind, name in expected]
    assert record["namespace"] == "research" and record["context"] == "lab"
    leaked = [path.name for path in tmp_path.rglob("*") if path.is_file()
              and any(value.encode() in path.read_bytes() for value in credentials(env))]
    assert leaked == [] and not any(value in json.dumps(record) for value in credentials(env))
    assert yaml.safe_load_all((tmp_path / k8s.MANIFESTS).read_text())
