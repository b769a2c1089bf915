// wait_chain: A waits on B, which waits on C, ...: the chains of main waits between tasks, longest
// and costliest first. The first row is the run's critical path as far as waiting goes: the chain
// behind the task that slept the longest waiting.
//
// A WAITS_FOR edge goes from a sleeper to the task whose wakeup ended its sleeps on one IPC resource;
// `top` marks each task's main wait (its largest WAITS_FOR edge by blocked time), so following top
// edges gives at most one next task per task. A chain starts at a task nobody mainly waits on (the
// end of the line, e.g. the last stage of a pipeline), follows top edges through distinct tasks and
// stops at a task with no main wait, or whose main wait points back into the chain (a cycle: see
// wait_cycle). At most 8 hops are followed: a longer chain is reported cut at its 8th hop (`cut`
// true: its last task mainly waits on yet another task), never dropped.
// A hop is a wait for data (the answer to a request, the previous stage's output): at least
// $min_data_percent of its sleeps ended with data the waiter then read (WAITS_FOR consumed). A wait
// for room in a full buffer is back-pressure, the consequence of a slow reader, not a link to follow
// (back_pressure.cypher, the bottleneck finding): in hackbench -g 10 -l 200 over sockets the senders'
// main waits are for room in their receivers' sockets (43 of the 140 main waits of 5 sleeps or more,
// none consumed), and following them made 41 chains of receivers and senders, which all wait for the
// CPUs. And each hop's time is at least $min_hop_percent of the hop before it: a task that waits on
// the next far less than the one before waits on it mostly computes, and ends the chain (it is where
// the time goes). In `seq 1 5000000 | gzip -6 | gzip -dc | wc -l` gzip -6's main wait was its 20
// waits for seq, 138 ms, against gzip -dc's 4.7 s waiting on gzip -6 (3 %): the chain wc -> gzip -dc
// -> gzip -6 -> seq named seq as its end; it ends at gzip -6 now. In the chains of the samples (relay,
// pipeline, wake_then_block) each hop had 25-100 % of the one before. Each hop needs $min_episodes
// sleeps.
//
// Needs: WAITS_FOR   (model tables it reads; a capture that cannot have one of them, for lack of
//   events, does not run it: 'ftraceipc analyze' says so instead of finding nothing)
//
// Explained by: ftraceipc/detect/detectors/wait_chain.py
//
// Parameters:
//   $min_hops = 2            at least this many hops (2 = three tasks)
//   $min_episodes = 5        each hop's WAITS_FOR edge has at least this many sleeps
//   $min_data_percent = 50   and at least this share of them ended with data read (consumed)
//   $min_hop_percent = 10    and each hop's blocked time is at least this share of the hop's before it
//   $min_ns = 1000000        the head's first hop adds up to at least this much blocked time (ns)
//   $limit = 50              at most this many rows, counted after the $tids scope
//   $capture_id = ""         only this capture's tasks (Neo4j holding several captures); "": all
//   $tids = []               only rows whose tasks include one of these tids (e.g. the traced
//                            command's threads); []: every task
//
// Returns, one row per chain:
//   pattern               'wait_chain'
//   tasks                 the chain's tids: the head (the waiting task) first, then whom it waits on, ...
//   resources             the rid of each hop (where tasks[i] slept waiting for tasks[i+1])
//   count                 the head's sleeps on its first hop (WAITS_FOR episodes)
//   critical_ns           the critical path's time inside the chain's waits (the largest BLOCKED_ON
//                         crit_ns of a hop, tasks[i] asleep on resources[i]: the waits nest, so the
//                         outer one holds the inner ones) beyond the own time on the path (Task
//                         crit_ns) of its slowest waited-on task: what the chain costs when its stages
//                         do not overlap, if it went at the pace of that task; that task's own time
//                         is its own finding (bottleneck). At most the capture's wall_ns
//                         (ftraceipc's finding raises it to the own time on the path of the relays in
//                         the chain's middle, cypher/relays.cypher: what taking them out saves)
//   asleep_ns             the head's blocked time on its first hop (ns): what the chain cost the head
//   hops                  number of hops (size(tasks) - 1)
//   comms                 the tasks' names, in chain order
//   hop_episodes          sleeps per hop
//   hop_ns                blocked time per hop (ns); the waits overlap in time, do not add them up
//   cut                   true when the chain goes on beyond its last task (cut at 8 hops)
// Ordered by critical_ns descending, then asleep_ns descending, hops descending, the head's tid.
//
// Read: the head can only go as fast as the last task of the chain; time spent at the far end
// propagates to every task before it. Shorten the chain (merge stages, let a stage work ahead with a
// bigger buffer) or speed up its tail.
//
// This is the LadybugDB text (per-hop filter, 1-based lists, properties()); wait_chain.cypher is the
// Neo4j text. Both give the same rows (tests/integration/test_detectors.py). Path values are taken
// in the first WITH: Ladybug cannot use a path after a later WITH ... WHERE.
MATCH (a:Task)
WHERE ($capture_id = '' OR a.capture_id = $capture_id)
  AND NOT EXISTS { MATCH (:Task)-[j:WAITS_FOR]->(a)
                   WHERE j.top AND j.episodes >= $min_episodes
                     AND j.consumed * 100 >= $min_data_percent * j.episodes }
