"""The exploration queries blocked_by_resource, path_between and neighbourhood (cypher/, issue #4) on
LadybugDB and on a real Neo4j 5.26, against golden results computed with pandas from the model.

The pipeline sample (gen | upper | grep | count) is captured once (system-wide, so the graph holds
every task that ran meanwhile), modelled and loaded into a Ladybug database and into the session's
Neo4j (scoped by ``$capture_id``: the database may hold other captures). Each query must give the
same rows on both backends, and the rows the model's own tables give. A small hand-built model adds
what the sample does not show: two shortest routes of the same length, parallel edges, a WAKES with a
null via, a task's edges to itself.
"""

from __future__ import annotations

import random
import sys
from collections import defaultdict, deque
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from components import need, requires  # noqa: E402
from test_detectors import _cell, _header, _returned, normal_rows  # noqa: E402
from truth_check import capture_sample  # noqa: E402

from ftraceipc.graph import parameters_used, query_path, read_query  # noqa: E402
from ftraceipc.model import ipc  # noqa: E402
from ftraceipc.model.build import build_model  # noqa: E402

needs_tracefs = requires("tracefs")

QUERIES = ["blocked_by_resource", "path_between", "neighbourhood"]
MAX_HOPS = 8
TYPE_RANK = {"FLOWS": "1", "WAKES": "2", "WAITS_FOR": "3"}  # path_between's preference


# headers --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", QUERIES)
@pytest.mark.parametrize("dialect", [None, "ladybug"])
def test_header_gives_a_default_for_every_parameter(name, dialect):
    q = read_query(name, dialect)
    assert parameters_used(q.text) == set(q.defaults), q.defaults
    assert q.defaults["capture_id"] == ""
    assert all(isinstance(v, int) and not isinstance(v, bool) for k, v in q.defaults.items() if k != "capture_id")
    assert _returned(q.text), "no Returns section"


def test_path_between_variant_has_the_same_header():
    assert query_path("path_between", "ladybug") != query_path("path_between")
    main, variant = read_query("path_between"), read_query("path_between", "ladybug")
    assert main.defaults == variant.defaults
    assert _returned(main.text) == _returned(variant.text)
    cut = lambda t: _header(t)[:next(i for i, ln in enumerate(_header(t)) if ln.startswith("// This is the"))]
    assert cut(main.text) == cut(variant.text)


# helpers --------------------------------------------------------------------------------------------------
class Both:
    """One model on both backends: ``run(name, **params)`` gives (Ladybug rows, Neo4j rows), each
    with exactly the header's columns."""

    def __init__(self, model: ipc.Model, ladybug, neo4j):
        self.model, self.lb, self.neo = model, ladybug, neo4j

    def run(self, name: str, **params) -> tuple[pd.DataFrame, pd.DataFrame]:
        a = self.lb.run_file(name, **params)
        b = self.neo.run_file(name, capture_id=self.model.capture_id, **params)
        cols = _returned(read_query(name).text)
        assert list(a.columns) == cols and list(b.columns) == cols, (list(a.columns), list(b.columns))
        return a, b

    def same(self, name: str, ordered: bool = False, **params) -> pd.DataFrame:
        """The Ladybug rows, after checking that Neo4j gives the same ones (``ordered``: in the same
        order, lists compared in order)."""
        a, b = self.run(name, **params)
        if ordered:  # lists compared in order only where their order means something
            keep = name == "path_between"
            assert rows_in_order(a, keep) == rows_in_order(b, keep), (a.to_string(), b.to_string())
        else:
            assert normal_rows(name, a) == normal_rows(name, b), (a.to_string(), b.to_string())
        return a


def rows_in_order(df: pd.DataFrame, ordered_lists: bool) -> list[tuple]:
    return [tuple(_cell(v, ordered_lists) for v in r) for r in df.itertuples(index=False)]


def plain(v):
    """A cell as a plain value: None for a null (NaN from pandas), ints as int."""
    return _cell(v, False)


