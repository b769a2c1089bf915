"""The pattern detectors (cypher/<pattern>.cypher, issue #4) on LadybugDB and on a real Neo4j 5.26,
against samples that plant each pattern and controls that do not.

Each sample is captured once per module (``ftraceipc capture``, system-wide), its model built and
loaded into a Ladybug database and into one Neo4j database that holds every sample's capture (so the
detectors' ``$capture_id`` scoping is exercised too). A capture holds every task that ran meanwhile,
so a detector is only judged on the rows that name one of the sample's own tasks (its truth's tids):
elsewhere on the machine something may well be chatty. Expected values come from the truth (roles,
rids) and, for the numbers, from the model's own tables (pandas), so each detector's arithmetic is
checked, not just that it runs. Every detector then gives the same rows on Neo4j as on Ladybug for
every sample capture and for the hand-built model (the hand tests run on both backends).

Default thresholds against what the samples show (3 runs each on a 2-CPU VM): full_buffer's writer
~63 sleeps in write (min_episodes 10), wake_then_block's mid 40-45 (min 5), fanin's writers 2-5
(a little contention on the shared pipe, below 10); herd's 4 waiters are woken 21 times each
(min_wakeups 5) while fanin's reader wakes its writers 1-3 times; socketpair_pingpong moves 2000
messages of 16 bytes each way (min 100, max 256 bytes).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from components import requires  # noqa: E402
from truth_check import capture_sample  # noqa: E402

from ftraceipc.detect import DETECTORS as REGISTRY  # noqa: E402
from ftraceipc.graph import query_path, read_query  # noqa: E402
from ftraceipc.model import ipc  # noqa: E402
from ftraceipc.model.build import build_model  # noqa: E402

needs_tracefs = requires("tracefs")

DETECTORS = list(REGISTRY)
COMMON = ["pattern", "tasks", "resources", "count", "critical_ns", "asleep_ns"]
WRITE_OPS = {"write", "writev", "sendto", "sendmsg"}
ORDERED = {"wait_chain", "wait_cycle"}  # their lists are in chain/cycle order; the others' are sets


class Neo:
    """The session's Neo4j as a detector runner for one capture at a time (``capture_id``)."""

    def __init__(self, graph):
        self.graph = graph
        self.loaded: set[str] = set()

    def load(self, model: ipc.Model) -> None:
        if model.capture_id not in self.loaded:
            self.graph.load(model)
            self.loaded.add(model.capture_id)

    def run_file(self, detector: str, capture_id: str, **params) -> pd.DataFrame:
        return self.graph.run_file(detector, capture_id=capture_id, **params)


@pytest.fixture(scope="module")
def neo(neo4j_server):
    from ftraceipc.graph.neo4j import Neo4jGraph

    with Neo4jGraph.connect(neo4j_server.uri, *neo4j_server.auth) as g:
        g.query("MATCH (n) DETACH DELETE n")
        yield Neo(g)


def _cell(v, ordered: bool):
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        xs = [_cell(x, True) for x in v]
        return tuple(xs) if ordered else tuple(sorted(xs, key=repr))
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, float):
        return round(v, 6)
    try:
        return int(v) if not isinstance(v, (str, bool)) and int(v) == v else v
    except (TypeError, ValueError):
        return v


def normal_rows(detector: str, df: pd.DataFrame) -> list[tuple]:
    """A detector's rows, comparable across backends (cells as plain values; lists sorted where
    their order means nothing), sorted."""
    cols = list(df.columns)
    rows = [tuple((c, _cell(v, detector in ORDERED)) for c, v in zip(cols, r)) for r in df.itertuples(index=False)]
    return sorted(rows, key=repr)


