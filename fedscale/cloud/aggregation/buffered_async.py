"""The asynchronous aggregator: FedBuff's buffered aggregation steps (``fedbuff``) on the job's
virtual clock, with the synchronous aggregator's sessions, dispatch, result checks,
aggregation, tests and telemetry.

A job runs it when its ``aggregator_entry`` is FedScale's ``async_aggregator.py``
(``JobSpec.mode``). Each of the job's rounds is one aggregation step: ``rounds``,
``eval_interval`` and ``max_virtual_time`` count steps. A step's virtual time runs event by event:

* at each event the free slots (``max_concurrency`` minus the clients training) go to the
  selector's choice among the clients online and not busy (training, or done in this step);
  when nobody can start and a slot is free, the clock also wakes when someone comes online;
* a client that starts at ``t`` finishes at ``t`` plus its download, compute and upload times
  under the job's time model (as the synchronous rounds simulate them); its device decides
  whether it delivers;
* finishes are taken in virtual-time order: an undelivered update (its client held the slot until
  then) fails (CLIENT_FAILED with no executor), one staler than ``max_staleness`` is discarded (a straggler), any other joins the
  buffer unless its executor reports a failure; at the ``K``-th buffered update the step ends at
  that finish's time, the server steps the model with the staleness-weighted mean
  (``fedbuff``), and the freed slot goes to a client that starts from the new model.

Executors train what they are sent from the model they are sent. A started client waits,
grouped by executor and model version, until the aggregator needs a result it does not have;
then every waiting client is sent, one TRAIN task per executor and version carrying that
version's model, and the aggregator waits. A task's round is the step its clients started in,
which seeds their training: a client starts at most once per step, so each of its trainings
draws its own batches. The executor of a client is chosen when it starts (the live one with
the fewest clients training, ties by name), so the log does not depend on wall-clock timing.

A step's ROUND_BEGIN (stamped with the step's start) and the CLIENT_FAILED lines of its finishes
are written when it ends, before its ROUND_END. The job writes no checkpoint: the clients in
flight at a step's end, trained from older models, cannot be saved.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fedscale.cloud import commons
from fedscale.cloud.aggregation.aggregator import Aggregator, JobFailed, RoundOutcome, TrainingBatch
from fedscale.cloud.aggregation.fedbuff import BufferSchedule, Launch, staleness_weights
from fedscale.cloud.channels import job_api_pb2 as pb
from fedscale.cloud.channels.server import RESULTS, ExecutorSession, ServerEvent
from fedscale.cloud.client_manager import RoundPlan

__all__ = ["BufferedAsyncAggregator"]

OFFLINE_REASON = "the device went offline before finishing"


def _launch_plan(round_index: int, launches: Sequence[Launch], local_steps: int, **fields: Any) -> RoundPlan:
    """The RoundPlan whose participants are the clients of ``launches`` with their times at
    ``local_steps``; ``fields`` set the plan's other fields (by default: nobody offline or
    straggling, lasting as long as the longest launch)."""
    count = len(launches)
    times = np.array([launch.times for launch in launches], dtype=np.float64).reshape(count, 3)
    totals = times.sum(axis=1)
    nothing = np.empty(0, dtype=np.int64)
    plan: dict[str, Any] = {
        "round_index": round_index, "start_time": min((launch.start for launch in launches), default=0.0),
        "participants": _clients(launches),
        "local_steps": np.full(count, local_steps), "keep_fraction": np.ones(count),
        "t_dl": times[:, 0], "t_comp": times[:, 1], "t_ul": times[:, 2], "stragglers": nothing,
        "straggler_durations": np.empty(0), "offline": nothing, "num_online": 0,
        "duration": float(totals.max(initial=0.0)), "base_durations": totals}
    return RoundPlan(**{**plan, **fields})


def _clients(launches: Sequence[Launch]) -> np.ndarray:
    return np.array([launch.client for launch in launches], dtype=np.int64)


@dataclass
class StepRecord:
    """One aggregation step as its virtual time runs: its start, the eligible clients online
    then, the time with no client training, the clients started (delivering, with their
    executors; or going offline), the finishes that failed (with the executor, None for an
    offline device, and the reason) or were too stale, and the buffered updates' results."""

    start: float
    num_online: int
    idle: float = 0.0
    started: list[Launch] = field(default_factory=list)
    assignment: dict[str, list[int]] = field(default_factory=dict)
    offline_started: list[Launch] = field(default_factory=list)
    failed: list[tuple[Launch, str | None, str]] = field(default_factory=list)
    stale: list[Launch] = field(default_factory=list)
    results: dict[int, tuple[pb.ClientResult, torch.Tensor]] = field(default_factory=dict)


