"""The page walkers: hand-built pages with every record kind, corruption, and hypothesis checks that
the vectorized walker equals the reference walker (and the builder's own expectations)."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rb_builder import (DATA, DATA_DIR, DELTA_MAX, MISSED_EVENTS, MISSED_STORED, PAGE, PADDING, TIME_EXTEND,
                        TIME_STAMP, PageBuilder, hdr)

from ftraceipc.decode.formats import parse_header_event, parse_header_page
from ftraceipc.decode.ringbuf import (Corruption, PageLayout, PageWalk, Record, walk_buffer_reference,
                                      walk_pages)

HP = parse_header_page((DATA_DIR / "header_page").read_text())
HE = parse_header_event((DATA_DIR / "header_event").read_text())
LAYOUT = PageLayout.from_headers(HP, HE, PAGE)


def layout_for(page_size: int) -> PageLayout:
    return PageLayout.from_headers(HP, HE, page_size)


def both(buf: bytes, layout: PageLayout = LAYOUT) -> list[PageWalk]:
    """Walk with both walkers, insist they agree, return the reference result."""
    ref = walk_buffer_reference(buf, layout)
    vec = walk_pages(np.frombuffer(buf, dtype=np.uint8), layout)
    assert vec.n_pages == len(ref)
    for i, r in enumerate(ref):
        assert vec.page_walk(i) == r, f"page {i}"
    return ref


def payloads(page: bytes, w: PageWalk, page_start: int = 0) -> list[tuple[int, int, bytes]]:
    return [(r.ts, r.payload_offset - page_start, page[r.payload_offset - page_start:
                                                        r.payload_offset - page_start + r.payload_len])
            for r in w.records]


# --- hand-built pages ---------------------------------------------------------------------------------
def test_small_records_by_hand():
    page = (
        struct.pack("<Q", 1_000_000)          # time_stamp: the page's base time
        + struct.pack("<Q", 20)               # commit: 20 bytes of data, no flags
        + struct.pack("<I", 2 | (5 << 5))     # type_len 2 (8 payload bytes), time_delta 5
        + b"AAAABBBB"                         # payload of event 1
        + struct.pack("<I", 1 | (7 << 5))     # type_len 1 (4 payload bytes), time_delta 7
        + b"CCCC"                             # payload of event 2
    ).ljust(PAGE, b"\0")
    [w] = both(page)
    assert w.error is Corruption.NONE and w.size == 20 and not w.missed_events
    assert payloads(page, w) == [(1_000_005, 20, b"AAAABBBB"), (1_000_012, 32, b"CCCC")]


def test_long_record_type_len_0():
    payload = bytes(range(200))
    page = (
        struct.pack("<QQ", 50, 4 + 4 + 200)   # base ts 50; commit 208
        + struct.pack("<I", 0 | (3 << 5))     # type_len 0: the length is in array[0]; delta 3
        + struct.pack("<I", 204)              # array[0] = payload 200 + the length word itself
        + payload
    ).ljust(PAGE, b"\0")
    [w] = both(page)
    assert w.records == [Record(53, DATA + 8, 200)]
    assert page[DATA + 8:DATA + 208] == payload


def test_time_extend_and_absolute_stamp():
    big = (5 << 27) + 123  # too large for 27 bits
    page = (
        struct.pack("<QQ", 1000, 40)
        + struct.pack("<I", TIME_EXTEND | ((big & DELTA_MAX) << 5))  # TIME_EXTEND, low 27 bits
        + struct.pack("<I", big >> 27)                               # array[0]: the high bits
        + hdr(1, 0) + b"e1__"                                        # event at 1000 + big
        + struct.pack("<I", TIME_STAMP | ((777 & DELTA_MAX) << 5))   # TIME_STAMP: absolute 777 + (9<<27)
        + struct.pack("<I", 9)
        + hdr(1, 2) + b"e2__"                                        # event at stamp + 2
        + hdr(1, 1) + b"e3__"                                        # ... + 1
    ).ljust(PAGE, b"\0")
    [w] = both(page)
    stamp = (9 << 27) + 777
    assert [r.ts for r in w.records] == [1000 + big, stamp + 2, stamp + 3]


def test_time_stamp_takes_back_top_bits():
    """rb_fix_abs_ts: the 5 MSBs come from the current time, with one carry if the low part wrapped."""
    base = (0x3 << 59) + 1000
    b = PageBuilder(base)
    b.stamp((0x3 << 59) + 5000)
    b.event(b"x", 1)
    b.stamp((0x4 << 59) + 10)  # the low 59 bits are below the current ones: the top bits carry
    b.event(b"y", 1)
    [w] = both(b.build())
    assert [r.ts for r in w.records] == [(0x3 << 59) + 5001, (0x4 << 59) + 11]
    assert [t for t, _, _ in b.expected] == [r.ts for r in w.records]


def test_padding_middle_and_end():
    b = PageBuilder(10)
    b.event(b"one_", 1)
    b.discarded(24, delta=99)   # a discarded event: skipped, and its delta does not count
    b.event(b"two_", 2)
    b.end_padding()             # rest of page empty
    page = bytearray(b.build())
    # bytes after the end padding (inside the commit) must be ignored
    commit = len(b.body) + 12
    page[8:16] = struct.pack("<Q", commit)
    page[DATA + len(b.body):DATA + len(b.body) + 12] = hdr(1, 5) + b"junkjunk"
    [w] = both(bytes(page))
    assert [(t, p) for t, _, p in payloads(bytes(page), w)] == [(11, b"one_"), (13, b"two_")]


def test_missed_events_flags_and_stored_count():
    b = PageBuilder(7)
    b.event(b"abcd", 1)
    page = b.build(missed_count=12345)
    commit = struct.unpack_from("<Q", page, 8)[0]
    assert commit & MISSED_EVENTS and commit & MISSED_STORED  # bit 31 and bit 30
    # the count is an unsigned long right after the data
    assert struct.unpack_from("<Q", page, DATA + 8)[0] == 12345
    [w] = both(page)
    assert w.missed_events and w.missed_count == 12345 and w.size == 8
    [w2] = both(PageBuilder(7).build(missed=True))
    assert w2.missed_events and w2.missed_count is None


def test_empty_page():
    [w] = both(struct.pack("<QQ", 5, 0).ljust(PAGE, b"\0"))
    assert w.records == [] and w.error is Corruption.NONE


# --- corruption ---------------------------------------------------------------------------------------
def _page(commit: int, body: bytes) -> bytes:
    return (struct.pack("<QQ", 100, commit) + body).ljust(PAGE, b"\0")


@pytest.mark.parametrize("commit, body, kind, offset", [
    (PAGE, b"", Corruption.COMMIT_TOO_LARGE, 8),                       # more than 4080 bytes of data
    (12, hdr(3, 0) + b"12345678", Corruption.RECORD_PAST_COMMIT, DATA),  # a 16-byte record in 12 bytes
    (8, hdr(2, 0) + b"12345678", Corruption.RECORD_PAST_COMMIT, DATA),   # a 12-byte record in 8
    (10, hdr(1, 0) + b"1234\0\0", Corruption.HEADER_PAST_COMMIT, DATA + 8),  # 2nd header cut by the commit
    (4, hdr(0, 0) + struct.pack("<I", 8), Corruption.HEADER_PAST_COMMIT, DATA),  # array[0] past commit
    (12, hdr(0, 0) + struct.pack("<I", 4) + b"xxxx", Corruption.BAD_LENGTH, DATA),   # type_len 0, length < 8
    (12, hdr(0, 0) + struct.pack("<I", 9) + b"xxxx", Corruption.BAD_LENGTH, DATA),   # not a multiple of 4
    (12, hdr(PADDING, 3) + struct.pack("<I", 6) + b"xxxx", Corruption.BAD_LENGTH, DATA),
    (6, hdr(TIME_EXTEND, 1) + b"\0\0", Corruption.HEADER_PAST_COMMIT, DATA),  # its array[0] is cut
    (4080 - 4 | MISSED_STORED | MISSED_EVENTS, b"", Corruption.MISSED_COUNT_OUTSIDE, DATA + 4076),
])
def test_corruption_is_reported_with_offset(commit, body, kind, offset):
    [w] = both(_page(commit, body))
    assert w.error is kind and w.error_offset == offset and w.records == []


def test_corrupt_page_does_not_hide_its_neighbours():
    good = PageBuilder(1)
    good.event(b"good", 1)
    bad = _page(5000, b"")
    ws = both(good.build() + bad + good.build())
    assert [len(w.records) for w in ws] == [1, 0, 1]
    assert [w.error for w in ws] == [Corruption.NONE, Corruption.COMMIT_TOO_LARGE, Corruption.NONE]


def test_partial_trailing_page_is_not_walked():
    b = PageBuilder(1)
    b.event(b"good", 1)
    buf = b.build() + b"\x01" * 100
    assert len(both(buf)) == 1


# --- hypothesis ---------------------------------------------------------------------------------------
OPS = st.one_of(
    st.tuples(st.just("event"), st.integers(1, 120), st.integers(0, DELTA_MAX), st.booleans()),
    st.tuples(st.just("extend"), st.integers(0, 1 << 40)),
    st.tuples(st.just("stamp"), st.integers(0, (1 << 63) - 1)),
    st.tuples(st.just("discard"), st.integers(2, 30), st.integers(1, DELTA_MAX)),
)


@st.composite
def valid_pages(draw, page_size: int | None = None):
    ps = page_size or draw(st.sampled_from([64, 128, 256, 512, 4096]))
    b = PageBuilder(draw(st.integers(0, (1 << 62))), page_size=ps)
    for op in draw(st.lists(OPS, max_size=60)):
        if op[0] == "event":
            n = op[1] + (-op[1] % 4)
            need = n + (8 if n > 112 or op[3] else 4)
            if need > b.room:
                break
            b.event(bytes([len(b.expected) & 0xFF]) * op[1], op[2], force_long=op[3])
        elif b.room < 8:
            break
        elif op[0] == "extend":
            b.extend(op[1])
        elif op[0] == "stamp":
            b.stamp(max(op[1], b.ts) if op[1] % 3 else op[1])
        elif op[0] == "discard":
            if op[1] * 4 > b.room:
                break
            b.discarded(op[1] * 4, op[2])
    missed = draw(st.sampled_from(["none", "flag", "count"]))
    if missed == "count" and b.room >= 8:
        page = b.build(missed_count=draw(st.integers(0, 1 << 40)))
    else:
        page = b.build(missed=missed != "none")
    return ps, page, b.expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_pages())
def test_walkers_agree_on_valid_pages(case):
    ps, page, expected = case
    [w] = both(page, layout_for(ps))
    assert w.error is Corruption.NONE
    assert [(r.ts, r.payload_offset) for r in w.records] == [(t, o) for t, o, _ in expected]
    assert [page[r.payload_offset:r.payload_offset + r.payload_len] for r in w.records] == [p for _, _, p in expected]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_pages(page_size=256), min_size=1, max_size=8))
def test_walkers_agree_on_many_pages_at_once(cases):
    buf = b"".join(p for _, p, _ in cases)
    ws = both(buf, layout_for(256))
    for i, (w, (_, _, expected)) in enumerate(zip(ws, cases)):
        assert [(r.ts, r.payload_offset - i * 256) for r in w.records] == [(t, o) for t, o, _ in expected]


@st.composite
def arbitrary_pages(draw):
    """Random bytes behind a plausible commit word, or a valid page with random bytes flipped."""
    ps = draw(st.sampled_from([64, 128, 256]))
    if draw(st.booleans()):
        body = draw(st.binary(min_size=ps - DATA, max_size=ps - DATA))
        size = draw(st.integers(0, ps))
        flags = draw(st.sampled_from([0, MISSED_EVENTS, MISSED_EVENTS | MISSED_STORED, 0xFFFF0000]))
        return ps, struct.pack("<QQ", draw(st.integers(0, (1 << 64) - 1)), size | flags) + body
    _, page, _ = draw(valid_pages(page_size=ps))
    page = bytearray(page)
    for _ in range(draw(st.integers(1, 8))):
        page[draw(st.integers(0, ps - 1))] = draw(st.integers(0, 255))
    return ps, bytes(page)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(arbitrary_pages(), min_size=1, max_size=4), st.binary(max_size=64))
def test_arbitrary_bytes_never_hang_or_crash(cases, tail):
    ps = cases[0][0]
    buf = b"".join(p[:ps].ljust(ps, b"\0") for _, p in cases) + tail[: ps - 1]
    t0 = time.monotonic()
    ws = both(buf, layout_for(ps))
    assert time.monotonic() - t0 < 5
    for w in ws:
        assert (w.error is Corruption.NONE) == (w.error_offset is None)
        for r in w.records:
            assert r.payload_len >= 0 and r.payload_offset + r.payload_len <= len(buf)


def test_random_full_size_pages():
    """400 pages of random bytes behind commit words small enough to be walked."""
    rng = np.random.default_rng(1234)
    pages = rng.integers(0, 256, size=(400, PAGE), dtype=np.uint8)
    commits = rng.integers(0, PAGE - DATA + 1, size=400).astype("<u8")
    commits[::3] |= MISSED_EVENTS
    pages[:, 8:16] = commits.view(np.uint8).reshape(400, 8)
    # mostly small type_len values so that walks go deep before running into garbage
    pages[:, DATA::4] &= 0x07
    t0 = time.monotonic()
    ws = both(pages.tobytes())
    assert time.monotonic() - t0 < 30
    assert any(w.records for w in ws) and any(w.error is not Corruption.NONE for w in ws)
