"""Tracing overhead on real workloads (issues #2 and #12).

    sudo python bench/bench_overhead.py [--workload pipe] [--repeat 5] [--json out.json]

Workloads (``--workload``, one per run; each measured by its own figure, lower is better):

  pipe       ``taskset -c 1 perf bench sched pipe -l LOOPS`` (its ``usecs/op``): few syscalls, every
             one an IPC event (the microbenchmark the reader was tuned on)
  findgrep   ``find DIR -type f -print0 | xargs -0 grep -l NEEDLE`` over ``--files`` small files made for
             the run (seconds): many opens and forks, few IPC events; ``--cold`` drops the page cache
             before every run
  make       ``make -j2`` of ``--sources`` generated C files (seconds; ``make clean`` before each run)
  pgbench    ``pgbench -n -M prepared -S -c 4 -j 2 -t TX`` against a PostgreSQL 15 started for the run,
             over its Unix socket (µs per transaction = 1e6 / tps): a syscall-heavy real server
  opens      a Python loop of ``--opens`` open/close pairs of one file (µs per pair): what one open
             costs traced, and what the open watcher's instance adds (``floor-open``)

findgrep and make are timed inside the traced command (a small Python parent prints the workload's
own wall time), so a tracer's start-up and teardown are not counted.

Variants, run
interleaved (one of each per repetition, order rotated each time), medians reported:

  untraced   the workload alone
  floor      the in-kernel cost: a private instance ``instances/ftraceipc-bench-<pid>`` with ftraceipc's
             default event set (those this kernel has) and its options, a buffer big enough for the
             whole run (``--floor-buffer-mb`` per CPU), tracing on, no reader
  ftraceipc  ``ftraceipc capture -o TMP -- <workload>`` with default settings
  perf       ``perf record -a -m MMAP -e <same tracepoints> -o TMP -- <workload>``

Diagnostic variants (``--variants``): ``ftraceipc-noopen`` = ``capture --no-open-watcher`` (what the
open watcher costs); ``floor-open`` = floor plus the open watcher's instance, unread (its in-kernel
cost); ``floor-wakeup`` = floor + the events dropped from the default set because the model does not
use them (``sched:sched_wakeup``, and ``sched:sched_process_fork``, which task_newtask tells: what keeping
them would cost); ``floor-notrace`` = floor + a
``set_event_notrace_pid`` entry
(what ftraceipc wrote before ff0c775 to leave its own threads out; it turns on per-event pid filtering
and costs every traced task ~6 %, so ftraceipc no longer does it); ``perf-xp`` = perf with
``--exclude-perf`` (perf leaves its own tasks out).

Event sets (issue #12 section 2, diagnostic): ``floor-core`` = the floor with only the core group
(``ftraceipc.capture.events.CORE``: scheduler and task events, the least any detector needs: no tracer
that follows sleeps and wakeups can trace less); ``floor-D:PATTERN`` = the floor with the events
``ftraceipc capture -D PATTERN`` enables (``ftraceipc.detect.detector_events``); ``ftraceipc-D:PATTERN`` =
``ftraceipc capture -D PATTERN``. With ``untraced`` and ``floor-core`` in the run, the output gives each
floor's events per operation and what one event costs (pipe and pgbench, whose operations are counted).
Runs during which another tracing instance existed (other people's captures add tracing load) are
measured again (``--retry-busy``).

Targets: ftraceipc within 5 % of the floor, and below perf record.
The top-level tracing buffer is never touched; every instance and temporary file made here is
removed, also on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _benchutil as bu  # noqa: E402

DEFAULT_VARIANTS = ["untraced", "floor", "ftraceipc", "perf"]
ALL_VARIANTS = DEFAULT_VARIANTS + ["ftraceipc-noopen", "floor-open", "floor-notrace", "floor-wakeup", "perf-xp"]
# floor-wakeup: the default set plus the events dropped from it as unused (what keeping them would cost)
DROPPED_EVENTS = ("sched:sched_wakeup", "sched:sched_process_fork")
# variants with an argument: floor-D:PATTERN, ftraceipc-D:PATTERN (the events of capture -D PATTERN)
PATTERN_VARIANTS = ("floor-D:", "ftraceipc-D:")


def known_variant(v: str) -> bool:
    return v in ALL_VARIANTS or v == "floor-core" or (v.startswith(PATTERN_VARIANTS) and bool(v.split(":", 1)[1]))


def variant_events(v: str, default: list[str], has_event) -> list[str]:
    """The events a floor variant enables: the default set (those this kernel has), the core group
    (floor-core) or a detector pattern's (floor-D:PATTERN)."""
    if v == "floor-core":
        from ftraceipc.capture.events import CORE

        return [e for e in CORE if has_event(e)]
    if v.startswith("floor-D:"):
        from ftraceipc.detect import detector_events, select

        return [e for e in detector_events(select(v.split(":", 1)[1].split(","))) if has_event(e)]
    return default


