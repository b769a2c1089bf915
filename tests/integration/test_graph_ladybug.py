"""The embedded graph backend (LadybugDB): a real capture of samples/pipeline.py loaded and checked
with Cypher against the sample's truth, the query files checked against the model (golden results,
not "it runs"), and the edge cases on hand-built models (these need no root).

Capture tests: the 3 pipes are Resource nodes, WRITES/READS carry the truth's calls and bytes, the
FLOWS chain gen -> upper -> grep -> count goes through the pipes in order, every model row is in
the graph (null-rid sleeps as Task properties), loading twice (and reopening the file) gives the
same graph.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from components import need, requires  # noqa: E402
from truth_check import capture_sample  # noqa: E402

from ftraceipc.graph import GraphError, default_path, read_query  # noqa: E402
from ftraceipc.graph.ladybug import LadybugGraph  # noqa: E402
from ftraceipc.model import critical, ipc  # noqa: E402
from ftraceipc.model.build import build_model  # noqa: E402

needs_capture = requires("tracefs")
ALL = 10**9  # a LIMIT that keeps every row

OP_TYPE = {"write": "WRITES", "read": "READS"}


# golden results of the query files, computed from the model with pandas --------------------------------
def top_talkers_golden(model: ipc.Model, min_bytes: int = 1) -> set[tuple]:
    f = model.flows
    g = f.groupby(["writer", "reader"]).agg(bytes=("bytes", "sum"), messages=("messages", "sum"),
                                            channels=("via", lambda s: frozenset(s.dropna())))
    g = g[g["bytes"] >= min_bytes].reset_index()
    return {(int(w), int(r), int(b), int(m), c) for w, r, b, m, c in g.itertuples(index=False, name=None)}


def top_talkers_rows(df: pd.DataFrame) -> set[tuple]:
    return {(int(w), int(r), int(b), int(m), frozenset(c))
            for w, r, b, m, c in df[["writer", "reader", "bytes", "messages", "channels"]].itertuples(index=False)}


def waits_golden(model: ipc.Model, min_blocked_ns: int = 0) -> set[tuple]:
    b = model.blocked[model.blocked["rid"].notna() & (model.blocked["blocked_ns"] >= min_blocked_ns)]
    w = model.wakes[model.wakes["via"].notna()]
    out = set()
    for tid, rid, ns, ep in b[["tid", "rid", "blocked_ns", "episodes"]].itertuples(index=False, name=None):
        k = w[(w["wakee"] == tid) & (w["via"] == rid)]
        if not len(k):
            out.add((tid, rid, ns, ep, None, 0, 0))
        for waker, g in k.groupby("waker"):
            out.add((tid, rid, ns, ep, int(waker), int(g["wakeups"].sum()), int(g["wake_to_run_ns"].sum())))
    return out


def waits_rows(df: pd.DataFrame) -> set[tuple]:
    return {(int(t), r, int(ns), int(ep), None if pd.isna(w) else int(w), int(n), int(lat))
            for t, r, ns, ep, w, n, lat in df[["tid", "rid", "blocked_ns", "episodes", "waker", "wakeups",
                                               "wake_to_run_ns"]].itertuples(index=False)}


def _cell(v):
    if isinstance(v, (list, tuple, np.ndarray)):
        return tuple(v)
    return None if pd.isna(v) else (int(v) if isinstance(v, (np.integer, float)) and float(v).is_integer() else v)


CRIT_QUERIES = {
    "Task": "MATCH (t:Task) WHERE t.crit_ns > 0 AND ($cid = '' OR t.capture_id = $cid) RETURN t.tid AS tid, "
            "t.crit_ns AS c, t.crit_running_ns AS r, t.crit_runnable_ns AS q, t.crit_blocked_ns AS b, "
            "t.crit_running_sys_ns AS y",
    "Task0": "MATCH (t:Task) WHERE t.crit_ns = 0 AND ($cid = '' OR t.capture_id = $cid) RETURN "
             "sum(t.crit_running_ns + t.crit_runnable_ns + t.crit_blocked_ns + t.crit_running_sys_ns) AS s, "
             "count(t) AS n",
    "BLOCKED_ON": "MATCH (t:Task)-[e:BLOCKED_ON]->(r:Resource) WHERE e.crit_waits > 0 AND "
                  "($cid = '' OR t.capture_id = $cid) RETURN t.tid AS tid, r.rid AS rid, e.crit_ns AS c, "
                  "e.crit_waits AS n, e.crit_room_ns AS m",
    "Resource": "MATCH (r:Resource) WHERE r.crit_ns > 0 AND ($cid = '' OR r.capture_id = $cid) "
                "RETURN r.rid AS rid, r.crit_ns AS c",
    "TaskPath": "MATCH (t:Task) WHERE t.crit_segments > 0 AND ($cid = '' OR t.capture_id = $cid) RETURN "
                "t.tid AS tid, t.crit_segments AS n, t.crit_reasons AS reasons, t.crit_reason_ns AS ns",
    "PathSegment": "MATCH (t:Task)-[:ON_PATH]->(s:PathSegment) WHERE $cid = '' OR s.capture_id = $cid "
                   "RETURN s.seq AS seq, t.tid AS owner, s.tid AS tid, s.state AS state, s.reason AS reason, "
                   "s.rid AS rid, s.start_ts AS a, s.end_ts AS z, s.dur_ns AS d",
    "FtraceipcCapture": "MATCH (c:FtraceipcCapture) WHERE $cid = '' OR c.capture_id = $cid RETURN "
                        "c.capture_id AS cid, c.wall_ns AS wall, c.crit_root AS root, c.crit_start_ts AS a, "
                        "c.crit_end_ts AS z",
}


def crit_dump(g, cid: str = "") -> dict[str, list[tuple]]:
    """The critical path as the graph holds it (either backend), as sorted tuples."""
    return {k: sorted((tuple(_cell(v) for v in r) for r in g.query(q, {"cid": cid}).itertuples(index=False)),
                      key=repr) for k, q in CRIT_QUERIES.items()}


def crit_golden(model: ipc.Model) -> dict[str, list[tuple]]:
    """What ``crit_dump`` must give: the model's own numbers."""
    cp = model.critical
    if cp is None:
        return {"Task": [], "Task0": [(0, None)], "BLOCKED_ON": [], "Resource": [], "TaskPath": [], "PathSegment": [],
                "FtraceipcCapture": [(model.capture_id, None, None, None, None)]}
    t = cp.tasks
    edges = set(zip(model.blocked["tid"].tolist(), model.blocked["rid"].tolist()))  # waits on a BLOCKED_ON edge
    w = cp.waits[[(t, r) in edges and r is not None for t, r in zip(cp.waits["waiter"], cp.waits["rid"])]]
    s = cp.segments
    n: dict[int, int] = {}
    why: dict[int, dict[str, int]] = {}
    for r in s.itertuples(index=False):
        n[int(r.tid)] = n.get(int(r.tid), 0) + 1
        if r.state == "blocked":
            k = r.reason if isinstance(r.reason, str) else ""
            why.setdefault(int(r.tid), {})[k] = why.get(int(r.tid), {}).get(k, 0) + int(r.dur_ns)
    order = {t: sorted(((k, v) for k, v in why.get(t, {}).items() if v > 0), key=lambda kv: (-kv[1], kv[0]))
             for t in n}
    out = {
        "TaskPath": [(t, c, tuple(k for k, _ in order[t]), tuple(v for _, v in order[t])) for t, c in n.items()],
        "Task": [tuple(int(x) for x in r) for r in t[["tid", "crit_ns", "running_ns", "runnable_ns", "blocked_ns",
                                                                  "running_sys_ns"]]
                 .itertuples(index=False)],
        "BLOCKED_ON": [(int(a), b, int(c), int(d), int(m)) for a, b, c, d, m in w.itertuples(index=False)],
        "Resource": [(r, int(c)) for r, c in cp.resources.itertuples(index=False)],
        "PathSegment": [(int(r.seq), int(r.tid), int(r.tid), r.state, r.reason, r.rid, int(r.start_ts), int(r.end_ts),
                         int(r.dur_ns)) for r in s.itertuples(index=False)],
        "FtraceipcCapture": [(model.capture_id, cp.wall_ns, cp.root, cp.start_ts, cp.end_ts)],
    }
    out = {k: sorted(v, key=repr) for k, v in out.items()}
    out["Task0"] = None  # checked apart: every task off the path has 0 in every crit_ property
    return out