class BufferedAsyncAggregator(Aggregator):
    """Runs a job's aggregation steps (see the module): the synchronous ``Aggregator`` with each
    round replaced by a FedBuff step on ``schedule``."""

    checkpointable = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        asynchronous = self.conf.asynchronous
        self.schedule = BufferSchedule(asynchronous.max_concurrency, self.conf.training.num_participants,
                                       asynchronous.max_staleness)
        self._executor: dict[int, ExecutorSession] = {}
        self._waiting: dict[tuple[ExecutorSession, int], list[Launch]] = {}
        self._models: dict[int, np.ndarray] = {}
        self._sent: dict[int, TrainingBatch] = {}
        self._outstanding: list[TrainingBatch] = []

    # -- one step ----------------------------------------------------------------------------
    def run_round(self, round_index: int) -> None:
        """Run aggregation step ``round_index`` on the virtual clock until the buffer is full,
        then log it, aggregate the buffer and feed the outcome back to the selector. A test of
        the previous step still running is finished (and logged) before the step's ROUND_BEGIN."""
        self.clock.start_round(round_index)
        wall_start = time.perf_counter()
        now = self.clock.time
        step = StepRecord(now, len(self.clients.online(now)))
        self.spans.begin(round_index, now)
        with self.spans.phase("dispatch"):
            self._run_step(step)
        if self._testing is not None:
            stash: list[ServerEvent] = []
            self._finish_test(self._testing, stash)
            for event in stash:
                self._route(event)
        buffered = sorted(self.schedule.close_step(), key=lambda entry: entry[0].client)
        local_steps = self.conf.training.local_steps
        duration = self.clock.time - step.start
        self._announce(round_index, step, duration)
        aggregated = [launch.client for launch, _ in buffered]
        staleness = [tau for _, tau in buffered]
        outcome = RoundOutcome(results={client: step.results[client] for client in aggregated})
        with self.spans.phase("aggregate"):
            train_loss, defence = self._apply(round_index, aggregated, outcome,
                                              torch.from_numpy(staleness_weights(np.array(staleness))))
        offline = [launch for launch, executor, _ in step.failed if executor is None]
        self.clients.finish_round(
            _launch_plan(round_index, [launch for launch, _ in buffered], local_steps, stragglers=_clients(step.stale),
                         straggler_durations=np.array([launch.duration for launch in step.stale]),
                         offline=_clients(offline), duration=duration),
            {client: result for client, (result, _) in outcome.results.items()})
        end = self.log.emit(commons.ROUND_END, aggregated=len(aggregated), clients=aggregated, staleness=staleness,
                            failures=sorted(launch.client for launch, _, _ in step.failed),
                            stragglers=sorted(launch.client for launch in step.stale),
                            offline=sorted(launch.client for launch in offline),
                            **self.threat.round_fields(aggregated, defence), train_loss=train_loss,
                            round_duration=duration, wall_seconds=time.perf_counter() - wall_start,
                            compute_seconds=sum(result.compute_seconds for result, _ in outcome.results.values()),
                            mode=commons.MODE_ASYNC)
        self.spans.round_ended(end, len(step.started))

    def _announce(self, round_index: int, step: StepRecord, duration: float) -> None:
        """Log the step's ROUND_BEGIN, stamped with its start, and its trainings that failed."""
        planned = _launch_plan(round_index, step.started, self.conf.training.local_steps,
                               offline=_clients(step.offline_started), num_online=step.num_online,
                               duration=duration, selector=self.clients.selector.details())
        self.log.emit(commons.ROUND_BEGIN, virtual_time=step.start, num_clients=self.clients.num_clients,
                      assignment=step.assignment, idle_seconds=step.idle, **planned.log_fields(),
                      start_times=[launch.start for launch in step.started], mode=commons.MODE_ASYNC)
        for launch, executor, reason in step.failed:
            self.log.emit(commons.CLIENT_FAILED, virtual_time=launch.finish, client=launch.client,
                          executor=executor, reason=reason)

    def _run_step(self, step: StepRecord) -> None:
        """Move the virtual clock from event to event (a finish, or a client coming online while
        a slot is free and nobody can start) until the buffer is full."""
        schedule = self.schedule
        while not schedule.full:
            short = self._fill(step)
            launch = schedule.next_finish()
            finish = launch.finish if launch is not None else float("inf")
            wake = self.clients.next_available_time(self.clock.time, schedule.busy()) if short else float("inf")
            if not min(finish, wake) < float("inf"):
                raise JobFailed(f"step {self.clock.round}: the buffer holds {len(schedule.buffered)} of "
                                f"{schedule.buffer} updates, no client is training and no eligible client that has "
                                "not taken part in this step is ever online again")
            if wake < finish:
                if not schedule.training:
                    step.idle += wake - self.clock.time
                self.clock.advance_to(wake)
                continue
            self.clock.advance_to(finish)
            self._take_finish(step, schedule.finish())

    def _fill(self, step: StepRecord) -> bool:
        """Start the selector's choice of available clients in the free slots, from the current
        model at the clock's time; whether a slot stays free for want of an available client."""
        schedule, now = self.schedule, self.clock.time
        if not schedule.free_slots:
            return False
        available = self.clients.available(now, schedule.busy())
        if not len(available):
            return True
        chosen = self.clients.select_available(schedule.free_slots, now, available)
        local_steps = np.full(len(chosen), self.conf.training.local_steps)
        t_dl, t_comp, t_ul = self.clients.get_completion_time(chosen, now, local_steps)
        delivers = self.clients.completes(chosen, now, now + t_dl + t_comp + t_ul)
        for client, times, delivered in zip(chosen.tolist(), zip(t_dl.tolist(), t_comp.tolist(), t_ul.tolist()),
                                            delivers.tolist()):
            launch = schedule.start(client, now, times, delivered)
            if not delivered:
                step.offline_started.append(launch)
                continue
            session = self._least_loaded()
            self._executor[client] = session
            self._waiting.setdefault((session, launch.version), []).append(launch)
            self._models[launch.version] = self.model.numpy()
            step.started.append(launch)
            step.assignment.setdefault(session.executor_id, []).append(client)
        return len(chosen) == len(available) and schedule.free_slots > 0

    def _least_loaded(self) -> ExecutorSession:
        """The live executor with the fewest clients training, the first by name on a tie."""
        load = Counter(session.executor_id for session in self._executor.values())
        return min(self._live(), key=lambda session: load[session.executor_id])

    def _take_finish(self, step: StepRecord, launch: Launch) -> None:
        """A training ends at the clock's time: it failed (device offline, or its executor says
        so), is discarded as too stale, or its update joins the buffer."""
        if not launch.delivers:
            step.failed.append((launch, None, OFFLINE_REASON))
            return
        session = self._executor.pop(launch.client)
        if not self.schedule.fresh(launch):
            step.stale.append(launch)
            self._forget(launch, session)
        else:
            outcome = self._await(launch.client).outcome
            if launch.client in outcome.results:
                step.results[launch.client] = outcome.results.pop(launch.client)
                self.schedule.add(launch)
            else:
                executor, reason = outcome.failures.pop(launch.client)
                step.failed.append((launch, executor, reason))
            del self._sent[launch.client]

    def _forget(self, launch: Launch, session: ExecutorSession) -> None:
        """Drop a discarded training: unsent, it never will be; sent, its result is dropped."""
        key = (session, launch.version)
        waiting = self._waiting.get(key, [])
        if launch in waiting:
            waiting.remove(launch)
            if not waiting:
                del self._waiting[key]
            return
        outcome = self._sent.pop(launch.client).outcome
        outcome.results.pop(launch.client, None)
        outcome.failures.pop(launch.client, None)

    # -- training on the executors -----------------------------------------------------------
    def _await(self, client: int) -> TrainingBatch:
        """The training batch of ``client``, once its executor reported its result or failure;
        every waiting client is sent before the aggregator waits."""
        if client not in self._sent:
            self._send_waiting()
        batch = self._sent[client]
        while client not in batch.outcome.results and client not in batch.outcome.failures:
            self._send_waiting()
            self._route(self._next_event(timeout=self.server.timeout))
        return batch

    def _send_waiting(self) -> None:
        """Send each executor its waiting clients, one TRAIN task per model version with that
        version's model, seeded by the step they started in; the share of an executor lost
        meanwhile goes to the others (``_reassign``)."""
        for (session, version), launches in sorted(self._waiting.items(),
                                                   key=lambda item: (item[0][0].executor_id, item[0][1])):
            plan = _launch_plan(version + 1, launches, self.conf.training.local_steps)
            batch = TrainingBatch(version + 1, plan, self._train_config(plan), [("model", self._models[version])])
            self._dispatch(batch, session, list(range(len(launches))))
            self._outstanding.append(batch)
            self._sent.update(dict.fromkeys(plan.participants.tolist(), batch))
            self._reassign(batch)
        self._waiting.clear()
        self._models.clear()

    def _route(self, event: ServerEvent | None) -> None:
        """Take an executor's results into the batch they belong to (dropping those of discarded
        trainings); on any other event, or none, reassign what lost executors owned."""
        batch = None
        if event is not None and event.kind == RESULTS:
            batch = next((b for b in self._outstanding if event.message.task_id in b.task_ids), None)
        if batch is None:
            for outstanding in self._outstanding:
                self._reassign(outstanding)
            return
        self._collect(batch, event)
        for reported in (batch.outcome.results, batch.outcome.failures):
            for client in [c for c in reported if self._sent.get(c) is not batch]:
                del reported[client]
        if not batch.owner:
            self._outstanding.remove(batch)

    def _fail_client(self, outcome: RoundOutcome, client_id: int, session: ExecutorSession, reason: str) -> None:
        """Keep an executor's report that a client failed; it is logged with the step in which
        the client's training ends on the virtual clock."""
        outcome.failures[client_id] = (session.executor_id, reason)
