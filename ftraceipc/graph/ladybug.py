"""The embedded graph backend: one capture's IPC model in a LadybugDB database (issue #4).

    with LadybugGraph.open(default_path(capture)) as g:     # CAPTURE/graph.lbug
        g.load(build_model(capture))
        df = g.query("MATCH (w:Task)-[f:FLOWS]->(r:Task) RETURN w.tid AS w, r.tid AS r, f.bytes AS b")
        df = g.run_file("top_talkers", limit=5)

The graph (its tables and typed properties, and how a model becomes them) is defined once for
both backends in ftraceipc/graph/schema.py (``NODE_TABLES``, ``REL_TABLES``, ``graph_tables``);
meanings in docs/schema.md. Node tables have primary keys: ``Task.tid``, ``Resource.rid``,
``PathSegment.seq``, ``FtraceipcCapture.capture_id``.

A one-row node table ``FtraceipcGraph`` holds the SCHEMA_VERSION (ftraceipc.graph) the graph was
loaded with; ``schema_is_current`` compares it, and the CLI rebuilds a graph of another version.

The database holds one capture: ``Task.tid`` and ``Resource.rid`` are the primary keys. ``load``
drops and recreates the tables inside one transaction, so loading the same model again gives the
same graph, and a failed load leaves the previous graph; loading another capture's model into a
database that holds one is refused unless ``replace=True``. Loading is bulk ``COPY ... FROM`` of
Arrow tables (never row by row).

Ladybug's Cypher is not Neo4j's: lists are 1-based, ``sum()`` over no rows is null (use
``coalesce``), relationships may bind twice in one MATCH, labels are case-insensitive, ``ORDER BY x``
where ``x`` is both a node variable and an alias binds the node (an error), and a parameter given as
None has no type (``$x IS NULL OR t.k >= $x`` fails to bind: query files use real defaults, never
null). What ``query`` smooths over: INT128 results (``sum`` of integers) come back as int64, not
float; numpy scalars are accepted as parameters; a ``$parameter`` not given is our error (Ladybug
says "Cannot evaluate $_2_ as a valid limit number"). Null strings come back as NaN (pandas).
Loading goes through Arrow, not pandas: Ladybug's pandas scan crashes on nullable ``Int64`` columns.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import ladybug as lb

from ftraceipc.graph import DEFAULT_NAME, SCHEMA_VERSION, GraphError, Query, parameters_used, read_query
from ftraceipc.graph.schema import IDLE_TID, NODE_TABLES, REL_TABLES, graph_tables  # noqa: F401 (re-exported)
from ftraceipc.model import ipc

# One row: the SCHEMA_VERSION the graph was loaded with (not part of the model; not counted).
META_TABLE = "FtraceipcGraph"
META_DDL = f"CREATE NODE TABLE IF NOT EXISTS {META_TABLE}(name STRING, schema_version INT64, PRIMARY KEY (name))"
# The address space a database reserves (mmap; Ladybug default 8 TiB): a process that keeps a few dozen
# graphs open (a test module, a notebook) exhausts the 128 TiB of user address space at 8 TiB each.
MAX_DB_SIZE = 1 << 40  # 1 TiB: a capture graph is a few GiB at most
DIALECT = "ladybug"  # query files NAME.ladybug.cypher are this backend's variants of NAME.cypher


def _ddl() -> list[str]:
    out = []
    for name, cols in NODE_TABLES.items():
        body = ", ".join(f"{c} {t}" for c, t in cols)
        out.append(f"CREATE NODE TABLE IF NOT EXISTS {name}({body}, PRIMARY KEY ({cols[0][0]}))")
    for name, (a, b, cols) in REL_TABLES.items():
        body = "".join(f", {c} {t}" for c, t in cols)
        out.append(f"CREATE REL TABLE IF NOT EXISTS {name}(FROM {a} TO {b}{body})")
    return out


def _plain(v: Any) -> Any:
    """Parameters as Ladybug takes them: numpy scalars and arrays become Python values."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