def same_critical(g, model: ipc.Model, cid: str = "") -> None:
    """The graph's critical path properties equal the model's numbers."""
    got, want = crit_dump(g, cid), crit_golden(model)
    assert got["Task0"][0][0] in (0, None), got["Task0"]
    for k in want:
        if k != "Task0":
            assert got[k] == want[k], (k, got[k][:5], want[k][:5])


def dump(g: LadybugGraph) -> dict[str, list[tuple]]:
    """The whole graph as sorted tuples (for comparing two loads)."""
    out = {
        "Task": g.query("MATCH (t:Task) RETURN t.tid AS k, t.pid AS pid, t.comm AS comm, t.ppid AS ppid, "
                        "t.blocked_unattributed_ns AS u, t.capture_id AS c"),
        "Resource": g.query("MATCH (r:Resource) RETURN r.rid AS k, r.kind AS kind, r.inode AS inode, "
                            "r.peer AS peer, r.capture_id AS c"),
        "WRITES": g.query("MATCH (t:Task)-[e:WRITES]->(r:Resource) RETURN t.tid AS s, r.rid AS d, e.calls AS n, "
                          "e.bytes AS b, e.first_ts AS f, e.last_ts AS l"),
        "READS": g.query("MATCH (t:Task)-[e:READS]->(r:Resource) RETURN t.tid AS s, r.rid AS d, e.calls AS n, "
                         "e.bytes AS b, e.first_ts AS f, e.last_ts AS l"),
        "BLOCKED_ON": g.query("MATCH (t:Task)-[e:BLOCKED_ON]->(r:Resource) RETURN t.tid AS s, r.rid AS d, "
                              "e.episodes AS n, e.blocked_ns AS b, e.max_ns AS m"),
        "WAKES": g.query("MATCH (a:Task)-[e:WAKES]->(b:Task) RETURN a.tid AS s, b.tid AS d, e.via AS via, "
                         "e.wakeups AS n, e.wake_to_run_ns AS w, e.cross_cpu AS x"),
        "FLOWS": g.query("MATCH (a:Task)-[e:FLOWS]->(b:Task) RETURN a.tid AS s, b.tid AS d, e.via AS via, "
                         "e.read_rid AS rr, e.bytes AS b, e.messages AS m"),
        "PEER": g.query("MATCH (a:Resource)-[:PEER]->(b:Resource) RETURN a.rid AS s, b.rid AS d"),
    }
    return {k: sorted((tuple(None if pd.isna(v) else v for v in row) for row in df.itertuples(index=False)), key=repr)
            for k, df in out.items()}


