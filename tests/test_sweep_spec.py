"""A sweep's three spec forms, its names and its checks, and the comparison's verdicts."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fedscale.cloud.config_parser import DEFAULT_JOB, ConfigError, load_job
from fedscale.sweep import compare
from fedscale.sweep.spec import from_flags, from_grid, from_toml, load_sweep
from fedscale.sweep.strategies import attack_settings, strategy_settings

TOML = """
[shared]
rounds = 3
executors = 1

[[runs]]
name = "FedAvg"
strategy = "FedAvg"

[[runs]]
name = "FedAvg_sign_flip"
strategy = "FedAvg"
  [[runs.attacks]]
  type = "sign_flip"
  fraction = 0.2

[[runs]]
name = "Krum"
strategy = "Krum"

[[runs]]
name = "Krum_sign_flip"
strategy = "Krum"
  [[runs.attacks]]
  type = "sign_flip"
  fraction = 0.2
"""

GRID = """
shared:
  rounds: 3
  executors: 1
grid:
  - group: FedAvg
    params: {strategy: FedAvg}
  - group: FedAvg_sign_flip
    params: {strategy: FedAvg, attack: sign_flip, byzantine_fraction: 0.2}
  - group: Krum
    params: {strategy: Krum}
  - group: Krum_sign_flip
    params: {strategy: Krum, attack: sign_flip, byzantine_fraction: 0.2}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_three_forms_give_identical_runs(tmp_path):
    toml = from_toml(write(tmp_path, "s.toml", TOML)).runs
    grid = from_grid(write(tmp_path, "g.yaml", GRID)).runs
    flags = from_flags(["FedAvg", "Krum"], ["sign_flip"], rounds=3).runs
    assert toml == grid == flags
    assert [r.run_id for r in flags] == ["0_FedAvg", "1_FedAvg_sign_flip", "2_Krum", "3_Krum_sign_flip"]
    krum = flags[3]
    assert krum.job_conf["aggregator"] == "Krum" and krum.job_conf["attack"] == "sign_flip"
    assert krum.job_conf["byzantine_fraction"] == 0.2 and krum.attack == "sign_flip"


def test_run_i_gets_seed_plus_i_and_seeds_k_pairs_every_cell(tmp_path):
    runs = from_flags(["FedAvg", "FedMedian"], rounds=2, seed=10).runs
    assert [r.seed for r in runs] == [10, 11]
    runs = from_flags(["FedAvg", "FedMedian"], rounds=2, seed=10, seeds=3).runs
    assert [(r.run_id, r.seed) for r in runs] == [
        ("0_FedAvg_s10", 10), ("0_FedAvg_s11", 11), ("0_FedAvg_s12", 12),
        ("1_FedMedian_s10", 10), ("1_FedMedian_s11", 11), ("1_FedMedian_s12", 12)]
    assert all(r.job_conf["seed"] == r.seed for r in runs)
    # the base job's seed is the default first seed
    assert from_flags(["FedAvg"]).runs[0].seed == load_job(str(DEFAULT_JOB)).conf.training.seed


def test_grid_expands_lists_as_a_cartesian_product(tmp_path):
    path = write(tmp_path, "g.yaml", """
        shared: {rounds: 2, iso_time: 600}
        grid:
          - group: sel
            params:
              sample_mode: [random, oort]
              aggregator: [mean, krum]
              local_steps: 3
    """)
    sweep = from_grid(path)
    assert [r.run_id for r in sweep.runs] == ["0_sel_random_mean", "1_sel_random_krum", "2_sel_oort_mean",
                                              "3_sel_oort_krum"]
    first = sweep.runs[0]
    assert first.job_conf["max_virtual_time"] == 600 and first.job_conf["local_steps"] == 3
    job = first.job(tmp_path / "run")
    assert job.conf.training.max_virtual_time == 600 and job.conf.selection.sample_mode == "random"
    assert job.ps_port == 0 and job.exp_path == str(tmp_path / "run")