class Floor:
    """The floor instance: allocated once, events switched on only while it is measured (an enabled
    event costs every traced task something even with tracing_on = 0)."""

    def __init__(self, events: list[str], buffer_mb: int, name: str | None = None):
        from ftraceipc.capture.tracefs import Instance, Tracefs

        self.events = events
        self.tracefs = Tracefs(bu.tracefs_root())
        self.name = name or f"ftraceipc-bench-{os.getpid()}"
        bu.remove_instance(self.name)  # a previous run of ours with this pid (unlikely) was killed
        self.inst = Instance.create(self.tracefs, self.name)
        inst = self.inst
        inst.tracing_on(False)
        inst.set_buffer_kb(buffer_mb * 1024)
        inst.set_clock("local")
        for opt in ("record-tgid", "record-cmd", "overwrite"):  # as ftraceipc sets them
            try:
                inst.set_option(opt, True)
            except OSError:
                pass
        self.cpus = inst.cpus

    def measure(self, argv: list[str], notrace: bool, open_instance: bool = False,
                extra: tuple[str, ...] = (), events: list[str] | None = None) -> tuple[bu.ChildResult, dict]:
        inst = self.inst
        inst.write("trace", "")  # clear (O_TRUNC): the counters start at zero
        base = self.events if events is None else events
        inst.enable_events(base + [e for e in extra if e not in base and self.tracefs.has_event(e)])
        if notrace:
            inst.write("set_event_notrace_pid", str(os.getpid()))
        oi = self._open_instance() if open_instance else None
        inst.tracing_on(True)
        try:
            r = bu.run(argv)
        finally:
            inst.tracing_on(False)
            inst.write("set_event", "")
            if notrace:
                inst.write("set_event_notrace_pid", "")
            if oi is not None:
                oi.destroy()
        entries = lost = 0
        for cpu in self.cpus:
            st = inst.cpu_stats(cpu)
            entries += st.entries + st.read_events
            lost += st.overrun + st.commit_overrun + st.dropped_events
        inst.write("trace", "")
        return r, {"events": entries, "lost": lost}

    def _open_instance(self):
        """The open watcher's instance as ftraceipc makes it (procsnap.OPEN_EVENTS, its filter, 256 KiB,
        record-tgid, buffer_percent 0), tracing, with nobody reading it: its in-kernel cost alone."""
        from ftraceipc.capture.capture import _not_tracer_comms
        from ftraceipc.capture.procsnap import OPEN_EVENTS
        from ftraceipc.capture.tracefs import Instance

        oi = Instance.create(self.tracefs, f"{self.name}-open")
        try:
            oi.tracing_on(False)
            oi.set_buffer_kb(256)
            oi.set_clock("local")
            oi.write("buffer_percent", "0")
            oi.set_option("record-tgid", True)
            avail = [e for e in OPEN_EVENTS if self.tracefs.has_event(e)]
            oi.enable_events(avail)
            for e in avail:
                oi.set_filter(e, " && ".join(["ret >= 0", *_not_tracer_comms()]))
            oi.tracing_on(True)
        except BaseException:
            oi.destroy()
            raise
        return oi

    def close(self) -> None:
        self.inst.destroy()


