// wait_cycle: cycles in the wait-for graph: A mainly waits on B, B on C, ..., and the last on A. The
// tasks take turns: while one runs the others sleep, so the group runs one task at a time however
// many CPUs there are (a token passed round a ring, a request/response loop through several hops).
//
// Edges are WAITS_FOR with `top` (each task's main wait: its largest WAITS_FOR edge by blocked time;
// see wait_chain), so each task is on at most one cycle. Each hop needs $min_episodes sleeps. Two
// tasks waiting on each other (length 2) are every request/response pair and every producer and
// consumer that take turns on a full pipe; chatty_pingpong and full_buffer_stall cover those, so
// cycles start at length 3 by default. At most 8 tasks per cycle.
//
// Needs: WAITS_FOR   (model tables it reads; a capture that cannot have one of them, for lack of
//   events, does not run it: 'ftraceipc analyze' says so instead of finding nothing)
//
// Explained by: ftraceipc/detect/detectors/wait_cycle.py
//
// Parameters:
//   $min_length = 3          at least this many tasks on the cycle
//   $min_episodes = 5        each hop's WAITS_FOR edge has at least this many sleeps
//   $min_ns = 1000000        the cycle's longest hop has at least this much blocked time (ns)
//   $limit = 50              at most this many rows, counted after the $tids scope
//   $capture_id = ""         only this capture's tasks (Neo4j holding several captures); "": all
//   $tids = []               only rows whose tasks include one of these tids (e.g. the traced
//                            command's threads); []: every task
//
// Returns, one row per cycle:
//   pattern               'wait_cycle'
//   tasks                 the cycle's tids, from the smallest, each waiting on the next (the last on the first)
//   resources             the rid of each hop (where tasks[i] slept waiting for the next task)
//   count                 the fewest sleeps on any hop: about how many times the turn went round
//   critical_ns           the critical path's time inside the cycle's waits (the largest BLOCKED_ON
//                         crit_ns of a hop, tasks[i] asleep on resources[i]: the waits nest, so the
//                         outer one holds the inner ones) beyond the own time on the path (Task
//                         crit_ns) of its slowest task: what taking turns costs, if the tasks
//                         overlapped and the cycle went at that task's pace. At most wall_ns
//   asleep_ns             the longest hop's blocked time (ns): wall time during which the cycle waited
//                         for a turn, at least (the hops' waits overlap: while one task runs, all the
//                         others wait, so their sum would count the same wall time several times)
//   length                number of tasks
//   comms                 their names, in cycle order
//   hop_episodes          sleeps per hop
//   hop_ns                blocked time per hop (ns)
// Ordered by critical_ns descending, then asleep_ns descending, the first tid.
//
// Read: only one task of the cycle runs at a time. Let the tasks work ahead (several messages in
// flight, bigger buffers) so they can overlap, or merge them into one task that does the steps in turn.
//
// This is the Neo4j text (quantified path pattern, 0-based lists); wait_cycle.ladybug.cypher is the
// LadybugDB text. Both give the same rows (tests/integration/test_detectors.py).
MATCH p = (a:Task)(()-[k:WAITS_FOR WHERE k.top AND k.episodes >= $min_episodes]->()){2,8}(a)
WHERE ($capture_id = '' OR a.capture_id = $capture_id)
WITH a, [n IN nodes(p) | n.tid][..-1] AS tids, [n IN nodes(p) | n.comm][..-1] AS comms,
     [r IN relationships(p) | r.via] AS vias, [r IN relationships(p) | r.episodes] AS hop_episodes,
     [r IN relationships(p) | r.blocked_ns] AS hop_ns, length(p) AS length
WHERE length >= $min_length AND all(x IN tids WHERE x >= a.tid)
  AND all(i IN range(0, size(tids) - 2) WHERE NOT tids[i] IN tids[i + 1..])
WITH a, tids, comms, vias, hop_episodes, hop_ns, length,
     reduce(m = 0, x IN hop_ns | CASE WHEN x > m THEN x ELSE m END) AS asleep_ns,
     reduce(m = hop_episodes[0], x IN hop_episodes | CASE WHEN x < m THEN x ELSE m END) AS count
WHERE asleep_ns >= $min_ns
WITH *, $tids AS scope
WHERE size(scope) = 0 OR any(s_tid IN tids WHERE s_tid IN scope)
UNWIND range(0, size(vias) - 1) AS i
OPTIONAL MATCH (x:Task)-[bx:BLOCKED_ON]->(rx:Resource)
WHERE x.tid = tids[i] AND rx.rid = vias[i] AND x.capture_id = a.capture_id
WITH a, tids, comms, vias, hop_episodes, hop_ns, length, asleep_ns, count, max(coalesce(bx.crit_ns, 0)) AS waits_crit
OPTIONAL MATCH (y:Task)
WHERE y.tid IN tids AND y.capture_id = a.capture_id
WITH a, tids, comms, vias, hop_episodes, hop_ns, length, asleep_ns, count, waits_crit,
     max(coalesce(y.crit_ns, 0)) AS slowest
WITH *, CASE WHEN waits_crit > slowest THEN waits_crit - slowest ELSE 0 END AS crit
OPTIONAL MATCH (cap:FtraceipcCapture) WHERE cap.capture_id = a.capture_id
RETURN 'wait_cycle' AS pattern, tids AS tasks, vias AS resources, count,
       CASE WHEN crit < coalesce(cap.wall_ns, 0) THEN crit ELSE coalesce(cap.wall_ns, 0) END AS critical_ns,
       asleep_ns, length, comms, hop_episodes, hop_ns
ORDER BY critical_ns DESC, asleep_ns DESC, a.tid
LIMIT $limit
