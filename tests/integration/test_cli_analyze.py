"""``ftraceipc analyze`` and the findings at the end of ``ftraceipc capture``: a real capture of a planted
sample (samples/herd.py, a thundering herd) analysed on the embedded graph and on a real Neo4j 5.26
(the same findings), the JSON keys the issue names, the text report's explanation, suggestion and
Neo4j Browser query (run on Neo4j: it shows the finding's tasks), a capture with nothing to find, a
graph made by an older version rebuilt, and bad input as one ``ftraceipc: error:`` line."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import capture_cli as cc  # noqa: E402
from components import need, requires  # noqa: E402
from test_cli_model import assert_one_error_line  # noqa: E402

needs_capture = requires("tracefs")
KEYS = ["pattern", "tasks", "resources", "count", "critical_ns", "asleep_ns", "explanation", "suggestion"]


@pytest.fixture(scope="module")
def herd(tmp_path_factory):
    """The herd sample captured with ``ftraceipc capture`` (graph and findings at the end)."""
    need("tracefs")
    tmp = tmp_path_factory.mktemp("analyze")
    cap, truth_path = tmp / "herd.ftipc", tmp / "truth.json"
    r = cc.run([sys.executable, "-m", "ftraceipc", "capture", "-o", str(cap), "--", sys.executable,
                str(Path(cc.REPO) / "samples" / "herd.py"), "--truth", str(truth_path)], timeout=180)
    assert r.returncode == 0, r.stderr
    return cap, json.loads(truth_path.read_text()), r.stderr


def findings_of(stdout: str) -> list[dict]:
    """The findings of ``analyze --format json`` (``{"capture", "warnings", "findings"}``)."""
    d = json.loads(stdout)
    assert list(d) == ["capture", "warnings", "findings"], list(d)
    return d["findings"]


def key(findings: list[dict]) -> list[tuple]:
    return [(f["pattern"], tuple(f["tasks"]), tuple(f["resources"]), f["count"], f["critical_ns"], f["asleep_ns"])
            for f in findings]


@needs_capture
def test_capture_builds_the_graph_and_names_the_top_findings(herd):
    cap, truth, stderr = herd
    assert (cap / "graph.lbug").exists()
    lines = stderr.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith("Findings: "))
    assert f"ftraceipc analyze {cap}" in lines[i]
    assert any(ln.startswith("  #1 ") for ln in lines[i + 1:])
    # in the top 3, or named on the line of the findings under 2 % of the path (samples/herd.py's herd is
    # 2-5 % of it), with the command that shows them
    herd = [ln for ln in lines[i + 1:i + 5] if "thundering_herd" in ln]
    assert herd and (herd[0].startswith("  #") or f"--min-share 0 {cap}" in herd[0]), lines[i:]


@needs_capture
def test_analyze_json_ranks_findings_with_the_issue_keys(herd):
    cap, truth, _ = herd
    r = cc.cli("analyze", cap, "--format", "json", "--min-share", "0", timeout=120)  # the herd is 2-5 % of the path
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["warnings"] == [] and d["capture"]["not_run"] == []  # a whole capture: nothing missing
    assert d["capture"]["path"] == str(cap) and len(d["capture"]["id"]) == 12
    found = findings_of(r.stdout)
    assert isinstance(found, list) and found
    for rank, f in enumerate(found, 1):
        assert list(f)[:1] == ["rank"] and f["rank"] == rank
        assert all(k in f for k in KEYS), f.keys()
        assert isinstance(f["explanation"], str) and len(f["explanation"]) > 40
        assert isinstance(f["suggestion"], str) and len(f["suggestion"]) > 40
        assert all(isinstance(t, int) for t in f["tasks"]) and all(isinstance(x, str) for x in f["resources"])
    ranked = [(f["critical_ns"], f["asleep_ns"]) for f in found]
    assert ranked == sorted(ranked, reverse=True)  # by the critical path, then asleep
    wall = d["capture"]["critical_path"]["wall_ns"]
    assert wall > 0 and all(0 <= f["critical_ns"] <= wall for f in found) and all("lost_ns" not in f for f in found)
    # only the command's processes: every finding names one of its tasks
    tids = {t["tid"] for t in truth["tasks"]}
    assert all(set(f["tasks"]) & tids for f in found)
    roles = {t["role"]: t["tid"] for t in truth["tasks"]}
    herd_f = [f for f in found if f["pattern"] == "thundering_herd"]
    assert len(herd_f) == 1
    waiters = sorted(tid for role, tid in roles.items() if role.startswith("waiter-"))
    assert herd_f[0]["tasks"][0] == roles["writer"] and sorted(herd_f[0]["tasks"][1:]) == waiters
    assert herd_f[0]["resources"] == [truth["resources"][0]["rid"]]
    assert "EPOLLEXCLUSIVE" in herd_f[0]["suggestion"]
    assert f"[{roles['writer']}]" in herd_f[0]["explanation"]
    # the same numbers as the detector's own row
    r2 = cc.cli("query", cap, "thundering_herd", "-p", "min_wakees=3", "-p", "min_wakeups=5", "-p", "limit=50",
                "-p", "capture_id=", "-f", "json")  # by name: the header's defaults ($tids = []: every task)
    assert r2.returncode == 0, r2.stderr
    rows = [x for x in json.loads(r2.stdout) if x["tasks"][0] == roles["writer"]]
    assert [(x["count"], x["critical_ns"], x["asleep_ns"]) for x in rows] == [
        (herd_f[0]["count"], herd_f[0]["critical_ns"], herd_f[0]["asleep_ns"])]


@needs_capture
def test_analyze_text_explains_each_finding(herd):
    cap, truth, _ = herd
    r = cc.cli("analyze", cap, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith(f"ftraceipc analyze {cap} (capture ")
    assert re.search(r"^#1 \w+: ", out, re.M)
    assert "\n     why   " in out and "\n     fix   " in out and ":param tids => [" in out
    n = len(re.findall(r"^#\d+ ", out, re.M))
    assert n == len(findings_of(cc.cli("analyze", cap, "-f", "json").stdout))
    r = cc.cli("analyze", cap, "--no-cypher", "-D", "thundering_herd", "--min-share", "0")
    assert r.returncode == 0 and ":param" not in r.stdout and "#1 thundering_herd" in r.stdout
    assert "#2 " not in r.stdout


@needs_capture
def test_analyze_all_tasks_keeps_findings_about_other_tasks(herd):
    cap, _, _ = herd
    some = findings_of(cc.cli("analyze", cap, "-f", "json").stdout)
    every = findings_of(cc.cli("analyze", cap, "-f", "json", "--all-tasks").stdout)
    assert set(key(some)) <= set(key(every))


@needs_capture
def test_analyze_on_neo4j_gives_the_same_findings_and_a_working_browser_query(herd, neo4j_server):
    from ftraceipc.graph.neo4j import Neo4jGraph

    cap, truth, _ = herd
    env = {"NEO4J_PASSWORD": neo4j_server.auth[1], "NEO4J_USER": neo4j_server.auth[0]}
    embedded = findings_of(cc.cli("analyze", cap, "-f", "json").stdout)
    r = cc.cli("analyze", cap, "-f", "json", "--neo4j", neo4j_server.uri, env_extra=env, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "loading capture" in r.stderr  # not in the database yet
    on_neo = findings_of(r.stdout)
    assert key(on_neo) == key(embedded)
    assert [f["explanation"] for f in on_neo] == [f["explanation"] for f in embedded]
    r = cc.cli("analyze", cap, "-f", "json", "--neo4j", neo4j_server.uri, env_extra=env, timeout=180)
    assert r.returncode == 0 and "loading" not in r.stderr  # loaded once
    assert key(findings_of(r.stdout)) == key(embedded)
    # the Browser query of a finding: its :param lines and the MATCH, run as Browser would
    f = on_neo[0]
    params = {}
    lines = f["cypher"].splitlines()
    for ln in lines:
        m = re.match(r":param (\w+) => (.*)$", ln)
        if m:
            params[m.group(1)] = json.loads(m.group(2))
    text = "\n".join(ln for ln in lines if not ln.startswith(":param"))
    with Neo4jGraph.connect(neo4j_server.uri, *neo4j_server.auth) as g:
        rows = g.query(text.replace("RETURN t, e, n", "RETURN t.tid AS t, type(e) AS e, n.tid AS nt, n.rid AS nr"),
                       params)
    assert set(rows["t"]) <= set(f["tasks"])
    assert len(rows) > 0
    assert set(rows["nr"].dropna()) <= set(f["resources"])


@needs_capture
def test_analyze_rebuilds_a_graph_made_by_an_older_version(herd, tmp_path):
    from ftraceipc.graph.ladybug import LadybugGraph

    cap, _, _ = herd
    copy = tmp_path / "old.ftipc"
    shutil.copytree(cap, copy)
    with LadybugGraph.open(copy / "graph.lbug") as g:
        g.query("DROP TABLE WAITS_FOR")
    r = cc.cli("analyze", copy, "-f", "json", timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith(f"ftraceipc: built {copy / 'graph.lbug'}")
    assert key(findings_of(r.stdout)) == key(findings_of(cc.cli("analyze", cap, "-f", "json").stdout))


@needs_capture
def test_analyze_with_nothing_found_says_so(tmp_path_factory):
    from truth_check import capture_sample

    cap, _, _ = capture_sample(tmp_path_factory.mktemp("quiet"), "fanin")
    r = cc.cli("analyze", cap, "-D", "thundering_herd", "-D", "wait_cycle", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "0 findings" in r.stdout and "No inefficient interaction found" in r.stdout
    r = cc.cli("analyze", cap, "-D", "thundering_herd", "-D", "wait_cycle", "-f", "json")
    assert r.returncode == 0 and findings_of(r.stdout) == []
    assert json.loads(r.stdout)["warnings"] == [] and json.loads(r.stdout)["capture"]["not_run"] == []


def test_analyze_bad_input(tmp_path):
    assert_one_error_line(cc.cli("analyze", tmp_path / "nope.ftipc"), "no capture at")
    assert_one_error_line(cc.cli("analyze", tmp_path), "is not an ftraceipc capture")
    assert not (tmp_path / "graph.lbug").exists()  # nothing made in a directory that is not a capture
    assert_one_error_line(cc.cli("analyze", tmp_path, "--format", "xml"), "--format")
    assert_one_error_line(cc.cli("analyze", tmp_path, "-D", "nope"), "not a detector", "wait_chain")


@needs_capture
def test_analyze_neo4j_errors_are_one_line(herd, neo4j_server):
    cap, _, _ = herd
    assert_one_error_line(cc.cli("analyze", cap, "--neo4j", "localhost:7687"), "is not a URI")
    r = cc.cli("analyze", cap, "--neo4j", "bolt://127.0.0.1:1", env_extra={"NEO4J_PASSWORD": "x-secret-x"})
    line = assert_one_error_line(r, "cannot reach Neo4j at bolt://127.0.0.1:1")
    assert "x-secret-x" not in line
    r = cc.cli("analyze", cap, "--neo4j", neo4j_server.uri, env_extra={"NEO4J_PASSWORD": "wrong-password-1"},
               timeout=60)
    line = assert_one_error_line(r)
    assert "wrong-password-1" not in line and ("auth" in line.lower() or "password" in line.lower()), line


@needs_capture
def test_analyze_neo4j_password_from_the_config_file(herd, neo4j_server, tmp_path):
    cap, _, _ = herd
    conf = tmp_path / "config.toml"
    conf.write_text(f'[neo4j]\nuser = "{neo4j_server.auth[0]}"\npassword = "{neo4j_server.auth[1]}"\n')
    conf.chmod(0o600)
    env = {"FTRACEIPC_CONFIG": str(conf), "NEO4J_PASSWORD": "", "NEO4J_USER": ""}
    env = {k: v for k, v in env.items() if v}
    r = cc.cli("analyze", cap, "-f", "json", "--neo4j", neo4j_server.uri, env_extra=env, timeout=180)
    assert r.returncode == 0, r.stderr
    assert neo4j_server.auth[1] not in r.stderr + r.stdout
    assert key(findings_of(r.stdout)) == key(findings_of(cc.cli("analyze", cap, "-f", "json").stdout))
    # no password anywhere: one line saying where to put it
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    r = cc.cli("analyze", cap, "--neo4j", neo4j_server.uri, env_extra={"FTRACEIPC_CONFIG": str(empty)})
    assert_one_error_line(r, "no password for Neo4j user", "NEO4J_PASSWORD")


# --- capture --pid: the analysis is about the target's process tree -------------------------------------
_STALLER = r"""
import os, sys, time
r, w = os.pipe()
child = os.fork()
if child == 0:  # the reader: drains a burst in a few ms, then waits on the empty pipe for the next
    os.close(w)
    while os.read(r, 65536):
        time.sleep(0.002)
    os._exit(0)
