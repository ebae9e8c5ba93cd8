"""ClientManager: eligibility, online set, over-committed round plans, feedback to selectors."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from fedscale.cloud.client_manager import ClientManager, make_selector
from fedscale.cloud.config_parser import JobConf
from fedscale.cloud.internal.trace_formats import fleet_from_json
from fedscale.selection.base import Feedback
from fedscale.selection.config import SelectorConfig
from fedscale.selection.random import RandomSelector
from tests.jobs import manager_settings

MODEL_BYTES = 1_000_000


def conf(**changes):
    base = dict(num_participants=3, overcommitment=2.0, local_steps=10, batch_size=10, filter_less=1,
                filter_more=10**15, augmentation_factor=3.0, clock_factor=1.0)
    return JobConf(dict(base, **changes))


def fleet(tmp_path, devices):
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(devices))
    return fleet_from_json(path)


def device(i, ms, kbps=8_000.0, **extra):
    return {"id": i + 1, "computation": ms, "communication": kbps, **extra}


def expected_total(ms, kbps, steps=10, batch=10, upload_fraction=1.0):
    """FedScale's round time (the default time model): (down + up) kbit / kbps + 3 x batch x steps x ms."""
    kilobits = MODEL_BYTES * 8 / 1024
    return (1 + upload_fraction) * kilobits / kbps + 3 * steps * batch * ms / 1000


class Recorder(RandomSelector):
    """A random selector that records the feedback it gets."""

    def __init__(self, seed, picks=None):
        super().__init__(SelectorConfig(), seed)
        self.picks = picks
        self.feedback = []
        self.registered = None

    def register_clients(self, client_ids, num_samples, durations, *, static=None, window_source=None):
        self.registered = (client_ids.tolist(), num_samples.tolist(), durations)

    def select_participants(self, num, cur_time, online_ids):
        return self.picks if self.picks is not None else super().select_participants(num, cur_time, online_ids)

    def register_feedback(self, feedback):
        self.feedback.extend(zip(feedback.client_ids.tolist(), feedback.rewards.tolist(),
                                 [feedback.round_index] * len(feedback.client_ids),
                                 np.round(feedback.durations, 6).tolist(), feedback.success.tolist()))


def test_eligibility_bounds_and_registration(tmp_path):
    f = fleet(tmp_path, [device(i, 10.0 * (i + 1)) for i in range(3)])
    selector = Recorder(0)
    counts = np.array([5, 0, 50, 7, 200])
    manager = ClientManager(counts, f, MODEL_BYTES, selector, **manager_settings(conf(filter_less=5, filter_more=100)))
    assert manager.eligible.tolist() == [0, 2, 3]
    ids, samples, durations = selector.registered
    assert ids == [0, 2, 3] and samples == [5, 50, 7]
    # clients map onto devices cyclically: client 3 runs on device 0
    assert durations[2] == pytest.approx(durations[0]) == pytest.approx(expected_total(10.0, 8000.0))


def test_plan_keeps_the_k_fastest_and_names_stragglers(tmp_path):
    f = fleet(tmp_path, [device(i, ms) for i, ms in enumerate([50, 10, 40, 20, 30, 60])])
    selector = Recorder(0, picks=[0, 1, 2, 3, 4, 5])
    manager = ClientManager(np.full(6, 20), f, MODEL_BYTES, selector, **manager_settings(conf()))
    plan = manager.plan_round(1, 0.0)
    assert plan.participants.tolist() == [1, 3, 4]
    assert sorted(plan.stragglers.tolist()) == [0, 2, 5] and plan.offline.tolist() == []
    assert plan.duration == pytest.approx(expected_total(30, 8000.0))
    assert plan.totals.tolist() == pytest.approx([expected_total(ms, 8000.0) for ms in (10, 20, 30)])
    manager.finish_round(plan, {c: SimpleNamespace(utility=float(c), update_norm=1.0, local_steps=10,
                                                   num_samples=20) for c in (1, 3)})
    by_client = {c: (reward, success) for c, reward, _, _, success in selector.feedback}
    assert by_client[1] == (1.0, True) and by_client[3] == (3.0, True)
    assert 4 not in by_client                       # its executor failed: no feedback
    assert by_client[0] == (2.0, False)             # stragglers get the round's mean utility
    straggler_duration = {c: d for c, _, _, d, _ in selector.feedback}[5]
    assert straggler_duration == pytest.approx(expected_total(60, 8000.0), rel=1e-6)


def test_a_device_that_goes_offline_mid_round_fails(tmp_path):
    f = fleet(tmp_path, [device(0, 10, active=[0], inactive=[8], finish_time=1000),  # finishing takes 6 s
                         device(1, 20), device(2, 30), device(3, 40)])
    manager = ClientManager(np.full(4, 20), f, MODEL_BYTES, Recorder(0, picks=[0, 1, 2, 3]),
                            **manager_settings(conf(num_participants=2)))
    plan = manager.plan_round(1, 5.0)
    assert plan.offline.tolist() == [0]
    assert plan.participants.tolist() == [1, 2] and plan.stragglers.tolist() == [3]


