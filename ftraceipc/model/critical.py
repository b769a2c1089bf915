"""The critical path of the traced command: Trace Compass's active path (Giraldeau & Dagenais, IEEE
TPDS 2016) on our sleeps and wakeups.

**Root and window.** The path is the one of the command's root task: ``meta.command_pid`` for
``capture -- CMD``, else the first ``capture --pid`` target (``meta.target_pids[0]``; a server's
main thread, whose path is often its idle waits); a system-wide capture has none (``critical`` is
None), nor a capture without ``sched:sched_switch`` or whose root never appears. The window starts
at the root's first exec in the capture, else its fork, else the capture's first event; it ends at
the root's exit (``sched_process_exit``), else at the capture's last event.

**The walk** goes backwards in time from the end, with an explicit stack (no recursion), and gives
every instant of the window to exactly one task:

- while a task runs, the time is its own (``running``); switched out while runnable (preempted:
  ``sched_switch`` with ``prev_state`` R or R+) until it next runs it is ``runnable`` with the reason
  ``preempted``;
- a sleep [b, e] (from the switch-out to running again) that ended with a wakeup at w: [w, e] is the
  sleeper's ``runnable`` time (waiting for a CPU, whoever woke it), with the sleep's syscall and rid;
- [b, w] is replaced by the waker's path over [b, w] (recursively: the waker may itself have slept
  inside it) when the wakeup is a dependency: a wakeup from process context (not from an interrupt,
  whose ``common_pid`` is just the interrupted task) by another task (not idle) that came through an
  IPC resource (the wakeup's ``via`` is a rid), or a child process's exit waking its parent (the
  waker had traced its ``sched_process_exit`` and its process's parent is the sleeper's process:
  ``wait4``/``waitid`` on it; without this a shell running a pipeline would only ever wait), or
  another thread of the sleeper's process waking it (a futex: a lock, a condition, a join). Of
  several wakeups of one sleep, the last before the task ran is the edge (the episode's
  ``woken_by``). The sleeper's (waiter, rid) gets the replaced time in ``waits``;
- any other sleep stays with the sleeper as ``blocked``, with its reason (the syscall it slept in:
  ``read``, ``nanosleep``, ...; ``""`` outside traced syscalls) and its rid when known. Its wakeup,
  if any, still ends it: [w, e] is ``runnable``;
- a task born during the window (fork/clone) owns no time before its birth: the walk goes on with
  the task that created it, at that time (the fork edge);
- a task asleep since before the capture (its first traced event is after the current time) is
  handled like a sleep from the capture's start to its first run, ended by the last wakeup of it
  before that run.

The segments are contiguous, do not overlap, and add up to the window: ``wall_ns = end_ts -
start_ts``. The Python loop runs once per path segment (searchsorted on per-task arrays), never per
event.

**Data**, collected during the build by ``Collector`` (fed by ``SchedModel``), as compact numpy
arrays (int64 times, int32 ids), never Python objects per row: the sleeps (the episodes: tid,
start, end, the ending wakeup's time, waker, interrupt flag and via handle, the syscall and
resource handle), the preempted intervals (tid, start, end), and per task its birth (time,
creator), exec, exit, first run and, for a task first seen asleep, its wakeups before it first ran.
The traced syscalls (tid, enter, exit) go to a temporary file instead (two events each: too many to
keep), read back at the end for the tasks on the path: their running time there splits into inside
traced syscalls (``running_sys_ns``) and outside (user space, untraced syscalls, interrupts).
``PathInputs.from_tables`` builds the same inputs from episode and wakeup tables
(``ipc.EPISODE_COLUMNS``, ``ipc.WAKEUP_COLUMNS``): hand-made tests, or ``--episodes`` exports.

Approximations: a sleep ended without a traced switch-in ends at the task's next own event (see
ftraceipc.model.sched: an upper bound), so its ``runnable`` part is too long by as much; a child's
time between its birth and its first switch-in counts as ``running``; a reused tid (pid wrap-around
inside one capture) is taken as one task.
"""

from __future__ import annotations

import os
import tempfile
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from ftraceipc.model.fd import WRITE_SYSCALLS

CRITICAL_COLUMNS = ["seq", "tid", "state", "reason", "rid", "start_ts", "end_ts", "dur_ns"]
CRITICAL_TASK_COLUMNS = ["tid", "crit_ns", "running_ns", "runnable_ns", "blocked_ns", "running_sys_ns"]
CRITICAL_WAIT_COLUMNS = ["waiter", "rid", "crit_ns", "waits", "room_ns"]
CRITICAL_RESOURCE_COLUMNS = ["rid", "crit_ns"]
STATES = ("running", "runnable", "blocked")
RUNNING, RUNNABLE, BLOCKED = 0, 1, 2
PREEMPTED = "preempted"
# reason codes: 0 "", 1 "preempted", 2 + op: the syscall names
R_NONE, R_PREEMPTED = 0, 1
NONE_RID = -1

I64, I32 = np.int64, np.int32
SLEEP_COLS = {"tid": I32, "b": I64, "e": I64, "w": I64, "waker": I32, "irq": np.bool_, "op": I32, "h": I32,
              "via_h": I32, "room": np.bool_}  # 46 bytes a sleep (handles are indices into the fd model's list)
PREEMPT_COLS = {"tid": I32, "b": I64, "e": I64}
SYSCALL_COLS = {"tid": I32, "a": I64, "z": I64}  # a traced syscall (enter, exit): 20 bytes, spilled to a file


def _record_type(cols: dict[str, Any]) -> np.dtype:
    return np.dtype([(c, d) for c, d in cols.items()])


def _empty_frame(cols: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})


