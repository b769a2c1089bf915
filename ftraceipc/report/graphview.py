"""An interactive graph of who talked to whom: ``ftraceipc export CAPTURE --pyvis graph.html``.

One self-contained HTML page (vis-network, as shipped with pyvis, is inlined: the page fetches
nothing and works offline):

- tasks are dots coloured by role (writes only, reads only, both, neither: only waits/wakeups),
  resources are diamonds coloured by kind (pipe, fifo, unix_stream, ...); a node's size grows with
  the bytes it moved (log scale);
- ``WRITES`` task -> resource and ``READS`` resource -> task (the way the data went), width by
  bytes; ``PEER`` joins the two ends of one socket connection (a task writes into its own end, the
  peer reads from the other); ``WAKES`` waker -> wakee (dashed, grey; only wakeups through an IPC resource) and
  ``WAITS_FOR`` waiter -> waker (dotted, amber), width by wakeups/episodes;
- the tasks and resources of each finding have a red border, the edges between them are red
  (so a detected wait chain is a red path), and the page lists the findings (click one to select
  its nodes);
- every node and edge has a tooltip with its numbers;
- ftraceipc's own tasks are left out. By default the graph shows the traced command's process
  tree and the tasks and resources it talked through (``all_tasks=True``: the whole capture);
- with more than ``max_nodes`` tasks (``group="auto"``), or with ``group="process"``/``"comm"``,
  tasks are collapsed into one node per process (or per command name) with summed numbers; if
  resources are still too many, those with the same kind and the same writer/reader groups are
  bundled. ``group=None`` draws every task.

Test hooks (what tests/integration/browser.py reads): once the network has drawn, the page sets
``<body data-ready="1" data-nodes="N" data-edges="M">`` (what vis actually holds); the body also
carries ``data-expected-nodes``/``data-expected-edges`` (what was rendered), ``data-group`` and
``data-empty``; JavaScript errors are appended, one per line, to ``<pre id="ftipc-errors" hidden>``.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftraceipc.model.export import column_values, human_bytes, human_ns, py, task_label, tracer_tids
from ftraceipc.model.ipc import Model

GROUPS = ("process", "comm")
FINDING_COLOUR = "#d62728"
ROLE_COLOURS = {  # role -> (colour, legend text)
    "stage": ("#9467bd", "task that reads and writes"),
    "producer": ("#1f77b4", "task that only writes"),
    "consumer": ("#2ca02c", "task that only reads"),
    "other": ("#8c8c8c", "task that only waits/wakes"),
}
KIND_COLOURS = {
    "pipe": "#ff7f0e",
    "fifo": "#8c564b",
    "unix_stream": "#17becf",
    "unix_dgram": "#bcbd22",
    "unix_seqpacket": "#e377c2",
    "unix": "#7f7f7f",
}
OTHER_KIND = "#aaaaaa"
WAKES_COLOUR = "#7a7a7a"
WAITS_COLOUR = "#e6a100"
NO_IPC = "No IPC between tasks in this capture"
CODE_ALL = '<code style="white-space:nowrap">--all-tasks</code>'
ORDERED = {"wait_chain", "wait_cycle"}  # findings whose tasks are in order: waiter -> waker -> ...


def _int_ok(v: Any) -> bool:
    try:
        int(v)
        return True
    except (TypeError, ValueError):
        return False


# --- the graph, before it becomes HTML -----------------------------------------------------------
@dataclass
class Graph:
    """What the page draws: vis-network node and edge dicts plus what the page says about them."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    group: str | None = None  # "process", "comm" or None (one node per task)
    bundled: bool = False  # resources bundled by kind and writer/reader groups
    task_nodes: int = 0
    resource_nodes: int = 0
    tasks: int = 0  # tasks drawn (inside the nodes)
    resources: int = 0  # resources drawn (inside the nodes)
    scope: str = ""
    notes: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)  # {rank, pattern, title, ..., nodes}
    capture_tasks: int = 0  # user tasks in the capture
    scope_tasks: int = 0  # of which in the scope (the command's tasks, or all)
    whole: bool = True  # the scope is every task of the capture


def _findings_list(findings: Any) -> list[dict[str, Any]]:
    """Findings as dicts: accepts an Analysis, Finding objects or their JSON dicts."""
    if findings is None:
        return []
    if hasattr(findings, "findings"):
        findings = findings.findings
    out = []
    for i, f in enumerate(findings, 1):
        d = f.to_json() if hasattr(f, "to_json") else dict(f)
        d.setdefault("rank", i)
        if not d.get("rank"):
            d["rank"] = i
        out.append(d)
    return out


def _num(v: Any) -> float:
    v = py(v)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def _mark_finding(node: dict, findings: list | None) -> None:
    """A node that a finding involves: a thick red border, and the findings' ids."""
    if findings:
        node["color"]["border"] = FINDING_COLOUR
        node["borderWidth"] = 4
        node["findings"] = sorted(set(findings))


def _scale(v: float, top: float, lo: float, hi: float) -> float:
    if top <= 0 or v <= 0:
        return lo
    return round(lo + (hi - lo) * math.log1p(v) / math.log1p(top), 2)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def _short(s: str, n: int = 28) -> str:
    return s if len(s) <= n else "…" + s[-(n - 1):]


