"""wait_chain: the words of ``cypher/wait_chain.cypher`` (the query; its header lists the columns used here).

``explain(row, names)`` turns one row of that query into (title, explanation, suggestion), in the
capture's own numbers; it says nothing the row does not give."""

from __future__ import annotations

from typing import Any

from ftraceipc.detect.words import Names, human_bytes, human_ns

ID = "wait_chain"


def refine(graph, rows: list[dict], capture_id: str, params: dict[str, dict[str, Any]]) -> list[dict]:
    """Name the relays in the middle of each chain (``cypher/relays.cypher``: tasks that forward what
    they read) in ``relays``, ``relay_bytes_in``, ``relay_bytes_out``; their own time on the critical
    path (``relay_ns``) is what the extra hops cost, and the finding's ``critical_ns`` is at least
    that (taking a relay out of the chain saves its copying and one wakeup per message)."""
    middle = sorted({int(t) for r in rows for t in (r.get("tasks") or [])[1:-1]})
    if not middle:
        return rows
    df = graph.run_file("relays", capture_id=capture_id, tids=middle)
    relay = {int(t): (int(i), int(o), int(c)) for t, i, o, c in
             zip(df["tid"].tolist(), df["bytes_in"].tolist(), df["bytes_out"].tolist(), df["crit_ns"].tolist())}
    out = []
    for r in rows:
        mids = [int(t) for t in (r.get("tasks") or [])[1:-1] if int(t) in relay]
        ns = sum(relay[t][2] for t in mids)
        out.append(dict(r, relays=mids, relay_bytes_in=[relay[t][0] for t in mids],
                        relay_bytes_out=[relay[t][1] for t in mids], relay_ns=ns,
                        critical_ns=max(int(r.get("critical_ns") or 0), ns)))
    return out


def _relays(r: dict, n: Names) -> str:
    mids = r.get("relays") or []
    if not mids:
        return ""
    said = ", ".join(f"{n(t)} ({human_bytes(i)} in, {human_bytes(o)} out)"
                     for t, i, o in zip(mids, r.get("relay_bytes_in") or [], r.get("relay_bytes_out") or []))
    return (f" In the middle, {said} only {'forwards' if len(mids) == 1 else 'forward'} what {'it reads' if len(mids) == 1 else 'they read'}: "
            f"a relay, whose own time on the critical path ({human_ns(int(r.get('relay_ns') or 0))}) and extra "
            "wakeup per message are what the extra hop costs.")


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
    shorten = "Shorten the chain (merge stages, or let each stage work ahead with a bigger buffer)"
    if r.get("relays"):
        relays = ", ".join(n(t) for t in r["relays"])
        shorten = (f"Take the relay{'s' if len(r['relays']) > 1 else ''} {relays} out of the chain (connect "
                   "its two ends directly), or merge stages")
    return (f"wait chain of {r['hops']}{'+' if r.get('cut') else ''} hops behind {n(ts[0])}",
            f"{chain}: each task mainly waits on the next. {n(ts[0])} slept {human_ns(r['asleep_ns'])} in "
            f"{r['count']:,} sleeps waiting on this chain. {end}{_relays(r, n)}",
            f"{shorten}; or {fix}.")
