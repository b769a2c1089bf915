"""tracefs: finding and mounting it, and the lifecycle of a private tracing instance.

Words follow libtracefs: an instance is ``create``d (ours: ``is_new``) or ``attach``ed to; we
``destroy`` only what we created. The top-level buffer is never written.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ftraceipc.errors import TracefsError

CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
INSTANCE_PREFIX = "ftraceipc-"
_OURS = re.compile(r"^ftraceipc-(\d+)(?:-[a-z]+)?$")  # ftraceipc-PID, ftraceipc-PID-open
# A capture holds an exclusive flock on LOCK_DIR/ftraceipc-PID.lock for its whole life (from before
# its instances exist until after they are gone): an instance ftraceipc-PID[-open] is stale when that
# lock can be taken (or, for a run that made no lock file, when PID is gone).
LOCK_DIR = Path("/run/ftraceipc")


def _is_tracefs_dir(path: Path) -> bool:
    return (path / "instances").is_dir() and (path / "events").is_dir()


def require_root() -> None:
    if os.geteuid() != 0:
        raise TracefsError("tracing needs root (tracefs is root-only)",
                           hint="run it as 'sudo ftraceipc capture ...'")


class Tracefs:
    """The mounted tracefs."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @classmethod
    def find(cls, mount: bool = True) -> "Tracefs":
        """Find tracefs (/sys/kernel/tracing, then /sys/kernel/debug/tracing); mount it when absent."""
        for cand in CANDIDATES:
            p = Path(cand)
            try:
                if _is_tracefs_dir(p):
                    return cls(p)
            except PermissionError:
                require_root()
                raise
        if not mount:
            raise TracefsError("tracefs is not mounted", hint="mount it: mount -t tracefs nodev /sys/kernel/tracing")
        require_root()
        if not _filesystem_supported("tracefs"):
            raise TracefsError("this kernel has no tracefs (not in /proc/filesystems)",
                               hint="use a kernel built with CONFIG_FTRACE and CONFIG_TRACING")
        target = Path(CANDIDATES[0])
        if not target.is_dir():
            raise TracefsError(f"cannot mount tracefs: {target} does not exist",
                               hint="mount debugfs/tracefs by hand (mount -t tracefs nodev /sys/kernel/tracing)")
        r = subprocess.run(["mount", "-t", "tracefs", "nodev", str(target)], capture_output=True, text=True)
        if r.returncode != 0 or not _is_tracefs_dir(target):
            msg = (r.stderr or r.stdout).strip().splitlines()
            raise TracefsError(f"mounting tracefs on {target} failed ({msg[-1] if msg else 'exit ' + str(r.returncode)})",
                               hint="mount it by hand: mount -t tracefs nodev /sys/kernel/tracing")
        return cls(target)

    # --- files -------------------------------------------------------------------------
    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def event_dir(self, spec: str) -> Path:
        system, _, name = spec.partition(":")
        return self.root / "events" / system / name

    def has_event(self, spec: str) -> bool:
        return (self.event_dir(spec) / "format").is_file()

    def available_clocks(self) -> list[str]:
        return self.read("trace_clock").replace("[", "").replace("]", "").split()

    # --- instances -----------------------------------------------------------------------
    def instance_names(self) -> list[str]:
        try:
            return sorted(os.listdir(self.root / "instances"))
        except OSError:
            return []

    def remove_stale_instances(self, report: Callable[[str], None] | None = None) -> list[str]:
        """Destroy the ``ftraceipc-PID[-open]`` instances of runs that are over (killed): those whose
        owner's lock (``InstanceLock``) can be taken, or, without a lock file, whose PID is gone. A
        live capture holds its lock: its instances are never touched. Returns the names removed."""
        by_pid: dict[int, list[str]] = {}
        for name in self.instance_names():
            m = _OURS.match(name)
            if m:
                by_pid.setdefault(int(m.group(1)), []).append(name)
        removed = []
        for pid, names in sorted(by_pid.items()):
            with InstanceLock.if_stale(pid) as stale:
                if not stale:
                    continue
                for name in names:
                    Instance(self, name, is_new=True).destroy()
                    removed.append(name)
                    if report:
                        report(f"removed stale tracing instance {name} left by a killed run")
        return removed


