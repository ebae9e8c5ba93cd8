"""The selector extension point: configs agree with the job keys, shared keys are declared once,
rules between keys name their key, declared needs are honoured, and a selector added with one
registry line (the README's example) runs through ClientManager."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Literal, get_args, get_origin

import numpy as np
import pytest

from fedscale.cloud.client_manager import ClientManager, make_selector
from fedscale.cloud.config_parser import KEYS, JobConf
from fedscale.cloud.internal.trace_formats import fleet_from_json
from fedscale.selection import registry
from fedscale.selection.base import Feedback, Needs, Selector
from fedscale.selection.config import SelectorConfig
from fedscale.selection.random import RandomSelector
from tests.jobs import manager_settings

README = Path(__file__).resolve().parents[1] / "README.md"
CONFIGS = {name: registry.selector_class(name).Config for name in registry.SELECTORS}


def bounds(field) -> dict[str, float]:
    return {name: getattr(rule, name) for rule in field.metadata for name in ("ge", "gt", "le", "lt")
            if hasattr(rule, name)}


@pytest.mark.parametrize("name", registry.SELECTORS)
def test_config_fields_are_the_job_keys(name: str) -> None:
    for key, field in CONFIGS[name].model_fields.items():
        spec = KEYS[key]
        assert (field.default, field.description) == (spec.default, spec.help), key
        limits = {rule: getattr(spec, rule) for rule in ("ge", "gt", "le", "lt") if getattr(spec, rule) is not None}
        assert bounds(field) == limits, key
        annotation = field.annotation
        if field.default is None:
            annotation, = (arg for arg in get_args(annotation) if arg is not type(None))
        if get_origin(annotation) is Literal:
            assert get_args(annotation) == spec.choices, key
        else:
            assert (annotation, spec.choices) == (spec.type, None), key


def test_a_shared_key_is_declared_once() -> None:
    declared = defaultdict(set)
    for config in CONFIGS.values():
        for klass in config.__mro__:
            for key in vars(klass).get("__annotations__", {}):
                if key in config.model_fields:
                    declared[key].add(klass.__qualname__)
    assert {key: owners for key, owners in declared.items() if len(owners) > 1} == {}
    shared = {"exploration_factor", "exploration_decay", "exploration_min", "cut_off_util", "round_penalty",
              "pacer_step"}
    assert shared <= set(CONFIGS["oort"].model_fields) & set(CONFIGS["bliss"].model_fields)


def test_sample_modes_come_from_the_registry() -> None:
    assert registry.SAMPLE_MODES == tuple(registry.SELECTORS) == KEYS["sample_mode"].choices
    with pytest.raises(ValueError, match=r"^sample_mode: expected one of 'random'"):
        registry.build_selector("fastest", {}, 0)


@pytest.mark.parametrize("mode, values, key", [
    ("oort", {"exploration_factor": 0.5, "exploration_min": 0.6}, "exploration_min"),
    ("pyramidfl", {"exploration_factor": 0.5, "exploration_min": 0.6}, "exploration_min"),
    ("bliss", {"exploration_factor": 0.5, "exploration_min": 0.6}, "exploration_min"),
    ("pyramidfl", {"dropout_low": 0.5, "dropout_high": 0.4}, "dropout_low"),
    ("bliss", {"bliss_min_train": 50, "amount_clients_predict_train_set": 40}, "amount_clients_predict_train_set"),
    ("bliss", {"bliss_min_train": 50, "amount_clients_refresh_train_set": 40}, "amount_clients_refresh_train_set"),
    ("oort", {"blacklist_rounds": 0}, "blacklist_rounds"),
    ("pyramidfl", {"blacklist_rounds": -3}, "blacklist_rounds"),
    ("oort", {"round_threshold": 150.0}, "round_threshold"),
])
def test_rules_between_keys_name_the_key_first(mode: str, values: dict, key: str) -> None:
    with pytest.raises(ValueError, match=rf"^{key}: expected [^\n]*, got [^\n]*$"):
        registry.build_selector(mode, values, 0)


def test_build_selector_reads_only_its_keys_and_reports_a_bad_one_on_one_line() -> None:
    selector = registry.build_selector("oort", {"pacer_step": 3, "learning_rate": 0.1, "t_mode": "absolute",
                                                "round_threshold": 150.0}, 7)
    assert (selector.config.pacer_step, selector.config.round_threshold) == (3, 150.0)
    assert registry.build_selector("random", JobConf().to_dict(), 0).config == SelectorConfig()
    with pytest.raises(ValueError, match=r"^clip_bound: input should be greater than 0, got 0\.0$"):
        registry.build_selector("pyramidfl", {"clip_bound": 0.0}, 0)
    with pytest.raises(TypeError, match="needs a BlissConfig"):
        registry.selector_class("bliss")(SelectorConfig(), 0)


def test_a_declared_need_must_be_implemented() -> None:
    with pytest.raises(TypeError, match="declares needs.time_budget"):
        type("NoBudget", (RandomSelector,), {"needs": Needs(time_budget=True)})
    with pytest.raises(TypeError, match="declares needs.client_overrides"):
        type("NoOverrides", (RandomSelector,), {"needs": Needs(client_overrides=True)})


def test_feedback_is_checked() -> None:
    one = Feedback(round_index=2, client_ids=5, rewards=1.0, durations=3.0, success=True)
    assert one.client_ids.tolist() == [5] and np.isnan(one.gradient_norm).all()
    with pytest.raises(ValueError, match="differ in shape"):
        Feedback(round_index=1, client_ids=[1, 2], rewards=[1.0], durations=[1.0, 1.0], success=[True, True])
    with pytest.raises(ValueError, match="distinct"):
        Feedback(round_index=1, client_ids=[1, 1], rewards=[1.0, 1.0], durations=[1.0, 1.0], success=[True, True])
    with pytest.raises(ValueError, match="round_index"):
        Feedback(round_index=0, client_ids=[1], rewards=[1.0], durations=[1.0], success=[True])
    with pytest.raises(ValueError, match="integer client ids"):
        Feedback(round_index=1, client_ids=[1.5], rewards=[1.0], durations=[1.0], success=[True])


def readme_selector() -> str:
    """The README's example selector file."""
    section = README.read_text().split("### Adding a selector", 1)[1]
    return re.findall(r"```python\n(.*?)```", section, re.S)[0]


