"""Bliss v1 (docs/bliss.md): the device encoder, the g/h regressors, and the selector on small
hand-made fleets and at a million clients."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from fedscale.cloud.internal.client_metadata import DynamicTrace, Fleet, StepTraces, normalize_intervals
from fedscale.selection.base import STATIC_COLUMNS, Feedback
from fedscale.selection.config import build_config
from fedscale.selection.pacer import moved, relax_on_plateau
from thirdparty.bliss.bliss import G_DIM, H_DIM, BlissConfig, BlissSelector
from thirdparty.bliss.encode import (BRANDS, NUMERIC_SCALES, STATIC_DIM, STATIC_FEATURES, WINDOW_DIM,
                                     encode_static, encode_windows, os_release_year)
from thirdparty.bliss.regressor import REGRESSORS, make_regressor

ODD = {
    "brand": np.array(["Samsung", None, "", "Foo Phones", "LGE", "motorola mobility"], dtype=object),
    "model": ["SM-G930F", "", None, "  sm-g930f ", "x", "Moto G"],
    "os_version": ["Android 6.0.1", "6.0", "iOS 12", "garbage!", None, "KitKat"],
    "ram_gb": [2.0, np.nan, 0.01, 64.0, np.inf, 3.0],
    "gpu_flops": np.array([3e9, 0.0, np.nan, 1e15, 2e9, -5.0]),
}


def feed(selector, client, reward, round_index, duration, success, **extras) -> None:
    """One client's outcome as a one-client feedback batch."""
    selector.register_feedback(Feedback(round_index=round_index, client_ids=client, rewards=reward,
                                        durations=duration, success=success, **extras))


def feature(name: str) -> int:
    return STATIC_FEATURES.index(name)


def random_windows(ids: np.ndarray, t: float) -> np.ndarray:
    """A fake ``window_source``: windows that depend only on the client and the time."""
    rows = [np.random.default_rng([int(c), int(t)]).random((5, 3)) * [1.0, 0.65, 100.0] + [0.0, 0.35, -1.0]
            for c in ids]
    return np.array(rows).reshape(len(ids), 5, 3)


def make(n: int, seed: int = 0, **knobs) -> BlissSelector:
    """A selector over clients 0..n-1 (no device metadata) that reads ``random_windows``."""
    selector = BlissSelector(BlissConfig(**knobs), seed)
    selector.register_clients(np.arange(n), np.full(n, 10), np.ones(n), window_source=random_windows)
    return selector


def play(selector: BlissSelector, num: int, online: np.ndarray, rewards, round_index: int) -> list[int]:
    """One round: select, then report ``rewards[client]`` (success unless the reward is negative)."""
    picks = selector.select_participants(num, 600.0 * round_index, online)
    for client in picks:
        reward = float(rewards[client])
        feed(selector, client, max(reward, 0.0), round_index, 100.0, reward >= 0)
    return picks


# ---------------------------------------------------------------- encoder

def test_numeric_scales_cover_the_numeric_static_columns() -> None:
    assert tuple(NUMERIC_SCALES) == STATIC_COLUMNS[3:]


def test_odd_metadata_gives_finite_deterministic_vectors() -> None:
    features = encode_static(ODD)
    assert features.shape == (6, STATIC_DIM) and features.dtype == np.float32
    assert np.isfinite(features).all() and features.min() >= 0.0 and features.max() <= 1.0
    assert np.array_equal(features, encode_static(ODD))
    brands = features[:, feature("brand_samsung"):feature("brand_other") + 1]
    assert brands.sum(axis=1).tolist() == [1, 0, 0, 1, 1, 1]
    assert features[3, feature("brand_other")] == 1 and features[4, feature("brand_lg")] == 1
    assert features[5, feature("brand_motorola")] == 1
    models = features[:, feature("model_0"):]
    assert models.sum(axis=1).tolist() == [1, 0, 0, 1, 1, 1]
    assert np.array_equal(models[0], models[3])
    assert features[:, feature("unknown_os_version")].tolist() == [0, 0, 0, 1, 1, 0]
    assert features[:, feature("os_ios")].tolist() == [0, 0, 1, 0, 0, 0]
    assert features[:, feature("unknown_ram_gb")].tolist() == [0, 1, 0, 0, 1, 0]
    assert features[2, feature("ram_gb")] == 0.0 and features[3, feature("ram_gb")] == 1.0
    assert features[:, feature("unknown_gpu_flops")].tolist() == [0, 0, 1, 0, 0, 0]
    assert features[:, feature("unknown_cpu_flops")].tolist() == [1] * 6


