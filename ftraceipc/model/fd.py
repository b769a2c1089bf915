"""fd-table state provider: which resource each fd of each process names, at each moment.

Fed events in time order (record dicts as from ``Batch.records()``: ``ts``, ``tid``, ``event`` and
the event's own fields) plus /proc snapshot records (``CaptureDir.proc_records()``), it keeps one
fd table per thread group (threads share it), copies it on fork, marks it uncertain on exec and
follows the fd lifecycle syscalls (enter carries the args, exit the return value; paired per tid).

An fd maps to a ``Handle``: one open file description as far as we know it. ``dup*``/``F_DUPFD``
and fork share the *same* Handle object, so evidence that names it later (a snapshot) names every
copy and every earlier I/O attributed to it (``IoAttribution.handle`` is kept by reference and read
through ``IoAttribution.rid``). Nothing is guessed: an fd with no evidence has ``rid`` None and each
I/O on it is counted in ``FdModel.failures`` with the reason.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

DATA_SYSCALLS = frozenset({"read", "write", "readv", "writev", "sendto", "recvfrom", "sendmsg",
                           "recvmsg"})
WRITE_SYSCALLS = frozenset({"write", "writev", "sendto", "sendmsg"})
F_DUPFD, F_DUPFD_CLOEXEC = 0, 1030
CLOSE_RANGE_CLOEXEC = 1 << 2  # CLOSE_RANGE_CLOEXEC: mark, don't close
O_CLOEXEC = 0o2000000
CLONE_THREAD = 0x00010000

_SNAP_RE = re.compile(r"^(pipe|socket|fifo):\[(\d+)\]")


class Origin(enum.Enum):
    SNAPSHOT = "named by a /proc snapshot"
    PIPE = "created by pipe/pipe2"
    SOCKETPAIR = "created by socketpair"
    SOCKET = "created by socket"
    ACCEPT = "created by accept"
    OPEN = "created by openat"
    FIRST_USE = "first seen in use (origin not traced)"


class Reason(enum.Enum):
    UNKNOWN_FD = "fd not known to be open (no creation traced, no snapshot)"
    INODE_UNKNOWN = "resource unknown (created in trace, inode never named by a snapshot)"
    AFTER_EXEC = "uncertain after exec (close-on-exec not visible) and not confirmed"


def rid_from_snapshot(target: str) -> str | None:
    """``pipe:[N]`` → ``pipe:N``, ``socket:[N]`` → ``unix:N``, ``fifo:[N]:PATH`` → ``fifo:N``."""
    m = _SNAP_RE.match(target)
    if not m:
        return None
    kind = {"pipe": "pipe", "socket": "unix", "fifo": "fifo"}[m.group(1)]
    return f"{kind}:{m.group(2)}"


@dataclass(eq=False)
class Handle:
    """One open file description as far as the trace tells (shared by dup copies and fork)."""

    origin: Origin
    since: int  # ts of the creation (0 for snapshots at start)
    rid: str | None = None

    @property
    def known(self) -> bool:
        return self.rid is not None


@dataclass(eq=False)
class Slot:
    """An fd's entry in one table: the Handle plus per-fd flags."""

    handle: Handle
    cloexec: bool | None = None  # None: not known
    uncertain: bool = False  # the process exec'd since; the fd may have been closed-on-exec


@dataclass
class IoAttribution:
    ts: int
    tid: int
    pid: int
    fd: int
    syscall: str
    ret: int
    handle: Handle | None
    uncertain: bool = False

    @property
    def rid(self) -> str | None:
        h = self.handle
        return None if h is None or self.uncertain else h.rid

    @property
    def reason(self) -> Reason | None:
        h = self.handle
        if h is None:
            return Reason.UNKNOWN_FD
        if self.uncertain:
            return Reason.AFTER_EXEC
        if h.rid is None:
            return Reason.INODE_UNKNOWN
        return None


@dataclass
class FdTable:
    slots: dict[int, Slot] = field(default_factory=dict)

    def copy(self) -> "FdTable":
        return FdTable({fd: Slot(s.handle, s.cloexec, s.uncertain) for fd, s in self.slots.items()})


@dataclass
class _Pending:
    syscall: str
    ts: int
    args: dict[str, Any]


