"""Group-by and as-of join over numpy columns, for the model's per-batch work (pandas' ``groupby``
and ``merge_asof`` cost a few milliseconds of fixed overhead per call, paid several times a batch:
live mode feeds small batches).

``Groups(keys)`` sorts rows by several integer keys (stably) and finds the runs of equal keys;
``reduce`` then sums, mins or maxes a column over each run. Groups come out in the order of their
first row, as ``DataFrame.groupby(sort=False)`` gives them. ``first_of_each`` is
``drop_duplicates``; ``previous`` is each row's predecessor among the rows of its key (``shift``
within a group); ``asof`` is ``merge_asof`` by one integer key, as row numbers.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


class Groups:
    """The rows of some key columns grouped by equal keys (in first-appearance order)."""

    __slots__ = ("order", "starts", "n_rows", "_perm")

    def __init__(self, keys: Sequence[np.ndarray]):
        n = self.n_rows = len(keys[0]) if keys else 0
        if n == 0:
            self.order = np.zeros(0, np.int64)
            self.starts = np.zeros(0, np.int64)
            self._perm = np.zeros(0, np.int64)
            return
        order = np.lexsort(tuple(np.asarray(k) for k in reversed(keys)))  # stable: the first key sorts last
        change = np.zeros(n, bool)
        change[0] = True
        for k in keys:
            ks = np.asarray(k)[order]
            change[1:] |= ks[1:] != ks[:-1]
        starts = np.flatnonzero(change)
        # first-appearance order: the first row of each run is its group's earliest (lexsort is stable)
        first = order[starts]
        by_first = np.argsort(first, kind="stable")
        self.order = order
        self.starts = starts
        self._perm = by_first

    def __len__(self) -> int:
        return len(self.starts)

    def key(self, col: np.ndarray) -> np.ndarray:
        """A key column's value per group."""
        if not len(self.starts):
            return np.asarray(col)[:0]
        return np.asarray(col)[self.order[self.starts]][self._perm]

    def size(self) -> np.ndarray:
        if not len(self.starts):
            return np.zeros(0, np.int64)
        ends = np.append(self.starts[1:], self.n_rows)
        return (ends - self.starts)[self._perm].astype(np.int64)

    def reduce(self, col: np.ndarray, how: str = "sum") -> np.ndarray:
        """``how`` (sum, min, max) of ``col`` over each group."""
        col = np.asarray(col)
        if not len(self.starts):
            return col[:0]
        ufunc = {"sum": np.add, "min": np.minimum, "max": np.maximum}[how]
        return ufunc.reduceat(col[self.order], self.starts)[self._perm]


def first_of_each(keys: Sequence[np.ndarray]) -> np.ndarray:
    """Indices of the first row of each distinct key tuple, in row order (``drop_duplicates``)."""
    g = Groups(keys)
    if not len(g):
        return np.zeros(0, np.int64)
    return np.sort(g.order[g.starts])


def previous(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the row before it with the same ``key`` (-1: none), and whether it is the last
    row of its key."""
    key = np.asarray(key)
    n = len(key)
    o = np.argsort(key, kind="stable")
    ko = key[o]
    same = ko[1:] == ko[:-1]
    prev = np.full(n, -1, np.int64)
    prev[o[1:]] = np.where(same, o[:-1], -1)
    last = np.ones(n, bool)
    last[o[:-1]] = ~same
    return prev, last


def asof(left_key: np.ndarray, left_t: np.ndarray, right_key: np.ndarray, right_t: np.ndarray, *,
         direction: str = "backward", exact: bool = True) -> np.ndarray:
    """``merge_asof`` by one integer key, as row numbers: for each left row, the right row with the
    same key and the latest ``right_t`` at or before ``left_t`` (``direction="backward"``; the last
    of equal ones), or the earliest at or after it (``"forward"``; the first of equal ones); strictly
    before/after when not ``exact``. -1 where there is none."""
    left_key = np.asarray(left_key, dtype=np.int64)
    left_t = np.asarray(left_t, dtype=np.int64)
    right_key = np.asarray(right_key, dtype=np.int64)
    right_t = np.asarray(right_t, dtype=np.int64)
    nl, nr = len(left_key), len(right_key)
    out = np.full(nl, -1, np.int64)
    if not nl or not nr:
        return out
    # (key, time) as one sortable int64: the key's rank among both sides' keys (a hash, then a sort of
    # the distinct keys only), then the time from the earliest (or, if that cannot fit, its rank)
    codes, uniq = pd.factorize(np.concatenate([right_key, left_key]))
    rank = np.empty(len(uniq), np.int64)
    rank[np.argsort(uniq)] = np.arange(len(uniq), dtype=np.int64)
    kinv = rank[codes]
    t = np.concatenate([right_t, left_t])
    t0 = int(t.min())
    span = int(t.max()) - t0 + 1
    if len(uniq) * span < 1 << 62:
        comp = kinv * span + (t - t0)
    else:
        _, tinv = np.unique(t, return_inverse=True)
        comp = (kinv << 32) | tinv.astype(np.int64)
    rc, lc = comp[:nr], comp[nr:]
    order = np.argsort(rc, kind="stable")
    rs = rc[order]
    if direction == "backward":
        pos = np.searchsorted(rs, lc, side="right" if exact else "left") - 1
        ok = pos >= 0
    elif direction == "forward":
        pos = np.searchsorted(rs, lc, side="left" if exact else "right")
        ok = pos < nr
    else:
        raise ValueError(f"asof: direction {direction!r}")
    pc = np.where(ok, pos, 0)
    ok &= kinv[:nr][order][pc] == kinv[nr:]
    out[ok] = order[pc[ok]]
    return out
