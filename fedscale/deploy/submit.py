"""Submitting a job: validate, lay out the run folder, launch, follow, clean up, report; or resume one.

Everything that can be checked is checked before a process starts. ``resume`` continues a job
from its run folder's checkpoint at the next round, in the same folder: the aggregator's event
log is cut back to where the checkpoint was written (the lines after it are kept in
``checkpoint/discarded_events.jsonl``) and goes on from there. The driver then owns the
job until it ends: it shows progress from the aggregator's event log, fails fast if an
executor dies before the job is under way, and on Ctrl-C / SIGTERM / ``stop`` ends every
process of the job within a few seconds.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, TextIO

from fedscale.cloud import commons
from fedscale.cloud.aggregation.checkpoint import CheckpointError, checkpoint_path, read_checkpoint, rewind_event_log
from fedscale.cloud.config_parser import ConfigError, JobSpec, inactive_keys
from fedscale.cloud.preflight import needs_torch, preflight
from fedscale.cloud.logger import wandb_run
from fedscale.cloud.logger.events import EventTail, read_events
from fedscale.deploy import registry
from fedscale.deploy.launcher import Launcher, job_mode, launcher_class, leaves_machine, stop_recorded
from fedscale.deploy.local import Template, last_line, process_env
from fedscale.deploy.progress import Progress

POLL_SECONDS = 0.1
AGGREGATOR_GRACE = 1.0
LOW_SPACE_BYTES = 1 << 20
DISCARDED_EVENTS = "discarded_events.jsonl"


@dataclass
class JobResult:
    status: str
    run_dir: Path
    reason: str = ""

    @property
    def exit_code(self) -> int:
        return {commons.STATUS_COMPLETED: 0, commons.STATUS_STOPPED: 130}.get(self.status, 1)


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM reached the driver."""


def check_not_running(job: JobSpec) -> None:
    """Refuse a job whose name a running job has (``stop`` finds jobs by name)."""
    record = registry.lookup(job.conf.identity.job_name)
    if record is not None:
        raise ConfigError(f"{job.source}: job_conf.job_name: a job named {job.conf.identity.job_name!r} is already "
                          f"running (driver pid {record['driver_pid']}); stop it or choose another name")


def make_run_dir(job: JobSpec) -> tuple[JobSpec, Path]:
    """Create ``<log_root>/logs/<job_name>/<time_stamp>/`` and fix the job's time_stamp."""
    stamp = job.conf.identity.time_stamp or time.strftime("%Y%m%d_%H%M%S")
    base = Path(job.log_root) / "logs" / job.conf.identity.job_name
    run_dir, n = base / stamp, 1
    while True:
        try:
            run_dir.mkdir(parents=True)
            break
        except FileExistsError:
            n += 1
            run_dir = base / f"{stamp}_{n}"
        except OSError as err:
            key = "job_conf.log_path" if job.conf.identity.log_path else "exp_path"
            raise ConfigError(f"{job.source}: {key}: cannot create the run folder {run_dir} "
                              f"({err.strerror})") from None
    job = dataclasses.replace(job, conf=job.conf.replace(time_stamp=run_dir.name))
    job.save(run_dir)
    return job, run_dir