def test_missing_columns_are_all_unknown_and_need_a_row_count() -> None:
    features = encode_static({}, num_clients=3)
    assert features.shape == (3, STATIC_DIM) and np.isfinite(features).all()
    unknown = [name for name in STATIC_FEATURES if name.startswith("unknown_")]
    assert all(features[:, feature(name)].tolist() == [1, 1, 1] for name in unknown)
    assert features[:, feature("brand_samsung"):].sum() == 0
    with pytest.raises(ValueError, match="num_clients"):
        encode_static({})
    with pytest.raises(ValueError, match="differ in length"):
        encode_static({"brand": ["a", "b"], "ram_gb": [1.0]})
    with pytest.raises(ValueError, match="ram_gb"):
        encode_static({"ram_gb": ["two GB"]})


@pytest.mark.parametrize("label, year, ios", [
    ("Android 6.0.1", 2015.8, False), ("6.0", 2015.8, False), ("4.4.2", 2013.8, False),
    ("KitKat", 2013.8, False), ("Android 9", 2018.6, False), ("iOS 12", 2018.6, True),
    ("iPhone OS 3.1.3", 2009.5, True), ("garbage", None, False), ("Android", None, False),
    ("999", None, False), ("0.5", None, False),
])
def test_os_strings_parse_to_release_years(label: str, year: float | None, ios: bool) -> None:
    parsed, parsed_ios = os_release_year(label)
    assert parsed_ios == ios
    assert math.isnan(parsed) if year is None else parsed == pytest.approx(year, abs=0.1)


def test_newer_os_reads_as_more_modern() -> None:
    versions = ["2.3.6", "4.1.2", "4.4.4", "5.1.1", "6.0.1", "7.0", "8.1.0", "Android 10", "Android 14"]
    modernity = encode_static({"os_version": versions})[:, feature("os_modernity")]
    assert np.all(np.diff(modernity) > 0)


