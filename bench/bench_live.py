"""``ftraceipc live`` against the targets of issue #13, side by side in one run.

    sudo python3 bench/bench_live.py [--json out.json]                 # everything: ~35 min on the 2-vCPU VM
    sudo python3 bench/bench_live.py --quick --json /tmp/live.json     # 2 samples, 2 repetitions, 20 s memory
    sudo python3 bench/bench_live.py --parts overhead,lost             # some measurements only

Four measurements (``--parts``), each with its target:

1. agreement and latency: every sample of ``samples/`` (the pattern samples, their controls and the
   others, sized up so that each runs for 3-5 s untraced and several intervals pass) and the case
   studies of ``bench/insight.py`` (its ``asis`` variants at their ``size``, servers started as
   insight.py starts them; a case whose programs are missing is skipped, nothing is installed) run
   under ``ftraceipc live -o DIR --force --interval I -- CMD``; then ``ftraceipc analyze DIR --format
   json``. A finding is (pattern, tasks, resources). Agreement: |live end ∩ analyze| / |live end| and
   / |analyze| (1.0 when both are empty). Latency of a finding: (emitted_ts - first_seen_ts) /
   interval of its first finding line (``update`` false), over every finding of every run.
   Targets: agreement >= 95 % both ways on every run; latency median <= 2, p95 <= 3 intervals.
2. overhead: ``taskset -c 1 perf bench sched pipe -l LOOPS`` under ``ftraceipc capture --no-model``
   and under ``ftraceipc live``, interleaved (order rotated each repetition); the benchmark's own
   usecs/op; the median of the per-repetition ratios live/capture. Both ftraceipc processes run
   under ``taskset -c 0`` (``--tracer-cpu``): the readers, the watchers and the live analysis on
   CPU 0, the benchmark re-pinned to CPU 1 by its own taskset. Also the live status lines' max
   ``lag_ns``. Target: live/capture <= 1.10.
3. lost events: ``perf bench sched messaging -g 4 -l 200`` under ``ftraceipc live`` (default
   settings): the status lines' ``lost``/``lost_pages``, meta.json's kernel counters and ``ftraceipc
   info DIR --format json``. Target: 0.
4. memory: a steady workload (a Python writer putting 1-byte messages into a pipe at a fixed rate,
   a reader reading them one by one: ~``--memory-events-per-s`` events/s) under ``ftraceipc live``
   for ``--memory-minutes``; every second VmRSS and VmHWM of the live follower (the process named
   ``ftipc-live`` whose parent is the ftraceipc process; its short-lived children, the per-interval
   analyses, are named the same and recorded apart; so is the long-lived analysis process the
   follower forks, when the engine has one). RSS at ``--memory-first-s`` (minute 2) and at the end of
   the workload (minute 10; ``--quick``: 20 s, marks at 10 s and 20 s; ``--quick --memory-minutes 1
   --memory-first-s 20`` gives 20 s and 60 s). Target (the issue's "peak RSS of the live analysis
   flat"): the peak RSS so far (VmHWM) at the two marks within 10 % of each other, for the follower
   and for the analysis process each (the copies live one interval each: their largest is shown).

5. budget: ``pgbench -n -M prepared -S -c 1 -T S`` against PostgreSQL 15 over its Unix socket (the
   server of ``bench/insight.py``'s pgbench case), server and pgbench pinned to CPU ``--cpu``,
   ftraceipc to ``--tracer-cpu``; untraced, under ``capture --no-model``, under ``capture --no-model
   -e FLOOR`` (the events ``--budget`` never turns off: the scheduler, the fd lifecycle; the least any
   budget can cost), under ``live`` and under ``live --budget B`` (``--budget-pct``, default 5),
   interleaved (order rotated each repetition);
   pgbench's tps. Cost = 1 - tps / untraced tps (medians). For the budget runs also the changes it
   made (the ``budget`` lines), its last measured ``cost_pct`` and the agreement of its end findings
   with ``ftraceipc analyze`` of the capture. Target: the budget run's cost <= 7 %, agreement as in 1.

The top-level tracing buffer is never touched. Before each traced run the script waits (up to
``--max-wait`` s) for other tracing instances to go, and says which existed during a run. Every
child is stopped and every temporary capture removed on every exit path (Ctrl-C, SIGTERM too).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import _benchutil as bu  # noqa: E402

SAMPLES_DIR = REPO / "samples"
LIVE_COMM = "ftipc-live"  # ftraceipc.live.engine.LIVE_COMM (not imported: markdown() stays import-free)
SPARE_COMM = "ftipc-spare"  # ftraceipc.live.engine.SPARE_COMM: the spare analysis process until it takes over

# (name, sample script, arguments): each runs 3-5 s untraced on the 2-vCPU VM (measured at a8dc5e9)
SAMPLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("herd", "herd", ("--rounds", "700")),
    ("full_buffer", "full_buffer", ("--bursts", "600")),
    ("full_buffer-steady", "full_buffer", ("--steady", "--bursts", "300")),
    ("wake_then_block", "wake_then_block", ("--chunks", "160")),
    ("relay", "relay", ("--rounds", "1600")),
    ("ring", "ring", ("--laps", "120000")),
    ("xcpu", "xcpu", ("--trips", "70000")),
    ("xcpu-same-cpu", "xcpu", ("--same-cpu", "--trips", "130000")),
    ("xcpu-parallel", "xcpu", ("--parallel", "--trips", "3000")),
    ("late_wakeup", "late_wakeup", ("--messages", "1700")),
    ("late_wakeup-no-hog", "late_wakeup", ("--no-hog", "--messages", "1700")),
    ("fanin", "fanin", ("--messages", "100000")),
    ("pipeline", "pipeline", ("--lines", "800000")),
    ("unix_server", "unix_server", ("--requests", "7000")),
    ("socketpair_pingpong", "socketpair_pingpong", ("--rounds", "130000")),
    ("unix_dgram", "unix_dgram", ("--datagrams", "60000")),
    ("seqpacket", "seqpacket", ("--messages", "120000")),
    ("fifo", "fifo", ("--bytes", "1600000000")),
    ("shortlived", "shortlived", ("--children", "150")),
    ("fd_reuse", "fd_reuse", ("--writes", "60000")),
)
QUICK_SAMPLES = ("herd", "relay")
CONTROLS = ("full_buffer-steady", "xcpu-same-cpu", "xcpu-parallel", "late_wakeup-no-hog")  # no planted pattern

# the steady workload of the memory measurement: argv[1] messages/s, argv[2] seconds
STEADY = """\
import os, sys, time
rate, dur = float(sys.argv[1]), float(sys.argv[2])
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    while os.read(r, 1):
        pass
    os._exit(0)
os.close(r)
t0 = time.monotonic()
n = 0
while True:
    el = time.monotonic() - t0
    if el >= dur:
        break
    due = int(el * rate)
    while n < due:
        os.write(w, b"x")
        n += 1
    time.sleep(0.005)