def build(model: Model, findings: Any = (), *, group: str | None = "auto", max_nodes: int = 500,
          all_tasks: bool = False) -> Graph:
    """The nodes and edges :func:`render` draws (see the module's doc)."""
    if group not in (None, "auto", *GROUPS):
        raise ValueError(f"group must be 'auto', 'process', 'comm' or None, not {group!r}")
    from ftraceipc.model.summary import command_tree

    g = Graph()
    fl = _findings_list(findings)
    tracer = tracer_tids(model)

    # tasks --------------------------------------------------------------------------------------
    t = model.tasks
    info: dict[int, dict[str, Any]] = {}
    if len(t):
        for tid, pid, comm, ppid in zip(column_values(t["tid"]), column_values(t["pid"]), column_values(t["comm"]),
                                        column_values(t["ppid"])):
            if tid is None or int(tid) in tracer:
                continue
            info[int(tid)] = {"pid": pid if pid is not None else tid, "comm": comm if isinstance(comm, str) and comm
                              else "?", "ppid": ppid}
    g.capture_tasks = len(info)
    tree = None if all_tasks else command_tree(model)
    if tree is not None:
        core = {tid for tid, i in info.items() if i["pid"] in tree}
        cmd = " ".join((model.meta or {}).get("command") or [])
        g.scope = (f"the traced command's process tree ({_plural(len(tree), 'process', 'processes')}"
                   + (f": {cmd if len(cmd) <= 60 else cmd[:59] + '…'}" if cmd else "") + ") and the tasks it talked to")
        g.whole = False
    else:
        core = set(info)
        g.scope = "every task of the capture" + (" (except ftraceipc's own)" if tracer else "")

    g.scope_tasks = len(core)

    def real(tid: Any) -> bool:
        return tid is not None and int(tid) in info

    # I/O edges: resources the core used (or that carried the core's flows), then everyone's I/O on them
    io = []
    if len(model.io):
        io = [dict(type=ty, tid=int(tid), rid=rid, calls=_num(c), bytes=_num(b))
              for ty, tid, rid, c, b in zip(column_values(model.io["type"]), column_values(model.io["tid"]),
                                            column_values(model.io["rid"]), column_values(model.io["calls"]),
                                            column_values(model.io["bytes"]))
              if real(tid) and rid is not None and ty in ("WRITES", "READS")]
    rids = {r["rid"] for r in io if r["tid"] in core}
    if len(model.flows):
        for w, rd, via, rrid in zip(column_values(model.flows["writer"]), column_values(model.flows["reader"]),
                                    column_values(model.flows["via"]), column_values(model.flows["read_rid"])):
            if (real(w) and int(w) in core) or (real(rd) and int(rd) in core):
                rids |= {x for x in (via, rrid) if x is not None}
    io = [r for r in io if r["rid"] in rids]

    wakes = []
    if len(model.wakes):
        for a, b, via, n, w2r in zip(column_values(model.wakes["waker"]), column_values(model.wakes["wakee"]),
                                     column_values(model.wakes["via"]), column_values(model.wakes["wakeups"]),
                                     column_values(model.wakes["wake_to_run_ns"])):
            if via is None or not real(a) or not real(b) or int(a) == int(b):
                continue
            if int(a) in core or int(b) in core:
                wakes.append(dict(src=int(a), dst=int(b), via=via, n=_num(n), w2r=_num(w2r)))
    waits = []
    if len(model.waits):
        for a, b, via, n, ns in zip(column_values(model.waits["waiter"]), column_values(model.waits["waker"]),
                                    column_values(model.waits["via"]), column_values(model.waits["episodes"]),
                                    column_values(model.waits["blocked_ns"])):
            if not real(a) or not real(b) or int(a) == int(b):
                continue
            if int(a) in core or int(b) in core:
                waits.append(dict(src=int(a), dst=int(b), via=via, n=_num(n), ns=_num(ns)))

    drawn_tids = sorted({r["tid"] for r in io} | {w["src"] for w in wakes} | {w["dst"] for w in wakes}
                        | {w["src"] for w in waits} | {w["dst"] for w in waits})
    drawn_rids = sorted({r["rid"] for r in io})
    g.tasks, g.resources = len(drawn_tids), len(drawn_rids)
    silent = len(core - set(drawn_tids))
    if silent and drawn_tids:
        g.notes.append(f"{_plural(silent, 'task')} of the scope with no IPC {'is' if silent == 1 else 'are'} not drawn.")
    g.findings = [dict(f, nodes=[]) for f in fl]
    if not drawn_tids:
        return g
    drawn_set = set(drawn_tids)

    # grouping -----------------------------------------------------------------------------------
    mode = group
    if mode == "auto":
        mode = None
        if len(drawn_tids) > max_nodes:
            mode = "process"
            if len({info[x]["pid"] for x in drawn_tids}) > max_nodes:
                mode = "comm"
    g.group = mode

    def tkey(tid: int) -> str:
        if mode == "process":
            return f"p:{info[tid]['pid']}"
        if mode == "comm":
            return f"c:{info[tid]['comm']}"
        return f"t:{tid}"

    # per task-node numbers
    tn: dict[str, dict[str, Any]] = {}
    for tid in drawn_tids:
        n = tn.setdefault(tkey(tid), dict(tids=[], written=0.0, read=0.0, wcalls=0.0, rcalls=0.0, blocked=0.0,
                                          episodes=0.0, woken=0.0, woke=0.0, outside=True, comms=defaultdict(int),
                                          pids=set()))
        n["tids"].append(tid)
        n["comms"][info[tid]["comm"]] += 1
        n["pids"].add(info[tid]["pid"])
        if tid in core:
            n["outside"] = False
    rn: dict[str, dict[str, Any]] = {rid: dict(written=0.0, read=0.0, wcalls=0.0, rcalls=0.0, writers=set(),
                                               readers=set(), blocked=0.0, episodes=0.0, rids=[rid])
                                     for rid in drawn_rids}
    for r in io:
        k, res = tkey(r["tid"]), rn[r["rid"]]
        if r["type"] == "WRITES":
            tn[k]["written"] += r["bytes"]
            tn[k]["wcalls"] += r["calls"]
            res["written"] += r["bytes"]
            res["wcalls"] += r["calls"]
            res["writers"].add(k)
        else:
            tn[k]["read"] += r["bytes"]
            tn[k]["rcalls"] += r["calls"]
            res["read"] += r["bytes"]
            res["rcalls"] += r["calls"]
            res["readers"].add(k)
    if len(model.blocked):
        for tid, rid, ep, ns in zip(column_values(model.blocked["tid"]), column_values(model.blocked["rid"]),
                                    column_values(model.blocked["episodes"]), column_values(model.blocked["blocked_ns"])):
            if rid in rn and real(tid) and int(tid) in drawn_set:
                rn[rid]["blocked"] += _num(ns)
                rn[rid]["episodes"] += _num(ep)
                tn[tkey(int(tid))]["blocked"] += _num(ns)
                tn[tkey(int(tid))]["episodes"] += _num(ep)
    for w in wakes:
        tn[tkey(w["src"])]["woke"] += w["n"]
        tn[tkey(w["dst"])]["woken"] += w["n"]

    # resources: bundle when still too many (grouped mode only)
    kinds = {}
    res = model.resources
    rinfo: dict[str, dict[str, Any]] = {}
    if len(res):
        for rid, kind, path, peer in zip(column_values(res["rid"]), column_values(res["kind"]),
                                         column_values(res["path"]), column_values(res["peer"])):
            rinfo[rid] = dict(kind=kind, path=path, peer=peer)
    for rid in drawn_rids:
        kinds[rid] = (rinfo.get(rid) or {}).get("kind") or str(rid).split(":", 1)[0]
    rkey = {rid: f"r:{rid}" for rid in drawn_rids}
    if mode is not None and len(tn) + len(rn) > max_nodes:
        g.bundled = True
        for rid in drawn_rids:
            sig = (kinds[rid], tuple(sorted(rn[rid]["writers"])), tuple(sorted(rn[rid]["readers"])))
            rkey[rid] = "b:" + "|".join([sig[0], ",".join(sig[1]), ",".join(sig[2])])
    rnodes: dict[str, dict[str, Any]] = {}
    for rid in drawn_rids:
        k, src = rkey[rid], rn[rid]
        n = rnodes.setdefault(k, dict(written=0.0, read=0.0, wcalls=0.0, rcalls=0.0, writers=set(), readers=set(),
                                      blocked=0.0, episodes=0.0, rids=[], kind=kinds[rid]))
        for f in ("written", "read", "wcalls", "rcalls", "blocked", "episodes"):
            n[f] += src[f]
        n["writers"] |= src["writers"]
        n["readers"] |= src["readers"]
        n["rids"].append(rid)

    # edges ---------------------------------------------------------------------------------------
    ed: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in io:
        tk, rk = tkey(r["tid"]), rkey[r["rid"]]
        key = ("WRITES", tk, rk) if r["type"] == "WRITES" else ("READS", rk, tk)
        e = ed.setdefault(key, dict(bytes=0.0, calls=0.0, tids=set()))
        e["bytes"] += r["bytes"]
        e["calls"] += r["calls"]
        e["tids"].add(r["tid"])
    for w in wakes:
        e = ed.setdefault(("WAKES", tkey(w["src"]), tkey(w["dst"])), dict(n=0.0, w2r=0.0, via=set()))
        e["n"] += w["n"]
        e["w2r"] += w["w2r"]
        e["via"].add(w["via"])
    for w in waits:
        e = ed.setdefault(("WAITS_FOR", tkey(w["src"]), tkey(w["dst"])), dict(n=0.0, ns=0.0, via=set()))
        e["n"] += w["n"]
        e["ns"] += w["ns"]
        if w["via"] is not None:
            e["via"].add(w["via"])

    # the two ends of one socket connection (each task writes and reads its own end)
    for rid in drawn_rids:
        peer = (rinfo.get(rid) or {}).get("peer")
        if peer in rkey and peer != rid:
            a, b = sorted((rkey[rid], rkey[peer]))
            if a != b:
                e = ed.setdefault(("PEER", a, b), dict(pairs=set()))
                e["pairs"].add(tuple(sorted((rid, peer))))

    # findings: node sets per finding (tids/rids mapped to drawn nodes)
    finding_nodes: dict[str, list[int]] = defaultdict(list)
    for f in g.findings:
        ns = []
        for tid in f.get("tasks") or []:
            try:
                tid = int(tid)
            except (TypeError, ValueError):
                continue
            if tid in drawn_set and tkey(tid) not in ns:
                ns.append(tkey(tid))
        for rid in f.get("resources") or []:
            if rid in rkey and rkey[rid] not in ns:
                ns.append(rkey[rid])
        f["nodes"] = ns
        for k in ns:
            finding_nodes[k].append(f["rank"])
    touching: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for key in ed:
        if key[1] != key[2]:
            touching[key[1]].append(key)
    hot_edges: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for f in g.findings:  # an edge between two nodes of one finding is part of it
        s = set(f["nodes"])
        steps = None
        if f.get("pattern") in ORDERED:  # a chain/cycle: only its own waits, in order (a red path)
            ts = [tkey(int(x)) for x in f.get("tasks") or [] if _int_ok(x) and int(x) in drawn_set]
            steps = set(zip(ts, ts[1:]))
            if f.get("pattern") == "wait_cycle" and len(ts) > 1:
                steps.add((ts[-1], ts[0]))
        for k in s:
            for key in touching.get(k, ()):
                if key[2] not in s:
                    continue
                if steps is not None and (key[0] == "WAKES" or (key[0] == "WAITS_FOR" and key[1:] not in steps)):
                    continue
                hot_edges[key].append(f["rank"])
    by_rank = {f["rank"]: f for f in g.findings}

    def finding_lines(ranks: list[int]) -> list[str]:
        return [f"finding #{r} {by_rank[r].get('pattern')}: {by_rank[r].get('title') or ''}".rstrip(": ")
                for r in sorted(set(ranks))]

    # nodes ---------------------------------------------------------------------------------------
    top_t = max([n["written"] + n["read"] for n in tn.values()] + [0])
    top_r = max([max(n["written"], n["read"]) for n in rnodes.values()] + [0])
    top = max(top_t, top_r)
    for k, n in tn.items():
        role = ("stage" if n["written"] and n["read"] else "producer" if n["wcalls"] else
                "consumer" if n["rcalls"] else "other")
        colour = ROLE_COLOURS[role][0]
        comm = max(n["comms"].items(), key=lambda kv: (kv[1], kv[0]))[0]
        if mode is None:
            tid = n["tids"][0]
            i = info[tid]
            label = task_label(tid, comm)
            head = f"{label}: pid {i['pid']}" + (f", parent {i['ppid']}" if i["ppid"] not in (None, -1) else "")
        elif mode == "process":
            pid = k[2:]
            label = f"{comm} ({pid})" + (f" ×{len(n['tids'])}" if len(n["tids"]) > 1 else "")
            head = f"process {pid} ({comm}): {_plural(len(n['tids']), 'thread')}"
            if len(n["comms"]) > 1:
                head += " named " + ", ".join(sorted(n["comms"]))
        else:
            label = f"{comm}" + (f" ×{len(n['tids'])}" if len(n["tids"]) > 1 else "")
            head = f"every task named {comm}: {_plural(len(n['tids']), 'thread')} in " \
                   f"{_plural(len(n['pids']), 'process', 'processes')}"
        lines = [head]
        if n["outside"]:
            lines.append("outside the traced command (a peer it talked to)")
        lines.append(f"wrote {human_bytes(n['written'])} in {_plural(int(n['wcalls']), 'call')}; "
                     f"read {human_bytes(n['read'])} in {_plural(int(n['rcalls']), 'call')}")
        if n["episodes"]:
            lines.append(f"blocked {human_ns(n['blocked'])} in {_plural(int(n['episodes']), 'sleep')} on these resources")
        if n["woken"] or n["woke"]:
            lines.append(f"woken {_plural(int(n['woken']), 'time')} through IPC; woke others {_plural(int(n['woke']), 'time')}")
        lines += finding_lines(finding_nodes.get(k, []))
        node = dict(id=k, label=label, shape="dot", title="\n".join(lines), group_kind="task", role=role,
                    size=_scale(n["written"] + n["read"], top, 8, 34),
                    color=dict(background=colour, border=colour,
                               highlight=dict(background=colour, border="#000000"),
                               hover=dict(background=colour, border="#000000")),
                    borderWidth=1)
        if n["outside"]:
            node["shapeProperties"] = dict(borderDashes=[4, 3])
            node["color"]["border"] = "#444444"
            node["borderWidth"] = 2
        _mark_finding(node, finding_nodes.get(k))
        g.nodes.append(node)
    g.task_nodes = len(tn)
    for k, n in rnodes.items():
        colour = KIND_COLOURS.get(n["kind"], OTHER_KIND)
        many = len(n["rids"]) > 1
        if many:
            label = f"{len(n['rids'])} {n['kind']}s"
            head = f"{_plural(len(n['rids']), n['kind'])} with the same writers and readers: " + \
                   ", ".join(n["rids"][:5]) + (f" and {len(n['rids']) - 5} more" if len(n["rids"]) > 5 else "")
        else:
            rid = n["rids"][0]
            ri = rinfo.get(rid) or {}
            label = _short(ri["path"], 24) if ri.get("path") else rid
            head = f"{rid} ({n['kind']})" + (f" {ri['path']}" if ri.get("path") else "") + \
                   (f", peer {ri['peer']}" if ri.get("peer") else "")
        lines = [head,
                 f"written {human_bytes(n['written'])} in {_plural(int(n['wcalls']), 'call')} by "
                 f"{_plural(len(n['writers']), 'writer')}; read {human_bytes(n['read'])} in "
                 f"{_plural(int(n['rcalls']), 'call')} by {_plural(len(n['readers']), 'reader')}"]
        if n["episodes"]:
            lines.append(f"tasks blocked on it {human_ns(n['blocked'])} in {_plural(int(n['episodes']), 'sleep')}")
        lines += finding_lines(finding_nodes.get(k, []))
        node = dict(id=k, label=label, shape="diamond", title="\n".join(lines), group_kind="resource", kind=n["kind"],
                    size=_scale(max(n["written"], n["read"]), top, 7, 26),
                    color=dict(background=colour, border=colour, highlight=dict(background=colour, border="#000000"),
                               hover=dict(background=colour, border="#000000")),
                    borderWidth=1)
        _mark_finding(node, finding_nodes.get(k))
        g.nodes.append(node)
    g.resource_nodes = len(rnodes)

    label_of = {n["id"]: n["label"] for n in g.nodes}
    top_bytes = max([e["bytes"] for (ty, _, _), e in ed.items() if ty in ("WRITES", "READS")] + [0])
    top_wake = max([e["n"] for (ty, _, _), e in ed.items() if ty == "WAKES"] + [0])
    top_wait = max([e["n"] for (ty, _, _), e in ed.items() if ty == "WAITS_FOR"] + [0])
    for key, e in ed.items():
        ty, s, d = key
        name = f"{label_of[s]} → {label_of[d]}"
        if ty in ("WRITES", "READS"):
            kind = rnodes[s if ty == "READS" else d]["kind"]
            colour = KIND_COLOURS.get(kind, OTHER_KIND)
            verb = "wrote" if ty == "WRITES" else "read"
            title = f"{ty}: {name}\n{verb} {human_bytes(e['bytes'])} in {_plural(int(e['calls']), 'call')}"
            if mode is not None:
                title += f" ({_plural(len(e['tids']), 'task')})"
            edge = dict(width=_scale(e["bytes"], top_bytes, 1, 10), color=dict(color=colour, opacity=0.8),
                        arrows="to")
        elif ty == "WAKES":
            title = (f"WAKES: {name}\n{_plural(int(e['n']), 'wakeup')} through {', '.join(sorted(e['via'])[:3])}; "
                     f"wakee ran after {human_ns(e['w2r'] / e['n'] if e['n'] else 0)} on average")
            edge = dict(width=_scale(e["n"], top_wake, 1, 6), dashes=[6, 4], color=dict(color=WAKES_COLOUR, opacity=0.7),
                        arrows="to")
        elif ty == "PEER":
            kind = rnodes[s]["kind"]
            pairs = sorted(e["pairs"])
            title = (f"PEER: {label_of[s]} ↔ {label_of[d]}\nthe two ends of "
                     + (f"{_plural(len(pairs), 'connection')}" if len(pairs) > 1 else "one connection")
                     + ": what one end writes, the other reads")
            edge = dict(width=3, color=dict(color=KIND_COLOURS.get(kind, OTHER_KIND), opacity=0.6), arrows={"to": {"enabled": False}},
                        dashes=[1, 3])
        else:
            title = (f"WAITS_FOR: {name}\nwaited {human_ns(e['ns'])} in {_plural(int(e['n']), 'sleep')}"
                     + (f" on {', '.join(sorted(e['via'])[:3])}" if e["via"] else "") + f" until {label_of[d]} woke it")
            edge = dict(width=_scale(e["n"], top_wait, 1, 6), dashes=[2, 4], color=dict(color=WAITS_COLOUR, opacity=0.9),
                        arrows="to")
        if key in hot_edges:
            edge["color"] = dict(color=FINDING_COLOUR, opacity=1.0)
            edge["width"] = max(edge["width"], 3)
            edge["findings"] = sorted(set(hot_edges[key]))
            title += "\n" + "\n".join(finding_lines(hot_edges[key]))
        edge.update(id=f"{ty}:{s}->{d}", title=title, type=ty)
        edge["from"], edge["to"] = s, d
        g.edges.append(edge)
    if mode is not None:
        why = (f"more than {max_nodes:,} tasks" if group == "auto" else f"group={mode!r}")
        g.notes.append(f"{_plural(g.tasks, 'task')} grouped into {_plural(g.task_nodes, 'node')}, one per "
                       f"{'process' if mode == 'process' else 'command name'} ({why}); ungroup (--ungroup) to see every task.")
    if g.bundled:
        g.notes.append(f"{_plural(g.resources, 'resource')} bundled into {_plural(g.resource_nodes, 'node')} "
                       "(same kind, same writers and readers).")
    return g