def _load_both(model: ipc.Model, tmp: Path, neo4j_server):
    from ftraceipc.graph.ladybug import LadybugGraph
    from ftraceipc.graph.neo4j import Neo4jGraph

    lb = LadybugGraph.open(tmp / "graph.lbug")
    lb.load(model)
    neo = Neo4jGraph.connect(neo4j_server.uri, *neo4j_server.auth)
    neo.load(model)
    return lb, neo


def _close_both(both: Both) -> None:
    try:
        both.neo.delete_capture(both.model.capture_id)
    finally:
        both.neo.close()
        both.lb.close()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, neo4j_server):
    """The pipeline sample captured once, on both backends: (Both, truth roles)."""
    need("tracefs")
    tmp = tmp_path_factory.mktemp("explore-pipeline")
    cap, _meta, truth = capture_sample(tmp, "pipeline")
    model = build_model(cap)
    both = Both(model, *_load_both(model, tmp, neo4j_server))
    yield both, {t["role"]: t["tid"] for t in truth["tasks"]}
    _close_both(both)


def task_edges(m: ipc.Model) -> pd.DataFrame:
    """Every task -> task edge of the model: type, src, dst, via."""
    parts = [m.flows.rename(columns={"writer": "src", "reader": "dst"}).assign(type="FLOWS"),
             m.wakes.rename(columns={"waker": "src", "wakee": "dst"}).assign(type="WAKES"),
             m.waits.rename(columns={"waiter": "src", "waker": "dst"}).assign(type="WAITS_FOR")]
    df = pd.concat([p[["type", "src", "dst", "via"]] for p in parts], ignore_index=True)
    return df.astype({"src": np.int64, "dst": np.int64})


def bfs_hops(edges: pd.DataFrame, src: int, dst: int) -> int | None:
    """Fewest task -> task edges from src to dst (at most MAX_HOPS), None when unreachable."""
    adj = defaultdict(set)
    for a, b in zip(edges["src"].tolist(), edges["dst"].tolist()):
        adj[a].add(b)
    dist = {src: 0}
    todo = deque([src])
    while todo:
        x = todo.popleft()
        if dist[x] == MAX_HOPS:
            continue
        for y in adj[x]:
            if y not in dist:
                dist[y] = dist[x] + 1
                todo.append(y)
    return dist.get(dst) if dst != src else None


def check_path_rows(edges: pd.DataFrame, df: pd.DataFrame, src: int, dst: int) -> None:
    """Every row is a shortest sequence of tasks from src to dst whose hops are real edges, showing the
    preferred edge of each hop, with the right number of edge sequences."""
    hops = bfs_hops(edges, src, dst)
    if hops is None:
        assert df.empty, df.to_string()
        return
    assert len(df), f"no path {src} -> {dst} although the model has one of {hops} hops"
    seen = set()
    for _, r in df.iterrows():
        tids, types, vias = [int(t) for t in r["tids"]], list(r["types"]), [plain(v) for v in r["vias"]]
        assert int(r["hops"]) == hops == len(tids) - 1 == len(types) == len(vias)
        assert tids[0] == src and tids[-1] == dst and len(set(tids)) == len(tids)
        assert tuple(tids) not in seen
        seen.add(tuple(tids))
        n = 1
        for a, b, t, v in zip(tids, tids[1:], types, vias):
            hop = edges[(edges["src"] == a) & (edges["dst"] == b)]
            n *= len(hop)
            best = min(zip(hop["type"].map(TYPE_RANK), hop["via"].map(lambda x: "~" if plain(x) is None else x)))
            assert (TYPE_RANK[t], "~" if v is None else v) == best, (a, b, hop)
        assert int(r["paths"]) == n