class FdModel:
    """The streaming state machine. Call ``snapshot`` and ``feed`` in time order, then read
    ``attributions`` (if ``keep_io``) and ``failure_summary()``."""

    def __init__(self, keep_io: bool = True, tgid_of: dict[int, int] | None = None):
        self.tables: dict[int, FdTable] = {}  # tgid -> table
        self.tgid_of: dict[int, int] = dict(tgid_of or {})  # tid -> tgid
        self.pending: dict[int, _Pending] = {}  # tid -> the syscall it is inside
        self.keep_io = keep_io
        self.attributions: list[IoAttribution] = []
        self.conflicts: list[str] = []  # snapshot said X where the trace said Y
        self.unpaired_exits = 0
        self._seen_pids: set[int] = set()  # tgids the trace or a snapshot has shown

    # --- identity ------------------------------------------------------------------------------
    def tgid(self, tid: int) -> int:
        return self.tgid_of.get(tid, tid)

    def table(self, tid: int) -> FdTable:
        pid = self.tgid(tid)
        t = self.tables.get(pid)
        if t is None:
            t = self.tables[pid] = FdTable()
        return t

    def lookup(self, tid: int, fd: int) -> Slot | None:
        t = self.tables.get(self.tgid(tid))
        return None if t is None else t.slots.get(fd)

    def rid(self, tid: int, fd: int) -> str | None:
        s = self.lookup(tid, fd)
        return None if s is None or s.uncertain else s.handle.rid

    # --- snapshots -----------------------------------------------------------------------------
    def snapshot(self, rec: dict[str, Any]) -> None:
        """Apply one proc.jsonl record. ``fds`` records: at ``start`` they seed the table; later
        (``appear``/``end``) they name unresolved Handles and confirm uncertain slots, but never
        replace what the trace says (a disagreement goes to ``conflicts``), because a snapshot's
        moment is only known in wall-clock time."""
        if rec.get("kind") != "fds":
            return
        pid = int(rec["pid"])
        self.tgid_of.setdefault(pid, pid)
        t = self.table(pid)
        seed = rec.get("when") == "start" or pid not in self._seen_pids
        for fd_s, target in rec.get("fds", {}).items():
            fd, rid = int(fd_s), rid_from_snapshot(target)
            if rid is None:
                continue
            s = t.slots.get(fd)
            if s is None:
                if seed:
                    t.slots[fd] = Slot(Handle(Origin.SNAPSHOT, 0, rid))
                continue
            h = s.handle
            if s.uncertain and h.rid != rid:
                # after exec the fd may have been closed-on-exec and reused: the snapshot names
                # what the fd is now, not the pre-exec handle (whose past I/O stays unresolved)
                t.slots[fd] = Slot(Handle(Origin.SNAPSHOT, 0, rid))
            elif h.rid is None:
                h.rid = rid
                s.uncertain = False
            elif h.rid == rid:
                s.uncertain = False
            else:
                self.conflicts.append(f"pid {pid} fd {fd}: snapshot {rid}, trace {h.rid}")
        self._seen_pids.add(pid)

    # --- events --------------------------------------------------------------------------------
    def feed(self, ev: dict[str, Any]) -> None:
        name = ev["event"]
        tid = int(ev["tid"])
        if name.startswith("sys_enter_"):
            self.pending[tid] = _Pending(name[10:], int(ev["ts"]), ev)
            self._seen_pids.add(self.tgid(tid))
        elif name.startswith("sys_exit_"):
            sc = name[9:]
            p = self.pending.pop(tid, None)
            if p is None or p.syscall != sc:
                self.unpaired_exits += 1
                return
            self._exit(tid, sc, p.args, int(ev["ret"]), int(ev["ts"]))
        elif name == "sched_process_fork":
            self._fork(int(ev["parent_pid"]), int(ev["child_pid"]), int(ev["ts"]))
        elif name == "sched_process_exec":
            self._exec(tid)
        elif name == "sched_process_exit":
            self.pending.pop(tid, None)

    def _fork(self, parent: int, child: int, ts: int) -> None:
        ptgid = self.tgid(parent)
        if child != ptgid and self.tgid_of.get(child) == ptgid:
            return  # a thread (tgid known from saved_tgids): shares the table
        self.tgid_of[child] = child
        self.tables[child] = self.table(parent).copy()
        self._seen_pids.add(child)

    def add_thread(self, tid: int, tgid: int) -> None:
        """Declare ``tid`` a thread of ``tgid`` (it shares the table); a table made for it by a
        fork event seen before is dropped."""
        self.tgid_of[tid] = tgid
        if tid != tgid:
            self.tables.pop(tid, None)

    def _exec(self, tid: int) -> None:
        t = self.table(tid)
        for fd, s in list(t.slots.items()):
            if s.cloexec:
                del t.slots[fd]
            elif s.cloexec is None:
                s.uncertain = True

    def _new(self, tid: int, fd: int, h: Handle, cloexec: bool | None) -> None:
        self.table(tid).slots[fd] = Slot(h, cloexec)

    def _exit(self, tid: int, sc: str, a: dict[str, Any], ret: int, ts: int) -> None:
        t = self.table(tid)
        if sc in DATA_SYSCALLS:
            fd = int(a["fd"])
            s = t.slots.get(fd)
            if s is None:  # no evidence yet: remember the fd so a later snapshot can name it
                h = Handle(Origin.FIRST_USE, ts)
                s = t.slots[fd] = Slot(h)
            self._attr(IoAttribution(ts, tid, self.tgid(tid), fd, sc, ret, s.handle, s.uncertain))
            return
        if ret < 0:
            return
        if sc == "close":
            t.slots.pop(int(a["fd"]), None)
        elif sc == "close_range":
            lo, hi, flags = int(a["fd"]), int(a["max_fd"]), int(a.get("flags", 0))
            for fd in [f for f in t.slots if lo <= f <= hi]:
                if flags & CLOSE_RANGE_CLOEXEC:
                    t.slots[fd].cloexec = True
                else:
                    del t.slots[fd]
        elif sc in ("dup", "dup2", "dup3") or (sc == "fcntl" and int(a["cmd"]) in (F_DUPFD, F_DUPFD_CLOEXEC)):
            old = int(a["fildes"] if sc == "dup" else a["fd"] if sc == "fcntl" else a["oldfd"])
            cloexec = (sc == "fcntl" and int(a["cmd"]) == F_DUPFD_CLOEXEC) or \
                (sc == "dup3" and bool(int(a.get("flags", 0)) & O_CLOEXEC))
            src = t.slots.get(old)
            if src is None:  # the source was never seen: both fds now name one unknown handle
                src = t.slots[old] = Slot(Handle(Origin.FIRST_USE, ts))
            if ret != old:
                t.slots[ret] = Slot(src.handle, cloexec, src.uncertain)
        elif sc in ("pipe", "pipe2", "socketpair"):
            pass  # ret is 0: the new fds are unknown until used (FIRST_USE) or named by a snapshot
        elif sc in ("socket", "accept", "accept4"):
            origin = Origin.SOCKET if sc == "socket" else Origin.ACCEPT
            self._new(tid, ret, Handle(origin, ts), None)
        elif sc == "openat":
            self._new(tid, ret, Handle(Origin.OPEN, ts), bool(int(a.get("flags", 0)) & O_CLOEXEC))

    def _attr(self, io: IoAttribution) -> None:
        if self.keep_io:
            self.attributions.append(io)

    # --- reporting -----------------------------------------------------------------------------
    def failures(self) -> Counter:
        """(pid, fd, syscall, Reason) -> calls that could not be attributed."""
        c: Counter = Counter()
        for io in self.attributions:
            r = io.reason
            if r is not None:
                c[(io.pid, io.fd, io.syscall, r)] += 1
        return c

    def failure_summary(self) -> list[str]:
        return [f"{n} {sc}s on fd {fd} of pid {pid}: {r.value}"
                for (pid, fd, sc, r), n in sorted(self.failures().items(), key=lambda kv: -kv[1])]


