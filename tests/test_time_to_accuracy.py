"""The selector comparison's statistics: smoothing over virtual time, time to target, intervals."""
import math

import numpy as np
import pytest
from scipy import stats

from benchmark.perf.time_to_accuracy import (all_policies, baseline_of, mean_interval, paired_speedup,
                                              policy_conf, smooth_over_time, time_to_target)


def test_smoothing_averages_the_tests_of_the_trailing_virtual_window_not_a_count_of_tests():
    times = np.array([100.0, 200.0, 1000.0, 1100.0, 1150.0])
    accuracy = np.array([0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(smooth_over_time(times, accuracy, 500.0), [0.2, 0.3, 0.6, 0.7, 0.8])
    np.testing.assert_allclose(smooth_over_time(times, accuracy, 0.0), accuracy)


def test_time_to_target_is_the_first_smoothed_crossing():
    times = np.array([10.0, 20.0, 30.0])
    assert time_to_target(times, np.array([0.5, 0.9, 0.95]), 0.9) == 20.0
    assert time_to_target(times, np.array([0.5, 0.6, 0.7]), 0.9) == math.inf


def test_interval_is_students_t_and_speedup_is_the_geometric_mean_of_paired_ratios():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    mean, half = mean_interval(values)
    assert mean == 3.0 and half == pytest.approx(stats.t.ppf(0.975, 4) * values.std(ddof=1) / math.sqrt(5))
    ratio, lo, hi = paired_speedup(np.array([2.0, 8.0]), np.array([1.0, 2.0]))
    assert ratio == pytest.approx(math.sqrt(2.0 * 4.0)) and lo < ratio < hi


def test_every_selector_runs_with_and_without_adaptive_training_against_its_own_random():
    assert len(all_policies()) == 8
    assert policy_conf("bliss+adaptive") == {"sample_mode": "bliss", "adaptive_training": True}
    assert baseline_of("oort+adaptive") == "random+adaptive" and baseline_of("oort") == "random"


def test_reuse_reads_only_a_completed_run(tmp_path):
    import json

    from benchmark.perf.time_to_accuracy import finished_events
    from fedscale.cloud import commons
    old, new = tmp_path / "logs" / "job" / "1", tmp_path / "logs" / "job" / "2"
    for folder, status in ((old, commons.STATUS_COMPLETED), (new, commons.STATUS_STOPPED)):
        folder.mkdir(parents=True)
        (folder / commons.AGGREGATOR_LOG).write_text(
            json.dumps({"tag": commons.JOB_END, "status": status, "run": folder.name}) + "\n")
    assert finished_events(str(tmp_path), "job")[-1]["run"] == "1"
    assert finished_events(str(tmp_path), "other") is None
