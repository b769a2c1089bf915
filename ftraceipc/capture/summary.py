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
    for cpu, lost in sorted(m.lost.items()):
        if lost.any:
            out.write(f"warning: {lost.total:,} events lost on CPU{cpu} (overrun {lost.overrun}, commit overrun "
                      f"{lost.commit_overrun}, dropped {lost.dropped_events}; {lost.pages_missed} pages flagged): "
                      f"raise --buffer-kb (now {m.buffer_kb})\n")
    out.flush()