def _private_lock_dir() -> Path:
    """LOCK_DIR, made 0700 by root if missing; refused unless it is a directory of root that nobody
    else may write (a lock another user could make or remove would let them hide a live capture)."""
    try:
        os.mkdir(LOCK_DIR, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise TracefsError(f"cannot make the lock directory {LOCK_DIR}: {e.strerror}",
                           hint="run as root; /run must be writable") from None
    st = os.lstat(LOCK_DIR)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
        raise TracefsError(f"{LOCK_DIR} is not a private directory of root",
                           hint=f"remove it (ftraceipc makes it again): rm -rf {LOCK_DIR}")
    return LOCK_DIR


class InstanceLock:
    """The exclusive flock of the capture run by this process, on ``LOCK_DIR/ftraceipc-PID.lock``.

    ``acquire`` before the instances are made, ``release`` after they are gone (the file is removed
    while still locked). The fd is close-on-exec; the capture's forked workers close it, and a lock
    is held as long as one process holds the open file, so a killed capture's lock goes with it."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self.fd = fd

    @staticmethod
    def path_for(pid: int) -> Path:
        return LOCK_DIR / f"{INSTANCE_PREFIX}{pid}.lock"

    @classmethod
    def acquire(cls) -> "InstanceLock":
        path = _private_lock_dir() / f"{INSTANCE_PREFIX}{os.getpid()}.lock"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # held by another only while it removes a stale file
                if _same_file(fd, path):
                    return cls(path, fd)
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # a cleaner removed that file meanwhile: make a new one

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            if _same_file(self.fd, self.path):
                os.unlink(self.path)
        except OSError:
            pass
        finally:
            os.close(self.fd)
            self.fd = -1

    @classmethod
    def if_stale(cls, pid: int) -> "_StaleCheck":
        """A context manager giving True when the run of ``pid`` is over (its lock taken: held until
        the block ends, then the file is removed), False when it is alive."""
        return _StaleCheck(pid)


class _StaleCheck:
    def __init__(self, pid: int):
        self.pid = pid
        self.lock: InstanceLock | None = None

    def __enter__(self) -> bool:
        path = InstanceLock.path_for(self.pid)
        if self.pid == os.getpid():
            return True  # this process runs no capture yet (it is about to start one)
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return not _pid_alive(self.pid)  # a run without a lock file: only a dead PID tells
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False  # held: a live capture
        self.lock = InstanceLock(path, fd)
        return True

    def __exit__(self, *exc) -> None:
        if self.lock is not None:
            self.lock.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _filesystem_supported(fs: str) -> bool:
    try:
        return any(line.split()[-1] == fs for line in Path("/proc/filesystems").read_text().splitlines() if line.strip())
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _write_all(fd: int, data: bytes) -> None:
    """tracefs files such as set_event take one token per write() and return a short count: loop."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.EIO, "short write to tracefs")
        view = view[n:]


@dataclass
class CpuStats:
    """One CPU's ``per_cpu/cpuN/stats``."""

    entries: int = 0
    overrun: int = 0
    commit_overrun: int = 0
    bytes: int = 0
    dropped_events: int = 0
    read_events: int = 0

    @classmethod
    def parse(cls, text: str) -> "CpuStats":
        vals = {}
        for line in text.splitlines():
            key, _, val = line.partition(":")
            key = key.strip().replace(" ", "_")
            val = val.strip()
            if key in cls.__dataclass_fields__ and val.isdigit():
                vals[key] = int(val)
        return cls(**vals)


class Instance:
    """A tracing instance under ``instances/``. Context manager; ``close()`` is safe twice."""

    def __init__(self, tracefs: Tracefs, name: str, is_new: bool):
        self.tracefs = tracefs
        self.name = name
        self.is_new = is_new
        self.path = tracefs.root / "instances" / name
        self._destroyed = False

    # --- lifecycle -----------------------------------------------------------------------
    @classmethod
    def create(cls, tracefs: Tracefs, name: str | None = None) -> "Instance":
        name = name or f"{INSTANCE_PREFIX}{os.getpid()}"
        path = tracefs.root / "instances" / name
        try:
            os.mkdir(path)
        except FileExistsError:
            raise TracefsError(f"tracing instance {name} already exists",
                               hint=f"another run owns it; if none does, remove it: rmdir {path}") from None
        except PermissionError:
            require_root()
            raise TracefsError(f"cannot create tracing instance {path}: permission denied",
                               hint="run as root with tracefs mounted read-write") from None
        except OSError as e:
            raise TracefsError(f"cannot create tracing instance {path}: {e.strerror}") from None
        return cls(tracefs, name, is_new=True)

    @classmethod
    def attach(cls, tracefs: Tracefs, name: str) -> "Instance":
        inst = cls(tracefs, name, is_new=False)
        if not inst.path.is_dir():
            raise TracefsError(f"no tracing instance named {name}")
        return inst

    def destroy(self) -> None:
        """Stop tracing, disable events and remove the instance, if we created it. Safe to call twice."""
        if self._destroyed or not self.is_new:
            self._destroyed = True
            return
        if self.path.is_dir():
            for rel, value in (("tracing_on", "0"), ("set_event_pid", ""), ("set_event", "")):
                try:
                    self.write(rel, value)
                except OSError:
                    pass
            delay = 0.01
            for _ in range(50):
                try:
                    os.rmdir(self.path)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        raise TracefsError(f"cannot remove tracing instance {self.path}: {e.strerror}",
                                           hint=f"remove it by hand: rmdir {self.path}") from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.2)
            else:
                raise TracefsError(f"tracing instance {self.path} stays busy",
                                   hint=f"close readers of its files, then: rmdir {self.path}")
        self._destroyed = True

    close = destroy

    def __enter__(self) -> "Instance":
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()

    @property
    def exists(self) -> bool:
        return self.path.is_dir()

    # --- files -------------------------------------------------------------------------
    def file(self, rel: str) -> Path:
        return self.path / rel

    def read(self, rel: str) -> str:
        return (self.path / rel).read_text()

    def write(self, rel: str, value: str) -> None:
        # O_TRUNC matters for set_event/set_event_pid: without it the kernel appends.
        fd = os.open(self.path / rel, os.O_WRONLY | os.O_TRUNC)
        try:
            _write_all(fd, value.encode() if value else b"\n" if rel.startswith("set_") else b"")
        finally:
            os.close(fd)

    def append(self, rel: str, value: str) -> None:
        fd = os.open(self.path / rel, os.O_WRONLY | os.O_APPEND)
        try:
            _write_all(fd, value.encode())
        finally:
            os.close(fd)

    # --- settings -----------------------------------------------------------------------
    @property
    def cpus(self) -> list[int]:
        out = []
        for d in os.listdir(self.path / "per_cpu"):
            if d.startswith("cpu") and d[3:].isdigit():
                out.append(int(d[3:]))
        return sorted(out)

    def per_cpu(self, cpu: int, rel: str) -> Path:
        return self.path / "per_cpu" / f"cpu{cpu}" / rel

    def set_buffer_kb(self, kb: int) -> None:
        try:
            self.write("buffer_size_kb", str(int(kb)))
        except OSError as e:
            raise TracefsError(f"the kernel refused a {kb} KiB per-CPU buffer ({e.strerror})",
                               hint="choose a smaller --buffer-kb") from None

    def set_clock(self, clock: str) -> None:
        if clock not in self.tracefs.available_clocks():
            raise TracefsError(f"trace clock {clock!r} is not available",
                               hint="choose one of: " + ", ".join(self.tracefs.available_clocks()))
        self.write("trace_clock", clock)

    @property
    def clock(self) -> str:
        m = re.search(r"\[(\S+)\]", self.read("trace_clock"))
        return m.group(1) if m else "local"

    def set_option(self, name: str, on: bool) -> None:
        self.write(f"options/{name}", "1" if on else "0")

    def option(self, name: str) -> bool:
        return self.read(f"options/{name}").strip() == "1"

    @property
    def page_size(self) -> int:
        p = self.path / "buffer_subbuf_size_kb"
        try:
            return int(p.read_text().strip()) * 1024
        except (OSError, ValueError):
            return os.sysconf("SC_PAGE_SIZE")

    def enable_events(self, events: Iterable[str]) -> None:
        """Enable ``system:event`` names; one clear error for the first missing one."""
        events = list(events)
        for ev in events:
            if not self.tracefs.has_event(ev):
                raise TracefsError(f"event {ev} is not available on this kernel",
                                   hint="remove it from --events (see 'ftraceipc capture --list-events')")
        self.write("set_event", "\n".join(events) + "\n")
        enabled = set(self.read("set_event").split())
        missing = [e for e in events if e not in enabled]
        if missing:
            raise TracefsError(f"the kernel did not enable {', '.join(missing)}", hint="remove it from --events")

    def set_filter(self, event: str, expr: str) -> None:
        """Set an event's filter in this instance (``system:event``)."""
        system, name = event.split(":", 1)
        try:
            self.write(f"events/{system}/{name}/filter", expr)
        except OSError as e:
            raise TracefsError(f"the kernel refused the filter '{expr}' on {event}: {e.strerror}",
                               hint="remove the event from --events") from None

    def set_event_pids(self, pids: Iterable[int], follow_fork: bool = True) -> None:
        self.write("set_event_pid", " ".join(str(p) for p in pids))
        self.set_option("event-fork", follow_fork)

    def tracing_on(self, on: bool) -> None:
        self.write("tracing_on", "1" if on else "0")

    def is_on(self) -> bool:
        return self.read("tracing_on").strip() == "1"

    def cpu_stats(self, cpu: int) -> CpuStats:
        return CpuStats.parse(self.per_cpu(cpu, "stats").read_text())

    def mark(self, text: str) -> None:
        """Write to this instance's trace_marker (shows in the buffer as a print event)."""
        self.append("trace_marker", text)