@dataclass
class CriticalPath:
    """The critical path of the traced command (see the module doc).

    ``segments`` (CRITICAL_COLUMNS): the path in time order, each the own time of ``tid``;
    ``state`` running/runnable/blocked; ``reason`` the syscall slept in (runnable after a wakeup,
    blocked), ``"preempted"`` (runnable after a preemption) or ``""``; ``rid`` the resource slept
    on (None when not known or not a sleep). ``tasks`` (CRITICAL_TASK_COLUMNS): each task's own
    time on the path. ``waits`` (CRITICAL_WAIT_COLUMNS): per (sleeper, rid; None for a wait on a
    child's exit) the time of the path inside that sleeper's sleeps replaced by their wakers' paths
    (nested waits count at each level), how many such sleeps, and ``room_ns``: the part inside sleeps
    waiting for room to write (a write/send, or a poll that a read ended: BLOCKED_ON's write_* rule;
    the rest waited for data or something else). ``resources``
    (CRITICAL_RESOURCE_COLUMNS): per rid, the time of the path inside sleeps on it (the sleepers'
    own segments on it and the wakers' time that replaced those sleeps), counted once (<= wall_ns).
    ``stats``: counts of the walk."""

    root: int
    start_ts: int
    end_ts: int
    segments: pd.DataFrame = field(default_factory=lambda: _empty_frame(CRITICAL_COLUMNS))
    tasks: pd.DataFrame = field(default_factory=lambda: _empty_frame(CRITICAL_TASK_COLUMNS))
    waits: pd.DataFrame = field(default_factory=lambda: _empty_frame(CRITICAL_WAIT_COLUMNS))
    resources: pd.DataFrame = field(default_factory=lambda: _empty_frame(CRITICAL_RESOURCE_COLUMNS))
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def wall_ns(self) -> int:
        return int(self.end_ts - self.start_ts)

    def to_json(self) -> dict[str, Any]:
        """Scalars and tables as plain Python (rows as dicts), for the JSON export."""
        def recs(df: pd.DataFrame) -> list[dict[str, Any]]:
            cols = list(df.columns)
            return [dict(zip(cols, (_plain(v) for v in row))) for row in df.itertuples(index=False, name=None)]

        return {"root": int(self.root), "start_ts": int(self.start_ts), "end_ts": int(self.end_ts),
                "wall_ns": self.wall_ns, "segments": recs(self.segments), "tasks": recs(self.tasks),
                "waits": recs(self.waits), "resources": recs(self.resources), "stats": {k: _plain(v) for k, v in self.stats.items()}}


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if v is pd.NA or (isinstance(v, float) and v != v):
        return None
    return v


# --- collecting (during the build) ----------------------------------------------------------------
class _Spill:
    """Fixed-size records appended batch by batch to an anonymous temporary file (unlinked at
    creation: nothing is left behind), read back chunk by chunk: memory stays bounded however many
    rows there are (the traced syscalls: two events each; live mode's sleeps and preemptions older
    than its window). Written and read at explicit offsets (``pwrite``/``pread``): a forked copy of
    the process (live mode's) shares the file's offset with the original, and reads only the rows
    there were when it was forked while the original goes on appending. ``key``: the time field
    by which ``records(since=...)`` skips the chunks wholly before a time."""

    READ_ROWS = 1 << 20

    def __init__(self, dtype: np.dtype | None = None, key: str = "z", prefix: str = "ftraceipc-syscalls-"):
        self.dtype = np.dtype(dtype if dtype is not None else [("tid", "<i4"), ("a", "<i8"), ("z", "<i8")])
        self.key = key
        self.prefix = prefix
        self._f = None
        self.rows = 0
        self._chunk_rows: list[int] = []  # the first row of each appended chunk
        self._chunk_max: list[int] = []  # the chunk's largest key

    def add(self, tid, a, z) -> None:
        n = len(tid)
        if not n:
            return
        rec = np.empty(n, self.dtype)
        rec["tid"], rec["a"], rec["z"] = tid, a, z
        self.append(rec)

    def append(self, rec: np.ndarray) -> None:
        """Records of ``dtype``, after those before."""
        if not len(rec):
            return
        if self._f is None:
            self._f = tempfile.TemporaryFile(prefix=self.prefix, buffering=0)
        fd, off = self._f.fileno(), self.rows * self.dtype.itemsize
        view = memoryview(np.ascontiguousarray(rec, self.dtype).view(np.uint8))
        while view:
            n = os.pwrite(fd, view, off)
            view, off = view[n:], off + n
        self._chunk_rows.append(self.rows)
        self._chunk_max.append(int(rec[self.key].max()))
        self.rows += len(rec)

    def records(self, since: int | None = None) -> Iterator[np.ndarray]:
        """The records in file order, up to READ_ROWS at a time; with ``since``, from the first
        appended chunk holding a key at or after it (every record before has an earlier key)."""
        if self._f is None or not self.rows:
            return
        row = 0
        if since is not None and self._chunk_max:
            seen = np.maximum.accumulate(np.asarray(self._chunk_max, np.int64))
            i = int(np.searchsorted(seen, since, "left"))
            if i >= len(self._chunk_rows):
                return
            row = self._chunk_rows[i]
        fd, size, end = self._f.fileno(), self.dtype.itemsize, self.rows
        while row < end:
            n = min(self.READ_ROWS, end - row)
            data = os.pread(fd, n * size, row * size)
            got = len(data) // size
            if not got:
                return
            yield np.frombuffer(data[:got * size], self.dtype)
            row += got

    def select(self, tids, since: int | None = None) -> Iterator[dict[str, np.ndarray]]:
        """The rows of these tids, chunk by chunk (file order), as columns tid, a, z (``since``: as
        ``records``)."""
        want = np.unique(np.asarray(list(tids), np.int64)).astype(np.int32)
        if not len(want):
            return
        for rec in self.records(since):
            rec = rec[np.isin(rec["tid"], want)]
            yield {"tid": rec["tid"].astype(np.int64), "a": rec["a"], "z": rec["z"]}

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class _Since:
    """A spill file's ``select`` limited to records from a time on (a windowed walk's syscalls)."""

    def __init__(self, spill: _Spill, since: int):
        self.spill, self.since = spill, since

    def select(self, tids) -> Iterator[dict[str, np.ndarray]]:
        return self.spill.select(tids, since=self.since)


class _Chunks:
    """Column chunks appended batch by batch; every ``fold`` small chunks become one (so the list
    stays short without copying what was folded before)."""

    def __init__(self, cols: dict[str, Any], fold: int = 64):
        self.cols = cols
        self.parts: dict[str, list[np.ndarray]] = {c: [] for c in cols}
        self.fold = fold
        self._small = 0

    def add(self, **arrays: np.ndarray) -> None:
        n = len(next(iter(arrays.values())))
        if not n:
            return
        for c, d in self.cols.items():
            self.parts[c].append(np.asarray(arrays[c]).astype(d, copy=True))
        self._small += 1
        if self._small >= self.fold:
            for c in self.cols:
                p = self.parts[c]
                p[-self._small:] = [np.concatenate(p[-self._small:])]
            self._small = 0

    def arrays(self) -> dict[str, np.ndarray]:
        """Every column whole (kept as the only chunk: no second copy stays alive)."""
        out = {}
        for c, p in self.parts.items():
            out[c] = np.concatenate(p) if len(p) > 1 else (p[0] if p else np.zeros(0, self.cols[c]))
            self.parts[c] = [out[c]] if len(out[c]) else []
        self._small = 0
        return out

    def clear(self) -> None:
        self.parts = {c: [] for c in self.cols}
        self._small = 0

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts["tid"])


