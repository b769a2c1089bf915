"""The capture: set up a private instance, run or watch the workload, move pages, tear down.

Teardown runs on every exit path (normal end, Ctrl-C, SIGTERM, SIGHUP, an exception, the traced
command failing): tracing off, readers drained and closed, the instance removed, metadata written.
"""

from __future__ import annotations

import errno
import os
import platform
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ftraceipc import __version__
from ftraceipc.capture.events import DEFAULT_EVENTS, default_filters
from ftraceipc.capture.procsnap import OPEN_EVENTS, OpenNamer, ProcWatcher, TraceClock
from ftraceipc.capture.reader import TRACER_COMMS, CpuReaderProcess, ForkedWorker, Watermarks
from ftraceipc.capture.store import CaptureDir, CaptureMeta, CpuLost
from ftraceipc.capture.tracefs import INSTANCE_PREFIX, Instance, InstanceLock, Tracefs, require_root
from ftraceipc.errors import CommandError, FtraceIPCError, TracefsError


def _cpu_self() -> float:
    """CPU seconds (user + system) of this process so far, all its threads (not its children)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _not_tracer_comms() -> list[str]:
    """Filter terms leaving out the opens of every ftraceipc's /proc readers (ours and those of another
    capture running at the same time), named by ``reader.set_comm``."""
    return [f'comm != "{c}"' for c in TRACER_COMMS]


DEFAULT_BUFFER_KB = 16384
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class CaptureOptions:
    output: Path
    command: list[str] | None = None
    duration: float | None = None
    buffer_kb: int = DEFAULT_BUFFER_KB
    events: list[str] | None = None  # None: the default set (events this kernel lacks are skipped)
    # a part of the default set chosen for some detectors (capture -D; events this kernel lacks are
    # skipped, as the default set's), traced with ``events`` if both are given; ``detectors`` go in meta
    subset: list[str] | None = None
    detectors: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    tree_only: bool = False
    clock: str = "local"
    force: bool = False
    status: bool = True  # show the one-line status while tracing
    proc_interval: float = 0.01  # at least; the watcher keeps itself under 2.5 % of a CPU
    open_watcher: bool = True  # procsnap.OpenNamer: FIFOs named as they are opened
    # ftraceipc live: the readers flush the partly filled page this often and publish how far each
    # CPU's file is whole (Capture.watermarks), so a follower decodes the capture while it grows
    flush_ms: int | None = None


@dataclass
class CaptureResult:
    path: Path
    meta: CaptureMeta
    events: int
    bytes: int
    skipped_events: list[str]
    stopped_by: str  # "command", "duration", "pids" (every --pid process exited), "signal:SIGINT", ...

    @property
    def lost_total(self) -> int:
        return sum(v.total for v in self.meta.lost.values())


Report = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def validate(opts: CaptureOptions, tracefs: Tracefs) -> tuple[list[str], list[str]]:
    """Check everything before touching the kernel; return the events to enable and those skipped."""
    if opts.buffer_kb <= 0:
        raise CommandError(f"--buffer-kb must be positive (got {opts.buffer_kb})", hint="e.g. --buffer-kb 16384")
    if opts.duration is not None and opts.duration <= 0:
        raise CommandError(f"--duration must be positive (got {opts.duration})", hint="e.g. --duration 5")
    if opts.tree_only and not (opts.command or opts.pids):
        raise CommandError("--tree-only needs a command or --pid", hint="add '-- CMD ARGS' or --pid PID")
    for pid in opts.pids:
        if not Path(f"/proc/{pid}").is_dir():
            raise CommandError(f"no process with pid {pid}", hint="check the pid given to --pid")
    if opts.command:
        exe = opts.command[0]
        if "/" in exe:
            if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
                raise CommandError(f"command not found or not executable: {exe}", hint="check the path after '--'")
        elif shutil.which(exe) is None:
            raise CommandError(f"command not found: {exe}", hint="check its name or give its full path after '--'")
    wanted, skipped = [], []
    if opts.events is None or opts.subset is not None:
        base = DEFAULT_EVENTS if opts.subset is None else opts.subset
        wanted = [e for e in base if tracefs.has_event(e)]
        skipped = [e for e in base if not tracefs.has_event(e)]
    for e in opts.events or []:
        if not tracefs.has_event(e):
            raise TracefsError(f"event {e} is not available on this kernel",
                               hint=f"remove it from --events (the kernel's list: {tracefs.root}/available_events)")
        if e not in wanted:
            wanted.append(e)
    if not wanted:
        raise CommandError("no events to trace", hint="give --events or use the default set")
    return wanted, skipped


def prepare_output(opts: CaptureOptions) -> CaptureDir:
    out = Path(opts.output)
    if out.exists():
        if not opts.force:
            raise CommandError(f"output {out} already exists", hint="choose another -o or add --force to replace it")
        if out.is_dir() and (out / "meta.json").exists():
            shutil.rmtree(out)
        elif out.is_dir() and not any(out.iterdir()):
            pass
        else:
            raise CommandError(f"output {out} exists and is not a capture", hint="choose another -o")
    try:
        (out / "cpu").mkdir(parents=True, exist_ok=True)
        (out / "tracefs" / "events").mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise CommandError(f"cannot write the capture to {out}: {e.strerror}", hint="choose a writable -o PATH") from None
    return CaptureDir(out)


def copy_formats(tracefs: Tracefs, cap: CaptureDir, events: list[str]) -> None:
    for name in ("header_page", "header_event"):
        (cap.tracefs_dir / name).write_text(tracefs.read(f"events/{name}"))
    for ev in events:
        system, _, name = ev.partition(":")
        dst = cap.format_path(system, name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text((tracefs.event_dir(ev) / "format").read_text())


def copy_saved(tracefs: Tracefs, inst: Instance, cap: CaptureDir) -> None:
    for name in ("saved_cmdlines", "saved_tgids"):
        text = ""
        for src in (inst.file(name), tracefs.root / name):
            try:
                text = src.read_text()
                break
            except OSError:
                continue
        (cap.tracefs_dir / name).write_text(text)


def _scan_page_flags(cap: CaptureDir, meta: CaptureMeta) -> None:
    """Lost-event flags the kernel set in the pages themselves (beside the per-CPU counters)."""
    from ftraceipc.decode.formats import parse_header_event, parse_header_page
    from ftraceipc.decode.ringbuf import PageLayout, scan_missed

    layout = PageLayout.from_headers(parse_header_page(cap.read_text("header_page")),
                                     parse_header_event(cap.read_text("header_event")), meta.page_size)
    for cpu in meta.cpus:
        path = cap.cpu_path(cpu)
        if path.exists():
            meta.cpu_bytes[cpu] = path.stat().st_size
            scan = scan_missed(path, layout)
            lost = meta.lost.setdefault(cpu, CpuLost())
            lost.pages_missed, lost.missed_events = scan.pages_missed, scan.missed_events


def _invoking_user() -> dict:
    """Run the command as the user who called sudo, not as root: their uid, gid and groups, and
    their HOME, USER, LOGNAME and SHELL (from the password database; sudo leaves root's)."""
    if os.geteuid() != 0:
        return {}
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if not (uid and gid and uid.isdigit() and gid.isdigit()) or uid == "0":
        return {}
    kw: dict = {"user": int(uid), "group": int(gid), "env": {}}
    try:
        pw = pwd.getpwuid(int(uid))
    except KeyError:
        kw["extra_groups"] = []
        return kw
    try:
        kw["extra_groups"] = os.getgrouplist(pw.pw_name, int(gid))
    except OSError:
        kw["extra_groups"] = []
    kw["env"] = {"HOME": pw.pw_dir, "USER": pw.pw_name, "LOGNAME": pw.pw_name, "SHELL": pw.pw_shell or "/bin/sh"}
    return kw


def _bytes_written(cap: CaptureDir, cpus: list[int]) -> int:
    """The size of the per-CPU page files so far."""
    total = 0
    for cpu in cpus:
        try:
            total += os.stat(cap.cpu_path(cpu)).st_size
        except OSError:
            pass
    return total


def _now_ts(inst: Instance, cpu: int) -> int | None:
    try:
        for line in inst.per_cpu(cpu, "stats").read_text().splitlines():
            if line.startswith("now ts:"):
                sec = line.split(":", 1)[1].strip()
                whole, dot, frac = sec.partition(".")
                if not dot:  # counter, uptime and x86-tsc clocks print raw integers
                    return int(whole)
                return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])
    except (OSError, ValueError):
        pass
    return None


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc/PID/task/TID/children), parents before children."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop(0)
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                kids = Path(f"/proc/{p}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in out:
                    out.append(k)
                    todo.append(k)
    return out


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        st = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return st[st.rfind(")") + 2:][:1] not in ("Z", "X", "")


class GatedChild:
    """The traced command, forked by us and held at a gate until tracing is on.

    Its pid is known (and can be filtered) before it runs, and its exec is traced. Forked before any of
    our threads start, so fork is safe; the child drops to the invoking user and execs.
    """

    def __init__(self, argv: list[str], user: dict):
        self.argv = argv
        self.returncode: int | None = None
        r, w = os.pipe2(os.O_CLOEXEC)
        er, ew = os.pipe2(os.O_CLOEXEC)  # exec errors come back here
        pid = os.fork()
        if pid == 0:  # child
            try:
                os.close(w)
                os.close(er)
                # Python ignores SIGPIPE and SIGXFSZ, and ignored signals survive exec: give the
                # command the dispositions a shell would (as subprocess's restore_signals does), so
                # a writer to a closed pipe dies of SIGPIPE as it would untraced.
                for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ):
                    signal.signal(s, signal.SIG_DFL)
                if os.read(r, 1) != b"g":
                    os._exit(125)  # the capture ended before the gate opened
                os.close(r)
                env = os.environ
                if user:
                    os.setgroups(user.get("extra_groups", []))
                    os.setgid(user["group"])
                    os.setuid(user["user"])
                    env = {**os.environ, **user.get("env", {})}
                os.execvpe(argv[0], argv, env)
            except BaseException as e:  # noqa: BLE001 - report and leave, never return into our code
                try:
                    os.write(ew, str(getattr(e, "strerror", None) or e).encode()[:500])
                finally:
                    os._exit(127)
        os.close(r)
        os.close(ew)
        self.pid = pid
        self._gate = w
        self._err = er

    def open_gate(self) -> None:
        if self._gate >= 0:
            try:
                os.write(self._gate, b"g")
            except BrokenPipeError:
                pass  # it died at the gate: poll() reports how
            os.close(self._gate)
            self._gate = -1

    def close_gate(self) -> None:
        if self._gate >= 0:
            os.close(self._gate)
            self._gate = -1

    def exec_error(self) -> str | None:
        """After the gate opened: the reason exec failed, or None once it succeeded."""
        if self._err < 0:
            return None
        data = os.read(self._err, 512)  # blocks until exec (CLOEXEC closes it) or the error is written
        os.close(self._err)
        self._err = -1
        return data.decode(errors="replace") or None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() >= end:
                raise subprocess.TimeoutExpired(self.argv, timeout)
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def signal_tree(self, sig: int, below: list[int] | None = None) -> list[int]:
        """``sig`` to the command and the processes below it (``below``, or those found now): a
        shell's children would outlive it otherwise. Returns the processes below it."""
        if below is None:
            below = _descendants(self.pid) if self.poll() is None else []
        for pid in [self.pid] + below:
            try:
                if pid == self.pid:
                    self.send_signal(sig)
                elif _running(pid):
                    os.kill(pid, sig)
            except OSError:
                pass
        return below

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Capture:
    """One capture run. Use ``run()``; it cleans up on every path."""

    def __init__(self, opts: CaptureOptions, report: Report = _stderr, follower=None):
        """``follower``: an object whose ``start(cap, watermarks, now)`` forks a process that reads the
        capture while it is written (``ftraceipc live``), called once the readers run and before any
        thread of ours starts (``now()``: the trace clock); it returns that process's pid (counted among
        the tracer's tasks). The
        caller stops it after ``run()``: meta.json is final then."""
        self.opts = opts
        self.report = report
        self.follower = follower
        self.follower_pid: int | None = None
        self.watermarks: Watermarks | None = None
        self.instance: Instance | None = None
        self.readers: list[CpuReaderProcess] = []
        self.watcher: ProcWatcher | None = None
        self.open_watcher: ForkedWorker | None = None
        self.open_instance: Instance | None = None
        self._ru_on: float | None = None  # this process's CPU seconds when tracing went on, and off
        self._ru_off: float | None = None
        self._open_lost: int | None = None  # lines of the open instance overwritten before the watcher read them
        self.child: GatedChild | None = None
        self.stop_reason: str | None = None
        self._old_handlers: dict[int, object] = {}
        self._proc_file = None
        self._event_counts: list[int] = []
        self._below: list[int] = []  # processes below the command when a stop signal was passed on
        self.teardown_error: Exception | None = None  # the first exception a teardown step raised
        self.disk_full = False  # the capture's disk filled up: the error says so, once

    # --- signals ---------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.stop_reason is None:
            self.stop_reason = f"signal:{name}"
        if self.child is not None and self.child.poll() is None and signum != signal.SIGINT:
            # Ctrl-C reaches the command through the terminal; other signals we pass on, to the
            # command's whole tree (the terminal would have reached all of it too).
            self._below = sorted(set(self._below) | set(self.child.signal_tree(signum)))

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for s in STOP_SIGNALS:
            self._old_handlers[s] = signal.signal(s, self._on_signal)

    def _restore_signals(self) -> None:
        for s, h in self._old_handlers.items():
            signal.signal(s, h)
        self._old_handlers.clear()

    # --- the run ---------------------------------------------------------------------------
    def run(self) -> CaptureResult:
        require_root()
        tracefs = Tracefs.find(mount=True)
        events, skipped = validate(self.opts, tracefs)
        self._events = events
        cap = prepare_output(self.opts)
        if self.opts.tree_only:
            self.report("note: --tree-only hides tasks outside the traced tree (e.g. a server it talks to)")
        tracefs.remove_stale_instances(self.report)
        meta = CaptureMeta(tool_version=__version__, kernel_release=platform.release(),
                           hostname=platform.node(), machine=platform.machine(), events=events,
                           buffer_kb=self.opts.buffer_kb, command=self.opts.command,
                           target_pids=list(self.opts.pids), tree_only=self.opts.tree_only,
                           clock=self.opts.clock, skipped_events=list(skipped),
                           detectors=list(self.opts.detectors))
        lock = InstanceLock.acquire()  # held until our instances are gone: no other run takes them for stale
        total_bytes = 0
        ok = False
        try:
            self._install_signals()
            self.instance = inst = Instance.create(tracefs)
            inst.tracing_on(False)  # a new instance starts on: keep our own set-up out of the buffer
            inst.set_buffer_kb(self.opts.buffer_kb)
            inst.set_clock(self.opts.clock)
            inst.write("buffer_percent", "50")
            for opt, on in (("record-tgid", True), ("record-cmd", True), ("overwrite", True)):
                try:
                    inst.set_option(opt, on)
                except OSError:
                    pass
            inst.enable_events(events)
            for ev, expr in default_filters().items():
                if ev in events:
                    inst.set_filter(ev, expr)
                    meta.filters[ev] = expr
            meta.cpus = inst.cpus
            meta.page_size = inst.page_size
            copy_formats(tracefs, cap, events)
            cap.write_meta(meta)

            if self.opts.command:
                self.child = GatedChild(self.opts.command, _invoking_user())
                meta.command_pid = self.child.pid

            if self.opts.tree_only:
                roots = list(self.opts.pids) + ([self.child.pid] if self.child else [])
                inst.set_event_pids(roots, follow_fork=True)

            flush = self.opts.flush_ms
            if flush is not None:
                self.watermarks = Watermarks(meta.cpus)
            self._proc_file = open(cap.proc_path, "w")
            self.watcher = ProcWatcher(self._proc_file, interval=self.opts.proc_interval,
                                       root_pids=self.opts.pids, exclude={os.getpid()},
                                       clock=TraceClock(inst.per_cpu(meta.cpus[0], "stats")) if meta.cpus else None,
                                       marks=self.watermarks)
            if self.child:
                self.watcher.add_root(self.child.pid)
            self.watcher.start_snapshot()

            for cpu in meta.cpus:  # forked: before any thread of ours starts
                r = CpuReaderProcess(str(inst.per_cpu(cpu, "trace_pipe_raw")), str(cap.cpu_path(cpu)), cpu,
                                     meta.page_size, flush_ms=flush, stats_path=str(inst.per_cpu(cpu, "stats")),
                                     marks=self.watermarks)
                self.readers.append(r)
                r.start()
            self._start_open_watcher(tracefs, events, cap)
            if self.follower is not None:
                self.follower_pid = self.follower.start(
                    cap, self.watermarks, lambda: _now_ts(inst, meta.cpus[0]) if meta.cpus else None,
                    instance=inst.path)
            self.watcher.exclude.update(r.pid for r in self.readers)
            if self.open_watcher is not None:
                self.watcher.exclude.add(self.open_watcher.pid)
            if self.follower_pid is not None:
                self.watcher.exclude.add(self.follower_pid)
            self.watcher.start()
            # Our own events are recorded (a kernel pid filter would cost every traced task ~5 %):
            # the capture names our tasks so that analyses leave them out.
            meta.tracer_pids = [os.getpid()] + [r.pid for r in self.readers] + (
                [self.open_watcher.pid] if self.open_watcher is not None else []) + (
                [self.follower_pid] if self.follower_pid is not None else [])
            meta.tracer_tids = sorted({int(t) for t in os.listdir("/proc/self/task")} | set(meta.tracer_pids))
            self._filter_open_events(meta.tracer_tids)

            meta.start_wall = time.time()
            self._ru_on = _cpu_self()
            inst.tracing_on(True)
            meta.start_ts = _now_ts(inst, meta.cpus[0]) if meta.cpus else None
            if self.follower is not None:
                cap.write_meta(meta)  # the follower waits for start_ts, the command and our tasks
            if self.child and self.stop_reason is None:  # a stop signal during set-up: never start it
                self.child.open_gate()
                err = self.child.exec_error()
                if err:
                    raise CommandError(f"cannot run {self.opts.command[0]}: {err}", hint="check the command after '--'")
            self._announce()
            self._wait(inst, meta, cap)
            ok = True
        finally:
            try:
                total_bytes = self._teardown(tracefs, cap, meta)
            finally:
                lock.release()
            if not ok and meta.start_wall is None:
                shutil.rmtree(cap.root, ignore_errors=True)  # failed before tracing: nothing worth keeping
        if self.teardown_error is not None:  # the run went well, the clean-up did not (all of it ran)
            e = self.teardown_error
            why = e.line() if isinstance(e, FtraceIPCError) else str(e)
            raise FtraceIPCError(f"cleaning up after the capture failed: {why}",
                                 hint=f"the capture in {cap.root} is marked incomplete") from e
        events_total = sum(r_ev for r_ev in self._event_counts)
        return CaptureResult(cap.root, meta, events_total, total_bytes, skipped, self.stop_reason or "end")

    def _count_open_lost(self) -> None:
        """Lines of the open watcher's instance overwritten before it read them (its pauses)."""
        oi = self.open_instance
        if oi is None or not oi.exists:
            return
        n = 0
        for cpu in oi.cpus:
            st = oi.cpu_stats(cpu)
            n += st.overrun + st.dropped_events
        self._open_lost = n

    def _cost(self, meta: CaptureMeta) -> dict:
        """What this capture cost the machine: CPU seconds of the page readers, the open watcher and
        this process (the /proc watcher thread and the controller), and the event rate. Measured with
        the processes' own clocks (``os.times`` in each worker, ``getrusage`` here)."""
        def total(xs) -> float | None:
            xs = [x for x in xs if x is not None]
            return round(sum(xs), 3) if xs else None

        dur = (meta.stop_wall or 0) - (meta.start_wall or 0)
        events = sum(self._event_counts or [])
        w = self.open_watcher
        return {
            "seconds": round(dur, 3),
            "events": events,
            "events_per_s": round(events / dur) if dur > 0 else None,
            "readers_cpu_s": total(r.cpu_s for r in self.readers),
            "open_watcher_cpu_s": None if w is None else w.cpu_s,
            "open_lookups": None if w is None else w.result.get("seen"),
            "open_lines": None if w is None else w.result.get("lines"),
            "open_paused_s": None if w is None else w.result.get("paused_s"),
            "open_pauses": None if w is None else w.result.get("pauses"),
            "open_lines_lost": self._open_lost,
            "proc_watcher_cpu_s": None if self.watcher is None or self.watcher.cpu_s is None
            else round(self.watcher.cpu_s, 3),
            "proc_watcher_rounds": None if self.watcher is None else self.watcher.rounds,
            # while tracing only: start-up (imports, setting up) and teardown are not the workload's cost
            "controller_cpu_s": None if self._ru_on is None or self._ru_off is None
            else round(self._ru_off - self._ru_on, 3),
        }

    def _start_open_watcher(self, tracefs: Tracefs, events: list[str], cap: CaptureDir) -> None:
        """A second, tiny instance with the successful opens, read by a worker process that names
        FIFOs while they are open (procsnap.OpenNamer). Optional: without it FIFOs are named by the
        /proc polls only. Forked like the readers, before any thread of ours starts."""
        if "syscalls:sys_exit_openat" not in events or not self.opts.open_watcher:
            return
        try:
            oi = self.open_instance = Instance.create(tracefs, f"{INSTANCE_PREFIX}{os.getpid()}-open")
            oi.tracing_on(False)
            oi.set_buffer_kb(256)
            oi.set_clock(self.opts.clock)
            oi.write("buffer_percent", "0")  # poll() on trace_pipe wakes at every event, not at 50 %
            try:
                oi.set_option("record-tgid", True)  # each line names its process: no /proc/TID/status read
            except (OSError, FtraceIPCError):
                pass
            avail = [e for e in OPEN_EVENTS if tracefs.has_event(e)]
            oi.enable_events(avail)
            for e in avail:
                oi.set_filter(e, " && ".join(["ret >= 0", *_not_tracer_comms()]))
            own = os.getpid()
            tp, out = str(oi.path / "trace_pipe"), str(cap.root / "opens.jsonl")
            st = str(self.instance.per_cpu(self.instance.cpus[0], "stats"))  # the main buffer's clock
            w = ForkedWorker(lambda: OpenNamer(tp, out, own, st))
            w.label = "open watcher"
            w.comm = TRACER_COMMS[0]
            w.start()
            self.open_watcher = w
            oi.tracing_on(True)
        except (OSError, FtraceIPCError) as e:
            self.report(f"warning: FIFOs opened by path are named by the /proc polls only ({e})")

    def _filter_open_events(self, tids: list[int]) -> None:
        """Our own opens (the /proc watcher reads /proc all the time) must not wake the open watcher."""
        if self.open_instance is None:
            return
        expr = " && ".join(["ret >= 0", *_not_tracer_comms()] + [f"common_pid != {t}" for t in tids])
        for e in OPEN_EVENTS:
            try:
                self.open_instance.set_filter(e, expr)
            except FtraceIPCError:
                pass

    def _announce(self) -> None:
        if self.opts.detectors:
            self.report(f"Tracing the {len(self._events)} events {', '.join(self.opts.detectors)} "
                        f"need{'s' if len(self.opts.detectors) == 1 else ''} ('ftraceipc analyze' runs "
                        f"{'it' if len(self.opts.detectors) == 1 else 'them'})")
        if self.opts.command:
            self.report(f"Tracing {' '.join(self.opts.command)} (pid {self.child.pid})… Ctrl-C to end")
        elif self.opts.duration:
            self.report(f"Tracing for {self.opts.duration:g} s… Ctrl-C to end")
        else:
            self.report("Tracing… Ctrl-C to end")

    def _wait(self, inst: Instance, meta: CaptureMeta, cap: CaptureDir) -> None:
        start = time.monotonic()
        last_status = 0.0
        last_events = 0
        last_check = 0.0
        show = self.opts.status and sys.stderr.isatty()
        while self.stop_reason is None:
            if self.child is not None and self.child.poll() is not None:
                self.stop_reason = "command"
                break
            elapsed = time.monotonic() - start
            if self.opts.duration is not None and elapsed >= self.opts.duration:
                self.stop_reason = "duration"
                break
            if self.child is None and self.opts.pids and elapsed - last_check >= 0.2:
                last_check = elapsed  # as perf record -p: the run ends with the processes it follows
                if not any(map(_running, self.opts.pids)):
                    self.stop_reason = "pids"
                    who = ", ".join(map(str, self.opts.pids))
                    self.report(f"{'every --pid process' if len(self.opts.pids) > 1 else 'the --pid process'} "
                                f"({who}) exited after {elapsed:.1f} s: tracing stopped")
                    break
            for r in self.readers:
                if r.error is not None:
                    if getattr(r.error, "errno", None) == errno.ENOSPC:
                        self.disk_full = True
                        raise CommandError(f"the disk of {cap.root} is full: the capture stopped after "
                                           f"{elapsed:.1f} s and what it holds is kept",
                                           hint="free some space or write elsewhere with -o")
                    raise FtraceIPCError(f"reading CPU{r.cpu}'s ring buffer failed: {r.error}")
            if show and elapsed - last_status >= 0.5:
                events, lost = self._live_counts(inst, meta)
                rate = (events - last_events) / max(elapsed - last_status, 1e-9)
                last_events, last_status = events, elapsed
                written = _bytes_written(cap, meta.cpus)  # the readers report theirs only at the end
                sys.stderr.write(f"\r{elapsed:7.1f} s  {rate / 1e3:9.1f} k events/s  {written / 2**20:8.1f} MiB"
                                 f"  lost {lost}   ")
                sys.stderr.flush()
            time.sleep(0.05)
        if show:
            sys.stderr.write("\n")
        # A signal came (or the duration ended) while the command runs: Ctrl-C from a terminal
        # reaches it directly; give it a moment, then pass SIGINT on, then SIGTERM, then SIGKILL, to
        # the command and the processes below it, so none outlives the capture. (When the command
        # ended by itself, what it left running in the background is left alone.)
        if self.child is not None:
            self.child.close_gate()  # stopped before it was let through: it leaves without running
            below = self._below
            if self.child.poll() is None:
                below = sorted(set(below) | set(_descendants(self.child.pid)))
            for sig, wait in ((None, 1.0), (signal.SIGINT, 3.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
                below = [p for p in below if _running(p)]
                if self.child.poll() is not None and not below:
                    break
                if sig is not None:
                    self.child.signal_tree(sig, below)
                end = time.monotonic() + wait
                while time.monotonic() < end and (self.child.poll() is None or any(map(_running, below))):
                    time.sleep(0.02)

    def _live_counts(self, inst: Instance, meta: CaptureMeta) -> tuple[int, int]:
        events = lost = 0
        for cpu in meta.cpus:
            try:
                st = inst.cpu_stats(cpu)
            except OSError:
                continue
            events += st.entries + st.read_events + st.overrun
            lost += st.overrun + st.commit_overrun + st.dropped_events
        return events, lost

    def _teardown(self, tracefs: Tracefs, cap: CaptureDir, meta: CaptureMeta) -> int:
        """Every exit path comes here. Every step runs even when an earlier one raised: what a step
        raised is reported as a warning (the capture is then marked incomplete) and the first such
        exception is kept in ``self.teardown_error`` (``run`` raises it when nothing else failed)."""
        errors: list[str] = []  # problems found (a reader that did not finish, ...): warnings
        inst = self.instance

        def step(what: str, fn: Callable[[], None]) -> None:
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - every later step must still run
                if self.teardown_error is None:
                    self.teardown_error = e
                errors.append(f"{what}: {e.line() if isinstance(e, FtraceIPCError) else e}")

        def tracing_off() -> None:
            self._ru_off = _cpu_self()
            if inst is not None and inst.exists:
                inst.tracing_on(False)
                meta.stop_ts = _now_ts(inst, meta.cpus[0]) if meta.cpus else None

        def end_command() -> None:
            if self.child.poll() is None:
                try:
                    self.child.terminate()
                    self.child.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    self.child.kill()
                    self.child.wait()
            meta.exit_code = self.child.returncode

        def join_reader(r: CpuReaderProcess) -> None:
            try:
                r.join(timeout=30)
                if r.is_alive():
                    errors.append(f"CPU{r.cpu} reader did not finish")
            finally:
                r.close()

        def read_stats() -> None:
            counts = []
            if inst is not None and inst.exists:
                for cpu in meta.cpus:
                    try:
                        st = inst.cpu_stats(cpu)
                        meta.lost[cpu] = CpuLost(overrun=st.overrun, commit_overrun=st.commit_overrun,
                                                 dropped_events=st.dropped_events)
                        counts.append(st.read_events + st.entries)
                    except OSError as e:
                        errors.append(f"stats: {e}")
            self._event_counts = counts

        def stop_open_watcher() -> None:
            w = self.open_watcher
            try:
                w.stop()
                w.join(timeout=5)
                if w.error is not None:
                    errors.append(f"open watcher: {w.error}")
            finally:
                w.close()

        def stop_proc_watcher() -> None:
            try:
                self.watcher.stop()
                self.watcher.join(timeout=10)
                self.watcher.end_snapshot()
            finally:
                self.watcher.clock.close()  # an open stats file would keep the instance from being removed

        if self.child is not None:
            step("closing the command's gate", self.child.close_gate)  # at the gate: EOF, it leaves unrun
        step("tracing off", tracing_off)
        meta.stop_wall = time.time()
        if self.child is not None:
            step("ending the command", end_command)
        for r in self.readers:
            step(f"stopping the CPU{r.cpu} reader", r.stop)
        for r in self.readers:
            step(f"joining the CPU{r.cpu} reader", lambda r=r: join_reader(r))
        step("stats", read_stats)
        if inst is not None and inst.exists:
            step("saved_cmdlines", lambda: copy_saved(tracefs, inst, cap))
        if meta.start_wall is not None:  # before tracing started there are no pages (nor headers) to scan
            try:
                _scan_page_flags(cap, meta)
            except Exception as e:  # noqa: BLE001 - the raw pages are kept; the decoder reports them again
                errors.append(f"scanning pages for lost-event flags: {e}")
        if self.open_watcher is not None:
            step("open watcher", stop_open_watcher)
        if self.open_instance is not None:
            step("open watcher's losses", self._count_open_lost)
            step(f"removing {self.open_instance.name}", self.open_instance.destroy)
        if self.watcher is not None:
            step("proc snapshot", stop_proc_watcher)
        if self._proc_file is not None:
            step("proc.jsonl", self._proc_file.close)
        if inst is not None:
            step(f"removing {inst.name}", inst.destroy)
        step("signal handlers", self._restore_signals)
        step("cost", lambda: setattr(meta, "cost", self._cost(meta)))
        meta.complete = not errors
        step("meta.json", lambda: cap.write_meta(meta))
        for e in errors:
            if self.disk_full and "[Errno 28]" in e:
                continue  # the same full disk, said once by the error
            self.report(f"warning: {e}")
        return sum(r.bytes for r in self.readers)