os.close(w)
os.waitpid(pid, 0)
print(f"steady: {n} messages in {time.monotonic() - t0:.1f} s", file=sys.stderr)
"""
EVENTS_PER_MESSAGE = 4  # write and read, enter and exit (the wakeups add a little)

PARTS = ("agreement", "overhead", "lost", "memory", "budget")
TARGET_AGREEMENT = 0.95
TARGET_LAT_MEDIAN = 2.0
TARGET_LAT_P95 = 3.0
TARGET_OVERHEAD = 1.10
TARGET_MEMORY = 0.10
TARGET_BUDGET_COST = 0.07


# --- pure helpers -------------------------------------------------------------------------------------------
def parse_lines(stdout: str) -> tuple[list[dict], int]:
    """The JSON lines of ``ftraceipc live`` in its stdout (the traced command's own output is mixed
    in: a line is taken from its first ``{"type"``); and how many lines had text before it."""
    out: list[dict] = []
    glued = 0
    for ln in stdout.splitlines():
        i = ln.find('{"type"')
        if i < 0:
            continue
        try:
            obj = json.loads(ln[i:])
        except ValueError:
            glued += 1
            continue
        if i > 0:
            glued += 1
        out.append(obj)
    return out, glued


def ident(f: dict) -> str:
    """A finding's identity: pattern, the set of its tasks, the set of its resources (the engine's ``id``)."""
    from ftraceipc.live.engine import finding_id

    return finding_id(f)


def agreement(live: list[dict] | None, post: list[dict] | None) -> dict:
    """|live ∩ post| / |live| and / |post|; 1.0 both ways when both are empty; 0.0 for an empty side
    when the other is not (or when a side is missing)."""
    if live is None or post is None:
        return {"live_in_post": 0.0, "post_in_live": 0.0, "common": 0, "only_live": [], "only_post": []}
    L, P = {ident(f) for f in live}, {ident(f) for f in post}
    common = L & P
    if not L and not P:
        a, b = 1.0, 1.0
    else:
        a = len(common) / len(L) if L else 0.0
        b = len(common) / len(P) if P else 0.0
    return {"live_in_post": a, "post_in_live": b, "common": len(common),
            "only_live": sorted(L - P), "only_post": sorted(P - L),
            "duplicates": (len(live) - len(L)) + (len(post) - len(P))}


def percentile(xs: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (q in 0..100)."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = (len(xs) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def live_summary(lines: list[dict], interval: float, stop_ts: int | None) -> dict:
    """What the live lines say: statuses, findings, latency of each new finding (in intervals), the end."""
    status = [o for o in lines if o.get("type") == "status"]
    ends = [o for o in lines if o.get("type") == "end"]
    end = ends[-1] if ends else None
    # the last status line comes after the end analysis: its lag is that analysis, not the follow's
    periodic = status[:-1] if end is not None and status else status
    finds = [o for o in lines if o.get("type") == "finding"]
    new = [o for o in finds if not o.get("update")]
    lat = []
    for o in new:
        if o.get("emitted_ts") is not None and o.get("first_seen_ts") is not None:
            lat.append({"id": o.get("id") or ident(o), "pattern": o.get("pattern"),
                        "intervals": (o["emitted_ts"] - o["first_seen_ts"]) / (interval * 1e9),
                        "at_end": stop_ts is not None and o["emitted_ts"] > stop_ts})
    start = next((o for o in lines if o.get("type") == "start"), None)
    first_new = min((o["emitted_ts"] for o in new if o.get("emitted_ts") is not None), default=None)
    end_ids = {ident(f) for f in end["findings"]} if end else set()
    return {
        "status_lines": len(status), "finding_lines": len(finds), "new_findings": len(new),
        "updates": len(finds) - len(new),
        "transient": sorted({o.get("id") or ident(o) for o in finds} - end_ids) if end else [],
        "errors": [o.get("message") for o in lines if o.get("type") == "error"],
        "latencies": lat,
        "max_lag_ns": max((o.get("lag_ns") or 0 for o in periodic), default=None),
        "max_model_lag_ns": max((o.get("model_lag_ns") or 0 for o in periodic), default=None)
        if any("model_lag_ns" in o for o in periodic) else None,
        "last_lag_ns": status[-1].get("lag_ns") if status else None,
        "lost_status": max((o.get("lost") or 0 for o in status), default=None),
        "lost_pages_status": max((o.get("lost_pages") or 0 for o in status), default=None),
        "events": status[-1].get("events") if status else None,
        "events_per_s_median": bu.median([o.get("events_per_s") for o in periodic if o.get("events_per_s")]),
        "cpu_s": status[-1].get("cpu_s") if status else None,
        "analysis_busy_share": (sum(1 for o in periodic if o.get("analysis_busy")) / len(periodic))
        if periodic else None,
        "analyze_s_max": max((o.get("analyze_s") or 0 for o in status), default=None),
        "first_finding_intervals": ((first_new - start["ts"]) / (interval * 1e9)) if first_new and start else None,
        "analyses": end.get("analyses") if end else None,
        "analysis_s": end.get("analysis_s") if end else None,
        "end_after_stop_s": ((end["ts"] - stop_ts) / 1e9) if end and stop_ts else None,
        "end_timing": end.get("end_timing") if end else None,
        "end": end is not None,
        "end_error": end.get("error") if end else None,
    }


# --- running ftraceipc ----------------------------------------------------------------------------------------
def pinned(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if cpu is not None and cpu >= 0 else []


def live_argv(out: Path, interval: float, cmd: list[str], tracer_cpu: int | None = None,
              extra: tuple[str, ...] = ()) -> list[str]:
    return [*pinned(tracer_cpu), *bu.ftraceipc_argv(), "live", "--format", "jsonl", "-o", str(out), "--force",
            "--interval", f"{interval:g}", *extra, "--", *cmd]


def read_meta(cap: Path) -> dict:
    try:
        return json.loads((cap / "meta.json").read_text())
    except (OSError, ValueError):
        return {}


def meta_lost(meta: dict) -> dict:
    """The kernel's counters as the capture recorded them (as bench_lost.py counts them)."""
    lost = meta.get("lost") or {}
    return {"lost": sum(max(v.get("overrun", 0), v.get("missed_events", 0)) + v.get("commit_overrun", 0)
                        + v.get("dropped_events", 0) for v in lost.values()),
            "pages_missed": sum(v.get("pages_missed", 0) for v in lost.values())}


def info_of(cap: Path) -> dict:
    r = bu.run(bu.ftraceipc_argv() + ["info", "--format", "json", str(cap)], check=False, timeout=600)
    if r.returncode:
        return {"error": r.stderr.strip()[-500:]}
    d = json.loads(r.stdout)
    lost = d.get("lost") or {}
    kernel = sum(max(v.get("overrun", 0), v.get("missed_events", 0)) + v.get("commit_overrun", 0)
                 + v.get("dropped_events", 0) for v in (lost.get("capture") or {}).values())
    return {"events": d.get("events"), "duration_s": (d.get("duration") or 0) / 1e9,
            "missed_events": lost.get("missed_events"), "pages_missed": lost.get("pages_missed"),
            "kernel_lost": kernel, "warnings": d.get("warnings") or []}


class Quiet:
    """Waits for other tracing instances before a run, and notes those that existed during it."""

    def __init__(self, max_wait: float):
        self.max_wait = max_wait
        self.monitor = bu.BusyMonitor()

    @contextlib.contextmanager
    def run(self, rec: dict):
        q = bu.wait_quiet(max_wait=self.max_wait, log=bu.log)
        rec["waited_s"] = q["waited_s"]
        self.monitor.arm()
        try:
            yield
        finally:
            rec["busy_during"] = self.monitor.disarm()

    def close(self) -> None:
        self.monitor.close()


# --- 1. agreement and latency ---------------------------------------------------------------------------------
def one_agreement(name: str, kind: str, cmd: list[str], tmp: Path, interval: float, quiet: Quiet,
                  timeout: float, cwd: str | None = None) -> dict:
    cap = tmp / "agree.ftipc"
    argv = live_argv(cap, interval, cmd)
    rec: dict[str, Any] = {"name": name, "kind": kind, "command": shlex.join(cmd), "live_argv": shlex.join(argv),
                           "error": None}
    try:
        with quiet.run(rec):
            r = bu.run(argv, check=False, timeout=timeout, cwd=cwd)
        rec.update(exit=r.returncode, wall_s=round(r.wall, 2), stderr_tail=r.stderr.strip().splitlines()[-3:])
        lines, glued = parse_lines(r.stdout)
        meta = read_meta(cap)
        start, stop = meta.get("start_ts"), meta.get("stop_ts")
        rec["capture_s"] = round((stop - start) / 1e9, 2) if start and stop else None
        rec["intervals"] = round(rec["capture_s"] / interval, 1) if rec["capture_s"] else None
        rec["glued_lines"] = glued
        rec["meta_lost"] = meta_lost(meta)
        s = live_summary(lines, interval, stop)
        rec.update(s)
        end = next((o for o in reversed(lines) if o.get("type") == "end"), None)
        live = end["findings"] if end else None
        rec["live_warnings"] = [w.get("message", str(w)) if isinstance(w, dict) else str(w)
                                for w in (end or {}).get("warnings", [])]
        t0 = time.perf_counter()
        a = bu.run(bu.ftraceipc_argv() + ["analyze", str(cap), "--format", "json"], check=False, timeout=timeout)
        rec["analyze_s"] = round(time.perf_counter() - t0, 2)
        post = None
        if a.returncode == 0:
            d = json.loads(a.stdout)
            post = d.get("findings") or []
            rec["post_warnings"] = [w.get("message", str(w)) if isinstance(w, dict) else str(w)
                                    for w in d.get("warnings", [])]
        else:
            rec["error"] = f"analyze exited with {a.returncode}: {a.stderr.strip()[-300:]}"
        if end is None and rec["error"] is None:
            rec["error"] = f"no end line (live exited with {r.returncode}): {r.stderr.strip()[-300:]}"
        elif end is not None and end.get("error") and rec["error"] is None:
            rec["error"] = f"end line: {end['error']}"
            live = None
        rec["live_findings"] = [ident(f) for f in live] if live is not None else None
        rec["post_findings"] = [ident(f) for f in post] if post is not None else None
        rec.update(agreement(live, post))
    except Exception as e:  # noqa: BLE001 - one run failing must not stop the others
        rec["error"] = f"{type(e).__name__}: {e}"
        rec.update(agreement(None, None))
    finally:
        shutil.rmtree(cap, ignore_errors=True)
    rec["met"] = rec["error"] is None and rec["live_in_post"] >= TARGET_AGREEMENT \
        and rec["post_in_live"] >= TARGET_AGREEMENT
    lats = ", ".join(f"{x['intervals']:.1f}" for x in rec.get("latencies") or []) or "-"
    bu.log(f"  {name:24s} {rec.get('capture_s') or 0:5.1f} s  live {len(rec.get('live_findings') or [])}"
           f"  analyze {len(rec.get('post_findings') or [])}  agreement {100 * rec['live_in_post']:.0f} % / "
           f"{100 * rec['post_in_live']:.0f} %  latencies {lats}"
           + (f"  ERROR {rec['error']}" if rec["error"] else "")
           + (f"  [busy: {', '.join(rec['busy_during'])}]" if rec.get("busy_during") else ""))
    return rec


