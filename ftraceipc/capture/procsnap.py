"""/proc snapshots: fd tables of processes and the kernel's table of Unix sockets.

Syscall tracepoints carry fd numbers, not resources; the snapshots give each fd its inode at the
moments we can look (start, when a process appears, end), so the model can name fds opened before
tracing started. Whole fd tables are recorded (with close-on-exec flags), so that the model knows
which fd numbers are free; /proc/net/unix is read at every poll. /proc/net/unix is read with ``kptr_restrict`` = 1 for the instant of the read, so
root sees the real ``sk`` pointers that the sock tracepoints carry (restored right after).
"""

from __future__ import annotations

import json
import os
import re
import select
import stat
import threading
import time
from pathlib import Path
from typing import IO, Iterable

KPTR = Path("/proc/sys/kernel/kptr_restrict")


class TraceClock:
    """The trace clock's "now", read from an instance's ``per_cpu/cpu0/stats`` (one open fd, pread),
    so that snapshot records carry trace timestamps (``t0_ts``, ``t1_ts``) around each /proc read:
    wall-clock times map onto the trace clock only to within about a millisecond, and an fd reused
    within that millisecond would be named wrongly."""

    def __init__(self, stats_path: str | os.PathLike | None):
        self.fd = -1
        if stats_path is not None:
            try:
                self.fd = os.open(stats_path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self.fd = -1

    def now(self) -> int | None:
        if self.fd < 0:
            return None
        try:
            text = os.pread(self.fd, 4096, 0).decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("now ts:"):
                whole, dot, frac = line.split(":", 1)[1].strip().partition(".")
                try:
                    if not dot:  # counter, uptime and x86-tsc clocks print raw integers
                        return int(whole)
                    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])
                except ValueError:
                    return None
        return None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def list_pids() -> set[int]:
    return {int(d) for d in os.listdir("/proc") if d.isdigit()}


def read_stat(pid: int) -> tuple[str, int] | None:
    """(comm, ppid) from /proc/PID/stat, or None if the process is gone."""
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    lp, rp = s.find("("), s.rfind(")")
    comm = s[lp + 1:rp]
    rest = s[rp + 2:].split()
    return comm, int(rest[1])


O_CLOEXEC = 0o2000000


def read_links(pid: int) -> dict[str, str] | None:
    """The fd table's link targets only (fd → ``readlink``), None if the process is gone: what the
    polls compare with the last round before reading the whole table (``read_fds``: the fdinfo of
    every fd, a stat of every path), a quarter of its cost."""
    base = f"/proc/{pid}/fd"
    try:
        names = os.listdir(base)
    except OSError:
        return None
    out: dict[str, str] = {}
    for fd in names:
        try:
            out[fd] = os.readlink(f"{base}/{fd}")
        except OSError:
            pass
    return out


def read_fds(pid: int, links: dict[str, str] | None = None) -> tuple[dict[str, str], list[int]] | None:
    """The whole fd table: fd → what it names (``pipe:[INODE]``, ``socket:[INODE]``,
    ``fifo:[INODE]:PATH``, or the link target for anything else), and the fds marked close-on-exec.
    Every fd is listed, so that the model knows which fd numbers are free. ``links``: the table's
    link targets already read (``read_links``), else they are read here."""
    if links is None:
        links = read_links(pid)
        if links is None:
            return None
    base = f"/proc/{pid}/fd"
    out: dict[str, str] = {}
    cloexec: list[int] = []
    for fd, target in links.items():
        if target.startswith("/"):
            try:
                st = os.stat(f"{base}/{fd}")
                if stat.S_ISFIFO(st.st_mode):
                    target = f"fifo:[{st.st_ino}]:{target}"
            except OSError:
                pass
        out[fd] = target
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("flags:"):
                        if int(line.split()[1], 8) & O_CLOEXEC:
                            cloexec.append(int(fd))
                        break
        except (OSError, ValueError):
            pass
    return out, sorted(cloexec)


def read_unix_sockets() -> list[dict]:
    """Parse /proc/net/unix, with real kernel addresses when we may raise kptr_restrict."""
    old = None
    try:
        old = KPTR.read_text().strip()
        if old == "0":
            KPTR.write_text("1")
    except OSError:
        old = None
    try:
        lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    except OSError:
        lines = []
    finally:
        if old == "0":
            try:
                KPTR.write_text(old)
            except OSError:
                pass
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) < 7:
            continue
        out.append({
            "num": parts[0].rstrip(":"),
            "refcount": int(parts[1], 16),
            "flags": int(parts[3], 16),
            "type": int(parts[4], 16),
            "state": int(parts[5], 16),
            "inode": int(parts[6]),
            "path": parts[7] if len(parts) > 7 else None,
        })
    return out


