"""One self-contained HTML page about a capture: ``ftraceipc report CAPTURE --html FILE``.

The page needs nothing from the network (no CDN, no web fonts, no external CSS or JS): the plots are
inline SVG drawn here, the graph is the vis-network document of :mod:`ftraceipc.report.graphview`
embedded in an ``<iframe srcdoc>``. Sections, in order:

- ``#summary``: command, exit code, duration, events, lost events (and what to change), tasks and
  resources (of the command's process tree when the capture has one, and in the whole capture);
- ``#findings``: the ranked findings of ``ftraceipc analyze`` (pattern, title, tasks as comm[tid],
  resources, count, time on the critical path and asleep, explanation, suggestion, the Neo4j Browser
  query in ``<details>``), in the order of the analysis (by critical path time, then time asleep);
  the findings under the ranking's share of the path, named in ``details#minor-findings``;
- ``#plots``: ``svg#plot-blocked`` (blocked time per task over time, the top 10 tasks, one row each),
  ``svg#plot-wakeup-latency`` (histogram of wake-to-run latency, log-scale bins) and
  ``svg#plot-bytes`` (bytes written and read per resource, top 15). Each SVG has ``data-points``:
  the number of task rows, histogram bins and resource bars it draws;
- ``#talkers``: the top flows (writer -> reader) as a table;
- ``#graph``: the task/resource graph;
- ``#notes``: what could not be attributed, and why.

The page follows the conventions of tests/integration/browser.py: the body gets ``data-ready="1"``,
``data-nodes`` and ``data-edges`` from the embedded graph once it has drawn (0 without a graph), and
JavaScript errors on the page (and inside the embedded graph) are recorded in the hidden element
``<pre id="ftipc-errors" hidden>`` (one line each), so a headless browser can check that the page loaded cleanly.
"""

from __future__ import annotations

import html
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ftraceipc.model import ipc
from ftraceipc.model.export import (Labels, column_values, duration_ns, human_bytes, human_ns, lost_total, py,
                                    tracer_tids, user_tasks)
from ftraceipc.report.findings import path_line, time_words

TOP_BLOCKED = 10  # tasks in the blocked-time plot
TOP_BYTES = 15  # resources in the bytes plot
TOP_TALKERS = 15  # rows of the flows table
MAX_FINDINGS = 100  # findings listed on the page (the rest counted)
BLOCKED_BINS = 60
# wake-to-run histogram bin edges (ns): 1-2-5 steps from 1 us to 10 s; below 1 us is the first bin
LAT_EDGES = [int(m * 10 ** e) for e in range(3, 10) for m in (1, 2, 5)] + [10 ** 10]

IPC_COLOR = "#d9534f"
OTHER_COLOR = "#9aa5b1"
WRITE_COLOR = "#3873b8"
READ_COLOR = "#7fb3e6"
BAR_COLOR = "#5b8def"


