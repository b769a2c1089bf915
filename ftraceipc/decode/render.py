"""Write decoded events and capture summaries as text, JSON lines, CSV or Parquet.

Plain functions taking a capture and a text file object; the CLI wires them to ``events`` and
``info``.

The text line follows the kernel's ``trace`` file::

    <comm>-<tid> [<cpu>] <context> <ts>: <event>: <name>=<value> ...

``context`` is the kernel's five characters: irqs-off, need-resched, hardirq/softirq,
preempt-depth, migrate-disable (``d..2.``).

``comm`` comes from the capture's ``saved_cmdlines``; the timestamp is ``seconds.microseconds``
(rounded like the kernel's ns2usecs) for nanosecond clocks and the raw count for the others.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, TextIO

import numpy as np

from ftraceipc.capture.store import CaptureDir
from ftraceipc.decode.decoder import (RECORD_KEYS, Batch, DecodeStats, Decoder, EventTable, bytes_to_str,
                                      python_columns, record_key)
from ftraceipc.errors import CommandError

# common_flags bits (enum trace_flag_type, include/linux/trace_events.h, 6.x)
TRACE_FLAG_IRQS_OFF = 0x01
TRACE_FLAG_NEED_RESCHED_LAZY = 0x02
TRACE_FLAG_NEED_RESCHED = 0x04
TRACE_FLAG_HARDIRQ = 0x08
TRACE_FLAG_SOFTIRQ = 0x10
TRACE_FLAG_PREEMPT_RESCHED = 0x20
TRACE_FLAG_NMI = 0x40
TRACE_FLAG_BH_OFF = 0x80

_RESCHED_CHARS = {
    TRACE_FLAG_NEED_RESCHED | TRACE_FLAG_NEED_RESCHED_LAZY | TRACE_FLAG_PREEMPT_RESCHED: "B",
    TRACE_FLAG_NEED_RESCHED | TRACE_FLAG_PREEMPT_RESCHED: "N",
    TRACE_FLAG_NEED_RESCHED_LAZY | TRACE_FLAG_PREEMPT_RESCHED: "L",
    TRACE_FLAG_NEED_RESCHED | TRACE_FLAG_NEED_RESCHED_LAZY: "b",
    TRACE_FLAG_NEED_RESCHED: "n",
    TRACE_FLAG_PREEMPT_RESCHED: "p",
    TRACE_FLAG_NEED_RESCHED_LAZY: "l",
}


class EventsFormat(str, enum.Enum):
    TEXT = "text"
    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"  # a directory, not a stream: see render_parquet


class InfoFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"


def latency_flags(flags: int, preempt_count: int) -> str:
    """The kernel's 5-character context column (trace_print_lat_fmt), e.g. ``d..2.``."""
    bh_off = flags & TRACE_FLAG_BH_OFF
    irqs_off = flags & TRACE_FLAG_IRQS_OFF
    c1 = "D" if irqs_off and bh_off else "d" if irqs_off else "b" if bh_off else "."
    c2 = _RESCHED_CHARS.get(flags & (TRACE_FLAG_NEED_RESCHED | TRACE_FLAG_NEED_RESCHED_LAZY
                                     | TRACE_FLAG_PREEMPT_RESCHED), ".")
    nmi, hard, soft = flags & TRACE_FLAG_NMI, flags & TRACE_FLAG_HARDIRQ, flags & TRACE_FLAG_SOFTIRQ
    c3 = ("Z" if nmi and hard else "z" if nmi else "H" if hard and soft else "h" if hard else "s" if soft else ".")
    c4 = f"{preempt_count & 0xF:x}" if preempt_count & 0xF else "."
    c5 = f"{preempt_count >> 4:x}" if preempt_count & 0xF0 else "."
    return c1 + c2 + c3 + c4 + c5


def format_ts(ts: int, in_ns: bool) -> str:
    """``seconds.microseconds`` for ns clocks (rounded to the nearest µs like ns2usecs), else raw."""
    if not in_ns:
        return f"{ts:12d}"
    us = (ts + 500) // 1000
    return f"{us // 1_000_000:5d}.{us % 1_000_000:06d}"


def read_cmdlines(cap: CaptureDir) -> dict[int, str]:
    """``saved_cmdlines`` (``pid comm`` per line) as a dict."""
    out: dict[int, str] = {0: "<idle>"}
    try:
        text = (cap.tracefs_dir / "saved_cmdlines").read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        pid, _, comm = line.partition(" ")
        if pid.isdigit() and comm:
            out[int(pid)] = comm
    out[0] = "<idle>"
    return out


