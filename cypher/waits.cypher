// waits: where tasks were blocked on an IPC resource, and who woke them through it.
//
// BLOCKED_ON says how long a task slept on a resource; the WAKES edges into that task with the
// same resource as via say who ended those sleeps (a reader on a pipe is woken by the writer).
// Sleeps on no known resource are not edges: see Task.blocked_unattributed_ns.
//
// Parameters:
//   $min_blocked_ns = 0   leave out (task, resource) pairs blocked for less (ns)
//   $limit = 50           at most this many rows
//   $capture_id = ""      only this capture's tasks (Neo4j holding several captures); "": all
//
// Returns, one row per (blocked task, resource, waker):
//   tid, comm             the blocked task
//   rid, kind             the resource it slept on
//   blocked_ns, episodes  its BLOCKED_ON edge: total time asleep there (ns), number of sleeps
//   waker, waker_comm     a task that woke it via that resource; null when none did
//   wakeups               that waker's wakeups of it via the resource (0 when no waker)
//   wake_to_run_ns        their summed wake-to-run latency (ns; 0 when no waker)
// Ordered by blocked_ns descending, then tid, rid, wakeups descending, waker.
//
// Runs as-is on LadybugDB and Neo4j 5 (checked on Ladybug against the model in
// tests/integration/test_graph_ladybug.py).
MATCH (t:Task)-[b:BLOCKED_ON]->(r:Resource)
WHERE b.blocked_ns >= $min_blocked_ns AND ($capture_id = '' OR t.capture_id = $capture_id)
OPTIONAL MATCH (w:Task)-[k:WAKES]->(t)
WHERE k.via = r.rid
WITH t, r, b, w, coalesce(sum(k.wakeups), 0) AS wakeups, coalesce(sum(k.wake_to_run_ns), 0) AS wake_to_run_ns
RETURN t.tid AS tid, t.comm AS comm, r.rid AS rid, r.kind AS kind, b.blocked_ns AS blocked_ns,
       b.episodes AS episodes, w.tid AS waker, w.comm AS waker_comm, wakeups, wake_to_run_ns
ORDER BY blocked_ns DESC, tid, rid, wakeups DESC, waker
LIMIT $limit
