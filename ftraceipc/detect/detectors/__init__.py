"""The detectors, one module each: ``ftraceipc/detect/detectors/<id>.py`` holds the words
(``explain``) of the query ``cypher/<id>.cypher``, whose header names that module back. To add a
detector: write ``cypher/<id>.cypher`` (header: purpose, ``// Needs:``, parameters with defaults,
every returned column, ``ftraceipc.detect.finding.COMMON`` first), a module ``<id>.py`` with ``ID``
and ``explain(row, names) -> (title, explanation, suggestion)``, and list it in ``MODULES``. A module
may also have ``refine(graph, rows, capture_id, params) -> rows``: what the explanation needs from
other queries of cypher/ (bottleneck: which of its upstream stalls are back-pressure)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from ftraceipc.detect.detectors import (bottleneck, chatty_pingpong, cross_cpu_wakeup, full_buffer_stall,
                                        thundering_herd, wait_chain, wait_cycle, wake_then_block,
                                        wakeup_latency)
from ftraceipc.detect.words import Names

# The order detectors run in (and are listed in); findings are ranked afterwards, whatever the order.
MODULES: tuple[ModuleType, ...] = (bottleneck, full_buffer_stall, wake_then_block, thundering_herd,
                                   chatty_pingpong, wait_chain, wait_cycle, cross_cpu_wakeup, wakeup_latency)


@dataclass(frozen=True)
class Detector:
    """A detector: its id (= the name of its query file in cypher/ and of its module here) and the
    function that explains one row of its query."""

    id: str
    explain: Callable[[dict, Names], tuple[str, str, str]]
    module: str = ""
    # refine(graph, rows, capture_id, params) -> rows: the rows (plain values) completed or narrowed
    # by other queries before they are explained; params: every detector's overrides
    refine: Callable[[Any, list[dict], str, dict[str, dict[str, Any]]], list[dict]] | None = None

    @property
    def query(self) -> Path:
        """Its Cypher file (the Neo4j text; ``NAME.ladybug.cypher`` beside it when Ladybug needs other words)."""
        from ftraceipc.graph import query_path

        return query_path(self.id)


DETECTORS: dict[str, Detector] = {m.ID: Detector(m.ID, m.explain, m.__name__, getattr(m, "refine", None))
                                   for m in MODULES}

__all__ = ["DETECTORS", "Detector", "MODULES"]
