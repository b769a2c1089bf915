"""Shared helpers for the bench/ scripts: running children that are always cleaned up, the machine
description, tables, JSON, parsing perf's output, and the generated blocks of BENCHMARKS.md.

Interface of every bench script run by ``bench/run_all.py``: ``--json PATH`` writes everything it
measured (with ``machine``: :func:`machine_info`), and a pure function ``markdown(results) -> str``
turns that JSON back into the Markdown it prints (tables and targets), so the driver can put the
same text into BENCHMARKS.md between ``<!-- bench:NAME:begin -->`` and ``<!-- bench:NAME:end -->``.

Cleanup contract (every script): a child still running when the script ends (normally, by an
exception, Ctrl-C, SIGTERM or SIGHUP) gets SIGINT (so ``ftraceipc capture`` and ``perf record`` tear
down), then SIGTERM, then SIGKILL; a tracing instance ``ftraceipc-<child pid>`` left behind is removed
(only ours: other runs' instances are never touched); temporary directories are removed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

REPO = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("ftraceipc") is None:  # not installed: use this checkout
    sys.path.insert(0, str(REPO))

TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


# --- signals and children -------------------------------------------------------------------------------
class Terminated(KeyboardInterrupt):
    """SIGTERM/SIGHUP, handled like Ctrl-C: unwind through every ``finally``."""


def _raise_terminated(signum, frame):  # noqa: ARG001
    raise Terminated(signal.Signals(signum).name)


def install_signal_handlers() -> None:
    # Ctrl-C raises KeyboardInterrupt even when started with SIGINT ignored (``cmd &`` in a script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _raise_terminated)


_live: dict[int, subprocess.Popen] = {}  # children not yet reaped


@dataclass
class ChildResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    wall: float  # seconds, fork to exit
    utime: float  # CPU seconds of the child and its waited-for descendants
    stime: float
    maxrss_kib: int  # peak RSS of the largest process in the child's tree (ru_maxrss)
    pid: int


def run(argv: Sequence[str], *, stdout_path: str | None = None, cwd: str | None = None,
        env: dict | None = None, check: bool = True, timeout: float | None = None) -> ChildResult:
    """Run ``argv``; stdout is captured (or sent to ``stdout_path``, e.g. /dev/null), stderr captured.
    Rusage comes from wait4 on this child alone (not the other children of this process)."""
    argv = [str(a) for a in argv]
    out_f = open(stdout_path, "wb") if stdout_path else None
    err_f = tempfile.TemporaryFile()
    cap_out = None if out_f else tempfile.TemporaryFile()
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=out_f or cap_out, stderr=err_f, cwd=cwd, env=env)
    _live[p.pid] = p
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(argv, timeout)
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        _live.pop(p.pid, None)
    finally:
        if p.pid in _live:
            stop_child(p)
        if out_f:
            out_f.close()
    err_f.seek(0)
    err = err_f.read().decode(errors="replace")
    err_f.close()
    out = ""
    if cap_out:
        cap_out.seek(0)
        out = cap_out.read().decode(errors="replace")
        cap_out.close()
    res = ChildResult(argv, p.returncode, out, err, wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss, p.pid)
    remove_child_instance(p.pid)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {p.returncode}:\n{err[-2000:]}")
    return res


def stop_child(p: subprocess.Popen) -> None:
    """SIGINT (lets ftraceipc / perf record tear down), then SIGTERM, then SIGKILL; reap it.
    A Ctrl-C at the terminal already reached the child: give it a moment to finish on its own first."""
    for sig, wait in ((None, 2.0), (signal.SIGINT, 15.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if p.poll() is not None:
            break
        if sig is not None:
            try:
                p.send_signal(sig)
            except OSError:
                pass
        try:
            p.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    _live.pop(p.pid, None)
    remove_child_instance(p.pid)


def stop_all_children() -> None:
    for p in list(_live.values()):
        stop_child(p)


# --- tracefs ---------------------------------------------------------------------------------------------
def tracefs_root() -> Path:
    for c in TRACEFS_CANDIDATES:
        if Path(c, "instances").is_dir():
            return Path(c)
    from ftraceipc.capture.tracefs import Tracefs

    return Tracefs.find(mount=True).root


def remove_instance(name: str) -> None:
    """Stop and remove ``instances/NAME`` if it exists (tracing off, events off, rmdir with retries)."""
    path = tracefs_root() / "instances" / name
    if not path.is_dir():
        return
    from ftraceipc.capture.tracefs import Instance, Tracefs

    Instance(Tracefs(tracefs_root()), name, is_new=True).destroy()


def remove_child_instance(pid: int) -> None:
    """A child ``ftraceipc capture`` killed hard leaves ``ftraceipc-<pid>`` (and ``-open``): remove exactly those."""
    for name in (f"ftraceipc-{pid}", f"ftraceipc-{pid}-open"):
        try:
            remove_instance(name)
        except Exception as e:  # noqa: BLE001
            print(f"warning: could not remove instance {name}: {e}", file=sys.stderr)


def foreign_instances(own: Iterable[str] = ()) -> list[str]:
    """Tracing instances that are not ours (another engineer's test run adds tracing load)."""
    own = set(own) | {f"ftraceipc-{pid}{sfx}" for pid in list(_live) for sfx in ("", "-open")}  # our own captures
    try:
        return sorted(n for n in os.listdir(tracefs_root() / "instances") if n not in own)
    except OSError:
        return []


def top_level_events_on() -> bool:
    try:
        return bool((tracefs_root() / "set_event").read_text().strip())
    except OSError:
        return False


MAX_WAIT_ENV = "FTRACEIPC_BENCH_MAX_WAIT"  # caps every wait for other tracing instances (run_all --quick: 5 s)
RETRIES_ENV = "FTRACEIPC_BENCH_RETRIES"  # caps the re-measuring of busy runs (run_all --quick: 0)


def wait_quiet(own: Iterable[str] = (), max_wait: float = 120.0, log=None) -> dict:
    """Wait (up to ``max_wait`` s, capped by $FTRACEIPC_BENCH_MAX_WAIT) until no foreign tracing
    instance exists; say what was seen."""
    cap = os.environ.get(MAX_WAIT_ENV)
    if cap:
        max_wait = min(max_wait, float(cap))
    t0 = time.monotonic()
    seen: set[str] = set()
    while True:
        f = foreign_instances(own)
        seen.update(f)
        if not f:
            break
        if time.monotonic() - t0 > max_wait:
            break
        if log and len(seen) == len(f) and time.monotonic() - t0 < 0.5:
            log(f"  waiting for other tracing instances to go: {', '.join(f)}")
        time.sleep(0.5)
    return {"waited_s": round(time.monotonic() - t0, 2), "foreign_instances": sorted(seen),
            "still_busy": bool(foreign_instances(own)), "loadavg1": os.getloadavg()[0]}


class BusyMonitor:
    """Notices other tracing instances (another engineer's test captures) that exist at any moment
    while armed: polls ``instances/`` every ``interval`` s from a thread of this process."""

    def __init__(self, own: Iterable[str] = (), interval: float = 0.1):
        import threading

        self.own = set(own)
        self.interval = interval
        self.seen: set[str] = set()
        self._armed = False
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, name="busy-monitor", daemon=True)
        self._t.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self._armed:
                self.seen.update(foreign_instances(self.own))

    def arm(self) -> None:
        self.seen = set(foreign_instances(self.own))
        self._armed = True

    def disarm(self) -> list[str]:
        self._armed = False
        self.seen.update(foreign_instances(self.own))
        return sorted(self.seen)

    def close(self) -> None:
        self._stop.set()
        self._t.join()


