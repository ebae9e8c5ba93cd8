"""An executor process: holds the clients' data, trains the clients it is sent, evaluates shards.

Started by a launcher as ``python -m fedscale.cloud.execution.executor --run-dir DIR
--executor-id ID [--address HOST:PORT]`` with the job secret in the environment. It loads the
resolved job (``DIR/job.json``) and the federated data set, opens one session to the
aggregator, then serves tasks until told to shut down or until the aggregator is gone. Without
``--address`` it is started together with the aggregator: it loads its data while the
aggregator starts, then takes the address the aggregator announces in its event log. An
executor of a Kubernetes Indexed Job, whose pods differ only in ``JOB_COMPLETION_INDEX``, is
started with ``--executor-id auto``: it is ``executor-<index + 1>``. On this machine
``executor-1`` is no process: the aggregator serves itself with it from a thread
(``start_in_process``, over ``channels.in_process``).

A client that fails (``ClientFailure``) is reported as a failure of that client and the task
goes on. Any other exception while serving is a bug: its traceback goes to this process's
console output, the aggregator is told (an ``ExecutorError``) and ends the job, and the process
exits.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback
from functools import partial
from pathlib import Path
from typing import Any

import torch
from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode

from fedscale.cloud import commons
from fedscale.cloud.channels import job_api_pb2 as pb
from fedscale.cloud.channels.client import AggregatorConnection, AggregatorLost, Unauthenticated
from fedscale.cloud.channels.in_process import InProcessConnection
from fedscale.cloud.channels.server import AggregatorServer
from fedscale.cloud.channels.tensor_codec import headers
from fedscale.cloud.channels.tls import JobCertificates
from fedscale.cloud.config_parser import JobConf, JobSpec
from fedscale.cloud.internal.trace_formats import job_fleet
from fedscale.cloud.execution.adaptive_torch_client import AdaptiveSettings, AdaptiveTorchClient
from fedscale.cloud.execution.torch_client import ClientFailure, TorchClient
from fedscale.cloud.logger.events import EventLog, EventTail
from fedscale.cloud.process_end import exit_now
from fedscale.cloud.telemetry import Telemetry, extract
from fedscale.cloud.time_model import build_time_model
from fedscale.cloud.virtual_clock import VirtualClock
from fedscale.dataloaders.federated import FederatedData, load_federated_data
from fedscale.dataloaders.models import build_model
from fedscale.dataloaders.partition import contiguous_bounds
from fedscale.robust.registry import data_attack

ADDRESS_POLL_SECONDS = 0.01
EXIT_AGGREGATOR_LOST = 3
EXIT_REFUSED = 4
EXIT_BAD_DATA = 2
EXIT_INTERNAL_ERROR = 1
RESULT_BUFFER_BYTES = 64 << 20
AUTO_ID, INDEX_ENV = "auto", "JOB_COMPLETION_INDEX"

Session = AggregatorConnection | InProcessConnection


def get_client_trainer(conf: JobConf, data: FederatedData) -> TorchClient:
    """The trainer for this job's clients, on one model object reused for every client:
    fixed-step training, or with ``adaptive_training`` the time-budget trainer, which needs the
    job's time model on its device fleet to simulate its own times. Under a data attack it also
    holds the labels map the Byzantine clients it is told of train with."""
    seed, fleet = conf.training.seed, conf.fleet
    torch.manual_seed(seed)
    model = build_model(conf.training.model, tuple(data.train.input_shape), data.train.num_classes)
    poison = data_attack(conf.robustness.attack)
    if conf.adaptive.adaptive_training:
        devices = job_fleet(fleet.clients_file, fleet.device_conf_file, fleet.device_avail_file)
        return AdaptiveTorchClient(model, data.train, data.client_indices, seed, poison,
                                   time_model=partial(build_time_model, devices, fleet))
    return TorchClient(model, data.train, data.client_indices, seed, poison)


def announced_address(run_dir: Path, log_offset: int, timeout: float) -> str:
    """The address in the aggregator's JOB_BEGIN event at or after byte ``log_offset`` of the run's
    event log, waiting up to ``timeout`` seconds for it; AggregatorLost if none comes."""
    tail = EventTail(run_dir / commons.AGGREGATOR_LOG, log_offset)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in tail.poll():
            if event["tag"] == commons.JOB_BEGIN:
                return event["address"]
            if event["tag"] == commons.JOB_END:
                raise AggregatorLost(f"the aggregator ended before announcing its address: {event.get('reason', '')}")
        time.sleep(ADDRESS_POLL_SECONDS)
    raise AggregatorLost(f"the aggregator announced no address within connection_timeout={timeout:g} s")


class InternalError(Exception):
    """A bug while serving the aggregator: the traceback is printed and the aggregator told."""


def describe(err: BaseException) -> str:
    """``"<exception type>: <message>"``, the one-line form of an internal error."""
    return f"{type(err).__name__}: {err}"


class Executor:
    """Serves one aggregator session with a trainer over this job's data; ``clock``, which ``log``
    stamps its events with, follows the round of the task at hand. With ``credentials`` the session
    is mutual TLS."""

    def __init__(self, job: JobSpec, executor_id: str, secret: str, log: EventLog, clock: VirtualClock,
                 telemetry: Telemetry | None = None, credentials: JobCertificates | None = None) -> None:
        self.conf = job.conf
        self.telemetry = telemetry or Telemetry.off()
        self.instruments = self.telemetry.instruments
        self.executor_id = executor_id
        self.secret = secret
        self.credentials = credentials
        self.log = log
        self.clock = clock
        torch.set_num_threads(self.conf.cluster.torch_threads)
        self.data = load_federated_data(self.conf.data, self.conf.training.seed)
        self.trainer = get_client_trainer(self.conf, self.data)

    def hello(self) -> pb.Hello:
        """What this executor announces when it joins: its clients' sample counts and data shape."""
        return pb.Hello(executor_id=self.executor_id,
                        client_sample_counts=self.data.client_sample_counts.tolist(),
                        test_samples=len(self.data.test),
                        input_shape=list(self.data.train.input_shape),
                        num_classes=self.data.train.num_classes)

    def serve(self, address: str) -> None:
        """Register with the aggregator at ``address``, then ``run``."""
        self.run(AggregatorConnection(address, self.secret, self.hello(),
                                      connect_timeout=float(self.conf.cluster.connection_timeout),
                                      on_lost=self._abandon, credentials=self.credentials))

    def run(self, conn: Session) -> None:
        """Run the tasks of the session ``conn`` until SHUTDOWN (returns) or the aggregator is lost
        (raises). A bug prints its traceback, reports it to the aggregator and raises InternalError."""
        self.log.emit(commons.EXECUTOR_JOINED, executor=self.executor_id, index=conn.welcome.executor_index)
        try:
            self._run_tasks(conn)
        except AggregatorLost:
            raise
        except Exception as err:
            traceback.print_exc()
            sys.stderr.flush()
            conn.send(pb.ExecutorMessage(error=pb.ExecutorError(reason=describe(err))))
            raise InternalError(describe(err)) from err
        finally:
            conn.close()

    def _run_tasks(self, conn: Session) -> None:
        while True:
            task, tensors = conn.next_task()
            self.clock.start_round(task.round)
            if task.kind == pb.SHUTDOWN:
                return
            vector = torch.from_numpy(tensors["model"])
            self.instruments.bytes.add(vector.nbytes, {"direction": "received"})
            parent = extract(task.trace_context) if self.telemetry.enabled else None
            if task.kind == pb.TRAIN:
                self._train(conn, task, vector, parent)
            elif task.kind == pb.TEST:
                self._test(conn, task, vector, parent)

    def _train(self, conn: Session, task: pb.Task, vector: torch.Tensor, parent: Context | None) -> None:
        """Train the task's clients back to back (each in its span under ``parent``, the round's),
        then send their results in one batch.

        Results wait until the task's training is done (or until ``RESULT_BUFFER_BYTES`` of
        updates are held): sending from gRPC's thread while this one trains makes the two
        contend for the interpreter, and one batch costs a few messages instead of a few per
        client.
        """
        batch = pb.TaskResults(task_id=task.task_id)
        updates: list[torch.Tensor] = []
        settings = self._adaptive_settings(task.train) if task.train.HasField("adaptive") else None
        for index, client_id in enumerate(task.client_ids):
            if not 0 <= client_id < self.data.num_clients:
                batch.failures.add(client_id=client_id, reason="unknown client id")
                continue
            with self.telemetry.span("fl.client.train", parent, {"fl.client": client_id, "fl.round": task.round}) as span:
                try:
                    result, update = self._train_client(task, index, vector, settings)
                except ClientFailure as failure:
                    span.set_status(Status(StatusCode.ERROR, str(failure)))
                    batch.failures.add(client_id=client_id, reason=str(failure))
                    continue
                self._record_client(span, task, index, result)
            batch.results.append(result)
            updates.append(update)
            if len(updates) * update.nbytes >= RESULT_BUFFER_BYTES:
                self._send_results(conn, batch, updates)
                batch, updates = pb.TaskResults(task_id=task.task_id), []
        batch.final = True
        self._send_results(conn, batch, updates)

    def _adaptive_settings(self, cfg: pb.TrainConfig) -> AdaptiveSettings:
        a = cfg.adaptive
        return AdaptiveSettings(a.ewma_lambda, a.min_payload_frac, a.budget_recheck_steps, a.run_phase_2,
                                cfg.batch_size)

    def _train_client(self, task: pb.Task, index: int, vector: torch.Tensor,
                      settings: AdaptiveSettings | None) -> tuple[pb.ClientResult, torch.Tensor]:
        """Train the task's ``index``-th client: its result and update; ClientFailure if it fails.
        ``settings`` is set for an adaptive task."""
        cfg, client_id = task.train, task.client_ids[index]
        byzantine = bool(task.client_data_attack) and task.client_data_attack[index]
        if settings is not None:
            conf = task.client_conf[index]
            adaptive = self.trainer.train_adaptive(vector, client_id, task.round, cfg.learning_rate, conf.device,
                                                   cfg.adaptive.round_start, conf.download_seconds, conf.t_budget,
                                                   settings, proximal_mu=cfg.proximal_mu, byzantine=byzantine)
            out = adaptive.update
            times = dict(t_download=adaptive.t_download, t_compute=adaptive.t_compute, t_upload=adaptive.t_upload,
                         phase1_steps=adaptive.phase1_steps, phase2_steps=adaptive.phase2_steps)
        else:
            steps = task.client_local_steps[index] if task.client_local_steps else cfg.local_steps
            keep = task.client_keep_fraction[index] if task.client_keep_fraction else 1.0
            out = self.trainer.train(vector, client_id, task.round, steps, cfg.batch_size, cfg.learning_rate, keep,
                                     proximal_mu=cfg.proximal_mu, byzantine=byzantine,
                                     dropout_mode=pb.UploadDropout.Name(cfg.upload_dropout).lower())
            times = {}
        result = pb.ClientResult(client_id=client_id, num_samples=out.num_samples, train_loss=out.train_loss,
                                 compute_seconds=out.compute_seconds, utility=out.utility,
                                 local_steps=out.local_steps, update_norm=out.update_norm,
                                 keep_fraction=out.keep_fraction, initial_loss=out.initial_loss, **times)
        return result, out.update

    def _record_client(self, span: Any, task: pb.Task, index: int, result: pb.ClientResult) -> None:
        """A trained client in its span and the metrics: samples, loss, simulated seconds (sent with
        the task, or the adaptive training's own); nothing when telemetry is off."""
        if not self.telemetry.enabled:
            return
        self.instruments.client_examples.add(result.num_samples)
        self.instruments.client_loss.record(result.train_loss)
        seconds = (task.client_seconds[3 * index:3 * index + 3] if task.client_seconds
                   else (result.t_download, result.t_compute, result.t_upload))
        span.set_attributes({"fl.samples": result.num_samples, "fl.loss": result.train_loss,
                             "fl.download_seconds": seconds[0], "fl.compute_seconds": seconds[1],
                             "fl.upload_seconds": seconds[2]})

    def _send_results(self, conn: Session, batch: pb.TaskResults, updates: list[torch.Tensor]) -> None:
        arrays = [("updates", torch.stack(updates).numpy())] if updates else []
        batch.tensors.extend(headers(arrays))
        conn.send(pb.ExecutorMessage(results=batch), arrays)
        if arrays:
            self.instruments.bytes.add(arrays[0][1].nbytes, {"direction": "sent"})

    def _test(self, conn: Session, task: pb.Task, vector: torch.Tensor, parent: Context | None) -> None:
        bounds = contiguous_bounds(len(self.data.test), task.shard_count)
        shard = slice(int(bounds[task.shard_index]), int(bounds[task.shard_index + 1]))
        test = self.data.test
        with self.telemetry.span("fl.client.evaluate", parent, {"fl.round": task.round, "fl.shard": task.shard_index,
                                                                "fl.shards": task.shard_count}) as span:
            out = self.trainer.test(vector, test.rows(shard), self.conf.training.test_bsz)
            if self.telemetry.enabled and out.num_samples:
                span.set_attributes({"fl.samples": out.num_samples, "fl.loss": out.loss_sum / out.num_samples,
                                     "fl.accuracy": out.correct / out.num_samples})
        conn.send(pb.ExecutorMessage(test=pb.TestResult(
            task_id=task.task_id, loss_sum=out.loss_sum, correct=out.correct, num_samples=out.num_samples)))

    def _abandon(self, reason: str) -> None:
        """The aggregator fell silent while this process may be busy: leave at once."""
        self.log.emit(commons.JOB_END, status=commons.STATUS_FAILED, reason=reason)
        print(f"{self.executor_id}: {reason}; exiting", file=sys.stderr, flush=True)
        self.telemetry.shutdown()
        os._exit(EXIT_AGGREGATOR_LOST)


