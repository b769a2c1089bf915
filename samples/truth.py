"""Ground truth shared by the samples: each task counts its own I/O from the syscalls' return
values, describes the resources its fds name, and the sample's main process merges everything into
one truth JSON (schema in samples/README.md).

A task (process or thread) makes a :class:`Task`, does its I/O through it (``write_all``, ``recv``,
...) and, in a forked child, ``report()``s its record as a JSON file into the truth directory; a
thread of the main process hands ``record()`` to :meth:`Truth.add`. Reports go to regular files, never
to a pipe or socket, so the side channel adds no IPC resource to a trace.

Socket peers: each side only knows its own socket's inode, so both sides ``watch(sock, link=KEY)``
with the same KEY (e.g. the client's pid); :meth:`Truth.build` pairs the two resources of each key.

    truth = Truth("fanin")
    pid = fork(writer, truth.dir, wfd)     # the child does Task("writer").write_all(...).report(dir)
    ...
    wait_all([pid]); truth.write(path)
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
import traceback
from typing import Any, Callable, Iterable

# Which op a syscall is: read/write on any fd, send/recv the socket calls.
OPS = {"write": "write", "writev": "write", "read": "read", "readv": "read",
       "sendto": "send", "sendmsg": "send", "recvfrom": "recv", "recvmsg": "recv"}
KINDS = {"pipe", "fifo", "unix_stream", "unix_dgram", "unix_seqpacket"}
SOCK_KINDS = {socket.SOCK_STREAM: "unix_stream", socket.SOCK_DGRAM: "unix_dgram",
              socket.SOCK_SEQPACKET: "unix_seqpacket"}


# --- resources ------------------------------------------------------------------------------------
def sock_path(name: Any) -> str | None:
    """A Unix socket's getsockname() as the schema's ``path``: a path, "@name" (abstract) or None."""
    if isinstance(name, bytes):
        if not name:
            return None
        if name[0] == 0:
            return "@" + name[1:].decode("utf-8", "backslashreplace")
        return name.decode("utf-8", "backslashreplace")
    return name or None


def describe(obj: int | socket.socket) -> dict[str, Any]:
    """The resource an fd (or socket object) names now: ``{rid, kind, inode, path, peer}``."""
    fd = obj if isinstance(obj, int) else obj.fileno()
    st = os.fstat(fd)
    ino = st.st_ino
    if stat.S_ISFIFO(st.st_mode):
        link = os.readlink(f"/proc/self/fd/{fd}")
        if link.startswith("pipe:["):
            return {"rid": f"pipe:{ino}", "kind": "pipe", "inode": ino, "path": None, "peer": None}
        return {"rid": f"fifo:{ino}", "kind": "fifo", "inode": ino, "path": link, "peer": None}
    if stat.S_ISSOCK(st.st_mode):
        sock = obj if isinstance(obj, socket.socket) else socket.socket(fileno=fd)
        try:
            if sock.family != socket.AF_UNIX:
                raise ValueError(f"fd {fd} is not a Unix socket")
            kind = SOCK_KINDS[sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)]
            path = sock_path(sock.getsockname())
        finally:
            if sock is not obj:
                sock.detach()  # the fd stays open: it belongs to the caller
        return {"rid": f"unix:{ino}", "kind": kind, "inode": ino, "path": path, "peer": None}
    raise ValueError(f"fd {fd} is neither a pipe, a FIFO nor a socket")


def _fd(obj: int | socket.socket) -> int:
    return obj if isinstance(obj, int) else obj.fileno()


# --- one task's own count -------------------------------------------------------------------------
class Task:
    """What one thread did, counted by itself. ``calls`` counts syscalls that returned >= 0 (a read
    returning 0 at EOF is a call of 0 bytes); EINTR retries made by Python are not seen, nor counted
    by the tests (they skip negative returns)."""

    def __init__(self, role: str):
        self.tid = threading.get_native_id()
        self.pid = os.getpid()
        self.ppid = os.getppid()
        self.role = role
        self.fds: dict[int, str] = {}  # fd -> rid it names now
        self.resources: dict[str, dict[str, Any]] = {}
        self.links: dict[str, str] = {}  # rid -> link key
        self.io: dict[tuple, list[int]] = {}  # (fd, rid, syscall, to) -> [calls, bytes]

    # fds and resources
    def watch(self, obj: int | socket.socket, link: str | None = None) -> str:
        """Describe the resource ``obj`` names now (fds are also watched on first use); ``link`` pairs
        a socket with the peer watched under the same key, in whatever task."""
        res = describe(obj)
        self.fds[_fd(obj)] = res["rid"]
        self.resources.setdefault(res["rid"], res)
        if link is not None:
            self.links[res["rid"]] = link
        return res["rid"]

    def rid(self, obj: int | socket.socket) -> str:
        fd = _fd(obj)
        return self.fds[fd] if fd in self.fds else self.watch(fd)

    def forget(self, obj: int | socket.socket) -> None:
        self.fds.pop(_fd(obj), None)

    def close(self, obj: int | socket.socket) -> None:
        self.forget(obj)
        if isinstance(obj, int):
            os.close(obj)
        else:
            obj.close()

    def dup2(self, fd: int, fd2: int) -> int:
        """dup2 (closes what ``fd2`` named)."""
        self.forget(fd2)
        os.dup2(fd, fd2)
        return fd2

    def count(self, obj: int | socket.socket, syscall: str, nbytes: int, to: str | None = None) -> None:
        assert syscall in OPS, syscall
        key = (_fd(obj), self.rid(obj), syscall, to)
        acc = self.io.setdefault(key, [0, 0])
        acc[0] += 1
        acc[1] += nbytes

    # I/O, counted from return values; the *_all variants loop on short writes.
    def write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            self.count(fd, "write", n)
            view = view[n:]

    def writev_all(self, fd: int, bufs: list[bytes]) -> None:
        views = [memoryview(b) for b in bufs if b]
        while views:
            n = os.writev(fd, views)
            self.count(fd, "writev", n)
            views = _advance(views, n)

    def read(self, fd: int, size: int) -> bytes:
        data = os.read(fd, size)
        self.count(fd, "read", len(data))
        return data

    def readv(self, fd: int, sizes: list[int]) -> bytes:
        bufs = [bytearray(s) for s in sizes]
        n = os.readv(fd, bufs)
        self.count(fd, "readv", n)
        return b"".join(bufs)[:n]

    def send_all(self, sock: socket.socket, data: bytes) -> None:
        """sock.send() in a loop: glibc's send() is the sendto syscall on x86_64."""
        view = memoryview(data)
        while view:
            n = sock.send(view)
            self.count(sock, "sendto", n)
            view = view[n:]

    def sendto(self, sock: socket.socket, data: bytes, addr: Any, to: str | None = None) -> int:
        """One datagram to ``addr``; ``to`` is the rid of the socket bound there."""
        n = sock.sendto(data, addr)
        self.count(sock, "sendto", n, to)
        return n

    def sendmsg_all(self, sock: socket.socket, bufs: list[bytes]) -> None:
        views = [memoryview(b) for b in bufs if b]
        while views:
            n = sock.sendmsg(views)
            self.count(sock, "sendmsg", n)
            views = _advance(views, n)

    def recv(self, sock: socket.socket, size: int) -> bytes:
        """sock.recv(): glibc's recv() is the recvfrom syscall on x86_64."""
        data = sock.recv(size)
        self.count(sock, "recvfrom", len(data))
        return data

    def recvfrom(self, sock: socket.socket, size: int) -> tuple[bytes, Any]:
        data, addr = sock.recvfrom(size)
        self.count(sock, "recvfrom", len(data))
        return data, addr

    def recvmsg(self, sock: socket.socket, size: int) -> bytes:
        data, _anc, _flags, _addr = sock.recvmsg(size)
        self.count(sock, "recvmsg", len(data))
        return data

    def recv_exactly(self, sock: socket.socket, size: int) -> bytes:
        """Stream sockets: recv until ``size`` bytes (b"" if EOF comes first, at a message boundary)."""
        buf = b""
        while len(buf) < size:
            chunk = self.recv(sock, size - len(buf))
            if not chunk:
                if buf:
                    raise EOFError(f"EOF after {len(buf)} of {size} bytes")
                return b""
            buf += chunk
        return buf

    # output
    def record(self, **extra: Any) -> dict[str, Any]:
        task = {"tid": self.tid, "pid": self.pid, "ppid": self.ppid, "role": self.role, **extra}
        io = []
        for (fd, rid, syscall, to), (calls, nbytes) in self.io.items():
            e = {"tid": self.tid, "fd": fd, "rid": rid, "op": OPS[syscall], "syscall": syscall,
                 "calls": calls, "bytes": nbytes}
            if to is not None:
                e["to"] = to
            io.append(e)
        return {"task": task, "resources": list(self.resources.values()), "links": self.links, "io": io}

    def report(self, truth_dir: str, **extra: Any) -> None:
        """Write this task's record into the truth directory (from a forked child)."""
        write_record(truth_dir, self.record(**extra))