class Collector:
    """What the walk needs, kept during the build (see the module doc). ``SchedModel`` calls the
    methods; state is per task except the sleep and preemption arrays (compact, one row each)."""

    def __init__(self):
        self.sleeps = _Chunks(SLEEP_COLS)
        self.preempts = _Chunks(PREEMPT_COLS)
        self.syscalls = _Spill()
        # live mode: the sleeps and preemptions ended before its window, out of memory (``retire``)
        self.old_sleeps = _Spill(_record_type(SLEEP_COLS), key="e", prefix="ftraceipc-sleeps-")
        self.old_preempts = _Spill(_record_type(PREEMPT_COLS), key="e", prefix="ftraceipc-preempts-")
        self.born: dict[int, tuple[int, int]] = {}  # tid -> (ts, creator tid)
        self.exec_ts: dict[int, int] = {}  # pid -> its first exec
        self.exit_ts: dict[int, int] = {}  # tid -> its (last) sched_process_exit
        self.first_own: dict[int, int] = {}  # tid -> its first own event or switch-out
        self.first_in: dict[int, int] = {}  # tid -> its first switch-in
        self.pre_wake: dict[int, list[tuple[int, int, bool, int]]] = {}  # tid -> [(ts, waker, irq, via_h)]
        self._fr_tids = np.zeros(0, np.int64)
        self._fr_ts = np.zeros(0, np.int64)
        self.first_ts: int | None = None
        self.last_ts = 0

    # per batch, vectorized
    def add_sleeps(self, tid, b, e, w, waker, irq, op, h, via_h, room=None) -> None:
        """``room``: the sleeps that waited for room to write (BLOCKED_ON's write_* rule)."""
        if room is None:
            room = np.zeros(len(tid), bool)
        self.sleeps.add(tid=tid, b=b, e=e, w=w, waker=waker, irq=irq, op=op, h=h, via_h=via_h, room=room)

    def add_preempts(self, tid, b, e) -> None:
        self.preempts.add(tid=tid, b=b, e=e)

    def add_syscalls(self, tid, a, z) -> None:
        """Completed traced syscalls [a, z] (enter, exit; paired ones only): the path's running
        time splits into inside them (``running_sys_ns``) and outside (user space, untraced
        syscalls, interrupts)."""
        self.syscalls.add(tid, a, z)

    def seen_running(self, tids: np.ndarray, ts: np.ndarray, switched_in: np.ndarray) -> None:
        """Tasks seen running at these times (unsorted): own events and switch-outs
        (``switched_in`` False: it was running before), switch-ins (True: it was not). Only each
        task's first time of each kind is kept."""
        if not len(tids):
            return
        if len(self._fr_tids):
            j = np.searchsorted(self._fr_tids, tids)
            known = (j < len(self._fr_tids)) & (self._fr_tids[np.minimum(j, len(self._fr_tids) - 1)] == tids)
            if known.all():
                return
            tids, ts, switched_in = tids[~known], ts[~known], switched_in[~known]
        for kind, d in ((False, self.first_own), (True, self.first_in)):
            m = switched_in == kind
            t_, s_ = tids[m], ts[m]
            o = np.lexsort((s_, t_))
            t_, s_ = t_[o], s_[o]
            first = np.r_[True, t_[1:] != t_[:-1]] if len(t_) else np.zeros(0, bool)
            for t, s in zip(t_[first].tolist(), s_[first].tolist()):
                if t > 0 and (t not in d or s < d[t]):
                    d[t] = s
        fr = dict(self.first_in)
        for t, s in self.first_own.items():
            if t not in fr or s < fr[t]:
                fr[t] = s
        keys = np.fromiter(fr.keys(), np.int64, len(fr))
        vals = np.fromiter(fr.values(), np.int64, len(fr))
        o = np.argsort(keys)
        self._fr_tids, self._fr_ts = keys[o], vals[o]

    def first_runs(self) -> dict[int, int]:
        """tid -> the time it first ran, for the tasks known to be asleep before that: switched in
        before any own event, or woken before its first own event (a switch-in is not always
        traced). Tasks seen running first (own events, a switch-out) ran since before the capture."""
        out = {}
        for t in set(self.first_in) | set(self.pre_wake):
            fo, fi = self.first_own.get(t), self.first_in.get(t)
            if fi is not None and (fo is None or fi <= fo):
                out[t] = fi
            elif fo is not None and any(rec[0] <= fo for rec in self.pre_wake.get(t, ())):
                out[t] = fo
        return out

    def wakeups(self, ts, waker, wakee, irq, via_h) -> None:
        """Finished wakeups: those before their wakee's first run (or of a wakee not seen running
        yet) are kept per task (the wakeup that ended a sleep begun before the capture)."""
        if not len(ts):
            return
        if len(self._fr_tids):
            j = np.searchsorted(self._fr_tids, wakee)
            jc = np.minimum(j, len(self._fr_tids) - 1)
            known = (j < len(self._fr_tids)) & (self._fr_tids[jc] == wakee)
            keep = ~known | (ts <= np.where(known, self._fr_ts[jc], 0))
        else:
            keep = np.ones(len(ts), bool)
        if not keep.any():
            return
        for t, wt, wr, q, v in zip(ts[keep].tolist(), wakee[keep].tolist(), waker[keep].tolist(),
                                   irq[keep].tolist(), via_h[keep].tolist()):
            lst = self.pre_wake.setdefault(wt, [])
            if len(lst) < 1024:
                lst.append((t, wr, bool(q), v))

    # rare events, one by one
    def birth(self, child: int, ts: int, creator: int) -> None:
        old = self.born.get(child)
        if old is None or ts < old[0]:
            self.born[child] = (ts, creator)

    def exec(self, pid: int, ts: int) -> None:
        if pid not in self.exec_ts:
            self.exec_ts[pid] = ts

    def exit(self, tid: int, ts: int) -> None:
        self.exit_ts[tid] = ts

    def span(self, first_ts: int, last_ts: int) -> None:
        if self.first_ts is None or first_ts < self.first_ts:
            self.first_ts = first_ts
        self.last_ts = max(self.last_ts, last_ts)

    def retire(self, before: int) -> int:
        """Live mode: the sleeps and preemptions that ended before ``before`` go to temporary files
        (what the follower holds stays bounded by its window); a walk of a window from ``before``
        on (``inputs(since=...)``) never needs them, the whole run's walk reads them back. The
        number of rows moved."""
        moved = 0
        for chunks, spill in ((self.sleeps, self.old_sleeps), (self.preempts, self.old_preempts)):
            if not len(chunks):
                continue
            arr = chunks.arrays()
            old = arr["e"] < before
            n = int(old.sum())
            if not n:
                continue
            rec = np.empty(n, spill.dtype)
            for c in chunks.cols:
                rec[c] = arr[c][old]
            spill.append(rec)
            chunks.clear()
            chunks.add(**{c: arr[c][~old] for c in chunks.cols})
            moved += n
        return moved

    def _whole(self, chunks: "_Chunks", spill: _Spill, since: int | None) -> dict[str, np.ndarray]:
        """A table's rows: those in memory, with (``since`` None) those retired to its file."""
        s = chunks.arrays()
        chunks.clear()  # only ``s`` holds them now
        if since is not None or not spill.rows:
            return s
        old = list(spill.records())
        spill.close()
        return {c: np.concatenate([np.asarray(r[c], d) for r in old] + [s[c]]) for c, d in chunks.cols.items()}

    def inputs(self, rid_of: dict[int, str | None], names: list[str], tasks: pd.DataFrame | None,
               since: int | None = None) -> "PathInputs":
        """The walk's inputs, handles mapped to rids (``rid_of``: handle -> rid or None), syscall
        codes to ``names``; ``tasks`` (ipc.TASK_COLUMNS) gives pid and ppid for the exit edges.
        ``since``: for a walk from that time on only (live mode's window: the retired rows are
        left out)."""
        s = self._whole(self.sleeps, self.old_sleeps, since)
        first_run = self.first_runs()
        pre: dict[int, tuple[int, int, bool, int]] = {}
        for t, lst in self.pre_wake.items():
            fr = first_run.get(t)
            best = None
            for rec in lst:
                if (fr is None or rec[0] <= fr) and (best is None or rec[0] >= best[0]):
                    best = rec
            if best is not None and fr is not None:
                pre[t] = best
        return PathInputs.build(
            tid=s["tid"], b=s["b"], e=s["e"], w=s["w"], waker=s["waker"], irq=s["irq"],
            reason=_reason_codes(s["op"]), reason_names=names, h=s["h"], via_h=s["via_h"], rid_of=rid_of,
            room=s["room"], preempts=self._whole(self.preempts, self.old_preempts, since),
            syscalls=self.syscalls if since is None else _Since(self.syscalls, since), born=self.born,
            exits=self.exit_ts, first_run=first_run,
            pre_wake=pre, tasks=tasks)