def expected_neighbourhood(m: ipc.Model, tid: int) -> list[tuple]:
    """neighbourhood's rows for ``tid`` from the model's tables (as normal_rows gives them)."""
    rows = []
    for _, e in m.io[m.io["tid"] == tid].iterrows():
        rows.append((e["type"], "out", None, e["rid"], e["calls"], e["bytes"], None, e["rid"]))
    b = m.blocked[(m.blocked["tid"] == tid) & m.blocked["rid"].notna()]
    for _, e in b.iterrows():
        rows.append(("BLOCKED_ON", "out", None, e["rid"], e["episodes"], None, e["blocked_ns"], e["rid"]))
    spec = [("WAKES", m.wakes, "waker", "wakee", "wakeups", None, "wake_to_run_ns"),
            ("FLOWS", m.flows, "writer", "reader", "messages", "bytes", None),
            ("WAITS_FOR", m.waits, "waiter", "waker", "episodes", None, "blocked_ns")]
    for typ, df, src, dst, count, nbytes, ns in spec:
        for direction, me, other in (("out", src, dst), ("in", dst, src)):
            sel = df[df[me] == tid]
            if direction == "in":
                sel = sel[sel[other] != tid]  # a self edge is one 'out' row
            for _, e in sel.iterrows():
                rows.append((typ, direction, e[other], None, e[count], e[nbytes] if nbytes else None,
                             e[ns] if ns else None, e["via"]))
    cols = ["type", "direction", "other_tid", "other_rid", "count", "bytes", "ns", "via"]
    return normal_rows("neighbourhood", pd.DataFrame(rows, columns=cols))


def expected_blocked(m: ipc.Model) -> pd.DataFrame:
    b = m.blocked[m.blocked["rid"].notna()]
    g = b.groupby("rid").agg(blocked_ns=("blocked_ns", "sum"), episodes=("episodes", "sum"),
                             tasks=("tid", "nunique"), max_ns=("max_ns", "max"),
                             tids=("tid", lambda s: sorted(int(t) for t in s))).reset_index()
    return g.sort_values(["blocked_ns", "rid"], ascending=[False, True], kind="stable").reset_index(drop=True)


# the pipeline sample --------------------------------------------------------------------------------------
@needs_tracefs
def test_blocked_by_resource_is_the_groupby_of_blocked_on(pipeline):
    both, roles = pipeline
    m = both.model
    want = expected_blocked(m)
    got = both.same("blocked_by_resource", limit=len(want) + 10)
    assert list(got["rid"]) == list(want["rid"])  # also the order: blocked_ns descending, then rid
    for c in ("blocked_ns", "episodes", "tasks", "max_ns"):
        assert [int(x) for x in got[c]] == [int(x) for x in want[c]], c
    assert [sorted(int(t) for t in ts) for ts in got["tids"]] == list(want["tids"])
    res = m.resources.set_index("rid")
    for _, r in got.iterrows():
        if r["rid"] in res.index:
            assert r["kind"] == res.loc[r["rid"], "kind"]
            assert plain(r["path"]) == plain(res.loc[r["rid"], "path"])
    # the stages' pipes are there, each with the stage that slept on it (whether a stage ever found its
    # pipe empty or full depends on scheduling: the model says which did, and at least one always does)
    on_pipe = m.blocked[m.blocked["rid"].astype(str).str.startswith("pipe:")]
    sleepers = [r for r in ("upper", "grep", "count") if roles[r] in set(on_pipe["tid"].astype(int))]
    assert sleepers
    for reader in sleepers:
        rows = got[[roles[reader] in [int(t) for t in ts] for ts in got["tids"]]]
        assert "pipe" in set(rows["kind"]), reader
    top = both.same("blocked_by_resource", ordered=True, limit=3)
    assert list(top["rid"]) == list(want["rid"][:3])


@needs_tracefs
def test_neighbourhood_of_a_stage_lists_exactly_its_model_edges(pipeline):
    both, roles = pipeline
    m = both.model
    upper = roles["upper"]
    got = both.same("neighbourhood", tid=upper)
    assert normal_rows("neighbourhood", got) == expected_neighbourhood(m, upper)
    # what the pipeline says it must have: reads from gen's pipe, writes into grep's, FLOWS both ways
    kinds = {(r["type"], r["direction"]) for _, r in got.iterrows()}
    assert {("READS", "out"), ("WRITES", "out"), ("FLOWS", "in"), ("FLOWS", "out")} <= kinds
    flows = got[got["type"] == "FLOWS"]
    assert {int(t) for t in flows["other_tid"]} == {roles["gen"], roles["grep"]}
    for _, r in got.iterrows():
        to_task = r["type"] in ("WAKES", "FLOWS", "WAITS_FOR")
        assert (plain(r["other_tid"]) is None) == (not to_task) and (plain(r["other_rid"]) is None) == to_task