@pytest.mark.parametrize("time_model, kept", [("fedscale", True), ("dynamic", False)])
def test_a_device_offline_mid_round_but_online_at_its_finish(tmp_path, time_model, kept):
    # Device 0's round from t=6 takes 4.95 s under FedScale's formula (6 s under dynamic's): it is
    # offline on [8, 10) and online again when it finishes. FedScale checks only the finish time.
    f = fleet(tmp_path, [device(0, 10, active=[0, 10], inactive=[8, 1000], finish_time=1000),
                         device(1, 20), device(2, 30)])
    manager = ClientManager(np.full(3, 20), f, MODEL_BYTES, Recorder(0, picks=[0, 1, 2]),
                            **manager_settings(conf(num_participants=2, time_model=time_model)))
    plan = manager.plan_round(1, 6.0)
    assert (0 in plan.participants.tolist()) == kept and (plan.offline.tolist() == [0]) == (not kept)


@pytest.mark.parametrize("time_model", ["fedscale", "dynamic"])
def test_clock_factor_scales_the_whole_round_on_both_paths(tmp_path, time_model):
    f = fleet(tmp_path, [device(i, 10.0 * (i + 1)) for i in range(3)])

    def manager(clock_factor):
        job = conf(time_model=time_model, clock_factor=clock_factor, adaptive_training=True, t_budget=60.0)
        return ClientManager(np.full(3, 20), f, MODEL_BYTES, Recorder(0, picks=[0, 1, 2]), **manager_settings(job))

    plain, doubled = manager(1.0), manager(2.0)
    ids, steps = np.arange(3), np.full(3, 10)
    np.testing.assert_allclose(doubled.get_completion_time(ids, 0.0, steps),
                               2.0 * np.array(plain.get_completion_time(ids, 0.0, steps)))
    # the adaptive path: the aggregator's download and the client's own times use the same scaling
    np.testing.assert_allclose(doubled.plan_adaptive_round(1, 0.0).t_dl, 2.0 * plain.plan_adaptive_round(1, 0.0).t_dl)


def test_online_set_and_waiting_for_the_next_client(tmp_path):
    f = fleet(tmp_path, [device(0, 10, active=[100], inactive=[200], finish_time=1000),
                         device(1, 10, active=[150], inactive=[400], finish_time=1000)])
    manager = ClientManager(np.full(2, 20), f, MODEL_BYTES, Recorder(0), **manager_settings(conf()))
    assert manager.online(50.0).tolist() == []
    assert manager.next_online_time(50.0) == 100.0
    assert manager.online(160.0).tolist() == [0, 1]
    assert manager.next_online_time(160.0) == 160.0
    assert manager.next_online_time(450.0) == 1100.0  # the traces repeat every finish_time


def test_pyramidfl_overrides_shape_the_plan(tmp_path):
    f = fleet(tmp_path, [device(i, ms, kbps) for i, (ms, kbps) in
                         enumerate([(10, 2000.0), (40, 50_000.0), (20, 4000.0), (90, 1000.0)])])
    job = conf(num_participants=3, overcommitment=1.0, sample_mode="pyramidfl", seed=3)
    manager = ClientManager(np.full(4, 200), f, MODEL_BYTES, make_selector(job), **manager_settings(job))
    clients = np.arange(4)    # every client has run once, with distinct gradient utility
    manager.selector.register_feedback(Feedback(round_index=1, client_ids=clients, rewards=np.ones(4),
                                                durations=np.full(4, 10.0), success=np.ones(4, dtype=bool),
                                                gradient_norm=4.0 - clients))
    plan = manager.plan_round(2, 0.0)
    assert len(plan.participants) == 3
    # upload dropout grows with rank (lower gradient utility uploads less), extra steps fill idle time
    order = np.argsort(-(4.0 - plan.participants))
    assert np.all(np.diff(plan.keep_fraction[order]) <= 0)
    assert plan.keep_fraction.max() == pytest.approx(0.9) and plan.keep_fraction.min() == pytest.approx(0.4)
    assert plan.local_steps.min() >= 10 and plan.local_steps.max() > 10
    without_extra = [manager.get_completion_time(np.array([c]), 0.0, np.array([10]), np.array([k]))
                     for c, k in zip(plan.participants, plan.keep_fraction)]
    assert plan.duration <= max(sum(t)[0] for t in without_extra) * (1 + 1e-9)
    assert plan.dropout_mode == "topk"
    layer_random = conf(num_participants=3, overcommitment=1.0, sample_mode="pyramidfl", seed=3,
                        pyramidfl_dropout="layer_random")
    manager = ClientManager(np.full(4, 200), f, MODEL_BYTES, make_selector(layer_random),
                            **manager_settings(layer_random))
    assert manager.plan_round(1, 0.0).dropout_mode == "layer_random"


