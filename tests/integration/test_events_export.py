"""``ftraceipc events --format parquet`` on a real capture: every event type's rows equal the jsonl
rows of the same capture field by field, the columns have the types the kernel's format files
declare, and pandas and DuckDB read the files."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import capture_cli as cc
from ftraceipc.decode.decoder import Decoder, record_key
from ftraceipc.decode.formats import Field

COMMON = [("seq", pa.int64()), ("ts", pa.int64()), ("cpu", pa.int32()), ("tid", pa.int32()), ("event", pa.string())]


def _int(size: int, signed: bool) -> pa.DataType:
    return pa.from_numpy_dtype(f"{'i' if signed else 'u'}{size}")


def declared_type(f: Field) -> pa.DataType:
    """The Arrow type a field must have, from its format-file line alone."""
    if f.is_string:
        return pa.string()
    if f.is_dynamic:
        return pa.list_(_int(f.elem_size, f.signed) if f.elem_size in (1, 2, 4, 8) else pa.uint8())
    if f.is_flexible:
        return pa.list_(pa.uint8())
    if f.array_len and f.elem_size * f.array_len == f.size and f.elem_size in (1, 2, 4, 8):
        return pa.list_(_int(f.elem_size, f.signed), f.array_len)
    if f.size in (1, 2, 4, 8) and not f.array_len:
        return _int(f.size, f.signed)
    return pa.list_(pa.uint8(), f.size)


def test_parquet_equals_jsonl_for_every_event_type_of_a_real_capture(workload_capture, tmp_path):
    cap, _ = workload_capture
    r = cc.cli("events", cap, "--format", "jsonl", timeout=300)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = [json.loads(ln) for ln in r.stdout.splitlines()]
    out = tmp_path / "events.parquet"
    r = cc.cli("events", cap, "--format", "parquet", "-o", out, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"wrote {len(lines):,} events to {out}" in r.stderr

    formats = {f.name: f for f in Decoder(cap).format_list}
    by_event: dict[str, list[int]] = {}
    for i, ln in enumerate(lines):
        by_event.setdefault(ln["event"], []).append(i)
    assert len(by_event) >= 5, f"too few event types in the capture: {sorted(by_event)}"
    assert sorted(p.stem for p in out.iterdir()) == sorted(by_event)
    for name, seqs in by_event.items():
        path = out / f"{name}.parquet"
        table = pq.read_table(path)
        fmt = formats[name]
        want_schema = COMMON + [(record_key(f.name), declared_type(f)) for f in fmt.own_fields if f.size or f.is_flexible]
        assert [(f.name, f.type) for f in table.schema] == want_schema, name
        rows = table.to_pylist()
        assert [row["seq"] for row in rows] == seqs, f"{name}: not the events of this type in time order"
        for row in rows:
            seq = row.pop("seq")
            assert row == lines[seq], f"{name} event {seq}: parquet {row} != jsonl {lines[seq]}"

        df = pd.read_parquet(path)
        assert len(df) == len(seqs) and list(df.columns) == [k for k, _ in want_schema]
        for k, t in want_schema:
            if pa.types.is_integer(t):
                assert df[k].dtype == t.to_pandas_dtype(), (name, k, df[k].dtype)
        first = lines[seqs[0]]
        assert {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in df.iloc[0].items() if k != "seq"} == first

    con = duckdb.connect()
    glob = str(out / "*.parquet")
    n, first_seq, last_seq = con.execute(
        f"SELECT count(*), min(seq), max(seq) FROM read_parquet('{glob}', union_by_name=true)").fetchone()
    assert (n, first_seq, last_seq) == (len(lines), 0, len(lines) - 1)
    got = con.execute(f"SELECT seq, ts, cpu, tid, event FROM read_parquet('{glob}', union_by_name=true) "
                      "ORDER BY seq").fetchall()
    assert got == [(i, ln["ts"], ln["cpu"], ln["tid"], ln["event"]) for i, ln in enumerate(lines)]
    switch = out / "sched_switch.parquet"
    if switch.exists():
        cols = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '{switch}')").fetchall())
        assert cols["prev_comm"] == "VARCHAR" and cols["prev_pid"] == "INTEGER" and cols["prev_state"] == "BIGINT"
