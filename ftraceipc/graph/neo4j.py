"""The Neo4j backend: IPC models of one or more captures in a Neo4j 5 server (issue #4).

    with Neo4jGraph.connect("bolt://127.0.0.1:7687", "neo4j", password) as g:
        g.create_schema()                       # cypher/schema.cypher (constraints and indexes)
        g.load(build_model(capture))            # batched UNWIND writes
        df = g.query("MATCH (t:Task) RETURN count(t) AS n")
        df = g.run_file("top_talkers", limit=5)

Credentials: the arguments, else the environment (``NEO4J_URI``, ``NEO4J_USER``, ``NEO4J_PASSWORD``),
else the ``[neo4j]`` table of the config file (``$FTRACEIPC_CONFIG`` or
``~/.config/ftraceipc/config.toml``, see ftraceipc.config), else user ``neo4j``; a password is never
printed or put in an error message.

The graph is the one of the embedded backend: both are defined once in ftraceipc/graph/schema.py
(``NODE_TABLES``, ``REL_TABLES``) and built by the same code (``graph_tables``): same labels,
relationship types and properties, same mapping choices (null-rid sleeps as
``Task.blocked_unattributed_*``, a node for every endpoint no row lists, tid 0 as ``<idle>``,
WRITES/READS without ``syscalls``, the critical path as PathSegment nodes), so the query files of
cypher/ return the same rows on both backends for the same capture. A null property is simply
absent in Neo4j (it reads back as null, as on Ladybug).

Several captures may share one database: every node and relationship has ``capture_id``; node keys
are (capture_id, tid), (capture_id, rid) and (capture_id, seq) (composite uniqueness constraints of
schema.cypher).
The query files assume one capture per database; with several, filter on ``capture_id``.

Loading (``load``), the fast path for a server shared by several captures (no APOC, no admin import):

1. ``delete_capture``: the capture's relationships, then its nodes, in transactions of ``batch``
   rows (``CALL {...} IN TRANSACTIONS``; relationships first, so that no transaction holds a node's
   whole neighbourhood, which can exceed the server's transaction memory).
2. Nodes are CREATEd (the capture was just deleted: no MERGE, no index probe per row), in batches
   of ``batch`` rows by ``writers`` sessions in parallel, column-wise (``UNWIND range(0,
   size($tid) - 1) AS i CREATE (n:Task {tid: $tid[i], ...})``), each batch returning its nodes'
   internal ids. The uniqueness constraints of schema.cypher still hold: a second load of the same
   capture running at the same time fails instead of doubling the nodes.
3. Relationships find their ends by those ids (``MATCH (a) WHERE id(a) = $_src[i]``: a NodeByIdSeek,
   not a composite-index seek), are sorted by start node and written in batches of ``batch`` rows
   by ``writers`` sessions in parallel, each session a contiguous run of start nodes. Every batch
   checks that it created as many relationships as it was given.

A ``(:FtraceipcCapture {capture_id, schema_version, wall_ns, crit_root, ...})`` node is written when
a load completes (SCHEMA_VERSION of ftraceipc.graph): ``capture_ids`` lists only the captures loaded completely with
this schema, so ``analyze --neo4j`` loads one made by another version (or half-loaded) again.
So loading the same capture again gives the same graph, and parallel WAKES edges (one per waker,
wakee, via) stay parallel. A load that fails half-way leaves a partial capture that the next load
of it deletes first: load it again. Measured speeds: BENCHMARKS.md section 5.

Errors are GraphError with one line: "cannot reach Neo4j at URI: ...; is it running?", the
credentials refused, a server older than 5, or the server's own message for a Cypher error.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ftraceipc.graph import CYPHER_DIR, SCHEMA_VERSION, GraphError, Query, parameters_used, read_query
from ftraceipc.graph import schema
from ftraceipc.model import ipc

# One node per capture loaded completely, with the SCHEMA_VERSION it was loaded with (written last by
# ``load``, removed first by ``delete_capture``): capture_ids() lists only those of this version.
CAPTURE_LABEL = schema.CAPTURE_TABLE
# the labels CREATEd by a load, with their key (the capture node is MERGEd last)
NODE_KEYS = {label: key for label, key in schema.NODE_KEYS.items() if label != CAPTURE_LABEL}
# rel type -> (from label, to label)
REL_ENDS = dict(schema.REL_ENDS)
DEFAULT_USER = "neo4j"
SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


def first_line(msg: str) -> str:
    """The first non-empty line of a (multi-line) database message."""
    for ln in str(msg).splitlines():
        if ln.strip():
            return ln.strip()
    return str(msg).strip()


def one_line(msg: object) -> str:
    """A (multi-line) driver message on one line."""
    return " ".join(ln.strip() for ln in str(msg).splitlines() if ln.strip()).rstrip(":")


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def schema_statements() -> list[str]:
    """The statements of cypher/schema.cypher (comments dropped, split on ';')."""
    text = (CYPHER_DIR / "schema.cypher").read_text()
    body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("//"))
    return [s.strip() for s in body.split(";") if s.strip()]


def _node_cypher(label: str, props: list[str]) -> str:
    """CREATE one node per row from column-wise lists (one list per property: packing is cheaper
    than one map per row); returns each node's key and internal id."""
    key = NODE_KEYS[label]
    body = ", ".join(["capture_id: $cid"] + [f"{p}: ${p}[i]" for p in props if p != "capture_id"])
    return (f"UNWIND range(0, size(${key}) - 1) AS i CREATE (n:{label} {{{body}}}) "
            f"RETURN ${key}[i] AS k, id(n) AS id")