# the real capture ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    need("tracefs")
    cap, meta, truth = capture_sample(tmp_path_factory.mktemp("graph"), "pipeline")
    assert all(sum(v.values()) == 0 for v in meta["lost"].values()), f"events lost: {meta['lost']}"
    return cap, truth, build_model(cap)


@needs_capture
def test_pipeline_graph_matches_the_truth(pipeline):
    cap, truth, model = pipeline
    pipes = [r["rid"] for r in truth["resources"]]
    role = {t["role"]: t["tid"] for t in truth["tasks"]}
    with LadybugGraph.open(default_path(cap)) as g:
        loaded = g.load(model)
        assert g.path == cap / "graph.lbug" and g.path.is_file()
        assert g.capture_ids() == {model.capture_id}

        # the 3 pipes
        res = g.query("MATCH (r:Resource) WHERE r.rid IN $rids RETURN r.rid AS rid, r.kind AS kind, "
                      "r.inode AS inode, r.capture_id AS c", {"rids": pipes})
        assert sorted(res["rid"]) == sorted(pipes)
        assert set(res["kind"]) == {"pipe"} and set(res["c"]) == {model.capture_id}
        assert {f"pipe:{int(i)}" for i in res["inode"]} == set(pipes)

        # WRITES / READS on them: the truth's calls and bytes, nothing else
        want = defaultdict(lambda: [0, 0])
        for e in truth["io"]:
            acc = want[(e["tid"], e["rid"], OP_TYPE[e["op"]])]
            acc[0] += e["calls"]
            acc[1] += e["bytes"]
        got = {}
        for typ, q in (("WRITES", "MATCH (t:Task)-[e:WRITES]->(r:Resource) WHERE r.rid IN $rids "
                                  "RETURN t.tid AS tid, r.rid AS rid, e.calls AS calls, e.bytes AS bytes"),
                       ("READS", "MATCH (t:Task)-[e:READS]->(r:Resource) WHERE r.rid IN $rids "
                                 "RETURN t.tid AS tid, r.rid AS rid, e.calls AS calls, e.bytes AS bytes")):
            for tid, rid, calls, nbytes in g.query(q, {"rids": pipes}).itertuples(index=False):
                got[(tid, rid, typ)] = [calls, nbytes]
        assert got == dict(want)

        # FLOWS: gen -> upper -> grep -> count, one hop per pipe, with the bytes written into it
        chain = g.query(
            "MATCH (a:Task)-[f1:FLOWS]->(b:Task)-[f2:FLOWS]->(c:Task)-[f3:FLOWS]->(d:Task) "
            "WHERE a.tid = $gen AND f1.via IN $rids AND f2.via IN $rids AND f3.via IN $rids "
            "RETURN b.tid AS b, c.tid AS c, d.tid AS d, f1.via AS v1, f2.via AS v2, f3.via AS v3, "
            "f1.bytes AS b1, f2.bytes AS b2, f3.bytes AS b3", {"gen": role["gen"], "rids": pipes})
        assert len(chain) == 1, chain
        row = chain.iloc[0]
        assert (row.b, row.c, row.d) == (role["upper"], role["grep"], role["count"])
        writes = {(tid, rid): b for (tid, rid, typ), (_c, b) in want.items() if typ == "WRITES"}
        assert [row.b1, row.b2, row.b3] == [writes[(role["gen"], row.v1)], writes[(role["upper"], row.v2)],
                                            writes[(role["grep"], row.v3)]]
        assert len({row.v1, row.v2, row.v3}) == 3
        n = g.query("MATCH (:Task)-[f:FLOWS]->(:Task) WHERE f.via IN $rids RETURN count(f) AS n", {"rids": pipes})
        assert n["n"].iloc[0] == 3

        # every model row is in the graph; null-rid sleeps are Task properties, null-via wakes edges
        counts = g.counts()
        assert counts == loaded
        on_res = model.blocked["rid"].notna()
        assert counts["WRITES"] + counts["READS"] == len(model.io)
        assert counts["BLOCKED_ON"] == int(on_res.sum())
        assert counts["WAKES"] == len(model.wakes) and counts["FLOWS"] == len(model.flows)
        assert counts["Task"] >= len(model.tasks) and counts["Resource"] >= len(model.resources)
        u = g.query("MATCH (t:Task) RETURN sum(t.blocked_unattributed_ns) AS ns, "
                    "sum(t.blocked_unattributed_episodes) AS n")
        assert (u["ns"].iloc[0], u["n"].iloc[0]) == (model.blocked.loc[~on_res, "blocked_ns"].sum(),
                                                     model.blocked.loc[~on_res, "episodes"].sum())
        nv = g.query("MATCH (:Task)-[k:WAKES]->(:Task) WHERE k.via IS NULL RETURN count(k) AS n")
        assert nv["n"].iloc[0] == int(model.wakes["via"].isna().sum()) > 0

        # the query files, golden-checked against the model
        assert top_talkers_rows(g.run_file("top_talkers", limit=ALL)) == top_talkers_golden(model)
        tt = g.run_file("top_talkers", limit=3)
        assert len(tt) == 3 and list(tt["bytes"]) == sorted(tt["bytes"], reverse=True)
        w = g.run_file("waits", limit=ALL)
        assert waits_rows(w) == waits_golden(model) and len(w) == len(waits_golden(model))
        assert list(w["blocked_ns"]) == sorted(w["blocked_ns"], reverse=True)
        assert {(role["count"], row.v3, role["grep"])} <= {(t, r, k) for t, r, k in w[["tid", "rid", "waker"]]
                                                           .itertuples(index=False)}