def _reason_codes(op: np.ndarray) -> np.ndarray:
    return np.where(op >= 0, op.astype(np.int64) + 2, R_NONE).astype(np.int32)


# --- inputs -----------------------------------------------------------------------------------------
@dataclass
class PathInputs:
    """Sleeps sorted by (tid, start), with for each: the end, the ending wakeup's time (-1: none),
    its waker, whether it is a dependency (``edge``), the reason code and rid code of the sleep, the
    rid code of the wait (``wrid``: the sleep's rid, else the wakeup's via); preempted intervals
    sorted by (tid, start); where the traced syscalls are (``syscalls.select(tids)``); per task: birth,
    first run, the wakeup that ended its pre-capture sleep."""

    s_tid: np.ndarray
    s_b: np.ndarray
    s_e: np.ndarray
    s_w: np.ndarray
    s_waker: np.ndarray
    s_edge: np.ndarray
    s_exit_edge: np.ndarray
    s_reason: np.ndarray
    s_rid: np.ndarray
    s_wrid: np.ndarray
    s_room: np.ndarray
    p_tid: np.ndarray
    p_b: np.ndarray
    p_e: np.ndarray
    syscalls: Any  # an object whose select(tids) gives the traced syscalls of those tasks (tid, a, z)
    reasons: list[str]
    rids: list[str]
    born: dict[int, tuple[int, int]]
    first_run: dict[int, int]
    pre: dict[int, tuple[int, int, bool, int]]  # tid -> (w, waker, edge, rid code)
    exits: dict[int, int]

    @classmethod
    def build(cls, *, tid, b, e, w, waker, irq, reason, reason_names, h, via_h, rid_of, room=None, preempts=None,
              syscalls=None, born=None, exits=None, first_run=None, pre_wake=None, tasks=None) -> "PathInputs":
        """From raw columns (one row per sleep; handles mapped through ``rid_of``, reason codes
        0 "", 1 "preempted", 2 + i ``reason_names[i]``; ``room``: the sleeps waiting for room to
        write, default none). ``pre_wake``: tid -> (ts, waker, irq, via handle). ``syscalls``:
        the traced syscalls, arrays tid, a (enter), z (exit), or what keeps them (``select(tids)``
        gives those arrays for some tasks: the collector's spill file); default none."""
        tid = np.asarray(tid, np.int64)
        o = np.lexsort((np.asarray(b, np.int64), tid))
        tid = tid[o]
        b, e, w = (np.asarray(x, np.int64)[o] for x in (b, e, w))
        waker = np.asarray(waker, np.int64)[o]
        irq = np.asarray(irq, bool)[o]
        reason = np.asarray(reason, np.int32)[o]
        room = (np.zeros(len(tid), bool) if room is None else np.asarray(room, bool)[o])
        h, via_h = np.asarray(h, np.int64)[o], np.asarray(via_h, np.int64)[o]
        rid_of = rid_of or {}
        # rid codes: one list of rid strings; -1 for None
        hs = np.unique(np.concatenate([h[h >= 0], via_h[via_h >= 0],
                                       np.array([p[3] for p in (pre_wake or {}).values() if p[3] >= 0], np.int64)]))
        rids: list[str] = []
        code_of_rid: dict[str, int] = {}
        hcode = np.full(len(hs), NONE_RID, np.int64)
        for i, hh in enumerate(hs.tolist()):
            r = rid_of.get(hh)
            if r is not None:
                hcode[i] = code_of_rid.setdefault(r, len(rids))
                if hcode[i] == len(rids):
                    rids.append(r)

        def codes(x: np.ndarray) -> np.ndarray:
            out = np.full(len(x), NONE_RID, np.int64)
            m = x >= 0
            if m.any() and len(hs):
                out[m] = hcode[np.searchsorted(hs, x[m])]
            return out

        s_rid, v_rid = codes(h), codes(via_h)
        exits = dict(exits or {})
        pid_of, ppid_of = _parents(tasks)
        exit_edge = _exit_edges(tid, w, waker, irq, exits, pid_of, ppid_of)
        base = (w >= 0) & ~irq & (waker > 0) & (waker != tid)
        edge = base & ((v_rid >= 0) | exit_edge | _sibling_edges(tid, waker, pid_of))
        pre: dict[int, tuple[int, int, bool, int]] = {}
        for t, (wt, wr, q, vh) in (pre_wake or {}).items():
            vc = int(codes(np.array([vh], np.int64))[0])
            ex = bool(_exit_edges(np.array([t]), np.array([wt]), np.array([wr]), np.array([q]), exits, pid_of,
                                  ppid_of)[0] or _sibling_edges(np.array([t]), np.array([wr]), pid_of)[0])
            pre[int(t)] = (int(wt), int(wr), bool(not q and wr > 0 and wr != t and (vc >= 0 or ex)), vc)
        if preempts is None:
            preempts = {c: np.zeros(0, d) for c, d in PREEMPT_COLS.items()}
        pt = np.asarray(preempts["tid"], np.int64)
        po = np.lexsort((np.asarray(preempts["b"], np.int64), pt))
        if syscalls is None or isinstance(syscalls, dict):
            syscalls = _Given(syscalls)
        return cls(s_tid=tid, s_b=b, s_e=e, s_w=w, s_waker=waker, s_edge=edge, s_exit_edge=exit_edge & edge,
                   s_reason=reason, s_rid=s_rid, s_wrid=np.where(s_rid >= 0, s_rid, v_rid), s_room=room,
                   p_tid=pt[po], p_b=np.asarray(preempts["b"], np.int64)[po], p_e=np.asarray(preempts["e"], np.int64)[po],
                   syscalls=syscalls,
                   reasons=["", PREEMPTED] + list(reason_names), rids=rids, born=dict(born or {}),
                   first_run=dict(first_run or {}), pre=pre, exits=exits)

    @classmethod
    def from_tables(cls, episodes: pd.DataFrame, wakeups: pd.DataFrame | None = None, *,
                    tasks: pd.DataFrame | None = None, preempted: pd.DataFrame | None = None,
                    born: dict[int, tuple[int, int]] | None = None, exits: dict[int, int] | None = None,
                    first_run: dict[int, int] | None = None, syscalls: pd.DataFrame | None = None) -> "PathInputs":
        """Inputs from episode rows (ipc.EPISODE_COLUMNS: tid, rid, op, start_ts, dur_ns, woken_by)
        and wakeup rows (ipc.WAKEUP_COLUMNS: ts, waker, wakee, via, wake_to_run_ns; an optional
        bool ``irq`` column marks wakeups from interrupts: never an edge; a via None is never an IPC
        edge anyway). The wakeup that ended an episode is the last one of its
        ``woken_by`` whose wakee ran at the episode's end (ts + wake_to_run_ns = start_ts + dur_ns).
        ``preempted``: rows (tid, start_ts, end_ts); ``born``: tid -> (ts, creator); ``exits``:
        tid -> exit ts; ``first_run``: tid -> the time a task asleep since before the capture first ran (a
        task without one, and not born in the tables, ran since before the window); ``syscalls``:
        rows (tid, enter_ts, exit_ts) of traced syscalls."""
        ep = episodes.reset_index(drop=True)
        n = len(ep)
        tid = ep["tid"].to_numpy(np.int64) if n else np.zeros(0, np.int64)
        b = ep["start_ts"].to_numpy(np.int64) if n else np.zeros(0, np.int64)
        e = b + (ep["dur_ns"].to_numpy(np.int64) if n else 0)
        woken_by = ep["woken_by"].to_numpy(np.int64) if n else np.zeros(0, np.int64)
        w = np.full(n, -1, np.int64)
        irq = np.zeros(n, bool)
        vrid: list[Any] = [None] * n
        if wakeups is not None and len(wakeups) and n:
            wu = wakeups.reset_index(drop=True)
            w2r = wu["wake_to_run_ns"].to_numpy(np.int64)
            ok = w2r >= 0
            wk = pd.DataFrame({"tid": wu["wakee"].to_numpy(np.int64)[ok], "woken_by": wu["waker"].to_numpy(np.int64)[ok],
                               "e": (wu["ts"].to_numpy(np.int64) + w2r)[ok], "w": wu["ts"].to_numpy(np.int64)[ok],
                               "via": wu["via"].to_numpy(object)[ok],
                               "irq": (wu["irq"].astype(object).eq(True).to_numpy(bool)[ok] if "irq" in wu.columns else
                                       np.zeros(int(ok.sum()), bool))})
            wk = wk.sort_values("w", kind="stable").drop_duplicates(["tid", "woken_by", "e"], keep="last")
            m = pd.DataFrame({"tid": tid, "woken_by": woken_by, "e": e, "i": np.arange(n)}).merge(
                wk, on=["tid", "woken_by", "e"], how="left")
            hit = m["w"].notna().to_numpy()
            idx = m["i"].to_numpy()[hit]
            w[idx] = m["w"].to_numpy()[hit].astype(np.int64)
            irq[idx] = m["irq"].to_numpy()[hit].astype(bool)
            for i, v in zip(idx.tolist(), m["via"].to_numpy(object)[hit].tolist()):
                vrid[i] = _str_or_none(v)
        # rids through fake handles: one per distinct rid string
        ep_rid = [_str_or_none(r) for r in (ep["rid"].tolist() if n else [])]
        rid_list = sorted({r for r in ep_rid if r is not None} | {r for r in vrid if r is not None})
        hnum = {r: i for i, r in enumerate(rid_list)}
        h = np.array([hnum[r] if r is not None else -1 for r in ep_rid], np.int64)
        via_h = np.array([hnum[r] if r is not None else -1 for r in vrid], np.int64)
        ops = [_str_or_none(o) for o in ep["op"].tolist()] if n else []
        names = sorted({o for o in ops if o is not None})
        code = {o: i for i, o in enumerate(names)}
        reason = np.array([code[o] + 2 if o is not None else R_NONE for o in ops], np.int32)
        pre = None
        if preempted is not None and len(preempted):
            pre = {"tid": preempted["tid"].to_numpy(np.int64), "b": preempted["start_ts"].to_numpy(np.int64),
                   "e": preempted["end_ts"].to_numpy(np.int64)}
        room = np.array([o in WRITE_SYSCALLS for o in ops], bool)  # (a poll's: not known from these rows)
        sc = None
        if syscalls is not None and len(syscalls):
            sc = {"tid": syscalls["tid"].to_numpy(np.int64), "a": syscalls["enter_ts"].to_numpy(np.int64),
                  "z": syscalls["exit_ts"].to_numpy(np.int64)}
        return cls.build(tid=tid, b=b, e=e, w=w, waker=woken_by, irq=irq, reason=reason, reason_names=names, h=h,
                         via_h=via_h, rid_of=dict(enumerate(rid_list)), room=room, preempts=pre, syscalls=sc, born=born,
                         exits=exits, first_run=first_run, tasks=tasks)


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _parents(tasks: pd.DataFrame | None) -> tuple[dict[int, int], dict[int, int]]:
    if tasks is None or not len(tasks):
        return {}, {}
    tids = tasks["tid"].tolist()
    pids = [-1 if p is None or p != p else int(p) for p in tasks["pid"].tolist()]
    ppids = [-1 if p is None or p != p else int(p) for p in tasks["ppid"].tolist()]
    return dict(zip(tids, pids)), dict(zip(tids, ppids))


