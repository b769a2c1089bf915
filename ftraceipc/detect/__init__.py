"""The detectors: one Cypher file per pattern in ``cypher/`` (file name = detector id), run on a
capture's graph (embedded LadybugDB or Neo4j), each row turned into a :class:`Finding` with a plain
explanation and a concrete suggestion, ranked by the time it cost.

    with LadybugGraph.open(default_path(capture)) as g:
        findings = run_detectors(g)                   # every detector, ranked
        findings = run_detectors(g, only={"wait_chain"}, tids=command_tids)

Every detector returns the columns ``pattern, tasks, resources, count, lost_ns`` first (tids, rids,
occurrences, nanoseconds); the rest of its row is kept in ``Finding.details`` and feeds the
explanation. The words of each finding are made here, from the row, never from guesses: a detector
that cannot say something (e.g. who drained a pipe) leaves it out.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

from ftraceipc.errors import FtraceIPCError
from ftraceipc.model.export import human_bytes, human_ns, short_list, task_label

COMMON = ("pattern", "tasks", "resources", "count", "lost_ns", "asleep_ns")


@dataclass
class Finding:
    """One detector row, explained. ``rank`` is 1 for the costliest finding of a report."""

    pattern: str
    tasks: list[int]
    resources: list[str]
    count: int
    lost_ns: int
    explanation: str
    suggestion: str
    title: str = ""
    cypher: str = ""  # paste into Neo4j Browser to see the tasks and resources of the finding
    details: dict[str, Any] = field(default_factory=dict)
    rank: int = 0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        order = ["rank", "pattern", "tasks", "resources", "count", "lost_ns", "explanation", "suggestion",
                 "title", "cypher", "details"]
        return {k: d[k] for k in order}


class Names:
    """``comm[tid]`` labels for the tasks of a graph (one query, on first use), as every output
    names tasks (``model.export.task_label``)."""

    LIMIT = 6  # tasks named in one list of an explanation; the rest are counted

    def __init__(self, graph, capture_id: str = ""):
        self._graph = graph
        self._cid = capture_id
        self._comm: dict[int, str] | None = None

    def _load(self) -> dict[int, str]:
        if self._comm is None:
            df = self._graph.query("MATCH (t:Task) WHERE $cid = '' OR t.capture_id = $cid "
                                   "RETURN t.tid AS tid, t.comm AS comm", {"cid": self._cid})
            self._comm = {int(t): c for t, c in zip(df["tid"].tolist(), df["comm"].tolist())
                          if isinstance(c, str)}
        return self._comm

    def __call__(self, tid: Any) -> str:
        t = int(tid)
        return task_label(t, self._load().get(t))

    def many(self, tids: Iterable[Any], limit: int = LIMIT) -> str:
        """Labels of ``tids``: the first ``limit``, then "…and 681 more"."""
        return short_list((self(t) for t in tids), limit)


def _kind(rid: str) -> str:
    return str(rid).split(":", 1)[0]


PIPE_MAX_SIZE = 1 << 20  # /proc/sys/fs/pipe-max-size by default: the most F_SETPIPE_SZ gives without root
WMEM_MAX = 212992  # /proc/sys/net/core/wmem_max by default: the most SO_SNDBUF gives without CAP_NET_ADMIN


def _asleep(r: dict) -> int:
    """A row's time: ``asleep_ns`` (``lost_ns`` in the detectors not renamed yet)."""
    v = r.get("asleep_ns", r.get("lost_ns"))
    return int(v or 0)


def buffer_size(burst: float) -> int:
    """The buffer size to suggest for bursts of ``burst`` bytes: rounded up to a power of two, at least a page."""
    return 1 << max(12, (max(1, int(math.ceil(burst))) - 1).bit_length())