def start_in_process(job: JobSpec, run_dir: Path, server: AggregatorServer, telemetry: Telemetry,
                     executor_id: str = "executor-1") -> threading.Thread:
    """The job's ``executor_id`` in this, the aggregator's, process (``JobSpec.in_process``): built
    now, its data loaded (a ValueError says what is wrong with it), joined to ``server``, then
    serving it from the thread returned. It keeps its own event log, where its end is logged as
    an executor process logs its own."""
    clock = VirtualClock()
    log = EventLog(run_dir / commons.executor_log_name(executor_id), job.conf.identity.job_name, clock)
    try:
        executor = Executor(job, executor_id, "", log, clock, telemetry)
    except ValueError as err:
        _fail(log, executor_id, str(err), EXIT_BAD_DATA)
        raise
    conn = InProcessConnection(server, executor.hello())

    def serve() -> None:
        started = time.time()
        try:
            executor.run(conn)
        except AggregatorLost as err:
            _fail(log, executor_id, str(err), EXIT_AGGREGATOR_LOST)
        except InternalError as err:
            _fail(log, executor_id, f"internal error: {err}", EXIT_INTERNAL_ERROR)
        else:
            log.emit(commons.JOB_END, status=commons.STATUS_COMPLETED, reason="", wall_seconds=time.time() - started)

    thread = threading.Thread(target=serve, name=executor_id, daemon=True)
    thread.start()
    return thread


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _fail(log: EventLog, executor_id: str, reason: str, code: int) -> int:
    """Log the failed end with ``reason``, say it on stderr in one line, return ``code``."""
    log.emit(commons.JOB_END, status=commons.STATUS_FAILED, reason=reason)
    print(f"{executor_id}: {reason}", file=sys.stderr)
    return code