def _sibling_edges(tid, waker, pid_of) -> np.ndarray:
    """Wakeups of a thread by another thread of its process (a futex: a lock released, a condition
    signalled, a join: ``pthread_join``'s wake when the thread exits, Python's ``Thread.join``
    released by the thread just before it exits). Whether the wakeup came from process context is the
    caller's test, as for every edge."""
    tid, waker = np.asarray(tid, np.int64), np.asarray(waker, np.int64)
    if not pid_of or not len(tid):
        return np.zeros(len(tid), bool)
    keys = np.fromiter(pid_of.keys(), np.int64, len(pid_of))
    vals = np.fromiter(pid_of.values(), np.int64, len(pid_of))
    o = np.argsort(keys)
    keys, vals = keys[o], vals[o]

    def proc(x: np.ndarray, default: np.ndarray) -> np.ndarray:
        j = np.minimum(np.searchsorted(keys, x), len(keys) - 1)
        return np.where(keys[j] == x, vals[j], default)

    return (waker > 0) & (waker != tid) & (proc(waker, np.full(len(waker), -1)) == proc(tid, tid))


def _exit_edges(tid, w, waker, irq, exits, pid_of, ppid_of) -> np.ndarray:
    """Wakeups (process context) of a parent by its exiting child: the waker's exit traced at or
    before the wakeup, and the waker's process's parent is the sleeper's process."""
    out = np.zeros(len(tid), bool)
    if not exits or not len(tid):
        return out
    cand = np.flatnonzero((w >= 0) & ~np.asarray(irq, bool) & (waker > 0))
    if not len(cand):
        return out
    ex_t = np.fromiter(exits.keys(), np.int64, len(exits))
    ex_s = np.fromiter(exits.values(), np.int64, len(exits))
    o = np.argsort(ex_t)
    ex_t, ex_s = ex_t[o], ex_s[o]
    wk = waker[cand]
    j = np.searchsorted(ex_t, wk)
    jc = np.minimum(j, len(ex_t) - 1)
    exited = (j < len(ex_t)) & (ex_t[jc] == wk) & (ex_s[jc] <= w[cand])
    for i in cand[exited].tolist():
        wr, t = int(waker[i]), int(tid[i])
        pp = ppid_of.get(wr, -1)
        if pp > 0 and pp == pid_of.get(t, t):
            out[i] = True
    return out


