// schema: the graph schema for Neo4j 5 (constraints and indexes), run once per database.
//
// The labels, relationship types and typed properties are defined once, for both backends, in
// ftraceipc/graph/schema.py (NODE_TABLES, REL_TABLES): the embedded backend (LadybugDB) makes its
// typed DDL from them; Neo4j is schema-less for properties and needs only what follows:
//
//   (:Task), (:Resource), (:PathSegment) (the traced command's critical path, linked from its task
//   by (:Task)-[:ON_PATH]->(:PathSegment)), (:FtraceipcCapture) (one per capture loaded completely)
//   and the relationships WRITES, READS, BLOCKED_ON, WAKES, FLOWS, WAITS_FOR, PEER, ON_PATH.
//
// Keys: a task is (capture_id, tid), a resource (capture_id, rid), a path segment (capture_id,
// seq). Ladybug holds one capture per database (tid, rid and seq alone are its primary keys); a
// Neo4j database may hold several, so the
// uniqueness constraints are composite (Community Edition has them; NODE KEY and property type
// constraints would need Enterprise). The query files in cypher/ assume one capture per database.
// Null-rid sleeps are the Task properties blocked_unattributed_*, not edges (see the module
// docstring of ftraceipc/graph/schema.py).
//
// Not portable: LadybugDB has no CREATE CONSTRAINT and no property or relationship CREATE INDEX.
// Parameters: none. Returns: nothing.

CREATE CONSTRAINT task_key IF NOT EXISTS
FOR (t:Task) REQUIRE (t.capture_id, t.tid) IS UNIQUE;

CREATE CONSTRAINT resource_key IF NOT EXISTS
FOR (r:Resource) REQUIRE (r.capture_id, r.rid) IS UNIQUE;

CREATE CONSTRAINT path_segment_key IF NOT EXISTS
FOR (s:PathSegment) REQUIRE (s.capture_id, s.seq) IS UNIQUE;

CREATE CONSTRAINT capture_key IF NOT EXISTS
FOR (m:FtraceipcCapture) REQUIRE m.capture_id IS UNIQUE;

// Lookups by tid or rid alone (the composite constraints' indexes need capture_id first).
CREATE INDEX task_tid IF NOT EXISTS FOR (t:Task) ON (t.tid);
CREATE INDEX resource_rid IF NOT EXISTS FOR (r:Resource) ON (r.rid);
// One capture's subgraph (Neo4jGraph.delete_capture before a re-load).
CREATE INDEX task_capture IF NOT EXISTS FOR (t:Task) ON (t.capture_id);
CREATE INDEX resource_capture IF NOT EXISTS FOR (r:Resource) ON (r.capture_id);
CREATE INDEX path_segment_capture IF NOT EXISTS FOR (s:PathSegment) ON (s.capture_id);
CREATE INDEX task_pid IF NOT EXISTS FOR (t:Task) ON (t.pid);
CREATE INDEX resource_kind IF NOT EXISTS FOR (r:Resource) ON (r.kind);

// The resource a wakeup or a flow went through, to join WAKES/FLOWS with BLOCKED_ON and WRITES.
CREATE INDEX wakes_via IF NOT EXISTS FOR ()-[k:WAKES]-() ON (k.via);
CREATE INDEX flows_via IF NOT EXISTS FOR ()-[f:FLOWS]-() ON (f.via);