def sample_runs(names: list[str] | None) -> list[tuple[str, list[str]]]:
    chosen = [s for s in SAMPLES if names is None or s[0] in names]
    return [(n, [sys.executable, str(SAMPLES_DIR / f"{script}.py"), *args]) for n, script, args in chosen]


def run_agreement(a, tmp: Path, quiet: Quiet) -> dict:
    runs: list[dict] = []
    samples = sample_runs(a.samples_list)
    bu.log(f"== agreement and latency: {len(samples)} samples, {len(a.cases_list or [])} insight cases, "
           f"--interval {a.interval:g}")
    for name, cmd in samples:
        kind = "sample control" if name in CONTROLS else "sample"
        runs.append(one_agreement(name, kind, cmd, tmp, a.interval, quiet, a.timeout, cwd=str(REPO)))
    for name in a.cases_list or []:
        runs.append(run_case(name, a, tmp, quiet))
    lat = [x["intervals"] for r in runs for x in r.get("latencies") or []]
    during = [x["intervals"] for r in runs for x in r.get("latencies") or [] if not x["at_end"]]
    return {"runs": runs, "summary": {
        "runs": len(runs), "runs_met": sum(bool(r["met"]) for r in runs),
        "min_live_in_post": min((r["live_in_post"] for r in runs), default=None),
        "min_post_in_live": min((r["post_in_live"] for r in runs), default=None),
        "findings": len(lat), "latency_median": percentile(lat, 50), "latency_p95": percentile(lat, 95),
        "latency_max": max(lat, default=None),
        "findings_during_run": len(during), "latency_median_during_run": percentile(during, 50),
        "latency_p95_during_run": percentile(during, 95), "end": end_parts(runs)}}


END_PARTS = ("abandon_s", "catch_up_s", "finish_s", "analysis_s")
ANALYSIS_PARTS = ("analyze_s", "detectors_s")  # of analysis_s, in the analysis process


def end_parts(runs: list[dict]) -> dict:
    """Medians over the runs: the end line's time after the last event, and its parts (the end
    line's ``end_timing``); the rest is the capture's teardown, until the follower hears it ended."""
    ends = [r for r in runs if r.get("end_after_stop_s") is not None and r.get("end_timing")]
    out = {"runs": len(ends), "after_stop_s": bu.median([r["end_after_stop_s"] for r in ends])}
    for k in END_PARTS + ANALYSIS_PARTS:
        out[k] = bu.median([r["end_timing"].get(k) for r in ends if r["end_timing"].get(k) is not None])
    out["heard_s"] = bu.median([r["end_after_stop_s"] - sum(r["end_timing"].get(k) or 0 for k in END_PARTS)
                                for r in ends])
    return out


def run_case(name: str, a, tmp: Path, quiet: Quiet) -> dict:
    """An insight.py case study's ``asis`` variant, set up as insight.py sets it up."""
    import insight

    case = insight.CASE_BY_NAME[name]
    miss = insight.missing_programs(case)
    if miss:
        bu.log(f"  {name}: skipped, missing {', '.join(miss)} (bench/setup_insight.sh installs them)")
        return {"name": name, "kind": "insight case", "skipped": f"missing {', '.join(miss)}", "error": None,
                "met": None, **agreement([], [])}
    sizes = dict(case.quick if a.case_size == "quick" else case.size)
    try:
        # directly under $TMPDIR (not in our 0700 directory): the PostgreSQL case runs its server as postgres
        with bu.tempdir(f"ftraceipc-bench-live-{name}-", a.tmp) as ctmp, contextlib.ExitStack() as stack:
            v: dict[str, Any] = dict(sizes, tmp=str(ctmp), py=sys.executable, workloads=str(insight.WORKLOADS))
            for b in case.build:
                v[f"bin_{b}"] = str(insight.compile_c(b, ctmp))
            for s in case.setups:
                stack.enter_context(insight.SETUPS[s](ctmp, v))
            cmd = insight.argv_of(case, case.asis, v)
            kind = "insight control" if case.control else "insight case"
            rec = one_agreement(name, kind, cmd, ctmp, a.interval, quiet, a.timeout, cwd=str(ctmp))
    except Exception as e:  # noqa: BLE001 - a setup failing must not stop the others
        bu.log(f"  {name}: ERROR {type(e).__name__}: {e}")
        return {"name": name, "kind": "insight case", "error": f"{type(e).__name__}: {e}", "met": False,
                **agreement(None, None)}
    rec["sizes"] = sizes
    return rec


# --- 2. overhead ------------------------------------------------------------------------------------------------
def run_overhead(a, tmp: Path, quiet: Quiet) -> dict:
    import bench_overhead as bo

    bench = ["taskset", "-c", str(a.cpu), "perf", "bench", "sched", "pipe", "-l", str(a.loops)]
    tracer = shlex.join(pinned(a.tracer_cpu) + bu.ftraceipc_argv())
    bu.log(f"== overhead: {' '.join(bench)}, capture vs live, {a.repeat} interleaved repetitions, "
           f"ftraceipc under {' '.join(pinned(a.tracer_cpu)) or 'no taskset'}")
    bu.run(bench)  # warm-up
    runs: list[dict] = []
    variants = ["capture", "live"]
    for rep in range(a.repeat):
        for v in variants[rep % 2:] + variants[:rep % 2]:
            def once(v=v, rep=rep):
                if v == "capture":
                    r, extra = bo.measure_ftraceipc(bench, tmp, rep, tracer)
                    return r, {"events": extra.get("events"), "lost": extra.get("lost"),
                               "pages_missed": extra.get("pages_missed")}
                cap = tmp / f"live{rep}.ftipc"
                try:
                    r = bu.run(live_argv(cap, a.interval, bench, a.tracer_cpu), timeout=a.timeout)
                    meta = read_meta(cap)
                    s = live_summary(parse_lines(r.stdout)[0], a.interval, meta.get("stop_ts"))
                    ml = meta_lost(meta)
                    return r, {"events": s["events"], "lost": max(ml["lost"], s["lost_status"] or 0),
                               "pages_missed": ml["pages_missed"], "max_lag_ns": s["max_lag_ns"],
                               "max_model_lag_ns": s["max_model_lag_ns"],
                               "last_lag_ns": s["last_lag_ns"], "cpu_s": s["cpu_s"], "analyses": s["analyses"],
                               "analysis_s": s["analysis_s"], "end_after_stop_s": s["end_after_stop_s"],
                               "status_lines": s["status_lines"], "errors": s["errors"]}
                finally:
                    shutil.rmtree(cap, ignore_errors=True)

            t0 = time.time()
            (r, extra), q = bu.measure_quietly(once, retries=a.retry_busy, max_wait=a.max_wait, monitor=quiet.monitor)
            rec = {"variant": v, "rep": rep, "value": bu.parse_usecs_per_op(r.stdout), "wall_s": round(r.wall, 3),
                   "cpu_s_total": round(r.utime + r.stime, 3), "start": t0, **q, **extra}
            runs.append(rec)
            bu.log(f"  rep {rep + 1}/{a.repeat} {v:8s} {rec['value']:8.3f} µs/op  events {extra.get('events')}"
                   f"  lost {extra.get('lost')}"
                   + (f"  max lag {extra['max_lag_ns'] / 1e6:.0f} ms" if extra.get("max_lag_ns") is not None else "")
                   + (f"  [busy: {', '.join(q['busy_during'])}]" if q["busy_during"] else ""))
    by_rep: dict[int, dict[str, float]] = {}
    for r in runs:
        by_rep.setdefault(r["rep"], {})[r["variant"]] = r["value"]
    ratios = [d["live"] / d["capture"] for d in by_rep.values() if "live" in d and "capture" in d]
    summ = {v: {"value": bu.median([r["value"] for r in runs if r["variant"] == v]),
                "min": min(r["value"] for r in runs if r["variant"] == v),
                "max": max(r["value"] for r in runs if r["variant"] == v),
                "lost_max": max((r.get("lost") or 0 for r in runs if r["variant"] == v), default=None),
                "events": bu.median([r.get("events") for r in runs if r["variant"] == v])} for v in variants}
    lv = [r for r in runs if r["variant"] == "live"]
    summ["ratio_paired_median"] = bu.median(ratios)
    summ["ratio_paired_max"] = max(ratios, default=None)
    summ["ratio_of_medians"] = summ["live"]["value"] / summ["capture"]["value"]
    summ["max_lag_ns"] = max((r["max_lag_ns"] for r in lv if r.get("max_lag_ns") is not None), default=None)
    summ["max_model_lag_ns"] = max((r["max_model_lag_ns"] for r in lv if r.get("max_model_lag_ns") is not None),
                                   default=None)
    summ["live_cpu_s_median"] = bu.median([r.get("cpu_s") for r in lv])
    summ["live_analyses_median"] = bu.median([r.get("analyses") for r in lv])
    summ["end_after_stop_s_median"] = bu.median([r.get("end_after_stop_s") for r in lv])
    return {"workload": bench, "tracer": tracer, "runs": runs, "ratios": ratios, "summary": summ}


