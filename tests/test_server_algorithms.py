"""Server algorithms on hand-computed steps (McMahan et al., AISTATS 2017; Hsu et al., 2019; Reddi et al.,
ICLR 2021, Algorithm 2; Li et al., MLSys 2020, FedProx; Li et al., ICLR 2020, q-FedAvg), their declared
job_conf keys, and the README's example of adding one."""
import math
import re
from pathlib import Path
from unittest import mock

import pytest
import torch
from pydantic import ValidationError

from fedscale.cloud import commons
from fedscale.cloud.aggregation import server_algorithms
from fedscale.cloud.aggregation.server_algorithms import SERVER_ALGORITHMS, build_server_algorithm, make_server_algorithm
from fedscale.cloud.aggregation.server_algorithms.fedprox import proximal_term
from fedscale.cloud.aggregation.server_algorithms.qfedavg import q_fedavg_rows
from fedscale.cloud.config import job_conf
from fedscale.cloud.config_parser import KEYS, JobConf
from fedscale.robust.registry import robust_aggregator

VALUES = {"yogi_eta": 0.1, "yogi_tau": 1e-3, "yogi_beta": 0.9, "yogi_beta2": 0.99,
          "server_learning_rate": 0.5, "server_momentum": 0.8}
DELTA = torch.tensor([0.2, -0.4], dtype=torch.float64)
BOUNDS = ("ge", "gt", "le", "lt")


def two_steps(policy):
    algorithm = build_server_algorithm(policy, VALUES, 0.05)
    w = algorithm.step(torch.zeros(2, dtype=torch.float64), DELTA)
    return algorithm.step(w, DELTA)


def bounds(field):
    """The numeric bounds of a pydantic field, by name (ge, gt, le, lt)."""
    return {name: getattr(rule, name) for rule in field.metadata for name in BOUNDS if hasattr(rule, name)}


def test_fed_avg_adds_the_update():
    assert torch.equal(two_steps("fed-avg"), 2 * DELTA)


def test_fed_prox_steps_like_fed_avg_and_sends_mu_only_to_its_clients():
    assert torch.equal(two_steps("fed-prox"), 2 * DELTA)
    assert build_server_algorithm("fed-prox", {"proxy_mu": 0.3}, 0.05).client_settings() == {"proximal_mu": 0.3}
    for policy in set(SERVER_ALGORITHMS) - {"fed-prox"}:
        assert build_server_algorithm(policy, {"proxy_mu": 0.3}, 0.05).client_settings() == {}


def test_proximal_term_pulls_towards_the_global_model_by_lr_mu():
    """One step of Li et al. (MLSys 2020, Eq. 2) without the gradient: w - lr mu (w - w^t)."""
    start = torch.tensor([1.0, -2.0, 0.5])
    term = proximal_term(start, 0.1, 2.0)
    w = torch.tensor([3.0, 0.0, 0.5])
    term.pull(w)
    torch.testing.assert_close(w, torch.tensor([3.0, 0.0, 0.5]) - 0.2 * (torch.tensor([3.0, 0.0, 0.5]) - start))
    start.zero_()
    assert term.anchor[0] == 1.0
    assert proximal_term(start, 0.1, 0.0) is None


def test_fed_avgm_accumulates_momentum():
    assert torch.allclose(two_steps("fed-avgm"), 0.5 * DELTA + 0.5 * (0.8 + 1) * DELTA)


@pytest.mark.parametrize("policy", ["fed-adagrad", "fed-adam", "fed-yogi"])
def test_adaptive_rules_match_algorithm_2(policy):
    tau, w = 1e-3, torch.zeros(2, dtype=torch.float64)
    m, v = torch.zeros(2, dtype=torch.float64), torch.full((2,), tau ** 2, dtype=torch.float64)
    for _ in range(2):
        m = 0.9 * m + 0.1 * DELTA
        sq = DELTA ** 2
        v = {"fed-adagrad": v + sq, "fed-adam": 0.99 * v + 0.01 * sq,
             "fed-yogi": v - 0.01 * sq * torch.sign(v - sq)}[policy]
        w = w + 0.1 * m / (v.sqrt() + tau)
    assert torch.allclose(two_steps(policy), w)
    assert math.copysign(1, float(w[0])) == 1 and math.copysign(1, float(w[1])) == -1


def q_fedavg_by_the_paper(w, trained, losses, q, lr):
    """Li et al., ICLR 2020, Algorithm 2, written out client by client."""
    L = 1 / lr
    deltas, hs = [], []
    for w_k, F in zip(trained, losses):
        delta_w = L * (w - w_k)
        deltas.append(F ** q * delta_w)
        hs.append(q * F ** (q - 1) * delta_w.dot(delta_w) + L * F ** q)
    return w - sum(deltas) / sum(hs)


@pytest.mark.parametrize("q", [0.0, 0.3, 1.0, 2.0, 5.0])
def test_q_fedavg_rows_averaged_by_their_weights_are_the_papers_step(q):
    g = torch.Generator().manual_seed(int(10 * q))
    w = torch.randn(50, generator=g, dtype=torch.float64)
    updates = 0.1 * torch.randn(7, 50, generator=g, dtype=torch.float64)
    losses = 0.2 + 3 * torch.rand(7, generator=g, dtype=torch.float64)
    rows, h = q_fedavg_rows(updates, losses, q, learning_rate=0.05)
    expected = q_fedavg_by_the_paper(w, w + updates, losses, q, 0.05)
    torch.testing.assert_close(w + robust_aggregator("mean")(rows, h), expected, rtol=1e-10, atol=1e-10)
    algorithm = build_server_algorithm("q-fedavg", {"qfed_q": q}, 0.05)
    rows, h = algorithm.rows(updates, torch.ones(7, dtype=torch.float64), losses)
    torch.testing.assert_close(algorithm.step(w, (h[:, None] * rows).sum(0) / h.sum()), expected,
                               rtol=1e-10, atol=1e-10)