def esc(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


# --- data for the plots ---------------------------------------------------------------------------
@dataclass
class Scope:
    """The part of the capture the page is about: the command's process tree, else every task
    (ftraceipc's own tasks never)."""

    tids: set[int]
    pids: set[int] | None  # None: every task
    label: str
    labels: Labels
    focused: ipc.Model  # the model restricted to these tasks (summary.focus), or the model itself


def _scope(model: ipc.Model) -> Scope:
    from ftraceipc.model.summary import command_tree, focus

    tracer = tracer_tids(model)
    tree = command_tree(model)
    t = model.tasks
    if tree is not None:
        tids = {int(x) for x, p in zip(column_values(t["tid"]), column_values(t["pid"])) if p in tree} - tracer
        cmd = _command(model.meta)
        return Scope(tids, tree, f"the command's process tree ({len(tree)} process{'es' if len(tree) != 1 else ''}"
                     f"{': ' + cmd[:80] if cmd else ''})", Labels(model), focus(model, tree))
    tids = {int(x) for x in column_values(user_tasks(model)["tid"])} if len(t) else set()
    return Scope(tids, None, "every task of the capture", Labels(model), model)


def _command(meta: dict) -> str:
    cmd = (meta or {}).get("command")
    if isinstance(cmd, list):
        return " ".join(map(str, cmd))
    return str(cmd) if cmd else ""


@dataclass
class BlockedSeries:
    t0: int
    t1: int
    bins: int
    # (tid, label, total ns, ns per bin on an IPC resource, ns per bin elsewhere)
    rows: list[tuple[int, str, int, np.ndarray, np.ndarray]] = field(default_factory=list)


def _spread(starts: np.ndarray, durs: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Nanoseconds of the intervals [start, start+dur) in each bin between ``edges``."""
    if not len(starts):
        return np.zeros(len(edges) - 1)
    s = starts.astype(np.float64)
    d = np.maximum(durs.astype(np.float64), 0)
    # cum[k] = time asleep before edges[k]
    cum = np.empty(len(edges))
    for k in range(0, len(starts), 50_000):
        part = np.clip(edges[:, None] - s[None, k:k + 50_000], 0, d[None, k:k + 50_000]).sum(axis=1)
        cum = part if k == 0 else cum + part
    return np.diff(cum)


def blocked_series(model: ipc.Model, tids: set[int], *, top: int = TOP_BLOCKED,
                   bins: int = BLOCKED_BINS) -> BlockedSeries | None:
    """Blocked time per bin of the ``top`` tasks (of ``tids``) with the most blocked time, from the
    episodes (None when the model has no episodes or none of these tasks slept). Every episode is
    spread over the bins it overlaps; the bins span the capture, and any sleep beyond it."""
    ep = model.episodes
    if ep is None or not len(ep) or not tids:
        return None
    ep = ep[ep["tid"].isin(list(tids))]
    if not len(ep):
        return None
    ep = ep[pd.to_numeric(ep["start_ts"], errors="coerce").notna()]
    tid = pd.to_numeric(ep["tid"]).to_numpy(dtype=np.int64)
    start = pd.to_numeric(ep["start_ts"]).to_numpy(dtype=np.int64)
    dur = np.maximum(pd.to_numeric(ep["dur_ns"], errors="coerce").fillna(0).to_numpy(dtype=np.int64), 0)
    ipc_rid = ep["rid"].notna().to_numpy()
    totals = pd.Series(dur).groupby(tid).sum()
    totals = totals[totals > 0]
    if not len(totals):
        return None
    order = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    meta = model.meta or {}
    t0 = min([int(start.min())] + ([int(meta["start_ts"])] if isinstance(meta.get("start_ts"), int) else []))
    t1 = max([int((start + dur).max())] + ([int(meta["stop_ts"])] if isinstance(meta.get("stop_ts"), int) else []))
    t1 = max(t1, t0 + 1)
    edges = np.linspace(t0, t1, bins + 1)
    out = BlockedSeries(t0, t1, bins)
    lab = Labels(model)
    for t, total in order:
        m = tid == t
        on = _spread(start[m & ipc_rid], dur[m & ipc_rid], edges)
        off = _spread(start[m & ~ipc_rid], dur[m & ~ipc_rid], edges)
        out.rows.append((int(t), lab.task(t), int(total), on, off))
    return out


def latency_histogram(model: ipc.Model, tids: set[int]) -> tuple[list[int], list[str], int] | None:
    """(counts per bin, bin labels, wakeups never run) of the wake-to-run latency of wakeups whose
    wakee is one of ``tids``; bins from the first to the last non-empty one (None: no wakeups)."""
    wu = model.wakeups
    if wu is None or not len(wu) or not tids:
        return None
    wu = wu[wu["wakee"].isin(list(tids))]
    if not len(wu):
        return None
    lat = pd.to_numeric(wu["wake_to_run_ns"], errors="coerce").fillna(-1).to_numpy(dtype=np.int64)
    never = int((lat < 0).sum())
    lat = lat[lat >= 0]
    if not len(lat):
        return None
    idx = np.searchsorted(np.array(LAT_EDGES), lat, side="right")  # 0: < 1 us; len: >= 10 s
    counts = np.bincount(idx, minlength=len(LAT_EDGES) + 1)
    nz = np.nonzero(counts)[0]
    lo, hi = int(nz[0]), int(nz[-1])
    labels = []
    for i in range(lo, hi + 1):
        if i == 0:
            labels.append(f"<{human_ns(LAT_EDGES[0])}")
        elif i == len(LAT_EDGES):
            labels.append(f">={human_ns(LAT_EDGES[-1])}")
        else:
            labels.append(human_ns(LAT_EDGES[i - 1]))
    return [int(c) for c in counts[lo:hi + 1]], labels, never


def bytes_per_resource(model: ipc.Model, tids: set[int], *, top: int = TOP_BYTES) -> list[tuple[str, int, int]]:
    """[(rid, bytes written, bytes read)] by these tasks, the ``top`` resources by written + read."""
    io = model.io
    if not len(io) or not tids:
        return []
    io = io[io["tid"].isin(list(tids)) & io["rid"].notna()]
    if not len(io):
        return []
    b = pd.to_numeric(io["bytes"], errors="coerce").fillna(0)
    w = b.where(io["type"] == "WRITES", 0).groupby(io["rid"]).sum()
    r = b.where(io["type"] == "READS", 0).groupby(io["rid"]).sum()
    rows = [(str(rid), int(w.get(rid, 0)), int(r.get(rid, 0))) for rid in w.index.union(r.index)]
    rows = [x for x in rows if x[1] + x[2] > 0]
    rows.sort(key=lambda x: (-(x[1] + x[2]), x[0]))
    return rows[:top]


# --- SVG ----------------------------------------------------------------------------------------------
def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _ticks(vmax: float, n: int = 4) -> list[float]:
    if vmax <= 0:
        return [0.0]
    raw = vmax / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(vmax / step) + 1)]


def svg_blocked(s: BlockedSeries) -> str:
    n = len(s.rows)
    left, right, top, row_h, gap = 190, 20, 24, 34, 8
    width = 900
    pw = width - left - right
    height = top + n * (row_h + gap) + 44
    bw = pw / s.bins
    bin_ns = (s.t1 - s.t0) / s.bins
    ymax = max(float(max((on + off).max() for _, _, _, on, off in s.rows)), 1.0)
    out = [f'<svg id="plot-blocked" class="plot" data-points="{n}" data-bins="{s.bins}" '
           f'data-bin-ns="{_num(bin_ns)}" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="blocked time per task over time">']
    out.append(f'<text x="{left}" y="14" class="lbl">blocked time per bin of {esc(human_ns(bin_ns))} '
               f'(bar height: 0 to {esc(human_ns(ymax))})</text>')
    for i, (tid, label, total, on, off) in enumerate(s.rows):
        y0 = top + i * (row_h + gap)
        out.append(f'<g class="row" data-tid="{tid}" data-blocked-ns="{total}">')
        out.append(f'<text x="{left - 6}" y="{y0 + row_h / 2 + 4:.1f}" text-anchor="end" class="lbl">'
                   f'{esc(label)} <tspan class="muted">{esc(human_ns(total))}</tspan></text>')
        out.append(f'<line x1="{left}" y1="{y0 + row_h}" x2="{left + pw}" y2="{y0 + row_h}" class="axis"/>')
        for k in range(s.bins):
            x = left + k * bw
            h_on = on[k] / ymax * row_h
            h_off = off[k] / ymax * row_h
            if h_on > 0.05:
                out.append(f'<rect x="{x:.1f}" y="{y0 + row_h - h_on:.1f}" width="{max(bw - 1, 0.5):.1f}" '
                           f'height="{h_on:.1f}" fill="{IPC_COLOR}"><title>{esc(label)}: '
                           f'{esc(human_ns(on[k]))} on IPC</title></rect>')
            if h_off > 0.05:
                out.append(f'<rect x="{x:.1f}" y="{y0 + row_h - h_on - h_off:.1f}" width="{max(bw - 1, 0.5):.1f}" '
                           f'height="{h_off:.1f}" fill="{OTHER_COLOR}"><title>{esc(label)}: '
                           f'{esc(human_ns(off[k]))} elsewhere</title></rect>')
        out.append('</g>')
    ya = top + n * (row_h + gap)
    span = s.t1 - s.t0
    for t in _ticks(span / 1e9 * 1e3, 6):  # ms since start
        x = left + (t * 1e6) / span * pw
        if x <= left + pw + 0.5:
            out.append(f'<line x1="{x:.1f}" y1="{ya - gap}" x2="{x:.1f}" y2="{ya - gap + 4}" class="axis"/>')
            out.append(f'<text x="{x:.1f}" y="{ya + 10}" text-anchor="middle" class="tick">{_num(t)}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{ya + 30}" text-anchor="middle" class="lbl">time since the '
               f'capture started (ms)</text>')
    out.append(f'<rect x="{left + pw - 250}" y="4" width="10" height="10" fill="{IPC_COLOR}"/>'
               f'<text x="{left + pw - 236}" y="13" class="tick">on an IPC resource</text>'
               f'<rect x="{left + pw - 120}" y="4" width="10" height="10" fill="{OTHER_COLOR}"/>'
               f'<text x="{left + pw - 106}" y="13" class="tick">elsewhere</text>')
    out.append('</svg>')
    return "".join(out)


def svg_histogram(counts: list[int], labels: list[str]) -> str:
    n = len(counts)
    left, right, top, bottom = 60, 20, 20, 56
    width, ph = 900, 220
    pw = width - left - right
    height = top + ph + bottom
    bw = min(pw / n, 80)  # a few bins stay narrow
    pw = bw * n
    ymax = max(counts) or 1
    ticks = [t for t in _ticks(max(ymax, 4)) if t == int(t)]  # counts: whole ticks
    ytop = max(ticks[-1], ymax)
    out = [f'<svg id="plot-wakeup-latency" class="plot" data-points="{n}" data-total="{sum(counts)}" '
           f'viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="wakeup latency histogram">']
    for t in ticks:
        y = top + ph - t / ytop * ph
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_num(t)}</text>')
    for i, (c, lab) in enumerate(zip(counts, labels)):
        x = left + i * bw
        h = c / ytop * ph
        out.append(f'<rect x="{x + 1:.1f}" y="{top + ph - h:.1f}" width="{max(bw - 2, 1):.1f}" height="{h:.1f}" '
                   f'fill="{BAR_COLOR}" data-count="{c}"><title>{esc(lab)}: {c:,} wakeups</title></rect>')
        out.append(f'<text x="{x + bw / 2:.1f}" y="{top + ph + 14}" text-anchor="middle" class="tick">'
                   f'{esc(lab)}</text>')
    out.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" class="axis"/>'
               f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" class="axis"/>')
    out.append(f'<text x="{left}" y="{top + ph + 40}" class="lbl">wake-to-run '
               f'latency (bin from the value shown to the next; log scale)</text>')
    out.append(f'<text x="14" y="{top + ph / 2}" text-anchor="middle" class="lbl" '
               f'transform="rotate(-90 14 {top + ph / 2})">wakeups</text>')
    out.append('</svg>')
    return "".join(out)


def svg_bytes(rows: list[tuple[str, int, int]]) -> str:
    n = len(rows)
    left, right, top, bar_h, gap = 230, 120, 26, 18, 6
    width = 900
    pw = width - left - right
    height = top + n * (bar_h + gap) + 40
    vmax = max(w + r for _, w, r in rows) or 1
    out = [f'<svg id="plot-bytes" class="plot" data-points="{n}" viewBox="0 0 {width} {height}" width="100%" '
           f'role="img" aria-label="bytes per resource">']
    out.append(f'<rect x="{left}" y="6" width="10" height="10" fill="{WRITE_COLOR}"/>'
               f'<text x="{left + 14}" y="15" class="tick">written</text>'
               f'<rect x="{left + 80}" y="6" width="10" height="10" fill="{READ_COLOR}"/>'
               f'<text x="{left + 94}" y="15" class="tick">read</text>')
    for i, (rid, w, r) in enumerate(rows):
        y = top + i * (bar_h + gap)
        ww, rw = w / vmax * pw, r / vmax * pw
        out.append(f'<g class="bar" data-rid="{esc(rid)}" data-written="{w}" data-read="{r}">')
        out.append(f'<text x="{left - 6}" y="{y + bar_h - 5}" text-anchor="end" class="lbl">{esc(rid)}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{ww:.1f}" height="{bar_h}" fill="{WRITE_COLOR}">'
                   f'<title>{esc(rid)}: {esc(human_bytes(w))} written</title></rect>')
        out.append(f'<rect x="{left + ww:.1f}" y="{y}" width="{rw:.1f}" height="{bar_h}" fill="{READ_COLOR}">'
                   f'<title>{esc(rid)}: {esc(human_bytes(r))} read</title></rect>')
        out.append(f'<text x="{left + ww + rw + 6:.1f}" y="{y + bar_h - 5}" class="tick">'
                   f'{esc(human_bytes(w))} / {esc(human_bytes(r))}</text>')
        out.append('</g>')
    ya = top + n * (bar_h + gap)
    out.append(f'<line x1="{left}" y1="{ya}" x2="{left + pw}" y2="{ya}" class="axis"/>')
    out.append(f'<text x="{left + pw / 2}" y="{ya + 24}" text-anchor="middle" class="lbl">bytes written into '
               f'and read from the resource (0 to {esc(human_bytes(vmax))})</text>')
    out.append('</svg>')
    return "".join(out)


# --- the page ----------------------------------------------------------------------------------------
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2b45;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header .sub{opacity:.8;font-size:13px}nav{padding:6px 24px;background:#e8ecf2;font-size:13px}
nav a{margin-right:14px;color:#1d4f91;text-decoration:none}main{padding:8px 24px 40px;max-width:1100px}
section{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:10px 18px;margin:14px 0}
h2{font-size:17px;margin:6px 0 10px}table{border-collapse:collapse;font-size:13px}
td,th{padding:3px 10px;border-bottom:1px solid #eef0f4;text-align:left;vertical-align:top}
th{color:#4a5568;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.finding{border-left:4px solid #d9534f;padding:6px 12px;margin:10px 0;background:#fcfcfd}
.finding h3{margin:0 0 4px;font-size:15px}.pattern{font-family:monospace;background:#eef1f6;padding:1px 5px;
border-radius:3px}.facts{color:#4a5568;font-size:13px}.why,.fix{margin:4px 0}.label{font-weight:600}
pre{background:#f3f5f8;padding:8px;overflow:auto;font-size:12px}.warn{color:#a0281e;font-weight:600}
.empty{color:#4a5568;font-style:italic}figure{margin:12px 0 22px}figcaption{font-size:13px;color:#4a5568}
svg.plot{max-width:900px;background:#fff}svg .lbl{font-size:12px;fill:#1d2430}svg .tick{font-size:11px;fill:#4a5568}
svg .muted{fill:#6b7685}svg .axis{stroke:#4a5568;stroke-width:1}svg .grid{stroke:#e3e7ee;stroke-width:1}
iframe.graph{width:100%;height:640px;border:1px solid #dde2ea;border-radius:4px}
"""

# first script of the page: every error is recorded in #ftipc-errors (read by tests and by people)
ERROR_JS = r"""
(function(){var errs=[];function flush(){var pre=document.getElementById('ftipc-errors');
if(pre){pre.textContent=errs.map(function(m){return m+'\n';}).join('');}}
function rec(m){m=String(m).replace(/\n/g,' ');if(errs.indexOf(m)<0){errs.push(m);flush();}}
window.__ftipcErrors=errs;window.__ftipcError=rec;
window.addEventListener('error',function(e){rec((e.message||'error')+(e.filename?' at '+e.filename+':'+e.lineno:''));});
window.addEventListener('unhandledrejection',function(e){rec('unhandled rejection: '+(e.reason&&e.reason.message||e.reason));});
window.addEventListener('message',function(e){var d=e.data;if(!d||typeof d!=='object'||d.ftipc===undefined)return;
if(d.ftipc==='error'){rec('graph: '+d.message);}
else if(d.ftipc==='graph'){var b=document.body;b.setAttribute('data-nodes',String(d.nodes));
b.setAttribute('data-edges',String(d.edges));if(d.ready)b.setAttribute('data-ready','1');}});
document.addEventListener('DOMContentLoaded',function(){flush();var b=document.body;
if(!document.getElementById('graph-frame')){b.setAttribute('data-nodes','0');
b.setAttribute('data-edges','0');b.setAttribute('data-ready','1');}});})();
"""

# injected first into the embedded graph document: its errors, and its body's data-ready/data-nodes/
# data-edges (set by the graph once drawn), are passed to the page (postMessage: works for any origin)
FRAME_JS = r"""<script>(function(){function post(m){try{parent.postMessage(m,'*');}catch(x){}}
window.addEventListener('error',function(e){post({ftipc:'error',message:String(e.message||'error')});});
window.addEventListener('unhandledrejection',function(e){post({ftipc:'error',message:'unhandled rejection: '+
(e.reason&&e.reason.message||e.reason)});});
function send(){var b=document.body;if(!b)return;post({ftipc:'graph',ready:b.getAttribute('data-ready')==='1',
nodes:b.getAttribute('data-nodes'),edges:b.getAttribute('data-edges')});
var pre=document.getElementById('ftipc-errors');if(pre&&pre.textContent){
pre.textContent.split('\n').forEach(function(l){if(l.trim())post({ftipc:'error',message:l});});}}
document.addEventListener('DOMContentLoaded',function(){new MutationObserver(send).observe(document.body,
{attributes:true});send();var n=0,iv=setInterval(function(){send();if(++n>=30)clearInterval(iv);},500);});})();</script>"""


def _dl(rows: Iterable[tuple[str, str]]) -> str:
    return "<table class=\"kv\">" + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _summary(model: ipc.Model, sc: Scope, meta_obj, warnings=()) -> tuple[str, dict]:
    m = model.meta or {}
    cmd = _command(m)
    d = duration_ns(model)
    events = py(model.stats.get("events"))
    lost = lost_total(model)
    info: dict[str, Any] = {"command": cmd, "exit_code": m.get("exit_code"), "duration_ns": d, "events": events,
                            "lost_events": lost}
    rows: list[tuple[str, str]] = [("capture", f"<code>{esc(model.capture)}</code> (id {esc(model.capture_id)})")]
    rows.append(("command", f"<code>{esc(cmd)}</code>" if cmd else "none (system-wide or --pid capture)"))
    if cmd or m.get("exit_code") is not None:
        rows.append(("exit code", esc(m.get("exit_code", "?"))))
    rows.append(("duration", esc(f"{d / 1e9:.3f} s" if d is not None else "-")))
    ev = f"{events:,}" if isinstance(events, int) else esc(events if events is not None else "-")
    rate = py(model.stats.get("events_per_s"))
    rows.append(("events", f'<span id="sum-events" data-value="{esc(events)}">{ev}</span>'))
    per_cpu = []
    if meta_obj is not None:
        for cpu, c in sorted(meta_obj.lost.items()):
            if c.any:
                per_cpu.append(f"CPU {cpu}: {c.total:,}" + (f" ({c.pages_missed:,} pages missed)"
                                                            if c.pages_missed else ""))
    if lost:
        lost_html = (f'<span id="sum-lost" class="warn" data-value="{lost}">{lost:,}</span> '
                     f'({esc("; ".join(per_cpu))}). <span class="warn">The model misses what they carried: '
                     f'capture again with a larger <code>--buffer-kb</code> (now {esc(m.get("buffer_kb") or "?")} KiB '
                     f'per CPU).</span>')
    else:
        lost_html = f'<span id="sum-lost" data-value="{lost if lost is not None else ""}">' \
                    f'{"0" if lost == 0 else "-"}</span>' + (" (none lost)" if lost == 0 else "")
    rows.append(("lost events", lost_html))
    warnings = list(warnings)
    info["warnings"] = [w.to_json() for w in warnings]
    if warnings:  # what the capture is missing (ftraceipc.problems): the same lines the CLI prints
        rows.append(("warnings", f'<ul id="sum-warnings" class="warn" data-count="{len(warnings)}">'
                     + "".join(f'<li data-kind="{esc(w.kind.value)}">{esc(w.line())}</li>' for w in warnings)
                     + "</ul>"))
    else:
        rows.append(("warnings", '<span id="sum-warnings" data-count="0">none: nothing is missing from the '
                     'capture</span>'))
    rows.append(("about", esc(sc.label)))
    all_tasks = user_tasks(model)
    f = sc.focused
    ft = f.tasks[f.tasks["tid"].isin(list(sc.tids))] if len(f.tasks) else f.tasks
    npids = len(set(column_values(ft["pid"])) - {None}) if len(ft) else 0
    kinds: dict[str, int] = {}
    for k in column_values(f.resources["kind"]) if len(f.resources) else []:
        kinds[k] = kinds.get(k, 0) + 1
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], str(kv[0]))))
    info.update(tasks=len(ft), processes=npids, resources=len(f.resources), tasks_in_capture=len(all_tasks),
                resources_in_capture=len(model.resources))
    rows.append(("tasks", f'<span id="sum-tasks" data-value="{len(ft)}">{len(ft):,}</span> thread'
                 f'{"s" if len(ft) != 1 else ""} in {npids:,} process{"es" if npids != 1 else ""}'
                 + (f" ({len(all_tasks):,} in the whole capture)" if sc.pids is not None else "")))
    rows.append(("resources", f'<span id="sum-resources" data-value="{len(f.resources)}">{len(f.resources):,}'
                 f'</span>' + (f" ({esc(by_kind)})" if by_kind else "")
                 + (f"; {len(model.resources):,} in the whole capture" if sc.pids is not None else "")))
    fl = f.flows
    nbytes = int(pd.to_numeric(fl["bytes"], errors="coerce").fillna(0).sum()) if len(fl) else 0
    if len(fl) and nbytes:
        rows.append(("IPC", f"{len(fl):,} flow{'s' if len(fl) != 1 else ''} between tasks, "
                     f"{esc(human_bytes(nbytes))} in all"))
    else:
        rows.append(("IPC", '<span id="no-ipc" class="empty">no IPC between tasks: no bytes went from one task to '
                     'another through a traced pipe, FIFO or Unix socket</span>'))
    info["ipc"] = bool(len(fl) and nbytes)
    b = f.blocked
    if len(b):
        rows.append(("blocked", esc(f"{human_ns(float(pd.to_numeric(b['blocked_ns']).sum()))} asleep in all "
                                    f"({human_ns(float(pd.to_numeric(b[b['rid'].notna()]['blocked_ns']).sum()))}"
                                    " on IPC resources)")))
    if rate:
        rows.append(("model built", esc(f"{model.stats.get('build_s', '?')} s ({rate:,} events/s)")))
    return _dl(rows), info