def test_strategy_names_map_to_server_algorithms_or_aggregation_specs():
    assert strategy_settings("FedYogi") == {"gradient_policy": "fed-yogi", "aggregator": "mean"}
    assert strategy_settings("fed-prox") == {"gradient_policy": "fed-prox", "aggregator": "mean"}
    assert strategy_settings("FedAvg") == {"gradient_policy": "fed-avg", "aggregator": "mean"}
    assert strategy_settings("nnm+trimmed_mean") == {"gradient_policy": "fed-avg", "aggregator": "nnm+trimmed_mean"}
    assert strategy_settings("MultiKrum")["aggregator"] == "MultiKrum"


def test_intensity_sets_each_attacks_declared_strength():
    assert attack_settings({"type": "gaussian_noise", "intensity": 3, "fraction": 0.1}) == {
        "attack": "gaussian_noise(sigma=3)", "byzantine_fraction": 0.1}
    assert attack_settings({"type": "alie", "intensity": 1.5}) == {"attack": "little(z=1.5)"}
    assert attack_settings({"type": "ipm", "intensity": 4})["attack"] == "empire(epsilon=4)"
    assert attack_settings({"type": "model_poisoning", "intensity": 8})["attack"] == "model_poisoning(intensity=8)"
    assert attack_settings({"type": "gaussian_noise", "mu": 1})["attack"] == "gaussian_noise(mu=1)"