@dataclass
class Sample:
    name: str
    graph: object  # LadybugGraph
    model: ipc.Model
    truth: dict
    neo: Neo | None = None
    _rows: dict = field(default_factory=dict)

    @property
    def tids(self) -> set[int]:
        return {t["tid"] for t in self.truth["tasks"]}

    @property
    def roles(self) -> dict[str, int]:
        return {t["role"]: t["tid"] for t in self.truth["tasks"]}

    def detect(self, detector: str, **params) -> pd.DataFrame:
        """The detector's rows that name at least one of the sample's tasks (Ladybug)."""
        df = self.graph.run_file(detector, **params)
        assert list(df.columns) == _returned(read_query(detector).text), df.columns  # the header's columns
        assert (df["pattern"] == detector).all(), df
        keep = [bool(self.tids & {int(t) for t in ts}) for ts in df["tasks"]]
        return df[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """``sample(name, *args)``: that sample captured (once per module), modelled and loaded into Ladybug."""
    from ftraceipc.graph.ladybug import LadybugGraph

    done: dict[tuple, Sample] = {}

    def get(name: str, *args: str) -> Sample:
        key = (name, *args)
        if key not in done:
            tmp = tmp_path_factory.mktemp(name)
            cap, _meta, truth = capture_sample(tmp, name, list(args))
            model = build_model(cap)
            g = LadybugGraph.open(tmp / "graph.lbug")
            g.load(model)
            done[key] = Sample(name, g, model, truth)
        return done[key]

    yield get
    for s in done.values():
        s.graph.close()


def only_row(df: pd.DataFrame) -> pd.Series:
    assert len(df) == 1, df.to_string()
    return df.iloc[0]


def ints(xs) -> list[int]:
    return [int(x) for x in xs]


# headers --------------------------------------------------------------------------------------------------
def _header(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("//")]


def _returned(text: str) -> list[str]:
    """The column names a header's Returns section lists, in order."""
    lines = _header(text)
    i = next(i for i, ln in enumerate(lines) if ln.startswith("// Returns"))
    out = []
    for ln in lines[i + 1:]:
        body = ln[2:]
        if not body.strip():
            break
        if body.startswith("   ") and not body.startswith("    "):
            out += [c.strip() for c in body.strip().split("  ")[0].split(",")]
    return [c for c in out if c]


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("dialect", [None, "ladybug"])
def test_header_gives_a_default_for_every_parameter_and_the_common_columns(detector, dialect):
    from ftraceipc.graph import parameters_used

    q = read_query(detector, dialect)
    assert parameters_used(q.text) == set(q.defaults), q.defaults
    assert all(isinstance(v, int) for k, v in q.defaults.items() if k not in ("capture_id", "tids")), q.defaults
    assert q.defaults["capture_id"] == "" and q.defaults["tids"] == []
    cols = _returned(q.text)
    assert cols[:len(COMMON)] == COMMON, cols


@pytest.mark.parametrize("detector", [d for d in DETECTORS if query_path(d, "ladybug") != query_path(d)])
def test_a_dialect_variant_has_the_same_header_as_the_neo4j_text(detector):
    main, variant = read_query(detector), read_query(detector, "ladybug")
    assert main.defaults == variant.defaults
    strip = lambda t: [ln for ln in _header(t) if "Neo4j text" not in ln and "LadybugDB text" not in ln
                       and "text. Both give" not in ln and "Ladybug cannot" not in ln
                       and "in the first WITH" not in ln and "the Neo4j text" not in ln]
    assert _returned(main.text) == _returned(variant.text)
    assert strip(main.text)[:20] == strip(variant.text)[:20]


# hand-built model: edge cases no sample shows ----------------------------------------------------------
# (waiter, waker, via, episodes, blocked_ns, max_ns, top)
WAIT_ROWS = [
    (20, 21, "pipe:31", 10, 5_000_000, 1, True), (20, 24, "pipe:34", 50, 1_000_000, 1, False),
    (21, 22, "pipe:32", 10, 4_000_000, 1, True), (22, 23, "pipe:33", 10, 3_000_000, 1, True),
    (30, 31, "pipe:41", 20, 2_000_000, 1, True), (31, 32, "pipe:42", 20, 2_000_000, 1, True),
    (32, 31, "pipe:42", 20, 1_500_000, 1, True),
    (40, 41, "pipe:51", 100, 1_000_000, 1, True), (41, 42, "pipe:52", 80, 1_000_000, 1, True),
    (42, 40, "pipe:53", 90, 1_000_000, 1, True), (43, 40, "pipe:54", 10, 9_000_000, 1, True),
    (50, 51, "pipe:61", 10, 9_000_000, 1, True),
    (60, 61, "pipe:71", 10, 2_000_000, 1, True), (61, 62, "pipe:72", 3, 2_000_000, 1, True),
]


def hand_model() -> ipc.Model:
    """Herd: task 1 wakes 2, 3, 4 via pipe:10 (10, 10, 6 wakeups: a tie for the busiest) and 5 only
    twice. Full buffer: 6 sleeps in write on pipe:11 with no other waker (it wakes itself), 7 sleeps in
    read there. Ping-pong: 8 <-> 9 over two socketpairs (parallel FLOWS and WAKES), plus a wakeup of 9
    by 8 through an unrelated pipe:12 (not counted). Latency: 5 wakes 4 via pipe:12 20 times, 2 ms on
    average. Cross-CPU: 239 of 8's 309 wakeups of 9 ran it on another CPU. Waits (``WAIT_ROWS``): a
    chain 20->21->22->23 (20's non-top wait on 24 not followed), a chain 30->31->32 ending in the
    2-cycle 31<->32, the 3-cycle 40->41->42->40 with 43 waiting on it, a 1-hop chain 50->51 and a
    chain 60->61->62 whose second hop has only 3 sleeps."""
    P, Q, R, S1, S2, S3, S4 = "pipe:10", "pipe:11", "pipe:12", "unix:20", "unix:21", "unix:22", "unix:23"
    m = ipc.Model(capture="hand.ftipc", capture_id="hand", meta={})
    tids = np.array(list(range(1, 10)) + sorted({t for r in WAIT_ROWS for t in r[:2]}), dtype=np.int64)
    m.tasks = pd.DataFrame({"tid": tids, "pid": tids, "comm": [f"t{t}" for t in tids],
                            "comms": [[f"t{t}"] for t in tids], "ppid": 0, "first_ts": 1, "last_ts": 2, "tracer": False}, columns=ipc.TASK_COLUMNS)
    rids = [P, Q, R, S1, S2, S3, S4]
    m.resources = pd.DataFrame({"rid": rids, "kind": ["pipe"] * 3 + ["unix_stream"] * 4,
                                "inode": [int(r.split(":")[1]) for r in rids], "path": None,
                                "peer": [None, None, None, S2, S1, S4, S3], "evidence": [["pipe2"]] * 7},
                               columns=ipc.RESOURCE_COLUMNS)
    m.io = pd.DataFrame({"type": ["WRITES"], "tid": [1], "rid": [P], "calls": [10], "bytes": [10], "first_ts": [1],
                         "last_ts": [2], "syscalls": [["write"]]}, columns=ipc.IO_COLUMNS)
    m.blocked = pd.DataFrame({"tid": [6, 7, 2], "rid": [Q, Q, P], "episodes": [12, 50, 10],
                              "blocked_ns": [5_000_000, 9_000_000, 1_000_000], "max_ns": [1_000_000, 1_000_000, 1],
                              "ops": [["write"], ["read"], ["poll"]]}, columns=ipc.BLOCKED_COLUMNS)
    w = [(1, 2, P, 10, 100), (1, 3, P, 10, 300), (1, 4, P, 6, 50), (1, 5, P, 2, 1000), (6, 6, Q, 12, 7),
         (8, 9, S2, 150, 1000), (8, 9, S4, 60, 500), (8, 9, R, 99, 99999), (9, 8, S1, 120, 2000),
         (5, 4, R, 20, 40_000_000)]
    m.wakes = pd.DataFrame(w, columns=["waker", "wakee", "via", "wakeups", "wake_to_run_ns"]).assign(
        max_wake_to_run_ns=[1] * 9 + [5_000_000], cross_cpu=[0] * 5 + [140, 0, 99, 0, 0])[ipc.WAKES_COLUMNS]
    f = [(8, 9, S1, S2, 3200, 200), (8, 9, S3, S4, 1600, 100), (9, 8, S2, S1, 4800, 300)]
    m.flows = pd.DataFrame(f, columns=ipc.FLOW_COLUMNS)
    m.waits = pd.DataFrame(WAIT_ROWS, columns=ipc.WAITS_COLUMNS)
    return m


class HandRunner:
    """Runs detectors on the hand model in one backend (Neo4j: scoped to capture "hand")."""

    def __init__(self, backend: str, graph):
        self.backend, self.graph = backend, graph

    def run_file(self, detector: str, **params) -> pd.DataFrame:
        if self.backend == "neo4j":
            params.setdefault("capture_id", "hand")
        df = self.graph.run_file(detector, **params)
        assert list(df.columns) == _returned(read_query(detector).text), df.columns
        return df


@pytest.fixture(scope="module")
def hand_ladybug(tmp_path_factory):
    from ftraceipc.graph.ladybug import LadybugGraph

    with LadybugGraph.open(tmp_path_factory.mktemp("hand") / "graph.lbug") as g:
        g.load(hand_model())
        yield HandRunner("ladybug", g)


@pytest.fixture(scope="module")
def hand_neo4j(neo):
    neo.load(hand_model())
    return HandRunner("neo4j", neo.graph)


@pytest.fixture(params=["ladybug", "neo4j"])
def hand(request):
    return request.getfixturevalue(f"hand_{request.param}")


def test_hand_thundering_herd_tie_and_small_wakees(hand):
    row = only_row(hand.run_file("thundering_herd"))
    assert ints(row["tasks"])[0] == 1 and sorted(ints(row["wakees"])) == [2, 3, 4]  # 5: only 2 wakeups
    assert list(row["resources"]) == ["pipe:10"] and int(row["n_wakees"]) == 3
    assert int(row["count"]) == 26 and int(row["wake_to_run_ns"]) == 450
    assert int(row["top_wakeups"]) == 10 and int(row["asleep_ns"]) == 450 - 300  # tie 2/3: the larger sum
    assert int(row["writes"]) == 10 and float(row["wakeups_per_write"]) == pytest.approx(2.6)
    assert sorted(ints(only_row(hand.run_file("thundering_herd", min_wakeups=2))["wakees"])) == [2, 3, 4, 5]


def test_hand_full_buffer_stall_without_drainer(hand):
    row = only_row(hand.run_file("full_buffer_stall"))  # 7 sleeps in read, 2 in poll: not writers
    assert ints(row["tasks"]) == [6] and list(row["drainers"]) == []  # its own wakeups are no drain
    assert int(row["drain_wakeups"]) == 0 and int(row["drain_wake_to_run_ns"]) == 0
    assert int(row["count"]) == 12 and int(row["asleep_ns"]) == 5_000_000
    assert hand.run_file("wake_then_block").empty  # woken (by itself) via the very pipe it blocks on


def test_hand_chatty_pingpong_parallel_edges(hand):
    row = only_row(hand.run_file("chatty_pingpong"))
    assert ints(row["tasks"]) == [8, 9] and sorted(row["resources"]) == ["unix:20", "unix:21", "unix:22", "unix:23"]
    assert int(row["messages_ab"]) == 300 and int(row["messages_ba"]) == 300 and int(row["count"]) == 600
    assert float(row["bytes_per_message_ab"]) == 16.0 and float(row["bytes_per_message_ba"]) == 16.0
    assert int(row["wakeups_ab"]) == 210 and int(row["wakeups_ba"]) == 120  # not the pipe:12 wakeups
    assert int(row["asleep_ns"]) == 1500 + 2000
    assert hand.run_file("chatty_pingpong", max_bytes=15).empty
    assert hand.run_file("chatty_pingpong", min_wakeups=121).empty


def test_hand_wait_chain_follows_main_waits_to_the_end(hand):
    df = hand.run_file("wait_chain")
    got = [(ints(r["tasks"]), list(r["resources"]), int(r["count"]), int(r["asleep_ns"]), int(r["hops"]))
           for _, r in df.iterrows()]
    assert got == [([43, 40, 41, 42], ["pipe:54", "pipe:51", "pipe:52"], 10, 9_000_000, 3),  # into the 3-cycle
                   ([20, 21, 22, 23], ["pipe:31", "pipe:32", "pipe:33"], 10, 5_000_000, 3),  # not via 24
                   ([30, 31, 32], ["pipe:41", "pipe:42"], 20, 2_000_000, 2)]  # stops at the 2-cycle
    assert ints(df.iloc[1]["hop_ns"]) == [5_000_000, 4_000_000, 3_000_000]
    assert ints(df.iloc[1]["hop_episodes"]) == [10, 10, 10] and list(df.iloc[1]["comms"]) == ["t20", "t21", "t22", "t23"]
    # 50->51 is one hop; 61->62 has 3 sleeps: both below the defaults
    one_hop = hand.run_file("wait_chain", min_hops=1)
    assert [50, 51] in [ints(t) for t in one_hop["tasks"]]
    low = hand.run_file("wait_chain", min_episodes=3)
    assert [60, 61, 62] in [ints(t) for t in low["tasks"]]
    assert hand.run_file("wait_chain", min_ns=9_000_001).empty


def test_hand_wait_cycle_reports_each_cycle_once(hand):
    row = only_row(hand.run_file("wait_cycle"))
    assert ints(row["tasks"]) == [40, 41, 42] and list(row["resources"]) == ["pipe:51", "pipe:52", "pipe:53"]
    assert int(row["count"]) == 80 and int(row["asleep_ns"]) == 3_000_000 and int(row["length"]) == 3
    assert ints(row["hop_episodes"]) == [100, 80, 90] and list(row["comms"]) == ["t40", "t41", "t42"]
    two = hand.run_file("wait_cycle", min_length=2)
    assert sorted(ints(t) for t in two["tasks"]) == [[31, 32], [40, 41, 42]]
    r2 = two[[ints(t) == [31, 32] for t in two["tasks"]]].iloc[0]
    assert int(r2["asleep_ns"]) == 3_500_000 and int(r2["count"]) == 20
    assert hand.run_file("wait_cycle", min_episodes=81).empty  # one hop below: no cycle


def test_hand_cross_cpu_wakeup_sums_the_pair_through_ipc(hand):
    row = only_row(hand.run_file("cross_cpu_wakeup"))
    assert ints(row["tasks"]) == [8, 9] and sorted(row["resources"]) == ["pipe:12", "unix:21", "unix:23"]
    assert int(row["count"]) == 239 and int(row["wakeups"]) == 309 and int(row["percent"]) == 77
    assert int(row["asleep_ns"]) == (1000 + 500 + 99999) * 239 // 309
    assert hand.run_file("cross_cpu_wakeup", min_percent=78).empty
    assert hand.run_file("cross_cpu_wakeup", min_cross=240).empty


def test_hand_wakeup_latency_needs_a_long_mean(hand):
    row = only_row(hand.run_file("wakeup_latency"))
    assert ints(row["tasks"]) == [4, 5] and list(row["resources"]) == ["pipe:12"]
    assert int(row["count"]) == 20 and int(row["asleep_ns"]) == 40_000_000
    assert int(row["mean_ns"]) == 2_000_000 and int(row["max_ns"]) == 5_000_000
    assert hand.run_file("wakeup_latency", min_mean_ns=2_000_001).empty
    low = hand.run_file("wakeup_latency", min_mean_ns=1000, min_wakeups=1)  # + 9 via pipe:12 (1 us)
    assert [(ints(r["tasks"]), int(r["mean_ns"])) for _, r in low.iterrows()] == [([4, 5], 2_000_000), ([9, 8], 99999 // 99)]


def test_run_detectors_ranks_and_explains_every_hand_finding(hand):
    from ftraceipc.detect import run_detectors

    cid = "hand" if hand.backend == "neo4j" else ""
    found = run_detectors(hand.graph, capture_id=cid, browser_capture_id="hand")
    assert sorted(f.pattern for f in found) == sorted(
        ["thundering_herd", "full_buffer_stall", "chatty_pingpong", "wait_chain", "wait_chain", "wait_chain",
         "wait_cycle", "cross_cpu_wakeup", "wakeup_latency"])
    assert [f.rank for f in found] == list(range(1, len(found) + 1))
    assert [f.asleep_ns for f in found] == sorted((f.asleep_ns for f in found), reverse=True)
    top = found[0]  # wakeup_latency: 40 ms
    assert (top.pattern, top.tasks, top.resources, top.count, top.asleep_ns) == (
        "wakeup_latency", [4, 5], ["pipe:12"], 20, 40_000_000)
    assert "t4[4]" in top.explanation and "2.0 ms on average" in top.explanation
    chain = next(f for f in found if f.pattern == "wait_chain" and f.tasks[0] == 43)
    assert chain.explanation.startswith("t43[43] -> t40[40] (via pipe:54)")
    assert ':param cid => "hand"' in chain.cypher and chain.details["hops"] == 3
    only = run_detectors(hand.graph, only=["wait_cycle"], capture_id=cid)
    assert [f.tasks for f in only] == [[40, 41, 42]]



# scoping before the row limit --------------------------------------------------------------------------
CROWD = 60  # stalled writers elsewhere on the machine, each costlier than the command's own stall


def crowded_model() -> ipc.Model:
    """60 writers (tids 1000..1059) stalling on their own full pipes for 10..69 ms each, and the traced
    command's writer 7 (its reader 8) stalling 2 ms on pipe:7: the cheapest full_buffer_stall of all,
    woken by its reader each time."""
    m = ipc.Model(capture="crowd.ftipc", capture_id="crowd", meta={})
    crowd = list(range(1000, 1000 + CROWD))
    tids = np.array([7, 8] + crowd, dtype=np.int64)
    m.tasks = pd.DataFrame({"tid": tids, "pid": tids, "comm": [f"c{t}" for t in tids],
                            "comms": [[f"c{t}"] for t in tids], "ppid": 0, "first_ts": 1, "last_ts": 2,
                            "tracer": False}, columns=ipc.TASK_COLUMNS)
    rids = ["pipe:7"] + [f"pipe:{t}" for t in crowd]
    m.resources = pd.DataFrame({"rid": rids, "kind": "pipe", "inode": [int(r.split(":")[1]) for r in rids],
                                "path": None, "peer": None, "evidence": [["pipe2"]] * len(rids)},
                               columns=ipc.RESOURCE_COLUMNS)
    m.io = pd.DataFrame(columns=ipc.IO_COLUMNS)
    m.blocked = pd.DataFrame({"tid": [7] + crowd, "rid": rids, "episodes": 20,
                              "blocked_ns": [2_000_000] + [10_000_000 + 1_000_000 * i for i in range(CROWD)],
                              "max_ns": 1_000_000, "ops": [["write"]] * len(rids)}, columns=ipc.BLOCKED_COLUMNS)
    m.wakes = pd.DataFrame([(8, 7, "pipe:7", 20, 1000, 100, 0)], columns=ipc.WAKES_COLUMNS)
    m.flows = pd.DataFrame(columns=ipc.FLOW_COLUMNS)
    m.waits = pd.DataFrame(columns=ipc.WAITS_COLUMNS)
    return m


@pytest.fixture(params=["ladybug", "neo4j"])
def crowded(request, tmp_path):
    from ftraceipc.graph.ladybug import LadybugGraph

    if request.param == "neo4j":
        neo = request.getfixturevalue("neo")
        neo.load(crowded_model())
        yield neo.graph, "crowd"
        return
    with LadybugGraph.open(tmp_path / "graph.lbug") as g:
        g.load(crowded_model())
        yield g, ""


def test_the_row_limit_counts_only_the_rows_in_scope(crowded):
    """With more stalls elsewhere than $limit, the command's own (the cheapest) still comes out: the
    scope ($tids) is applied inside the query, before LIMIT."""
    g, cid = crowded
    whole = g.run_file("full_buffer_stall", capture_id=cid, limit=CROWD)
    assert len(whole) == CROWD and 7 not in {int(t[0]) for t in whole["tasks"]}  # cut away without scope
    by_writer = g.run_file("full_buffer_stall", capture_id=cid, limit=5, tids=[7])
    assert [ints(t) for t in by_writer["tasks"]] == [[7, 8]] and int(by_writer["asleep_ns"].iloc[0]) == 2_000_000
    by_drainer = g.run_file("full_buffer_stall", capture_id=cid, limit=5, tids=[8])  # any task of the row
    assert [ints(t) for t in by_drainer["tasks"]] == [[7, 8]]
    assert len(g.run_file("full_buffer_stall", capture_id=cid, limit=5, tids=[])) == 5  # []: every task


def test_run_detectors_keeps_the_commands_finding_behind_a_crowd(crowded):
    from ftraceipc.detect import run_detectors

    g, cid = crowded
    params = {d: {"limit": 10} for d in REGISTRY}
    found = run_detectors(g, capture_id=cid, tids={7, 8}, params=params)
    assert [(f.pattern, f.tasks, f.asleep_ns, f.rank) for f in found] == [("full_buffer_stall", [7, 8], 2_000_000, 1)]
    assert len(run_detectors(g, capture_id=cid, params=params)) == 10  # the whole machine: the crowd's top 10


def test_every_detector_keeps_exactly_the_rows_naming_a_task_in_scope(hand):
    """$tids keeps a row when any of its tasks is in scope (the head, a drainer, a wakee...), on both
    backends and in both dialects; a tid nobody has gives no row."""
    low = {"wait_cycle": {"min_length": 2}, "wakeup_latency": {"min_mean_ns": 1000, "min_wakeups": 1}}
    for d in DETECTORS:
        every = [ints(ts) for ts in hand.run_file(d, **low.get(d, {}))["tasks"]]
        for ts in every:
            for tid in (ts[0], ts[-1]):
                got = [ints(x) for x in hand.run_file(d, tids=[tid], **low.get(d, {}))["tasks"]]
                assert got == [x for x in every if tid in x], (d, tid)
        assert hand.run_file(d, tids=[987654], **low.get(d, {})).empty, d


def test_long_task_lists_are_cut_in_the_text_and_complete_in_json(tmp_path):
    """One waker waking 700 pollers: the explanation and analyze's text name a few and count the rest;
    the finding's JSON keeps every tid."""
    import io

    from ftraceipc.detect import run_detectors
    from ftraceipc.graph.ladybug import LadybugGraph
    from ftraceipc.detect import Analysis
    from ftraceipc.report.findings import write_json, write_text

    n = 700
    m = ipc.Model(capture="herd700.ftipc", capture_id="herd700", meta={})
    tids = np.arange(1, n + 2, dtype=np.int64)
    m.tasks = pd.DataFrame({"tid": tids, "pid": tids, "comm": [f"w{t}" for t in tids],
                            "comms": [[f"w{t}"] for t in tids], "ppid": 0, "first_ts": 1, "last_ts": 2,
                            "tracer": False}, columns=ipc.TASK_COLUMNS)
    m.resources = pd.DataFrame({"rid": ["pipe:5"], "kind": ["pipe"], "inode": [5], "path": None, "peer": None,
                                "evidence": [["pipe2"]]}, columns=ipc.RESOURCE_COLUMNS)
    m.io = m.blocked = None
    m.io = pd.DataFrame(columns=ipc.IO_COLUMNS)
    m.blocked = pd.DataFrame(columns=ipc.BLOCKED_COLUMNS)
    m.wakes = pd.DataFrame([(1, int(w), "pipe:5", 10, 1000 + int(w), 2000, 0) for w in tids[1:]],
                           columns=ipc.WAKES_COLUMNS)
    m.flows = pd.DataFrame(columns=ipc.FLOW_COLUMNS)
    m.waits = pd.DataFrame(columns=ipc.WAITS_COLUMNS)
    with LadybugGraph.open(tmp_path / "graph.lbug") as g:
        g.load(m)
        found = run_detectors(g, only=["thundering_herd"])
    (f,) = found
    assert len(f.tasks) == n + 1 and len(f.details["wakees"]) == n
    assert f", …and {n - 6} more" in f.explanation and f.explanation.count("[") == 1 + 6  # waker + 6 wakees
    a = Analysis(capture="herd700.ftipc", capture_id="herd700", backend="embedded graph.lbug",
                 detectors=["thundering_herd"], findings=found, scope="every task of the capture")
    text, js = io.StringIO(), io.StringIO()
    write_text(a, text)
    write_json(a, js)
    assert f"…and {n + 1 - 12} more" in text.getvalue() and str(tids[-1]) + "," not in text.getvalue()
    assert max(len(ln) for ln in text.getvalue().splitlines()) < 200
    import json

    doc = json.loads(js.getvalue())
    fj = (doc["findings"] if isinstance(doc, dict) else doc)[0]
    assert sorted(fj["tasks"]) == [int(x) for x in tids] and len(fj["details"]["wakees"]) == n

# full_buffer_stall ---------------------------------------------------------------------------------------
@needs_tracefs
def test_full_buffer_stall_fires_on_the_writer_of_the_full_pipe(sample):
    s = sample("full_buffer")
    w, r = s.roles["writer"], s.roles["reader"]
    pipe = s.truth["resources"][0]["rid"]
    row = only_row(s.detect("full_buffer_stall"))
    b = s.model.blocked[(s.model.blocked["tid"] == w) & (s.model.blocked["rid"] == pipe)].iloc[0]
    wk = s.model.wakes[(s.model.wakes["wakee"] == w) & (s.model.wakes["via"] == pipe)
                       & (s.model.wakes["waker"] != w)]
    assert int(row["writer"]) == w and ints(row["tasks"]) == [w, r]
    assert list(row["resources"]) == [pipe] and row["rid"] == pipe and row["kind"] == "pipe"
    assert ints(row["drainers"]) == [r]
    assert int(row["count"]) == int(b["episodes"]) >= 10
    assert int(row["asleep_ns"]) == int(b["blocked_ns"]) > 0
    assert int(row["drain_wakeups"]) == int(wk["wakeups"].sum()) > 0
    assert int(row["drain_wake_to_run_ns"]) == int(wk["wake_to_run_ns"].sum())
    assert set(row["ops"]) & WRITE_OPS
    # the thresholds are parameters
    assert s.detect("full_buffer_stall", min_episodes=int(b["episodes"]) + 1).empty
    assert s.detect("full_buffer_stall", min_ns=int(b["blocked_ns"]) + 1).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["pipeline", "herd"])
def test_full_buffer_stall_is_silent_on(sample, control):
    df = sample(control).detect("full_buffer_stall")
    assert df.empty, df.to_string()


# thundering_herd -----------------------------------------------------------------------------------------
@needs_tracefs
def test_thundering_herd_fires_on_the_writer_and_its_pollers(sample):
    s = sample("herd")
    writer = s.roles["writer"]
    waiters = sorted(tid for role, tid in s.roles.items() if role.startswith("waiter-"))
    pipe = s.truth["resources"][0]["rid"]
    row = only_row(s.detect("thundering_herd"))
    assert int(row["waker"]) == writer and ints(row["tasks"])[0] == writer
    assert sorted(ints(row["tasks"])[1:]) == sorted(ints(row["wakees"])) == waiters
    assert list(row["resources"]) == [pipe] and row["rid"] == pipe
    assert int(row["n_wakees"]) == len(waiters)
    wk = s.model.wakes[(s.model.wakes["waker"] == writer) & (s.model.wakes["via"] == pipe)
                       & s.model.wakes["wakee"].isin(waiters)]
    assert int(row["count"]) == int(wk["wakeups"].sum()) >= 2 * s.truth["args"]["rounds"]
    assert int(row["wake_to_run_ns"]) == int(wk["wake_to_run_ns"].sum())
    # lost: all but the busiest wakee (of a tie, the one with the largest wake-to-run sum)
    top = wk[wk["wakeups"] == wk["wakeups"].max()]["wake_to_run_ns"].max()
    assert int(row["asleep_ns"]) == int(wk["wake_to_run_ns"].sum()) - int(top) > 0
    assert int(row["top_wakeups"]) == int(wk["wakeups"].max())
    assert int(row["writes"]) == s.truth["args"]["rounds"]
    assert float(row["wakeups_per_write"]) >= 2  # one write, several wakees
    assert s.detect("thundering_herd", min_wakees=len(waiters) + 1).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["pipeline", "full_buffer"])
def test_thundering_herd_is_silent_on(sample, control):
    df = sample(control).detect("thundering_herd")
    assert df.empty, df.to_string()


# wake_then_block -----------------------------------------------------------------------------------------
@needs_tracefs
def test_wake_then_block_fires_on_the_middle_stage(sample):
    s = sample("wake_then_block")
    gen, mid, reader = s.roles["gen"], s.roles["mid"], s.roles["reader"]
    a = next(e["rid"] for e in s.truth["io"] if e["tid"] == gen)
    b = next(e["rid"] for e in s.truth["io"] if e["tid"] == mid and e["op"] == "write")
    row = only_row(s.detect("wake_then_block"))
    assert int(row["tid"]) == mid and ints(row["tasks"]) == [mid, gen]
    assert list(row["resources"]) == [a, b]
    assert row["woken_via"] == a and row["blocked_on"] == b
    assert ints(row["wakers"]) == [gen] and ints(row["drainers"]) == [reader]
    bl = s.model.blocked[(s.model.blocked["tid"] == mid) & (s.model.blocked["rid"] == b)].iloc[0]
    assert int(row["count"]) == int(bl["episodes"]) >= 5
    assert int(row["asleep_ns"]) == int(bl["blocked_ns"]) > 0
    wk = s.model.wakes[(s.model.wakes["wakee"] == mid) & (s.model.wakes["via"] == a)
                       & (s.model.wakes["waker"] != mid)]
    assert int(row["wakeups"]) == int(wk["wakeups"].sum()) >= 5
    assert set(row["ops"]) & WRITE_OPS
    assert s.detect("wake_then_block", min_wakeups=int(wk["wakeups"].sum()) + 1).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["pipeline", "full_buffer"])
