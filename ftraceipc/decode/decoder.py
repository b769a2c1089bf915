"""Decode a capture directory: raw per-CPU pages -> columnar batches in global time order.

Pipeline, per CPU: read a chunk of pages (``chunk_pages`` at a time, never the whole file) ->
``walk_pages`` (record framing, timestamps) -> the event id of each record. Then a streaming
k-way merge across CPUs: everything with a timestamp below the smallest "last timestamp of what is
loaded" over the CPUs that still have data is emitted; the rest is carried to the next round.
Memory stays bounded by about two chunks per CPU.

Order is the kernel's (``trace`` file, ``__find_next_entry``): the event with the smallest
timestamp first, ties to the lower CPU, and each CPU's own order is never changed. (Per-CPU
timestamps only go backwards with absolute TIME_STAMP records; the merge then uses the running
maximum so that the per-CPU order is kept.)

Each batch decodes one numpy gather per (event type, chunk): the fixed part of all records of a
type is fetched as 4-byte words and viewed through the format's structured dtype.
"""

from __future__ import annotations

import enum
import functools
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ftraceipc.capture.store import CaptureDir, CaptureMeta
from ftraceipc.decode.formats import (EventFormat, Field, HeaderEvent, HeaderPage, parse_format,
                                      parse_header_event, parse_header_page)
from ftraceipc.decode.ringbuf import Corruption, PageLayout, PagesWalk, walk_pages
from ftraceipc.errors import CaptureFormatError

DEFAULT_CHUNK_PAGES = 2048
MAX_WARNINGS = 200
# Set (to 1) to decode a capture that lacks tracefs/header_page or header_event with the x86_64 page
# layout and the usual record header (``ftraceipc --assume-page-layout``); otherwise that is an error.
ASSUME_LAYOUT_ENV = "FTRACEIPC_ASSUME_PAGE_LAYOUT"
# Trace clocks whose values are nanoseconds (the kernel prints them as seconds.microseconds);
# the others (counter, uptime = jiffies, x86-tsc = cycles) print as raw integers.
CLOCKS_IN_NS = frozenset({"local", "global", "perf", "mono", "mono_raw", "boot", "tai"})
COMMON_PID = "common_pid"
COMMON_FLAGS = "common_flags"
COMMON_PREEMPT = "common_preempt_count"
COMMON_TYPE = "common_type"
RECORD_KEYS = ("ts", "cpu", "tid", "event")


class WarningKind(enum.Enum):
    TRUNCATED_FILE = "truncated file"
    CORRUPT_PAGE = "corrupt page"
    MISSING_FILE = "missing cpu file"
    UNKNOWN_EVENT = "unknown event id"
    SHORT_RECORD = "record shorter than its format"
    MISSING_HEADER = "missing header file"
    BAD_FORMAT = "unreadable format file"


@dataclass(frozen=True)
class DecodeWarning:
    """A problem found while decoding; decoding goes on with what is intact."""

    kind: WarningKind
    message: str
    path: str | None = None
    offset: int | None = None  # byte offset in ``path``
    cpu: int | None = None

    def __str__(self) -> str:
        where = f" ({self.path}" + (f" at offset {self.offset}" if self.offset is not None else "") + ")" \
            if self.path else ""
        return f"{self.kind.value}: {self.message}{where}"

    def to_error(self) -> CaptureFormatError:
        return CaptureFormatError(f"{self.kind.value}: {self.message}", path=self.path, offset=self.offset)


@dataclass(frozen=True)
class LostMark:
    """The kernel flagged lost events before a page (RB_MISSED_EVENTS); ``count`` None = unknown."""

    cpu: int
    count: int | None
    position: int  # index in the batch's merged order of the first event after the loss


@dataclass
class EventTable:
    """All events of one type in a batch, in time order, as columns.

    ``columns`` holds the event's own fields by their format-file names: integers as numpy ints of
    the field's size and sign; fixed char arrays as numpy ``S`` (bytes, cut at the first NUL);
    dynamic (``__data_loc``) and flexible strings as object arrays of ``str``; other arrays as 2-D
    arrays (dynamic non-char arrays: object arrays of 1-D arrays).
    """

    format: EventFormat
    ts: np.ndarray  # int64
    cpu: np.ndarray  # int32
    pid: np.ndarray  # int32, common_pid (the thread id)
    flags: np.ndarray  # uint8, common_flags
    preempt_count: np.ndarray  # uint8, common_preempt_count
    index: np.ndarray  # int64: position of each row in the batch's merged order
    columns: dict[str, np.ndarray]

    @property
    def name(self) -> str:
        return self.format.name

    def __len__(self) -> int:
        return len(self.ts)

    def select(self, mask: np.ndarray) -> "EventTable":
        """The rows where ``mask`` is true (``index`` keeps pointing into the original batch)."""
        return EventTable(format=self.format, ts=self.ts[mask], cpu=self.cpu[mask], pid=self.pid[mask],
                          flags=self.flags[mask], preempt_count=self.preempt_count[mask], index=self.index[mask],
                          columns={k: v[mask] for k, v in self.columns.items()})

    def to_pandas(self):
        import pandas as pd

        data: dict[str, Any] = {"ts": self.ts, "cpu": self.cpu, "tid": self.pid}
        for k, v in self.columns.items():
            data[k] = list(v) if v.ndim > 1 else v
        return pd.DataFrame(data)


