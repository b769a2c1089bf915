// path_between: how task $from reaches task $to: the shortest chains of task -> task edges from one
// to the other.
//
// Follows FLOWS (writer -> reader), WAKES (waker -> wakee) and WAITS_FOR (sleeper -> the task that
// ended its sleeps) edges in their own direction, any of the three at each hop, from $from to $to,
// at most 8 hops. So "gen reaches count" reads: data or wakeups went from gen, stage by stage, to
// count (or a task waited on the next one); swap $from and $to for the other direction (a pipeline
// reaches back through WAITS_FOR: the reader waits for its writer). WAKES not through IPC (null
// via: futex, exit, a signal) are followed too.
//
// Parallel edges make several edge sequences over the same tasks; each sequence of tasks is one row,
// showing one of them: FLOWS preferred over WAKES over WAITS_FOR, hop by hop, then the vias
// (alphabetical, null last); `paths` says how many there were. No rows when no such chain of at
// most 8 hops exists, when $from = $to or when either task is not in the graph.
//
// Parameters:
//   $from = 0            the tid to start from
//   $to = 0              the tid to reach
//   $limit = 10          at most this many rows (sequences of tasks, all of the shortest length)
//   $capture_id = ""     only this capture's tasks (Neo4j holding several captures); "": all
//
// Returns, one row per shortest sequence of tasks from $from to $to:
//   hops                  number of edges (size(tids) - 1)
//   tids                  the tasks along it: $from first, $to last
//   comms                 their names, in the same order
//   types                 the edge type of each hop (FLOWS, WAKES or WAITS_FOR)
//   vias                  the via resource of each hop (a rid; null for a WAKES not through IPC)
//   paths                 how many shortest edge sequences run through these tasks (parallel edges)
// Ordered by that preference (compared hop by hop from $from: types first, then vias), then the tids.
//
// This is the Neo4j text (ALL SHORTEST, list comprehensions, reduce); path_between.ladybug.cypher is
// the LadybugDB text. Both give the same rows (tests/integration/test_exploration_queries.py).
MATCH (a:Task), (b:Task)
WHERE a.tid = $from AND b.tid = $to AND a.tid <> b.tid
  AND ($capture_id = '' OR a.capture_id = $capture_id) AND b.capture_id = a.capture_id
MATCH p = ALL SHORTEST (a)-[:FLOWS|WAKES|WAITS_FOR]->{1,8}(b)
WITH length(p) AS hops, [n IN nodes(p) | n.tid] AS tids, [n IN nodes(p) | n.comm] AS comms,
     [r IN relationships(p) | type(r)] AS types, [r IN relationships(p) | r.via] AS vias
WITH hops, tids, comms, types, vias,
     reduce(s = '', t IN types | s + CASE t WHEN 'FLOWS' THEN '1' WHEN 'WAKES' THEN '2' ELSE '3' END)
     + '|' + reduce(s = '', v IN vias | s + coalesce(v, '~') + ',') AS pref
WITH hops, tids, comms, collect({types: types, vias: vias, pref: pref}) AS alts, min(pref) AS best
UNWIND alts AS alt
WITH hops, tids, comms, alt, size(alts) AS paths, best
WHERE alt.pref = best
WITH DISTINCT hops, tids, comms, alt.types AS types, alt.vias AS vias, paths, best,
     reduce(s = '', t IN tids | s + right('0000000000' + toString(t), 10)) AS order_tids
RETURN hops, tids, comms, types, vias, paths
ORDER BY best, order_tids
LIMIT $limit