def measure_ftraceipc(bench: list[str], tmp: Path, i: int, cmd: str | None = None,
                      extra: tuple[str, ...] = ()) -> tuple[bu.ChildResult, dict]:
    out = tmp / f"cap{i}.ftipc"
    argv = shlex.split(cmd) if cmd else bu.ftraceipc_argv()
    try:
        r = bu.run(argv + ["capture", "-o", out, "--no-model", *extra, "--"] + bench)
        meta = json.loads((out / "meta.json").read_text())
        lost = sum(max(v["overrun"], v["missed_events"]) + v["commit_overrun"] + v["dropped_events"]
                   for v in meta["lost"].values())
        pages_missed = sum(v["pages_missed"] for v in meta["lost"].values())
        m = re.search(r"Captured ([0-9,]+) events", r.stderr)
        events = int(m.group(1).replace(",", "")) if m else None
        return r, {"events": events, "lost": lost, "pages_missed": pages_missed, "cost": meta.get("cost"),
                   "capture_mib": round(sum(p.stat().st_size for p in (out / "cpu").glob("*.raw")) / 2**20, 1)}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def measure_perf(bench: list[str], events: list[str], mmap: str, tmp: Path, i: int,
                 exclude_perf: bool) -> tuple[bu.ChildResult, dict]:
    data = tmp / f"perf{i}.data"
    argv = ["perf", "record", "-a", "-m", mmap, "-e", ",".join(events)]
    if exclude_perf:
        argv.append("--exclude-perf")
    argv += ["-o", data, "--"] + bench
    try:
        r = bu.run(argv)
        info = bu.perf_record_summary(r.stderr)
        st = bu.perf_lost_samples(str(data))
        return r, {"events": st["samples"] or info["samples"], "lost": st["lost_samples"],
                   "lost_records": st["lost_records"], "lost_chunks": info["lost_chunks"],
                   "capture_mib": round(data.stat().st_size / 2**20, 1)}
    finally:
        data.unlink(missing_ok=True)


# --- workloads ------------------------------------------------------------------------------------------
# The workload's own wall time, measured inside the traced command (so the tracer's start-up and
# teardown are not in it): a tiny Python parent runs it and prints the time it took.
_WALL = re.compile(r"^ftraceipc-bench-wall-s: ([0-9.]+)$", re.M)
_TIMER = ("import subprocess, sys, time\n"
          "t0 = time.perf_counter()\n"
          "rc = subprocess.run(sys.argv[1:]).returncode\n"
          "print(f'ftraceipc-bench-wall-s: {time.perf_counter() - t0:.6f}', flush=True)\n"
          "sys.exit(rc)\n")


def timed(argv: list[str]) -> list[str]:
    return [sys.executable, "-c", _TIMER, *argv]


class Workload:
    """One workload: ``setup(tmp, args)`` (a context manager) yields its argv; ``prepare()`` runs before
    each measured run, outside the timing; ``value(result)`` is the figure (lower is better)."""

    name = ""
    unit = ""

    def __init__(self, args):
        self.args = args

    @contextlib.contextmanager
    def setup(self, tmp: Path) -> Iterator[list[str]]:
        raise NotImplementedError

    def prepare(self) -> None:
        pass

    def ops(self) -> int | None:
        """Operations per run (the figure is time per operation), when the workload counts them."""
        return None

    def value(self, r: bu.ChildResult) -> float:
        m = _WALL.search(r.stdout)
        if not m:
            raise RuntimeError(f"no wall time of the workload in its output:\n{r.stdout[-1000:]}{r.stderr[-1000:]}")
        return round(float(m.group(1)), 4)


class PipeWorkload(Workload):
    name, unit = "pipe", "µs/op"

    @contextlib.contextmanager
    def setup(self, tmp: Path) -> Iterator[list[str]]:
        bu.require_tools("perf", "taskset")
        yield ["taskset", "-c", str(self.args.cpu), "perf", "bench", "sched", "pipe", "-l", str(self.args.loops)]

    def value(self, r: bu.ChildResult) -> float:
        return bu.parse_usecs_per_op(r.stdout)

    def ops(self) -> int:
        return self.args.loops


NEEDLE = "zq-ftraceipc-needle"


class FindGrepWorkload(Workload):
    name, unit = "findgrep", "s"

    @contextlib.contextmanager
    def setup(self, tmp: Path) -> Iterator[list[str]]:
        bu.require_tools("find", "xargs", "grep")
        root = tmp / "tree"
        n, per_dir = self.args.files, 1000
        line = "the quick brown fox jumps over the lazy dog 0123456789\n" * 30  # ~1.7 KB per file
        bu.log(f"findgrep: making {n:,} files under {root}")
        for i in range(n):
            d = root / f"d{i // per_dir:04d}"
            if i % per_dir == 0:
                d.mkdir(parents=True)
            (d / f"f{i:06d}.txt").write_text(line + (NEEDLE + "\n" if i % 997 == 0 else ""))
        os.sync()
        yield timed(["sh", "-c", f"find {shlex.quote(str(root))} -type f -print0 | xargs -0 grep -l {NEEDLE} > /dev/null"])

    def prepare(self) -> None:
        if self.args.cold:
            os.sync()
            Path("/proc/sys/vm/drop_caches").write_text("3\n")