# --- 5. budget -------------------------------------------------------------------------------------------------
def _tps(stdout: str) -> float | None:
    m = re.search(r"tps = ([0-9.]+)", stdout)
    return float(m.group(1)) if m else None


def run_budget(a, tmp: Path, quiet: Quiet) -> dict:
    import insight

    case = insight.CASE_BY_NAME["pgbench_pipeline"]
    miss = insight.missing_programs(case)
    if miss:
        raise RuntimeError(f"missing {', '.join(miss)} (bench/setup_insight.sh installs them)")
    from ftraceipc.capture.events import DEFAULT_EVENTS, NARROWABLE

    # what --budget never turns off: the best any budget can do on this workload
    floor_events = [e for e in DEFAULT_EVENTS if not any(e in g for g in NARROWABLE.values())]
    variants = ["untraced", "capture", "floor", "live", "budget"]
    runs: list[dict] = []
    bu.log(f"== budget: pgbench -S -c 1 -T {a.budget_seconds:g} over a Unix socket, pinned to CPU {a.cpu}, "
           f"ftraceipc on CPU {a.tracer_cpu}: {', '.join(variants)} (--budget {a.budget_pct:g}; floor: "
           f"{len(floor_events)} events), "
           f"{a.budget_repeat} interleaved repetitions")
    with bu.tempdir("ftraceipc-bench-budget-", a.tmp) as ctmp, contextlib.ExitStack() as stack:
        v: dict[str, Any] = {"tmp": str(ctmp)}
        stack.enter_context(insight.SETUPS["postgres"](ctmp, v))
        pm = int((ctmp / "pg" / "data" / "postmaster.pid").read_text().split()[0])
        bu.run(["taskset", "-a", "-c", "-p", str(a.cpu), str(pm)])  # the server and every backend it forks
        def pg(seconds: float) -> list[str]:
            return ["taskset", "-c", str(a.cpu), "pgbench", "-n", "-M", "prepared", "-S", "-c", "1",
                    "-T", f"{seconds:g}", "-h", v["pg_host"], "-U", v["pg_user"], "postgres"]

        bench = pg(a.budget_seconds)
        bu.run(pg(3))  # warm-up: the table in the buffer cache
        for rep in range(a.budget_repeat):
            for var in variants[rep % len(variants):] + variants[:rep % len(variants)]:
                def once(var=var, rep=rep):
                    cap = tmp / f"budget-{var}-{rep}.ftipc"
                    extra: dict[str, Any] = {}
                    try:
                        if var == "untraced":
                            return bu.run(bench, timeout=a.timeout), extra
                        if var in ("capture", "floor"):
                            ev = ("-e", ",".join(floor_events)) if var == "floor" else ()
                            r = bu.run([*pinned(a.tracer_cpu), *bu.ftraceipc_argv(), "capture", "-o", str(cap),
                                        "--force", "--no-model", *ev, "--", *bench], timeout=a.timeout)
                            extra["events"] = (read_meta(cap).get("cost") or {}).get("events")
                            return r, extra
                        args = ("--budget", f"{a.budget_pct:g}") if var == "budget" else ()
                        r = bu.run(live_argv(cap, a.interval, bench, a.tracer_cpu, args), timeout=a.timeout)
                        lines = parse_lines(r.stdout)[0]
                        st = [ln for ln in lines if ln.get("type") == "status"]
                        extra["events"] = (read_meta(cap).get("cost") or {}).get("events")
                        if var == "budget":
                            extra["changes"] = [{k: ln.get(k) for k in ("ts", "off", "on", "analysis_every",
                                                                        "cost_pct", "reason")}
                                                for ln in lines if ln.get("type") == "budget"]
                            costs = [s_["cost_pct"] for s_ in st if s_.get("cost_pct") is not None]
                            extra["cost_pct_median"] = bu.median(costs)
                            extra["cost_pct_last"] = costs[-1] if costs else None
                            extra["traced_off_last"] = st[-1].get("traced_off") if st else None
                            end = next((ln for ln in lines if ln.get("type") == "end"), None)
                            pr = bu.run(bu.ftraceipc_argv() + ["analyze", str(cap), "--format", "json"],
                                        check=False, timeout=a.timeout)
                            post = json.loads(pr.stdout)["findings"] if pr.returncode == 0 else None
                            extra.update(agreement(end["findings"] if end else None, post))
                            extra["findings"] = sorted(ident(f) for f in (post or []))
                        return r, extra
                    finally:
                        shutil.rmtree(cap, ignore_errors=True)

                (r, extra), q = bu.measure_quietly(once, retries=a.retry_busy, max_wait=a.max_wait,
                                                   monitor=quiet.monitor)
                rec = {"variant": var, "rep": rep, "tps": _tps(r.stdout), **q, **extra}
                runs.append(rec)
                bu.log(f"  rep {rep + 1}/{a.budget_repeat} {var:9s} {rec['tps'] or 0:9.0f} tps  events "
                       f"{extra.get('events')}" + (f"  cost {extra.get('cost_pct_median')} %  changes "
                                                  f"{len(extra.get('changes') or [])}  agreement "
                                                  f"{extra.get('live_in_post')}/{extra.get('post_in_live')}"
                                                  if var == "budget" else ""))
    med = {var: bu.median([r["tps"] for r in runs if r["variant"] == var and r["tps"]]) for var in variants}
    base = med["untraced"]
    summ = {var: {"tps": med[var], "cost": (1 - med[var] / base) if base and med[var] else None,
                  "events": bu.median([r.get("events") for r in runs if r["variant"] == var])} for var in variants}
    br = [r for r in runs if r["variant"] == "budget"]
    summ["budget_cost_pct_median"] = bu.median([r.get("cost_pct_median") for r in br])
    summ["agreement_min"] = min((min(r.get("live_in_post") or 0, r.get("post_in_live") or 0) for r in br), default=None)
    return {"workload": bench, "budget_pct": a.budget_pct, "runs": runs, "summary": summ}


