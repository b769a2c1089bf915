"""Running the real ``ftraceipc`` CLI in a subprocess for the capture tests, and keeping track of the
tracing instances it makes.

Every process started here is recorded in ``SPAWNED`` (pid → Popen), and a test may add a pid
it learnt (a grandchild) to ``OWN_PIDS``. The leak check in ``conftest.py`` counts a new instance
``ftraceipc-<pid>[-open]`` as a leak when ``pid`` is one of those, a descendant of this pytest process,
or its run is over (its lock free, or no lock and ``pid`` dead: nobody is left to remove it). A live
run of someone else on the machine is left alone.
"""

from __future__ import annotations

import errno
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import components  # noqa: E402  (tests/components.py: the one home of component checks and skips)

TRACEFS = Path("/sys/kernel/tracing")
INSTANCES = TRACEFS / "instances"
REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
SPAWNED: dict[int, subprocess.Popen] = {}
OWN_PIDS: set[int] = set()

# A small event set for the tests that check lifecycle, not content: small captures, fast decoding,
# even while something else on the machine is busy.
SMALL_EVENTS = ("sched:sched_process_fork,sched:sched_process_exec,sched:sched_process_exit,"
                "syscalls:sys_enter_write,syscalls:sys_exit_write")


# A python child that writes known bytes to a pipe on a known fd: its events are looked for by value.
WORKLOAD_FD = 47
WORKLOAD_COUNT = 1370
WORKLOAD = rf"""
import os
r, w = os.pipe()
os.dup2(w, {WORKLOAD_FD})
n = os.write({WORKLOAD_FD}, b"ftraceipc!" * {WORKLOAD_COUNT // 10})
assert os.read(r, 4096) == b"ftraceipc!" * {WORKLOAD_COUNT // 10}
print(os.getpid(), n, flush=True)
"""


def tracefs_reason() -> str | None:
    """None when the capture tests can run here, else why not (``components.missing("tracefs")``)."""
    return components.missing("tracefs")


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    for k in ("SUDO_UID", "SUDO_GID", "SUDO_USER", "SUDO_COMMAND"):
        e.pop(k, None)  # the tests decide who the invoking user is
    e["PYTHONPATH"] = str(REPO) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e["PYTHONUNBUFFERED"] = "1"
    e.update(extra)
    return e


def ftraceipc_argv(*args: str) -> list[str]:
    return [PY, "-m", "ftraceipc", *map(str, args)]


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    pid: int

    def error_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]


def run(argv: list[str], *, timeout: float = 60, cwd: str | os.PathLike | None = None, **kw) -> Result:
    """Run to the end; stdout and stderr captured."""
    p = popen(argv, cwd=cwd, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(p)
        raise
    return Result(argv, p.returncode, out, err, p.pid)


def cli(*args: str, timeout: float = 60, **kw) -> Result:
    return run(ftraceipc_argv(*args), timeout=timeout, **kw)


def popen(argv: list[str], *, cwd: str | os.PathLike | None = None, env_extra: dict | None = None,
          **kw) -> subprocess.Popen:
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                         cwd=cwd or "/tmp", env=env(**(env_extra or {})), **kw)
    SPAWNED[p.pid] = p
    return p


def stop(p: subprocess.Popen) -> None:
    """SIGKILL a process this module started (by its pid) and reap it."""
    if p.poll() is None:
        try:
            p.kill()
        except OSError:
            pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    for f in (p.stdout, p.stderr):  # not read to EOF: an orphan of it may hold the other end
        if f is not None:
            f.close()


def wait_for_stderr(p: subprocess.Popen, needle: str, timeout: float = 20) -> str:
    """Read ``p``'s stderr until a line containing ``needle`` (returns what was read); fails on
    timeout or when ``p`` exits first."""
    fd = p.stderr.fileno()
    buf = b""
    end = time.monotonic() + timeout
    while needle.encode() not in buf:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {needle!r} on stderr within {timeout} s; got {buf.decode(errors='replace')!r}")
        r, _, _ = select.select([fd], [], [], min(left, 0.2))
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"process exited (rc {p.wait()}) before {needle!r}; stderr "
                                     f"{buf.decode(errors='replace')!r}")
            buf += chunk
    return buf.decode(errors="replace")


