"""The graph schema, defined once for both backends (issue #4, #11): node and relationship tables
with their typed properties, and the conversion of a model into one Arrow table per table.

``LadybugGraph`` (ftraceipc.graph.ladybug) makes its typed DDL from ``NODE_TABLES``/``REL_TABLES``
and bulk-COPYs ``graph_tables(model)``; ``Neo4jGraph`` (ftraceipc.graph.neo4j) writes the same
tables (Neo4j is schema-less for properties; its constraints and indexes are cypher/schema.cypher).
So both hold the same labels, relationship types and properties, and the query files of cypher/
return the same rows on both for the same capture. Meanings: docs/schema.md.

- ``(:Task {tid, ...})``, ``(:Resource {rid, ...})``;
- ``(:Task)-[:WRITES|READS]->(:Resource)``, ``(:Task)-[:BLOCKED_ON]->(:Resource)``,
  ``(:Task)-[:WAKES]->(:Task)``, ``(:Task)-[:FLOWS]->(:Task)``, ``(:Task)-[:WAITS_FOR]->(:Task)``,
  ``(:Resource)-[:PEER]->(:Resource)``;
- the critical path of the traced command (ftraceipc.model.critical): ``(:PathSegment {seq, tid,
  state, reason, rid, start_ts, end_ts, dur_ns})`` nodes, each linked from its task by
  ``(:Task)-[:ON_PATH]->(:PathSegment)``; ``Task.crit_ns`` (its own time on the path) and
  ``crit_running_ns``/``crit_runnable_ns``/``crit_blocked_ns`` (0 when not on it),
  ``crit_running_sys_ns`` (the part of crit_running_ns inside its traced syscalls) and
  ``crit_segments``/``crit_reasons``/``crit_reason_ns`` (its segments, the reasons of its blocked
  ones with their time: ``_path_by_task``; a load may leave the segments out, never these);
  ``BLOCKED_ON.crit_ns``/``crit_waits`` (the path's time inside the task's sleeps on the resource that
  were handed to their wakers, and how many such sleeps) and ``crit_room_ns`` (the part of crit_ns
  inside its sleeps waiting for room to write); ``Resource.crit_ns`` (the path's time
  inside sleeps on it: the sleepers' own time on it and the wakers' time that replaced those sleeps,
  counted once: at most the wall time);
- ``(:FtraceipcCapture {capture_id, schema_version, wall_ns, crit_root, crit_start_ts,
  crit_end_ts})``: one per capture (the crit values null without a critical path). Neo4j writes it
  last, as the mark of a complete load.

Every node has ``capture_id`` (Neo4j: every relationship too).

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
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ftraceipc.model import ipc

CAPTURE_TABLE = "FtraceipcCapture"
PATH_TABLE = "PathSegment"

# (name, type); the first column of a node table is its key (Ladybug's primary key; in Neo4j the key
# is (capture_id, key): the composite uniqueness constraints of cypher/schema.cypher).
NODE_TABLES: dict[str, list[tuple[str, str]]] = {
    "Task": [("tid", "INT64"), ("pid", "INT64"), ("comm", "STRING"), ("comms", "STRING[]"), ("ppid", "INT64"),
             ("first_ts", "INT64"), ("last_ts", "INT64"), ("tracer", "BOOLEAN"),
             ("blocked_unattributed_episodes", "INT64"), ("blocked_unattributed_ns", "INT64"),
             ("blocked_unattributed_max_ns", "INT64"), ("crit_ns", "INT64"), ("crit_running_ns", "INT64"),
             ("crit_runnable_ns", "INT64"), ("crit_blocked_ns", "INT64"), ("crit_running_sys_ns", "INT64"),
             ("crit_segments", "INT64"), ("crit_reasons", "STRING[]"), ("crit_reason_ns", "INT64[]"),
             ("capture_id", "STRING")],
    "Resource": [("rid", "STRING"), ("kind", "STRING"), ("inode", "INT64"), ("path", "STRING"),
                 ("peer", "STRING"), ("evidence", "STRING[]"), ("capacity", "INT64"), ("crit_ns", "INT64"),
                 ("capture_id", "STRING")],
    PATH_TABLE: [("seq", "INT64"), ("tid", "INT64"), ("state", "STRING"), ("reason", "STRING"), ("rid", "STRING"),
                 ("start_ts", "INT64"), ("end_ts", "INT64"), ("dur_ns", "INT64"), ("capture_id", "STRING")],
    CAPTURE_TABLE: [("capture_id", "STRING"), ("schema_version", "INT64"), ("wall_ns", "INT64"),
                    ("crit_root", "INT64"), ("crit_start_ts", "INT64"), ("crit_end_ts", "INT64")],
}
# name -> (from table, to table, properties)
REL_TABLES: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "WRITES": ("Task", "Resource", [("calls", "INT64"), ("bytes", "INT64"), ("first_ts", "INT64"),
                                    ("last_ts", "INT64"), ("wakes", "INT64"), ("wake_ns", "INT64")]),
    "READS": ("Task", "Resource", [("calls", "INT64"), ("bytes", "INT64"), ("first_ts", "INT64"),
                                   ("last_ts", "INT64"), ("wakes", "INT64"), ("wake_ns", "INT64")]),
    "BLOCKED_ON": ("Task", "Resource", [("episodes", "INT64"), ("blocked_ns", "INT64"), ("max_ns", "INT64"),
                                        ("ops", "STRING[]"), ("read_episodes", "INT64"), ("read_ns", "INT64"),
                                        ("write_episodes", "INT64"), ("write_ns", "INT64"), ("crit_ns", "INT64"),
                                        ("crit_waits", "INT64"), ("crit_room_ns", "INT64")]),
    "WAKES": ("Task", "Task", [("via", "STRING"), ("wakeups", "INT64"), ("wake_to_run_ns", "INT64"),
                               ("max_wake_to_run_ns", "INT64"), ("cross_cpu", "INT64")]),
    "FLOWS": ("Task", "Task", [("via", "STRING"), ("read_rid", "STRING"), ("bytes", "INT64"),
                               ("messages", "INT64")]),
    "WAITS_FOR": ("Task", "Task", [("via", "STRING"), ("episodes", "INT64"), ("blocked_ns", "INT64"),
                                   ("max_ns", "INT64"), ("top", "BOOLEAN"), ("consumed", "INT64"), ("turns", "INT64")]),
    "PEER": ("Resource", "Resource", []),
    "ON_PATH": ("Task", PATH_TABLE, []),
}
NODE_KEYS: dict[str, str] = {name: cols[0][0] for name, cols in NODE_TABLES.items()}
REL_ENDS: dict[str, tuple[str, str]] = {name: (a, b) for name, (a, b, _c) in REL_TABLES.items()}
IDLE_TID = 0

_ARROW = {"INT64": pa.int64(), "STRING": pa.string(), "BOOLEAN": pa.bool_(), "STRING[]": pa.list_(pa.string()),
          "INT64[]": pa.list_(pa.int64())}


def props(table: str) -> list[str]:
    """The property names of a node or relationship table, in order."""
    if table in NODE_TABLES:
        return [c for c, _t in NODE_TABLES[table]]
    return [c for c, _t in REL_TABLES[table][2]]


def _array(s: pd.Series, typ: str) -> pa.Array:
    """One column as an Arrow array of the table's type (nulls kept, no Python loop for scalars)."""
    t = _ARROW[typ]
    if typ in ("STRING[]", "INT64[]"):
        return pa.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else list(v) for v in s], t)
    if typ == "INT64":
        if s.dtype.kind in "iu":
            return pa.array(s.to_numpy(dtype=np.int64, copy=False), t)
        return pa.array(pd.to_numeric(s).astype("Int64"), t, from_pandas=True)
    if typ == "BOOLEAN":
        return pa.array(s.astype("boolean"), t, from_pandas=True)
    if typ == "STRING" and len(s) > 1024:  # few distinct values in many rows (a path's states, a capture id)
        codes, uniq = pd.factorize(s, use_na_sentinel=True)
        idx = pa.array(codes.astype(np.int32, copy=False), pa.int32(), mask=codes < 0)
        return pa.DictionaryArray.from_arrays(idx, pa.array(np.asarray(uniq, dtype=object), t)).cast(t)
    return pa.array(s.astype(object), t, from_pandas=True)


