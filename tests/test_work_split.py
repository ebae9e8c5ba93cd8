"""How a round's participants are split over the executors: by expected compute, contiguously."""
import numpy as np
import pytest

from fedscale.cloud.aggregation.aggregator import split_by_cost


@pytest.mark.parametrize("seed", range(20))
def test_blocks_are_contiguous_cover_everyone_and_differ_by_at_most_one_clients_cost(seed):
    rng = np.random.default_rng(seed)
    costs = rng.integers(1, 200, size=rng.integers(1, 40)).astype(float)
    parts = int(rng.integers(1, 5))
    blocks = split_by_cost(costs, parts)
    assert len(blocks) == parts and sum(blocks, []) == list(range(len(costs)))
    totals = [costs[b].sum() for b in blocks]
    assert max(totals) - min(totals) <= 2 * costs.max()
    assert max(totals) <= costs.sum() / parts + costs.max()


def test_a_client_with_many_steps_gets_an_executor_to_itself():
    assert split_by_cost(np.array([100, 10, 10, 10, 10, 10, 10, 10, 10, 10]), 2) == [[0], list(range(1, 10))]


def test_equal_costs_split_by_count_and_no_cost_counts_as_one_each():
    assert split_by_cost(np.ones(10), 2) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert split_by_cost(np.zeros(4), 2) == [[0, 1], [2, 3]]
    assert split_by_cost(np.zeros(0), 3) == [[], [], []]
