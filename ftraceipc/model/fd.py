"""fd-table state provider: which resource each fd of each process names, at each moment.

Two paths, both in time order:

- the *lifecycle* path, one record at a time (rare events): the syscalls that create, copy and
  close fds, fork/exec, ``task_newtask`` and the pipefs inode event, plus /proc snapshots. It keeps
  one fd table per thread group (threads share it), copies it on fork, applies close-on-exec on exec,
  and writes every change of an fd to a *binding history* ``(pid, fd, ts) -> handle id``;
  The records of opening by path and closing, by far the most frequent, go a run at a time
  (:meth:`FdModel.feed_plain`: the same changes as one at a time, in columns);
- the *data* path, vectorized: :meth:`FdModel.resolve` maps a DataFrame of syscall intervals
  (``tid``, ``fd``, ``enter_ts``) to handle ids through that history (an as-of join: ``columns.asof``).

Memory is bounded by the fds alive, not by how many were ever opened: after each batch,
:meth:`FdModel.settle` resolves the later snapshots read before it, keeps of the older bindings only
those a later query can still see (the last of each fd, and what syscalls still open resolve to),
and turns opened handles that no fd names any more and no snapshot named into one shared object
(their I/O reads as before: unnamed, or not IPC). A workload that opens and closes files by the
million costs what its open fds cost.

Identity. An fd maps to a :class:`Handle` (one open file description: shared by dup copies, fork and
threads), which points to a :class:`Resource` (the kernel object: a pipe, a FIFO, one end of a Unix
socket). Evidence can name a resource after its I/O was attributed, so rids are read at the end.

Evidence for each kind (docs/schema.md has the full table):

- pipes: ``pipe``/``pipe2`` returns 0 and writes the fds to user memory, but the new pipefs inode's
  ctime is set inside the syscall (``timestamp:inode_set_ctime_to_ts``, filtered to pipefs at capture),
  which names the inode; the fds are the two lowest free ones — known exactly when the process's
  fd table is *complete* (seeded from a full /proc snapshot or a complete parent, and every
  fd-creating syscall since was traced) and no other thread of the process changed the table
  during the call;
- Unix sockets: ``socket``/``accept*`` return the fd; ``socketpair`` as pipes (lowest free);
  the ``sk`` pointer of the sock tracepoints inside a send/recv names the socket, /proc/net/unix maps
  ``sk`` to the inode (read with real pointers), and ``sk_data_ready`` inside a send names the
  receiving socket (the peer, or a datagram's destination);
- FIFOs and anything opened by path: ``openat`` returns the fd; what it is comes from a /proc
  snapshot of some process holding it.

Nothing is guessed: an fd without evidence resolves to no resource and is counted with its reason.
"""

from __future__ import annotations

import enum
import heapq
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from ftraceipc.model.columns import asof, first_of_each, previous

DATA_SYSCALLS = frozenset({"read", "write", "readv", "writev", "sendto", "recvfrom", "sendmsg",
                           "recvmsg", "splice"})
WRITE_SYSCALLS = frozenset({"write", "writev", "sendto", "sendmsg"})
READ_SYSCALLS = frozenset({"read", "readv", "recvfrom", "recvmsg"})
F_DUPFD, F_SETFD, F_DUPFD_CLOEXEC = 0, 2, 1030
F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032
FD_CLOEXEC = 1
CLOSE_RANGE_CLOEXEC = 1 << 2  # CLOSE_RANGE_CLOEXEC: mark, don't close
O_CLOEXEC = 0o2000000
CLONE_FILES = 0x00000400
CLONE_THREAD = 0x00010000
AF_UNIX = 1
U64 = (1 << 64) - 1
SOCK_TYPES = {1: "unix_stream", 2: "unix_dgram", 5: "unix_seqpacket"}

# fd-creating syscalls whose exit returns the new fd: how to read close-on-exec from the enter args
# (field, mask), True (always), False (never) or None (not visible).
FD_CREATORS: dict[str, Any] = {
    "open": ("flags", O_CLOEXEC), "openat": ("flags", O_CLOEXEC), "creat": False, "openat2": None,
    "memfd_create": ("flags", 1), "eventfd": False, "eventfd2": ("flags", O_CLOEXEC),
    "epoll_create": False, "epoll_create1": ("flags", O_CLOEXEC), "signalfd": False,
    "signalfd4": ("flags", O_CLOEXEC), "timerfd_create": ("flags", O_CLOEXEC), "inotify_init": False,
    "inotify_init1": ("flags", O_CLOEXEC), "fanotify_init": ("flags", 1), "pidfd_open": True,
    "pidfd_getfd": True, "perf_event_open": ("flags", 8), "io_uring_setup": True,
    "userfaultfd": ("flags", O_CLOEXEC), "open_by_handle_at": ("flags", O_CLOEXEC),
    "open_tree": None, "fsopen": None, "fspick": None, "fsmount": None, "memfd_secret": None,
    "mq_open": None, "landlock_create_ruleset": True,
    "socket": ("type", O_CLOEXEC), "accept": False, "accept4": ("flags", O_CLOEXEC),
}
# Opening by path and closing: the syscalls whose records ``FdModel.feed_plain`` applies a run at a
# time (fd churn: a build, a server opening files); the field of the enter each needs (None: none).
PLAIN_SYSCALLS = ("close", "open", "openat", "creat", "openat2")
PLAIN_FIELDS = ("fd", "flags", "flags", None, None)
LIFECYCLE_SYSCALLS = frozenset(FD_CREATORS) | {"pipe", "pipe2", "socketpair", "dup", "dup2", "dup3",
                                               "fcntl", "close", "close_range", "connect", "bind"}

_SNAP_RE = re.compile(r"^(pipe|socket|fifo):\[(\d+)\](?::(.*))?")


class Origin(enum.Enum):
    SNAPSHOT = "named by a /proc snapshot"
    PIPE = "created by pipe/pipe2"
    SOCKETPAIR = "created by socketpair"
    SOCKET = "created by socket"
    ACCEPT = "created by accept"
    OPEN = "opened by path (openat/open)"
    OTHER = "created by another fd-creating syscall"
    DUP = "created by dup"


class Reason(enum.Enum):
    UNKNOWN_FD = "fd not known to be open (no creation traced, no snapshot named it)"
    FDS_UNKNOWN = "fd from pipe/socketpair whose fd numbers could not be known (fd table incomplete)"
    OPENED_UNNAMED = "opened by path and never named by a snapshot (regular file, or a FIFO opened between snapshots)"
    AFTER_EXEC = "uncertain after exec (close-on-exec not visible) and not confirmed"
    NOT_IPC = "not a pipe, FIFO or Unix socket"
    NO_EXEC_EVENTS = ("the capture lacks sched:sched_process_exec, so any fd may have been closed by an exec "
                      "the trace does not show")
    ENTER_MISSED = "the call began before the capture (its fd is in the enter event, which is missing)"


def rid_from_snapshot(target: str) -> str | None:
    """``pipe:[N]`` → ``pipe:N``, ``socket:[N]`` → ``unix:N``, ``fifo:[N]:PATH`` → ``fifo:N``."""
    m = _SNAP_RE.match(target)
    if not m:
        return None
    kind = {"pipe": "pipe", "socket": "unix", "fifo": "fifo"}[m.group(1)]
    return f"{kind}:{m.group(2)}"