def _findings(analysis, sc: Scope) -> tuple[str, list[dict]]:
    if analysis is None:
        return '<p class="empty" id="no-findings">Findings were not computed.</p>', []
    fs = list(analysis.findings)
    head = (f"<p>{len(fs)} finding{'s' if len(fs) != 1 else ''} for {esc(analysis.scope)} "
            f"({len(analysis.ran)} detectors, {esc(analysis.backend)}).</p>")
    for note in getattr(analysis, "notes", []) or []:
        head += f"<p>note: {esc(note)}</p>"
    minor = list(getattr(analysis, "minor", []) or [])
    if minor:  # left out of the ranking for their small share of the path, but named
        head += (f'<details id="minor-findings"><summary>{len(minor)} smaller finding{"s" if len(minor) != 1 else ""}'
                 " (each under the share of the critical path the ranking needs)</summary><ul>" + "".join(
                     f'<li data-pattern="{esc(m.pattern)}"><b>{esc(m.pattern)}</b>: {esc(m.title)} '
                     f"({esc(time_words(m, analysis.wall_ns))}). {esc(m.suggestion)}</li>" for m in minor)
                 + "</ul></details>")
    skipped = list(getattr(analysis, "not_run", []) or [])
    if skipped:
        head += ('<ul id="not-run" class="warn">' + "".join(
            f'<li data-detector="{esc(s.detector)}">not run: {esc(s.detector)} ({esc(s.reason)})</li>'
            for s in skipped) + "</ul>")
    if not fs:
        if skipped:
            return head + ('<p class="empty" id="no-findings">No findings from the detectors that ran; '
                           f'{len(skipped)} could not run (above), so this capture cannot say whether those '
                           'patterns happened.</p>'), []
        return head + ('<p class="empty" id="no-findings">No findings: no inefficient interaction was found '
                       '(no detector fired above its thresholds).</p>'), []
    head += f"<p>{esc(path_line(analysis))}.</p>"
    out = [head, '<div id="finding-list">']
    listed = []
    for f in fs[:MAX_FINDINGS]:
        tasks = ", ".join(sc.labels.task(t) for t in f.tasks)
        res = ", ".join(map(str, f.resources)) or "-"
        listed.append({"rank": f.rank, "pattern": f.pattern, "title": f.title, "tasks": list(f.tasks),
                       "resources": list(f.resources), "count": f.count, "critical_ns": f.critical_ns,
                       "asleep_ns": f.asleep_ns})
        out.append(
            f'<article class="finding" id="finding-{esc(f.rank)}" data-pattern="{esc(f.pattern)}" '
            f'data-count="{esc(f.count)}" data-critical-ns="{esc(f.critical_ns)}" '
            f'data-asleep-ns="{esc(f.asleep_ns)}">'
            f'<h3>#{esc(f.rank)} <span class="pattern">{esc(f.pattern)}</span> {esc(f.title)}</h3>'
            f'<div class="facts">{f.count:,} occurrence{"s" if f.count != 1 else ""}, '
            f'<b>{esc(time_words(f, analysis.wall_ns))}</b>; tasks {esc(tasks)}; resources {esc(res)}</div>'
            f'<p class="why"><span class="label">Why: </span>{esc(f.explanation)}</p>'
            f'<p class="fix"><span class="label">Fix: </span>{esc(f.suggestion)}</p>'
            + (f'<details><summary>See it in Neo4j Browser (after <code>ftraceipc load CAPTURE --neo4j URI</code>)'
               f'</summary><pre>{esc(f.cypher)}</pre></details>' if f.cypher else "")
            + (f'<details><summary>Detector row</summary><pre>{esc(json.dumps(py(f.details), indent=1))}</pre>'
               '</details>' if f.details else "")
            + '</article>')
    out.append('</div>')
    if len(fs) > MAX_FINDINGS:
        out.append(f"<p>... {len(fs) - MAX_FINDINGS} more (<code>ftraceipc analyze --format json</code> lists "
                   "all).</p>")
    return "".join(out), listed