# --- HTML ------------------------------------------------------------------------------------------
def _vis_js() -> str:
    """vis-network's JavaScript as shipped with pyvis (inlined into the page)."""
    import pyvis

    base = Path(pyvis.__file__).resolve().parent / "templates" / "lib"
    for v in ("vis-9.1.2", "vis-9.0.4"):
        p = base / v / "vis-network.min.js"
        if p.exists():
            js = p.read_text(encoding="utf-8")
            # no source map fetch, and nothing that could close the <script> element
            return js.replace("//# sourceMappingURL=vis-network.min.js.map", "").replace("</script", "<\\/script")
    raise FileNotFoundError(f"vis-network.min.js not found under {base} (is pyvis installed?)")


def _json(v: Any) -> str:
    s = json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("\u2028", "\\u2028") \
        .replace("\u2029", "\\u2029")


def _network(graph: Graph):
    """The graph as a pyvis Network (its nodes/edges lists are what the page hands to vis)."""
    from pyvis.network import Network

    net = Network(directed=True, cdn_resources="in_line")
    seen = set()
    for n in graph.nodes:
        opts = {k: v for k, v in n.items() if k not in ("id", "label", "shape")}
        if n["id"] in seen:
            continue
        seen.add(n["id"])
        net.add_node(n["id"], label=n["label"], shape=n["shape"], **opts)
    from pyvis.edge import Edge

    for e in graph.edges:  # Network.add_edge checks membership in a list per edge: O(N) each
        opts = {k: v for k, v in e.items() if k not in ("from", "to")}
        net.edges.append(Edge(e["from"], e["to"], True, **opts).options)
    return net


