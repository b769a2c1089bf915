"""The Neo4j backend against a real Neo4j 5.26 (scripts/neo4j/neo4j_server.py), checked against the
embedded backend and the sample's truth: a capture of samples/pipeline.py loaded into both gives the
same counts, the truth's bytes on WRITES, the same top_talkers and waits rows; loading twice gives
the same graph; two captures coexist; a synthetic model with every relationship type (dense nodes,
many batches, parallel writers) loads, re-loads and deletes exactly; a load that failed half-way is
repaired by loading again; credentials come from the config file; bad credentials and an
unreachable port are one-line GraphErrors.

Skips only when there is no Java 17+, or the server jars are not cached and Maven Central cannot be
reached (as test_neo4j_server.py), or without tracefs for the capture tests.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from components import requires  # noqa: E402
from test_graph_ladybug import (ALL, OP_TYPE, crit_dump, pipeline, same_critical, small_model,  # noqa: E402, F401
                                top_talkers_golden, top_talkers_rows, waits_golden, waits_rows)

from ftraceipc.graph import GraphError  # noqa: E402
from ftraceipc.model import critical  # noqa: E402
from ftraceipc.graph.ladybug import LadybugGraph  # noqa: E402
from ftraceipc.graph.neo4j import Neo4jGraph  # noqa: E402

from neo4j_setup import ns  # noqa: E402

needs_capture = requires("tracefs")


@pytest.fixture(scope="module")
def server(neo4j_server):
    """The session's Neo4j (tests/integration/conftest.py); each test below empties it first."""
    return neo4j_server


@pytest.fixture
def graph(server):
    with Neo4jGraph.connect(server.uri, *server.auth) as g:
        g.query("MATCH (n) DETACH DELETE n")  # every test starts from an empty database
        yield g


def norm(v):
    if isinstance(v, list):
        return frozenset(v)
    return None if not isinstance(v, (list, str)) and pd.isna(v) else v


def rows(df: pd.DataFrame) -> list[tuple]:
    return [tuple(norm(v) for v in r) for r in df.itertuples(index=False, name=None)]


def dump(g) -> dict[str, list]:
    """The graph (one capture) as sorted tuples, through queries both backends run."""
    qs = {
        "Task": "MATCH (t:Task) RETURN t.tid AS k, t.pid AS pid, t.comm AS comm, t.comms AS comms, t.ppid AS ppid, "
                "t.first_ts AS f, t.last_ts AS l, t.tracer AS tr, t.blocked_unattributed_episodes AS ue, "
                "t.blocked_unattributed_ns AS u, t.blocked_unattributed_max_ns AS um, t.capture_id AS c",
        "Resource": "MATCH (r:Resource) RETURN r.rid AS k, r.kind AS kind, r.inode AS inode, r.path AS path, "
                    "r.peer AS peer, r.evidence AS ev, r.capture_id AS c",
        "WRITES": "MATCH (t:Task)-[e:WRITES]->(r:Resource) RETURN t.tid AS s, r.rid AS d, e.calls AS n, "
                  "e.bytes AS b, e.first_ts AS f, e.last_ts AS l",
        "READS": "MATCH (t:Task)-[e:READS]->(r:Resource) RETURN t.tid AS s, r.rid AS d, e.calls AS n, "
                 "e.bytes AS b, e.first_ts AS f, e.last_ts AS l",
        "BLOCKED_ON": "MATCH (t:Task)-[e:BLOCKED_ON]->(r:Resource) RETURN t.tid AS s, r.rid AS d, "
                      "e.episodes AS n, e.blocked_ns AS b, e.max_ns AS m, e.ops AS ops",
        "WAKES": "MATCH (a:Task)-[e:WAKES]->(b:Task) RETURN a.tid AS s, b.tid AS d, e.via AS via, "
                 "e.wakeups AS n, e.wake_to_run_ns AS w, e.max_wake_to_run_ns AS mw, e.cross_cpu AS x",
        "FLOWS": "MATCH (a:Task)-[e:FLOWS]->(b:Task) RETURN a.tid AS s, b.tid AS d, e.via AS via, "
                 "e.read_rid AS rr, e.bytes AS b, e.messages AS m",
        "PEER": "MATCH (a:Resource)-[:PEER]->(b:Resource) RETURN a.rid AS s, b.rid AS d",
    }
    return {k: sorted(rows(g.query(q)), key=repr) for k, q in qs.items()}