@dataclass
class Batch:
    """Events of all CPUs in one time window, merged in global time order.

    The merged-order arrays (``ts``, ``cpu``, ``event_id``, ``pid``) say which event comes when;
    ``row`` is its row in ``events[name]``/``by_id[event_id]``.
    """

    ts: np.ndarray  # int64
    cpu: np.ndarray  # int32
    event_id: np.ndarray  # int32
    pid: np.ndarray  # int32
    row: np.ndarray  # int64
    events: dict[str, EventTable]
    by_id: dict[int, EventTable]
    lost: list[LostMark] = field(default_factory=list)
    # the merge key of each event (its CPU's running maximum ts, uint64): batches are ordered by
    # (key, cpu, position in that CPU's file); None after ``head``
    key: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def head(self, n: int) -> "Batch":
        """The first ``n`` events of this batch."""
        if n >= len(self):
            return self
        by_id = {eid: t.select(t.index < n) for eid, t in self.by_id.items()}
        by_id = {eid: t for eid, t in by_id.items() if len(t)}
        return Batch(ts=self.ts[:n], cpu=self.cpu[:n], event_id=self.event_id[:n], pid=self.pid[:n],
                     row=self.row[:n], events={t.name: t for t in by_id.values()}, by_id=by_id,
                     lost=[m for m in self.lost if m.position < n])

    def split(self, n: int) -> tuple["Batch", "Batch"]:
        """The first ``n`` events and the rest, each a batch of its own (positions from 0)."""
        n = max(0, min(n, len(self)))
        head_ids, tail_ids = {}, {}
        drop = {}  # rows of each event type that go to the head: the tail's rows start after them
        for eid, t in self.by_id.items():
            m = t.index < n
            k = int(m.sum())
            drop[eid] = k
            if k:
                head_ids[eid] = t.select(m) if k < len(t) else t
            if k < len(t):
                tt = t.select(~m)
                tt.index = tt.index - n
                tail_ids[eid] = tt
        shift = np.zeros(max(self.by_id, default=0) + 1, dtype=np.int64)
        for eid, k in drop.items():
            shift[eid] = k
        ev = self.event_id[n:]
        head = Batch(ts=self.ts[:n], cpu=self.cpu[:n], event_id=self.event_id[:n], pid=self.pid[:n],
                     row=self.row[:n], events={t.name: t for t in head_ids.values()}, by_id=head_ids,
                     lost=[m for m in self.lost if m.position < n])
        tail = Batch(ts=self.ts[n:], cpu=self.cpu[n:], event_id=ev, pid=self.pid[n:],
                     row=self.row[n:] - shift[ev], events={t.name: t for t in tail_ids.values()}, by_id=tail_ids,
                     lost=[LostMark(m.cpu, m.count, m.position - n) for m in self.lost if m.position >= n],
                     key=self.key[n:] if self.key is not None else None)
        return head, tail

    def records(self) -> Iterator[dict[str, Any]]:
        """``{"ts", "cpu", "tid", "event", **own fields}`` per event, in order (Python values:
        ints, ``str`` for strings, lists for arrays)."""
        cols = {eid: python_columns(t) for eid, t in self.by_id.items()}
        names = {eid: t.name for eid, t in self.by_id.items()}
        for ts, cpu, eid, pid, row in zip(self.ts.tolist(), self.cpu.tolist(), self.event_id.tolist(),
                                          self.pid.tolist(), self.row.tolist()):
            d = {"ts": ts, "cpu": cpu, "tid": pid, "event": names[eid]}
            for k, col in cols[eid]:
                d[k] = col[row]
            yield d


def record_key(name: str) -> str:
    """The key of an own field in a record dict (own fields named like a common key get a prefix)."""
    return f"field.{name}" if name in RECORD_KEYS else name


