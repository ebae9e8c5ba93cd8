"""Oort selector: the paper's rules (Lai et al., OSDI 2021, §4) on small fleets, and its cost at a million clients."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

import pydantic

from fedscale.selection.base import Feedback
from fedscale.selection.config import build_config
from thirdparty.oort.oort import OortConfig, OortSelector


def feed(selector, client, reward, round_index, duration, success, **extras) -> None:
    """One client's outcome as a one-client feedback batch."""
    selector.register_feedback(Feedback(round_index=round_index, client_ids=client, rewards=reward,
                                        durations=duration, success=success, **extras))


def make(durations, samples=None, seed: int = 0, **knobs) -> OortSelector:
    """A selector over clients 0..n-1 with the given profiled durations; the paper variant unless told."""
    durations = np.asarray(durations, dtype=np.float64)
    selector = OortSelector(OortConfig(**{"oort_variant": "paper", **knobs}), seed)
    counts = np.full(len(durations), 10) if samples is None else np.asarray(samples)
    selector.register_clients(np.arange(len(durations)), counts, durations)
    return selector


def explore_all(selector: OortSelector, rewards, durations=None, time_stamp: int = 1) -> None:
    """Feedback that makes clients 0..len(rewards)-1 explored with these rewards."""
    for client, reward in enumerate(rewards):
        duration = selector.profiled_duration[client] if durations is None else durations[client]
        feed(selector, client, float(reward), time_stamp, float(duration), True)


@pytest.mark.parametrize("variant, decay, floor, cut_off, clip, pacer_mode, t_mode, threshold", [
    ("fedscale", 0.98, 0.3, 0.05, 0.9, "fedscale", "percentile", 30.0),
    ("artifact", 0.95, 0.2, 0.7, 0.98, "fedscale", "percentile", 10.0),
    ("paper", 0.98, 0.2, 0.95, 0.95, "paper", "absolute", 5.0),
])
def test_each_variant_brings_its_references_defaults(variant, decay, floor, cut_off, clip, pacer_mode, t_mode,
                                                     threshold) -> None:
    config = OortConfig(oort_variant=variant)
    assert (config.exploration_factor, config.exploration_decay, config.exploration_min) == (0.9, decay, floor)
    assert (config.round_penalty, config.cut_off_util, config.clip_bound) == (2.0, cut_off, clip)
    assert (config.pacer_mode, config.t_mode, config.round_threshold) == (pacer_mode, t_mode, threshold)
    assert (config.blacklist_rounds, config.blacklist_max_len) == (-1, 0.3)
    assert (config.pacer_step, config.pacer_delta, config.sample_window) == (20, 5.0, 5.0)


def test_fedscale_is_the_default_variant() -> None:
    assert OortConfig() == OortConfig(oort_variant="fedscale")


@pytest.mark.parametrize("variant", ["fedscale", "artifact", "paper"])
def test_keys_set_explicitly_override_the_variants_defaults(variant: str) -> None:
    knobs = dict(exploration_decay=0.9, exploration_min=0.1, cut_off_util=0.5, clip_bound=0.8, pacer_mode="paper",
                 t_mode="percentile", round_threshold=40.0)
    config = build_config(OortConfig, {"oort_variant": variant, **knobs})
    assert {name: getattr(config, name) for name in knobs} == knobs
    assert config.rules == OortConfig(oort_variant=variant).rules
    assert OortConfig(oort_variant=variant, t_mode="absolute", pacer_delta=12.0).round_threshold == 12.0
    assert OortConfig(oort_variant="paper", t_mode="percentile").round_threshold == 30.0


def test_variant_defaults_show_as_unset_in_the_keys_table() -> None:
    from fedscale.cloud.config.job_conf import KEYS, JobConf
    for name in ("exploration_decay", "exploration_min", "cut_off_util", "clip_bound", "pacer_mode", "t_mode",
                 "round_threshold"):
        assert KEYS[name].default is None and "unset" in KEYS[name].help
    assert KEYS["oort_variant"].choices == ("fedscale", "artifact", "paper")
    conf = JobConf({"sample_mode": "oort", "oort_variant": "artifact", "clip_bound": 0.5})
    assert (conf.selector.exploration_decay, conf.selector.clip_bound) == (0.95, 0.5)
    assert not KEYS["exploration_alpha"].active and "no effect" in KEYS["exploration_alpha"].help


