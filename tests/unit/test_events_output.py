"""``events`` output (jsonl, csv, parquet) on hand-built captures full of awkward values.

The columnar writers must give exactly what Python's json and csv modules write for the decoder's
records (``Decoder.iter_records``), the definition of these formats since the first version; the
Parquet files must hold the same values with the fields' own types."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rb_builder import PageBuilder, load_format, pack_event, write_capture

from ftraceipc.decode.decoder import RECORD_KEYS, Decoder, record_key
from ftraceipc.decode.formats import parse_format
from ftraceipc.decode.render import _ROWS, render_events, render_parquet
from ftraceipc.errors import CommandError

REPO = Path(__file__).resolve().parents[2]
EVENTS = ["syscalls:sys_enter_write", "syscalls:sys_exit_write", "sched:sched_switch", "sched:sched_process_exec",
          "ftrace:print", "sample:foo_rel_loc", "dma:dma_unmap_sg", "sock:sock_send_length"]
# fixed arrays of integers (no kernel event of the test data has one), and fields named like the common keys
ARRAYS_FORMAT = """name: arrays
ID: 1777
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:__u8 saddr[4];\toffset:8;\tsize:4;\tsigned:0;
\tfield:short ports[3];\toffset:12;\tsize:6;\tsigned:1;
\tfield:s64 vals[2];\toffset:24;\tsize:16;\tsigned:1;
\tfield:int cpu;\toffset:40;\tsize:4;\tsigned:1;
\tfield:u64 ts;\toffset:48;\tsize:8;\tsigned:0;