def test_model_buckets_survive_a_new_process_and_hash_seed() -> None:
    models = ["SM-G930F", "Nexus 5", "LG-K350", "Pixel 3a"]
    here = encode_static({"model": models})[:, feature("model_0"):].argmax(axis=1).tolist()
    code = ("from thirdparty.bliss.encode import encode_static, STATIC_FEATURES as F;"
            f"print(encode_static({{'model': {models!r}}})[:, F.index('model_0'):].argmax(axis=1).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1], env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert json.loads(out.stdout) == here


def test_categorical_codes_encode_like_their_labels() -> None:
    vocab = np.array(["HTC", "Samsung", "Weird"])
    codes = np.array([1, -1, 0, 2, 1], dtype=np.int32)
    labels = np.array(["Samsung", None, "HTC", "Weird", "Samsung"], dtype=object)
    column = types.SimpleNamespace(codes=codes, vocab=vocab)
    assert np.array_equal(encode_static({"brand": column}), encode_static({"brand": labels}))


def test_windows_are_scaled_as_bliss_scales_raw_traces_flattened_and_defaulted() -> None:
    windows = np.array([[[28 / 54, 0.675, 49.0]] * 5, [[np.nan, np.nan, np.nan]] * 5, [[9.0, 0.1, 150.0]] * 5])
    encoded = encode_windows(windows)
    assert encoded.shape == (3, WINDOW_DIM) and encoded.dtype == np.float32
    assert encoded[0, :3] == pytest.approx([(28 - 1) / 53, (67.5 - 35) / 65, (49 + 1) / 100])
    assert encoded[1, :3] == pytest.approx([1.0, 1.0, 0.0])
    assert encoded[2, :3] == pytest.approx([1.0, 0.0, 1.0])
    ordered = np.arange(15, dtype=np.float64).reshape(1, 5, 3) / 100
    assert encode_windows(ordered)[0, 3] == pytest.approx((0.03 * 54 - 1) / 53)
    with pytest.raises(ValueError, match="shape"):
        encode_windows(np.zeros((2, 4, 3)))


def test_dynamic_windows_are_the_last_five_trace_steps_with_offline_steps_carried_from_newer() -> None:
    """Rate steps of 100 s over a 600 s cycle, cpu steps of 150 s; both clients are offline on
    [200, 300) of their 600 s period, so a step whose midpoint falls there (rate: 250 s, cpu:
    225 s) repeats the next newer value; client 1 reads the rate 100 s ahead (phase); later, a
    window spans the cycle's wrap."""
    rate = StepTraces(100.0, np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], dtype=np.float32))
    cpu = StepTraces(150.0, np.array([[0.5, 1.0]], dtype=np.float32))
    online = normalize_intervals(np.array([0, 0, 1, 1]), np.array([0, 300, 0, 300]), np.array([200, 600, 200, 600]),
                                 np.array([600, 600]))
    phase = np.array([0.0, 100.0], dtype=np.float32)
    fleet = Fleet.create(np.ones(2), np.ones(2), availability=online,
                         rate=DynamicTrace(rate, np.zeros(2, dtype=np.int32), phase),
                         cpu=DynamicTrace(cpu, np.zeros(2, dtype=np.int32), np.zeros(2, dtype=np.float32)))
    windows = fleet.dynamic_windows(np.array([0, 1]), 520.0)
    assert windows.shape == (2, 5, 3)
    np.testing.assert_allclose(windows[0, :, 0], [0.2, 0.4, 0.4, 0.5, 0.6], rtol=1e-6)
    np.testing.assert_allclose(windows[1, :, 0], [0.3, 0.5, 0.5, 0.6, 0.1], rtol=1e-6)
    np.testing.assert_allclose(windows[:, :, 1], [[1.0, 0.5, 0.5, 0.5, 1.0]] * 2)
    assert np.isnan(windows[:, :, 2]).all()
    wrapped = fleet.dynamic_windows(np.array([0]), 600.0 * 7 + 120.0)
    np.testing.assert_allclose(wrapped[0, :, 0], [0.4, 0.5, 0.6, 0.1, 0.2], rtol=1e-6)


# ---------------------------------------------------------------- regressors

@pytest.mark.parametrize("name", REGRESSORS)
def test_each_regressor_recovers_a_linear_target(name: str) -> None:
    rng = np.random.default_rng(0)
    X, X_test = rng.random((400, 6)), rng.random((200, 6))
    weights = np.array([300.0, -200.0, 0.0, 100.0, 0.0, 50.0])
    y = X @ weights + 20 + rng.normal(0, 1, 400)
    model = make_regressor(name, 7)
    assert model.fit(X, y) is model
    predicted = model.predict(X_test)
    assert predicted.shape == (200,) and np.corrcoef(predicted, X_test @ weights)[0, 1] > 0.95
    assert np.array_equal(make_regressor(name, 7).fit(X, y).predict(X_test), predicted)


@pytest.mark.parametrize("name", REGRESSORS)
def test_predict_before_fit_is_an_error(name: str) -> None:
    with pytest.raises(RuntimeError, match="before it was fitted"):
        make_regressor(name, 0).predict(np.zeros((2, 3)))


def test_missing_xgboost_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xgboost", None)
    with pytest.raises(ImportError, match="pip install xgboost-cpu"):
        make_regressor("xgboost", 0)
    with pytest.raises(ImportError, match="pip install xgboost-cpu"):
        BlissSelector(BlissConfig(h_model="xgboost"), 0)
    make_regressor("linreg", 0)


