"""The parts of live mode that need no tracing: the watermarks shared with forked readers, the JSON
lines writer, and when a finding is emitted again."""

from __future__ import annotations

import json
import os

from ftraceipc.capture.reader import Watermarks
from ftraceipc.detect.finding import Finding
from ftraceipc.live.engine import MATERIAL, Emitter, _moved, finding_id


def test_watermarks_written_in_a_forked_child_are_read_by_the_parent():
    m = Watermarks([0, 3])
    assert m.all() == {0: -1, 3: -1} and m.get("proc") == -1
    pid = os.fork()
    if pid == 0:
        m.set(3, 123456789012345)
        m.set("proc", 42)
        os._exit(0)
    os.waitpid(pid, 0)
    assert m.all() == {0: -1, 3: 123456789012345}
    assert m.get("proc") == 42


def test_emitter_writes_whole_lines_even_past_a_pipe_buffer():
    r, w = os.pipe()
    big = {"type": "end", "findings": ["x" * 1000] * 200}  # 200 kB: several writes
    pid = os.fork()
    if pid == 0:
        os.close(r)
        Emitter(w)(big)
        Emitter(w)({"type": "status"})
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.waitpid(pid, 0)
    lines = data.decode().splitlines()
    assert [json.loads(ln)["type"] for ln in lines] == ["end", "status"]
    assert json.loads(lines[0]) == big


def _f(count=10, critical=1000, asleep=2000, tasks=(1, 2), resources=("pipe:7",)):
    return Finding(pattern="wait_chain", tasks=list(tasks), resources=list(resources), count=count,
                   critical_ns=critical, asleep_ns=asleep, explanation="", suggestion="")


def test_a_finding_is_named_by_its_pattern_and_the_sets_of_its_tasks_and_resources():
    assert finding_id(_f()) == "wait_chain:1,2:pipe:7"
    assert finding_id(_f(count=99)) == finding_id(_f())
    assert finding_id(_f(tasks=(2, 1))) == finding_id(_f())  # a bottleneck's stalled tasks move in its list
    assert finding_id(_f(tasks=(1, 3))) != finding_id(_f())
    assert finding_id(_f().to_json()) == finding_id(_f())


def test_a_finding_is_emitted_again_only_when_a_measure_moves_materially():
    a = _f()
    assert not _moved(a, _f(count=12))  # +20 %
    assert _moved(a, _f(count=20))  # doubled
    assert MATERIAL == 0.25
    assert _moved(a, _f(critical=2000))
    assert _moved(a, _f(asleep=1000))
    assert not _moved(_f(count=0, critical=0, asleep=0), _f(count=0, critical=0, asleep=0))



def test_the_follower_reads_only_the_neo4j_mirrors_whole_result_files(tmp_path):
    """The analysis process leaves other files beside neo4j-N.json (its sync state across an exec,
    a result being written): the follower reads only the finished .json and .err files."""
    import pickle

    from ftraceipc.live.engine import LiveAnalysis, LiveOptions, TraceNow

    lines = []
    la = LiveAnalysis(tmp_path, None, LiveOptions(), lines.append, TraceNow(None))
    try:
        (la.tmp / "analyzer-neo4j-state.pkl").write_bytes(pickle.dumps({"x": b"\x80\x81"}))
        (la.tmp / ".neo4j-4.tmp").write_text('{"seconds": 0.1, "wri')
        (la.tmp / "neo4j-3.json").write_text('{"seconds": 0.5, "written": 7, "rows": 90}')
        (la.tmp / "neo4j-5.err").write_text("ServiceUnavailable: gone")
        la._neo4j()
        assert (la.neo4j_rows, la.neo4j_written, la.neo4j_s) == (90, 7, 0.5)
        assert [ln["type"] for ln in lines] == ["error"] and "analysis 5" in lines[0]["message"]
        assert sorted(p.name for p in la.tmp.iterdir()) == [".neo4j-4.tmp", "analyzer-neo4j-state.pkl"]
    finally:
        la.close()
    assert not la.tmp.exists()


def test_the_analysis_process_warms_up_on_an_empty_graph_of_the_schema(tmp_path):
    """Before its first model: the embedded graph is open with every table of the schema, and the
    detectors have run on it (empty: no finding, no error), so the first analysis is not a cold one."""
    from ftraceipc.graph.schema import NODE_TABLES, REL_TABLES
    from ftraceipc.live.engine import Analyzer, LiveOptions, _Database

    db = _Database(tmp_path)
    r, w = os.pipe()  # the request pipe: nothing asked
    try:
        Analyzer(tmp_path, LiveOptions(detectors=["bottleneck", "wait_chain"]))._warm_up(db, r)
        assert db.g is not None
        have = {t.lower() for t in db.g.tables()}
        assert {t.lower() for t in [*NODE_TABLES, *REL_TABLES]} <= have
        from ftraceipc.detect.run import run_detectors

        assert run_detectors(db.g, capture_id="") == []
    finally:
        db.close()
        os.close(r)
        os.close(w)
    assert not list(tmp_path.glob("live-0.lbug*"))


def test_the_warm_up_stops_as_soon_as_an_analysis_is_asked_for(tmp_path, monkeypatch):
    """The detectors are warmed as many at a time as the end's analysis runs them, and none once a
    request is waiting on the pipe (a run shorter than the warm-up waits for the imports only)."""
    import ftraceipc.detect.run as run
    from ftraceipc.live.engine import Analyzer, LiveOptions, _Database

    warmed: list[list[str]] = []
    real = run.run_detectors
    monkeypatch.setattr(run, "run_detectors", lambda g, **k: warmed.append(list(k["only"])) or real(g, **k))
    ids = ["bottleneck", "wait_chain", "wait_cycle"]
    db = _Database(tmp_path)
    r, w = os.pipe()
    try:
        a = Analyzer(tmp_path, LiveOptions(detectors=ids))
        a._warm_up(db, r)
        n = run.DEFAULT_WORKERS
        assert warmed == [ids[i:i + n] for i in range(0, len(ids), n)]
        warmed.clear()
        os.write(w, b"1\n")  # an analysis asked for
        a._warm_up(db, r)
        assert warmed == [] and db.g is not None  # the graph is open, no detector ran
        assert os.read(r, 16) == b"1\n"  # the request is left for the analysis
    finally:
        db.close()
        os.close(r)
        os.close(w)


def test_the_cpu_of_a_process_of_ours_that_exited_still_counts():
    """--budget's cost: a capture process that exits keeps the CPU seconds it used (its /proc entry
    is gone, its time went to its parent), so the estimate never goes down."""
    import subprocess
    import sys
    import time

    from ftraceipc.live.engine import CpuSeen

    p = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                          "while time.process_time() - t < 0.3: pass\ninput()"], stdin=subprocess.PIPE)
    try:
        seen = CpuSeen()
        used = 0.0
        for _ in range(100):
            used = seen.total([p.pid])
            if used >= 0.25:
                break
            time.sleep(0.05)
        assert used >= 0.25
    finally:
        p.communicate(b"\n", timeout=10)
    assert p.returncode == 0
    assert seen.total([p.pid]) == used  # gone: as last seen, not 0
