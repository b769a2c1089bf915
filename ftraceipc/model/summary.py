"""The few lines ``ftraceipc capture`` prints about the model of what it just recorded."""

from __future__ import annotations

import shlex

from ftraceipc.model.export import (UNKNOWN, Labels, blocked_by, column_values, human_bytes, human_ns, py, rows,
                                    user_tasks)
from ftraceipc.model.ipc import Model

TOP_TALKERS = 3


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def traced_roots(meta: dict | None) -> list[int]:
    """The pids a capture was about: the traced command's (``capture -- CMD``), else the ones given
    with ``capture --pid``; empty for a system-wide capture."""
    meta = meta or {}
    if meta.get("command_pid") is not None:
        return [int(meta["command_pid"])]
    return [int(p) for p in meta.get("target_pids") or []]


def command_tree(model: Model) -> set[int] | None:
    """The pids of the traced command (or of the ``--pid`` targets) and their descendants (None: a
    system-wide capture, or none of them is in the model)."""
    t = model.tasks
    have = set(column_values(t["pid"])) if len(t) else set()
    roots = {r for r in traced_roots(model.meta) if r in have}
    if not roots:
        return None
    parent = {int(p): py(pp) for p, pp in zip(t["pid"].tolist(), t["ppid"].tolist()) if py(p) is not None}
    tree = set(roots)
    grew = True
    while grew:
        new = {p for p, pp in parent.items() if pp in tree and p not in tree}
        tree |= new
        grew = bool(new)
    return tree


def tree_words(meta: dict | None, tree: set[int]) -> str:
    """How to name a process tree from ``command_tree``: "the command's 3 processes (make -j2)" or
    "the 4 processes of pid 1234" (a ``capture --pid`` capture)."""
    meta = meta or {}
    n = _plural(len(tree), "process", "processes")
    if meta.get("command_pid") is not None:
        cmd = " ".join(meta.get("command") or []) or f"pid {meta['command_pid']}"
        return f"the command's {n} ({cmd[:60]})"
    pids = [str(p) for p in traced_roots(meta)]
    return f"the {n} of pid {', '.join(pids[:6])}{' …' if len(pids) > 6 else ''} and descendants"


def focus(model: Model, pids: set[int]) -> Model:
    """The part of the model that involves these processes' tasks (a flow needs one end in them)."""
    import dataclasses

    t = model.tasks
    tids = {int(x) for x, p in zip(t["tid"].tolist(), t["pid"].tolist()) if py(p) in pids}
    fl = model.flows
    keep_fl = fl[[py(a) in tids or py(b) in tids for a, b in zip(fl["writer"], fl["reader"])]] if len(fl) else fl
    io = model.io[model.io["tid"].isin(tids)] if len(model.io) else model.io
    rids = set(column_values(io["rid"])) | set(column_values(keep_fl["via"])) if len(io) or len(keep_fl) else set()
    res = model.resources[model.resources["rid"].isin(rids)] if len(model.resources) else model.resources
    return dataclasses.replace(
        model, tasks=t[t["tid"].isin(tids)], io=io, flows=keep_fl, resources=res,
        blocked=model.blocked[model.blocked["tid"].isin(tids)] if len(model.blocked) else model.blocked,
        wakes=model.wakes[model.wakes["wakee"].isin(tids)] if len(model.wakes) else model.wakes,
        unattributed=[u for u in model.unattributed if u.pid in pids])


def not_ipc_calls(model: Model, pids: set[int] | None = None) -> int:
    """Reads and writes on fds known not to be IPC (regular files, ttys, network sockets...) of
    these processes (None: all), as the model build counted them."""
    by_pid = model.stats.get("not_ipc_calls_by_pid")
    if pids is None or not isinstance(by_pid, dict):
        return int(py(model.stats.get("not_ipc_calls")) or 0) if pids is None else 0
    return sum(int(n) for p, n in by_pid.items() if int(p) in pids)


def summary_lines(model: Model) -> list[str]:
    """What talked to what, who waited on what, and what could not be attributed; short. With a
    traced command, about the command's process tree (the capture itself is system-wide)."""
    out = []
    lab = Labels(model)  # of every task: the command talks to tasks outside its tree (a server...)
    tree = command_tree(model)
    if tree is not None:
        n_all = len(user_tasks(model))
        model = focus(model, tree)
        out.append(f"(about {tree_words(model.meta, tree)}; the capture holds {_plural(n_all, 'thread')} in all)")

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

    un = model.unattributed  # calls that could have been IPC: on fds not known to be files, ttys...
    if un:
        calls = sum(int(u.calls or 0) for u in un)
        biggest = max(un, key=lambda u: u.calls or 0)
        out.append(f"not attributed: {_plural(calls, 'call')} that could have been IPC, in "
                   f"{_plural(len(un), 'group')}; biggest: {biggest.line()}")
    files = not_ipc_calls(model, tree)
    if files:
        out.append(f"left out: {_plural(files, 'read/write', 'reads/writes')} of regular files, ttys and other fds "
                   "that are no pipe, FIFO or Unix socket: not IPC")
    for s in model.impossible[:1]:
        more = f" (+{len(model.impossible) - 1} more)" if len(model.impossible) > 1 else ""
        out.append(f"cannot attribute: {s}{more}")
    out.append(f"details: ftraceipc model {shlex.quote(str(model.capture))}")
    return out
