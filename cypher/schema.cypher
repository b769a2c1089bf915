// schema: the graph schema for Neo4j 5 (constraints and indexes), run once per database.
//
// The embedded backend (LadybugDB) needs typed DDL instead: it is generated from the table lists
// in ftraceipc/graph/ladybug.py (NODE_TABLES, REL_TABLES). Neo4j is schema-less for properties;
// the labels, relationship types and properties are the same on both backends:
//
//   (:Task {tid, pid, comm, comms, ppid, first_ts, last_ts, tracer, blocked_unattributed_episodes,
//           blocked_unattributed_ns, blocked_unattributed_max_ns, capture_id})
//   (:Resource {rid, kind, inode, path, peer, evidence, capture_id})
//   (:Task)-[:WRITES|READS {calls, bytes, first_ts, last_ts}]->(:Resource)
//   (:Task)-[:BLOCKED_ON {episodes, blocked_ns, max_ns, ops}]->(:Resource)
//   (:Task)-[:WAKES {via, wakeups, wake_to_run_ns, max_wake_to_run_ns, cross_cpu}]->(:Task)
//   (:Task)-[:FLOWS {via, read_rid, bytes, messages}]->(:Task)
//   (:Resource)-[:PEER]->(:Resource)
//
// Keys: a task is (capture_id, tid), a resource (capture_id, rid). Ladybug holds one capture per
// database (tid and rid alone are its primary keys); a Neo4j database may hold several, so the
// uniqueness constraints are composite (Community Edition has them; NODE KEY and property type
// constraints would need Enterprise). The query files in cypher/ assume one capture per database.
// Null-rid sleeps are the Task properties blocked_unattributed_*, not edges (see the module
// docstring of ftraceipc/graph/ladybug.py).
//
// Not portable: LadybugDB has no CREATE CONSTRAINT and no property or relationship CREATE INDEX.
// Parameters: none. Returns: nothing.

CREATE CONSTRAINT task_key IF NOT EXISTS
FOR (t:Task) REQUIRE (t.capture_id, t.tid) IS UNIQUE;

CREATE CONSTRAINT resource_key IF NOT EXISTS
FOR (r:Resource) REQUIRE (r.capture_id, r.rid) IS UNIQUE;

// Lookups by tid or rid alone (the composite constraints' indexes need capture_id first).
CREATE INDEX task_tid IF NOT EXISTS FOR (t:Task) ON (t.tid);
CREATE INDEX resource_rid IF NOT EXISTS FOR (r:Resource) ON (r.rid);
// One capture's subgraph (Neo4jGraph.delete_capture before a re-load).
CREATE INDEX task_capture IF NOT EXISTS FOR (t:Task) ON (t.capture_id);
CREATE INDEX resource_capture IF NOT EXISTS FOR (r:Resource) ON (r.capture_id);
CREATE INDEX task_pid IF NOT EXISTS FOR (t:Task) ON (t.pid);
CREATE INDEX resource_kind IF NOT EXISTS FOR (r:Resource) ON (r.kind);

// The resource a wakeup or a flow went through, to join WAKES/FLOWS with BLOCKED_ON and WRITES.
CREATE INDEX wakes_via IF NOT EXISTS FOR ()-[k:WAKES]-() ON (k.via);
CREATE INDEX flows_via IF NOT EXISTS FOR ()-[f:FLOWS]-() ON (f.via);
