"""full_buffer_stall: the words of ``cypher/full_buffer_stall.cypher`` (the query; its header lists the columns used here).

``explain(row, names)`` turns one row of that query into (title, explanation, suggestion), in the
capture's own numbers; it says nothing the row does not give. The buffer advice gives a size from
the observed bursts (``words.buffer_fix``)."""

from __future__ import annotations

from ftraceipc.detect.words import Names, buffer_fix, cap, holds, human_bytes, human_ns, reader_turns

ID = "full_buffer_stall"


def explain(r: dict, n: Names) -> tuple[str, str, str]:
    w, rid = r["writer"], r["rid"]
    readers = r.get("readers") or []
    burst = r.get("burst_bytes")
    return (f"{n(w)} stalls on the full {rid} while its reader waits on it by turns",
            f"{n(w)} slept {r['count']:,} times waiting for room in {rid} ({r['kind']}): "
            f"{human_ns(r['asleep_ns'])} in all, {human_ns(r['max_ns'])} at most at once. At other times "
            f"{n.many(readers)}, which read{'s' if len(readers) == 1 else ''} it, waited on it empty "
            f"{r['reader_waits']:,} times ({human_ns(r['reader_wait_ns'])}): the two take turns instead of "
            f"working side by side. {n(w)} wrote {human_bytes(r['bytes'])} into it in {r.get('writes') or 0:,} "
            f"calls: bursts of ~{human_bytes(burst)}{holds(rid, r.get('buffer_bytes'))}."
            f"{reader_turns(r, n.many(readers), rid)}",
            f"{cap(buffer_fix(rid, burst))}; or have the writer produce smaller pieces more often.")
