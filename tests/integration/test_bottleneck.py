"""The bottleneck detector and critical_ns, on both backends (LadybugDB and a real Neo4j 5.26).

Hand-built graphs: a 4-stage pipeline whose second stage holds 91 % of the critical path (running
70 %, in nanosleep 21 %), with writers stalled upstream of it (one and two hops), a stall downstream
of it and a buffer-limited one elsewhere (neither is its back-pressure), and sleeps whose crit_ns
exceeds the wall time (critical_ns is clamped to wall_ns). A real capture of ``seq 1 3000000 | gzip -6 | gzip -dc |
wc -l``: the bottleneck is the gzip -6 task, seq is its back-pressure, and every finding's
critical_ns is at most the command's wall time."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import capture_cli as cc  # noqa: E402
from components import requires  # noqa: E402

from hand_graphs import GEN, GZ, GZD, MS, OTHER, OTHER_R, SEQ, SH, WALL, WC, WRITE, pipeline_model  # noqa: E402

from ftraceipc.detect import DETECTORS, run_detectors  # noqa: E402
from ftraceipc.detect.pipeline import Backend, analyze  # noqa: E402
from ftraceipc.model import ipc  # noqa: E402
from ftraceipc.model.critical import (CRITICAL_COLUMNS, CRITICAL_TASK_COLUMNS, CRITICAL_WAIT_COLUMNS,  # noqa: E402
                                      CriticalPath)

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
        for cid in ("bneck", "nopath", "bneck3"):
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
    # critical_ns: its lead over wc (8 %), what making it faster saves before the path moves to wc
    assert int(r["critical_ns"]) == 830 * MS and int(r["own_ns"]) == 910 * MS and int(r["asleep_ns"]) == 210 * MS
    assert int(r["count"]) == 2 and int(r["wall_ns"]) == WALL and int(r["percent"]) == 91
    assert (int(r["next_tid"]), r["next_comm"], int(r["next_ns"]), int(r["next_percent"])) == (WC, "wc", 80 * MS, 8)
    assert (int(r["next_path_ns"]), int(r["next_work_ns"])) == (80 * MS, 80 * MS)
    assert (int(r["running_ns"]), int(r["runnable_ns"]), int(r["blocked_ns"])) == (700 * MS, 0, 210 * MS)
    assert list(r["reasons"]) == ["nanosleep"] and ints(r["reason_ns"]) == [210 * MS]
    stalls = sorted(zip(ints(r["stalled"]), list(r["stalled_rids"]), ints(r["stalled_ns"])))
    assert stalls == [(SEQ, "pipe:12", 900 * MS), (GEN, "pipe:51", 500 * MS)]


def test_bottleneck_threshold_lead_and_scope(graph):
    low = graph.run_file("bottleneck", min_percent=5)
    assert [int(t) for t in low["tid"]] == [GZ]  # wc (8 %) is over 5 % but leads nobody: never a second row
    assert graph.run_file("bottleneck", min_percent=92).empty
    assert len(graph.run_file("bottleneck", min_lead_percent=83)) == 1  # 91 - 8
    assert graph.run_file("bottleneck", min_lead_percent=84).empty
    assert len(graph.run_file("bottleneck", tids=[GEN])) == 1  # a stalled writer is one of its tasks
    assert graph.run_file("bottleneck", tids=[OTHER]).empty
    few = graph.run_file("bottleneck", min_stall_ns=600 * MS)
    assert ints(few.iloc[0]["stalled"]) == [SEQ]


def test_critical_ns_comes_from_the_path_and_is_clamped_to_the_wall_time(graph):
    # the stalls whose readers never wait for them are back-pressure (issue #11), not full_buffer_stall's
    bp = graph.run_file("back_pressure")
    crit = {int(t[0]): int(c) for t, c in zip(bp["tasks"], bp["critical_ns"])}
    assert crit == {SEQ: WALL, GEN: 0, GZD: 0}  # seq's 1.5 s on the path is cut to the wall time
    assert [int(t[0]) for t in bp["tasks"]][0] == SEQ  # rows come by critical_ns first
    fb = graph.run_file("full_buffer_stall")
    assert [(ints(t), int(c)) for t, c in zip(fb["tasks"], fb["critical_ns"])] == [([OTHER, OTHER_R], WALL)]
    for d in [*DETECTORS, "back_pressure"]:
        df = graph.run_file(d)
        assert list(df.columns[:6]) == ["pattern", "tasks", "resources", "count", "critical_ns", "asleep_ns"]
        assert all(0 <= int(c) <= WALL for c in df["critical_ns"]), (d, df.to_string())


def test_findings_rank_the_bottleneck_first_and_never_above_the_wall_time(graph):
    found = run_detectors(graph.graph, capture_id=graph.cid)
    assert found[0].pattern == "full_buffer_stall" and found[0].critical_ns == WALL  # the clamped hand-made one
    assert found[1].pattern == "bottleneck" and found[1].tasks[0] == GZ and found[1].critical_ns == 830 * MS
    assert "on the critical path 91 % of the wall time" in found[1].explanation
    assert "running 70 %, in nanosleep 21 %" in found[1].explanation
    assert "seq[1] slept 900.0 ms writing into the full pipe:12" in found[1].explanation
    assert "buffer" not in found[1].suggestion.lower()
    keys = [(f.critical_ns, f.asleep_ns) for f in found]
    assert keys == sorted(keys, reverse=True) and all(f.critical_ns <= WALL for f in found)


def on_backend(request, tmp_path, backend: str, *checks) -> None:
    """Load each (model, check) pair's model into ``backend`` and call check(graph, capture_id): one Neo4j
    database for all (a stale copy of the capture deleted first), a fresh Ladybug file each."""
    from ftraceipc.graph.ladybug import LadybugGraph

    for i, (m, check) in enumerate(checks):
        if backend == "neo4j":
            g = request.getfixturevalue("neo")
            if m.capture_id in g.stored_capture_ids():
                g.delete_capture(m.capture_id)
            g.load(m)
            check(g, m.capture_id)
            continue
        with LadybugGraph.open(tmp_path / f"g{i}.lbug") as lg:
            lg.load(m)
            check(lg, "")


@pytest.mark.parametrize("backend", ["ladybug", "neo4j"])
def test_the_bottleneck_finding_names_only_the_back_pressure_upstream(request, tmp_path, backend):
    """gen's stall on pipe:51 made buffer-limited (seq waits for it by turns, gen's writes larger than
    the pipe): a full_buffer_stall finding of its own, no longer the bottleneck's back-pressure; the
    query still lists it (raw), the finding keeps what back_pressure.cypher finds."""
    m = pipeline_model("bneck3")
    m.waits = pd.concat([m.waits, pd.DataFrame([(SEQ, GEN, "pipe:51", 20, 200 * MS, 20 * MS, True, 20, 20)],
                                               columns=ipc.WAITS_COLUMNS)], ignore_index=True)
    m.io = pd.concat([m.io, pd.DataFrame([("WRITES", GEN, "pipe:51", 10, 10**6, 0, WALL, WRITE)],
                                         columns=ipc.IO_COLUMNS)], ignore_index=True)

    def check(g, cid):
        raw = g.run_file("bottleneck", capture_id=cid)
        assert sorted(ints(raw.iloc[0]["stalled"])) == [SEQ, GEN]
        found = run_detectors(g, capture_id=cid)
        b = next(f for f in found if f.pattern == "bottleneck")
        assert b.tasks == [GZ, SEQ] and b.resources == ["pipe:12"] and b.details["stalled"] == [SEQ]
        assert "seq[1] slept 900.0 ms writing into the full pipe:12" in b.explanation and "gen[5]" not in b.explanation
        assert {f.tasks[0] for f in found if f.pattern == "full_buffer_stall"} == {GEN, OTHER}

    on_backend(request, tmp_path, backend, (m, check))


@pytest.mark.parametrize("backend", ["ladybug", "neo4j"])
def test_a_stage_computing_alongside_the_bottleneck_caps_what_making_it_faster_saves(request, tmp_path, backend):
    """wc on the path only 80 ms, but awake from 0 (not 320 ms): its own work is 400 ms (1000 ms minus
    its 600 ms asleep), which the run needs however fast gzip gets: gzip's lead is 910 - 400 ms, not
    910 - 80 ms; and with wc's work at 850 ms (asleep 150 ms) gzip leads by under 10 %: no bottleneck."""
    m = pipeline_model("bneck4")
    m.tasks.loc[m.tasks["tid"] == WC, "first_ts"] = 0

    def check(g, cid):
        r = g.run_file("bottleneck", capture_id=cid).iloc[0]
        assert int(r["tid"]) == GZ and int(r["critical_ns"]) == 510 * MS and int(r["own_ns"]) == 910 * MS
        assert (int(r["next_tid"]), int(r["next_ns"]), int(r["next_path_ns"]), int(r["next_work_ns"])) == \
            (WC, 400 * MS, 80 * MS, 400 * MS)
        b = next(f for f in run_detectors(g, capture_id=cid) if f.pattern == "bottleneck")
        assert b.critical_ns == 510 * MS
        assert "wc[4], on the path 8 % of the wall time but busy 40 % of it" in b.explanation

    def none(g, cid):
        assert g.run_file("bottleneck", capture_id=cid).empty
        assert len(g.run_file("bottleneck", capture_id=cid, min_lead_percent=5)) == 1  # 910 - 850 = 6 %

    busy = pipeline_model("bneck5")
    busy.tasks.loc[busy.tasks["tid"] == WC, "first_ts"] = 0
    busy.blocked.loc[busy.blocked["tid"] == WC, "blocked_ns"] = 150 * MS
    on_backend(request, tmp_path, backend, (m, check), (busy, none))


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


