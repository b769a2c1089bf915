"""wait_chain: the words of ``cypher/wait_chain.cypher`` (the query; its header lists the columns used here).

``explain(row, names)`` turns one row of that query into (title, explanation, suggestion), in the
capture's own numbers; it says nothing the row does not give."""

from __future__ import annotations

from ftraceipc.detect.words import Names, human_ns

ID = "wait_chain"


def explain(r: dict, n: Names) -> tuple[str, str, str]:
    ts, rs = r["tasks"], r["resources"]
    chain = n(ts[0]) + "".join(f" -> {n(t)} (via {rid})" for t, rid in zip(ts[1:], rs))
    if r.get("cut"):
        end = (f"It is cut at {r['hops']} hops: {n(ts[-1])} mainly waits on yet another task, and the chain "
               f"goes on from there.")
        fix = f"speed up the end of the chain, beyond {n(ts[-1])}"
    else:
        end = f"The chain can go no faster than {n(ts[-1])} at its end."
        fix = f"speed up {n(ts[-1])}, the end of the chain"
    return (f"wait chain of {r['hops']}{'+' if r.get('cut') else ''} hops behind {n(ts[0])}",
            f"{chain}: each task mainly waits on the next. {n(ts[0])} slept {human_ns(r['asleep_ns'])} in "
            f"{r['count']:,} sleeps waiting on this chain. {end}",
            f"Shorten the chain (merge stages, or let each stage work ahead with a bigger buffer) or {fix}.")