@pytest.mark.parametrize("field, value", [
    ("exploration_factor", 1.5), ("exploration_decay", 0.0), ("exploration_min", 0.95),
    ("round_penalty", -1.0), ("cut_off_util", 1.2), ("clip_bound", 0.0), ("blacklist_rounds", 0),
    ("blacklist_rounds", 2.5), ("blacklist_max_len", 1.1), ("pacer_step", 0), ("pacer_delta", -5.0),
    ("pacer_mode", "fast"), ("t_mode", "seconds"), ("round_threshold", 101.0), ("sample_window", 0.5),
    ("round_penalty", float("nan")), ("blacklist_rounds", -2),
])
def test_bad_config_values_name_the_field(field: str, value) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        build_config(OortConfig, {field: value})


def test_absolute_round_threshold_must_be_positive_seconds() -> None:
    OortConfig(t_mode="absolute", round_threshold=250.0)
    with pytest.raises(ValueError, match="round_threshold"):
        OortConfig(t_mode="absolute", round_threshold=0.0)


@pytest.mark.parametrize("window", [5.0, 1.0])
def test_exploration_share_decays_to_floor_and_takes_the_fastest_unexplored(window: float) -> None:
    num, n = 100, 6000
    durations = np.random.default_rng(1).permutation(n) + 1.0
    selector = make(durations, sample_window=window)
    online = np.arange(n)
    shares = []
    for r in range(1, 91):
        before = selector.explored.copy()
        picks = np.array(selector.select_participants(num, 0.0, online))
        details = selector.details()
        epsilon = max(0.9 * 0.98 ** (r - 1), 0.2)
        assert details["epsilon"] == pytest.approx(epsilon)
        explored_now = picks[~before[picks]]
        expected = num if r == 1 else num - math.floor((1 - epsilon) * num + 1e-9)
        assert len(explored_now) == details["num_explored"] == expected
        unexplored = np.flatnonzero(~before)
        fastest = unexplored[np.argsort(durations[unexplored])[:math.ceil(window * expected)]]
        assert set(explored_now) <= set(fastest)
        shares.append(len(explored_now) / num)
        for client in picks:
            feed(selector, int(client), 1.0, r, float(durations[client]), True)
    assert shares[-1] == pytest.approx(0.2) and shares[-10] == pytest.approx(0.2)
    assert selector.details()["explored_total"] == sum(round(s * num) for s in shares[:-1])


def test_unexplored_shortfall_is_filled_by_exploitation_and_vice_versa() -> None:
    selector = make(np.ones(30))
    first = selector.select_participants(10, 0.0, np.arange(30))
    assert selector.details()["num_explored"] == 10
    explore_all(selector, np.ones(30))
    second = selector.select_participants(10, 0.0, np.arange(30))
    assert selector.details()["num_exploited"] == 10 and len(set(first)) == len(set(second)) == 10


def test_system_penalty_applies_only_to_clients_slower_than_T() -> None:
    durations = np.array([5.0, 10.0, 20.0, 40.0])
    selector = make(durations)
    explore_all(selector, [10.0] * 4)
    ids = np.arange(4)
    assert selector.exploitation_utility(ids, 1, 10.0) == pytest.approx([1.0, 1.0, 0.25, 0.0625])
    cubic = make(durations, round_penalty=3.0)
    explore_all(cubic, [10.0] * 4)
    assert cubic.exploitation_utility(ids, 1, 10.0) == pytest.approx([1.0, 1.0, 1 / 8, 1 / 64])
    assert cubic.exploitation_utility(ids, 1, math.inf) == pytest.approx([1.0] * 4)


def test_reported_duration_replaces_the_profiled_one() -> None:
    selector = make([5.0, 5.0])
    explore_all(selector, [10.0, 10.0], durations=[5.0, 20.0])
    assert selector.exploitation_utility(np.arange(2), 1, 10.0) == pytest.approx([1.0, 0.25])


def test_staleness_bonus_favours_clients_left_out_longer() -> None:
    selector = make([1.0, 1.0])
    feed(selector, 0, 10.0, 1, 1.0, True)
    feed(selector, 1, 10.0, 4, 1.0, True)
    utility = selector.exploitation_utility(np.arange(2), 9, math.inf)
    assert utility == pytest.approx([1 + math.sqrt(0.1 * math.log(9) / 1), 1 + math.sqrt(0.1 * math.log(9) / 4)])
    assert selector.exploitation_utility(np.arange(2), 1, math.inf) == pytest.approx([1.0, 1.0])