class UnixTable:
    """/proc/net/unix for the polls, re-read cheaply: its text as it is (kernel addresses hashed,
    about 30 us) is compared with the last read's, and only a change reads it again with the real
    addresses (``read_unix_sockets``: two writes of ``kptr_restrict`` more, five times the cost).
    An unchanged table is not written again: each socket's line was recorded while it lived,
    at the first read that showed it, and that is all the model uses (``FdModel.finish``)."""

    PATH = "/proc/net/unix"

    def __init__(self) -> None:
        self._last: bytes | None = None

    def _text(self) -> bytes | None:
        try:
            with open(self.PATH, "rb") as f:
                return f.read()
        except OSError:
            return None

    def read(self) -> list[dict]:
        """The whole table, with real addresses (a new baseline)."""
        self._last = self._text()
        return read_unix_sockets()

    def changed(self) -> list[dict] | None:
        """The whole table if it changed since the last read, else None."""
        text = self._text()
        if text is not None and text == self._last:
            return None
        self._last = text
        return read_unix_sockets()


def read_unix_paths() -> list[dict]:
    """The bound Unix sockets of /proc/net/unix (inode, type, path), without kernel addresses."""
    try:
        lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) > 7:
            out.append({"inode": int(parts[6]), "type": int(parts[4], 16), "path": parts[7]})
    return out