def test_q_fedavg_with_q_0_is_the_unweighted_mean_of_the_updates():
    """q = 0: F^0 = 1 and h_k = 0 + L, so r_k = L u_k / L = u_k with equal weights."""
    updates = torch.randn(5, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rows, h = q_fedavg_rows(updates, torch.tensor([0.5, 1.0, 2.0, 3.0, 0.0], dtype=torch.float64), 0.0, 0.1)
    torch.testing.assert_close(rows, updates, rtol=1e-12, atol=0)
    torch.testing.assert_close(h, torch.full((5,), 10.0, dtype=torch.float64), rtol=1e-12, atol=0)
    torch.testing.assert_close(robust_aggregator("mean")(rows, h), updates.mean(0), rtol=1e-12, atol=1e-15)


def test_q_fedavg_favours_clients_with_higher_loss_and_keeps_the_rows_dtype():
    updates = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    losses = torch.tensor([0.5, 2.0], dtype=torch.float64)
    rows, h = q_fedavg_rows(updates, losses, 2.0, 0.1)
    assert rows.dtype == torch.float32 and h.dtype == torch.float64
    step = robust_aggregator("mean")(rows, h)
    assert step[1] > 4 * step[0] > 0


def test_other_algorithms_aggregate_the_updates_and_weights_as_they_are():
    updates, weights = torch.randn(3, 2), torch.tensor([1.0, 2.0, 3.0])
    for policy in set(SERVER_ALGORITHMS) - {"q-fedavg"}:
        rows, w = build_server_algorithm(policy, VALUES, 0.05).rows(updates, weights, torch.ones(3))
        assert rows is updates and w is weights


def test_unknown_policy_is_refused_in_one_line_naming_the_key():
    with pytest.raises(ValueError, match=r"^gradient_policy must be one of fed-avg, .*got 'fed-nova'$"):
        build_server_algorithm("fed-nova", VALUES, 0.05)


def test_the_registry_names_each_algorithm_by_its_gradient_policy():
    assert all(name == algorithm.name for name, algorithm in SERVER_ALGORITHMS.items())
    assert commons.GRADIENT_POLICIES == tuple(SERVER_ALGORITHMS) == KEYS["gradient_policy"].choices


def test_a_job_conf_builds_each_algorithm_from_its_own_keys_only():
    conf = JobConf({"gradient_policy": "fed-yogi", "yogi_eta": 0.2, "qfed_q": 3.0})
    algorithm = make_server_algorithm(conf)
    assert algorithm.config.model_dump() == {"yogi_eta": 0.2, "yogi_tau": 1e-8, "yogi_beta": 0.9, "yogi_beta2": 0.99}
    assert algorithm.learning_rate == conf.training.learning_rate
    assert build_server_algorithm("fed-avg", conf.to_dict(), 0.05).config.model_dump() == {}
    assert list(build_server_algorithm("fed-adagrad", conf.to_dict(), 0.05).config.model_dump()) == [
        "yogi_eta", "yogi_tau", "yogi_beta"]


@pytest.mark.parametrize("algorithm", SERVER_ALGORITHMS.values(), ids=list(SERVER_ALGORITHMS))
def test_config_fields_agree_with_the_job_conf_keys(algorithm):
    for name, field in algorithm.Config.model_fields.items():
        spec = KEYS[name]
        assert (field.default, field.annotation) == (spec.default, spec.type), name
        assert bounds(field) == {b: getattr(spec, b) for b in BOUNDS if getattr(spec, b) is not None}, name
        assert field.description == spec.help, name


def test_configs_are_frozen_and_refuse_unknown_fields():
    config = SERVER_ALGORITHMS["fed-prox"].Config()
    with pytest.raises(ValidationError):
        config.proxy_mu = 1.0
    with pytest.raises(ValidationError, match="qfed_q"):
        SERVER_ALGORITHMS["fed-prox"].Config(qfed_q=1.0)


def out_of_range(field):
    """A value just outside the field's bounds."""
    limits = bounds(field)
    if "gt" in limits or "ge" in limits:
        return limits.get("gt", limits.get("ge", 0) - 1)
    return limits.get("lt", limits.get("le", 0) + 1)


@pytest.mark.parametrize("policy, key", [(policy, key) for policy, algorithm in SERVER_ALGORITHMS.items()
                                         for key in algorithm.Config.model_fields])
def test_an_out_of_range_value_is_refused_naming_the_field(policy, key):
    bad = out_of_range(SERVER_ALGORITHMS[policy].Config.model_fields[key])
    with pytest.raises(ValidationError, match=key) as error:
        build_server_algorithm(policy, {key: bad}, 0.05)
    assert error.value.errors()[0]["loc"] == (key,)


def test_the_readme_example_is_a_working_algorithm():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("#### Adding a server algorithm", 1)[1]
    namespace = {}
    exec(re.search(r"```python\n(.*?)```", section, re.S).group(1), namespace)
    example = namespace["FedAvgCapped"]
    with mock.patch.dict(server_algorithms.SERVER_ALGORITHMS, {example.name: example}):
        algorithm = build_server_algorithm("fed-avg-capped", {"server_update_cap": 0.5, "qfed_q": 2.0}, 0.05)
        keys = job_conf._declared_keys(*job_conf._extension_configs())
    step = algorithm.step(torch.ones(2, dtype=torch.float64), torch.tensor([3.0, 4.0], dtype=torch.float64))
    assert torch.allclose(step, torch.tensor([1.3, 1.4], dtype=torch.float64))
    assert keys["server_update_cap"].default == 1.0 and keys["server_update_cap"].gt == 0