// full_buffer_stall: writers that kept sleeping in a write/send on a pipe or socket whose buffer was
// full, and who drained it (woke them through that resource).
//
// A BLOCKED_ON edge whose ops include write, writev, sendto or sendmsg is a task that found no room in
// the resource and slept until a reader made some; many such sleeps adding up to real time mean the
// writer runs faster than its reader (or the buffer is too small) and waits for it. The WAKES edges
// into the writer with that resource as via name the tasks whose reads made room (the drainers).
// A sleep whose ops also list a read (a task reading and writing one socket end) counts too: the
// aggregated edge cannot split its time between the ops; see the ops column.
//
// Needs: BLOCKED_ON   (model tables it reads; a capture that cannot have one of them, for lack of
//   events, does not run it: 'ftraceipc analyze' says so instead of finding nothing)
//
// Explained by: ftraceipc/detect/detectors/full_buffer_stall.py
//
// Parameters:
//   $min_episodes = 10       at least this many sleeps of the writer on the resource
//   $min_ns = 1000000        and at least this much time asleep there in total (ns)
//   $limit = 50              at most this many rows, counted after the $tids scope
//   $capture_id = ""         only this capture's tasks (Neo4j holding several captures); "": all
//   $tids = []               only rows whose tasks include one of these tids (e.g. the traced
//                            command's threads); []: every task
//
// Returns, one row per (writer, resource):
//   pattern               'full_buffer_stall'
//   tasks                 [writer tid, then the drainers' tids (no particular order)]
//   resources             [the rid]
//   count                 the writer's sleeps on the resource (BLOCKED_ON episodes)
//   critical_ns           the critical path's time inside those sleeps (BLOCKED_ON crit_ns: spent on
//                         the path of whoever ended them), at most the capture's wall_ns
//   asleep_ns             the time the writer slept there (BLOCKED_ON blocked_ns)
//   writer, writer_comm   the stalled task
//   rid, kind             the full resource
//   ops                   the syscalls it slept in there (BLOCKED_ON ops)
//   max_ns                its longest single sleep there (ns)
//   drainers              tids that woke it via the resource (empty: no waker seen, e.g. the
//                         capture missed them)
//   drain_wakeups         their wakeups of it via the resource (0 when none)
//   drain_wake_to_run_ns  summed wake-to-run latency of those wakeups (ns; 0 when none)
// Ordered by critical_ns descending, then asleep_ns descending, writer and rid.
//
// Read: asleep_ns / count is the mean stall; drain_wakeups close to count means each sleep ended
// because the drainer read, i.e. the writer is paced by its reader. Raise the buffer size or make
// the reader faster (or batch fewer, larger reads).
//
// Runs as-is on LadybugDB and Neo4j 5 (same rows on both: tests/integration/test_detectors.py).
MATCH (w:Task)-[b:BLOCKED_ON]->(r:Resource)
WHERE ($capture_id = '' OR w.capture_id = $capture_id)
  AND b.episodes >= $min_episodes AND b.blocked_ns >= $min_ns
  AND any(op IN b.ops WHERE op IN ['write', 'writev', 'sendto', 'sendmsg'])
OPTIONAL MATCH (d:Task)-[k:WAKES]->(w)
WHERE k.via = r.rid AND d.tid <> w.tid
WITH w, r, b, collect(DISTINCT d.tid) AS drainers, coalesce(sum(k.wakeups), 0) AS drain_wakeups,
     coalesce(sum(k.wake_to_run_ns), 0) AS drain_wake_to_run_ns
WITH *, [w.tid] + drainers AS tasks, $tids AS scope
WHERE size(scope) = 0 OR any(s_tid IN tasks WHERE s_tid IN scope)
OPTIONAL MATCH (cap:FtraceipcCapture) WHERE cap.capture_id = w.capture_id
RETURN 'full_buffer_stall' AS pattern, tasks, [r.rid] AS resources,
       b.episodes AS count,
       CASE WHEN coalesce(b.crit_ns, 0) < coalesce(cap.wall_ns, 0) THEN coalesce(b.crit_ns, 0)
            ELSE coalesce(cap.wall_ns, 0) END AS critical_ns,
       b.blocked_ns AS asleep_ns, w.tid AS writer, w.comm AS writer_comm,
       r.rid AS rid, r.kind AS kind, b.ops AS ops, b.max_ns AS max_ns, drainers, drain_wakeups,
       drain_wake_to_run_ns
ORDER BY critical_ns DESC, asleep_ns DESC, writer, rid
LIMIT $limit
