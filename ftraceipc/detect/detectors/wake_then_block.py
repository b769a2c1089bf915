"""wake_then_block: the words of ``cypher/wake_then_block.cypher`` (the query; its header lists the columns used here).

``explain(row, names)`` turns one row of that query into (title, explanation, suggestion), in the
capture's own numbers; it says nothing the row does not give."""

from __future__ import annotations

from ftraceipc.detect.words import Names, buffer_fix, cap, holds, human_bytes, human_ns, reader_turns, short_list

ID = "wake_then_block"


def explain(r: dict, n: Names) -> tuple[str, str, str]:
    t, b = r["tid"], r["blocked_on"]
    a = short_list(r.get("inputs") or [])
    readers = r.get("readers") or []
    burst = r.get("burst_bytes")
    return (f"{n(t)} is fed through {a} and stalls on the full {b}",
            f"{n(t)} is a stage: it was woken {r['woken']:,} times through {a} (by {n.many(r['wakers'])}) and "
            f"{r['fed']:,} times read data there, and it slept {r['count']:,} times waiting for room in {b} "
            f"({human_ns(r['asleep_ns'])} in all), while {n.many(readers)}, reading {b}, waited on it empty "
            f"{r['reader_waits']:,} times ({human_ns(r['reader_wait_ns'])}). It wrote batches of "
            f"~{human_bytes(burst)} into {b}{holds(b, r.get('buffer_bytes'))}, so {n(t)} passes each on in "
            f"pieces, by turns with its reader, and meanwhile does not take its next input."
            f"{reader_turns(r, n.many(readers), b)}",
            f"{cap(buffer_fix(b, burst))}; or merge {n(t)} with the stage that reads {b}, so that no "
            "hand-off waits.")
