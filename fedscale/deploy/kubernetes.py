"""Runs a job on a Kubernetes cluster: the ``kubernetes`` launcher (FedScale's ``use_container: k8s``).

A job becomes five objects in one namespace, each labelled ``app.kubernetes.io/name: fedscale``
and ``fedscale/job: <run name>``: a ConfigMap holding the resolved job (``job.json``), a Secret
holding the credentials of its processes (the ``FEDSCALE_*`` variables of their environment: the
job secret, the TLS certificates; the aggregator alone also gets its W&B key), a headless Service
naming the aggregator's pod, the aggregator as a Job of one pod, and the executors as an Indexed
Job of ``num_executors`` pods, ``executor-<index + 1>``, each index restarted by the cluster up
to ``executor_restarts`` times. Every pod runs the image (``$FEDSCALE_IMAGE``, default
``fedscale:latest``) with an emptyDir as its run folder ``/run`` holding ``job.json``, and
``data_path`` (a folder of the nodes; ``$FEDSCALE_DATA_CLAIM`` names a PersistentVolumeClaim
instead) mounted read-only at ``/FedScale/benchmark``, where FedScale's job files point, and at
its own path, where the parser resolved them (as for docker: the driver checks the job's files
under data_path on this machine).

The driver follows the job as it follows a local one: the aggregator also prints its event lines
on stdout (``--events-stdout``), and the launcher follows its pod's log into the run folder
(events into ``aggregator.jsonl``, other lines into ``aggregator.out``); a process ends when its
pod (an executor: its index) has ended for good, with its container's exit code. The manifests,
the Secret left out, are kept in the run folder as ``kubernetes.yaml``.

Without a cluster (no kubeconfig, not in a pod) ``submit`` refuses the job in one line, since
its exit code 0 means a job that completed; ``python -m fedscale.deploy.kubernetes job.yml``
writes the job's manifests into a run folder instead, the Secret in a file of its own that only
its owner can read, and prints the ``kubectl`` commands that run and follow it.

A sweep runs on a cluster as one Indexed Job of sweep cells (``render_sweep``), which
``fedscale.sweep.kubernetes_sweep`` creates and follows.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from fedscale.cloud import commons
from fedscale.cloud.config.deployment import CONTAINER_ROOT
from fedscale.cloud.config_parser import KEYS, ConfigError, JobSpec, load_job
from fedscale.deploy.launcher import listening_in_own_network, wait_all
from fedscale.deploy.local import is_local_host
from fedscale.deploy.zygote import PROGRAMS

RUN_DIR = "/run"
MANIFESTS, SECRET_MANIFESTS = "kubernetes.yaml", "kubernetes-secret.yaml"
IMAGE_ENV, DATA_CLAIM_ENV = "FEDSCALE_IMAGE", "FEDSCALE_DATA_CLAIM"
DEFAULT_IMAGE = "fedscale:latest"
SECRET_PREFIX = "FEDSCALE_"
DEFAULT_PORT: int = KEYS["ps_port"].default
MEMORY_REQUEST, MEMORY_LIMIT = "1Gi", "4Gi"
NAME_LABEL, JOB_LABEL, ROLE_LABEL = "app.kubernetes.io/name", "fedscale/job", "fedscale/role"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
AGGREGATOR, EXECUTOR, CELL = "aggregator", "executor", "sweep-cell"
MODULES = {AGGREGATOR: PROGRAMS["aggregator"], EXECUTOR: PROGRAMS["executor"], CELL: "fedscale.sweep.cell"}
MAX_NAME = 40  # leaves room for "-aggregator", and for an Indexed Job pod's "-<index>-<suffix>", within 63
STATUS_SECONDS = 1.0
UNREACHABLE_SECONDS = 60.0
LOG_RETRY_SECONDS = 1.0
LOG_READ_TIMEOUT = (10.0, 300.0)  # connect, then silence after which the log is opened again
TAIL_LINES = 200
TERMINATION_GRACE_SECONDS = 15
MIN_MINOR_VERSION = 29  # backoffLimitPerIndex is on by default from Kubernetes 1.29
ENDED, GONE = "ended", "gone"
LOST = -signal.SIGKILL  # the exit code of a process whose Job was deleted or is out of reach


def job_image() -> str:
    """The image the job's pods run: ``$FEDSCALE_IMAGE``, else ``fedscale:latest``."""
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


def run_name(job_name: str, time_stamp: str) -> str:
    """The name of a run's objects on the cluster, unique per run: the job's name and time stamp as a
    DNS label (lower case, '-', starting with a letter) of at most MAX_NAME characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{job_name}-{time_stamp}".lower()).strip("-")
    if not slug[:1].isalpha():
        slug = f"fs-{slug}".rstrip("-")
    if len(slug) > MAX_NAME:
        digest = hashlib.sha256(slug.encode()).hexdigest()[:8]
        slug = f"{slug[:MAX_NAME - 9].rstrip('-')}-{digest}"
    return slug


@dataclass(frozen=True)
class JobObjects:
    """The names of one run's objects on the cluster."""

    run: str

    @property
    def config_map(self) -> str:
        return f"{self.run}-job"

    @property
    def secret(self) -> str:
        return f"{self.run}-env"

    @property
    def service(self) -> str:
        return self.run

    @property
    def aggregator(self) -> str:
        return f"{self.run}-aggregator"

    @property
    def executors(self) -> str:
        return f"{self.run}-executors"