def submit(job: JobSpec, out: TextIO = sys.stdout, err: TextIO = sys.stderr, plots: bool = True,
           launcher: str = "") -> JobResult:
    """Run ``job`` to its end with its launcher (``launcher`` overrides the job's own choice);
    return how it ended. With ``plots`` a job that ended on its own leaves its plots
    (``write_run_plots``) in its run folder."""
    kind = job_mode(job, launcher)
    launcher_type = launcher_class(kind)
    check_not_running(job)
    serves_everywhere = job.ps_ip == "0.0.0.0"  # as written: a launcher may choose it for its own network
    job = launcher_type.prepare(job, lambda note: print(f"note: {note}", file=err))
    secret = secrets.token_hex(32)
    env = job_env(job, kind, secret)
    wandb_env = {"WANDB_API_KEY": job.conf.identity.wandb_token} if job.conf.identity.wandb_token else {}
    with _template(job, launcher_type, env) as template:
        if template is not None:
            _preflight(job, template)
        for key in inactive_keys(job.conf):
            print(f"note: job_conf key {key!r} is accepted for FedScale compatibility but has no effect yet",
                  file=err)
        if serves_everywhere and not leaves_machine(job, kind):
            print("note: ps_ip 0.0.0.0 serves the job on every network interface in plaintext gRPC (executors "
                  "still need the job secret); a job with a remote host uses TLS", file=err)
        if wandb_run.requested({**env, **wandb_env}) and not wandb_run.installed():
            print(wandb_run.MISSING, file=err)
        job, run_dir = make_run_dir(job)
        launcher = launcher_type(job, run_dir, env, template, wandb_env)
    return _run(job, run_dir, launcher, out, plots=plots)


def resume(run_dir: Path, out: TextIO = sys.stdout, plots: bool = True, launcher: str = "") -> JobResult:
    """Continue the job of ``run_dir`` from its checkpoint, at the round after it, to its end."""
    run_dir = Path(run_dir)
    try:
        job = JobSpec.read(run_dir)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{run_dir}: not a run folder with a readable {commons.JOB_FILE} ({error})") from None
    if job.mode == commons.MODE_ASYNC:
        raise ConfigError(f"{run_dir}: an asynchronous job cannot be resumed: it writes no checkpoint (its clients "
                          "in flight cannot be saved)")
    try:
        state = read_checkpoint(checkpoint_path(run_dir))
    except CheckpointError as error:
        raise ConfigError(str(error)) from None
    training, done = job.conf.training, int(state["round"])
    if done >= training.rounds or 0 < training.max_virtual_time <= state["virtual_time"]:
        raise ConfigError(f"{run_dir}: the job ended at round {done} as planned; there is nothing to resume")
    kind = job_mode(job, launcher)
    launcher_type = launcher_class(kind)
    check_not_running(job)
    job = launcher_type.prepare(job, lambda note: print(f"note: {note}", file=sys.stderr))
    env = job_env(job, kind, secrets.token_hex(32))
    with _template(job, launcher_type, env, run_dir.parent) as template:
        if template is not None:
            _preflight(job, template)
        discarded = rewind_event_log(run_dir / commons.AGGREGATOR_LOG, state["event_log_size"],
                                     checkpoint_path(run_dir).parent / DISCARDED_EVENTS)
        launcher = launcher_type(job, run_dir, env, template, {})
    print(f"job {job.conf.identity.job_name}: resuming after round {done} ({discarded} event lines written after "
          f"the checkpoint moved to {DISCARDED_EVENTS})", file=out, flush=True)
    return _run(job, run_dir, launcher, out, resume_offset=state["event_log_size"], plots=plots)


def job_env(job: JobSpec, kind: str, secret: str) -> dict[str, str]:
    """The environment of the job's processes: the secret, and for a job whose traffic leaves this
    machine the per-job TLS certificates (``leaves_machine``)."""
    env = process_env(secret)
    if leaves_machine(job, kind):
        from fedscale.cloud.channels.tls import JobCertificates
        env.update(JobCertificates.create([job.ps_ip, *(w.host for w in job.workers)]).to_env())
    return env


@contextlib.contextmanager
def _template(job: JobSpec, launcher_type: type[Launcher], env: dict[str, str],
              job_folder: Path | None = None) -> Iterator[Template | None]:
    """The job's template process for a launcher that forks processes here, started now (with
    ``env``) so that its imports overlap the job's checks; it is ended at once if they fail."""
    if not launcher_type.forks_here:
        yield None
        return
    template = Template(job_folder or Path(job.log_root) / "logs" / job.conf.identity.job_name, env)
    try:
        yield template
    except BaseException:
        template.close(grace=0.0)
        raise


