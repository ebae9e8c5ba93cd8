"""The aggregator process: owns the model, the fleet and the virtual clock, and runs the rounds.

Started by a launcher as ``python -m fedscale.cloud.aggregation.aggregator --run-dir DIR`` with
the job secret in the environment. It serves the executors' sessions (on this machine
``executor-1``'s from a thread of its own process, see ``channels.in_process``), waits for
all of them, then for each round: selects participants, splits them across the live executors, sends each
executor the global model with its clients, collects the updates as they stream in, applies
the server update, every ``eval_interval`` rounds has the executors evaluate shards of the
test set, and every ``checkpoint_interval`` rounds saves a checkpoint (``checkpoint.py``) from
which ``--resume`` continues the job at the next round. An executor that joins later (a
restarted one) is admitted between rounds or takes over a lost one's clients; with none left the
aggregator waits ``connection_timeout`` for one. What executors report is checked before
it is used (``peer_reports``); a global model that stops being finite ends the job as diverged.
An asynchronous job (``JobSpec.mode``) runs ``buffered_async``'s aggregator in this process
instead: FedBuff's aggregation steps in place of rounds. This module orchestrates; selection,
time and aggregation math live in their own modules.
"""
from __future__ import annotations

import argparse
import copy
import itertools
import os
import queue
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from fedscale.cloud import commons
from fedscale.cloud.aggregation.checkpoint import CheckpointWriter, checkpoint_path, read_checkpoint
from fedscale.cloud.aggregation.peer_reports import (evaluation_diverged, evaluation_problem, finite,
                                                     finite_rows, hello_problem, result_problem)
from fedscale.cloud.aggregation.round_spans import RoundSpans, TestSpans
from fedscale.cloud.aggregation.server_algorithms import make_server_algorithm
from fedscale.cloud.aggregation.threat_model import ThreatModel
from fedscale.cloud.channels import job_api_pb2 as pb
from fedscale.cloud.channels.server import (ERROR, JOINED, LOST, RESULTS, TEST, AggregatorServer,
                                            ExecutorSession, ServerEvent)
from fedscale.cloud.channels.tls import JobCertificates
from fedscale.cloud.client_manager import ClientManager, RoundPlan, make_selector
from fedscale.cloud.internal.trace_formats import job_fleet
from fedscale.cloud.config_parser import JobSpec
from fedscale.cloud.execution.executor import start_in_process
from fedscale.cloud.logger.events import EventLog, EventLogError
from fedscale.cloud.logger.wandb_run import WandbRun
from fedscale.cloud.model_vector import ModelVector
from fedscale.cloud.process_end import exit_now
from fedscale.cloud.telemetry import Telemetry
from fedscale.cloud.virtual_clock import VirtualClock
from fedscale.dataloaders.catalog import TEXT_DATA_SETS
from fedscale.dataloaders.models import build_model
from fedscale.dataloaders.partition import contiguous_bounds

EXIT_FAILED = 1
EXIT_STOPPED = 130
MAX_REASON_CHARS = 300
IN_PROCESS_JOIN_SECONDS = 5.0  # for the in-process executor, idle once the job is done, to log its end


class JobFailed(RuntimeError):
    """The job cannot go on (no executor left, executors disagree, ...)."""


class JobDiverged(RuntimeError):
    """The global model stopped being finite: the job cannot learn any further."""


class JobStopped(Exception):
    """The job was asked to stop (SIGTERM / SIGINT)."""


@dataclass
class RoundOutcome:
    """What one round produced: per-client results of the clients that reported, and the
    executor and reason of each client that failed."""

    results: dict[int, tuple[pb.ClientResult, torch.Tensor]] = field(default_factory=dict)
    failures: dict[int, tuple[str, str]] = field(default_factory=dict)


@dataclass(eq=False)
class TrainingBatch:
    """Training sent for one plan: the round (or step) whose seed its clients train with, the
    plan, the settings and model they train with, the executor owning each outstanding client,
    the steps each was asked for, the tasks' ids and what came back."""

    round_index: int
    plan: RoundPlan
    train: pb.TrainConfig
    model: list[tuple[str, np.ndarray]]
    owner: dict[int, ExecutorSession] = field(default_factory=dict)
    asked_steps: dict[int, int] = field(default_factory=dict)
    task_ids: set[int] = field(default_factory=set)
    outcome: RoundOutcome = field(default_factory=RoundOutcome)