def measure_quietly(fn, own: Iterable[str] = (), retries: int = 3, max_wait: float = 120.0, monitor=None):
    """``fn()`` after waiting for other tracing instances to go; again (up to ``retries`` times) if
    one showed up while it ran. Returns (fn's result, {"attempts", "busy_during", "waited_s"})."""
    own = list(own)
    waited = 0.0
    if os.environ.get(RETRIES_ENV):
        retries = min(retries, int(os.environ[RETRIES_ENV]))
    for attempt in range(retries + 1):
        q = wait_quiet(own, max_wait)
        waited += q["waited_s"]
        if monitor is not None:
            monitor.arm()
        res = fn()
        busy = monitor.disarm() if monitor is not None else foreign_instances(own)
        if not busy:
            break
        log(f"  other tracing instances during the run ({', '.join(busy)}): "
            + ("measuring again" if attempt < retries else "kept, marked busy"))
    return res, {"attempts": attempt + 1, "busy_during": busy, "waited_s": round(waited, 2)}


def default_events() -> list[str]:
    """ftraceipc's default event set, filtered to the events this kernel has."""
    from ftraceipc.capture.events import DEFAULT_EVENTS

    root = tracefs_root()
    return [e for e in DEFAULT_EVENTS if (root / "events" / e.replace(":", "/") / "format").is_file()]


