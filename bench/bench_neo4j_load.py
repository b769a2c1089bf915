"""Load speed of the Neo4j backend: rows/s of ``Neo4jGraph.load`` into a real Neo4j 5.26 (issue #4).

    python bench/bench_neo4j_load.py [--edges 300000] [--tasks 10000] [--resources 5000] [--repeat 3]
                                     [--batch 10000] [--writers 2] [--heap 2g] [--pagecache 1g]
                                     [--uri bolt://HOST:7687] [--no-ladybug] [--json out.json]
                                     [--compare-with OLD_neo4j.py]

The model is synthetic (no capture), built like bench_graph_load's ``--mix all``: ``--tasks`` tasks,
``--resources`` resources (pipes, and Unix socket pairs with PEER) and ``--edges`` edges split evenly
over WRITES, READS, BLOCKED_ON (plus null-rid rows, loaded as Task properties), WAKES (a third with
a null via), FLOWS and, when the model has it (``ipc.WAITS_COLUMNS``), WAITS_FOR.

The script starts its own server (scripts/neo4j/neo4j_server.py, a temporary directory, free
loopback ports, ``--heap``/``--pagecache``) and stops it on every exit path; ``--uri`` uses a running
server instead (credentials from NEO4J_USER/NEO4J_PASSWORD or the config file; the synthetic capture
is deleted from it at the end). One untimed warm-up load first (the JVM compiles the write path).
Then each repeat: a first load of the capture (after deleting it, untimed), a re-load of the same
capture (``load`` deletes the capture's subgraph, then writes it again: the idempotent path), the
counts checked against the model after each, and, as a peer, ``LadybugGraph.load`` of the same model
into a fresh database file. ``--compare-with FILE`` also loads the model with another version of
ftraceipc/graph/neo4j.py (e.g. ``git show COMMIT:ftraceipc/graph/neo4j.py > old.py``), interleaved
with the current one in every repeat (order alternating), same server, same options. Reports rows/s
(nodes + relationships) best and median for each, and per table for the best first load.
Target (issue #4): >= 50 k rows/s for the first load.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _benchutil as bu  # noqa: E402
from bench_graph_load import synthetic_model  # noqa: E402

from ftraceipc.graph.ladybug import LadybugGraph  # noqa: E402
from ftraceipc.graph.neo4j import NODE_KEYS, Neo4jGraph  # noqa: E402
from ftraceipc.model import ipc  # noqa: E402

TARGET_ROWS_S = 50_000
SERVER_SCRIPT = bu.REPO / "scripts" / "neo4j" / "neo4j_server.py"


def server_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ftraceipc_neo4j_server", SERVER_SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def model_with_waits(n_tasks: int, n_res: int, n_edges: int, seed: int = 1) -> ipc.Model:
    """bench_graph_load's ``all`` mix over 5 types, plus WAITS_FOR (a sixth) when the model has it."""
    cols = getattr(ipc, "WAITS_COLUMNS", None)
    k = n_edges // 6 if cols is not None else 0
    m = synthetic_model(n_tasks, n_res, n_edges - k, "all", seed)
    m.capture_id = f"bench-neo4j-{n_edges}"
    if k:
        rng = np.random.default_rng(seed + 1)
        tids = m.tasks["tid"].to_numpy()
        waiter = tids[rng.integers(0, len(tids), k)]
        first = np.r_[True, waiter[1:] != waiter[:-1]]
        episodes = rng.integers(1, 100, k)
        consumed = rng.integers(0, episodes + 1)  # of the sleeps; dropped by a model without these columns
        m.waits = pd.DataFrame({"waiter": waiter, "waker": tids[rng.integers(0, len(tids), k)],
                                "via": m.resources["rid"].to_numpy()[rng.integers(0, len(m.resources), k)],
                                "episodes": episodes, "blocked_ns": rng.integers(1, 10**9, k),
                                "max_ns": rng.integers(1, 10**6, k), "top": first, "consumed": consumed,
                                "turns": rng.integers(0, episodes + 1)}, columns=cols)
    return m


