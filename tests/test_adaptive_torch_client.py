"""AdaptiveTorchClient's phases on a tiny model and a device with constant, hand-set rates.

The device computes 10 ms per sample (x3 for forward and backward): with batches of 4 a step
takes 0.12 s. Its bandwidth is chosen so the dense update uploads in exactly 1 s under the
dynamic time model (uplink half the downlink).
"""
import json
import math

import numpy as np
import pytest
import torch

from fedscale.cloud.execution.adaptive_torch_client import AdaptiveSettings, AdaptiveTorchClient
from fedscale.cloud.execution.torch_client import ClientFailure
from fedscale.dataloaders.dataset import ArrayDataset
from fedscale.dataloaders.models import build_model
from fedscale.robust.attacks.label_flip import flip_labels
from fedscale.cloud.internal.trace_formats import fleet_from_json
from fedscale.cloud.time_model import DynamicTimeModel, FedScaleTimeModel

STEP = 0.12
DOWNLOAD = 0.5


def make(tmp_path, time_model=DynamicTimeModel, clock_factor=1.0, **availability):
    g = torch.Generator().manual_seed(0)
    data = ArrayDataset(torch.randn(40, 1, 4, 4, generator=g), torch.randint(0, 3, (40,), generator=g), 3)
    torch.manual_seed(0)
    model = build_model("mlp", (1, 4, 4), 3)
    nbytes = sum(p.numel() for p in model.parameters()) * 4
    device = {"id": 1, "computation": 10.0, "communication": 2 * 8 * nbytes / 1000, **availability}
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps([device]))
    devices = fleet_from_json(path)
    client = AdaptiveTorchClient(model, data, [np.arange(40)], seed=1,
                                 time_model=lambda nbytes: time_model(devices, clock_factor=clock_factor))
    return client, client.weights.snapshot()


def settings(phase_2=False, min_payload=0.3):
    return AdaptiveSettings(ewma_lambda=0.7, min_payload_frac=min_payload, budget_recheck_steps=5,
                            run_phase_2=phase_2, batch_size=4)


def train(client, start, budget, s, lr=0.1, **local):
    return client.train_adaptive(start, 0, 1, lr, device=0, round_start=0.0, t_download=DOWNLOAD,
                                 t_budget=budget, s=s, **local)


def test_phase_1_fills_the_budget_in_chunks(tmp_path):
    client, start = make(tmp_path)
    out = train(client, start, DOWNLOAD + 1.0 + 20 * STEP + 0.05, settings())
    assert (out.phase1_steps, out.phase2_steps) == (20, 0)
    assert out.t_compute == pytest.approx(20 * STEP) and out.t_upload == pytest.approx(1.0)
    assert out.update.keep_fraction == 1.0 and out.update.local_steps == 20
    assert out.wall <= DOWNLOAD + 1.0 + 20 * STEP + 0.05


def test_leftover_steps_run_as_one_block_without_phase_2(tmp_path):
    client, start = make(tmp_path)
    out = train(client, start, DOWNLOAD + 1.0 + 7 * STEP + 0.05, settings())
    assert out.phase1_steps == 7 and out.t_compute == pytest.approx(7 * STEP)


def test_phase_2_sizes_the_upload_to_the_budget_left(tmp_path):
    client, start = make(tmp_path)
    budget = DOWNLOAD + 1.0 + 2 * STEP + 0.03
    out = train(client, start, budget, settings(phase_2=True))
    assert out.phase1_steps == 0 and out.phase2_steps >= 1
    left = budget - DOWNLOAD - out.t_compute
    assert out.update.keep_fraction == pytest.approx(min(1.0, max(0.3, left / 1.0)))
    if out.update.keep_fraction > 0.3:
        assert out.wall == pytest.approx(budget)
    kept = torch.count_nonzero(out.update.update)
    assert kept <= math.ceil(out.update.keep_fraction * out.update.update.numel())


def test_phase_2_stops_when_the_gain_is_not_positive(tmp_path):
    client, start = make(tmp_path)
    out = train(client, start, DOWNLOAD + 1.0 + 3 * STEP, settings(phase_2=True), lr=0.0)
    assert out.phase2_steps == 1  # a zero update gains nothing: stop after the first step


def test_payload_floor_lets_the_client_overrun(tmp_path):
    client, start = make(tmp_path)
    out = train(client, start, DOWNLOAD + 0.2, settings(phase_2=True, min_payload=0.5))
    assert out.update.keep_fraction == 0.5 and out.phase2_steps == 1
    assert out.wall == pytest.approx(DOWNLOAD + STEP + 0.5)


def test_a_budget_without_room_for_a_step_fails(tmp_path):
    client, start = make(tmp_path)
    with pytest.raises(ClientFailure, match="budget does not cover one step"):
        train(client, start, DOWNLOAD - 0.1, settings(phase_2=True))


def test_going_offline_mid_training_fails(tmp_path):
    client, start = make(tmp_path, active=[0], inactive=[2], finish_time=100)
    with pytest.raises(ClientFailure, match="offline during training"):
        train(client, start, 20.0, settings())


def test_under_fedscale_only_the_finish_time_counts(tmp_path):
    # Offline on [2, 3) of every 100 s, mid-training: FedScale's rule keeps a client that is online
    # again when it finishes (about 3.9 s).
    availability = dict(active=[0, 3], inactive=[2, 100], finish_time=100)
    budget = DOWNLOAD + 1.0 + 20 * STEP + 0.05
    client, start = make(tmp_path, FedScaleTimeModel, **availability)
    out = train(client, start, budget, settings())
    assert out.phase1_steps >= 20 and 3.0 < out.wall <= budget
    client, start = make(tmp_path, DynamicTimeModel, **availability)
    with pytest.raises(ClientFailure, match="offline during training"):
        train(client, start, budget, settings())


def test_clock_factor_scales_the_clients_compute_and_upload(tmp_path):
    client, start = make(tmp_path, clock_factor=2.0)
    out = train(client, start, DOWNLOAD + 2.0 + 10 * 2 * STEP + 0.05, settings())
    assert out.phase1_steps == 10
    assert out.t_compute == pytest.approx(10 * 2 * STEP) and out.t_upload == pytest.approx(2.0)


def test_a_byzantine_client_spends_the_same_budget_on_flipped_labels(tmp_path):
    client, start = make(tmp_path)
    client.data_attack = flip_labels
    budget = DOWNLOAD + 1.0 + 10 * STEP + 0.05
    honest, flipped = (train(client, start, budget, settings(), byzantine=b) for b in (False, True))
    assert flipped.phase1_steps == honest.phase1_steps == 10 and flipped.wall == honest.wall
    assert not torch.equal(flipped.update.update, honest.update.update)