def _plots(model: ipc.Model, sc: Scope) -> tuple[str, dict]:
    out = []
    plots: dict[str, Any] = {}
    # (a) blocked time per task
    bs = blocked_series(model, sc.tids)
    out.append('<figure id="fig-blocked"><h3>Blocked time per task over time</h3>')
    if model.episodes is None:
        out.append('<p class="empty">Not drawn: the model was built without episodes.</p>')
    elif bs is None:
        out.append('<p class="empty" id="no-blocked">No task of the run slept: nothing to draw.</p>')
    else:
        out.append(svg_blocked(bs))
        plots["blocked"] = {"points": len(bs.rows), "bins": bs.bins,
                            "tasks": {t: total for t, _, total, _, _ in bs.rows}}
        out.append(f"<figcaption>The {len(bs.rows)} task{'s' if len(bs.rows) != 1 else ''} that slept longest, one "
                   "row each (its total at the left). Each bar is the time the task spent asleep in one time bin: "
                   "red while it waited on a pipe, FIFO or socket, grey for any other sleep (a file, a child, "
                   "poll without a known resource). A full bar means the task slept through the whole bin. "
                   "Rows that are red where others are empty show who waits for whom.</figcaption>")
    out.append('</figure>')
    # (b) wakeup latency
    hist = latency_histogram(model, sc.tids)
    out.append('<figure id="fig-wakeup-latency"><h3>Wakeup latency</h3>')
    if model.wakeups is None:
        out.append('<p class="empty">Not drawn: the model was built without episodes.</p>')
    elif hist is None:
        out.append('<p class="empty" id="no-wakeups">No task of the run was woken: nothing to draw.</p>')
    else:
        counts, labels, never = hist
        out.append(svg_histogram(counts, labels))
        plots["wakeup_latency"] = {"points": len(counts), "total": sum(counts), "never_ran": never}
        out.append(f"<figcaption>How long each of the {sum(counts):,} wakeups of the run's tasks waited for a CPU: "
                   "from the wakeup to the task running. Bins grow 1-2-5 per decade, so the chart covers "
                   "microseconds to seconds. A peak to the right (milliseconds) means the woken tasks queued "
                   "behind other work; most wakeups on an idle machine take a few microseconds."
                   + (f" {never:,} wakeup{'s' if never != 1 else ''} whose task never ran before the capture "
                      "ended are not counted." if never else "") + "</figcaption>")
    out.append('</figure>')
    # (c) bytes per resource
    rows = bytes_per_resource(model, sc.tids)
    out.append('<figure id="fig-bytes"><h3>Bytes per resource</h3>')
    if not rows:
        out.append('<p class="empty" id="no-bytes">No IPC between tasks: no bytes were written into or read from '
                   'a pipe, FIFO or Unix socket by the run\'s tasks.</p>')
    else:
        out.append(svg_bytes(rows))
        plots["bytes"] = {"points": len(rows), "resources": {r: [w, rd] for r, w, rd in rows}}
        out.append(f"<figcaption>The {len(rows)} resource{'s' if len(rows) != 1 else ''} that carried the most "
                   "bytes, written (dark) and read (light) by the run's tasks. Written but not read means data "
                   "left in the buffer or read by a task outside the run; compare with the number of calls in "
                   "<code>ftraceipc model</code> to see tiny messages.</figcaption>")
    out.append('</figure>')
    return "".join(out), plots


