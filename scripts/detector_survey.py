#!/usr/bin/env python3
"""What each detector finds on realistic workloads and on the samples, with the numbers its
thresholds are judged on (the survey behind the thresholds documented in cypher/*.cypher).

Each workload is captured once (``ftraceipc capture --no-model``, into --dir), its model built and its
detectors run as ``ftraceipc analyze`` runs them (scoped to the traced command's process tree). The
table gives the rows per detector; with ``--old SRC`` (a source tree of another ftraceipc, e.g.
``git archive main | tar -x -C /tmp/main``) the same captures are analysed by that one too (before ->
after). ``-v`` prints the facts behind the rules: stalled writers and their readers' empty waits,
the waits between tasks (consumed, turns), cross-CPU pairs.

    sudo python3 scripts/detector_survey.py                      # every workload
    sudo python3 scripts/detector_survey.py -w bursty -w steady -v
    sudo python3 scripts/detector_survey.py --old /tmp/main --json survey.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
S = str(ROOT / "samples")

WORKLOADS: dict[str, list[str]] = {
    # realistic sizes (issue #11): hackbench at -g 10 over sockets and pipes, a steady pipeline with a
    # CPU-bound stage, a well-tuned bulk transfer, a bursty producer with a steady consumer and its
    # steady (slow reader) control, a producer and consumer computing side by side
    "hackbench-sockets": ["perf", "bench", "sched", "messaging", "-g", "10", "-l", "200"],
    "hackbench-pipes": ["perf", "bench", "sched", "messaging", "-p", "-g", "10", "-l", "200"],
    "gzip-pipeline": ["sh", "-c", "seq 1 5000000 | gzip -6 | gzip -dc | wc -l"],
    "dd-cat": ["sh", "-c", "dd if=/dev/zero bs=1M count=2000 status=none | cat > /dev/null"],
    "bursty": [PY, f"{S}/full_buffer.py", "--bursts", "100"],
    "steady": [PY, f"{S}/full_buffer.py", "--steady", "--bursts", "100"],
    "parallel": [PY, f"{S}/xcpu.py", "--parallel", "--trips", "3000"],
    # the case studies of bench/insight.py (branch insight; their C programs built into /tmp/insight-bin)
    "i-relay": ["/tmp/insight-bin/relay", "200", "0", "200000"],
    "i-relay-fixed": ["/tmp/insight-bin/relay", "200", "1048576", "200000"],
    "i-herd-poll": ["/tmp/insight-bin/herd", "4000", "32", "2", "poll", "20000"],
    "i-herd-epollex": ["/tmp/insight-bin/herd", "4000", "32", "2", "epollex", "20000"],
    "i-ring": ["/tmp/insight-bin/ring", "4", "1", "4000", "20000"],
    "i-perf-pipe": ["perf", "bench", "sched", "pipe", "-l", "20000"],
    "i-perf-pipe-pinned": ["taskset", "-c", "0", "perf", "bench", "sched", "pipe", "-l", "20000"],
    # the samples at their defaults
    "s-full_buffer": [PY, f"{S}/full_buffer.py"],
    "s-full_buffer-steady": [PY, f"{S}/full_buffer.py", "--steady"],
    "s-herd": [PY, f"{S}/herd.py"],
    "s-wake_then_block": [PY, f"{S}/wake_then_block.py"],
    "s-socketpair_pingpong": [PY, f"{S}/socketpair_pingpong.py"],
    "s-pipeline": [PY, f"{S}/pipeline.py"],
    "s-fanin": [PY, f"{S}/fanin.py"],
    "s-relay": [PY, f"{S}/relay.py"],
    "s-ring": [PY, f"{S}/ring.py"],
    "s-xcpu": [PY, f"{S}/xcpu.py"],
    "s-xcpu-same-cpu": [PY, f"{S}/xcpu.py", "--same-cpu"],
    "s-xcpu-parallel": [PY, f"{S}/xcpu.py", "--parallel"],
    "s-late_wakeup": [PY, f"{S}/late_wakeup.py"],
    "s-late_wakeup-no-hog": [PY, f"{S}/late_wakeup.py", "--no-hog"],
    "s-unix_server": [PY, f"{S}/unix_server.py"],
}

# run by the other ftraceipc (--old): its findings per detector on one capture, as JSON on stdout
_OLD = r"""
import json, sys
from ftraceipc.model.build import build_model
try:  # ftraceipc.detect.pipeline.analyze since issue #11; analyze_model before
    from ftraceipc.detect.pipeline import Backend, analyze
    a = analyze(build_model(sys.argv[1]), backend=Backend(path=sys.argv[2]))