@dataclass(eq=False, slots=True)
class Resource:
    """A kernel object as far as the evidence tells: a pipe (both ends), a FIFO, one socket end."""

    id: int
    kind: str | None  # pipe, fifo, unix_stream/dgram/seqpacket, unix (type unknown), socket, other; None unknown
    since: int
    inode: int | None = None
    path: str | None = None
    sks: set[int] = field(default_factory=set)  # kernel sock pointers seen for it
    peer: "Resource | None" = None
    evidence: set[str] = field(default_factory=set)
    merged_into: "Resource | None" = None
    listener: "Resource | None" = None  # for accepted sockets: the listening socket
    capacity: int | None = None  # a pipe's size in bytes as F_SETPIPE_SZ/F_GETPIPE_SZ returned it (the last seen)
    closed_ts: int | None = None  # when the last fd naming one of its handles was closed (None: never)

    def root(self) -> "Resource":
        r = self
        while r.merged_into is not None:
            r = r.merged_into
        return r

    @property
    def is_ipc(self) -> bool:
        return self.kind is not None and self.kind not in ("socket", "other")

    def rid(self) -> str | None:
        """``kind:INODE`` when named; ``kind:~N`` for an IPC object no evidence named the inode of."""
        if self.kind is None or not self.is_ipc:
            return None
        prefix = "unix" if self.kind.startswith("unix") else self.kind
        return f"{prefix}:{self.inode}" if self.inode is not None else f"{prefix}:~{self.id}"


@dataclass(eq=False, slots=True)
class Handle:
    """One open file description (shared by dup copies, fork children and threads)."""

    id: int
    origin: Origin
    since: int
    res: Resource | None = None
    reason: Reason | None = None  # why ``res`` is None
    refs: int = 0  # fds (slots of fd tables) naming it

    @property
    def resource(self) -> Resource | None:
        return None if self.res is None else self.res.root()

    @property
    def rid(self) -> str | None:
        r = self.resource
        return None if r is None else r.rid()


# Files opened by path, by the million on some workloads, share these once they need no identity:
# the resource of every fd a snapshot named as a file or device (not IPC), and what an opened handle
# becomes once no fd names it (FdModel._reclaim): unnamed, or named not IPC, for good.
_FILE = Resource(-1, "other", 0)
_CLOSED_OPENED = Handle(-1, Origin.OPEN, 0, None, Reason.OPENED_UNNAMED)
_CLOSED_FILE = Handle(-1, Origin.OPEN, 0, _FILE)


@dataclass(eq=False, slots=True)
class Slot:
    handle: Handle
    cloexec: bool | None = None  # None: not known
    uncertain: bool = False  # the process exec'd since and cloexec was not known


@dataclass(eq=False)
class FdTable:
    slots: dict[int, Slot] = field(default_factory=dict)
    complete: bool = False  # every open fd is known (so the lowest free fd is known)
    why_incomplete: str = "no snapshot of this process"

    def copy(self) -> "FdTable":
        return FdTable({fd: Slot(s.handle, s.cloexec, s.uncertain) for fd, s in self.slots.items()},
                       self.complete, self.why_incomplete)

    def lowest_free(self, n: int, start: int = 0) -> list[int]:
        out, fd = [], start
        while len(out) < n:
            if fd not in self.slots:
                out.append(fd)
            fd += 1
        return out


@dataclass(slots=True)
class _Pending:
    syscall: str
    ts: int
    args: dict[str, Any]
    inodes: list[int] | None = None  # pipefs inodes named inside the call (pipe, pipe2)


