"""OpenTelemetry: a real multi-process job exporting over OTLP/HTTP to a collector on 127.0.0.1
gives one trace per round across the aggregator and its executors, and metrics equal to the
event log's; off, nothing is set up; without the SDK, a note."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from fedscale.cloud import commons
from fedscale.cloud.telemetry import NO_SPAN, Telemetry, exporter_names, extract, inject
from tests.jobs import DRIVER, ROOT, driver_env, events, run_dirs, wait_for_event, write_job

sdk = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmark" / "perf"))
from otlp_collector import Collector  # noqa: E402


@pytest.fixture
def collector():
    running = Collector()
    yield running
    running.close()


def test_one_trace_per_round_across_processes_and_metrics_equal_to_the_log(tmp_path, collector):
    job = write_job(tmp_path, executors=2, rounds=4, eval_interval=2)
    env = dict(driver_env(tmp_path), OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint)
    done = subprocess.run([sys.executable, str(DRIVER), "submit", "--no-plots", str(job)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    log = events(run_dirs(tmp_path)[-1] / commons.AGGREGATOR_LOG)
    spans = collector.collected.spans

    rounds = {s.attributes["fl.round"]: s for s in spans if s.name == "fl.round"}
    assert sorted(rounds) == [1, 2, 3, 4]
    assert len({s.trace_id for s in rounds.values()}) == 4
    assert {s.service for s in rounds.values()} == {"fedscale-aggregator"}
    by_id = {s.span_id: s for s in spans}
    for name in ("fl.select", "fl.dispatch", "fl.aggregate"):
        children = [s for s in spans if s.name == name]
        assert sorted(by_id[s.parent_id].attributes["fl.round"] for s in children) == [1, 2, 3, 4]
    tests = [s for s in spans if s.name == "fl.test"]
    assert sorted(by_id[s.parent_id].attributes["fl.round"] for s in tests) == [2, 4]

    begins = {e["round"]: e for e in log if e["tag"] == commons.ROUND_BEGIN}
    trained = defaultdict(set)
    for span in (s for s in spans if s.name == "fl.client.train"):
        parent = rounds[span.attributes["fl.round"]]
        assert (span.parent_id, span.trace_id) == (parent.span_id, parent.trace_id)
        assert span.service.startswith("fedscale-executor-")
        trained[span.attributes["fl.round"], span.service.removeprefix("fedscale-")].add(span.attributes["fl.client"])
        assert span.attributes["fl.samples"] > 0 and span.attributes["fl.compute_seconds"] > 0
    for r, begin in begins.items():
        for executor, clients in begin["assignment"].items():
            assert trained[r, executor] == set(clients)
    evaluations = [s for s in spans if s.name == "fl.client.evaluate"]
    assert sorted(s.attributes["fl.round"] for s in evaluations) == [2, 2, 4, 4]
    for span in evaluations:
        parent = rounds[span.attributes["fl.round"]]
        assert (span.parent_id, span.trace_id) == (parent.span_id, parent.trace_id)

    ends = [e for e in log if e["tag"] == commons.ROUND_END]
    results = {e["round"]: e for e in log if e["tag"] == commons.TEST_RESULT}
    for end in ends:
        attributes = rounds[end["round"]].attributes
        assert attributes["fl.aggregated"] == end["aggregated"]
        assert attributes["fl.loss"] == pytest.approx(end["train_loss"])
        assert attributes["fl.virtual_end"] == pytest.approx(end["virtual_time"])
    for r, result in results.items():
        assert rounds[r].attributes["fl.accuracy"] == pytest.approx(result["accuracy"])

    last = {}
    for service, metric, attributes, point in collector.collected.points:
        last[service, metric, tuple(sorted(attributes.items()))] = point
    aggregator = "fedscale-aggregator"
    assert last[aggregator, "fl.round.clients", ()].sum == sum(e["aggregated"] for e in ends)
    assert last[aggregator, "fl.round.clients", ()].count == 4
    assert last[aggregator, "fl.round.loss", ()].sum == pytest.approx(sum(e["train_loss"] for e in ends))
    assert last[aggregator, "fl.round.accuracy", ()].sum == pytest.approx(sum(r["accuracy"] for r in results.values()))
    assert last[aggregator, "fl.round.duration", (("clock", "virtual"),)].sum == pytest.approx(
        sum(e["round_duration"] for e in ends))
    executors = [k for k in last if k[1] == "fl.client.examples"]
    assert len(executors) == 2
    examples = sum(last[k].as_int for k in executors)
    assert examples == sum(s.attributes["fl.samples"] for s in spans if s.name == "fl.client.train")
    sent = last[aggregator, "fl.bytes", (("direction", "sent"),)].as_int
    received = sum(last[k].as_int for k in last if k[1] == "fl.bytes" and k[0] != aggregator
                   and k[2] == (("direction", "received"),))
    assert sent == received > 0


def test_off_unless_an_exporter_is_asked_for():
    assert exporter_names({}, "traces") == ()
    assert exporter_names({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "metrics") == ("otlp",)
    assert exporter_names({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, "traces") == ()
    telemetry = Telemetry.start("aggregator", "job", environ={})
    assert not telemetry.enabled and telemetry.span("fl.round") is NO_SPAN


def test_a_context_carried_in_a_task_parents_the_span_that_extracts_it():
    exporter = InMemorySpanExporter()
    telemetry = Telemetry.start("aggregator", "job", environ={}, span_exporter=exporter)
    parent = telemetry.tracer.start_span("fl.round")
    carrier = inject(parent)
    with telemetry.span("fl.client.train", extract(carrier)):
        pass
    parent.end()
    telemetry.shutdown()
    child, root = sorted(exporter.get_finished_spans(), key=lambda s: s.name != "fl.client.train")
    assert child.parent.span_id == root.context.span_id and child.context.trace_id == root.context.trace_id


def test_without_the_sdk_the_job_runs_with_a_note(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import sys\nsys.modules['opentelemetry.sdk'] = None\n")
    env = dict(driver_env(tmp_path), OTEL_TRACES_EXPORTER="console",
               PYTHONPATH=os.pathsep.join([str(shim), driver_env(tmp_path)["PYTHONPATH"]]))
    done = subprocess.run([sys.executable, str(DRIVER), "submit", "--no-plots",
                           str(write_job(tmp_path, executors=1, rounds=2))], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    run_dir = run_dirs(tmp_path)[-1]
    assert "its SDK is not installed" in (run_dir / "aggregator.out").read_text()


def test_a_stopped_job_still_exports_what_its_processes_did(tmp_path, collector):
    job = write_job(tmp_path, executors=2, rounds=100000, eval_interval=100000)
    env = dict(driver_env(tmp_path), OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint)
    driver = subprocess.Popen([sys.executable, str(DRIVER), "submit", "--no-plots", str(job)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = None
    while run_dir is None:
        run_dir = next(iter(run_dirs(tmp_path)), None)
        time.sleep(0.05)
    wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.ROUND_END, round=3)
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=30) == 130
    spans = collector.collected.spans
    services = {s.service for s in spans if s.name == "fl.client.train"}
    assert services == {"fedscale-executor-1", "fedscale-executor-2"}
    assert {1, 2, 3} <= {s.attributes["fl.round"] for s in spans if s.name == "fl.round"}


def test_an_unreachable_collector_holds_up_the_end_by_seconds_at_most(tmp_path):
    env = dict(driver_env(tmp_path), OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")  # nothing listens there
    done = subprocess.run([sys.executable, str(DRIVER), "submit", "--no-plots",
                           str(write_job(tmp_path, executors=1, rounds=2))], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "telemetry not flushed within" in (run_dirs(tmp_path)[-1] / "aggregator.out").read_text()
