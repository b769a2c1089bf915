"""bottleneck: the words of ``cypher/bottleneck.cypher`` (the query; its header lists the columns
used here).

The bottleneck is the task whose own time (running, runnable, or asleep outside IPC) makes up the
largest share of the traced command's critical path, with a lead over the next task (what making it
faster could save before the path moves there: the finding's critical_ns; the next task's time is the
larger of its time on the path and its own work, which the run needs however fast the bottleneck is). The explanation gives that share of the wall
time and its split (running, waiting for a CPU, asleep per syscall, from the path's segments) and
names the back-pressure the task causes upstream (writers stalled on full buffers on the way to it:
effects, not causes). The advice is about the task itself, never about buffers: a bigger buffer in
front of a saturated stage only holds more waiting data.

The query lists every upstream writer's stalls waiting for room; :func:`refine` keeps those that
``cypher/back_pressure.cypher`` finds (the readers do not take turns with the writer). The others are
buffer-limited, findings of their own (full_buffer_stall, wake_then_block), not this task's pace."""

from __future__ import annotations

from typing import Any

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


# the parameters back_pressure.cypher shares with full_buffer_stall.cypher (its complement): a user's
# overrides of full_buffer_stall's apply to both, so that each stall is in exactly one of them
SHARED = ("min_episodes", "min_ns", "min_turns", "min_wait_percent", "min_mean_wait_ns", "pipe_bytes")


def refine(graph, rows: list[dict], capture_id: str, params: dict[str, dict[str, Any]]) -> list[dict]:
    """Keep, of each row's upstream stalls (``stalled``, ``stalled_rids``, ``stalled_ns``), those of
    writers whose stalls on that resource are back-pressure (``back_pressure.cypher``), and make the
    row's ``tasks`` and ``resources`` follow."""
    if not any(r.get("stalled") for r in rows):
        return rows
    from ftraceipc.graph import read_query

    known = read_query("back_pressure").defaults
    p = {k: v for k, v in (params.get("full_buffer_stall") or {}).items() if k in SHARED and k in known}
    bp = graph.run_file("back_pressure", capture_id=capture_id, tids=[], limit=1 << 40, **p)
    keep = {(int(w), str(rid)) for w, rid in zip(bp["writer"].tolist(), bp["rid"].tolist())}
    out = []
    for r in rows:
        trio = [(int(w), str(rid), ns) for w, rid, ns in
                zip(r.get("stalled") or [], r.get("stalled_rids") or [], r.get("stalled_ns") or [])
                if (int(w), str(rid)) in keep]
        r = dict(r, stalled=[t[0] for t in trio], stalled_rids=[t[1] for t in trio], stalled_ns=[t[2] for t in trio])
        r["tasks"] = [int(r["tid"])] + list(dict.fromkeys(t[0] for t in trio))
        r["resources"] = list(dict.fromkeys(t[1] for t in trio))
        out.append(r)
    return out


def _next(r: dict, n: Names) -> str:
    wall, lead = int(r.get("wall_ns") or 0), int(r.get("critical_ns") or 0)
    if r.get("next_tid") is None:
        return " No other traced task is on the path."
    path, work = int(r.get("next_path_ns") or r.get("next_ns") or 0), int(r.get("next_work_ns") or 0)
    if work > path:
        what = (f"{n(r['next_tid'])}, on the path {percent(path, wall)} of the wall time but busy "
                f"{percent(work, wall)} of it (its own work, done alongside)")
    else:
        what = f"{n(r['next_tid'])} with {percent(path, wall)}"
    return (f" Next on the path: {what}; making {n(r['tid'])} faster saves up to {human_ns(lead)} "
            f"({percent(lead, wall)} of the wall time) before the path moves there.")


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
    how = "" if top == "asleep" else f" {top}"  # "asleep": in no traced syscall ("sleeps asleep" says nothing)
    return (f"{t} sleeps{how} on the critical path, outside any IPC between the traced tasks: make that wait "
            "shorter (a faster device or peer, a shorter timeout or interval) or overlap it with other work "
            "(several requests in flight, more workers).")


def explain(r: dict, n: Names) -> tuple[str, str, str]:
    t, wall = r["tid"], int(r.get("wall_ns") or 0)
    crit = int(r.get("own_ns") or r.get("critical_ns") or 0)
    split = ", ".join(f"{what} {percent(ns, wall)}" for what, ns in shares(r))
    top = shares(r)[0][0] if shares(r) else "running"
    return (f"{n(t)} is the bottleneck ({top} most of its time on the path)",
            f"{n(t)} is on the critical path {percent(crit, wall)} of the wall time "
            f"({human_ns(crit)} of {human_ns(wall)}): {split}. The command cannot finish sooner than this task "
            f"allows.{_next(r, n)}{_upstream(r, n)}",
            advice(r, n))