# --- 3. lost events ---------------------------------------------------------------------------------------------
def run_lost(a, tmp: Path, quiet: Quiet) -> dict:
    bench = ["perf", "bench", "sched", "messaging", "-g", "4", "-l", str(a.messaging_loops)]
    bu.log(f"== lost events: {' '.join(bench)} under ftraceipc live, {a.lost_repeat} run(s)")
    runs = []
    for rep in range(a.lost_repeat):
        cap = tmp / f"lost{rep}.ftipc"
        rec: dict[str, Any] = {"rep": rep, "error": None}
        try:
            with quiet.run(rec):
                r = bu.run(live_argv(cap, a.interval, bench), check=False, timeout=a.timeout)
            meta = read_meta(cap)
            s = live_summary(parse_lines(r.stdout)[0], a.interval, meta.get("stop_ts"))
            info = info_of(cap)
            rec.update(exit=r.returncode, wall_s=round(r.wall, 2), events=s["events"],
                       lost_status=s["lost_status"], lost_pages_status=s["lost_pages_status"],
                       meta=meta_lost(meta), info=info, max_lag_ns=s["max_lag_ns"], cpu_s=s["cpu_s"],
                       end=s["end"], end_after_stop_s=s["end_after_stop_s"], errors=s["errors"])
            if not s["end"]:
                rec["error"] = f"no end line (exit {r.returncode}): {r.stderr.strip()[-300:]}"
        except Exception as e:  # noqa: BLE001
            rec["error"] = f"{type(e).__name__}: {e}"
        finally:
            shutil.rmtree(cap, ignore_errors=True)
        info = rec.get("info") or {}
        rec["total_lost"] = sum(x or 0 for x in (rec.get("lost_status"), rec.get("lost_pages_status"),
                                                 (rec.get("meta") or {}).get("lost"),
                                                 (rec.get("meta") or {}).get("pages_missed"),
                                                 info.get("missed_events"), info.get("pages_missed"),
                                                 info.get("kernel_lost")))
        runs.append(rec)
        bu.log(f"  run {rep + 1}/{a.lost_repeat}: events {rec.get('events')}  lost: status {rec.get('lost_status')}"
               f" (pages {rec.get('lost_pages_status')}), meta {rec.get('meta')}, info missed "
               f"{info.get('missed_events')} pages {info.get('pages_missed')} kernel {info.get('kernel_lost')}"
               + (f"  ERROR {rec['error']}" if rec["error"] else ""))
    return {"workload": bench, "runs": runs}


# --- 4. memory ----------------------------------------------------------------------------------------------
def _stat(pid: str) -> tuple[str, int] | None:
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    return comm, int(s[s.rindex(")") + 2:].split()[1])


def _mem(pid: int) -> dict | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1])
    return out if "VmRSS" in out else None


