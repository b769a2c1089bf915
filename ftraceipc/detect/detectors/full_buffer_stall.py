"""full_buffer_stall: the words of ``cypher/full_buffer_stall.cypher`` (the query; its header lists the columns used here).

``explain(row, names)`` turns one row of that query into (title, explanation, suggestion), in the
capture's own numbers; it says nothing the row does not give."""

from __future__ import annotations

from ftraceipc.detect.words import Names, buffer_fix, cap, human_ns

ID = "full_buffer_stall"


def explain(r: dict, n: Names) -> tuple[str, str, str]:
    w, rid = r["writer"], r["rid"]
    drainers = r.get("drainers") or []
    who = (f" {n.many(drainers)} made room by reading ({r['drain_wakeups']:,} wakeups)." if drainers
           else " No task was seen waking it there.")
    return (f"{n(w)} stalls writing into the full {rid}",
            f"{n(w)} slept {r['count']:,} times in {'/'.join(r.get('ops') or ['write'])} on {rid} ({r['kind']}) "
            f"because its buffer was full: {human_ns(r['asleep_ns'])} asleep in all, {human_ns(r['max_ns'])} at "
            f"most at once.{who} The writer runs at its reader's pace.",
            f"{cap(buffer_fix(rid))}, make the reader faster or read more per "
            "call, or have the writer batch into fewer, larger writes.")
