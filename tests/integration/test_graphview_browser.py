"""The interactive graph page (ftraceipc/report/graphview.py) in a real headless browser (Debian's
chromium; tests/integration/browser.py): real captures of samples/pipeline.py, herd.py, socketpair_pingpong.py and relay.py,
a large hand-built model (1,200 tasks in 60 processes) and a capture whose command does no IPC.

(socketpair_pingpong too: its two tasks each write and read their own end of the socket pair, joined
by a PEER edge.) For each page: it loads with no JavaScript error, vis draws exactly as many nodes (and edges) as the
model has in the graph's scope (counted here from the model's own tables, not from the page), and a
1280x900 screenshot is not blank. The captures' truth (the samples' own record of their tasks and
pipes) must all be in the drawing, and the detectors' findings highlighted.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from components import requires  # noqa: E402
import browser  # noqa: E402
from truth_check import ROOT, capture_sample  # noqa: E402

from ftraceipc.model.export import column_values, tracer_tids  # noqa: E402
from ftraceipc.model.summary import command_tree  # noqa: E402
from ftraceipc.report import graphview  # noqa: E402



def needs_tracefs(f):
    return pytest.mark.root(requires("tracefs")(f))


@pytest.fixture(scope="module", autouse=True)
def chromium():
    return browser.require()


def expected(model) -> tuple[set[str], set[tuple[str, str, str]]]:
    """The node ids and (type, from, to) edges the page should draw, from the model's tables: the
    command's tasks, every resource they (or a flow of theirs) used, every other non-tracer task's
    I/O on those, the IPC wakeups/waits with one end in the command, and a PEER edge between the
    two ends of a socket connection."""
    tracer = tracer_tids(model)
    t = model.tasks
    users = {int(x) for x in column_values(t["tid"])} - tracer
    tree = command_tree(model)
    core = {int(x) for x, p in zip(column_values(t["tid"]), column_values(t["pid"])) if p in tree} - tracer
    io = [(ty, int(tid), rid) for ty, tid, rid in zip(column_values(model.io["type"]), column_values(model.io["tid"]),
                                                       column_values(model.io["rid"])) if tid in users and rid]
    rids = {rid for _, tid, rid in io if tid in core}
    for w, r, via, rr in zip(*(column_values(model.flows[c]) for c in ("writer", "reader", "via", "read_rid"))):
        if w in core or r in core:
            rids |= {x for x in (via, rr) if x}
    io = [x for x in io if x[2] in rids]
    edges = {("WRITES", f"t:{tid}", f"r:{rid}") if ty == "WRITES" else ("READS", f"r:{rid}", f"t:{tid}")
             for ty, tid, rid in io}
    for a, b, via in zip(*(column_values(model.wakes[c]) for c in ("waker", "wakee", "via"))):
        if via and a in users and b in users and a != b and (a in core or b in core):
            edges.add(("WAKES", f"t:{a}", f"t:{b}"))
    for a, b in zip(column_values(model.waits["waiter"]), column_values(model.waits["waker"])):
        if a in users and b in users and a != b and (a in core or b in core):
            edges.add(("WAITS_FOR", f"t:{a}", f"t:{b}"))
    drawn = {rid for _, _, rid in io}
    for rid, peer in zip(column_values(model.resources["rid"]), column_values(model.resources["peer"])):
        if rid in drawn and peer in drawn and peer != rid:
            edges.add(("PEER", *sorted((f"r:{rid}", f"r:{peer}"))))
    nodes = {n for e in edges for n in e[1:]}
    return nodes, edges


def check_page(html_path: Path, nodes: int, edges: int | None = None) -> dict:
    page = browser.load(html_path)
    assert page["errors"] == [], page["errors"]
    assert page["ready"], f"the page never finished drawing: {page['body']}"
    assert page["nodes"] == nodes, (page["nodes"], nodes)
    if edges is not None:
        assert page["edges"] == edges, (page["edges"], edges)
    png = browser.screenshot(html_path, html_path.with_suffix(".png"))
    stats = browser.pixel_stats(png)
    assert browser.not_blank(png), stats
    return page


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("graphview")


def _capture(tmp: Path, sample: str, args=()):
    from ftraceipc.detect.pipeline import Backend, analyze
    from ftraceipc.model.build import build_model

    cap, meta, truth = capture_sample(tmp, sample, list(args))
    model = build_model(cap)
    # every finding, however small its share of the path (samples/herd.py's herd is 2-5 % of it)
    analysis = analyze(model, backend=Backend(path=tmp / f"{sample}.lbug"), min_share=0)
    return model, analysis, truth


@needs_tracefs
@pytest.mark.parametrize("sample,pattern", [("pipeline", None), ("herd", "thundering_herd"),
                                            ("socketpair_pingpong", "chatty_pingpong"), ("relay", "wait_chain")])
def test_sample_capture_page(tmp, sample, pattern):
    model, analysis, truth = _capture(tmp, sample)
    t0 = time.perf_counter()
    html = graphview.render(model, analysis)
    seconds = time.perf_counter() - t0
    path = tmp / f"{sample}.html"
    path.write_text(html, encoding="utf-8")
    nodes, edges = expected(model)
    data = json.loads(re.search(r'id="ftipc-data">(.*?)</script>', html, re.S).group(1))
    assert {n["id"] for n in data["nodes"]} == nodes
    assert {(e["type"], e["from"], e["to"]) for e in data["edges"]} == edges
    # the sample's own tasks that did I/O, and its pipes, are all drawn
    assert {f"t:{e['tid']}" for e in truth["io"]} | {f"r:{e['rid']}" for e in truth["io"]} <= nodes
    page = check_page(path, len(nodes), len(edges))
    assert page["body"]["data-group"] == ""
    # every finding's drawn tasks are highlighted and the finding listed; the planted one is there
    hot = {n["id"] for n in data["nodes"] if n["color"]["border"] == graphview.FINDING_COLOUR}
    for f in analysis.findings:
        assert {f"t:{x}" for x in f.tasks} & nodes <= hot
        assert f.title in page["text"]
    if pattern is not None:
        mine = [f for f in analysis.findings if f.pattern == pattern]
        assert mine, [f.pattern for f in analysis.findings]
        assert {f"t:{x}" for x in mine[0].tasks} <= hot
    if pattern == "wait_chain":  # the chain is a red path of WAITS_FOR edges, waiter -> waker
        red = {(e["from"], e["to"]) for e in data["edges"]
               if e["type"] == "WAITS_FOR" and e["color"]["color"] == graphview.FINDING_COLOUR}
        chain = mine[0].tasks
        assert len(chain) >= 3 and {(f"t:{a}", f"t:{b}") for a, b in zip(chain, chain[1:])} <= red
    print(f"\n{sample}: {len(nodes)} nodes, {len(edges)} edges, render {seconds * 1000:.0f} ms, "
          f"page {len(html) / 1024:.0f} KiB")


def test_large_model_is_grouped_by_process(tmp):
    sys.path.insert(0, str(ROOT / "tests" / "unit"))
    from test_graphview import big_model

    m = big_model(processes=60, threads=20)
    t0 = time.perf_counter()
    html = graphview.render(m)
    seconds = time.perf_counter() - t0
    path = tmp / "big.html"
    path.write_text(html, encoding="utf-8")
    pids = {p for p in column_values(m.tasks["pid"]) if p != 1}
    assert len(pids) == 60 and len(m.tasks) == 1201
    page = check_page(path, 60 + 60, 60 * 3)
    assert page["body"]["data-group"] == "process" and page["body"]["data-task-nodes"] == "60"
    assert "one per process" in page["text"]
    print(f"\n1,200 tasks: render {seconds * 1000:.0f} ms, page {len(html) / 1024:.0f} KiB")


@needs_tracefs
def test_capture_without_ipc_says_so(tmp):
    from ftraceipc.model.build import build_model

    cap = tmp / "pass.ftipc"
    r = subprocess.run([sys.executable, "-m", "ftraceipc", "capture", "--no-model", "-o", str(cap), "--",
                        sys.executable, "-c", "pass"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    model = build_model(cap)
    tree = command_tree(model)
    assert tree is not None and len(tree) == 1
    path = graphview.write(model, [], tmp / "pass.html")
    page = browser.load(path)
    assert page["errors"] == [], page["errors"]
    assert page["ready"] and page["nodes"] == 0 and page["body"]["data-empty"] == "1"
    assert graphview.NO_IPC.lower() in page["text"].lower()
