// blocked_by_resource: the IPC resources tasks spent the most time blocked on, biggest first.
//
// Sums the BLOCKED_ON edges into each resource: every sleep of every task on it. Sleeps on no known
// resource are not edges (see Task.blocked_unattributed_ns) and are not here; waits.cypher splits a
// resource's time by task and by waker.
//
// Parameters:
//   $limit = 20          at most this many rows
//   $capture_id = ""     only this capture's tasks (Neo4j holding several captures); "": all
//
// Returns, one row per resource that some task blocked on:
//   rid, kind, path       the resource (path: a FIFO's or bound socket's path, else null)
//   blocked_ns            time its sleepers spent asleep on it, summed over tasks (ns; sleeps of
//                         different tasks overlap in time)
//   episodes              their sleeps on it (sum of BLOCKED_ON episodes)
//   tasks                 how many distinct tasks slept on it
//   max_ns                the longest single sleep on it (ns)
//   tids                  those tasks' tids (in no particular order)
// Ordered by blocked_ns descending, then rid.
//
// Runs as-is on LadybugDB and Neo4j 5 (same rows on both and against the model:
// tests/integration/test_exploration_queries.py).
MATCH (t:Task)-[b:BLOCKED_ON]->(r:Resource)
WHERE ($capture_id = '' OR t.capture_id = $capture_id)
WITH r, sum(b.blocked_ns) AS blocked_ns, sum(b.episodes) AS episodes, count(DISTINCT t.tid) AS tasks,
     max(b.max_ns) AS max_ns, collect(DISTINCT t.tid) AS tids
RETURN r.rid AS rid, r.kind AS kind, r.path AS path, blocked_ns, episodes, tasks, max_ns, tids
ORDER BY blocked_ns DESC, rid
LIMIT $limit