def test_wake_then_block_is_silent_on(sample, control):
    # full_buffer's writer is woken through the pipe it blocks on: one resource, not two
    df = sample(control).detect("wake_then_block")
    assert df.empty, df.to_string()


# chatty_pingpong -----------------------------------------------------------------------------------------
@needs_tracefs
def test_chatty_pingpong_fires_on_the_two_threads(sample):
    s = sample("socketpair_pingpong")
    ping, pong = s.roles["ping"], s.roles["pong"]
    ends = sorted(r["rid"] for r in s.truth["resources"])
    row = only_row(s.detect("chatty_pingpong"))
    assert sorted(ints(row["tasks"])) == sorted([ping, pong])
    a, b = int(row["a"]), int(row["b"])
    assert ints(row["tasks"]) == [a, b] and a < b
    assert sorted(row["resources"]) == ends
    sent = {e["tid"]: e["calls"] for e in s.truth["io"] if e["op"] in ("write", "send")}
    assert int(row["messages_ab"]) == sent[a] and int(row["messages_ba"]) == sent[b]
    assert int(row["count"]) == sent[a] + sent[b] == 2 * s.truth["args"]["rounds"]
    assert float(row["bytes_per_message_ab"]) == float(row["bytes_per_message_ba"]) == 16.0
    wk = s.model.wakes[s.model.wakes["via"].isin(ends)]
    ab = wk[(wk["waker"] == a) & (wk["wakee"] == b)]
    ba = wk[(wk["waker"] == b) & (wk["wakee"] == a)]
    assert int(row["wakeups_ab"]) == int(ab["wakeups"].sum()) > 0
    assert int(row["wakeups_ba"]) == int(ba["wakeups"].sum()) > 0
    assert int(row["asleep_ns"]) == int(ab["wake_to_run_ns"].sum()) + int(ba["wake_to_run_ns"].sum()) > 0
    assert s.detect("chatty_pingpong", max_bytes=15).empty
    assert s.detect("chatty_pingpong", min_messages=sent[a] + 1).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["pipeline", "fanin"])
