"""The critical path on real captures, and in both graph backends.

- ``sh -c 'seq 1 3000000 | gzip -6 | gzip -dc | wc -l'``: gzip -6 is CPU-bound (it compresses far
  slower than seq writes and gzip -dc inflates), so the path must be mostly its time: the shell's
  waits for its children go through their exits, seq's stalls on the full pipe into gzip -6 are
  handed to gzip -6, and the waits of gzip -dc and wc on their input pipes to the stage before.
- ``samples/relay.py`` (A sleeps, then passes a token A -> B -> C -> D through three pipes; D is
  the command): D's waits go to C, C's to B, B's to A, and A's sleeps (``clock_nanosleep``, traced
  here on purpose: it is not in the default event set) stay on the path as blocked time.

Each: the path covers the command's wall time exactly (its exec to its exit, read from the decoded
events, not from the model), contiguous and without overlaps; and the graph (LadybugDB and the
session's Neo4j) holds exactly the model's numbers, and ``cypher/critical_path.cypher`` gives the
same rows on both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from components import requires  # noqa: E402
from test_graph_ladybug import crit_dump, same_critical  # noqa: E402

from ftraceipc.decode import Decoder  # noqa: E402
from ftraceipc.graph import parameters_used, read_query  # noqa: E402
from ftraceipc.model import critical  # noqa: E402
from ftraceipc.model.build import build_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NANOSLEEP = "syscalls:sys_enter_clock_nanosleep,syscalls:sys_exit_clock_nanosleep"


def capture(tmp: Path, argv: list[str], events: str | None = None) -> tuple[Path, dict]:
    cap = tmp / "run.ftipc"
    extra = ["-e", f"default,{events}"] if events else []
    r = subprocess.run([sys.executable, "-m", "ftraceipc", "capture", "-o", str(cap), "--no-model", *extra, "--",
                        *argv], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    meta = json.loads((cap / "meta.json").read_text())
    assert all(sum(v.values()) == 0 for v in meta["lost"].values()), f"events lost: {meta['lost']}"
    return cap, meta


def command_span(cap: Path, pid: int) -> tuple[int, int]:
    """The command's exec and exit times, straight from the decoded events."""
    execs, exits = [], []
    for b in Decoder(cap).batches(["sched_process_exec", "sched_process_exit"]):
        t = b.events.get("sched_process_exec")
        if t is not None:
            execs += [int(ts) for ts, p in zip(t.ts.tolist(), t.columns["pid"].tolist()) if p == pid]
        t = b.events.get("sched_process_exit")
        if t is not None:
            exits += [int(ts) for ts, p in zip(t.ts.tolist(), t.columns["pid"].tolist()) if p == pid]
    assert execs and exits, (execs, exits)
    return min(execs), max(exits)


def check_path(cap: Path, meta: dict, model) -> critical.CriticalPath:
    cp = model.critical
    assert cp is not None and cp.root == meta["command_pid"]
    assert critical.check(cp) == []
    s = cp.segments
    assert (s["start_ts"].iloc[1:].to_numpy() == s["end_ts"].iloc[:-1].to_numpy()).all()  # contiguous
    assert (s["dur_ns"] > 0).all() and int(s["dur_ns"].sum()) == cp.wall_ns
    assert (cp.start_ts, cp.end_ts) == command_span(cap, meta["command_pid"])
    assert cp.wall_ns <= (meta["stop_wall"] - meta["start_wall"]) * 1e9
    assert int(cp.tasks["crit_ns"].sum()) == cp.wall_ns
    assert (cp.resources["crit_ns"] <= cp.wall_ns).all() and (cp.waits["crit_ns"] <= cp.wall_ns).all()
    return cp