def _preflight(job: JobSpec, template: Template) -> None:
    """``preflight(job)``: here, or where it needs torch, in a process forked from the template
    (which has imported it), so that the driver never imports torch."""
    if not needs_torch(job):
        preflight(job)
        return
    with tempfile.TemporaryDirectory(prefix="fedscale-preflight-") as folder:
        job.save(Path(folder))
        out = Path(folder) / "preflight.out"
        code = template.spawn("preflight", ["--run-dir", folder], out, f"fedscale preflight {job.source}").wait()
        if code != 0:
            raise ConfigError(last_line(out) or f"the job's checks ended with exit code {code}")


def _run(job: JobSpec, run_dir: Path, launcher: Launcher, out: TextIO, resume_offset: int | None = None,
         plots: bool = True) -> JobResult:
    """Launch the job laid out in ``run_dir`` and follow it to its end; with ``resume_offset``
    (where its event log was cut back to) the aggregator resumes from the checkpoint. A job that
    ended on its own (not stopped) then gets its plots if ``plots``."""
    name = job.conf.identity.job_name
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def interrupt(signum, frame):
        _ignore(previous)
        raise _Interrupted(signal.Signals(signum).name)

    for s in previous:
        signal.signal(s, interrupt)
    print(f"job {name}: run folder {run_dir}", file=out, flush=True)
    progress = Progress(job.conf.training.rounds, out)
    interrupted = False
    try:
        launcher.start_aggregator(*(() if resume_offset is None else ("--resume",)))
        for executor_id in job.executor_processes:  # they load their data while the aggregator starts
            launcher.start_executor(executor_id, log_offset=resume_offset or 0)
        _register(name, run_dir, launcher)
        result = _follow(job, run_dir, launcher, progress, resume_offset or 0)
    except _Interrupted as signame:
        interrupted, result = True, JobResult(commons.STATUS_STOPPED, run_dir, f"stopped by {signame}")
    finally:
        _ignore(previous)
        progress.finish()
        launcher.terminate()
        registry.unregister(name, os.getpid())
    if interrupted:
        return result  # further Ctrl-C and SIGTERM stay ignored: the driver is ending, with 130
    for s, handler in previous.items():
        signal.signal(s, handler)
    if plots:
        _write_plots(run_dir, out)
    return result


def _write_plots(run_dir: Path, out: TextIO) -> None:
    """The run's plots, best effort: a job's result never depends on them."""
    try:
        from fedscale.cloud.logger.plots import write_run_plots
        write_run_plots(run_dir)
    except ConfigError:
        return  # no finished round to plot
    except Exception as err:  # matplotlib missing or failing: say so, keep the job's own outcome
        print(f"note: the run's plots were not written ({type(err).__name__}: {err})", file=out)


def _ignore(signals: dict[int, Any]) -> None:
    """Ignore further Ctrl-C and SIGTERM: the job's processes are being ended, and a second
    signal must not cut that short (the group is killed within a few seconds anyway)."""
    for s in signals:
        signal.signal(s, signal.SIG_IGN)


def run_to_end(job: JobSpec, launcher: str = "") -> list[dict[str, Any]]:
    """Run ``job`` with no console output and return its aggregator's events, for scripts that
    compare runs; ``launcher`` overrides the job's own choice, as ``submit --launcher`` does
    (``"local"`` runs a container job file's processes on this machine). A job that does not
    complete raises RuntimeError with its status, reason and run folder."""
    result = submit(job, out=io.StringIO(), err=io.StringIO(), plots=False, launcher=launcher)
    if result.exit_code != 0:
        raise RuntimeError(f"the job {result.status}: {result.reason} (logs: {result.run_dir})")
    return list(read_events(result.run_dir / commons.AGGREGATOR_LOG))


def _register(name: str, run_dir: Path, launcher: Launcher) -> None:
    registry.register(name, driver_pid=os.getpid(), run_dir=str(run_dir), launcher=launcher.record())