class OpensWorkload(Workload):
    """A Python loop of ``--opens`` open/close pairs of one file (µs per pair): what tracing costs per
    open, and what the open watcher's instance adds to it (``floor-open``)."""

    name, unit = "opens", "µs/open"

    @contextlib.contextmanager
    def setup(self, tmp: Path) -> Iterator[list[str]]:
        f = tmp / "opened"
        f.write_text("x\n")
        yield [sys.executable, "-c", "import os, sys, time\n"
               f"n, path = {self.args.opens}, {str(f)!r}\n"
               "t0 = time.perf_counter()\n"
               "for _ in range(n):\n"
               "    os.close(os.open(path, os.O_RDONLY))\n"
               "print(f'{(time.perf_counter() - t0) / n * 1e6:.4f} usecs/op', flush=True)\n"]

    def value(self, r: bu.ChildResult) -> float:
        return bu.parse_usecs_per_op(r.stdout)

    def ops(self) -> int:
        return self.args.opens


class MakeWorkload(Workload):
    name, unit = "make", "s"

    @contextlib.contextmanager
    def setup(self, tmp: Path) -> Iterator[list[str]]:
        bu.require_tools("make", "cc")
        src = tmp / "proj"
        src.mkdir()
        n = self.args.sources
        for i in range(n):
            # enough code that gcc -O2 takes ~0.1 s per file
            body = "".join(
                f"static int f{i}_{k}(int *a, int n) {{ int s = {k}; for (int j = 0; j < n; j++) "
                f"{{ s += a[j] * {k + 3} ^ (s >> {k % 7 + 1}); if (s % {k + 11} == 3) s -= a[(j * {k + 5}) % n]; }} "
                f"return s; }}\n" for k in range(60))
            calls = " + ".join(f"f{i}_{k}(a, n)" for k in range(60))
            (src / f"m{i:03d}.c").write_text(f"{body}int entry{i}(int *a, int n) {{ return {calls}; }}\n")
        objs = " ".join(f"m{i:03d}.o" for i in range(n))
        (src / "Makefile").write_text(
            f"OBJS = {objs}\nall: $(OBJS)\n%.o: %.c\n\tcc -O2 -c $< -o $@\n"
            "clean:\n\trm -f *.o\n.PHONY: all clean\n")
        self.src = src
        yield timed(["make", "-s", "-j2", "-C", str(src)])

    def prepare(self) -> None:
        bu.run(["make", "-s", "-C", str(self.src), "clean"])


_TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")


class PgbenchWorkload(Workload):
    name, unit = "pgbench", "µs/tx"

    @contextlib.contextmanager
    def setup(self, tmp: Path) -> Iterator[list[str]]:
        import insight  # its PostgreSQL setup: a private cluster on a Unix socket, stopped at the end

        bu.require_tools("pgbench")
        v: dict = {}
        os.chmod(tmp, 0o755)  # the server runs as the postgres user
        with insight.SETUPS["postgres"](tmp, v):
            yield ["pgbench", "-n", "-M", "prepared", "-S", "-c", "4", "-j", "2", "-t", str(self.args.transactions),
                   "-h", v["pg_host"], "-U", v["pg_user"], "postgres"]

    def value(self, r: bu.ChildResult) -> float:
        m = _TPS.search(r.stdout)
        if not m:
            raise RuntimeError(f"no 'tps =' in pgbench output:\n{r.stdout[-1000:]}{r.stderr[-1000:]}")
        return round(1e6 / float(m.group(1)), 3)

    def ops(self) -> int:
        return 4 * self.args.transactions  # -c 4 clients, -t each