def both_backends(model, tmp: Path, server) -> None:
    """Ladybug and Neo4j hold the model's numbers; critical_path.cypher gives the same rows on both,
    and they are the model's segments."""
    from ftraceipc.graph.ladybug import LadybugGraph
    from ftraceipc.graph.neo4j import Neo4jGraph

    cp = model.critical
    q = read_query("critical_path")
    assert parameters_used(q.text) == set(q.defaults) == {"min_dur_ns", "limit", "capture_id"}
    n = len(cp.segments)
    with LadybugGraph.open(tmp / "graph.lbug") as lb, Neo4jGraph.connect(server.uri, *server.auth) as neo:
        loaded = lb.load(model)
        try:
            assert neo.load(model) == loaded
            assert loaded["PathSegment"] == loaded["ON_PATH"] == n
            same_critical(lb, model)
            same_critical(neo, model, model.capture_id)
            assert crit_dump(lb) == crit_dump(neo, model.capture_id)
            a = lb.run_file("critical_path", limit=n + 1)
            b = neo.run_file("critical_path", limit=n + 1, capture_id=model.capture_id)
        finally:
            neo.delete_capture(model.capture_id)
    cols = ["seq", "tid", "comm", "state", "reason", "rid", "start_ts", "end_ts", "dur_ns", "task_crit_ns",
            "task_running_ns", "task_runnable_ns", "task_blocked_ns", "wall_ns"]
    assert list(a.columns) == list(b.columns) == cols

    def norm(df):
        return [tuple(None if not isinstance(v, str) and pd.isna(v) else v for v in r) for r in df.itertuples(index=False)]

    assert norm(a) == norm(b)
    seg = cp.segments
    assert norm(a[["seq", "tid", "state", "reason", "rid", "start_ts", "end_ts", "dur_ns"]]) == norm(seg)
    own = cp.tasks.set_index("tid")["crit_ns"]
    assert [int(own[t]) for t in a["tid"]] == a["task_crit_ns"].tolist()
    assert set(a["wall_ns"]) == {cp.wall_ns}


def tid_of(model, comm: str) -> list[int]:
    return [int(t) for t, c in zip(model.tasks["tid"], model.tasks["comms"]) if comm in (c or [])]


@requires("tracefs")
def test_a_cpu_bound_gzip_is_the_critical_path_of_its_pipeline(tmp_path, neo4j_server):
    out = tmp_path / "n.txt"
    cap, meta = capture(tmp_path, ["/bin/sh", "-c", f"seq 1 3000000 | gzip -6 | gzip -dc | wc -l > {out}"])
    assert out.read_text().strip() == "3000000"
    m = build_model(cap)
    cp = check_path(cap, meta, m)
    (seq,), (wc,) = tid_of(m, "seq"), tid_of(m, "wc")
    f = m.flows
    gz6 = int(f[f["writer"] == seq]["reader"].iloc[0])
    gzd = int(f[f["writer"] == gz6]["reader"].iloc[0])
    assert {gz6, gzd} == set(tid_of(m, "gzip")) and int(f[f["writer"] == gzd]["reader"].iloc[0]) == wc
    own = cp.tasks.set_index("tid")
    # gzip -6 dominates: it has the most time on the path, most of the wall time, and spends it working
    assert int(own["crit_ns"].idxmax()) == gz6, own
    assert own.loc[gz6, "crit_ns"] >= 0.5 * cp.wall_ns, own
    assert own.loc[gz6, "running_ns"] + own.loc[gz6, "runnable_ns"] >= 0.9 * own.loc[gz6, "crit_ns"]
    # ... in user space: compressing, not in its reads and writes (running_sys_ns: its running time on
    # the path inside traced syscalls); every task's is part of its running time
    assert 0 < own.loc[gz6, "running_sys_ns"] <= 0.3 * own.loc[gz6, "running_ns"], own
    assert (own["running_sys_ns"] <= own["running_ns"]).all(), own
    # the shell waits for its children: each wait ends with a child's exit, and the first (the
    # longest: seq exits once gzip -6 has read nearly all) is seq's path; seq's stalls on the full
    # pipe into gzip -6 are handed to gzip -6 (back-pressure, not seq's own time)
    rid_in = {t: m.io[(m.io["type"] == "READS") & (m.io["tid"] == t)]["rid"].iloc[0] for t in (wc, gzd, gz6)}
    w = {(int(a), r): (int(ns), int(n)) for a, r, ns, n, _room in cp.waits.itertuples(index=False)}
    sh = cp.root
    assert cp.stats["exit_edges"] >= 1 and w[(sh, None)][0] >= 0.9 * cp.wall_ns, w
    assert w[(seq, rid_in[gz6])][0] >= 0.5 * cp.wall_ns, w
    # seq only writes: all of its waits there were for room; the shell's, for its children, none
    room = {(int(a), r): int(rm) for a, r, _ns, _n, rm in cp.waits.itertuples(index=False)}
    assert room[(seq, rid_in[gz6])] == w[(seq, rid_in[gz6])][0] and room[(sh, None)] == 0, room
    # (and none of its own time is asleep outside IPC, but for a moment: a loaded CI machine once gave
    # seq a sleep off the pipes on the path, as a major fault would; the same bound as the stages below)
    assert (own.loc[seq, "blocked_ns"] if seq in own.index else 0) <= 0.01 * cp.wall_ns, own
    # the waits of gzip -dc and wc on the path (their last moments) are on their own pipes, handed to
    # the stage before them (input) or, when the next one got no CPU for a while, after them (gzip -dc's
    # output, seen once in CI): none of their time is blocked
    for t in (gzd, wc):
        mine = {r for (a, r) in w if a == t}
        outs = set(m.io[(m.io["type"] == "WRITES") & (m.io["tid"] == t)]["rid"])
        assert mine <= {rid_in[t]} | outs, (t, mine)
        assert (own.loc[t, "blocked_ns"] if t in own.index else 0) <= 0.01 * cp.wall_ns
    res = dict(zip(cp.resources["rid"], cp.resources["crit_ns"]))
    assert cp.wall_ns >= res[rid_in[gz6]] >= w[(seq, rid_in[gz6])][0]
    both_backends(m, tmp_path, neo4j_server)