# hand-built model: the whole graph is the embedded backend's ------------------------------------------
def test_small_model_same_graph_as_ladybug(graph):
    m = small_model("cap-a")
    loaded = graph.load(m, batch=3)  # several batches per table
    with LadybugGraph.open() as lb:
        assert lb.load(m) == loaded
        assert dump(graph) == dump(lb)
        # the critical path: the model's numbers on both backends
        same_critical(graph, m, "cap-a")
        same_critical(lb, m)
        assert crit_dump(graph, "cap-a") == crit_dump(lb)
        for kw in ({"limit": ALL}, {"limit": 3, "min_dur_ns": 3}):
            assert rows(graph.run_file("critical_path", **kw)) == rows(lb.run_file("critical_path", **kw))
        for name, kw in (("top_talkers", {"limit": ALL}), ("waits", {"limit": ALL})):
            assert sorted(rows(graph.run_file(name, **kw)), key=repr) == sorted(rows(lb.run_file(name, **kw)), key=repr)
    assert waits_rows(graph.run_file("waits", limit=ALL)) == waits_golden(m)
    assert graph.counts("cap-a") == graph.counts() == loaded
    assert graph.capture_ids() == {"cap-a"}


def test_reload_and_two_captures(graph):
    first = graph.load(small_model("cap-a"))
    before = dump(graph)
    assert graph.load(small_model("cap-a"), batch=2) == first
    assert graph.counts() == first and dump(graph) == before
    graph.load(small_model("cap-b"))
    assert graph.capture_ids() == {"cap-a", "cap-b"}
    assert graph.counts("cap-a") == graph.counts("cap-b") == first
    assert graph.counts()["Task"] == 2 * first["Task"]
    # no edge crosses captures
    x = graph.query("MATCH (a)-[e]->(b) WHERE a.capture_id <> b.capture_id OR e.capture_id <> a.capture_id "
                    "RETURN count(e) AS n")
    assert x["n"].iloc[0] == 0
    graph.delete_capture("cap-b")
    assert graph.capture_ids() == {"cap-a"} and dump(graph) == before


def test_query_errors(graph):
    graph.load(small_model())
    with pytest.raises(GraphError) as e:
        graph.query("MATC (t:Task) RETURN t.tid AS tid")
    assert "Invalid input 'MATC'" in str(e.value) and "\n" not in str(e.value)
    assert e.value.query.startswith("MATC")
    with pytest.raises(GraphError, match=r"missing query parameter\(s\): \$limit"):
        graph.query("MATCH (t:Task) RETURN t LIMIT $limit")
    assert graph.query("MATCH (t:Task) WHERE t.tid = $tid RETURN t.comm AS c", {"tid": 1})["c"].tolist() == ["a"]
    empty = graph.query("MATCH (t:Task) WHERE t.tid = -5 RETURN t.tid AS tid")
    assert list(empty.columns) == ["tid"] and len(empty) == 0


def test_wrong_password(server):
    with pytest.raises(GraphError, match="refused the credentials of user neo4j") as e:
        Neo4jGraph.connect(server.uri, "neo4j", server.password + "-wrong")
    assert server.password not in str(e.value)


def test_unreachable():
    port = ns.free_port()
    with pytest.raises(GraphError, match=rf"cannot reach Neo4j at bolt://127.0.0.1:{port}: .*; is it running\?"):
        Neo4jGraph.connect(f"bolt://127.0.0.1:{port}", "neo4j", "whatever-pw")


def test_credentials_from_env(server, monkeypatch):
    monkeypatch.setenv("NEO4J_URI", server.uri)
    monkeypatch.setenv("NEO4J_USER", "neo4j")
    monkeypatch.setenv("NEO4J_PASSWORD", server.password)
    g = Neo4jGraph.connect()
    assert g.server_version.startswith("5.")
    g.close()
    g.close()  # twice: fine
    with pytest.raises(GraphError, match="closed"):
        g.query("RETURN 1 AS x")


