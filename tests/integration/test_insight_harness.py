"""bench/insight.py end to end on one quick case: the harness's own outputs (not the tool's verdict,
which the detectors decide): both variants timed untraced, the as-is and fixed variants captured and
analyzed, the verdicts filled in, EVALUATION.md and the results JSON written, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from components import requires

REPO = Path(__file__).resolve().parents[2]
pytestmark = requires("tracefs")


def test_one_quick_case_end_to_end_writes_the_table_and_the_results(tmp_path):
    res, doc, keep = tmp_path / "insight.json", tmp_path / "EVALUATION.md", tmp_path / "captures"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, str(REPO / "bench" / "insight.py"), "--quick", "--only", "bursty_pipe",
                        "--json", str(res), "--doc", str(doc), "--keep-captures", str(keep)],
                       capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(res.read_text())
    assert out["args"] == {"runs": 2, "quick": True, "only": ["bursty_pipe"], "untraced_only": False}
    assert out["machine"]["kernel"] == os.uname().release
    (case,) = out["cases"]
    assert case["name"] == "bursty_pipe" and case["error"] is None
    assert case["sizes"] == {"bursts": 40, "work": 20000}
    assert "--pipe-size 1048576" in case["commands"]["fixed"] and "--pipe-size" not in case["commands"]["asis"]
    for v in ("asis", "fixed"):
        u = case["untraced"][v]
        assert len(u["runs"]) == 2 and all(r["wall_s"] > 0 for r in u["runs"])
        assert u["min_s"] <= u["median_s"] <= u["max_s"]
        a = case[f"{v}_analysis"]
        assert Path(a["capture_dir"], "meta.json").is_file()  # kept by --keep-captures
        assert a["wall_ns"] > 0 and isinstance(a["findings"], list)
        for f in a["findings"]:  # every finding's tasks named by comm, from the capture's graph
            assert len(f["comms"]) == len(f["tasks"]) and f["pattern"]
        # the captured command ran the program under test: its tasks are in the capture's graph
    top = case["top_check"]
    assert set(top) == {"pattern", "tasks", "resource", "advice", "right", "missing"}
    assert case["fixed_check"]["check"] == "absent"
    assert case["savings"]["measured_pct"] is not None
    md = doc.read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| bursty_pipe "))
    assert f"{case['untraced']['asis']['median_s']:.2f} s / {case['untraced']['fixed']['median_s']:.2f} s" in row
    assert "--quick --only bursty_pipe" in md and "### bursty_pipe" in md


def test_list_names_every_case_and_an_unknown_case_is_one_error_line():
    p = subprocess.run([sys.executable, str(REPO / "bench" / "insight.py"), "--list"], capture_output=True, text=True)
    assert p.returncode == 0 and "bursty_pipe" in p.stdout and "control_hackbench_sockets" in p.stdout
    p = subprocess.run([sys.executable, str(REPO / "bench" / "insight.py"), "--only", "nope"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.strip() == "insight.py: unknown case nope; see --list"
