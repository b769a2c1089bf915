"""The interactive graph page (ftraceipc/report/graphview.py) on hand-built models: what it draws
(node and edge counts, scope, grouping, bundling), what it leaves out (ftraceipc's own tasks), how
findings are highlighted, and that the page is self-contained (nothing fetched from the network)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from ftraceipc.detect import Finding
from ftraceipc.model import ipc
from ftraceipc.model.ipc import Model
from ftraceipc.report import graphview
from ftraceipc.detect import Analysis


def make_model(tasks, io=(), wakes=(), waits=(), resources=None, command_pid=None, flows=(), peers=(), kinds=None,
               paths=None) -> Model:
    """tasks: (tid, pid, comm, ppid[, tracer]); io: (type, tid, rid, calls, bytes); wakes: (waker, wakee,
    via, wakeups); waits: (waiter, waker, via, episodes, blocked_ns); resources: rids (kind = prefix unless in
    ``kinds``); peers: (rid, rid) socket pairs."""
    kinds, paths = kinds or {}, paths or {}
    t = pd.DataFrame([dict(tid=x[0], pid=x[1], comm=x[2], comms=[x[2]], ppid=x[3], first_ts=0, last_ts=1,
                           tracer=bool(x[4]) if len(x) > 4 else False) for x in tasks], columns=ipc.TASK_COLUMNS)
    io_df = pd.DataFrame([dict(type=ty, tid=tid, rid=rid, calls=c, bytes=b, first_ts=0, last_ts=1,
                               syscalls=["write" if ty == "WRITES" else "read"]) for ty, tid, rid, c, b in io],
                         columns=ipc.IO_COLUMNS)
    rids = resources if resources is not None else sorted({r[2] for r in io})
    peers = dict(peers)
    peers.update({b: a for a, b in list(peers.items())})
    res = pd.DataFrame([dict(rid=r, kind=kinds.get(r, r.split(":")[0]), inode=i, path=paths.get(r),
                             peer=peers.get(r), evidence=["test"])
                        for i, r in enumerate(rids)], columns=ipc.RESOURCE_COLUMNS)
    wk = pd.DataFrame([dict(waker=a, wakee=b, via=v, wakeups=n, wake_to_run_ns=1000 * n, max_wake_to_run_ns=1000,
                            cross_cpu=0) for a, b, v, n in wakes], columns=ipc.WAKES_COLUMNS)
    wt = pd.DataFrame([dict(waiter=a, waker=b, via=v, episodes=n, blocked_ns=ns, max_ns=ns, top=True)
                       for a, b, v, n, ns in waits], columns=ipc.WAITS_COLUMNS)
    fl = pd.DataFrame([dict(writer=a, reader=b, via=v, read_rid=v, bytes=n, messages=1) for a, b, v, n in flows],
                      columns=ipc.FLOW_COLUMNS)
    if not len(io_df):
        io_df = ipc.empty(ipc.IO_COLUMNS)
    meta = {"command_pid": command_pid, "command": ["python3", "x.py"]} if command_pid else {}
    return Model(capture="/tmp/hand.ftipc", capture_id="hand0000", meta=meta, tasks=t, resources=res, io=io_df,
                 wakes=wk if len(wk) else ipc.empty(ipc.WAKES_COLUMNS),
                 waits=wt if len(wt) else ipc.empty(ipc.WAITS_COLUMNS),
                 flows=fl if len(fl) else ipc.empty(ipc.FLOW_COLUMNS))


def pipeline() -> Model:
    """Command 100 forks 101 -> pipe:1 -> 102 -> pipe:2 -> 103; 101 also feeds pipe:3 read by 500 (outside the
    tree); 600 -> pipe:9 -> 601 elsewhere on the machine; 900 is ftraceipc's own task (reads pipe:1 too)."""
    tasks = [(100, 100, "main", 1), (101, 101, "gen", 100), (102, 102, "filter", 100), (103, 103, "sink", 100),
             (500, 500, "logger", 1), (600, 600, "other", 1), (601, 601, "other", 1),
             (900, 900, "ftraceipc-rd", 1, True)]
    io = [("WRITES", 101, "pipe:1", 100, 1 << 20), ("READS", 102, "pipe:1", 50, 1 << 20),
          ("WRITES", 102, "pipe:2", 40, 1 << 19), ("READS", 103, "pipe:2", 40, 1 << 19),
          ("WRITES", 101, "pipe:3", 2, 64), ("READS", 500, "pipe:3", 2, 64),
          ("WRITES", 600, "pipe:9", 5, 500), ("READS", 601, "pipe:9", 5, 500),
          ("READS", 900, "pipe:1", 1, 10)]
    wakes = [(101, 102, "pipe:1", 30), (102, 103, "pipe:2", 20), (0, 102, None, 3), (101, 102, None, 5)]
    waits = [(102, 101, "pipe:1", 30, 5_000_000), (103, 102, "pipe:2", 20, 9_000_000)]
    return make_model(tasks, io, wakes, waits, command_pid=100)


