"""The records of an analysis: a :class:`Finding` (one detector row, explained) and the
:class:`Analysis` of one capture (what ran, in which scope, what it found, what the capture misses).

Every detector returns the columns :data:`COMMON` first: ``pattern, tasks, resources, count,
critical_ns, asleep_ns`` (tids, rids, occurrences, nanoseconds). ``critical_ns`` is the wall time of
the traced command's critical path that the finding accounts for (never more than the command's wall
time: ``Analysis.wall_ns``), the ranking key; ``asleep_ns`` the sleep (or wait) time of the tasks
involved, summed over them (it can exceed the wall time: several tasks sleep at once). The rest of a
row is kept in ``Finding.details``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ftraceipc.problems import NotRun, Problem

COMMON = ("pattern", "tasks", "resources", "count", "critical_ns", "asleep_ns")
EVERY_TASK = "every task of the capture"


@dataclass
class Finding:
    """One detector row, explained. ``rank`` is 1 for the finding that accounts for the most of the
    critical path (then the most time asleep)."""

    pattern: str
    tasks: list[int]
    resources: list[str]
    count: int
    critical_ns: int  # wall time of the command's critical path this finding accounts for (<= wall_ns)
    asleep_ns: int  # time the tasks involved slept (or waited), summed over them
    explanation: str
    suggestion: str
    title: str = ""
    cypher: str = ""  # paste into Neo4j Browser to see the tasks and resources of the finding
    details: dict[str, Any] = field(default_factory=dict)
    rank: int = 0

    KEYS = ("rank", "pattern", "tasks", "resources", "count", "critical_ns", "asleep_ns", "explanation",
            "suggestion", "title", "cypher", "details")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: d[k] for k in self.KEYS}


# A bottleneck goes after an interaction finding that involves its task and accounts for at least this
# share of the bottleneck's critical_ns: the two are then the same time seen twice (a herd's writer
# runs on the path waking its 32 pollers and waits for a CPU behind them: bench/insight.py poll_herd,
# bottleneck 48-49 % and thundering_herd 49-50 % of the path over two runs, ordered by noise), and the
# interaction says what to change while the bottleneck only names the task.
SAME_TIME = 0.9
# Interactions whose first task (the waker) pays for them in its own running time, which their
# critical_ns does not count: a herd's waker runs a wakeup for every waiter at each write. When the
# bottleneck is that waker and the interaction has at least WAKER_PAYS_SHARE of its time, the
# interaction is what makes it one (poll_herd on an AMD EPYC VM, 2026-12-04: bottleneck dispatcher 53 %,
# thundering_herd 45 %; the herd fixed, the run took 74-77 % less time and the dispatcher was no
# bottleneck any more). Below it, as samples/herd.py's herd (2-5 % of a path its writer leads), the
# bottleneck has causes of its own and keeps its place.
WAKER_PAYS = ("thundering_herd",)
WAKER_PAYS_SHARE = 0.5


def _same_time(b: Finding, f: Finding) -> bool:
    """Is interaction finding ``f`` the time of bottleneck ``b`` seen again?"""
    if f.pattern == "bottleneck" or not f.tasks or b.tasks[0] not in f.tasks:
        return False
    if f.critical_ns >= SAME_TIME * b.critical_ns:
        return True
    return f.pattern in WAKER_PAYS and f.tasks[0] == b.tasks[0] and f.critical_ns >= WAKER_PAYS_SHARE * b.critical_ns


def rank(findings: list[Finding]) -> list[Finding]:
    """Order findings by critical_ns, then asleep_ns, then count (most first; ties by pattern and
    tasks), except that a ``bottleneck`` goes right after the first interaction finding naming its
    task whose critical_ns is at least SAME_TIME of its own, or at least WAKER_PAYS_SHARE of it when
    the bottleneck is its paying waker (WAKER_PAYS); number them from 1."""
    findings.sort(key=lambda f: (-f.critical_ns, -f.asleep_ns, -f.count, f.pattern, f.tasks))
    for b in [f for f in findings if f.pattern == "bottleneck" and f.tasks and f.critical_ns > 0]:
        i = findings.index(b)
        later = [j for j in range(i + 1, len(findings)) if _same_time(b, findings[j])]
        if later:
            findings.insert(later[0], findings.pop(i))  # after it: its index moved down by one
    for i, f in enumerate(findings, 1):
        f.rank = i
    return findings


@dataclass
class CriticalPathInfo:
    """The traced command's critical path as the graph holds it (FtraceipcCapture): its root task,
    start and end (trace clock) and wall time; ``root`` None when the capture has no path (no traced
    command, or the scheduler events it needs are missing)."""

    root: int | None = None
    root_label: str = ""
    start_ts: int | None = None
    end_ts: int | None = None
    wall_ns: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"root": self.root, "start_ts": self.start_ts, "end_ts": self.end_ts, "wall_ns": self.wall_ns}


@dataclass
class Analysis:
    """What the detectors found in one capture (``ftraceipc.detect.pipeline.analyze``)."""

    capture: str
    capture_id: str
    backend: str  # "embedded graph.lbug" or "Neo4j at URI"
    detectors: list[str]
    findings: list[Finding]
    scope: str  # which tasks the findings were kept for
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    not_run: list[NotRun] = field(default_factory=list)  # selected detectors the capture cannot feed
    warnings: list[Problem] = field(default_factory=list)  # what the capture is missing (ftraceipc.problems)
    critical: CriticalPathInfo = field(default_factory=CriticalPathInfo)
    minor: list[Finding] = field(default_factory=list)  # under the pipeline's min_share of the path

    @property
    def ran(self) -> list[str]:
        skipped = {s.detector for s in self.not_run}
        return [d for d in self.detectors if d not in skipped]

    @property
    def wall_ns(self) -> int:
        return self.critical.wall_ns

    def capture_json(self) -> dict[str, Any]:
        """The ``capture`` object of the JSON outputs."""
        return {"id": self.capture_id, "path": self.capture, "backend": self.backend, "scope": self.scope,
                "detectors_run": self.ran, "not_run": [s.to_json() for s in self.not_run],
                "critical_path": self.critical.to_json(), "notes": list(self.notes),
                "minor_findings": [f.to_json() for f in self.minor]}

    def to_json(self) -> dict[str, Any]:
        """``{"capture": {...}, "warnings": [...], "findings": [...]}``, findings in rank order."""
        return {"capture": self.capture_json(), "warnings": [w.to_json() for w in self.warnings],
                "findings": [f.to_json() for f in self.findings]}


BROWSER_QUERY = ("MATCH (t:Task)-[e]->(n)\n"
                 "WHERE t.capture_id = $cid AND t.tid IN $tids AND (n.tid IN $tids OR n.rid IN $rids)\n"
                 "RETURN t, e, n")


def browser_cypher(capture_id: str, tids: list[int], rids: list[str]) -> str:
    """What to paste into Neo4j Browser to see a finding: its tasks, resources and the edges between them."""
    return (f":param cid => {json.dumps(capture_id)}\n:param tids => {json.dumps(tids)}\n"
            f":param rids => {json.dumps(rids)}\n" + BROWSER_QUERY)