# every detector's critical_ns from the sleeps it is about ----------------------------------------------
def hand_with_path() -> ipc.Model:
    """test_detectors' hand model with a 100 ms critical path (t1 runs 55 ms, the chain's end t23 runs
    15 ms, t4 is runnable 30 ms)
    and path time inside some sleeps (critical.waits -> BLOCKED_ON crit_ns): herd wakees 2 and 3 on
    pipe:10, the writer 6 on pipe:11, the ping-pong pair on unix:20/21, the chain 20->21->22 and the
    cycle 40->41->42 on their pipes."""
    from test_detectors import hand_model

    m = hand_model()
    m.capture_id, m.capture = "handpath", "handpath.ftipc"
    # (tid, rid, episodes, blocked_ns, max_ns, ops, read_episodes, read_ns, write_episodes, write_ns)
    extra = [(w, via, 10, 1 * MS, 1, ["read"], 10, 1 * MS, 0, 0)
             for w, via in ((8, "unix:20"), (9, "unix:21"), (20, "pipe:31"), (21, "pipe:32"), (22, "pipe:33"),
                            (40, "pipe:51"), (41, "pipe:52"), (42, "pipe:53"))]
    m.blocked = pd.concat([m.blocked, pd.DataFrame(extra, columns=ipc.BLOCKED_COLUMNS)], ignore_index=True)
    seg = pd.DataFrame([(0, 1, "running", "", None, 0, 55 * MS, 55 * MS),
                        (1, 23, "running", "", None, 55 * MS, 70 * MS, 15 * MS),
                        (2, 4, "runnable", "read", "pipe:12", 70 * MS, 100 * MS, 30 * MS)], columns=CRITICAL_COLUMNS)
    # the chatty pair 8 <-> 9 (600 messages) with own time on the path; half of 8's messages go to 90
    # (test_detectors' unix:41 reader, not chatty), so it lends the pair half of its 4 ms; 8 runs 2 ms
    # of its 4 inside syscalls, 9 3 ms of its 5
    tasks = pd.DataFrame([(1, 55 * MS, 55 * MS, 0, 0, 0), (23, 15 * MS, 15 * MS, 0, 0, 0), (4, 30 * MS, 0, 30 * MS, 0, 0),
                          (8, 4 * MS, 4 * MS, 0, 0, 2 * MS), (9, 6 * MS, 5 * MS, 1 * MS, 0, 3 * MS),
                          (22, 12 * MS, 9 * MS, 3 * MS, 0, 0)], columns=CRITICAL_TASK_COLUMNS)
    # the chain 20 -> 21 -> 22 -> 23 carries data back: 22 forwards all it reads (a relay, 12 ms on the
    # path), 21 passes on half of it (a stage, no relay)
    m.flows = pd.concat([m.flows, pd.DataFrame([(8, 90, "unix:41", "unix:41", 600, 600),
                                                (23, 22, "pipe:33", "pipe:33", 4000, 10),
                                                (22, 21, "pipe:32", "pipe:32", 4100, 10),
                                                (21, 20, "pipe:31", "pipe:31", 2000, 10)], columns=ipc.FLOW_COLUMNS)],
                        ignore_index=True)
    # (waiter, rid, crit_ns, waits, room_ns): 6 waited for room on pipe:11 in 2 of its 3 ms there
    waits = pd.DataFrame([(6, "pipe:11", 3 * MS, 5, 2 * MS), (2, "pipe:10", 400, 1, 0), (3, "pipe:10", 500, 1, 0),
                          (8, "unix:20", 7 * MS, 3, 0), (9, "unix:21", 2 * MS, 3, 0), (20, "pipe:31", 50 * MS, 2, 0),
                          (21, "pipe:32", 40 * MS, 2, 0), (22, "pipe:33", 60 * MS, 2, 0), (40, "pipe:51", 10 * MS, 2, 0),
                          (41, "pipe:52", 20 * MS, 2, 0), (42, "pipe:53", 5 * MS, 2, 0)], columns=CRITICAL_WAIT_COLUMNS)
    m.critical = CriticalPath(root=1, start_ts=0, end_ts=100 * MS, segments=seg, tasks=tasks, waits=waits)
    return m


