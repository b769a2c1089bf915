"""Per-CPU readers: move raw ring-buffer pages from ``trace_pipe_raw`` to disk with splice.

The pages are never copied into user space while tracing: splice moves them from the ring buffer
into a pipe and from the pipe into the capture file. The reader sleeps in poll() until the buffer is
``buffer_percent`` full (or a timeout passes), so it wakes rarely. At the end, read() flushes the
partly filled page that splice will not hand out.

For ``ftraceipc live`` a reader also flushes every ``flush_ms``: it reads the trace clock, moves the
full pages and the partly filled one, and publishes that time in a :class:`Watermarks` slot (shared
memory): every event of its CPU up to then is in the file, so a follower can merge the CPUs' files
up to the smallest published time while they grow.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import select
import signal
import time

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
SPLICE_F_MOVE = getattr(os, "SPLICE_F_MOVE", 1)
SPLICE_F_NONBLOCK = getattr(os, "SPLICE_F_NONBLOCK", 2)
PIPE_BYTES = 1 << 20
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


# a flush's published time is this much before the clock was read: an event reserved just before
# (its timestamp taken) may be committed just after the read (the kernel's reserve-to-commit is
# microseconds; the stats file prints the clock to the microsecond)
FLUSH_MARGIN_NS = 2_000_000


class Watermarks:
    """One int64 per CPU in anonymous shared memory (made before the readers fork): the trace-clock
    time up to which that CPU's capture file holds every event (-1: not yet). Written by the readers,
    read by a follower (``decode.decoder.Follower``) in another process."""

    def __init__(self, cpus: list[int], extra: tuple[str, ...] = ("proc",)):
        """``extra``: more slots by name (``proc``: the /proc watcher's file, ``ProcWatcher(marks=)``)."""
        self.cpus = list(cpus)
        self._slot = {c: i for i, c in enumerate([*self.cpus, *extra])}
        self._mem = mmap.mmap(-1, 8 * len(self._slot))
        for c in self._slot:
            self.set(c, -1)

    def set(self, key: int | str, ts: int) -> None:
        i = self._slot[key] * 8
        self._mem[i:i + 8] = int(ts).to_bytes(8, "little", signed=True)

    def get(self, key: int | str) -> int:
        i = self._slot[key] * 8
        return int.from_bytes(self._mem[i:i + 8], "little", signed=True)

    def all(self) -> dict[int, int]:
        """cpu -> its watermark."""
        return {c: self.get(c) for c in self.cpus}


class PageMover:
    """Moves one CPU's pages from ``trace_pipe_raw`` to one file (runs inside ``CpuReaderProcess``).
    With ``flush_ms`` (and ``clock``, a ``procsnap.TraceClock``, and ``marks``, a :class:`Watermarks`)
    it also flushes the partly filled page that often and publishes up to when the file is whole."""

    def __init__(self, raw_path: str, out_path: str, cpu: int, page_size: int, poll_ms: int = 250,
                 flush_ms: int | None = None, clock=None, marks: Watermarks | None = None):
        self.cpu = cpu
        self.page_size = page_size
        self.poll_ms = poll_ms if flush_ms is None else min(poll_ms, flush_ms)
        self.flush_s = None if flush_ms is None else flush_ms / 1000
        self.clock = clock
        self.marks = marks
        self.flushes = 0
        self.bytes = 0
        self._src = os.open(raw_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            self._out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except OSError:
            os.close(self._src)
            raise
        self._pr, self._pw = os.pipe2(os.O_CLOEXEC)
        try:
            fcntl.fcntl(self._pw, F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # a smaller pipe only means more splice calls
        self._chunk = max(page_size, fcntl.fcntl(self._pw, F_GETPIPE_SZ))
        self._chunk -= self._chunk % page_size
        self._closed = False
        self.priority = "normal"

    def result(self) -> dict:
        return {"bytes": self.bytes, "priority": self.priority, "flushes": self.flushes}

    def raise_priority(self) -> None:
        """Keep up with a machine full of runnable tasks: the reader sleeps in poll() almost always, but
        when the buffer is half full it must run at once, not after 160 busy tasks had their turn."""
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            self.priority = "SCHED_FIFO 1"
        except (OSError, AttributeError):
            try:
                os.setpriority(os.PRIO_PROCESS, 0, -20)
                self.priority = "nice -20"
            except OSError:
                self.priority = "normal"

    def run_until(self, ctl_fd: int) -> None:
        """Move full pages whenever the buffer wakes us, until ``ctl_fd`` is readable (or at EOF);
        then drain: the last full pages by splice, the partly filled one by read()."""
        poller = select.poll()
        poller.register(self._src, select.POLLIN)
        poller.register(ctl_fd, select.POLLIN)
        next_flush = time.monotonic() + (self.flush_s or 0)
        while not any(fd == ctl_fd for fd, _ in poller.poll(self.poll_ms)):
            if self.flush_s is not None and time.monotonic() >= next_flush:
                self.flush()
                next_flush = time.monotonic() + self.flush_s
            else:
                self._splice_full_pages()
        self._splice_full_pages()
        self._read_partial_pages()
        if self.marks is not None:
            self.marks.set(self.cpu, (1 << 63) - 1)  # drained: the file is whole

    def flush(self) -> None:
        """Move every page, the partly filled one too, and publish the time before which the file
        now holds every event of this CPU."""
        now = self.clock.now() if self.clock is not None else None
        self._splice_full_pages()
        # one read: the page being filled (the next would hold the events of this read itself)
        self._read_partial_pages(once=True)
        self.flushes += 1
        if now is not None and self.marks is not None:
            self.marks.set(self.cpu, now - FLUSH_MARGIN_NS)

    # --- moving pages ------------------------------------------------------------------------
    def _splice_full_pages(self) -> None:
        while True:
            try:
                n = os.splice(self._src, self._pw, self._chunk, flags=SPLICE_F_NONBLOCK | SPLICE_F_MOVE)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            if n <= 0:
                return
            left = n
            while left:
                m = os.splice(self._pr, self._out, left, flags=SPLICE_F_MOVE)
                if m <= 0:
                    raise OSError("splice to the capture file moved nothing")
                left -= m
            self.bytes += n

    def _read_partial_pages(self, once: bool = False) -> None:
        """read() hands out the last, partly filled page too (splice only gives full ones)."""
        while True:
            try:
                buf = os.read(self._src, self.page_size)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            if not buf:
                return
            if len(buf) < self.page_size:
                buf += bytes(self.page_size - len(buf))
            os.write(self._out, buf)
            self.bytes += len(buf)
            if once:
                return

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.clock is not None:
            self.clock.close()
        for fd in (self._src, self._pr, self._pw, self._out):
            try:
                os.close(fd)
            except OSError:
                pass


TRACER_COMMS = ("ftipc-namer", "ftipc-proc")  # the names of our tasks that open files while tracing


def set_comm(name: str) -> None:
    """Name the calling thread (``comm``, 15 bytes at most): another capture running at the same time
    filters tasks with these names out of its open watcher (their /proc reads would otherwise wake it
    at every read, and its reads would wake ours: two captures feeding each other)."""
    try:
        with open("/proc/thread-self/comm", "w") as f:
            f.write(name[:15])
    except OSError:
        pass


class ForkedWorker:
    """A worker object run in a forked process of its own (``start``, ``stop``, ``join``,
    ``is_alive``, ``close``, ``result``, ``error``, ``pid``). The worker (made by ``make`` in the
    child) has ``raise_priority()``, ``run_until(ctl_fd)``, ``close()`` and ``result() -> dict``.

    Why a process: readers run at SCHED_FIFO, but Python threads share one GIL. When the
    /proc watcher (or the main thread) holds the GIL and is preempted by a busy workload - 160
    runnable tasks under ``perf bench sched messaging`` - a woken reader cannot run until the holder
    gets the CPU back: the ring buffer overflows. A process has its own GIL.

    Fork it before any thread of this process starts. The child keeps only its own fds (the gate
    pipe of the traced command, the proc.jsonl file, ... are closed), ignores the stop signals (the
    parent stops it through a pipe, and EOF on that pipe - the parent gone - stops it too), drains
    what is left, reports its result (or error) on a second pipe and leaves with ``os._exit``.
    """

    label = "worker"
    comm = "ftipc-worker"

    def __init__(self, make):
        self._make = make
        self.result: dict = {}
        self._error: BaseException | None = None
        self.pid: int | None = None
        self._ctl_w = self._res_r = -1
        self._done = False
        self.keep_fds: set[int] = set()  # more fds the child keeps (besides 0-2 and its pipes)

    def start(self) -> None:
        ctl_r, ctl_w = os.pipe2(os.O_CLOEXEC)
        res_r, res_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # child: never returns
            code = 1
            try:
                for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(s, signal.SIG_IGN)
                keep = {ctl_r, res_w} | set(self.keep_fds)
                for fd in map(int, os.listdir("/proc/self/fd")):
                    if fd > 2 and fd not in keep:
                        try:
                            os.close(fd)
                        except OSError:
                            pass
                set_comm(self.comm)
                r = self._make()
                r.raise_priority()
                r.run_until(ctl_r)
                r.close()
                res = r.result()
                t = os.times()  # this process's own CPU time: what the worker cost
                res["cpu_s"] = round(t.user + t.system, 4)
                os.write(res_w, json.dumps(res).encode())
                code = 0
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                try:
                    os.write(res_w, json.dumps({"error": f"{type(e).__name__}: {e}",
                                                "errno": getattr(e, "errno", None)}).encode())
                except OSError:
                    pass
            finally:
                os._exit(code)
        os.close(ctl_r)
        os.close(res_w)
        self.pid, self._ctl_w, self._res_r = pid, ctl_w, res_r

    def stop(self) -> None:
        if self._ctl_w >= 0:
            os.close(self._ctl_w)  # EOF: the child drains and leaves
            self._ctl_w = -1

    def join(self, timeout: float | None = None) -> None:
        end = None if timeout is None else time.monotonic() + timeout
        while self.pid is not None and not self._done:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._done = True
                self._collect(status)
                return
            if end is not None and time.monotonic() >= end:
                return
            time.sleep(0.01)

    def _collect(self, status: int) -> None:
        data = b""
        while True:
            chunk = os.read(self._res_r, 65536)
            if not chunk:
                break
            data += chunk
        try:
            d = json.loads(data) if data else {}
        except ValueError:
            d = {}
        self.result = d
        if "error" in d:
            self._error = OSError(d["errno"], d["error"]) if d.get("errno") else OSError(d["error"])
        elif os.waitstatus_to_exitcode(status) != 0:
            self._error = OSError(f"{self.label} process exited with {os.waitstatus_to_exitcode(status)}")

    @property
    def cpu_s(self) -> float | None:
        """CPU seconds (user + system) the worker process used, once it has left."""
        v = self.result.get("cpu_s")
        return None if v is None else float(v)

    @property
    def error(self) -> BaseException | None:
        """Set once the child has left with an error (checked without blocking, so the capture's
        main loop notices a reader that died while tracing)."""
        if self._error is None and self.pid is not None and not self._done:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._done = True
                self._collect(status)
                if self._error is None:
                    self._error = OSError(f"{self.label} process ended before it was stopped")
        return self._error

    def is_alive(self) -> bool:
        return self.pid is not None and not self._done

    def close(self) -> None:
        self.stop()
        if self.is_alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
            self.join()
        if self._res_r >= 0:
            os.close(self._res_r)
            self._res_r = -1


class CpuReaderProcess(ForkedWorker):
    """A ``PageMover`` for one CPU in a process of its own (see ForkedWorker)."""

    def __init__(self, raw_path: str, out_path: str, cpu: int, page_size: int, poll_ms: int = 250,
                 flush_ms: int | None = None, stats_path: str | None = None, marks: Watermarks | None = None):
        args = (raw_path, out_path, cpu, page_size, poll_ms)
        # open both files here too, so a bad path fails now, in the caller
        PageMover(*args).close()

        def make():
            from ftraceipc.capture.procsnap import TraceClock

            clock = TraceClock(stats_path) if flush_ms is not None and stats_path else None
            return PageMover(*args, flush_ms=flush_ms, clock=clock, marks=marks)

        super().__init__(make)
        self.cpu = cpu
        self.label = f"CPU{cpu} reader"
        self.comm = f"ftipc-cpu{cpu}"

    @property
    def bytes(self) -> int:
        return int(self.result.get("bytes", 0))

    @property
    def priority(self) -> str:
        return self.result.get("priority", "normal")
