"""Neo4j backend pieces that need no server: the server-version check (a fake driver), the schema
file split into statements, the generated write statements, and the CLI's --param parsing."""

from __future__ import annotations

import neo4j
import pytest

from ftraceipc.cli import _params
from ftraceipc.errors import CommandError
from ftraceipc.graph import GraphError
from ftraceipc.graph import neo4j as backend


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
    assert "MATCH (a) WHERE id(a) = $_src[i]" in q and "MATCH (b) WHERE id(b) = $_dst[i]" in q
    assert "CREATE (a)-[:FLOWS {capture_id: $cid, via: $via[i], bytes: $bytes[i]}]->(b)" in q
    q = backend._node_cypher("Resource", ["rid", "kind", "capture_id"])
    assert "CREATE (n:Resource {capture_id: $cid, rid: $rid[i], kind: $kind[i]})" in q
    assert "MERGE" not in q and q.endswith("RETURN $rid[i] AS k, id(n) AS id")


def test_every_rel_table_has_ends():
    from ftraceipc.graph.ladybug import REL_TABLES

    for name, (a, b, _cols) in REL_TABLES.items():
        assert backend.REL_ENDS.get(name, (a, b)) == (a, b), name


def test_column_conversion():
    import pyarrow as pa

    assert backend._column(pa.chunked_array([[1, 2], [3]])) == [1, 2, 3]
    assert backend._column(pa.chunked_array([[1, None]], pa.int64())) == [1, None]
    assert backend._column(pa.chunked_array([[True, None]])) == [True, None]
    assert backend._column(pa.chunked_array([[["a"], None]])) == [["a"], None]
    assert all(type(v) is int for v in backend._column(pa.chunked_array([[1, 2]], pa.int64())))


def test_credentials_from_config_file(monkeypatch, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[neo4j]\nuri = "bolt://cfg:7687"\nuser = "ipc"\npassword = "cfg-secret-pw"\n')
    cfg.chmod(0o600)
    for v in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("FTRACEIPC_CONFIG", str(cfg))
    seen = {}

    def driver(uri, auth, **kw):
        seen["uri"], seen["auth"] = uri, auth
        return FakeDriver("5.26.0")

    monkeypatch.setattr(neo4j.GraphDatabase, "driver", driver)
    monkeypatch.setattr(backend.Neo4jGraph, "_run",
                        lambda self, q, p=None: [{"name": "Neo4j Kernel", "versions": ["5.26.0"]}.values()])
    with backend.Neo4jGraph.connect() as g:
        assert (g.uri, g.user) == ("bolt://cfg:7687", "ipc")
        assert "cfg-secret-pw" not in repr(vars(g))
    assert seen == {"uri": "bolt://cfg:7687", "auth": ("ipc", "cfg-secret-pw")}
    monkeypatch.setenv("NEO4J_PASSWORD", "env-secret-pw")  # the environment wins over the file
    with backend.Neo4jGraph.connect("bolt://arg:7687") as g:  # and an argument over both
        assert g.uri == "bolt://arg:7687"
    assert seen["auth"] == ("ipc", "env-secret-pw")


def test_writers_must_be_positive():
    with pytest.raises(GraphError, match="writers must be >= 1"):
        backend.Neo4jGraph("bolt://h:7687", "neo4j", "pw-123456", writers=0)


def test_cli_params_are_strings_unless_a_type_is_asked_for():
    assert _params(["a=1", "b=2.5", "c=x", "$d=-3", "e=", "f=a=b", "cid=12345e678901", "g=nan"]) == {
        "a": "1", "b": "2.5", "c": "x", "d": "-3", "e": "", "f": "a=b", "cid": "12345e678901", "g": "nan"}
    assert _params(["a:int=1", "b:float=2.5", "c:str=7", "d:bool=true", "e:bool=False", "f:json=[1, \"x\"]",
                    "$g:int=-3"]) == {"a": 1, "b": 2.5, "c": "7", "d": True, "e": False, "f": [1, "x"], "g": -3}
    with pytest.raises(CommandError):
        _params(["novalue"])
    for bad in ("a:int=1.5", "a:int=x", "a:float=x", "a:bool=yes", "a:json={", "a:long=1"):
        with pytest.raises(CommandError, match="--param .?a"):
            _params([bad])


def test_cli_params_of_a_query_file_take_the_header_defaults_type():
    defaults = {"limit": 20, "min_ns": 0.5, "capture_id": "", "all": False}
    assert _params(["limit=5", "min_ns=2", "capture_id=12345e678901", "all=true", "other=3"], defaults) == {
        "limit": 5, "min_ns": 2.0, "capture_id": "12345e678901", "all": True, "other": "3"}
    assert _params(["limit:str=5"], defaults) == {"limit": "5"}  # an explicit type wins
    with pytest.raises(CommandError, match="--param limit: 'five' is not an int"):
        _params(["limit=five"], defaults)