@pytest.mark.parametrize("runs, expected", [
    ('strategy = "FedAvgX"', ["run bad", "strategy 'FedAvgX'", "FedYogi", "krum"]),
    ('strategy = "FedAvg"\n[[runs.attacks]]\ntype = "sign_flop"', ["run bad", "'sign_flop'", "sign_flip", "empire"]),
    ('strategy = "FedAvg"\n[[runs.attacks]]\ntype = "sign_flip"\nintensity = 2',
     ["run bad", "no strength", "gaussian_noise"]),
    ('strategy = "FedAvg"\nlearning_rat = 0.1', ["run bad", "learning_rat", "did you mean 'learning_rate'"]),
    ('strategy = "FedAvg"\nlearning_rate = -1', ["run 0_bad", "job_conf.learning_rate"]),
    ('strategy = "FedAvg"\njob_name = "x"', ["run bad", "set by the sweep"]),
    ('strategy = "FedAvg"\nwandb_token = "k"', ["run bad", "'wandb_token' is a credential"]),
])
def test_a_bad_name_fails_before_anything_starts_naming_file_run_and_choices(tmp_path, runs, expected):
    path = write(tmp_path, "bad.toml", f'[shared]\nrounds = 2\n\n[[runs]]\nname = "bad"\n{runs}\n')
    with pytest.raises(ConfigError) as err:
        load_sweep(str(path))
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path))
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize("shared, expected", [
    ("seeds = 0", "seeds: expected a whole number >= 1"),
    ("wall_budget = -3", "wall_budget: expected a finite number > 0"),
    ('target_metric = "acc"\ntarget_value = 0.9', "target_metric: expected one of test_accuracy, test_loss"),
    ("target_value = 0.9", "give target_metric and target_value together"),
    ('base = "missing.yml"', "missing.yml"),
])
def test_bad_sweep_keys_are_one_line_errors(tmp_path, shared, expected):
    path = write(tmp_path, "s.toml", f'[shared]\n{shared}\n\n[[runs]]\nname = "a"\nstrategy = "FedAvg"\n')
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[")):
        load_sweep(str(path))


def _cell(group: str, values: list[float], strategy: str = "s", attack: str = "none",
          diverged: int = 0) -> dict:
    """A cell whose i-th value is the final accuracy of its run with seed i."""
    stat = compare.mean_interval(values)
    return {"group": group, "strategy": strategy, "selector": "random", "attack": attack, "completed": len(values),
            "not_completed": [{"run_id": f"{group}{i}", "status": "diverged", "reason": ""} for i in range(diverged)],
            "metrics": {"final_accuracy": stat}, "by_seed": {"final_accuracy": {str(i): v for i, v in enumerate(values)}}}


def unpaired(cell: dict) -> dict:
    return {**cell, "by_seed": {}}


def test_a_winner_is_declared_only_where_it_is_significantly_ahead():
    separated = [_cell("a", [0.90, 0.91, 0.92]), _cell("b", [0.80, 0.81, 0.82]), _cell("c", [0.5, 0.52, 0.51])]
    assert compare.verdict([unpaired(c) for c in separated], "final_accuracy") == {
        "verdict": "winner", "cells": ["a"],
        "text": "a, significantly ahead of the runner-up b (intervals separate, 95%)"}
    # seed noise hides the difference between the intervals; pairing by seed reveals it
    noisy = [_cell("a", [0.90, 0.70, 0.80]), _cell("b", [0.88, 0.68, 0.79])]
    assert compare.verdict([unpaired(c) for c in noisy], "final_accuracy")["verdict"] == "tie"
    assert compare.verdict(noisy, "final_accuracy") == {
        "verdict": "winner", "cells": ["a"], "text": "a, significantly ahead of the runner-up b (paired by seed, 95%)"}
    overlapping = [_cell("a", [0.90, 0.80, 0.85]), _cell("b", [0.83, 0.85, 0.84]), _cell("c", [0.1, 0.11, 0.12])]
    result = compare.verdict([unpaired(c) for c in overlapping], "final_accuracy")
    assert result["verdict"] == "tie" and result["cells"] == ["a", "b"]
    assert "no significant difference between a (best mean) and b" in result["text"]
    single = [_cell("a", [0.9]), _cell("b", [0.8])]
    assert compare.verdict(single, "final_accuracy")["verdict"] == "single_seed"


def test_the_interval_is_students_t():
    stat = compare.mean_interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, t(0.975, 2) = 4.3027
    assert stat["mean"] == 2.0 and stat["n"] == 3
    assert stat["high"] - 2.0 == pytest.approx(4.302653 / 3 ** 0.5, rel=1e-5)


def test_robustness_pairs_drops_by_seed_and_claims_only_a_separated_worst_drop():
    cells = [_cell("avg", [0.90, 0.80, 0.85], "FedAvg"), _cell("avg_inf", [], "FedAvg", "inf", diverged=3),
             _cell("avg_noise", [0.50, 0.40, 0.45], "FedAvg", "noise"),
             _cell("krum", [0.80, 0.70, 0.75], "Krum"), _cell("krum_noise", [0.70, 0.61, 0.64], "Krum", "noise"),
             _cell("krum_inf", [0.75, 0.66, 0.70], "Krum", "inf"),
             _cell("med", [0.60, 0.70, 0.65], "Median"), _cell("med_noise", [0.40, 0.45, 0.42], "Median", "noise")]
    rob = compare.robustness(cells)
    rows = {r["strategy"]: r for r in rob["per_strategy"]}
    assert rows["FedAvg"]["diverged"] == ["inf"] and rows["FedAvg"]["worst_drop"] is None
    krum = rows["Krum"]["drops"]["noise"]
    # paired by seed: drops 0.10, 0.09, 0.11, so a narrow interval around 0.10
    assert krum["paired"] and krum["mean"] == pytest.approx(0.10) and krum["high"] - krum["low"] < 0.06
    assert rows["Krum"]["worst_drop"] is krum
    assert rows["Median"]["worst_drop"]["mean"] == pytest.approx((0.20 + 0.25 + 0.23) / 3)
    assert rob["most_robust"] == "Krum" and rob["verdict"]["verdict"] == "winner"
    noisy = [_cell("a", [0.9, 0.5, 0.7], "A"), _cell("a_x", [0.8, 0.5, 0.5], "A", "x"),
             _cell("b", [0.9, 0.5, 0.7], "B"), _cell("b_x", [0.85, 0.3, 0.6], "B", "x")]
    tie = compare.robustness(noisy)
    assert tie["most_robust"] is None and tie["verdict"]["verdict"] == "tie"
