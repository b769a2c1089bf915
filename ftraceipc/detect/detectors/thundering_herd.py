"""thundering_herd: the words of ``cypher/thundering_herd.cypher`` (the query; its header lists the columns used here).

``explain(row, names)`` turns one row of that query into (title, explanation, suggestion), in the
capture's own numbers; it says nothing the row does not give."""

from __future__ import annotations

import math

from ftraceipc.detect.words import Names, human_ns

ID = "thundering_herd"


def explain(r: dict, n: Names) -> tuple[str, str, str]:
    w, rid, k = r["waker"], r["rid"], r["n_wakees"]
    wpw = r.get("wakeups_per_write")
    per = (f" ({r['count']:,} wakeups for {r['writes']:,} writes: {wpw:.1f} per write)"
           if isinstance(wpw, (int, float)) and not math.isnan(wpw) else f" ({r['count']:,} wakeups)")
    return (f"{n(w)} wakes {k} waiters of {rid} at once",
            f"{n(w)} woke {k} tasks waiting on {rid} ({n.many(r['wakees'])}){per}. Only one of them can "
            f"take each message; the others run for nothing and sleep again. Scheduling the extra ones "
            f"cost about {human_ns(r['asleep_ns'])} of wake-to-run time.",
            "Wake one waiter per message: add the fd to epoll with EPOLLEXCLUSIVE, give each worker its "
            f"own pipe or socket, or have one task read {rid} and hand out the work "
            "(poll()/select() on a shared fd always wakes every waiter).")
