"""Graph backends: the IPC model (ftraceipc.model.ipc) loaded into a graph database and queried
with Cypher (issue #4).

- ``LadybugGraph`` (ftraceipc.graph.ladybug): the embedded backend, LadybugDB (a Kùzu fork), one
  database file per capture, by default ``CAPTURE/graph.lbug`` (``default_path``).
- ``Neo4jGraph`` (ftraceipc.graph.neo4j): a Neo4j 5 server, several captures per database (keys
  include ``capture_id``), the same graph as the embedded backend.
- ``ftraceipc.graph.schema``: the graph's tables and typed properties, once for both backends, and
  the conversion of a model into them.
- ``cypher/``: the Neo4j constraints and indexes (``schema.cypher``) and the query files. A query
  file starts with a ``//`` header giving its purpose, its parameters with their defaults and the
  columns it returns; ``read_query`` reads it and ``LadybugGraph.run_file`` runs it with the
  defaults filled in.

Every backend raises ``GraphError`` (message: the database's own) for a query it refuses, a load it
cannot do or a database it cannot open.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftraceipc.errors import FtraceIPCError

DEFAULT_NAME = "graph.lbug"


def _cypher_dir() -> Path:
    """Where the query library lives, the one lookup for every install kind: a wheel or
    ``pip install .`` ships the repository's top-level ``cypher/`` as ``ftraceipc/cypher/``
    (pyproject.toml maps the package ``ftraceipc.cypher`` to ``cypher/``); an editable install or a
    source tree on PYTHONPATH has it next to the package, at the repository's top level."""
    package = Path(__file__).resolve().parents[1]
    shipped = package / "cypher"
    return shipped if shipped.is_dir() else package.parent / "cypher"


CYPHER_DIR = _cypher_dir()


class GraphError(FtraceIPCError):
    """A graph database refused a query, a load or an open. ``message`` is the database's own text;
    ``query`` the Cypher text concerned (None for an open)."""

    exit_code = 5

    def __init__(self, message: str, *, query: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.query = query


# The graph's schema version: raise it whenever what a load writes changes (tables, properties, their
# meaning). A database stores the version it was built with; an embedded graph of another version is rebuilt.
SCHEMA_VERSION = 10  # 3: the critical path (PathSegment, ON_PATH, crit_* properties), FtraceipcCapture in both;
#                    4: BLOCKED_ON read_*/write_*, WAITS_FOR consumed/turns; Resource capacity;
#                    5: BLOCKED_ON crit_room_ns; 6: Task crit_running_sys_ns;
#                    7: the same tables, rebuilt: a reused sock address no longer joins two sockets;
#                    8: WRITES/READS wakes, wake_ns; 9: WAITS_FOR top by the critical path first;
#                    10: Task crit_segments, crit_reasons, crit_reason_ns (bottleneck reads no PathSegment)


def default_path(capture: str | os.PathLike) -> Path:
    """Where a capture's embedded graph lives: inside the capture directory."""
    return Path(capture) / DEFAULT_NAME


# Query files --------------------------------------------------------------------------------------------
_PARAM_LINE = re.compile(r"^//\s+\$([A-Za-z_]\w*)\s*=\s*(.+?)(?:\s{2,}.*)?$")
_STRIP = re.compile(r"//[^\n]*|/\*.*?\*/|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`", re.S)
_PARAM_USE = re.compile(r"\$([A-Za-z_]\w*)")


@dataclass
class Query:
    """A Cypher query file: its text and the defaults of its parameters (from its header)."""

    name: str
    text: str
    defaults: dict[str, Any] = field(default_factory=dict)

    def params(self, given: dict[str, Any] | None = None) -> dict[str, Any]:
        out = dict(self.defaults)
        out.update(given or {})
        return out


def query_path(name_or_path: str | os.PathLike, dialect: str | None = None) -> Path:
    """The file of a query: a path as given, or a name in ``cypher/`` (``"top_talkers"``), whose
    ``NAME.DIALECT.cypher`` variant is preferred when ``dialect`` (``"ladybug"``) is given and one
    exists. ``NAME.cypher`` is the text for Neo4j (and Neo4j Browser)."""
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        if dialect:
            v = CYPHER_DIR / f"{p.name}.{dialect}.cypher"
            if v.exists():
                return v
        p = CYPHER_DIR / f"{p.name}.cypher"
    return p


def read_query(name_or_path: str | os.PathLike, dialect: str | None = None) -> Query:
    """A query file by path, or by name in ``cypher/`` (``"top_talkers"``; ``query_path``).

    Header parameter lines have the form ``//   $name = VALUE   free text`` (VALUE is JSON: a
    number, a "string", null, true/false; two spaces end it)."""
    p = query_path(name_or_path, dialect)
    try:
        text = p.read_text()
    except OSError as e:
        raise GraphError(f"cannot read query file {p}: {e.strerror}",
                         hint="give a path to a .cypher file or a name from cypher/") from None
    return Query(p.name.split(".", 1)[0], text, header_defaults(text, str(p)))


def header_defaults(text: str, source: str = "the query") -> dict[str, Any]:
    """The parameter defaults of a query file's ``//`` header (``//   $name = VALUE   free text``)."""
    defaults = {}
    for line in text.splitlines():
        if not line.startswith("//"):
            break
        m = _PARAM_LINE.match(line.rstrip())
        if m:
            try:
                defaults[m.group(1)] = json.loads(m.group(2))
            except ValueError as e:
                raise GraphError(f"{source}: the default of ${m.group(1)} is not JSON: {m.group(2)!r}") from e
    return defaults


def parameters_used(cypher: str) -> set[str]:
    """The ``$names`` a Cypher text uses (outside comments and string literals)."""
    return set(_PARAM_USE.findall(_STRIP.sub(" ", cypher)))


def __getattr__(name: str):  # the backends import their driver only when asked for
    if name == "LadybugGraph":
        from ftraceipc.graph.ladybug import LadybugGraph

        return LadybugGraph
    if name == "Neo4jGraph":
        from ftraceipc.graph.neo4j import Neo4jGraph

        return Neo4jGraph
    raise AttributeError(name)


__all__ = ["SCHEMA_VERSION", "GraphError", "LadybugGraph", "Neo4jGraph", "Query", "default_path", "read_query", "header_defaults", "query_path", "parameters_used"]
