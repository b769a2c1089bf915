"""The Neo4j backend: IPC models of one or more captures in a Neo4j 5 server (issue #4).

    with Neo4jGraph.connect("bolt://127.0.0.1:7687", "neo4j", password) as g:
        g.create_schema()                       # cypher/schema.cypher (constraints and indexes)
        g.load(build_model(capture))            # batched UNWIND writes
        df = g.query("MATCH (t:Task) RETURN count(t) AS n")
        df = g.run_file("top_talkers", limit=5)

Credentials come from the arguments, else from the environment (``NEO4J_URI``, ``NEO4J_USER``,
default ``neo4j``, ``NEO4J_PASSWORD``); a password is never printed or put in an error message.

The graph is the one of the embedded backend, built by the same code
(``ftraceipc.graph.ladybug._arrow_tables``): same labels, relationship types and properties, same
mapping choices (null-rid sleeps as ``Task.blocked_unattributed_*``, a node for every endpoint no
row lists, tid 0 as ``<idle>``, WRITES/READS without ``syscalls``), so the query files of cypher/
return the same rows on both backends for the same capture. A null property is simply absent in
Neo4j (it reads back as null, as on Ladybug).

Several captures may share one database: every node and relationship has ``capture_id``; node keys
are (capture_id, tid) and (capture_id, rid) (composite uniqueness constraints of schema.cypher).
The query files assume one capture per database; with several, filter on ``capture_id``.

Idempotence: ``load`` first deletes the capture's subgraph (``delete_capture``: batched DETACH
DELETE of its nodes, ``CALL {...} IN TRANSACTIONS``), then MERGEs the nodes on their keys and
CREATEs the relationships, in batches of ``batch`` rows per transaction (``UNWIND`` over column
lists: ``$tid[i]``, ...). So loading
the same capture again gives the same graph, and parallel WAKES edges (one per waker, wakee, via) stay
parallel. A load that fails half-way leaves a partial capture: load it again.

Errors are GraphError with one line: "cannot reach Neo4j at URI: ...; is it running?", the
credentials refused, a server older than 5, or the server's own message for a Cypher error.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pandas as pd

from ftraceipc.graph import CYPHER_DIR, GraphError, Query, parameters_used, read_query
from ftraceipc.model import ipc

NODE_KEYS = {"Task": "tid", "Resource": "rid"}
# rel type -> (from label, to label)
REL_ENDS = {"WRITES": ("Task", "Resource"), "READS": ("Task", "Resource"), "BLOCKED_ON": ("Task", "Resource"),
            "WAKES": ("Task", "Task"), "FLOWS": ("Task", "Task"), "PEER": ("Resource", "Resource")}
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
    """Column-wise batches (one list per property: packing is cheaper than one map per row)."""
    key = NODE_KEYS[label]
    sets = ", ".join(f"n.{p} = ${p}[i]" for p in props if p not in (key, "capture_id"))
    return (f"UNWIND range(0, size(${key}) - 1) AS i MERGE (n:{label} {{capture_id: $cid, {key}: ${key}[i]}})"
            + (f" SET {sets}" if sets else ""))


def _rel_cypher(typ: str, props: list[str]) -> str:
    a, b = REL_ENDS[typ]
    body = ", ".join(["capture_id: $cid"] + [f"{p}: ${p}[i]" for p in props])
    return (f"UNWIND range(0, size($`from`) - 1) AS i MATCH (a:{a} {{capture_id: $cid, {NODE_KEYS[a]}: $`from`[i]}}) "
            f"MATCH (b:{b} {{capture_id: $cid, {NODE_KEYS[b]}: $`to`[i]}}) CREATE (a)-[:{typ} {{{body}}}]->(b)")


class Neo4jGraph:
    """A connection to a Neo4j 5 server (a context manager; ``close`` is safe to call twice)."""

    def __init__(self, uri: str | None = None, user: str | None = None, password: str | None = None, *,
                 database: str | None = None, connection_timeout: float = 10.0, writers: int = 1):
        try:
            import neo4j
        except ImportError as e:  # pragma: no cover
            raise GraphError("the neo4j driver is not installed", hint="pip install neo4j") from e
        self._neo4j = neo4j
        self.uri = uri or os.environ.get("NEO4J_URI")
        self.user = user or os.environ.get("NEO4J_USER") or DEFAULT_USER
        password = password if password is not None else os.environ.get("NEO4J_PASSWORD")
        self.database = database
        self.load_timings: dict[str, float] = {}
        self.writers = writers
        self.server_version: str | None = None
        self._driver = None
        if not self.uri:
            raise GraphError("no Neo4j URI given", hint="pass one (bolt://HOST:7687) or set NEO4J_URI")
        scheme = self.uri.split("://", 1)[0] if "://" in self.uri else ""
        if scheme not in SCHEMES:
            raise GraphError(f"bad Neo4j URI {self.uri!r}: the scheme must be one of {', '.join(SCHEMES)}")
        if password is None:
            raise GraphError(f"no password for Neo4j user {self.user}", hint="set NEO4J_PASSWORD")
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
        rows = self._exec("MATCH (n:Task) RETURN DISTINCT n.capture_id AS c UNION "
                          "MATCH (n:Resource) RETURN DISTINCT n.capture_id AS c")
        return {r["c"] for r in rows if r["c"] is not None}

    def delete_capture(self, capture_id: str, batch: int = 10000) -> None:
        """Delete one capture's nodes and relationships (batched, one transaction per batch)."""
        for label in NODE_KEYS:
            self._exec(f"MATCH (n:{label}) WHERE n.capture_id = $cid "
                       f"CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF {int(batch)} ROWS",
                       {"cid": capture_id})

    def _write_batches(self, cypher: str, cols: dict[str, list], n: int, cid: str, batch: int) -> None:
        """One transaction per batch; ``self.writers`` sessions in parallel (so that packing a batch
        in Python overlaps the server's work on another). A deadlock between two batches is a
        transient error: the driver retries that transaction."""
        from concurrent.futures import ThreadPoolExecutor

        def work(tx, params):
            tx.run(cypher, params).consume()

        def run(starts):
            with self._session() as s:
                for i in starts:
                    params = {k: v[i:i + batch] for k, v in cols.items()}
                    params["cid"] = cid
                    s.execute_write(work, params)

        starts = list(range(0, n, batch))
        k = max(1, min(self.writers, len(starts)))
        try:
            if k == 1:
                run(starts)
            else:
                with ThreadPoolExecutor(k) as pool:
                    for f in [pool.submit(run, starts[j::k]) for j in range(k)]:
                        f.result()
        except (self._neo4j.exceptions.Neo4jError, self._neo4j.exceptions.DriverError, OSError) as e:
            raise self._wrap(e, cypher) from None

    def load(self, model: ipc.Model, batch: int = 10000) -> dict[str, int]:
        """Load (or re-load) ``model`` as its capture's subgraph; returns rows per label/type.
        Seconds per step are left in ``self.load_timings``."""
        from ftraceipc.graph.ladybug import _arrow_tables

        if batch < 1:
            raise GraphError(f"batch must be >= 1 (got {batch})")
        t0 = time.perf_counter()
        cid = model.capture_id
        tables = _arrow_tables(model)
        timings = {"convert": time.perf_counter() - t0}
        t = time.perf_counter()
        self.create_schema()
        self.delete_capture(cid, batch)
        timings["delete"] = time.perf_counter() - t
        for name, tbl in tables.items():  # nodes first
            if not tbl.num_rows:
                continue
            t = time.perf_counter()
            cols = tbl.drop_columns([c for c in ("capture_id",) if c in tbl.column_names]).to_pydict()
            if name in NODE_KEYS:
                cypher = _node_cypher(name, [c for c in tbl.column_names])
            else:
                cypher = _rel_cypher(name, [c for c in tbl.column_names if c not in ("from", "to")])
            self._write_batches(cypher, cols, tbl.num_rows, cid, batch)
            timings[name] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        self.load_timings = timings
        return {name: tbl.num_rows for name, tbl in tables.items()}

    def counts(self, capture_id: str | None = None) -> dict[str, int]:
        """Nodes per label and relationships per type (of one capture, or of all)."""
        where = " WHERE n.capture_id = $cid" if capture_id is not None else ""
        rwhere = " WHERE e.capture_id = $cid" if capture_id is not None else ""
        p = {"cid": capture_id} if capture_id is not None else {}
        out = {}
        for label in NODE_KEYS:
            out[label] = int(self._exec(f"MATCH (n:{label}){where} RETURN count(n) AS n", p)[0]["n"])
        for typ in REL_ENDS:
            out[typ] = int(self._exec(f"MATCH ()-[e:{typ}]->(){rwhere} RETURN count(e) AS n", p)[0]["n"])
        return out
