"""The ranked findings of ``ftraceipc analyze`` as text (for people) or JSON (for programs)."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from typing import TextIO

from ftraceipc.detect import EVERY_TASK, Finding
from ftraceipc.model.export import human_ns, short_list
from ftraceipc.problems import NotRun, Problem


@dataclass
class Analysis:
    """What ``analyze`` found in one capture."""

    capture: str
    capture_id: str
    backend: str  # "embedded graph.lbug" or the Neo4j URI
    detectors: list[str]
    findings: list[Finding]
    scope: str  # which tasks the findings were kept for
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    not_run: list[NotRun] = field(default_factory=list)  # selected detectors the capture cannot feed
    warnings: list[Problem] = field(default_factory=list)  # what the capture is missing (ftraceipc.problems)

    @property
    def ran(self) -> list[str]:
        skipped = {s.detector for s in self.not_run}
        return [d for d in self.detectors if d not in skipped]


def capture_json(a: Analysis) -> dict:
    """The ``capture`` object of the JSON outputs."""
    return {"id": a.capture_id, "path": a.capture, "backend": a.backend, "scope": a.scope,
            "detectors_run": a.ran, "not_run": [s.to_json() for s in a.not_run]}


def write_json(a: Analysis, out: TextIO) -> None:
    """``{"capture": {id, path, backend, scope, detectors_run, not_run},
    "warnings": [{kind, message, ...}], "findings": [...]}``: findings costliest first (keys: rank,
    pattern, tasks, resources, count, lost_ns, explanation, suggestion, title, cypher and the
    detector's other columns in details); warnings as ``ftraceipc.problems.Problem.to_json``."""
    json.dump({"capture": capture_json(a), "warnings": [w.to_json() for w in a.warnings],
               "findings": [f.to_json() for f in a.findings]}, out, indent=1)
    out.write("\n")


def _wrap(label: str, text: str, width: int = 100) -> str:
    pad = " " * 5
    return textwrap.fill(text, width=width, initial_indent=f"{pad}{label:<6}", subsequent_indent=pad + " " * 6)


LIST_LIMIT = 12  # tids or rids listed per finding in the text; JSON lists them all


def write_text(a: Analysis, out: TextIO, *, cypher: bool = True, top: int = 3) -> None:
    """The findings, costliest first, at most ``top`` per pattern (0: all); a closing line counts
    the ones not shown. Long lists of tasks or resources are cut ("…and 681 more")."""
    n = len(a.findings)
    total = sum(f.lost_ns for f in a.findings)
    out.write(f"ftraceipc analyze {a.capture} (capture {a.capture_id}, {a.backend}): "
              f"{len(a.ran)} detector{'s' if len(a.ran) != 1 else ''} in {a.seconds:.1f} s, "
              f"{n} finding{'s' if n != 1 else ''} for {a.scope}")
    if a.scope != EVERY_TASK:
        out.write(" (--all-tasks: about every task on the machine)")
    out.write("\n")
    for note in a.notes:
        out.write(f"note: {note}\n")
    for s in a.not_run:
        out.write(f"not run: {s.detector} ({s.reason})\n")
    if a.warnings:
        out.write(f"warnings: {len(a.warnings)} (on stderr): the capture is missing data, findings may be too\n")
    if not n:
        if a.not_run:
            out.write(f"\nNo finding from the {len(a.ran)} detector{'s' if len(a.ran) != 1 else ''} that ran; "
                      f"{len(a.not_run)} could not run (see 'not run' above), so this capture cannot say "
                      "whether those patterns happened.\n")
        else:
            out.write("\nNo inefficient interaction found: no detector fired above its thresholds"
                      + (" in what the capture holds (it is missing data: see the warnings).\n" if a.warnings
                         else ".\n"))
        return
    out.write(f"Time lost, as the detectors count it: {human_ns(total)} (findings overlap: do not add them up)\n")
    shown: dict[str, int] = {}
    hidden: dict[str, int] = {}
    for f in a.findings:
        if top and shown.get(f.pattern, 0) >= top:
            hidden[f.pattern] = hidden.get(f.pattern, 0) + 1
            continue
        shown[f.pattern] = shown.get(f.pattern, 0) + 1
        out.write(f"\n#{f.rank} {f.pattern}: {f.title}\n")
        out.write(f"     {f.count:,} occurrences, {human_ns(f.lost_ns)} lost; tasks {short_list(f.tasks, LIST_LIMIT)}; "
                  f"resources {short_list(f.resources, LIST_LIMIT) or '-'}\n")
        out.write(_wrap("why", f.explanation) + "\n")
        out.write(_wrap("fix", f.suggestion) + "\n")
        if cypher and len(f.tasks) + len(f.resources) > LIST_LIMIT:
            out.write(f"     see it in Neo4j Browser: its query names {len(f.tasks):,} tasks, too many to print "
                      "here; --format json has it (key cypher)\n")
        elif cypher:
            out.write("     see it in Neo4j Browser (after 'ftraceipc load CAPTURE --neo4j URI'):\n")
            out.write("".join(f"       {ln}\n" for ln in f.cypher.splitlines()))
    if hidden:
        more = ", ".join(f"{n} {p}" for p, n in sorted(hidden.items(), key=lambda kv: -kv[1]))
        out.write(f"\nNot shown: {more} (at most {top} per pattern; --top 0 shows all, --format json lists all)\n")