def executor_name(given: str) -> str:
    """``--executor-id``: as given, or for ``auto`` ``executor-<JOB_COMPLETION_INDEX + 1>``; a
    missing or malformed index exits with one line."""
    if given != AUTO_ID:
        return given
    index = os.environ.get(INDEX_ENV, "")
    if not index.isdigit():
        raise SystemExit(f"--executor-id {AUTO_ID}: expected {INDEX_ENV} to hold a whole number, got {index!r}")
    return commons.executor_id(int(index) + 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fedscale executor process.")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--executor-id", required=True, type=executor_name,
                        help=f"the executor's name; {AUTO_ID}: executor-<${INDEX_ENV} + 1>")
    parser.add_argument("--address", help="the aggregator's host:port (default: the one it announces in its "
                                          "event log, after byte --log-offset)")
    parser.add_argument("--log-offset", type=int, default=0,
                        help="where the aggregator's event log ended before it was started")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    job = JobSpec.read(run_dir)
    clock = VirtualClock()
    log = EventLog(run_dir / commons.executor_log_name(args.executor_id), job.conf.identity.job_name, clock)
    telemetry = Telemetry.start(args.executor_id, job.conf.identity.job_name)
    if telemetry.enabled:  # a stopped job's spans are flushed too (below), not cut off by the signal
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _exit_on_signal)
    try:
        started = time.time()
        try:
            credentials = JobCertificates.from_env(os.environ)
        except ValueError as err:
            return _fail(log, args.executor_id, str(err), EXIT_REFUSED)
        try:
            executor = Executor(job, args.executor_id, os.environ.get(commons.SECRET_ENV, ""), log, clock,
                                telemetry, credentials)
        except ValueError as err:
            return _fail(log, args.executor_id, str(err), EXIT_BAD_DATA)
        try:
            timeout = float(job.conf.cluster.connection_timeout)
            executor.serve(args.address or announced_address(run_dir, args.log_offset, timeout))
        except (AggregatorLost, Unauthenticated) as err:
            return _fail(log, args.executor_id, str(err),
                         EXIT_REFUSED if isinstance(err, Unauthenticated) else EXIT_AGGREGATOR_LOST)
        except InternalError as err:
            return _fail(log, args.executor_id, f"internal error: {err}", EXIT_INTERNAL_ERROR)
        log.emit(commons.JOB_END, status=commons.STATUS_COMPLETED, reason="", wall_seconds=time.time() - started)
        return 0
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    exit_now(main())
