"""The ranked findings of an :class:`~ftraceipc.detect.finding.Analysis` as text (for people) or
JSON (for programs). Rendering only: the analysis is made by ``ftraceipc.detect.pipeline.analyze``."""

from __future__ import annotations

import json
import textwrap
from typing import TextIO

from ftraceipc.detect.finding import EVERY_TASK, Analysis, Finding
from ftraceipc.model.export import human_ns, short_list


def capture_json(a: Analysis) -> dict:
    """The ``capture`` object of the JSON outputs."""
    return a.capture_json()


def write_json(a: Analysis, out: TextIO) -> None:
    """``{"capture": {id, path, backend, scope, detectors_run, not_run, critical_path: {root, start_ts,
    end_ts, wall_ns}}, "warnings": [{kind, message, ...}], "findings": [...]}``: findings in rank
    order (keys: rank, pattern, tasks, resources, count, critical_ns, asleep_ns, explanation,
    suggestion, title, cypher and the detector's other columns in details); warnings as
    ``ftraceipc.problems.Problem.to_json``."""
    json.dump(a.to_json(), out, indent=1)
    out.write("\n")


def _wrap(label: str, text: str, width: int = 100) -> str:
    pad = " " * 5
    return textwrap.fill(text, width=width, initial_indent=f"{pad}{label:<6}", subsequent_indent=pad + " " * 6)


LIST_LIMIT = 12  # tids or rids listed per finding in the text; JSON lists them all


def time_words(f: Finding, wall_ns: int, *, short: bool = False) -> str:
    """"1.2 s on the critical path (41 % of the wall time), 3.4 s asleep" (the critical part only
    when the capture has a critical path; ``short``: "41 % of the critical path, 3.4 s asleep")."""
    asleep = f"{human_ns(f.asleep_ns)} asleep"
    if not wall_ns:
        return asleep
    pct = 100.0 * f.critical_ns / wall_ns
    share = "<1" if 0 < pct < 1 else f"{pct:.0f}"
    if short:
        return f"{share} % of the critical path, {asleep}"
    return f"{human_ns(f.critical_ns)} on the critical path ({share} % of the wall time), {asleep}"


def path_line(a: Analysis) -> str:
    """What the findings' critical_ns are a part of."""
    c = a.critical
    if c.root is None:
        return ("critical path: none (no traced command, or the capture lacks the scheduler events): findings "
                "are ranked by the time asleep")
    return (f"critical path of {c.root_label}: {human_ns(c.wall_ns)} of wall time; each finding says how much "
            "of it it accounts for")


def write_text(a: Analysis, out: TextIO, *, cypher: bool = True, top: int = 3) -> None:
    """The findings in rank order, at most ``top`` per pattern (0: all); a closing line counts
    the ones not shown. Long lists of tasks or resources are cut ("…and 681 more")."""
    n = len(a.findings)
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
    out.write(path_line(a) + "\n")
    shown: dict[str, int] = {}
    hidden: dict[str, int] = {}
    for f in a.findings:
        if top and shown.get(f.pattern, 0) >= top:
            hidden[f.pattern] = hidden.get(f.pattern, 0) + 1
            continue
        shown[f.pattern] = shown.get(f.pattern, 0) + 1
        out.write(f"\n#{f.rank} {f.pattern}: {f.title}\n")
        out.write(f"     {f.count:,} occurrences, {time_words(f, a.wall_ns)}; tasks {short_list(f.tasks, LIST_LIMIT)}; "
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