@needs_tracefs
@pytest.mark.parametrize("role", ["gen", "count", "main", "idle"])
def test_neighbourhood_of_other_tasks(pipeline, role):
    both, roles = pipeline
    tid = 0 if role == "idle" else roles[role]
    got = both.same("neighbourhood", tid=tid)
    assert normal_rows("neighbourhood", got) == expected_neighbourhood(both.model, tid)
    assert len(got) > 0 or role == "idle"  # tid 0 has edges only when an interrupt on an idle CPU woke a task


@needs_tracefs
def test_path_between_gen_and_count_goes_through_the_three_pipes(pipeline):
    both, roles = pipeline
    m = both.model
    edges = task_edges(m)
    gen, upper, grep, count = (roles[r] for r in ("gen", "upper", "grep", "count"))
    row_df = both.same("path_between", ordered=True, **{"from": gen, "to": count})
    f = m.flows
    pipes = [f[(f["writer"] == a) & (f["reader"] == b)]["via"].tolist() for a, b in
             [(gen, upper), (upper, grep), (grep, count)]]
    assert all(len(p) == 1 for p in pipes), pipes
    check_path_rows(edges, row_df, gen, count)
    # backwards: count waited on grep, which waited on upper, ... (or some other chain: as the model says)
    back = both.same("path_between", ordered=True, **{"from": count, "to": gen})
    check_path_rows(edges, back, count, gen)
    assert len(row_df) >= 1, row_df.to_string()
    row = row_df.iloc[0]
    if int(row["hops"]) < 3:
        # A shorter chain goes through a wakeup outside IPC, which path_between follows too: at the end
        # the stages create their truth files in one directory, and one may wake another from the
        # directory's lock (seen once in ~20 runs: gen woke grep from openat, grep slept in D state).
        # Without it, the chain is the three pipes.
        non_ipc = [(a, b) for a, b, v, t in zip(row["tids"], list(row["tids"])[1:], row["vias"], row["types"])
                   if t == "WAKES" and plain(v) is None]
        assert non_ipc, row_df.to_string()
        return
    assert len(row_df) == 1, row_df.to_string()
    assert int(row["hops"]) == 3 and [int(t) for t in row["tids"]] == [gen, upper, grep, count]
    assert list(row["types"]) == ["FLOWS"] * 3 and list(row["vias"]) == [p[0] for p in pipes]
    assert len(set(row["vias"])) == 3 and all(v.startswith("pipe:") for v in row["vias"])


@needs_tracefs
def test_path_between_gives_no_rows_without_a_path(pipeline):
    both, roles = pipeline
    edges = task_edges(both.model)
    assert 0 not in set(edges["dst"])  # nobody wakes, feeds or is waited on by the idle task
    assert bfs_hops(edges, roles["gen"], 0) is None
    a, _ = both.run("path_between", **{"from": roles["gen"], "to": 0})
    assert a.empty
    assert both.same("path_between", **{"from": roles["gen"], "to": 0}).empty
    assert both.same("path_between", **{"from": roles["gen"], "to": roles["gen"]}).empty  # not a cycle
    assert both.same("path_between", **{"from": roles["gen"], "to": 999_999_999}).empty  # no such task
    assert both.same("path_between").empty  # the defaults: 0 -> 0


@needs_tracefs
def test_path_between_agrees_with_a_breadth_first_search(pipeline):
    """Random pairs of the whole capture: same rows in the same order on both backends, and shortest."""
    both, roles = pipeline
    edges = task_edges(both.model)
    rng = random.Random(4)
    srcs = sorted(set(edges["src"]))
    tids = sorted(int(t) for t in both.model.tasks["tid"])
    pairs = [(roles[a], roles[b]) for a in roles for b in roles if a != b]
    pairs += [(rng.choice(srcs), rng.choice(tids)) for _ in range(30)]
    found = 0
    for src, dst in pairs:
        df = both.same("path_between", ordered=True, **{"from": src, "to": dst})
        check_path_rows(edges, df, src, dst)
        found += len(df) > 0
    assert found >= 6