def _talkers(sc: Scope) -> str:
    fl = sc.focused.flows
    if not len(fl):
        return '<p class="empty">No IPC between tasks: no flows.</p>'
    frows = sorted(_rows(fl), key=lambda r: (-(r.get("bytes") or 0), str(r.get("via"))))
    out = ['<table id="talkers-table"><tr><th>writer</th><th>reader</th><th>via</th><th>read from</th>'
           '<th>bytes</th><th>messages</th></tr>']
    for r in frows[:TOP_TALKERS]:
        read = r.get("read_rid")
        out.append(f"<tr><td>{esc(sc.labels.task(r.get('writer')))}</td><td>{esc(sc.labels.task(r.get('reader')))}"
                   f"</td><td>{esc(r.get('via'))}</td><td>{esc('same' if read == r.get('via') else read)}</td>"
                   f"<td class=n>{int(r.get('bytes') or 0):,}</td>"
                   f"<td class=n>{int(r.get('messages') or 0):,}</td></tr>")
    out.append("</table>")
    if len(frows) > TOP_TALKERS:
        out.append(f"<p>... {len(frows) - TOP_TALKERS} more flows (<code>ftraceipc model</code> lists all).</p>")
    return "".join(out)


def _rows(df: pd.DataFrame) -> list[dict]:
    from ftraceipc.model.export import rows

    return list(rows(df))