def test_outlier_utility_is_clipped_at_the_percentile() -> None:
    rewards = [*range(1, 20), 1000]
    selector = make(np.ones(20))
    explore_all(selector, rewards)
    utility = selector.exploitation_utility(np.arange(20), 1, math.inf)
    assert utility[19] == pytest.approx(1.0) and utility[18] == pytest.approx(1.0)
    assert utility[:19] == pytest.approx(np.arange(1, 20) / 19)
    unclipped = make(np.ones(20), clip_bound=1.0)
    explore_all(unclipped, rewards)
    assert unclipped.exploitation_utility(np.arange(20), 1, math.inf)[18] == pytest.approx(0.019)


@pytest.mark.parametrize("cut_off, admitted", [(0.95, 3), (0.7, 5), (1e-3, 10)])
def test_cut_off_admits_clients_within_c_of_the_boundary(cut_off: float, admitted: int) -> None:
    rewards = np.arange(100, 0, -10)
    chosen = set()
    for seed in range(100):
        selector = make(np.ones(10), seed=seed, exploration_factor=0.0, exploration_min=0.0,
                        cut_off_util=cut_off, t_mode="absolute", round_threshold=100.0)
        explore_all(selector, rewards)
        chosen |= set(selector.select_participants(3, 0.0, np.arange(10)))
        assert selector.details()["num_admitted"] == admitted
    assert chosen == set(range(admitted))


def run_pacer(schedule, knobs, failing_rounds=(), fact: str = "preferred_duration") -> list:
    """T (or another ``details()`` fact) in each round when four online clients all report ``schedule[r - 1]``.

    100 clients are registered with durations 1..100 s, so percentile p gives T = p + 1 s.
    In ``failing_rounds`` client 0 reports a huge reward as a failure, which must not count.
    """
    selector = make(np.arange(1.0, 101.0), **knobs)
    explore_all(selector, [1.0] * 4)
    used = []
    for r in range(1, len(schedule) + 2):
        assert selector.select_participants(4, 0.0, np.arange(4)) == [0, 1, 2, 3]
        used.append(selector.details()[fact])
        if r <= len(schedule):
            for client in range(4):
                failed = client == 0 and r in failing_rounds
                feed(selector, client, 1000.0 if failed else schedule[r - 1], r,
                                           float(client + 1), not failed)
    return used


@pytest.mark.parametrize("t_mode, offset", [("absolute", 0.0), ("percentile", 1.0)])
def test_paper_pacer_relaxes_when_window_utility_falls(t_mode: str, offset: float) -> None:
    knobs = dict(pacer_mode="paper", pacer_step=2, pacer_delta=5.0, t_mode=t_mode, round_threshold=30.0)
    used = run_pacer([10, 10, 8, 8, 9, 9, 9, 9, 5, 5], knobs, failing_rounds=(3, 4))
    assert used == [t + offset for t in [30, 30, 30, 30, 35, 35, 35, 35, 35, 35, 40]]


@pytest.mark.parametrize("t_mode, offset", [("absolute", 0.0), ("percentile", 1.0)])
def test_fedscale_pacer_relaxes_on_plateau_and_tightens_on_swing(t_mode: str, offset: float) -> None:
    knobs = dict(pacer_mode="fedscale", pacer_step=2, pacer_delta=5.0, t_mode=t_mode, round_threshold=30.0)
    used = run_pacer([10, 10, 10.5, 10.5, 100, 100, 50, 50, 50, 0], knobs)
    assert used == [t + offset for t in [30, 30, 30, 30, 35, 35, 30, 30, 30, 30, 30]]


def test_pacer_limits_percentile_cap_and_tightening_floor() -> None:
    percentile = dict(pacer_step=1, t_mode="percentile", round_threshold=98.0)
    assert run_pacer([2, 1], dict(percentile, pacer_delta=5.0)) == [99.0, 99.0, None]
    assert run_pacer([2, 1], percentile, fact="round_threshold") == [98, 98, 100]
    tightened = run_pacer([1, 10, 100], dict(pacer_mode="fedscale", pacer_step=1, pacer_delta=5.0,
                                             t_mode="absolute", round_threshold=7.0))
    assert tightened == [7.0, 7.0, 5.0, 5.0]


def test_blacklist_excludes_clients_picked_too_often() -> None:
    selector = make(np.ones(10), blacklist_rounds=2)
    for _ in range(3):
        assert selector.select_participants(5, 0.0, np.array([0, 1])) == [0, 1]
    picks = selector.select_participants(5, 0.0, np.arange(10))
    assert selector.details()["blacklist_size"] == 2
    assert len(picks) == 5 and not {0, 1} & set(picks)
    assert list(selector.blacklist()) == [0, 1]


