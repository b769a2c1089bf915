"""Decoding speed and memory: ftraceipc's columnar decoder against ``perf script`` (issue #2).

    sudo python bench/bench_decode_vs_perf.py [--repeat 3] [--loops 200] [--big-runs 5] [--json out.json]

1. The same workload (``perf bench sched messaging -g 4 -l 200``, ``--loops``) and the same events (ftraceipc's
   default set, those the kernel has) are captured once by ``ftraceipc capture`` and once by
   ``perf record -a -m MMAP -e <events>``.
2. Each is decoded ``--repeat`` times, interleaved, on one core:
     ftraceipc  ``taskset -c 0 python -c <Decoder(cap).batches() over all events>`` (a child process);
                the decode loop's own time and the whole process (interpreter start, imports) both
     perf       ``taskset -c 0 perf script -i perf.data > /dev/null``
     text       (``--text``) ``taskset -c 0 ftraceipc events CAP > /dev/null`` (text per event, like perf script)
   events/s = events in the capture / seconds; peak RSS = the child's ru_maxrss (wait4).
3. A big capture (``--big-runs`` messaging runs in one capture, ~2 M events each) is decoded the same
   way, to show memory stays bounded (target < 1 GiB).
Targets: >= 2 M events/s, faster than perf script. Temporary captures are removed (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _benchutil as bu  # noqa: E402

def workload(loops: int = 200) -> list[str]:
    return ["perf", "bench", "sched", "messaging", "-g", "4", "-l", str(loops)]


WORKLOAD = workload()  # the default (bench_events.py records the same)

# The decode worker, run as a child pinned to one CPU: prints events, decode seconds, peak RSS.
WORKER = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from ftraceipc.decode.decoder import Decoder
t1 = time.perf_counter()
dec = Decoder(sys.argv[1])
n = 0
for b in dec.batches():
    n += len(b)
t2 = time.perf_counter()
print(json.dumps({"events": n, "import_s": t1 - t0, "decode_s": t2 - t1,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "warnings": [str(w) for w in dec.warnings]}))
"""


def ftraceipc_capture(argv: list[str], out: Path) -> dict:
    r = bu.run(bu.ftraceipc_argv() + ["capture", "--force", "-o", out, "--"] + argv)
    meta = json.loads((out / "meta.json").read_text())
    info = json.loads(bu.run(bu.ftraceipc_argv() + ["info", "--format", "json", out]).stdout)
    lost = sum(max(v["overrun"], v["missed_events"]) + v["commit_overrun"] + v["dropped_events"]
               for v in meta["lost"].values())
    return {"events": info["events"], "lost": lost, "pages_missed": info["lost"]["pages_missed"],
            "lost_per_cpu": meta["lost"],
            "mib": round(sum(p.stat().st_size for p in (out / "cpu").glob("*.raw")) / 2**20, 1),
            "capture_wall_s": round(r.wall, 2)}


def perf_capture(argv: list[str], events: list[str], mmap: str, data: Path) -> dict:
    data.unlink(missing_ok=True)
    r = bu.run(["perf", "record", "-a", "-m", mmap, "-e", ",".join(events), "-o", data, "--"] + argv)
    st = bu.perf_lost_samples(str(data))
    return {"events": st["samples"], "lost": st["lost_samples"], "lost_records": st["lost_records"],
            "mib": round(data.stat().st_size / 2**20, 1), "capture_wall_s": round(r.wall, 2),
            **{f"record_{k}": v for k, v in bu.perf_record_summary(r.stderr).items()}}


def decode_ftraceipc(cap: Path, cpu: int) -> dict:
    r = bu.run(["taskset", "-c", str(cpu), sys.executable, "-c", WORKER, cap])
    w = json.loads(r.stdout.strip().splitlines()[-1])
    return {"events": w["events"], "decode_s": w["decode_s"], "process_s": r.wall, "rss_mib": r.maxrss_kib / 1024,
            "cpu_s": r.utime + r.stime, "warnings": w["warnings"]}


def decode_perf(data: Path, cpu: int, events: int) -> dict:
    r = bu.run(["taskset", "-c", str(cpu), "perf", "script", "-i", data], stdout_path="/dev/null")
    return {"events": events, "decode_s": r.wall, "process_s": r.wall, "rss_mib": r.maxrss_kib / 1024,
            "cpu_s": r.utime + r.stime}