def test_chatty_pingpong_is_silent_on(sample, control):
    df = sample(control).detect("chatty_pingpong")
    assert df.empty, df.to_string()


# wait_chain ----------------------------------------------------------------------------------------------
def _rid_between(s: Sample, writer: str, reader: str) -> str:
    """The resource the truth says ``writer`` wrote and ``reader`` read."""
    w = {e["rid"] for e in s.truth["io"] if e["tid"] == s.roles[writer] and e["op"] in ("write", "send")}
    r = {e["rid"] for e in s.truth["io"] if e["tid"] == s.roles[reader] and e["op"] in ("read", "recv")}
    (rid,) = w & r
    return rid


@needs_tracefs
def test_wait_chain_fires_on_the_relay_from_its_last_stage(sample):
    s = sample("relay")
    chain = s.truth["planted"]["chain"]  # waiter -> waker: D, C, B, A
    row = only_row(s.detect("wait_chain"))
    assert ints(row["tasks"]) == [s.roles[r] for r in chain]
    assert list(row["resources"]) == [_rid_between(s, b, a) for a, b in zip(chain, chain[1:])]
    assert int(row["hops"]) == len(chain) - 1
    w = s.model.waits
    hops = [w[(w["waiter"] == s.roles[a]) & (w["waker"] == s.roles[b])].iloc[0] for a, b in zip(chain, chain[1:])]
    assert all(bool(h["top"]) for h in hops)
    assert ints(row["hop_episodes"]) == [int(h["episodes"]) for h in hops]
    assert ints(row["hop_ns"]) == [int(h["blocked_ns"]) for h in hops]
    assert int(row["count"]) == int(hops[0]["episodes"]) >= s.truth["args"]["rounds"] // 2
    assert int(row["asleep_ns"]) == int(hops[0]["blocked_ns"]) > 0
    assert s.detect("wait_chain", min_hops=len(chain)).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["socketpair_pingpong", "fanin"])
