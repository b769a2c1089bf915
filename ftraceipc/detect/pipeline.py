"""The one home of the analysis: a capture (or a model already built) → its graph (embedded
LadybugDB or Neo4j) → the selected detectors, scoped to the traced command's tasks → an
:class:`~ftraceipc.detect.finding.Analysis`. ``ftraceipc analyze``, the findings at the end of
``ftraceipc capture``, ``ftraceipc report`` and ``ftraceipc export`` call :func:`analyze`; so will a
live mode (with the model it keeps up to date). The report layer only renders what it returns.

    a = analyze(Path("run.ftipc"))                                  # embedded CAPTURE/graph.lbug
    a = analyze(model, backend=Backend(path=tmp / "g.lbug"), all_tasks=True)
    a = analyze(Path("run.ftipc"), backend=Backend(uri="bolt://localhost:7687", password=pw),
                detectors=["bottleneck", "wait_chain"], params={"bottleneck": {"min_percent": 10}})
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from ftraceipc.detect.detectors import DETECTORS
from ftraceipc.detect.finding import EVERY_TASK, Analysis, CriticalPathInfo, Finding, rank
from ftraceipc.detect.run import check_ids, run_detectors, runnable
from ftraceipc.detect.words import Names
from ftraceipc.model import ipc

Log = Callable[[str], None]
Build = Callable[..., ipc.Model]  # build(capture, **build_model options) -> Model


@dataclass(frozen=True)
class Backend:
    """Where the detectors run. ``uri`` None: the embedded LadybugDB file ``path`` (default
    ``CAPTURE/graph.lbug``, built on first use and again when stale); else a Neo4j 5 server
    (``user``/``password`` as ``Neo4jGraph.connect`` takes them: None means the environment or the
    config file), where the capture is loaded if it is not there yet."""

    uri: str | None = None
    user: str | None = None
    password: str | None = None
    path: Path | None = None

    @property
    def neo4j(self) -> bool:
        return self.uri is not None


EMBEDDED = Backend()


def _default_build(capture, **kw) -> ipc.Model:
    from ftraceipc.model.build import build_model

    return build_model(capture, **kw)


def open_embedded(capture: str | os.PathLike, *, path: str | os.PathLike | None = None, fresh: bool = False,
                  build: Build | None = None, log: Log | None = None):
    """``(LadybugGraph, model or None)``: the capture's embedded graph (``path``, default
    CAPTURE/graph.lbug), (re)built from the capture when missing, older than meta.json, made by
    another graph schema version (``ftraceipc.graph.SCHEMA_VERSION``) or ``fresh``; the model is
    returned when it was built. The caller closes the graph."""
    from ftraceipc.capture.store import CaptureDir
    from ftraceipc.graph import default_path
    from ftraceipc.graph.ladybug import LadybugGraph

    capture = Path(capture)
    CaptureDir.open(capture).read_meta()  # one clear error before a database is made anywhere
    path = Path(path) if path is not None else default_path(capture)
    meta = capture / "meta.json"
    stale = fresh or not path.exists() or (meta.exists() and path.stat().st_mtime < meta.stat().st_mtime)
    g = LadybugGraph.open(path)
    try:
        if not stale and not g.schema_is_current():  # made by an older ftraceipc
            stale = True
        model = None
        if stale:
            model = (build or _default_build)(capture)
            counts = g.load(model, replace=True)
            if log is not None:
                log(f"built {path} ({sum(counts.values()):,} rows)")
    except BaseException:
        g.close()
        raise
    return g, model


def connect(backend: Backend):
    """The Neo4j server of ``backend``, connected and checked."""
    from ftraceipc.graph.neo4j import Neo4jGraph

    return Neo4jGraph.connect(backend.uri, backend.user, backend.password)


def scope(g, meta: dict, cid: str = "", all_tasks: bool = False) -> tuple[set[int] | None, str]:
    """The tids findings must name (None: every task) and how to say it: the process tree of the
    traced command or of the ``capture --pid`` targets when the capture has one (unless
    ``all_tasks``), and never ftraceipc's own tasks alone."""
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


CRITICAL_QUERY = ("MATCH (c:FtraceipcCapture) WHERE c.capture_id = $cid "
                  "RETURN c.crit_root AS root, c.crit_start_ts AS start_ts, c.crit_end_ts AS end_ts, "
                  "c.wall_ns AS wall_ns")


def critical_path(g, cid: str, names: Names | None = None) -> CriticalPathInfo:
    """The capture's critical path as its graph holds it (the FtraceipcCapture node of ``cid``)."""
    from ftraceipc.detect.run import plain

    df = g.query(CRITICAL_QUERY, {"cid": cid})
    if not len(df):
        return CriticalPathInfo()
    r = {k: plain(v) for k, v in df.iloc[0].items()}
    root = int(r["root"]) if r.get("root") is not None and int(r["root"]) >= 0 else None
    if root is None:
        return CriticalPathInfo()
    return CriticalPathInfo(root=root, root_label=(names or Names(g, ""))(root),
                            start_ts=r.get("start_ts"), end_ts=r.get("end_ts"), wall_ns=int(r.get("wall_ns") or 0))


