"""Walk raw ring-buffer pages: find each record, its timestamp and its payload. Fields are decoded
elsewhere (``decoder.py``); this module only knows the kernel's page and record framing.

Kernel facts (kernel/trace/ring_buffer.c, 6.x), with the layout taken from header_page/header_event:

* A page (sub-buffer) is ``struct buffer_data_page { u64 time_stamp; local_t commit; data[] }``.
  ``time_stamp`` is the base of the first record's delta.
* ``commit`` (read as unsigned int by the kernel) is the number of data bytes used; bit 31
  (RB_MISSED_EVENTS) says events were lost before this page, bit 30 (RB_MISSED_STORED) says the
  number lost is stored as an unsigned long right after the data (at ``data + size``).
  The kernel masks the flags with ``~RB_MISSED_MASK`` (3 << 30) to get the size; libtraceevent uses
  the low 27 bits. Both agree on valid pages; we use the kernel's mask and call a size larger than
  the page's data capacity corruption.
* A record starts with a u32: ``type_len`` (low 5 bits) and ``time_delta`` (high 27 bits).
  type_len 1..28: a data record with ``type_len * 4`` payload bytes after the header.
  type_len 0: ``array[0]`` (the next u32) is the length; the payload follows it and is
  ``array[0] - 4`` bytes; the record is ``array[0] + 4`` bytes.
  29 PADDING: ``time_delta == 0`` means the rest of the page is empty; otherwise a discarded event
  of ``array[0] + 4`` bytes. Padding does not move the timestamp (rb_update_read_stamp).
  30 TIME_EXTEND: ``ts += (array[0] << 27) + time_delta``, 8 bytes.
  31 TIME_STAMP: ``ts = (array[0] << 27) + time_delta``, an absolute time whose top 5 bits were
  dropped; they are taken back from the current ts (rb_fix_abs_ts), 8 bytes.
  Data records: ``ts += time_delta``, and that is the event's time.
* Records are 4-byte aligned (RB_ALIGNMENT); the kernel never writes a length that is not a
  multiple of 4, nor a type_len 0 record shorter than 8 bytes (RB_EVNT_MIN_SIZE). We call those
  corruption too, which keeps every u32 read aligned.

Two walkers give identical results: ``walk_page`` (plain Python, one page, the reference used by
the tests) and ``walk_pages`` (numpy, many pages in lock-step: iteration k handles the k-th record
of every page that still has one, so Python loops about records-per-page times, not per event).
A page with any corruption contributes no records; its error kind and byte offset are reported.
Neither walker can loop forever: every step either stops a page or moves it forward >= 4 bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from ftraceipc.decode.formats import HeaderEvent, HeaderPage

RB_MISSED_EVENTS = 1 << 31
RB_MISSED_STORED = 1 << 30
RB_MISSED_MASK = RB_MISSED_EVENTS | RB_MISSED_STORED
COMMIT_SIZE_MASK = 0xFFFFFFFF & ~RB_MISSED_MASK
TS_MSB = 0xF8 << 56  # the 5 bits an absolute TIME_STAMP loses (rb_fix_abs_ts)
TS_OVERFLOW = 1 << 59
U64 = (1 << 64) - 1
MIN_LONG_RECORD = 8  # type_len 0: array[0] < 8 cannot be written by the kernel
ALIGN = 4


class Corruption(enum.IntEnum):
    """Why a page was rejected. The value is stored per page by ``walk_pages``."""

    NONE = 0
    COMMIT_TOO_LARGE = 1  # commit size > the page's data capacity
    MISSED_COUNT_OUTSIDE = 2  # RB_MISSED_STORED set but no room for the count after the data
    HEADER_PAST_COMMIT = 3  # a record header (or its array[0]) runs past the commit size
    RECORD_PAST_COMMIT = 4  # a record's length runs past the commit size
    BAD_LENGTH = 5  # type_len 0 length < 8, or a length that is not a multiple of 4

    @property
    def text(self) -> str:
        return {
            Corruption.NONE: "ok",
            Corruption.COMMIT_TOO_LARGE: "commit size larger than the page's data area",
            Corruption.MISSED_COUNT_OUTSIDE: "missed-events count stored outside the page",
            Corruption.HEADER_PAST_COMMIT: "record header runs past the commit size",
            Corruption.RECORD_PAST_COMMIT: "record runs past the commit size",
            Corruption.BAD_LENGTH: "impossible record length",
        }[self]


@dataclass(frozen=True)
class Record:
    """One data record: its timestamp and where its payload is inside the page."""

    ts: int
    payload_offset: int
    payload_len: int


@dataclass
class PageWalk:
    """The result of walking one page (reference walker)."""

    base_ts: int
    size: int  # data bytes used (commit without the flags)
    missed_events: bool  # RB_MISSED_EVENTS: events were lost before this page
    missed_count: int | None  # the stored count (RB_MISSED_STORED), else None
    records: list[Record] = field(default_factory=list)
    error: Corruption = Corruption.NONE
    error_offset: int | None = None  # byte offset in the page


@dataclass(frozen=True)
class PageLayout:
    """What the walkers need from header_page/header_event, as plain ints."""

    page_size: int
    ts_offset: int
    commit_offset: int
    long_size: int  # sizeof(unsigned long): the stored missed count
    data_offset: int
    type_len_mask: int
    delta_shift: int
    ts_shift: int
    padding: int
    time_extend: int
    time_stamp: int
    data_max: int

    @property
    def capacity(self) -> int:
        return self.page_size - self.data_offset

    @classmethod
    def from_headers(cls, hp: HeaderPage, he: HeaderEvent, page_size: int | None = None) -> "PageLayout":
        ps = page_size if page_size is not None else hp.page_size
        if ps % ALIGN or hp.data_offset % ALIGN or hp.data_offset >= ps:
            raise ValueError(f"unsupported page layout: page {ps} bytes, data at {hp.data_offset}")
        # the kernel's sub-buffers are a power of two bytes; a damaged header or meta.json is refused
        # here rather than read as pages of any size
        if ps & (ps - 1) or ps > 1 << 24:
            raise ValueError(f"unsupported page size {ps} (a power of two, at most 16 MiB)")
        if hp.commit_size not in (4, 8) or hp.timestamp_offset + 8 > hp.data_offset or \
                hp.commit_offset + hp.commit_size > hp.data_offset or min(hp.timestamp_offset, hp.commit_offset) < 0:
            raise ValueError(f"unsupported page header: timestamp at {hp.timestamp_offset}, commit at "
                             f"{hp.commit_offset} ({hp.commit_size} bytes), data at {hp.data_offset}")
        kinds = (he.data_max_type_len, he.padding, he.time_extend, he.time_stamp)
        if len(set(kinds)) != 4 or not all(0 < k <= he.type_len_mask for k in kinds) or \
                he.data_max_type_len > min(kinds[1:]):
            raise ValueError(f"unsupported record header: type_len data max {he.data_max_type_len}, padding "
                             f"{he.padding}, time extend {he.time_extend}, time stamp {he.time_stamp}")
        return cls(page_size=ps, ts_offset=hp.timestamp_offset, commit_offset=hp.commit_offset,
                   long_size=hp.commit_size, data_offset=hp.data_offset, type_len_mask=he.type_len_mask,
                   delta_shift=he.type_len_bits, ts_shift=he.ts_shift, padding=he.padding,
                   time_extend=he.time_extend, time_stamp=he.time_stamp, data_max=he.data_max_type_len)


def _fix_abs_ts(abs_ts: int, cur: int) -> int:
    """rb_fix_abs_ts: put back the top 5 bits of the current time, allowing one wrap of them."""
    if cur & TS_MSB:
        abs_ts |= cur & TS_MSB
        if abs_ts < cur:
            abs_ts = (abs_ts + TS_OVERFLOW) & U64
    return abs_ts


def _u32(b: bytes | memoryview, off: int) -> int:
    return int.from_bytes(b[off:off + 4], "little")


# --- reference walker ---------------------------------------------------------------------------
def walk_page(page: bytes | memoryview, layout: PageLayout) -> PageWalk:
    """Walk one page in plain Python; the reference the vectorized walker is tested against."""
    lo = layout
    base_ts = int.from_bytes(page[lo.ts_offset:lo.ts_offset + 8], "little")
    commit = _u32(page, lo.commit_offset)
    size = commit & COMMIT_SIZE_MASK
    w = PageWalk(base_ts=base_ts, size=size, missed_events=bool(commit & RB_MISSED_EVENTS), missed_count=None)
    if size > lo.capacity:
        w.error, w.error_offset = Corruption.COMMIT_TOO_LARGE, lo.commit_offset
        return w
    end = lo.data_offset + size
    if commit & RB_MISSED_STORED:
        if size + lo.long_size > lo.capacity:
            w.error, w.error_offset = Corruption.MISSED_COUNT_OUTSIDE, end
            return w
        w.missed_count = int.from_bytes(page[end:end + lo.long_size], "little")
    ts = base_ts
    pos = lo.data_offset
    records: list[Record] = []
    while pos < end:
        if pos + 4 > end:
            w.error, w.error_offset = Corruption.HEADER_PAST_COMMIT, pos
            return w
        hdr = _u32(page, pos)
        tl = hdr & lo.type_len_mask
        delta = hdr >> lo.delta_shift
        if tl == lo.padding and delta == 0:
            break  # the rest of the page is empty
        a = 0
        if tl == 0 or tl > lo.data_max:
            if pos + 8 > end:
                w.error, w.error_offset = Corruption.HEADER_PAST_COMMIT, pos
                return w
            a = _u32(page, pos + 4)
        if tl == 0:
            if a < MIN_LONG_RECORD or a % ALIGN:
                w.error, w.error_offset = Corruption.BAD_LENGTH, pos
                return w
            total, poff, plen = a + 4, pos + 8, a - 4
        elif tl <= lo.data_max:
            total, poff, plen = 4 + tl * 4, pos + 4, tl * 4
        elif tl == lo.padding:
            if a % ALIGN:
                w.error, w.error_offset = Corruption.BAD_LENGTH, pos
                return w
            total = a + 4
        else:  # time extend / time stamp
            total = 8
        if pos + total > end:
            w.error, w.error_offset = Corruption.RECORD_PAST_COMMIT, pos
            return w
        if tl == lo.time_extend:
            ts = (ts + (a << lo.ts_shift) + delta) & U64
        elif tl == lo.time_stamp:
            ts = _fix_abs_ts(((a << lo.ts_shift) + delta) & U64, ts)
        elif tl <= lo.data_max:  # a data record (type_len 0 or 1..28)
            ts = (ts + delta) & U64
            records.append(Record(ts, poff, plen))
        pos += total
    w.records = records
    return w


# --- vectorized walker --------------------------------------------------------------------------
@dataclass
class PagesWalk:
    """Records of many pages (page-major order) and per-page facts, as numpy arrays.

    ``payload_off`` is a byte offset into the buffer that was walked; ``page`` the page index.
    Pages with ``error != 0`` contribute no records.
    """

    ts: np.ndarray  # uint64 per record
    payload_off: np.ndarray  # int64 per record
    payload_len: np.ndarray  # int64 per record
    page: np.ndarray  # int64 per record
    page_base_ts: np.ndarray  # uint64 per page
    page_size: np.ndarray  # int64 data bytes used, per page
    page_nrec: np.ndarray  # int64 records per page
    missed_events: np.ndarray  # bool per page
    missed_stored: np.ndarray  # bool per page: RB_MISSED_STORED and the count was read
    missed_count: np.ndarray  # uint64 per page, the stored count (0 when not stored)
    error: np.ndarray  # int8 Corruption per page
    error_offset: np.ndarray  # int64 byte offset in the page, -1 if none

    @property
    def n_pages(self) -> int:
        return len(self.page_size)

    def page_walk(self, i: int) -> PageWalk:
        """Page ``i`` in the reference walker's shape (payload offsets into the walked buffer)."""
        sel = np.nonzero(self.page == i)[0]
        return PageWalk(base_ts=int(self.page_base_ts[i]), size=int(self.page_size[i]),
                        missed_events=bool(self.missed_events[i]),
                        missed_count=int(self.missed_count[i]) if self.missed_stored[i] else None,
                        records=[Record(int(self.ts[j]), int(self.payload_off[j]), int(self.payload_len[j]))
                                 for j in sel],
                        error=Corruption(int(self.error[i])),
                        error_offset=None if self.error_offset[i] < 0 else int(self.error_offset[i]))