def test_blacklist_is_capped_most_picked_first() -> None:
    selector = make(np.ones(10), blacklist_rounds=2, blacklist_max_len=0.3)
    for _ in range(3):
        selector.select_participants(10, 0.0, np.arange(10))
    assert selector.select_participants(10, 0.0, np.arange(10)) == list(range(3, 10))
    assert selector.details()["blacklist_size"] == 3
    assert selector.select_participants(10, 0.0, np.arange(10)) == [0, 1, 2, 6, 7, 8, 9]
    assert make(np.ones(10)).blacklist().size == 0


def simulate(seed: int, online_order=lambda ids: ids, rounds: int = 15) -> list[list[int]]:
    world = np.random.default_rng(123)
    durations = world.lognormal(3.0, 1.0, 2000)
    selector = make(durations, samples=world.integers(1, 300, 2000), seed=seed)
    rewards = world.gamma(2.0, 50.0, 2000)
    history = []
    for r in range(1, rounds + 1):
        online = np.flatnonzero(world.random(2000) < 0.5)
        picks = selector.select_participants(50, float(r), online_order(online))
        history.append(picks)
        for client in picks:
            feed(selector, client, float(rewards[client]), r, float(durations[client]), client % 7 != 0)
    return history


def test_selection_is_determined_by_the_seed() -> None:
    base = simulate(7)
    assert simulate(7) == base
    assert simulate(7, online_order=lambda ids: ids[::-1].copy()) == base
    assert simulate(8) != base


def test_only_online_registered_clients_are_returned() -> None:
    selector = make(np.random.default_rng(2).uniform(1, 50, 500))
    selector.register_clients(np.array([700]), np.array([5]), np.array([3.0]))
    rng = np.random.default_rng(3)
    for r in range(1, 30):
        online = np.flatnonzero(rng.random(800) < 0.3)
        offered = np.concatenate([online, online[:5], [10**7]])
        picks = selector.select_participants(40, 0.0, offered)
        assert len(picks) == len(set(picks)) == 40 and picks == sorted(picks)
        assert set(picks) <= set(online) & (set(range(500)) | {700})
        for client in picks:
            feed(selector, client, 1.0 + client % 13, r, 10.0, True)


def test_fewer_online_than_requested_returns_them_all() -> None:
    selector = make(np.ones(100))
    assert selector.select_participants(10, 0.0, np.array([42, 7, 7, 99])) == [7, 42, 99]
    assert selector.select_participants(10, 0.0, np.array([], dtype=np.int64)) == []
    assert selector.select_participants(0, 0.0, np.arange(100)) == []


def test_details_are_json_and_errors_are_clear() -> None:
    selector = make(np.ones(20))
    assert selector.details() == {}
    selector.select_participants(5, 0.0, np.arange(20))
    details = json.loads(json.dumps(selector.details(), allow_nan=False))
    assert details["round"] == 1 and details["num_explored"] == 5 and details["pacer_move"] is None
    with pytest.raises(ValueError, match="client 25 is not registered"):
        feed(selector, 25, 1.0, 1, 1.0, True)
    with pytest.raises(ValueError, match="round_index"):
        feed(selector, 3, 1.0, 0, 1.0, True)
    with pytest.raises(ValueError, match="durations"):
        selector.register_clients(np.array([1]), np.array([1]), np.array([0.0]))
    with pytest.raises(ValueError, match="integer client ids"):
        selector.select_participants(5, 0.0, np.array([1.5]))


def test_config_is_frozen() -> None:
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        OortConfig().pacer_step = 3


def test_a_million_clients_stay_cheap() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    selector = OortSelector(OortConfig(), seed=1)
    start = time.perf_counter()
    selector.register_clients(np.arange(n), rng.integers(1, 500, n), rng.lognormal(3.0, 1.0, n))
    assert time.perf_counter() - start < 1.0
    timings = []
    for r in range(1, 6):
        online = rng.choice(n, 200_000, replace=False)
        start = time.perf_counter()
        picks = selector.select_participants(1300, 0.0, online)
        timings.append(time.perf_counter() - start)
        assert len(picks) == 1300
        for client in picks[:600]:
            feed(selector, client, float(client % 97), r, 20.0, True)
    assert selector.details()["num_exploited"] > 0
    assert sorted(timings)[2] < 0.1