def test_g_and_h_default_to_xgboost_with_the_public_codes_settings_one_thread_seeded() -> None:
    config = BlissConfig()
    assert (config.g_model, config.h_model) == ("xgboost", "xgboost")
    selector = BlissSelector(config, 11)
    g, h = selector.g._model.get_params(), selector.h._model.get_params()
    public = {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 6, "subsample": 0.8, "colsample_bytree": 0.8,
              "n_jobs": 1}
    assert {key: g[key] for key in public} == public == {key: h[key] for key in public}
    assert (g["random_state"], h["random_state"]) == (11, 12)


def test_unknown_regressor_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown regressor"):
        make_regressor("forest", 0)


# ---------------------------------------------------------------- selector

@pytest.mark.parametrize("field, value", [
    ("number_clients_to_predict_utility", -1), ("number_clients_to_refresh_utility", 2.5),
    ("amount_clients_predict_train_set", 10), ("g_model", "forest"), ("h_model", None), ("ema_alpha", 0.0),
    ("t_budget", 0.0), ("pacer_step", 0), ("bliss_pacer_delta", -1.0), ("round_penalty", float("nan")),
    ("exploration_factor", 1.5), ("exploration_decay", 0.0), ("exploration_min", 0.95), ("cut_off_util", 2.0),
    ("bliss_selection", "best"), ("bliss_train_sampling", "loss"), ("bliss_retrain_every", 0),
    ("bliss_min_train", 0), ("bliss_refresh_random", -0.1), ("collect_data", "maybe"),
])
def test_bad_config_values_name_the_field(field: str, value) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        build_config(BlissConfig, {field: value})


def test_pools_are_unseen_at_random_and_seen_by_utility_plus_a_random_share() -> None:
    selector = make(30, number_clients_to_predict_utility=8, number_clients_to_refresh_utility=5,
                    bliss_refresh_random=0.4)
    online = np.arange(30)
    first = play(selector, 10, online, np.arange(30.0), 1)
    assert selector.details()["predict_pool"] == 10 and selector.details()["refresh_pool"] == 0
    play(selector, 4, online, np.arange(30.0), 2)
    details = selector.details()
    assert (details["predict_pool"], details["refresh_pool"], details["refresh_random"]) == (8, 7, 2)
    assert not set(selector.last_predict_pool) & set(first)
    refresh = selector.last_refresh_pool
    assert set(refresh) <= set(first)
    assert set(refresh[:5]) == set(sorted(first)[-5:])
    assert details["num_from_predict"] + details["num_from_refresh"] == 4


@pytest.mark.parametrize("share, locked_out", [(0.0, True), (0.34, False)])
def test_a_failed_client_is_refreshed_again_only_with_the_random_share(share: float, locked_out: bool) -> None:
    rewards = np.arange(12.0) + 10
    rewards[0] = -1
    selector = make(12, number_clients_to_refresh_utility=3, bliss_refresh_random=share)
    online = np.arange(12)
    play(selector, 12, online, rewards, 1)
    assert selector.utility[0] == 0
    refreshed = 0
    for r in range(2, 40):
        play(selector, 2, online, rewards, r)
        refreshed += 0 in selector.last_refresh_pool
    assert (refreshed == 0) == locked_out


