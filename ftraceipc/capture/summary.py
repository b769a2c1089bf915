"""The lines printed when a capture ends: what was recorded, and what was lost with what to change."""

from __future__ import annotations

import sys

from ftraceipc.capture.capture import CaptureResult


def print_summary(result: CaptureResult, out=sys.stderr) -> None:
    m = result.meta
    dur = (m.stop_wall or 0) - (m.start_wall or 0)
    out.write(f"Captured {result.events:,} events ({result.bytes / 2**20:.1f} MiB) in {dur:.2f} s to {result.path}\n")
    if m.command:
        out.write(f"command {' '.join(m.command)} exited with code {m.exit_code}\n")
    if result.skipped_events:
        out.write(f"note: {len(result.skipped_events)} default events are not on this kernel and were skipped: "
                  f"{', '.join(result.skipped_events)}\n")
    cost = cost_line(m.cost)
    if cost:
        out.write(cost + "\n")
    for cpu, lost in sorted(m.lost.items()):
        if lost.any:
            out.write(f"warning: {lost.total:,} events lost on CPU{cpu} (overrun {lost.overrun}, commit overrun "
                      f"{lost.commit_overrun}, dropped {lost.dropped_events}; {lost.pages_missed} pages flagged): "
                      f"raise --buffer-kb (now {m.buffer_kb})\n")
    out.flush()


def cost_line(c: dict) -> str:
    """"ftraceipc's own cost: ..." from ``meta.cost`` (empty for captures without it)."""
    if not c or not c.get("seconds"):
        return ""
    parts = []
    if c.get("readers_cpu_s") is not None:
        parts.append(f"page readers {c['readers_cpu_s']:.2f} s")
    if c.get("open_watcher_cpu_s") is not None:
        n, lost = c.get("open_lookups"), c.get("open_lines_lost")
        notes = ([f"{n:,} opens looked up"] if n else []) + ([f"{lost:,} skipped at its CPU budget"] if lost else [])
        parts.append(f"open watcher {c['open_watcher_cpu_s']:.2f} s" + (f" ({', '.join(notes)})" if notes else ""))
    if c.get("controller_cpu_s") is not None:  # while tracing, its /proc watcher thread included
        parts.append(f"controller and /proc watcher {c['controller_cpu_s']:.2f} s")
    rate = c.get("events_per_s")
    cpu = sum(c.get(k) or 0 for k in ("readers_cpu_s", "open_watcher_cpu_s", "controller_cpu_s"))
    return (f"ftraceipc's own cost: {cpu:.2f} s CPU in {c['seconds']:.2f} s ({', '.join(parts)})"
            + (f"; {rate:,} events/s" if rate else ""))