# --- running over a capture ------------------------------------------------------------------
FD_EVENTS = [f"sys_{k}_{s}" for s in sorted(DATA_SYSCALLS) + [
    "close", "close_range", "dup", "dup2", "dup3", "fcntl", "pipe", "pipe2", "socket", "socketpair",
    "accept", "accept4", "openat"] for k in ("enter", "exit")] + [
    "sched_process_fork", "sched_process_exec", "sched_process_exit"]


def load_saved_tgids(path) -> dict[int, int]:
    """tid -> tgid from a tracefs ``saved_tgids`` file (``TID TGID`` per line)."""
    out: dict[int, int] = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1] != "0":
                    out[int(parts[0])] = int(parts[1])
    except OSError:
        pass
    return out


def wall_to_ts(meta: dict[str, Any], wall: float) -> int | None:
    """Place a wall-clock time on the trace clock by the capture's start/stop pairs (linear)."""
    try:
        t0, t1 = int(meta["start_ts"]), int(meta["stop_ts"])
        w0, w1 = float(meta["start_wall"]), float(meta["stop_wall"])
    except (KeyError, TypeError, ValueError):
        return None
    if w1 <= w0:
        return t0 + int((wall - w0) * 1e9)
    return t0 + int((wall - w0) * (t1 - t0) / (w1 - w0))


def run_capture(path, keep_io: bool = True) -> FdModel:
    """Build an FdModel over a whole capture directory: /proc snapshots are fed at their wall-clock
    time mapped onto the trace clock (start snapshots first), events in decoder order."""
    import json
    from pathlib import Path

    from ftraceipc.capture.store import CaptureDir
    from ftraceipc.decode import Decoder

    path = Path(path)
    cap = CaptureDir(path)
    meta = json.loads((path / "meta.json").read_text())
    m = FdModel(keep_io=keep_io, tgid_of=load_saved_tgids(path / "tracefs" / "saved_tgids"))
    snaps = []
    for rec in cap.proc_records():
        if rec.get("kind") != "fds":
            continue
        ts = None if rec.get("when") == "start" else wall_to_ts(meta, float(rec.get("ts_wall", 0)))
        snaps.append((-1 if ts is None else ts, rec))
    snaps.sort(key=lambda x: x[0])
    i = 0
    for batch in Decoder(path).batches(FD_EVENTS):
        for ev in batch.records():
            while i < len(snaps) and snaps[i][0] <= ev["ts"]:
                m.snapshot(snaps[i][1])
                i += 1
            m.feed(ev)
    for _, rec in snaps[i:]:
        m.snapshot(rec)
    return m