def test_g_and_h_rows_on_hand_built_windows() -> None:
    table = {t: np.array([[[0.2 * t, 0.5 + 0.1 * t, 10.0 * t + c]] * 5 for c in range(3)]) for t in (1, 2, 3)}
    selector = BlissSelector(BlissConfig(collect_data=True), 0)
    selector.register_clients(np.arange(3), np.full(3, 5), np.ones(3),
                              static={"brand": ["HTC", "Samsung", None], "ram_gb": [1.0, 2.0, np.nan]},
                              window_source=lambda ids, t: table[int(t)][ids])
    static = encode_static({"brand": ["HTC", "Samsung", None], "ram_gb": [1.0, 2.0, np.nan]})
    encoded = {t: encode_windows(windows) for t, windows in table.items()}
    assert encoded[1][0, :3] == pytest.approx([(0.2 * 54 - 1) / 53, 0.25 / 0.65, 11.0 / 100])
    ids = np.arange(3)
    for r in (1, 2):
        picks = selector.select_participants(3, float(r), ids)
        for client in picks:
            feed(selector, client, 10.0 * (client + 1) * r, r, 10.0, client != 2 or r == 1)
    assert np.allclose(selector.g_rows(ids), np.hstack([encoded[2], static]))
    u_first = np.array([10.0, 20.0, 30.0])
    history = np.column_stack([u_first, [1, 1, 1], [1, 1, 1]])
    assert np.allclose(selector.h_rows(ids), np.hstack([encoded[2] - encoded[1], static, history]))
    assert selector.utility == pytest.approx([0.7 * 20 + 0.3 * 10, 0.7 * 40 + 0.3 * 20, 0.3 * 30])
    selector.select_participants(3, 3.0, ids)
    rows = selector.training_data()
    first, third = rows["round"] == 1, rows["round"] == 3
    order = np.argsort(rows["client"][first])
    assert np.allclose(rows["g_features"][first][order], np.hstack([encoded[1], static]))
    assert np.isnan(rows["h_features"][first]).all() and (rows["pool"][first] == 0).all()
    order = np.argsort(rows["client"][third])
    now = np.column_stack([selector.utility, [1, 1, 0], [1, 1, 1]])
    assert np.allclose(rows["h_features"][third][order], np.hstack([encoded[3] - encoded[2], static, now]))
    assert rows["g_features"].shape[1] == G_DIM and rows["h_features"].shape[1] == H_DIM


def test_pacer_rule_plateau_swing_and_floor() -> None:
    def paced(budget: float, recent: float, previous: float) -> float:
        return moved(budget, relax_on_plateau(recent, previous), 5.0)

    assert paced(300.0, 105.0, 100.0) == 305.0
    assert paced(300.0, 600.0, 100.0) == 295.0
    assert paced(300.0, 150.0, 100.0) == 300.0
    assert paced(7.0, 600.0, 100.0) == 5.0
    assert paced(3.0, 600.0, 100.0) == 3.0


@pytest.mark.parametrize("knobs, step", [
    ({}, 50.0),
    ({"bliss_pacer_delta": 5.0}, 5.0),
    ({"bliss_pacer_delta": 5.0, "pacer_delta": 999.0}, 5.0),
    ({"pacer_delta": 5.0}, 50.0),
])
def test_pacer_moves_the_budget_every_window_by_its_own_step(knobs: dict, step: float) -> None:
    config = build_config(BlissConfig, dict(knobs, g_model="linreg", h_model="linreg", pacer_step=2))
    selector = BlissSelector(config, 0)
    selector.register_clients(np.arange(4), np.full(4, 10), np.ones(4), window_source=random_windows)
    online = np.arange(4)
    for r in range(1, 5):
        play(selector, 4, online, np.full(4, 10.0), r)
        assert selector.time_budget == 300.0
    play(selector, 4, online, np.full(4, 1000.0), 5)
    assert selector.time_budget == 300.0 + step and selector.details()["pacer_move"]["to"] == 300.0 + step
    play(selector, 4, online, np.full(4, 1000.0), 6)
    assert selector.details()["pacer_move"] is None
    play(selector, 4, online, np.full(4, 1000.0), 7)
    assert selector.time_budget == 300.0 and selector.details()["pacer_moves"] == 2


def test_topk_takes_the_best_predictions_best_first() -> None:
    rewards = np.array([5.0, 50.0, 20.0, 50.0, 1.0, 30.0, 0.0, 7.0])
    selector = make(8, bliss_selection="topk")
    play(selector, 8, np.arange(8), rewards, 1)
    assert selector.select_participants(4, 1200.0, np.arange(8)) == [1, 3, 5, 2]
    assert not selector.details()["h_fitted"]