def finish(p: subprocess.Popen, timeout: float) -> tuple[int, str, str, float]:
    """Wait for ``p`` to end; (returncode, rest of stdout, rest of stderr, seconds waited)."""
    t0 = time.monotonic()
    try:
        p.wait(timeout=timeout)  # its output is small: the pipes do not fill meanwhile
    except subprocess.TimeoutExpired:
        stop(p)
        raise AssertionError(f"pid {p.pid} did not end within {timeout} s") from None
    took = time.monotonic() - t0
    try:
        out, err = p.communicate(timeout=3)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"pid {p.pid} ended, but a process it started still holds its stdout/stderr") from None
    return p.returncode, out, err, took


# --- instances -------------------------------------------------------------------------------------------
def instance_names() -> set[str]:
    try:
        return {n for n in os.listdir(INSTANCES) if n.startswith("ftraceipc-")}
    except OSError:
        return set()


def _ppid(pid: int) -> int | None:
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(s[s.rfind(")") + 2:].split()[1])


def is_descendant(pid: int, ancestor: int | None = None) -> bool:
    ancestor = ancestor or os.getpid()
    seen = 0
    while pid and pid > 1 and seen < 64:
        if pid == ancestor:
            return True
        pid = _ppid(pid) or 0
        seen += 1
    return False


def instance_is_ours(name: str) -> bool:
    """An instance this test run must not leave: ``ftraceipc-<pid>[-open]`` of a process we started
    (or its descendant) or of a run that is over by ftraceipc's own rule (its lock can be taken, or
    without a lock file its pid is gone: ``tracefs.InstanceLock.if_stale``; nobody is left to remove
    it), or one carrying this pytest process's pid (the decoder tests' instances). A live run of
    someone else is not ours."""
    from ftraceipc.capture.tracefs import InstanceLock

    nums = [int(x) for x in re.findall(r"\d+", name)]
    if os.getpid() in nums:
        return True
    pid = owner_pid(name)
    if pid is None:
        return False
    if pid in SPAWNED or pid in OWN_PIDS or is_descendant(pid):
        return True
    with InstanceLock.if_stale(pid) as stale:
        return stale


def remove_instance(name: str) -> None:
    """Tracing off, events off, then rmdir (retrying while readers let go)."""
    path = INSTANCES / name
    for rel, value in (("tracing_on", "0"), ("set_event_pid", "\n"), ("set_event", "\n")):
        try:
            fd = os.open(path / rel, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
        except OSError:
            pass
    for _ in range(100):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
            time.sleep(0.1)


def owner_pid(name: str) -> int | None:
    m = re.fullmatch(r"ftraceipc-(\d+)(?:-[a-z]+)?", name)  # as ftraceipc.capture.tracefs names them
    return int(m.group(1)) if m else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    st = Path(f"/proc/{pid}/stat")
    try:
        return st.read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


# --- captures --------------------------------------------------------------------------------------------
def read_meta(cap: Path) -> dict:
    return json.loads((cap / "meta.json").read_text())


def proc_records(cap: Path) -> list[dict]:
    return [json.loads(ln) for ln in (cap / "proc.jsonl").read_text().splitlines() if ln.strip()]


def assert_complete(cap: Path) -> dict:
    """The capture directory has every part (docs/capture-format.md) and meta says complete."""
    meta = read_meta(cap)
    assert meta["complete"] is True, meta
    assert meta["format_version"] == 1
    assert meta["cpus"] and meta["ncpus"] == len(meta["cpus"])
    assert meta["page_size"] > 0
    assert meta["start_wall"] and meta["stop_wall"] and meta["stop_wall"] >= meta["start_wall"]
    for cpu in meta["cpus"]:
        raw = cap / "cpu" / f"cpu{cpu}.raw"
        assert raw.is_file(), raw
        assert raw.stat().st_size % meta["page_size"] == 0, f"{raw} is not whole pages"
    for name in ("header_page", "header_event", "saved_cmdlines", "saved_tgids"):
        assert (cap / "tracefs" / name).is_file(), name
    assert (cap / "tracefs" / "header_page").read_text().strip()
    for ev in meta["events"]:
        system, _, event = ev.partition(":")
        assert (cap / "tracefs" / "events" / system / event / "format").is_file(), ev
    assert (cap / "proc.jsonl").is_file()
    assert not (cap / "meta.tmp").exists()
    return meta


def info_json(cap: Path) -> dict:
    r = cli("info", str(cap), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout)


def events_jsonl(cap: Path, *events: str) -> list[dict]:
    args = ["events", str(cap), "--format", "jsonl"]
    for e in events:
        args += ["--event", e]
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return [json.loads(ln) for ln in r.stdout.splitlines()]


def send(p: subprocess.Popen, sig: int) -> None:
    os.kill(p.pid, sig)


SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP}
