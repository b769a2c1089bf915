"""A real Neo4j 5.26 Community server from scripts/neo4j/neo4j_server.py (groundwork for graph backends).

The server's jars come from Maven Central into the cache (``$FTRACEIPC_NEO4J_CACHE`` or
``~/.cache/ftraceipc/neo4j-5.26``) on first use; the tests skip only when there is no Java 17+ or
when the jars are not cached and Maven Central cannot be reached. Any other failure fails.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time

import neo4j
import pytest
from neo4j.exceptions import AuthError

from neo4j_setup import SCRIPT, ensure_jars, ns  # noqa: E402


class CmdlineScan(threading.Thread):
    """Reads every /proc/*/cmdline over and over until stopped: the command lines holding ``secret``,
    and those of the password tool (``AdminTool`` or its @argfile) seen while it ran."""

    def __init__(self, secret: str):
        super().__init__(daemon=True)
        self.secret = secret.encode()
        self.hits: set[bytes] = set()
        self.admin: set[bytes] = set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for d in os.listdir("/proc"):
                if not d.isdigit() or int(d) == os.getpid():
                    continue
                try:
                    with open(f"/proc/{d}/cmdline", "rb") as f:
                        cmd = f.read()
                except OSError:
                    continue
                if self.secret in cmd:
                    self.hits.add(cmd)
                if b"AdminTool" in cmd or b".set-initial-password." in cmd:
                    self.admin.add(cmd)
            time.sleep(0.005)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ensure_jars()
    password = "pw-" + secrets.token_hex(8) + '"\\ x'  # quotes, backslashes and spaces survive
    scan = CmdlineScan(password)
    scan.start()
    try:
        s = ns.Neo4jServer.start(tmp_path_factory.mktemp("neo4j"), password=password,
                                 jvm_options=["-XX:TieredStopAtLevel=1"])  # faster start; tests only
    finally:
        scan.done.set()
        scan.join()
    s.cmdline_scan = scan
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


def test_the_password_is_on_no_command_line_while_the_server_starts(server):
    scan = server.cmdline_scan
    assert scan.admin, "the scan never saw the password tool run (first start of a fresh directory)"
    assert scan.hits == set()
    assert not list((server.home / "run").glob(".set-initial-password.*"))  # the argfile is gone
    with server.driver() as d:  # and the password was set
        d.verify_connectivity()


def test_cli_refuses_a_password_on_the_command_line(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "start", "--dir", str(tmp_path), "--bolt-port", "1",
                        "--http-port", "2", "--password", "cli-secret-pw"], capture_output=True, text=True,
                       timeout=60, env={k: v for k, v in os.environ.items() if k != "NEO4J_PASSWORD"})
    assert r.returncode == 2
    assert "--password is not taken on the command line" in r.stderr
    assert "cli-secret-pw" not in r.stdout + r.stderr
    assert not (tmp_path / "conf").exists()


def test_cli_password_file_must_be_private(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("file-secret-pw\n")
    pw.chmod(0o644)
    r = subprocess.run([sys.executable, str(SCRIPT), "start", "--dir", str(tmp_path / "d"), "--bolt-port", "1",
                        "--http-port", "2", "--password-file", str(pw)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert f"chmod 600 {pw}" in r.stderr and "file-secret-pw" not in r.stdout + r.stderr
    pw.chmod(0o600)
    assert ns.read_password_file(pw) == "file-secret-pw"
