"""The model's numpy group-by and as-of join give what pandas gives (which they replaced: pandas'
fixed cost per call, paid several times a batch, was most of a small batch's model time)."""

import numpy as np
import pandas as pd
import pytest

from ftraceipc.model.columns import Groups, asof, first_of_each, previous


@pytest.mark.parametrize("n", [0, 1, 7, 2000])
def test_groups_sum_min_max_and_size_like_a_pandas_groupby_in_first_appearance_order(n):
    rng = np.random.default_rng(n)
    a, b = rng.integers(-3, 4, n), rng.integers(0, 3, n)
    v, f = rng.integers(-100, 100, n), rng.random(n)
    df = pd.DataFrame({"a": a, "b": b, "v": v, "f": f})
    want = df.groupby(["a", "b"], sort=False).agg(n=("v", "size"), s=("v", "sum"), lo=("v", "min"),
                                                   hi=("v", "max"), fs=("f", "sum")).reset_index()
    g = Groups([a, b])
    assert len(g) == len(want)
    assert g.key(a).tolist() == want["a"].tolist() and g.key(b).tolist() == want["b"].tolist()
    assert g.size().tolist() == want["n"].tolist()
    assert g.reduce(v).tolist() == want["s"].tolist()
    assert g.reduce(v, "min").tolist() == want["lo"].tolist()
    assert g.reduce(v, "max").tolist() == want["hi"].tolist()
    assert np.allclose(g.reduce(f), want["fs"].to_numpy())
    assert first_of_each([a, b]).tolist() == df.drop_duplicates(["a", "b"]).index.tolist()


@pytest.mark.parametrize("direction", ["backward", "forward"])
@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("nl,nr", [(0, 5), (5, 0), (1, 1), (300, 40), (3000, 3000)])
def test_asof_picks_the_row_pandas_merge_asof_picks_ties_included(direction, exact, nl, nr):
    rng = np.random.default_rng(nl * 7 + nr)
    lk, lt = rng.integers(0, 5, nl), rng.integers(0, 60, nl)  # few keys and times: many ties
    rk, rt = rng.integers(0, 6, nr), rng.integers(0, 60, nr)
    want = np.full(nl, -1)
    if nl and nr:
        left = pd.DataFrame({"k": lk, "t": lt, "i": np.arange(nl)}).sort_values("t", kind="stable")
        right = pd.DataFrame({"k": rk, "rt": rt, "j": np.arange(nr)}).sort_values("rt", kind="stable")
        m = pd.merge_asof(left, right, left_on="t", right_on="rt", by="k", direction=direction,
                          allow_exact_matches=exact)
        ok = m["j"].notna().to_numpy()
        want[m["i"].to_numpy()[ok]] = m["j"].to_numpy()[ok].astype(np.int64)
    assert asof(lk, lt, rk, rt, direction=direction, exact=exact).tolist() == want.tolist()


def test_asof_handles_trace_clock_sized_times_and_negative_keys():
    t0 = 1 << 62
    got = asof(np.array([-1, -1, 5]), np.array([t0 + 10, t0 - 1, t0 + 3]),
               np.array([-1, 5, -1]), np.array([t0, t0 + 3, t0 + 10]))
    assert got.tolist() == [2, -1, 1]


def test_asof_joins_times_too_far_apart_for_one_int_by_their_ranks():
    # keys x time span beyond 2**62: the times are ranked instead of offset; same answers
    far = 1 << 61
    got = asof(np.array([1, 2, 3, 2]), np.array([far, 5, far + 1, far]),
               np.array([1, 2, 3, 2, 3]), np.array([0, 5, far + 2, far - 1, 7]))
    assert got.tolist() == [0, 1, 4, 3]
    assert asof(np.array([2]), np.array([4]), np.array([2, 2]), np.array([5, far]),
                direction="forward").tolist() == [0]


def test_previous_is_each_rows_predecessor_within_its_key_and_marks_each_keys_last_row():
    rng = np.random.default_rng(7)
    key = rng.integers(0, 6, 300)
    prev, last = previous(key)
    seen: dict[int, int] = {}
    want_prev = []
    for i, k in enumerate(key.tolist()):
        want_prev.append(seen.get(k, -1))
        seen[k] = i
    assert prev.tolist() == want_prev
    assert np.flatnonzero(last).tolist() == sorted(seen.values())
    p0, l0 = previous(np.zeros(0, np.int64))
    assert len(p0) == 0 and len(l0) == 0