def fleet(tmp_path: Path, speeds: list[float]):
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps([{"id": i + 1, "computation": ms, "communication": 8_000.0}
                                for i, ms in enumerate(speeds)]))
    return fleet_from_json(path)


def test_a_selector_added_with_one_line_runs_through_the_client_manager(tmp_path, monkeypatch) -> None:
    (tmp_path / "fastest_example.py").write_text(readme_selector())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.SELECTORS, "fastest", "fastest_example:FastestFirstSelector")
    selector = registry.build_selector("fastest", {"seed": 1}, 1)
    speeds = [50.0, 10.0, 40.0, 20.0, 30.0, 60.0, 70.0, 80.0]
    conf = JobConf({"num_participants": 2, "overcommitment": 1.5, "local_steps": 5, "batch_size": 10})
    manager = ClientManager(np.full(8, 20), fleet(tmp_path, speeds), 1_000_000, selector, **manager_settings(conf))
    plan = manager.plan_round(1, 0.0)
    assert plan.participants.tolist() == [1, 3] and plan.stragglers.tolist() == [4]
    manager.finish_round(plan, {1: SimpleNamespace(utility=1.0, update_norm=1.0, local_steps=5, num_samples=20)})
    assert selector.duration[1] == pytest.approx(plan.totals[0]) and np.isfinite(selector.duration[4])


def test_time_budget_and_failures_follow_the_declarations(tmp_path) -> None:
    job = JobConf({"sample_mode": "bliss", "t_budget": 90.0, "num_participants": 2, "local_steps": 5,
                   "batch_size": 10})
    manager = ClientManager(np.full(6, 20), fleet(tmp_path, [10.0] * 6), 1_000_000, make_selector(job),
                            **manager_settings(job))
    assert manager.t_budget == 90.0 == manager.selector.time_budget
    plan = manager.settle_adaptive_round(manager.plan_adaptive_round(1, 0.0), {})
    manager.finish_round(plan, {})
    assert len(plan.offline) == 3 and (manager.selector.feedback_round[plan.offline] == 1).all()
    random_job = job.replace(sample_mode="random", t_budget=80.0)
    assert make_selector(random_job).time_budget is None
    assert ClientManager(np.full(6, 20), fleet(tmp_path, [10.0] * 6), 1_000_000, make_selector(random_job),
                         **manager_settings(random_job)).t_budget == 80.0


def test_the_base_class_refuses_work_it_was_not_declared_for() -> None:
    with pytest.raises(NotImplementedError):
        RandomSelector(SelectorConfig(), 0).client_overrides(np.arange(1), np.ones(1), np.ones(1), 5, 16)
    assert isinstance(RandomSelector(SelectorConfig(), 0), Selector)