def test_weighted_selection_gives_the_unseen_pool_its_epsilon_share() -> None:
    selector = make(400, number_clients_to_predict_utility=100, number_clients_to_refresh_utility=50)
    online = np.arange(400)
    play(selector, 40, online, np.arange(400.0), 1)
    for r in range(2, 6):
        epsilon = 0.9 * 0.98 ** (r - 1)
        play(selector, 20, online, np.arange(400.0), r)
        details = selector.details()
        assert details["epsilon"] == pytest.approx(epsilon)
        assert details["num_from_predict"] == math.floor(epsilon * 20 + 0.5)


def test_failure_targets_zero_and_slow_non_adaptive_clients_are_penalised() -> None:
    selector = make(4, collect_data=True)
    selector.select_participants(4, 0.0, np.arange(4))
    feed(selector, 0, 50.0, 1, 10.0, False)
    feed(selector, 1, 50.0, 1, 600.0, True)
    feed(selector, 2, 50.0, 1, 600.0, True, adaptive=True)
    feed(selector, 3, 50.0, 1, 200.0, True)
    assert selector.utility == pytest.approx([0.0, 12.5, 50.0, 50.0])
    rows = selector.training_data()
    assert rows["target"][np.argsort(rows["client"])] == pytest.approx([0.0, 12.5, 50.0, 50.0])


def test_utility_is_an_exponential_average_started_at_the_first_target() -> None:
    selector = make(1)
    for r, (reward, success) in enumerate([(10.0, True), (20.0, True), (30.0, False)], start=1):
        selector.select_participants(1, 0.0, np.arange(1))
        feed(selector, 0, reward, r, 1.0, success)
    assert selector.utility[0] == pytest.approx(0.3 * (0.7 * 20 + 0.3 * 10))
    raw = make(1, ema_alpha=1.0)
    raw.select_participants(1, 0.0, np.arange(1))
    feed(raw, 0, 10.0, 1, 1.0, True)
    raw.select_participants(1, 0.0, np.arange(1))
    feed(raw, 0, 20.0, 2, 1.0, True)
    assert raw.utility[0] == 20.0


@pytest.mark.parametrize("selection", ["weighted", "topk"])
def test_same_seed_same_picks(selection: str) -> None:
    rewards = np.random.default_rng(3).random(60) * 100

    def run(seed: int) -> list[list[int]]:
        selector = make(60, seed=seed, number_clients_to_predict_utility=15, number_clients_to_refresh_utility=10,
                        bliss_selection=selection, bliss_min_train=5, amount_clients_predict_train_set=20,
                        amount_clients_refresh_train_set=20, g_model="linreg", h_model="linreg")
        online = np.arange(0, 60, 2)
        return [play(selector, 6, online if r % 2 else online + 1, rewards, r) for r in range(1, 16)]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_only_online_registered_clients_are_returned() -> None:
    selector = make(50, number_clients_to_predict_utility=5, number_clients_to_refresh_utility=5)
    rng = np.random.default_rng(0)
    for r in range(1, 20):
        online = rng.choice(50, 15, replace=False)
        asked = np.concatenate([online, online[:3], [70, 999]])
        picks = play(selector, 6, asked, rng.random(50) * 10, r)
        assert len(picks) == len(set(picks)) == 6 and set(picks) <= set(online.tolist())


def test_fewer_online_than_asked_returns_them_all() -> None:
    selector = make(10)
    play(selector, 3, np.arange(10), np.ones(10), 1)
    assert sorted(selector.select_participants(8, 600.0, np.array([1, 4, 7, 9]))) == [1, 4, 7, 9]
    assert selector.select_participants(5, 700.0, np.array([], dtype=np.int64)) == []