def run_other(og, model, batch, counts, loads, reloads, i) -> None:
    """One first load and one re-load with the other version (--compare-with), timed from outside."""
    og.delete_capture(model.capture_id, batch)
    for out in (loads, reloads):
        t = time.perf_counter()
        assert og.load(model, batch=batch) == counts
        out.append({"total": time.perf_counter() - t, **{k: v for k, v in og.load_timings.items() if k != "total"}})
    assert og.counts(model.capture_id) == counts
    bu.log(f"run {i + 1} (other): load {loads[-1]['total']:.2f} s, reload {reloads[-1]['total']:.2f} s")


def rate(rows: int, secs: float) -> str:
    return f"{rows / secs / 1e3:,.1f}" if secs > 0 else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", type=int, default=300_000)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--resources", type=int, default=5_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=10_000, help="rows per transaction (Neo4jGraph.load)")
    ap.add_argument("--writers", type=int, default=2, help="parallel writer sessions for relationships")
    ap.add_argument("--heap", default="2g", help="JVM heap of the server this script starts")
    ap.add_argument("--pagecache", default="1g", help="page cache of the server this script starts")
    ap.add_argument("--uri", help="use this running server instead of starting one")
    ap.add_argument("--no-ladybug", action="store_true", help="skip the embedded peer")
    ap.add_argument("--compare-with", metavar="FILE", help="another neo4j.py to measure, interleaved (before/after)")
    ap.add_argument("--json")
    a = ap.parse_args()
    other = None
    if a.compare_with:
        import importlib.util

        import ftraceipc.graph.neo4j as current

        spec = importlib.util.spec_from_file_location("ftraceipc_graph_neo4j_other", a.compare_with)
        other = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(other)
        other.CYPHER_DIR = current.CYPHER_DIR  # the schema file of this checkout
        if getattr(other, "REL_ENDS", None) is not None:
            other.REL_ENDS = {**current.REL_ENDS, **other.REL_ENDS}  # types added since (WAITS_FOR)

    t = time.perf_counter()
    model = model_with_waits(a.tasks, a.resources, a.edges)
    bu.log(f"synthetic model: {len(model.tasks):,} tasks, {len(model.resources):,} resources, "
           f"{len(model.edges()):,} model edge rows in {time.perf_counter() - t:.1f} s")
    try:
        import neo4j._rust  # noqa: F401  (neo4j-rust-ext: the driver's packing in Rust)
        packer = "neo4j-rust-ext (Rust packstream)"
    except ImportError:
        packer = "pure-Python packstream (neo4j-rust-ext not installed)"
    machine = bu.machine_info()
    with bu.cleanup_on_exit(), bu.tempdir("ftipc-bench-neo4j-") as tmp:
        server = None
        if a.uri:
            uri, auth = a.uri, (None, None)
            server_desc = f"running server at {a.uri}"
        else:
            ns = server_module()
            if ns.java_reason():
                sys.exit(f"cannot start Neo4j: {ns.java_reason()}")
            password = "bench-" + secrets.token_hex(8)
            bu.log("starting Neo4j ...")
            server = ns.Neo4jServer.start(tmp / "neo4j", password=password, heap=a.heap, pagecache=a.pagecache,
                                          log=bu.log)
            uri, auth = server.uri, server.auth
            server_desc = (f"Neo4j {ns.NEO4J_VERSION} Community started by this script (scripts/neo4j, "
                           f"heap {a.heap}, page cache {a.pagecache}, same machine)")
        loads, reloads, lb_runs, other_loads, other_reloads = [], [], [], [], []
        try:
            with Neo4jGraph.connect(uri, *auth, writers=a.writers) as g:
                version = g.server_version
                bu.log("warm-up load (untimed)")
                counts = g.load(model, batch=a.batch)
                og = other.Neo4jGraph(uri, *auth, writers=a.writers) if other is not None else None
                for i in range(a.repeat):
                    if og is not None and i % 2 == 0:
                        run_other(og, model, a.batch, counts, other_loads, other_reloads, i)
                    g.delete_capture(model.capture_id, a.batch)
                    got = g.load(model, batch=a.batch)
                    loads.append(dict(g.load_timings))
                    assert got == counts and g.counts(model.capture_id) == counts, (g.counts(model.capture_id), counts)
                    g.load(model, batch=a.batch)
                    reloads.append(dict(g.load_timings))
                    assert g.counts(model.capture_id) == counts
                    msg = (f"run {i + 1}: load {loads[-1]['total']:.2f} s, reload {reloads[-1]['total']:.2f} s "
                           f"(delete {reloads[-1]['delete']:.2f} s)")
                    if not a.no_ladybug:
                        with LadybugGraph.open(tmp / f"run{i}.lbug") as lb:
                            assert lb.load(model) == counts
                            lb_runs.append(dict(lb.load_timings))
                        msg += f", ladybug {lb_runs[-1]['total']:.2f} s"
                    bu.log(msg)
                    if og is not None and i % 2 == 1:
                        run_other(og, model, a.batch, counts, other_loads, other_reloads, i)
                if og is not None:
                    og.close()
                if a.uri:
                    g.delete_capture(model.capture_id, a.batch)
        finally:
            if server is not None:
                rss = server.peak_rss_kib()
                server.stop()
                server_desc += f", server peak RSS {(rss or 0) / 1024:.0f} MiB"

    rows = sum(counts.values())
    first = rows / min(r["total"] for r in loads)
    res = {"benchmark": "neo4j_load", "command": " ".join(sys.argv), "machine": machine, "args": vars(a),
           "server": server_desc, "neo4j_version": version, "driver": __import__("neo4j").__version__,
           "packer": packer, "batch": a.batch, "writers": a.writers, "repeat": a.repeat, "counts": counts,
           "rows": rows, "nodes": sum(v for k, v in counts.items() if k in NODE_KEYS), "loads": loads,
           "reloads": reloads, "ladybug": lb_runs, "compare_with": a.compare_with, "other_loads": other_loads,
           "other_reloads": other_reloads, "best_rows_per_s": first, "target_met": first >= TARGET_ROWS_S}
    print(bu.describe_machine(machine))
    print(markdown(res))
    bu.write_json(a.json, res)