def _buffer_fix(rid: str, burst: float | None = None) -> str:
    """How to give ``rid`` room for a burst (no size when the bursts are not known)."""
    if _kind(rid) in ("pipe", "fifo"):
        if not burst:
            return (f"give {rid} a bigger buffer (fcntl(fd, F_SETPIPE_SZ, size); at most /proc/sys/fs/pipe-max-size, "
                    "1 MiB by default)")
        size = buffer_size(burst)
        over = (f"; that is above /proc/sys/fs/pipe-max-size (1 MiB by default): raise it, or have the writer "
                f"write smaller bursts") if size > PIPE_MAX_SIZE else ""
        return (f"give {rid} room for a whole burst: fcntl(fd, F_SETPIPE_SZ, {size}) on either end "
                f"({human_bytes(size)}, a burst of ~{human_bytes(burst)} rounded up to a power of two{over})")
    if not burst:
        return f"raise {rid}'s buffer (setsockopt SO_SNDBUF on the writer, SO_RCVBUF on the reader)"
    size = buffer_size(burst)
    over = (", above /proc/sys/net/core/wmem_max (208 KiB by default): raise that first"
            if size > WMEM_MAX else "")
    return (f"give {rid} room for a whole burst: setsockopt(fd, SOL_SOCKET, SO_SNDBUF, {size}) on the writer's "
            f"socket ({human_bytes(size)}, a burst of ~{human_bytes(burst)} rounded up to a power of two{over})")


def _holds(rid: str, buffer: Any) -> str:
    """", larger than the 64.0 KiB pipe:9 holds" (nothing for a socket, whose buffer the trace does not show)."""
    return f", larger than the {human_bytes(buffer)} {rid} holds" if buffer else f", more than {rid} took at once"


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _per(n: float, d: float) -> float:
    return n / d if d else math.nan


# explanation and suggestion per detector: f(row, names) -> (title, explanation, suggestion) --------------
def _full_buffer_stall(r: dict, n: Names) -> tuple[str, str, str]:
    w, rid = r["writer"], r["rid"]
    readers = r.get("readers") or []
    burst = r.get("burst_bytes")
    return (f"{n(w)} stalls on the full {rid} while its reader waits on it by turns",
            f"{n(w)} slept {r['count']:,} times waiting for room in {rid} ({r['kind']}): "
            f"{human_ns(_asleep(r))} in all, {human_ns(r['max_ns'])} at most at once. At other times "
            f"{n.many(readers)}, which read{'s' if len(readers) == 1 else ''} it, waited on it empty "
            f"{r['reader_waits']:,} times ({human_ns(r['reader_wait_ns'])}): the two take turns instead of "
            f"working side by side. {n(w)} wrote {human_bytes(r['bytes'])} into it in {r.get('writes') or 0:,} "
            f"calls: bursts of ~{human_bytes(burst)}{_holds(rid, r.get('buffer_bytes'))}.",
            f"{_cap(_buffer_fix(rid, burst))}; or have the writer produce smaller pieces more often.")


def _thundering_herd(r: dict, n: Names) -> tuple[str, str, str]:
    w, rid, k = r["waker"], r["rid"], r["n_wakees"]
    wpw, cpw = r.get("woken_per_write"), r.get("consumed_per_write")
    per = (f" Each of its {r['writes']:,} writes woke {wpw:.1f} of them on average, and {cpw:.1f} then read data."
           if isinstance(wpw, (int, float)) and isinstance(cpw, (int, float)) and r.get("writes") else "")
    pct = round(100 * r["wasted"] / r["count"]) if r["count"] else 0
    return (f"{n(w)} wakes {k} waiters of {rid} together; most find nothing to read",
            f"{n(w)}'s wakeups through {rid} ended {r['count']:,} sleeps of {k} tasks waiting there for data "
            f"({n.many(r['wakees'])}). After {r['wasted']:,} of them ({pct}%) the woken task read nothing from "
            f"{rid} before it waited again.{per} Scheduling the useless wakeups cost about "
            f"{human_ns(_asleep(r))} of wake-to-run time.",
            "Wake one waiter per message: add the fd to epoll with EPOLLEXCLUSIVE, give each worker its "
            f"own pipe or socket, or have one task read {rid} and hand out the work "
            "(poll()/select() on a shared fd always wakes every waiter).")


