"""The bottleneck detector and critical_ns, on both backends (LadybugDB and a real Neo4j 5.26).

Hand-built graphs: a 4-stage pipeline whose second stage holds 91 % of the critical path (running
70 %, in nanosleep 21 %), with writers stalled upstream of it (one and two hops), a stall downstream
of it and one elsewhere (neither is its back-pressure), and a sleep whose crit_ns exceeds the wall
time (critical_ns is clamped to wall_ns). A real capture of ``seq 1 3000000 | gzip -6 | gzip -dc |
wc -l``: the bottleneck is the gzip -6 task, seq is its back-pressure, and every finding's
critical_ns is at most the command's wall time."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import capture_cli as cc  # noqa: E402
from components import requires  # noqa: E402

from ftraceipc.detect import DETECTORS, run_detectors  # noqa: E402
from ftraceipc.detect.pipeline import Backend, analyze  # noqa: E402
from ftraceipc.model import ipc  # noqa: E402
from ftraceipc.model.critical import (CRITICAL_COLUMNS, CRITICAL_TASK_COLUMNS, CRITICAL_WAIT_COLUMNS,  # noqa: E402
                                      CriticalPath)

MS = 1_000_000
WALL = 1000 * MS
SH, SEQ, GZ, GZD, WC, GEN, OTHER, OTHER_R = 10, 1, 2, 3, 4, 5, 50, 51
WRITE = ["write"]


def pipeline_model(capture_id: str = "bneck") -> ipc.Model:
    """gen(5) -> seq(1) -> gz(2) -> gzd(3) -> wc(4) through pipes 51, 12, 23, 34; sh(10) is the root.
    The path: sh runs 10 ms, gz runs 700 ms and sleeps 210 ms in nanosleep, wc runs 80 ms. Stalls
    writing into full pipes: seq on pipe:12 (900 ms; its waits row says 1.5 s on the path, more
    than the wall time), gen on pipe:51 (500 ms), gzd on pipe:34 (300 ms, downstream of gz) and
    other(50) on pipe:60 (400 ms, elsewhere)."""
    m = ipc.Model(capture=f"{capture_id}.ftipc", capture_id=capture_id, meta={})
    names = {SH: "sh", SEQ: "seq", GZ: "gzip", GZD: "gzip", WC: "wc", GEN: "gen", OTHER: "other", OTHER_R: "otherr"}
    tids = np.array(sorted(names), dtype=np.int64)
    m.tasks = pd.DataFrame({"tid": tids, "pid": tids, "comm": [names[t] for t in tids],
                            "comms": [[names[t]] for t in tids], "ppid": 0, "first_ts": 0, "last_ts": WALL,
                            "tracer": False}, columns=ipc.TASK_COLUMNS)
    rids = ["pipe:51", "pipe:12", "pipe:23", "pipe:34", "pipe:60"]
    m.resources = pd.DataFrame({"rid": rids, "kind": "pipe", "inode": [int(r[5:]) for r in rids], "path": None,
                                "peer": None, "evidence": [["pipe2"]] * len(rids)}, columns=ipc.RESOURCE_COLUMNS)
    m.io = pd.DataFrame(columns=ipc.IO_COLUMNS)
    m.blocked = pd.DataFrame([(SEQ, "pipe:12", 100, 900 * MS, 20 * MS, WRITE),
                              (GEN, "pipe:51", 50, 500 * MS, 20 * MS, WRITE),
                              (GZD, "pipe:34", 40, 300 * MS, 20 * MS, WRITE),
                              (OTHER, "pipe:60", 40, 400 * MS, 20 * MS, WRITE),
                              (WC, "pipe:34", 30, 600 * MS, 30 * MS, ["read"])], columns=ipc.BLOCKED_COLUMNS)
    m.wakes = pd.DataFrame([(GZ, SEQ, "pipe:12", 100, 1000, 10, 0), (WC, GZD, "pipe:34", 40, 1000, 10, 0),
                            (GZD, WC, "pipe:34", 30, 1000, 10, 0)], columns=ipc.WAKES_COLUMNS)
    m.flows = pd.DataFrame([(GEN, SEQ, "pipe:51", "pipe:51", 10**6, 100), (SEQ, GZ, "pipe:12", "pipe:12", 10**7, 1000),
                            (GZ, GZD, "pipe:23", "pipe:23", 10**6, 100), (GZD, WC, "pipe:34", "pipe:34", 10**7, 1000),
                            (OTHER, OTHER_R, "pipe:60", "pipe:60", 10**6, 100)], columns=ipc.FLOW_COLUMNS)
    m.waits = pd.DataFrame(columns=ipc.WAITS_COLUMNS)
    seg = [(0, SH, "running", "", None, 0, 10 * MS), (1, GZ, "running", "", None, 10 * MS, 710 * MS),
           (2, GZ, "blocked", "nanosleep", None, 710 * MS, 920 * MS), (3, WC, "running", "", None, 920 * MS, WALL)]
    segments = pd.DataFrame([(*s, s[6] - s[5]) for s in seg], columns=CRITICAL_COLUMNS)
    tasks = pd.DataFrame([(SH, 10 * MS, 10 * MS, 0, 0), (GZ, 910 * MS, 700 * MS, 0, 210 * MS), (WC, 80 * MS, 80 * MS, 0, 0)],
                         columns=CRITICAL_TASK_COLUMNS)
    waits = pd.DataFrame([(SEQ, "pipe:12", 1500 * MS, 10), (WC, "pipe:34", 990 * MS, 30)], columns=CRITICAL_WAIT_COLUMNS)
    m.critical = CriticalPath(root=SH, start_ts=0, end_ts=WALL, segments=segments, tasks=tasks, waits=waits)
    return m


class Runner:
    def __init__(self, backend: str, graph, capture_id: str):
        self.backend, self.graph, self.cid = backend, graph, capture_id

    def run_file(self, detector: str, **params) -> pd.DataFrame:
        params.setdefault("capture_id", self.cid)
        return self.graph.run_file(detector, **params)


@pytest.fixture(scope="module")
def neo(neo4j_server):
    from ftraceipc.graph.neo4j import Neo4jGraph

    with Neo4jGraph.connect(neo4j_server.uri, *neo4j_server.auth) as g:
        for cid in ("bneck", "nopath"):
            if cid in g.stored_capture_ids():
                g.delete_capture(cid)
        yield g


@pytest.fixture(params=["ladybug", "neo4j"])
def graph(request, tmp_path):
    from ftraceipc.graph.ladybug import LadybugGraph

    m = pipeline_model()
    if request.param == "neo4j":
        g = request.getfixturevalue("neo")
        g.load(m)
        yield Runner("neo4j", g, "bneck")
        return
    with LadybugGraph.open(tmp_path / "graph.lbug") as g:
        g.load(m)
        yield Runner("ladybug", g, "")


def ints(xs) -> list[int]:
    return [int(x) for x in xs]


def test_bottleneck_names_the_task_with_the_largest_share_and_its_upstream_stalls(graph):
    df = graph.run_file("bottleneck")
    assert len(df) == 1, df.to_string()  # sh 1 %, wc 8 %: under 20 %
    r = df.iloc[0]
    assert int(r["tid"]) == GZ and r["comm"] == "gzip" and ints(r["tasks"])[0] == GZ
    assert sorted(ints(r["tasks"])[1:]) == [SEQ, GEN]  # not gzd (downstream), not other (elsewhere)
    assert sorted(r["resources"]) == ["pipe:12", "pipe:51"]
    assert int(r["critical_ns"]) == 910 * MS and int(r["asleep_ns"]) == 210 * MS and int(r["count"]) == 2
    assert int(r["wall_ns"]) == WALL and int(r["percent"]) == 91
    assert (int(r["running_ns"]), int(r["runnable_ns"]), int(r["blocked_ns"])) == (700 * MS, 0, 210 * MS)
    assert list(r["reasons"]) == ["nanosleep"] and ints(r["reason_ns"]) == [210 * MS]
    stalls = sorted(zip(ints(r["stalled"]), list(r["stalled_rids"]), ints(r["stalled_ns"])))
    assert stalls == [(SEQ, "pipe:12", 900 * MS), (GEN, "pipe:51", 500 * MS)]


def test_bottleneck_threshold_and_scope(graph):
    low = graph.run_file("bottleneck", min_percent=5)
    assert [int(t) for t in low["tid"]] == [GZ, WC]  # by share; sh (1 %) still out
    assert int(low.iloc[1]["percent"]) == 8 and list(low.iloc[1]["stalled"]) == [] and list(low.iloc[1]["reasons"]) == []
    assert graph.run_file("bottleneck", min_percent=92).empty
    assert len(graph.run_file("bottleneck", tids=[GEN])) == 1  # a stalled writer is one of its tasks
    assert graph.run_file("bottleneck", tids=[OTHER]).empty
    few = graph.run_file("bottleneck", min_stall_ns=600 * MS)
    assert ints(few.iloc[0]["stalled"]) == [SEQ]


def test_critical_ns_comes_from_the_path_and_is_clamped_to_the_wall_time(graph):
    fb = graph.run_file("full_buffer_stall")
    crit = {int(t[0]): int(c) for t, c in zip(fb["tasks"], fb["critical_ns"])}
    assert crit == {SEQ: WALL, GEN: 0, GZD: 0, OTHER: 0}  # seq's 1.5 s on the path is cut to the wall time
    assert [int(t[0]) for t in fb["tasks"]][0] == SEQ  # rows come by critical_ns first
    for d in DETECTORS:
        df = graph.run_file(d)
        assert list(df.columns[:6]) == ["pattern", "tasks", "resources", "count", "critical_ns", "asleep_ns"]
        assert all(0 <= int(c) <= WALL for c in df["critical_ns"]), (d, df.to_string())


def test_findings_rank_the_bottleneck_first_and_never_above_the_wall_time(graph):
    found = run_detectors(graph.graph, capture_id=graph.cid)
    assert found[0].pattern == "full_buffer_stall" and found[0].critical_ns == WALL  # the clamped hand-made one
    assert found[1].pattern == "bottleneck" and found[1].tasks[0] == GZ and found[1].critical_ns == 910 * MS
    assert "on the critical path 91 % of the wall time" in found[1].explanation
    assert "running 70 %, in nanosleep 21 %" in found[1].explanation
    assert "seq[1] slept 900.0 ms writing into the full pipe:12" in found[1].explanation
    assert "buffer" not in found[1].suggestion.lower()
    keys = [(f.critical_ns, f.asleep_ns) for f in found]
    assert keys == sorted(keys, reverse=True) and all(f.critical_ns <= WALL for f in found)


def test_without_a_critical_path_bottleneck_is_silent_and_critical_ns_is_zero(request, tmp_path):
    from ftraceipc.graph.ladybug import LadybugGraph

    m = pipeline_model("nopath")
    m.critical = None
    g = request.getfixturevalue("neo")
    g.load(m)
    with LadybugGraph.open(tmp_path / "g.lbug") as lg:
        lg.load(m)
        for graph, cid in ((lg, ""), (g, "nopath")):
            assert graph.run_file("bottleneck", capture_id=cid).empty
            found = run_detectors(graph, capture_id=cid)
            assert found and all(f.critical_ns == 0 for f in found)
            assert [f.asleep_ns for f in found] == sorted((f.asleep_ns for f in found), reverse=True)


def test_pipeline_analyze_gives_the_same_analysis_on_both_backends(neo4j_server, tmp_path):
    m = pipeline_model("bneck2")
    emb = analyze(m, backend=Backend(path=tmp_path / "g.lbug"), all_tasks=True)
    neo = analyze(m, backend=Backend(uri=neo4j_server.uri, user=neo4j_server.auth[0], password=neo4j_server.auth[1]),
                  all_tasks=True)
    for a in (emb, neo):
        assert a.critical.root == SH and a.critical.wall_ns == WALL and a.critical.root_label == "sh[10]"
        assert a.findings[1].pattern == "bottleneck"
    key = lambda a: [(f.rank, f.pattern, sorted(f.tasks), sorted(f.resources), f.count, f.critical_ns, f.asleep_ns,
                      f.explanation) for f in a.findings]
    assert key(emb) == key(neo)
    assert emb.backend == "embedded graph.lbug" and neo.backend.startswith("Neo4j at bolt://")


# a real capture ----------------------------------------------------------------------------------------
PIPELINE = "seq 1 3000000 | gzip -6 | gzip -dc | wc -l"


@pytest.fixture(scope="module")
def gzip_capture(tmp_path_factory):
    from components import need

    need("tracefs")
    cap = tmp_path_factory.mktemp("gzip") / "gzip.ftipc"
    r = cc.cli("capture", "-o", str(cap), "--no-model", "--", "sh", "-c", PIPELINE, timeout=180)
    assert r.returncode == 0, r.stderr
    return cap


def _gzip6_tid(model: ipc.Model) -> int:
    """The task that reads what seq writes: gzip -6."""
    comm = dict(zip(model.tasks["tid"].astype(int), model.tasks["comm"]))
    f = model.flows
    readers = {int(r) for w, r in zip(f["writer"], f["reader"]) if comm.get(int(w)) == "seq"}
    (tid,) = readers
    assert comm[tid] == "gzip"
    return tid


@requires("tracefs")
@pytest.mark.parametrize("backend", ["embedded", "neo4j"])
def test_real_gzip_pipeline_bottleneck_is_gzip_6(gzip_capture, request, backend):
    from ftraceipc.model.build import build_model

    model = build_model(gzip_capture)
    assert model.critical is not None
    wall = model.critical.wall_ns
    gz6 = _gzip6_tid(model)
    args = ["analyze", str(gzip_capture), "--format", "json"]
    kw = {}
    if backend == "neo4j":
        s = request.getfixturevalue("neo4j_server")
        args += ["--neo4j", s.uri]
        kw["env_extra"] = {"NEO4J_USER": s.auth[0], "NEO4J_PASSWORD": s.auth[1]}
    r = cc.cli(*args, timeout=180, **kw)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["capture"]["critical_path"]["wall_ns"] == wall
    found = d["findings"]
    b = [f for f in found if f["pattern"] == "bottleneck"]
    assert b and b[0]["tasks"][0] == gz6 and b[0]["rank"] == 1, [(f["pattern"], f["tasks"][:3]) for f in found]
    assert b[0]["details"]["percent"] >= 50 and b[0]["details"]["running_ns"] > b[0]["details"]["blocked_ns"]
    assert all(0 <= f["critical_ns"] <= wall for f in found)
    assert all("lost_ns" not in f for f in found)
    assert "buffer" not in b[0]["suggestion"].lower()
    text = cc.cli(*[a for a in args if a not in ("--format", "json")], timeout=180, **kw)
    assert text.returncode == 0 and "on the critical path" in text.stdout and " lost" not in text.stdout