class FdModel:
    """Feed lifecycle records and snapshots in time order (``feed``, runs of opens and closes with
    ``feed_plain``, ``snapshot``), resolve data syscalls in batches (``resolve``), then ``finish()``
    to apply the last evidence."""

    settle_min = 4096  # bindings since the last compaction before ``settle`` compacts again

    def __init__(self, tgid_of: dict[int, int] | None = None, pipefs_inode_events: bool = True):
        self.tables: dict[int, FdTable] = {}  # tgid -> table
        self.tgid_of: dict[int, int] = dict(tgid_of or {})  # tid -> tgid
        self.pending: dict[int, _Pending] = {}
        self.handles: list[Handle] = []
        self.resources: list[Resource] = []
        self.conflicts: list[str] = []
        self.notes: Counter = Counter()  # what the model could not do, counted
        self.unpaired_exits = 0
        self.pipefs_inode_events = pipefs_inode_events
        # set when the capture lacks fd-lifecycle events: fd tables are then never known whole
        self.no_inference: str | None = None
        self.exec_unseen = False  # the capture has no sched_process_exec events
        self._seen_pids: set[int] = set()
        self._born: set[int] = set()  # tids whose creation the trace showed
        self.unknown_pairs: dict[int, int] = {}  # tgid -> first pipe/socketpair whose fds are unknown
        self._last_change: dict[int, tuple[int, int]] = {}  # tgid -> (exit ts, tid) of last fd change
        # the binding history: (pid, fd, ts, handle id or -1 for closed). ``_base`` holds what
        # ``settle`` compacted (time-ordered arrays), the lists what was bound since
        self._base = {k: np.zeros(0, np.int64) for k in ("pid", "fd", "ts", "handle")}
        self._b_pid: list[int] = []
        self._b_fd: list[int] = []
        self._b_ts: list[int] = []
        self._b_h: list[int] = []
        # (pid, fd, ts, handle) arrays in order: the lists' rows before a run, then the run's
        self._b_parts: list[tuple[np.ndarray, ...]] = []
        self._b_n = 0  # rows in the parts
        self._hist: pd.DataFrame | None = None
        self._hist_len = 0
        self._hist_keys: tuple | None = None  # (history frame, key, ts, handle) of _history_keys
        self.sk_inodes: dict[int, list[tuple[int, int, str | None, int]]] = defaultdict(list)  # sk -> (ts, inode, path, type)
        self.inode_info: dict[int, tuple[str | None, int]] = {}  # unix inode -> (path, type)
        self._snap_names: list[tuple[int, int, int, int, str]] = []  # (t0, ts, pid, fd, target): later snapshots not resolved yet
        # (pid, fd, target, handle) resolved, the fd unchanged over the read; each once (an ordered set:
        # the /proc watcher reads the same tables every round, a live run for minutes)
        self._snap_named: dict[tuple[int, int, str, int], None] = {}
        self._dying: list[tuple[int, int]] = []  # (ts, id) of opened handles no fd names any more since ts
        self.reclaimed = 0
        self._shared_tables: set[int] = set()  # ids of fd tables processes share (CLONE_FILES)
        # sends whose receiver address named no socket alive then: (handle, sk) -> the first send's ts,
        # linked again at finish (the receiver's own calls may name its address later)
        self._unlinked: dict[tuple[int, int], int] = {}

    # --- identity --------------------------------------------------------------------------------
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

    def handle(self, origin: Origin, ts: int, res: Resource | None = None, reason: Reason | None = None) -> Handle:
        h = Handle(len(self.handles), origin, ts, res, reason)
        self.handles.append(h)
        return h

    def _res(self, h: Handle) -> Resource | None:
        """The handle's resource; an opened handle gets its (not yet named) one on first need."""
        if h.res is None and h.origin is Origin.OPEN and h is not _CLOSED_OPENED:
            h.res = self.resource(None, h.since, "open")
        return h.resource

    def _own_res(self, h: Handle) -> Resource | None:
        """The handle's resource, its own (not the shared ``_FILE``) so that evidence can change it;
        None for a reclaimed handle (nothing may change what it shares)."""
        if h.id < 0:
            return None
        if h.res is _FILE:
            h.res = self.resource("other", h.since, "open")
        return self._res(h)

    def resource(self, kind: str | None, ts: int, evidence: str, inode: int | None = None) -> Resource:
        r = Resource(len(self.resources), kind, ts, inode)
        r.evidence.add(evidence)
        self.resources.append(r)
        return r

    # --- bindings ----------------------------------------------------------------------------------
    def _bind(self, pid: int, fd: int, ts: int, slot: Slot | None) -> None:
        t = self.tables.get(pid)
        if t is None:
            t = self.tables[pid] = FdTable()
        if slot is None:
            old = t.slots.pop(fd, None)
            if old is None:
                return
            h = -1
        else:
            old = t.slots.get(fd)
            t.slots[fd] = slot
            slot.handle.refs += 1
            h = -2 if slot.uncertain else slot.handle.id
        if old is not None:
            old.handle.refs -= 1
            if old.handle.refs <= 0:
                r = old.handle.res
                if r is not None and r is not _FILE and (r.closed_ts is None or ts > r.closed_ts):
                    r.closed_ts = ts
                if self._foldable(old.handle):
                    self._dying.append((ts, old.handle.id))
        self._b_pid.append(pid)
        self._b_fd.append(fd)
        self._b_ts.append(ts)
        self._b_h.append(h)

    def _set(self, tid: int, fd: int, ts: int, slot: Slot | None) -> None:
        self._bind(self.tgid(tid), fd, ts, slot)

    def _copy_table(self, parent_pid: int, child: int, ts: int) -> None:
        old = self.tables.get(child)
        if old is not None:  # the pid was used before (a process at start that exited): forget its fds
            for fd in list(old.slots):
                self._bind(child, fd, ts, None)
        src = self.tables.get(parent_pid)
        t = src.copy() if src is not None else FdTable(why_incomplete=f"parent {parent_pid} never seen")
        self.tables[child] = FdTable(complete=t.complete, why_incomplete=t.why_incomplete)
        for fd, s in t.slots.items():
            self._bind(child, fd, ts, s)

    # --- snapshots ---------------------------------------------------------------------------------
    def snapshot(self, rec: dict[str, Any], ts: int, t0: int | None = None) -> None:
        """Apply one proc.jsonl record at trace time ``ts``. A ``start`` snapshot (or the first one
        of a process the trace never showed) seeds the whole table; later ones only name resources
        that the trace left unnamed (checked again at ``finish``); a disagreement is a conflict."""
        kind = rec.get("kind")
        if kind == "unix":
            for s in rec.get("sockets", []):
                ino = int(s.get("inode", 0))
                if ino == 0:
                    continue
                self.inode_info[ino] = (s.get("path"), int(s.get("type", 0)))
                try:
                    sk = int(s["num"], 16)
                except (KeyError, ValueError):
                    continue  # records made at bind carry no kernel addresses
                self.sk_inodes[sk].append((ts, ino, s.get("path"), int(s.get("type", 0))))
            return
        if kind != "fds":
            return
        pid = int(rec["pid"])
        self.tgid_of.setdefault(pid, pid)
        fds = rec.get("fds") or {}
        cloexec = set(rec.get("cloexec") or [])
        full = "cloexec" in rec  # older captures listed only IPC fds
        if self._seeds(rec):
            t = self.tables.get(pid)
            if t is not None:
                for fd in list(t.slots):
                    self._bind(pid, fd, ts, None)
            self.tables[pid] = FdTable(complete=full, why_incomplete="" if full else "snapshot lists only IPC fds")
            for fd_s, target in fds.items():
                fd = int(fd_s)
                h = self.handle(Origin.SNAPSHOT, ts, self._snap_resource(target, ts))
                self._bind(pid, fd, ts, Slot(h, fd in cloexec if full else None))
            self._seen_pids.add(pid)
            return
        for fd_s, target in fds.items():
            self._snap_names.append((ts if t0 is None else t0, ts, pid, int(fd_s), target))

    def _seeds(self, rec: dict[str, Any]) -> bool:
        """Does this "fds" record seed its process's whole table (a ``start`` snapshot, or the first
        of a process the trace never showed)? "open" records name one fd just opened, never a table."""
        if rec.get("when") == "start":
            return True
        try:
            return int(rec["pid"]) not in self._seen_pids and rec.get("when") != "open"
        except (KeyError, TypeError, ValueError):
            return True  # (malformed: applied at its time, where ``snapshot`` says so)

    def passive(self, rec: dict[str, Any]) -> bool:
        """Would ``snapshot(rec)`` change no fd table (it only names fds, checked against the whole read
        at ``settle``, or lists sockets)? Such a record may be applied before lifecycle records of its
        time (``feed_plain`` then keeps the handles it might name). A seed never is."""
        return rec.get("kind") != "fds" or not self._seeds(rec)

    def _snap_resource(self, target: str, ts: int) -> Resource:
        m = _SNAP_RE.match(target)
        if not m:
            return self.resource("other", ts, "snapshot")
        ino = int(m.group(2))
        if m.group(1) == "pipe":
            return self.resource("pipe", ts, "snapshot", ino)
        if m.group(1) == "fifo":
            r = self.resource("fifo", ts, "snapshot", ino)
            r.path = m.group(3)
            return r
        r = self.resource("unix", ts, "snapshot", ino)  # kind settled at finish from /proc/net/unix
        return r

    # --- lifecycle events -----------------------------------------------------------------------------
    def feed(self, ev: dict[str, Any]) -> None:
        name = ev["event"]
        tid = int(ev["tid"])
        ts = int(ev["ts"])
        if name.startswith("sys_enter_"):
            self.pending[tid] = _Pending(name[10:], ts, ev)
            self._seen_pids.add(self.tgid(tid))
        elif name.startswith("sys_exit_"):
            sc = name[9:]
            p = self.pending.pop(tid, None)
            if p is None or p.syscall != sc:
                self.unpaired_exits += 1
                return
            self._exit(tid, sc, p, int(ev["ret"]), ts)
        elif name == "inode_set_ctime_to_ts":
            p = self.pending.get(tid)
            if p is not None and p.syscall in ("pipe", "pipe2"):
                if p.inodes is None:
                    p.inodes = []
                p.inodes.append(int(ev["ino"]))
        elif name == "task_newtask":
            self._newtask(tid, int(ev["pid"]), int(ev["clone_flags"]), ts)
        elif name == "sched_process_fork":
            child = int(ev["child_pid"])
            if child not in self._born:  # no task_newtask in the capture: saved_tgids tell threads
                self._newtask(int(ev["parent_pid"]), child, 0, ts)
        elif name == "sched_process_exec":
            self._exec(tid, ts)
        elif name == "sched_process_exit":
            self.pending.pop(tid, None)
            if ev.get("group_dead"):  # the last thread: the kernel releases the fd table
                self._release(self.tgid(tid), ts)

    def feed_plain(self, tid: np.ndarray, ts: np.ndarray, is_exit: np.ndarray, sc: np.ndarray,
                   arg: np.ndarray, ret: np.ndarray) -> None:
        """A run of records of PLAIN_SYSCALLS only, in time order, with no other lifecycle record and
        no snapshot between them: the same changes as ``feed`` of each in turn, in columns. ``sc``
        indexes PLAIN_SYSCALLS; ``arg`` is an enter's field (PLAIN_FIELDS: close's fd, an open's
        flags; 0 when none), ``ret`` an exit's return value."""
        n = len(ts)
        if not n:
            return
        tid, ts, sc = (np.asarray(x, dtype=np.int64) for x in (tid, ts, sc))
        arg, ret, is_exit = np.asarray(arg, dtype=np.int64), np.asarray(ret, dtype=np.int64), np.asarray(is_exit, bool)
        pid = self.pids_of(tid)
        # what each exit pairs with: its task's previous record here, else what was pending before
        prev, last = previous(tid)
        ex = np.flatnonzero(is_exit)
        pe = prev[ex]
        here = pe >= 0
        ok = np.zeros(len(ex), bool)
        parg = np.zeros(len(ex), np.int64)
        ok[here] = ~is_exit[pe[here]] & (sc[pe[here]] == sc[ex[here]])
        parg[here] = arg[pe[here]]
        for j in np.flatnonzero(~here).tolist():
            i = int(ex[j])
            p = self.pending.get(int(tid[i]))
            if p is not None and p.syscall == PLAIN_SYSCALLS[sc[i]]:
                ok[j] = True
                f = PLAIN_FIELDS[sc[i]]
                if f == "fd" and f not in p.args:  # (``feed`` of the enter took it without: a damaged format)
                    raise KeyError(f, f"sys_enter_{p.syscall}")
                parg[j] = 0 if f is None else int(p.args[f]) if f == "fd" else int(p.args.get(f, 0))
        self.unpaired_exits += int(len(ex) - ok.sum())
        # what stays pending: each task's last record here, if an enter
        for i in np.flatnonzero(last).tolist():
            t = int(tid[i])
            if is_exit[i]:
                self.pending.pop(t, None)
            else:
                f = PLAIN_FIELDS[sc[i]]
                self.pending[t] = _Pending(PLAIN_SYSCALLS[sc[i]], int(ts[i]), {} if f is None else {f: int(arg[i])})
        self._seen_pids.update(np.unique(pid[~is_exit]).tolist())
        m = ex[ok]
        for p in np.unique(pid[m]).tolist():  # (``_exit`` makes the table of every paired exit)
            if p not in self.tables:
                self.tables[p] = FdTable()
        good = ret[m] >= 0
        m, marg = m[good], parg[ok][good]
        k = len(m)
        if not k:
            return
        opid, ots, otid, osc = pid[m], ts[m], tid[m], sc[m]
        is_open = osc != 0
        fd = np.where(is_open, ret[m], marg)
        _, lastop = previous(opid)
        for i in np.flatnonzero(lastop).tolist():  # ``_changed``: the last change of each process
            self._last_change[int(opid[i])] = (int(ots[i]), int(otid[i]))
        # each fd's changes in turn: bound before a change if its previous change here opened it,
        # or, for its first change here, if the table held it
        gprev, glast = previous(_pid_fd_key(opid, fd))
        present = np.zeros(k, bool)
        inner = gprev >= 0
        present[inner] = is_open[gprev[inner]]
        hid = np.full(k, -1, np.int64)
        n_open = int(is_open.sum())
        hid[is_open] = np.arange(len(self.handles), len(self.handles) + n_open)
        # handles that no fd names any more: opened here and changed again (refs 1 -> 0), then those
        # the tables held, counted one change at a time. Those opened and closed here are folded at
        # once (``_reclaim``'s outcome) unless a snapshot read not resolved yet may name them: one
        # that began while the fd named it (a later read ends after the run: the handle is closed
        # by then); those wait for ``settle`` as ``feed``'s do.
        gone = np.flatnonzero(inner & present)
        now = np.ones(len(gone), bool)
        names = [x for x in self._snap_names if x[1] >= ots[0]]
        if names and len(gone):
            nm = np.array([(x[2], x[3], x[0]) for x in names], dtype=np.int64)
            at = asof(_pid_fd_key(nm[:, 0], nm[:, 1]), nm[:, 2], _pid_fd_key(opid, fd), ots)
            named = np.zeros(k, bool)
            named[at[at >= 0]] = True
            now = ~named[gprev[gone]]
        folded = np.zeros(k, bool)
        folded[gprev[gone[now]]] = True
        gone = gone[~now]
        dying = [(int(i), int(ots[i]), int(hid[gprev[i]])) for i in gone.tolist()]
        for i in np.flatnonzero(~inner).tolist():
            old = self.tables[int(opid[i])].slots.get(int(fd[i]))
            if old is None:
                continue
            present[i] = True
            h = old.handle
            h.refs -= 1
            if h.refs <= 0:
                r, t = h.res, int(ots[i])
                if r is not None and r is not _FILE and (r.closed_ts is None or t > r.closed_ts):
                    r.closed_ts = t
                if self._foldable(h):
                    dying.append((int(i), t, h.id))
        if dying:
            dying.sort()
            self._dying.extend((t, h) for _i, t, h in dying)
        self.handles.extend([_CLOSED_OPENED] * n_open)  # then a handle of its own where not folded
        self.reclaimed += int(folded.sum())
        for i in np.flatnonzero(is_open & ~folded).tolist():
            self.handles[int(hid[i])] = Handle(int(hid[i]), Origin.OPEN, int(ots[i]), None, Reason.OPENED_UNNAMED,
                                               int(glast[i]))
        for i in np.flatnonzero(glast).tolist():  # each fd's state after the run
            slots = self.tables[int(opid[i])].slots
            if is_open[i]:
                s = int(osc[i])
                cloexec = None if s == 4 else False if s == 3 else bool(int(marg[i]) & O_CLOEXEC)
                slots[int(fd[i])] = Slot(self.handles[int(hid[i])], cloexec)
            else:
                slots.pop(int(fd[i]), None)
        b = np.flatnonzero(is_open | present)  # the binding history: every open, every close of a bound fd
        self._flush_bindings()
        self._b_parts.append((opid[b], fd[b], ots[b], hid[b]))
        self._b_n += len(b)

    def _release(self, pid: int, ts: int) -> None:
        """Process ``pid`` is gone: its fds close (a socket it never closed is dead from then on, and its
        kernel address may go to the next socket). Not a table another process shares (CLONE_FILES)."""
        t = self.tables.get(pid)
        if t is None or id(t) in self._shared_tables:
            return
        for fd in list(t.slots):
            self._bind(pid, fd, ts, None)

    def _newtask(self, parent_tid: int, child: int, flags: int, ts: int) -> None:
        ppid = self.tgid(parent_tid)
        self._born.add(child)
        if flags & CLONE_THREAD or (child in self.tgid_of and self.tgid_of[child] != child):
            self.tgid_of[child] = self.tgid_of.get(child, ppid) if not flags & CLONE_THREAD else ppid
            return
        self.tgid_of[child] = child
        self._seen_pids.add(child)
        if flags & CLONE_FILES:  # a process sharing the table: share the object (rare; no copy)
            self.tables[child] = self.table(parent_tid)
            self._shared_tables.add(id(self.tables[child]))
            return
        self._copy_table(ppid, child, ts)

    def _exec(self, tid: int, ts: int) -> None:
        pid = self.tgid(tid)
        t = self.table(tid)
        for fd, s in list(t.slots.items()):
            if s.cloexec:
                self._bind(pid, fd, ts, None)
            elif s.cloexec is None:
                self._bind(pid, fd, ts, Slot(s.handle, None, True))
                if t.complete:
                    t.complete = False
                    t.why_incomplete = f"exec with fd {fd} of unknown close-on-exec flag"

    def _changed(self, tid: int, ts: int) -> None:
        self._last_change[self.tgid(tid)] = (ts, tid)

    def _concurrent_change(self, tid: int, enter_ts: int) -> bool:
        """Did another thread of the process change the fd table while this call ran?"""
        pid = self.tgid(tid)
        last = self._last_change.get(pid)
        if last is not None and last[1] != tid and last[0] >= enter_ts:
            return True
        for other, p in self.pending.items():
            if other != tid and self.tgid(other) == pid and p.syscall in LIFECYCLE_SYSCALLS:
                return True
        return False

    def _exit(self, tid: int, sc: str, p: _Pending, ret: int, ts: int) -> None:
        a = p.args
        t = self.table(tid)
        if ret < 0:
            return
        if sc == "close":
            self._set(tid, int(a["fd"]), ts, None)
        elif sc == "close_range":
            lo, hi, flags = int(a["fd"]), int(a["max_fd"]), int(a.get("flags", 0))
            for fd in sorted(f for f in t.slots if lo <= f <= hi):
                if flags & CLOSE_RANGE_CLOEXEC:
                    t.slots[fd].cloexec = True
                else:
                    self._set(tid, fd, ts, None)
        elif sc in ("dup", "dup2", "dup3") or (sc == "fcntl" and int(a["cmd"]) in (F_DUPFD, F_DUPFD_CLOEXEC)):
            old = int(a["fildes"] if sc == "dup" else a["fd"] if sc == "fcntl" else a["oldfd"])
            cloexec = (sc == "fcntl" and int(a["cmd"]) == F_DUPFD_CLOEXEC) or \
                (sc == "dup3" and bool(int(a.get("flags", 0)) & O_CLOEXEC))
            src = t.slots.get(old)
            if src is None:  # the source was never seen: both fds now name one unknown handle
                src = Slot(self.handle(Origin.DUP, ts, None, Reason.UNKNOWN_FD))
                self._set(tid, old, ts, src)
                self._mark_incomplete(t, f"dup of unknown fd {old}")
            if ret != old:
                self._set(tid, ret, ts, Slot(src.handle, cloexec, src.uncertain))
        elif sc == "fcntl":
            cmd = int(a["cmd"])
            if cmd == F_SETFD and int(a["fd"]) in t.slots:
                t.slots[int(a["fd"])].cloexec = bool(int(a["arg"]) & FD_CLOEXEC)
            elif cmd in (F_SETPIPE_SZ, F_GETPIPE_SZ) and ret > 0 and int(a["fd"]) in t.slots:
                r = t.slots[int(a["fd"])].handle.resource  # the size the kernel gave (a page multiple)
                if r is not None and r.kind in (None, "pipe", "fifo"):
                    r.capacity = ret
            return
        elif sc == "lseek":  # it succeeded: a seekable file, not a pipe, FIFO, socket or tty (ESPIPE)
            s = t.slots.get(int(a["fd"]))
            h = None if s is None else s.handle
            if h is not None and h.id >= 0 and h.origin is Origin.OPEN:
                if h.res is None:
                    h.res = _FILE
                elif h.res.root().kind is None:
                    h.res.root().kind = "other"
                    h.res.root().evidence.add("lseek")
        elif sc in ("pipe", "pipe2", "socketpair"):
            self._pair(tid, sc, p, ts)
        elif sc in FD_CREATORS:
            self._created(tid, sc, a, ret, ts)
        elif sc in ("recvmsg", "recvmmsg"):
            if t.complete:
                s = t.slots.get(int(a["fd"]))
                r = None if s is None else s.handle.resource
                if r is None or r.kind is None or r.kind.startswith("unix"):
                    self._mark_incomplete(t, f"{sc} on a Unix socket may have received fds (SCM_RIGHTS)")
            return
        else:
            return
        self._changed(tid, ts)

    def _mark_incomplete(self, t: FdTable, why: str) -> None:
        if t.complete:
            t.complete = False
            t.why_incomplete = why

    def _pair(self, tid: int, sc: str, p: _Pending, ts: int) -> None:
        a = p.args
        t = self.table(tid)
        if sc == "socketpair":
            fam, typ = int(a.get("family", 0)), int(a.get("type", 0))
            kind = SOCK_TYPES.get(typ & 0xF, "unix") if fam == AF_UNIX else "socket"
            r0, r1 = self.resource(kind, ts, "socketpair"), self.resource(kind, ts, "socketpair")
            r0.peer, r1.peer = r1, r0
            res = [r0, r1]
            cloexec = bool(typ & O_CLOEXEC)
            origin = Origin.SOCKETPAIR
        else:
            inode = p.inodes[0] if p.inodes is not None and len(p.inodes) == 1 else None
            r = self.resource("pipe", ts, "pipe inode event" if inode is not None else "pipe2", inode)
            if inode is None:
                self.notes["pipes whose inode no event named" + (
                    "" if self.pipefs_inode_events else " (timestamp:inode_set_ctime_to_ts not captured)")] += 1
            res = [r, r]
            cloexec = sc == "pipe2" and bool(int(a.get("flags", 0)) & O_CLOEXEC)
            origin = Origin.PIPE
        if self.no_inference or not t.complete or self._concurrent_change(tid, p.ts):
            why = (self.no_inference or t.why_incomplete if not t.complete or self.no_inference
                   else "another thread changed the fd table meanwhile")
            if t.complete:
                self._mark_incomplete(t, why)
            for r in res:  # the objects exist, but which fds name them is unknown
                self.handle(origin, ts, r, Reason.FDS_UNKNOWN)
            self.notes[f"{sc} fds unknown: {why}"] += 1
            self.unknown_pairs.setdefault(self.tgid(tid), ts)
            return
        for fd, r in zip(t.lowest_free(2), res):
            self._set(tid, fd, ts, Slot(self.handle(origin, ts, r), cloexec))

    def _created(self, tid: int, sc: str, a: dict[str, Any], ret: int, ts: int) -> None:
        t = self.table(tid)
        rule = FD_CREATORS[sc]
        if rule is None:
            cloexec = None
        elif isinstance(rule, bool):
            cloexec = rule
        else:
            cloexec = bool(int(a.get(rule[0], 0)) & rule[1])
        if sc == "signalfd4" and int(a.get("ufd", -1)) == ret and ret in t.slots:
            return  # an existing signalfd modified
        if sc == "socket":
            fam, typ = int(a.get("family", 0)), int(a.get("type", 0))
            kind = SOCK_TYPES.get(typ & 0xF, "unix") if fam == AF_UNIX else "socket"
            h = self.handle(Origin.SOCKET, ts, self.resource(kind, ts, "socket"))
        elif sc in ("accept", "accept4"):
            ls = t.slots.get(int(a["fd"]))
            lr = None if ls is None else self._res(ls.handle)
            kind = lr.kind if lr is not None and lr.kind is not None else "unix"
            if lr is not None and lr.kind == "socket":
                kind = "socket"
            r = self.resource(kind if lr is not None else None, ts, "accept")
            r.listener = lr
            h = self.handle(Origin.ACCEPT, ts, r, None if lr is not None else Reason.UNKNOWN_FD)
        elif sc in ("open", "openat", "openat2", "creat", "open_by_handle_at"):
            # what a path names is unknown until a later snapshot names it (``_res``): files opened
            # by the million cost a handle each, not a resource
            h = self.handle(Origin.OPEN, ts, None, Reason.OPENED_UNNAMED)
        else:
            h = self.handle(Origin.OTHER, ts, self.resource("other", ts, sc))
        self._set(tid, ret, ts, Slot(h, cloexec))

    # --- the data path (vectorized) -------------------------------------------------------------
    def _flush_bindings(self) -> None:
        """The bindings of the lists to a part (in order, before the next part)."""
        if self._b_ts:
            self._b_parts.append(tuple(np.asarray(x, dtype=np.int64)
                                       for x in (self._b_pid, self._b_fd, self._b_ts, self._b_h)))
            self._b_n += len(self._b_ts)
            self._b_pid, self._b_fd, self._b_ts, self._b_h = [], [], [], []

    def _bound(self) -> int:
        """Bindings since the last compaction."""
        return self._b_n + len(self._b_ts)

    def history(self) -> pd.DataFrame:
        """The binding history in time order (what ``settle`` kept, then what was bound since)."""
        if self._hist is None or self._hist_len != self._bound():
            self._flush_bindings()
            b = self._base
            cols = {k: np.concatenate([b[k], *(p[i] for p in self._b_parts)]) for i, k in enumerate(b)}
            if len(cols["ts"]) > 1 and (np.diff(cols["ts"]) < 0).any():
                o = np.argsort(cols["ts"], kind="stable")
                cols = {k: v[o] for k, v in cols.items()}
            self._hist = pd.DataFrame(cols)
            self._hist_len = self._bound()
        return self._hist

    def _history_keys(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The binding history as (pid-fd key, ts, handle) arrays, for ``asof``."""
        h = self.history()
        if self._hist_keys is None or self._hist_keys[0] is not h:
            self._hist_keys = (h, _pid_fd_key(h["pid"].to_numpy(np.int64), h["fd"].to_numpy(np.int64)),
                               h["ts"].to_numpy(np.int64), h["handle"].to_numpy(np.int64))
        return self._hist_keys[1:]

    def settle(self, floor: int, pin_tid=(), pin_fd=(), pin_ts=(), compact: bool = True) -> None:
        """Bound the binding history by the fds alive, not by how many were ever opened.

        The caller promises that every later query (``resolve``) is either at ``ts >= floor`` or one
        of the pins (tid, fd, ts: the syscalls still open). Later snapshots read before ``floor``
        are resolved now, closed opened handles are folded (``_reclaim``), then the history is
        compacted (``_compact``). Every allowed query resolves as it would on the whole history."""
        self._resolve_snapshot_names(floor)
        pending = self._snap_names  # read at or after floor: their t0 may be before it
        if self._dying:
            self._reclaim(min((t0 for t0, *_ in pending), default=None))
        if compact and self._bound() >= self.settle_min:  # else little to gain yet
            self._compact(floor, pd.DataFrame({
                "pid": np.concatenate([self.pids_of(np.asarray(pin_tid, dtype=np.int64)),
                                       np.array([x[2] for x in pending], dtype=np.int64)]),
                "fd": np.concatenate([np.asarray(pin_fd, dtype=np.int64), np.array([x[3] for x in pending], dtype=np.int64)]),
                "ts": np.concatenate([np.asarray(pin_ts, dtype=np.int64), np.array([x[0] for x in pending], dtype=np.int64)])}))

    def _resolve_snapshot_names(self, floor: int) -> None:
        """Later snapshots read before ``floor``: names of files and devices are applied now (not IPC,
        for good); IPC names are kept for ``finish``, their handles given a resource of their own."""
        names = self._snap_names
        j = 0
        while j < len(names) and names[j][1] < floor:
            j += 1
        if not j:
            return
        arr = np.array([(t0, ts, pid, fd) for t0, ts, pid, fd, _ in names[:j]], dtype=np.int64)
        at_ts = self.resolve(arr[:, 2], arr[:, 3], arr[:, 1]).tolist()
        at_t0 = self.resolve(arr[:, 2], arr[:, 3], arr[:, 0]).tolist()
        # the fd must name the same handle over the whole read (t0..ts), else it changed meanwhile
        for (_t0, _ts, pid, fd, target), h, h0 in zip(names[:j], at_ts, at_t0):
            if h < 0 or h != h0:
                continue
            hd = self.handles[h]
            if rid_from_snapshot(target) is None:  # a file, a device...: not IPC, for good
                if hd.res is None and hd.origin is Origin.OPEN and hd.id >= 0:
                    hd.res = _FILE
                elif hd.resource is not None and hd.resource.kind is None:
                    hd.resource.kind = "other"
            else:
                self._own_res(hd)  # (its own resource, named at finish: never reclaimed)
                self._snap_named[(pid, fd, target, h)] = None
        del names[:j]

    def _compact(self, floor: int, pins: pd.DataFrame) -> None:
        """Of the bindings before ``floor`` keep only the last of each (pid, fd) and those a pin
        (pid, fd, ts) resolves to; a closed fd left with no other binding is dropped (it resolves
        to -1 as an fd never bound does)."""
        h = self.history()
        ts = h["ts"].to_numpy(np.int64)
        old = ts < floor
        if not old.any():
            return
        key = _pid_fd_key(h["pid"].to_numpy(np.int64), h["fd"].to_numpy(np.int64))
        before = np.flatnonzero(old)
        keep = np.zeros(len(h), dtype=bool)
        rev = before[::-1]
        keep[rev[first_of_each([key[rev]])]] = True  # the last binding of each fd
        last = keep.copy()
        p_ts, p_fd = pins["ts"].to_numpy(np.int64), pins["fd"].to_numpy(np.int64)
        m = (p_ts < floor) & (p_fd >= 0)
        pinned = np.zeros(len(h), dtype=bool)
        if m.any():
            j = asof(_pid_fd_key(pins["pid"].to_numpy(np.int64)[m], p_fd[m]), p_ts[m], key[before], ts[before])
            pinned[before[j[j >= 0]]] = True
            keep |= pinned
        # a closed fd's last binding is needed only if an earlier binding of it stays (a pin's)
        closed_last = np.flatnonzero(last & (h["handle"].to_numpy() == -1) & ~pinned)
        if len(closed_last):
            keep[closed_last[~np.isin(key[closed_last], key[pinned])]] = False
        keep |= ~old
        k = np.flatnonzero(keep)
        self._base = {c: h[c].to_numpy(dtype=np.int64)[k] for c in ("pid", "fd", "ts", "handle")}
        self._b_pid, self._b_fd, self._b_ts, self._b_h = [], [], [], []
        self._b_parts, self._b_n = [], 0
        self._hist = pd.DataFrame(self._base)
        self._hist_len = 0

    @staticmethod
    def _foldable(h: Handle) -> bool:
        """An opened handle (not a sentinel) that no snapshot named as IPC and no evidence made its own."""
        return h.id >= 0 and h.origin is Origin.OPEN and h.res in (None, _FILE)

    def _reclaim(self, before: int | None) -> None:
        """Opened handles that no fd names any more (since before ``before``, where a snapshot not
        resolved yet began its read) and that no snapshot named: what the path was is never
        learnt now, so they all become one shared unnamed handle (files opened by the million
        cost nothing once closed)."""
        n = len(self._dying)
        if before is not None:
            n = next((i for i, (ts, _) in enumerate(self._dying) if ts >= before), n)
        for _ts, hid in self._dying[:n]:
            h = self.handles[hid]
            if h.refs <= 0 and self._foldable(h):
                self.handles[hid] = _CLOSED_OPENED if h.res is None else _CLOSED_FILE
                self.reclaimed += 1
        del self._dying[:n]

    def pids_of(self, tids: np.ndarray) -> np.ndarray:
        tids = np.asarray(tids, dtype=np.int64)
        if not len(tids):
            return tids
        inv, uniq = pd.factorize(tids)  # (a hash: no sort of the rows)
        return np.fromiter((self.tgid(int(t)) for t in uniq), dtype=np.int64, count=len(uniq))[inv]

    def resolve(self, tid: np.ndarray, fd: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Handle id bound to each (task, fd) at ``ts``: >= 0 a handle, -1 no fd known, -2 uncertain
        after exec. Call after feeding every lifecycle record up to the largest ``ts``."""
        n = len(ts)
        out = np.full(n, -1, dtype=np.int64)
        if n and self.exec_unseen:
            out[np.asarray(fd) >= 0] = -3
            return out
        if n == 0 or not (self._bound() or len(self._base["ts"])):
            return out
        fd = np.asarray(fd, dtype=np.int64)
        sel = np.flatnonzero(fd >= 0)
        if not len(sel):
            return out
        hk, hts, hh = self._history_keys()
        j = asof(_pid_fd_key(self.pids_of(np.asarray(tid)[sel]), fd[sel]), np.asarray(ts, dtype=np.int64)[sel],
                 hk, hts)
        ok = j >= 0
        out[sel[ok]] = hh[j[ok]]
        if self.exec_unseen:  # no binding can be trusted: an unseen exec may have closed it
            out[np.asarray(fd) >= 0] = -3
        return out

    def bind_sk(self, handle_ids: np.ndarray, sks: np.ndarray) -> None:
        """Sock tracepoints inside a syscall on a handle: that handle's socket has this ``sk``."""
        for h, sk in set(zip(handle_ids.tolist(), sks.tolist())):
            sk &= U64  # the trace's pointers come as int64; /proc/net/unix's are unsigned
            if h < 0 or sk == 0:
                continue
            r = self._own_res(self.handles[h])
            if r is None:
                continue
            if r.kind in (None, "other"):
                r.kind = "unix"
            r.sks.add(sk)

    def link_peer(self, handle_ids: np.ndarray, receiver_sks: np.ndarray, ts: np.ndarray) -> None:
        """sk_data_ready(receiver) inside a send on a connected stream/seqpacket socket: the peer.
        ``ts``: the sends' times; a receiver address several sockets had in turn (reused once freed)
        is the one alive then (created before, its last fd not closed yet)."""
        owners = self._sk_owners()
        for h, sk, t in set(zip(handle_ids.tolist(), receiver_sks.tolist(), ts.tolist())):
            if h < 0:
                continue
            r = self.handles[h].resource
            if r is None or r.peer is not None:
                continue
            other = _alive_at(owners.get(sk & U64, []), t)
            if other is None:
                key = (h, sk & U64)
                self._unlinked[key] = min(t, self._unlinked.get(key, t))
                continue
            if other is not r and r.kind in ("unix_stream", "unix_seqpacket"):
                r.peer, other.peer = other, r

    def _sk_owners(self) -> dict[int, list[Resource]]:
        out: dict[int, list[Resource]] = {}
        for r in self.resources:
            if r.merged_into is None:
                for sk in r.sks:
                    out.setdefault(sk, []).append(r)
        return out

    def _sk_index(self) -> dict[int, Resource]:
        """sk -> the last resource that had it (no time: datagram destinations, ``resource_of_sk``)."""
        return {sk: rs[-1] for sk, rs in self._sk_owners().items()}

    def resource_of_sk(self, sk: int) -> Resource | None:
        return self._sk_index().get(sk & U64)

    # --- the end --------------------------------------------------------------------------------
    def finish(self) -> None:
        """Apply the evidence that only the whole capture has: sk -> inode from /proc/net/unix,
        later snapshots naming unnamed handles, resources met twice merged by identity.

        A kernel sock address is reused once its socket is freed (the slab hands the same object to
        the next socket: socat's next connection got the address of redis-server's socket of the
        one before, closed a millisecond earlier). So a /proc/net/unix line names a resource's sk only
        when it was read while the resource lived: from its creation (less 5 ms: the read's time is
        not exact) until its last fd was closed, when the trace saw that close (a resource some fd
        still names, or whose process exited without closing it, is taken as alive to the end)."""
        if self._unlinked:  # every socket's address is known now
            pending, self._unlinked = self._unlinked, {}
            hs, sks, ts = zip(*((h, sk, t) for (h, sk), t in pending.items()))
            self.link_peer(np.array(hs, np.int64), np.array(sks, np.uint64), np.array(ts, np.int64))
            self.notes["sends whose receiver socket is not known"] += len(self._unlinked)
        alive = {id(h.res) for h in self.handles if h.refs > 0 and h.res is not None}
        for r in self.resources:
            end = r.closed_ts if r.closed_ts is not None and id(r) not in alive else None
            for sk in sorted(r.sks):
                inos = {ino for (_ts, ino, _p, _t) in self.sk_inodes.get(sk, [])
                        if _ts >= r.since - 5_000_000 and (end is None or _ts <= end)}
                if len(inos) == 1 and r.inode is None:
                    r.inode = inos.pop()
                    r.evidence.add("sk in /proc/net/unix")
                elif len(inos) > 1:
                    self.notes["sk pointers reused by several sockets (not used)"] += 1
        # later snapshots: name what the trace left unnamed, where the binding spans the snapshot
        self.settle(np.iinfo(np.int64).max, compact=False)  # every snapshot name resolved (t0..ts)
        for pid, fd, target, hid in self._snap_named:
            rid = rid_from_snapshot(target)
            h = self.handles[hid]
            r = self._own_res(h)
            if r is None:
                continue
            kind, ino = rid.split(":")  # (names of files and devices were applied as they came)
            ino = int(ino)
            if r.inode is None:
                r.inode = ino
                r.evidence.add("later snapshot")
                if r.kind is None or (kind == "fifo" and r.kind in (None, "other")):
                    r.kind = kind
                if kind == "fifo":
                    m = _SNAP_RE.match(target)
                    r.path = m.group(3) if m else None
            elif r.inode != ino:
                self.conflicts.append(f"pid {pid} fd {fd}: snapshot {rid}, trace {r.rid()}")
        # unix details from /proc/net/unix; merge resources that turned out to be one object
        by_rid: dict[str, Resource] = {}
        for r in self.resources:
            if r.kind is not None and r.kind.startswith(("unix", "socket")) and r.inode is not None \
                    and r.inode in self.inode_info:
                path, typ = self.inode_info[r.inode]
                r.kind = SOCK_TYPES.get(typ, "unix")
                if path and not r.path:
                    r.path = path
            elif r.kind == "unix" and r.inode is not None and not r.sks and self.inode_info \
                    and r.evidence <= {"snapshot", "later snapshot"}:
                # a socket:[N] in an fd table that no /proc/net/unix read listed and no AF_UNIX
                # tracepoint touched: a network (or other family) socket, not IPC
                r.kind = "socket"
                self.notes["sockets in fd tables that are not Unix sockets"] += 1
            rid = r.rid()
            if rid is None or r.inode is None:
                continue
            first = by_rid.get(rid)
            if first is None:
                by_rid[rid] = r
            elif first is not r:
                r.merged_into = first
                first.sks |= r.sks
                first.evidence |= r.evidence
                if first.peer is None and r.peer is not None:
                    first.peer = r.peer
                if first.kind in (None, "unix") and r.kind not in (None, "unix"):
                    first.kind = r.kind
                if not first.path:
                    first.path = r.path
                if r.capacity is not None and first.capacity is None:
                    first.capacity = r.capacity
        # accepted sockets carry their listener's address, as the kernel reports them
        for r in self.resources:
            if r.listener is not None and not r.path:
                r.path = r.listener.root().path
        # peers of stream sockets: both sides
        for r in self.resources:
            if r.merged_into is None and r.peer is not None:
                p = r.peer.root()
                r.peer = p
                if p.peer is None:
                    p.peer = r

    def rids(self) -> "Mapping[int, str | None]":
        """handle id -> rid (None: not an IPC resource), read on demand (after ``finish``)."""
        return _Rids(self.handles)

    def live_resources(self) -> list[Resource]:
        return [r for r in self.resources if r.merged_into is None]

    def reason_of(self, hid: int) -> Reason | None:
        """Why I/O on this handle id has no resource (None: it has one)."""
        if hid == -1:
            return Reason.UNKNOWN_FD
        if hid == -2:
            return Reason.AFTER_EXEC
        if hid == -3:
            return Reason.NO_EXEC_EVENTS
        h = self.handles[hid]
        r = h.resource
        if r is None:
            return h.reason or Reason.UNKNOWN_FD
        if r.kind is None:
            return h.reason or Reason.OPENED_UNNAMED
        if not r.is_ipc:
            return Reason.NOT_IPC
        return None


class _Rids(Mapping):
    """handle id -> rid over the handle list, without a dict of a million entries."""

    def __init__(self, handles: list[Handle]):
        self._h = handles

    def __getitem__(self, hid: int) -> str | None:
        if not isinstance(hid, (int, np.integer)) or not 0 <= hid < len(self._h):
            raise KeyError(hid)
        return self._h[hid].rid

    def __len__(self) -> int:
        return len(self._h)

    def __iter__(self):
        return iter(range(len(self._h)))


def _pid_fd_key(pid: np.ndarray, fd: np.ndarray) -> np.ndarray:
    """(pid, fd) as one int64 (fds below 2**32; pid -1, unknown, stays apart)."""
    return (np.asarray(pid, dtype=np.int64) << 32) | (np.asarray(fd, dtype=np.int64) & 0xFFFFFFFF)


def _alive_at(owners: list[Resource], t: int) -> Resource | None:
    """Of the resources that had one sk address, the one alive at ``t`` (the latest created of
    those created by then and not closed before); when none of several was, None; an address
    never seen reused is its one socket's, unless that socket was closed before ``t`` (then the
    address is already another socket's, not known yet: None)."""
    alive = [r for r in owners if r.since <= t and (r.closed_ts is None or t <= r.closed_ts)]
    if alive:
        return max(alive, key=lambda r: r.since)
    if len(owners) == 1 and (owners[0].closed_ts is None or t <= owners[0].closed_ts):
        return owners[0]
    return None


def load_saved_tgids(path) -> dict[int, int]:
    """tid -> tgid from a tracefs ``saved_tgids`` file (``TID TGID`` per line)."""
    out: dict[int, int] = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1] != "0" and parts[0].isdigit() and parts[1].isdigit():
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


