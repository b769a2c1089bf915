"""build_model's process-wide settings: what it changes comes back, whatever happens."""

import gc

import pytest

from ftraceipc.model import build


def test_the_young_gc_threshold_is_raised_while_building_and_restored_after_an_error():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError):
        with build._young_gc_rarely():
            inside = gc.get_threshold()
            raise RuntimeError("a capture that fails half-way")
    assert inside[0] >= 100_000 and inside[1:] == before[1:]
    assert gc.get_threshold() == before


def test_a_missing_capture_leaves_the_gc_threshold_as_it_was(tmp_path):
    before = gc.get_threshold()
    with pytest.raises(Exception):
        build.build_model(tmp_path / "nothing.ftipc")
    assert gc.get_threshold() == before


def _sums(x, d, switched=None):
    import numpy as np
    import pandas as pd

    wakes = np.asarray(x, np.int64)
    t = build._fit_terms(wakes, np.zeros(len(x), np.int64), np.asarray(d, np.int64),
                         np.zeros(len(x), bool) if switched is None else np.asarray(switched))
    return pd.DataFrame({"wakes": [int(wakes.sum())], **{c: [float(v.sum())] for c, v in t.items()}})


def test_the_wake_cost_is_the_slope_of_duration_on_wakeups_times_the_wakeups():
    """Writes that take 3 us plus 2 us per task they wake: 2 us x every wakeup made, the base cost not
    counted; calls the task was switched out of (a sleep inside) are left out of the fit, not of wakes."""
    x = [0, 1, 5, 10, 20, 30, 32, 32, 31, 8, 12, 16]
    d = [3000 + 2000 * v for v in x]
    assert build.wake_cost_ns(_sums(x, d)).tolist() == [2000 * sum(x)]
    slept = _sums(x + [32], d + [9_000_000], switched=[False] * len(x) + [True])
    assert build.wake_cost_ns(slept).tolist() == [2000 * (sum(x) + 32)]


def test_the_wake_cost_is_zero_when_the_fit_cannot_tell():
    """Every call wakes the same number of tasks (no spread: base cost and wakeups cannot be told
    apart), too few calls, or calls that get faster with more wakeups (a slope below 0)."""
    assert build.wake_cost_ns(_sums([1] * 50, [5000] * 50)).tolist() == [0]
    assert build.wake_cost_ns(_sums([0, 5, 10], [1000, 6000, 11000])).tolist() == [0]
    x = list(range(20))
    assert build.wake_cost_ns(_sums(x, [50_000 - 1000 * v for v in x])).tolist() == [0]


def test_the_wake_cost_never_exceeds_the_calls_own_time_per_wakeup():
    """A slope steeper than the calls' mean duration per wakeup (here 100 us per wakeup between calls
    waking 1 and 2, which take 0 and 100 us) is cut to that mean: the wakeups never cost more than
    the calls took."""
    x = [1] * 10 + [2] * 10
    d = [0] * 10 + [100_000] * 10
    assert build.wake_cost_ns(_sums(x, d)).tolist() == [1_000_000]
