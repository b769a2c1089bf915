"""The capture directory: where each part of a capture lives, and its metadata.

Layout (docs/capture-format.md)::

    run.ftipc/meta.json
    run.ftipc/tracefs/{header_page,header_event,saved_cmdlines,saved_tgids}
    run.ftipc/tracefs/events/<system>/<event>/format
    run.ftipc/cpu/cpuN.raw
    run.ftipc/proc.jsonl
    run.ftipc/event_changes.jsonl   (live --budget: events turned off and on while tracing)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftraceipc.errors import CaptureFormatError, CommandError

FORMAT_VERSION = 1
META = "meta.json"
PROC = "proc.jsonl"
EVENT_CHANGES = "event_changes.jsonl"


@dataclass
class EventChange:
    """Events turned off or on while tracing (``live --budget``). ``ts`` (trace clock) is when the
    change was complete: no event of ``off`` is recorded at or after it (until it is turned on
    again), and events of ``on`` are recorded from about then; ``start_ts`` is when it began."""

    ts: int
    start_ts: int
    off: list[str] = field(default_factory=list)
    on: list[str] = field(default_factory=list)
    groups_off: list[str] = field(default_factory=list)  # every group off after the change
    reason: str = ""
    cost_pct: float | None = None
    budget_pct: float | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "EventChange":
        return cls(ts=int(d["ts"]), start_ts=int(d.get("start_ts", d["ts"])), off=list(d.get("off") or []),
                   on=list(d.get("on") or []), groups_off=list(d.get("groups_off") or []),
                   reason=str(d.get("reason") or ""), cost_pct=d.get("cost_pct"), budget_pct=d.get("budget_pct"))

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CpuLost:
    overrun: int = 0
    commit_overrun: int = 0
    dropped_events: int = 0
    pages_missed: int = 0
    missed_events: int = 0

    @property
    def total(self) -> int:
        # missed_events (counts stored in pages) is the in-stream view of the same overruns.
        return max(self.overrun, self.missed_events) + self.commit_overrun + self.dropped_events

    @property
    def any(self) -> bool:
        return bool(self.total or self.pages_missed)


@dataclass
class CaptureMeta:
    format_version: int = FORMAT_VERSION
    tool_version: str = ""
    kernel_release: str = ""
    hostname: str = ""
    machine: str = ""
    cpus: list[int] = field(default_factory=list)
    page_size: int = 4096
    clock: str = "local"
    events: list[str] = field(default_factory=list)
    buffer_kb: int = 0
    start_wall: float | None = None
    stop_wall: float | None = None
    start_ts: int | None = None
    stop_ts: int | None = None
    command: list[str] | None = None
    command_pid: int | None = None
    exit_code: int | None = None
    target_pids: list[int] = field(default_factory=list)
    tree_only: bool = False
    lost: dict[int, CpuLost] = field(default_factory=dict)
    complete: bool = False
    # ftraceipc's own processes and threads while tracing: their events are in the capture, to be ignored
    tracer_pids: list[int] = field(default_factory=list)
    tracer_tids: list[int] = field(default_factory=list)
    # default events this kernel lacks (not enabled), so that analyses know they were not missed by choice
    skipped_events: list[str] = field(default_factory=list)
    # the detectors chosen with 'capture -D' (the events are theirs; 'analyze' runs them by default);
    # empty: every detector
    detectors: list[str] = field(default_factory=list)
    # event -> filter expression set in the instance (e.g. the pipefs device on inode events)
    filters: dict[str, str] = field(default_factory=dict)
    # bytes written to each cpu/cpuN.raw (when tracing ended); a shorter file was cut after the capture
    cpu_bytes: dict[int, int] = field(default_factory=dict)
    # what the capture itself cost (CPU seconds of its readers and watchers, events/s): see capture.Cost
    cost: dict[str, Any] = field(default_factory=dict)

    @property
    def ncpus(self) -> int:
        return len(self.cpus)

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["ncpus"] = self.ncpus
        d["lost"] = {str(c): dict(v.__dict__) for c, v in self.lost.items()}
        d["cpu_bytes"] = {str(c): n for c, n in self.cpu_bytes.items()}
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "CaptureMeta":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["lost"] = {int(c): CpuLost(**v) for c, v in (d.get("lost") or {}).items()}
        known["cpu_bytes"] = {int(c): int(n) for c, n in (d.get("cpu_bytes") or {}).items()}
        return cls(**known)


class CaptureDir:
    """Paths of one capture directory (reading or writing)."""

    def __init__(self, path: str | os.PathLike):
        self.root = Path(path)

    # --- paths -------------------------------------------------------------------------
    @property
    def meta_path(self) -> Path:
        return self.root / META

    @property
    def proc_path(self) -> Path:
        return self.root / PROC

    @property
    def tracefs_dir(self) -> Path:
        return self.root / "tracefs"

    def format_path(self, system: str, event: str) -> Path:
        return self.tracefs_dir / "events" / system / event / "format"

    def cpu_path(self, cpu: int) -> Path:
        return self.root / "cpu" / f"cpu{cpu}.raw"

    # --- reading -------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> "CaptureDir":
        """Open an existing capture; one clear error if it is not one."""
        cap = cls(path)
        if not cap.root.exists():
            raise CommandError(f"no capture at {cap.root}", hint="give the directory written by 'ftraceipc capture -o'")
        if not cap.root.is_dir() or not cap.meta_path.is_file():
            raise CaptureFormatError(f"{cap.root} is not an ftraceipc capture (no {META})",
                                     hint="give the directory written by 'ftraceipc capture -o'")
        return cap

    def read_meta(self) -> CaptureMeta:
        try:
            d = json.loads(self.meta_path.read_text())
        except (OSError, ValueError) as e:
            raise CaptureFormatError(f"unreadable capture metadata: {e}", path=str(self.meta_path)) from None
        if not isinstance(d, dict) or d.get("format_version") != FORMAT_VERSION:
            raise CaptureFormatError(f"unsupported capture format version {d.get('format_version') if isinstance(d, dict) else '?'}",
                                     path=str(self.meta_path), hint=f"this ftraceipc reads version {FORMAT_VERSION}")
        try:
            return CaptureMeta.from_json(d)
        except (TypeError, ValueError, AttributeError) as e:
            raise CaptureFormatError(f"unreadable capture metadata: {e}", path=str(self.meta_path)) from None

    def read_text(self, rel: str) -> str:
        p = self.tracefs_dir / rel
        try:
            return p.read_text(errors="replace")  # damaged bytes fail the parse, with the file named
        except OSError as e:
            raise CaptureFormatError(f"capture lacks {rel}: {e.strerror}", path=str(p)) from None

    def format_files(self) -> dict[str, Path]:
        """``{"system:event": path}`` for every format file stored."""
        out: dict[str, Path] = {}
        base = self.tracefs_dir / "events"
        if base.is_dir():
            for p in sorted(base.glob("*/*/format")):
                out[f"{p.parent.parent.name}:{p.parent.name}"] = p
        return out

    @property
    def opens_path(self) -> Path:
        return self.root / "opens.jsonl"

    def proc_records(self, which: str = "both"):
        """Yield the /proc snapshot records (dicts): proc.jsonl in file order, then opens.jsonl (the
        fds named at their open); consumers order them by time. ``which``: "proc", "opens" or both."""
        paths = {"proc": (self.proc_path,), "opens": (self.opens_path,)}.get(which, (self.proc_path, self.opens_path))
        for path in paths:
            yield from self._jsonl(path)

    @property
    def event_changes_path(self) -> Path:
        return self.root / EVENT_CHANGES

    def event_changes(self) -> list[EventChange]:
        """The event-set changes made while tracing, in time order (none: the set was fixed)."""
        out = []
        for d in self._jsonl(self.event_changes_path):
            try:
                out.append(EventChange.from_json(d))
            except (KeyError, TypeError, ValueError) as e:
                raise CaptureFormatError(f"unreadable event change {d!r}: {e}", path=str(self.event_changes_path),
                                         hint="the capture's event set is unknown after it; re-record") from None
        return sorted(out, key=lambda c: c.ts)

    @staticmethod
    def _jsonl(path: Path):
        """The JSON objects of a JSON-lines file, up to a torn last line (none if it is missing)."""
        if not path.exists():
            return
        with open(path, errors="replace") as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        yield json.loads(line)
                    except ValueError:
                        break  # a torn last line of an interrupted capture

    # --- writing -------------------------------------------------------------------------
    def add_event_change(self, ch: EventChange) -> None:
        """Append one change (a whole line, flushed: the capture says what was traced even if the
        run is killed right after)."""
        with open(self.event_changes_path, "a") as f:
            f.write(json.dumps(ch.to_json(), sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def write_meta(self, meta: CaptureMeta) -> None:
        tmp = self.meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta.to_json(), indent=1, sort_keys=True))
        os.replace(tmp, self.meta_path)