def _labels(run: str, role: str) -> dict[str, str]:
    return {NAME_LABEL: "fedscale", JOB_LABEL: run, ROLE_LABEL: role}


def _metadata(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels}


def _resources(cpus: int) -> dict[str, Any]:
    return {"requests": {"cpu": str(cpus), "memory": MEMORY_REQUEST},
            "limits": {"cpu": str(cpus), "memory": MEMORY_LIMIT}}


def _pod_template(run: str, role: str, image: str, args: list[str], cpus: int, env: list[dict[str, Any]],
                  volumes: list[tuple[dict[str, Any], dict[str, Any]]], port: int = 0) -> dict[str, Any]:
    """A pod of one container running ``python -m <the role's module> <args>``; ``volumes`` are
    (volume, mount) pairs (a volume mounted twice comes twice)."""
    container: dict[str, Any] = {
        "name": role, "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", MODULES[role]], "args": args,
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}, *env],
        "resources": _resources(cpus), "volumeMounts": [mount for _, mount in volumes]}
    if port:
        container["ports"] = [{"name": "grpc", "containerPort": port}]
    return {"metadata": {"labels": _labels(run, role)},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False, "enableServiceLinks": False,
                     "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS, "containers": [container],
                     "volumes": list({volume["name"]: volume for volume, _ in volumes}.values())}}


def _secret_env(secret: str, keys: Iterable[str]) -> list[dict[str, Any]]:
    return [{"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}} for key in sorted(keys)]


def render_job(job: JobSpec, run_name: str, image: str = DEFAULT_IMAGE, namespace: str = "default",
               env: Mapping[str, str] | None = None, aggregator_env: Mapping[str, str] | None = None,
               data_claim: str = "") -> list[dict[str, Any]]:
    """The manifests of ``job`` as run ``run_name`` in ``namespace``, in the order they are created:
    ConfigMap, Secret, Service, the aggregator's Job, the executors' Indexed Job (the module
    docstring). ``env`` is the environment of the job's processes, of which the ``FEDSCALE_*``
    variables reach the pods, through the Secret only; ``aggregator_env`` reaches the aggregator
    alone, the same way. ``data_claim`` (a PersistentVolumeClaim) replaces ``data_path``."""
    job = listening_in_own_network(job)
    names = JobObjects(run_name)
    shared = {key: value for key, value in (env or {}).items() if key.startswith(SECRET_PREFIX)}
    own = dict(aggregator_env or {})
    port, threads = job.ps_port, job.conf.cluster.torch_threads
    volumes = [({"name": "run", "emptyDir": {}}, {"name": "run", "mountPath": RUN_DIR}),
               ({"name": "job", "configMap": {"name": names.config_map}},
                {"name": "job", "mountPath": f"{RUN_DIR}/{commons.JOB_FILE}", "subPath": commons.JOB_FILE,
                 "readOnly": True})]
    data_path = job.deployment.data_path
    if data_claim or data_path:
        source = ({"persistentVolumeClaim": {"claimName": data_claim, "readOnly": True}} if data_claim
                  else {"hostPath": {"path": data_path, "type": "Directory"}})
        volumes += [({"name": "data", **source}, {"name": "data", "mountPath": path, "readOnly": True})
                    for path in dict.fromkeys(filter(None, [CONTAINER_ROOT, data_path]))]
    address = f"{names.service}.{namespace}.svc:{port}"
    aggregator_pod = _pod_template(run_name, AGGREGATOR, image, ["--run-dir", RUN_DIR, "--events-stdout"], threads,
                                   _secret_env(names.secret, {**shared, **own}), volumes, port)
    executor_pod = _pod_template(run_name, EXECUTOR, image,
                                 ["--run-dir", RUN_DIR, "--executor-id", "auto", "--address", address], threads,
                                 _secret_env(names.secret, shared), volumes)
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(names.config_map, namespace,
                                                                        _labels(run_name, "job")),
         "data": {commons.JOB_FILE: json.dumps(job.to_dict(), indent=1)}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": _metadata(names.secret, namespace, _labels(run_name, "credentials")),
         "stringData": {**shared, **own}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": _metadata(names.service, namespace, _labels(run_name, AGGREGATOR)),
         "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                  "selector": {JOB_LABEL: run_name, ROLE_LABEL: AGGREGATOR},
                  "ports": [{"name": "grpc", "port": port, "targetPort": port}]}},
        {"apiVersion": "batch/v1", "kind": "Job",
         "metadata": _metadata(names.aggregator, namespace, _labels(run_name, AGGREGATOR)),
         "spec": {"backoffLimit": 0, "template": aggregator_pod}},
        {"apiVersion": "batch/v1", "kind": "Job",
         "metadata": _metadata(names.executors, namespace, _labels(run_name, EXECUTOR)),
         "spec": {"completionMode": "Indexed", "completions": job.num_executors, "parallelism": job.num_executors,
                  "backoffLimitPerIndex": job.conf.cluster.executor_restarts, "template": executor_pod}},
    ]


