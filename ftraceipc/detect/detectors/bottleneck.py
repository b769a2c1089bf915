"""bottleneck: the words of ``cypher/bottleneck.cypher`` (the query; its header lists the columns
used here).

The bottleneck is the task whose own time (running, runnable, or asleep outside IPC) makes up the
largest share of the traced command's critical path. The explanation gives that share of the wall
time and its split (running, waiting for a CPU, asleep per syscall, from the path's segments) and
names the back-pressure the task causes upstream (writers stalled on full buffers on the way to it:
effects, not causes). The advice is about the task itself, never about buffers: a bigger buffer in
front of a saturated stage only holds more waiting data."""

from __future__ import annotations

from ftraceipc.detect.words import Names, human_ns, percent

ID = "bottleneck"
UPSTREAM_NAMED = 3  # stalled writers named in the explanation; the rest are counted


def shares(r: dict) -> list[tuple[str, int]]:
    """The task's time on the critical path by what it was doing, largest first: ("running", ns),
    ("waiting for a CPU", ns), ("in nanosleep", ns), ... (asleep outside IPC, per syscall)."""
    parts = [("running", int(r.get("running_ns") or 0)), ("waiting for a CPU", int(r.get("runnable_ns") or 0))]
    reasons = list(zip(r.get("reasons") or [], r.get("reason_ns") or []))
    named = 0
    for reason, ns in reasons:
        parts.append((f"in {reason}" if reason else "asleep", int(ns or 0)))
        named += int(ns or 0)
    rest = int(r.get("blocked_ns") or 0) - named
    if rest > 0:
        parts.append(("asleep", rest))
    merged: dict[str, int] = {}
    for what, ns in parts:
        merged[what] = merged.get(what, 0) + ns
    return sorted(((w, ns) for w, ns in merged.items() if ns > 0), key=lambda x: (-x[1], x[0]))


def _upstream(r: dict, n: Names) -> str:
    rows = sorted(zip(r.get("stalled") or [], r.get("stalled_rids") or [], r.get("stalled_ns") or []),
                  key=lambda x: (-int(x[2] or 0), int(x[0]), str(x[1])))
    if not rows:
        return ""
    said = "; ".join(f"{n(u)} slept {human_ns(ns)} writing into the full {rid}" for u, rid, ns in rows[:UPSTREAM_NAMED])
    more = f"; and {len(rows) - UPSTREAM_NAMED} more" if len(rows) > UPSTREAM_NAMED else ""
    return (f" Upstream, it holds back the tasks that feed it: {said}{more}. Those stalls are its back-pressure, "
            "an effect of this task's pace, not a cause.")


def advice(r: dict, n: Names) -> str:
    t = n(r["tid"])
    top = shares(r)[0][0] if shares(r) else "running"
    if top == "running":
        return (f"Make {t} faster: profile its own CPU time (perf record -g -t {r['tid']}) and cut the costliest "
                "work or choose a cheaper setting; or split its work across several workers running in parallel "
                "(each taking part of the input). The whole run can go no faster than this task.")
    if top == "waiting for a CPU":
        return (f"{t} is runnable but not running for much of the path: give it a CPU of its own or a better "
                "priority (taskset, nice, chrt), or move the competing load elsewhere; once it runs when it can, "
                "split its work across workers if it is still the longest stage.")
    return (f"{t} sleeps {top} on the critical path, outside any IPC between the traced tasks: make that wait "
            "shorter (a faster device or peer, a shorter timeout or interval) or overlap it with other work "
            "(several requests in flight, more workers).")


def explain(r: dict, n: Names) -> tuple[str, str, str]:
    t, wall, crit = r["tid"], int(r.get("wall_ns") or 0), int(r.get("critical_ns") or 0)
    split = ", ".join(f"{what} {percent(ns, wall)}" for what, ns in shares(r))
    return (f"{n(t)} is the bottleneck: {percent(crit, wall)} of the critical path",
            f"{n(t)} is on the critical path {percent(crit, wall)} of the wall time "
            f"({human_ns(crit)} of {human_ns(wall)}): {split}. The command cannot finish sooner than this task "
            f"allows.{_upstream(r, n)}",
            advice(r, n))