def placed(meta: dict[str, Any], rec: dict[str, Any]) -> tuple[int, dict, int] | None:
    """(ts when written, record, ts when the read began) of a snapshot record, None if not one."""
    if rec.get("kind") not in ("fds", "unix"):
        return None
    if rec.get("when") == "start":
        ts = t0 = -1
    elif rec.get("t0_ts") is not None and rec.get("t1_ts") is not None:
        t0, ts = int(rec["t0_ts"]), int(rec["t1_ts"])  # read on the trace clock itself
    else:
        ts = wall_to_ts(meta, float(rec.get("ts_wall", 0)))
        ts = -1 if ts is None else ts
        t0 = wall_to_ts(meta, float(rec.get("t0_wall", rec.get("ts_wall", 0))))
        t0 = ts if t0 is None else min(t0, ts)
    return ts, rec, t0


def snapshot_times(meta: dict[str, Any], records: Iterable[dict[str, Any]]) -> list[tuple[int, dict, int]]:
    """proc.jsonl records placed on the trace clock, in order (start snapshots before everything):
    (ts when written, record, ts when the read began). Records carry ``t0_ts``/``t1_ts`` read from
    the trace clock around the /proc read; older ones only wall times, mapped linearly (to ~1 ms)."""
    out = [x for x in (placed(meta, rec) for rec in records) if x is not None]
    out.sort(key=lambda x: x[0])
    return out