def render_sweep(sweep_dir: str, n_runs: int, claim: str, image: str = DEFAULT_IMAGE, namespace: str = "default",
                 parallel: int = 0, cpus: int = 1, mount_path: str = "", name: str = "",
                 indexes: Sequence[int] = ()) -> list[dict[str, Any]]:
    """A sweep's runs as one Indexed Job named ``name`` (default: from the folder's name), one index
    per run, none retried: each pod is the cell ``python -m fedscale.sweep.cell --sweep-dir
    <sweep_dir>`` (its run index is ``JOB_COMPLETION_INDEX``), at most ``parallel`` (default all) at
    once, with ``cpus`` cores. ``indexes`` (a resumed sweep: the runs still to do) gives the cells
    only those of the ``n_runs`` runs, index i running ``indexes[i]`` (``--runs``). The
    PersistentVolumeClaim ``claim`` is mounted at ``mount_path`` (default: the sweep folder itself),
    so the cells see the folder, and the base job files the plan names by absolute path, where the
    sweep's own process does."""
    folder = os.path.abspath(sweep_dir)
    mount = os.path.abspath(mount_path) if mount_path else folder
    if os.path.commonpath([folder, mount]) != mount:
        raise ConfigError(f"sweep: the sweep folder {folder} is not under the claim's mount path {mount}")
    if n_runs < 1:
        raise ConfigError(f"sweep: expected at least one run, got {n_runs}")
    runs = list(indexes) or list(range(n_runs))
    if not all(0 <= run < n_runs for run in runs):
        raise ConfigError(f"sweep: runs {runs}: the sweep has {n_runs} runs, 0 to {n_runs - 1}")
    job_name = name or run_name("sweep", Path(folder).name)
    volume = ({"name": "sweep", "persistentVolumeClaim": {"claimName": claim}}, {"name": "sweep", "mountPath": mount})
    args = ["--sweep-dir", folder] + ([] if runs == list(range(n_runs)) else ["--runs", ",".join(map(str, runs))])
    pod = _pod_template(job_name, CELL, image, args, cpus, [], [volume])
    return [{"apiVersion": "batch/v1", "kind": "Job",
             "metadata": _metadata(job_name, namespace, _labels(job_name, CELL)),
             "spec": {"completionMode": "Indexed", "completions": len(runs),
                      "parallelism": min(parallel or len(runs), len(runs)), "backoffLimitPerIndex": 0,
                      "template": pod}}]