# --- tools ------------------------------------------------------------------------------------------------
def ftraceipc_argv() -> list[str]:
    """The ``ftraceipc`` console script of this interpreter (skips pyenv's shim), else ``-m ftraceipc``."""
    exe = Path(sysconfig.get_path("scripts")) / "ftraceipc"
    if exe.is_file() and os.access(exe, os.X_OK):
        return [str(exe)]
    return [sys.executable, "-m", "ftraceipc"]


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        sys.exit(f"error: needed on PATH: {', '.join(missing)}")
    if os.geteuid() != 0:
        sys.exit("error: run as root (tracing needs it)")


_USECS = re.compile(r"^\s*([0-9.]+)\s+usecs/op", re.M)
_TOTAL = re.compile(r"Total time:\s*([0-9.]+)\s*\[sec\]")


def parse_usecs_per_op(text: str) -> float:
    m = _USECS.search(text)
    if not m:
        raise RuntimeError(f"no 'usecs/op' in perf bench output:\n{text[-1000:]}")
    return float(m.group(1))


def parse_total_time(text: str) -> float | None:
    m = _TOTAL.search(text)
    return float(m.group(1)) if m else None


def perf_record_summary(stderr: str) -> dict:
    """What ``perf record`` says at the end: samples written, lost chunks, lost percentage."""
    out: dict[str, Any] = {"samples": None, "lost_chunks": 0, "lost_pct": 0.0}
    m = re.search(r"\((\d+) samples\)", stderr)
    if m:
        out["samples"] = int(m.group(1))
    m = re.search(r"lost (\d+) chunks", stderr)
    if m:
        out["lost_chunks"] = int(m.group(1))
    m = re.search(r"samples and lost ([0-9.]+)%", stderr)
    if m:
        out["lost_pct"] = float(m.group(1))
    return out


def perf_lost_samples(data: str) -> dict:
    """Samples and lost samples per ``perf report --stats`` (lost = sum of the per-event
    LOST_SAMPLES counts; LOST records = ring-buffer overflows, their count of records)."""
    r = run(["perf", "report", "-i", data, "--stats"], check=False)
    text = r.stdout + r.stderr
    samples = lost = lost_records = 0
    section = "aggregated"
    for line in text.splitlines():
        s = line.strip()
        if s.endswith(" stats:") and not s.startswith("Aggregated"):
            section = "event"
            continue
        m = re.match(r"(\w+) events:\s+(\d+)", s)
        if not m:
            continue
        kind, n = m.group(1), int(m.group(2))
        if section == "aggregated":
            if kind == "SAMPLE":
                samples = n
            elif kind == "LOST":
                lost_records = n
        elif kind == "LOST_SAMPLES":
            lost += n
    return {"samples": samples, "lost_samples": lost, "lost_records": lost_records}


# --- the machine ---------------------------------------------------------------------------------------------
def machine_info() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    perf = ""
    if shutil.which("perf"):
        perf = subprocess.run(["perf", "--version"], capture_output=True, text=True).stdout.strip()
    full = git_commit()
    commit = full[:7]
    dirty = git_dirty()
    import ftraceipc
    from ftraceipc import __version__

    src = Path(ftraceipc.__file__).resolve().parent.parent
    if src != REPO:  # e.g. PYTHONPATH points at another tree: say which code is measured
        commit = full = f"code from {src}"
        dirty = False
    return {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "commit": full, "dirty": dirty,
            "kernel": platform.release(), "nproc": os.cpu_count(), "cpu_model": model,
            "mem_gib": round(mem_kib / 2**20, 1), "python": platform.python_version(), "perf": perf,
            "ftraceipc": __version__, "git": commit + ("+dirty" if dirty else ""),
            "loadavg_start": os.getloadavg()}


# Files the driver itself writes: changing them does not make the measured code "dirty".
GENERATED_PATHS = ("BENCHMARKS.md", "bench/results")


def git_commit() -> str:
    """``git rev-parse HEAD`` of this checkout ("" outside git)."""
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def git_dirty() -> bool:
    """Uncommitted changes to tracked files, other than the benchmark results and BENCHMARKS.md."""
    out = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "--", "."]
                         + [f":(exclude){p}" for p in GENERATED_PATHS], capture_output=True, text=True).stdout
    return bool(out.strip())