def _gather_le(flat: np.ndarray, offsets: np.ndarray, nbytes: int) -> np.ndarray:
    """Little-endian unsigned ints of ``nbytes`` at arbitrary byte ``offsets`` of ``flat``."""
    out = np.zeros(len(offsets), dtype=np.uint64)
    for i in range(nbytes):
        out |= flat[offsets + i].astype(np.uint64) << np.uint64(8 * i)
    return out


def walk_pages(buf: np.ndarray, layout: PageLayout) -> PagesWalk:
    """Walk every whole page of ``buf`` (uint8, contiguous) in lock-step with numpy.

    The state of the pages still being walked is kept in arrays aligned with ``act`` (their page
    numbers): absolute byte position, end of committed data, current ts. Iteration ``it`` reads the
    ``it``-th record of each. When every one of them is a plain data record (the usual case) a
    short fast path handles the iteration; otherwise the general path handles all record kinds and
    corruption. A record's rank within its page is ``it`` minus the number of non-event records
    (padding, time extend/stamp) its page had before; those are rare and corrected at the end.
    """
    lo = layout
    ps = lo.page_size
    n = len(buf) // ps
    flat = np.ascontiguousarray(buf[: n * ps])
    pages = flat.reshape(n, ps)
    words = flat.view("<u4")
    base_ts = np.ascontiguousarray(pages[:, lo.ts_offset:lo.ts_offset + 8]).view("<u8").reshape(n).astype(np.uint64)
    commit = np.ascontiguousarray(pages[:, lo.commit_offset:lo.commit_offset + 4]).view("<u4").reshape(n)
    size = (commit & np.uint32(COMMIT_SIZE_MASK)).astype(np.int64)
    missed_events = (commit & np.uint32(RB_MISSED_EVENTS)) != 0
    stored = (commit & np.uint32(RB_MISSED_STORED)) != 0
    error = np.zeros(n, dtype=np.int8)
    error_offset = np.full(n, -1, dtype=np.int64)
    missed_count = np.zeros(n, dtype=np.uint64)
    page_start = np.arange(n, dtype=np.int64) * ps

    too_big = size > lo.capacity
    error[too_big] = Corruption.COMMIT_TOO_LARGE
    error_offset[too_big] = lo.commit_offset
    end_rel = lo.data_offset + size
    st = stored & ~too_big
    no_room = st & (size + lo.long_size > lo.capacity)
    error[no_room] = Corruption.MISSED_COUNT_OUTSIDE
    error_offset[no_room] = end_rel[no_room]
    st &= ~no_room
    if st.any():
        idx = np.nonzero(st)[0]
        missed_count[idx] = _gather_le(flat, page_start[idx] + end_rel[idx], lo.long_size)

    act = np.nonzero((error == 0) & (size > 0))[0]
    o = page_start[act] + lo.data_offset  # absolute byte position of the next record
    e = page_start[act] + end_rel[act]  # absolute end of the committed data
    ts = base_ts[act]
    out_page: list[np.ndarray] = []
    out_ts: list[np.ndarray] = []
    out_off: list[np.ndarray] = []
    out_len: list[np.ndarray] = []
    out_count: list[int] = []
    skip_page: list[np.ndarray] = []  # (page, iteration) of non-event records
    skip_it: list[np.ndarray] = []
    last_word = len(words) - 1
    tl_mask = np.uint32(lo.type_len_mask)
    d_shift = np.uint32(lo.delta_shift)
    data_max_m1 = lo.data_max - 1
    it = 0
    while act.size:
        hdr = words[o >> 2]  # o < e <= page end: always inside the buffer
        tl = hdr & tl_mask
        delta = hdr >> d_shift
        if int((tl - np.uint32(1)).max()) <= data_max_m1:  # fast path: all plain data records
            total = (tl.astype(np.int64) + 1) << 2
            npos = o + total
            if not (npos > e).any():
                ts = ts + delta
                out_page.append(act)
                out_ts.append(ts)
                out_off.append(o + 4)
                out_len.append(total - 4)
                out_count.append(len(act))
                cont = npos < e
                if cont.all():
                    o = npos
                else:
                    act, o, e, ts = act[cont], npos[cont], e[cont], ts[cont]
                it += 1
                continue
        act, o, e, ts = _general_step(lo, words, last_word, it, act, o, e, ts, hdr, error, error_offset,
                                      page_start, out_page, out_ts, out_off, out_len, out_count, skip_page, skip_it)
        it += 1

    ok = error == 0
    if out_page:
        r_page = np.concatenate(out_page)
        r_it = np.repeat(np.arange(len(out_count), dtype=np.int64), out_count)
        keep = ok[r_page]
        r_ts = np.concatenate(out_ts).astype(np.uint64, copy=False)
        r_off = np.concatenate(out_off)
        r_len = np.concatenate(out_len)
        if not keep.all():
            r_page, r_it, r_ts, r_off, r_len = r_page[keep], r_it[keep], r_ts[keep], r_off[keep], r_len[keep]
        k = r_it
        if skip_page and len(r_it):
            k = r_it - _skips_before(np.concatenate(skip_page), np.concatenate(skip_it), r_page, r_it, n)
        nrec = np.bincount(r_page, minlength=n).astype(np.int64)
        first = np.zeros(n, dtype=np.int64)
        np.cumsum(nrec[:-1], out=first[1:])
        dest = first[r_page] + k
        m = len(r_page)
        rts = np.empty(m, dtype=np.uint64)
        roff = np.empty(m, dtype=np.int64)
        rlen = np.empty(m, dtype=np.int64)
        rpage = np.empty(m, dtype=np.int64)
        rts[dest] = r_ts
        roff[dest] = r_off
        rlen[dest] = r_len
        rpage[dest] = r_page
    else:
        nrec = np.zeros(n, dtype=np.int64)
        rts = np.empty(0, dtype=np.uint64)
        roff = rlen = rpage = np.empty(0, dtype=np.int64)
    return PagesWalk(ts=rts, payload_off=roff, payload_len=rlen, page=rpage, page_base_ts=base_ts,
                     page_size=size, page_nrec=nrec, missed_events=missed_events, missed_stored=st,
                     missed_count=missed_count, error=error, error_offset=error_offset)


