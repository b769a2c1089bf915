"""A private tracefs instance for tests: set it up, trace a workload, read ``trace`` and the raw
pages, and store them as a capture directory. Never touches the top-level buffer or other
instances; the instance is always removed."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ftraceipc.capture.capture import copy_formats, copy_saved
from ftraceipc.capture.store import CaptureDir, CaptureMeta
from ftraceipc.capture.tracefs import Instance, Tracefs

TRACEFS = Path("/sys/kernel/tracing")

SCHED = ["sched_switch", "sched_waking", "sched_wakeup", "sched_wakeup_new", "sched_process_fork",
         "sched_process_exec", "sched_process_exit"]
SYSCALLS = ["read", "write", "readv", "writev", "sendto", "recvfrom", "sendmsg", "recvmsg", "splice", "pipe2",
            "socketpair", "close", "dup", "dup2", "dup3", "fcntl", "openat", "accept4", "connect", "socket"]
SOCK = ["sock_send_length", "sock_recv_length", "sk_data_ready"]
ALL_EVENTS = ([f"sched:{e}" for e in SCHED]
              + [f"syscalls:sys_{k}_{s}" for s in SYSCALLS for k in ("enter", "exit")]
              + [f"sock:{e}" for e in SOCK])


class KernelTraceInstance(Instance):
    """ftraceipc's own instance lifecycle, plus what the decoder tests need: the kernel's text
    rendering of the buffer and its raw pages read with read() (not the capture's splice path)."""

    def enable(self, events: list[str]) -> None:
        self.enable_events(events)

    def read_trace(self, fields: bool) -> bytes:
        self.set_option("fields", fields)
        self.set_option("hash-ptr", False)
        return self.file("trace").read_bytes()

    def read_raw(self, cpu: int, page_size: int) -> bytes:
        """Every page of ``per_cpu/cpuN/trace_pipe_raw`` (consuming), read() page by page."""
        fd = os.open(self.per_cpu(cpu, "trace_pipe_raw"), os.O_RDONLY | os.O_NONBLOCK)
        out = bytearray()
        try:
            while True:
                try:
                    b = os.read(fd, page_size)
                except BlockingIOError:
                    break
                except InterruptedError:
                    continue
                if not b:
                    break
                out += b
        finally:
            os.close(fd)
        return bytes(out)

    def write_capture(self, root: Path, events: list[str], clock: str) -> CaptureDir:
        """Store the raw pages and the kernel's format files as an ftraceipc capture."""
        cap = CaptureDir(root)
        (root / "cpu").mkdir(parents=True)
        (cap.tracefs_dir / "events").mkdir(parents=True)
        copy_formats(self.tracefs, cap, events)
        copy_saved(self.tracefs, self, cap)
        cpus = self.cpus
        for cpu in cpus:
            cap.cpu_path(cpu).write_bytes(self.read_raw(cpu, self.page_size))
        u = platform.uname()
        cap.write_meta(CaptureMeta(tool_version="test", kernel_release=u.release, hostname=u.node, machine=u.machine,
                                   cpus=cpus, page_size=self.page_size, clock=clock, events=list(events),
                                   complete=True))
        return cap


@contextmanager
def private_instance(tag: str = "") -> Iterator[KernelTraceInstance]:
    """``instances/ftraceipc-test-<pid>[-tag]``, destroyed on exit whatever happens."""
    name = f"ftraceipc-test-{os.getpid()}{'-' + tag if tag else ''}"
    with KernelTraceInstance.create(Tracefs.find(mount=False), name) as inst:
        yield inst


# A small program that makes every traced syscall and sock/sched event happen at least once.
WORKLOAD = r"""
import ctypes, fcntl, os, socket, subprocess, sys, tempfile
libc = ctypes.CDLL(None, use_errno=True)
a, b = socket.socketpair()
a.send(b"hello"); b.recv(16)
d1, d2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
d1.send(b"dgram"); d2.recvfrom(16)
a.sendmsg([b"msg"]); b.recvmsg(16)
r, w = os.pipe()
os.writev(w, [b"ab", b"cd"]); os.readv(r, [bytearray(4)])
os.write(w, b"spl"); r2, w2 = os.pipe(); os.splice(r, w2, 3); os.read(r2, 3)
fd = libc.dup(r); libc.dup2(r, 100); libc.dup3(r, 101, os.O_CLOEXEC)
fcntl.fcntl(r, fcntl.F_GETFL)
for x in (fd, 100, 101, r2, w2):
    os.close(x)
path = os.path.join(tempfile.mkdtemp(), "s")
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); srv.bind(path); srv.listen(1)
cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); cli.connect(path)
conn, _ = srv.accept()
cli.send(b"over stream"); conn.recv(64)
with open("/proc/self/stat") as f:
    f.read()
subprocess.run(["/bin/true"])
# a long exec path makes a sched_process_exec record > 112 bytes: a type_len 0 record
longdir = os.path.join(tempfile.mkdtemp(), "d" * 200)
os.mkdir(longdir)
os.symlink("/bin/true", os.path.join(longdir, "true"))
subprocess.run([os.path.join(longdir, "true")])
for s in (a, b, d1, d2, srv, cli, conn):
    s.close()
"""


def run_workload(perf_loops: int = 100) -> None:
    """perf bench (sockets and pipes) plus the small script above."""
    perf = shutil.which("perf")
    if perf:
        for extra in ([], ["-p"]):
            subprocess.run([perf, "bench", "sched", "messaging", "-g", "2", "-l", str(perf_loops), *extra],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:  # a pure-Python stand-in: many small socket and pipe transfers
        subprocess.run([sys.executable, "-c", _FALLBACK_LOAD], check=True)
    subprocess.run([sys.executable, "-c", WORKLOAD], check=True)


_FALLBACK_LOAD = r"""
import os, socket
a, b = socket.socketpair(); r, w = os.pipe()
for i in range(40000):
    a.send(b"x" * 100); b.recv(100); os.write(w, b"y" * 100); os.read(r, 100)
"""