# a hand-built model ---------------------------------------------------------------------------------------
def hand_model() -> ipc.Model:
    """101 reaches 104 in 2 hops by two routes: 101 -FLOWS/WAKES/WAKES(null via)-> 102 -WAITS_FOR-> 104
    and 101 -WAKES-> 103 -FLOWS/FLOWS-> 104 (two FLOWS through one pipe). 107 wakes 108 via a pipe and
    via nothing. 106 writes into its own socketpair (FLOWS to itself), wakes itself and sleeps on it.
    105 only points at 101."""
    m = ipc.Model(capture="explore-hand.ftipc", capture_id="explore-hand", meta={})
    tids = np.array([101, 102, 103, 104, 105, 106, 107, 108], dtype=np.int64)
    m.tasks = pd.DataFrame({"tid": tids, "pid": tids, "comm": [f"t{t}" for t in tids],
                            "comms": [[f"t{t}"] for t in tids], "ppid": 1, "first_ts": 1, "last_ts": 2,
                            "tracer": False}, columns=ipc.TASK_COLUMNS)
    rids = ["pipe:1", "pipe:2", "pipe:3", "pipe:4", "unix:7", "unix:8", "pipe:9", "fifo:5"]
    m.resources = pd.DataFrame({"rid": rids, "kind": ["pipe"] * 4 + ["unix_stream"] * 2 + ["pipe", "fifo"],
                                "inode": [int(r.split(":")[1]) for r in rids],
                                "path": [None] * 7 + ["/tmp/f"], "peer": [None] * 4 + ["unix:8", "unix:7"] + [None] * 2,
                                "evidence": [["pipe2"]] * 8}, columns=ipc.RESOURCE_COLUMNS)
    io = [("WRITES", 106, "unix:7", 5, 500), ("READS", 106, "unix:8", 4, 500), ("WRITES", 101, "pipe:1", 3, 30),
          ("READS", 102, "pipe:1", 3, 30), ("WRITES", 105, "fifo:5", 1, 1)]
    m.io = pd.DataFrame([(t, s, r, c, b, 1, 2, ["write" if t == "WRITES" else "read"]) for t, s, r, c, b in io],
                        columns=ipc.IO_COLUMNS)
    # (tid, rid, episodes, blocked_ns, max_ns, ops, read_episodes, read_ns, write_episodes, write_ns)
    m.blocked = pd.DataFrame([(106, "unix:8", 2, 700, 400, ["read"], 2, 700, 0, 0),
                              (102, "pipe:3", 4, 900, 300, ["read"], 4, 900, 0, 0),
                              (104, "pipe:3", 1, 900, 900, ["write"], 0, 0, 1, 900), (106, None, 1, 50, 50, [], 0, 0, 0, 0),
                              (108, "fifo:5", 3, 30, 10, ["read"], 3, 30, 0, 0)], columns=ipc.BLOCKED_COLUMNS)
    w = [(101, 102, "pipe:1", 3, 300), (101, 102, None, 1, 10), (101, 103, "pipe:2", 2, 200),
         (106, 106, None, 2, 20), (107, 108, None, 5, 50), (107, 108, "pipe:9", 1, 5), (105, 101, None, 1, 1)]
    m.wakes = pd.DataFrame(w, columns=["waker", "wakee", "via", "wakeups", "wake_to_run_ns"]).assign(
        max_wake_to_run_ns=1, cross_cpu=0)[ipc.WAKES_COLUMNS]
    m.flows = pd.DataFrame([(101, 102, "pipe:1", "pipe:1", 30, 3), (103, 104, "pipe:4", "pipe:4", 40, 4),
                            (103, 104, "pipe:4", "unix:9", 4, 1),  # a parallel FLOWS differing in read_rid only
                            (106, 106, "unix:7", "unix:8", 500, 5)], columns=ipc.FLOW_COLUMNS)
    m.waits = pd.DataFrame([(102, 104, "pipe:3", 4, 900, 300, True, 0, 4)], columns=ipc.WAITS_COLUMNS)
    return m


