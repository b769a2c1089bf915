"""The embedded graph backend: one capture's IPC model in a LadybugDB database (issue #4).

    with LadybugGraph.open(default_path(capture)) as g:     # CAPTURE/graph.lbug
        g.load(build_model(capture))
        df = g.query("MATCH (w:Task)-[f:FLOWS]->(r:Task) RETURN w.tid AS w, r.tid AS r, f.bytes AS b")
        df = g.run_file("top_talkers", limit=5)

The graph (property types in ``NODE_TABLES``/``REL_TABLES``; meanings in docs/schema.md):

- ``(:Task {tid})``, ``(:Resource {rid})``, both with ``capture_id``;
- ``(:Task)-[:WRITES|READS]->(:Resource)``, ``(:Task)-[:BLOCKED_ON]->(:Resource)``,
  ``(:Task)-[:WAKES]->(:Task)``, ``(:Task)-[:FLOWS]->(:Task)``, ``(:Task)-[:WAITS_FOR]->(:Task)``
  (sleeper -> the task that ended the sleep), ``(:Resource)-[:PEER]->(:Resource)``
  (one PEER per ``peer`` column value: a connected pair has one each way).

What differs from the model's tables:

- BLOCKED_ON rows with a null rid (sleeps on no known resource: wait4, futex, a timer, a non-IPC
  fd) cannot be edges to a Resource. They become Task properties ``blocked_unattributed_episodes``,
  ``blocked_unattributed_ns`` and ``blocked_unattributed_max_ns`` (0 for a task with none), so a
  task's blocked time still adds up: ``t.blocked_unattributed_ns + coalesce(sum(b.blocked_ns), 0)``.
  Their ``ops`` is dropped (it is always empty or non-IPC syscalls).
- WAKES with a null ``via`` are ordinary edges with a null ``via`` property. WAKES are one edge per
  (waker, wakee, via), so a pair of tasks may have parallel WAKES edges, as in the model.
- An endpoint that no task/resource row lists still gets a node, so that no edge is dropped: tid 0
  (a CPU's idle task, the waker of wakeups from interrupts on an idle CPU) is ``pid 0, comm
  '<idle>'``; any other tid gets ``pid -1, ppid -1`` and null name and times; a rid gets its kind
  from its prefix (``pipe``, ``fifo``, ``unix``), its inode from the digits after ``:`` and no
  ``path``/``peer``. Resources have an ``evidence`` list as in the model (empty for such a node).
- WRITES/READS leave out the ``syscalls`` list (it doubles the load time of 1 M edges); episode
  rows (``--episodes``) are not loaded.

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
import pyarrow as pa

import ladybug as lb

from ftraceipc.graph import DEFAULT_NAME, SCHEMA_VERSION, GraphError, Query, parameters_used, read_query
from ftraceipc.model import ipc

# (name, Ladybug type); the first column of a node table is its primary key.
NODE_TABLES: dict[str, list[tuple[str, str]]] = {
    "Task": [("tid", "INT64"), ("pid", "INT64"), ("comm", "STRING"), ("comms", "STRING[]"), ("ppid", "INT64"),
             ("first_ts", "INT64"), ("last_ts", "INT64"), ("tracer", "BOOLEAN"),
             ("blocked_unattributed_episodes", "INT64"), ("blocked_unattributed_ns", "INT64"),
             ("blocked_unattributed_max_ns", "INT64"), ("capture_id", "STRING")],
    "Resource": [("rid", "STRING"), ("kind", "STRING"), ("inode", "INT64"), ("path", "STRING"),
                 ("peer", "STRING"), ("evidence", "STRING[]"), ("capture_id", "STRING")],
}
# name -> (from table, to table, properties)
REL_TABLES: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "WRITES": ("Task", "Resource", [("calls", "INT64"), ("bytes", "INT64"), ("first_ts", "INT64"),
                                    ("last_ts", "INT64")]),
    "READS": ("Task", "Resource", [("calls", "INT64"), ("bytes", "INT64"), ("first_ts", "INT64"),
                                   ("last_ts", "INT64")]),
    "BLOCKED_ON": ("Task", "Resource", [("episodes", "INT64"), ("blocked_ns", "INT64"), ("max_ns", "INT64"),
                                        ("ops", "STRING[]"), ("read_episodes", "INT64"), ("read_ns", "INT64"),
                                        ("write_episodes", "INT64"), ("write_ns", "INT64")]),
    "WAKES": ("Task", "Task", [("via", "STRING"), ("wakeups", "INT64"), ("wake_to_run_ns", "INT64"),
                               ("max_wake_to_run_ns", "INT64"), ("cross_cpu", "INT64")]),
    "FLOWS": ("Task", "Task", [("via", "STRING"), ("read_rid", "STRING"), ("bytes", "INT64"),
                               ("messages", "INT64")]),
    "WAITS_FOR": ("Task", "Task", [("via", "STRING"), ("episodes", "INT64"), ("blocked_ns", "INT64"),
                                   ("max_ns", "INT64"), ("top", "BOOLEAN"), ("consumed", "INT64"), ("turns", "INT64")]),
    "PEER": ("Resource", "Resource", []),
}
_ARROW = {"INT64": pa.int64(), "STRING": pa.string(), "BOOLEAN": pa.bool_(), "STRING[]": pa.list_(pa.string())}
# One row: the SCHEMA_VERSION the graph was loaded with (not part of the model; not counted).
META_TABLE = "FtraceipcGraph"
META_DDL = f"CREATE NODE TABLE IF NOT EXISTS {META_TABLE}(name STRING, schema_version INT64, PRIMARY KEY (name))"
IDLE_TID = 0
DIALECT = "ladybug"  # query files NAME.ladybug.cypher are this backend's variants of NAME.cypher


def _array(s: pd.Series, typ: str) -> pa.Array:
    """One column as an Arrow array of the table's type (nulls kept, no Python loop for scalars)."""
    t = _ARROW[typ]
    if typ == "STRING[]":
        return pa.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else list(v) for v in s], t)
    if typ == "INT64":
        if s.dtype.kind in "iu":
            return pa.array(s.to_numpy(dtype=np.int64, copy=False), t)
        return pa.array(pd.to_numeric(s).astype("Int64"), t, from_pandas=True)
    if typ == "BOOLEAN":
        return pa.array(s.astype("boolean"), t, from_pandas=True)
    return pa.array(s.astype(object), t, from_pandas=True)