class ProcWatcher(threading.Thread):
    """Writes snapshots to proc.jsonl: all processes at start and end, new ones as they appear."""

    def __init__(self, out: IO[str], interval: float = 0.01, root_pids: Iterable[int] = (),
                 exclude: Iterable[int] = (), duty: float = 0.025, clock: "TraceClock | None" = None,
                 marks=None):
        """``marks``: a ``reader.Watermarks`` with a ``proc`` slot (``ftraceipc live``): after each
        round the file is flushed and the slot says up to when (trace clock) it holds every record,
        so a follower applies each record at its time, never after the events that follow it."""
        super().__init__(name="ftraceipc-proc", daemon=True)
        self.out = out
        self.marks = marks
        self.interval = interval
        self.root_pids = set(root_pids)
        self.tree: set[int] = set(self.root_pids)
        self.exclude = set(exclude)
        self.known: set[int] = set()
        self.duty = duty
        self.clock = clock or TraceClock(None)
        self._last_fds: dict[int, dict[str, str]] = {}
        self._last_links: dict[int, dict[str, str]] = {}  # the polls' cheap check (read_links)
        self._unix = UnixTable()
        self._stopping = False
        self._wake_w = -1  # the write end of run()'s pipe: stop() wakes it (a poll() costs half an Event.wait())
        self._lock = threading.Lock()
        self.priority = "normal"
        self.error: BaseException | None = None
        self.cpu_s: float | None = None  # this thread's CPU seconds while it polled
        self.rounds = 0  # polls made

    def _emit(self, rec: dict) -> None:
        rec["ts_wall"] = time.time()
        with self._lock:
            self.out.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def snapshot(self, pids: Iterable[int], when: str) -> None:
        for pid in sorted(pids):
            if pid in self.exclude:
                continue
            st = read_stat(pid)
            if st is None:
                continue
            comm, ppid = st
            if ppid in self.tree and pid not in self.tree:
                self.tree.add(pid)
                self._emit({"kind": "tree", "pid": pid, "ppid": ppid})
            t0, c0 = time.time(), self.clock.now()
            got = read_fds(pid)
            if got is None:
                continue
            fds, cloexec = got
            self._last_fds[pid] = fds
            self._emit({"kind": "fds", "when": when, "pid": pid, "comm": comm, "ppid": ppid, "fds": fds,
                        "cloexec": cloexec, "t0_wall": t0, "t0_ts": c0, "t1_ts": self.clock.now()})
        c0 = self.clock.now()
        socks = self._unix.read()
        self._emit({"kind": "unix", "when": when, "sockets": socks, "t0_ts": c0, "t1_ts": self.clock.now()})

    def add_root(self, pid: int) -> None:
        self.root_pids.add(pid)
        self.tree.add(pid)
        self._emit({"kind": "tree", "pid": pid, "ppid": os.getpid()})

    def start_snapshot(self) -> None:
        pids = list_pids()
        self.known = pids
        self.snapshot(pids, "start")
        self._published(self.clock.now())

    def _published(self, t: int | None) -> None:
        """Every record of a round that began at ``t`` is written: flush and say so (live mode)."""
        if self.marks is None:
            return
        with self._lock:
            self.out.flush()
        if t is not None:
            self.marks.set("proc", t)

    def _raise_priority(self) -> None:
        """This thread only: SCHED_FIFO 1 where allowed (as the page readers). In live mode the
        model waits for its rounds (the ``proc`` watermark): among poll_herd's 33 busy processes,
        at normal priority and paced by wall time, the model had fed 321 events 2.5 s into the run;
        paced by CPU time only, the watcher made 30 rounds in 5.9 s. With 4 spinning processes per
        CPU: 23 rounds a second before, 53 now. Its CPU stays bounded by ``duty``, counted in this
        thread's CPU time (wall time grows with the wait for a CPU)."""
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))  # 0: the calling thread
            self.priority = "SCHED_FIFO 1"
        except (OSError, AttributeError):
            self.priority = "normal"

    def run(self) -> None:
        """Poll: new processes get a full snapshot; the command's tree gets its fd tables re-read
        (emitted when changed) and /proc/net/unix is re-read (emitted when changed), so that FIFOs
        and sockets living between two snapshots are named. A round reads only what tells a
        change (the fds' link targets, the unix table's text: ``read_links``, ``UnixTable``) and
        the rest only then. The pace adapts: at least ``interval`` apart and at most ``duty`` of
        one CPU (each round waits ``1/duty`` times the CPU time it took). A round after a wait runs
        cold (0.43 ms of CPU for one traced process here, 0.14 ms when run back to back): with
        whole reads every round (0.85 ms) and ``duty`` 5 % it made 45 rounds a second at 5.4 % of
        a CPU; with these checks and 2.5 %, 47 rounds a second at 3.0 % (2026-12-06, one
        ``sleep`` traced for 5 s)."""
        from ftraceipc.capture.reader import TRACER_COMMS, set_comm

        set_comm(TRACER_COMMS[1])
        self._raise_priority()
        wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        with self._lock:
            self._wake_w = wake_w
        poller = select.poll()
        poller.register(wake_r, select.POLLIN)
        try:
            wait = self.interval
            while not self._stopping and not poller.poll(max(1, round(wait * 1000))) and not self._stopping:
                t0 = time.thread_time()
                self.rounds += 1
                round_ts = self.clock.now() if self.marks is not None else None
                pids = list_pids()
                new = pids - self.known
                gone = self.known - pids
                self.known = pids
                for pid in sorted(gone):
                    self._last_fds.pop(pid, None)
                    self._last_links.pop(pid, None)
                    if pid in self.tree:
                        self._emit({"kind": "exit", "pid": pid})
                if new:
                    self.snapshot(new, "appear")
                else:
                    c0 = self.clock.now()
                    socks = self._unix.changed()
                    if socks is not None:
                        self._emit({"kind": "unix", "when": "poll", "sockets": socks, "t0_ts": c0,
                                    "t1_ts": self.clock.now()})
                for pid in sorted(self.tree - new):
                    if pid in pids and pid not in self.exclude:
                        t1, c0 = time.time(), self.clock.now()
                        # a path reopened as another FIFO on the same fd between two rounds reads
                        # the same: the open watcher names those (OpenNamer)
                        links = read_links(pid)
                        if links is None or links == self._last_links.get(pid):
                            continue
                        self._last_links[pid] = links
                        got = read_fds(pid, links)
                        if got is not None and got[0] != self._last_fds.get(pid):
                            self._last_fds[pid] = got[0]
                            self._emit({"kind": "fds", "when": "poll", "pid": pid, "fds": got[0],
                                        "cloexec": got[1], "t0_wall": t1, "t0_ts": c0,
                                        "t1_ts": self.clock.now()})
                self._published(round_ts)
                wait = max(self.interval, (time.thread_time() - t0) / self.duty)
        except BaseException as e:
            self.error = e
        finally:
            self.cpu_s = time.thread_time()
            with self._lock:
                self._wake_w = -1
            os.close(wake_r)
            os.close(wake_w)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            if self._wake_w >= 0:
                try:
                    os.write(self._wake_w, b"x")
                except OSError:
                    pass

    def end_snapshot(self) -> None:
        self.snapshot(list_pids(), "end")
        self.out.flush()