class LadybugGraph:
    """One capture's graph in a LadybugDB database file (or in memory: path None or ``:memory:``)."""

    def __init__(self, path: str | os.PathLike | None = None, *, read_only: bool = False):
        if path is None or str(path) in ("", ":memory:"):
            self.path = None
        else:
            p = Path(path)
            self.path = p / DEFAULT_NAME if p.is_dir() else p  # a capture directory: CAPTURE/graph.lbug
        self.load_timings: dict[str, float] = {}
        self._others: list[LadybugGraph] = []  # more connections to the database (``connections``)
        try:
            self._db = lb.Database(str(self.path) if self.path is not None else ":memory:", read_only=read_only,
                                   max_db_size=MAX_DB_SIZE)
            self._conn = lb.Connection(self._db)
        except (RuntimeError, OSError) as e:
            raise GraphError(f"cannot open the graph database {self.path}: {e}") from e

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, *, read_only: bool = False) -> "LadybugGraph":
        """Open (creating it if needed) the database at ``path``; a directory means DIR/graph.lbug."""
        return cls(path, read_only=read_only)

    # context manager / lifetime ----------------------------------------------------------------------
    def __enter__(self) -> "LadybugGraph":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def connections(self, n: int) -> list["LadybugGraph"]:
        """This graph and ``n - 1`` more connections to its database, as graphs (made once, closed
        with this one): queries on them run at the same time in other threads (Ladybug releases
        the GIL while it works). Only this graph's ``close`` closes the database."""
        db = self._db
        if db is None:
            raise GraphError("the graph database is closed")
        while len(self._others) < n - 1:
            g = object.__new__(LadybugGraph)
            g.path, g.load_timings, g._others, g._db = self.path, {}, [], None
            try:
                g._conn = lb.Connection(db)
            except RuntimeError as e:
                raise GraphError(f"cannot open another connection to {self.path}: {e}") from e
            self._others.append(g)
        return [self, *self._others[:max(n - 1, 0)]]

    def close(self) -> None:
        """Close the connection and the database (releases the file lock). Safe to call again."""
        for g in getattr(self, "_others", []):
            g.close()
        self._others = []
        conn, db = getattr(self, "_conn", None), getattr(self, "_db", None)
        self._conn = self._db = None
        if conn is not None:
            conn.close()
        if db is not None:
            db.close()

    @property
    def closed(self) -> bool:
        return self._conn is None

    def _c(self) -> lb.Connection:
        if self._conn is None:
            raise GraphError("the graph database is closed")
        return self._conn

    # queries -----------------------------------------------------------------------------------------
    def _execute(self, cypher: str, params: dict[str, Any] | None = None):
        try:
            return self._c().execute(cypher, _plain(params or {}))
        except RuntimeError as e:
            raise GraphError(str(e), query=cypher) from e

    def query(self, cypher: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run one Cypher statement with ``$parameters`` and return its rows (a statement without
        result rows gives an empty frame; of several statements, the last one's rows). Raises
        GraphError with the database's message for a syntax, binder or runtime error, or when a
        ``$parameter`` of the text is not given (Ladybug's own message for that is misleading)."""
        params = dict(params or {})
        missing = parameters_used(cypher) - set(params)
        if missing:
            raise GraphError(f"missing query parameter(s): {', '.join('$' + m for m in sorted(missing))}",
                             query=cypher)
        res = self._execute(cypher, params)
        if isinstance(res, list):
            for r in res[:-1]:
                r.close()
            res = res[-1]
        try:
            types = res.get_column_data_types()
            df = res.get_as_df()
        except RuntimeError as e:
            raise GraphError(str(e), query=cypher) from e
        finally:
            res.close()
        for col, typ in zip(df.columns, types):  # sum() of integers: INT128, which pandas sees as float
            if typ in ("INT128", "UINT128") and df[col].dtype.kind == "f":
                v = df[col]
                df[col] = v.astype(np.int64) if v.notna().all() else v.astype("Int64")
        return df

    def run_file(self, query: str | os.PathLike | Query, **params: Any) -> pd.DataFrame:
        """Run a query file (a name in cypher/, a path or a Query) with its header's defaults for
        the parameters not given."""
        q = query if isinstance(query, Query) else read_query(query, DIALECT)
        return self.query(q.text, q.params(params))

    # schema and loading ------------------------------------------------------------------------------
    def tables(self) -> set[str]:
        return set(self.query("CALL show_tables() RETURN name")["name"])

    def schema_version(self) -> int | None:
        """The SCHEMA_VERSION the graph was loaded with; None for an empty database or one made before
        versions were stored."""
        if META_TABLE.lower() not in {t.lower() for t in self.tables()}:
            return None
        df = self.query(f"MATCH (m:{META_TABLE}) RETURN m.schema_version AS v")
        return int(df["v"].iloc[0]) if len(df) and pd.notna(df["v"].iloc[0]) else None

    def schema_is_current(self) -> bool:
        """True when the database was loaded by this version of the graph schema (SCHEMA_VERSION) and
        has all its tables; an older (or newer) ftraceipc's graph is not."""
        if self.schema_version() != SCHEMA_VERSION:
            return False
        have = {t.lower() for t in self.tables()}
        return all(t.lower() in have for t in [*NODE_TABLES, *REL_TABLES])

    def create_schema(self) -> None:
        """Create the node and rel tables that do not exist yet (nothing is dropped)."""
        for stmt in _ddl():
            self._execute(stmt)

    def drop_schema(self) -> None:
        """Drop our tables (rel tables first) with everything in them."""
        have = {t.lower() for t in self.tables()}
        for name in [*REL_TABLES, *NODE_TABLES]:
            if name.lower() in have:
                self._execute(f"DROP TABLE {name}")

    def _stamp_version(self, version: int = SCHEMA_VERSION) -> None:
        """Record the schema version (the table is made outside ``load``'s transaction: Ladybug
        loses its catalog when a rolled-back transaction dropped or made a table that was written)."""
        self._execute(f"MERGE (m:{META_TABLE} {{name: 'graph'}}) SET m.schema_version = $v", {"v": version})

    def capture_ids(self) -> set[str]:
        """The captures the database holds (normally at most one)."""
        have = {t.lower() for t in self.tables()}
        out: set[str] = set()
        for name in NODE_TABLES:
            if name.lower() in have:
                df = self.query(f"MATCH (n:{name}) RETURN DISTINCT n.capture_id AS c")
                out |= set(df["c"].dropna())
        return out

    def load(self, model: ipc.Model, *, replace: bool = False, segments: bool = True) -> dict[str, int]:
        """Replace the graph by ``model`` (bulk COPY, one transaction); returns rows per table.
        ``segments`` False: without the critical path's PathSegment nodes and ON_PATH edges (their
        tables empty; ``graph_tables``).

        Loading the capture the database already holds replaces it by the same graph; a database
        holding another capture is refused unless ``replace``. Seconds per step (Arrow conversion,
        schema, each COPY, commit, total) are left in ``self.load_timings``."""
        other = self.capture_ids() - {model.capture_id}
        if other and not replace:
            raise GraphError(f"{self.path or ':memory:'} holds capture {', '.join(sorted(other))}, "
                             f"not {model.capture_id}",
                             hint="open another database file, or load with replace=True")
        t0 = time.perf_counter()
        tables = graph_tables(model, segments=segments)
        timings: dict[str, float] = {"arrow": time.perf_counter() - t0}
        conn = self._c()
        self._execute(META_DDL)
        self._execute("BEGIN TRANSACTION")
        try:
            t = time.perf_counter()
            self.drop_schema()
            self.create_schema()
            self._stamp_version()
            timings["schema"] = time.perf_counter() - t
            for name, tbl in tables.items():  # node tables first (dict order)
                if tbl.num_rows:
                    t = time.perf_counter()
                    self._execute(f"COPY {name} FROM $t", {"t": tbl})
                    timings[name] = time.perf_counter() - t
            t = time.perf_counter()
            self._execute("COMMIT")
            timings["commit"] = time.perf_counter() - t
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except RuntimeError:
                pass  # Ladybug already rolled back after the failed statement
            raise
        timings["total"] = time.perf_counter() - t0
        self.load_timings = timings
        return {name: tbl.num_rows for name, tbl in tables.items()}

    def counts(self) -> dict[str, int]:
        """Rows per node and rel table."""
        out = {}
        for name in NODE_TABLES:
            out[name] = int(self.query(f"MATCH (n:{name}) RETURN count(n) AS n")["n"].iloc[0])
        for name in REL_TABLES:
            out[name] = int(self.query(f"MATCH ()-[r:{name}]->() RETURN count(r) AS n")["n"].iloc[0])
        return out