def write_manifests(docs: list[dict[str, Any]], path: Path) -> Path:
    """Write ``docs`` to ``path`` as one multi-document YAML file, readable by its owner only (a
    Secret may be among them); returns ``path``."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        yaml.safe_dump_all(docs, out, sort_keys=False)
    return path


def write_sweep_manifests(sweep_dir: str, n_runs: int, claim: str, **options: Any) -> Path:
    """``render_sweep(sweep_dir, n_runs, claim, **options)`` written to ``<sweep_dir>/kubernetes.yaml``
    (``kubectl apply -f`` starts the cells); returns its path."""
    return write_manifests(render_sweep(sweep_dir, n_runs, claim, **options), Path(sweep_dir) / MANIFESTS)


def kubeconfig() -> str:
    """The kubeconfig path(s) the official client and kubectl read: ``$KUBECONFIG``, else ~/.kube/config."""
    return os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


def in_cluster() -> bool:
    """Whether this process runs in a pod (the cluster's own API is then reachable)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def has_kubeconfig() -> bool:
    """Whether a kubeconfig file is there (``kubeconfig``)."""
    return any(os.path.isfile(os.path.expanduser(path)) for path in kubeconfig().split(os.pathsep) if path)


class Cluster:
    """The cluster of a kubeconfig context (default: the current one; in a pod without a kubeconfig,
    the pod's own), through the official client, reduced to what a job needs. Every failure is one
    ConfigError line."""

    def __init__(self, context: str = "", namespace: str = "") -> None:
        try:
            import urllib3
            from kubernetes import client, config
        except ImportError:
            raise ConfigError("launcher kubernetes needs the Kubernetes client: "
                              "pip install -e '.[kubernetes]'") from None
        self.client = client
        self.network_errors = (urllib3.exceptions.HTTPError, OSError)
        if not has_kubeconfig() and not in_cluster():
            raise ConfigError(f"launcher kubernetes: no kubeconfig at {kubeconfig()}")
        try:
            if has_kubeconfig():
                contexts, active = config.list_kube_config_contexts(config_file=kubeconfig())
                self.context = context or active["name"]
                chosen = next((c for c in contexts if c["name"] == self.context), None)
                if chosen is None:
                    raise ConfigError(f"kubeconfig {kubeconfig()}: no context {self.context!r}")
                self.namespace = namespace or chosen["context"].get("namespace") or "default"
                self.api = config.new_client_from_config(config_file=kubeconfig(), context=self.context,
                                                         persist_config=False)
            else:
                configuration = client.Configuration()
                config.load_incluster_config(client_configuration=configuration)
                self.context = "in-cluster"
                self.namespace = namespace or Path(
                    "/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text().strip()
                self.api = client.ApiClient(configuration)
        except (config.ConfigException, yaml.YAMLError, OSError, ValueError, TypeError, KeyError) as err:
            problem = getattr(err, "problem", None) or err  # a YAML error's own words
            raise ConfigError(f"kubeconfig {kubeconfig()}: {_first_line(problem)}") from None
        self.core, self.batch = client.CoreV1Api(self.api), client.BatchV1Api(self.api)

    @property
    def where(self) -> str:
        return f"{self.context}/{self.namespace}"

    def _call(self, what: str, method: Callable[..., Any], *args: Any, absent: tuple[int, ...] = (),
              **kwargs: Any) -> Any:
        """``method(*args, **kwargs)``; None when the API answers with a status in ``absent``."""
        try:
            return method(*args, **kwargs)
        except self.client.ApiException as err:
            if err.status in absent:
                return None
            raise ConfigError(f"kubernetes {self.where}: {what}: {_api_reason(err)}") from None
        except self.network_errors as err:
            cause = getattr(err, "reason", None) or err  # urllib3's retries give up with the last error as reason
            raise ConfigError(f"kubernetes {self.where}: {what}: cannot reach the cluster at "
                              f"{self.api.configuration.host} ({type(cause).__name__}: {_first_line(cause)})") from None

    def version(self) -> tuple[int, int]:
        """The API server's (major, minor) version; this is also the check that it answers."""
        info = self._call("version", self.client.VersionApi(self.api).get_code, _request_timeout=10)
        return int(re.match(r"\d+", info.major)[0]), int(re.match(r"\d+", info.minor)[0])

    def create(self, doc: dict[str, Any]) -> str:
        """Create the object ``doc`` describes; returns its uid."""
        kind, name = doc["kind"], doc["metadata"]["name"]
        method = self._method(kind, "create")
        body = getattr(self.client, f"V1{kind}").from_dict(doc)
        return self._call(f"create {kind} {name}", method, self.namespace, body, _request_timeout=30).metadata.uid

    def delete(self, kind: str, name: str, uid: str = "") -> None:
        """Delete an object (and what it owns, first); with ``uid``, only that very object. Gone
        already is fine."""
        method = self._method(kind, "delete")
        options = self.client.V1DeleteOptions(propagation_policy="Foreground",
                                              preconditions=self.client.V1Preconditions(uid=uid) if uid else None)
        # 404: gone already; 409: another object of that name now
        self._call(f"delete {kind} {name}", method, name, self.namespace, body=options, absent=(404, 409),
                   _request_timeout=30)

    def jobs(self, run: str) -> dict[str, Any]:
        """The run's Jobs by name."""
        listed = self._call("list jobs", self.batch.list_namespaced_job, self.namespace,
                            label_selector=f"{JOB_LABEL}={run}", _request_timeout=30)
        return {job.metadata.name: job for job in listed.items}

    def pods(self, run: str) -> list[Any]:
        """The run's pods, oldest first."""
        listed = self._call("list pods", self.core.list_namespaced_pod, self.namespace,
                            label_selector=f"{JOB_LABEL}={run}", _request_timeout=30)
        return sorted(listed.items, key=lambda pod: (pod.metadata.creation_timestamp, pod.metadata.name))

    def pod_state(self, name: str) -> str:
        """``ended`` (its phase is final), ``gone``, or its phase."""
        pod = self._call(f"read pod {name}", self.core.read_namespaced_pod, name, self.namespace, absent=(404,),
                         _request_timeout=30)
        if pod is None:
            return GONE
        return ENDED if pod.status.phase in ("Succeeded", "Failed") else str(pod.status.phase)

    def follow_log(self, pod: str) -> Iterator[bytes]:
        """The pod's log from its start, each line stamped with its time (``timestamps``), as it
        grows, until the container ends (or the connection does)."""
        response = self._call(f"log of pod {pod}", self.core.read_namespaced_pod_log, pod, self.namespace,
                              follow=True, timestamps=True, _preload_content=False, _request_timeout=LOG_READ_TIMEOUT)
        try:
            yield from response.stream(amt=None, decode_content=False)  # each chunk as it comes
        finally:
            response.release_conn()

    def log_tail(self, pod: str) -> bytes:
        """The last TAIL_LINES lines of the pod's log."""
        response = self._call(f"log of pod {pod}", self.core.read_namespaced_pod_log, pod, self.namespace,
                              tail_lines=TAIL_LINES, _preload_content=False, _request_timeout=30)
        try:
            return response.data
        finally:
            response.release_conn()

    def _method(self, kind: str, verb: str) -> Callable[..., Any]:
        """The client's ``<verb>_namespaced_<kind>`` (``create_namespaced_config_map``...)."""
        snake = re.sub(r"(?<!^)([A-Z])", r"_\1", kind).lower()
        return getattr(self.batch if kind == "Job" else self.core, f"{verb}_namespaced_{snake}")


def _first_line(message: object) -> str:
    text = str(message).strip()
    return text.splitlines()[0] if text else type(message).__name__


def _api_reason(err: Any) -> str:
    """What the API server said, in one line."""
    try:
        message = json.loads(err.body)["message"]
    except (TypeError, ValueError, KeyError):
        message = err.reason
    return f"{err.status} {_first_line(message)}"


def _indexes(text: str | None) -> frozenset[int]:
    """A Job's completed or failed indexes, written as '1,3-5'."""
    found: set[int] = set()
    for part in filter(None, (text or "").split(",")):
        first, _, last = part.partition("-")
        found.update(range(int(first), int(last or first) + 1))
    return frozenset(found)


def job_indexes(job: Any | None) -> tuple[frozenset[int], frozenset[int]]:
    """An Indexed Job's (the client's V1Job, or None) completed and failed indexes: those the
    cluster will not run again."""
    status = job.status if job is not None else None
    return _indexes(status.completed_indexes if status else ""), _indexes(status.failed_indexes if status else "")


def _exit_code(pod: Any) -> int:
    """The exit code of a pod that has ended."""
    for status in pod.status.container_statuses or ():
        if status.state and status.state.terminated:
            return int(status.state.terminated.exit_code)
    return 0 if pod.status.phase == "Succeeded" else 1


def waiting_reason(pod: Any) -> str:
    """Why a pod that is not running yet waits ('' when it does not, or for no stated reason)."""
    for status in pod.status.container_statuses or ():
        waiting = status.state.waiting if status.state else None
        if waiting and waiting.reason:
            return f"{waiting.reason}: {waiting.message or ''}".rstrip(": ")
    for condition in pod.status.conditions or ():
        if condition.type == "PodScheduled" and condition.status == "False":
            return f"{condition.reason}: {condition.message or ''}".rstrip(": ")
    return ""


@dataclass(frozen=True)
class View:
    """One reading of a run's Jobs and pods: the Jobs by name, the newest pod of the aggregator
    (key None) and of each executor index, and the executors' finished indexes."""

    jobs: dict[str, Any]
    newest: dict[int | None, Any]
    completed: frozenset[int]
    failed: frozenset[int]

    @classmethod
    def read(cls, jobs: dict[str, Any], pods: list[Any], executors: str) -> View:
        newest: dict[int | None, Any] = {}
        for pod in pods:  # oldest first: the newest stays
            role, index = (pod.metadata.labels or {}).get(ROLE_LABEL), (pod.metadata.annotations or {}).get(INDEX_KEY)
            if role == AGGREGATOR or (role == EXECUTOR and index is not None):
                newest[None if role == AGGREGATOR else int(index)] = pod
        return cls(jobs, newest, *job_indexes(jobs.get(executors)))


class RunStatus:
    """The cluster's view of one run's Jobs and pods, read at most every STATUS_SECONDS. While the
    cluster cannot be read the last view stands; after UNREACHABLE_SECONDS without one the run's
    processes count as lost (``unreachable`` says why)."""

    def __init__(self, cluster: Any, objects: JobObjects) -> None:
        self.cluster, self.objects = cluster, objects
        self.created: dict[str, float] = {}  # Job name -> when it was created
        self.view = View({}, {}, frozenset(), frozenset())
        self.unreachable = ""
        self._read_at = -math.inf  # when the view was last read
        self._failing_since: float | None = None

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self._read_at < STATUS_SECONDS or not self.created:
            return
        try:
            jobs, pods = self.cluster.jobs(self.objects.run), self.cluster.pods(self.objects.run)
            self.view = View.read(jobs, pods, self.objects.executors)
            self._read_at, self._failing_since, self.unreachable = now, None, ""
        except ConfigError as err:
            self._failing_since = self._failing_since or now
            if now - self._failing_since > UNREACHABLE_SECONDS:
                self.unreachable = f"{err} (for {now - self._failing_since:.0f} s)"

    def newest(self, index: int | None) -> Any | None:
        """The newest pod of the aggregator (``index`` None) or of an executor's index."""
        return self.view.newest.get(index)

    def exit_code(self, index: int | None) -> int | None:
        """The aggregator's (``index`` None) or an executor's exit code once it has ended for good."""
        name = self.objects.aggregator if index is None else self.objects.executors
        if name not in self.created:
            return None
        view = self.view
        job, pod = view.jobs.get(name), view.newest.get(index)
        if self.unreachable or (job is None and self._read_at > self.created[name]):
            return LOST  # deleted, or out of reach: what ran there is lost to the driver
        if job is None:
            return None
        if index is None:
            if pod is not None and pod.status.phase in ("Succeeded", "Failed"):
                return _exit_code(pod)
            conditions = {c.type for c in job.status.conditions or () if c.status == "True"}
            return 0 if "Complete" in conditions else 1 if "Failed" in conditions else None
        if index in view.completed:
            return 0
        if index in view.failed:
            return _exit_code(pod) if pod is not None and pod.status.phase == "Failed" else 1
        return None


class PodLog:
    """Follows the aggregator pod's log into the run folder: its event lines (JSON objects that
    start with their tag, as ``--events-stdout`` prints them) are appended to ``aggregator.jsonl``,
    every other line to ``aggregator.out``. The log is read with each line's time stamp; when a
    reading breaks off it is read again from the start and the lines up to the last one written
    are skipped, so nothing is lost or doubled."""

    def __init__(self, run_dir: Path) -> None:
        self.events_path = run_dir / commons.AGGREGATOR_LOG
        self.console_path = run_dir / commons.console_output_name(AGGREGATOR)
        self.last: tuple[str, int] = ("", -1)
        self.done = threading.Event()

    def feed(self, chunks: Iterable[bytes]) -> None:
        """Write the new lines of one reading of the log (chunks as they come): those after the
        last line written before, by time stamp, then every line."""
        pending, caught_up = b"", False
        with open(self.events_path, "ab", buffering=0) as events, open(self.console_path, "ab", buffering=0) as console:
            for chunk in chunks:
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    stamp, _, text = line.partition(b" ")
                    whole, _, fraction = stamp.decode(errors="replace").rstrip("Z").partition(".")
                    key = (whole, int(fraction.ljust(9, "0")[:9]) if fraction.isdigit() else 0)
                    if not caught_up and key <= self.last:
                        continue
                    caught_up = True
                    (events if text.startswith(b'{"tag": ') else console).write(text + b"\n")
                    self.last = max(self.last, key)

    def follow(self, pod: Callable[[], str | None], read: Callable[[str], Iterable[bytes]],
               state: Callable[[str], str], stop: threading.Event) -> None:
        """Follow the log of the pod ``pod()`` names (None: not created yet) until it has ended and its
        log was read to the end, or ``stop`` is set; then ``done``."""
        try:
            while not stop.is_set():
                name = pod()
                if name is not None:
                    try:
                        self.feed(read(name))
                        whole = True
                    except Exception:  # the API's or the connection's: read it again
                        whole = False
                    try:
                        current = state(name)
                    except ConfigError:
                        current = ""
                    if current == GONE or (current == ENDED and whole):
                        return
                stop.wait(LOG_RETRY_SECONDS)
        finally:
            self.done.set()


class PodProcess:
    """One of the job's processes as the cluster shows it (the JobProcess protocol): the aggregator
    (``index`` None) or the executor of an index. It has ended when its pod (its index) has ended
    for good, and the aggregator only once its log is in the run folder; an executor that failed
    leaves its pod's last lines in its ``.out``."""

    def __init__(self, launcher: KubernetesLauncher, index: int | None) -> None:
        self.launcher, self.index = launcher, index
        self._code: int | None = None

    @property
    def returncode(self) -> int | None:
        return self._code

    def poll(self) -> int | None:
        if self._code is None:
            status = self.launcher.status
            status.refresh()
            code = status.exit_code(self.index)
            if (self.index is None and code not in (None, LOST) and status.newest(None) is not None
                    and not self.launcher.log.done.is_set()):
                code = None  # its last lines are still on their way into the run folder
            if code is not None and self.index is not None and code != 0:
                self.launcher.keep_executor_log(self.index)
            self._code = code
        return self._code

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"{self.launcher.describe()} {self.index}", timeout or 0.0)
            time.sleep(STATUS_SECONDS / 4)
        return self._code  # type: ignore[return-value]


def executor_index(executor_id: str) -> int:
    """The Indexed Job index of ``executor-<n>``: n - 1."""
    match = re.fullmatch(r"executor-(\d+)", executor_id)
    if match is None or int(match[1]) < 1:
        raise ConfigError(f"launcher kubernetes: executors are named executor-<n>, got {executor_id!r}")
    return int(match[1]) - 1


class KubernetesLauncher:
    """The ``kubernetes`` Launcher: one job on the cluster of the current kubeconfig context (the
    module docstring). ``cluster`` is the connection to use (default: a new ``Cluster``)."""

    kind: ClassVar[str] = "kubernetes"
    forks_here: ClassVar[bool] = False
    restarts_itself: ClassVar[bool] = True
    start_timeout: ClassVar[float] = 600.0

    def __init__(self, job: JobSpec, run_dir: Path, env: dict[str, str], template: Any = None,
                 aggregator_env: dict[str, str] | None = None, cluster: Any = None) -> None:
        self.run_dir = run_dir
        self.cluster = cluster or Cluster()
        self.objects = JobObjects(run_name(job.conf.identity.job_name, job.conf.identity.time_stamp))
        docs = render_job(job, self.objects.run, job_image(), self.cluster.namespace, env, aggregator_env,
                          os.environ.get(DATA_CLAIM_ENV, ""))
        write_manifests([doc for doc in docs if doc["kind"] != "Secret"], run_dir / MANIFESTS)
        self.docs = {doc["metadata"]["name"]: doc for doc in docs}
        self.status = RunStatus(self.cluster, self.objects)
        self.log = PodLog(run_dir)
        self.aggregator: PodProcess | None = None
        self.executors: dict[str, PodProcess] = {}
        self.uids: dict[str, str] = {}
        self._stop = threading.Event()
        self._notes: dict[str, str] = {}
        self._kept_logs: set[int] = set()
        self._terminated = False

    @classmethod
    def prepare(cls, job: JobSpec, note: Callable[[str], None]) -> JobSpec:
        """Refuse, in one line, a job with no cluster to run on or a cluster that does not answer;
        say what of the job file a cluster does not use. Returns the job as its pods run it
        (``listening_in_own_network``)."""
        if not has_kubeconfig() and not in_cluster():
            raise ConfigError(f"{job.source}: launcher kubernetes: no cluster to run on (no kubeconfig at "
                              f"{kubeconfig()}); `python -m fedscale.deploy.kubernetes {job.source}` writes the "
                              f"job's manifests for kubectl apply")
        cluster = Cluster()
        major, minor = cluster.version()
        if (major, minor) < (1, MIN_MINOR_VERSION):
            note(f"the cluster runs Kubernetes {major}.{minor}: before 1.{MIN_MINOR_VERSION} executor_restarts "
                 f"(backoffLimitPerIndex) is ignored and the executors share the cluster's default retries")
        note(f"the job runs on kubernetes {cluster.where} as image {job_image()} (${IMAGE_ENV})")
        if any(not is_local_host(worker.host) for worker in job.workers):
            note("worker_ips hosts are not used on a cluster: it places the executors' pods itself")
        if job.setup_commands:
            note(f"setup_commands are not run on a cluster: the image {job_image()} must hold what they install")
        if job.ps_port == 0:
            note(f"ps_port 0: the aggregator listens on port {DEFAULT_PORT} of its pod")
        return listening_in_own_network(job)

    def _create(self, name: str) -> None:
        doc = self.docs[name]
        self.uids[name] = self.cluster.create(doc)
        if doc["kind"] == "Job":
            self.status.created[name] = time.monotonic()

    def start_aggregator(self, *args: str) -> PodProcess:
        """Create the job's ConfigMap, Secret, Service and the aggregator's Job, and follow its log."""
        if args:
            raise ConfigError(f"launcher kubernetes: {' '.join(args)} is not supported: a job's run folder on a "
                              "cluster lives in its pods")
        for name in (self.objects.config_map, self.objects.secret, self.objects.service, self.objects.aggregator):
            self._create(name)
        self.aggregator = PodProcess(self, None)
        threading.Thread(target=self.log.follow, name=f"log {self.objects.aggregator}", daemon=True,
                         args=(self._aggregator_pod, self.cluster.follow_log, self.cluster.pod_state,
                               self._stop)).start()
        return self.aggregator

    def start_executor(self, executor_id: str, address: str = "", log_offset: int = 0) -> PodProcess:
        """The executors' Indexed Job is created with the first; each index's pod reaches the
        aggregator through its Service (``address`` is not needed). Asked again for an executor, it
        is the same process: the cluster restarts an index itself, ``executor_restarts`` times."""
        index = executor_index(executor_id)
        if executor_id not in self.executors:
            if not self.executors:
                self._create(self.objects.executors)
            self.executors[executor_id] = PodProcess(self, index)
        return self.executors[executor_id]

    def _aggregator_pod(self) -> str | None:
        self.status.refresh()
        pod = self.status.newest(None)
        return pod.metadata.name if pod is not None else None

    def sync(self) -> None:
        """The aggregator's log is followed into the run folder as it grows (``PodLog``); here a pod
        that waits (an image that cannot be pulled, no node with room) or a cluster out of reach
        is said once in the process's ``.out``, which the driver quotes when the job fails."""
        self.status.refresh()
        processes = {AGGREGATOR: None} if self.aggregator else {}
        processes.update({executor_id: proc.index for executor_id, proc in self.executors.items()})
        for name, index in processes.items():
            pod = self.status.newest(index)
            reason = self.status.unreachable or (waiting_reason(pod) if pod is not None else "")
            if reason and reason != self._notes.get(name):
                where = f"pod {pod.metadata.name}" if pod is not None and not self.status.unreachable else "kubernetes"
                self._append(name, f"{where}: {reason}\n".encode())
            self._notes[name] = reason

    def _append(self, process: str, text: bytes) -> None:
        with open(self.run_dir / commons.console_output_name(process), "ab") as out:
            out.write(text)

    def keep_executor_log(self, index: int) -> None:
        """Append the last lines of the executor's last pod to its ``.out`` (once)."""
        pod = self.status.newest(index)
        if index in self._kept_logs or pod is None:
            return
        self._kept_logs.add(index)
        try:
            tail = self.cluster.log_tail(pod.metadata.name)
        except ConfigError as err:
            tail = f"{err}\n".encode()
        self._append(commons.executor_id(index + 1), tail if tail.endswith(b"\n") or not tail else tail + b"\n")

    def processes(self) -> list[PodProcess]:
        return ([self.aggregator] if self.aggregator else []) + list(self.executors.values())

    def wait_all(self, timeout: float) -> bool:
        return wait_all(self.processes(), timeout)

    def terminate(self, grace: float = 3.0) -> None:
        """Delete the job's objects (a Job after its pods), and give the aggregator up to ``grace``
        s to log its end; what could not be deleted is one ConfigError (its record stays, for
        ``stop``)."""
        if self._terminated:
            return
        self._terminated = True
        error = _delete_all(self.cluster, self.record()["objects"])
        self.log.done.wait(grace if self.aggregator else 0.0)
        self._stop.set()
        if error is not None:
            raise error

    def record(self) -> dict[str, Any]:
        order = [self.objects.executors, self.objects.aggregator, self.objects.service, self.objects.secret,
                 self.objects.config_map]
        return {"kind": self.kind, "where": self.describe(), "context": self.cluster.context,
                "namespace": self.cluster.namespace,
                "objects": [[self.docs[name]["kind"], name, self.uids[name]] for name in order if name in self.uids]}

    def describe(self) -> str:
        return f"kubernetes {self.cluster.where} job {self.objects.run}"

    @staticmethod
    def stop_recorded(record: dict[str, Any]) -> None:
        """Delete the recorded objects (each only if it is still the very one created: its uid)."""
        error = _delete_all(Cluster(record.get("context", ""), record.get("namespace", "")), record.get("objects", []))
        if error is not None:
            raise error


def _delete_all(cluster: Any, objects: list[list[str]]) -> ConfigError | None:
    """Delete ``objects`` ([kind, name, uid] each); the first failure, after trying them all."""
    first = None
    for kind, name, uid in objects:
        try:
            cluster.delete(kind, name, uid)
        except ConfigError as err:
            first = first or err
    return first


def main(argv: list[str] | None = None) -> int:
    """Write a job's manifests into a new run folder, for a cluster the driver cannot reach."""
    parser = argparse.ArgumentParser(prog="python -m fedscale.deploy.kubernetes",
                                     description="Write a job's Kubernetes manifests for kubectl apply.")
    parser.add_argument("job", help="the job file")
    parser.add_argument("--namespace", default="default", help="the namespace the job runs in (default: default)")
    parser.add_argument("--image", default="", help=f"the image of its pods (default: ${IMAGE_ENV} or {DEFAULT_IMAGE})")
    args = parser.parse_args(argv)
    from fedscale.deploy.submit import job_env, make_run_dir
    try:
        job, run_dir = make_run_dir(listening_in_own_network(load_job(args.job)))
        token = job.conf.identity.wandb_token
        name = run_name(job.conf.identity.job_name, job.conf.identity.time_stamp)
        docs = render_job(job, name, args.image or job_image(), args.namespace,
                          job_env(job, KubernetesLauncher.kind, secrets.token_hex(32)),
                          {"WANDB_API_KEY": token} if token else {}, os.environ.get(DATA_CLAIM_ENV, ""))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    manifests = write_manifests([doc for doc in docs if doc["kind"] != "Secret"], run_dir / MANIFESTS)
    secret = write_manifests([doc for doc in docs if doc["kind"] == "Secret"], run_dir / SECRET_MANIFESTS)
    print(f"{manifests}: the job's ConfigMap, Service and Jobs (namespace {args.namespace})\n"
          f"{secret}: its Secret, readable by you only; delete it once applied\n"
          f"run:    kubectl apply -f {secret} -f {manifests}\n"
          f"events: kubectl logs -f -n {args.namespace} job/{JobObjects(name).aggregator} | grep '^{{\"tag\": ' "
          f"> {run_dir / commons.AGGREGATOR_LOG}\n"
          f"end:    kubectl delete -f {manifests} -f {secret}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
