"""The IPC resource model of one capture: tasks, resources and the edges between them.

This is what ``ftraceipc model`` exports, what the graph backends load (#4) and what the pictures
draw (#5). Every table is a pandas DataFrame with the columns listed here (documented for users in
docs/schema.md); times are trace-clock nanoseconds (``ts``) or nanosecond durations (``*_ns``).

Edges (``Model.edges()``), each with ``type``, ``src`` and ``dst``:

- ``WRITES``  task -> resource  (src tid, dst rid): calls, bytes, first_ts, last_ts, syscalls, wakes
  (the wakeups the task made inside these calls), wake_ns (the calls' time spent making them: each
  call's duration fitted to its wakeups over the calls the task stayed on CPU through, the slope times
  wakes; 0 when the wakeups hardly vary from call to call, so the fit cannot tell)
- ``READS``   task -> resource  (src tid, dst rid): same columns (a read is a read/recv call)
- ``BLOCKED_ON`` task -> resource (src tid, dst rid): aggregated episodes: episodes, blocked_ns,
  max_ns, ops, and the same split by what the task waited for: read_episodes/read_ns (data: in a
  read/recv, or in a poll ended by a write/send), write_episodes/write_ns (room: in a write/send, or
  in a poll ended by a read/recv). Episode-level rows (one per sleep) are in ``episodes`` (``--episodes``).
- ``WAKES``   task -> task (src waker tid, dst wakee tid): wakeups, via (rid or null), latency
  statistics (wake_to_run_ns: sum, max); per wakeup rows in ``wakeups`` (``--episodes``).
- ``WAITS_FOR`` task -> task (src sleeper tid, dst the tid whose wakeup ended the sleep): via (the
  IPC resource slept on), episodes, blocked_ns, max_ns, top (this is the sleeper's main WAITS_FOR
  row: the most critical-path time inside its sleeps, then the most blocked time; following ``top``
  rows gives each task's main wait, a wait-for graph with one
  edge out of each task), consumed (sleeps after which the sleeper's first read returning data, before
  it slept again, was on via or its peer), turns (sleeps after whose wakeup the waker went to sleep
  before the sleeper did again: the two took turns). Only sleeps on an IPC resource ended by another
  task (not idle, not itself).
- ``FLOWS``   task -> task (src writer tid, dst reader tid): via rid (the resource written into),
  read_rid (where the reader read it: the same pipe/FIFO, the peer socket, or the datagram's
  receiving socket), bytes (written by src into via), messages (write calls).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from ftraceipc.model.critical import CriticalPath

# Column lists: the contract between the model builder, the exporters and the graph loaders.
TASK_COLUMNS = ["tid", "pid", "comm", "comms", "ppid", "first_ts", "last_ts", "tracer"]
RESOURCE_COLUMNS = ["rid", "kind", "inode", "path", "peer", "evidence", "capacity"]
IO_COLUMNS = ["type", "tid", "rid", "calls", "bytes", "first_ts", "last_ts", "syscalls"]
# optional (a built model has them; hand-made tables may leave them out: 0): the wakeups made inside
# the calls, and the time the calls spent making them (fitted: ftraceipc.model.build.wake_cost_ns)
IO_WAKE_COLUMNS = ["wakes", "wake_ns"]
BLOCKED_COLUMNS = ["tid", "rid", "episodes", "blocked_ns", "max_ns", "ops", "read_episodes", "read_ns",
                   "write_episodes", "write_ns"]
WAKES_COLUMNS = ["waker", "wakee", "via", "wakeups", "wake_to_run_ns", "max_wake_to_run_ns",
                 "cross_cpu"]
WAITS_COLUMNS = ["waiter", "waker", "via", "episodes", "blocked_ns", "max_ns", "top", "consumed", "turns"]
FLOW_COLUMNS = ["writer", "reader", "via", "read_rid", "bytes", "messages"]
EPISODE_COLUMNS = ["tid", "rid", "op", "fd", "start_ts", "dur_ns", "state", "woken_by"]
WAKEUP_COLUMNS = ["ts", "waker", "wakee", "via", "wake_to_run_ns", "waker_cpu", "target_cpu"]

KINDS = ("pipe", "fifo", "unix_stream", "unix_dgram", "unix_seqpacket", "unix")


def empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


@dataclass
class Unattributed:
    """I/O or sleeps that could not be tied to a resource, grouped with the reason (never guessed)."""

    pid: int
    tid: int
    fd: int
    syscall: str
    calls: int
    bytes: int
    reason: str

    def line(self) -> str:
        return (f"{self.calls} {self.syscall} call{'s' if self.calls != 1 else ''} on fd {self.fd} of "
                f"pid {self.pid}: {self.reason}")


@dataclass(frozen=True)
class Gap:
    """Something the capture cannot support, and why: the model ``tables`` left empty (or partial
    when ``tables`` is empty: only less exact) because the capture lacks ``events``."""

    events: tuple[str, ...]  # "system:event"
    tables: tuple[str, ...]  # model tables / graph edge types left empty: WRITES, READS, FLOWS, BLOCKED_ON, ...
    text: str  # what it means, in a sentence

    def to_json(self) -> dict[str, Any]:
        return {"events": list(self.events), "tables": list(self.tables), "text": self.text}


@dataclass
class Model:
    """One capture's IPC model. DataFrames have exactly the *_COLUMNS above, in that order."""

    capture: str  # capture directory
    capture_id: str  # stable id (meta: hostname + start wall time + command pid)
    meta: dict[str, Any]
    tasks: pd.DataFrame = field(default_factory=lambda: empty(TASK_COLUMNS))
    resources: pd.DataFrame = field(default_factory=lambda: empty(RESOURCE_COLUMNS))
    io: pd.DataFrame = field(default_factory=lambda: empty(IO_COLUMNS))
    blocked: pd.DataFrame = field(default_factory=lambda: empty(BLOCKED_COLUMNS))
    wakes: pd.DataFrame = field(default_factory=lambda: empty(WAKES_COLUMNS))
    flows: pd.DataFrame = field(default_factory=lambda: empty(FLOW_COLUMNS))
    waits: pd.DataFrame = field(default_factory=lambda: empty(WAITS_COLUMNS))
    # Episode-level tables: only filled when built with episodes=True (else None).
    episodes: pd.DataFrame | None = None
    wakeups: pd.DataFrame | None = None
    # The critical path of the traced command (ftraceipc.model.critical); None without a command
    # or --pid target, or without sched_switch events.
    critical: "CriticalPath | None" = None
    unattributed: list[Unattributed] = field(default_factory=list)
    # Attributions the capture could not support at all, and why (e.g. syscall events missing).
    impossible: list[str] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)  # the same, typed: which tables, for lack of which events
    # events turned off and on while tracing (live --budget), as in event_changes.jsonl (EventChange)
    event_changes: list[dict[str, Any]] = field(default_factory=list)
    decode_stats: Any = None  # the decoder's DecodeStats of the build pass (lost, damaged, truncated, ...)
    stats: dict[str, Any] = field(default_factory=dict)  # events, events_per_s, lost, ...

    def edges(self) -> pd.DataFrame:
        """All edges in one frame: ``type``, ``src``, ``dst`` then the union of the properties
        (src/dst are tids for tasks and rid strings for resources)."""
        parts = []
        if len(self.io):
            parts.append(self.io.rename(columns={"tid": "src", "rid": "dst"}))
        if len(self.blocked):
            parts.append(self.blocked.rename(columns={"tid": "src", "rid": "dst"}).assign(type="BLOCKED_ON"))
        if len(self.wakes):
            parts.append(self.wakes.rename(columns={"waker": "src", "wakee": "dst"}).assign(type="WAKES"))
        if len(self.flows):
            parts.append(self.flows.rename(columns={"writer": "src", "reader": "dst"}).assign(type="FLOWS"))
        if len(self.waits):
            parts.append(self.waits.rename(columns={"waiter": "src", "waker": "dst"}).assign(type="WAITS_FOR"))
        if not parts:
            return empty(["type", "src", "dst"])
        df = pd.concat(parts, ignore_index=True, sort=False)
        first = ["type", "src", "dst"]
        return df[first + [c for c in df.columns if c not in first]]