def test_wait_chain_is_silent_on(sample, control):
    df = sample(control).detect("wait_chain")
    assert df.empty, df.to_string()


# wait_cycle ----------------------------------------------------------------------------------------------
@needs_tracefs
def test_wait_cycle_fires_on_the_ring(sample):
    s = sample("ring")
    cyc = [s.roles[r] for r in s.truth["planted"]["cycle"]]  # waiter -> waker
    i = cyc.index(min(cyc))
    cyc = cyc[i:] + cyc[:i]
    row = only_row(s.detect("wait_cycle"))
    assert ints(row["tasks"]) == cyc and int(row["length"]) == 3
    w = s.model.waits
    hops = [w[(w["waiter"] == a) & (w["waker"] == b)].iloc[0] for a, b in zip(cyc, cyc[1:] + cyc[:1])]
    assert list(row["resources"]) == [h["via"] for h in hops]
    assert int(row["count"]) == min(int(h["episodes"]) for h in hops) >= s.truth["args"]["laps"] // 2
    assert int(row["asleep_ns"]) == sum(int(h["blocked_ns"]) for h in hops) > 0
    assert s.detect("wait_cycle", min_length=4).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["pipeline", "relay"])
def test_wait_cycle_is_silent_on(sample, control):
    df = sample(control).detect("wait_cycle")
    assert df.empty, df.to_string()


