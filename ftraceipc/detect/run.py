"""Running detectors on a graph: which can run on a capture (their ``// Needs:`` line against the
capture's gaps), and each row of their query turned into a ranked :class:`Finding`."""

from __future__ import annotations

import decimal
import math
import os
import re
from typing import Any, Iterable

from ftraceipc.detect.detectors import DETECTORS
from ftraceipc.detect.finding import COMMON, Finding, browser_cypher, rank
from ftraceipc.detect.words import Names
from ftraceipc.errors import FtraceIPCError

# queries run at once by run_detectors (each on a connection of its own)
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)
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


def detector_events(ids: Iterable[str]) -> list[str]:
    """The events a capture needs for these detectors to run and find what they find: the model's
    core events and those of the tables their ``// Needs:`` lines name (``ftraceipc.model.needs``),
    in the default set's order. The union over every detector is the default set."""
    from ftraceipc.model.needs import events_for

    return events_for(t for d in ids for t in detector_needs(d))


def select(patterns: Iterable[str]) -> list[str]:
    """Detector ids matching these patterns (an id, or a shell pattern such as ``wait_*``), in
    :data:`MODULES` order; a pattern that matches none is an error (one clear line)."""
    import fnmatch

    out: list[str] = []
    for p in patterns:
        p = p.strip()
        hit = [d for d in DETECTORS if fnmatch.fnmatchcase(d, p)]
        if not hit:
            raise FtraceIPCError(f"no detector matches {p!r}", hint=f"choose from {', '.join(DETECTORS)}")
        out += hit
    return [d for d in DETECTORS if d in out]


def check_ids(ids: Iterable[str]) -> list[str]:
    """``ids`` without repeats, each a known detector (else one clear error)."""
    ids = list(dict.fromkeys(ids))
    unknown = [i for i in ids if i not in DETECTORS]
    if unknown:
        raise FtraceIPCError(f"unknown detector {unknown[0]!r}", hint=f"choose from {', '.join(DETECTORS)}")
    return ids


def plain(v: Any) -> Any:
    """A cell as plain Python (numpy scalars and arrays, NaN to None, Decimal to int)."""
    import numpy as np

    if isinstance(v, np.ndarray):
        return [plain(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def finding(did: str, r: dict[str, Any], names: Names, browser_capture_id: str) -> Finding:
    """One row of detector ``did`` (plain values) as a Finding, explained."""
    ts = [int(t) for t in r["tasks"] or []]
    rids = [str(x) for x in r["resources"] or []]
    title, explanation, suggestion = DETECTORS[did].explain(r, names)
    return Finding(pattern=did, tasks=ts, resources=rids, count=int(r["count"] or 0),
                   critical_ns=int(r["critical_ns"] or 0), asleep_ns=int(r["asleep_ns"] or 0),
                   explanation=explanation, suggestion=suggestion, title=title,
                   cypher=browser_cypher(browser_capture_id, ts, sorted(set(rids))),
                   details={k: v for k, v in r.items() if k not in COMMON})


def run_detectors(graph, *, only: Iterable[str] | None = None, capture_id: str = "",
                  tids: Iterable[int] | None = None, params: dict[str, dict[str, Any]] | None = None,
                  browser_capture_id: str | None = None, workers: int | None = None) -> list[Finding]:
    """Run the detectors (``only`` these ids; default all) on ``graph`` (LadybugGraph or Neo4jGraph)
    and return their findings ranked (``finding.rank``: critical_ns, then asleep_ns). ``capture_id``
    scopes a database holding several captures; ``tids``: only findings naming at least one of these
    tasks (None: every task), applied inside each query (its ``$tids``) so that its ``$limit`` counts
    only those; ``params``: per detector parameter overrides. ``workers``: queries at once, each on
    its own connection, for a graph that has ``connections`` (the embedded one; default: 2 on a
    machine with 2 CPUs or more). Most of a detector's time is the database compiling its query
    (0.43 s of 0.50 s for the nine on an empty graph): two at once took 0.28 s instead of 0.51."""
    ids = check_ids(DETECTORS if only is None else only)
    scope_tids = [] if tids is None else sorted({int(t) for t in tids})
    if tids is not None and not scope_tids:
        return []  # nothing in scope ([] would mean every task in the queries)

    def rows_of(g, did: str) -> list[dict[str, Any]]:
        p = dict((params or {}).get(did, {}))
        p.setdefault("capture_id", capture_id)
        p.setdefault("tids", scope_tids)
        df = g.run_file(did, **p)
        cols = list(df.columns)
        rows = [{c: plain(v) for c, v in zip(cols, row)} for row in df.itertuples(index=False, name=None)]
        if rows and DETECTORS[did].refine is not None:
            rows = DETECTORS[did].refine(g, rows, capture_id, params or {})
        return rows

    n = min(DEFAULT_WORKERS if workers is None else max(int(workers), 1), len(ids))
    if n > 1 and hasattr(graph, "connections"):
        import queue
        from concurrent.futures import ThreadPoolExecutor

        free: queue.SimpleQueue = queue.SimpleQueue()
        for g in graph.connections(n):
            free.put(g)

        def on_free(did: str) -> list[dict[str, Any]]:
            g = free.get()
            try:
                return rows_of(g, did)
            finally:
                free.put(g)

        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="ftraceipc-detect") as ex:
            found = list(ex.map(on_free, ids))
    else:
        found = [rows_of(graph, did) for did in ids]
    names = Names(graph, capture_id)
    out: list[Finding] = []
    for did, rows in zip(ids, found):
        out.extend(finding(did, r, names, browser_capture_id or capture_id) for r in rows)
    return rank(out)
