"""All detectors on a ~10 M-event capture, against ``perf sched latency`` / ``perf sched timehist``.

    sudo python bench/bench_detect.py [--loops 900] [--groups 4] [--repeat 3] [--json out.json]

One workload, ``perf bench sched messaging -g GROUPS -l LOOPS`` (Unix sockets), recorded twice:

- ``ftraceipc capture --no-model`` (the default event set), then each step timed in a fresh process:
  building the model (``build_model``), loading it into the embedded LadybugDB (``graph.lbug``),
  and running every detector (``run_detectors``: the eight ``cypher/`` files), and the whole of
  ``ftraceipc analyze CAPTURE --format json`` from a capture with no graph yet (build + load + detect
  + report), as a user runs it;
- ``perf sched record`` of the same workload, then ``perf sched latency`` and ``perf sched timehist``
  on its perf.data (output to /dev/null), the peers' post-mortem analysis of the same run.

Reports best and median of --repeat for each, the events in each recording, and the ratios. The
issue's target: all detectors on a 10 M-event capture in < 60 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _benchutil as bu  # noqa: E402

CHILD = r"""
import json, resource, shutil, sys, time
from pathlib import Path
cap, what = Path(sys.argv[1]), sys.argv[2]
t0 = time.perf_counter()
out = {}
from ftraceipc.model.build import build_model
model = build_model(cap)
out["events"] = model.stats["events"]
out["model_s"] = time.perf_counter() - t0
from ftraceipc.graph.ladybug import LadybugGraph
db = cap / "bench-graph.lbug"
shutil.rmtree(db, ignore_errors=True)
if db.exists():
    db.unlink()
t = time.perf_counter()
with LadybugGraph.open(db) as g:
    counts = g.load(model)
    out["load_s"] = time.perf_counter() - t
    out["rows"] = sum(counts.values())
    out["edges"] = sum(v for k, v in counts.items() if k not in ("Task", "Resource"))
    from ftraceipc.detect import DETECTORS, run_detectors
    per = {}
    t = time.perf_counter()
    for d in DETECTORS:
        t1 = time.perf_counter()
        per[d] = len(run_detectors(g, only=[d]))
        out.setdefault("detector_s", {})[d] = time.perf_counter() - t1
    out["detect_s"] = time.perf_counter() - t
    out["findings"] = per
shutil.rmtree(db, ignore_errors=True)
if db.exists():
    db.unlink()