_T1_TS = re.compile(r'"t1_ts":\s*(-?\d+)')


def _in_trace_clock_order(path) -> bool:
    """Does every line of this jsonl file carry a ``t1_ts``, in non-decreasing order? (one cheap
    pass with a regex, no JSON parsing)"""
    last = None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if not line.strip():
                    continue
                m = _T1_TS.search(line)
                if m is None:
                    return False
                v = int(m.group(1))
                if last is not None and v < last:
                    return False
                last = v
    except OSError:
        return True  # no file: nothing to order
    return True


def snapshot_stream(meta: dict[str, Any], cap) -> tuple[list[tuple[int, dict, int]], Iterator[tuple[int, dict, int]]]:
    """The capture's snapshot records in the order of ``snapshot_times`` without holding them all:
    (proc.jsonl's records, sorted: start snapshots, appearances and Unix socket tables, few), and an
    iterator over all of them merged in time order. opens.jsonl (one line per fd opened, written by
    one worker as it goes: by the million on open-heavy workloads) is streamed when it is already in
    trace-clock order, else read whole and sorted, like proc.jsonl."""
    proc = snapshot_times(meta, cap.proc_records("proc"))
    if _in_trace_clock_order(cap.opens_path):
        opens = (x for x in (placed(meta, rec) for rec in cap.proc_records("opens")) if x is not None)
    else:
        opens = iter(snapshot_times(meta, cap.proc_records("opens")))
    return proc, heapq.merge(proc, opens, key=lambda x: x[0])
