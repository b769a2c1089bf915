"""wakeup_latency: the words of ``cypher/wakeup_latency.cypher`` (the query; its header lists the columns used here).

``explain(row, names)`` turns one row of that query into (title, explanation, suggestion), in the
capture's own numbers; it says nothing the row does not give."""

from __future__ import annotations

from ftraceipc.detect.words import Names, human_ns

ID = "wakeup_latency"


def explain(r: dict, n: Names) -> tuple[str, str, str]:
    return (f"{n(r['wakee'])} waits {human_ns(r['mean_ns'])} for a CPU after each wakeup",
            f"{n(r['wakee'])} was woken {r['count']:,} times through {r['rid']} (by {n.many(r['wakers'])}) "
            f"and then waited {human_ns(r['mean_ns'])} on average, {human_ns(r['max_ns'])} at most, before it "
            f"ran: {human_ns(r['asleep_ns'])} runnable but not running.",
            "Find what else runs on its CPU (perf sched timehist, top -H): raise the wakee's priority "
            "(nice, chrt), give it a CPU of its own, or move the competing load elsewhere.")