def _skips_before(s_page: np.ndarray, s_it: np.ndarray, r_page: np.ndarray, r_it: np.ndarray, n: int) -> np.ndarray:
    """For each record: how many non-event records its page had in earlier iterations."""
    span = int(max(s_it.max(), r_it.max())) + 1
    skey = np.sort(s_page * span + s_it)
    rkey = r_page * span + r_it
    return np.searchsorted(skey, rkey, side="left") - np.searchsorted(skey, r_page * span, side="left")


def _general_step(lo: PageLayout, words: np.ndarray, last_word: int, it: int, act, o, e, ts, hdr, error,
                  error_offset, page_start, out_page, out_ts, out_off, out_len, out_count, skip_page, skip_it):
    """One lock-step iteration handling every record kind and every corruption check."""
    tl = (hdr & np.uint32(lo.type_len_mask)).astype(np.int64)
    delta = (hdr >> np.uint32(lo.delta_shift)).astype(np.uint64)
    a = words[np.minimum((o >> 2) + 1, last_word)].astype(np.int64)  # array[0], where there is one

    bad_hdr = o + 4 > e
    is_pad = tl == lo.padding
    stop = is_pad & (delta == 0) & ~bad_hdr  # the rest of the page is empty
    is_data = (tl >= 1) & (tl <= lo.data_max)
    is_long = tl == 0
    bad_hdr |= ~is_data & ~stop & (o + 8 > e)
    bad_len = ~bad_hdr & ((is_long & ((a < MIN_LONG_RECORD) | (a % ALIGN != 0)))
                          | (is_pad & ~stop & (a % ALIGN != 0)))
    total = np.where(is_data, 4 + tl * 4, np.where(is_long | is_pad, a + 4, 8))
    bad_rec = ~bad_hdr & ~bad_len & ~stop & (o + total > e)
    bad = bad_hdr | bad_len | bad_rec
    if bad.any():
        bp = act[bad]
        error[bp] = np.where(bad_hdr[bad], Corruption.HEADER_PAST_COMMIT,
                             np.where(bad_len[bad], Corruption.BAD_LENGTH, Corruption.RECORD_PAST_COMMIT))
        error_offset[bp] = o[bad] - page_start[bp]
    good = ~bad & ~stop

    is_ext = good & (tl == lo.time_extend)
    is_abs = good & (tl == lo.time_stamp)
    is_event = good & (is_data | is_long)
    big = (a.astype(np.uint64) << np.uint64(lo.ts_shift)) + delta
    new = np.where(is_event, ts + delta, np.where(is_ext, ts + big, ts))
    if is_abs.any():
        msb = ts & np.uint64(TS_MSB)
        fixed = big | msb
        fixed = np.where((msb != 0) & (fixed < ts), fixed + np.uint64(TS_OVERFLOW), fixed)
        new = np.where(is_abs, fixed, new)

    ev = np.nonzero(is_event)[0]
    out_page.append(act[ev])
    out_ts.append(new[ev])
    out_off.append(o[ev] + np.where(is_long[ev], 8, 4))
    out_len.append(np.where(is_long[ev], a[ev] - 4, tl[ev] * 4))
    out_count.append(len(ev))
    skipped = good & ~is_event
    if skipped.any():
        sp = act[skipped]
        skip_page.append(sp)
        skip_it.append(np.full(len(sp), it, dtype=np.int64))
    npos = o + total
    cont = good & (npos < e)
    return act[cont], npos[cont], e[cont], new[cont]