def _options(n_nodes: int, n_edges: int) -> dict[str, Any]:
    big = n_nodes > 150 or n_edges > 400
    return {
        "autoResize": True,
        "nodes": {"font": {"size": 12, "face": "sans-serif", "strokeWidth": 3, "strokeColor": "#ffffff"}},
        "edges": {"arrows": {"to": {"enabled": True, "scaleFactor": 0.5}},
                  "smooth": False if big else {"type": "continuous"},
                  "selectionWidth": 2, "hoverWidth": 1.5},
        "physics": {"solver": "forceAtlas2Based",
                    "forceAtlas2Based": {"gravitationalConstant": -60, "centralGravity": 0.01,
                                         "springLength": 90, "springConstant": 0.08, "avoidOverlap": 0.3},
                    "maxVelocity": 60, "minVelocity": 1,
                    "stabilization": {"enabled": True, "iterations": 300 if big else 500, "updateInterval": 50,
                                      "fit": True}},
        "interaction": {"hover": True, "tooltipDelay": 120, "hideEdgesOnDrag": big, "multiselect": True,
                        "navigationButtons": False, "keyboard": False},
        "layout": {"randomSeed": 7, "improvedLayout": n_nodes <= 100},
    }


CSS = """
*{box-sizing:border-box}
html,body{height:100%}
body{margin:0;display:flex;flex-direction:column;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",
 sans-serif;color:#222;background:#fff}
header{flex:0 0 auto;padding:10px 16px;border-bottom:1px solid #ddd}
header h1{font-size:18px;margin:0 0 4px 0}
header p{margin:2px 0;color:#555}
main{flex:1 1 auto;display:flex;min-height:420px}
#graph{flex:1 1 auto;min-width:0;position:relative;border-right:1px solid #ddd;background:#fcfcfc}
aside{flex:0 0 330px;overflow:auto;padding:10px 14px;font-size:13px}
aside h2{font-size:14px;margin:12px 0 6px 0}
.legend div{display:flex;align-items:center;gap:8px;margin:3px 0}
.sw{display:inline-block;width:14px;height:14px;border-radius:50%;flex:0 0 14px}
.sw.r{border-radius:2px;transform:rotate(45deg);width:11px;height:11px;flex-basis:11px;margin:0 1.5px}
.ln{display:inline-block;width:26px;height:0;border-top:3px solid;flex:0 0 26px}
.ln.dash{border-top-style:dashed}.ln.dot{border-top-style:dotted}
ol.findings{padding-left:20px;margin:0}
ol.findings li{margin:0 0 8px 0;cursor:pointer}
ol.findings li.off{cursor:default;color:#888}
ol.findings li .p{color:#d62728;font-weight:600}
ol.findings li .m{color:#666}
.empty{margin:40px auto;max-width:640px;padding:24px;border:1px solid #ddd;border-radius:6px;background:#fafafa}
.empty h2{margin-top:0}
#status{position:absolute;left:10px;top:8px;color:#888;font-size:12px;pointer-events:none}
div.vis-tooltip{position:absolute;visibility:hidden;padding:6px 8px;white-space:pre;font:12px/1.35 ui-monospace,
 "DejaVu Sans Mono",monospace;color:#000;background:#fffdf2;border:1px solid #999;border-radius:3px;
 box-shadow:2px 2px 8px rgba(0,0,0,.2);pointer-events:none;z-index:5;max-width:640px;overflow:hidden}
"""

