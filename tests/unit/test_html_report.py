"""The HTML report (ftraceipc.report.html) on a model and findings built by hand: sections, the plots'
data against the model, escaping, nothing fetched from the network, and the empty/one-task pages."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from ftraceipc.detect import Finding
from ftraceipc.model.ipc import Model, Unattributed
from ftraceipc.detect import Analysis, CriticalPathInfo
from ftraceipc.report.html import (LAT_EDGES, TOP_BYTES, bytes_per_resource, latency_histogram, render_report,
                                   write_report)

MAIN, A, B, C, OUT, TRACER = 100, 101, 102, 103, 900, 4000
EVIL = '<evil>&"x\''
P1, P2, P3, PX = "pipe:11", "pipe:12", "unix_stream:13", "pipe:99"
T0 = 1_000_000_000


def hand_model() -> Model:
    """main forks a, b and c (b is named EVIL); an outsider task and a tracer task are in the capture too."""
    tids = [MAIN, A, B, C, OUT, TRACER]
    tasks = pd.DataFrame({
        "tid": np.array(tids, dtype=np.int64), "pid": np.array(tids, dtype=np.int64),
        "comm": ["main", "stage-a", EVIL, "stage-c", "outsider", "ftraceipc"], "comms": [[]] * 6,
        "ppid": [1, MAIN, MAIN, MAIN, 1, 1], "first_ts": [T0] * 6, "last_ts": [T0 + 10**9] * 6,
        "tracer": [False] * 5 + [True]})
    resources = pd.DataFrame({
        "rid": [P1, P2, P3, PX], "kind": ["pipe", "pipe", "unix_stream", "pipe"], "inode": [11, 12, 13, 99],
        "path": [None] * 4, "peer": [None] * 4, "evidence": [["pipe2"]] * 4})
    io_ = pd.DataFrame({
        "type": ["WRITES", "READS", "WRITES", "READS", "WRITES", "WRITES", "READS"],
        "tid": [A, B, B, C, C, OUT, OUT], "rid": [P1, P1, P2, P2, P3, PX, PX],
        "calls": [10, 10, 5, 5, 1, 100, 100], "bytes": [4096, 4000, 2048, 2048, 7, 10**9, 10**9],
        "first_ts": [T0] * 7, "last_ts": [T0 + 10] * 7, "syscalls": [["write"]] * 7})
    blocked = pd.DataFrame({
        "tid": [B, C, MAIN, OUT], "rid": [P1, P2, None, PX], "episodes": [2, 1, 1, 1],
        "blocked_ns": [300_000_000, 200_000_000, 50_000_000, 900_000_000], "max_ns": [200_000_000] * 4,
        "ops": [["read"]] * 4})
    wakes = pd.DataFrame({"waker": [A, B], "wakee": [B, C], "via": [P1, P2], "wakeups": [3, 2],
                          "wake_to_run_ns": [3_001_500, 500], "max_wake_to_run_ns": [3_000_000, 500],
                          "cross_cpu": [0, 1]})
    flows = pd.DataFrame({"writer": [A, B, OUT], "reader": [B, C, OUT], "via": [P1, P2, PX],
                          "read_rid": [P1, P2, PX], "bytes": [4096, 2048, 10**9], "messages": [10, 5, 100]})
    m = Model(capture="/nonexistent/hand.ftipc", capture_id="feedfacecafe",
              meta={"command": ["python3", "work.py", "--name", EVIL], "command_pid": MAIN, "exit_code": 3,
                    "start_ts": T0, "stop_ts": T0 + 1_000_000_000, "buffer_kb": 4096,
                    "lost": {"0": {"overrun": 5, "commit_overrun": 0, "dropped_events": 2, "pages_missed": 1,
                                   "missed_events": 0},
                             "1": {"overrun": 0, "commit_overrun": 0, "dropped_events": 0, "pages_missed": 0,
                                   "missed_events": 0}}},
              tasks=tasks, resources=resources, io=io_, blocked=blocked, wakes=wakes, flows=flows,
              unattributed=[Unattributed(MAIN, MAIN, 7, "read", 3, 120, "fd not known to be open")],
              impossible=["WAKES: no sched:sched_waking events <really>"],
              stats={"events": 12345, "events_per_s": 1000, "build_s": 0.5})
    m.episodes = pd.DataFrame({
        "tid": [B, B, C, MAIN, OUT],
        "rid": [P1, P1, P2, None, PX], "op": ["read", "read", "read", None, "read"], "fd": [3, 3, 4, -1, 3],
        "start_ts": [T0, T0 + 500_000_000, T0 + 100_000_000, T0 + 900_000_000, T0],
        "dur_ns": [100_000_000, 200_000_000, 200_000_000, 50_000_000, 900_000_000], "state": ["S"] * 5,
        "woken_by": [A, A, B, -1, -1]})
    m.wakeups = pd.DataFrame({
        "ts": [T0 + i for i in range(6)], "waker": [A, A, A, B, B, OUT], "wakee": [B, B, B, C, C, OUT],
        "via": [P1, P1, P1, P2, P2, PX], "wake_to_run_ns": [1_500, 1_500, 3_000_000, 500, -1, 10**9],
        "waker_cpu": [0] * 6, "target_cpu": [1] * 6})
    return m


def hand_analysis() -> Analysis:
    f1 = Finding(pattern="full_buffer_stall", tasks=[B], resources=[P1], count=2, critical_ns=400_000_000,
                 asleep_ns=300_000_000,
                 explanation=f"{EVIL}[{B}] slept <twice> & more", suggestion="Use F_SETPIPE_SZ <bigger>",
                 title=f"{EVIL}[{B}] stalls writing into the full {P1}", rank=1,
                 cypher=":param capture_id => 'feedfacecafe'\nMATCH (t:Task) WHERE t.tid IN [102] RETURN t",
                 details={"writer": B, "note": "<b>not bold</b>"})
    f2 = Finding(pattern="chatty_pingpong", tasks=[A, C], resources=[P1, P2], count=50, critical_ns=0,
                 asleep_ns=1_000_000, explanation="a and c ping-pong", suggestion="batch",
                 title="stage-a and stage-c ping-pong", rank=2)
    return Analysis(capture="/nonexistent/hand.ftipc", capture_id="feedfacecafe", backend="hand", detectors=["x"],
                    findings=[f1, f2], scope="the command's 4 processes",
                    critical=CriticalPathInfo(root=A, root_label=f"stage-a[{A}]", start_ts=0, end_ts=10**9,
                                              wall_ns=10**9))


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: dict[str, dict] = {}
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v for k, v in attrs}
        self.tags.append((tag, a))
        if "id" in a:
            assert a["id"] not in self.ids, f"duplicate id {a['id']}"
            self.ids[a["id"]] = a


def parse(doc: str) -> Tags:
    p = Tags()
    p.feed(doc)
    p.close()
    return p


@pytest.fixture(scope="module")
def page():
    return render_report(None, model=hand_model(), analysis=hand_analysis(), graph=False)


def test_sections_present(page):
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    t = parse(page)
    for sid in ("summary", "findings", "plots", "talkers", "graph", "notes", "ftipc-errors"):
        assert sid in t.ids, sid
    assert "hidden" in t.ids["ftipc-errors"]
    # the error recorder is the first script of the page
    scripts = [i for i, (tag, _) in enumerate(t.tags) if tag == "script"]
    assert scripts and t.tags[scripts[0] - 1][0] in ("title", "meta")


def test_summary_numbers(page):
    t = parse(page)
    assert t.ids["sum-events"]["data-value"] == "12345"
    assert t.ids["sum-lost"]["data-value"] == "7"  # max(5, 0) + 0 + 2
    assert "--buffer-kb" in page
    assert t.ids["sum-tasks"]["data-value"] == "4"  # main, a, b, c: not the outsider nor the tracer
    assert t.ids["sum-resources"]["data-value"] == "3"
    text = html.unescape(page)
    assert "exit code" in text and ">3<" in page
    assert "1.000 s" in text  # duration
    assert "fd not known to be open" in text and "no sched:sched_waking events <really>" in text


def test_findings_listed(page):
    t = parse(page)
    arts = [a for tag, a in t.tags if tag == "article"]
    assert [a["data-pattern"] for a in arts] == ["full_buffer_stall", "chatty_pingpong"]
    assert arts[0]["data-critical-ns"] == "400000000" and arts[0]["data-asleep-ns"] == "300000000"
    assert arts[0]["data-count"] == "2"
    text = html.unescape(page)
    section = text[text.index('<section id="findings">'):text.index('<section id="plots">')]
    assert "400.0 ms on the critical path (40 % of the wall time), 300.0 ms asleep" in section
    assert "critical path of stage-a[101]: 1.00 s of wall time" in section
    assert " lost" not in section.replace("lost events", "")  # never "time lost", and no total
    assert "Use F_SETPIPE_SZ <bigger>" in text and f"{EVIL}[{B}] slept <twice> & more" in text
    assert "stage-a[101], stage-c[103]" in text  # tasks as comm[tid]
    assert "MATCH (t:Task) WHERE t.tid IN [102] RETURN t" in text
    assert page.count("<details>") == 2  # the cypher and the detector row of f1 (f2 has neither)


def test_findings_under_the_share_are_named_not_ranked():
    import dataclasses

    a = hand_analysis()
    small = Finding(pattern="thundering_herd", tasks=[A, B, C], resources=[P1], count=84, critical_ns=5_800_000,
                    asleep_ns=16_000_000, explanation="herd", suggestion="Use EPOLLEXCLUSIVE <one>",
                    title=f"{EVIL}[{A}] wakes 3 waiters", rank=1)
    a = dataclasses.replace(a, minor=[small], notes=["1 finding under 2 % of the critical path left out"])
    doc = render_report(None, model=hand_model(), analysis=a, graph=False)
    t = parse(doc)
    assert [x["data-pattern"] for tag, x in t.tags if tag == "article"] == ["full_buffer_stall", "chatty_pingpong"]
    assert "minor-findings" in t.ids and [x["data-pattern"] for tag, x in t.tags if tag == "li" and
                                          "data-pattern" in x] == ["thundering_herd"]
    text = html.unescape(doc)
    assert "1 smaller finding" in text and "Use EPOLLEXCLUSIVE <one>" in text and f"{EVIL}[{A}] wakes" in text
    assert "5.8 ms on the critical path (<1 % of the wall time), 16.0 ms asleep" in text
    assert "minor-findings" not in render_report(None, model=hand_model(), analysis=hand_analysis(), graph=False)


def test_plots_data_points_match_the_model(page):
    t = parse(page)
    # (a) blocked: b, c, main slept (the outsider is not of the command's tree)
    svg = t.ids["plot-blocked"]
    assert svg["data-points"] == "3"
    rows = {int(a["data-tid"]): int(a["data-blocked-ns"]) for tag, a in t.tags if tag == "g" and "data-tid" in a}
    assert rows == {B: 300_000_000, C: 200_000_000, MAIN: 50_000_000}
    # (b) latency: 500 ns (< 1 us), 1.5 us twice, 3 ms; the -1 (never ran) and the outsider left out
    svg = t.ids["plot-wakeup-latency"]
    want_bins = int(np.searchsorted(LAT_EDGES, 3_000_000, side="right")) + 1  # bins 0 .. the 3 ms one
    assert svg["data-points"] == str(want_bins) and svg["data-total"] == "4"
    counts = [int(a["data-count"]) for tag, a in t.tags if tag == "rect" and "data-count" in a]
    assert len(counts) == want_bins and sum(counts) == 4 and counts[0] == 1 and counts[1] == 2
    # (c) bytes: the three resources of the tree, biggest first
    svg = t.ids["plot-bytes"]
    assert svg["data-points"] == "3"
    bars = [(a["data-rid"], int(a["data-written"]), int(a["data-read"])) for tag, a in t.tags
            if tag == "g" and "data-rid" in a]
    assert bars == [(P1, 4096, 4000), (P2, 2048, 2048), (P3, 7, 0)]


def test_blocked_bins_add_up(page):
    from ftraceipc.report.html import blocked_series

    s = blocked_series(hand_model(), {MAIN, A, B, C})
    for tid, _, total, on, off in s.rows:
        assert abs(float(on.sum() + off.sum()) - total) < 1e-3 * total
    row = {tid: (on, off) for tid, _, _, on, off in s.rows}
    assert row[MAIN][0].sum() == 0 and row[B][1].sum() == 0  # main's sleep is on no resource


def test_histogram_and_bytes_helpers():
    m = hand_model()
    counts, labels, never = latency_histogram(m, {B, C})
    assert sum(counts) == 4 and never == 1 and labels[0].startswith("<")
    assert latency_histogram(m, set()) is None
    many = pd.DataFrame({"type": ["WRITES"] * 20, "tid": [A] * 20, "rid": [f"pipe:{i}" for i in range(20)],
                         "calls": [1] * 20, "bytes": list(range(1, 21)), "first_ts": [0] * 20, "last_ts": [0] * 20,
                         "syscalls": [["write"]] * 20})
    m.io = many
    rows = bytes_per_resource(m, {A})
    assert len(rows) == TOP_BYTES and rows[0] == ("pipe:19", 20, 0)


def test_comm_names_are_escaped(page):
    assert EVIL not in page and "<evil>" not in page and "<b>not bold</b>" not in page
    assert "&lt;evil&gt;&amp;&quot;x" in page
    assert "<twice>" not in page and "<bigger>" not in page
    parse(page)  # attributes and text well formed


FETCH = re.compile(r"""(?:\b(?:src|href|action|data|poster|xlink:href)\s*=\s*["']?\s*(?:https?:)?//)"""
                   r"""|url\(\s*["']?\s*(?:https?:)?//|@import|<link\b|<script[^>]*\bsrc\s*=""", re.I)


def no_fetch(doc: str) -> None:
    for d in (doc, html.unescape(doc)):
        m = FETCH.search(d)
        assert m is None, d[max(0, m.start() - 100):m.end() + 100]


def test_nothing_is_fetched_from_the_network(page):
    no_fetch(page)
    assert "xmlns" not in page  # inline SVG needs no namespace URL


def test_graph_embedded_when_available():
    doc = render_report(None, model=hand_model(), analysis=hand_analysis(), graph=True)
    t = parse(doc)
    frame = t.ids["graph-frame"]
    assert frame["srcdoc"].lstrip().lower().startswith(("<!doctype", "<html")) or "<script>" in frame["srcdoc"]
    assert "postMessage" in frame["srcdoc"]
    assert EVIL not in doc and "<evil>" not in doc
    no_fetch(doc)
    no_fetch(frame["srcdoc"])


def test_empty_model_page():
    m = Model(capture="/nonexistent/empty.ftipc", capture_id="0", meta={})
    a = Analysis(capture=m.capture, capture_id="0", backend="hand", detectors=[], findings=[], scope="every task")
    doc = render_report(None, model=m, analysis=a)
    t = parse(doc)
    assert "no-findings" in t.ids and "no-ipc" in t.ids and "no-bytes" in t.ids
    assert "<svg" not in doc
    text = html.unescape(doc).lower()
    assert "no findings" in text and "no ipc between tasks" in text
    no_fetch(doc)
    # the same without episodes: the time plots say why they are missing
    assert "without episodes" in doc


def test_one_task_page():
    m = hand_model()
    one = m.tasks[m.tasks["tid"] == MAIN]
    m.tasks = one
    m.io = m.io.iloc[:0]
    m.flows = m.flows.iloc[:0]
    m.episodes = m.episodes[m.episodes["tid"] == MAIN]
    m.wakeups = m.wakeups.iloc[:0]
    a = Analysis(capture=m.capture, capture_id="0", backend="hand", detectors=["x"], findings=[], scope="x")
    doc = render_report(None, model=m, analysis=a, graph=False)
    t = parse(doc)
    assert t.ids["sum-tasks"]["data-value"] == "1"
    assert "no-findings" in t.ids and "no-ipc" in t.ids and "no-wakeups" in t.ids and "no-bytes" in t.ids
    assert t.ids["plot-blocked"]["data-points"] == "1"


def test_write_report(tmp_path):
    out = tmp_path / "r.html"
    info = write_report(None, out, model=hand_model(), analysis=hand_analysis(), graph=False)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert info["bytes"] == len(out.read_bytes()) and info["path"] == str(out)
    assert [f["pattern"] for f in info["findings"]] == ["full_buffer_stall", "chatty_pingpong"]
    assert info["plots"]["blocked"]["points"] == 3 and info["plots"]["bytes"]["points"] == 3
    assert info["plots"]["wakeup_latency"]["total"] == 4
    assert info["summary"]["lost_events"] == 7 and info["summary"]["events"] == 12345