def data_of(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="ftipc-data">(.*?)</script>', page, re.S)
    assert m, "no graph data in the page"
    return json.loads(m.group(1))


def body_attrs(page: str) -> dict:
    class P(HTMLParser):
        attrs: dict = {}

        def handle_starttag(self, tag, attrs):
            if tag == "body":
                P.attrs = dict(attrs)

    P().feed(page)
    return P.attrs


def test_nodes_and_edges_of_the_command_tree():
    m = pipeline()
    page = graphview.render(m)
    d = data_of(page)
    ids = {n["id"] for n in d["nodes"]}
    assert ids == {"t:101", "t:102", "t:103", "t:500", "r:pipe:1", "r:pipe:2", "r:pipe:3"}
    kinds = {(e["type"], e["from"], e["to"]) for e in d["edges"]}
    assert kinds == {("WRITES", "t:101", "r:pipe:1"), ("READS", "r:pipe:1", "t:102"),
                     ("WRITES", "t:102", "r:pipe:2"), ("READS", "r:pipe:2", "t:103"),
                     ("WRITES", "t:101", "r:pipe:3"), ("READS", "r:pipe:3", "t:500"),
                     ("WAKES", "t:101", "t:102"), ("WAKES", "t:102", "t:103"),
                     ("WAITS_FOR", "t:102", "t:101"), ("WAITS_FOR", "t:103", "t:102")}
    assert len({e["id"] for e in d["edges"]}) == len(d["edges"])
    b = body_attrs(page)
    assert b["data-expected-nodes"] == "7" and b["data-expected-edges"] == "10" and b["data-empty"] == "0"
    assert b["data-group"] == "" and b["data-task-nodes"] == "4" and b["data-resource-nodes"] == "3"
    # only the IPC wakeup is drawn (0 is not a task; the wakeup with no resource is not IPC)
    wake = next(e for e in d["edges"] if e["id"] == "WAKES:t:101->t:102")
    assert "30 wakeups" in wake["title"] and wake["dashes"]
    # the peer outside the tree has a dashed border; numbers are in human units in the tooltips
    peer = next(n for n in d["nodes"] if n["id"] == "t:500")
    assert peer["shapeProperties"]["borderDashes"] and "outside the traced command" in peer["title"]
    gen = next(n for n in d["nodes"] if n["id"] == "t:101")
    assert "1.0 MiB" in gen["title"] and gen["role"] == "producer"
    assert next(n for n in d["nodes"] if n["id"] == "t:102")["role"] == "stage"
    # node size and edge width grow with the bytes
    size = {n["id"]: n["size"] for n in d["nodes"]}
    assert size["t:101"] > size["t:500"] and size["r:pipe:1"] > size["r:pipe:3"]
    width = {e["id"]: e["width"] for e in d["edges"]}
    assert width["WRITES:t:101->r:pipe:1"] > width["WRITES:t:101->r:pipe:3"]
    # resources are coloured by kind, tasks by role
    assert next(n for n in d["nodes"] if n["id"] == "r:pipe:1")["color"]["background"] == graphview.KIND_COLOURS["pipe"]


def test_all_tasks_and_no_tracer_tasks():
    m = pipeline()
    d = data_of(graphview.render(m, all_tasks=True))
    ids = {n["id"] for n in d["nodes"]}
    assert {"t:600", "t:601", "r:pipe:9"} <= ids and len(ids) == 10
    page = graphview.render(m, all_tasks=True)
    assert "t:900" not in ids and "ftraceipc-rd" not in page
    # without a command in the model: every (user) task
    m.meta = {}
    assert {n["id"] for n in data_of(graphview.render(m))["nodes"]} == ids


def test_finding_is_highlighted_and_listed():
    m = pipeline()
    f = Finding(pattern="wait_chain", tasks=[103, 102, 101], resources=["pipe:2", "pipe:1"], count=20,
                critical_ns=5_000_000, asleep_ns=9_000_000,
                explanation="sink waits on filter which waits on gen", suggestion="speed up gen",
                title="wait chain of 2 hops behind sink[103]", rank=1)
    for given in ([f], Analysis("c", "i", "b", ["wait_chain"], [f], "s"), [f.to_json()]):
        page = graphview.render(m, given)
        d = data_of(page)
        hot = {n["id"] for n in d["nodes"] if n["color"]["border"] == graphview.FINDING_COLOUR}
        assert hot == {"t:101", "t:102", "t:103", "r:pipe:1", "r:pipe:2"}
        assert all(n["borderWidth"] == 4 for n in d["nodes"] if n["id"] in hot)
        red = {e["id"] for e in d["edges"] if e["color"]["color"] == graphview.FINDING_COLOUR}
        assert {"WAITS_FOR:t:103->t:102", "WAITS_FOR:t:102->t:101", "WRITES:t:101->r:pipe:1"} <= red
        assert "WRITES:t:101->r:pipe:3" not in red  # pipe:3 is not in the finding
        assert "WAKES:t:101->t:102" not in red  # a chain is its waits, in order
        assert "finding #1 wait_chain" in next(n for n in d["nodes"] if n["id"] == "t:103")["title"]
        assert "wait chain of 2 hops behind sink[103]" in page and 'class="findings"' in page
        assert "5.0 ms on the critical path · 9.0 ms asleep" in page and " lost" not in page
        li = re.search(r'<li value="1"[^>]*data-nodes="([^"]*)"', page)
        assert li and set(json.loads(li.group(1).replace("&quot;", '"'))) == hot


def test_unordered_finding_highlights_every_edge_between_its_nodes():
    f = Finding(pattern="thundering_herd", tasks=[101, 102], resources=["pipe:1"], count=30, critical_ns=0,
                asleep_ns=1000, explanation="e", suggestion="s", title="herd", rank=1)
    d = data_of(graphview.render(pipeline(), [f]))
    red = {e["id"] for e in d["edges"] if e["color"]["color"] == graphview.FINDING_COLOUR}
    assert red == {"WRITES:t:101->r:pipe:1", "READS:r:pipe:1->t:102", "WAKES:t:101->t:102",
                   "WAITS_FOR:t:102->t:101"}
    assert all(e["width"] >= 3 for e in d["edges"] if e["id"] in red)


def big_model(processes: int = 60, threads: int = 20, pipes_per_pair: int = 1) -> Model:
    """processes x threads tasks; thread 0 of process i writes into pipes read by every thread of i+1."""
    tasks, io, wakes = [(1, 1, "launcher", 0)], [], []
    for p in range(processes):
        pid = 1000 + p * 100
        for k in range(threads):
            tasks.append((pid + k, pid, f"worker{p % 6}", 1))
        for j in range(pipes_per_pair):
            rid = f"pipe:{p}.{j}"
            io.append(("WRITES", pid, rid, 10, 4096 * (p + 1)))
            nxt = 1000 + ((p + 1) % processes) * 100
            for k in range(threads):
                io.append(("READS", nxt + k, rid, 1, 4096 * (p + 1) // threads))
            wakes.append((pid, nxt + 1, rid, 3))
    return make_model(tasks, io, wakes, command_pid=1)


def test_grouping_over_max_nodes():
    m = big_model()
    g = graphview.build(m)
    assert g.group == "process" and g.tasks == 1200 and g.task_nodes == 60 and g.resource_nodes == 60
    assert len(g.nodes) == 120 and not g.bundled
    page = graphview.render(m)
    b = body_attrs(page)
    assert b["data-group"] == "process" and b["data-expected-nodes"] == "120"
    d = data_of(page)
    proc = next(n for n in d["nodes"] if n["id"] == "p:1100")
    assert "20 threads" in proc["title"] and "×20" in proc["label"]
    assert "grouped into 60 nodes, one per process" in page
    # sums survive grouping: 20 readers of 4096*1 bytes each... read by process 1100
    e = next(e for e in d["edges"] if e["id"] == "READS:r:pipe:0.0->p:1100")
    assert "4.0 KiB" in e["title"] and "20 tasks" in e["title"]
    assert len({(e["from"], e["to"], e["type"]) for e in d["edges"]}) == len(d["edges"]) == 60 * 3
    # ungrouped on request; by command name on request; grouped on request under the limit
    assert len(graphview.build(m, group=None).nodes) == 1260
    assert graphview.build(m, group="comm").task_nodes == 6
    small = graphview.build(pipeline(), group="process")
    assert small.group == "process" and small.task_nodes == 4
    assert graphview.build(pipeline(), max_nodes=3).group == "comm"  # 4 processes > 3: by name
    with pytest.raises(ValueError):
        graphview.build(m, group="bogus")


def test_resources_bundled_when_still_too_many():
    m = big_model(pipes_per_pair=10)  # 600 pipes
    g = graphview.build(m)
    assert g.group == "process" and g.bundled and g.resources == 600 and g.resource_nodes == 60
    assert len(g.nodes) == 120
    label = next(n for n in g.nodes if n["id"].startswith("b:"))["label"]
    assert label == "10 pipes"


def test_page_fetches_nothing():
    page = graphview.render(pipeline())
    fetch = re.compile(r"""(?:\bsrc|\bhref)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import"""
                       r"""|<link\b|<script[^>]*\bsrc\s*=|<img\b|<iframe\b|sourceMappingURL""", re.I)
    assert not fetch.search(page), fetch.search(page).group(0)
    assert not re.search(r"cdnjs|jsdelivr|unpkg|googleapis|bootstrap", page, re.I)
    # the only http(s) strings left are in vis-network's licence comments and the SVG namespace
    urls = set(re.findall(r"https?://[^\s\"'()<>]+", page))
    allowed = ("http://www.w3.org/", "http://almende.com", "https://visjs.github.io/", "https://github.com/",
               "http://www.apache.org/licenses/", "http://opensource.org/licenses/")
    assert all(u.startswith(allowed) for u in urls), urls
    assert "vis.Network" in page and "<script>" in page  # vis itself is inline


def test_page_hooks_and_escaping():
    m = pipeline()
    m.tasks.loc[m.tasks["tid"] == 102, "comm"] = "</script><b>x"
    page = graphview.render(m, title="a <title> & more")
    assert "</script><b>x" not in page and "&lt;title&gt;" in page
    d = data_of(page)
    assert any("</script><b>x[102]" == n["label"] for n in d["nodes"])
    assert '<pre id="ftipc-errors" hidden>' in page and "set('nodes'" in page and "window.onerror" in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_empty_model_page(tmp_path):
    m = make_model([(100, 100, "python3", 1)], command_pid=100)
    page = graphview.render(m)
    assert graphview.NO_IPC in page and "The traced command ran 1 task; it wrote to" in page
    b = body_attrs(page)
    assert b["data-empty"] == "1" and b["data-expected-nodes"] == "0"
    assert "vis.Network" not in page and len(page) < 20_000
    # a model with no tables at all
    page = graphview.render(Model("x", "y", {}))
    assert graphview.NO_IPC in page and "0 tasks traced" in page
    # the command did no IPC although others did: still "no IPC", with a hint
    m = pipeline()
    m.meta["command_pid"] = 600
    m.io = m.io[m.io["tid"] != 600]
    m.flows = ipc.empty(ipc.FLOW_COLUMNS)
    page = graphview.render(m)
    assert graphview.NO_IPC in page and "--all-tasks</code>)" in page and "7 tasks in all" in page
    assert graphview.NO_IPC not in graphview.render(m, all_tasks=True)
    p = graphview.write(m, [], tmp_path / "g.html")
    assert p.read_text() == page


def test_socket_pair_ends_are_joined():
    tasks = [(10, 10, "main", 1), (11, 11, "ping", 10), (12, 12, "pong", 10)]
    io = [("WRITES", 11, "unix:1", 100, 1600), ("READS", 11, "unix:1", 100, 1600),
          ("WRITES", 12, "unix:2", 100, 1600), ("READS", 12, "unix:2", 100, 1600),
          ("WRITES", 10, "fifo:7", 1, 10), ("READS", 12, "fifo:7", 1, 10)]
    m = make_model(tasks, io, peers=[("unix:1", "unix:2")], kinds={"unix:1": "unix_stream", "unix:2": "unix_stream"},
                   paths={"fifo:7": "/tmp/some/where/control.fifo"}, command_pid=10,
                   flows=[(11, 12, "unix:1", 1600), (12, 11, "unix:2", 1600)])
    d = data_of(graphview.render(m))
    peer = [e for e in d["edges"] if e["type"] == "PEER"]
    assert [(e["from"], e["to"]) for e in peer] == [("r:unix:1", "r:unix:2")]
    assert peer[0]["arrows"] == {"to": {"enabled": False}} and "two ends" in peer[0]["title"]
    sock = next(n for n in d["nodes"] if n["id"] == "r:unix:1")
    assert sock["color"]["background"] == graphview.KIND_COLOURS["unix_stream"]
    fifo = next(n for n in d["nodes"] if n["id"] == "r:fifo:7")
    assert fifo["label"].endswith("control.fifo") and "/tmp/some/where/control.fifo" in fifo["title"]
    assert len(d["nodes"]) == 6 and len(d["edges"]) == 7