@dataclass
class TestRun:
    """A test of the global model in progress: the round and virtual time it tests, the shards'
    bounds, the shards still to send, those sent (by task id) and those reported, the model sent
    with each, and a checkpoint that waits for its result (None if none does)."""

    round_index: int
    virtual_time: float
    bounds: np.ndarray
    todo: list[int]
    model: list[tuple[str, np.ndarray]]
    running: dict[int, tuple[ExecutorSession, int]] = field(default_factory=dict)
    results: dict[int, pb.TestResult] = field(default_factory=dict)
    checkpoint: dict[str, Any] | None = None
    spans: TestSpans | None = None


def split_by_cost(costs: np.ndarray, parts: int) -> list[list[int]]:
    """Positions ``0..len(costs)-1`` cut into ``parts`` contiguous blocks of near-equal total
    cost: each position goes to the block its cost's midpoint falls in, so the executors that
    train the blocks finish together (positions of no cost count as one each). The cost of a
    participant is its local steps: a step costs nearly the same on the models trained here
    whatever part of a batch a small client fills."""
    costs = np.asarray(costs, dtype=np.float64)
    if not costs.sum() > 0:
        costs = np.ones(len(costs))
    total = costs.sum()
    midpoints = np.cumsum(costs) - costs / 2
    targets = total * np.arange(1, parts) / parts
    bounds = np.concatenate(([0], np.searchsorted(midpoints, targets, side="right"), [len(costs)]))
    return [list(range(bounds[i], bounds[i + 1])) for i in range(parts)]


