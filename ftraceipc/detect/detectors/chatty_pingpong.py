"""chatty_pingpong: the words of ``cypher/chatty_pingpong.cypher`` (the query; its header lists the columns used here).

``explain(row, names)`` turns one row of that query into (title, explanation, suggestion), in the
capture's own numbers; it says nothing the row does not give."""

from __future__ import annotations

from ftraceipc.detect.words import Names, human_bytes, human_ns

ID = "chatty_pingpong"


def explain(r: dict, n: Names) -> tuple[str, str, str]:
    a, b = r["a"], r["b"]
    wk = r["wakeups_ab"] + r["wakeups_ba"]
    return (f"{n(a)} and {n(b)} ping-pong {r['count']:,} small messages",
            f"{n(a)} and {n(b)} exchanged {r['count']:,} messages "
            f"({human_bytes(r['bytes_per_message_ab'])} and {human_bytes(r['bytes_per_message_ba'])} on "
            f"average each way) with {wk:,} wakeups of each other: about one context switch per message. "
            f"Scheduling latency alone cost {human_ns(r['asleep_ns'])}.{_path(r)}",
            "Batch: send several requests per write (or one larger message), pipeline requests instead of "
            f"waiting for each reply, or do both sides' work in one thread.{_pin(r, n)}")


def _path(r: dict) -> str:
    crit, path = int(r.get("critical_ns") or 0), int(r.get("path_ns") or 0)
    if path <= crit:
        return (f" Their round trips take {human_ns(crit)} of the critical path, in syscalls and waiting for "
                "a CPU: what batching can save.")
    return (f" Their round trips take {human_ns(path)} of the critical path; {human_ns(crit)} of it in "
            "syscalls and waiting for a CPU after each hand-off, which batching divides; the rest is their "
            f"work outside syscalls, which stays: batching can save {human_ns(crit)} or more, at most "
            f"{human_ns(path)}.")


def _pin(r: dict, n: Names) -> str:
    """When their wakeups of each other crossed CPUs as often as cross_cpu_wakeup asks (its $min_percent):
    the fix that leaves the protocol alone."""
    from ftraceipc.graph import read_query

    wk = int(r.get("wakeups_ab") or 0) + int(r.get("wakeups_ba") or 0)
    cross = int(r.get("cross_ab") or 0) + int(r.get("cross_ba") or 0)
    if wk <= 0 or cross * 100 < read_query("cross_cpu_wakeup").defaults["min_percent"] * wk:
        return ""
    return (f" If each message must wait for its answer, keep {n(r['a'])} and {n(r['b'])} on one CPU "
            f"(taskset -c, sched_setaffinity): {100 * cross // wk}% of their wakeups of each other ran the "
            "woken task on another CPU (cross_cpu_wakeup).")