@pytest.mark.parametrize("time_model", ["fedscale", "dynamic"])
def test_extra_steps_that_outlast_a_clients_availability_make_it_fail(tmp_path, time_model):
    """Device 0 finishes its base round (about 11 s) while online, but the slowest client's round
    (about 43 s) leaves it idle time that PyramidFL fills: it would finish after going offline at 20 s."""
    f = fleet(tmp_path, [device(0, 10, 2000.0, active=[0], inactive=[20], finish_time=1000),
                         device(1, 20, 4000.0), device(2, 90, 1000.0)])
    job = conf(num_participants=3, overcommitment=1.0, sample_mode="pyramidfl", seed=3, time_model=time_model)
    manager = ClientManager(np.full(3, 200), f, MODEL_BYTES, make_selector(job), **manager_settings(job))
    plan = manager.plan_round(1, 0.0)
    assert plan.offline.tolist() == [0] and sorted(plan.participants.tolist()) == [1, 2]
    assert plan.stragglers.tolist() == [] and len(plan.base_durations) == len(plan.participants) == 2


def test_pyramidfl_caps_steps_at_five_epochs_of_the_job_batch_size(tmp_path):
    """30 samples in batches of 10: 5 epochs are 15 steps, whatever idle time there is to fill."""
    f = fleet(tmp_path, [device(i, ms, kbps) for i, (ms, kbps) in
                         enumerate([(10, 2000.0), (40, 50_000.0), (20, 4000.0), (90, 1000.0)])])
    job = conf(num_participants=3, overcommitment=1.0, sample_mode="pyramidfl", seed=3)
    plans = []
    for samples in (30, 200):
        manager = ClientManager(np.full(4, samples), f, MODEL_BYTES, make_selector(job), **manager_settings(job))
        plans.append(manager.plan_round(1, 0.0))
    capped, free = plans
    assert free.local_steps.max() > 15 and capped.local_steps.max() == 15
    assert np.all(capped.local_steps == np.minimum(free.local_steps, 15))


@pytest.mark.parametrize("mode", ["random", "oort", "pyramidfl"])
def test_every_selector_plans_deterministically(tmp_path, mode):
    f = fleet(tmp_path, [device(i, 10 + 7 * i, 1000.0 + 500 * i) for i in range(20)])
    job = conf(sample_mode=mode, seed=11, num_participants=4, overcommitment=1.3)

    def plans():
        manager = ClientManager(np.full(20, 30), f, MODEL_BYTES, make_selector(job), **manager_settings(job))
        out = []
        for r in range(1, 6):
            plan = manager.plan_round(r, 100.0 * r)
            manager.finish_round(plan, {int(c): SimpleNamespace(utility=1.0 + c, update_norm=1.0, local_steps=10,
                                                                num_samples=30) for c in plan.participants})
            out.append(plan.participants.tolist())
        return out

    first = plans()
    assert first == plans()
    assert all(len(p) == 4 for p in first)


def test_pyramidfl_learns_speed_from_the_base_duration_not_the_padded_round(tmp_path):
    """PyramidFL's extra steps fill each participant's idle time, so every padded round lasts about
    as long as the slowest; Oort's state must keep each client's own base-step duration."""
    f = fleet(tmp_path, [device(i, ms, kbps) for i, (ms, kbps) in
                         enumerate([(10, 2000.0), (40, 50_000.0), (20, 4000.0), (90, 1000.0)])])
    job = conf(num_participants=3, overcommitment=1.0, sample_mode="pyramidfl", seed=3)
    manager = ClientManager(np.full(4, 200), f, MODEL_BYTES, make_selector(job), **manager_settings(job))
    clients = np.arange(4)    # every client has run once, so PyramidFL ranks them and adds steps
    manager.selector.register_feedback(Feedback(round_index=1, client_ids=clients, rewards=np.ones(4),
                                                durations=np.full(4, 10.0), success=np.ones(4, dtype=bool),
                                                gradient_norm=4.0 - clients))
    plan = manager.plan_round(2, 0.0)
    assert plan.local_steps.max() > 10
    manager.finish_round(plan, {int(c): SimpleNamespace(utility=1.0, update_norm=1.0, local_steps=int(s),
                                                        num_samples=200)
                                for c, s in zip(plan.participants, plan.local_steps)})
    base = [sum(manager.get_completion_time(np.array([c]), 0.0, np.array([10])))[0] for c in plan.participants]
    assert manager.selector.duration[plan.participants] == pytest.approx(base)
    assert not np.allclose(manager.selector.duration[plan.participants], plan.totals)