WORKLOADS = {w.name: w for w in (PipeWorkload, FindGrepWorkload, MakeWorkload, PgbenchWorkload, OpensWorkload)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="repetitions of each variant (interleaved)")
    ap.add_argument("--loops", type=int, default=200000, help="perf bench sched pipe -l LOOPS")
    ap.add_argument("--cpu", type=int, default=1, help="pipe: taskset -c CPU for the workload")
    ap.add_argument("--workload", default="pipe", choices=sorted(WORKLOADS), help="what to trace (see above)")
    ap.add_argument("--files", type=int, default=100000, help="findgrep: files in the tree")
    ap.add_argument("--cold", action="store_true", help="findgrep: drop the page cache before every run")
    ap.add_argument("--sources", type=int, default=120, help="make: C files to compile")
    ap.add_argument("--opens", type=int, default=300000, help="opens: open/close pairs")
    ap.add_argument("--transactions", type=int, default=25000, help="pgbench: transactions per client (-t)")
    ap.add_argument("--floor-buffer-mb", type=int, default=512, help="per-CPU buffer of the floor instance")
    ap.add_argument("--perf-mmap", default="16M", help="perf record -m (per-CPU; ftraceipc's buffer is 16 MiB)")
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                    help=f"comma-separated, from: {', '.join(ALL_VARIANTS)}")
    ap.add_argument("--tmp", default=None, help="directory for temporary captures (default: $TMPDIR)")
    ap.add_argument("--max-wait", type=float, default=120.0,
                    help="before each run, wait up to S s for other tracing instances to go")
    ap.add_argument("--retry-busy", type=int, default=3,
                    help="measure a run again (up to N times) if another tracing instance appeared during it")
    ap.add_argument("--ftraceipc", metavar="CMD", default=None,
                    help="the ftraceipc command measured (default: this checkout's), e.g. another install's "
                         "console script to compare commits (PYTHONPATH does not override an editable install)")
    ap.add_argument("--json", metavar="PATH", help="write all results as JSON")
    a = ap.parse_args()
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    bad = [v for v in variants if not known_variant(v)]
    if bad:
        sys.exit(f"error: unknown variant(s) {', '.join(bad)}; choose from {', '.join(ALL_VARIANTS)}, floor-core, "
                 "floor-D:PATTERN, ftraceipc-D:PATTERN")
    bu.require_tools("perf")
    wl = WORKLOADS[a.workload](a)
    machine = bu.machine_info()
    events = bu.default_events()
    bu.log(bu.describe_machine(machine))

    runs: list[dict] = []
    set_events: dict[str, list[str]] = {}  # floor variant -> the events it enables
    floor: Floor | None = None
    monitor: bu.BusyMonitor | None = None
    with bu.cleanup_on_exit(), bu.tempdir("ftraceipc-bench-overhead-", a.tmp) as tmp, wl.setup(tmp) as bench:
        bu.log(f"workload: {' '.join(bench)}; {len(events)} events; {a.repeat} repetitions of {', '.join(variants)}")
        try:
            if any(v.startswith("floor") for v in variants):
                floor = Floor(events, a.floor_buffer_mb)
                set_events.update({v: variant_events(v, events, floor.tracefs.has_event) for v in variants
                                   if v.startswith("floor")})
            own = [floor.name, f"{floor.name}-open"] if floor else []
            monitor = bu.BusyMonitor(own)
            wl.prepare()
            bu.run(bench)  # warm-up: page cache, perf's first start
            for rep in range(a.repeat):
                order = variants[rep % len(variants):] + variants[:rep % len(variants)]
                for v in order:
                    def once(v=v, rep=rep):
                        if v == "untraced":
                            return bu.run(bench), {}
                        if v in set_events:  # every floor variant
                            return floor.measure(bench, notrace=v == "floor-notrace", open_instance=v == "floor-open",
                                                 extra=DROPPED_EVENTS if v == "floor-wakeup" else (),
                                                 events=set_events[v])
                        if v == "ftraceipc":
                            return measure_ftraceipc(bench, tmp, rep, a.ftraceipc)
                        if v == "ftraceipc-noopen":
                            return measure_ftraceipc(bench, tmp, rep, a.ftraceipc, ("--no-open-watcher",))
                        if v.startswith("ftraceipc-D:"):
                            return measure_ftraceipc(bench, tmp, rep, a.ftraceipc, ("-D", v.split(":", 1)[1]))
                        return measure_perf(bench, events, a.perf_mmap, tmp, rep, exclude_perf=v == "perf-xp")

                    def prepared(once=once):
                        wl.prepare()
                        return once()

                    t0 = time.time()
                    (r, extra), quiet = bu.measure_quietly(prepared, own, a.retry_busy, a.max_wait, monitor)
                    us = wl.value(r)
                    rec = {"variant": v, "rep": rep, "value": us, "wall_s": round(r.wall, 3),
                           "cpu_s": round(r.utime + r.stime, 3), "start": t0, **quiet, **extra}
                    runs.append(rec)
                    busy = f"  [busy: {', '.join(quiet['busy_during'])}]" if quiet["busy_during"] else ""
                    bu.log(f"rep {rep + 1}/{a.repeat} {v:19s} {us:8.3f} {wl.unit}  events {extra.get('events', '-')}"
                           f"  lost {extra.get('lost', '-')}{busy}")
        finally:
            if monitor is not None:
                monitor.close()
            if floor is not None:
                floor.close()

    ops = wl.ops()
    summary = summarize(runs, variants, ops)
    res = {"benchmark": "overhead", "command": " ".join(sys.argv), "workload": bench,
           "workload_name": wl.name, "unit": wl.unit, "ops": ops,
           "events": events, "variant_events": {v: len(e) for v, e in set_events.items()},
           "machine": machine, "args": vars(a), "variants": variants, "runs": runs,
           "summary": summary, "targets": check_targets(summary, wl.name)}
    print(f"\n{bu.describe_machine(machine)}")
    print(markdown(res))
    bu.write_json(a.json, res)