def decode_text(cap: Path, cpu: int, events: int) -> dict:
    r = bu.run(["taskset", "-c", str(cpu)] + bu.ftraceipc_argv() + ["events", cap], stdout_path="/dev/null")
    return {"events": events, "decode_s": r.wall, "process_s": r.wall, "rss_mib": r.maxrss_kib / 1024,
            "cpu_s": r.utime + r.stime}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="decodes of each capture (interleaved)")
    ap.add_argument("--cpu", type=int, default=0, help="taskset -c CPU for the decoders")
    ap.add_argument("--perf-mmap", default="256M",
                    help="perf record -m per CPU (256M: perf loses no samples on this workload; 16M loses ~40-50 %%)")
    ap.add_argument("--loops", type=int, default=200, help="perf bench sched messaging -l LOOPS")
    ap.add_argument("--big-runs", type=int, default=5, help="messaging runs in the big capture (0: skip it)")
    ap.add_argument("--no-text", dest="text", action="store_false",
                    help="skip timing 'ftraceipc events CAP > /dev/null' (text output, like perf script's)")
    ap.add_argument("--tmp", default=None, help="directory for temporary captures (default: $TMPDIR)")
    ap.add_argument("--json", metavar="PATH", help="write all results as JSON")
    a = ap.parse_args()
    bu.require_tools("perf", "taskset")
    machine = bu.machine_info()
    events = bu.default_events()
    work = workload(a.loops)
    bu.log(bu.describe_machine(machine))
    res: dict = {"benchmark": "decode_vs_perf", "command": " ".join(sys.argv), "machine": machine,
                 "args": vars(a), "workload": work, "events": events}
    runs: list[dict] = []
    with bu.cleanup_on_exit(), bu.tempdir("ftraceipc-bench-decode-", a.tmp) as tmp:
        cap, data = tmp / "messaging.ftipc", tmp / "messaging.perf.data"
        monitor = bu.BusyMonitor()
        bu.log(f"capturing {' '.join(work)} with ftraceipc ...")
        res["ftraceipc_capture"], q = bu.measure_quietly(lambda: ftraceipc_capture(work, cap), monitor=monitor)
        res["ftraceipc_capture"].update(q)
        bu.log(f"  {res['ftraceipc_capture']}")
        bu.log(f"capturing {' '.join(work)} with perf record ...")
        res["perf_capture"], q = bu.measure_quietly(lambda: perf_capture(work, events, a.perf_mmap, data),
                                                    monitor=monitor)
        res["perf_capture"].update(q)
        bu.log(f"  {res['perf_capture']}")
        n_ft, n_perf = res["ftraceipc_capture"]["events"], res["perf_capture"]["events"]
        tools = ["ftraceipc", "perf script"] + (["ftraceipc events (text)"] if a.text else [])
        for rep in range(a.repeat):
            order = tools[rep % len(tools):] + tools[:rep % len(tools)]
            for t in order:
                def once(t=t):
                    if t == "ftraceipc":
                        return decode_ftraceipc(cap, a.cpu)
                    if t == "perf script":
                        return decode_perf(data, a.cpu, n_perf)
                    return decode_text(cap, a.cpu, n_ft)

                d, q = bu.measure_quietly(once, monitor=monitor)
                d.update(tool=t, rep=rep, capture="messaging", **q)
                runs.append(d)
                bu.log(f"rep {rep + 1}/{a.repeat} {t:24s} {d['events']:>10,} events in {d['decode_s']:6.2f} s "
                       f"= {d['events'] / d['decode_s'] / 1e6:5.2f} M/s (process {d['process_s']:.2f} s), "
                       f"peak RSS {d['rss_mib']:.0f} MiB")
        # free the disk before the big one
        for p in (cap, data):
            bu.run(["rm", "-rf", p])
        if a.big_runs > 0:
            big = tmp / "big.ftipc"
            loop = f"for i in $(seq {a.big_runs}); do {' '.join(work)}; done"
            bu.log(f"capturing sh -c '{loop}' with ftraceipc ...")
            res["big_capture"], q = bu.measure_quietly(lambda: ftraceipc_capture(["sh", "-c", loop], big), monitor=monitor)
            res["big_capture"].update(q)
            res["big_capture"]["command"] = f"sh -c '{loop}'"
            bu.log(f"  {res['big_capture']}")
            for rep in range(a.repeat):
                d, q = bu.measure_quietly(lambda: decode_ftraceipc(big, a.cpu), monitor=monitor)
                d.update(tool="ftraceipc", rep=rep, capture="big", **q)
                runs.append(d)
                bu.log(f"big rep {rep + 1}/{a.repeat} {d['events']:>11,} events in {d['decode_s']:6.2f} s = "
                       f"{d['events'] / d['decode_s'] / 1e6:5.2f} M/s, peak RSS {d['rss_mib']:.0f} MiB")
        monitor.close()
    res["runs"] = runs

    summary: dict = {}
    for (capname, tool) in sorted({(r["capture"], r["tool"]) for r in runs}, key=lambda k: (k[0] != "messaging", k[1])):
        rs = [r for r in runs if r["capture"] == capname and r["tool"] == tool]
        dec_s, proc_s = bu.median([r["decode_s"] for r in rs]), bu.median([r["process_s"] for r in rs])
        ev = rs[0]["events"]
        summary[f"{capname}/{tool}"] = {"capture": capname, "tool": tool, "events": ev, "decode_s": dec_s,
                                        "process_s": proc_s, "events_per_s": ev / dec_s,
                                        "events_per_s_process": ev / proc_s,
                                        "peak_rss_mib": max(r["rss_mib"] for r in rs)}
    res["summary"] = summary
    res["targets"] = check_targets(summary)
    print(f"\n{bu.describe_machine(machine)}")
    print(markdown(res))
    bu.write_json(a.json, res)