def _wake_then_block(r: dict, n: Names) -> tuple[str, str, str]:
    t, b = r["tid"], r["blocked_on"]
    a = short_list(r.get("inputs") or [])
    readers = r.get("readers") or []
    burst = r.get("burst_bytes")
    return (f"{n(t)} is fed through {a} and stalls on the full {b}",
            f"{n(t)} is a stage: it was woken {r['woken']:,} times through {a} (by {n.many(r['wakers'])}) and "
            f"{r['fed']:,} times read data there, and it slept {r['count']:,} times waiting for room in {b} "
            f"({human_ns(_asleep(r))} in all), while {n.many(readers)}, reading {b}, waited on it empty "
            f"{r['reader_waits']:,} times ({human_ns(r['reader_wait_ns'])}). It wrote batches of "
            f"~{human_bytes(burst)} into {b}{_holds(b, r.get('buffer_bytes'))}, so {n(t)} passes each on in "
            f"pieces, by turns with its reader, and meanwhile does not take its next input.",
            f"{_cap(_buffer_fix(b, burst))}; or merge {n(t)} with the stage that reads {b}, so that no "
            "hand-off waits.")


def _chatty_pingpong(r: dict, n: Names) -> tuple[str, str, str]:
    a, b = r["a"], r["b"]
    wk = r["wakeups_ab"] + r["wakeups_ba"]
    return (f"{n(a)} and {n(b)} ping-pong {r['count']:,} small messages",
            f"{n(a)} and {n(b)} exchanged {r['count']:,} messages "
            f"({human_bytes(r['bytes_per_message_ab'])} and {human_bytes(r['bytes_per_message_ba'])} on "
            f"average each way) with {wk:,} wakeups of each other: about one context switch per message. "
            f"Scheduling latency alone cost {human_ns(_asleep(r))}.",
            "Batch: send several requests per write (or one larger message), pipeline requests instead of "
            "waiting for each reply, or do both sides' work in one thread.")


def _wait_chain(r: dict, n: Names) -> tuple[str, str, str]:
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
            f"{chain}: each task mainly waits on the next. {n(ts[0])} slept {human_ns(_asleep(r))} in "
            f"{r['count']:,} sleeps waiting on this chain. {end}",
            f"Shorten the chain (merge stages, or let each stage work ahead with a bigger buffer) or {fix}.")


def _wait_cycle(r: dict, n: Names) -> tuple[str, str, str]:
    ts, rs = r["tasks"], r["resources"]
    ring = " -> ".join(f"{n(t)} (via {rid})" for t, rid in zip(ts, rs)) + f" -> {n(ts[0])}"
    return (f"wait cycle of {r['length']} tasks: they take turns",
            f"{ring}: each mainly waits on the next, round a cycle, so only one of them runs at a time "
            f"(about {r['count']:,} rounds). The cycle waited for its turns at least {human_ns(_asleep(r))} of "
            f"wall time (its longest hop; the hops' waits overlap in time).",
            "Let the tasks overlap: keep several messages in flight round the cycle (bigger buffers, no "
            "wait for each hand-off), or merge them into one task that does the steps in turn.")


def _cross_cpu_wakeup(r: dict, n: Names) -> tuple[str, str, str]:
    w, t = n(r["waker"]), n(r["wakee"])
    c = r.get("consumed") or 0
    handoffs = (f"{c:,} times {w} woke {t} with data to read" if c else
                f"{r['sleeps']:,} sleeps of {t} that {w} ended")
    return (f"{w} wakes {t} on another CPU, and the two take turns",
            f"{r['count']:,} of the {r['wakeups']:,} wakeups of {t} by {w} through "
            f"{short_list(r['resources'])} ({r['percent']}%) ran it on another CPU than the waker's: an "
            f"inter-processor interrupt each, and the data just written is in the other CPU's cache. The two "
            f"take turns: of the {handoffs}, {r['turns']:,} were followed by {w} going to sleep before {t} "
            f"slept again, so they seldom run at the same time. Their share of the wake-to-run latency: "
            f"{human_ns(_asleep(r))}.",
            "Keep the pair on one CPU or on CPUs that share a cache (taskset -c, sched_setaffinity, a "
            "cpuset), or batch the messages so fewer wakeups are needed.")


