"""Lost events under a many-task IPC storm, default capture settings (issue #2).

    sudo python bench/bench_lost.py [--repeat 5] [--loops 200] [--buffer-kb KB] [--json out.json]

Workload: ``perf bench sched messaging -g 4 -l 200`` (``--loops``) (160 tasks over Unix stream sockets) and the same
with ``-p`` (pipes), each captured ``--repeat`` times (interleaved) by
``ftraceipc capture -o TMP -- <workload>`` with default settings. Per run: events captured, events/s
over the capture (first to last event), MiB written, and what was lost, both as the capture recorded
it (meta.json ``lost``: the kernel's per-CPU overrun/commit-overrun/dropped counters and the pages'
missed-event flags) and as ``ftraceipc info --format json`` reports it. Target: zero lost.
Temporary captures are removed (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _benchutil as bu  # noqa: E402

def workloads(loops: int = 200) -> dict[str, list[str]]:
    return {"sockets": ["perf", "bench", "sched", "messaging", "-g", "4", "-l", str(loops)],
            "pipes": ["perf", "bench", "sched", "messaging", "-p", "-g", "4", "-l", str(loops)]}


WORKLOADS = workloads()


def meta_lost(meta: dict) -> dict:
    lost = meta.get("lost") or {}
    total = sum(max(v["overrun"], v["missed_events"]) + v["commit_overrun"] + v["dropped_events"]
                for v in lost.values())
    return {"lost": total, "overrun": sum(v["overrun"] for v in lost.values()),
            "commit_overrun": sum(v["commit_overrun"] for v in lost.values()),
            "dropped": sum(v["dropped_events"] for v in lost.values()),
            "pages_missed": sum(v["pages_missed"] for v in lost.values())}


def capture_once(name: str, argv: list[str], extra: list[str], tmp: Path, rep: int) -> dict:
    out = tmp / f"{name}{rep}.ftipc"
    try:
        r = bu.run(bu.ftraceipc_argv() + ["capture", "-o", out] + extra + ["--"] + argv)
        meta = json.loads((out / "meta.json").read_text())
        info = json.loads(bu.run(bu.ftraceipc_argv() + ["info", "--format", "json", out]).stdout)
        ns = info["duration"] or 0
        mib = sum(p.stat().st_size for p in (out / "cpu").glob("*.raw")) / 2**20
        rec = {"workload": name, "rep": rep, "events": info["events"],
               "duration_s": ns / 1e9, "events_per_s": info["events"] / (ns / 1e9) if ns else None,
               "bench_total_s": bu.parse_total_time(r.stdout), "mib": round(mib, 1),
               "mib_per_s": mib / (ns / 1e9) if ns else None,
               **meta_lost(meta),
               "info_pages_missed": info["lost"]["pages_missed"], "info_missed_events": info["lost"]["missed_events"],
               "complete": meta.get("complete"), "warnings": info.get("warnings", []),
               "capture_stderr_tail": r.stderr.strip().splitlines()[-3:]}
        rec["any_lost"] = bool(rec["lost"] or rec["pages_missed"] or rec["info_pages_missed"]
                               or rec["info_missed_events"])
        return rec
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="captures of each workload (interleaved)")
    ap.add_argument("--loops", type=int, default=200, help="perf bench sched messaging -l LOOPS")
    ap.add_argument("--buffer-kb", type=int, default=None, help="pass --buffer-kb to ftraceipc (default: its default)")
    ap.add_argument("--tmp", default=None, help="directory for temporary captures (default: $TMPDIR)")
    ap.add_argument("--retry-busy", type=int, default=0,
                    help="capture again (up to N times) if another tracing instance appeared meanwhile")
    ap.add_argument("--json", metavar="PATH", help="write all results as JSON")
    a = ap.parse_args()
    bu.require_tools("perf")
    extra = ["--buffer-kb", str(a.buffer_kb)] if a.buffer_kb else []
    machine = bu.machine_info()
    bu.log(bu.describe_machine(machine))
    runs: list[dict] = []
    monitor = None
    with bu.cleanup_on_exit(), bu.tempdir("ftraceipc-bench-lost-", a.tmp) as tmp:
        try:
            monitor = bu.BusyMonitor()
            work = workloads(a.loops)
            names = list(work)
            for rep in range(a.repeat):
                order = names[rep % 2:] + names[:rep % 2]
                for name in order:
                    t0 = time.time()
                    rec, quiet = bu.measure_quietly(lambda: capture_once(name, work[name], extra, tmp, rep),
                                                    retries=a.retry_busy, monitor=monitor)
                    rec.update(quiet, start=t0)
                    runs.append(rec)
                    bu.log(f"rep {rep + 1}/{a.repeat} {name:8s} {rec['events']:>10,} events  "
                           f"{(rec['events_per_s'] or 0) / 1e6:5.2f} M/s  lost {rec['lost']} "
                           f"(pages flagged {rec['pages_missed']})"
                           + (f"  [busy: {', '.join(quiet['busy_during'])}]" if quiet["busy_during"] else ""))
        finally:
            if monitor is not None:
                monitor.close()

    summary = summarize(runs, workloads(a.loops))
    met = all(s["runs_with_loss"] == 0 for s in summary.values())
    targets = [{"name": "zero lost events", "met": met,
                "detail": ", ".join(f"{k}: {v['runs_with_loss']}/{v['runs']} runs lost events" for k, v in summary.items())}]
    res = {"benchmark": "lost", "command": " ".join(sys.argv), "machine": machine, "args": vars(a),
           "capture_args": extra, "runs": runs, "summary": summary, "targets": targets}
    print(f"\n{bu.describe_machine(machine)}")
    print(markdown(res))
    bu.write_json(a.json, res)


def summarize(runs: list[dict], work: dict[str, list[str]] = WORKLOADS) -> dict:
    summary = {}
    for name, argv in work.items():
        rs = [r for r in runs if r["workload"] == name]
        summary[name] = {"workload": " ".join(argv), "runs": len(rs),
                         "events_median": bu.median([r["events"] for r in rs]),
                         "events_per_s_median": bu.median([r["events_per_s"] for r in rs]),
                         "mib_per_s_median": bu.median([r["mib_per_s"] for r in rs]),
                         "lost_total": sum(r["lost"] for r in rs), "lost_max": max(r["lost"] for r in rs),
                         "pages_missed_total": sum(r["pages_missed"] for r in rs),
                         "info_missed_events_total": sum(r["info_missed_events"] for r in rs),
                         "runs_with_loss": sum(r["any_lost"] for r in rs)}
    return summary


def markdown(res: dict) -> str:
    """The results table and target of a results JSON (what main prints)."""
    extra = res.get("capture_args", [])
    cmd = " ".join(["ftraceipc", "capture", "-o", "TMP"] + extra + ["--"])
    out = [f"`{cmd} <workload>`, {res['args']['repeat']} captures each, interleaved", ""]
    rows = []
    for s in res["summary"].values():
        rows.append([" ".join(s["workload"].split()[2:]), s["runs"], f"{s['events_median']:,.0f}",
                     f"{s['events_per_s_median'] / 1e6:.2f} M", f"{s['mib_per_s_median']:.0f}",
                     f"{s['lost_total']:,} (max {s['lost_max']:,})", s["pages_missed_total"],
                     s["info_missed_events_total"], f"{s['runs_with_loss']}/{s['runs']}"])
    out.append(bu.table(["workload", "runs", "events (median)", "events/s", "MiB/s", "lost (meta.json)",
                         "pages flagged", "missed (info)", "runs with loss"], rows))
    out += ["", bu.fmt_targets(res["targets"])]
    busy = [r for r in res["runs"] if r["busy_during"]]
    if busy:
        out.append(f"note: {len(busy)} capture(s) overlapped other tracing instances")
    return "\n".join(out)


if __name__ == "__main__":
    main()
