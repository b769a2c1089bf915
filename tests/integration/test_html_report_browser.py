"""The HTML report of real captures (samples/herd.py, samples/pipeline.py and a one-task run), checked
against the capture's meta.json and model, then loaded in a real headless Chromium (the kit of
browser.py): no JavaScript error, a screenshot that is not blank.

Expected plot sizes are computed here from the model's own tables (pandas), not by the report's
helpers: the blocked-time plot has one row per task of the command's tree that slept (at most 10),
the latency histogram counts every wakeup of those tasks that ran, the bytes plot one bar per
resource they wrote or read bytes on (at most 15).
"""

from __future__ import annotations

import html
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from components import requires  # noqa: E402
import browser  # noqa: E402
from truth_check import ROOT, capture_sample  # noqa: E402

from ftraceipc.capture.store import CaptureDir  # noqa: E402
from ftraceipc.detect.pipeline import analyze  # noqa: E402
from ftraceipc.model.build import build_model  # noqa: E402
from ftraceipc.model.export import tracer_tids  # noqa: E402
from ftraceipc.model.summary import command_tree  # noqa: E402
from ftraceipc.report.html import write_report  # noqa: E402

pytestmark = requires("tracefs")


class Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: dict[str, dict] = {}
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if "id" in a:
            self.ids[a["id"]] = a


def parse(doc: str) -> Ids:
    p = Ids()
    p.feed(doc)
    return p


class Report:
    def __init__(self, cap: Path, out: Path, truth: dict | None = None):
        self.cap, self.out, self.truth = cap, out, truth
        self.model = build_model(cap, episodes=True)
        # every finding, however small its share of the path (samples/herd.py's herd is 2-5 % of it)
        self.analysis = analyze(self.model, min_share=0)
        t0 = time.perf_counter()
        self.info = write_report(cap, out, model=self.model, analysis=self.analysis)
        self.render_s = time.perf_counter() - t0
        self.doc = out.read_text(encoding="utf-8")
        self.tags = parse(self.doc)
        self.meta = CaptureDir(cap).read_meta()
        tree = command_tree(self.model)
        t = self.model.tasks
        self.tids = {int(x) for x, p in zip(t["tid"], t["pid"]) if tree is None or int(p) in tree} - \
            tracer_tids(self.model)


def _report(tmp_path_factory, sample: str) -> Report:
    tmp = tmp_path_factory.mktemp(sample)
    cap, _meta, truth = capture_sample(tmp, sample)
    return Report(cap, tmp / f"{sample}.html", truth)


@pytest.fixture(scope="module")
def herd(tmp_path_factory):
    return _report(tmp_path_factory, "herd")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    return _report(tmp_path_factory, "pipeline")


@pytest.fixture(scope="module")
def one_task(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("one")
    cap = tmp / "one.ftipc"
    r = subprocess.run([sys.executable, "-m", "ftraceipc", "capture", "-o", str(cap), "--no-model", "--",
                        sys.executable, "-c", "pass"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return Report(cap, tmp / "one.html")


def check_summary(r: Report) -> None:
    ids = r.tags.ids
    assert ids["sum-events"]["data-value"] == str(r.model.stats["events"])
    lost = sum(c.total for c in r.meta.lost.values())
    assert ids["sum-lost"]["data-value"] == str(lost)
    assert r.info["summary"]["lost_events"] == lost
    assert r.info["summary"]["exit_code"] == r.meta.exit_code == 0
    assert r.info["summary"]["duration_ns"] == r.meta.stop_ts - r.meta.start_ts
    text = html.unescape(r.doc)
    assert " ".join(r.meta.command) in text
    assert f"{(r.meta.stop_ts - r.meta.start_ts) / 1e9:.3f} s" in text
    assert ids["sum-tasks"]["data-value"] == str(len(r.tids))
    if lost:
        assert "--buffer-kb" in text


def check_plots(r: Report) -> None:
    ids = r.tags.ids
    ep = r.model.episodes
    ep = ep[ep["tid"].isin(list(r.tids))]
    slept = ep.groupby("tid")["dur_ns"].sum()
    slept = slept[slept > 0]
    assert ids["plot-blocked"]["data-points"] == str(min(10, len(slept)))
    rows = {int(a["data-tid"]): int(a["data-blocked-ns"]) for tag, a in r.tags.tags if tag == "g" and "data-tid" in a}
    top = slept.sort_values(ascending=False)
    assert set(rows) <= set(slept.index) and all(rows[t] == int(slept[t]) for t in rows)
    assert min(rows.values()) >= (int(top.iloc[10]) if len(top) > 10 else 0)
    wu = r.model.wakeups
    wu = wu[wu["wakee"].isin(list(r.tids)) & (wu["wake_to_run_ns"] >= 0)]
    assert ids["plot-wakeup-latency"]["data-total"] == str(len(wu))
    io = r.model.io
    io = io[io["tid"].isin(list(r.tids)) & io["rid"].notna()]
    per = io.groupby("rid")["bytes"].sum()
    assert ids["plot-bytes"]["data-points"] == str(min(15, int((per > 0).sum())))


def check_in_browser(r: Report, png: Path, *, graph_nodes: bool = True) -> dict:
    browser.require()
    page = browser.load(r.out)
    assert page["errors"] == [], page["errors"]
    assert page["ready"], page["body"]
    if graph_nodes and r.info["graph"].get("included"):
        # the embedded graph drew every node and edge it was given (passed up from its iframe)
        assert page["nodes"] and page["nodes"] == r.info["graph"]["nodes"], page["body"]
        assert page["edges"] == r.info["graph"]["edges"], page["body"]
    browser.screenshot(r.out, png)
    assert browser.not_blank(png), browser.pixel_stats(png)
    return page


def test_herd_report(herd, tmp_path):
    check_summary(herd)
    check_plots(herd)
    assert herd.tags.ids["plot-blocked"]["data-points"] == str(1 + herd.truth["planted"]["waiters"])
    herd_f = [f for f in herd.analysis.findings if f.pattern == "thundering_herd"]
    assert herd_f, [f.pattern for f in herd.analysis.findings]
    arts = [a for tag, a in herd.tags.tags if tag == "article"]
    assert "thundering_herd" in [a["data-pattern"] for a in arts]
    text = html.unescape(herd.doc)
    assert herd_f[0].explanation in text and herd_f[0].suggestion in text and herd_f[0].title in text
    assert [f["pattern"] for f in herd.info["findings"]] == [f.pattern for f in herd.analysis.findings]
    print(f"herd report: {herd.info['bytes']:,} bytes in {herd.render_s:.2f} s")
    page = check_in_browser(herd, tmp_path / "herd.png")
    assert "thundering_herd" in page["text"]


def test_pipeline_report(pipeline, tmp_path):
    check_summary(pipeline)
    check_plots(pipeline)
    # the four stages moved bytes through three pipes
    assert int(pipeline.tags.ids["plot-bytes"]["data-points"]) >= 3
    assert "talkers-table" in pipeline.tags.ids
    check_in_browser(pipeline, tmp_path / "pipeline.png")


def test_one_task_report(one_task, tmp_path):
    r = one_task
    check_summary(r)
    ids = r.tags.ids
    assert "no-ipc" in ids and "no-bytes" in ids
    text = html.unescape(r.doc).lower()
    assert "no ipc between tasks" in text
    if not r.analysis.findings:
        assert "no-findings" in ids and "no findings" in text
    page = check_in_browser(r, tmp_path / "one.png", graph_nodes=False)
    assert "no ipc between tasks" in page["text"].lower()