def _notes(model: ipc.Model, sc: Scope) -> str:
    un = sc.focused.unattributed
    out = []
    if un:
        calls = sum(int(u.calls or 0) for u in un)
        out.append(f"<p>{calls:,} call{'s' if calls != 1 else ''} in {len(un)} group{'s' if len(un) != 1 else ''} "
                   "could not be tied to a resource (never guessed):</p><ul>")
        out += [f"<li>{esc(u.line())}</li>" for u in un[:30]]
        out.append("</ul>")
        if len(un) > 30:
            out.append(f"<p>... {len(un) - 30} more groups (<code>ftraceipc model</code>).</p>")
    else:
        out.append("<p>Every call and sleep of the run was tied to a resource (or was not IPC).</p>")
    if model.impossible:
        out.append("<p>What this capture cannot attribute at all:</p><ul>")
        out += [f"<li>{esc(s)}</li>" for s in model.impossible]
        out.append("</ul>")
    return "".join(out)


def _graph(model: ipc.Model, sc: Scope, analysis, graph: bool) -> tuple[str, dict]:
    if not graph:
        return '<p class="empty">Not included (graph=False).</p>', {"included": False}
    if not len(sc.focused.tasks) and not len(sc.focused.resources):
        return '<p class="empty" id="no-graph">No tasks or resources to draw.</p>', {"included": False}
    try:
        from ftraceipc.report import graphview
    except ImportError:
        return '<p class="empty" id="no-graph">The graph view is not available in this ftraceipc.</p>', \
            {"included": False}
    findings = list(analysis.findings) if analysis is not None else []
    doc = graphview.render(model, findings, title=f"ftraceipc graph: {model.capture}")
    got = {k: int(v) for k, v in re.findall(r'\bdata-expected-(nodes|edges)="(\d+)"', doc)[:2]}
    if got.get("nodes") == 0:
        return ('<p class="empty" id="no-graph">No IPC between tasks: the graph has nothing to draw.</p>',
                {"included": False, "nodes": 0, "edges": 0})
    low = doc.lower()
    at = low.find("<head>")
    doc = doc[:at + 6] + FRAME_JS + doc[at + 6:] if at >= 0 else FRAME_JS + doc
    frame = (f'<iframe id="graph-frame" class="graph" title="task and resource graph" '
             f'sandbox="allow-scripts allow-same-origin" srcdoc="{esc(doc)}"></iframe>'
             '<p class="facts">Drag to move, scroll to zoom; tasks and resources of the run, edges sized by bytes. '
             'The tasks and resources of a finding are outlined in red.</p>')
    return frame, {"included": True, "bytes": len(doc), **got}


