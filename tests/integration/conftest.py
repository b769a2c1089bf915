"""Every integration test must leave no tracing instance of ours behind.

Before each test the ``ftraceipc-*`` instances are listed; afterwards any new one that this test run
made, or whose owner is gone (see ``capture_cli.instance_is_ours``), fails the test and is removed
(its owner, a process the test started, killed first) so later tests are not poisoned. Live runs of
someone else on the same machine are ignored.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import capture_cli as cc  # noqa: E402
from components import need  # noqa: E402


def _leaked(before: set[str]) -> list[str]:
    return sorted(n for n in cc.instance_names() - before if cc.instance_is_ours(n))


@pytest.fixture(autouse=True)
def no_instance_left_behind():
    if not cc.INSTANCES.is_dir() or os.geteuid() != 0:
        yield
        return
    before = cc.instance_names()
    yield
    leaked = _leaked(before)
    for name in leaked:
        pid = cc.owner_pid(name)
        if pid is not None and pid != os.getpid() and cc.pid_alive(pid) and \
                (pid in cc.SPAWNED or cc.is_descendant(pid)):
            try:
                os.kill(pid, signal.SIGKILL)  # a process this test started
            except OSError:
                pass
            if pid in cc.SPAWNED:
                cc.stop(cc.SPAWNED[pid])
        cc.remove_instance(name)
    for p in list(cc.SPAWNED.values()):  # nothing a test started outlives it
        if p.poll() is None:
            cc.stop(p)
    assert not leaked, f"tracing instance(s) left behind: {leaked}"


@pytest.fixture(scope="session")
def workload_capture(tmp_path_factory):
    """One capture with the default event set of the pipe workload: ``(capture path, Result)``."""
    need("tracefs")
    out = tmp_path_factory.mktemp("workload") / "run.ftipc"
    r = cc.cli("capture", "-o", str(out), "--", cc.PY, "-c", cc.WORKLOAD, timeout=60)
    return out, r


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory):
    """One real Neo4j 5.26 (scripts/neo4j) for the test session's detector and analyze tests;
    skips only when there is no Java 17+ or the jars can be neither found nor fetched."""
    import secrets

    from neo4j_setup import ensure_jars, ns

    ensure_jars()
    s = ns.Neo4jServer.start(tmp_path_factory.mktemp("neo4j-session"), password="pw-" + secrets.token_hex(8),
                             jvm_options=["-XX:TieredStopAtLevel=1"])
    try:
        yield s
    finally:
        s.stop()
