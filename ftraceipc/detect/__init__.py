"""The detectors and the analysis built on them (layer ``detect``: above ``graph``, below ``report``;
it never imports ``report``).

- ``cypher/<id>.cypher``: one query per detector; ``ftraceipc/detect/detectors/<id>.py``: its words
  (``explain``: a row → title, explanation, suggestion). :data:`DETECTORS` lists them.
- :mod:`~ftraceipc.detect.finding`: the records, :class:`Finding` and :class:`Analysis`.
- :mod:`~ftraceipc.detect.run`: run detectors on a graph, rows → ranked findings.
- :mod:`~ftraceipc.detect.pipeline`: the one entry point, :func:`analyze` (capture or model →
  graph → detectors → scope → Analysis), used by every command and by the pictures.

Findings are ranked by ``critical_ns`` (the part of the traced command's critical path they account
for), then ``asleep_ns``.
"""

from __future__ import annotations

from ftraceipc.detect.detectors import DETECTORS, Detector
from ftraceipc.detect.finding import (BROWSER_QUERY, COMMON, EVERY_TASK, Analysis, CriticalPathInfo, Finding,
                                      browser_cypher, rank)
from ftraceipc.detect.run import detector_events, detector_needs, run_detectors, runnable, select
from ftraceipc.detect.pipeline import EMBEDDED, Backend, analyze, open_embedded, problems, scope

__all__ = ["DETECTORS", "Detector", "Finding", "Analysis", "CriticalPathInfo", "COMMON", "EVERY_TASK",
           "BROWSER_QUERY", "browser_cypher", "rank", "detector_events", "detector_needs", "run_detectors", "runnable", "select",
           "Backend", "EMBEDDED", "analyze", "open_embedded", "problems", "scope"]
