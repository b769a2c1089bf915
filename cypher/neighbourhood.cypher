// neighbourhood: everything around one task: each edge that touches task $tid, with what it counts.
//
// Out of the task: WRITES, READS and BLOCKED_ON to resources, WAKES (whom it woke), FLOWS (whom its
// writes reached), WAITS_FOR (whom it waited on). Into it: WAKES (who woke it), FLOWS (whose writes
// it read), WAITS_FOR (who waited on it). An edge from the task to itself (it woke itself, read
// what it wrote) is one 'out' row. Sleeps on no known resource are not edges: see
// Task.blocked_unattributed_ns.
//
// Parameters:
//   $tid = 0             the task (0: the idle task, the waker of wakeups from interrupts)
//   $capture_id = ""     only this capture's tasks (Neo4j holding several captures); "": all
//
// Returns, one row per edge:
//   type                  WRITES, READS, BLOCKED_ON, WAKES, FLOWS or WAITS_FOR
//   direction             'out' (the task is the edge's start) or 'in' (its end)
//   other_tid             the task at the other end (null for an edge to a resource)
//   other_rid             the resource at the other end (null for an edge between tasks)
//   count                 WRITES/READS: calls; BLOCKED_ON, WAITS_FOR: sleeps (episodes); WAKES:
//                         wakeups; FLOWS: write calls (messages)
//   bytes                 WRITES/READS/FLOWS: bytes; null for the others
//   ns                    BLOCKED_ON, WAITS_FOR: blocked time (blocked_ns); WAKES: summed
//                         wake-to-run latency (wake_to_run_ns); null for the others
//   via                   the resource the edge is about: other_rid for an edge to a resource, the
//                         via of WAKES/FLOWS/WAITS_FOR (FLOWS: where the writer wrote; null for a
//                         WAKES not through IPC)
// Each (type, direction) is one part of a UNION ALL, ordered by count descending, then other_tid
// or other_rid, then via. Neo4j returns the parts in the order above; LadybugDB may return them in
// another order.
//
// Runs as-is on LadybugDB and Neo4j 5 (same rows on both and against the model:
// tests/integration/test_exploration_queries.py). LadybugDB needs the same column types in every
// part: a null is written `CASE WHEN false THEN 0 END` (INT64) or `CASE WHEN false THEN '' END`
// (STRING), not `null`. `r.rid + ''` is not a typo: LadybugDB 0.22 fills a later part's column
// from another one when the first part returns one property twice (r.rid AS other_rid, r.rid AS via).
MATCH (t:Task)-[e:WRITES]->(r:Resource)
WHERE t.tid = $tid AND ($capture_id = '' OR t.capture_id = $capture_id)
RETURN 'WRITES' AS type, 'out' AS direction, CASE WHEN false THEN 0 END AS other_tid, r.rid AS other_rid,
       e.calls AS count, e.bytes AS bytes, CASE WHEN false THEN 0 END AS ns, r.rid + '' AS via
ORDER BY e.calls DESC, r.rid
UNION ALL
MATCH (t:Task)-[e:READS]->(r:Resource)
WHERE t.tid = $tid AND ($capture_id = '' OR t.capture_id = $capture_id)
RETURN 'READS' AS type, 'out' AS direction, CASE WHEN false THEN 0 END AS other_tid, r.rid AS other_rid,
       e.calls AS count, e.bytes AS bytes, CASE WHEN false THEN 0 END AS ns, r.rid + '' AS via
ORDER BY e.calls DESC, r.rid
UNION ALL
MATCH (t:Task)-[e:BLOCKED_ON]->(r:Resource)
WHERE t.tid = $tid AND ($capture_id = '' OR t.capture_id = $capture_id)
RETURN 'BLOCKED_ON' AS type, 'out' AS direction, CASE WHEN false THEN 0 END AS other_tid, r.rid AS other_rid,
       e.episodes AS count, CASE WHEN false THEN 0 END AS bytes, e.blocked_ns AS ns, r.rid + '' AS via
ORDER BY e.episodes DESC, r.rid
UNION ALL
MATCH (t:Task)-[e:WAKES]->(o:Task)
WHERE t.tid = $tid AND ($capture_id = '' OR t.capture_id = $capture_id)
RETURN 'WAKES' AS type, 'out' AS direction, o.tid AS other_tid, CASE WHEN false THEN '' END AS other_rid,
       e.wakeups AS count, CASE WHEN false THEN 0 END AS bytes, e.wake_to_run_ns AS ns, e.via AS via
ORDER BY e.wakeups DESC, o.tid, e.via
UNION ALL
MATCH (o:Task)-[e:WAKES]->(t:Task)
WHERE t.tid = $tid AND ($capture_id = '' OR t.capture_id = $capture_id) AND o.tid <> t.tid
RETURN 'WAKES' AS type, 'in' AS direction, o.tid AS other_tid, CASE WHEN false THEN '' END AS other_rid,
       e.wakeups AS count, CASE WHEN false THEN 0 END AS bytes, e.wake_to_run_ns AS ns, e.via AS via
ORDER BY e.wakeups DESC, o.tid, e.via
UNION ALL
MATCH (t:Task)-[e:FLOWS]->(o:Task)
WHERE t.tid = $tid AND ($capture_id = '' OR t.capture_id = $capture_id)
RETURN 'FLOWS' AS type, 'out' AS direction, o.tid AS other_tid, CASE WHEN false THEN '' END AS other_rid,
       e.messages AS count, e.bytes AS bytes, CASE WHEN false THEN 0 END AS ns, e.via AS via
ORDER BY e.messages DESC, o.tid, e.via
UNION ALL
MATCH (o:Task)-[e:FLOWS]->(t:Task)
WHERE t.tid = $tid AND ($capture_id = '' OR t.capture_id = $capture_id) AND o.tid <> t.tid
RETURN 'FLOWS' AS type, 'in' AS direction, o.tid AS other_tid, CASE WHEN false THEN '' END AS other_rid,
       e.messages AS count, e.bytes AS bytes, CASE WHEN false THEN 0 END AS ns, e.via AS via
ORDER BY e.messages DESC, o.tid, e.via
UNION ALL
MATCH (t:Task)-[e:WAITS_FOR]->(o:Task)
WHERE t.tid = $tid AND ($capture_id = '' OR t.capture_id = $capture_id)
RETURN 'WAITS_FOR' AS type, 'out' AS direction, o.tid AS other_tid, CASE WHEN false THEN '' END AS other_rid,
       e.episodes AS count, CASE WHEN false THEN 0 END AS bytes, e.blocked_ns AS ns, e.via AS via
ORDER BY e.episodes DESC, o.tid, e.via
UNION ALL
MATCH (o:Task)-[e:WAITS_FOR]->(t:Task)
WHERE t.tid = $tid AND ($capture_id = '' OR t.capture_id = $capture_id) AND o.tid <> t.tid
RETURN 'WAITS_FOR' AS type, 'in' AS direction, o.tid AS other_tid, CASE WHEN false THEN '' END AS other_rid,
       e.episodes AS count, CASE WHEN false THEN 0 END AS bytes, e.blocked_ns AS ns, e.via AS via
ORDER BY e.episodes DESC, o.tid, e.via
