"""PyramidFL selector: Oort's picks, then dropout by rank and extra steps in idle time (Li et al., MobiCom 2022)."""
from __future__ import annotations

import numpy as np
import pytest

from fedscale.selection.base import Feedback
from fedscale.selection.config import build_config
from thirdparty.oort.oort import OortConfig, OortSelector
from thirdparty.pyramidfl.pyramidfl import PyramidFLConfig, PyramidFLSelector


def feed(selector, client, reward, round_index, duration, success, **extras) -> None:
    """One client's outcome as a one-client feedback batch."""
    selector.register_feedback(Feedback(round_index=round_index, client_ids=client, rewards=reward,
                                        durations=duration, success=success, **extras))


def make(num_samples, seed: int = 0, **knobs) -> PyramidFLSelector:
    selector = PyramidFLSelector(PyramidFLConfig(**knobs), seed)
    selector.register_clients(np.arange(len(num_samples)), np.asarray(num_samples), np.full(len(num_samples), 10.0))
    return selector


def ran(selector: PyramidFLSelector, norms: dict[int, float]) -> None:
    for client, norm in norms.items():
        feed(selector, client, 1.0, 1, 30.0, True, gradient_norm=norm)


def round_times(t_comp, t_comm, steps, dropout, base_steps: int) -> np.ndarray:
    return np.asarray(t_comp) * np.asarray(steps) / base_steps + (1 - np.asarray(dropout)) * np.asarray(t_comm)


# Client 0 never ran and holds 1000 samples, so it ranks first by its data size (the artifact's
# prior); clients 1, 2, 3 ran with update norms 5, 3, 1. With dropout 0.1..0.4 over K = 4 ranks:
# P = 0.1, 0.2, 0.3, 0.4. t' = [5 + 0.9 * 5, 10 + 0.8 * 20, 4 + 0.7 * 10, 20 + 0.6 * 10]
# = [9.5, 26, 11, 26], T_r = 26. Client 0's iteration costs 5 / 10 = 0.5 s: its 16.5 idle seconds
# fit 33 more; client 2's costs 4 / 10 = 0.4 s: its 15 idle seconds fit floor(37.5) = 37 more.
# With one-sample batches no epoch cap binds (client 2: 5 epochs of 10 samples = 50 steps).
T_COMP, T_COMM = np.array([5.0, 10.0, 4.0, 20.0]), np.array([5.0, 20.0, 10.0, 10.0])
SIZES = [1000, 10, 10, 10]


@pytest.mark.parametrize("knobs, steps", [
    ({}, [43, 10, 47, 10]),
    ({"adaptive_epoch_beta": 0.5}, [26, 10, 28, 10]),
    ({"max_extra_factor": 2.0}, [30, 10, 30, 10]),
])
def test_overrides_on_hand_computed_round(knobs: dict, steps: list[int]) -> None:
    selector = make(SIZES, dropout_low=0.1, dropout_high=0.4, **knobs)
    ran(selector, {1: 5.0, 2: 3.0, 3: 1.0})
    local_steps, dropout, _ = selector.client_overrides(np.arange(4), T_COMP, T_COMM, 10, 1)
    assert local_steps.tolist() == steps and local_steps.dtype.kind == "i"
    assert dropout == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert round_times(T_COMP, T_COMM, local_steps, dropout, 10).max() == pytest.approx(26.0)


@pytest.mark.parametrize("knobs, batch_size, steps", [
    ({}, 2, [43, 10, 25, 10]),                      # client 2: 5 epochs of 5 batches
    ({}, 16, [43, 10, 10, 10]),                     # 5 epochs of 1 batch < I = 10: the cap is I
    ({"max_local_epochs": 3}, 1, [43, 10, 30, 10]),
    ({"max_local_epochs": 3}, 200, [15, 10, 10, 10]),  # client 0: ceil(1000 / 200) = 5 steps an epoch
])
def test_steps_are_capped_at_local_epochs_of_the_clients_data(knobs: dict, batch_size: int, steps: list[int]) -> None:
    selector = make(SIZES, dropout_low=0.1, dropout_high=0.4, **knobs)
    ran(selector, {1: 5.0, 2: 3.0, 3: 1.0})
    assert selector.client_overrides(np.arange(4), T_COMP, T_COMM, 10, batch_size)[0].tolist() == steps


