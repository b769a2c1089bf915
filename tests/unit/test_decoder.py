"""The decoder on hand-built capture directories: kernel format files (tests/data, copied from a
6.18 kernel) and pages synthesized on two CPUs."""

from __future__ import annotations

import csv
import io
import json
import random
import struct

import numpy as np
import pytest
from rb_builder import PAGE, PageBuilder, load_format, pack_event, write_capture

from ftraceipc.decode.decoder import Decoder, WarningKind, decode_stats
from ftraceipc.decode.render import format_ts, latency_flags, render_events, render_info
from ftraceipc.errors import CaptureFormatError

EVENTS = ["syscalls:sys_enter_write", "syscalls:sys_exit_write", "sched:sched_switch", "sched:sched_process_exec",
          "ftrace:print"]
ENTER = load_format("syscalls:sys_enter_write")
EXIT = load_format("syscalls:sys_exit_write")
SWITCH = load_format("sched:sched_switch")
EXEC = load_format("sched:sched_process_exec")
PRINT = load_format("ftrace:print")
LONG_PATH = "/usr/lib/" + "x" * 300 + "/true"


def enter(pid=100, fd=3, buf=0xDEAD, count=5):
    return pack_event(ENTER, {"__syscall_nr": 1, "fd": fd, "buf": buf, "count": count}, pid=pid)


def switch(prev="writer", prev_pid=100, nxt="swapper/0", next_pid=0, state=1):
    return pack_event(SWITCH, {"prev_comm": prev, "prev_pid": prev_pid, "prev_prio": 120, "prev_state": state,
                               "next_comm": nxt, "next_pid": next_pid, "next_prio": 120}, pid=prev_pid,
                      flags=0x01, preempt=0x02)


def print_event(text: bytes, pid=100):
    rec = np.zeros(1, dtype=PRINT.dtype)
    rec["common_type"], rec["common_pid"], rec["ip"] = PRINT.id, pid, 0xFFFF
    return rec.tobytes() + text + b"\0"


def unknown_event(eid=9999):
    return struct.pack("<HBBi", eid, 0, 0, 100) + b"\0" * 8


@pytest.fixture
def basic(tmp_path):
    p0 = PageBuilder(1000)
    p0.event(enter(), 10)                                                           # 1010
    p0.event(pack_event(EXIT, {"__syscall_nr": 1, "ret": -11}), 5)                   # 1015
    p0.event(switch(), 5)                                                            # 1020
    p1 = PageBuilder(1000)
    p1.event(pack_event(EXEC, {"pid": 200, "old_pid": 200}, {"filename": LONG_PATH}, pid=200), 12)  # 1012 (long)
    p1.event(switch("reader", 200, "writer", 100, 0), 8)                             # 1020: tie, after cpu0
    p1.event(unknown_event(), 10)                                                    # 1030
    p1.event(print_event(b"hello\n", pid=200), 10)                                   # 1040
    cap = write_capture(tmp_path / "basic.ftipc", {0: [p0.build()], 1: [p1.build()]}, EVENTS)
    return cap


def test_global_order_fields_and_strings(basic):
    dec = Decoder(basic)
    recs = list(dec.iter_records())
    assert [(r["ts"], r["cpu"], r["event"]) for r in recs] == [
        (1010, 0, "sys_enter_write"), (1012, 1, "sched_process_exec"), (1015, 0, "sys_exit_write"),
        (1020, 0, "sched_switch"), (1020, 1, "sched_switch"), (1040, 1, "print")]
    assert recs[0] == {"ts": 1010, "cpu": 0, "tid": 100, "event": "sys_enter_write", "__syscall_nr": 1, "fd": 3,
                       "buf": 0xDEAD, "count": 5}
    assert recs[1]["filename"] == LONG_PATH and recs[1]["pid"] == 200 and recs[1]["tid"] == 200
    assert recs[2]["ret"] == -11
    assert recs[3]["prev_comm"] == "writer" and recs[3]["next_comm"] == "swapper/0" and recs[3]["prev_state"] == 1
    assert recs[4]["prev_comm"] == "reader" and recs[4]["next_pid"] == 100
    assert recs[5]["buf"] == "hello\n" and recs[5]["ip"] == 0xFFFF


def test_batch_tables(basic):
    [batch] = list(Decoder(basic).batches())
    sw = batch.events["sched_switch"]
    assert len(sw) == 2 and sw.ts.tolist() == [1020, 1020] and sw.cpu.tolist() == [0, 1]
    assert sw.columns["prev_comm"].tolist() == [b"writer", b"reader"]
    assert sw.columns["next_pid"].dtype == np.int32 and sw.flags.tolist() == [1, 1]
    assert sw.preempt_count.tolist() == [2, 2]
    assert batch.event_id[sw.index].tolist() == [SWITCH.id, SWITCH.id]
    assert batch.row[sw.index].tolist() == [0, 1]
    assert set(batch.by_id) == {ENTER.id, EXIT.id, SWITCH.id, EXEC.id, PRINT.id}
    assert batch.events["sched_process_exec"].columns["filename"][0] == LONG_PATH
    assert "common_type" not in sw.columns and "common_pid" not in sw.columns
    assert sw.to_pandas()["prev_comm"].tolist() == [b"writer", b"reader"]