@needs_capture
def test_loading_twice_gives_the_same_graph(pipeline):
    cap, _truth, model = pipeline
    path = cap / "twice.lbug"
    with LadybugGraph.open(path) as g:
        first = g.load(model)
        before = dump(g)
        assert g.load(model) == first
        assert g.counts() == first and dump(g) == before
    with LadybugGraph.open(path) as g:  # reopened from the file
        assert g.counts() == first and dump(g) == before
        assert g.load(build_model(cap)) == first  # a rebuilt model of the same capture
        assert dump(g) == before


# hand-built models (no capture needed) -------------------------------------------------------------------
def small_model(capture_id: str = "cap-a") -> ipc.Model:
    P, S1, S2, GONE = "pipe:10", "unix:20", "unix:21", "pipe:99"
    m = ipc.Model(capture="x.ftipc", capture_id=capture_id, meta={})
    m.tasks = pd.DataFrame({"tid": np.array([1, 2, 3], dtype=np.int64), "pid": [1, 2, 2], "comm": ["a", "b", "b"],
                            "comms": [["a"], ["sh", "b"], ["b"]], "ppid": [0, 1, 1], "first_ts": [5, 6, 7],
                            "last_ts": [50, 60, 70], "tracer": [False, False, True]}, columns=ipc.TASK_COLUMNS)
    m.resources = pd.DataFrame({"rid": [P, S1, S2], "kind": ["pipe", "unix_stream", "unix_stream"],
                                "inode": [10, 20, None], "path": [None, "/run/x.sock", None],
                                "peer": [None, S2, S1], "evidence": [["pipe2"], ["accept"], ["socket"]]},
                               columns=ipc.RESOURCE_COLUMNS)
    m.io = pd.DataFrame({"type": ["WRITES", "READS", "WRITES", "READS"], "tid": [1, 2, 2, 3],
                         "rid": [P, P, S1, S2], "calls": [4, 2, 1, 1], "bytes": [400, 400, 9, 9],
                         "first_ts": [10, 11, 12, 13], "last_ts": [20, 21, 22, 23],
                         "syscalls": [["write"], ["read"], ["sendto"], ["recvfrom"]]}, columns=ipc.IO_COLUMNS)
    m.blocked = pd.DataFrame({"tid": [2, 2, 3, 1], "rid": [P, None, GONE, None], "episodes": [2, 3, 1, 1],
                              "blocked_ns": [900, 700, 50, 20], "max_ns": [600, 400, 50, 20],
                              "ops": [["read"], [], ["read"], []]}, columns=ipc.BLOCKED_COLUMNS)
    m.wakes = pd.DataFrame({"waker": [1, 0, 1, 2], "wakee": [2, 2, 2, 3], "via": [P, None, None, S1],
                            "wakeups": [2, 1, 1, 1], "wake_to_run_ns": [30, 5, 7, 3],
                            "max_wake_to_run_ns": [20, 5, 7, 3], "cross_cpu": [1, 0, 0, 0]},
                           columns=ipc.WAKES_COLUMNS)
    m.flows = pd.DataFrame({"writer": [1, 2], "reader": [2, 3], "via": [P, S1], "read_rid": [P, S2],
                            "bytes": [400, 9], "messages": [4, 1]}, columns=ipc.FLOW_COLUMNS)
    m.waits = pd.DataFrame({"waiter": [2], "waker": [1], "via": [P], "episodes": [2], "blocked_ns": [900],
                            "max_ns": [600], "top": [True]}, columns=ipc.WAITS_COLUMNS)
    # the critical path of 3 over [0, 60]: 3 waits on S2 (woken by 2 through S1), 2 meanwhile on P
    # (woken by 1); then 3 sleeps in nanosleep, woken by an interrupt; 1 is preempted once
    ep = pd.DataFrame([{"tid": 3, "rid": S2, "op": "recvfrom", "start_ts": 10, "dur_ns": 30, "woken_by": 2},
                       {"tid": 2, "rid": P, "op": "read", "start_ts": 15, "dur_ns": 15, "woken_by": 1},
                       {"tid": 3, "rid": None, "op": "nanosleep", "start_ts": 45, "dur_ns": 5, "woken_by": 0}])
    wu = pd.DataFrame([{"ts": 35, "waker": 2, "wakee": 3, "via": S1, "wake_to_run_ns": 5},
                       {"ts": 25, "waker": 1, "wakee": 2, "via": P, "wake_to_run_ns": 5},
                       {"ts": 48, "waker": 0, "wakee": 3, "via": None, "wake_to_run_ns": 2, "irq": True}])
    pre = pd.DataFrame({"tid": [1], "start_ts": [18], "end_ts": [21]})
    sc = pd.DataFrame({"tid": [3], "enter_ts": [5], "exit_ts": [12]})  # 3's recvmsg: 5 of its running [0, 10]
    m.critical = critical.walk(critical.PathInputs.from_tables(ep, wu, preempted=pre, syscalls=sc), 3, 0, 60)
    return m