# Recorded for tests before anything else runs: errors into #ftipc-errors, counts on <body>.
HOOKS = """
(function(){
  function box(){return document.getElementById('ftipc-errors');}
  function rec(msg){
    try{var b=box(); if(b){b.textContent += String(msg).replace(/\\n/g,' ') + '\\n';}
        if(document.body){document.body.dataset.errors = String((+(document.body.dataset.errors||0))+1);}}catch(e){}
  }
  window.__ftipcError = rec;
  window.onerror = function(msg, src, line, col, err){ rec((err && err.stack ? err.stack.split('\\n')[0] : msg) +
      (line ? ' (line ' + line + ')' : '')); return false; };
  window.addEventListener('unhandledrejection', function(ev){ rec('unhandled rejection: ' + (ev.reason && ev.reason.message || ev.reason)); });
})();
"""

APP = """
(function(){
  var data = JSON.parse(document.getElementById('ftipc-data').textContent);
  var body = document.body, status = document.getElementById('status');
  function set(k, v){ if (body.dataset[k] !== v) body.dataset[k] = v; }  // no mutation when unchanged
  function record(net){
    set('nodes', String(net.body.nodeIndices.length));
    set('edges', String(net.body.edgeIndices.length));
    set('datasetNodes', String(net.body.data.nodes.length));
    set('datasetEdges', String(net.body.data.edges.length));
    set('ready', '1');
  }
  if (typeof vis === 'undefined' || !vis.Network) { throw new Error('vis-network did not load'); }
  var nodes = new vis.DataSet(data.nodes), edges = new vis.DataSet(data.edges);
  var net = new vis.Network(document.getElementById('graph'), {nodes: nodes, edges: edges}, data.options);
  window.ftipcNetwork = net;
  net.on('stabilizationProgress', function(p){ if (status) status.textContent = 'laying out ' +
      Math.round(100 * p.iterations / p.total) + ' %'; });
  net.on('afterDrawing', function(){ record(net); });
  net.once('stabilizationIterationsDone', function(){
    net.setOptions({physics: false});
    if (status) status.textContent = '';
    net.fit({animation: false});
    net.redraw();  // draws now (fires afterDrawing), not at the next animation frame
  });
  net.redraw();
  setTimeout(function(){ if (body.dataset.ready !== '1') net.redraw(); }, 3000);
  var items = document.querySelectorAll('ol.findings li[data-nodes]');
  for (var i = 0; i < items.length; i++) {
    items[i].addEventListener('click', function(){
      var ids = JSON.parse(this.getAttribute('data-nodes'));
      if (!ids.length) return;
      net.selectNodes(ids, true);
      net.fit({nodes: ids, animation: {duration: 400}});
    });
  }
})();
"""