def analyze(source: str | os.PathLike | ipc.Model, *, backend: Backend = EMBEDDED,
            detectors: Iterable[str] | None = None, all_tasks: bool = False,
            params: dict[str, dict[str, Any]] | None = None, build: Build | None = None,
            log: Log | None = None, min_share: float | None = None, graph=None,
            workers: int | None = None, path_segments: bool = True) -> Analysis:
    """Analyse a capture directory or a built model (``source``) on ``backend``.

    ``detectors``: the ids to run (default every one, or those the capture was made for with
    ``capture -D``, its meta's ``detectors``; unknown ids are one clear error); a detector
    whose model tables the capture cannot have is listed in ``not_run``, not run. ``all_tasks``:
    findings about every task (default: those naming a task of the traced command's process tree).
    ``params``: per detector parameter overrides (``{"bottleneck": {"min_percent": 10}}``).
    ``build``: builds a model from the capture when the graph needs one (default
    ``build_model``; the CLI passes one with a progress bar). ``log``: receives one line per
    database step (graph built, capture loaded). ``min_share``: with a critical path, findings that
    account for less than this percentage of its wall time are left out of ``findings`` (into
    ``minor``, with a note); default :data:`MIN_SHARE_PERCENT`, 0 keeps all; never with ``all_tasks``.
    ``graph``: with a model, an embedded graph already open to load it into (replacing what it
    holds) and leave open (live mode analyses a model each interval on one connection). ``workers``:
    detector queries at once on the embedded graph (``run_detectors``; default 2 with 2 CPUs).
    ``path_segments`` False: a model is loaded into the embedded graph without its critical path's
    segments (PathSegment, ON_PATH: no detector reads them; the same findings, a faster load)."""
    from ftraceipc.graph import default_path
    from ftraceipc.problems import capture_problems, model_problems

    model = source if isinstance(source, ipc.Model) else None
    if model is not None:
        capture, meta, cid = Path(model.capture), model.meta or {}, model.capture_id
        gaps = model.gaps
    else:
        from ftraceipc.capture.store import CaptureDir
        from ftraceipc.model.build import capture_gaps, capture_id

        capture = Path(source)
        meta = CaptureDir.open(capture).read_meta().to_json()
        cid = capture_id(meta)
        gaps = capture_gaps(meta)
    ids = check_ids(detectors if detectors is not None else _chosen(meta))
    run_ids, skipped = runnable(ids, gaps)
    if backend.neo4j:
        g = connect(backend)
        label, scope_cid = f"Neo4j at {g.uri}", cid  # the URI without any user:password@ given
    elif model is not None and graph is not None:
        g = graph
        g.load(model, replace=True, segments=path_segments)
        label, scope_cid = "embedded graph.lbug", ""
    elif model is not None:
        from ftraceipc.graph.ladybug import LadybugGraph

        path = backend.path or default_path(capture)
        g = LadybugGraph.open(path)
        try:
            g.load(model, replace=True, segments=path_segments)
        except BaseException:
            g.close()
            raise
        label, scope_cid = "embedded graph.lbug", ""
    else:
        g, model = open_embedded(capture, path=backend.path, build=build, log=log)
        label, scope_cid = "embedded graph.lbug", ""
    with (contextlib.nullcontext(g) if g is graph else g):
        if backend.neo4j and cid not in g.capture_ids():
            if log is not None:
                log(f"loading capture {cid} into {label}")
            if model is None:
                model = (build or _default_build)(capture)
            g.load(model)
        warnings = model_problems(model, skipped) if model is not None else capture_problems(capture, skipped)
        t0 = time.perf_counter()
        names = Names(g, scope_cid)
        tids, where = scope(g, meta, scope_cid, all_tasks)
        found = run_detectors(g, only=run_ids, capture_id=scope_cid, tids=tids, params=params,
                              browser_capture_id=cid, workers=workers)
        crit = critical_path(g, cid, names)
        seconds = time.perf_counter() - t0
    # --all-tasks: findings about tasks outside the command are not measured against its path
    share = 0.0 if all_tasks else (MIN_SHARE_PERCENT if min_share is None else min_share)
    found, minor = split_minor(found, crit.wall_ns, share)
    notes = []
    if minor:
        notes.append(f"{len(minor)} finding{'s' if len(minor) != 1 else ''} under {share:g} % of the critical "
                     "path left out (--min-share 0 shows them)")
    return Analysis(capture=str(capture), capture_id=cid, backend=label, detectors=ids, findings=found,
                    scope=where, seconds=seconds, not_run=skipped, warnings=warnings, critical=crit,
                    notes=notes, minor=minor)


# Findings of a traced command that account for less than this share of its critical path are left
# out of the ranked list: what fixing them could save is within the run-to-run noise of the wall time
# (the untraced runs of bench/insight.py spread 2-20 %). Measured: the fixed variants of
# bench/insight.py keep faint traces of the pattern they fixed (bursty_pipe with a 1 MiB pipe: a
# full_buffer_stall of 1 % of the path, 45 stalls of 19 ms in a 1.4 s run), which are not findings.
MIN_SHARE_PERCENT = 2.0


def split_minor(found: list[Finding], wall_ns: int, min_share: float) -> tuple[list[Finding], list[Finding]]:
    """(findings at or above ``min_share`` % of ``wall_ns``, the others), each ranked again from 1.
    Without a critical path (``wall_ns`` 0: a system-wide capture) or with ``min_share`` 0, all are kept."""
    if wall_ns <= 0 or min_share <= 0:
        return found, []
    keep = [f for f in found if f.critical_ns * 100 >= min_share * wall_ns]
    minor = [f for f in found if f.critical_ns * 100 < min_share * wall_ns]
    return rank(keep), rank(minor)


def problems(model: ipc.Model) -> list:
    """The problems of a built model, naming the detectors its gaps keep from running."""
    from ftraceipc.problems import model_problems

    return model_problems(model, runnable(_chosen(model.meta or {}), model.gaps)[1])


def _chosen(meta: dict) -> list[str]:
    """The detectors a capture was made for (``capture -D``: its meta's ``detectors``), else every one."""
    return list(meta.get("detectors") or DETECTORS)


__all__ = ["Backend", "EMBEDDED", "analyze", "open_embedded", "connect", "scope", "critical_path", "problems"]