# "comm-TID (TGID) [CPU] flags TS: sys_openat -> 0x3"; the "(TGID)" column is there with record-tgid
# ("(-------)" when the kernel had not saved it)
_OPEN_LINE = re.compile(r"-(\d+)\s+(?:\(\s*(\d+|-+)\)\s+)?\[\d+\][^:]*?(\d+)(?:\.(\d+))?:\s+sys_(\w+) -> 0x([0-9a-f]+)")
# The event's own time, printed to the microsecond, stands for "before the lookup" (t0_ts): it saves
# reading the trace clock (9 us of ~20 us per open, measured). The same exit is recorded in the main
# buffer a few ns apart, so t0 is put this much later, still well before any lookup can start (the
# worker must be woken and read the line first: tens of us).
_EVENT_MARGIN_NS = 2_000
# Syscalls whose new fds /proc names best at once: opens (FIFOs), sockets and accepted connections
# (their inode, which no tracepoint names), socketpair and pipe2 (fds not in the trace: the whole
# table's IPC fds are read).
OPEN_EVENTS = ["syscalls:sys_exit_openat", "syscalls:sys_exit_open", "syscalls:sys_exit_openat2",
               "syscalls:sys_exit_socket", "syscalls:sys_exit_accept", "syscalls:sys_exit_accept4",
               "syscalls:sys_exit_socketpair", "syscalls:sys_exit_bind"]


def describe_fd(pid: int, fd: int) -> str | None:
    """What fd ``fd`` of ``pid`` names now, as in ``read_fds`` (None if it is closed)."""
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return None
    if target.startswith("/"):
        try:
            st = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            return None
        if stat.S_ISFIFO(st.st_mode):
            return f"fifo:[{st.st_ino}]:{target}"
    return target