def _advance(views: list[memoryview], n: int) -> list[memoryview]:
    while views and n >= len(views[0]):
        n -= len(views[0])
        views = views[1:]
    if views and n:
        views = [views[0][n:]] + views[1:]
    return views


def write_record(truth_dir: str, rec: dict[str, Any]) -> None:
    path = os.path.join(truth_dir, f"{rec['task']['tid']}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(rec, f)
    os.rename(path + ".tmp", path)


def bare_record(tid: int, pid: int, ppid: int, role: str, io: Iterable[dict[str, Any]] = (),
                resources: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """A record for a task that could not use :class:`Task` (e.g. an exec'd program)."""
    return {"task": {"tid": tid, "pid": pid, "ppid": ppid, "role": role}, "resources": list(resources),
            "links": {}, "io": [{"tid": tid, **e} for e in io]}


# --- processes ------------------------------------------------------------------------------------
def fork(fn: Callable[..., None], *args: Any) -> int:
    """Run ``fn(*args)`` in a forked child, which exits 0, or 1 with a traceback on stderr."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn(*args)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def wait_all(pids: Iterable[int]) -> None:
    bad = []
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            bad.append((pid, os.waitstatus_to_exitcode(status)))
    if bad:
        raise RuntimeError(f"children failed (pid, exit code): {bad}")


# --- the whole sample -----------------------------------------------------------------------------
class Truth:
    """Collects the records of all tasks of a sample and writes the truth JSON."""

    def __init__(self, sample: str):
        self.sample = sample
        self.pid = os.getpid()
        self.dir = tempfile.mkdtemp(prefix=f"ftraceipc-{sample}-truth-")
        self.records: list[dict[str, Any]] = []
        # a run ended early (Ctrl-C, a tracer's --duration, SIGTERM) leaves no directory behind
        atexit.register(self._remove)
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, self._on_term)

    def _remove(self) -> None:
        if os.getpid() == self.pid:  # forked children leave by os._exit, never through here
            shutil.rmtree(self.dir, ignore_errors=True)

    def _on_term(self, signum: int, _frame: Any) -> None:
        """SIGTERM: the directory goes, then the process dies of the signal as it would have
        (a forked child inherits this handler, and dies the same way)."""
        self._remove()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def add(self, rec: dict[str, Any]) -> None:
        self.records.append(rec)

    def collect(self) -> None:
        for name in sorted(os.listdir(self.dir)):
            path = os.path.join(self.dir, name)
            if name.endswith(".json"):
                with open(path) as f:
                    self.records.append(json.load(f))
            os.unlink(path)
        os.rmdir(self.dir)

    def build(self, **extra: Any) -> dict[str, Any]:
        tasks: dict[int, dict[str, Any]] = {}
        resources: dict[str, dict[str, Any]] = {}
        links: dict[str, set[str]] = {}
        io: list[dict[str, Any]] = []
        for rec in self.records:
            t = rec["task"]
            if t["tid"] in tasks:
                raise ValueError(f"two records for tid {t['tid']}")
            tasks[t["tid"]] = t
            for r in rec["resources"]:
                old = resources.setdefault(r["rid"], dict(r))
                if {k: old[k] for k in ("kind", "inode", "path")} != {k: r[k] for k in ("kind", "inode", "path")}:
                    raise ValueError(f"{r['rid']} described two ways: {old} vs {r}")
            for rid, key in rec["links"].items():
                links.setdefault(key, set()).add(rid)
            io += rec["io"]
        for key, rids in links.items():
            if len(rids) != 2:
                raise ValueError(f"link {key!r} joins {sorted(rids)}, not two sockets")
            a, b = sorted(rids)
            for x, y in ((a, b), (b, a)):
                if resources[x]["peer"] not in (None, y):
                    raise ValueError(f"{x} linked to both {resources[x]['peer']} and {y}")
                resources[x]["peer"] = y
        order = sorted(tasks.values(), key=lambda t: (t["pid"] != self.pid, t["pid"], t["tid"]))
        rank = {t["tid"]: i for i, t in enumerate(order)}
        return {"sample": self.sample, "pid": self.pid, **extra, "tasks": order,
                "resources": sorted(resources.values(), key=lambda r: r["rid"]),
                "io": sorted(io, key=lambda e: rank.get(e["tid"], -1))}  # stable: a task's own order

    def write(self, path: str | None, **extra: Any) -> dict[str, Any]:
        """Collect the children's reports, build the truth, check it and write it (if ``path``)."""
        self.collect()
        truth = self.build(**extra)
        errors = validate(truth)
        if errors:
            raise ValueError("inconsistent truth:\n  " + "\n  ".join(errors))
        if path:
            with open(path, "w") as f:
                json.dump(truth, f, indent=1)
                f.write("\n")
        return truth


def options(args: Any) -> dict[str, Any]:
    """A sample's argparse options, for the truth's ``args`` (without the truth path itself)."""
    return {k: v for k, v in vars(args).items() if k != "truth"}


def summary(sample: str, text: str) -> None:
    print(f"{sample}: {text}", file=sys.stderr)


# --- checking a truth file ------------------------------------------------------------------------
def validate(truth: dict[str, Any]) -> list[str]:
    """Schema errors, then balance errors (every byte written into a resource was read out of it)."""
    errs: list[str] = []
    for k in ("sample", "pid", "tasks", "resources", "io"):
        if k not in truth:
            errs.append(f"missing key {k!r}")
    if errs:
        return errs
    tids = {}
    for t in truth["tasks"]:
        if not (isinstance(t.get("tid"), int) and isinstance(t.get("pid"), int) and isinstance(t.get("role"), str)):
            errs.append(f"bad task {t}")
            continue
        if t["tid"] in tids:
            errs.append(f"duplicate task tid {t['tid']}")
        tids[t["tid"]] = t
    pids = {t["pid"] for t in tids.values()}
    for t in tids.values():
        if t["pid"] not in tids:
            errs.append(f"task {t['tid']}: its process {t['pid']} is not a task")
    if truth["pid"] not in pids:
        errs.append(f"main pid {truth['pid']} is not a task")
    res = {}
    for r in truth["resources"]:
        rid, kind, ino = r.get("rid"), r.get("kind"), r.get("inode")
        if kind not in KINDS or not isinstance(ino, int) or ino <= 0:
            errs.append(f"bad resource {r}")
            continue
        prefix = {"pipe": "pipe", "fifo": "fifo"}.get(kind, "unix")
        if rid != f"{prefix}:{ino}":
            errs.append(f"resource {rid}: rid should be {prefix}:{ino}")
        if kind == "pipe" and r.get("path") is not None:
            errs.append(f"resource {rid}: a pipe has no path")
        if kind == "fifo" and not r.get("path"):
            errs.append(f"resource {rid}: a FIFO needs its path")
        if rid in res:
            errs.append(f"duplicate resource {rid}")
        res[rid] = r
    for r in res.values():
        peer = r.get("peer")
        if peer is None:
            continue
        if not r["kind"].startswith("unix_"):
            errs.append(f"{r['rid']}: only sockets have peers")
        elif peer not in res:
            errs.append(f"{r['rid']}: peer {peer} is not a resource")
        elif res[peer].get("peer") != r["rid"]:
            errs.append(f"{r['rid']}: peer {peer} does not point back (it says {res[peer].get('peer')})")
        elif res[peer]["kind"] != r["kind"]:
            errs.append(f"{r['rid']}: peer {peer} is a {res[peer]['kind']}")
    seen = set()
    for e in truth["io"]:
        key = (e.get("tid"), e.get("fd"), e.get("rid"), e.get("syscall"), e.get("to"))
        if key in seen:
            errs.append(f"duplicate io entry {key}")
        seen.add(key)
        if e.get("tid") not in tids:
            errs.append(f"io {key}: tid is not a task")
        if e.get("rid") not in res:
            errs.append(f"io {key}: rid is not a resource")
        if e.get("to") is not None and e["to"] not in res:
            errs.append(f"io {key}: 'to' is not a resource")
        if OPS.get(e.get("syscall")) != e.get("op"):
            errs.append(f"io {key}: op {e.get('op')!r} does not match syscall")
        if not (isinstance(e.get("fd"), int) and e["fd"] >= 0):
            errs.append(f"io {key}: bad fd")
        if not (isinstance(e.get("calls"), int) and e["calls"] > 0):
            errs.append(f"io {key}: calls must be > 0")
        if not (isinstance(e.get("bytes"), int) and e["bytes"] > 0):
            errs.append(f"io {key}: bytes must be > 0")
    if errs:
        return errs
    return balance(truth)


def balance(truth: dict[str, Any]) -> list[str]:
    """Bytes in = bytes out: into a pipe/FIFO and out of it; into a connected socket and out of its
    peer; datagrams sent ``to`` a socket and received on it (the samples read everything)."""
    res = {r["rid"]: r for r in truth["resources"]}
    inflow: dict[str, int] = {}
    outflow: dict[str, int] = {}
    for e in truth["io"]:
        r = res[e["rid"]]
        if e["op"] in ("write", "send"):
            if r["kind"] in ("pipe", "fifo"):
                dest = r["rid"]
            else:
                dest = e.get("to") or r["peer"]
            if dest is None:
                return [f"io {e}: data sent nowhere (no peer and no 'to')"]
            inflow[dest] = inflow.get(dest, 0) + e["bytes"]
        else:
            outflow[e["rid"]] = outflow.get(e["rid"], 0) + e["bytes"]
    return [f"{rid}: {inflow.get(rid, 0)} bytes in, {outflow.get(rid, 0)} bytes out"
            for rid in sorted(set(inflow) | set(outflow)) if inflow.get(rid, 0) != outflow.get(rid, 0)]


# Every sample and variant, as (script name without .py, extra arguments): what the tests run.
SAMPLES: list[tuple[str, list[str]]] = [
    ("pipeline", []),
    ("fanin", []),
    ("unix_server", []),
    ("socketpair_pingpong", []),
    ("unix_dgram", []),
    ("unix_dgram", ["--abstract"]),
    ("fifo", []),
    ("shortlived", []),
    ("shortlived", ["--program", "sh"]),
    ("fd_reuse", []),
    ("seqpacket", []),
    ("full_buffer", []),
    ("herd", []),
    ("wake_then_block", []),
    ("relay", []),
    ("ring", []),
    ("xcpu", []),
    ("xcpu", ["--same-cpu"]),
    ("late_wakeup", []),
    ("late_wakeup", ["--no-hog"]),
]