def test_edge_cases_load():
    m = small_model()
    with LadybugGraph.open() as g:
        assert g.load(m) == {"Task": 4, "Resource": 4, "PathSegment": 12, "FtraceipcCapture": 1, "WRITES": 2,
                             "READS": 2, "BLOCKED_ON": 2, "WAKES": 4, "FLOWS": 2, "WAITS_FOR": 1, "PEER": 2,
                             "ON_PATH": 12}
        same_critical(g, m)
        # by hand: 3 runs [0, 10], waits on unix:21 until 2 wakes it at 35 (runnable to 40); 2's own
        # wait on pipe:10 [15, 25] is 1's time (preempted [18, 21]); 3's nanosleep stays its own
        assert crit_dump(g)["Task"] == [(1, 10, 7, 3, 0, 0), (2, 15, 10, 5, 0, 0), (3, 35, 25, 7, 3, 5)]
        assert crit_dump(g)["BLOCKED_ON"] == [(2, "pipe:10", 10, 1, 0)]  # 3's wait is on unix:21: no edge
        assert crit_dump(g)["Resource"] == [("pipe:10", 15), ("unix:21", 30)]
        assert crit_dump(g)["FtraceipcCapture"] == [("cap-a", 60, 3, 0, 60)]
        w = g.query("MATCH (a:Task)-[k:WAITS_FOR]->(b:Task) RETURN a.tid AS a, b.tid AS b, k.via AS via, "
                    "k.episodes AS n, k.blocked_ns AS ns, k.max_ns AS mx, k.top AS top")
        assert w.values.tolist() == [[2, 1, "pipe:10", 2, 900, 600, True]]
        idle = g.query("MATCH (t:Task) WHERE t.tid = 0 RETURN t.pid AS pid, t.comm AS comm")
        assert idle.to_dict("records") == [{"pid": 0, "comm": "<idle>"}]
        gone = g.query("MATCH (r:Resource) WHERE r.rid = $rid RETURN r.kind AS kind, r.inode AS inode, "
                       "size(r.evidence) AS ev", {"rid": "pipe:99"})
        assert gone.to_dict("records") == [{"kind": "pipe", "inode": 99, "ev": 0}]
        u = g.query("MATCH (t:Task) RETURN t.tid AS tid, t.blocked_unattributed_episodes AS n, "
                    "t.blocked_unattributed_ns AS ns, t.blocked_unattributed_max_ns AS mx ORDER BY tid")
        assert u.values.tolist() == [[0, 0, 0, 0], [1, 1, 20, 20], [2, 3, 700, 400], [3, 0, 0, 0]]
        via = g.query("MATCH (a:Task)-[k:WAKES]->(b:Task) WHERE k.via IS NULL RETURN a.tid AS waker, "
                      "b.tid AS wakee ORDER BY waker")
        assert via.values.tolist() == [[0, 2], [1, 2]]
        peers = g.query("MATCH (a:Resource)-[:PEER]->(b:Resource) RETURN a.rid AS src, b.rid AS dst ORDER BY src")
        assert peers.values.tolist() == [["unix:20", "unix:21"], ["unix:21", "unix:20"]]
        t = g.query("MATCH (t:Task) WHERE t.tid = 3 RETURN t.tracer AS tr, t.comms AS comms")
        assert t.to_dict("records") == [{"tr": True, "comms": ["b"]}]
        r = g.query("MATCH (r:Resource) WHERE r.rid = 'unix:21' RETURN r.inode AS i, r.path AS p, r.peer AS peer")
        assert pd.isna(r["i"].iloc[0]) and pd.isna(r["p"].iloc[0]) and r["peer"].iloc[0] == "unix:20"
        # golden results: a blocked task no wakeup came to through the resource has a null waker row,
        # and a wakeup through another resource (1 -> 2 via null) is not counted
        assert waits_rows(g.run_file("waits", limit=ALL)) == waits_golden(m) == {
            (2, "pipe:10", 900, 2, 1, 2, 30), (3, "pipe:99", 50, 1, None, 0, 0)}
        assert top_talkers_rows(g.run_file("top_talkers", limit=ALL)) == top_talkers_golden(m)
        assert len(g.run_file("top_talkers", min_bytes=10)) == 1