def _wakeup_latency(r: dict, n: Names) -> tuple[str, str, str]:
    return (f"{n(r['wakee'])} waits {human_ns(r['mean_ns'])} for a CPU after each wakeup",
            f"{n(r['wakee'])} was woken {r['count']:,} times through {r['rid']} (by {n.many(r['wakers'])}) "
            f"and then waited {human_ns(r['mean_ns'])} on average, {human_ns(r['max_ns'])} at most, before it "
            f"ran: {human_ns(_asleep(r))} runnable but not running.",
            "Find what else runs on its CPU (perf sched timehist, top -H): raise the wakee's priority "
            "(nice, chrt), give it a CPU of its own, or move the competing load elsewhere.")


@dataclass(frozen=True)
class Detector:
    id: str
    explain: Callable[[dict, Names], tuple[str, str, str]]


DETECTORS: dict[str, Detector] = {d.id: d for d in [
    Detector("full_buffer_stall", _full_buffer_stall),
    Detector("wake_then_block", _wake_then_block),
    Detector("thundering_herd", _thundering_herd),
    Detector("chatty_pingpong", _chatty_pingpong),
    Detector("wait_chain", _wait_chain),
    Detector("wait_cycle", _wait_cycle),
    Detector("cross_cpu_wakeup", _cross_cpu_wakeup),
    Detector("wakeup_latency", _wakeup_latency),
]}


_NEEDS_LINE = re.compile(r"^//\s*Needs:\s*([A-Z_]+(?:\s*,\s*[A-Z_]+)*)")


def detector_needs(did: str) -> tuple[str, ...]:
    """The model tables (graph edge types) detector ``did`` reads: the ``// Needs: A, B`` line of
    its query file's header (none: it needs nothing in particular)."""
    from ftraceipc.graph import query_path

    try:
        text = query_path(did).read_text()
    except OSError:
        return ()  # run_file reports the missing file
    for line in text.splitlines():
        if not line.startswith("//"):
            break
        m = _NEEDS_LINE.match(line)
        if m:
            return tuple(t.strip() for t in m.group(1).split(","))
    return ()


def runnable(ids: Iterable[str], gaps) -> tuple[list[str], list]:
    """Split detector ids into those that can run on a capture with these gaps (``Model.gaps`` or
    ``model.build.capture_gaps``) and the ``problems.NotRun`` of the others (what they lack)."""
    from ftraceipc.problems import not_run

    ids = list(ids)
    skipped = not_run({d: detector_needs(d) for d in ids}, gaps)
    out = {s.detector for s in skipped}
    return [d for d in ids if d not in out], skipped


def _plain(v: Any) -> Any:
    """A cell as plain Python (numpy scalars and arrays, NaN to None, Decimal to int)."""
    import decimal

    import numpy as np

    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


EVERY_TASK = "every task of the capture"

BROWSER_QUERY = ("MATCH (t:Task)-[e]->(n)\n"
                 "WHERE t.capture_id = $cid AND t.tid IN $tids AND (n.tid IN $tids OR n.rid IN $rids)\n"
                 "RETURN t, e, n")


def browser_cypher(capture_id: str, tids: list[int], rids: list[str]) -> str:
    """What to paste into Neo4j Browser to see a finding: its tasks, resources and the edges between them."""
    return (f":param cid => {json.dumps(capture_id)}\n:param tids => {json.dumps(tids)}\n"
            f":param rids => {json.dumps(rids)}\n" + BROWSER_QUERY)


