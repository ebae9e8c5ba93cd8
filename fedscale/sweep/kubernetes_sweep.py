"""A sweep's runs as one Kubernetes Indexed Job of sweep cells, filling the same sweep folder a
local sweep does (``fedscale.sweep.cell_array``: how the cells are followed and recorded).

The sweep folder lives on a PersistentVolumeClaim (``--claim``) that this machine mounts at the
folder's own path (``--out``) and every cell's pod mounts at that same path
(``fedscale.deploy.kubernetes.render_sweep``), so the cells read plan.json and write their run
folders where this process follows them; a run's base job file must be in the folder too, since
the plan names it by absolute path. The Job, ``sweep-<folder>-<time>`` (a sweep run again in the
same folder makes a new one), is created in the namespace given (default: the kubeconfig
context's), its manifest kept as ``<out>/kubernetes.yaml``: one index per run, none retried, each
asking for the cores its run keeps busy, at most ``parallel`` at once (default all). An index has
ended when the Job lists it as completed or failed, or the Job has ended or is gone; one that
ended without its run's outcome (out of memory, a node lost, a cell that could not start) is
recorded as ``error`` naming the Job, the index and how to see its pod. Why a pod waits (an image
that cannot be pulled, no node with room) is said once. Ctrl-C deletes the Job, its pods first:
each cell is asked to stop and records its run as stopped. Finished Jobs are left to the cluster
(and to ``kubectl delete``), with their pods' logs.

Without a cluster in reach, ``render_folder`` prepares the same folder, plan, manifest and the
Job's manifest, for ``kubectl apply`` from elsewhere; ``fedscale report`` writes the comparison
once the cells have ended.
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

from fedscale.cloud.config.keys import ConfigError
from fedscale.deploy.kubernetes import (INDEX_KEY, MANIFESTS, MIN_MINOR_VERSION, STATUS_SECONDS, Cluster,
                                        has_kubeconfig, in_cluster, job_image, job_indexes, kubeconfig, run_name,
                                        waiting_reason, write_sweep_manifests)
from fedscale.sweep.cell_array import CellArrayRunner
from fedscale.sweep.manifest import manifest
from fedscale.sweep.plan import write_plan
from fedscale.sweep.results import write_json
from fedscale.sweep.runner import RunState, cores_needed
from fedscale.sweep.spec import Sweep

RENDER_NAMESPACE = "default"  # with --render-only, no kubeconfig context to take one from
STARTING = ("ContainerCreating", "PodInitializing")  # what every pod waits for a moment: not worth a word


def connect(namespace: str) -> Cluster:
    """The cluster of the current kubeconfig context (in a pod: its own), in ``namespace`` (default:
    the context's); one line when there is none, pointing to ``--render-only``."""
    if not has_kubeconfig() and not in_cluster():
        raise ConfigError(f"no cluster to run on (no kubeconfig at {kubeconfig()}); --render-only writes the "
                          f"sweep's manifests for kubectl apply instead")
    return Cluster(namespace=namespace)


def check_folder(sweep: Sweep, out: Path, claim: str) -> None:
    """One line unless ``claim`` is given and every run's base job file is in the sweep folder,
    where the cells find it by the path the plan names it by."""
    if not claim:
        raise ConfigError("sweep: --cluster kubernetes needs --claim NAME, the PersistentVolumeClaim holding --out "
                          "(mounted at --out here and in the cells)")
    folder = os.path.abspath(out)
    for run in sweep.runs:
        if run.base and os.path.commonpath([folder, run.base]) != folder:
            raise ConfigError(f"sweep: --cluster kubernetes: run {run.run_id}'s base job file {run.base} is not in "
                              f"--out {folder}, which is all the cells see; copy it there")


def write_cells_job(out: Path, n_runs: int, claim: str, namespace: str, image: str, parallel: int, cpus: int,
                    indexes: Sequence[int] = ()) -> dict[str, Any]:
    """The Indexed Job of the sweep's cells (``render_sweep``; ``indexes``: only those runs), named
    for the folder and the time, written to ``<out>/kubernetes.yaml``; returns it as read back, so
    what is created is the file kept."""
    name = run_name(f"sweep-{Path(os.path.abspath(out)).name}", time.strftime("%Y%m%d-%H%M%S"))
    path = write_sweep_manifests(str(out), n_runs, claim, image=image, namespace=namespace, parallel=parallel,
                                 cpus=cpus, name=name, indexes=indexes)
    (job,) = yaml.safe_load_all(path.read_text())
    return job


def render_folder(sweep: Sweep, out: Path, claim: str, parallel: int | None = None, namespace: str = "",
                  image: str = "") -> str:
    """Prepare ``out`` for a cluster this machine cannot reach: plan.json, manifest.json and the
    Job of every run's cell (kubernetes.yaml). Returns what to do next: ``kubectl apply``, then,
    once every cell has ended, ``fedscale report`` for the comparison."""
    check_folder(sweep, out, claim)
    namespace = namespace or RENDER_NAMESPACE
    states = [RunState(run, out / run.run_id, cores_needed(run)) for run in sweep.runs]
    parallel = parallel or len(states)
    write_plan(sweep, out)
    write_json(out / "manifest.json", manifest(sweep, parallel, states))
    job = write_cells_job(out, len(states), claim, namespace, image or job_image(), parallel,
                          max(s.cores_needed for s in states))
    name = job["metadata"]["name"]
    return (f"{out / MANIFESTS}: Job {name}, {len(states)} cells, {min(parallel, len(states))} at a time "
            f"(namespace {namespace}; claim {claim} mounted at {os.path.abspath(out)})\n"
            f"run:    kubectl apply -f {out / MANIFESTS}\n"
            f"follow: kubectl get job -n {namespace} {name}\n"
            f"report: fedscale report {out}   (once every cell has ended)")


class KubernetesSweepRunner(CellArrayRunner):
    """Runs ``sweep`` into ``out`` (the PersistentVolumeClaim ``claim``'s mount path here) as one
    Indexed Job of cells in ``namespace`` (default: the kubeconfig context's), running ``image``
    (default: ``$FEDSCALE_IMAGE``). ``cluster`` makes the connection from the namespace
    (``connect``; a test gives a stand-in running the cells as local processes), at once and checked
    to answer, so a machine without a cluster fails before the sweep folder is touched."""

    def __init__(self, sweep: Sweep, out: Path, parallel: int | None = None, resume: bool = False,
                 stream: TextIO = sys.stdout, claim: str = "", namespace: str = "", image: str = "",
                 cluster: Callable[[str], Any] = connect) -> None:
        check_folder(sweep, out, claim)
        super().__init__(sweep, out, parallel or len(sweep.runs), resume, stream)
        self.claim, self.image = claim, image or job_image()
        self._said: set[str] = set()
        try:
            self.cluster = cluster(namespace)
            major, minor = self.cluster.version()
        except ConfigError as err:
            raise ConfigError(f"sweep: --cluster kubernetes: {err}") from None
        if (major, minor) < (1, MIN_MINOR_VERSION):
            self._say(f"the cluster runs Kubernetes {major}.{minor}: before 1.{MIN_MINOR_VERSION} a cell that fails "
                      f"is retried (backoffLimitPerIndex is ignored), and its run ends only when the Job does")
        self.job, self.uid = "", ""
        self._completed: frozenset[int] = frozenset()
        self._failed: frozenset[int] = frozenset()
        self._over = ""  # why every index has ended: the Job has, or is gone
        self._read_at = -math.inf

    def _say(self, note: str) -> None:
        """Print ``note`` once."""
        if note not in self._said:
            self._said.add(note)
            print(f"kubernetes: {note}", file=self.stream, flush=True)

    def _submit(self, pending: list[RunState], indexes: list[int]) -> list[int]:
        """Create the Job of the pending runs' cells; the tasks are its indexes."""
        job = write_cells_job(self.out, len(self.states), self.claim, self.cluster.namespace, self.image,
                              self.parallel, max(s.cores_needed for s in pending), indexes)
        self.job = job["metadata"]["name"]
        self.uid = self.cluster.create(job)
        print(f"kubernetes: Job {self.job} in {self.cluster.where}, {len(pending)} cells, image {self.image} "
              f"(manifest: {self.out / MANIFESTS})", file=self.stream, flush=True)
        return list(range(len(pending)))

    def _read(self) -> None:
        """Read the Job's ended indexes, and say why a pod waits, at most every STATUS_SECONDS; while
        the cluster cannot be read the last reading stands."""
        now = time.monotonic()
        if now - self._read_at < STATUS_SECONDS:
            return
        self._read_at = now
        try:
            job, pods = self.cluster.jobs(self.job).get(self.job), self.cluster.pods(self.job)
        except ConfigError as err:
            self._say(f"{err} (asking again)")
            return
        self._completed, self._failed = job_indexes(job)
        if job is None:
            self._over = "the Job was deleted"
        else:
            ended = [c.type for c in (job.status.conditions if job.status else None) or ()
                     if c.type in ("Complete", "Failed") and c.status == "True"]
            self._over = f"the Job ended ({ended[0]})" if ended else ""
        for pod in pods:
            reason = waiting_reason(pod)
            if reason and reason.partition(":")[0] not in STARTING:
                self._say(f"pod {pod.metadata.name}: {reason}")

    def _ended(self, task: int) -> bool:
        self._read()
        return bool(self._over) or task in self._completed or task in self._failed

    def _lost(self, task: int) -> str:
        how = "it failed" if task in self._failed else "it completed" if task in self._completed else self._over
        return (f"Kubernetes Job {self.job} index {task} ended before its run did ({how}); see kubectl describe pods "
                f"-n {self.cluster.namespace} -l job-name={self.job},{INDEX_KEY}={task}")

    def _cancel_tasks(self, tasks: list[int]) -> None:
        """Delete the Job, its pods first (each gets its grace period to record its run)."""
        try:
            self.cluster.delete("Job", self.job, self.uid)
        except ConfigError as err:
            print(f"kubernetes: {err}; delete it with kubectl delete job -n {self.cluster.namespace} {self.job}",
                  file=self.stream, flush=True)