def bytes_to_str(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


def python_columns(t: EventTable, rows: slice | None = None) -> list[tuple[str, list]]:
    """The table's own fields as Python lists, by record key (``rows``: those rows only)."""
    out = []
    for f in t.format.own_fields:
        col = t.columns.get(f.name)
        if col is None:
            continue
        if rows is not None:
            col = col[rows]
        if col.dtype.kind == "S":
            vals = [bytes_to_str(b) for b in col.tolist()]
        elif col.dtype == object:
            vals = [v.tolist() if isinstance(v, np.ndarray) else v for v in col]
        else:
            vals = col.tolist()
        out.append((record_key(f.name), vals))
    return out


def python_row(t: EventTable, r: int) -> list[tuple[str, Any]]:
    """Row ``r`` of :func:`python_columns` (for a few rows of a large table)."""
    return [(k, v[0]) for k, v in python_columns(t, slice(r, r + 1))]


# --- statistics -----------------------------------------------------------------------------------
@dataclass
class CpuStats:
    cpu: int
    pages: int = 0
    bytes: int = 0
    events: int = 0
    pages_missed: int = 0  # pages flagged RB_MISSED_EVENTS
    missed_events: int = 0  # sum of the stored counts
    pages_missed_unknown: int = 0  # flagged pages without a stored count
    corrupt_pages: int = 0
    file_bytes: int = 0  # size of cpuN.raw as read (0: missing)
    missing_file: bool = False  # cpuN.raw could not be opened
    truncated_bytes: int = 0  # bytes of a partial last page, skipped (the file ends inside a page)
    path: str = ""  # the cpuN.raw file
    first_ts: int | None = None
    last_ts: int | None = None


@dataclass
class DecodeStats:
    """What an ``info`` command shows."""

    clock: str
    clock_in_ns: bool
    events: int
    by_event: dict[str, int]
    per_cpu: dict[int, CpuStats]
    unknown_ids: dict[int, int]
    short_records: int
    first_ts: int | None
    last_ts: int | None
    warnings: list[DecodeWarning]
    meta: CaptureMeta

    @property
    def duration(self) -> int | None:
        """last_ts - first_ts, in clock units (ns for the ns clocks)."""
        if self.first_ts is None or self.last_ts is None:
            return None
        return self.last_ts - self.first_ts

    @property
    def pages_missed(self) -> int:
        return sum(c.pages_missed for c in self.per_cpu.values())

    @property
    def missed_events(self) -> int:
        return sum(c.missed_events for c in self.per_cpu.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "clock": self.clock, "clock_in_ns": self.clock_in_ns, "events": self.events,
            "first_ts": self.first_ts, "last_ts": self.last_ts, "duration": self.duration,
            "by_event": dict(sorted(self.by_event.items(), key=lambda kv: -kv[1])),
            "per_cpu": {str(c): dict(s.__dict__) for c, s in sorted(self.per_cpu.items())},
            "lost": {"pages_missed": self.pages_missed, "missed_events": self.missed_events,
                     "capture": {str(c): dict(v.__dict__) for c, v in self.meta.lost.items()}},
            "unknown_ids": {str(k): v for k, v in sorted(self.unknown_ids.items())},
            "short_records": self.short_records,
            "warnings": [str(w) for w in self.warnings],
            "meta": {k: v for k, v in self.meta.to_json().items() if k != "lost"},
        }


# --- per-CPU streams --------------------------------------------------------------------------------
@dataclass
class _Chunk:
    """The decodable records of one chunk of one CPU's pages (unknown/short records removed)."""

    cpu: int
    buf: np.ndarray  # uint8, the chunk's pages
    ts: np.ndarray  # int64
    key: np.ndarray  # uint64: running max of ts (the merge key)
    off: np.ndarray  # int64 payload byte offset in buf
    plen: np.ndarray  # int64 payload length
    fidx: np.ndarray  # int32 index into the decoder's format list
    lost_at: np.ndarray  # int64 record index of the first record after a flagged page
    lost_count: np.ndarray  # int64, -1 unknown

    def __len__(self) -> int:
        return len(self.ts)


class _CpuStream:
    """Reads one CPU's raw file chunk by chunk and walks its pages."""

    def __init__(self, dec: "Decoder", cpu: int, path: Path, keep: np.ndarray | None):
        self.dec = dec
        self.cpu = cpu
        self.path = path
        self.keep = keep  # bool per format index: decode this event type
        self.key_carry = np.uint64(0)
        self.stats = CpuStats(cpu, path=str(path))
        self.unknown = np.zeros(1 << 16, dtype=np.int64)
        self.short = 0
        self.by_fidx = np.zeros(len(dec.format_list), dtype=np.int64)
        self.more = True  # False once the last chunk has been handed out

    def chunks(self, decode: bool = True) -> Iterator[_Chunk]:
        dec = self.dec
        ps = dec.layout.page_size
        try:
            f = open(self.path, "rb")
        except OSError as e:
            self.stats.missing_file = True
            self.more = False
            dec._warn(WarningKind.MISSING_FILE, f"no data for cpu {self.cpu}: {e.strerror}", str(self.path),
                      cpu=self.cpu)
            return
        with f:
            file_off = 0
            want = dec.chunk_pages * ps
            size = os.fstat(f.fileno()).st_size
            self.stats.file_bytes = size
            while True:
                buf = np.empty(min(want, max(size - file_off, 0)) or want, dtype=np.uint8)
                n = f.readinto(memoryview(buf))
                self.more = bool(n) and file_off + n < size
                if not n:
                    break
                whole = n - n % ps
                if n % ps and n < want:
                    self.stats.truncated_bytes = n % ps
                    dec._warn(WarningKind.TRUNCATED_FILE,
                              f"file ends inside a page ({n % ps} of {ps} bytes); the partial page is skipped",
                              str(self.path), file_off + whole, self.cpu)
                if whole:
                    yield self._walk(buf[:whole], file_off, decode)
                if n < len(buf):
                    break
                file_off += n
            self.more = False

    def _walk(self, buf: np.ndarray, file_off: int, decode: bool) -> _Chunk:
        dec = self.dec
        w = walk_pages(buf, dec.layout)
        self._page_stats(w, file_off)
        ts = w.ts
        n = len(ts)
        key = np.maximum(np.maximum.accumulate(ts), self.key_carry) if n else ts
        if n:
            self.key_carry = key[-1]
        half = buf.view("<u2")
        # the event id (common_type) is the first field of every payload
        has_id = w.payload_len >= dec.common_size
        ids = np.where(has_id, half[np.minimum(w.payload_off + dec.type_offset, len(buf) - 2) >> 1], 0)
        ids = ids.astype(np.int64)
        fidx = dec.id_lookup[ids]
        fidx[~has_id] = -2
        unknown = fidx == -1
        if unknown.any():
            self.unknown += np.bincount(ids[unknown], minlength=1 << 16)
        short = (fidx == -2)
        ok = fidx >= 0
        if ok.any():
            need = dec.record_sizes[np.maximum(fidx, 0)]
            too_short = ok & (w.payload_len < need)
            short |= too_short
            ok &= ~too_short
        if short.any():
            ns = int(short.sum())
            if not self.short:
                j = int(np.argmax(short))
                dec._warn(WarningKind.SHORT_RECORD, f"{ns} record(s) too short for their event format",
                          str(self.path), file_off + int(w.payload_off[j]), self.cpu)
            self.short += ns
        self.by_fidx += np.bincount(fidx[ok], minlength=len(dec.format_list))
        if n:
            st = self.stats
            st.events += int(ok.sum())
            lo, hi = int(ts.min()), int(key[-1])
            st.first_ts = lo if st.first_ts is None else min(st.first_ts, lo)
            st.last_ts = hi if st.last_ts is None else max(st.last_ts, hi)
        if decode and self.keep is not None:
            ok &= self.keep[np.maximum(fidx, 0)]
        # lost marks: the first record after each flagged page
        flagged = np.nonzero(w.missed_events & (w.error == 0))[0]
        first_rec = np.concatenate([[0], np.cumsum(w.page_nrec)])[flagged]
        kept_before = np.concatenate([[0], np.cumsum(ok)])
        lost_at = kept_before[first_rec]
        lost_count = np.where(w.missed_stored[flagged], w.missed_count[flagged].astype(np.int64), -1)
        if ok.all():
            return _Chunk(cpu=self.cpu, buf=buf, ts=ts.view(np.int64), key=key, off=w.payload_off,
                          plen=w.payload_len, fidx=fidx.astype(np.int32), lost_at=lost_at, lost_count=lost_count)
        sel = np.nonzero(ok)[0]
        return _Chunk(cpu=self.cpu, buf=buf, ts=ts[sel].view(np.int64), key=key[sel], off=w.payload_off[sel],
                      plen=w.payload_len[sel], fidx=fidx[sel].astype(np.int32), lost_at=lost_at,
                      lost_count=lost_count)

    def _page_stats(self, w: PagesWalk, file_off: int) -> None:
        st = self.stats
        dec = self.dec
        st.pages += w.n_pages
        st.bytes += int(w.page_size[w.error == 0].sum())
        good = w.error == 0
        flagged = w.missed_events & good
        st.pages_missed += int(flagged.sum())
        counted = flagged & w.missed_stored
        st.missed_events += int(w.missed_count[counted].sum())
        st.pages_missed_unknown += int((flagged & ~counted).sum())
        bad = np.nonzero(~good)[0]
        st.corrupt_pages += len(bad)
        for i in bad[: max(0, 20 - (st.corrupt_pages - len(bad)))]:
            kind = Corruption(int(w.error[i]))
            dec._warn(WarningKind.CORRUPT_PAGE, f"cpu {self.cpu} page {file_off // dec.layout.page_size + i}: "
                      f"{kind.text}; the page is skipped", str(self.path),
                      file_off + int(i) * dec.layout.page_size + int(w.error_offset[i]), self.cpu)


@dataclass
class _Segment:
    chunk: _Chunk
    lo: int
    hi: int


# --- the decoder ---------------------------------------------------------------------------------------
class Decoder:
    """Decode one capture directory. ``batches()`` streams merged, columnar batches."""

    def __init__(self, capture: CaptureDir | str | os.PathLike, *, chunk_pages: int = DEFAULT_CHUNK_PAGES,
                 strict: bool = False, assume_page_layout: bool | None = None):
        """``assume_page_layout``: decode a capture lacking header_page/header_event with the x86_64
        layout (with a warning) instead of failing; None: the environment's FTRACEIPC_ASSUME_PAGE_LAYOUT."""
        self.capture = capture if isinstance(capture, CaptureDir) else CaptureDir.open(capture)
        self.strict = strict
        if assume_page_layout is None:
            assume_page_layout = os.environ.get(ASSUME_LAYOUT_ENV, "") not in ("", "0")
        self.assume_page_layout = assume_page_layout
        self.chunk_pages = max(1, int(chunk_pages))
        self.warnings: list[DecodeWarning] = []
        self.warnings_dropped = 0
        self._seen_warnings: set[DecodeWarning] = set()
        self.meta = self.capture.read_meta()
        hp, he = self._headers()
        try:
            self.layout = PageLayout.from_headers(hp, he, self.meta.page_size)
        except ValueError as e:  # from meta.json's page_size and tracefs/header_page, header_event
            raise CaptureFormatError(str(e), path=str(self.capture.root),
                                     hint="meta.json or tracefs/header_page, header_event is damaged") from None
        self.format_list: list[EventFormat] = self._load_formats()
        self.formats: dict[int, EventFormat] = {f.id: f for f in self.format_list}
        self.id_lookup = np.full(1 << 16, -1, dtype=np.int64)
        for i, f in enumerate(self.format_list):
            if 0 <= f.id < (1 << 16):
                self.id_lookup[f.id] = i
        self.record_sizes = np.array([f.record_size for f in self.format_list] or [0], dtype=np.int64)
        self.common_size = self._common_size()
        self.type_offset = self._type_offset()
        self._dtypes = [f.padded_dtype(_round4(f.record_size)) for f in self.format_list]
        self.last_stats: DecodeStats | None = None  # set when a ``batches()`` pass has finished
        self._warned_ids: set[int] = set()

    # --- setup -----------------------------------------------------------------------------------------
    def _headers(self) -> tuple[HeaderPage, HeaderEvent]:
        """The page and record layout, read from the capture: never guessed unless the user said so."""
        hp = self._header("header_page", parse_header_page, "the x86_64 page header",
                          lambda: HeaderPage(0, 8, 8, 8, 16, self.meta.page_size - 16))
        he = self._header("header_event", parse_header_event, "the usual record header", HeaderEvent)
        return hp, he

    def _header(self, name: str, parse, assumed: str, default):
        path = self.capture.tracefs_dir / name
        try:
            return parse(self.capture.read_text(name))
        except CaptureFormatError as e:
            msg = e.message if str(path) in e.message else f"{e.message} ({path})"
            if not self.assume_page_layout:
                raise CaptureFormatError(
                    msg, hint=f"the capture is damaged; to decode it anyway with {assumed}, run "
                    f"'ftraceipc --assume-page-layout ...' (or set {ASSUME_LAYOUT_ENV}=1)") from None
            self._warn(WarningKind.MISSING_HEADER, f"{msg}; assuming {assumed} (--assume-page-layout)")
            return default()

    def _load_formats(self) -> list[EventFormat]:
        out: list[EventFormat] = []
        seen: set[int] = set()
        for full, path in self.capture.format_files().items():
            system = full.split(":", 1)[0]
            try:
                fmt = _parse_format_cached(path.read_text(errors="replace"), system)
            except (OSError, CaptureFormatError) as e:
                self._warn(WarningKind.BAD_FORMAT, str(e), str(path))
                continue
            if fmt.id in seen:
                continue
            seen.add(fmt.id)
            out.append(fmt)
        return out

    def _common_size(self) -> int:
        for f in self.format_list:
            cf = f.common_fields
            if cf:
                return max(x.offset + x.size for x in cf)
        return 2

    def _type_offset(self) -> int:
        """Where ``common_type`` (the event id, a u16) is in every record."""
        for f in self.format_list:
            for x in f.common_fields:
                if x.name == COMMON_TYPE:
                    if x.size != 2 or x.offset % 2:
                        raise CaptureFormatError(f"unsupported common_type layout: {x}")
                    return x.offset
        return 0

    def _warn(self, kind: WarningKind, message: str, path: str | None = None, offset: int | None = None,
              cpu: int | None = None) -> None:
        w = DecodeWarning(kind, message, path, offset, cpu)
        if self.strict:
            raise w.to_error()
        if w in self._seen_warnings:  # a second pass over the same files finds the same problems
            return
        self._seen_warnings.add(w)
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(w)
        else:
            self.warnings_dropped += 1

    # --- public -------------------------------------------------------------------------------------------
    @property
    def clock_in_ns(self) -> bool:
        return self.meta.clock in CLOCKS_IN_NS

    def event_format(self, name: str) -> EventFormat:
        """By bare name (``sched_switch``) or ``system:name`` (``sched/sched_switch`` too)."""
        name = name.strip().replace("/", ":")
        for f in self.format_list:
            if name in (f.name, f.full_name):
                return f
        raise KeyError(name)

    def _streams(self, events: Iterable[str] | None, cpus: Iterable[int] | None = None) -> list[_CpuStream]:
        keep = None
        if events is not None:
            wanted = {self.event_format(e).id for e in events}  # KeyError for an event not in the capture
            keep = np.array([f.id in wanted for f in self.format_list] or [False])
        only = None if cpus is None else set(cpus)
        return [_CpuStream(self, cpu, self.capture.cpu_path(cpu), keep) for cpu in sorted(self.meta.cpus)
                if only is None or cpu in only]

    def batches(self, events: Iterable[str] | None = None, cpus: Iterable[int] | None = None) -> Iterator[Batch]:
        """Stream batches in global time order. ``events``: only these event names (bare or
        ``system:name``) are decoded; a name with no format in the capture raises KeyError.
        ``cpus``: only these CPUs' files are read (a parallel reader takes one CPU per process and
        merges by ``Batch.key``). When the pass is over, ``last_stats`` holds the same summary as
        ``stats()`` (for the CPUs read)."""
        streams = self._streams(events, cpus)
        by_cpu = {s.cpu: s for s in streams}
        iters = {s.cpu: s.chunks() for s in streams}
        pending: dict[int, deque[_Segment]] = {s.cpu: deque() for s in streams}
        done: set[int] = set()
        need = set(iters)
        while True:
            for cpu in sorted(need):
                for ch in iters[cpu]:
                    if len(ch):
                        pending[cpu].append(_Segment(ch, 0, len(ch)))
                        break
                else:
                    done.add(cpu)
                if not by_cpu[cpu].more:
                    done.add(cpu)  # nothing left to read: no need to hold back its last records
            active = [c for c in iters if c not in done]
            if not active:
                segs = [s for c in sorted(pending) for s in pending[c]]
                if segs:
                    yield self._build(segs)
                break
            bound = min(int(pending[c][-1].chunk.key[pending[c][-1].hi - 1]) for c in active)
            segs = []
            for c in sorted(pending):
                segs += _take_below(pending[c], bound)
            if segs:
                yield self._build(segs)
            need = {c for c in active if not pending[c]
                    or int(pending[c][-1].chunk.key[pending[c][-1].hi - 1]) == bound}
        self.last_stats = self._collect_stats(streams)

    def follow(self, events: Iterable[str] | None = None) -> "Follower":
        """A :class:`Follower`: this capture decoded while its files grow (``ftraceipc live``)."""
        return Follower(self, events)

    def iter_records(self, events: Iterable[str] | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """One dict per event, in time order: ``{"ts", "cpu", "tid", "event", **own fields}``."""
        n = 0
        for b in self.batches(events):
            if limit is not None:
                if n >= limit:
                    return
                b = b.head(limit - n)
            yield from b.records()
            n += len(b)

    def stats(self) -> DecodeStats:
        """Counts without decoding fields: events per type and CPU, lost pages, first/last ts."""
        streams = self._streams(None)
        for s in streams:
            for _ in s.chunks(decode=False):
                pass
        return self._collect_stats(streams)

    def _collect_stats(self, streams: list[_CpuStream]) -> DecodeStats:
        by_fidx = sum((s.by_fidx for s in streams), np.zeros(len(self.format_list), dtype=np.int64))
        by_event: dict[str, int] = {}
        for f, c in zip(self.format_list, by_fidx.tolist()):
            if c:
                by_event[f.name] = by_event.get(f.name, 0) + c
        unknown_arr = sum((s.unknown for s in streams), np.zeros(1 << 16, dtype=np.int64))
        unknown = {int(i): int(unknown_arr[i]) for i in np.nonzero(unknown_arr)[0]}
        for eid, cnt in unknown.items():
            if eid in self._warned_ids:
                continue
            self._warned_ids.add(eid)
            self._warn(WarningKind.UNKNOWN_EVENT, f"{cnt} event(s) with id {eid} have no format file in the capture")
        per_cpu = {s.cpu: s.stats for s in streams}
        firsts = [c.first_ts for c in per_cpu.values() if c.first_ts is not None]
        lasts = [c.last_ts for c in per_cpu.values() if c.last_ts is not None]
        return DecodeStats(clock=self.meta.clock, clock_in_ns=self.clock_in_ns, events=int(by_fidx.sum()),
                           by_event=by_event, per_cpu=per_cpu, unknown_ids=unknown,
                           short_records=sum(s.short for s in streams), first_ts=min(firsts) if firsts else None,
                           last_ts=max(lasts) if lasts else None, warnings=list(self.warnings), meta=self.meta)

    # --- batch building ----------------------------------------------------------------------------------
    def _build(self, segs: list[_Segment]) -> Batch:
        sizes = [s.hi - s.lo for s in segs]
        bases = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        n = int(bases[-1])
        key = np.concatenate([s.chunk.key[s.lo:s.hi] for s in segs])
        order = np.argsort(key, kind="stable")  # runs per CPU, CPUs ascending: ties go to the lower CPU
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n, dtype=np.int64)
        ts = np.concatenate([s.chunk.ts[s.lo:s.hi] for s in segs])[order]
        cpu = np.concatenate([np.full(sz, s.chunk.cpu, dtype=np.int32) for s, sz in zip(segs, sizes)])[order]
        fidx = np.concatenate([s.chunk.fidx[s.lo:s.hi] for s in segs])
        parts: dict[int, list[tuple[np.ndarray, dict[str, np.ndarray]]]] = {}
        for s, base in zip(segs, bases[:-1].tolist()):
            self._decode_segment(s, base, parts)
        by_id: dict[int, EventTable] = {}
        events: dict[str, EventTable] = {}
        row = np.empty(n, dtype=np.int64)
        pid = np.empty(n, dtype=np.int32)
        for fi, plist in parts.items():
            fmt = self.format_list[fi]
            if len(plist) == 1:  # one segment: its rows are already in time order
                r = rank[plist[0][0]]
                cols = dict(plist[0][1])
            else:
                r = rank[np.concatenate([p for p, _ in plist])]
                perm = np.argsort(r, kind="stable")
                r = r[perm]
                cols = {name: np.concatenate([c[name] for _, c in plist])[perm] for name in plist[0][1]}
            common_pid = cols.pop(COMMON_PID, np.zeros(len(r), dtype=np.int32))
            table = EventTable(format=fmt, ts=ts[r], cpu=cpu[r], pid=common_pid.astype(np.int32, copy=False),
                               flags=cols.pop(COMMON_FLAGS, np.zeros(len(r), dtype=np.uint8)),
                               preempt_count=cols.pop(COMMON_PREEMPT, np.zeros(len(r), dtype=np.uint8)),
                               index=r, columns=cols)
            row[r] = np.arange(len(r))
            pid[r] = table.pid
            by_id[fmt.id] = table
            events[fmt.name] = table
        event_id = np.array([f.id for f in self.format_list] or [0], dtype=np.int32)[fidx[order]]
        lost = []
        for s, base in zip(segs, bases[:-1].tolist()):
            ch = s.chunk
            for at, cnt in zip(ch.lost_at.tolist(), ch.lost_count.tolist()):
                if s.lo <= at < s.hi:
                    lost.append(LostMark(ch.cpu, None if cnt < 0 else cnt, int(rank[base + at - s.lo])))
        lost.sort(key=lambda m: m.position)
        return Batch(ts=ts, cpu=cpu, event_id=event_id, pid=pid, row=row, events=events, by_id=by_id, lost=lost,
                     key=key[order])

    def _decode_segment(self, s: _Segment, base: int, parts: dict) -> None:
        ch = s.chunk
        fidx = ch.fidx[s.lo:s.hi]
        # a stable sort of small ints is a radix sort in numpy (6x faster than of int32 here)
        narrow = np.uint16 if len(self.format_list) <= 1 << 16 else np.int64
        order = np.argsort(fidx.astype(narrow), kind="stable")
        sorted_f = fidx[order]
        bounds = np.flatnonzero(np.diff(sorted_f)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(sorted_f)]])
        words = ch.buf.view("<u4")
        for a, b in zip(starts.tolist(), ends.tolist()):
            fi = int(sorted_f[a])
            rows = order[a:b] + s.lo
            cols = self._decode_rows(fi, ch, words, rows)
            parts.setdefault(fi, []).append((rows - s.lo + base, cols))

    def _decode_rows(self, fi: int, ch: _Chunk, words: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
        fmt = self.format_list[fi]
        dt = self._dtypes[fi]
        nw = dt.itemsize // 4
        off = ch.off[rows]
        idx = (off >> 2)[:, None] + np.arange(nw, dtype=np.int64)
        rec = words[idx].view(np.uint8).view(dt).reshape(len(rows))
        cols: dict[str, np.ndarray] = {}
        for f in fmt.fields:
            if f.is_common:
                if f.name in (COMMON_PID, COMMON_FLAGS, COMMON_PREEMPT):
                    cols[f.name] = np.ascontiguousarray(rec[f.name])
            elif f.is_dynamic:
                cols[f.name] = _dynamic_column(f, rec[f.name], ch, off, ch.plen[rows])
            elif f.is_flexible:
                cols[f.name] = _flexible_column(f, ch, off, ch.plen[rows])
            elif f.is_string:
                cols[f.name] = _char_array_column(rec[f.name])
            else:
                cols[f.name] = np.ascontiguousarray(rec[f.name])
        return cols


@functools.lru_cache(maxsize=4096)
def _parse_format_cached(text: str, system: str) -> EventFormat:
    """parse_format, once per distinct text: every command that decodes a capture twice (problems,
    then the model), and every capture of one kernel, share the same ~130 format files. The formats
    are never changed after parsing."""
    return parse_format(text, system)


def _round4(n: int) -> int:
    return max(4, (n + 3) & ~3)


class Follower:
    """Decodes a capture while the readers write it: each ``poll(marks)`` reads the whole pages added
    to every CPU's file since the last call and yields, in global time order, the records every CPU
    is known to be complete up to - the smaller, per CPU, of its last record read and its reader's
    published watermark (``capture.reader.Watermarks``: every event of that CPU up to then is in
    its file) - keeping the rest for the next call. ``poll(None)`` (the capture is over: the files
    are whole) yields everything left. The batches are those ``Decoder.batches()`` would yield over
    the same records (only their boundaries differ); ``stats()`` is the summary so far."""

    def __init__(self, dec: Decoder, events: Iterable[str] | None = None):
        self.dec = dec
        self.streams = dec._streams(events)
        self._files: dict[int, Any] = {}
        self._off = {s.cpu: 0 for s in self.streams}
        self.pending: dict[int, deque[_Segment]] = {s.cpu: deque() for s in self.streams}
        self.bound = -1  # every record at or before it has been yielded
        self.events = 0
        self.at_end = {s.cpu: False for s in self.streams}

    def _read(self, s: _CpuStream, max_bytes: int) -> None:
        """Walk whole pages appended to one CPU's file since the last read, up to ``max_bytes``;
        ``at_end[cpu]``: the file was read to its end."""
        ps = self.dec.layout.page_size
        self.at_end[s.cpu] = False
        f = self._files.get(s.cpu)
        if f is None:
            try:
                f = self._files[s.cpu] = open(s.path, "rb")
            except OSError:
                self.at_end[s.cpu] = True  # not created yet: nothing of it to wait for
                return
        want = self.dec.chunk_pages * ps
        budget = max(ps, max_bytes - max_bytes % ps)
        while budget > 0:
            size = os.fstat(f.fileno()).st_size
            avail = size - self._off[s.cpu]
            avail -= avail % ps
            if avail <= 0:
                self.at_end[s.cpu] = True
                break
            buf = np.empty(min(want, avail, budget), dtype=np.uint8)
            n = os.preadv(f.fileno(), [memoryview(buf)], self._off[s.cpu])
            n -= n % ps
            if n <= 0:
                break
            ch = s._walk(buf[:n], self._off[s.cpu], True)
            self._off[s.cpu] += n
            budget -= n
            s.stats.file_bytes = self._off[s.cpu]
            if len(ch):
                self.pending[s.cpu].append(_Segment(ch, 0, len(ch)))

    def behind(self) -> bool:
        """Is some CPU's file not read to its end?"""
        return not all(self.at_end.values())

    def poll(self, marks: dict[int, int] | None, max_bytes: int = 1 << 62, limit: int | None = None) -> Iterator[Batch]:
        """Batches of the records now known complete, reading at most ``max_bytes`` of each CPU's
        file (memory stays bounded when the follower is behind: call again while ``behind()``).
        ``marks``: cpu -> watermark (-1: none yet), read before this call; None: the capture has
        ended, yield all that is left of what was read. ``limit``: yield nothing after it (live
        mode: the /proc watcher's watermark, so snapshot records come before the events after them)."""
        for s in self.streams:
            self._read(s, max_bytes)
        whole = []
        for s in self.streams:
            q = self.pending[s.cpu]
            last = int(q[-1].chunk.key[q[-1].hi - 1]) if q else int(s.key_carry)
            if self.at_end[s.cpu]:  # everything of it up to its watermark is read
                last = max(last, (1 << 64) - 2 if marks is None else int(marks.get(s.cpu, -1)))
            whole.append(last)
        bound = min(whole) + 1 if whole else 0
        if limit is not None and marks is not None:  # what else the reader of the batches must have first
            bound = min(bound, limit + 1)
        if bound <= 0:
            return
        self.bound = max(self.bound, bound - 1)
        rows = self.dec.chunk_pages * 64  # about a chunk's records per batch
        while True:
            # this batch: the records below x, x at most the rows-th pending key of any CPU
            x = bound
            for q in self.pending.values():
                k = _key_at(q, rows)
                if k is not None and k < x:
                    x = max(k, int(q[0].chunk.key[q[0].lo]) + 1)  # at least one record of it
            segs = []
            for c in sorted(self.pending):
                segs += _take_below(self.pending[c], x)
            if not segs:
                return
            b = self.dec._build(segs)
            self.events += len(b)
            yield b

    def stats(self) -> DecodeStats:
        return self.dec._collect_stats(self.streams)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


def _key_at(q: deque[_Segment], i: int) -> int | None:
    """The key of the i-th pending record of one CPU (None: fewer are pending)."""
    for g in q:
        n = g.hi - g.lo
        if i < n:
            return int(g.chunk.key[g.lo + i])
        i -= n
    return None


def _take_below(q: deque[_Segment], bound: int) -> list[_Segment]:
    """Pop from the front of one CPU's pending segments every record with key < bound."""
    out = []
    while q:
        s = q[0]
        j = s.lo + int(np.searchsorted(s.chunk.key[s.lo:s.hi], np.uint64(bound), side="left"))
        if j > s.lo:
            out.append(_Segment(s.chunk, s.lo, j))
        if j < s.hi:
            s.lo = j
            break
        q.popleft()
    return out


def _char_array_column(a: np.ndarray) -> np.ndarray:
    """(n, k) uint8 -> ``S{k}``, each cut at its first NUL (what the kernel's ``%s`` prints)."""
    a = np.ascontiguousarray(a)
    if a.size:
        after = np.logical_or.accumulate(a == 0, axis=1)
        if after.any():
            a = np.where(after, np.uint8(0), a)
    return a.view(f"S{a.shape[1]}").reshape(a.shape[0]) if a.ndim == 2 and a.shape[1] else np.zeros(len(a), "S1")


def _dynamic_column(f: Field, loc: np.ndarray, ch: _Chunk, off: np.ndarray, plen: np.ndarray) -> np.ndarray:
    """``__data_loc``: u32 = (len << 16) | offset from the record start; ``__rel_loc``: offset from
    the end of the field. Out-of-record locations decode as empty."""
    loc = loc.astype(np.int64)
    start = loc & 0xFFFF
    length = loc >> 16
    if f.is_rel_loc:
        start = start + f.offset + f.size
    valid = start + length <= plen
    abs_start = (off + start).tolist()
    lens = np.where(valid, length, 0).tolist()
    mv = memoryview(ch.buf)
    out = np.empty(len(loc), dtype=object)
    if f.is_string:
        out[:] = [bytes_to_str(bytes(mv[s:s + n])) for s, n in zip(abs_start, lens)]
    else:
        dt = np.dtype(("<i" if f.signed else "<u") + str(f.elem_size)) if f.elem_size in (1, 2, 4, 8) else np.uint8
        out[:] = [np.frombuffer(bytes(mv[s:s + n - n % dt.itemsize]), dtype=dt) for s, n in zip(abs_start, lens)]
    return out


def _flexible_column(f: Field, ch: _Chunk, off: np.ndarray, plen: np.ndarray) -> np.ndarray:
    """``type name[]`` (size 0): from the field's offset to the end of the payload."""
    mv = memoryview(ch.buf)
    starts = (off + f.offset).tolist()
    ends = (off + np.maximum(plen, f.offset)).tolist()
    out = np.empty(len(off), dtype=object)
    if f.is_string:
        out[:] = [bytes_to_str(bytes(mv[s:e])) for s, e in zip(starts, ends)]
    else:
        out[:] = [np.frombuffer(bytes(mv[s:e]), dtype=np.uint8) for s, e in zip(starts, ends)]
    return out


def decode_stats(capture: CaptureDir | str | os.PathLike) -> DecodeStats:
    """Summary for ``info``."""
    return Decoder(capture).stats()