# --- the window ----------------------------------------------------------------------------------
def root_of(meta: dict[str, Any] | None) -> int | None:
    """The root task: the traced command, else the first ``--pid`` target; None when neither."""
    meta = meta or {}
    if meta.get("command_pid") is not None:
        return int(meta["command_pid"])
    targets = meta.get("target_pids") or []
    return int(targets[0]) if targets else None


def window(col: Collector, root: int) -> tuple[int, int] | None:
    """(start, end) of the root's window (see the module doc); None when the root was never seen."""
    seen = any(root in d for d in (col.first_own, col.first_in, col.exec_ts, col.born, col.exit_ts))
    if not seen or col.first_ts is None:
        return None
    start = col.exec_ts.get(root)
    if start is None:
        start = col.born[root][0] if root in col.born else col.first_ts
    end = col.exit_ts.get(root, col.last_ts)
    if end < start:
        end = start
    return int(start), int(end)


def compute(col: Collector, meta: dict[str, Any] | None, *, rid_of: dict[int, str | None], names: list[str],
            tasks: pd.DataFrame | None, have_switches: bool = True, since: int | None = None) -> CriticalPath | None:
    """The critical path of a build (None: no root, root never seen, or no sched_switch events).
    ``since``: the path from that time on only (live mode's window; the rows ``Collector.retire``
    moved out before it are not read)."""
    try:
        root = root_of(meta)
        if root is None or not have_switches:
            return None
        win = window(col, root)
        if win is None:
            return None
        start, end = win
        if since is not None and since > start:
            start = min(int(since), end)
        return walk(col.inputs(rid_of, names, tasks, since=since), root, start, end)
    finally:
        col.syscalls.close()
        col.old_sleeps.close()
        col.old_preempts.close()


# --- the walk --------------------------------------------------------------------------------------
def _ranges(tids: np.ndarray) -> dict[int, tuple[int, int]]:
    if not len(tids):
        return {}
    u, first = np.unique(tids, return_index=True)
    last = np.r_[first[1:], len(tids)]
    return dict(zip(u.tolist(), zip(first.tolist(), last.tolist())))


def _items(a: np.ndarray):
    """``a`` read element by element as Python values (a memoryview: no copy)."""
    a = np.ascontiguousarray(a)
    if a.dtype.kind == "b":
        return memoryview(a.view(np.uint8))
    if a.dtype != np.int64 and a.dtype.kind in "iu":
        a = a.astype(np.int64)
    return memoryview(a)