def test_unknown_ids_are_counted_not_fatal(basic):
    dec = Decoder(basic)
    n = sum(len(b) for b in dec.batches())
    st = dec.stats()
    assert n == 6 and st.events == 6 and st.unknown_ids == {9999: 1}
    assert any(w.kind is WarningKind.UNKNOWN_EVENT and "9999" in w.message for w in st.warnings)


def test_event_filter_and_limit(basic):
    dec = Decoder(basic)
    assert [r["event"] for r in dec.iter_records(events=["sched_switch"])] == ["sched_switch"] * 2
    assert len(list(dec.iter_records(limit=3))) == 3
    assert [r["event"] for r in dec.iter_records(events=["sched:sched_process_exec"])] == ["sched_process_exec"]


def _random_capture(tmp_path, seed: int, pages_per_cpu: int = 12):
    """Two CPUs of many pages, with time extends, absolute stamps and discarded events mixed in."""
    rng = random.Random(seed)
    expected = []
    cpu_pages = {}
    for cpu in (0, 1):
        ts = 5000 + cpu * 3
        pages = []
        seq = 0
        for _ in range(pages_per_cpu):
            b = PageBuilder(ts)
            while True:
                kind = rng.random()
                if kind < 0.05 and b.room >= 8:
                    b.extend(rng.randint(1 << 27, 1 << 30))
                    continue
                if kind < 0.08 and b.room >= 8:
                    b.stamp(b.ts + rng.randint(0, 50))
                    continue
                if kind < 0.1 and b.room >= 16:
                    b.discarded(16, rng.randint(1, 100))
                    continue
                delta = rng.choice([0, 0, 1, 7, 100, 5000])
                pid = rng.randint(1, 50)
                payload = enter(pid=pid, fd=seq) if rng.random() < 0.7 else switch(prev_pid=pid)
                if len(payload) + 4 > b.room:
                    break
                b.event(payload, delta)
                expected.append((b.ts, cpu, seq, pid))
                seq += 1
            pages.append(b.build())
            ts = b.ts
        cpu_pages[cpu] = pages
    cap = write_capture(tmp_path / f"r{seed}.ftipc", cpu_pages, EVENTS)
    expected.sort(key=lambda e: (e[0], e[1]))  # stable: each CPU's order kept
    return cap, expected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_merge_is_the_same_whatever_the_chunk_size(tmp_path, seed):
    cap, expected = _random_capture(tmp_path, seed)
    want = [(t, c, pid) for t, c, _, pid in expected]
    for chunk in (1, 2, 5, 1000):
        dec = Decoder(cap, chunk_pages=chunk)
        got = [(r["ts"], r["cpu"], r["tid"]) for r in dec.iter_records()]
        assert got == want, f"chunk_pages={chunk}"
        assert not dec.warnings
    batches = list(Decoder(cap, chunk_pages=1).batches())
    assert len(batches) > 2  # really streamed
    for b in batches:
        assert np.all(np.diff(b.ts) >= 0)


def test_truncated_file_warns_with_file_and_offset(tmp_path):
    p = PageBuilder(1)
    p.event(enter(), 1)
    q = PageBuilder(2)
    q.event(enter(pid=7), 1)
    cap = write_capture(tmp_path / "t.ftipc", {0: [p.build()], 1: [q.build(), q.build()]}, EVENTS,
                        extra_bytes={1: b"\x01" * 100})
    dec = Decoder(cap)
    assert len(list(dec.iter_records())) == 3
    [w] = [w for w in dec.warnings if w.kind is WarningKind.TRUNCATED_FILE]
    assert w.path.endswith("cpu1.raw") and w.offset == 2 * PAGE and w.cpu == 1
    assert "cpu1.raw" in str(w) and str(2 * PAGE) in str(w)
    with pytest.raises(CaptureFormatError) as e:
        list(Decoder(cap, strict=True).iter_records())
    assert e.value.path.endswith("cpu1.raw") and e.value.offset == 2 * PAGE