class Aggregator:
    """Runs one job's rounds against the executors connected to ``server``, moving ``clock``
    (which ``log`` stamps its events with); from the checkpointed state ``resumed`` if given.
    ``checkpointable``: whether the state between rounds can be saved and resumed."""

    checkpointable: ClassVar[bool] = True

    def __init__(self, job: JobSpec, run_dir: Path, server: AggregatorServer, log: EventLog,
                 clock: VirtualClock, resumed: dict[str, Any] | None = None,
                 telemetry: Telemetry | None = None) -> None:
        self.job = job
        self.spans = RoundSpans(telemetry or Telemetry.off())
        self.conf = job.conf
        self.run_dir = run_dir
        self.server = server
        self.log = log
        self.clock = clock
        self._task_ids = itertools.count(1)
        self.clients: ClientManager | None = None
        self.model: torch.Tensor | None = None
        self.server_algorithm = make_server_algorithm(self.conf)
        self.last_test: dict[str, Any] = resumed["test"] if resumed else {}
        self.rounds_completed = int(resumed["round"]) if resumed else 0
        fleet = self.conf.fleet
        self.fleet = job_fleet(fleet.clients_file, fleet.device_conf_file, fleet.device_avail_file)
        self.threat: ThreatModel | None = None
        self.resumed = resumed
        self.reference: pb.Hello | None = None
        # Test predictions one sample scores at most: one, or a language model's one per token.
        self.predictions_per_sample = 1
        self._admitted: set[ExecutorSession] = set()
        self._testing: TestRun | None = None
        self.checkpoints = CheckpointWriter(checkpoint_path(run_dir), log.sync)

    # -- events ------------------------------------------------------------------------------
    def _next_event(self, timeout: float) -> ServerEvent | None:
        """The next executor event; an executor's internal error ends the job."""
        try:
            event = self.server.events.get(timeout=timeout)
        except queue.Empty:
            return None
        if event.kind == ERROR:
            executor = event.session.executor_id
            raise JobFailed(f"internal error in {executor}: {event.message[:MAX_REASON_CHARS]} "
                            f"(traceback in {self.run_dir / event.session.console})")
        if event.kind == LOST:
            self._admitted.discard(event.session)
            self.log.emit(commons.EXECUTOR_LOST, executor=event.session.executor_id, reason=event.message)
        elif event.kind == JOINED:
            self.log.emit(commons.EXECUTOR_JOINED, executor=event.session.executor_id, index=event.session.index)
            self._admit(event.session)
        elif event.kind == TEST:
            self._take_test(event)
        return event

    def _admit(self, session: ExecutorSession) -> None:
        """Keep a joining executor whose Hello is acceptable (the first accepted one fixes the
        model's shape and the data every later one must describe); refuse any other with the reason."""
        problem = hello_problem(session.hello, self.reference)
        if problem is not None:
            self.server.drop(session, f"refused: {problem}")
            return
        if self.reference is None:
            self.reference = session.hello
        self._admitted.add(session)

    def _live(self) -> list[ExecutorSession]:
        """The live, admitted executors in the order of their names, so work is split the same way
        whatever order they joined in. With none left, wait up to ``connection_timeout`` for a
        restarted one to rejoin (when ``executor_restarts`` allows restarts) before failing."""
        cluster = self.conf.cluster
        deadline = time.monotonic() + (cluster.connection_timeout if cluster.executor_restarts else 0)
        while True:
            live = sorted((s for s in self.server.live_sessions() if s in self._admitted),
                          key=lambda session: session.executor_id)
            if live:
                return live
            if time.monotonic() >= deadline:
                waited = f" and none rejoined within connection_timeout={cluster.connection_timeout} s" \
                    if cluster.executor_restarts else ""
                raise JobFailed(f"every executor was lost{waited}")
            self._next_event(timeout=0.5)

    def _take_pending(self) -> None:
        """Handle what executors did since the last round (joins, losses) before planning the next;
        late reports of earlier tasks are dropped."""
        while self._next_event(timeout=0) is not None:
            pass

    # -- set-up ------------------------------------------------------------------------------
    def wait_for_executors(self) -> None:
        """Block until every expected executor has joined, then build the fleet and the model
        from the first accepted Hello, before which no announced size is trusted."""
        expected = self.job.num_executors
        timeout = self.conf.cluster.connection_timeout
        deadline = time.monotonic() + timeout
        joined = 0
        while joined < expected:
            if time.monotonic() > deadline:
                raise JobFailed(f"only {joined} of {expected} executors joined within "
                                f"connection_timeout={timeout} s")
            event = self._next_event(timeout=0.5)
            if event is not None and event.kind == JOINED:
                joined += 1
        first = self.reference
        if first is None:
            raise JobFailed("every executor was refused: none announced acceptable data (see EXECUTOR_LOST)")
        conf, training = self.conf, self.conf.training
        torch.manual_seed(training.seed)
        net = build_model(training.model, tuple(first.input_shape), first.num_classes)
        if conf.data.data_set in TEXT_DATA_SETS:
            self.predictions_per_sample = first.input_shape[-1]
        self.model = ModelVector(net).snapshot()
        self.clients = ClientManager(np.asarray(first.client_sample_counts), self.fleet,
                                     self.model.numel() * self.model.element_size(), make_selector(conf),
                                     time_model=conf.fleet, training=training, adaptive=conf.adaptive)
        self.threat = ThreatModel(conf.robustness, training.seed, training.num_participants,
                                  len(first.client_sample_counts))
        if training.num_participants > len(self.clients.eligible):
            raise JobFailed(f"job_conf.num_participants={training.num_participants} but only "
                            f"{len(self.clients.eligible)} clients hold between filter_less={conf.fleet.filter_less} "
                            f"and filter_more={conf.fleet.filter_more} samples")

    # -- rounds ------------------------------------------------------------------------------
    def run_round(self, round_index: int) -> None:
        """Plan the round on the virtual clock, train the planned clients, aggregate, log.

        A round starts when some eligible client is online: with nobody online the clock first
        jumps to the next time someone is (``idle_seconds`` in ROUND_BEGIN).
        """
        self.clock.start_round(round_index)
        started = time.perf_counter()
        waiting_from = self.clock.time
        round_start = self.clients.next_online_time(waiting_from)
        if not np.isfinite(round_start):
            if self._testing is not None:
                self._finish_test(self._testing)
            raise JobFailed("no eligible client is ever online in the device traces")
        self.clock.advance_to(round_start)
        self.spans.begin(round_index, self.clock.time)
        self._take_pending()
        adaptive = self.conf.adaptive.adaptive_training
        planner = self.clients.plan_adaptive_round if adaptive else self.clients.plan_round
        with self.spans.phase("select"):
            plan = planner(round_index, self.clock.time)
        live = self._live()
        blocks = split_by_cost(plan.local_steps, len(live))
        assignment = {s.executor_id: plan.participants[b].tolist() for s, b in zip(live, blocks) if b}

        def announce(stash: list[ServerEvent]) -> None:
            if self._testing is not None:
                self._finish_test(self._testing, stash)
            self.log.emit(commons.ROUND_BEGIN, num_clients=self.clients.num_clients, assignment=assignment,
                          idle_seconds=self.clock.time - waiting_from, **plan.log_fields())
            for client in plan.offline.tolist():
                self.log.emit(commons.CLIENT_FAILED, client=client, executor=None,
                              reason="the device went offline before finishing")

        with self.spans.phase("dispatch"):
            outcome = self._train(round_index, live, blocks, plan, announce)
        if adaptive:
            plan = self.clients.settle_adaptive_round(plan, {c: r for c, (r, _) in outcome.results.items()})
            outcome.results = {c: outcome.results[c] for c in plan.participants.tolist()}
        aggregated = sorted(outcome.results)
        with self.spans.phase("aggregate"):
            train_loss, defence = self._apply(round_index, aggregated, outcome)
        self.clients.finish_round(plan, {c: r for c, (r, _) in outcome.results.items()})
        self.clock.advance_by(plan.duration)
        end = self.log.emit(commons.ROUND_END, aggregated=len(aggregated), clients=aggregated,
                            failures=sorted(set(outcome.failures) | set(plan.offline.tolist())),
                            stragglers=plan.stragglers.tolist(), offline=plan.offline.tolist(),
                            **self.threat.round_fields(aggregated, defence),
                            train_loss=train_loss, round_duration=plan.duration,
                            wall_seconds=time.perf_counter() - started,
                            compute_seconds=sum(outcome.results[c][0].compute_seconds for c in aggregated))
        self.spans.round_ended(end, len(plan.participants))

    def _apply(self, round_index: int, aggregated: list[int], outcome: RoundOutcome,
               row_scale: torch.Tensor | None = None) -> tuple[float, dict]:
        """Aggregate the results of the ``aggregated`` clients (``_aggregate``) into the global
        model with the server algorithm's step; the aggregated clients' mean training loss,
        weighted by samples (NaN when none), and the defence's choice. A model that stops being
        finite ends the job as diverged."""
        if not aggregated:
            return float("nan"), {}
        samples = torch.tensor([outcome.results[c][0].num_samples for c in aggregated], dtype=torch.float64)
        update, defence = self._aggregate(round_index, aggregated, outcome, samples, row_scale)
        self.model = self.server_algorithm.step(self.model, update.to(self.model.dtype))
        if not finite(self.model):
            raise JobDiverged(f"round {round_index}: the global model is not finite after aggregation")
        losses = np.array([outcome.results[c][0].train_loss for c in aggregated])
        return float(np.average(losses, weights=samples.numpy())), defence

    def _aggregate(self, round_index: int, aggregated: list[int], outcome: RoundOutcome,
                   samples: torch.Tensor, row_scale: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """The round's update and the defence's choice (see ``ThreatModel``): the Byzantine rows
        forged, the server algorithm's rows taken, each scaled by ``row_scale`` if given (an
        asynchronous step's staleness weights), then the defence (``mean`` weighted by sample
        counts is FedAvg)."""
        updates = self.threat.forge(round_index, aggregated,
                                    torch.stack([outcome.results[c][1] for c in aggregated]))
        losses = torch.tensor([outcome.results[c][0].initial_loss for c in aggregated], dtype=torch.float64)
        updates, samples = self.server_algorithm.rows(updates, samples, losses)
        if row_scale is not None:
            updates = updates * row_scale.to(updates.dtype)[:, None]
        return self.threat.aggregate(round_index, aggregated, updates, samples)

    def _train(self, round_index: int, live: list[ExecutorSession], blocks: list[list[int]],
               plan: RoundPlan, announce: Callable[[list[ServerEvent]], None]) -> RoundOutcome:
        """Send each live executor its block of the plan's participants with the global model,
        ``announce`` the round (which first ends the previous round's test, its executors going
        from testing straight to training; results that arrive meanwhile are kept for here) and
        collect the results. The outstanding clients of an executor lost meanwhile go to the ones
        left (``_reassign``), whose results are the same since a client's training depends only on
        the job seed, the round, the client and its settings."""
        batch = self._new_batch(round_index, plan)
        for session, block in zip(live, blocks):
            if block:
                self._dispatch(batch, session, block)
        early: list[ServerEvent] = []
        announce(early)
        self._reassign(batch)
        while batch.owner:
            event = early.pop(0) if early else self._next_event(timeout=self.server.timeout)
            if event is not None and event.kind == RESULTS and event.message.task_id in batch.task_ids:
                self._collect(batch, event)
            else:
                self._reassign(batch)
        return batch.outcome

    def _new_batch(self, round_index: int, plan: RoundPlan) -> TrainingBatch:
        """Training of ``plan``'s participants, from the global model as it is now, nothing sent yet."""
        return TrainingBatch(round_index, plan, self._train_config(plan), [("model", self.model.numpy())])

    def _dispatch(self, batch: TrainingBatch, session: ExecutorSession, block: list[int]) -> None:
        """Send ``session`` the TRAIN task of the batch plan's participants at positions ``block``."""
        task = self._training_task(batch.round_index, batch.plan, block, batch.train)
        batch.asked_steps.update(zip(task.client_ids, task.client_local_steps))
        batch.task_ids.add(task.task_id)
        session.send_task(task, batch.model)
        self.spans.sent(batch.model[0][1].nbytes)
        batch.owner.update({int(c): session for c in task.client_ids})

    def _train_config(self, plan: RoundPlan) -> pb.TrainConfig:
        """The settings every client of the round trains with."""
        training, adaptive = self.conf.training, self.conf.adaptive
        train = pb.TrainConfig(local_steps=training.local_steps, batch_size=training.batch_size,
                               learning_rate=training.learning_rate,
                               upload_dropout=pb.UploadDropout.Value(plan.dropout_mode.upper()),
                               **self.server_algorithm.client_settings())
        if adaptive.adaptive_training:
            train.adaptive.CopyFrom(pb.AdaptiveConfig(
                round_start=plan.start_time, ewma_lambda=adaptive.ewma_lambda,
                min_payload_frac=adaptive.min_payload_frac, budget_recheck_steps=adaptive.budget_recheck_steps,
                run_phase_2=adaptive.run_phase_2))
        return train

    def _training_task(self, round_index: int, plan: RoundPlan, block: list[int], train: pb.TrainConfig) -> pb.Task:
        """The TRAIN task of the plan's participants at positions ``block``, with their own
        settings (local steps and keep fraction, or the adaptive ones) and Byzantine flags."""
        clients = plan.participants[block].tolist()
        task = pb.Task(task_id=next(self._task_ids), kind=pb.TRAIN, round=round_index, client_ids=clients, train=train)
        if self.conf.adaptive.adaptive_training:
            task.client_conf.extend(pb.ClientConf(**c) for c in self.clients.get_client_conf(plan, block))
        else:
            task.client_local_steps.extend(plan.local_steps[block].tolist())
            task.client_keep_fraction.extend(plan.keep_fraction[block].tolist())
        task.client_data_attack.extend(self.threat.poisoned(clients))
        if self.spans.enabled:
            task.trace_context.update(self.spans.context)
            task.client_seconds.extend(np.column_stack([plan.t_dl[block], plan.t_comp[block],
                                                        plan.t_ul[block]]).ravel().tolist())
        return task

    def _reassign(self, batch: TrainingBatch) -> None:
        """Split the batch's outstanding clients of each lost executor over the live executors by
        expected compute (``split_by_cost``), in the order of their names (CLIENTS_REASSIGNED names
        who took which); with none left, over those that rejoin (see ``_live``)."""
        plan, owner = batch.plan, batch.owner
        orphans: dict[ExecutorSession, list[int]] = {}
        for position, client in enumerate(plan.participants.tolist()):
            session = owner.get(client)
            if session is not None and not session.alive:
                orphans.setdefault(session, []).append(position)
                del owner[client]
        for lost, positions in sorted(orphans.items(), key=lambda item: item[0].executor_id):
            survivors = self._live()
            moved = {}
            for session, part in zip(survivors, split_by_cost(plan.local_steps[positions], len(survivors))):
                if part:
                    block = [positions[i] for i in part]
                    self._dispatch(batch, session, block)
                    moved[session.executor_id] = plan.participants[block].tolist()
            self.log.emit(commons.CLIENTS_REASSIGNED, executor=lost.executor_id, assignment=moved)

    def _collect(self, training: TrainingBatch, event: ServerEvent) -> None:
        """Record a batch of results and failures. The wire admitted it only for clients of this
        executor's task, each once, with one update row of the model's size per result; a result
        whose values the aggregator does not confirm (``result_problem``) is that client's failure."""
        outcome, owner, asked_steps = training.outcome, training.owner, training.asked_steps
        batch: pb.TaskResults = event.message
        updates = event.tensors.get("updates")
        if updates is not None:
            self.spans.received(updates.nbytes)
        finite_updates = finite_rows(updates) if batch.results else []
        for row, result in enumerate(batch.results):
            client = result.client_id
            if owner.get(client) is not event.session:
                continue
            del owner[client]
            problem = result_problem(result, bool(finite_updates[row]), int(self.clients.sample_counts[client]),
                                     asked_steps.get(client))
            if problem is None:
                outcome.results[client] = (result, torch.from_numpy(updates[row]))
            else:
                self._fail_client(outcome, client, event.session, problem)
        for failure in batch.failures:
            if owner.get(failure.client_id) is not event.session:
                continue
            del owner[failure.client_id]
            self._fail_client(outcome, failure.client_id, event.session, failure.reason[:MAX_REASON_CHARS])

    def _fail_client(self, outcome: RoundOutcome, client_id: int, session: ExecutorSession, reason: str) -> None:
        outcome.failures[client_id] = (session.executor_id, reason)
        self.log.emit(commons.CLIENT_FAILED, client=client_id, executor=session.executor_id, reason=reason)

    # -- testing -----------------------------------------------------------------------------
    def _start_test(self, round_index: int) -> TestRun:
        """Send the live executors the shards of the test set with the global model; the results
        are taken as they arrive (``_take_test``) and the test ends with ``_finish_test``."""
        count = len(self._live())
        run = TestRun(round_index, self.clock.time, contiguous_bounds(self.reference.test_samples, count),
                      list(range(count)), [("model", self.model.numpy())])
        run.spans = self.spans.start_test()
        self._testing = run
        self._send_shards(run)
        return run

    def _send_shards(self, run: TestRun) -> None:
        """Send the shards not yet sent, and those of executors lost meanwhile, to the live ones."""
        for task_id, (session, shard) in list(run.running.items()):
            if not session.alive:
                del run.running[task_id]
                run.todo.append(shard)
        if not run.todo:
            return
        live = self._live()
        count = len(run.bounds) - 1
        while run.todo:
            shard = run.todo.pop()
            session = live[shard % len(live)]
            task_id = next(self._task_ids)
            session.send_task(pb.Task(task_id=task_id, kind=pb.TEST, round=run.round_index, shard_index=shard,
                                      shard_count=count, trace_context=run.spans.context), run.model)
            self.spans.sent(run.model[0][1].nbytes)
            run.running[task_id] = (session, shard)

    def _finish_test(self, run: TestRun, stash: list[ServerEvent] | None = None) -> None:
        """Wait for every shard of ``run``, then log its TEST_RESULT, stamped with the round it
        tested, and hand over the checkpoint waiting for it; training results of the next round
        that arrive meanwhile go to ``stash``."""
        while run.todo or run.running:
            self._send_shards(run)
            event = self._next_event(timeout=self.server.timeout)
            if event is not None and event.kind == RESULTS and stash is not None:
                stash.append(event)
        self._testing = None
        shards = [run.results[s] for s in sorted(run.results)]
        samples = sum(r.num_samples for r in shards)
        self.last_test = {"accuracy": sum(r.correct for r in shards) / samples,
                          "loss": sum(r.loss_sum for r in shards) / samples, "num_samples": samples}
        self.log.emit(commons.TEST_RESULT, round=run.round_index, virtual_time=run.virtual_time, **self.last_test)
        self.spans.end_test(run.spans, self.last_test)
        if run.checkpoint is not None:
            self.checkpoints.submit(dict(run.checkpoint, test=self.last_test, event_log_size=self.log.size))

    def _take_test(self, event: ServerEvent) -> None:
        """Record a test result for a shard the sender was given, or drop the sender with the
        reason (its shard then goes to another executor, as for a lost one); a non-finite loss
        means the model diverged."""
        run, result = self._testing, event.message
        session, shard = run.running.get(result.task_id, (None, -1)) if run else (None, -1)
        problem = ("test result for a task it was not given" if session is not event.session
                   else evaluation_problem(result, int(run.bounds[shard + 1] - run.bounds[shard]),
                                           self.predictions_per_sample))
        if problem is not None:
            self.server.drop(event.session, f"refused: {problem}")
        elif evaluation_diverged(result):
            raise JobDiverged(f"round {run.round_index}: {session.executor_id} reports a non-finite test loss: "
                              "the global model diverged")
        else:
            del run.running[result.task_id]
            run.results[shard] = result

    # -- checkpoint --------------------------------------------------------------------------
    def _checkpoint_state(self) -> dict[str, Any]:
        """Everything the next round needs, copied now: the round, the virtual time, the last
        test, the global model, the server algorithm's, selector's and threat model's state, the
        torch generator's state, and where the event log ends, which a resumed job cuts it back
        to. The online cursor and the fleet are rebuilt from the job's files."""
        return copy.deepcopy({
            "round": self.rounds_completed, "virtual_time": self.clock.time, "test": self.last_test,
            "event_log_size": self.log.size, "model": self.model.numpy(),
            "server_algorithm": self.server_algorithm.state_dict(), "selector": self.clients.selector.state(),
            "threat": self.threat.state(), "torch_rng": torch.get_rng_state().numpy()})

    def save_checkpoint(self) -> None:
        """Hand the checkpoint writer the state of now (see ``_checkpoint_state``); it syncs the
        event log before it writes the file."""
        self.checkpoints.submit(self._checkpoint_state())

    def restore(self, state: dict[str, Any]) -> None:
        """Take back the state ``save_checkpoint`` wrote, once the executors have joined (the round
        and the last test are taken at construction, the clock's time and round by the caller)."""
        self.model = torch.from_numpy(state["model"])
        self.server_algorithm.load_state_dict(state["server_algorithm"])
        self.clients.selector.restore(state["selector"])
        self.threat.restore(state["threat"])
        torch.set_rng_state(torch.from_numpy(state["torch_rng"]))

    # -- the job -----------------------------------------------------------------------------
    def run(self) -> None:
        """Run ``rounds`` rounds (those after the checkpoint when resumed), or fewer if
        ``max_virtual_time`` runs out first; test every ``eval_interval`` rounds and after the
        last, checkpoint every ``checkpoint_interval`` rounds and after the last. A test runs
        while the next round is planned and sent, and is logged before it begins (stamped with
        the round it tested), so the event log reads as if it had run in between; the
        checkpoint of a tested round takes its state before the next round is planned."""
        self.wait_for_executors()
        if self.resumed is not None:
            self.restore(self.resumed)
        training = self.conf.training
        budget = training.max_virtual_time or float("inf")
        try:
            for round_index in range(self.rounds_completed + 1, training.rounds + 1):
                self.run_round(round_index)
                self.rounds_completed = round_index
                last = round_index == training.rounds or self.clock.time >= budget
                checkpoint = self.checkpointable and training.save_checkpoint and (
                    round_index % training.checkpoint_interval == 0 or last)
                if round_index % training.eval_interval == 0 or last:
                    test = self._start_test(round_index)
                    if not last:  # ends once the next round's training is sent, then checkpoints
                        test.checkpoint = self._checkpoint_state() if checkpoint else None
                        continue
                    self._finish_test(test)
                else:
                    self.spans.close_round()
                if checkpoint:
                    self.save_checkpoint()
                if last:
                    break
        except BaseException as error:
            self.spans.fail(error, self._testing.spans if self._testing else None)
            self.checkpoints.close(quiet=True)  # keep the last checkpoint; the job's own error is the one to report
            raise
        self.checkpoints.close()
        rows = self.clients.selector.training_data()
        if rows is not None:
            np.savez(self.run_dir / "selector_training_data.npz", **rows)

    def shutdown_executors(self) -> None:
        for session in self.server.live_sessions():
            session.send_task(pb.Task(task_id=next(self._task_ids), kind=pb.SHUTDOWN, round=self.clock.round))
            session.close()


def aggregator_class(job: JobSpec) -> type[Aggregator]:
    """The aggregator of the job's mode: synchronous rounds, or FedBuff's buffered asynchronous
    steps (``buffered_async``, imported here since it builds on this module)."""
    if job.mode == commons.MODE_ASYNC:
        from fedscale.cloud.aggregation.buffered_async import BufferedAsyncAggregator
        return BufferedAsyncAggregator
    return Aggregator


def _raise_stopped(signum: int, frame: Any) -> None:
    raise JobStopped(f"stopped by signal {signal.Signals(signum).name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fedscale aggregator process.")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run folder's checkpoint (its event log already cut back to it)")
    parser.add_argument("--events-stdout", action="store_true",
                        help="also print each event line on stdout (a Kubernetes pod's log is its output)")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    job = JobSpec.read(run_dir)
    conf = job.conf
    clock = VirtualClock()
    log = EventLog(run_dir / commons.AGGREGATOR_LOG, conf.identity.job_name, clock,
                   echo=sys.stdout.buffer if args.events_stdout else None)
    wandb_run = WandbRun.open(conf.public_dict(), run_dir)
    telemetry = Telemetry.start("aggregator", conf.identity.job_name)
    if wandb_run is not None:
        log.listeners.append(wandb_run)
    torch.set_num_threads(conf.cluster.torch_threads)
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGINT, _raise_stopped)
    started = time.time()
    server = None
    status, reason, code = commons.STATUS_COMPLETED, "", 0
    aggregator, executor = None, None
    try:
        kind = aggregator_class(job)
        if args.resume and not kind.checkpointable:
            raise JobFailed("--resume: an asynchronous job writes no checkpoint (its clients in flight cannot be "
                            "saved); submit it again")
        resumed = read_checkpoint(checkpoint_path(run_dir)) if args.resume else None
        if resumed is not None:
            clock.round, clock.time = int(resumed["round"]), float(resumed["virtual_time"])
        try:
            credentials = JobCertificates.from_env(os.environ)
            server = AggregatorServer(job.ps_ip, job.ps_port, os.environ.get(commons.SECRET_ENV, ""),
                                      max_executors=job.num_executors,
                                      heartbeat_interval=conf.cluster.heartbeat_interval,
                                      timeout=conf.cluster.executor_timeout, credentials=credentials)
        except OSError as err:
            raise JobFailed(f"ps_port: {err}") from None
        except ValueError as err:
            raise JobFailed(str(err)) from None
        log.emit(commons.JOB_BEGIN, address=f"{job.ps_ip}:{server.port}", port=server.port,
                 num_executors=job.num_executors, run_dir=str(run_dir), config=conf.public_dict(),
                 tls=credentials is not None, **({"resumed_from": clock.round} if resumed is not None else {}))
        if job.in_process:
            executor = start_in_process(job, run_dir, server, telemetry)
        aggregator = kind(job, run_dir, server, log, clock, resumed, telemetry)
        aggregator.run()
    except JobStopped as err:
        status, reason, code = commons.STATUS_STOPPED, str(err), EXIT_STOPPED
    except JobDiverged as err:
        status, reason, code = commons.STATUS_DIVERGED, str(err), EXIT_FAILED
    except (JobFailed, OSError, ValueError) as err:
        status, reason, code = commons.STATUS_FAILED, str(err), EXIT_FAILED
    except Exception as err:  # a bug: keep the traceback in the .out file, end the job cleanly
        traceback.print_exc()
        console = run_dir / commons.console_output_name("aggregator")
        status, reason, code = (commons.STATUS_FAILED,
                                f"internal error: {type(err).__name__}: {err} (traceback in {console})", EXIT_FAILED)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if aggregator is not None:
            aggregator.shutdown_executors()
        if executor is not None and status == commons.STATUS_COMPLETED:  # a stop must not wait for its training
            executor.join(timeout=IN_PROCESS_JOIN_SECONDS)
        if server is not None:
            server.stop(grace=1.0)
    try:
        log.emit(commons.JOB_END, status=status, reason=reason,
                 rounds_completed=aggregator.rounds_completed if aggregator else 0,
                 wall_seconds=time.time() - started, test=aggregator.last_test if aggregator else {})
    except EventLogError as err:
        code = code or EXIT_FAILED
        if str(err) != reason:
            reason = f"{reason}; {err}" if reason else str(err)
    if wandb_run is not None:
        wandb_run.close()
    telemetry.shutdown()
    if reason:
        print(f"aggregator: {reason}", file=sys.stderr)
    return code


if __name__ == "__main__":
    exit_now(main())