def render_report(capture_path, *, model: ipc.Model | None = None, analysis=None, graph: bool = True,
                  info: dict | None = None) -> str:
    """The HTML page about a capture (a complete document, one string). ``model`` defaults to
    ``build_model(capture, episodes=True)``; without ``analysis`` (``ftraceipc.detect.pipeline.analyze``)
    the page says findings were not computed (this layer renders, it does not analyse); a model built
    without episodes gets the page without the two time-based plots. ``info``, when given, is filled
    with what the page contains (see :func:`write_report`)."""
    t_start = time.perf_counter()
    meta_obj = None
    if capture_path is not None:
        try:
            from ftraceipc.capture.store import CaptureDir

            meta_obj = CaptureDir.open(capture_path).read_meta()
        except Exception:  # a hand-built model without a capture directory
            meta_obj = None
    if model is None:
        from ftraceipc.model.build import build_model

        model = build_model(capture_path, episodes=True)
    sc = _scope(model)
    warnings = getattr(analysis, "warnings", None)
    if warnings is None:
        from ftraceipc.problems import model_problems

        warnings = model_problems(model)
    summary_html, summary = _summary(model, sc, meta_obj, warnings)
    findings_html, findings = _findings(analysis, sc)
    plots_html, plots = _plots(model, sc)
    graph_html, graph_info = _graph(model, sc, analysis, graph)
    cmd = _command(model.meta)
    title = f"ftraceipc report: {cmd[:80] or model.capture}"
    meta = model.meta or {}
    elapsed = time.perf_counter() - t_start
    from ftraceipc import __version__ as version  # noqa: PLC0415

    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<script>{ERROR_JS}</script>