def tgid_of(tid: int) -> int | None:
    try:
        with open(f"/proc/{tid}/status") as f:
            for line in f:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class OpenNamer:
    """Names FIFOs as they are opened. An fd opened by path is a FIFO only if /proc says so while it
    is open, and a FIFO may stay open for a few ms only, between two polls. So a second, tiny tracing
    instance (``ftraceipc-PID-open``) holds just the exits of openat/open/openat2 that returned an fd
    (``buffer_percent`` 0: poll() wakes at every event), and this worker, in a process of its own at
    SCHED_FIFO 1 (run by ``reader.ForkedWorker``, like the page readers), reads its ``trace_pipe``
    and looks each new fd up in /proc at once, writing ``{"kind": "fds", "when": "open", ...}`` lines
    to ``opens.jsonl`` (regular files too: the model then knows they are not FIFOs). Costs one wakeup of this worker per successful
    open, system-wide.

    Its CPU time is bounded: a token bucket of ``burst_s`` CPU seconds refilled at ``duty`` of one CPU.
    A program that opens a few FIFOs gets every open looked up at once; a flood of opens (``find |
    xargs grep``: 85,000 a second) would keep this worker busy on a whole CPU, so past the budget it
    pauses and the kernel drops the oldest lines of its small buffer (counted: ``meta.json`` cost
    ``open_lines_lost``); the fds it did not look up are named by the /proc polls when they live long
    enough, else stay unnamed (never named wrongly). With BATCH_AT of the burst left it reads every
    ``BATCH_S`` instead of being woken at each open, until the bucket fills again.

    The burst covers a program's start-up: Python looks up 250 files before samples/fifo.py's FIFO is
    opened (10-30 ms of this worker's CPU, more on a loaded machine). With a 50 ms burst, batching from
    half of it, the FIFO was opened while this worker read only every 10 ms and closed before the
    read: unnamed, in 2 of the 8 runs of that test on 2026-12-04 (one local, one CI). 100 ms, batching from the last quarter, gives
    start-ups 75 ms at once; a flood costs 50 ms more once per capture, then 5 % of a CPU as before.

    Switching its instance's events off while it paused (for 0.5 s, until a quarter of the burst was
    back) cut find | xargs grep from 1.16x to 1.11-1.13x the floor (5036bd8), but a FIFO opened during
    such a pause was seen by the /proc polls only, and one open for 0.2 s after a flood went unnamed
    (tests/integration/test_capture_run.py, once in CI on 2026-12-05): reverted, names first.

    Its priority stays SCHED_FIFO: at normal priority, samples/fifo.py's FIFO (open for a few ms
    after Python's start-up) went unnamed in 4 of 6 runs on 2026-12-05."""

    BATCH_S = 0.01
    BATCH_AT = 0.25  # of burst_s left: read every BATCH_S from then on

    def __init__(self, trace_pipe: str, out_path: str, own_pid: int, stats_path: str | None = None,
                 duty: float = 0.05, burst_s: float = 0.1):
        self.own_pid = own_pid
        self.clock = TraceClock(stats_path)
        self._src = os.open(trace_pipe, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self._out = open(out_path, "a")
        self.seen = 0
        self.lines = 0
        self.paused_s = 0.0
        self.duty, self.burst_s = duty, burst_s
        self.priority = "normal"
        self._me = os.getpid()
        self.pauses = 0

    def raise_priority(self) -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            self.priority = "SCHED_FIFO 1"
        except (OSError, AttributeError):
            pass

    def run_until(self, ctl_fd: int) -> None:
        import select

        poller = select.poll()
        poller.register(self._src, select.POLLIN)
        poller.register(ctl_fd, select.POLLIN | select.POLLHUP)
        ctl_only = select.poll()
        ctl_only.register(ctl_fd, select.POLLIN | select.POLLHUP)
        buf = b""
        tokens, last_wall, last_cpu = self.burst_s, time.monotonic(), time.process_time()
        while True:
            now, cpu = time.monotonic(), time.process_time()
            tokens = min(self.burst_s, tokens + (now - last_wall) * self.duty) - (cpu - last_cpu)
            last_wall, last_cpu = now, cpu
            if tokens < 0:  # over budget: pause (the kernel keeps the newest lines, drops the oldest)
                pause = -tokens / self.duty
                self.paused_s += pause
                self.pauses += 1
                if ctl_only.poll(int(pause * 1000) + 1):
                    return
                continue
            if tokens < self.burst_s * self.BATCH_AT:
                # in a flood: read what came every BATCH_S instead of being woken at every open (each
                # wakeup preempts the workload); at most BATCH_S later than at once
                if ctl_only.poll(int(self.BATCH_S * 1000)):
                    return
                ready = {self._src}
            else:
                ready = {fd for fd, _ in poller.poll(250)}
            if self._src in ready:
                try:
                    chunk = os.read(self._src, 65536)
                except BlockingIOError:
                    chunk = b""
                if chunk:
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        self._line(line.decode("utf-8", "replace"))
                    self._out.flush()
            if ctl_fd in ready:
                return

    def _line(self, line: str) -> None:
        m = _OPEN_LINE.search(line)
        if not m:
            return
        self.lines += 1
        tid, sc, fd = int(m.group(1)), m.group(5), int(m.group(6), 16)
        if tid == self._me:  # our own /proc reads (the kernel filter leaves us out too)
            return
        t0 = time.time()
        whole, frac = m.group(3), m.group(4)
        if frac is not None:  # seconds.microseconds (ns clocks); counter clocks print one integer
            c0 = int(whole) * 1_000_000_000 + int((frac + "000000000")[:9]) + _EVENT_MARGIN_NS
        else:
            c0 = self.clock.now()
        tg = m.group(2)
        # the tgid the kernel recorded (record-tgid) saves reading /proc/TID/status at each open
        pid = int(tg) if tg and tg[0] != "-" and int(tg) > 0 else tgid_of(tid)
        if pid is None or pid == self.own_pid:
            return
        if sc == "bind":  # its fd is not in the exit: record every bound Unix socket's address now
            self.seen += 1
            c0 = self.clock.now()
            self._out.write(json.dumps({"kind": "unix", "when": "bind", "sockets": read_unix_paths(),
                                        "t0_ts": c0, "t1_ts": self.clock.now()}, separators=(",", ":")) + "\n")
            return
        if sc == "socketpair":
            got = read_fds(pid)
            fds = {k: v for k, v in got[0].items() if v.startswith(("socket:", "pipe:", "fifo:"))} if got else {}
        else:
            target = describe_fd(pid, fd)
            fds = {str(fd): target} if target is not None else {}
        if not fds:
            return
        self.seen += 1
        self._out.write(json.dumps({"kind": "fds", "when": "open", "pid": pid, "fds": fds,
                                    "t0_wall": t0, "ts_wall": time.time(), "t0_ts": c0,
                                    "t1_ts": self.clock.now()}, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self.clock.close()
        if self._src >= 0:
            os.close(self._src)
            self._src = -1
        self._out.close()

    def result(self) -> dict:
        return {"seen": self.seen, "lines": self.lines, "paused_s": round(self.paused_s, 3),
                "pauses": self.pauses, "priority": self.priority}