os.close(r)
print(os.getpid(), child, flush=True)
end = time.time() + 30
while time.time() < end:
    os.write(w, b"x" * 262144)  # a burst 4x the pipe: the writer sleeps until the reader makes room
    time.sleep(0.01)  # then prepares the next one while the reader waits: the two take turns
"""


def _findings(doc):
    return doc["findings"] if isinstance(doc, dict) else doc


@pytest.fixture
def two_stallers():
    """Two copies of a bursty writer stalling on a full pipe while its child reader drains the burst, and
    the reader then waiting for the next: they take turns, the buffer limits (a full_buffer_stall under
    issue #11's rule; a steady writer behind a slow reader would be back-pressure). (pid, child) each."""
    ps = [cc.popen([cc.PY, "-c", _STALLER]) for _ in range(2)]
    try:
        pairs = []
        for p in ps:
            pid, child = map(int, p.stdout.readline().split())
            cc.OWN_PIDS.add(child)
            pairs.append((pid, child))
        yield pairs
    finally:
        for p in ps:
            cc.stop(p)


@needs_capture
def test_capture_pid_scopes_the_analysis_to_the_targets_process_tree(tmp_path, two_stallers):
    (target, child), (other, other_child) = two_stallers
    cap = tmp_path / "pid.ftipc"
    r = cc.cli("capture", "--pid", str(target), "--duration", "2", "-o", cap, timeout=180)
    assert r.returncode == 0, r.stderr
    assert f"(about the 2 processes of pid {target} and descendants;" in r.stderr
    assert "Findings: " in r.stderr
    found = _findings(json.loads(cc.cli("analyze", cap, "-f", "json", timeout=120).stdout))
    assert found and all(set(f["tasks"]) & {target, child} for f in found), [f["tasks"] for f in found]
    stall = [f for f in found if f["pattern"] == "full_buffer_stall"]
    assert [f["tasks"][0] for f in stall] == [target]
    every = _findings(json.loads(cc.cli("analyze", cap, "-f", "json", "--all-tasks", timeout=120).stdout))
    assert other in {f["tasks"][0] for f in every if f["pattern"] == "full_buffer_stall"}  # the other one was there
    text = cc.cli("analyze", cap, timeout=120).stdout
    assert f"for the 2 processes of pid {target} and descendants (--all-tasks: " in text.splitlines()[0]
