"""wait_chain: the words of ``cypher/wait_chain.cypher`` (the query; its header lists the columns used here).

``explain(row, names)`` turns one row of that query into (title, explanation, suggestion), in the
capture's own numbers; it says nothing the row does not give."""

from __future__ import annotations

from ftraceipc.detect.words import Names, human_ns

ID = "wait_chain"


def explain(r: dict, n: Names) -> tuple[str, str, str]:
    ts, rs = r["tasks"], r["resources"]
    chain = n(ts[0]) + "".join(f" -> {n(t)} (via {rid})" for t, rid in zip(ts[1:], rs))
    return (f"wait chain of {r['hops']} hops behind {n(ts[0])}",
            f"{chain}: each task mainly waits on the next. {n(ts[0])} slept {human_ns(r['asleep_ns'])} in "
            f"{r['count']:,} sleeps waiting on this chain, which can go no faster than {n(ts[-1])} at its end.",
            f"Shorten the chain (merge stages, or let each stage work ahead with a bigger buffer) or speed up "
            f"{n(ts[-1])}, the end of the chain.")