def _follow(job: JobSpec, run_dir: Path, launcher: Launcher, progress: Progress,
            log_offset: int) -> JobResult:
    """Show progress and end with the job. An executor that exits before the first round fails the
    job (it could not start); one that exits later with an error is restarted, up to
    ``executor_restarts`` times each, and rejoins."""
    tail = EventTail(run_dir / commons.AGGREGATOR_LOG, log_offset)
    aggregator = launcher.aggregator
    assert aggregator is not None
    started, under_way, end, address = time.monotonic(), False, None, ""
    restarts = dict.fromkeys(launcher.executors, 0)
    given_up: set[str] = set()
    while end is None:
        launcher.sync()
        exited = aggregator.poll() is not None
        for event in tail.poll():
            progress.on_event(event)
            tag = event["tag"]
            if tag == commons.JOB_BEGIN:
                address = event["address"]
            elif tag == commons.ROUND_BEGIN:
                under_way = True
            elif tag == commons.JOB_END:
                end = event
        if exited or end is not None:
            break
        if not address and time.monotonic() - started > launcher.start_timeout:
            return JobResult(commons.STATUS_FAILED, run_dir, "the aggregator did not start within "
                             f"{launcher.start_timeout:g} s: "
                             f"{last_line(run_dir / commons.console_output_name('aggregator'))}")
        for executor_id, proc in list(launcher.executors.items()):
            if proc.poll() is None or executor_id in given_up or (under_way and proc.returncode == 0):
                continue
            reason = last_line(run_dir / commons.console_output_name(executor_id)) or f"exit code {proc.returncode}"
            if not under_way:
                try:
                    aggregator.wait(timeout=AGGREGATOR_GRACE)
                except subprocess.TimeoutExpired:
                    return JobResult(commons.STATUS_FAILED, run_dir, f"{executor_id} exited: {reason}")
                continue  # the aggregator ended first, and its own end says why
            if launcher.restarts_itself:
                given_up.add(executor_id)
                progress.note(f"{executor_id} exited ({reason}); the {launcher.kind} launcher already restarted it "
                              f"as often as executor_restarts ({job.conf.cluster.executor_restarts}) allows")
            elif restarts[executor_id] < job.conf.cluster.executor_restarts:
                restarts[executor_id] += 1
                progress.note(f"{executor_id} exited ({reason}); restarting it "
                              f"({restarts[executor_id]} of {job.conf.cluster.executor_restarts})")
                launcher.start_executor(executor_id, address)
                _register(job.conf.identity.job_name, run_dir, launcher)
            else:
                given_up.add(executor_id)
                progress.note(f"{executor_id} exited ({reason}); not restarted: it was restarted "
                              f"{restarts[executor_id]} times (executor_restarts)")
        time.sleep(POLL_SECONDS)
    launcher.wait_all(timeout=10.0)
    launcher.sync()
    if end is None:
        reason = (last_line(run_dir / commons.console_output_name("aggregator"))
                  or f"exit code {aggregator.returncode}{_low_space_note(run_dir)}")
        return JobResult(commons.STATUS_FAILED, run_dir, f"the aggregator died: {reason}")
    return JobResult(end["status"], run_dir, end.get("reason", ""))


def _low_space_note(run_dir: Path) -> str:
    """A note when the run folder's file system is (nearly) full, where the aggregator could not
    even write its output, else an empty string."""
    try:
        stats = os.statvfs(run_dir)
    except OSError:
        return ""
    free = stats.f_bavail * stats.f_frsize
    return f"; only {free} bytes are free on the file system of {run_dir}" if free < LOW_SPACE_BYTES else ""


def stop(job_name: str, timeout: float = 5.0) -> bool:
    """Stop a running job: ask its driver (which ends every process of the job through its
    launcher), then make sure, through the launcher's record, that nothing of it is left."""
    record = registry.lookup(job_name)
    if record is None:
        return False
    os.kill(record["driver_pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while registry.same_process(record["driver_pid"], record["driver_start"]) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    stop_recorded(record)
    return True
