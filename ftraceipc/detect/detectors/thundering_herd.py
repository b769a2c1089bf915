"""thundering_herd: the words of ``cypher/thundering_herd.cypher`` (the query; its header lists the columns used here).

``explain(row, names)`` turns one row of that query into (title, explanation, suggestion), in the
capture's own numbers; it says nothing the row does not give."""

from __future__ import annotations

from ftraceipc.detect.words import Names, human_ns

ID = "thundering_herd"


def explain(r: dict, n: Names) -> tuple[str, str, str]:
    w, rid, k = r["waker"], r["rid"], r["n_wakees"]
    wpw, cpw = r.get("woken_per_write"), r.get("consumed_per_write")
    per = (f" Each of its {r['writes']:,} writes woke {wpw:.1f} of them on average, and {cpw:.1f} then read data."
           if isinstance(wpw, (int, float)) and isinstance(cpw, (int, float)) and r.get("writes") else "")
    pct = round(100 * r["wasted"] / r["count"]) if r["count"] else 0
    waking = r.get("waking_ns") or 0
    if waking and r.get("writes"):
        per += (f" Waking them made its writes slower: {human_ns(waking)} of its time in them went to waking "
                f"tasks that then found nothing ({human_ns(r.get('waking_crit_ns') or 0)} of it on the "
                "critical path).")
    return (f"{n(w)} wakes {k} waiters of {rid} together; most find nothing to read",
            f"{n(w)}'s wakeups through {rid} ended {r['count']:,} sleeps of {k} tasks waiting there for data "
            f"({n.many(r['wakees'])}). After {r['wasted']:,} of them ({pct}%) the woken task read nothing from "
            f"{rid} before it waited again.{per} Scheduling the useless wakeups cost about "
            f"{human_ns(r['asleep_ns'])} of wake-to-run time.",
            "Wake one waiter per message: add the fd to epoll with EPOLLEXCLUSIVE, give each worker its "
            f"own pipe or socket, or have one task read {rid} and hand out the work "
            "(poll()/select() on a shared fd always wakes every waiter).")
