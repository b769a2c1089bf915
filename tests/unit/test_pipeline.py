"""ftraceipc.detect.pipeline.analyze, the one home of the analysis, on a hand-built model in the
embedded graph (LadybugDB, a real database in a temporary file): what it runs, in which scope, with
which parameters, what it says when a detector cannot run, and the critical path it reports."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hand_graphs import GZ, MS, SEQ, SH, WALL, WC, pipeline_model  # noqa: E402

from ftraceipc.detect import DETECTORS  # noqa: E402
from ftraceipc.detect.pipeline import Backend, analyze  # noqa: E402
from ftraceipc.errors import FtraceIPCError  # noqa: E402
from ftraceipc.model import ipc  # noqa: E402


def test_analyze_a_model_runs_every_detector_and_ranks_by_the_critical_path(tmp_path):
    a = analyze(pipeline_model(), backend=Backend(path=tmp_path / "g.lbug"))
    assert a.detectors == list(DETECTORS) and a.ran == list(DETECTORS) and a.not_run == []
    assert a.backend == "embedded graph.lbug" and a.capture_id == "bneck" and (tmp_path / "g.lbug").exists()
    assert (a.critical.root, a.critical.root_label, a.critical.wall_ns) == (SH, "sh[10]", WALL)
    assert [f.rank for f in a.findings] == list(range(1, len(a.findings) + 1))
    keys = [(f.critical_ns, f.asleep_ns) for f in a.findings]
    assert keys == sorted(keys, reverse=True) and all(0 <= c <= WALL for c, _ in keys)
    b = next(f for f in a.findings if f.pattern == "bottleneck")
    assert b.tasks[0] == GZ and b.critical_ns == 830 * MS and SEQ in b.tasks  # its lead over wc (8 %)
    assert a.to_json()["capture"]["critical_path"]["wall_ns"] == WALL


def test_analyze_passes_detector_selection_and_parameters(tmp_path):
    path = Backend(path=tmp_path / "g.lbug")
    a = analyze(pipeline_model(), backend=path, detectors=["bottleneck"])
    assert a.detectors == ["bottleneck"] and [f.tasks[0] for f in a.findings] == [GZ]
    a = analyze(pipeline_model(), backend=path, detectors=["bottleneck"], params={"bottleneck": {"min_percent": 5}})
    [b] = a.findings  # one bottleneck: wc (8 %) is where the path goes next, not a second bottleneck
    assert b.tasks[0] == GZ and b.details["next_tid"] == WC and b.details["next_percent"] == 8
    assert "Next on the path: wc[" in b.explanation and "saves up to 830.0 ms (83 % of the wall time)" in b.explanation
    with pytest.raises(FtraceIPCError, match="unknown detector 'nope'"):
        analyze(pipeline_model(), backend=path, detectors=["nope"])


def test_analyze_scopes_to_the_command_tree_unless_all_tasks(tmp_path):
    m = pipeline_model()
    m.meta = {"command_pid": 999, "command": ["x"]}  # a command none of whose tasks is in the model
    m.tasks = m.tasks.copy()
    m.tasks.loc[m.tasks["tid"] == SEQ, ["pid", "ppid"]] = [999, 0]  # only seq is the command's
    a = analyze(m, backend=Backend(path=tmp_path / "g.lbug"))
    assert a.scope.startswith("the command's 1 process") and all(SEQ in f.tasks for f in a.findings)
    assert any(f.pattern == "bottleneck" for f in a.findings)  # seq is one of its tasks (back-pressure)
    every = analyze(m, backend=Backend(path=tmp_path / "g.lbug"), all_tasks=True)
    assert len(every.findings) > len(a.findings)


def test_a_detector_the_capture_cannot_feed_is_listed_not_run(tmp_path):
    m = pipeline_model()
    m.gaps = [ipc.Gap(("sched:sched_waking",), ("WAKES", "WAITS_FOR"), "WAKES: no sched:sched_waking events")]
    a = analyze(m, backend=Backend(path=tmp_path / "g.lbug"))
    skipped = {s.detector for s in a.not_run}
    # every detector reads WAKES or WAITS_FOR (full_buffer_stall: whether its readers waited for the writer)
    assert skipped == set(DETECTORS) and a.ran == [] and a.findings == []
    assert any("bottleneck" in w.line() for w in a.warnings)


def test_findings_under_min_share_of_the_path_are_left_out_with_a_note(tmp_path):
    path = Backend(path=tmp_path / "g.lbug")
    a = analyze(pipeline_model(), backend=path, min_share=90)
    assert a.findings and a.minor, (a.findings, a.minor)
    assert all(f.critical_ns * 100 >= 90 * WALL for f in a.findings)
    assert all(f.critical_ns * 100 < 90 * WALL for f in a.minor)
    assert [f.rank for f in a.findings] == list(range(1, len(a.findings) + 1))
    assert [f.rank for f in a.minor] == list(range(1, len(a.minor) + 1))
    n = len(a.minor)
    assert a.notes == [f"{n} finding{'s' if n != 1 else ''} under 90 % of the critical path left out "
                       "(--min-share 0 shows them)"]
    j = a.to_json()
    assert list(j) == ["capture", "warnings", "findings"] and len(j["capture"]["minor_findings"]) == n
    every = analyze(pipeline_model(), backend=path, min_share=0)
    assert len(every.findings) == len(a.findings) + n and every.minor == [] and every.notes == []
    default = analyze(pipeline_model(), backend=path)  # 2 %: the bottleneck (83 %) and the stall stay
    assert {f.pattern for f in default.findings} >= {"bottleneck", "full_buffer_stall"}
    assert all(f.critical_ns * 100 >= 2 * WALL for f in default.findings)
    assert analyze(pipeline_model(), backend=path, min_share=90, all_tasks=True).minor == []  # not the command's path


def test_analyze_min_share_out_of_range_is_one_error_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-m", "ftraceipc", "analyze", str(tmp_path), "--min-share", "150"],
                       capture_output=True, text=True, env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
                       timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0] == "ftraceipc: error: --min-share must be between 0 and 100 (got 150)", lines
