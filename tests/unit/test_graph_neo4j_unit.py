"""Neo4j backend pieces that need no server: the server-version check (a fake driver), the schema
file split into statements, the generated write statements, and the CLI's --param parsing."""

from __future__ import annotations

import pytest

neo4j = pytest.importorskip("neo4j")

from ftraceipc.cli import _params  # noqa: E402
from ftraceipc.errors import CommandError  # noqa: E402
from ftraceipc.graph import GraphError  # noqa: E402
from ftraceipc.graph import neo4j as backend  # noqa: E402


class FakeDriver:
    def __init__(self, version):
        self.version = version
        self.closed = False

    def verify_connectivity(self):
        pass

    def close(self):
        self.closed = True


def fake(monkeypatch, version):
    drv = FakeDriver(version)
    monkeypatch.setattr(neo4j.GraphDatabase, "driver", lambda *a, **k: drv)
    monkeypatch.setattr(backend.Neo4jGraph, "_run",
                        lambda self, q, p=None: [{"name": "Neo4j Kernel", "versions": [version]}.values()])
    return drv


def test_server_too_old(monkeypatch):
    drv = fake(monkeypatch, "4.4.30")
    with pytest.raises(GraphError, match="is version 4.4.30; ftraceipc needs Neo4j 5 or later"):
        backend.Neo4jGraph.connect("bolt://h:7687", "neo4j", "pw-123456")
    assert drv.closed


def test_server_5_is_fine(monkeypatch):
    fake(monkeypatch, "5.26.0")
    with backend.Neo4jGraph.connect("bolt://h:7687", "neo4j", "pw-123456") as g:
        assert g.server_version == "5.26.0"
    g.close()


def test_missing_password(monkeypatch):
    monkeypatch.delenv("NEO4J_PASSWORD", raising=False)
    with pytest.raises(GraphError, match="no password"):
        backend.Neo4jGraph.connect("bolt://h:7687", "neo4j")


def test_bad_scheme():
    with pytest.raises(GraphError, match="bad Neo4j URI"):
        backend.Neo4jGraph.connect("http://127.0.0.1:1", "neo4j", "pw-123456")


def test_schema_statements():
    stmts = backend.schema_statements()
    assert len(stmts) >= 8 and all(s.startswith("CREATE ") and "//" not in s for s in stmts)
    assert any("REQUIRE (t.capture_id, t.tid) IS UNIQUE" in s for s in stmts)


def test_write_statements():
    q = backend._rel_cypher("FLOWS", ["via", "bytes"])
    assert "(a:Task {capture_id: $cid, tid: $`from`[i]})" in q and "(b:Task {capture_id: $cid, tid: $`to`[i]})" in q
    assert "CREATE (a)-[:FLOWS {capture_id: $cid, via: $via[i], bytes: $bytes[i]}]->(b)" in q
    q = backend._node_cypher("Resource", ["rid", "kind", "capture_id"])
    assert "MERGE (n:Resource {capture_id: $cid, rid: $rid[i]}) SET n.kind = $kind[i]" in q


def test_cli_params():
    assert _params(["a=1", "b=2.5", "c=x", "$d=-3", "e=", "f=a=b"]) == {
        "a": 1, "b": 2.5, "c": "x", "d": -3, "e": "", "f": "a=b"}
    with pytest.raises(CommandError):
        _params(["novalue"])
