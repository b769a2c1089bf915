"""Per-CPU readers: move raw ring-buffer pages from ``trace_pipe_raw`` to disk with splice.

The pages are never copied into user space while tracing: splice moves them from the ring buffer
into a pipe and from the pipe into the capture file. The reader sleeps in poll() until the buffer is
``buffer_percent`` full (or a timeout passes), so it wakes rarely. At the end, read() flushes the
partly filled page that splice will not hand out.
"""

from __future__ import annotations

import fcntl
import os
import select
import threading

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
SPLICE_F_MOVE = getattr(os, "SPLICE_F_MOVE", 1)
SPLICE_F_NONBLOCK = getattr(os, "SPLICE_F_NONBLOCK", 2)
PIPE_BYTES = 1 << 20


class CpuReader(threading.Thread):
    """Moves one CPU's pages to one file. ``stop()`` drains what is left, then the thread ends."""

    def __init__(self, raw_path: str, out_path: str, cpu: int, page_size: int, poll_ms: int = 250):
        super().__init__(name=f"ftraceipc-cpu{cpu}", daemon=True)
        self.cpu = cpu
        self.page_size = page_size
        self.poll_ms = poll_ms
        self.bytes = 0
        self.error: BaseException | None = None
        self._stop_evt = threading.Event()
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
        self._chunk = max(page_size, (fcntl.fcntl(self._pw, 1032) if hasattr(fcntl, "F_GETPIPE_SZ") else 65536))
        self._chunk -= self._chunk % page_size
        self._closed = False
        self.priority = "normal"

    # --- thread ----------------------------------------------------------------------------
    def _raise_priority(self) -> None:
        """Keep up with a machine full of runnable tasks: the reader sleeps in poll() almost always, but
        when the buffer is half full it must run at once, not after 160 busy tasks had their turn."""
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))  # this thread only
            self.priority = "SCHED_FIFO 1"
        except (OSError, AttributeError):
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -20)
                self.priority = "nice -20"
            except OSError:
                self.priority = "normal"

    def run(self) -> None:
        try:
            self._raise_priority()
            poller = select.poll()
            poller.register(self._src, select.POLLIN)
            while not self._stop_evt.is_set():
                poller.poll(self.poll_ms)
                self._splice_full_pages()
            self._splice_full_pages()
            self._read_partial_pages()
        except BaseException as e:  # reported by the capture, never lost
            self.error = e
        finally:
            self.close()

    def stop(self) -> None:
        self._stop_evt.set()

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

    def _read_partial_pages(self) -> None:
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

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for fd in (self._src, self._pr, self._pw, self._out):
            try:
                os.close(fd)
            except OSError:
                pass