except ImportError:
    from ftraceipc.detect import analyze_model
    a = analyze_model(build_model(sys.argv[1]), sys.argv[2])
out = {}
for f in a.findings:
    out[f.pattern] = out.get(f.pattern, 0) + 1
print(json.dumps(out))
"""


def capture(name: str, cmd: list[str], d: Path, again: bool) -> Path:
    cap = d / f"{name}.ftipc"
    if cap.exists() and not again:
        return cap
    t = time.perf_counter()
    r = subprocess.run([PY, "-m", "ftraceipc", "capture", "--no-model", "--force", "-o", str(cap), "--", *cmd],
                       cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if r.returncode != 0:
        raise SystemExit(f"{name}: capture failed:\n{r.stderr}")
    print(f"# {name}: captured in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return cap


def old_counts(src: str, cap: Path, d: Path, name: str) -> dict[str, int]:
    r = subprocess.run([PY, "-c", _OLD, str(cap), str(d / f"{name}.old.lbug")], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": src, "PYTHONDONTWRITEBYTECODE": "1"}, cwd="/tmp")
    if r.returncode != 0:
        raise SystemExit(f"{name}: the old analysis failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def facts(model, tids: set[int] | None) -> list[str]:
    """The numbers behind the rules, for the tasks in scope."""
    import numpy as np
    import pandas as pd

    out = []
    b, io, fl, wt, wk = model.blocked, model.io, model.flows, model.waits, model.wakes
    comm = dict(zip(model.tasks["tid"], model.tasks["comm"]))
    res = model.resources.set_index("rid") if len(model.resources) else None
    inside = (lambda t: True) if tids is None else (lambda t: int(t) in tids)

    def lab(t):
        return f"{comm.get(int(t))}[{int(t)}]"

    st = b[b["rid"].notna() & (b["write_episodes"] > 0)].sort_values("write_ns", ascending=False)
    st = st[[inside(t) for t in st["tid"]]]
    if len(st):
        out.append(f"  stalled writers ({len(st)}; top 8 by time waiting for room):")
    for _, r in st.head(8).iterrows():
        peer = res.loc[r["rid"], "peer"] if res is not None and r["rid"] in res.index else None
        rids = {r["rid"]} | ({peer} if isinstance(peer, str) else set())
        readers = fl[(fl["writer"] == r["tid"]) & (fl["via"] == r["rid"]) & (fl["reader"] != r["tid"])]["reader"]
        rb = b[b["tid"].isin(set(readers)) & b["rid"].isin(rids)]
        wbytes = io[(io["type"] == "WRITES") & (io["tid"] == r["tid"]) & (io["rid"] == r["rid"])]["bytes"].sum()
        n_r, ns_r = int(rb["read_episodes"].sum()), int(rb["read_ns"].sum())
        out.append(f"    {lab(r['tid'])} on {r['rid']}: {int(r['write_episodes'])} stalls {r['write_ns'] / 1e6:.1f} ms "
                   f"(mean {r['write_ns'] / max(1, r['write_episodes']) / 1e3:.0f} us); {int(wbytes):,} B written; "
                   f"readers {sorted(int(x) for x in set(readers))[:4]}{'...' if len(set(readers)) > 4 else ''} "
                   f"waited empty {n_r} times {ns_r / 1e6:.1f} ms (mean {ns_r / max(1, n_r) / 1e3:.0f} us)"
                   f"; burst {wbytes / max(1, n_r):,.0f} B")
    w = wt[[inside(a) or inside(z) for a, z in zip(wt["waiter"], wt["waker"])]] if len(wt) else wt
    w = w[w["episodes"] >= 5] if len(w) else w
    if len(w):
        g = w.assign(pair=[f"{lab(a)}<-{lab(z)}" for a, z in zip(w["waiter"], w["waker"])])
        g = g.sort_values("blocked_ns", ascending=False)
        out.append(f"  waits (WAITS_FOR with >= 5 sleeps: {len(g)}; top 10 by time):")
        for _, r in g.head(10).iterrows():
            out.append(f"    {r['pair']} via {r['via']}: {int(r['episodes'])} sleeps {r['blocked_ns'] / 1e6:.1f} ms, "
                       f"consumed {int(r['consumed'])} ({100 * r['consumed'] / r['episodes']:.0f}%), "
                       f"turns {int(r['turns'])} ({100 * r['turns'] / r['episodes']:.0f}%)")
        # per (waker, via): how many sleepers, how many consumed
        h = w.groupby(["waker", "via"]).agg(n=("waiter", "nunique"), ep=("episodes", "sum"), co=("consumed", "sum"))
        h = h[h["n"] >= 2].sort_values("ep", ascending=False)
        for (z, via), r in h.head(5).iterrows():
            out.append(f"    woken by {lab(z)} via {via}: {int(r['n'])} sleepers, {int(r['ep'])} sleeps, "
                       f"{int(r['co'])} consumed ({100 * r['co'] / r['ep']:.0f}%)")
    x = wk[wk["via"].notna() & (wk["waker"] != wk["wakee"]) & (wk["waker"] > 0)] if len(wk) else wk
    if len(x):
        x = x.groupby(["waker", "wakee"]).agg(n=("wakeups", "sum"), c=("cross_cpu", "sum")).reset_index()
        x = x[np.array([inside(a) or inside(z) for a, z in zip(x["waker"], x["wakee"])], bool) & (x["n"] >= 50)]
        x = x.sort_values("c", ascending=False)
        if len(x):
            out.append(f"  cross-CPU pairs (>= 50 wakeups through IPC: {len(x)}; top 5):")
        for _, r in x.head(5).iterrows():
            t = wt[(wt["waiter"] == r["wakee"]) & (wt["waker"] == r["waker"])] if len(wt) else pd.DataFrame()
            ep, tn = (int(t["episodes"].sum()), int(t["turns"].sum())) if len(t) else (0, 0)
            out.append(f"    {lab(r['waker'])} -> {lab(r['wakee'])}: {int(r['c'])}/{int(r['n'])} cross "
                       f"({100 * r['c'] / r['n']:.0f}%); sleeps ended {ep}, turns {tn} ({100 * tn / max(1, ep):.0f}%)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-w", "--workload", action="append", choices=sorted(WORKLOADS), help="only these (repeatable)")
    ap.add_argument("--dir", default="/tmp/ftraceipc-survey", help="where the captures go")
    ap.add_argument("--recapture", action="store_true", help="capture again even if the capture exists")
    ap.add_argument("--old", metavar="SRC", help="also analyse with the ftraceipc source tree SRC (before)")
    ap.add_argument("--json", metavar="PATH", help="write the rows per detector as JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the facts behind the rules")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from ftraceipc.detect import DETECTORS
    from ftraceipc.detect.pipeline import Backend, analyze
    from ftraceipc.model.build import build_model

    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    names = args.workload or list(WORKLOADS)
    table = {}
    for name in names:
        cap = capture(name, WORKLOADS[name], d, args.recapture)
        t = time.perf_counter()
        model = build_model(cap)
        a = analyze(model, backend=Backend(path=d / f"{name}.lbug"))
        after: dict[str, int] = {}
        for f in a.findings:
            after[f.pattern] = after.get(f.pattern, 0) + 1
        row = {"after": after, "events": int(model.stats.get("events", 0)),
               "seconds": round(time.perf_counter() - t, 1)}
        if args.old:
            row["before"] = old_counts(args.old, cap, d, name)
        table[name] = row
        cells = []
        for det in DETECTORS:
            b, a_ = row.get("before", {}).get(det, 0), after.get(det, 0)
            if b or a_:
                cells.append(f"{det} {b} -> {a_}" if args.old else f"{det} {a_}")
        print(f"{name} ({row['events']:,} events): {', '.join(cells) or 'nothing'}", flush=True)
        if args.verbose:
            from ftraceipc.detect import scope
            from ftraceipc.graph.ladybug import LadybugGraph

            with LadybugGraph.open(d / f"{name}.lbug") as g:
                tids, _ = scope(g, model.meta)
            for line in facts(model, tids):
                print(line)
            for f in a.findings:
                print(f"  * {f.pattern} {f.tasks[:6]} {f.resources[:3]}: {f.title}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