def check_targets(summary: dict) -> list[dict]:
    targets = []
    ft, pf = summary.get("messaging/ftraceipc"), summary.get("messaging/perf script")
    if ft:
        targets.append({"name": ">= 2 M events/s (decode loop)", "met": ft["events_per_s"] >= 2e6,
                        "detail": f"{ft['events_per_s'] / 1e6:.2f} M/s; whole process {ft['events_per_s_process'] / 1e6:.2f} M/s"})
    if ft and pf:
        targets.append({"name": "faster than perf script (events/s)", "met": ft["events_per_s_process"] > pf["events_per_s"],
                        "detail": f"ftraceipc {ft['events_per_s_process'] / 1e6:.2f} M/s (whole process) vs perf script "
                                  f"{pf['events_per_s'] / 1e6:.2f} M/s"})
    bg = summary.get("big/ftraceipc")
    if bg:
        targets.append({"name": "big capture decodes in < 1 GiB RSS", "met": bg["peak_rss_mib"] < 1024,
                        "detail": f"{bg['events']:,} events, peak RSS {bg['peak_rss_mib']:.0f} MiB"})
    return targets


def markdown(res: dict) -> str:
    """The captures, the results table and the targets of a results JSON (what main prints)."""
    a = res["args"]
    fc, pc = res["ftraceipc_capture"], res["perf_capture"]
    out = [f"- workload: `{' '.join(res['workload'])}`; {len(res['events'])} tracepoints (ftraceipc's default set, "
           f"those this kernel has) for both; decoders on CPU {a['cpu']}; {a['repeat']} interleaved repetitions, "
           "medians",
           f"- captures: ftraceipc {fc['events']:,} events, {fc['mib']} MiB, lost {fc['lost']:,}; "
           f"perf record -m {a['perf_mmap']}: {pc['events']:,} samples, {pc['mib']} MiB, lost {pc['lost']:,}"]
    if "big_capture" in res:
        bc = res["big_capture"]
        out.append(f"- big capture: `{bc['command']}`: {bc['events']:,} events, {bc['mib']} MiB, lost {bc['lost']}")
    out.append("")
    rows = []
    for s in res["summary"].values():
        rows.append([s["capture"], s["tool"], f"{s['events']:,}", f"{s['decode_s']:.2f}", f"{s['events_per_s'] / 1e6:.2f}",
                     f"{s['process_s']:.2f}", f"{s['events_per_s_process'] / 1e6:.2f}", f"{s['peak_rss_mib']:.0f}"])
    out.append(bu.table(["capture", "decoder", "events", "decode s", "M events/s", "process s", "M events/s (process)",
                         "peak RSS MiB"], rows))
    out += ["", bu.fmt_targets(res["targets"])]
    return "\n".join(out)


if __name__ == "__main__":
    main()