def _table(df: pd.DataFrame, cols: list[tuple[str, str]], src_dst: tuple[str, str] | None = None,
           types: tuple[str, str] = ("INT64", "INT64")) -> pa.Table:
    """An Arrow table for COPY: (for a rel table: ``from``, ``to``, then) the columns in order."""
    arrays, names = [], []
    if src_dst is not None:
        arrays += [_array(df[src_dst[0]], types[0]), _array(df[src_dst[1]], types[1])]
        names += ["from", "to"]
    arrays += [_array(df[c], t) for c, t in cols]
    names += [c for c, _ in cols]
    return pa.Table.from_arrays(arrays, names=names)


def _key_type(table: str) -> str:
    return NODE_TABLES[table][0][1]


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
        try:
            self._db = lb.Database(str(self.path) if self.path is not None else ":memory:", read_only=read_only)
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

    def close(self) -> None:
        """Close the connection and the database (releases the file lock). Safe to call again."""
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

    def load(self, model: ipc.Model, *, replace: bool = False) -> dict[str, int]:
        """Replace the graph by ``model`` (bulk COPY, one transaction); returns rows per table.

        Loading the capture the database already holds replaces it by the same graph; a database
        holding another capture is refused unless ``replace``. Seconds per step (Arrow conversion,
        schema, each COPY, commit, total) are left in ``self.load_timings``."""
        other = self.capture_ids() - {model.capture_id}
        if other and not replace:
            raise GraphError(f"{self.path or ':memory:'} holds capture {', '.join(sorted(other))}, "
                             f"not {model.capture_id}",
                             hint="open another database file, or load with replace=True")
        t0 = time.perf_counter()
        tables = _arrow_tables(model)
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


