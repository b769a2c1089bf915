"""``ftraceipc live --format tui``: the full-screen view of a live run, drawn from the follower's
JSON lines (``live.engine``) by a thread of the main process, refreshed as they come (every
interval): events/s, lost events and the analysis lag; the top channels by bytes/s (writer ->
resource -> reader); who is blocked on what right now; the bottleneck so far; the findings, each
with when it first appeared. When the run ends the screen closes and the final findings are
printed as text, as ``capture`` prints them."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ftraceipc.live.engine import finding_of
from ftraceipc.report.findings import human_ns, time_words

ROWS = 8  # rows of each table


def _rate(v: float | None) -> str:
    if v is None:
        return "…"
    for unit, div in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if v >= div:
            return f"{v / div:.1f} {unit}"
    return f"{v:.0f} B/s"


def _bytes(v: int) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if v >= div:
            return f"{v / div:.1f} {unit}"
    return f"{v} B"


class LiveView:
    """Reads JSON lines from ``fd`` until EOF and keeps a full-screen rich view of them."""

    def __init__(self, fd: int, capture: str = "", console: Console | None = None):
        self.fd = fd
        self.capture = capture
        self.console = console or Console(stderr=False)
        self.start: dict[str, Any] = {}
        self.status: dict[str, Any] = {}
        self.view: dict[str, Any] = {}
        self.findings: dict[str, dict[str, Any]] = {}
        self.end: dict[str, Any] | None = None
        self.errors: list[str] = []
        self.messages: list[str] = []  # the capture's own lines ("Tracing …", warnings)
        self._thread: threading.Thread | None = None
        self._live: Live | None = None
        self._lock = threading.Lock()

    # the capture's report function
    def report(self, msg: str) -> None:
        with self._lock:
            self.messages.append(msg)
        if self._live is None:
            print(msg, file=sys.stderr, flush=True)
        else:
            self._refresh()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def run_in_thread(self) -> None:
        """Start drawing (call once every process of the capture is forked: this starts a thread)."""
        self._thread = threading.Thread(target=self._run, name="ftraceipc-live-view", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        buf = b""
        with Live(self._render(), console=self.console, screen=True, auto_refresh=False,
                  transient=True, vertical_overflow="crop") as live:
            self._live = live
            while True:
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except InterruptedError:
                    continue
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for ln in lines:
                    if ln.strip():
                        try:
                            self._take(json.loads(ln))
                        except ValueError:
                            continue
                self._refresh()
        self._live = None

    def _refresh(self) -> None:
        live = self._live
        if live is not None:
            try:
                live.update(self._render(), refresh=True)
            except Exception:  # noqa: BLE001 - a drawing problem must never stop the capture
                pass

    def _take(self, d: dict[str, Any]) -> None:
        with self._lock:
            t = d.get("type")
            if t == "start":
                self.start = d
            elif t == "status":
                self.status = d
            elif t == "view":
                self.view = d
            elif t == "finding":
                self.findings[d["id"]] = d
            elif t == "end":
                self.end = d
            elif t == "error":
                self.errors.append(d.get("message", ""))

    # drawing
    def _since(self, ts: int | None) -> str:
        t0 = self.start.get("start_ts")
        if ts is None or t0 is None:
            return ""
        return f"{(ts - t0) / 1e9:.1f} s"

    def _render(self):
        with self._lock:
            return self._render_locked()

    def _render_locked(self):
        s, v = self.status, self.view
        # rows per table: the three tables share what the header, titles and borders leave
        rows = max(1, min(ROWS, (self.console.height - 24) // 3))
        head = Text()
        head.append("ftraceipc live", style="bold")
        head.append(f"  {self.start.get('capture') or self.capture}")
        head.append("   Ctrl-C to end\n", style="dim")
        if s:
            lost = s.get("lost", 0)
            head.append(f"{self._since(s.get('ts'))}  {s.get('events_per_s', 0) / 1e3:,.1f} k events/s  "
                        f"{s.get('events', 0):,} events  ")
            head.append(f"lost {lost}", style="bold red" if lost else "")
            lag = s.get("lag_ns", 0) / 1e9
            head.append(f"  analysis lag {lag:.1f} s", style="yellow" if lag > 2 * self.start.get("interval_s", 1) else "")
            head.append(f" (model {s.get('model_lag_ns', 0) / 1e9:.1f} s)")
            head.append(f"  analyses {s.get('analyses', 0)}")
            if s.get("budget_pct") is not None:  # --budget: the cost, and what it turned off
                cost = s.get("cost_pct")
                head.append(f"  cost {'?' if cost is None else f'{cost:.1f}'} % / budget {s['budget_pct']:g} %",
                            style="yellow" if s.get("over_budget") else "")
                if s.get("traced_off"):
                    head.append(f" (off: {', '.join(s['traced_off'])})")
                if (s.get("analysis_every") or 1) > 1:
                    head.append(f" (an analysis every {s['analysis_every']} intervals)")
            head.append("\n")
        else:
            head.append("starting…\n")
        for m in self.messages[-2:]:
            head.append(m + "\n", style="dim")
        for e in self.errors[-2:]:
            head.append(e + "\n", style="red")

        ch = Table(title="Top channels (writer → resource → reader)", title_justify="left", expand=True)
        for col in ("writer", "resource", "reader", "bytes/s", "bytes", "messages"):
            ch.add_column(col, no_wrap=True, justify="right" if col in ("bytes/s", "bytes", "messages") else "left")
        for c in (v.get("channels") or [])[:rows]:
            ch.add_row(c["writer_label"], str(c["rid"]), c["reader_label"], _rate(c.get("bytes_per_s")),
                       _bytes(c["bytes"]), f"{c['messages']:,}")

        bl = Table(title="Blocked right now", title_justify="left", expand=True)
        for col in ("task", "in", "on", "for"):
            bl.add_column(col, no_wrap=True, justify="right" if col == "for" else "left")
        for b in sorted(v.get("blocked") or [], key=lambda x: -x["for_ns"])[:rows]:
            bl.add_row(b["label"], b["op"] or "(not in a traced syscall)", b["rid"] or "", human_ns(b["for_ns"]))

        cp = v.get("critical_path") or {}
        bn = v.get("bottleneck")
        neck = Text("Bottleneck so far: ", style="bold")
        if bn:
            neck.append(f"{bn['title']} ({human_ns(bn['critical_ns'])} of the critical path)")
        elif cp.get("root") is not None:
            neck.append(f"none yet; critical path of {cp.get('root_label')}: {human_ns(cp.get('wall_ns') or 0)}")
        else:
            neck.append("none yet")

        fi = Table(title="Findings", title_justify="left", expand=True)
        for col in ("#", "pattern", "what", "critical path", "first seen"):
            fi.add_column(col, no_wrap=col != "what", overflow="ellipsis")
        wall = cp.get("wall_ns") or 0
        shown = sorted(self.findings.values(), key=lambda d: d.get("rank", 0))
        for d in shown[:rows]:
            f = finding_of(d)
            fi.add_row(str(d.get("rank", "")), f.pattern, f.title,
                       time_words(f, wall, short=True).split(",")[0], self._since(d.get("first_seen_ts")))
        return Group(head, ch, bl, neck, fi)


def print_end(end: dict[str, Any] | None, messages: list[str], out: TextIO, top: int = 5) -> None:
    """The final findings as text, after the screen is gone."""
    for m in messages:
        print(m, file=out)
    if end is None:
        print("The live analysis ended without its final findings.", file=out)
        return
    found = [finding_of(d) for d in end.get("findings", [])]
    wall = (end.get("critical_path") or {}).get("wall_ns") or 0
    for w in end.get("warnings", []):
        print(f"warning: {w.get('message')}", file=out)
    if not found:
        print(f"No finding (capture {end.get('capture')}).", file=out)
        return
    print(f"Findings: {len(found)} (full report: ftraceipc analyze {end.get('capture')})", file=out)
    for f in found[:top]:
        print(f"  #{f.rank} {f.pattern}: {f.title} ({time_words(f, wall, short=True)})", file=out)
    if len(found) > top:
        print(f"  and {len(found) - top} more", file=out)


def wait_closed(view: LiveView, timeout: float) -> None:
    end = time.monotonic() + timeout
    while view._thread is not None and view._thread.is_alive() and time.monotonic() < end:
        view.join(0.1)