def test_fixed_time_counts_toward_the_round_but_is_not_filled() -> None:
    # A 6 s download on client 2 makes its t' = 6 + 4 + 7 = 17: 9 idle seconds fit 22 more steps;
    # on client 1 it makes t' = 32 the new T_r: client 0 gets 22.5 idle s (45 steps), client 2
    # 21 s (52, capped at its 5 epochs: 50 steps in all), client 3 6 s (3).
    selector = make(SIZES, dropout_low=0.1, dropout_high=0.4)
    ran(selector, {1: 5.0, 2: 3.0, 3: 1.0})
    steps = selector.client_overrides(np.arange(4), T_COMP, T_COMM, 10, 1,
                                      t_fixed=np.array([0.0, 0.0, 6.0, 0.0])).local_steps
    assert steps.tolist() == [43, 10, 32, 10]
    steps = selector.client_overrides(np.arange(4), T_COMP, T_COMM, 10, 1,
                                      t_fixed=np.array([0.0, 6.0, 0.0, 0.0])).local_steps
    assert steps.tolist() == [10 + 45, 10, 50, 10 + 3]


def test_overrides_follow_the_client_not_its_position() -> None:
    selector = make(SIZES, dropout_low=0.1, dropout_high=0.4)
    ran(selector, {1: 5.0, 2: 3.0, 3: 1.0})
    order = np.array([3, 2, 0, 1])
    local_steps, dropout, _ = selector.client_overrides(order, T_COMP[order], T_COMM[order], 10, 1)
    assert local_steps.tolist() == [10, 47, 43, 10]
    assert dropout == pytest.approx([0.4, 0.3, 0.1, 0.2])


def test_dropout_spans_low_to_high_by_update_norm() -> None:
    selector = make([10] * 6)
    ran(selector, {c: float(6 - c) for c in range(6)})
    dropout = selector.client_overrides(np.arange(6), np.ones(6), np.ones(6), 5, 16).dropout
    assert dropout == pytest.approx(np.linspace(0.1, 0.6, 6))
    alone = selector.client_overrides(np.array([4]), np.ones(1), np.ones(1), 5, 16).dropout
    assert alone == pytest.approx([0.1])


def test_clients_that_never_ran_rank_by_data_size_and_fill_idle_time() -> None:
    # Ranks by size 400, 50, 20: P = 0, 0.25, 0.5. t' = [1 + 0.75 * 4, 2 + 4, 8 + 0.5 * 4] = [4, 6, 10];
    # iterations cost 1/16 and 2/16 s: 6 and 4 idle seconds fit 96 and 32 more.
    selector = make([50, 400, 20], dropout_low=0.0, dropout_high=0.5)
    local_steps, dropout, _ = selector.client_overrides(np.arange(3), np.array([1.0, 2.0, 8.0]), np.full(3, 4.0), 16, 1)
    assert local_steps.tolist() == [112, 48, 16] and dropout.tolist() == [0.25, 0.0, 0.5]


@pytest.mark.parametrize("mode", ["topk", "layer_random"])
def test_overrides_carry_the_dropout_mode(mode: str) -> None:
    selector = make(SIZES, pyramidfl_dropout=mode)
    assert selector.client_overrides(np.arange(4), T_COMP, T_COMM, 10, 1).dropout_mode == mode
    assert selector.client_overrides(np.arange(0), np.ones(0), np.ones(0), 10, 1).dropout_mode == mode


@pytest.mark.parametrize("beta", [1.0, 0.999, 0.5, 0.0])
def test_extra_steps_never_lengthen_the_round(beta: float) -> None:
    rng = np.random.default_rng(int(beta * 1000))
    for trial in range(50):
        k = int(rng.integers(1, 40))
        selector = make(rng.integers(1, 500, k), adaptive_epoch_beta=beta)
        ran(selector, {c: float(rng.gamma(2.0)) for c in range(k) if rng.random() < 0.7})
        t_comp, t_comm = rng.lognormal(2.0, 1.0, k), rng.lognormal(2.0, 1.0, k)
        base = int(rng.integers(1, 30))
        local_steps, dropout, _ = selector.client_overrides(np.arange(k), t_comp, t_comm, base,
                                                         int(rng.integers(1, 64)))
        assert np.all(local_steps >= base) and np.all(local_steps <= base + 10 * base)
        with_dropout = t_comp + (1 - dropout) * t_comm
        after = round_times(t_comp, t_comm, local_steps, dropout, base)
        assert after.max() <= with_dropout.max() * (1 + 1e-12)
        assert after.max() <= (t_comp + t_comm).max() * (1 + 1e-12)