def test_corrupt_page_is_skipped_and_reported(tmp_path):
    good = PageBuilder(1)
    good.event(enter(), 1)
    bad = bytearray(good.build())
    bad[8:16] = struct.pack("<Q", 5000)  # commit larger than the page
    cap = write_capture(tmp_path / "c.ftipc", {0: [good.build(), bytes(bad), good.build()]}, EVENTS)
    dec = Decoder(cap)
    assert len(list(dec.iter_records())) == 2
    [w] = [w for w in dec.warnings if w.kind is WarningKind.CORRUPT_PAGE]
    assert w.offset == PAGE + 8 and w.path.endswith("cpu0.raw")
    assert dec.stats().per_cpu[0].corrupt_pages == 1


def test_lost_events_accounting(tmp_path):
    a = PageBuilder(10)
    a.event(enter(), 1)
    b = PageBuilder(20)
    b.event(enter(), 1)
    c = PageBuilder(30)
    c.event(enter(), 1)
    cap = write_capture(tmp_path / "l.ftipc", {0: [a.build(), b.build(missed_count=42), c.build(missed=True)]},
                        EVENTS)
    dec = Decoder(cap)
    [batch] = list(dec.batches())
    assert [(m.cpu, m.count, m.position) for m in batch.lost] == [(0, 42, 1), (0, None, 2)]
    st = dec.stats()
    cs = st.per_cpu[0]
    assert (cs.pages, cs.pages_missed, cs.missed_events, cs.pages_missed_unknown) == (3, 2, 42, 1)
    assert st.first_ts == 11 and st.last_ts == 31 and st.duration == 20
    out = io.StringIO()
    render_events(cap, out, format="text")
    assert "CPU:0 [LOST 42 EVENTS]" in out.getvalue() and "CPU:0 [LOST EVENTS]" in out.getvalue()


def test_missing_cpu_file_and_empty_capture(tmp_path):
    cap = write_capture(tmp_path / "e.ftipc", {0: [], 1: []}, EVENTS)
    cap.cpu_path(1).unlink()
    dec = Decoder(cap)
    assert list(dec.iter_records()) == []
    assert any(w.kind is WarningKind.MISSING_FILE for w in dec.warnings)
    st = decode_stats(cap)
    assert st.events == 0 and st.first_ts is None and st.duration is None


# --- rendering ------------------------------------------------------------------------------------------
def test_render_jsonl(basic):
    out = io.StringIO()
    assert render_events(basic, out, format="jsonl") == 6
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert list(lines[0]) == ["ts", "cpu", "tid", "event", "__syscall_nr", "fd", "buf", "count"]
    assert lines[0]["buf"] == 0xDEAD and lines[1]["filename"] == LONG_PATH
    out = io.StringIO()
    render_events(basic, out, format="jsonl", events=["sched_switch"], limit=1)
    assert [json.loads(x)["prev_comm"] for x in out.getvalue().splitlines()] == ["writer"]


def test_render_text(basic):
    out = io.StringIO()
    render_events(basic, out, format="text")
    lines = out.getvalue().splitlines()
    assert len(lines) == 6
    assert lines[0] == ("          writer-100     [000] .....     0.000001: sys_enter_write: "
                        "__syscall_nr=1 fd=3 buf=0xdead count=5")
    assert lines[3].startswith("          writer-100     [000] d..2.     0.000001: sched_switch: prev_comm=writer ")


def test_render_csv(basic):
    out = io.StringIO()
    render_events(basic, out, format="csv", events=["sched_switch"])
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0][:5] == ["ts", "cpu", "tid", "event", "prev_comm"]
    assert len(rows) == 3 and rows[1][3] == "sched_switch" and rows[2][4] == "reader"


def test_render_unknown_event_name(basic):
    from ftraceipc.errors import CommandError

    with pytest.raises(CommandError):
        render_events(basic, io.StringIO(), events=["nope"])


def test_render_info(basic):
    out = io.StringIO()
    render_info(basic, out, format="json")
    d = json.loads(out.getvalue())
    assert d["events"] == 6 and d["by_event"]["sched_switch"] == 2 and d["unknown_ids"] == {"9999": 1}
    assert d["per_cpu"]["1"]["events"] == 3 and d["first_ts"] == 1010 and d["duration"] == 30
    out = io.StringIO()
    render_info(basic, out)
    text = out.getvalue()
    assert "events    6" in text and "sched_switch" in text and "9999" in text


def test_format_helpers():
    assert format_ts(1_234_567_890_499, True) == " 1234.567890"
    assert format_ts(1_234_567_890_500, True) == " 1234.567891"  # rounded like ns2usecs
    assert format_ts(42, False) == "          42"
    assert latency_flags(0, 0) == "....."
    assert latency_flags(0x01, 0x02) == "d..2."
    assert latency_flags(0x01 | 0x10, 0x04) == "d.s4."
    assert latency_flags(0x01 | 0x80 | 0x04 | 0x08, 0x21) == "Dnh12"