def markdown(res: dict) -> str:
    """The server, the model, the results tables and the target of a results JSON (what main prints)."""
    counts, rows, nodes = res["counts"], res["rows"], res["nodes"]
    out = [f"- {res['server']}; Neo4j {res['neo4j_version']}; driver neo4j {res['driver']}, {res['packer']}; "
           f"batch {res['batch']}, writers {res['writers']}, repeat {res['repeat']}",
           f"- model: {rows:,} rows = {nodes:,} nodes + {rows - nodes:,} relationships "
           f"({', '.join(f'{k} {v:,}' for k, v in counts.items() if v)})", ""]
    table = []
    for name, runs in (("Neo4j first load", res["loads"]), ("Neo4j re-load (delete + load)", res["reloads"]),
                       (f"Neo4j first load, {res['compare_with']}", res["other_loads"]),
                       (f"Neo4j re-load, {res['compare_with']}", res["other_reloads"]),
                       ("LadybugDB load (peer)", res["ladybug"])):
        if not runs:
            continue
        totals = [r["total"] for r in runs]
        table.append([name, f"{min(totals):.2f}", f"{statistics.median(totals):.2f}",
                      rate(rows, min(totals)), rate(rows, statistics.median(totals))])
    out.append(bu.table(["", "best s", "median s", "k rows/s (best)", "k rows/s (median)"], table))
    best = min(res["loads"], key=lambda r: r["total"])
    per = [[k, f"{counts[k]:,}", f"{best[k]:.2f}", rate(counts[k], best[k])] for k in counts if k in best]
    per.append(["(convert, schema + delete)", "", f"{best['convert'] + best['delete']:.2f}", ""])
    out += ["", "Best first load, per table:", "", bu.table(["table", "rows", "s", "k rows/s"], per)]
    best_reload = min(res["reloads"], key=lambda r: r["total"])
    out += ["", f"Best re-load: delete {best_reload['delete']:.2f} s "
                f"({rate(rows, best_reload['delete'])} k rows/s deleted), "
                f"writes {best_reload['total'] - best_reload['delete'] - best_reload['convert']:.2f} s"]
    out.append(f"target: >= {TARGET_ROWS_S / 1e3:.0f} k rows/s (first load, best): "
               f"{'MET' if res['target_met'] else 'NOT MET'} ({res['best_rows_per_s'] / 1e3:,.1f} k rows/s)")
    return "\n".join(out)


if __name__ == "__main__":
    main()