def _table(df: pd.DataFrame, cols: list[tuple[str, str]], src_dst: tuple[str, str] | None = None,
           types: tuple[str, str] = ("INT64", "INT64")) -> pa.Table:
    """An Arrow table: (for a rel table: ``from``, ``to``, then) the columns in order."""
    arrays, names = [], []
    if src_dst is not None:
        arrays += [_array(df[src_dst[0]], types[0]), _array(df[src_dst[1]], types[1])]
        names += ["from", "to"]
    arrays += [_array(df[c], t) for c, t in cols]
    names += [c for c, _ in cols]
    return pa.Table.from_arrays(arrays, names=names)


def key_type(table: str) -> str:
    return NODE_TABLES[table][0][1]


def _path_by_task(seg: pd.DataFrame) -> pd.DataFrame:
    """Per task on the critical path (index tid): ``crit_segments``, its segments; ``crit_reasons`` and
    ``crit_reason_ns``, the reasons of its blocked segments ('' when unknown) and their time, largest
    first, then by reason, only those with time (what bottleneck.cypher reports of a task)."""
    n = seg.groupby("tid").size().rename("crit_segments")
    z = seg[seg["state"] == "blocked"]
    z = pd.DataFrame({"tid": z["tid"].to_numpy(dtype=np.int64), "reason": z["reason"].fillna("").astype(str),
                      "ns": z["dur_ns"].to_numpy(dtype=np.int64)})
    z = z.groupby(["tid", "reason"], sort=False)["ns"].sum().reset_index()
    z = z[z["ns"] > 0].sort_values(["tid", "ns", "reason"], ascending=[True, False, True], kind="stable")
    g = z.groupby("tid", sort=False)
    out = pd.concat([n, g["reason"].agg(list).rename("crit_reasons"), g["ns"].agg(list).rename("crit_reason_ns")],
                    axis=1)
    out.index = out.index.astype(np.int64)
    return out