def run_detectors(graph, *, only: Iterable[str] | None = None, capture_id: str = "",
                  tids: Iterable[int] | None = None, params: dict[str, dict[str, Any]] | None = None,
                  browser_capture_id: str | None = None) -> list[Finding]:
    """Run the detectors (``only`` these ids) on ``graph`` (LadybugGraph or Neo4jGraph) and return
    their findings ranked by lost_ns (then count). ``capture_id`` scopes a database holding several
    captures; ``tids``: only findings naming at least one of these tasks (None: every task), scoped
    inside each query (its ``$tids``) so that its ``$limit`` counts only those; ``params``: per
    detector parameter overrides."""
    ids = list(DETECTORS) if only is None else list(only)
    unknown = [i for i in ids if i not in DETECTORS]
    if unknown:
        raise FtraceIPCError(f"unknown detector {unknown[0]!r}", hint=f"choose from {', '.join(DETECTORS)}")
    scope_tids = [] if tids is None else sorted({int(t) for t in tids})
    if tids is not None and not scope_tids:
        return []  # nothing in scope ([] would mean every task in the queries)
    names = Names(graph, capture_id)
    out: list[Finding] = []
    for did in ids:
        p = dict((params or {}).get(did, {}))
        p.setdefault("capture_id", capture_id)
        p.setdefault("tids", scope_tids)
        df = graph.run_file(did, **p)
        cols = list(df.columns)
        for row in df.itertuples(index=False, name=None):
            r = {c: _plain(v) for c, v in zip(cols, row)}
            ts = [int(t) for t in r["tasks"] or []]
            title, explanation, suggestion = DETECTORS[did].explain(r, names)
            rids = [str(x) for x in r["resources"] or []]
            out.append(Finding(pattern=did, tasks=ts, resources=rids, count=int(r["count"] or 0),
                               lost_ns=_asleep(r), explanation=explanation, suggestion=suggestion,
                               title=title,
                               cypher=browser_cypher(browser_capture_id or capture_id, ts, sorted(set(rids))),
                               details={k: v for k, v in r.items() if k not in COMMON}))
    out.sort(key=lambda f: (-f.lost_ns, -f.count, f.pattern, f.tasks))
    for i, f in enumerate(out, 1):
        f.rank = i
    return out


def scope(g, meta: dict, cid: str = "", all_tasks: bool = False) -> tuple[set[int] | None, str]:
    """The tids findings must name (None: every task) and how to say it: the process tree of the
    traced command or of the ``capture --pid`` targets when the capture has one (unless
    ``all_tasks``), and never ftraceipc's own tasks alone."""
    from ftraceipc.model import ipc
    from ftraceipc.model.summary import command_tree, tree_words

    t = g.query("MATCH (t:Task) WHERE $cid = '' OR t.capture_id = $cid "
                "RETURN t.tid AS tid, t.pid AS pid, t.ppid AS ppid, t.tracer AS tracer", {"cid": cid})
    tracer = {int(x) for x, tr in zip(t["tid"].tolist(), t["tracer"].tolist()) if tr is True}
    everyone = {int(x) for x in t["tid"].tolist()} - tracer
    tree = None if all_tasks else command_tree(ipc.Model(capture="", capture_id=cid, meta=meta, tasks=t))
    if tree is None:
        return (everyone if tracer else None), EVERY_TASK
    tids = {int(x) for x, p in zip(t["tid"].tolist(), t["pid"].tolist()) if int(p) in tree} - tracer
    return tids, tree_words(meta, tree)


def analyze_model(model, graph_path=None, *, all_tasks: bool = False, only: Iterable[str] | None = None):
    """Load ``model`` into its embedded graph (``graph_path``, default CAPTURE/graph.lbug; replaced)
    and run the detectors on it: the ``report.findings.Analysis`` of ``ftraceipc analyze``, for
    the pictures (HTML report, graph) that show findings."""
    import time

    from ftraceipc.graph import default_path
    from ftraceipc.graph.ladybug import LadybugGraph
    from ftraceipc.problems import model_problems
    from ftraceipc.report.findings import Analysis

    path = graph_path or default_path(model.capture)
    ids = list(only) if only is not None else list(DETECTORS)
    run, skipped = runnable(ids, model.gaps)
    with LadybugGraph.open(path) as g:
        g.load(model, replace=True)
        t0 = time.perf_counter()
        tids, where = scope(g, model.meta, "", all_tasks)
        found = run_detectors(g, only=run, tids=tids, browser_capture_id=model.capture_id)
    return Analysis(capture=str(model.capture), capture_id=model.capture_id, backend="embedded graph.lbug",
                    detectors=ids, findings=found, scope=where,
                    seconds=time.perf_counter() - t0, not_run=skipped,
                    warnings=model_problems(model, skipped))


__all__ = ["EVERY_TASK", "DETECTORS", "Detector", "Finding", "run_detectors", "detector_needs", "runnable",
           "browser_cypher", "BROWSER_QUERY", "scope", "analyze_model"]