EMPTY_APP = """
document.body.dataset.nodes = '0'; document.body.dataset.edges = '0'; document.body.dataset.ready = '1';
"""


def _legend(graph: Graph) -> str:
    roles = {n.get("role") for n in graph.nodes if n.get("group_kind") == "task"}
    kinds = {n.get("kind") for n in graph.nodes if n.get("group_kind") == "resource"}
    types = {e["type"] for e in graph.edges}
    rows = []
    for r, (c, text) in ROLE_COLOURS.items():
        if r in roles:
            what = text if graph.group is None else text.replace("task", "group of tasks", 1)
            rows.append(f'<div><span class="sw" style="background:{c}"></span>{html.escape(what)}</div>')
    if any(n.get("shapeProperties") for n in graph.nodes):
        rows.append('<div><span class="sw" style="background:#fff;border:2px dashed #444"></span>'
                    'outside the traced command</div>')
    for k in sorted(kinds, key=str):
        c = KIND_COLOURS.get(k, OTHER_KIND)
        rows.append(f'<div><span class="sw r" style="background:{c}"></span>{html.escape(str(k))}</div>')
    if types & {"WRITES", "READS"}:
        rows.append('<div><span class="ln" style="border-color:#777"></span>writes / reads (width: bytes)</div>')
    if "PEER" in types:
        rows.append('<div><span class="ln dot" style="border-color:#17becf"></span>the two ends of one socket '
                    'connection</div>')
    if "WAKES" in types:
        rows.append(f'<div><span class="ln dash" style="border-color:{WAKES_COLOUR}"></span>wakes through IPC '
                    '(width: wakeups)</div>')
    if "WAITS_FOR" in types:
        rows.append(f'<div><span class="ln dot" style="border-color:{WAITS_COLOUR}"></span>waits for '
                    '(width: sleeps)</div>')
    if graph.findings:
        rows.append(f'<div><span class="sw" style="background:#fff;border:3px solid {FINDING_COLOUR}"></span>'
                    'in a finding (edges between its nodes in red)</div>')
    rows.append('<div class="m" style="color:#666">size: bytes moved (log scale); hover for numbers</div>')
    return '<div class="legend">' + "".join(rows) + "</div>"


