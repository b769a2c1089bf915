"""``ftraceipc export --pyvis/--perfetto``, ``ftraceipc report --html`` and ``capture --html/--pyvis``
(issue #5) from the command line: the files are written, whole (no half file on a failure), and
self-contained; the pages and the timeline are checked in depth by test_graphview_browser.py,
test_html_report_browser.py and test_perfetto_export.py. Bad input is one ``ftraceipc: error:`` line."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import capture_cli as cc  # noqa: E402
from components import need, requires  # noqa: E402
from test_cli_model import assert_one_error_line  # noqa: E402

needs_capture = requires("tracefs")
URL = re.compile(r"""(?:src|href)\s*=\s*["']?https?://""", re.I)


@pytest.fixture(scope="module")
def herd(tmp_path_factory):
    need("tracefs")
    from truth_check import capture_sample

    cap, _meta, truth = capture_sample(tmp_path_factory.mktemp("pictures"), "herd")
    return cap, truth


@needs_capture
def test_export_writes_the_graph_and_the_timeline(herd, tmp_path):
    from ftraceipc.report.perfetto import validate_trace_events

    cap, truth = herd
    g, t = tmp_path / "graph.html", tmp_path / "trace.json"
    r = cc.cli("export", cap, "--pyvis", g, "--perfetto", t, timeout=180)
    assert r.returncode == 0, r.stderr
    assert f"wrote {g}" in r.stdout and f"wrote {t}" in r.stdout
    page = g.read_text()
    assert page.lstrip().lower().startswith("<!doctype html") or page.lstrip().lower().startswith("<html")
    assert not URL.search(page), URL.search(page)
    trace = json.loads(t.read_text())
    assert validate_trace_events(trace) == []
    tids = {e.get("tid") for e in trace["traceEvents"]}
    assert {x["tid"] for x in truth["tasks"]} <= tids
    assert not list(tmp_path.glob(".*.tmp"))
    assert not (cap / "model").exists()  # the episode tables went to a temporary directory
    # existing files need --force
    assert_one_error_line(cc.cli("export", cap, "--pyvis", g), f"{g} exists", "--force")
    r = cc.cli("export", cap, "--pyvis", g, "--force", "--ungroup", "--all-tasks", timeout=180)
    assert r.returncode == 0, r.stderr


@needs_capture
def test_report_writes_one_page_with_the_findings(herd, tmp_path):
    cap, _ = herd
    out = tmp_path / "report.html"
    r = cc.cli("report", cap, "--html", out, timeout=180)
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert "thundering_herd" in page and "EPOLLEXCLUSIVE" in page
    assert not URL.search(page)


@needs_capture
def test_capture_writes_the_pictures_at_the_end(tmp_path):
    cap, rep, graph = tmp_path / "c.ftipc", tmp_path / "r.html", tmp_path / "g.html"
    r = cc.run([sys.executable, "-m", "ftraceipc", "capture", "-o", str(cap), "--html", str(rep), "--pyvis",
                str(graph), "--", sys.executable, str(Path(cc.REPO) / "samples" / "pipeline.py"), "--truth",
                str(tmp_path / "t.json")], timeout=240)
    assert r.returncode == 0, r.stderr
    assert f"wrote {graph}" in r.stderr and f"wrote {rep}" in r.stderr
    assert rep.stat().st_size > 1000 and graph.stat().st_size > 1000


def test_pictures_bad_input(tmp_path):
    assert_one_error_line(cc.cli("export", tmp_path / "nope.ftipc", "--pyvis", tmp_path / "g.html"), "no capture at")
    assert_one_error_line(cc.cli("export", tmp_path), "nothing to export", "--pyvis")
    assert_one_error_line(cc.cli("report", tmp_path, "--html", tmp_path), "is a directory")
    assert_one_error_line(cc.cli("report", tmp_path, "--html", tmp_path / "no" / "r.html"), "is not a directory")
    assert_one_error_line(cc.cli("report", tmp_path), "--html")
    # click's own usage errors are one line too, with where to look
    assert_one_error_line(cc.cli("report"), "Missing argument 'capture'", "ftraceipc report --help")
    assert_one_error_line(cc.cli("export", tmp_path, "--bogus"), "No such option: --bogus")
    assert_one_error_line(cc.cli("nosuch"), "No such command 'nosuch'", "ftraceipc --help")
    assert not list(tmp_path.iterdir())


@needs_capture
def test_capture_refuses_pictures_without_the_model(tmp_path):
    before = cc.instance_names()
    r = cc.cli("capture", "-o", tmp_path / "x.ftipc", "--no-model", "--html", tmp_path / "r.html", "--", "true")
    assert_one_error_line(r, "--html and --pyvis need the model")
    assert not (tmp_path / "x.ftipc").exists() and cc.instance_names() <= before