# cross_cpu_wakeup ----------------------------------------------------------------------------------------
@needs_tracefs
def test_cross_cpu_wakeup_fires_on_the_pinned_pair(sample):
    s = sample("xcpu")
    ping, pong = s.roles["ping"], s.roles["pong"]
    df = s.detect("cross_cpu_wakeup")
    assert sorted(ints(t) for t in df["tasks"]) == sorted([[ping, pong], [pong, ping]]), df.to_string()
    wk = s.model.wakes[s.model.wakes["via"].notna()]
    for _, row in df.iterrows():
        e = wk[(wk["waker"] == int(row["waker"])) & (wk["wakee"] == int(row["wakee"]))]
        assert int(row["count"]) == int(e["cross_cpu"].sum()) and int(row["wakeups"]) == int(e["wakeups"].sum())
        assert int(row["percent"]) >= 90
        assert int(row["asleep_ns"]) == int(e["wake_to_run_ns"].sum()) * int(row["count"]) // int(row["wakeups"])
        assert set(row["resources"]) <= {r["rid"] for r in s.truth["resources"]}


@needs_tracefs
def test_cross_cpu_wakeup_is_silent_when_the_pair_shares_a_cpu(sample):
    df = sample("xcpu", "--same-cpu").detect("cross_cpu_wakeup")
    assert df.empty, df.to_string()