def _value_text(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ",".join(str(x) for x in v) + "]"
    if isinstance(v, str):
        return v.replace("\n", "\\n")  # one line per event
    return str(v)


def _bodies(t: EventTable, json_style: bool) -> list[str]:
    """Each row's own fields as one string: ``"k":v,...`` (JSON) or ``k=v ...`` (text; pointers in hex).

    Built column by column, so the per-event work is one join."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    pointers = {record_key(f.name) for f in t.format.own_fields if f.is_pointer}
    frags: list[list[str]] = []
    for k, vals in python_columns(t):
        if json_style:
            head = encode(k) + ":"
            if vals and isinstance(vals[0], (str, list)):
                frags.append([head + encode(v) for v in vals])
            else:
                frags.append([head + str(v) for v in vals])
        else:
            head = k + "="
            if k in pointers:
                frags.append([head + hex(v) for v in vals])
            else:
                frags.append([head + _value_text(v) for v in vals])
    if not frags:
        return [""] * len(t)
    return list(map(("," if json_style else " ").join, zip(*frags)))


def _select_events(dec: Decoder, events: Iterable[str] | None) -> list[str] | None:
    if not events:
        return None
    names = []
    for e in events:
        try:
            names.append(dec.event_format(e).full_name)
        except KeyError:
            known = ", ".join(sorted(f.name for f in dec.format_list))
            raise CommandError(f"no event {e!r} in this capture", hint=f"events present: {known}") from None
    return names


def render_events(capture: Decoder | CaptureDir | str | os.PathLike, out: TextIO, *,
                  format: EventsFormat | str = EventsFormat.TEXT, limit: int | None = None,
                  events: Iterable[str] | None = None) -> int:
    """Write the capture's events in time order; returns how many were written."""
    dec = capture if isinstance(capture, Decoder) else Decoder(capture)
    fmt = EventsFormat(format)
    if fmt is EventsFormat.PARQUET:
        raise CommandError("--format parquet writes a directory, not a stream", hint="use render_parquet")
    names = _select_events(dec, events)
    if fmt is EventsFormat.TEXT:
        comms = read_cmdlines(dec.capture)
        n = 0
        for batch in _limited(dec, names, limit):
            out.write("".join(_text_lines(batch, comms, dec.clock_in_ns)))
            n += len(batch)
        return n
    if fmt is EventsFormat.CSV:
        fields = _csv_fields(dec, names)
        lines = _LineMaker(_Style.CSV, {k: i for i, k in enumerate(fields)})
        _write_bytes(out, (",".join(list(RECORD_KEYS) + fields) + "\n").encode())
    else:
        lines = _LineMaker(_Style.JSON)
    n = 0
    for batch in _limited(dec, names, limit):
        for chunk in lines.batch(batch):
            _write_bytes(out, chunk)
        n += len(batch)
    return n


def _limited(dec: Decoder, names: list[str] | None, limit: int | None) -> Iterator[Batch]:
    """The decoder's batches, cut after ``limit`` events."""
    n = 0
    if limit is not None and limit <= 0:
        return
    for batch in dec.batches(names):
        if limit is not None and n + len(batch) > limit:
            batch = batch.head(limit - n)
        yield batch
        n += len(batch)
        if limit is not None and n >= limit:
            return


def _write_bytes(out: TextIO, data) -> None:
    """UTF-8 bytes to a text stream: straight to its binary buffer when it has one and encodes UTF-8."""
    buf = getattr(out, "buffer", None)
    if buf is not None and (getattr(out, "encoding", "") or "").lower().replace("-", "") in ("utf8", "utf_8"):
        out.flush()
        buf.write(data)
    else:
        out.write(bytes(data).decode("utf-8"))


def _text_lines(batch: Batch, comms: dict[int, str], in_ns: bool) -> list[str]:
    bodies = {eid: _bodies(t, False) for eid, t in batch.by_id.items()}
    ctx: dict[tuple[int, int], str] = {}
    flags = {}
    for eid, t in batch.by_id.items():
        flags[eid] = [ctx.get(fp) or ctx.setdefault(fp, latency_flags(*fp))
                      for fp in zip(t.flags.tolist(), t.preempt_count.tolist())]
    names = {eid: t.name for eid, t in batch.by_id.items()}
    marks = {}
    for m in batch.lost:
        marks.setdefault(m.position, []).append(
            f"CPU:{m.cpu} [LOST {m.count} EVENTS]\n" if m.count is not None else f"CPU:{m.cpu} [LOST EVENTS]\n")
    lines = []
    for i, (ts, cpu, eid, pid, row) in enumerate(zip(batch.ts.tolist(), batch.cpu.tolist(), batch.event_id.tolist(),
                                                     batch.pid.tolist(), batch.row.tolist())):
        if marks and i in marks:
            lines += marks[i]
        lines.append(f"{comms.get(pid, '<...>'):>16}-{pid:<7} [{cpu:03d}] {flags[eid][row]} "
                     f"{format_ts(ts, in_ns)}: {names[eid]}: {bodies[eid][row]}\n")
    return lines


def _csv_fields(dec: Decoder, names: list[str] | None) -> list[str]:
    """The CSV header after ts,cpu,tid,event: the union of the selected events' own fields, in
    format order (an event lacking one leaves its cell empty)."""
    fields: list[str] = []
    for f in dec.format_list:
        if names is None or f.full_name in names:
            for x in f.own_fields:
                k = record_key(x.name)
                if k not in fields:
                    fields.append(k)
    return fields


# --- columnar JSON lines and CSV ------------------------------------------------------------------------
# Each event type's lines are built as the rows of a uint8 matrix: its pieces (constant text, numbers,
# strings) side by side, each piece as wide as its widest value and padded with NUL bytes (which no
# piece contains). The rows of all types are placed in the batch's time order and the NULs dropped:
# what is left is the lines, one after another. Numbers are turned into digits 4 at a time with a
# table; strings that need escaping or quoting (rare) go through Python's json/csv one by one.
_ROWS = 16384  # events per slice of the interleaving: its matrix stays small (no page faults, in cache)


class _Style(enum.Enum):
    JSON = "jsonl"
    CSV = "csv"


def _digit_tables() -> np.ndarray:
    """``[blanks][value]`` -> 4 ASCII digits as a little-endian u32, the first ``blanks`` of them NUL."""
    t = np.zeros((5, 10000, 4), dtype=np.uint8)
    v = np.arange(10000)
    for i, div in enumerate((1000, 100, 10, 1)):
        t[:, :, i] = 48 + (v // div) % 10
    for blanks in range(1, 5):
        t[blanks, :, :blanks] = 0
    return t.view("<u4").reshape(5 * 10000)


_DIGITS = _digit_tables()
_POW10 = [10 ** k for k in range(20)]


def _int_block(v: np.ndarray) -> np.ndarray:
    """Integers -> (n, w) uint8: each row the decimal text of its value (``str(int)``), right-aligned,
    NUL-padded on the left."""
    n = len(v)
    neg = None
    if v.dtype.kind == "i":
        v64 = v.astype(np.int64, copy=False)
        m = v64 < 0
        if m.any():
            neg = np.flatnonzero(m)
            a = np.abs(v64).view(np.uint64)  # abs(INT64_MIN) wraps to itself: as u64 it is 2**63, right
        else:
            a = v64.view(np.uint64)
    else:
        a = v.astype(np.uint64, copy=False)
    mx = int(a.max()) if n else 0
    nd = len(str(mx))
    groups = (nd + 3) // 4
    lead = 1 if neg is not None and nd % 4 == 0 else 0  # a column for the sign when the digits fill the groups
    out = np.zeros((n, groups + lead), dtype="<u4")
    x = a
    e4 = np.uint64(10000)
    for k in range(groups):
        q = x // e4
        r = (x - q * e4).astype(np.intp)
        # blanks in this group: 4 - digits of x (x < 10**4 here or the group is full), at least 1 digit in group 0
        blanks = (x < 1000).astype(np.intp)
        blanks += x < 100
        blanks += x < 10
        if k:
            blanks += x == 0
        r += blanks * 10000
        out[:, groups + lead - 1 - k] = _DIGITS[r]
        x = q
    b = out.view(np.uint8)
    if neg is not None:
        an = a[neg]
        d = np.ones(len(neg), dtype=np.intp)
        for p in _POW10[1:nd]:
            d += an >= np.uint64(p)
        b[neg, b.shape[1] - d - 1] = 45  # '-'
    return b[:, b.shape[1] - nd - (neg is not None):]  # no column that is NUL in every row


def _const_bytes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8)


# bytes that make a string need JSON escaping (control characters, '"', '\\') or CSV quoting (',', '"', CR, LF);
# bytes >= 0x80 are checked when the text may not be valid UTF-8 (decoded with replacement like bytes_to_str)
_JSON_SPECIAL = np.zeros(256, dtype=bool)
_JSON_SPECIAL[1:32] = True
_JSON_SPECIAL[[ord('"'), ord("\\")]] = True
_CSV_SPECIAL = np.zeros(256, dtype=bool)
_CSV_SPECIAL[[ord(","), ord('"'), ord("\n"), ord("\r")]] = True
_HIGH = np.zeros(256, dtype=bool)
_HIGH[128:] = True
_json_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _csv_cell(s: str) -> str:
    """What csv.writer writes for the string ``s`` (quoted when it needs to be)."""
    o = io.StringIO()
    csv.writer(o, lineterminator="\n").writerow(["", s])
    return o.getvalue()[1:-1]


def _matrix(values: list[bytes], n: int) -> np.ndarray:
    w = max(map(len, values), default=0) or 1
    return np.array(values, dtype=f"S{w}").view(np.uint8).reshape(n, w)


def _text_block(raw: np.ndarray, style: _Style, utf8_known: bool) -> np.ndarray:
    """(n, k) uint8 text, NUL-padded -> the cells: JSON strings or CSV cells."""
    n, k = raw.shape
    special = (_JSON_SPECIAL if style is _Style.JSON else _CSV_SPECIAL)[raw]
    if not utf8_known:
        special |= _HIGH[raw]
    bad = np.flatnonzero(special.any(axis=1))
    q = 1 if style is _Style.JSON else 0
    fixed = None
    if len(bad):
        enc = _json_encode if style is _Style.JSON else _csv_cell
        fixed = _matrix([enc(bytes_to_str(raw[i].tobytes())).encode() for i in bad.tolist()], len(bad))
    w = max(k + 2 * q, fixed.shape[1] if fixed is not None else 0)
    out = np.zeros((n, w), dtype=np.uint8)
    if q:
        out[:, 0] = 34
        out[:, k + 1] = 34
    out[:, q:k + q] = raw
    if fixed is not None:
        out[bad] = 0
        out[bad, :fixed.shape[1]] = fixed
    return out


def _list_block(a: np.ndarray, style: _Style) -> np.ndarray:
    """(n, k) integers -> ``[a,b,c]`` (quoted in CSV when it holds a comma)."""
    n, k = a.shape
    quote = style is _Style.CSV and k > 1
    head, tail = _const_bytes('"[' if quote else "["), _const_bytes(']"' if quote else "]")
    if k == 0:
        return np.broadcast_to(np.concatenate([head, tail]), (n, len(head) + len(tail)))
    d = _int_block(a.reshape(-1))
    w = d.shape[1]
    body = np.zeros((n, k, w + 1), dtype=np.uint8)
    body[:, :, :w] = d.reshape(n, k, w)
    body[:, :-1, w] = 44  # ','
    return np.concatenate([np.broadcast_to(head, (n, len(head))), body.reshape(n, k * (w + 1)),
                           np.broadcast_to(tail, (n, len(tail)))], axis=1)


def _object_block(col: np.ndarray, style: _Style) -> np.ndarray:
    """An object column: strings (``__data_loc`` text) or arrays (dynamic non-char arrays)."""
    vals = col.tolist()
    if vals and isinstance(vals[0], np.ndarray):
        texts = ["[" + ",".join(map(str, v.tolist())) + "]" for v in vals]
        if style is _Style.CSV:
            texts = [f'"{t}"' if "," in t else t for t in texts]
        return _matrix([t.encode() for t in texts], len(vals))
    return _text_block(_matrix([v.encode() for v in vals], len(vals)), style, True)


def _value_block(col: np.ndarray, style: _Style) -> np.ndarray:
    if col.dtype.kind == "S":
        raw = np.ascontiguousarray(col).view(np.uint8).reshape(len(col), col.dtype.itemsize)
        return _text_block(raw, style, False)
    if col.dtype == object:
        return _object_block(col, style)
    if col.ndim == 1:
        return _int_block(col)
    return _list_block(col.reshape(len(col), -1), style)


@dataclass
class _Layout:
    """The pieces of one event type's line: constants and the columns between them."""

    consts: list[np.ndarray]  # len(cols) + 1 constants, around the columns
    cols: list[str]  # an own field's format name, or _TS, _CPU, _TID


_TS, _CPU, _TID = "\0ts", "\0cpu", "\0tid"  # the common columns (own fields may be named ts or cpu)


class _LineMaker:
    """Builds JSON lines (``style`` JSON) or CSV rows (``slots``: the CSV column of each field key)."""

    def __init__(self, style: _Style, slots: dict[str, int] | None = None):
        self.style = style
        self.slots = slots or {}
        self.layouts: dict[int, _Layout] = {}

    def layout(self, t: EventTable) -> _Layout:
        lay = self.layouts.get(t.format.id)
        if lay is not None:
            return lay
        own = [(record_key(f.name), f.name) for f in t.format.own_fields if f.name in t.columns]
        texts: list[str] = []
        cols: list[str] = []
        if self.style is _Style.JSON:
            texts += ['{"ts":', ',"cpu":', ',"tid":']
            cols += [_TS, _CPU, _TID]
            tail = ',"event":' + json.dumps(t.name)
            for key, name in own:
                texts.append(tail + "," + json.dumps(key) + ":")
                cols.append(name)
                tail = ""
            texts.append(tail + "}\n")
        else:
            texts += ["", ",", ","]
            cols += [_TS, _CPU, _TID]
            tail, at = "," + t.name, 0
            for key, name in sorted(own, key=lambda kn: self.slots[kn[0]]):
                slot = self.slots[key]
                texts.append(tail + "," * (slot - at + 1))
                cols.append(name)
                tail, at = "", slot + 1
            texts.append(tail + "," * (len(self.slots) - at) + "\n")
        lay = _Layout([_const_bytes(x) for x in texts], cols)
        self.layouts[t.format.id] = lay
        return lay

    def block(self, t: EventTable, lo: int, hi: int) -> np.ndarray:
        """Rows ``lo:hi`` of table ``t`` as their lines, a NUL-padded (hi-lo, w) uint8 matrix."""
        lay = self.layout(t)
        n = hi - lo
        parts = []
        for c, name in zip(lay.consts, lay.cols):
            parts.append(c)
            col = t.ts if name == _TS else t.cpu if name == _CPU else t.pid if name == _TID else t.columns[name]
            parts.append(_value_block(col[lo:hi], self.style))
        parts.append(lay.consts[-1])
        w = sum(p.shape[-1] for p in parts)
        out = np.empty((n, w), dtype=np.uint8)
        at = 0
        for p in parts:
            out[:, at:at + p.shape[-1]] = p
            at += p.shape[-1]
        return out

    def batch(self, batch: Batch) -> Iterator[np.ndarray]:
        """The batch's lines in time order, a few thousand at a time, as uint8 arrays of UTF-8.
        Each type's lines are built at once (numpy calls on long columns); they are interleaved
        slice by slice (the NUL-padded matrix of a slice stays small)."""
        tables = [(t, self.block(t, 0, len(t))) for t in batch.by_id.values() if len(t)]
        for a in range(0, len(batch), _ROWS):
            b = min(a + _ROWS, len(batch))
            blocks = []
            for t, m in tables:
                lo, hi = np.searchsorted(t.index, [a, b]).tolist()
                if hi > lo:
                    blocks.append((t.index[lo:hi] - a, m[lo:hi]))
            if len(blocks) == 1:
                m = blocks[0][1]
            else:
                m = np.zeros((b - a, max(x.shape[1] for _, x in blocks)), dtype=np.uint8)
                for rows, x in blocks:
                    m[rows, :x.shape[1]] = x
            yield m[m != 0]


# --- Parquet ----------------------------------------------------------------------------------------------
PARQUET_SUFFIX = ".parquet"
_PARQUET_FLUSH_ROWS = 1 << 20  # rows buffered (all types together) before they are written as row groups


def _arrow_numbers(a: np.ndarray):
    """A 1-D numpy integer array as Arrow, without a copy (``pa.array`` on numpy would import pandas)."""
    import pyarrow as pa

    a = np.ascontiguousarray(a)
    return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), len(a), [None, pa.py_buffer(a)])


