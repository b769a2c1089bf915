"""Events out: ``ftraceipc events`` as CSV, JSON lines and Parquet against ``perf script`` (issue #10).

    sudo python bench/bench_events.py [--repeat 3] [--text] [--json out.json]

1. The same workload (``perf bench sched messaging -g 4 -l 200``) and the same events (ftraceipc's
   default set, those the kernel has) are recorded once by ``ftraceipc capture`` and once by
   ``perf record -a -m 256M -e <events>`` (bench_decode_vs_perf's recorders).
2. Each of these runs ``--repeat`` times, interleaved (the order rotates), pinned to one CPU
   (``taskset -c CPU``), text output to /dev/null:
     perf script                 ``perf script -i perf.data > /dev/null``
     ftraceipc events csv        ``ftraceipc events CAP --format csv > /dev/null``
     ftraceipc events jsonl      ``ftraceipc events CAP --format jsonl > /dev/null``
     ftraceipc events parquet    ``ftraceipc events CAP --format parquet -o DIR --force`` (files in the temp dir;
                                 pinned to one CPU, so one streaming process)
     parquet, all CPUs           the same command not pinned: one process per CPU the machine has (``--jobs``
                                 default), each decoding whole CPU files, then writing whole event types
     parquet (in-process)        ``render_parquet(CAP, DIR)`` timed inside a child: the decode + write loop
     decode loop alone           ``Decoder(CAP).batches()`` timed inside a child
     parquet floor               not a feature: the least this design can cost here. One child imports pyarrow,
                                 forks one process per CPU file, each decodes its file and writes its own
                                 Parquet files (no merge, no seq); the wall time of the whole child. If
                                 this misses 2 M events/s, the export cannot reach it on this machine.
     ftraceipc events text       (``--text``) ``ftraceipc events CAP > /dev/null``
   events/s = events in that tool's capture / seconds: the whole process (interpreter start and
   imports included) and, for the in-process children, the loop alone. Peak RSS = ru_maxrss (wait4).
Targets: csv and jsonl at least as fast per event as perf script; parquet >= 2 M events/s.
Temporary captures and outputs are removed (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _benchutil as bu  # noqa: E402
from bench_decode_vs_perf import WORKLOAD, decode_ftraceipc, ftraceipc_capture, perf_capture  # noqa: E402

# render_parquet timed in a child pinned to one CPU: prints events, loop seconds
PARQUET_WORKER = r"""
import json, sys, time
t0 = time.perf_counter()
from ftraceipc.decode.render import render_parquet
t1 = time.perf_counter()
n = render_parquet(sys.argv[1], sys.argv[2], force=True)
t2 = time.perf_counter()
print(json.dumps({"events": n, "import_s": t1 - t0, "loop_s": t2 - t1}))
"""

# the floor of decode + Parquet write with every CPU busy: one forked process per CPU file, nothing merged
FLOOR_WORKER = r"""
import multiprocessing, sys
import pyarrow.parquet as pq
from ftraceipc.decode.decoder import Decoder
from ftraceipc.decode.render import _arrow_table

def one(cpu):
    dec, writers, pos = Decoder(sys.argv[1]), {}, 0
    for b in dec.batches(None, cpus=[cpu]):
        for eid, t in b.by_id.items():
            table = _arrow_table(t, pos)
            w = writers.get(eid)
            if w is None:
                w = writers[eid] = pq.ParquetWriter(f"{sys.argv[2]}/{eid}.{cpu}.parquet", table.schema)
            w.write_table(table)
        pos += len(b)
    for w in writers.values():
        w.close()
    return pos

if __name__ == "__main__":
    cpus = sorted(Decoder(sys.argv[1]).meta.cpus)
    with multiprocessing.get_context("fork").Pool(len(cpus)) as pool:
        print(sum(pool.map(one, cpus)))