def _arrow_tables(model: ipc.Model) -> dict[str, pa.Table]:
    """The model as one Arrow table per node/rel table, in load order (nodes first)."""
    cid = model.capture_id
    tasks = model.tasks
    res = model.resources
    io = model.io
    blocked = model.blocked
    on_res = blocked[blocked["rid"].notna()]
    unattr = blocked[blocked["rid"].isna()].groupby("tid").agg(
        blocked_unattributed_episodes=("episodes", "sum"), blocked_unattributed_ns=("blocked_ns", "sum"),
        blocked_unattributed_max_ns=("max_ns", "max"))
    wakes, flows, waits = model.wakes, model.flows, model.waits
    peers = res[res["peer"].notna()]

    # tasks: the model's, plus a node for every tid an edge names that the model does not list
    tids = pd.unique(pd.concat([io["tid"], blocked["tid"], wakes["waker"], wakes["wakee"], flows["writer"],
                                flows["reader"], waits["waiter"], waits["waker"]], ignore_index=True).astype(np.int64))
    extra = np.setdiff1d(tids, tasks["tid"].to_numpy(dtype=np.int64))
    t = tasks[ipc.TASK_COLUMNS]
    if len(extra):
        idle = extra == IDLE_TID
        t = pd.concat([t, pd.DataFrame({
            "tid": extra, "pid": np.where(idle, 0, -1), "comm": np.where(idle, "<idle>", None).astype(object),
            "comms": [["<idle>"] if i else [] for i in idle], "ppid": -1, "first_ts": None, "last_ts": None,
            "tracer": False})], ignore_index=True)
    t = t.join(unattr, on="tid")
    for c in ("blocked_unattributed_episodes", "blocked_unattributed_ns", "blocked_unattributed_max_ns"):
        t[c] = t[c].fillna(0).astype(np.int64)
    t = t.assign(capture_id=cid)

    # resources: the model's, plus a node for every rid an edge or peer names that it does not list
    rids = pd.unique(pd.concat([io["rid"], on_res["rid"], peers["peer"]], ignore_index=True).astype(object))
    missing = sorted(set(rids) - set(res["rid"].astype(object)))
    r = res[ipc.RESOURCE_COLUMNS]
    if missing:
        kinds = [m.split(":", 1)[0] for m in missing]
        inodes = [int(m.split(":", 1)[1]) if m.split(":", 1)[1].isdigit() else None for m in missing]
        r = pd.concat([r.astype(object), pd.DataFrame({
            "rid": missing, "kind": kinds, "inode": pd.array(inodes, dtype="Int64"), "path": None, "peer": None,
            "evidence": [[] for _ in missing]})], ignore_index=True)
    r = r.assign(capture_id=cid)

    out = {
        "Task": _table(t, NODE_TABLES["Task"]),
        "Resource": _table(r, NODE_TABLES["Resource"]),
    }
    rkey, tkey = _key_type("Resource"), _key_type("Task")
    for typ in ("WRITES", "READS"):
        out[typ] = _table(io[io["type"] == typ], REL_TABLES[typ][2], ("tid", "rid"), (tkey, rkey))
    out["BLOCKED_ON"] = _table(on_res, REL_TABLES["BLOCKED_ON"][2], ("tid", "rid"), (tkey, rkey))
    out["WAKES"] = _table(wakes, REL_TABLES["WAKES"][2], ("waker", "wakee"), (tkey, tkey))
    out["FLOWS"] = _table(flows, REL_TABLES["FLOWS"][2], ("writer", "reader"), (tkey, tkey))
    out["WAITS_FOR"] = _table(waits, REL_TABLES["WAITS_FOR"][2], ("waiter", "waker"), (tkey, tkey))
    out["PEER"] = _table(peers, [], ("rid", "peer"), (rkey, rkey))
    return out