def test_credentials_from_config_file(server, monkeypatch, tmp_path):
    for v in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD"):
        monkeypatch.delenv(v, raising=False)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[neo4j]\nuri = "{server.uri}"\nuser = "neo4j"\npassword = "{server.password}"\n')
    cfg.chmod(0o600)
    monkeypatch.setenv("FTRACEIPC_CONFIG", str(cfg))
    with Neo4jGraph.connect() as g:
        assert g.query("RETURN 1 AS x")["x"].tolist() == [1]
    monkeypatch.setenv("NEO4J_PASSWORD", server.password + "-wrong")  # the environment wins over the file
    with pytest.raises(GraphError, match="refused the credentials") as e:
        Neo4jGraph.connect()
    assert server.password not in str(e.value)


def synthetic(cid: str, edges: int = 12000):
    """bench_neo4j_load's model: every relationship type, tasks with > 50 relationships (dense)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from bench_neo4j_load import model_with_waits

    m = model_with_waits(200, 150, edges)
    m.capture_id = cid
    # and a critical path: the first task waits on a resource, handed in turn to two others
    t = [int(x) for x in m.tasks["tid"].iloc[:3]]
    rid = str(m.resources["rid"].iloc[0])
    ep = pd.DataFrame([{"tid": t[0], "rid": rid, "op": "read", "start_ts": 100, "dur_ns": 800, "woken_by": t[1]},
                       {"tid": t[1], "rid": rid, "op": "read", "start_ts": 200, "dur_ns": 400, "woken_by": t[2]}])
    wu = pd.DataFrame([{"ts": 850, "waker": t[1], "wakee": t[0], "via": rid, "wake_to_run_ns": 50},
                       {"ts": 550, "waker": t[2], "wakee": t[1], "via": rid, "wake_to_run_ns": 50}])
    m.critical = critical.walk(critical.PathInputs.from_tables(ep, wu), t[0], 0, 1000)
    return m


@pytest.mark.parametrize("writers", [1, 2])
def test_synthetic_load_reload_delete(server, writers):
    m = synthetic("syn")
    with Neo4jGraph.connect(server.uri, *server.auth, writers=writers) as g:
        g.query("MATCH (n) DETACH DELETE n")
        g.load(small_model("other"))
        other = dump(g)
        loaded = g.load(m, batch=700)  # many batches per table, both writers busy
        want = {k: v for k, v in loaded.items()}
        assert all(v > 0 for v in want.values()), want
        assert g.counts("syn") == want
        same_critical(g, m, "syn")
        dense = g.query("MATCH (t:Task {capture_id: 'syn'}) RETURN max(COUNT { (t)--() }) AS d")["d"].iloc[0]
        assert dense > 50
        # every relationship of the model, with its properties (WRITES and WAITS_FOR in full)
        w = g.query("MATCH (t:Task {capture_id: 'syn'})-[e:WRITES]->(r:Resource) "
                    "RETURN t.tid AS tid, r.rid AS rid, e.calls AS calls, e.bytes AS bytes")
        io = m.io[m.io["type"] == "WRITES"]
        assert sorted(w.itertuples(index=False, name=None)) == sorted(
            io[["tid", "rid", "calls", "bytes"]].itertuples(index=False, name=None))
        wf = g.query("MATCH (a:Task)-[e:WAITS_FOR]->(b:Task) WHERE e.capture_id = 'syn' "
                     "RETURN a.tid, b.tid, e.via, e.episodes, e.blocked_ns, e.max_ns, e.top, e.consumed, e.turns")
        assert sorted(wf.itertuples(index=False, name=None)) == sorted(m.waits.itertuples(index=False, name=None))
        before = g.query("MATCH (a {capture_id: 'syn'})-[e]->(b) RETURN a.tid AS a, a.rid AS ar, type(e) AS t, "
                         "properties(e) AS p, b.tid AS b, b.rid AS br")
        key = lambda df: sorted(map(repr, df.itertuples(index=False, name=None)))  # noqa: E731
        assert g.load(m, batch=3000) == loaded  # re-load: the same graph
        assert g.counts("syn") == want
        assert key(g.query("MATCH (a {capture_id: 'syn'})-[e]->(b) RETURN a.tid AS a, a.rid AS ar, type(e) AS t, "
                           "properties(e) AS p, b.tid AS b, b.rid AS br")) == key(before)
        g.delete_capture("syn", batch=500)  # small delete batches: nodes with many relationships
        assert g.capture_ids() == {"other"} and dump(g) == other


def test_failed_load_is_repaired_by_loading_again(graph, monkeypatch):
    m = synthetic("half", edges=3000)
    good = graph.load(m)
    want = dump(graph)
    real = Neo4jGraph._write_batches
    calls = []

    def failing(self, cypher, *a, **kw):
        calls.append(cypher)
        if "WAKES" in cypher:
            raise GraphError("simulated failure")
        return real(self, cypher, *a, **kw)

    monkeypatch.setattr(Neo4jGraph, "_write_batches", failing)
    with pytest.raises(GraphError, match="simulated"):
        graph.load(m)
    half = graph.counts("half")
    assert half["Task"] == good["Task"] and half["WAKES"] == 0 and half["WRITES"] == good["WRITES"]
    monkeypatch.setattr(Neo4jGraph, "_write_batches", real)
    assert graph.load(m) == good and graph.counts("half") == good and dump(graph) == want


def test_vanished_nodes_are_an_error(graph, monkeypatch):
    m = small_model("gone")
    real = Neo4jGraph._write_batches

    def deleting(self, cypher, *a, **kw):
        if "FLOWS" in cypher:  # another client deletes the capture between the nodes and FLOWS
            self.query("MATCH (n:Task {capture_id: 'gone'}) DETACH DELETE n")
        return real(self, cypher, *a, **kw)

    monkeypatch.setattr(Neo4jGraph, "_write_batches", deleting)
    with pytest.raises(GraphError, match=r"created 0 of \d+ relationships of capture gone: .*load it again"):
        graph.load(m)


# the real capture --------------------------------------------------------------------------------------
@needs_capture
def test_pipeline_same_on_both_backends(graph, pipeline, tmp_path):
    cap, truth, model = pipeline
    loaded = graph.load(model)
    with LadybugGraph.open(tmp_path / "g.lbug") as lb:
        assert lb.load(model) == loaded
        assert graph.counts(model.capture_id) == lb.counts() == loaded
        assert dump(graph) == dump(lb)
        assert model.critical is not None and loaded["PathSegment"] == len(model.critical.segments) > 0
        same_critical(graph, model, model.capture_id)
        same_critical(lb, model)
        for name in ("top_talkers", "waits"):
            n4 = graph.run_file(name, limit=ALL)
            assert list(n4.columns) == list(lb.run_file(name, limit=ALL).columns)
            assert sorted(rows(n4), key=repr) == sorted(rows(lb.run_file(name, limit=ALL)), key=repr)
        # ordered and limited: the same first rows (ties broken by tids in the query)
        assert [r[:6] for r in rows(graph.run_file("top_talkers", limit=3))] == \
               [r[:6] for r in rows(lb.run_file("top_talkers", limit=3))]
    assert top_talkers_rows(graph.run_file("top_talkers", limit=ALL)) == top_talkers_golden(model)
    assert waits_rows(graph.run_file("waits", limit=ALL)) == waits_golden(model)

    # the truth's calls and bytes on WRITES/READS of the 3 pipes
    pipes = [r["rid"] for r in truth["resources"]]
    want = defaultdict(lambda: [0, 0])
    for e in truth["io"]:
        acc = want[(e["tid"], e["rid"], OP_TYPE[e["op"]])]
        acc[0] += e["calls"]
        acc[1] += e["bytes"]
    got = {}
    for typ in ("WRITES", "READS"):
        df = graph.query(f"MATCH (t:Task)-[e:{typ}]->(r:Resource) WHERE r.rid IN $rids "
                         "RETURN t.tid AS tid, r.rid AS rid, e.calls AS calls, e.bytes AS bytes", {"rids": pipes})
        for tid, rid, calls, nbytes in df.itertuples(index=False):
            got[(tid, rid, typ)] = [calls, nbytes]
    assert got == dict(want)

    # loading twice gives the same graph; another capture coexists
    before = dump(graph)
    assert graph.load(model) == loaded
    assert graph.counts() == loaded and dump(graph) == before
    other = small_model("another-capture")
    graph.load(other)
    assert graph.capture_ids() == {model.capture_id, "another-capture"}
    assert graph.counts(model.capture_id) == loaded
    graph.delete_capture("another-capture")
    assert dump(graph) == before


def whole_dump(g, cid: str) -> dict[str, list]:
    """Every node and relationship of one capture with all its properties (sorted reprs)."""
    out = {}
    for label in ("Task", "Resource", "PathSegment", "FtraceipcCapture"):
        out[label] = sorted(repr(sorted(r.items())) for r in
                            g.query(f"MATCH (n:{label} {{capture_id: $cid}}) RETURN properties(n) AS p",
                                    {"cid": cid})["p"])
    for typ in ("WRITES", "READS", "BLOCKED_ON", "WAKES", "FLOWS", "WAITS_FOR", "PEER", "ON_PATH"):
        df = g.query(f"MATCH (a)-[e:{typ}]->(b) WHERE e.capture_id = $cid RETURN coalesce(a.tid, a.rid) AS a, "
                     "coalesce(b.tid, b.rid, b.seq) AS b, properties(e) AS p", {"cid": cid})
        out[typ] = sorted(repr((a, b, sorted(p.items()))) for a, b, p in df.itertuples(index=False, name=None))
    return out


@needs_capture
def test_sync_by_increments_leaves_the_graph_a_load_leaves(graph, pipeline):
    """live --neo4j writes each interval's model as increments: after each sync the capture's
    subgraph is exactly what loading that model gives; an unchanged model writes nothing."""
    import copy

    from ftraceipc.model.build import ModelBuilder

    cap, _truth, model = pipeline
    cid = model.capture_id
    cp = model.critical
    assert cp is not None
    mb = ModelBuilder(cap)
    for b in mb.dec.batches():
        mb.feed(b)
    windowed = mb.finish(path_since=cp.start_ts + (cp.end_ts - cp.start_ts) // 2)  # another path
    fewer = copy.deepcopy(model)  # every other row of each table: nodes and edges gone
    for name in ("tasks", "resources", "io", "blocked", "wakes", "flows", "waits"):
        setattr(fewer, name, getattr(fewer, name).iloc[::2].reset_index(drop=True))
    fewer.critical = windowed.critical
    changed = copy.deepcopy(model)  # the same rows, other numbers
    changed.flows = changed.flows.assign(bytes=changed.flows["bytes"] + 1)
    changed.wakes = changed.wakes.assign(wakeups=changed.wakes["wakeups"] * 2)
    assert windowed.capture_id == cid and len(windowed.critical.segments) < len(cp.segments)

    written, state = graph.sync(model)  # the first: a load
    assert graph.capture_ids() == {cid} and state.rows is not None
    total: dict[str, int] = defaultdict(int)
    for m in (fewer, changed, windowed, model):
        written, state = graph.sync(m, state)
        assert sum(written.values()) > 0
        for k, v in written.items():
            total[k] += v
        got = whole_dump(graph, cid)
        graph.load(m)
        assert whole_dump(graph, cid) == got
    assert all(total[k] > 0 for k in ("Task", "Resource", "PathSegment", "WAKES", "FLOWS", "BLOCKED_ON", "ON_PATH"))
    assert written["WAKES"] == 0  # windowed -> model: only the path changed
    written, state = graph.sync(model, state)
    assert sum(written.values()) == 0
    graph.load(small_model("cap-b"))  # another capture is left alone
    before = whole_dump(graph, "cap-b")
    graph.sync(fewer, state)
    assert whole_dump(graph, "cap-b") == before and graph.capture_ids() == {cid, "cap-b"}