"""

TOOLS = ["perf script", "ftraceipc events csv", "ftraceipc events jsonl", "ftraceipc events parquet",
         "parquet, all CPUs", "parquet (in-process)", "decode loop alone",
         "parquet floor"]


def _pinned(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)]


def run_tool(tool: str, cap: Path, data: Path, out_dir: Path, cpu: int, n_ft: int, n_perf: int) -> dict:
    load = os.getloadavg()[0]
    if tool == "perf script":
        r = bu.run(_pinned(cpu) + ["perf", "script", "-i", data], stdout_path="/dev/null")
        d = {"events": n_perf, "process_s": r.wall}
    elif tool == "decode loop alone":
        w = decode_ftraceipc(cap, cpu)
        d = {"events": w["events"], "process_s": w["process_s"], "loop_s": w["decode_s"]}
        r = None
        d["rss_mib"], d["cpu_s"] = w["rss_mib"], w["cpu_s"]
    elif tool == "parquet (in-process)":
        r = bu.run(_pinned(cpu) + [sys.executable, "-c", PARQUET_WORKER, cap, out_dir / "inproc.parquet"])
        w = json.loads(r.stdout.strip().splitlines()[-1])
        d = {"events": w["events"], "process_s": r.wall, "loop_s": w["loop_s"]}
    elif tool == "parquet floor":
        floor = out_dir / "floor"
        floor.mkdir(exist_ok=True)
        r = bu.run([sys.executable, "-c", FLOOR_WORKER, cap, floor])
        d = {"events": int(r.stdout.strip().splitlines()[-1]), "process_s": r.wall}
    elif tool == "ftraceipc events parquet":
        r = bu.run(_pinned(cpu) + bu.ftraceipc_argv() + ["events", cap, "--format", "parquet", "-o",
                                                          out_dir / "cli.parquet", "--force"])
        d = {"events": n_ft, "process_s": r.wall}
    elif tool == "parquet, all CPUs":
        r = bu.run(bu.ftraceipc_argv() + ["events", cap, "--format", "parquet", "-o", out_dir / "all.parquet", "--force"])
        d = {"events": n_ft, "process_s": r.wall}
    else:  # csv, jsonl, text
        fmt = tool.rsplit(" ", 1)[1]
        r = bu.run(_pinned(cpu) + bu.ftraceipc_argv() + ["events", cap, "--format", fmt], stdout_path="/dev/null")
        d = {"events": n_ft, "process_s": r.wall}
    if r is not None:
        d["rss_mib"], d["cpu_s"] = r.maxrss_kib / 1024, r.utime + r.stime
        if r.stderr.strip() and "wrote" not in r.stderr:
            d["stderr"] = r.stderr.strip()[-500:]
    d["loadavg1"] = load
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each tool (interleaved)")
    ap.add_argument("--cpu", type=int, default=0, help="taskset -c CPU for every tool")
    ap.add_argument("--perf-mmap", default="256M", help="perf record -m per CPU (256M: no samples lost here)")
    ap.add_argument("--text", action="store_true", help="also time 'ftraceipc events CAP' (text) for reference")
    ap.add_argument("--tmp", default=None, help="directory for temporary captures (default: $TMPDIR)")
    ap.add_argument("--json", metavar="PATH", help="write all results as JSON")
    a = ap.parse_args()
    bu.require_tools("perf", "taskset")
    machine = bu.machine_info()
    events = bu.default_events()
    bu.log(bu.describe_machine(machine))
    res: dict = {"benchmark": "events", "command": " ".join(sys.argv), "machine": machine, "args": vars(a),
                 "workload": WORKLOAD, "events": events}
    tools = TOOLS + (["ftraceipc events text"] if a.text else [])
    runs: list[dict] = []
    with bu.cleanup_on_exit(), bu.tempdir("ftraceipc-bench-events-", a.tmp) as tmp:
        cap, data, out_dir = tmp / "messaging.ftipc", tmp / "messaging.perf.data", tmp / "out"
        out_dir.mkdir()
        monitor = bu.BusyMonitor()
        bu.log(f"capturing {' '.join(WORKLOAD)} with ftraceipc ...")
        res["ftraceipc_capture"], q = bu.measure_quietly(lambda: ftraceipc_capture(WORKLOAD, cap), monitor=monitor,
                                                         max_wait=30, retries=1)
        res["ftraceipc_capture"].update(q)
        bu.log(f"  {res['ftraceipc_capture']}")
        bu.log(f"capturing {' '.join(WORKLOAD)} with perf record ...")
        res["perf_capture"], q = bu.measure_quietly(lambda: perf_capture(WORKLOAD, events, a.perf_mmap, data),
                                                    monitor=monitor, max_wait=30, retries=1)
        res["perf_capture"].update(q)
        monitor.close()
        bu.log(f"  {res['perf_capture']}")
        n_ft, n_perf = res["ftraceipc_capture"]["events"], res["perf_capture"]["events"]
        for rep in range(a.repeat):
            order = tools[rep % len(tools):] + tools[:rep % len(tools)]
            for t in order:
                d = run_tool(t, cap, data, out_dir, a.cpu, n_ft, n_perf)
                d.update(tool=t, rep=rep)
                runs.append(d)
                loop = f", loop {d['loop_s']:.2f} s = {d['events'] / d['loop_s'] / 1e6:.2f} M/s" if "loop_s" in d else ""
                bu.log(f"rep {rep + 1}/{a.repeat} {t:26s} {d['events']:>10,} events in {d['process_s']:6.2f} s = "
                       f"{d['events'] / d['process_s'] / 1e6:5.2f} M/s{loop}, peak RSS {d['rss_mib']:.0f} MiB, "
                       f"load {d['loadavg1']:.1f}")
        res["parquet_mib"] = round(sum(p.stat().st_size for p in (out_dir / "cli.parquet").iterdir()) / 2**20, 1)
    res["runs"] = runs

    summary: dict = {}
    for t in tools:
        rs = [r for r in runs if r["tool"] == t]
        proc = bu.median([r["process_s"] for r in rs])
        loop = bu.median([r.get("loop_s") for r in rs])
        ev = rs[0]["events"]
        summary[t] = {"tool": t, "events": ev, "process_s": proc, "events_per_s": ev / proc,
                      "cpu_s": bu.median([r["cpu_s"] for r in rs]),
                      "loop_s": loop, "events_per_s_loop": ev / loop if loop else None,
                      "peak_rss_mib": max(r["rss_mib"] for r in rs)}
    res["summary"] = summary
    perf = summary["perf script"]
    print(f"\n{bu.describe_machine(machine)}")
    fc, pc = res["ftraceipc_capture"], res["perf_capture"]
    print(f"workload: {' '.join(WORKLOAD)}; {len(events)} events; every tool on CPU {a.cpu} (taskset), "
          f"stdout to /dev/null; {a.repeat} interleaved runs, medians; 1-min load "
          f"{min(r['loadavg1'] for r in runs):.1f}-{max(r['loadavg1'] for r in runs):.1f} during the runs")
    print(f"captures: ftraceipc {fc['events']:,} events, {fc['mib']} MiB, lost {fc['lost']:,}; "
          f"perf record -m {a.perf_mmap}: {pc['events']:,} samples, {pc['mib']} MiB, lost {pc['lost']:,}; "
          f"parquet output {res['parquet_mib']} MiB")
    print()
    rows = []
    for s in summary.values():
        rows.append([s["tool"], f"{s['events']:,}", f"{s['process_s']:.2f}", f"{s['cpu_s']:.2f}",
                     f"{s['events_per_s'] / 1e6:.2f}",
                     f"{s['events_per_s'] / perf['events_per_s']:.2f}×",
                     "" if s["loop_s"] is None else f"{s['loop_s']:.2f}",
                     "" if s["loop_s"] is None else f"{s['events_per_s_loop'] / 1e6:.2f}",
                     f"{s['peak_rss_mib']:.0f}"])
    print(bu.table(["tool", "events", "wall s", "CPU s", "M events/s", "per event vs perf script", "loop s",
                    "M events/s (loop)", "peak RSS MiB"], rows))
    targets = []
    for fmt in ("csv", "jsonl"):
        s = summary[f"ftraceipc events {fmt}"]
        targets.append({"name": f"--format {fmt} at least as fast per event as perf script",
                        "met": s["events_per_s"] >= perf["events_per_s"],
                        "detail": f"{s['events_per_s'] / 1e6:.2f} vs {perf['events_per_s'] / 1e6:.2f} M events/s "
                                  f"({s['events_per_s'] / perf['events_per_s']:.2f}×)"})
    pq_cli, pq_loop = summary["ftraceipc events parquet"], summary["parquet (in-process)"]
    pq_all = summary["parquet, all CPUs"]
    targets.append({"name": "--format parquet >= 2 M events/s (whole process, one CPU)", "met": pq_cli["events_per_s"] >= 2e6,
                    "detail": f"{pq_cli['events_per_s'] / 1e6:.2f} M events/s"})
    targets.append({"name": f"--format parquet >= 2 M events/s (whole process, all {machine.get('nproc', '?')} CPUs)",
                    "met": pq_all["events_per_s"] >= 2e6,
                    "detail": f"{pq_all['events_per_s'] / 1e6:.2f} M events/s, {pq_cli['process_s'] / pq_all['process_s']:.2f}× one CPU"})
    targets.append({"name": "parquet decode + write loop >= 2 M events/s", "met": pq_loop["events_per_s_loop"] >= 2e6,
                    "detail": f"{pq_loop['events_per_s_loop'] / 1e6:.2f} M events/s"})
    floor = summary["parquet floor"]
    targets.append({"name": "(not a feature) decode + Parquet write, one process per CPU file, nothing merged, >= 2 M events/s",
                    "met": floor["events_per_s"] >= 2e6,
                    "detail": f"{floor['events_per_s'] / 1e6:.2f} M events/s: the most this design can reach here"})
    res["targets"] = targets
    for t in targets:
        print(f"target: {t['name']}: {'MET' if t['met'] else 'NOT MET'} ({t['detail']})")
    bu.write_json(a.json, res)


if __name__ == "__main__":
    main()
