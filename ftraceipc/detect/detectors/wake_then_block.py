"""wake_then_block: the words of ``cypher/wake_then_block.cypher`` (the query; its header lists the columns used here).

``explain(row, names)`` turns one row of that query into (title, explanation, suggestion), in the
capture's own numbers; it says nothing the row does not give."""

from __future__ import annotations

from ftraceipc.detect.words import Names, buffer_fix, cap, human_ns

ID = "wake_then_block"


def explain(r: dict, n: Names) -> tuple[str, str, str]:
    t, a, b = r["tid"], r["woken_via"], r["blocked_on"]
    drainers = r.get("drainers") or []
    paced = f", so it goes at the pace of {n.many(drainers)}, the reader of {b}" if drainers else ""
    return (f"{n(t)} is woken through {a} and blocks at once on {b}",
            f"{n(t)} was woken {r['wakeups']:,} times through {a} (by {n.many(r['wakers'])}) and slept "
            f"{r['count']:,} times writing into the full {b}: {human_ns(r['asleep_ns'])} asleep there{paced}. "
            "Each wakeup buys it little work before the next sleep.",
            f"{cap(buffer_fix(b))} so the stage can take its next input, speed up "
            f"the reader of {b}, or merge the two stages into one task.")