def walk(inp: PathInputs, root: int, start: int, end: int) -> CriticalPath:
    """The path of ``root`` over [start, end] (see the module doc)."""
    root, start, end = int(root), int(start), int(end)
    srange, prange = _ranges(inp.s_tid), _ranges(inp.p_tid)
    # read one element at a time: memoryviews give Python ints (no numpy scalar per read) and
    # bisect searches them in C without a copy (the walk runs in half the time)
    S_b, S_e, S_w, S_waker, S_edge, S_exit, S_reason, S_rid, S_wrid, S_room, P_b, P_e = (
        _items(x) for x in (inp.s_b, inp.s_e, inp.s_w, inp.s_waker, inp.s_edge, inp.s_exit_edge, inp.s_reason,
                            inp.s_rid, inp.s_wrid, inp.s_room, inp.p_b, inp.p_e))
    born, first_run, pre = inp.born, inp.first_run, inp.pre
    # the segments, latest first, in one flat list: (tid, state, reason, rid, a, z) of each in turn
    # (a tuple per segment would cost 64 more bytes a segment: the end's peak memory is the whole
    # run's path; one extend instead of six appends: the walk runs in about 2/3 of the time)
    out: list[int] = []
    waits: dict[tuple[int, int], list[int]] = {}
    st = {"edges": 0, "exit_edges": 0, "fork_edges": 0, "pre_capture_edges": 0, "blocked_sleeps": 0,
          "cut_cycles": 0}
    running, runnable, blocked, preempted, r_none, none_rid = RUNNING, RUNNABLE, BLOCKED, R_PREEMPTED, R_NONE, NONE_RID
    put = out.extend  # a segment [a, z] is put only when z > a

    def awake(tid: int, a: int, z: int) -> None:
        """[a, z] of a task between sleeps: running, except its preempted intervals (runnable)."""
        r = prange.get(tid)
        cur = z
        if r is not None:
            p0, p1 = r
            j = bisect_left(P_b, z, p0, p1) - 1
            while j >= p0:
                q = P_e[j]
                if q <= a:
                    break
                p = P_b[j]
                if p < a:
                    p = a
                if q > cur:
                    q = cur
                if cur > q:
                    put((tid, running, r_none, none_rid, q, cur))
                if q > p:
                    put((tid, runnable, preempted, none_rid, p, q))
                if p < cur:
                    cur = p
                j -= 1
        if cur > a:
            put((tid, running, r_none, none_rid, a, cur))

    def last_sleep(tid: int, t: int) -> tuple[int, int]:
        r = srange.get(tid)
        if r is None:
            return -1, 0
        s0, s1 = r
        return bisect_left(S_b, t, s0, s1) - 1, s0

    r_rid: list[int] = []
    r_a: list[int] = []
    r_z: list[int] = []

    def add_wait(tid: int, rid: int, ns: int, room: bool) -> None:
        if rid >= 0:
            r_rid.append(rid)
            r_a.append(t - ns)
            r_z.append(t)
        acc = waits.get((tid, rid))
        if acc is None:
            waits[(tid, rid)] = [ns, 1, ns if room else 0]
        else:
            acc[0] += ns
            acc[1] += 1
            if room:
                acc[2] += ns

    T, t, lo = root, end, start
    k, k0 = last_sleep(T, t)
    stack: list[tuple[int, int, int, int]] = []
    jumped_at = -1
    jumped: set[int] = set()

    def may_jump(to: int) -> bool:
        """No zero-time cycle of jumps (only possible with equal timestamps)."""
        nonlocal jumped_at
        if jumped_at != t:
            jumped_at = t
            jumped.clear()
        if to in jumped:
            st["cut_cycles"] += 1
            return False
        jumped.add(to)
        return True

    edges = 0  # st["edges"] of the hot path, added at the end
    push, pop = stack.append, stack.pop
    while True:
        if t <= lo:
            if not stack:
                break
            T, k, k0, lo = pop()
            continue
        if k >= k0:
            ek = S_e[k]
            if ek < t:  # awake between this sleep's end and t
                a = ek if ek > lo else lo
                if T in prange:
                    awake(T, a, t)
                elif t > a:  # never preempted: running (awake's work, inline: the hot path)
                    put((T, running, r_none, none_rid, a, t))
                t = a
                continue
            b = S_b[k]
            w = S_w[k]
            reason, rid = S_reason[k], S_rid[k]
            if w > t:  # (only when t is inside the sleep) not woken yet at t: asleep
                w = -1
            if w >= 0:
                w = w if w > b else b
                wl = w if w > lo else lo
                if t > wl:
                    put((T, runnable, reason, rid, wl, t))
                t = wl
                if t <= lo:
                    continue
                if w <= b:  # woken before it switched out: runnable all along
                    k -= 1
                    continue
                waker = S_waker[k]
                if S_edge[k]:  # may_jump, last_sleep: inline (once per edge)
                    if jumped_at != t:
                        jumped_at = t
                        jumped.clear()
                    if waker in jumped:
                        st["cut_cycles"] += 1
                    else:
                        jumped.add(waker)
                        nlo = b if b > lo else lo
                        add_wait(T, S_wrid[k], w - nlo, bool(S_room[k]))
                        edges += 1
                        if S_exit[k]:
                            st["exit_edges"] += 1
                        if b > lo:
                            push((T, k - 1, k0, lo))
                        T, lo = waker, nlo
                        r = srange.get(T)
                        if r is None:
                            k, k0 = -1, 0
                        else:
                            k0 = r[0]
                            k = bisect_left(S_b, t, k0, r[1]) - 1
                        continue
            bl = b if b > lo else lo
            if t > bl:
                put((T, blocked, reason, rid, bl, t))
            st["blocked_sleeps"] += 1
            t = bl
            k -= 1
            continue
        # before the task's first sleep: its birth, or a sleep since before the capture
        bo = born.get(T)
        if bo is not None and bo[0] < t:
            a = bo[0] if bo[0] > lo else lo
            awake(T, a, t)
            t = a
            if t <= lo:
                continue
            creator = bo[1]
            if creator > 0 and creator != T and may_jump(creator):
                st["fork_edges"] += 1
                T = creator
                k, k0 = last_sleep(T, t)
                continue
            if t > lo:
                put((T, blocked, r_none, none_rid, lo, t))
            t = lo
            continue
        fr = first_run.get(T)
        if fr is None or fr <= lo:
            awake(T, lo, t)
            t = lo
            continue
        if fr < t:
            awake(T, fr, t)
            t = fr
        pw = pre.get(T)
        if pw is not None and pw[0] <= t:
            w = pw[0] if pw[0] > lo else lo
            if t > w:
                put((T, runnable, r_none, pw[3], w, t))
            t = w
            if t <= lo:
                continue
            if pw[2] and may_jump(pw[1]):
                add_wait(T, pw[3], t - lo, False)
                st["edges"] += 1
                st["pre_capture_edges"] += 1
                T = pw[1]
                k, k0 = last_sleep(T, t)
                continue
        if t > lo:
            put((T, blocked, r_none, pw[3] if pw is not None else none_rid, lo, t))
        st["blocked_sleeps"] += 1
        t = lo
    st["edges"] += edges
    return _result(inp, root, start, end, out, waits, (r_rid, r_a, r_z), st)


