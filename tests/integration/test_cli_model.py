"""``ftraceipc model``: bad input refused with one ``ftraceipc: error: ...`` line before any work, and
(once ``ftraceipc.model.build`` is there, as root) every format written for a real capture of the
pipeline sample."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import capture_cli as cc  # noqa: E402
from components import need  # noqa: E402


def assert_one_error_line(r: cc.Result, *needles: str) -> str:
    assert r.returncode != 0, f"exit 0 for {r.argv}: {r.stderr}"
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    lines = r.error_lines()
    assert len(lines) == 1, f"expected one error line, got {lines}"
    assert lines[0].startswith("ftraceipc: error: "), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert r.stdout == ""
    return lines[0]


@pytest.fixture
def fake_capture(tmp_path) -> Path:
    """A directory that passes the 'is it a capture' check (the option checks come first anyway)."""
    cap = tmp_path / "fake.ftipc"
    cap.mkdir()
    (cap / "meta.json").write_text(json.dumps({"format_version": 1}))
    return cap


# --- bad input ------------------------------------------------------------------------------------------
def test_missing_capture_dir(tmp_path):
    r = cc.cli("model", tmp_path / "nope.ftipc")
    assert_one_error_line(r, "no capture at", "nope.ftipc")
    assert r.returncode == 2


def test_not_a_capture(tmp_path):
    (tmp_path / "some-dir").mkdir()
    r = cc.cli("model", tmp_path / "some-dir")
    assert_one_error_line(r, "is not an ftraceipc capture", "meta.json")
    assert r.returncode == 4


def test_a_file_is_not_a_capture(tmp_path):
    f = tmp_path / "run.json"
    f.write_text("{}")
    assert_one_error_line(cc.cli("model", f), "is not an ftraceipc capture")


def test_unsupported_capture_version(tmp_path):
    cap = tmp_path / "v9.ftipc"
    cap.mkdir()
    (cap / "meta.json").write_text(json.dumps({"format_version": 9}))
    assert_one_error_line(cc.cli("model", cap), "unsupported capture format version 9")


def test_bad_format(fake_capture):
    r = cc.cli("model", fake_capture, "--format", "xml")
    assert_one_error_line(r, "--format 'xml' is not one of text, json, csv, parquet")
    assert r.returncode == 2


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_formats_need_output(fake_capture, fmt):
    assert_one_error_line(cc.cli("model", fake_capture, "--format", fmt), f"--format {fmt}", "add --output DIR")


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_existing_output_without_force(fake_capture, tmp_path, fmt):
    out = tmp_path / "out"
    out.mkdir()
    (out / "tasks.csv").write_text("keep")
    r = cc.cli("model", fake_capture, "--format", fmt, "--output", out)
    assert_one_error_line(r, str(out), "exists", "--force")
    assert (out / "tasks.csv").read_text() == "keep"


def test_force_never_replaces_a_directory_that_is_not_an_export(fake_capture, tmp_path):
    out = tmp_path / "home"
    out.mkdir()
    (out / "thesis.tex").write_text("keep")
    r = cc.cli("model", fake_capture, "--format", "csv", "--output", out, "--force")
    assert_one_error_line(r, "not replacing it")
    assert (out / "thesis.tex").read_text() == "keep"


def test_output_in_a_missing_directory(fake_capture, tmp_path):
    r = cc.cli("model", fake_capture, "--format", "json", "--output", tmp_path / "no" / "such" / "x.json")
    assert_one_error_line(r, "is not a directory")


def test_help_has_examples():
    r = cc.cli("model", "--help")
    assert r.returncode == 0
    assert "ftraceipc model run.ftipc" in r.stdout and "--episodes" in r.stdout
    assert "ftraceipc model run.ftipc" in cc.cli("--help").stdout


# --- a real capture ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipeline_capture(tmp_path_factory):
    need("tracefs")
    from truth_check import capture_sample

    tmp = tmp_path_factory.mktemp("model-cli")
    cap, meta, truth = capture_sample(tmp, "pipeline")
    return tmp, cap, truth


@pytest.mark.root
def test_model_of_pipeline_capture_in_every_format(pipeline_capture):
    tmp, cap, truth = pipeline_capture
    tids = {t["role"]: t["tid"] for t in truth["tasks"]}
    pipes = {r["rid"] for r in truth["resources"]}

    # json: the three flows gen -> upper -> grep -> count carry exactly what was written into each pipe
    r = cc.cli("model", cap, "--format", "json", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    d = json.loads(r.stdout)
    assert {t["tid"] for t in d["tasks"]} >= set(tids.values())
    assert pipes <= {x["rid"] for x in d["resources"]}
    for e in d["edges"]:
        assert {"type", "src", "dst"} <= set(e)
    written = {(e["tid"], e["rid"]): e["bytes"] for e in truth["io"] if e["op"] == "write"}
    flows = {(e["src"], e["dst"], e["via"]): e["bytes"] for e in d["edges"] if e["type"] == "FLOWS"}
    for w, rd in (("gen", "upper"), ("upper", "grep"), ("grep", "count")):
        (via,) = [rid for (tid, rid) in written if tid == tids[w]]
        assert flows.get((tids[w], tids[rd], via)) == written[(tids[w], via)], (w, rd, flows)
    # the command's critical path: its segments add up to its wall time
    cp = d["critical_path"]
    assert cp["root"] == d["meta"]["command_pid"] and cp["wall_ns"] == cp["end_ts"] - cp["start_ts"] > 0
    assert sum(x["dur_ns"] for x in cp["segments"]) == sum(x["crit_ns"] for x in cp["tasks"]) == cp["wall_ns"]

    # text: the report names the talkers
    r = cc.cli("model", cap, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Top talkers (flows by bytes)" in r.stdout and f"[{tids['gen']}]" in r.stdout
    assert "Not attributed" in r.stdout

    # csv with episodes: the nine tables, one BLOCKED_ON row per episode in episodes.csv
    out = tmp / "tables"
    r = cc.cli("model", cap, "--format", "csv", "--episodes", "--output", out, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["critical_path.csv", "critical_resources.csv",
                                                      "critical_tasks.csv", "critical_waits.csv", "edges.csv",
                                                      "episodes.csv", "resources.csv", "tasks.csv", "wakeups.csv"]
    with open(out / "edges.csv", newline="") as f:
        edges = list(csv.DictReader(f))
    assert {e["type"] for e in edges} >= {"WRITES", "READS", "FLOWS"}
    with open(out / "episodes.csv", newline="") as f:
        n_episodes = sum(1 for _ in csv.DictReader(f))
    with open(out / "wakeups.csv", newline="") as f:
        n_wakeups = sum(1 for _ in csv.DictReader(f))
    r = cc.cli("model", cap, "--format", "csv", "--output", out, timeout=120)
    assert_one_error_line(r, "exists")
    r = cc.cli("model", cap, "--format", "parquet", "--output", out, "--force", timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["critical_path.parquet", "critical_resources.parquet",
                                                      "critical_tasks.parquet", "critical_waits.parquet",
                                                      "edges.parquet", "resources.parquet", "tasks.parquet"]
    assert [p for p in tmp.iterdir() if p.name.startswith(".")] == [], "temporary output left behind"

    # json with episodes: one marked edge per row of episodes.csv and wakeups.csv
    r = cc.cli("model", cap, "--format", "json", "--episodes", "-o", tmp / "ep.json", timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp / "ep.json").read_text())
    ep = [e for e in d["edges"] if e.get("episode")]
    assert sum(e["type"] == "BLOCKED_ON" for e in ep) == n_episodes
    assert sum(e["type"] == "WAKES" for e in ep) == n_wakeups
    assert len(ep) == n_episodes + n_wakeups