@pytest.fixture(params=["ladybug", "neo4j"])
def hand_path(request, tmp_path):
    from ftraceipc.graph.ladybug import LadybugGraph

    m = hand_with_path()
    if request.param == "neo4j":
        g = request.getfixturevalue("neo")
        g.load(m)
        yield Runner("neo4j", g, m.capture_id)
        return
    with LadybugGraph.open(tmp_path / "graph.lbug") as g:
        g.load(m)
        yield Runner("ladybug", g, "")


def test_each_detector_takes_critical_ns_from_the_sleeps_it_is_about(hand_path):
    def crit(detector: str, **p) -> dict:
        df = hand_path.run_file(detector, **p)
        return {tuple(ints(t)): int(c) for t, c in zip(df["tasks"], df["critical_ns"])}

    # its sleeps waiting for room only (2 ms), not the rest of its path time on pipe:11 (waiting for data)
    assert crit("full_buffer_stall") == {(6, 7): 2 * MS, (12, 13): 0, (110, 112): 0}
    herd = hand_path.run_file("thundering_herd")
    assert int(herd["critical_ns"].iloc[0]) == 900 * 18 // 26  # wakees 2 and 3 on pipe:10, the wasted share
    # both ends' time in syscalls and waiting for a CPU (8: 2 ms, half of it its share; 9: 3 + 1 ms), and
    # their whole own time as path_ns (8's 4 ms by its share, 9's 6 ms)
    assert crit("chatty_pingpong") == {(8, 9): 1 * MS + 4 * MS}
    assert ints(hand_path.run_file("chatty_pingpong")["path_ns"]) == [2 * MS + 6 * MS]
    chains = crit("wait_chain")
    assert chains[(20, 21, 22, 23)] == 60 * MS - 15 * MS  # the largest hop, less its slowest task's own time
    assert chains[(43, 40, 41, 42)] == 20 * MS and chains[(30, 31, 32)] == 0
    assert crit("wait_cycle") == {(40, 41, 42): 20 * MS}  # none of them has own time on the path
    # 9's runnable time on the path (1 ms), at most the wake-to-run latency of the cross-CPU wakeups
    assert crit("cross_cpu_wakeup") == {(8, 9): (1000 + 500 + 99_999) * 239 // 309}
    assert crit("wakeup_latency") == {(4, 5): 30 * MS}  # 4's runnable time on the path, under its 40 ms
    assert crit("bottleneck") == {(1,): 25 * MS}  # 55 % of the path, leading 4's 30 %; 4 leads nobody


def test_wait_chain_names_the_relays_in_its_middle_and_counts_their_path_time(hand_path):
    relays = hand_path.run_file("relays", tids=[21, 22])
    assert ints(relays["tid"]) == [22] and ints(relays["bytes_in"]) == [4000] and ints(relays["bytes_out"]) == [4100]
    assert ints(relays["crit_ns"]) == [12 * MS]
    assert ints(hand_path.run_file("relays", tids=[22], max_diff_percent=1)["tid"]) == []  # 2.5 % more out
    found = run_detectors(hand_path.graph, only=["wait_chain"], capture_id=hand_path.cid)
    chain = next(f for f in found if f.tasks == [20, 21, 22, 23])
    assert chain.details["relays"] == [22] and chain.details["relay_ns"] == 12 * MS
    assert chain.critical_ns == 45 * MS  # its waits beyond 23's pace count more than the relay here
    assert "only forwards what it reads" in chain.explanation and "Take the relay " in chain.suggestion
    from ftraceipc.detect.detectors.wait_chain import refine

    [row] = refine(hand_path.graph, [{"tasks": [20, 21, 22, 23], "critical_ns": 0}], hand_path.cid, {})
    assert row["critical_ns"] == 12 * MS  # a chain whose waits add nothing still costs its relay's time
    assert refine(hand_path.graph, [{"tasks": [20, 21], "critical_ns": 5}], hand_path.cid, {})[0]["critical_ns"] == 5