MATCH p = (a)-[:WAITS_FOR*1..8 (k, n | WHERE k.top AND k.episodes >= $min_episodes
                                             AND k.consumed * 100 >= $min_data_percent * k.episodes)]->(z:Task)
WITH a, z, properties(nodes(p), 'tid') AS tids, properties(nodes(p), 'comm') AS comms,
     properties(rels(p), 'via') AS vias, properties(rels(p), 'episodes') AS hop_episodes,
     properties(rels(p), 'blocked_ns') AS hop_ns, length(p) AS hops, $min_hop_percent AS hp
WHERE hops >= $min_hops AND hop_ns[1] >= $min_ns AND size(list_distinct(tids)) = size(tids)
  AND all(i IN range(1, size(hop_ns) - 1) WHERE hop_ns[i + 1] * 100 >= hp * hop_ns[i])
OPTIONAL MATCH (z)-[j:WAITS_FOR]->(y:Task)
WHERE j.top AND j.episodes >= $min_episodes AND j.consumed * 100 >= $min_data_percent * j.episodes
  AND j.blocked_ns * 100 >= hp * hop_ns[-1]
WITH a, tids, comms, vias, hop_episodes, hop_ns, hops,
     CASE WHEN y IS NULL THEN false ELSE NOT list_contains(tids, y.tid) END AS cut
WHERE hops = 8 OR NOT cut
WITH *, $tids AS scope
WHERE size(scope) = 0 OR any(s_tid IN tids WHERE s_tid IN scope)
UNWIND range(1, size(vias)) AS i
OPTIONAL MATCH (x:Task)-[bx:BLOCKED_ON]->(rx:Resource)
WHERE x.tid = tids[i] AND rx.rid = vias[i] AND x.capture_id = a.capture_id
WITH a, tids, comms, vias, hop_episodes, hop_ns, hops, cut, max(coalesce(bx.crit_ns, 0)) AS waits_crit
OPTIONAL MATCH (y:Task)
WHERE y.tid IN tids AND y.tid <> a.tid AND y.capture_id = a.capture_id
WITH a, tids, comms, vias, hop_episodes, hop_ns, hops, cut, waits_crit, max(coalesce(y.crit_ns, 0)) AS slowest
WITH *, CASE WHEN waits_crit > slowest THEN waits_crit - slowest ELSE 0 END AS crit
OPTIONAL MATCH (cap:FtraceipcCapture) WHERE cap.capture_id = a.capture_id
RETURN 'wait_chain' AS pattern, tids AS tasks, vias AS resources, hop_episodes[1] AS count,
       CASE WHEN crit < coalesce(cap.wall_ns, 0) THEN crit ELSE coalesce(cap.wall_ns, 0) END AS critical_ns,
       hop_ns[1] AS asleep_ns, hops, comms, hop_episodes, hop_ns, cut
ORDER BY critical_ns DESC, asleep_ns DESC, hops DESC, a.tid
LIMIT $limit