def describe_machine(m: dict) -> str:
    return (f"{m['date']}  kernel {m['kernel']}, {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB, "
            f"Python {m['python']}, {m['perf']}, ftraceipc {m['ftraceipc']} ({m['git']})")


# --- numbers and tables -------------------------------------------------------------------------------------
def median(xs: Sequence[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (reads fine in a terminal too)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    w = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    num = re.compile(r"^[-+]?[0-9][0-9,.]*\s*(%|M|k|MiB|s|×)?(\s*\(.*\))?$|^[0-9.]+–[0-9.]+$|^$")
    right = [all(num.match(r[i]) for r in cells[1:]) for i in range(len(headers))]

    def line(r):
        return "| " + " | ".join(c.rjust(w[i]) if right[i] else c.ljust(w[i]) for i, c in enumerate(r)) + " |"

    sep = "|" + "|".join("-" * (x + 1) + ":" if right[i] else "-" * (x + 2) for i, x in enumerate(w)) + "|"
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


def fmt_targets(targets: Sequence[dict]) -> str:
    """``[{"name", "met", "detail"}]`` as lines; ``met`` None means not judged."""
    verdict = {True: "MET", False: "NOT MET", None: "not judged"}
    return "\n".join(f"target: {t['name']}: {verdict[t['met']]} ({t['detail']})" for t in targets)


# --- the generated blocks of BENCHMARKS.md ------------------------------------------------------------------
class MarkerError(ValueError):
    """BENCHMARKS.md lacks (or repeats) a ``<!-- bench:NAME:begin/end -->`` pair."""


def markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"


def replace_block(text: str, name: str, body: str, doc: str = "BENCHMARKS.md") -> str:
    """``text`` with everything between the begin and end markers of ``name`` replaced by ``body``;
    the markers and everything outside them are kept byte for byte. A marker counts only on a line
    of its own (prose may quote it). Raises :class:`MarkerError` (saying what to add) when a marker
    is missing, repeated, or the end comes before the begin."""
    begin, end = markers(name)
    bs = list(re.finditer(rf"^{re.escape(begin)}[ \t]*$", text, re.M))
    es = list(re.finditer(rf"^{re.escape(end)}[ \t]*$", text, re.M))
    if len(bs) != 1 or len(es) != 1:
        what = "no" if not bs or not es else "more than one"
        missing = begin if len(bs) != 1 else end
        raise MarkerError(f"{doc} has {what} {missing} marker line (found begin {len(bs)}x, end {len(es)}x): "
                          f"put exactly one line {begin} and one line {end} where the {name} table goes")
    i, j = bs[0].end(), es[0].start()
    if j < i:
        raise MarkerError(f"{doc}: {end} comes before {begin}: put the begin marker first")
    return text[:i] + "\n" + body.strip("\n") + "\n" + text[j:]


def block_names(text: str) -> list[str]:
    """Names of the generated blocks in ``text``, in order (from their begin marker lines)."""
    return re.findall(r"^<!-- bench:([\w.-]+):begin -->[ \t]*$", text, re.M)


def machine_line(m: dict) -> str:
    """Machine of a results file, on one line: CPU model, cores, kernel, RAM."""
    return (f"{m.get('cpu_model') or 'unknown CPU'}, {m.get('nproc')} cores, kernel {m.get('kernel')}, "
            f"{m.get('mem_gib')} GiB RAM")


def stamp(m: dict, source: str) -> str:
    """The line that opens a generated block: commit, date, machine, where the numbers are."""
    commit = m.get("commit") or m.get("git") or "unknown"
    dirty = " **plus uncommitted changes**" if m.get("dirty") else ""
    return (f"_Generated by `bench/run_all.py` at commit `{commit}`{dirty}, {m.get('date', '?')}, on "
            f"{machine_line(m)}; results: `{source}`._")


def write_json(path: str | None, data: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=1, default=str) + "\n")
        print(f"wrote {path}")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def tempdir(prefix: str, base: str | None = None, keep: bool = False):
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    try:
        yield Path(d)
    finally:
        if keep:
            log(f"kept {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def cleanup_on_exit():
    """Run the body with SIGTERM/SIGHUP turned into KeyboardInterrupt; stop every child at the end."""
    install_signal_handlers()
    try:
        yield
    except KeyboardInterrupt as e:
        log(f"interrupted ({str(e) or 'SIGINT'}): cleaning up")
        raise SystemExit(130)
    finally:
        # A second Ctrl-C during cleanup must not leave children or instances behind.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stop_all_children()
        finally:
            signal.signal(signal.SIGINT, old)


def self_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