@pytest.fixture(scope="module")
def hand(tmp_path_factory, neo4j_server):
    model = hand_model()
    both = Both(model, *_load_both(model, tmp_path_factory.mktemp("explore-hand"), neo4j_server))
    yield both
    _close_both(both)


def test_hand_path_between_two_routes_in_preference_order(hand):
    df = hand.same("path_between", ordered=True, **{"from": 101, "to": 104})
    got = [([int(t) for t in r["tids"]], list(r["types"]), list(r["vias"]), int(r["paths"]), list(r["comms"]))
           for _, r in df.iterrows()]
    assert got == [([101, 102, 104], ["FLOWS", "WAITS_FOR"], ["pipe:1", "pipe:3"], 3, ["t101", "t102", "t104"]),
                   ([101, 103, 104], ["WAKES", "FLOWS"], ["pipe:2", "pipe:4"], 2, ["t101", "t103", "t104"])]
    assert set(df["hops"]) == {2}
    one = hand.same("path_between", ordered=True, limit=1, **{"from": 101, "to": 104})
    assert [int(t) for t in one.iloc[0]["tids"]] == [101, 102, 104] and len(one) == 1
    check_path_rows(task_edges(hand.model), df, 101, 104)


def test_hand_path_between_prefers_a_via_to_none(hand):
    row = hand.same("path_between", ordered=True, **{"from": 107, "to": 108}).iloc[0]
    assert list(row["types"]) == ["WAKES"] and list(row["vias"]) == ["pipe:9"] and int(row["paths"]) == 2
    row = hand.same("path_between", ordered=True, **{"from": 105, "to": 102}).iloc[0]
    assert [int(t) for t in row["tids"]] == [105, 101, 102] and plain(row["vias"][0]) is None  # only a null via
    assert hand.same("path_between", **{"from": 104, "to": 101}).empty  # against the edges
    assert hand.same("path_between", **{"from": 106, "to": 106}).empty  # its self edges are no path


def test_hand_neighbourhood_self_edges_once(hand):
    got = hand.same("neighbourhood", tid=106)
    assert normal_rows("neighbourhood", got) == expected_neighbourhood(hand.model, 106)
    rows = sorted((r["type"], r["direction"], plain(r["other_tid"]), plain(r["other_rid"]), int(r["count"]),
                   plain(r["bytes"]), plain(r["ns"]), plain(r["via"])) for _, r in got.iterrows())
    assert rows == [("BLOCKED_ON", "out", None, "unix:8", 2, None, 700, "unix:8"),  # not the null-rid sleep
                    ("FLOWS", "out", 106, None, 5, 500, None, "unix:7"),
                    ("READS", "out", None, "unix:8", 4, 500, None, "unix:8"),
                    ("WAKES", "out", 106, None, 2, None, 20, None),
                    ("WRITES", "out", None, "unix:7", 5, 500, None, "unix:7")]
    assert len(hand.same("neighbourhood", tid=104).query("type == 'FLOWS'")) == 2  # one row per edge
    for tid in (101, 102, 103, 104, 105, 107, 108, 999):
        got = hand.same("neighbourhood", tid=tid)
        assert normal_rows("neighbourhood", got) == expected_neighbourhood(hand.model, tid), tid


def test_hand_blocked_by_resource(hand):
    df = hand.same("blocked_by_resource", ordered=True)
    got = [(r["rid"], r["kind"], plain(r["path"]), int(r["blocked_ns"]), int(r["episodes"]), int(r["tasks"]),
            int(r["max_ns"]), sorted(int(t) for t in r["tids"])) for _, r in df.iterrows()]
    assert got == [("pipe:3", "pipe", None, 1800, 5, 2, 900, [102, 104]),
                   ("unix:8", "unix_stream", None, 700, 2, 1, 400, [106]),
                   ("fifo:5", "fifo", "/tmp/f", 30, 3, 1, 10, [108])]
    want = expected_blocked(hand.model)
    assert list(df["rid"]) == list(want["rid"])
    assert list(hand.same("blocked_by_resource", ordered=True, limit=1)["rid"]) == ["pipe:3"]