@needs_capture
def test_a_load_without_path_segments_keeps_each_task_share_of_the_path(pipeline):
    """Live mode loads no PathSegment/ON_PATH rows: every other table, each task's crit_* (segments,
    reasons of its sleeps on the path) and the bottleneck detector's rows are those of a full load."""
    m = small_model()
    with LadybugGraph.open() as g:
        assert g.load(m, segments=False) == {"Task": 4, "Resource": 4, "PathSegment": 0, "FtraceipcCapture": 1,
                                             "WRITES": 2, "READS": 2, "BLOCKED_ON": 2, "WAKES": 4, "FLOWS": 2,
                                             "WAITS_FOR": 1, "PEER": 2, "ON_PATH": 0}
        got = crit_dump(g)
        assert got["PathSegment"] == []
        # by hand (test_edge_cases_load's path): 1 runs [15, 18], is preempted to 21, runs to 25; 2 runs
        # [10, 15], is runnable [25, 30] after 1's wakeup, runs to 35; 3 runs [0, 10], is runnable
        # [35, 40], runs to 45, sleeps in nanosleep [45, 48] (its one sleep on the path), is runnable
        # to 50 and runs to 60
        assert got["TaskPath"] == [(1, 3, (), ()), (2, 3, (), ()), (3, 6, ("nanosleep",), (3,))]
        want = crit_golden(m)
        assert {k: v for k, v in got.items() if k not in ("PathSegment", "Task0")} == \
            {k: v for k, v in want.items() if k not in ("PathSegment", "Task0")}
    _cap, _truth, model = pipeline
    rows = []
    for seg in (True, False):
        with LadybugGraph.open() as g:
            g.load(model, segments=seg)
            rows.append(g.run_file("bottleneck", min_percent=0, min_lead_percent=0).to_dict("records"))
    assert rows[0] == rows[1] and rows[0] and rows[0][0]["count"] > 0, rows