out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def timed(argv: list[str], **kw) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, **kw)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loops", type=int, default=900)
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the recordings (printed path)")
    ap.add_argument("--json")
    a = ap.parse_args()
    bu.require_tools("perf")
    work = ["perf", "bench", "sched", "messaging", "-g", str(a.groups), "-l", str(a.loops)]
    with bu.cleanup_on_exit(), bu.tempdir("ftipc-bench-detect-", keep=a.keep) as tmp:
        tmp = Path(tmp)
        cap = tmp / "run.ftipc"
        q = bu.wait_quiet(max_wait=600, log=bu.log)  # other tracing runs would add their events and load
        if q["still_busy"]:
            bu.log(f"warning: other tracing instances still exist: {q['foreign_instances']}")
        r = bu.run(bu.ftraceipc_argv() + ["capture", "-o", str(cap), "--force", "--no-model",
                                          "--buffer-kb", "65536", "--", *work], check=False)
        if r.returncode != 0:
            sys.exit(f"capture failed: {r.stderr}")
        lost = sum(sum(v.values()) for v in json.loads((cap / "meta.json").read_text())["lost"].values())
        data = tmp / "perf.data"
        r = bu.run(["perf", "sched", "record", "-o", str(data), "--", *work], check=False)
        if r.returncode != 0:
            sys.exit(f"perf sched record failed: {r.stderr[-2000:]}")
        perf_events = None
        rep = subprocess.run(["perf", "report", "-i", str(data), "--stats"], capture_output=True, text=True)
        for ln in rep.stdout.splitlines():
            if ln.strip().startswith("SAMPLE events:"):
                perf_events = int(ln.split(":")[1].split()[0])
        steps: dict[str, list[float]] = {k: [] for k in ("model", "load", "detect", "analyze", "latency", "timehist")}
        per_det: dict[str, list[float]] = {}
        info = {}
        for i in range(a.repeat):
            out = subprocess.run([sys.executable, "-c", CHILD, str(cap), "all"], capture_output=True, text=True,
                                 check=True)
            info = json.loads(out.stdout.strip().splitlines()[-1])
            steps["model"].append(info["model_s"])
            steps["load"].append(info["load_s"])
            steps["detect"].append(info["detect_s"])
            for d, s in info["detector_s"].items():
                per_det.setdefault(d, []).append(s)
            for p in cap.glob("graph.lbug*"):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            steps["analyze"].append(timed(bu.ftraceipc_argv() + ["analyze", str(cap), "--format", "json"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            steps["latency"].append(timed(["perf", "sched", "latency", "-i", str(data)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            steps["timehist"].append(timed(["perf", "sched", "timehist", "-i", str(data)], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))
            bu.log(f"run {i + 1}: model {info['model_s']:.1f} s, load {info['load_s']:.1f} s, "
                   f"detect {info['detect_s']:.1f} s, analyze {steps['analyze'][-1]:.1f} s, perf sched latency "
                   f"{steps['latency'][-1]:.1f} s, timehist {steps['timehist'][-1]:.1f} s")
        if a.keep:
            bu.log(f"kept {tmp}")
    best = {k: min(v) for k, v in steps.items()}
    res = {"benchmark": "detect", "command": " ".join(sys.argv), "machine": bu.machine_info(), "args": vars(a),
           "loadavg1_start": q["loadavg1"], "steps": steps, "per_detector": per_det, "info": info, "lost": lost,
           "perf_samples": perf_events, "workload": work,
           "targets": [{"name": "all detectors on the capture in < 60 s", "met": best["detect"] < 60,
                        "detail": f"{best['detect']:.2f} s for {info['events']:,} events (best of {a.repeat})"}]}
    print(bu.describe_machine(res["machine"]))
    print(markdown(res))
    bu.write_json(a.json, res)


STEP_NAMES = {"model": "ftraceipc: build the model", "load": "ftraceipc: load graph.lbug",
              "detect": "ftraceipc: all detectors", "analyze": "ftraceipc analyze, from the raw capture",
              "latency": "perf sched latency", "timehist": "perf sched timehist"}


def markdown(res: dict) -> str:
    """The step and detector tables, the ratios and the target of a results JSON (what main prints)."""
    steps, per_det, info = res["steps"], res["per_detector"], res["info"]
    best = {k: min(v) for k, v in steps.items()}
    med = {k: bu.median(v) for k, v in steps.items()}
    perf_n = res["perf_samples"]
    out = [f"- workload: `{' '.join(res['workload'])}`; 1-minute load at the start {res['loadavg1_start']:.2f}; "
           f"best and median of {res['args']['repeat']}",
           f"- recorded: ftraceipc capture {info['events']:,} events ({res['lost']} lost), graph {info['rows']:,} rows "
           f"({info['edges']:,} edges); perf sched record {'?' if perf_n is None else f'{perf_n:,}'} samples; "
           f"model build peak RSS {info['rss_mib']:.0f} MiB", ""]
    out.append(bu.table(["step", "best s", "median s"],
                        [[STEP_NAMES[k], f"{best[k]:.2f}", f"{med[k]:.2f}"] for k in steps]))
    out += ["", bu.table(["detector", "best s", "rows"],
                         [[d, f"{min(v):.2f}", info["findings"][d]] for d, v in per_det.items()]), ""]
    out.append(f"ratios (best): detectors / perf sched latency = {best['detect'] / best['latency']:.1f}, "
               f"analyze / perf sched latency = {best['analyze'] / best['latency']:.1f}, "
               f"analyze / perf sched timehist = {best['analyze'] / best['timehist']:.1f}")
    if perf_n:
        out.append(f"events read per second (best): analyze {info['events'] / best['analyze'] / 1e6:.2f} M, "
                   f"perf sched latency {perf_n / best['latency'] / 1e6:.2f} M, "
                   f"perf sched timehist {perf_n / best['timehist'] / 1e6:.2f} M; ftraceipc recorded "
                   f"{info['events'] / perf_n:.0f}x the events of perf sched record")
    out.append(bu.fmt_targets(res["targets"]))
    return "\n".join(out)


if __name__ == "__main__":
    main()