SRC, DST = "_src", "_dst"  # parameter names of the end nodes' internal ids (not property names)


def _rel_cypher(typ: str, props: list[str]) -> str:
    """CREATE one relationship per row between nodes given by internal id (``$_src``, ``$_dst``)."""
    body = ", ".join(["capture_id: $cid"] + [f"{p}: ${p}[i]" for p in props])
    return (f"UNWIND range(0, size(${SRC}) - 1) AS i MATCH (a) WHERE id(a) = ${SRC}[i] "
            f"MATCH (b) WHERE id(b) = ${DST}[i] CREATE (a)-[:{typ} {{{body}}}]->(b)")


# what tells apart the relationships of one type between the same two nodes (besides the ends)
REL_KEYS: dict[str, tuple[str, ...]] = {"WAKES": ("via",), "FLOWS": ("via", "read_rid"), "WAITS_FOR": ("via",)}
SYNC_TX_ROWS = 200_000  # a sync of at most this many rows is one transaction


@dataclass
class SyncState:
    """What ``Neo4jGraph.sync`` wrote of a capture: per table, each row's values by its key (None:
    the rows could not be keyed, the next sync loads)."""

    capture_id: str
    rows: dict[str, dict[tuple, tuple]] | None


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _listed(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _keyed_rows(name: str, tbl) -> dict[Any, tuple] | None:
    """A table's rows as key -> values (lists as tuples); None when two rows share a key."""
    cols = [[_hashable(v) for v in _column(tbl.column(c))] for c in tbl.column_names]
    names = tbl.column_names
    if name in NODE_KEYS:
        keys = cols[names.index(NODE_KEYS[name])]
    else:
        parts = [cols[names.index(c)] for c in ("from", "to", *REL_KEYS.get(name, ()))]
        keys = list(zip(*parts)) if parts and tbl.num_rows else []
    rows = dict(zip(keys, zip(*cols))) if tbl.num_rows else {}
    return rows if len(rows) == tbl.num_rows else None


def _column(col) -> list:
    """An Arrow column as a Python list (numpy's tolist is much faster than Arrow's for numbers)."""
    import pyarrow as pa

    t = col.type
    if col.null_count == 0 and (pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_floating(t)):
        return col.to_numpy().tolist()
    return col.to_pylist()


class Neo4jGraph:
    """A connection to a Neo4j 5 server (a context manager; ``close`` is safe to call twice)."""

    def __init__(self, uri: str | None = None, user: str | None = None, password: str | None = None, *,
                 database: str | None = None, connection_timeout: float = 10.0, writers: int = 2):
        try:
            import neo4j
        except ImportError as e:  # pragma: no cover
            raise GraphError("the neo4j driver is not installed", hint="pip install neo4j") from e
        from ftraceipc.config import neo4j_settings

        self._neo4j = neo4j
        self._driver = None
        settings = neo4j_settings(uri, user, password)
        self.uri = settings.uri
        self.user = settings.user or DEFAULT_USER
        password = settings.password
        self.database = database
        self.load_timings: dict[str, float] = {}
        if writers < 1:
            raise GraphError(f"writers must be >= 1 (got {writers})")
        self.writers = writers
        self.server_version: str | None = None
        if not self.uri:
            raise GraphError("no Neo4j URI given",
                             hint="pass one (bolt://HOST:7687), set NEO4J_URI or uri in [neo4j] of the config file")
        scheme = self.uri.split("://", 1)[0] if "://" in self.uri else ""
        if scheme not in SCHEMES:
            raise GraphError(f"bad Neo4j URI {self.uri!r}: the scheme must be one of {', '.join(SCHEMES)}")
        if password is None:
            raise GraphError(f"no password for Neo4j user {self.user}",
                             hint="set NEO4J_PASSWORD or password in [neo4j] of ~/.config/ftraceipc/config.toml")
        ex = neo4j.exceptions
        try:
            self._driver = neo4j.GraphDatabase.driver(self.uri, auth=(self.user, password),
                                                      connection_timeout=connection_timeout,
                                                      max_transaction_retry_time=15.0,
                                                      notifications_min_severity="OFF")
            self._driver.verify_connectivity()
            rows = self._run("CALL dbms.components() YIELD name, versions RETURN name, versions")
        except GraphError:
            self.close()
            raise
        except ex.AuthError as e:
            self.close()
            raise GraphError(f"Neo4j at {self.uri} refused the credentials of user {self.user}: "
                             f"{first_line(e.message or e)}") from None
        except (ex.ServiceUnavailable, ex.SessionExpired, OSError) as e:
            self.close()
            raise GraphError(f"cannot reach Neo4j at {self.uri}: {one_line(e)}; is it running?") from None
        except (ex.ConfigurationError, ValueError) as e:
            self.close()
            raise GraphError(f"bad Neo4j URI {self.uri!r}: {first_line(e)}") from None
        except ex.Neo4jError as e:
            self.close()
            raise GraphError(f"Neo4j at {self.uri}: {first_line(e.message or e)}") from None
        except ex.DriverError as e:
            self.close()
            raise GraphError(f"cannot reach Neo4j at {self.uri}: {one_line(e)}; is it running?") from None
        versions = [v for name, vs in rows for v in (vs or []) if name == "Neo4j Kernel"] or \
                   [v for _n, vs in rows for v in (vs or [])]
        self.server_version = versions[0] if versions else None
        try:
            major = int(str(self.server_version).split(".")[0])
        except ValueError:
            major = 0
        if major < 5:
            self.close()
            raise GraphError(f"Neo4j at {self.uri} is version {self.server_version}; ftraceipc needs Neo4j 5 or later")

    @classmethod
    def connect(cls, uri: str | None = None, user: str | None = None, password: str | None = None,
                **kw) -> "Neo4jGraph":
        """Connect and check the server (reachable, credentials accepted, version >= 5)."""
        return cls(uri, user, password, **kw)

    def __enter__(self) -> "Neo4jGraph":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        d, self._driver = self._driver, None
        if d is not None:
            try:
                d.close()
            except Exception:  # noqa: BLE001 - closing must not fail
                pass

    @property
    def closed(self) -> bool:
        return self._driver is None

    def _d(self):
        if self._driver is None:
            raise GraphError("the Neo4j connection is closed")
        return self._driver

    def _session(self):
        return self._d().session(database=self.database) if self.database else self._d().session()

    def _run(self, cypher: str, params: dict[str, Any] | None = None) -> list:
        """Auto-commit run (allows CALL {...} IN TRANSACTIONS and schema commands): the records."""
        with self._session() as s:
            return list(s.run(cypher, _plain(params or {})))

    def _wrap(self, e: Exception, cypher: str | None) -> GraphError:
        ex = self._neo4j.exceptions
        if isinstance(e, ex.AuthError):
            return GraphError(f"Neo4j at {self.uri} refused the credentials of user {self.user}: "
                              f"{first_line(e.message or e)}", query=cypher)
        if isinstance(e, (ex.ServiceUnavailable, ex.SessionExpired)):
            return GraphError(f"cannot reach Neo4j at {self.uri}: {one_line(e)}; is it running?", query=cypher)
        if isinstance(e, ex.Neo4jError):
            return GraphError(first_line(e.message or e), query=cypher)
        return GraphError(first_line(e), query=cypher)

    # queries ---------------------------------------------------------------------------------------------
    def query(self, cypher: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run one Cypher statement with ``$parameters``; its rows as a DataFrame (columns in the
        RETURN order). GraphError with the server's message (first line) on any error."""
        params = dict(params or {})
        missing = parameters_used(cypher) - set(params)
        if missing:
            raise GraphError(f"missing query parameter(s): {', '.join('$' + m for m in sorted(missing))}",
                             query=cypher)
        try:
            with self._session() as s:
                res = s.run(cypher, _plain(params))
                keys = list(res.keys())
                rows = [r.values() for r in res]
        except GraphError:
            raise
        except (self._neo4j.exceptions.Neo4jError, self._neo4j.exceptions.DriverError, OSError) as e:
            raise self._wrap(e, cypher) from None
        if not rows:
            return pd.DataFrame({k: pd.Series(dtype=object) for k in keys}, columns=keys)
        return pd.DataFrame(rows, columns=keys)

    def run_file(self, query: str | os.PathLike | Query, **params: Any) -> pd.DataFrame:
        q = query if isinstance(query, Query) else read_query(query)
        return self.query(q.text, q.params(params))

    # schema and loading ----------------------------------------------------------------------------------
    def create_schema(self) -> None:
        """Run cypher/schema.cypher (every statement is IF NOT EXISTS)."""
        for stmt in schema_statements():
            self._exec(stmt)

    def _exec(self, cypher: str, params: dict[str, Any] | None = None) -> list:
        try:
            return self._run(cypher, params)
        except (self._neo4j.exceptions.Neo4jError, self._neo4j.exceptions.DriverError, OSError) as e:
            raise self._wrap(e, cypher) from None

    def capture_ids(self) -> set[str]:
        """The captures loaded completely with this graph schema (SCHEMA_VERSION). A capture loaded
        by another version of ftraceipc, or whose load failed half-way, is not one: load it again."""
        rows = self._exec(f"MATCH (m:{CAPTURE_LABEL}) WHERE m.schema_version = $v RETURN m.capture_id AS c",
                          {"v": SCHEMA_VERSION})
        return {r["c"] for r in rows if r["c"] is not None}

    def stored_capture_ids(self) -> set[str]:
        """Every capture with nodes in the database, whatever loaded it."""
        rows = self._exec("MATCH (n:Task) RETURN DISTINCT n.capture_id AS c UNION "
                          "MATCH (n:Resource) RETURN DISTINCT n.capture_id AS c")
        return {r["c"] for r in rows if r["c"] is not None}

    def _stamp(self, capture_id: str, version: int = SCHEMA_VERSION, props: dict[str, Any] | None = None) -> None:
        """The capture's node (the capture table's other properties: ``props``; nulls are absent)."""
        self._exec(f"MERGE (m:{CAPTURE_LABEL} {{capture_id: $cid}}) SET m.schema_version = $v, m += $p",
                   {"cid": capture_id, "v": version,
                    "p": {k: v for k, v in (props or {}).items() if v is not None and k not in ("capture_id",
                                                                                                "schema_version")}})

    def delete_capture(self, capture_id: str, batch: int = 10000) -> None:
        """Delete one capture's relationships, then its nodes (one transaction per ``batch`` rows).
        Every relationship starts at a node of its capture, so walking out of them finds them all."""
        b = int(batch)
        self._exec(f"MATCH (m:{CAPTURE_LABEL} {{capture_id: $cid}}) DELETE m", {"cid": capture_id})
        for label in NODE_KEYS:
            self._exec(f"MATCH (n:{label} {{capture_id: $cid}})-[e]->() "
                       f"CALL (e) {{ DELETE e }} IN TRANSACTIONS OF {b} ROWS", {"cid": capture_id})
        for label in NODE_KEYS:
            self._exec(f"MATCH (n:{label} {{capture_id: $cid}}) "
                       f"CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF {b} ROWS", {"cid": capture_id})

    def _write_batches(self, cypher: str, cols: dict[str, list], n: int, cid: str, batch: int, *,
                       writers: int = 1, returns: bool = False) -> list:
        """One transaction per batch of at most ``batch`` rows (evened out so that every session
        gets as many batches); ``writers`` sessions in parallel, each a contiguous run of batches
        (rows sorted by start node: the sessions rarely share a node, so rarely wait on each
        other's locks; a deadlock is a transient error the driver retries). With ``returns``, the
        records of every batch in order; else each batch must have created one relationship per
        row."""
        from concurrent.futures import ThreadPoolExecutor

        def work(tx, params):
            res = tx.run(cypher, params)
            if returns:
                return [r.values() for r in res]
            made = res.consume().counters.relationships_created
            m = len(params[SRC])
            if made != m:
                raise GraphError(f"created {made} of {m} relationships of capture {cid}: nodes of the capture "
                                 "vanished during the load (a delete or load of it at the same time?); load it again",
                                 query=cypher)
            return []

        def run(starts):
            out = []
            with self._session() as s:
                for i in starts:
                    params = {k: v[i:i + batch] for k, v in cols.items()}
                    params["cid"] = cid
                    out += s.execute_write(work, params)
            return out

        k = max(1, min(writers, n))
        nb = -(-n // batch)  # batches of at most ``batch`` rows, as many for every session
        nb = -(-nb // k) * k
        batch = max(1, -(-n // nb))
        starts = list(range(0, n, batch))
        k = max(1, min(k, len(starts)))
        try:
            if k == 1:
                return run(starts)
            parts = [starts[j * len(starts) // k:(j + 1) * len(starts) // k] for j in range(k)]
            with ThreadPoolExecutor(k) as pool:
                futures = [pool.submit(run, p) for p in parts]
                return [r for f in futures for r in f.result()]
        except GraphError:
            raise
        except (self._neo4j.exceptions.Neo4jError, self._neo4j.exceptions.DriverError, OSError) as e:
            raise self._wrap(e, cypher) from None

    def load(self, model: ipc.Model, batch: int = 10000) -> dict[str, int]:
        """Load (or re-load) ``model`` as its capture's subgraph; returns rows per label/type.
        Seconds per step are left in ``self.load_timings``."""
        if batch < 1:
            raise GraphError(f"batch must be >= 1 (got {batch})")
        t0 = time.perf_counter()
        cid = model.capture_id
        tables = schema.graph_tables(model)
        timings = {"convert": time.perf_counter() - t0}
        t = time.perf_counter()
        self.create_schema()
        self.delete_capture(cid, batch)
        timings["delete"] = time.perf_counter() - t
        ids: dict[str, tuple[pd.Index, np.ndarray]] = {}  # label -> (keys, internal ids)
        for name, tbl in tables.items():  # node tables first (dict order)
            if name not in NODE_KEYS:
                continue
            t = time.perf_counter()
            tbl = tbl.drop_columns([c for c in ("capture_id",) if c in tbl.column_names])
            recs = []
            if tbl.num_rows:
                cols = {c: _column(tbl.column(c)) for c in tbl.column_names}
                recs = self._write_batches(_node_cypher(name, tbl.column_names), cols, tbl.num_rows, cid, batch,
                                           writers=self.writers, returns=True)
            ids[name] = (pd.Index([r[0] for r in recs]), np.array([r[1] for r in recs], dtype=np.int64))
            timings[name] = time.perf_counter() - t
        for name, tbl in tables.items():
            if name not in REL_ENDS or not tbl.num_rows:
                continue
            t = time.perf_counter()
            a, b = REL_ENDS[name]
            src = self._node_ids(ids, a, tbl.column("from"), name)
            dst = self._node_ids(ids, b, tbl.column("to"), name)
            order = np.argsort(src, kind="stable")
            props = [c for c in tbl.column_names if c not in ("from", "to")]
            sorted_tbl = tbl.select(props).take(order) if props else None
            cols = {SRC: src[order].tolist(), DST: dst[order].tolist()}
            for c in props:
                cols[c] = _column(sorted_tbl.column(c))
            self._write_batches(_rel_cypher(name, props), cols, tbl.num_rows, cid, batch, writers=self.writers)
            timings[name] = time.perf_counter() - t
        cap = tables[CAPTURE_LABEL].to_pylist()[0]
        self._stamp(cid, props=cap)  # complete: last
        timings["total"] = time.perf_counter() - t0
        self.load_timings = timings
        return {name: tbl.num_rows for name, tbl in tables.items()}

    def sync(self, model: ipc.Model, state: "SyncState | None" = None, batch: int = 10000) -> tuple[dict[str, int], "SyncState"]:
        """Bring the capture's subgraph from what ``state`` says was written (a ``SyncState``
        returned by the call before) to ``model`` by increments: nodes that are new or changed are
        MERGEd and SET, relationships that are new or changed are replaced, what is gone is deleted,
        what did not change is not written (``ftraceipc live --neo4j``: each interval's model of the
        same capture). Up to SYNC_TX_ROWS rows it is one transaction, so a query never sees half of
        an interval; above, one transaction per ``batch``. Without a state (or for another capture,
        or when the capture is not in the database whole) it is a ``load``. Returns (rows written
        per table, the new state); ``self.load_timings`` holds the seconds."""
        t0 = time.perf_counter()
        cid = model.capture_id
        tables = schema.graph_tables(model)
        new = {name: _keyed_rows(name, tbl) for name, tbl in tables.items() if name != CAPTURE_LABEL}
        cap = tables[CAPTURE_LABEL].to_pylist()[0]
        cols = {name: tbl.column_names for name, tbl in tables.items()}
        if state is None or state.capture_id != cid or state.rows is None or cid not in self.capture_ids():
            self.load(model, batch)
            ok = all(v is not None for v in new.values())
            return ({name: tbl.num_rows for name, tbl in tables.items()},
                    SyncState(cid, new if ok else None))
        stmts: list[tuple[str, dict[str, Any]]] = []
        written: dict[str, int] = {}

        def add(cypher: str, rows: list) -> None:
            for i in range(0, len(rows), batch):
                stmts.append((cypher, {"cid": cid, "rows": rows[i:i + batch]}))

        diffs = {}
        for name, rows in new.items():
            old = state.rows.get(name) or {}
            put = [k for k, v in rows.items() if old.get(k) != v]
            gone = [k for k in old if k not in rows]
            diffs[name] = (put, gone)
            written[name] = len(put) + len(gone)
        for label, key in NODE_KEYS.items():  # nodes new or changed: MERGE, SET
            put, _ = diffs[label]
            names = cols[label]
            add(f"UNWIND $rows AS r MERGE (n:{label} {{capture_id: $cid, {key}: r.k}}) SET n += r.p",
                [{"k": k, "p": {c: _listed(v) for c, v in zip(names, new[label][k]) if c not in ("capture_id", key)}}
                 for k in put])
        for typ, (a, b) in REL_ENDS.items():  # relationships changed or gone: deleted; new or changed: made
            put, gone = diffs[typ]
            names = cols[typ]
            disc = REL_KEYS.get(typ, ())
            same = "".join(f" AND (e.{d} = r.{d} OR (e.{d} IS NULL AND r.{d} IS NULL))" for d in disc)
            old = state.rows.get(typ) or {}
            add(f"UNWIND $rows AS r MATCH (a:{a} {{capture_id: $cid, {NODE_KEYS[a]}: r.f}})-[e:{typ}]->"
                f"(b:{b} {{capture_id: $cid, {NODE_KEYS[b]}: r.t}}) WHERE e.capture_id = $cid{same} DELETE e",
                [{"f": k[0], "t": k[1], **dict(zip(disc, k[2:]))} for k in gone + [k for k in put if k in old]])
            add(f"UNWIND $rows AS r MATCH (a:{a} {{capture_id: $cid, {NODE_KEYS[a]}: r.f}}) "
                f"MATCH (b:{b} {{capture_id: $cid, {NODE_KEYS[b]}: r.t}}) CREATE (a)-[e:{typ}]->(b) "
                f"SET e = r.p, e.capture_id = $cid",
                [{"f": k[0], "t": k[1], "p": {c: _listed(v) for c, v in zip(names, new[typ][k]) if c not in ("from", "to")}}
                 for k in put])
        for label, key in NODE_KEYS.items():  # nodes gone: deleted with what is left of their edges
            _, gone = diffs[label]
            add(f"UNWIND $rows AS k MATCH (n:{label} {{capture_id: $cid, {key}: k}}) DETACH DELETE n", gone)
        p = {k: v for k, v in cap.items() if k not in ("capture_id", "schema_version")}
        stmts.append((f"MERGE (m:{CAPTURE_LABEL} {{capture_id: $cid}}) SET m.schema_version = $v, m += $p",
                      {"cid": cid, "v": SCHEMA_VERSION, "p": p}))
        total = sum(written.values())

        def run(tx, part):
            for cypher, params in part:
                tx.run(cypher, params).consume()

        try:
            with self._session() as s:
                if total <= SYNC_TX_ROWS:
                    s.execute_write(run, stmts)
                else:
                    for st in stmts:
                        s.execute_write(run, [st])
        except (self._neo4j.exceptions.Neo4jError, self._neo4j.exceptions.DriverError, OSError) as e:
            raise self._wrap(e, None) from None
        self.load_timings = {"total": time.perf_counter() - t0}
        return written, SyncState(cid, new)

    @staticmethod
    def _node_ids(ids: dict, label: str, keys, typ: str) -> np.ndarray:
        index, internal = ids[label]
        pos = index.get_indexer(keys.to_pandas())
        if (pos < 0).any():  # _arrow_tables makes a node for every endpoint: a bug if not
            raise GraphError(f"{typ}: {int((pos < 0).sum())} end(s) have no {label} node")
        return internal[pos]

    def counts(self, capture_id: str | None = None) -> dict[str, int]:
        """Nodes per label and relationships per type (of one capture, or of all)."""
        where = " WHERE n.capture_id = $cid" if capture_id is not None else ""
        rwhere = " WHERE e.capture_id = $cid" if capture_id is not None else ""
        p = {"cid": capture_id} if capture_id is not None else {}
        out = {}
        for label in schema.NODE_TABLES:
            out[label] = int(self._exec(f"MATCH (n:{label}){where} RETURN count(n) AS n", p)[0]["n"])
        for typ in REL_ENDS:
            out[typ] = int(self._exec(f"MATCH ()-[e:{typ}]->(){rwhere} RETURN count(e) AS n", p)[0]["n"])
        return out
