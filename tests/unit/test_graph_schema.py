"""The graph schema's Arrow conversion: a long string column (a critical path's states, reasons
and rids, one capture id per row) goes through a dictionary of its distinct values; the result
must be the plain conversion's, nulls and all."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ftraceipc.graph.schema import _array


def plain(s: pd.Series) -> pa.Array:
    return pa.array(s.astype(object), pa.string(), from_pandas=True)


def test_long_string_column_equals_the_plain_conversion_with_its_nulls():
    s = pd.Series(["running", None, "blocked", np.nan, "pipe:12", "running"] * 400)
    a = _array(s, "STRING")
    assert a.type == pa.string()
    assert a.equals(plain(s))
    assert a.null_count == 800


def test_long_categorical_and_all_null_columns_convert_like_short_ones():
    cat = pd.Series(["a", "b", None] * 500, dtype="category")
    assert _array(cat, "STRING").equals(plain(cat))
    nulls = pd.Series([None] * 2000, dtype=object)
    assert _array(nulls, "STRING").equals(plain(nulls))
    assert _array(nulls, "STRING").null_count == 2000


def test_short_string_column_is_unchanged():
    s = pd.Series(["x", None, "y"])
    assert _array(s, "STRING").to_pylist() == ["x", None, "y"]