<style>{CSS}</style>
</head><body>
<pre id="ftipc-errors" hidden></pre>
<header><h1>ftraceipc report</h1><div class="sub">{esc(cmd or model.capture)} &middot; capture {esc(model.capture_id)}
&middot; {esc(meta.get("hostname", ""))} {esc(meta.get("kernel_release", ""))}</div></header>
<nav><a href="#summary">Summary</a><a href="#findings">Findings ({len(findings)})</a><a href="#plots">Plots</a>
<a href="#talkers">Top talkers</a><a href="#graph">Graph</a><a href="#notes">Not attributed</a></nav>
<main>
<section id="summary"><h2>Run summary</h2>{summary_html}</section>
<section id="findings"><h2>Findings</h2>{findings_html}</section>
<section id="plots"><h2>Plots</h2><p class="facts">About {esc(sc.label)}.</p>{plots_html}</section>
<section id="talkers"><h2>Top talkers</h2>{_talkers(sc)}</section>
<section id="graph"><h2>Graph</h2>{graph_html}</section>
<section id="notes"><h2>Not attributed</h2>{_notes(model, sc)}</section>
<footer class="facts">ftraceipc {esc(version)}; page made in {elapsed:.2f} s. Everything this page shows is in
this one file: it works offline.</footer>
</main></body></html>
"""
    if info is not None:
        info.update(summary=summary, findings=findings, plots=plots, graph=graph_info, seconds=round(elapsed, 3))
    return doc


def write_report(capture_path, out_path, **kw) -> dict:
    """Write :func:`render_report`'s page to ``out_path``; returns what it contains:
    ``{"path", "bytes", "seconds", "summary": {...}, "findings": [{rank, pattern, title, ...}],
    "plots": {"blocked": {"points", ...}, "wakeup_latency": {...}, "bytes": {...}} (only the plots drawn),
    "graph": {"included": bool}}``."""
    t0 = time.perf_counter()
    info: dict[str, Any] = {}
    doc = render_report(capture_path, info=info, **kw)
    out = Path(out_path)
    out.write_text(doc, encoding="utf-8")
    info.update(path=str(out), bytes=len(doc.encode("utf-8")), seconds=round(time.perf_counter() - t0, 3))
    return info


__all__ = ["render_report", "write_report", "blocked_series", "latency_histogram", "bytes_per_resource"]
