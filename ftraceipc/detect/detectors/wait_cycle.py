"""wait_cycle: the words of ``cypher/wait_cycle.cypher`` (the query; its header lists the columns used here).

``explain(row, names)`` turns one row of that query into (title, explanation, suggestion), in the
capture's own numbers; it says nothing the row does not give."""

from __future__ import annotations

from ftraceipc.detect.words import Names, human_ns

ID = "wait_cycle"


def explain(r: dict, n: Names) -> tuple[str, str, str]:
    ts, rs = r["tasks"], r["resources"]
    ring = " -> ".join(f"{n(t)} (via {rid})" for t, rid in zip(ts, rs)) + f" -> {n(ts[0])}"
    return (f"wait cycle of {r['length']} tasks: they take turns",
            f"{ring}: each mainly waits on the next, round a cycle, so only one of them runs at a time "
            f"(about {r['count']:,} rounds). The cycle waited for its turns at least {human_ns(r['asleep_ns'])} of "
            f"wall time (its longest hop; the hops' waits overlap in time).",
            "Let the tasks overlap: keep several messages in flight round the cycle (bigger buffers, no "
            "wait for each hand-off), or merge them into one task that does the steps in turn.")