@requires("tracefs")
def test_relay_chain_ends_in_the_sleeping_source(tmp_path, neo4j_server):
    truth_path = tmp_path / "truth.json"
    rounds, gap_ns = 100, 3_000_000
    cap, meta = capture(tmp_path, [sys.executable, str(ROOT / "samples" / "relay.py"), "--rounds", str(rounds), "--gap",
                                   str(gap_ns / 1e6), "--truth", str(truth_path)], events=NANOSLEEP)
    slept = rounds * gap_ns  # what A sleeps in all (D's start-up and exit take the rest, more on a busy machine)
    truth = json.loads(truth_path.read_text())
    role = {t["role"]: t["tid"] for t in truth["tasks"]}
    assert role["D"] == meta["command_pid"]
    m = build_model(cap)
    cp = check_path(cap, meta, m)
    own = cp.tasks.set_index("tid")
    a = role["A"]
    # A's sleeps between tokens stay on the path as its own blocked time, named by their syscall
    assert slept >= own.loc[a, "blocked_ns"] >= 0.5 * slept, own
    assert int(own["blocked_ns"].idxmax()) == a
    seg = cp.segments
    a_blocked = seg[(seg["tid"] == a) & (seg["state"] == "blocked")]
    assert a_blocked.groupby("reason")["dur_ns"].sum().idxmax() == "clock_nanosleep"
    assert a_blocked["rid"].isna().all()
    # D waited on C through CD, C on B through BC, B on A through AB: each handed to the writer
    rid_read = {}
    for e in truth["io"]:
        if e["syscall"] == "read" and e["bytes"] > 0:
            rid_read[e["tid"]] = e["rid"]
    w = {(int(x), r): int(ns) for x, r, ns, _n, _room in cp.waits.itertuples(index=False)}
    for waiter in ("D", "C", "B"):  # each waits about a gap per token
        assert w.get((role[waiter], rid_read[role[waiter]]), 0) >= 0.5 * slept, (waiter, w)
    assert cp.stats["edges"] >= 3 * 50
    both_backends(m, tmp_path, neo4j_server)


def test_without_a_command_there_is_no_path(tmp_path):
    """A hand-made capture-less model: the JSON says null, the graph has no segments."""
    from ftraceipc.graph.ladybug import LadybugGraph
    from ftraceipc.model import ipc

    m = ipc.Model(capture="x", capture_id="none", meta={})
    with LadybugGraph.open() as g:
        assert g.load(m)["PathSegment"] == 0
        assert len(g.run_file("critical_path")) == 0
        assert crit_dump(g)["FtraceipcCapture"] == [("none", None, None, None, None)]
