"""``ftraceipc query`` and ``ftraceipc load``: a real capture queried through the embedded graph (built on
first use into CAPTURE/graph.lbug), Cypher errors and an unreachable Neo4j as one
``ftraceipc: error:`` line (no traceback), and, when a Neo4j server can be started, a load into it
and a query by URI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import capture_cli as cc  # noqa: E402
from components import need, requires  # noqa: E402
from test_cli_model import assert_one_error_line  # noqa: E402

needs_capture = requires("tracefs")


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    need("tracefs")
    from truth_check import capture_sample

    cap, _meta, _truth = capture_sample(tmp_path_factory.mktemp("cligraph"), "pipeline")
    return cap


@needs_capture
def test_query_json_builds_the_embedded_graph(capture):
    import shutil

    from ftraceipc.model.build import build_model

    assert (capture / "graph.lbug").exists()  # ftraceipc capture built it; remove it to see query build it
    shutil.rmtree(capture / "graph.lbug") if (capture / "graph.lbug").is_dir() else (capture / "graph.lbug").unlink()
    r = cc.cli("query", capture, "MATCH (t:Task) RETURN count(t) AS n", "--format", "json", timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    model = build_model(capture)
    assert isinstance(out, list) and len(out) == 1 and out[0]["n"] >= len(model.tasks) > 0
    assert (capture / "graph.lbug").exists()
    assert r.stderr.startswith(f"ftraceipc: built {capture / 'graph.lbug'} (")
    # again: the graph is reused, not rebuilt; parameters are typed (int) and csv works
    r = cc.cli("query", capture, "MATCH (t:Task) WHERE t.tid >= $t RETURN count(t) AS n", "--param", "t:int=0",
               "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["n", str(out[0]["n"])]
    assert r.stderr == ""  # not rebuilt
    r = cc.cli("query", capture, (Path(cc.REPO) / "cypher" / "top_talkers.cypher").read_text(),
               "-p", "min_bytes=1", "-p", "limit=2", "-p", "capture_id=")  # typed by the pasted header
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:7] == ["writer", "writer_comm", "reader", "reader_comm", "bytes", "messages", "channels"]
    assert len(r.stdout.strip().splitlines()) == 3
    # the same by name (header defaults filled in) and by path
    by_name = cc.cli("query", capture, "top_talkers", "-p", "limit=2")
    assert by_name.returncode == 0 and by_name.stdout == r.stdout, by_name.stderr
    by_path = cc.cli("query", capture, str(Path(cc.REPO) / "cypher" / "top_talkers.cypher"), "-p", "limit=2")
    assert by_path.returncode == 0 and by_path.stdout == r.stdout, by_path.stderr


@needs_capture
def test_query_params_stay_strings_unless_typed(capture):
    r = cc.cli("query", capture, "RETURN $c AS c, $n AS n", "-p", "c=12345e678901", "-p", "n:int=12",
               "-f", "json", timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"c": "12345e678901", "n": 12}]
    # a query file: limit takes its header's integer type, a capture id stays a string (no such capture: no rows)
    r = cc.cli("query", capture, "top_talkers", "-p", "limit=1", "-f", "json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 1
    r = cc.cli("query", capture, "top_talkers", "-p", "capture_id=12345e678901", "-f", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []
    assert_one_error_line(cc.cli("query", capture, "top_talkers", "-p", "limit=five"),
                          "--param limit: 'five' is not an int")


@needs_capture
def test_graph_of_an_older_schema_version_is_rebuilt(capture):
    from ftraceipc.graph import SCHEMA_VERSION
    from ftraceipc.graph.ladybug import LadybugGraph

    r = cc.cli("query", capture, "RETURN 1 AS x", timeout=120)  # built and current
    assert r.returncode == 0, r.stderr
    with LadybugGraph.open(capture / "graph.lbug") as g:
        assert g.schema_version() == SCHEMA_VERSION and g.schema_is_current()
        g._stamp_version(SCHEMA_VERSION - 1)  # as an older ftraceipc left it
        assert not g.schema_is_current()
    r = cc.cli("query", capture, "RETURN 1 AS x", timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith(f"ftraceipc: built {capture / 'graph.lbug'} ("), r.stderr
    with LadybugGraph.open(capture / "graph.lbug") as g:
        assert g.schema_version() == SCHEMA_VERSION
    r = cc.cli("query", capture, "RETURN 1 AS x", timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr  # current again: not rebuilt


@needs_capture
def test_query_syntax_error_is_one_line(capture):
    assert cc.cli("query", capture, "RETURN 1 AS x", timeout=120).returncode == 0  # the graph is built
    r = cc.cli("query", capture, "MATC (t:Task) RETURN t", timeout=120)
    line = assert_one_error_line(r, "Parser exception", "MATC")
    assert r.returncode == 5, line


def test_query_bad_input(tmp_path):
    assert_one_error_line(cc.cli("query", tmp_path / "nope.ftipc", "RETURN 1"), "no capture at")
    assert_one_error_line(cc.cli("query", tmp_path, "RETURN 1", "--format", "xml"), "--format")
    assert_one_error_line(cc.cli("query", tmp_path, "RETURN 1", "--param", "novalue"), "--param")
    assert_one_error_line(cc.cli("query", tmp_path, "nope/missing.cypher"), "no query file nope/missing.cypher")


def test_load_unreachable_neo4j_is_one_line(tmp_path):
    r = cc.cli("load", tmp_path, "--neo4j", "bolt://127.0.0.1:1", env_extra={"NEO4J_PASSWORD": "x-secret-x"})
    line = assert_one_error_line(r, "cannot reach Neo4j at bolt://127.0.0.1:1", "is it running?")
    assert "x-secret-x" not in line


@pytest.mark.parametrize("argv", [
    ("load", "{cap}", "--neo4j", "bolt://neo4j:s3cret@127.0.0.1:1"),
    ("load", "{cap}", "--neo4j", "neo4j:s3cret@127.0.0.1:1"),  # not a URI: echoed, redacted
    ("query", "bolt://neo4j:s3cret@127.0.0.1:1", "RETURN 1"),
    ("query", "bolt://neo4j:s3cret@127.0.0.1:1", "RETURN 1", "bolt://neo4j:s3cret@127.0.0.1:2"),  # usage error
    ("analyze", "{cap}", "--neo4j", "bolt://neo4j:s3cret@127.0.0.1:1", "-f", "json"),
])
def test_a_password_in_a_uri_is_never_printed(tmp_path, argv):
    from ftraceipc.capture.store import CaptureMeta

    cap = tmp_path / "c.ftipc"
    cap.mkdir()
    (cap / "meta.json").write_text(json.dumps(CaptureMeta(tool_version="0", kernel_release="x", hostname="h",
                                                          machine="m", events=[]).to_json()))
    r = cc.cli(*[a.format(cap=cap) for a in argv], env_extra={"NEO4J_PASSWORD": "env-pw-123"})
    line = assert_one_error_line(r)
    assert "s3cret" not in r.stdout + r.stderr, line
    assert "127.0.0.1:" in line and ("***@" in line or "bolt://127.0.0.1:1" in line), line


def test_load_missing_password_env(tmp_path):
    r = cc.cli("load", tmp_path, "--neo4j", "bolt://127.0.0.1:1", "--password-env", "FTIPC_NO_SUCH_VAR")
    assert_one_error_line(r, "FTIPC_NO_SUCH_VAR")


@needs_capture
def test_load_and_query_neo4j(capture, neo4j_server):
    from ftraceipc.graph.neo4j import Neo4jGraph

    s, pw = neo4j_server, neo4j_server.auth[1]
    with Neo4jGraph.connect(s.uri, *s.auth) as g:
        g.query("MATCH (n) DETACH DELETE n")  # the session's server: start from an empty database
    env = {"FTIPC_TEST_PW": pw}
    r = cc.cli("load", capture, "--neo4j", s.uri, "--password-env", "FTIPC_TEST_PW", env_extra=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "loaded capture" in r.stdout and pw not in r.stdout + r.stderr
    r = cc.cli("query", s.uri, "MATCH (t:Task) RETURN count(t) AS n", "-f", "json", "--password-env",
               "FTIPC_TEST_PW", env_extra=env)
    assert r.returncode == 0, r.stderr
    n4 = json.loads(r.stdout)
    emb = json.loads(cc.cli("query", capture, "MATCH (t:Task) RETURN count(t) AS n", "-f", "json").stdout)
    assert n4 == emb
    r = cc.cli("query", s.uri, "MATC (t) RETURN t", "--password-env", "FTIPC_TEST_PW", env_extra=env)
    assert_one_error_line(r, "Invalid input 'MATC'")
    r = cc.cli("query", s.uri, "RETURN 1 AS x", env_extra={"NEO4J_PASSWORD": pw + "-wrong"})
    line = assert_one_error_line(r, "refused the credentials")
    assert pw not in line
    assert os.environ.get("FTIPC_TEST_PW") is None


@needs_capture
def test_credentials_in_the_uri_work_and_are_never_printed(capture, neo4j_server):
    from urllib.parse import quote

    s, (user, pw) = neo4j_server, neo4j_server.auth
    uri = f"bolt://{user}:{quote(pw, safe='')}@127.0.0.1:{s.bolt_port}"
    env = {"NEO4J_PASSWORD": pw + "-wrong"}  # the URI's password wins over the environment's
    runs = [cc.cli("load", capture, "--neo4j", uri, env_extra=env, timeout=180),
            cc.cli("query", uri, "MATCH (t:Task) RETURN count(t) AS n", "-f", "json", env_extra=env),
            cc.cli("analyze", capture, "--neo4j", uri, "-f", "json", env_extra=env, timeout=180),
            cc.cli("analyze", capture, "--neo4j", uri, env_extra=env, timeout=180)]
    for r in runs:
        assert r.returncode == 0, r.stderr
        assert pw not in r.stdout + r.stderr, r.argv
    assert f"into Neo4j at {s.uri}:" in runs[0].stdout
    assert json.loads(runs[1].stdout)[0]["n"] > 0
    json.loads(runs[2].stdout)
    assert f"Neo4j at {s.uri}" in runs[3].stdout


@needs_capture
def test_neo4j_capture_of_another_schema_version_is_loaded_again(capture, neo4j_server):
    from ftraceipc.graph import SCHEMA_VERSION
    from ftraceipc.graph.neo4j import Neo4jGraph
    from ftraceipc.model.build import capture_id

    s = neo4j_server
    env = {"NEO4J_PASSWORD": s.auth[1], "NEO4J_USER": s.auth[0]}
    cid = capture_id(json.loads((capture / "meta.json").read_text()))
    r = cc.cli("load", capture, "--neo4j", s.uri, env_extra=env, timeout=180)
    assert r.returncode == 0, r.stderr
    with Neo4jGraph.connect(s.uri, *s.auth) as g:
        assert cid in g.capture_ids()
        g._stamp(cid, SCHEMA_VERSION - 1)  # as an older ftraceipc loaded it
        assert cid not in g.capture_ids() and cid in g.stored_capture_ids()
    r = cc.cli("analyze", capture, "--neo4j", s.uri, "-f", "json", env_extra=env, timeout=180)
    assert r.returncode == 0, r.stderr
    assert f"loading capture {cid} into Neo4j at {s.uri}" in r.stderr
    with Neo4jGraph.connect(s.uri, *s.auth) as g:
        assert cid in g.capture_ids()
        rows = g.query("MATCH (m:FtraceipcCapture {capture_id: $c}) RETURN m.schema_version AS v", {"c": cid})
        assert list(rows["v"]) == [SCHEMA_VERSION]
    r = cc.cli("analyze", capture, "--neo4j", s.uri, "-f", "json", env_extra=env, timeout=180)
    assert r.returncode == 0 and "loading capture" not in r.stderr, r.stderr  # current: not loaded again