def _arrow_strings(data: bytes | np.ndarray, lens: np.ndarray):
    """A string array from its UTF-8 bytes back to back and each one's length (no pandas import).
    Raises ``pyarrow.ArrowInvalid`` when the bytes are not valid UTF-8."""
    import pyarrow as pa

    big = len(data) >= 2**31
    offsets = np.zeros(len(lens) + 1, dtype=np.int64 if big else np.int32)
    np.cumsum(lens, out=offsets[1:])
    arr = pa.Array.from_buffers(pa.large_string() if big else pa.string(), len(lens),
                                [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    arr.validate(full=True)
    return arr


def _arrow_column(col: np.ndarray):
    """A decoder column as an Arrow array of its own type: integers keep their width and sign, char
    arrays and ``__data_loc`` strings become strings (UTF-8, invalid bytes replaced as in jsonl), fixed
    arrays ``fixed_size_list<int>[k]``, dynamic arrays ``list<int>``."""
    import pyarrow as pa

    if col.dtype.kind == "S":  # NUL-padded (the decoder zeroes all after the first NUL)
        raw = np.ascontiguousarray(col).view(np.uint8).reshape(len(col), col.dtype.itemsize)
        keep = raw != 0
        try:
            return _arrow_strings(raw[keep], keep.sum(axis=1))
        except pa.ArrowInvalid:  # not valid UTF-8: decode like the jsonl output does
            enc = [bytes_to_str(x).encode() for x in col.tolist()]
            return _arrow_strings(b"".join(enc), np.array([len(x) for x in enc], dtype=np.int64))
    if col.dtype == object:
        vals = list(col)
        if vals and isinstance(vals[0], np.ndarray):
            lens = np.array([len(v) for v in vals], dtype=np.int32)
            offsets = np.zeros(len(vals) + 1, dtype=np.int32)
            np.cumsum(lens, out=offsets[1:])
            return pa.ListArray.from_arrays(_arrow_numbers(offsets), _arrow_numbers(np.concatenate(vals)))
        enc = [v.encode() for v in vals]
        return _arrow_strings(b"".join(enc), np.array([len(x) for x in enc], dtype=np.int64))
    if col.ndim == 1:
        return _arrow_numbers(col)
    flat = col.reshape(len(col), -1)
    return pa.FixedSizeListArray.from_arrays(_arrow_numbers(flat.reshape(-1)), flat.shape[1])


def _arrow_table(t: EventTable, first: int):
    """One event type's rows of a batch: seq, ts, cpu, tid, event, then its own fields (jsonl's keys)."""
    import pyarrow as pa

    cols = {"seq": _arrow_numbers(t.index + first), "ts": _arrow_numbers(t.ts.astype(np.int64, copy=False)),
            "cpu": _arrow_numbers(t.cpu.astype(np.int32, copy=False)),
            "tid": _arrow_numbers(t.pid.astype(np.int32, copy=False)),
            "event": _arrow_strings(t.name.encode() * len(t), np.full(len(t), len(t.name.encode())))}
    for f in t.format.own_fields:
        if f.name in t.columns:
            cols[record_key(f.name)] = _arrow_column(t.columns[f.name])
    return pa.Table.from_arrays(list(cols.values()), names=list(cols))  # pa.table(dict) would import pandas


def _check_parquet_target(path: Path, force: bool) -> None:
    if path.exists() or path.is_symlink():
        if not force:
            raise CommandError(f"{path} exists", hint="add --force to replace it")
        if not path.is_dir() or path.is_symlink() or any(
                not (p.is_file() and p.name.endswith(PARQUET_SUFFIX)) for p in path.iterdir()):
            raise CommandError(f"{path} exists and is not a directory written by --format parquet",
                               hint="give a new path (--force only replaces such a directory)")
    if not path.parent.is_dir():
        raise CommandError(f"cannot write {path}: {path.parent} is not a directory")


def render_parquet(capture: Decoder | CaptureDir | str | os.PathLike, path: str | os.PathLike, *,
                   limit: int | None = None, events: Iterable[str] | None = None, force: bool = False,
                   jobs: int | None = None) -> int:
    """Write the events as a directory of Parquet files, one per event type (``PATH/<event>.parquet``,
    only types with events); returns how many events were written.

    Columns: ``seq`` (int64, the event's position in the time order of all events written: the line
    number of the same ``events --format jsonl``), ``ts`` (int64), ``cpu``, ``tid`` (int32), ``event``
    (string), then the event's own fields under their jsonl keys (see ``_arrow_column`` for the types).
    Rows are in ``seq`` order.
    The directory is written beside ``path`` and renamed into place: a failure leaves nothing behind.
    With ``force``, an existing directory of ``*.parquet`` files (an earlier output) is replaced.

    ``jobs``: processes to use. Default: the CPUs this process may run on, at most one per CPU file of
    the capture. With more than one, each process decodes whole CPU files, then each writes whole event
    types (``_parquet_parallel``); the files are the same as with ``jobs=1`` (one process, streaming).
    ``limit`` and a strict decoder always use one process."""
    dec = capture if isinstance(capture, Decoder) else Decoder(capture)
    names = _select_events(dec, events)
    path = Path(path)
    _check_parquet_target(path, force)
    if jobs is not None and jobs < 1:
        raise CommandError(f"--jobs must be >= 1 (got {jobs})")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            tmp.mkdir()
        except OSError as e:
            raise CommandError(f"cannot write {path}: {e.strerror}") from None
        taken = [f.name for f in dec.format_list]
        files = {f.id: (f.name if taken.count(f.name) == 1 else f"{f.system}.{f.name}") + PARQUET_SUFFIX
                 for f in dec.format_list}
        n_jobs = _parquet_jobs(dec, jobs, limit)
        if n_jobs > 1:
            n = _parquet_parallel(dec, names, tmp, files, n_jobs)
        else:
            n = _parquet_streaming(dec, names, limit, tmp, files)
        if path.exists():
            shutil.rmtree(path)  # checked above: an earlier output, and --force
        os.replace(tmp, path)
    except OSError as e:
        raise CommandError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return n


def _parquet_jobs(dec: Decoder, jobs: int | None, limit: int | None) -> int:
    if limit is not None or dec.strict:
        return 1
    if jobs is None:
        try:
            jobs = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            jobs = os.cpu_count() or 1
    return max(1, min(jobs, len(dec.meta.cpus)))


def _parquet_streaming(dec: Decoder, names: list[str] | None, limit: int | None, tmp: Path,
                       files: dict[int, str]) -> int:
    """One process: the decoder's merged batches, buffered per type and written as row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writers: dict[int, Any] = {}
    pending: dict[int, list] = {}
    buffered = 0
    n = 0

    def flush() -> None:
        for eid, tables in pending.items():
            if not tables:
                continue
            table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
            if eid not in writers:
                writers[eid] = pq.ParquetWriter(tmp / files[eid], table.schema, use_dictionary=_string_columns(table))
            writers[eid].write_table(table)
            tables.clear()

    try:
        for batch in _limited(dec, names, limit):
            for eid, t in batch.by_id.items():
                pending.setdefault(eid, []).append(_arrow_table(t, n))
            n += len(batch)
            buffered += len(batch)
            if buffered >= _PARQUET_FLUSH_ROWS:
                flush()
                buffered = 0
        flush()
    finally:
        for w in writers.values():
            w.close()
    return n


def _string_columns(table) -> list[str]:
    """Dictionary pages for the strings only (numbers: plain, 3x faster to write)."""
    import pyarrow as pa

    return [f.name for f in table.schema if pa.types.is_string(f.type)]


# The parallel writer's job, set before the worker processes are forked (they inherit it: the decoder
# with its parsed formats is not pickled) and cleared after.
_PQ_JOB: dict[str, Any] = {}


def _parquet_parallel(dec: Decoder, names: list[str] | None, tmp: Path, files: dict[int, str], jobs: int) -> int:
    """Two phases in ``jobs`` forked processes.

    1. Per CPU file: decode it alone (``Decoder.batches(cpus=[cpu])``) and write each event type's rows
       as Arrow IPC (``part.<eid>.<cpu>``) with their position among this CPU's events and their merge
       key; the keys of all its events go to ``keys.<cpu>`` (uint64, non-decreasing).
    2. Per event type: an event's ``seq`` is its position in its CPU plus, for every other CPU, how many
       of that CPU's events come first in the decoder's order (key, cpu, position): those with a smaller
       key, or an equal key on a lower CPU. The parts are merged in ``seq`` order and written.
    The decoder's warnings found in the workers are added to ``dec`` (same texts as one process)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # imported once here rather than once per worker (about 0.3 s of CPU each); no Arrow thread runs yet
    import pyarrow.compute  # noqa: F401  (Table.take)
    import pyarrow.parquet  # noqa: F401

    cpus = sorted(dec.meta.cpus)
    _PQ_JOB.update(dec=dec, names=names, tmp=tmp, files=files, cpus=cpus, dropped=dec.warnings_dropped)
    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            decoded = list(pool.map(_pq_decode_cpu, cpus))
            rows: dict[int, int] = {}
            for d in decoded:
                for eid, k in d["rows"].items():
                    rows[eid] = rows.get(eid, 0) + k
            # the biggest types first, so that no process is left alone with one at the end
            eids = sorted(rows, key=lambda e: -rows[e])
            list(pool.map(_pq_write_type, eids))
        for c in cpus:
            (tmp / f"keys.{c}").unlink(missing_ok=True)
    except BrokenProcessPool:
        raise CommandError("a process writing Parquet died (out of memory?)",
                           hint="retry with --jobs 1 (one process, streaming)") from None
    finally:
        _PQ_JOB.clear()
    for d in decoded:
        for w in d["warnings"]:
            dec._warn(w.kind, w.message, w.path, w.offset, w.cpu)
        dec.warnings_dropped += d["dropped"]
    return sum(d["events"] for d in decoded)


def _pq_decode_cpu(cpu: int) -> dict[str, Any]:
    import pyarrow as pa

    job = _PQ_JOB
    dec, tmp = job["dec"], job["tmp"]
    writers: dict[int, Any] = {}
    rows: dict[int, int] = {}
    pos = 0
    try:
        with open(tmp / f"keys.{cpu}", "wb") as keys:
            for batch in dec.batches(job["names"], cpus=[cpu]):
                keys.write(batch.key.tobytes())
                for eid, t in batch.by_id.items():
                    table = _arrow_table(t, pos).append_column("_key", _arrow_numbers(batch.key[t.index]))
                    w = writers.get(eid)
                    if w is None:
                        w = writers[eid] = pa.ipc.new_file(str(tmp / f"part.{eid}.{cpu}"), table.schema)
                    w.write_table(table)
                    rows[eid] = rows.get(eid, 0) + len(t)
                pos += len(batch)
    finally:
        for w in writers.values():
            w.close()
    return {"cpu": cpu, "events": pos, "rows": rows, "warnings": list(dec.warnings),
            "dropped": dec.warnings_dropped - job["dropped"]}


def _numpy_of(col) -> np.ndarray:
    """A chunked Arrow integer column (no nulls) as one numpy array (``ChunkedArray.to_numpy`` would
    import pandas)."""
    dt = np.dtype(col.type.to_pandas_dtype())
    parts = [np.frombuffer(c.buffers()[1], dtype=dt, count=len(c), offset=c.offset * dt.itemsize) for c in col.chunks]
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def _pq_write_type(eid: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    job = _PQ_JOB
    tmp, cpus = job["tmp"], job["cpus"]
    keys = {}
    for c in cpus:
        p = tmp / f"keys.{c}"
        keys[c] = np.memmap(p, dtype=np.uint64, mode="r") if p.stat().st_size else np.empty(0, np.uint64)
    sources, parts, seqs = [], [], []
    try:
        for c in cpus:
            p = tmp / f"part.{eid}.{c}"
            if not p.exists():
                continue
            src = pa.memory_map(str(p))
            sources.append(src)
            t = pa.ipc.open_file(src).read_all()
            key = _numpy_of(t.column("_key"))
            seq = _numpy_of(t.column("seq")).astype(np.int64, copy=True)
            for c2 in cpus:
                if c2 != c and len(keys[c2]):
                    seq += np.searchsorted(keys[c2], key, side="right" if c2 < c else "left")
            parts.append(t.drop_columns(["_key"]).set_column(0, "seq", _arrow_numbers(seq)))
            seqs.append(seq)
        table = (pa.concat_tables(parts) if len(parts) > 1 else parts[0]).combine_chunks()
        order = np.argsort(np.concatenate(seqs), kind="stable")
        with pq.ParquetWriter(tmp / job["files"][eid], table.schema, use_dictionary=_string_columns(table)) as w:
            for a in range(0, len(order), _PARQUET_FLUSH_ROWS):
                w.write_table(table.take(_arrow_numbers(order[a:a + _PARQUET_FLUSH_ROWS])))
    finally:
        for src in sources:
            src.close()
    for c in cpus:
        (tmp / f"part.{eid}.{c}").unlink(missing_ok=True)


# --- info ------------------------------------------------------------------------------------------
def _dur_text(stats: DecodeStats) -> str:
    d = stats.duration
    if d is None:
        return "-"
    return f"{d / 1e9:.6f} s" if stats.clock_in_ns else f"{d} {stats.clock} ticks"


def render_info(capture: Decoder | CaptureDir | str | os.PathLike, out: TextIO, *,
                format: InfoFormat | str = InfoFormat.TEXT, stats: DecodeStats | None = None) -> DecodeStats:
    """Summarize a capture: events per type and CPU, lost events, time span, warnings."""
    dec = capture if isinstance(capture, Decoder) else Decoder(capture)
    st = stats or dec.stats()
    fmt = InfoFormat(format)
    if fmt is InfoFormat.JSON:
        d = st.to_json()
        d["capture"] = str(dec.capture.root)
        json.dump(d, out, indent=1)
        out.write("\n")
        return st
    m = st.meta
    w = out.write
    w(f"capture   {dec.capture.root}\n")
    w(f"kernel    {m.kernel_release or '?'} on {m.hostname or '?'} ({m.machine or '?'}), "
      f"{m.ncpus} cpu stream(s), page {m.page_size} bytes, clock {m.clock}\n")
    if m.command:
        w(f"command   {' '.join(m.command)} (exit {m.exit_code})\n")
    w(f"events    {st.events}")
    if st.first_ts is not None:
        w(f" from {format_ts(st.first_ts, st.clock_in_ns).strip()} to {format_ts(st.last_ts, st.clock_in_ns).strip()}"
          f" ({_dur_text(st)})")
    w("\n")
    if st.by_event:
        width = max(len(k) for k in st.by_event)
        w("by event\n")
        for name, cnt in sorted(st.by_event.items(), key=lambda kv: (-kv[1], kv[0])):
            w(f"  {name:<{width}}  {cnt:>10}\n")
    w("by cpu\n")
    w(f"  {'cpu':>4} {'events':>10} {'pages':>8} {'bytes':>12} {'lost pages':>10} {'lost events':>11}"
      f" {'corrupt':>8}\n")
    for cpu, c in sorted(st.per_cpu.items()):
        lost_ev = f"{c.missed_events}" + ("+?" if c.pages_missed_unknown else "")
        w(f"  {cpu:>4} {c.events:>10} {c.pages:>8} {c.bytes:>12} {c.pages_missed:>10} {lost_ev:>11}"
          f" {c.corrupt_pages:>8}\n")
    if m.lost:
        w("kernel lost counters (from the capture)\n")
        for cpu, l in sorted(m.lost.items()):
            w(f"  cpu {cpu}: overrun {l.overrun}, commit overrun {l.commit_overrun}, dropped {l.dropped_events}, "
              f"pages missed {l.pages_missed}, missed events {l.missed_events}\n")
    if st.unknown_ids:
        w("unknown event ids (no format file): " +
          ", ".join(f"{k} x{v}" for k, v in sorted(st.unknown_ids.items())) + "\n")
    if st.short_records:
        w(f"records too short for their format: {st.short_records}\n")
    for warn in st.warnings:
        w(f"warning: {warn}\n")
    if not m.complete:
        w("warning: the capture did not end cleanly (complete=false)\n")
    return st