def test_collected_rows_can_be_saved(tmp_path) -> None:
    selector = make(20, collect_data=True, bliss_min_train=5, amount_clients_predict_train_set=10,
                    amount_clients_refresh_train_set=10)
    rewards = np.arange(20.0)
    for r in range(1, 6):
        play(selector, 5, np.arange(20), rewards, r)
    rows = selector.training_data()
    assert len(rows["round"]) == 25 and sorted(set(rows["round"].tolist())) == [1, 2, 3, 4, 5]
    assert rows["target"] == pytest.approx(rewards[rows["client"]])
    assert np.isfinite(rows["g_features"]).all() and np.isfinite(rows["prediction"]).all()
    np.savez(tmp_path / "rows.npz", **rows)
    with np.load(tmp_path / "rows.npz") as saved:
        assert np.array_equal(saved["client"], rows["client"])
    assert make(3).training_data() is None


def test_registration_details_and_misuse() -> None:
    selector = BlissSelector(BlissConfig(), 0)
    static = {"brand": [None], "ram_gb": [float("nan")], "os_version": ["Android 7.0"], "model": ["x"]}
    selector.register_clients(np.array([4]), np.array([10]), np.array([5.0]), static=static)
    assert selector.details() == {}
    with pytest.raises(RuntimeError, match="window_source"):
        selector.select_participants(1, 0.0, np.array([4]))
    selector.register_clients(np.array([4]), np.array([10]), np.array([5.0]), static=static,
                              window_source=random_windows)
    assert selector.select_participants(1, 0.0, np.array([4])) == [4]
    json.dumps(selector.details())
    with pytest.raises(ValueError, match="not registered"):
        feed(selector, 3, 1.0, 1, 1.0, True)
    with pytest.raises(ValueError, match="round_index"):
        feed(selector, 4, 1.0, 2, 1.0, True)
    feed(selector, 4, 1.0, 1, 1.0, True)
    selector.register_clients(np.array([4]), np.array([3]), np.array([1.0]))
    assert selector.seen[4] == 0 and selector.utility[4] == 0


def test_window_source_must_answer_one_row_per_client() -> None:
    selector = make(3)
    selector.register_clients(np.arange(3), np.full(3, 10), np.ones(3),
                              window_source=lambda ids, t: np.zeros((len(ids) + 1, 5, 3)))
    with pytest.raises(ValueError, match="window_source returned"):
        selector.select_participants(1, 0.0, np.arange(3))


def test_a_million_clients_register_and_select_fast() -> None:
    """The selector's own work at scale; linear g and h, since an xgboost fit alone takes longer
    than the bound (its cost is measured by benchmark/perf/fleet_scale.py)."""
    n = 1_000_000
    rng = np.random.default_rng(0)

    def categorical(vocab: list[str]) -> types.SimpleNamespace:
        return types.SimpleNamespace(codes=rng.integers(-1, len(vocab), n).astype(np.int32), vocab=np.array(vocab))

    static = {"brand": categorical(list(BRANDS)), "model": categorical([f"m{k}" for k in range(300)]),
              "os_version": categorical(["4.4.2", "5.1.1", "6.0.1", "7.0"]), "ram_gb": rng.choice([1.0, 2.0, 3.0], n),
              "cpu_flops": rng.uniform(4e9, 6e10, n)}
    selector = BlissSelector(BlissConfig(g_model="linreg", h_model="linreg"), 0)
    start = time.perf_counter()
    selector.register_clients(np.arange(n), np.full(n, 10), np.ones(n), static=static,
                              window_source=lambda ids, t: np.random.default_rng(len(ids)).random((len(ids), 5, 3)))
    assert time.perf_counter() - start < 3.0
    timings = []
    for r in range(1, 7):
        online = np.sort(rng.choice(n, 200_000, replace=False))
        start = time.perf_counter()
        picks = selector.select_participants(130, 600.0 * r, online)
        timings.append(time.perf_counter() - start)
        for client in picks:
            feed(selector, client, float(rng.random() * 100), r, 100.0, True)
    assert selector.details()["g_fitted"] and selector.details()["h_fitted"]
    assert max(timings) < 1.0 and float(np.median(timings)) < 0.25
