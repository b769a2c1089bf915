"""The few lines ``ftraceipc capture`` prints about the model of what it just recorded."""

from __future__ import annotations

import shlex

from ftraceipc.model.export import (UNKNOWN, Labels, blocked_by, column_values, human_bytes, human_ns, py, rows,
                                    user_tasks)
from ftraceipc.model.ipc import Model

TOP_TALKERS = 3


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def summary_lines(model: Model) -> list[str]:
    """What talked to what, who waited on what, and what could not be attributed; short."""
    lab = Labels(model)
    out = []

    tasks = user_tasks(model)
    npids = len(set(column_values(tasks["pid"])) - {None}) if len(tasks) else 0
    res = model.resources
    kinds = {}
    for k in column_values(res["kind"]) if len(res) else []:
        kinds[k] = kinds.get(k, 0) + 1
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], str(kv[0]))))
    out.append(f"model: {_plural(len(tasks), 'thread')} in {_plural(npids, 'process', 'processes')}; "
               f"{_plural(len(res), 'resource')}" + (f" ({by_kind})" if by_kind else ""))

    flows = sorted(rows(model.flows), key=lambda r: (-(py(r.get("bytes")) or 0), str(r.get("via"))))
    if flows:
        out.append("top talkers:")
        for r in flows[:TOP_TALKERS]:
            n = int(py(r.get("messages")) or 0)
            via = r.get("via")
            read = r.get("read_rid")
            out.append(f"  {lab.task(r.get('writer'))} -> {lab.task(r.get('reader'))} via {via}"
                       + (f" (read from {read})" if read and read != via else "")
                       + f": {human_bytes(py(r.get('bytes')) or 0)} in {_plural(n, 'write')}")
    else:
        out.append("top talkers: none (no bytes went from one task to another through a traced resource)")

    bt, br = blocked_by(model, "tid"), blocked_by(model, "rid")
    if len(bt):
        total = float(bt["blocked_ns"].sum())
        tid = bt["blocked_ns"].idxmax()
        line = f"blocked: {human_ns(total)} in total; most: {lab.task(tid)} {human_ns(bt.loc[tid, 'blocked_ns'])}"
        known = br.drop(index=UNKNOWN, errors="ignore")
        if len(known):
            rid = known["blocked_ns"].idxmax()
            line += f", on {rid} {human_ns(known.loc[rid, 'blocked_ns'])}"
        out.append(line)

    un = model.unattributed
    if un:
        calls = sum(int(u.calls or 0) for u in un)
        biggest = max(un, key=lambda u: u.calls or 0)
        out.append(f"not attributed: {_plural(calls, 'call')} in {_plural(len(un), 'group')}; "
                   f"biggest: {biggest.line()}")
    for s in model.impossible[:1]:
        more = f" (+{len(model.impossible) - 1} more)" if len(model.impossible) > 1 else ""
        out.append(f"cannot attribute: {s}{more}")
    out.append(f"details: ftraceipc model {shlex.quote(str(model.capture))}")
    return out