def _union_per_key(key: np.ndarray, a: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The length of the union of the intervals [a, z) of each key: (keys, lengths)."""
    if not len(key):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    o = np.lexsort((a, key))
    key, a, z = key[o], a[o], z[o]
    cm = pd.Series(z).groupby(key).cummax().to_numpy()
    prev = np.r_[np.iinfo(np.int64).min, cm[:-1]]
    prev[np.r_[True, key[1:] != key[:-1]]] = np.iinfo(np.int64).min
    add = np.maximum(z - np.maximum(a, prev), 0)
    u, first = np.unique(key, return_index=True)
    return u, np.add.reduceat(add, first)


class _Given:
    """Syscall arrays given whole (tests, ``from_tables``), answering ``select`` like the spill file."""

    def __init__(self, arrays: dict[str, np.ndarray] | None):
        self.arrays = arrays or {c: np.zeros(0, d) for c, d in SYSCALL_COLS.items()}

    def select(self, tids) -> Iterator[dict[str, np.ndarray]]:
        t = np.asarray(self.arrays["tid"], np.int64)
        m = np.isin(t, np.asarray(list(tids), np.int64))
        yield {"tid": t[m], "a": np.asarray(self.arrays["a"], np.int64)[m],
               "z": np.asarray(self.arrays["z"], np.int64)[m]}


def _inside(inp: PathInputs, tid: np.ndarray, a: np.ndarray, z: np.ndarray) -> dict[int, int]:
    """Per task: how much of its intervals [a, z] (its running segments on the path: in time order,
    never overlapping) is inside its traced syscalls. Streamed over the syscalls of these tasks: for
    a syscall [ca, cz], G(cz) - G(ca), where G(t) is the task's running time on the path before t
    (prefix sums, one searchsorted per task and chunk)."""
    out: dict[int, int] = {}
    if not len(tid):
        return out
    o = np.lexsort((a, tid))
    tid, a, z = tid[o], a[o], z[o]
    srange = _ranges(tid)
    prefix = {t: np.r_[0, np.cumsum(z[r0:r1] - a[r0:r1])] for t, (r0, r1) in srange.items()}

    def g(t: int, x: np.ndarray) -> np.ndarray:
        r0, r1 = srange[t]
        sa, sd = a[r0:r1], z[r0:r1] - a[r0:r1]
        k = np.searchsorted(sa, x, "right") - 1
        kc = np.maximum(k, 0)
        return np.where(k >= 0, prefix[t][kc] + np.clip(x - sa[kc], 0, sd[kc]), 0)

    for sc in inp.syscalls.select(list(srange)):
        if not len(sc["tid"]):
            continue
        co = np.argsort(sc["tid"], kind="stable")
        ct, ca, cz = sc["tid"][co], sc["a"][co], sc["z"][co]
        for t, (c0, c1) in _ranges(ct).items():
            if t in srange:
                out[t] = out.get(t, 0) + int((g(t, cz[c0:c1]) - g(t, ca[c0:c1])).sum())
    return out


def _result(inp: PathInputs, root, start, end, flat: list[int], waits, repl, st) -> CriticalPath:
    # the walk put them latest first, six values each
    segs = np.array(flat, np.int64).reshape(-1, 6)[::-1]
    del flat[:]
    n = len(segs)
    tid, state, reason, rid, a, z = (np.ascontiguousarray(segs[:, i]) for i in range(6))
    del segs
    if n > 1:  # one segment for consecutive pieces of the same (task, state, reason, rid)
        same = (tid[1:] == tid[:-1]) & (state[1:] == state[:-1]) & (reason[1:] == reason[:-1]) & \
               (rid[1:] == rid[:-1]) & (a[1:] == z[:-1])
        if same.any():
            head = np.r_[True, ~same]
            grp = np.cumsum(head) - 1
            zz = np.zeros(int(grp[-1]) + 1, np.int64)
            np.maximum.at(zz, grp, z)
            tid, state, reason, rid, a = tid[head], state[head], reason[head], rid[head], a[head]
            z = zz
    st["segments_emitted"] = n
    rid_names = np.array(list(inp.rids) + [None], dtype=object)  # code -1 -> None
    reasons = np.array(inp.reasons, dtype=object)
    seg = pd.DataFrame({
        "seq": np.arange(len(tid), dtype=np.int64), "tid": tid,
        "state": pd.Series(np.array(STATES, dtype=object)[state], dtype=object),
        "reason": pd.Series(reasons[reason], dtype=object),
        "rid": pd.Series(rid_names[rid], dtype=object), "start_ts": a, "end_ts": z, "dur_ns": z - a})
    if len(seg):
        d = seg["dur_ns"].to_numpy()
        run = state == RUNNING
        g = pd.DataFrame({"tid": tid, "crit_ns": d, "running_ns": np.where(run, d, 0),
                          "runnable_ns": np.where(state == RUNNABLE, d, 0),
                          "blocked_ns": np.where(state == BLOCKED, d, 0)}).groupby("tid", sort=True).sum()
        in_sys = _inside(inp, tid[run], a[run], z[run])
        g["running_sys_ns"] = np.array([in_sys.get(int(t), 0) for t in g.index], np.int64)
        tasks = g.reset_index()[CRITICAL_TASK_COLUMNS]
        tasks = tasks.sort_values(["crit_ns", "tid"], ascending=[False, True], kind="stable").reset_index(drop=True)
    else:
        tasks = pd.DataFrame({c: pd.Series(dtype=np.int64) for c in CRITICAL_TASK_COLUMNS})
    if waits:
        wrows = sorted(((t, r, ns, cnt, rm) for (t, r), (ns, cnt, rm) in waits.items()),
                       key=lambda x: (-x[2], x[0], x[1]))
        wt = pd.DataFrame({"waiter": np.array([x[0] for x in wrows], np.int64),
                           "rid": pd.Series(rid_names[np.array([x[1] for x in wrows], np.int64)], dtype=object),
                           "crit_ns": np.array([x[2] for x in wrows], np.int64),
                           "waits": np.array([x[3] for x in wrows], np.int64),
                           "room_ns": np.array([x[4] for x in wrows], np.int64)})
    else:
        wt = pd.DataFrame({"waiter": pd.Series(dtype=np.int64), "rid": pd.Series(dtype=object),
                           "crit_ns": pd.Series(dtype=np.int64), "waits": pd.Series(dtype=np.int64),
                           "room_ns": pd.Series(dtype=np.int64)})
    # per resource: the union of the replaced intervals and the segments on it
    on = rid >= 0
    rk, rl = _union_per_key(np.concatenate([np.array(repl[0], np.int64), rid[on]]),
                            np.concatenate([np.array(repl[1], np.int64), a[on]]),
                            np.concatenate([np.array(repl[2], np.int64), z[on]]))
    o = np.lexsort((rk, -rl))
    rt = pd.DataFrame({"rid": pd.Series(rid_names[rk[o]], dtype=object), "crit_ns": rl[o].astype(np.int64)})
    return CriticalPath(root=root, start_ts=start, end_ts=end, segments=seg, tasks=tasks, waits=wt, resources=rt,
                        stats=st)


def check(cp: CriticalPath) -> list[str]:
    """What is wrong with a path (empty when nothing): segments contiguous, not overlapping, in
    order, covering [start_ts, end_ts] exactly; per-task totals equal to the segments."""
    out = []
    s = cp.segments
    if not len(s):
        return [] if cp.wall_ns == 0 else ["no segments for a non-empty window"]
    a, z = s["start_ts"].to_numpy(np.int64), s["end_ts"].to_numpy(np.int64)
    if a[0] != cp.start_ts or z[-1] != cp.end_ts:
        out.append(f"segments span [{a[0]}, {z[-1]}], window [{cp.start_ts}, {cp.end_ts}]")
    if (z <= a).any():
        out.append("empty or negative segments")
    if len(a) > 1 and (a[1:] != z[:-1]).any():
        out.append("segments not contiguous")
    if int((z - a).sum()) != cp.wall_ns:
        out.append(f"segments add up to {int((z - a).sum())}, wall {cp.wall_ns}")
    if int(cp.tasks["crit_ns"].sum()) != cp.wall_ns:
        out.append("per-task totals do not add up to the wall time")
    return out


def tids_on_path(cp: CriticalPath | None) -> Iterable[int]:
    return [] if cp is None else cp.tasks["tid"].tolist()