def markdown(res: dict) -> str:
    """The results table, targets and notes of a results JSON (what main prints)."""
    summary, runs = res["summary"], res["runs"]
    variants = res.get("variants") or [v.strip() for v in res["args"]["variants"].split(",") if v.strip()]
    w = list(res["workload"])
    timed_inside = len(w) > 3 and w[1] == "-c" and "ftraceipc-bench-wall-s" in w[2]
    shown = f"`{' '.join(w[3:] if timed_inside else w)}`" + (" (its own wall time, measured inside the traced "
                                                            "command)" if timed_inside else "")
    out = [f"workload: {shown}, {res['args']['repeat']} interleaved repetitions, medians; "
           f"{len(res['events'])} tracepoints (ftraceipc's default set, those this kernel has) for floor and perf", ""]
    rows = []
    for v in variants:
        s = summary[v]
        rows.append([v, f"{_val(s):.3f}", f"{s['min']:.3f}–{s['max']:.3f}",
                     _x(s.get("x_untraced")), _x(s.get("x_floor")), _x(s.get("x_floor_paired_median")),
                     _n(s.get("events")), _n(s.get("lost_max"))])
    unit = res.get("unit", "µs/op")
    out.append(bu.table(["variant", f"{unit} (median)", "range", "× untraced", "× floor", "× floor (paired)", "events",
                         "lost (max)"], rows))
    costs = [r["cost"] for r in runs if r["variant"] == "ftraceipc" and r.get("cost")]
    if costs:
        def med(k):
            xs = [c.get(k) for c in costs if c.get(k) is not None]
            return bu.median(xs) if xs else None
        parts = [f"{label} {med(k):.2f} s" for k, label in (("readers_cpu_s", "page readers"),
                                                            ("open_watcher_cpu_s", "open watcher"),
                                                            ("proc_watcher_cpu_s", "/proc watcher"),
                                                            ("controller_cpu_s", "controller (with the /proc watcher)"))
                 if med(k) is not None]
        n = med("open_lookups")
        out += ["", f"ftraceipc's own CPU time per run (medians, from its meta.json): {', '.join(parts)}"
                + (f"; {int(n):,} opens looked up" if n else "")]
    per_event = [(v, summary[v]) for v in variants if summary[v].get("us_per_event") is not None]
    if per_event:
        ve = res.get("variant_events") or {}
        out += ["", f"What each event set costs (per {unit.split('/')[-1]}: its events, the time above untraced per "
                "event, the throughput it keeps; above core: the extra time per extra event over floor-core):", ""]
        out.append(bu.table(["variant", "tracepoints", f"events/{unit.split('/')[-1]}", "µs per event",
                             "µs per event above core", "throughput kept"],
                            [[v, _n(ve.get(v)), f"{s['events_per_op']:.2f}", f"{s['us_per_event']:.3f}",
                              None if s.get("us_per_event_above_core") is None else f"{s['us_per_event_above_core']:.3f}",
                              f"{s['throughput_kept_pct']:.1f} %"] for v, s in per_event]))
    out += ["", bu.fmt_targets(res["targets"])]
    busy = [r for r in runs if r["busy_during"]]
    retried = sum(r["attempts"] - 1 for r in runs)
    if retried:
        out.append(f"note: {retried} run(s) were measured again because another tracing instance appeared")
    if busy:
        out.append(f"note: {len(busy)} kept run(s) overlapped other tracing instances: "
                   f"{', '.join(sorted({n for r in busy for n in r['busy_during']}))}")
    return "\n".join(out)


