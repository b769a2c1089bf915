"""A real Neo4j 5.26 Community server from scripts/neo4j/neo4j_server.py (groundwork for graph backends).

The server's jars come from Maven Central into the cache (``$FTRACEIPC_NEO4J_CACHE`` or
``~/.cache/ftraceipc/neo4j-5.26``) on first use; the tests skip only when there is no Java 17+ or
when the jars are not cached and Maven Central cannot be reached. Any other failure fails.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time

import neo4j
import pytest
from neo4j.exceptions import AuthError

from neo4j_setup import SCRIPT, ensure_jars, ns  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ensure_jars()
    password = "pw-" + secrets.token_hex(8)
    s = ns.Neo4jServer.start(tmp_path_factory.mktemp("neo4j"), password=password,
                             jvm_options=["-XX:TieredStopAtLevel=1"])  # faster start; tests only
    try:
        yield s
    finally:
        peak = s.peak_rss_kib()
        graceful = s.stop()
        print(f"\nneo4j: ready in {s.startup_seconds:.1f} s, peak RSS {(peak or 0) / 1024:.0f} MiB")
        assert graceful, "the server needed SIGKILL"
        assert not s.running()
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", s.bolt_port), timeout=2):
            pass  # nothing listens on the Bolt port any more


def test_listens_on_loopback_only(server):
    assert server.running()
    assert server.uri == f"bolt://127.0.0.1:{server.bolt_port}"
    conf = (server.home / "conf" / "neo4j.conf").read_text()
    assert "server.default_listen_address=127.0.0.1" in conf
    assert "dbms.security.auth_enabled=true" in conf


def test_return_1(server):
    with neo4j.GraphDatabase.driver(server.uri, auth=server.auth) as d:
        records, _, _ = d.execute_query("RETURN 1 AS x")
    assert [r["x"] for r in records] == [1]


def test_create_and_read_node(server):
    with server.driver() as d:
        d.execute_query("CREATE (:Task {pid: $pid, comm: $comm})", pid=4242, comm="writer")
        records, _, _ = d.execute_query("MATCH (t:Task {pid: $pid}) RETURN t.comm AS comm, t.pid AS pid",
                                        pid=4242)
    assert [(r["comm"], r["pid"]) for r in records] == [("writer", 4242)]


def test_wrong_password_is_auth_error(server):
    with neo4j.GraphDatabase.driver(server.uri, auth=("neo4j", server.password + "-wrong")) as d:
        with pytest.raises(AuthError):
            d.verify_connectivity()


def test_cli_status_and_warm_provision(server):
    r = subprocess.run([sys.executable, str(SCRIPT), "status", "--dir", str(server.home)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"running: pid {server.pid}, {server.uri}" in r.stdout
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, str(SCRIPT), "provision"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "already provisioned" in r.stdout
    assert time.monotonic() - t0 < 10
