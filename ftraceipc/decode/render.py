"""Write decoded events and capture summaries as text, JSON lines or CSV.

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
import json
import os
from typing import Any, Iterable, TextIO

from ftraceipc.capture.store import CaptureDir
from ftraceipc.decode.decoder import (RECORD_KEYS, Batch, DecodeStats, Decoder, EventTable, python_columns,
                                      record_key)
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
    names = _select_events(dec, events)
    if fmt is EventsFormat.CSV:
        return _render_csv(dec, out, limit, names)
    n = 0
    comms = read_cmdlines(dec.capture) if fmt is EventsFormat.TEXT else {}
    for batch in dec.batches(names):
        if limit is not None and n + len(batch) > limit:
            batch = batch.head(limit - n)
        lines = _text_lines(batch, comms, dec.clock_in_ns) if fmt is EventsFormat.TEXT else _json_lines(batch)
        out.write("".join(lines))
        n += len(batch)
        if limit is not None and n >= limit:
            break
    return n


def _json_lines(batch: Batch) -> list[str]:
    bodies = {eid: _bodies(t, True) for eid, t in batch.by_id.items()}
    heads = {eid: ',"event":' + json.dumps(t.name) + ("," if t.format.own_fields else "")
             for eid, t in batch.by_id.items()}
    return [f'{{"ts":{ts},"cpu":{cpu},"tid":{pid}{heads[eid]}{bodies[eid][row]}}}\n'
            for ts, cpu, eid, pid, row in zip(batch.ts.tolist(), batch.cpu.tolist(), batch.event_id.tolist(),
                                              batch.pid.tolist(), batch.row.tolist())]


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


def _render_csv(dec: Decoder, out: TextIO, limit: int | None, names: list[str] | None) -> int:
    """One header: ts,cpu,tid,event then the union of the selected events' own fields (empty where
    an event lacks one); arrays as ``[a,b]``."""
    fmts = [f for f in dec.format_list if names is None or f.full_name in names]
    fields: list[str] = []
    for f in fmts:
        for x in f.own_fields:
            k = record_key(x.name)
            if k not in fields:
                fields.append(k)
    slot = {k: i for i, k in enumerate(fields)}
    w = csv.writer(out, lineterminator="\n")
    w.writerow(list(RECORD_KEYS) + fields)
    n = 0
    for batch in dec.batches(names):
        if limit is not None and n + len(batch) > limit:
            batch = batch.head(limit - n)
        rows = {}
        for eid, t in batch.by_id.items():
            cols: list[list] = [[""] * len(t) for _ in fields]
            for k, vals in python_columns(t):
                cols[slot[k]] = [_value_text(v) for v in vals] if vals and isinstance(vals[0], list) else vals
            rows[eid] = (t.name, list(zip(*cols)) if cols else [()] * len(t))
        out_rows = []
        for ts, cpu, eid, pid, row in zip(batch.ts.tolist(), batch.cpu.tolist(), batch.event_id.tolist(),
                                          batch.pid.tolist(), batch.row.tolist()):
            name, trows = rows[eid]
            out_rows.append((ts, cpu, pid, name) + trows[row])
        w.writerows(out_rows)
        n += len(batch)
        if limit is not None and n >= limit:
            break
    return n


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