def _findings_html(graph: Graph) -> str:
    if not graph.findings:
        return "<p>No findings were given (or no detector fired).</p>"
    out = ['<ol class="findings">']
    for f in sorted(graph.findings, key=lambda f: f["rank"]):
        nodes = f.get("nodes") or []
        cls = "" if nodes else ' class="off"'
        meta = (f"{int(py(f.get('count')) or 0):,}× · {human_ns(py(f.get('critical_ns')) or 0)} on the critical path"
                f" · {human_ns(py(f.get('asleep_ns')) or 0)} asleep")
        if not nodes:
            meta += " · not in this graph"
        expl = html.escape(str(f.get("explanation") or ""))
        sugg = html.escape(str(f.get("suggestion") or ""))
        out.append(f'<li value="{int(f["rank"])}"{cls} data-nodes="{html.escape(json.dumps(nodes))}" '
                   f'title="{expl}&#10;&#10;fix: {sugg}"><span class="p">{html.escape(str(f.get("pattern")))}</span> '
                   f'{html.escape(str(f.get("title") or ""))}<br><span class="m">{html.escape(meta)}</span></li>')
    out.append("</ol>")
    return "".join(out)


def render(model: Model, findings: Any = (), *, group: str | None = "auto", max_nodes: int = 500,
           title: str = "", all_tasks: bool = False) -> str:
    """The graph of ``model`` as one self-contained HTML document (nothing fetched: works offline).

    ``findings``: an Analysis or a list of Finding (or their JSON dicts) to highlight; ``group``:
    ``"auto"`` (one node per process when there are more than ``max_nodes`` tasks), ``"process"``,
    ``"comm"`` or None (every task); ``all_tasks``: the whole capture, not only the traced command's
    process tree and its peers."""
    graph = build(model, findings, group=group, max_nodes=max_nodes, all_tasks=all_tasks)
    return page(graph, model, title=title)