def live_processes() -> dict[int, tuple[int, dict]]:
    """Every ``ftipc-live`` and ``ftipc-spare`` process: pid -> (its parent, VmRSS/VmHWM in KiB and
    its ``comm``)."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(d)
            if st and st[0] in (LIVE_COMM, SPARE_COMM):
                m = _mem(int(d))
                if m is not None:
                    out[int(d)] = (st[1], {**m, "comm": st[0]})
    return out


def own_descendants(procs: dict[int, tuple[int, dict]], root: int) -> dict[int, tuple[int, dict]]:
    """Those of ``procs`` (pid -> (ppid, ...)) that descend from ``root`` through each other (another
    live run on the machine has ``ftipc-live`` processes too)."""
    own = {pid for pid, (pp, _) in procs.items() if pp == root}
    grew = True
    while grew:
        more = {pid for pid, (pp, _) in procs.items() if pid not in own and pp in own}
        own |= more
        grew = bool(more)
    return {pid: v for pid, v in procs.items() if pid in own}


def classify(seen: dict[int, dict], parent: int) -> tuple[int | None, int | None, list[int]]:
    """The follower (the longest-lived ``ftipc-live`` child of the ftraceipc process), its analysis
    process (the longest-lived child of the follower that lived at least half as long as it: the
    analyzer that keeps the graph open, when the engine has one) and the others (short-lived
    copies); the spare (first seen as ``ftipc-spare``) is none of them (``spare_of``). ``seen``:
    pid -> {"ppid", "comm" (when first seen), "series": [(t, rss, hwm)]}."""
    follower = max((p for p, v in seen.items() if v["ppid"] == parent and v.get("comm") != SPARE_COMM),
                   key=lambda p: len(seen[p]["series"]), default=None)
    kids = [p for p, v in seen.items()
            if follower is not None and v["ppid"] == follower and v.get("comm") != SPARE_COMM]
    analyzer = max(kids, key=lambda p: len(seen[p]["series"]), default=None)
    if analyzer is not None and len(seen[analyzer]["series"]) < len(seen[follower]["series"]) / 2:
        analyzer = None
    return follower, analyzer, sorted(p for p in seen
                                      if p not in (follower, analyzer) and seen[p].get("comm") != SPARE_COMM)


def spare_of(seen: dict[int, dict]) -> int | None:
    """The spare analysis process (the longest-lived one first seen as ``ftipc-spare``), if any."""
    return max((p for p, v in seen.items() if v.get("comm") == SPARE_COMM), key=lambda p: len(seen[p]["series"]),
               default=None)


def at_mark(series: list, mark: float) -> dict | None:
    """The last sample at or before ``mark`` seconds; ``hwm_kib`` the peak so far: the largest
    VmHWM (and VmRSS) of the samples up to it (an exec, as the analysis process's restart, starts
    VmHWM again)."""
    before = [x for x in series if x[0] <= mark]
    if not before:
        return None
    return {"t": before[-1][0], "rss_kib": before[-1][1], "hwm_kib": max(max(x[1], x[2]) for x in before)}


def run_memory(a, tmp: Path, quiet: Quiet) -> dict:
    dur = a.memory_minutes * 60
    first = min(a.memory_first_s, dur / 2)
    rate = a.memory_events_per_s / EVENTS_PER_MESSAGE
    cmd = [sys.executable, "-c", STEADY, f"{rate:g}", f"{dur + 3:g}"]
    cap = tmp / "memory.ftipc"
    argv = live_argv(cap, a.interval, cmd)
    bu.log(f"== memory: a steady pipe writer ({rate:,.0f} messages/s, ~{a.memory_events_per_s:,} events/s) under "
           f"ftraceipc live for {dur:g} s; RSS of the follower at {first:g} s and {dur:g} s")
    shown = live_argv(cap, a.interval, ["python3", "-c", "STEADY", f"{rate:g}", f"{dur + 3:g}"])
    rec: dict[str, Any] = {"workload": f"python3 -c STEADY {rate:g} {dur + 3:g}", "live_argv": shlex.join(shown),
                           "duration_s": dur, "first_mark_s": first, "error": None}
    seen: dict[int, dict] = {}  # every ftipc-live process: pid -> {"ppid", "series": [(t, VmRSS, VmHWM)]}
    out_f = open(tmp / "memory.out", "wb")
    err_f = open(tmp / "memory.err", "wb")
    p = None
    try:
        with quiet.run(rec):
            t0 = time.monotonic()
            p = subprocess.Popen(argv, stdout=out_f, stderr=err_f)
            bu._live[p.pid] = p  # stopped by the cleanup if we are interrupted
            deadline = t0 + dur + a.timeout
            t_first: float | None = None  # when the follower was first seen: the marks count from there
            while p.poll() is None:
                if time.monotonic() > deadline:
                    rec["error"] = f"still running {a.timeout:g} s after the workload: stopped"
                    break
                now = time.monotonic()
                procs = own_descendants(live_processes(), p.pid)
                if t_first is None and any(pp == p.pid for pp, _ in procs.values()):
                    t_first = now
                for pid, (ppid, m) in procs.items():
                    seen.setdefault(pid, {"ppid": ppid, "comm": m["comm"], "series": []})["series"].append(
                        (round(now - (t_first or now), 2), m["VmRSS"], m.get("VmHWM", 0)))
                time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
            rec["wall_s"] = round(time.monotonic() - t0, 1)
    finally:
        if p is not None and p.poll() is None:
            bu.stop_child(p)
        if p is not None:
            bu._live.pop(p.pid, None)
            bu.remove_child_instance(p.pid)
        out_f.close()
        err_f.close()
    try:
        rec["exit"] = p.returncode if p is not None else None
        stdout = (tmp / "memory.out").read_text(errors="replace")
        meta = read_meta(cap)
        s = live_summary(parse_lines(stdout)[0], a.interval, meta.get("stop_ts"))
        rec.update(events=s["events"], events_per_s_median=s["events_per_s_median"], max_lag_ns=s["max_lag_ns"],
                   max_model_lag_ns=s["max_model_lag_ns"], cpu_s=s["cpu_s"], analyses=s["analyses"],
                   analysis_busy_share=s["analysis_busy_share"], analyze_s_max=s["analyze_s_max"], end=s["end"],
                   end_after_stop_s=s["end_after_stop_s"], lost=max(meta_lost(meta)["lost"], s["lost_status"] or 0),
                   errors=s["errors"],
                   capture_mib=round(sum(f.stat().st_size for f in (cap / "cpu").glob("*.raw")) / 2**20, 1)
                   if (cap / "cpu").is_dir() else None)
        if rec["error"] is None and not s["end"]:
            rec["error"] = f"no end line (exit {rec['exit']}): " + \
                (tmp / "memory.err").read_text(errors="replace").strip()[-300:]
    finally:
        shutil.rmtree(cap, ignore_errors=True)
    follower, analyzer, others = classify(seen, p.pid if p is not None else -1)
    series = seen[follower]["series"] if follower is not None else []
    rec["follower_pid"], rec["analyzer_pid"] = follower, analyzer
    rec["series"] = series  # (s since the follower appeared, VmRSS KiB, VmHWM KiB), one a second
    rec["first"], rec["last"] = at_mark(series, first), at_mark(series, dur)
    rec["peak_rss_kib"] = max((x[1] for x in series), default=None)
    rec["peak_hwm_kib"] = max((x[2] for x in series), default=None)
    if rec["first"] and rec["last"]:
        rec["change"] = rec["last"]["hwm_kib"] / rec["first"]["hwm_kib"] - 1
    if analyzer is not None:
        aser = seen[analyzer]["series"]
        rec["analyzer_series"] = aser
        rec["analyzer_first"], rec["analyzer_last"] = at_mark(aser, first), at_mark(aser, dur)
        rec["analyzer_peak_rss_kib"] = max((x[1] for x in aser), default=None)
        if rec["analyzer_first"] and rec["analyzer_last"]:
            rec["analyzer_change"] = rec["analyzer_last"]["hwm_kib"] / rec["analyzer_first"]["hwm_kib"] - 1
    spare = spare_of(seen)
    rec["spare_pid"] = spare
    if spare is not None:
        sser = seen[spare]["series"]
        rec["spare_first"], rec["spare_last"] = at_mark(sser, first), at_mark(sser, dur)
        if rec["spare_first"] and rec["spare_last"]:
            rec["spare_change"] = rec["spare_last"]["hwm_kib"] / rec["spare_first"]["hwm_kib"] - 1
    rec["copies"] = len(others)  # the short-lived copies that finish a model each interval
    rec["copies_rss_max_kib"] = max((x[1] for o in others for x in seen[o]["series"]), default=None)
    bu.log(f"  follower RSS at {first:g} s: {(rec['first'] or {}).get('rss_kib')} KiB, at {dur:g} s: "
           f"{(rec['last'] or {}).get('rss_kib')} KiB; peak {rec['peak_rss_kib']} KiB; analysis process peak "
           f"{rec.get('analyzer_peak_rss_kib')} KiB; copies peak {rec['copies_rss_max_kib']} KiB; "
           f"{rec.get('events_per_s_median')} events/s" + (f"  ERROR {rec['error']}" if rec["error"] else ""))
    return rec


# --- targets and Markdown (pure) ----------------------------------------------------------------------------
FAILED_TARGETS = {"agreement": ("agreement >= 95 % both ways on every run", "latency median <= 2, p95 <= 3 intervals"),
                  "overhead": ("overhead live / capture <= 1.10",),
                  "lost": ("no lost events under perf bench sched messaging",),
                  "memory": ("follower peak RSS within 10 % over the run",
                             "analysis process peak RSS within 10 % over the run"),
                  "budget": ("pgbench -S throughput cost with --budget <= 7 %",
                             "budget run findings agree with analyze >= 95 % both ways")}


def check_targets(res: dict) -> list[dict]:
    t = []
    for part, names in FAILED_TARGETS.items():
        if (res.get(part) or {}).get("failed"):
            t += [{"name": n, "met": False, "detail": f"the measurement failed: {res[part]['failed']}"} for n in names]
    ok = {p: res[p] for p in PARTS if res.get(p) and not res[p].get("failed")}
    ag = ok.get("agreement")
    if ag:
        runs = [r for r in ag["runs"] if not r.get("skipped")]
        bad = [r["name"] for r in runs if r["error"] or r["live_in_post"] < TARGET_AGREEMENT]
        t.append({"name": "live end -> analyze agreement >= 95 % on every run", "met": bool(runs) and not bad,
                  "detail": f"lowest {100 * min((r['live_in_post'] for r in runs), default=0):.0f} %"
                            + (f"; below or failed: {', '.join(bad)}" if bad else "")})
        bad = [r["name"] for r in runs if r["error"] or r["post_in_live"] < TARGET_AGREEMENT]
        t.append({"name": "analyze -> live end agreement >= 95 % on every run", "met": bool(runs) and not bad,
                  "detail": f"lowest {100 * min((r['post_in_live'] for r in runs), default=0):.0f} %"
                            + (f"; below or failed: {', '.join(bad)}" if bad else "")})
        s = ag["summary"]
        med, p95 = s["latency_median"], s["latency_p95"]
        t.append({"name": "latency median <= 2 intervals", "met": None if med is None else med <= TARGET_LAT_MEDIAN,
                  "detail": "no finding" if med is None else f"{med:.2f} intervals over {s['findings']} findings"})
        t.append({"name": "latency p95 <= 3 intervals", "met": None if p95 is None else p95 <= TARGET_LAT_P95,
                  "detail": "no finding" if p95 is None else f"{p95:.2f} intervals (max {s['latency_max']:.2f})"})
    ov = ok.get("overhead")
    if ov:
        x = ov["summary"]["ratio_paired_median"]
        t.append({"name": "overhead live / capture <= 1.10", "met": None if x is None else x <= TARGET_OVERHEAD,
                  "detail": f"median of {len(ov['ratios'])} paired ratios {x:.3f}" if x is not None else "no pair"})
    lo = ok.get("lost")
    if lo:
        runs = lo["runs"]
        tot = sum(r["total_lost"] for r in runs)
        failed = [r for r in runs if r["error"]]
        t.append({"name": "no lost events under perf bench sched messaging",
                  "met": bool(runs) and not tot and not failed,
                  "detail": f"{tot} lost over {len(runs)} run(s)" + (f", {len(failed)} failed" if failed else "")})
    me = ok.get("memory")
    if me:
        marks = f"{_dur(me['first_mark_s'])} and {_dur(me['duration_s'])}"
        for who, key, first, last in (("follower", "change", "first", "last"),
                                      ("analysis process", "analyzer_change", "analyzer_first", "analyzer_last")):
            if who != "follower" and me.get("analyzer_pid") is None:
                continue
            ch = me.get(key)
            f_, l_ = me.get(first) or {}, me.get(last) or {}
            t.append({"name": f"{who} peak RSS within 10 % between {marks}",
                      "met": None if ch is None else abs(ch) <= TARGET_MEMORY,
                      "detail": "not measured" if ch is None else
                      f"{f_['hwm_kib'] / 1024:.0f} MiB -> {l_['hwm_kib'] / 1024:.0f} MiB ({100 * ch:+.1f} %)"})
    bd = ok.get("budget")
    if bd:
        s_ = bd["summary"]
        c = s_["budget"]["cost"]
        t.append({"name": f"pgbench -S throughput cost with --budget {bd['budget_pct']:g} <= 7 %",
                  "met": None if c is None else c <= TARGET_BUDGET_COST,
                  "detail": "not measured" if c is None else
                  f"{100 * c:.1f} % (capture {_pct(s_['capture']['cost'])}, live {_pct(s_['live']['cost'])}, "
                  f"the events it never turns off {_pct((s_.get('floor') or {}).get('cost'))}; "
                  f"its own estimate {_f(s_['budget_cost_pct_median'])} % of the CPUs)"})
        ag = s_["agreement_min"]
        t.append({"name": "budget run findings agree with analyze >= 95 % both ways",
                  "met": None if ag is None else ag >= TARGET_AGREEMENT,
                  "detail": "not measured" if ag is None else f"lowest {100 * ag:.0f} %"})
    return t


def _dur(s: float) -> str:
    return f"minute {s / 60:g}" if s >= 60 and s % 60 == 0 else f"{s:g} s"


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.0f} %"


def _f(x, fmt=".1f") -> str:
    return "" if x is None else format(x, fmt)


def _verdict(met) -> str:
    return {True: "met", False: "missed", None: "not judged"}[met]


def markdown(res: dict) -> str:
    """The tables and targets of a results JSON (what main prints)."""
    iv = res["args"]["interval"]
    out: list[str] = []
    for i, part in enumerate(PARTS, 1):
        if (res.get(part) or {}).get("failed"):
            out += [f"**{i}. {part}**: the measurement failed: {res[part]['failed']}", ""]
    ok = {p: res[p] for p in PARTS if res.get(p) and not res[p].get("failed")}
    ag = ok.get("agreement")
    if ag:
        out += ["**1. Agreement and latency**: each run `ftraceipc live --format jsonl -o DIR --force --interval "
                f"{iv:g} -- CMD`, then `ftraceipc analyze DIR --format json`; a finding is (pattern, tasks, "
                "resources); latency = (emitted_ts - first_seen_ts) / interval of each new finding line", ""]
        rows = []
        for r in ag["runs"]:
            if r.get("skipped"):
                rows.append([r["name"], r["kind"], "", "", "", "", "", "", "", "", f"skipped: {r['skipped']}"])
                continue
            lats = [x["intervals"] for x in r.get("latencies") or []]
            rows.append([r["name"], r["kind"], _f(r.get("capture_s")), _f(r.get("intervals"), ".0f"),
                         len(r.get("live_findings") or []), len(r.get("post_findings") or []),
                         _pct(r["live_in_post"]), _pct(r["post_in_live"]),
                         ", ".join(f"{x:.1f}" for x in lats), _f((r.get("max_lag_ns") or 0) / 1e9, ".2f")
                         if r.get("max_lag_ns") is not None else "",
                         ("met" if r["met"] else "missed") + (f" ({r['error'][:80]})" if r.get("error") else "")])
        out.append(bu.table(["run", "kind", "traced s", "intervals", "live end", "analyze", "live in analyze",
                             "analyze in live", "latencies (intervals)", "max lag s", "agreement >= 95 %"], rows))
        diff = [r for r in ag["runs"] if r.get("only_live") or r.get("only_post")]
        if diff:
            out += ["", "Findings on one side only:", ""]
            out += [f"- {r['name']}: live only {', '.join(f'`{x}`' for x in r['only_live']) or '-'}; "
                    f"analyze only {', '.join(f'`{x}`' for x in r['only_post']) or '-'}" for r in diff]
        cmds = [f"- {r['name']}: `{r['command']}`" for r in ag["runs"] if r.get("command")]
        if cmds:
            out += ["", "Commands (CMD):", "", *cmds]
        s = ag["summary"]
        out += ["", bu.table(["findings", "latency median", "p95", "max", "first emitted at the end",
                              "median without those", "p95 without those"],
                             [[s["findings"], _f(s["latency_median"], ".2f"), _f(s["latency_p95"], ".2f"),
                               _f(s["latency_max"], ".2f"), s["findings"] - s["findings_during_run"],
                               _f(s["latency_median_during_run"], ".2f"), _f(s["latency_p95_during_run"], ".2f")]])]
        e = s.get("end") or {}
        if e.get("runs"):
            out += ["", f"the end line, median of {e['runs']} runs: {_f(e['after_stop_s'], '.2f')} s after the last "
                        f"event: the follower heard the capture end {_f(e['heard_s'], '.2f')} s after it, then "
                        f"{_f(e['abandon_s'], '.2f')} s stopping an analysis in flight, {_f(e['catch_up_s'], '.2f')} s "
                        f"feeding what it had not fed, {_f(e['finish_s'], '.2f')} s finishing the run's model, "
                        f"{_f(e['analysis_s'], '.2f')} s analysing it"
                        + (f" (in the analysis process: {_f(e.get('analyze_s'), '.2f')} s loading and analysing, "
                           f"{_f(e.get('detectors_s'), '.2f')} s of it the detectors' queries)"
                           if e.get("analyze_s") is not None else "") + " (each part's own median)"]
    ov = ok.get("overhead")
    if ov:
        sm = ov["summary"]
        out += ["", f"**2. Overhead**: `{' '.join(ov['workload'])}` under `{ov['tracer']} capture --no-model` and "
                f"under `{ov['tracer']} live --interval {iv:g}`, {res['args']['repeat']} interleaved repetitions, "
                "the benchmark's own µs/op", ""]
        lv = [r for r in ov["runs"] if r["variant"] == "live"]
        rows = [["capture", f"{sm['capture']['value']:.3f}", f"{sm['capture']['min']:.3f}–{sm['capture']['max']:.3f}",
                 "1.000", _n(sm["capture"]["events"]), _n(sm["capture"]["lost_max"]), "", "", ""],
                ["live", f"{sm['live']['value']:.3f}", f"{sm['live']['min']:.3f}–{sm['live']['max']:.3f}",
                 _f(sm["ratio_paired_median"], ".3f"), _n(sm["live"]["events"]), _n(sm["live"]["lost_max"]),
                 "" if sm["max_lag_ns"] is None else f"{sm['max_lag_ns'] / 1e9:.2f}"
                 + ("" if sm.get("max_model_lag_ns") is None else f" (model {sm['max_model_lag_ns'] / 1e9:.2f})"),
                 _f(sm["live_cpu_s_median"], ".2f"),
                 _f(bu.median([r.get("analyses") for r in lv]), ".0f")]]
        out.append(bu.table(["variant", "µs/op (median)", "range", "× capture (paired median)", "events",
                             "lost (max)", "max lag s", "live cpu_s", "analyses"], rows))
        out += ["", f"paired ratios live/capture: {', '.join(f'{x:.3f}' for x in ov['ratios'])}"
                f"; the end line came {_f(sm['end_after_stop_s_median'], '.1f')} s after tracing stopped (median)"]
    lo = ok.get("lost")
    if lo:
        out += ["", f"**3. Lost events**: `ftraceipc live -- {' '.join(lo['workload'])}` (default settings)", ""]
        rows = []
        for r in lo["runs"]:
            m, i = r.get("meta") or {}, r.get("info") or {}
            rows.append([r["rep"] + 1, _n(r.get("events")), _n(r.get("lost_status")), _n(r.get("lost_pages_status")),
                         _n(m.get("lost")), _n(m.get("pages_missed")), _n(i.get("missed_events")),
                         _n(i.get("pages_missed")), _n(i.get("kernel_lost")),
                         _f((r.get("max_lag_ns") or 0) / 1e9, ".2f") if r.get("max_lag_ns") is not None else "",
                         ("met" if not r["total_lost"] and not r.get("error") else "missed")
                         + (f" ({r['error'][:80]})" if r.get("error") else "")])
        out.append(bu.table(["run", "events", "lost (status)", "pages (status)", "lost (meta.json)",
                             "pages flagged (meta.json)", "missed (info)", "pages missed (info)",
                             "kernel counters (info)", "max lag s", "0 lost"], rows))
    me = ok.get("memory")
    if me:
        f_, l_ = me.get("first") or {}, me.get("last") or {}
        out += ["", f"**4. Memory**: a steady pipe writer and reader (`{me['workload']}`) under `ftraceipc live "
                f"--interval {iv:g}` for {_dur(me['duration_s'])}, "
                f"{_n(me.get('events_per_s_median'))} events/s (median of the status lines), {_n(me.get('events'))} "
                f"events; VmRSS and VmHWM (the peak so far) of each `{LIVE_COMM}` process sampled every second (the follower: the child of the "
                f"ftraceipc process; the analysis process: the follower's long-lived child, if any; the spare "
                f"analysis process, named `{SPARE_COMM}` while it waits; the copies: its short-lived children, "
                f"one per analysis)", ""]

        def mib(k):
            return "" if k is None else f"{k / 1024:.0f}"

        def change(x):
            return "" if x is None else f"{100 * x:+.1f} %"

        def verdict(x):
            return "met" if x is not None and abs(x) <= TARGET_MEMORY else "missed"

        rows = [["follower", mib(f_.get("hwm_kib")), mib(l_.get("hwm_kib")), change(me.get("change")),
                 mib(f_.get("rss_kib")), mib(l_.get("rss_kib")),
                 verdict(me.get("change")) + (f" ({me['error'][:80]})" if me.get("error") else "")]]
        if me.get("analyzer_pid") is not None:
            af, al = me.get("analyzer_first") or {}, me.get("analyzer_last") or {}
            rows.append(["analysis process", mib(af.get("hwm_kib")), mib(al.get("hwm_kib")),
                         change(me.get("analyzer_change")), mib(af.get("rss_kib")), mib(al.get("rss_kib")),
                         verdict(me.get("analyzer_change"))])
        if me.get("spare_pid") is not None:
            sf, sl = me.get("spare_first") or {}, me.get("spare_last") or {}
            rows.append(["spare analysis process", mib(sf.get("hwm_kib")), mib(sl.get("hwm_kib")),
                         change(me.get("spare_change")), mib(sf.get("rss_kib")), mib(sl.get("rss_kib")),
                         "(idle; it analyses the end when the analysis process was busy)"])
        if me.get("copies"):
            rows.append([f"copies ({me['copies']})", "", mib(me.get("copies_rss_max_kib")), "", "", "",
                         "(each lives one interval)"])
        out.append(bu.table(["process", f"peak RSS MiB at {_dur(me['first_mark_s'])}",
                             f"peak RSS MiB at {_dur(me['duration_s'])}", "change",
                             f"RSS MiB at {_dur(me['first_mark_s'])}", f"RSS MiB at {_dur(me['duration_s'])}",
                             "peak within 10 %"], rows))
        out += ["", f"max lag {_f((me.get('max_lag_ns') or 0) / 1e9, '.2f')} s"
                + (f" (model lag {me['max_model_lag_ns'] / 1e9:.2f} s)"
                   if me.get("max_model_lag_ns") is not None else "")
                + f"; live cpu_s {_f(me.get('cpu_s'), '.1f')}; {_n(me.get('analyses'))} analyses; capture "
                f"{_f(me.get('capture_mib'), '.0f')} MiB; the end line {_f(me.get('end_after_stop_s'), '.1f')} s after "
                "tracing stopped"]
    bd = ok.get("budget")
    if bd:
        sm = bd["summary"]
        out += ["", f"**5. Budget**: `{shlex.join(bd['workload'])}` (PostgreSQL 15 of bench/insight.py, its "
                f"server pinned to the same CPU), untraced, under `capture --no-model`, `live` and `live --budget "
                f"{bd['budget_pct']:g}` (ftraceipc pinned to CPU {res['args'].get('tracer_cpu')}), interleaved; "
                "cost = 1 - tps / untraced tps (medians)", ""]
        rows = [[var, _f(sm[var]["tps"], ".0f"), _pct(sm[var]["cost"]) if var != "untraced" else "",
                 _n(sm[var]["events"])] for var in ("untraced", "capture", "floor", "live", "budget") if var in sm]
        out.append(bu.table(["variant", "tps (median)", "cost", "events (median)"], rows))
        br = [r for r in bd["runs"] if r["variant"] == "budget"]
        for r in br:
            ch = "; ".join(f"{'off ' + ','.join(c['off']) if c['off'] else ''}{'on ' + ','.join(c['on']) if c['on'] else ''}"
                           f"{'' if c['off'] or c['on'] else 'analysis every ' + str(c['analysis_every'])}"
                           f" ({c['reason']})" for c in r.get("changes") or [])
            out += ["", f"- budget rep {r['rep'] + 1}: {_f(r['tps'], '.0f')} tps; its cost estimate "
                        f"{_f(r.get('cost_pct_median'))} % of the CPUs (median of the status lines), off at the end: "
                        f"{', '.join(r.get('traced_off_last') or []) or 'nothing'}; agreement with analyze "
                        f"{_pct(r.get('live_in_post'))} / {_pct(r.get('post_in_live'))}; changes: {ch or 'none'}"]
    out += ["", bu.table(["target (issue #13)", "measured", "met/missed"],
                         [[t["name"], t["detail"], _verdict(t["met"])] for t in res["targets"]])]
    busy = sorted({n for part in ("agreement", "overhead", "lost") for r in (ok.get(part) or {}).get("runs", [])
                   for n in r.get("busy_during") or []} | set((ok.get("memory") or {}).get("busy_during") or []))
    if busy:
        out += ["", f"note: other tracing instances existed during some runs: {', '.join(busy)}"]
    return "\n".join(out)


def _n(v) -> str:
    return "" if v is None else f"{int(v):,}"


# --- main -----------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small: samples herd and relay, no insight case, 2 repetitions of 100,000 loops, 1 lost "
                         "run, 20 s of memory (marks at 10 s and 20 s); any option given explicitly wins")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from: {', '.join(PARTS)}")
    ap.add_argument("--interval", type=float, default=1.0, help="ftraceipc live --interval")
    ap.add_argument("--samples", default=None,
                    help=f"agreement: comma-separated sample runs, 'all' or 'none' (default all; --quick: "
                         f"{','.join(QUICK_SAMPLES)}); names: {', '.join(s[0] for s in SAMPLES)}")
    ap.add_argument("--cases", default=None,
                    help="agreement: comma-separated insight.py cases, 'all' or 'none' (default all; --quick: none)")
    ap.add_argument("--case-size", choices=("size", "quick"), default="size", help="insight.py sizes to use")
    ap.add_argument("--repeat", type=int, default=None, help="overhead: repetitions (default 5; --quick 2)")
    ap.add_argument("--loops", type=int, default=None,
                    help="overhead: perf bench sched pipe -l LOOPS (default 400000; --quick 100000)")
    ap.add_argument("--cpu", type=int, default=1, help="overhead: taskset -c CPU for the benchmark")
    ap.add_argument("--tracer-cpu", type=int, default=0,
                    help="overhead: taskset -c CPU for ftraceipc (capture and live alike); -1: not pinned")
    ap.add_argument("--lost-repeat", type=int, default=None, help="lost: runs (default 3; --quick 1)")
    ap.add_argument("--messaging-loops", type=int, default=200, help="lost: perf bench sched messaging -l")
    ap.add_argument("--memory-minutes", type=float, default=None,
                    help="memory: how long the steady workload runs (default 10; --quick 1/3)")
    ap.add_argument("--memory-first-s", type=float, default=120.0,
                    help="memory: the first mark, seconds (at most half the duration)")
    ap.add_argument("--memory-events-per-s", type=int, default=200000, help="memory: the workload's event rate")
    ap.add_argument("--budget-pct", type=float, default=5.0, help="budget: ftraceipc live --budget")
    ap.add_argument("--budget-seconds", type=float, default=30.0,
                    help="budget: pgbench -T (the budget acts from the first interval: a short run is mostly its start)")
    ap.add_argument("--budget-repeat", type=int, default=None, help="budget: repetitions (default 3; --quick 1)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds any one traced run may take")
    ap.add_argument("--max-wait", type=float, default=120.0,
                    help="before each run, wait up to S s for other tracing instances to go")
    ap.add_argument("--retry-busy", type=int, default=None,
                    help="overhead: measure a repetition again if another tracing instance appeared (default 2; "
                         "--quick 0)")
    ap.add_argument("--tmp", default=None, help="directory for temporary captures (default: $TMPDIR)")
    ap.add_argument("--json", metavar="PATH", help="write all results as JSON")
    a = ap.parse_args()
    q = a.quick
    a.repeat = a.repeat or (2 if q else 5)
    a.loops = a.loops or (100000 if q else 400000)
    a.lost_repeat = a.lost_repeat or (1 if q else 3)
    a.budget_repeat = a.budget_repeat or (1 if q else 3)
    a.memory_minutes = a.memory_minutes or (20 / 60 if q else 10.0)
    if q and a.memory_first_s == 120.0:
        a.memory_first_s = 10.0
    a.retry_busy = a.retry_busy if a.retry_busy is not None else (0 if q else 2)
    parts = [p.strip() for p in a.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    names = {s[0] for s in SAMPLES}
    import insight

    case_names = [c.name for c in insight.CASES]

    def chosen(arg: str | None, default: list[str], valid: set[str]) -> list[str]:
        order = [s[0] for s in SAMPLES] + case_names
        if arg is None:
            return default
        if arg in ("all", ""):
            return [x for x in order if x in valid]
        if arg == "none":
            return []
        got = [x.strip() for x in arg.split(",") if x.strip()]
        unknown = [x for x in got if x not in valid]
        if unknown:
            sys.exit(f"error: unknown {', '.join(unknown)}; choose from {', '.join(sorted(valid))}")
        return got

    a.samples_list = chosen(a.samples, list(QUICK_SAMPLES) if q else [s[0] for s in SAMPLES], names)
    a.cases_list = chosen(a.cases, [] if q else case_names, set(case_names))
    if bad:
        sys.exit(f"error: unknown part(s) {', '.join(bad)}; choose from {', '.join(PARTS)}")
    bu.require_tools("perf", "taskset")
    machine = bu.machine_info()
    bu.log(bu.describe_machine(machine))
    res: dict[str, Any] = {"benchmark": "live", "command": " ".join(["bench/bench_live.py", *sys.argv[1:]]),
                           "machine": machine, "args": {k: v for k, v in vars(a).items()}, "parts": parts}
    t_all = time.monotonic()
    with bu.cleanup_on_exit(), bu.tempdir("ftraceipc-bench-live-", a.tmp) as tmp:
        quiet = Quiet(a.max_wait)
        try:
            for part in parts:
                t0 = time.monotonic()
                try:
                    res[part] = {"agreement": run_agreement, "overhead": run_overhead, "lost": run_lost,
                                 "memory": run_memory, "budget": run_budget}[part](a, tmp, quiet)
                except Exception as e:  # noqa: BLE001 - the other parts still run; the part says why it failed
                    bu.log(f"== {part}: FAILED: {type(e).__name__}: {e}")
                    res[part] = {"failed": f"{type(e).__name__}: {e}"}
                res[part]["seconds"] = round(time.monotonic() - t0, 1)
        finally:
            quiet.close()
    res["seconds"] = round(time.monotonic() - t_all, 1)
    res["targets"] = check_targets(res)
    bu.write_json(a.json, res)  # first: the measurements are kept even if rendering fails
    print(f"\n{bu.describe_machine(machine)}")
    print(markdown(res))


if __name__ == "__main__":
    main()