def test_gradient_norm_feedback_reranks_clients() -> None:
    selector = make([10, 10])
    ran(selector, {0: 1.0, 1: 2.0})
    assert selector.client_overrides(np.arange(2), np.ones(2), np.ones(2), 5, 16)[1] == pytest.approx([0.6, 0.1])
    feed(selector, 0, 1.0, 2, 30.0, True, gradient_norm=9.0)
    feed(selector, 1, 1.0, 2, 30.0, False)
    assert selector.client_overrides(np.arange(2), np.ones(2), np.ones(2), 5, 16)[1] == pytest.approx([0.1, 0.6])


def test_selection_is_oorts() -> None:
    knobs = {name: getattr(PyramidFLConfig(), name) for name in OortConfig.model_fields}
    oort, pyramid = OortSelector(OortConfig(**knobs), 5), PyramidFLSelector(PyramidFLConfig(), 5)
    rng = np.random.default_rng(9)
    durations, samples = rng.lognormal(3.0, 1.0, 400), rng.integers(1, 100, 400)
    for selector in (oort, pyramid):
        selector.register_clients(np.arange(400), samples, durations)
    for r in range(1, 8):
        online = np.flatnonzero(rng.random(400) < 0.6)
        picks = oort.select_participants(30, 0.0, online)
        assert pyramid.select_participants(30, 0.0, online) == picks
        for client in picks:
            for selector in (oort, pyramid):
                feed(selector, client, float(client % 11), r, float(durations[client]), True,
                                           gradient_norm=float(client % 5))


def test_defaults_are_the_released_runs() -> None:
    config = PyramidFLConfig()
    assert (config.dropout_low, config.dropout_high, config.adaptive_epoch_beta, config.max_extra_factor,
            config.max_local_epochs, config.pyramidfl_dropout) == (0.1, 0.6, 1.0, 10.0, 5, "topk")
    assert config.exploration_factor == OortConfig().exploration_factor
    with pytest.raises(TypeError):
        PyramidFLSelector(OortConfig(), 0)


@pytest.mark.parametrize("field, knobs", [
    ("dropout_low", {"dropout_low": -0.1}), ("dropout_high", {"dropout_high": 1.0}),
    ("dropout_low", {"dropout_low": 0.5, "dropout_high": 0.4}), ("adaptive_epoch_beta", {"adaptive_epoch_beta": 1.5}),
    ("max_extra_factor", {"max_extra_factor": float("inf")}), ("pacer_step", {"pacer_step": 0}),
    ("max_local_epochs", {"max_local_epochs": 0}), ("pyramidfl_dropout", {"pyramidfl_dropout": "random"}),
])
def test_bad_config_values_name_the_field(field: str, knobs: dict) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        build_config(PyramidFLConfig, knobs)


def test_overrides_reject_bad_inputs() -> None:
    selector = make([10, 10])
    with pytest.raises(ValueError, match="not registered"):
        selector.client_overrides(np.array([0, 5]), np.ones(2), np.ones(2), 5, 16)
    with pytest.raises(ValueError, match="shape"):
        selector.client_overrides(np.arange(2), np.ones(3), np.ones(2), 5, 16)
    with pytest.raises(ValueError, match="base_steps"):
        selector.client_overrides(np.arange(2), np.ones(2), np.ones(2), 0, 16)
    with pytest.raises(ValueError, match="batch_size"):
        selector.client_overrides(np.arange(2), np.ones(2), np.ones(2), 5, 0)
    steps, dropout, _ = selector.client_overrides(np.array([], dtype=np.int64), np.ones(0), np.ones(0), 5, 16)
    assert steps.size == dropout.size == 0


def test_oorts_rules_default_to_the_artifact_pyramidfl_was_built_on() -> None:
    assert build_config(PyramidFLConfig, {}).oort_variant == "artifact"
    assert build_config(PyramidFLConfig, {}).clip_bound == build_config(OortConfig, {"oort_variant": "artifact"}).clip_bound
    assert build_config(PyramidFLConfig, {"oort_variant": "paper"}).oort_variant == "paper"
    assert build_config(OortConfig, {}).oort_variant == "fedscale"