def graph_tables(model: ipc.Model, schema_version: int | None = None, segments: bool = True) -> dict[str, pa.Table]:
    """The model as one Arrow table per node/rel table of the schema, in load order (nodes first,
    the capture table last of them). ``schema_version``: the capture row's (default
    ftraceipc.graph.SCHEMA_VERSION). ``segments`` False: the PathSegment and ON_PATH tables empty
    (no detector reads them: each task's share of the path is in its ``crit_*`` properties; live
    mode's analyses load a few hundred thousand fewer rows each)."""
    if schema_version is None:
        from ftraceipc.graph import SCHEMA_VERSION

        schema_version = SCHEMA_VERSION
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
    cp = model.critical
    if cp is not None:
        seg = cp.segments
        crit_tasks = cp.tasks.set_index("tid").rename(columns={
            "running_ns": "crit_running_ns", "runnable_ns": "crit_runnable_ns", "blocked_ns": "crit_blocked_ns",
            "running_sys_ns": "crit_running_sys_ns"})
        crit_waits = cp.waits[cp.waits["rid"].notna()]
        crit_res = cp.resources
    else:
        seg = pd.DataFrame({c: pd.Series(dtype=object) for c in props(PATH_TABLE) if c != "capture_id"})
        crit_tasks = pd.DataFrame(columns=["crit_ns", "crit_running_ns", "crit_runnable_ns", "crit_blocked_ns",
                                           "crit_running_sys_ns"])
        crit_waits = pd.DataFrame({"waiter": pd.Series(dtype=np.int64), "rid": pd.Series(dtype=object),
                                   "crit_ns": pd.Series(dtype=np.int64), "waits": pd.Series(dtype=np.int64),
                                   "room_ns": pd.Series(dtype=np.int64)})
        crit_res = pd.DataFrame({"rid": pd.Series(dtype=object), "crit_ns": pd.Series(dtype=np.int64)})

    # tasks: the model's, plus a node for every tid an edge or segment names that the model does not list
    tids = pd.unique(pd.concat([io["tid"], blocked["tid"], wakes["waker"], wakes["wakee"], flows["writer"],
                                flows["reader"], waits["waiter"], waits["waker"], seg["tid"]],
                               ignore_index=True).astype(np.int64))
    extra = np.setdiff1d(tids, tasks["tid"].to_numpy(dtype=np.int64))
    t = tasks[ipc.TASK_COLUMNS]
    if len(extra):
        idle = extra == IDLE_TID
        t = pd.concat([t, pd.DataFrame({
            "tid": extra, "pid": np.where(idle, 0, -1), "comm": np.where(idle, "<idle>", None).astype(object),
            "comms": [["<idle>"] if i else [] for i in idle], "ppid": -1, "first_ts": None, "last_ts": None,
            "tracer": False})], ignore_index=True)
    t = t.join(unattr, on="tid").join(crit_tasks[["crit_ns", "crit_running_ns", "crit_runnable_ns",
                                                  "crit_blocked_ns", "crit_running_sys_ns"]], on="tid")
    t = t.join(_path_by_task(seg), on="tid")
    for c in ("blocked_unattributed_episodes", "blocked_unattributed_ns", "blocked_unattributed_max_ns",
              "crit_ns", "crit_running_ns", "crit_runnable_ns", "crit_blocked_ns", "crit_running_sys_ns",
              "crit_segments"):
        t[c] = t[c].fillna(0).astype(np.int64)
    for c in ("crit_reasons", "crit_reason_ns"):
        t[c] = [v if isinstance(v, list) else [] for v in t[c].tolist()]
    t = t.assign(capture_id=cid)

    # resources: the model's, plus a node for every rid an edge, peer or segment names that it does not list
    rids = pd.unique(pd.concat([io["rid"], on_res["rid"], peers["peer"], seg["rid"].dropna(), crit_res["rid"]],
                               ignore_index=True).astype(object))
    missing = sorted(set(rids) - set(res["rid"].astype(object)))
    r = res[ipc.RESOURCE_COLUMNS]
    if missing:
        kinds = [m.split(":", 1)[0] for m in missing]
        inodes = [int(m.split(":", 1)[1]) if m.split(":", 1)[1].isdigit() else None for m in missing]
        r = pd.concat([r.astype(object), pd.DataFrame({
            "rid": missing, "kind": kinds, "inode": pd.array(inodes, dtype="Int64"), "path": None, "peer": None,
            "evidence": [[] for _ in missing], "capacity": None})], ignore_index=True)
    r = r.join(crit_res.set_index("rid")["crit_ns"], on="rid")
    r["crit_ns"] = r["crit_ns"].fillna(0).astype(np.int64)
    r = r.assign(capture_id=cid)

    # BLOCKED_ON with the path's time inside its sleeps (a wait on the path is a sleep on a resource,
    # so on an edge; the waits on a child's exit have no rid: in Task.crit_* only)
    b = on_res.merge(crit_waits.rename(columns={"waiter": "tid", "crit_ns": "crit_ns", "waits": "crit_waits",
                                                "room_ns": "crit_room_ns"}),
                     on=["tid", "rid"], how="left")
    for c in ("crit_ns", "crit_waits", "crit_room_ns"):
        b[c] = b[c].fillna(0).astype(np.int64)

    capture = pd.DataFrame({"capture_id": [cid], "schema_version": [int(schema_version)],
                            "wall_ns": [cp.wall_ns if cp is not None else None],
                            "crit_root": [cp.root if cp is not None else None],
                            "crit_start_ts": [cp.start_ts if cp is not None else None],
                            "crit_end_ts": [cp.end_ts if cp is not None else None]})
    if not segments:
        seg = seg.iloc[:0]
    out = {
        "Task": _table(t, NODE_TABLES["Task"]),
        "Resource": _table(r, NODE_TABLES["Resource"]),
        PATH_TABLE: _table(seg.assign(capture_id=cid), NODE_TABLES[PATH_TABLE]),
        CAPTURE_TABLE: _table(capture, NODE_TABLES[CAPTURE_TABLE]),
    }
    rkey, tkey, skey = key_type("Resource"), key_type("Task"), key_type(PATH_TABLE)
    io = io.assign(**{c: io[c].fillna(0) if c in io else 0 for c in ipc.IO_WAKE_COLUMNS})
    for typ in ("WRITES", "READS"):
        out[typ] = _table(io[io["type"] == typ], REL_TABLES[typ][2], ("tid", "rid"), (tkey, rkey))
    out["BLOCKED_ON"] = _table(b, REL_TABLES["BLOCKED_ON"][2], ("tid", "rid"), (tkey, rkey))
    out["WAKES"] = _table(wakes, REL_TABLES["WAKES"][2], ("waker", "wakee"), (tkey, tkey))
    out["FLOWS"] = _table(flows, REL_TABLES["FLOWS"][2], ("writer", "reader"), (tkey, tkey))
    out["WAITS_FOR"] = _table(waits, REL_TABLES["WAITS_FOR"][2], ("waiter", "waker"), (tkey, tkey))
    out["PEER"] = _table(peers, [], ("rid", "peer"), (rkey, rkey))
    out["ON_PATH"] = _table(seg, [], ("tid", "seq"), (tkey, skey))
    return out