def page(graph: Graph, model: Model, *, title: str = "") -> str:
    """The HTML document of a built :class:`Graph`."""
    cap = str(model.capture or "")
    title = title or f"ftraceipc graph: {Path(cap).name or 'capture'}"
    esc = html.escape
    head_lines = [f"{_plural(graph.tasks, 'task')} and {_plural(graph.resources, 'resource')} "
                  f"({_plural(len(graph.nodes), 'node')}, {_plural(len(graph.edges), 'edge')}); scope: {graph.scope}."]
    head_lines += graph.notes
    empty = not graph.nodes
    body_attrs = {
        "data-expected-nodes": str(len(graph.nodes)), "data-expected-edges": str(len(graph.edges)),
        "data-task-nodes": str(graph.task_nodes), "data-resource-nodes": str(graph.resource_nodes),
        "data-group": graph.group or "", "data-empty": "1" if empty else "0",
        "data-findings": str(len(graph.findings)),
    }
    attrs = " ".join(f'{k}="{esc(v)}"' for k, v in body_attrs.items())
    parts = ["<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
             f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n<script>{HOOKS}</script>\n"]
    if not empty:
        parts.append(f"<script>{_vis_js()}</script>\n")
    parts.append(f"</head>\n<body {attrs}>\n<pre id=\"ftipc-errors\" hidden></pre>\n")
    parts.append(f"<header><h1>{esc(title)}</h1><p>capture {esc(cap)} ({esc(str(model.capture_id or ''))})</p>")
    if empty:
        parts.append("</header>\n")
        if graph.whole:
            say = (f"{_plural(graph.capture_tasks, 'task')} traced; none wrote to or read from a pipe, FIFO or "
                   "Unix socket that another task used.")
        else:
            n = graph.scope_tasks
            say = (f"The traced command ran {_plural(n, 'task')}; {'it' if n == 1 else 'none of them'} wrote to "
                   f"or read from no pipe, FIFO or Unix socket that another task used. The capture holds "
                   f"{_plural(graph.capture_tasks, 'task')} in all; draw every task (--all-tasks) to see the "
                   "rest of the machine.")
        parts.append(f'<div class="empty" id="empty"><h2>{esc(NO_IPC)}</h2><p>{esc(say).replace("--all-tasks", CODE_ALL)}</p></div>\n')
        parts.append(f"<script>{EMPTY_APP}</script>\n</body>\n</html>\n")
        return "".join(parts)
    parts.append("".join(f"<p>{esc(s)}</p>" for s in head_lines) + "</header>\n")
    parts.append('<main><div id="graph"><div id="status">laying out …</div></div><aside>'
                 f"<h2>Legend</h2>{_legend(graph)}<h2>Findings ({len(graph.findings)})</h2>{_findings_html(graph)}"
                 "</aside></main>\n")
    net = _network(graph)
    data = {"nodes": net.nodes, "edges": net.edges, "options": _options(len(graph.nodes), len(graph.edges))}
    parts.append(f'<script type="application/json" id="ftipc-data">{_json(data)}</script>\n')
    parts.append(f"<script>{APP}</script>\n</body>\n</html>\n")
    return "".join(parts)


def write(model: Model, findings: Any, path: str | os.PathLike, **kw) -> Path:
    """:func:`render` into ``path`` (UTF-8); returns the path."""
    p = Path(path)
    p.write_text(render(model, findings, **kw), encoding="utf-8")
    return p


__all__ = ["render", "write", "build", "page", "Graph", "NO_IPC"]