def walk_buffer_reference(buf: bytes, layout: PageLayout) -> list[PageWalk]:
    """The reference walker over every whole page of ``buf`` (payload offsets made absolute)."""
    out = []
    ps = layout.page_size
    mv = memoryview(buf)
    for i in range(len(buf) // ps):
        w = walk_page(mv[i * ps:(i + 1) * ps], layout)
        w.records = [Record(r.ts, r.payload_offset + i * ps, r.payload_len) for r in w.records]
        out.append(w)
    return out


@dataclass
class MissedScan:
    """Page-level lost-event flags of one raw file, read from the page headers alone."""

    pages: int = 0
    pages_missed: int = 0  # pages whose commit word has RB_MISSED_EVENTS
    missed_events: int = 0  # sum of the counts stored after the data (RB_MISSED_STORED)


def scan_missed(path, layout: PageLayout) -> MissedScan:
    """Count pages flagged with lost events in a raw per-CPU file, without walking any record."""
    import os

    size = os.path.getsize(path)
    n = size // layout.page_size
    out = MissedScan(pages=n)
    if n == 0:
        return out
    pages = np.memmap(path, dtype=np.uint8, mode="r", shape=(n, layout.page_size))
    commit = pages[:, layout.commit_offset:layout.commit_offset + 4].copy().view("<u4").ravel().astype(np.int64)
    flagged = (commit & RB_MISSED_EVENTS) != 0
    out.pages_missed = int(flagged.sum())
    stored = np.nonzero((commit & RB_MISSED_STORED) != 0)[0]
    for i in stored.tolist():
        off = layout.data_offset + int(commit[i] & COMMIT_SIZE_MASK)
        if off + layout.long_size <= layout.page_size:
            out.missed_events += int.from_bytes(bytes(pages[i, off:off + layout.long_size]), "little")
    del pages
    return out