# wakeup_latency ------------------------------------------------------------------------------------------
@needs_tracefs
def test_wakeup_latency_fires_on_the_wakee_behind_the_hog(sample):
    s = sample("late_wakeup")
    wakee, waker = s.roles["wakee"], s.roles["waker"]
    pipe = _rid_between(s, "waker", "wakee")
    row = only_row(s.detect("wakeup_latency"))
    assert ints(row["tasks"]) == [wakee, waker] and list(row["resources"]) == [pipe]
    e = s.model.wakes[(s.model.wakes["wakee"] == wakee) & (s.model.wakes["via"] == pipe)
                      & (s.model.wakes["waker"] != wakee)]
    assert int(row["count"]) == int(e["wakeups"].sum()) >= 10
    assert int(row["asleep_ns"]) == int(e["wake_to_run_ns"].sum())
    assert int(row["mean_ns"]) == int(row["asleep_ns"]) // int(row["count"]) >= 500_000
    assert int(row["max_ns"]) == int(e["max_wake_to_run_ns"].max())


@needs_tracefs
def test_wakeup_latency_is_silent_without_the_hog(sample):
    df = sample("late_wakeup", "--no-hog").detect("wakeup_latency")
    assert df.empty, df.to_string()


# both backends -------------------------------------------------------------------------------------------
SAMPLE_RUNS = [("full_buffer",), ("herd",), ("wake_then_block",), ("socketpair_pingpong",), ("pipeline",),
               ("fanin",), ("relay",), ("ring",), ("xcpu",), ("xcpu", "--same-cpu"), ("late_wakeup",),
               ("late_wakeup", "--no-hog")]


@needs_tracefs
@pytest.mark.parametrize("run", SAMPLE_RUNS, ids=lambda r: "-".join(a.lstrip("-") for a in r))
def test_every_detector_gives_the_same_rows_on_neo4j(sample, neo, run):
    """The whole capture's rows (not only the sample's), Neo4j scoped to the capture by $capture_id
    while the database holds the other samples' captures too."""
    s = sample(*run)
    neo.load(s.model)
    fired = 0
    for d in DETECTORS:
        a = normal_rows(d, s.graph.run_file(d))
        b = normal_rows(d, neo.run_file(d, s.model.capture_id))
        assert a == b, d
        fired += len(a)
    if "planted" in s.truth:
        assert fired, "the planted pattern did not fire"
