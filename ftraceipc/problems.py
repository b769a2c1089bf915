"""What a capture is missing, in one list: events the kernel lost, pages damaged, files cut short or
missing, events not recorded (and the detectors that cannot run without them).

The facts come from the layers below: the capture's meta.json (kernel lost counters, the bytes
written per CPU, ``complete``), the decoder's statistics (lost-event flags in the pages, damaged
pages, a file that ends inside a page or is missing, unknown event ids) and the model's gaps
(the tables a capture without some events cannot have). This module only assembles them into
:class:`Problem` records; ``model``, ``analyze``, ``report`` and ``export`` print each one as a
warning line on stderr and carry the same list in their JSON, and the HTML report shows it.

    problems = model_problems(model)                       # after build_model
    problems = capture_problems(path)                      # without a model (one fast decoder pass)
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ftraceipc.capture.store import CaptureDir, CaptureMeta, EventChange
from ftraceipc.decode.decoder import DecodeStats, Decoder, WarningKind
from ftraceipc.model.ipc import Gap
from ftraceipc.model.export import short_list


class ProblemKind(str, enum.Enum):
    EVENTS_LOST = "events_lost"  # the kernel dropped events (ring buffer full)
    PAGES_DAMAGED = "pages_damaged"  # pages that do not decode (skipped)
    CAPTURE_INCOMPLETE = "capture_incomplete"  # a cpu file cut short or missing, a capture that did not end
    EVENTS_MISSING = "events_missing"  # events not recorded: tables left empty, detectors not run
    UNDECODABLE = "undecodable"  # records or formats the decoder could not read (skipped)
    EVENTS_NARROWED = "events_narrowed"  # events turned off for a while (live --budget)


@dataclass(frozen=True)
class Problem:
    """One thing a capture is missing: what (``message``), what to change (``fix``) and the details."""

    kind: ProblemKind
    message: str
    fix: str = ""
    cpu: int | None = None
    count: int | None = None  # events concerned (lost, or about how many may be missing); None: unknown
    events: tuple[str, ...] = ()  # missing events ("system:event")
    tables: tuple[str, ...] = ()  # model tables left empty
    detectors: tuple[str, ...] = ()  # detectors not run because of it
    path: str | None = None

    def line(self) -> str:
        """The warning line (without the ``warning:`` prefix)."""
        return f"{self.message}: {self.fix}" if self.fix else self.message

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind.value, "message": self.line()}
        for k in ("cpu", "count", "path"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        for k in ("events", "tables", "detectors"):
            v = getattr(self, k)
            if v:
                d[k] = list(v)
        return d


@dataclass
class NotRun:
    """A selected detector that could not run: the model tables it needs that the capture cannot have."""

    detector: str
    tables: list[str]
    events: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return f"needs {', '.join(self.tables)}; the capture lacks {', '.join(self.events)}"

    def to_json(self) -> dict[str, Any]:
        return {"detector": self.detector, "needs": self.tables, "missing_events": self.events, "reason": self.reason}


def not_run(needs: Mapping[str, Iterable[str]], gaps: Iterable[Gap]) -> list[NotRun]:
    """The detectors (``needs``: id -> model tables it reads) that cannot run on a capture with these gaps."""
    gaps = list(gaps)
    out = []
    for did, tables in needs.items():
        hit = [g for g in gaps if set(g.tables) & set(tables)]
        if hit:
            empty = sorted({t for g in hit for t in g.tables} & set(tables))
            events = list(dict.fromkeys(e for g in hit for e in g.events))
            out.append(NotRun(did, empty, events))
    return out


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _per_page(events: int, pages: int) -> float:
    return events / pages if pages else 0.0


NARROWED_MEANS = {
    "polls": "sleeps inside poll/select/epoll_wait have no resource",
    "data": "data through fds is not attributed to its channel and sleeps in read/write have no resource",
}


def narrowed(meta: CaptureMeta, changes: Iterable[EventChange]) -> list[Problem]:
    """One problem per event group that ``live --budget`` turned off, with when (seconds from the
    start of tracing) and why."""
    from ftraceipc.capture.events import NARROWABLE

    changes = sorted(changes, key=lambda c: c.ts)
    if not changes:
        return []
    t0 = meta.start_ts or changes[0].start_ts
    group_of = {e: g for g, evs in NARROWABLE.items() for e in evs}
    spans: dict[str, list[list]] = {}
    events: dict[str, set[str]] = {}
    why: dict[str, str] = {}
    for c in changes:
        for e in c.off:
            g = group_of.get(e, e)
            events.setdefault(g, set()).add(e)
            why.setdefault(g, c.reason.split(" (")[0])
            if not spans.get(g) or spans[g][-1][1] is not None:
                spans.setdefault(g, []).append([c.ts, None])
        for e in c.on:
            g = group_of.get(e, e)
            if spans.get(g) and spans[g][-1][1] is None:
                spans[g][-1][1] = c.ts
    out = []
    for g, ss in spans.items():
        when = ", ".join(f"{(a - t0) / 1e9:.1f}-" + (f"{(b - t0) / 1e9:.1f} s" if b is not None else "the end")
                         for a, b in ss)
        budget = next((c.budget_pct for c in changes if c.budget_pct is not None), None)
        out.append(Problem(ProblemKind.EVENTS_NARROWED,
                           f"{g} events were turned off by live --budget" + (f" {budget:g}" if budget else "")
                           + f" ({when}; {why[g]}): there {NARROWED_MEANS.get(g, 'their tables are partial')}",
                           "findings count only the rest; raise --budget, or trace less (--pid, --tree-only, -D), "
                           "to keep them on", events=tuple(sorted(events[g]))))
    return out


def collect(meta: CaptureMeta, stats: DecodeStats | None, gaps: Iterable[Gap],
            skipped: Iterable[NotRun] = (), changes: Iterable[EventChange] = ()) -> list[Problem]:
    """The problems of a capture from its facts: meta, the decoder's statistics (None: not decoded),
    the model's gaps, the detectors not run (``skipped``) and the event-set changes (``changes``)."""
    out: list[Problem] = narrowed(meta, changes)
    ps = meta.page_size or 4096
    per_cpu = stats.per_cpu if stats is not None else {}
    for cpu in sorted(set(meta.cpus) | set(meta.lost) | set(per_cpu)):
        st = per_cpu.get(cpu)
        kl = meta.lost.get(cpu)
        # events lost: the kernel's counters and the counts stored in flagged pages (the same losses seen twice)
        n = max(kl.total if kl else 0, st.missed_events if st else 0)
        unknown_pages = st.pages_missed_unknown if st else 0
        if n or unknown_pages:
            if not n:
                what = f"events (how many is unknown: {_plural(unknown_pages, 'page')} flagged)"
            else:
                what = _plural(n, "event") + (" or more (some flagged pages give no count)" if unknown_pages else "")
            out.append(Problem(ProblemKind.EVENTS_LOST, f"{what} lost on CPU{cpu}",
                               f"the ring buffer was full; raise --buffer-kb (it was {meta.buffer_kb or '?'} KiB per CPU) "
                               "or trace fewer events", cpu=cpu, count=n or None))
        if st is None:
            continue
        good_pages = max(st.pages - st.corrupt_pages, 0)
        rate = _per_page(st.events, good_pages)
        path = st.path or None
        if st.missing_file:
            out.append(Problem(ProblemKind.CAPTURE_INCOMPLETE,
                               f"cpu{cpu} raw file is missing: every event of CPU{cpu} is missing",
                               "the capture is incomplete; recapture", cpu=cpu, path=path))
            continue
        if st.corrupt_pages:
            est = round(st.corrupt_pages * rate)
            out.append(Problem(ProblemKind.PAGES_DAMAGED,
                               f"{_plural(st.corrupt_pages, 'page')} of cpu{cpu} damaged and skipped"
                               + (f": about {est:,} events missing" if est else ""),
                               "the file was altered after the capture; recapture", cpu=cpu, count=est or None,
                               path=path))
        written = meta.cpu_bytes.get(cpu)
        cut = written - st.file_bytes if written is not None and written > st.file_bytes else 0
        if st.truncated_bytes or cut:
            where = "ends inside a page" if st.truncated_bytes else "is shorter than written"
            if written is not None:
                where += f" ({st.file_bytes:,} of the {written:,} bytes written)"
            if cut:
                est = round((cut + ps - 1) // ps * rate) if rate else None
                what = f"about {est:,} events are missing" if est else "events are missing"
            else:  # no record of the size written (older capture): only the partial page is known lost
                est = round(rate) if rate else None
                what = (f"events are missing (at least the ~{est:,} of the partial page; how many more is unknown)"
                        if est else "events are missing")
            out.append(Problem(ProblemKind.CAPTURE_INCOMPLETE,
                               f"cpu{cpu} raw file {where}: the capture is incomplete, {what}",
                               "the file was cut after the capture (disk full, an interrupted copy?); recapture",
                               cpu=cpu, count=est or None, path=path))
    if not meta.complete:
        out.append(Problem(ProblemKind.CAPTURE_INCOMPLETE,
                           "the capture did not end cleanly (meta.json says complete=false): its end may be missing",
                           "see the warnings 'ftraceipc capture' printed; recapture"))
    if stats is not None:
        if stats.unknown_ids:
            n = sum(stats.unknown_ids.values())
            out.append(Problem(ProblemKind.UNDECODABLE,
                               f"{_plural(n, 'event')} with an event id that has no format file, skipped",
                               "the capture's format files do not match its pages; recapture", count=n))
        if stats.short_records:
            out.append(Problem(ProblemKind.UNDECODABLE,
                               f"{_plural(stats.short_records, 'record')} shorter than their event format, skipped",
                               "the pages are damaged; recapture", count=stats.short_records))
        for w in stats.warnings:
            if w.kind in (WarningKind.BAD_FORMAT, WarningKind.MISSING_HEADER):
                out.append(Problem(ProblemKind.UNDECODABLE, f"{w.kind.value}: {w.message}",
                                   "the capture is damaged; recapture", path=w.path))
    skipped = list(skipped)
    for g in gaps:
        dets = tuple(s.detector for s in skipped if set(s.events) & set(g.events))
        if meta.detectors and g.tables and not dets:
            continue  # a capture made for some detectors (capture -D) lacks what only the others need: by choice
        msg = f"events missing: {short_list(g.events)}"  # all of them in to_json()'s "events"
        if dets:
            msg += f"; not run: {', '.join(dets)} ({'they need' if len(dets) > 1 else 'it needs'} " \
                   f"{', '.join(t for t in g.tables)})"
        else:
            msg += f" ({g.text})"
        out.append(Problem(ProblemKind.EVENTS_MISSING, msg,
                           "capture with the default event set (leave out -e, or add these events)",
                           events=g.events, tables=g.tables, detectors=dets))
    return out


def model_problems(model, skipped: Iterable[NotRun] = ()) -> list[Problem]:
    """The problems of a built model (``ftraceipc.model.build``): its meta, its build pass's decoder
    statistics and its gaps."""
    meta = CaptureMeta.from_json({"complete": True, **(model.meta or {})})  # a hand-made model: no claim
    changes = [EventChange.from_json(c) for c in getattr(model, "event_changes", None) or []]
    return collect(meta, model.decode_stats, model.gaps, skipped, changes)


def capture_problems(capture: str | os.PathLike, skipped: Iterable[NotRun] = ()) -> list[Problem]:
    """The problems of a capture without its model: meta, one decoder statistics pass (no field
    decoding) and the gaps its event list implies."""
    from ftraceipc.model.build import capture_gaps

    dec = Decoder(capture)
    stats = dec.stats()
    return collect(dec.meta, stats, capture_gaps(dec.meta.to_json()), skipped,
                   CaptureDir(capture).event_changes())


def warning_lines(problems: Iterable[Problem]) -> list[str]:
    return [f"ftraceipc: warning: {p.line()}" for p in problems]