def test_rel_loc_and_dynamic_arrays(tmp_path):
    rel = load_format("sample:foo_rel_loc")
    dma = load_format("dma:dma_unmap_sg")
    addrs = np.array([0x1000, 0xFFFF_FFFF_0000], dtype="<u8")
    p = PageBuilder(100)
    p.event(pack_event(rel, {"bar": 7}, {"foo": "relative"}), 1)
    p.event(pack_event(dma, {"dir": 2, "attrs": 0x20}, {"device": "0000:00:1f.2", "addrs": addrs.tobytes()}), 1)
    cap = write_capture(tmp_path / "d.ftipc", {0: [p.build()]}, ["sample:foo_rel_loc", "dma:dma_unmap_sg"])
    r1, r2 = Decoder(cap).iter_records()
    assert r1["foo"] == "relative" and r1["bar"] == 7
    assert r2["device"] == "0000:00:1f.2" and r2["addrs"] == addrs.tolist() and r2["dir"] == 2
    [batch] = Decoder(cap).batches()
    col = batch.events["dma_unmap_sg"].columns["addrs"]
    assert col.dtype == object and col[0].dtype == np.dtype("<u8")


def test_dynamic_location_outside_the_record_decodes_empty(tmp_path):
    raw = bytearray(pack_event(EXEC, {"pid": 1, "old_pid": 1}, {"filename": "/bin/sh"}))
    raw[8:12] = struct.pack("<I", (50 << 16) | 500)  # __data_loc: 50 bytes at offset 500
    p = PageBuilder(1)
    p.event(bytes(raw), 1)
    cap = write_capture(tmp_path / "o.ftipc", {0: [p.build()]}, EVENTS)
    [r] = Decoder(cap).iter_records()
    assert r["filename"] == "" and r["pid"] == 1


def test_short_record_is_reported(tmp_path):
    p = PageBuilder(1)
    p.event(enter()[:20], 1)  # sys_enter_write needs 40 bytes
    p.event(enter(), 1)
    cap = write_capture(tmp_path / "s.ftipc", {0: [p.build()]}, EVENTS)
    dec = Decoder(cap)
    assert len(list(dec.iter_records())) == 1
    assert dec.stats().short_records == 1
    assert any(w.kind is WarningKind.SHORT_RECORD for w in dec.warnings)


# --- what a damaged capture must not hide (issue #10) -----------------------------------------------
@pytest.mark.parametrize("name", ["header_page", "header_event"])
def test_missing_header_is_an_error_naming_the_file_unless_assumed(tmp_path, name, monkeypatch):
    from ftraceipc.decode.decoder import ASSUME_LAYOUT_ENV

    p = PageBuilder(1)
    p.event(enter(), 1)
    cap = write_capture(tmp_path / "h.ftipc", {0: [p.build()]}, EVENTS)
    (cap.tracefs_dir / name).unlink()
    monkeypatch.delenv(ASSUME_LAYOUT_ENV, raising=False)
    with pytest.raises(CaptureFormatError) as e:
        Decoder(cap)
    assert str(cap.tracefs_dir / name) in e.value.line() and "--assume-page-layout" in e.value.line()
    dec = Decoder(cap, assume_page_layout=True)  # the explicit override: decoded, and said
    assert len(list(dec.iter_records())) == 1
    assert [w.kind for w in dec.warnings] == [WarningKind.MISSING_HEADER]
    monkeypatch.setenv(ASSUME_LAYOUT_ENV, "1")
    assert len(list(Decoder(cap).iter_records())) == 1


def test_cpu_stats_say_what_a_file_lacks(tmp_path):
    p = PageBuilder(1)
    p.event(enter(), 1)
    cap = write_capture(tmp_path / "s.ftipc", {0: [p.build()], 1: [p.build()], 2: [p.build()]}, EVENTS,
                        extra_bytes={1: b"\x01" * 100})
    cap.cpu_path(2).unlink()
    st = Decoder(cap).stats().per_cpu
    assert (st[0].file_bytes, st[0].truncated_bytes, st[0].missing_file) == (PAGE, 0, False)
    assert (st[1].file_bytes, st[1].truncated_bytes, st[1].missing_file) == (PAGE + 100, 100, False)
    assert st[2].missing_file and st[2].path.endswith("cpu2.raw")


def test_undecodable_format_file_bytes_are_a_warning_not_a_crash(tmp_path):
    p = PageBuilder(1)
    p.event(enter(), 1)
    cap = write_capture(tmp_path / "f.ftipc", {0: [p.build()]}, EVENTS)
    f = cap.format_path("sched", "sched_switch")
    f.write_bytes(b"\xff\xfe" + f.read_bytes()[2:])
    dec = Decoder(cap)
    assert len(list(dec.iter_records())) == 1
    assert [w.kind for w in dec.warnings] == [WarningKind.BAD_FORMAT]