def test_query_errors_are_ours():
    with LadybugGraph.open() as g:
        g.load(small_model())
        with pytest.raises(GraphError) as e:
            g.query("MATC (t:Task) RETURN t.tid AS tid")
        assert "Parser exception" in str(e.value) and e.value.query.startswith("MATC")
        with pytest.raises(GraphError, match="Binder exception"):
            g.query("MATCH (t:Nope) RETURN t")
        with pytest.raises(GraphError, match=r"missing query parameter\(s\): \$limit"):
            g.query(read_query("top_talkers").text, {"min_bytes": 1, "capture_id": ""})
        assert len(g.query("MATCH (t:Task) RETURN t.tid AS tid")) == 4  # still usable
    g.close()  # closed twice: fine
    with pytest.raises(GraphError, match="closed"):
        g.query("RETURN 1 AS x")


def test_another_capture_is_refused_and_a_failed_load_keeps_the_graph(tmp_path):
    path = tmp_path / "g.lbug"
    with LadybugGraph.open(path) as g:
        first = g.load(small_model("cap-a"))
        with pytest.raises(GraphError, match="holds capture cap-a"):
            g.load(small_model("cap-b"))
        assert g.capture_ids() == {"cap-a"}
        bad = small_model("cap-a")
        bad.tasks = pd.concat([bad.tasks, bad.tasks.iloc[:1]], ignore_index=True)  # duplicate tid
        with pytest.raises(GraphError, match="primary key"):
            g.load(bad)
        assert g.counts() == first and g.capture_ids() == {"cap-a"}
        assert g.load(small_model("cap-b"), replace=True) == first
        assert g.capture_ids() == {"cap-b"}
        empty = ipc.Model(capture="e", capture_id="cap-e", meta={})
        assert {k: v for k, v in g.load(empty, replace=True).items() if v} == {"FtraceipcCapture": 1}
        assert {k: v for k, v in g.counts().items() if v} == {"FtraceipcCapture": 1}
        assert crit_dump(g) == crit_golden(empty) | {"Task0": [(None, 0)]}


def test_directory_means_graph_lbug_inside(tmp_path):
    with LadybugGraph.open(tmp_path) as g:
        assert g.path == tmp_path / "graph.lbug"
        g.create_schema()
        g.create_schema()  # idempotent
    assert (tmp_path / "graph.lbug").exists()
