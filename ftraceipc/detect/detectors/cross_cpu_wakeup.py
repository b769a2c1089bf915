"""cross_cpu_wakeup: the words of ``cypher/cross_cpu_wakeup.cypher`` (the query; its header lists the columns used here).

``explain(row, names)`` turns one row of that query into (title, explanation, suggestion), in the
capture's own numbers; it says nothing the row does not give."""

from __future__ import annotations

from ftraceipc.detect.words import Names, human_ns, short_list

ID = "cross_cpu_wakeup"


def _back(r: dict, n: Names) -> str:
    b = int(r.get("back_count") or 0)
    if b <= 0:
        return ""
    return (f" The other way, {b:,} of the {int(r.get('back_wakeups') or 0):,} wakeups of {n(r['waker'])} by "
            f"{n(r['wakee'])} crossed CPUs too ({r.get('back_percent')}%).")


def explain(r: dict, n: Names) -> tuple[str, str, str]:
    w, t = n(r["waker"]), n(r["wakee"])
    c = r.get("consumed") or 0
    handoffs = f"{r['sleeps']:,} sleeps of {t} that {w} ended" + (f" ({c:,} with data read after)" if c else "")
    title = (f"{w} and {t} wake each other on other CPUs, and take turns" if int(r.get("back_count") or 0) > 0
             else f"{w} wakes {t} on another CPU, and the two take turns")
    return (title,
            f"{r['cross_count']:,} of the {r['wakeups']:,} wakeups of {t} by {w} through "
            f"{short_list(r['resources'])} ({r['percent']}%) ran it on another CPU than the waker's: an "
            f"inter-processor interrupt each, and the data just written is in the other CPU's cache. The two "
            f"take turns: after {r['turns']:,} of the {handoffs}, {w} went to sleep before {t} slept again, "
            f"so they seldom run at the same time.{_back(r, n)} Their share of the wake-to-run latency: "
            f"{human_ns(r['asleep_ns'])}.",
            "Keep the pair on one CPU or on CPUs that share a cache (taskset -c, sched_setaffinity, a "
            "cpuset), or batch the messages so fewer wakeups are needed.")
