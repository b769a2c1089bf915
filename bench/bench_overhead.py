"""Tracing overhead on a pipe ping-pong pinned to one CPU (issue #2).

    sudo python bench/bench_overhead.py [--repeat 5] [--loops 200000] [--json out.json]

Workload: ``taskset -c 1 perf bench sched pipe -l LOOPS`` (its ``usecs/op``). Variants, run
interleaved (one of each per repetition, order rotated each time), medians reported:

  untraced   the workload alone
  floor      the in-kernel cost: a private instance ``instances/ftraceipc-bench-<pid>`` with ftraceipc's
             default event set (those this kernel has) and its options, a buffer big enough for the
             whole run (``--floor-buffer-mb`` per CPU), tracing on, no reader
  ftraceipc  ``ftraceipc capture -o TMP -- <workload>`` with default settings
  perf       ``perf record -a -m MMAP -e <same tracepoints> -o TMP -- <workload>``

Diagnostic variants (``--variants``): ``floor-notrace`` = floor + a ``set_event_notrace_pid`` entry
(what ftraceipc wrote before ff0c775 to leave its own threads out; it turns on per-event pid filtering
and costs every traced task ~6 %, so ftraceipc no longer does it); ``perf-xp`` = perf with
``--exclude-perf`` (perf leaves its own tasks out).
Runs during which another tracing instance existed (other people's captures add tracing load) are
measured again (``--retry-busy``).

Targets: ftraceipc within 5 % of the floor, and below perf record.
The top-level tracing buffer is never touched; every instance and temporary file made here is
removed, also on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _benchutil as bu  # noqa: E402

DEFAULT_VARIANTS = ["untraced", "floor", "ftraceipc", "perf"]
ALL_VARIANTS = DEFAULT_VARIANTS + ["floor-notrace", "perf-xp"]


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

    def measure(self, argv: list[str], notrace: bool) -> tuple[bu.ChildResult, dict]:
        inst = self.inst
        inst.write("trace", "")  # clear (O_TRUNC): the counters start at zero
        inst.enable_events(self.events)
        if notrace:
            inst.write("set_event_notrace_pid", str(os.getpid()))
        inst.tracing_on(True)
        try:
            r = bu.run(argv)
        finally:
            inst.tracing_on(False)
            inst.write("set_event", "")
            if notrace:
                inst.write("set_event_notrace_pid", "")
        entries = lost = 0
        for cpu in self.cpus:
            st = inst.cpu_stats(cpu)
            entries += st.entries + st.read_events
            lost += st.overrun + st.commit_overrun + st.dropped_events
        inst.write("trace", "")
        return r, {"events": entries, "lost": lost}

    def close(self) -> None:
        self.inst.destroy()


def measure_ftraceipc(bench: list[str], tmp: Path, i: int) -> tuple[bu.ChildResult, dict]:
    out = tmp / f"cap{i}.ftipc"
    argv = bu.ftraceipc_argv()
    try:
        r = bu.run(argv + ["capture", "-o", out, "--"] + bench)
        meta = json.loads((out / "meta.json").read_text())
        lost = sum(max(v["overrun"], v["missed_events"]) + v["commit_overrun"] + v["dropped_events"]
                   for v in meta["lost"].values())
        pages_missed = sum(v["pages_missed"] for v in meta["lost"].values())
        m = re.search(r"Captured ([0-9,]+) events", r.stderr)
        events = int(m.group(1).replace(",", "")) if m else None
        return r, {"events": events, "lost": lost, "pages_missed": pages_missed,
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="repetitions of each variant (interleaved)")
    ap.add_argument("--loops", type=int, default=200000, help="perf bench sched pipe -l LOOPS")
    ap.add_argument("--cpu", type=int, default=1, help="taskset -c CPU for the workload")
    ap.add_argument("--floor-buffer-mb", type=int, default=512, help="per-CPU buffer of the floor instance")
    ap.add_argument("--perf-mmap", default="16M", help="perf record -m (per-CPU; ftraceipc's buffer is 16 MiB)")
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                    help=f"comma-separated, from: {', '.join(ALL_VARIANTS)}")
    ap.add_argument("--tmp", default=None, help="directory for temporary captures (default: $TMPDIR)")
    ap.add_argument("--max-wait", type=float, default=120.0,
                    help="before each run, wait up to S s for other tracing instances to go")
    ap.add_argument("--retry-busy", type=int, default=3,
                    help="measure a run again (up to N times) if another tracing instance appeared during it")
    ap.add_argument("--json", metavar="PATH", help="write all results as JSON")
    a = ap.parse_args()
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in ALL_VARIANTS]
    if bad:
        sys.exit(f"error: unknown variant(s) {', '.join(bad)}; choose from {', '.join(ALL_VARIANTS)}")
    bu.require_tools("perf", "taskset")
    bench = ["taskset", "-c", str(a.cpu), "perf", "bench", "sched", "pipe", "-l", str(a.loops)]
    machine = bu.machine_info()
    events = bu.default_events()
    bu.log(bu.describe_machine(machine))
    bu.log(f"workload: {' '.join(bench)}; {len(events)} events; {a.repeat} repetitions of {', '.join(variants)}")

    runs: list[dict] = []
    floor: Floor | None = None
    monitor: bu.BusyMonitor | None = None
    with bu.cleanup_on_exit(), bu.tempdir("ftraceipc-bench-overhead-", a.tmp) as tmp:
        try:
            if any(v.startswith("floor") for v in variants):
                floor = Floor(events, a.floor_buffer_mb)
            own = [floor.name] if floor else []
            monitor = bu.BusyMonitor(own)
            bu.run(bench)  # warm-up: page cache, perf's first start
            for rep in range(a.repeat):
                order = variants[rep % len(variants):] + variants[:rep % len(variants)]
                for v in order:
                    def once(v=v, rep=rep):
                        if v == "untraced":
                            return bu.run(bench), {}
                        if v in ("floor", "floor-notrace"):
                            return floor.measure(bench, notrace=v == "floor-notrace")
                        if v == "ftraceipc":
                            return measure_ftraceipc(bench, tmp, rep)
                        return measure_perf(bench, events, a.perf_mmap, tmp, rep, exclude_perf=v == "perf-xp")

                    t0 = time.time()
                    (r, extra), quiet = bu.measure_quietly(once, own, a.retry_busy, a.max_wait, monitor)
                    us = bu.parse_usecs_per_op(r.stdout)
                    rec = {"variant": v, "rep": rep, "usecs_per_op": us, "wall_s": round(r.wall, 3),
                           "cpu_s": round(r.utime + r.stime, 3), "start": t0, **quiet, **extra}
                    runs.append(rec)
                    busy = f"  [busy: {', '.join(quiet['busy_during'])}]" if quiet["busy_during"] else ""
                    bu.log(f"rep {rep + 1}/{a.repeat} {v:19s} {us:8.3f} us/op  events {extra.get('events', '-')}"
                           f"  lost {extra.get('lost', '-')}{busy}")
        finally:
            if monitor is not None:
                monitor.close()
            if floor is not None:
                floor.close()

    summary = summarize(runs, variants)
    res = {"benchmark": "overhead", "command": " ".join(sys.argv), "workload": bench,
           "events": events, "machine": machine, "args": vars(a), "variants": variants, "runs": runs,
           "summary": summary, "targets": check_targets(summary)}
    print(f"\n{bu.describe_machine(machine)}")
    print(markdown(res))
    bu.write_json(a.json, res)


def markdown(res: dict) -> str:
    """The results table, targets and notes of a results JSON (what main prints)."""
    summary, runs = res["summary"], res["runs"]
    variants = res.get("variants") or [v.strip() for v in res["args"]["variants"].split(",") if v.strip()]
    out = [f"workload: `{' '.join(res['workload'])}`, {res['args']['repeat']} interleaved repetitions, medians; "
           f"{len(res['events'])} tracepoints (ftraceipc's default set, those this kernel has) for floor and perf", ""]
    rows = []
    for v in variants:
        s = summary[v]
        rows.append([v, f"{s['usecs_per_op']:.3f}", f"{s['min']:.3f}–{s['max']:.3f}",
                     _x(s.get("x_untraced")), _x(s.get("x_floor")), _x(s.get("x_floor_paired_median")),
                     _n(s.get("events")), _n(s.get("lost_max"))])
    out.append(bu.table(["variant", "µs/op (median)", "range", "× untraced", "× floor", "× floor (paired)", "events",
                         "lost (max)"], rows))
    out += ["", bu.fmt_targets(res["targets"])]
    busy = [r for r in runs if r["busy_during"]]
    retried = sum(r["attempts"] - 1 for r in runs)
    if retried:
        out.append(f"note: {retried} run(s) were measured again because another tracing instance appeared")
    if busy:
        out.append(f"note: {len(busy)} kept run(s) overlapped other tracing instances: "
                   f"{', '.join(sorted({n for r in busy for n in r['busy_during']}))}")
    return "\n".join(out)


def _x(v):
    return None if v is None else f"{v:.3f}"


def _n(v):
    return None if v is None else f"{int(v):,}"


def summarize(runs: list[dict], variants: list[str]) -> dict:
    out: dict[str, dict] = {}
    for v in variants:
        rs = [r for r in runs if r["variant"] == v]
        us = [r["usecs_per_op"] for r in rs]
        out[v] = {"usecs_per_op": bu.median(us), "min": min(us), "max": max(us), "n": len(us),
                  "all": us, "events": bu.median([r.get("events") for r in rs]),
                  "lost": bu.median([r.get("lost") for r in rs]),
                  "lost_max": max((r["lost"] for r in rs if r.get("lost") is not None), default=None)}
    base = out.get("untraced", {}).get("usecs_per_op")
    fl = out.get("floor", {}).get("usecs_per_op")
    for v, s in out.items():
        if base:
            s["x_untraced"] = s["usecs_per_op"] / base
        if fl:
            s["x_floor"] = s["usecs_per_op"] / fl
        if base and fl and v not in ("untraced",):
            # the share of tracing cost above the in-kernel cost
            s["over_floor_pct"] = 100 * (s["usecs_per_op"] - fl) / fl
    # paired ratios: each repetition's ftraceipc against the floor of the same repetition
    by_rep: dict[int, dict[str, float]] = {}
    for r in runs:
        by_rep.setdefault(r["rep"], {})[r["variant"]] = r["usecs_per_op"]
    if "floor" in out:
        for v in out:
            pairs = [d[v] / d["floor"] for d in by_rep.values() if v in d and "floor" in d]
            if pairs:
                out[v]["x_floor_paired_median"] = bu.median(pairs)
    return out


def check_targets(summary: dict) -> list[dict]:
    t = []
    if "ftraceipc" in summary and "floor" in summary:
        x = summary["ftraceipc"]["x_floor"]
        t.append({"name": "ftraceipc within 5% of the floor", "met": x <= 1.05,
                  "detail": f"ftraceipc/floor = {x:.3f}"})
    if "ftraceipc" in summary and "perf" in summary:
        f, p = summary["ftraceipc"]["usecs_per_op"], summary["perf"]["usecs_per_op"]
        t.append({"name": "ftraceipc below perf record", "met": f < p,
                  "detail": f"{f:.3f} vs {p:.3f} µs/op"})
    if "ftraceipc" in summary:
        t.append({"name": "ftraceipc loses no events", "met": not summary["ftraceipc"]["lost_max"],
                  "detail": f"max lost per run {summary['ftraceipc']['lost_max']}"})
    return t


if __name__ == "__main__":
    main()