print fmt: "arrays"
"""
ARRAYS = parse_format(ARRAYS_FORMAT, "test")
# awkward strings: every character JSON escapes or CSV quotes, non-ASCII, invalid UTF-8, empty, full width
TEXTS = ["plain", 'say "hi"', "back\\slash", "a,b", "line\nbreak", "cr\rhere", "tab\there", "\x01\x1f", "é✓ü",
         "", "x" * 15, "semi;colon", "'single'", " lead"]
RAW_COMMS = [b"bad\xff\xfeutf", b"\xc3(", b"ok\xc3\xa9"]
INTS = [0, 1, -1, 9, 10, 99, 100, 999, 1000, 9999, 10000, -10000, 2**31 - 1, -2**31]
I64 = [2**63 - 1, -2**63, -1, 0, 10**15, -10**15 - 7]
U64 = [0, 1, 2**64 - 1, 2**63, 0xFFFF_8881_3EBD_4900, 10**19]


def _event(rng: random.Random, i: int) -> bytes:
    k = i % 9
    pid = rng.choice([0, 1, 100, 200, 2**31 - 1, 4_194_304])
    if k == 0:
        return pack_event(load_format("syscalls:sys_enter_write"),
                          {"__syscall_nr": 1, "fd": rng.choice(U64), "buf": rng.choice(U64), "count": rng.choice(U64)},
                          pid=pid)
    if k == 1:
        return pack_event(load_format("syscalls:sys_exit_write"), {"__syscall_nr": 1, "ret": rng.choice(I64)}, pid=pid)
    if k == 2:
        comm = rng.choice(TEXTS + RAW_COMMS)
        return pack_event(load_format("sched:sched_switch"),
                          {"prev_comm": comm, "prev_pid": rng.choice(INTS), "prev_prio": rng.choice(INTS),
                           "prev_state": rng.choice(I64), "next_comm": rng.choice(TEXTS), "next_pid": pid,
                           "next_prio": 120}, pid=pid)
    if k == 3:
        return pack_event(load_format("sched:sched_process_exec"), {"pid": pid, "old_pid": rng.choice(INTS)},
                          {"filename": rng.choice(TEXTS) + "/" + "y" * rng.randrange(0, 300)}, pid=pid)
    if k == 4:
        fmt = load_format("ftrace:print")
        rec = np.zeros(1, dtype=fmt.dtype)
        rec["common_type"], rec["common_pid"], rec["ip"] = fmt.id, pid, rng.choice(U64)
        return rec.tobytes() + rng.choice(TEXTS).encode() + b"\n\0"
    if k == 5:
        return pack_event(load_format("sample:foo_rel_loc"), {"bar": rng.choice([0, 7, 2**32 - 1])},
                          {"foo": rng.choice(TEXTS)}, pid=pid)
    if k == 6:
        addrs = np.array([rng.choice(U64) for _ in range(rng.randrange(0, 4))], dtype="<u8")
        return pack_event(load_format("dma:dma_unmap_sg"), {"dir": rng.choice([0, 2, 2**32 - 1]), "attrs": rng.choice(U64)},
                          {"device": rng.choice(TEXTS), "addrs": addrs.tobytes()}, pid=pid)
    if k == 7:
        return pack_event(load_format("sock:sock_send_length"),
                          {"sk": rng.choice(U64), "family": rng.choice([0, 1, 65535]), "protocol": 0,
                           "ret": rng.choice(INTS), "flags": rng.choice(INTS)}, pid=pid)
    return pack_event(ARRAYS, {"saddr": [rng.randrange(256) for _ in range(4)],
                               "ports": [rng.choice([-32768, -1, 0, 32767, 80]) for _ in range(3)],
                               "vals": [rng.choice(I64) for _ in range(2)], "cpu": rng.choice(INTS),
                               "ts": rng.choice(U64)}, pid=pid)


def _capture(root: Path, n: int, seed: int = 7, cpus: int = 2, start_ts: int = 1000,
             step_back: tuple[int, int] | None = None):
    """``n`` events of all types over ``cpus`` CPUs (ties between CPUs included). ``step_back``
    (cpu, page): that page of that CPU starts 5,000 ns before the previous one ended (a clock step
    back, so the merge key, the CPU's running maximum, differs from ts there)."""
    rng = random.Random(seed)
    pages: dict[int, list[bytes]] = {c: [] for c in range(cpus)}
    for cpu in pages:
        p = PageBuilder(start_ts)
        for i in range(n // cpus):
            ev = _event(rng, i + cpu)
            if p.room < len(ev) + 16:
                pages[cpu].append(p.build())
                p = PageBuilder(p.ts - 5000 if step_back == (cpu, len(pages[cpu])) else p.ts)
            p.event(ev, rng.choice([0, 1, 3, 50]))
        pages[cpu].append(p.build())
    cap = write_capture(root, pages, EVENTS)
    dst = cap.format_path("test", "arrays")
    dst.parent.mkdir(parents=True)
    dst.write_text(ARRAYS_FORMAT)
    return cap


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    return _capture(tmp_path_factory.mktemp("events") / "awkward.ftipc", 3 * _ROWS + 1234)


def _reference_jsonl(cap, **kw) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n"
                   for r in Decoder(cap).iter_records(**kw))


def _reference_csv(cap, events=None, limit=None) -> str:
    dec = Decoder(cap)
    names = None if events is None else {dec.event_format(e).full_name for e in events}
    keys: list[str] = []
    for f in dec.format_list:
        if names is None or f.full_name in names:
            keys += [record_key(x.name) for x in f.own_fields if record_key(x.name) not in keys]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(list(RECORD_KEYS) + keys)
    for r in dec.iter_records(events=events, limit=limit):
        w.writerow([r["ts"], r["cpu"], r["tid"], r["event"]] +
                   ["[" + ",".join(map(str, v)) + "]" if isinstance(v, list) else v for v in
                    (r.get(k, "") for k in keys)])
    return out.getvalue()


def _rendered(cap, fmt, **kw) -> str:
    out = io.StringIO()
    n = render_events(cap, out, format=fmt, **kw)
    assert n == len(list(Decoder(cap).iter_records(events=kw.get("events"), limit=kw.get("limit"))))
    return out.getvalue()


def test_jsonl_is_exactly_what_python_json_writes_for_every_record(awkward):
    got = _rendered(awkward, "jsonl")
    assert got.count("\n") == 3 * _ROWS + 1234
    assert got == _reference_jsonl(awkward)


def test_csv_is_exactly_what_python_csv_writes_for_every_record(awkward):
    assert _rendered(awkward, "csv") == _reference_csv(awkward)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("limit,events", [(0, None), (1, None), (_ROWS + 5, None), (50, ["sched_switch", "arrays"]),
                                          (None, ["print"])])
def test_limit_and_event_filter_keep_the_same_lines(awkward, fmt, limit, events):
    got = _rendered(awkward, fmt, limit=limit, events=events)
    want = (_reference_jsonl(awkward, limit=limit, events=events) if fmt == "jsonl"
            else _reference_csv(awkward, events=events, limit=limit))
    assert got == want


def test_small_batches_give_the_same_output(awkward):
    """Batch (chunk) boundaries fall anywhere: the lines do not depend on them."""
    for fmt in ("jsonl", "csv"):
        small = io.StringIO()
        render_events(Decoder(awkward, chunk_pages=3), small, format=fmt)
        assert small.getvalue() == _rendered(awkward, fmt)


def _parquet_rows(path: Path) -> dict[str, list[dict]]:
    out = {}
    for f in sorted(path.iterdir()):
        assert f.suffix == ".parquet"
        t = pq.read_table(f)
        out[f.stem] = t.to_pylist()
    return out


def test_parquet_rows_equal_the_records_and_keep_the_field_types(awkward, tmp_path):
    out = tmp_path / "ev.parquet"
    n = render_parquet(awkward, out)
    recs = list(Decoder(awkward).iter_records())
    assert n == len(recs)
    files = _parquet_rows(out)
    assert sorted(files) == sorted({r["event"] for r in recs})
    seen = 0
    for name, rows in files.items():
        for row in rows:
            seq = row.pop("seq")
            assert row == recs[seq], (name, seq)
        assert [r["seq"] for r in pq.read_table(out / f"{name}.parquet", columns=["seq"]).to_pylist()] == \
            sorted(i for i, r in enumerate(recs) if r["event"] == name)
        seen += len(rows)
    assert seen == len(recs)
    s = pq.read_schema(out / "sched_switch.parquet")
    assert [(f.name, f.type) for f in s][:5] == [("seq", pa.int64()), ("ts", pa.int64()), ("cpu", pa.int32()),
                                                 ("tid", pa.int32()), ("event", pa.string())]
    assert s.field("prev_comm").type == pa.string() and s.field("prev_pid").type == pa.int32()
    assert s.field("prev_state").type == pa.int64()
    s = pq.read_schema(out / "sys_enter_write.parquet")
    assert s.field("fd").type == pa.uint64() and s.field("__syscall_nr").type == pa.int32()
    s = pq.read_schema(out / "sock_send_length.parquet")
    assert s.field("family").type == pa.uint16() and s.field("sk").type == pa.uint64()
    s = pq.read_schema(out / "arrays.parquet")
    assert s.field("saddr").type == pa.list_(pa.uint8(), 4) and s.field("ports").type == pa.list_(pa.int16(), 3)
    assert s.field("vals").type == pa.list_(pa.int64(), 2)
    assert s.field("field.cpu").type == pa.int32() and s.field("field.ts").type == pa.uint64()
    s = pq.read_schema(out / "dma_unmap_sg.parquet")
    assert s.field("addrs").type == pa.list_(pa.uint64()) and s.field("device").type == pa.string()
    assert pq.read_schema(out / "print.parquet").field("buf").type == pa.string()


def test_parquet_limit_and_events(awkward, tmp_path):
    out = tmp_path / "few"
    assert render_parquet(awkward, out, limit=100, events=["sched_switch", "print"]) == 100
    rows = [r for rs in _parquet_rows(out).values() for r in rs]
    assert sorted(r["seq"] for r in rows) == list(range(100))
    recs = list(Decoder(awkward).iter_records(events=["sched_switch", "print"], limit=100))
    assert all({k: v for k, v in r.items() if k != "seq"} == recs[r["seq"]] for r in rows)


def _three_cpus_going_back(root: Path):
    """Three CPUs; ties between CPUs; CPU 1's fourth page starts before its third ended."""
    return _capture(root, 9000, seed=11, cpus=3, start_ts=1_000_000, step_back=(1, 3))


def _parquet_tables(path: Path) -> dict[str, pa.Table]:
    return {f.name: pq.read_table(f) for f in sorted(path.iterdir())}


@pytest.mark.parametrize("events", [None, ["sched_switch", "print", "arrays"]])
def test_parquet_from_parallel_processes_equals_one_process(tmp_path, events):
    """Each process decodes whole CPU files, then writes whole event types: the files must be the
    ones a single streaming process writes, ``seq`` included (the decoder's order: key, then CPU)."""
    cap = _three_cpus_going_back(tmp_path / "cap.ftipc")
    one = tmp_path / "one"
    n = render_parquet(cap, one, events=events, jobs=1)
    want = _parquet_tables(one)
    seqs = sorted(s for t in want.values() for s in t.column("seq").to_pylist())
    assert seqs == list(range(n)) and n > 1000
    ts_by_seq = dict(x for t in want.values() for x in zip(t.column("seq").to_pylist(), t.column("ts").to_pylist()))
    assert any(ts_by_seq[i + 1] < ts_by_seq[i] for i in range(n - 1)), "the capture has no step back in time"
    for jobs in (2, 3):
        out = tmp_path / f"jobs{jobs}"
        assert render_parquet(cap, out, events=events, jobs=jobs) == n
        got = _parquet_tables(out)
        assert sorted(got) == sorted(want)
        for name, t in want.items():
            assert got[name].equals(t), f"{name}: {jobs} processes wrote other rows than one process"


def test_parquet_from_parallel_processes_reports_the_decoders_warnings(tmp_path):
    cap = _three_cpus_going_back(tmp_path / "cap.ftipc")
    f = cap.cpu_path(2)
    f.write_bytes(f.read_bytes()[:-1000])  # cpu2's file ends inside a page
    warned = {}
    for jobs in (1, 2):
        dec = Decoder(cap)
        render_parquet(dec, tmp_path / f"out{jobs}", jobs=jobs)
        warned[jobs] = sorted(map(str, dec.warnings))
    assert warned[1] and any("ends inside a page" in w for w in warned[1])
    assert warned[2] == warned[1]


def test_parquet_refuses_to_replace_what_it_did_not_write(awkward, tmp_path):
    out = tmp_path / "out"
    render_parquet(awkward, out, limit=10)
    with pytest.raises(CommandError) as e:
        render_parquet(awkward, out, limit=10)
    assert e.value.line() == f"{out} exists: add --force to replace it"
    assert render_parquet(awkward, out, limit=20, force=True) == 20  # an earlier output: replaced
    assert sum(len(r) for r in _parquet_rows(out).values()) == 20
    other = tmp_path / "home"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(CommandError) as e:
        render_parquet(awkward, other, force=True)
    assert "not a directory written by --format parquet" in e.value.line()
    assert (other / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "out"]  # no temporary left


def _cli(*args) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "ftraceipc", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


def _one_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ftraceipc: error: "), r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_cli_parquet_errors_are_one_line(awkward, tmp_path):
    _one_error(_cli("events", awkward.root, "--format", "parquet"), "-o DIR")
    afile = tmp_path / "a-file"
    afile.write_text("x")
    _one_error(_cli("events", awkward.root, "--format", "parquet", "-o", afile / "out"), "is not a directory")
    _one_error(_cli("events", awkward.root, "--format", "parquet", "-o", afile), "exists", "--force")
    _one_error(_cli("events", awkward.root, "--format", "parquet", "-o", afile, "--force"),
               "not a directory written by --format parquet")
    assert afile.read_text() == "x"
    _one_error(_cli("events", awkward.root, "--format", "parquet", "-o", "/proc/ftraceipc-no-such/out"),
               "is not a directory")
    _one_error(_cli("events", awkward.root, "--format", "parquet", "-o", "/proc/ftraceipc-events.parquet"),
               "cannot write /proc/ftraceipc-events.parquet")
    _one_error(_cli("events", awkward.root, "--format", "xml"), "--format 'xml' is not one of")


def test_cli_output_file_for_the_text_formats(awkward, tmp_path):
    out = tmp_path / "ev.jsonl"
    r = _cli("events", awkward.root, "--format", "jsonl", "-o", out, "--limit", 500)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and out.read_text() == _reference_jsonl(awkward, limit=500)
    _one_error(_cli("events", awkward.root, "--format", "csv", "-o", out), "exists", "--force")
    r = _cli("events", awkward.root, "--format", "csv", "-o", out, "--force", "--event", "arrays")
    assert r.returncode == 0 and out.read_text() == _reference_csv(awkward, events=["arrays"])
    r = _cli("events", awkward.root, "--format", "parquet", "-o", tmp_path / "pq", "--limit", 7)
    assert r.returncode == 0, r.stderr
    assert sum(len(x) for x in _parquet_rows(tmp_path / "pq").values()) == 7