def _val(d: dict) -> float:
    """A run's or a summary's figure (``usecs_per_op`` in results written before the workloads)."""
    return d["value"] if "value" in d else d["usecs_per_op"]


def _x(v):
    return None if v is None else f"{v:.3f}"


def _n(v):
    return None if v is None else f"{int(v):,}"


def summarize(runs: list[dict], variants: list[str], ops: int | None = None) -> dict:
    out: dict[str, dict] = {}
    for v in variants:
        rs = [r for r in runs if r["variant"] == v]
        us = [_val(r) for r in rs]
        out[v] = {"value": bu.median(us), "min": min(us), "max": max(us), "n": len(us),
                  "all": us, "events": bu.median([r.get("events") for r in rs]),
                  "lost": bu.median([r.get("lost") for r in rs]),
                  "lost_max": max((r["lost"] for r in rs if r.get("lost") is not None), default=None)}
    base = out.get("untraced", {}).get("value")
    fl = out.get("floor", {}).get("value")
    for v, s in out.items():
        if base:
            s["x_untraced"] = s["value"] / base
        if fl:
            s["x_floor"] = s["value"] / fl
        if base and fl and v not in ("untraced",):
            # the share of tracing cost above the in-kernel cost
            s["over_floor_pct"] = 100 * (s["value"] - fl) / fl
    # paired ratios: each repetition's ftraceipc against the floor of the same repetition
    by_rep: dict[int, dict[str, float]] = {}
    for r in runs:
        by_rep.setdefault(r["rep"], {})[r["variant"]] = _val(r)
    if "floor" in out:
        for v in out:
            pairs = [d[v] / d["floor"] for d in by_rep.values() if v in d and "floor" in d]
            if pairs:
                out[v]["x_floor_paired_median"] = bu.median(pairs)
                out[v]["x_floor_paired_max"] = max(pairs)
    if ops and base:
        # what tracing costs per event: each floor's time above untraced over its events per operation
        for v, s in out.items():
            if v.startswith("floor") and s.get("events"):
                s["events_per_op"] = s["events"] / ops
                s["us_per_event"] = (s["value"] - base) / s["events_per_op"]
                s["throughput_kept_pct"] = 100 * base / s["value"]
        core = out.get("floor-core")
        if core and core.get("events_per_op"):
            for v, s in out.items():
                extra = s.get("events_per_op", 0) - core["events_per_op"]
                if v != "floor-core" and extra > 0:
                    s["us_per_event_above_core"] = (s["value"] - core["value"]) / extra
    return out


def check_targets(summary: dict, workload: str = "pipe") -> list[dict]:
    t = []
    if workload == "pgbench" and "untraced" in summary and "ftraceipc" in summary:
        kept = 100 * _val(summary["untraced"]) / _val(summary["ftraceipc"])
        t.append({"name": "pgbench -S keeps >= 90% of its untraced throughput with the default set (issue #12)",
                  "met": kept >= 90, "detail": f"ftraceipc keeps {kept:.1f} %"})
    if "ftraceipc" in summary and "floor" in summary:
        x = summary["ftraceipc"]["x_floor"]
        t.append({"name": "ftraceipc within 5% of the floor", "met": x <= 1.05,
                  "detail": f"ftraceipc/floor = {x:.3f}"})
    if "ftraceipc" in summary and "floor" in summary:
        worst = summary["ftraceipc"].get("x_floor_paired_max")
        if worst is not None:
            t.append({"name": "no ftraceipc run above 1.2x the floor (issue #12)", "met": worst <= 1.2,
                      "detail": f"worst run / the floor of its repetition = {worst:.3f}"})
    if "ftraceipc" in summary and "perf" in summary:
        f, p = _val(summary["ftraceipc"]), _val(summary["perf"])
        t.append({"name": "ftraceipc below perf record", "met": f < p,
                  "detail": f"{f:.3f} vs {p:.3f}"})
    if "ftraceipc" in summary:
        t.append({"name": "ftraceipc loses no events", "met": not summary["ftraceipc"]["lost_max"],
                  "detail": f"max lost per run {summary['ftraceipc']['lost_max']}"})
    return t


if __name__ == "__main__":
    main()
