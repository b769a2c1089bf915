// wake_then_block: a task woken through one resource (its input, A) that also keeps sleeping in a
// write/send on another (its output, B): it gets work, then stalls on a full B before it can go back
// to A, so the stage between A and B runs at the pace of B's reader, not of A's writer.
//
// WAKES edges into the task with via A say it was woken through A; its BLOCKED_ON edge to B with a
// write/send op says it then waited for room in B. The aggregated graph does not order the two (that
// the block follows the wakeup is what the name suggests, not what the query checks): the row says the
// task both is fed through A and stalls writing into B, often enough to matter.
//
// Needs: BLOCKED_ON, WAKES   (model tables it reads; a capture that cannot have one of them, for lack of
//   events, does not run it: 'ftraceipc analyze' says so instead of finding nothing)
//
// Explained by: ftraceipc/detect/detectors/wake_then_block.py
//
// Parameters:
//   $min_wakeups = 5         at least this many wakeups of the task via A (by any wakers but itself)
//   $min_episodes = 5        at least this many sleeps of the task in a write/send on B
//   $min_ns = 1000000        and at least this much time asleep on B in total (ns)
//   $limit = 50              at most this many rows, counted after the $tids scope
//   $capture_id = ""         only this capture's tasks (Neo4j holding several captures); "": all
//   $tids = []               only rows whose tasks include one of these tids (e.g. the traced
//                            command's threads); []: every task
//
// Returns, one row per (task, A, B):
//   pattern               'wake_then_block'
//   tasks                 [the task's tid, then its wakers via A (no particular order)]
//   resources             [A, B]
//   count                 the task's sleeps on B (BLOCKED_ON episodes)
//   critical_ns           the critical path's time inside those sleeps (BLOCKED_ON crit_ns), at most
//                         the capture's wall_ns
//   asleep_ns             the time it slept on B (BLOCKED_ON blocked_ns)
//   tid, comm             the task
//   woken_via             A: the rid it was woken through
//   wakers                the tids that woke it via A
//   wakeups               their wakeups of it via A
//   wake_to_run_ns        summed wake-to-run latency of those wakeups (ns)
//   blocked_on, kind      B: the rid it stalled writing into, and its kind
//   ops                   the syscalls it slept in on B (BLOCKED_ON ops)
//   max_ns                its longest single sleep on B (ns)
//   drainers              the tids that woke it via B (whose reads made room; empty when none seen)
// Ordered by critical_ns descending, then asleep_ns descending, tid, woken_via, blocked_on.
//
// Read: count close to wakeups means nearly every time the task was fed it then had to wait for its
// output to drain. A bigger B, or a faster reader of B, lets the stage keep up with its input.
//
// Runs as-is on LadybugDB and Neo4j 5 (same rows on both: tests/integration/test_detectors.py).
MATCH (w:Task)-[k:WAKES]->(t:Task)
WHERE ($capture_id = '' OR t.capture_id = $capture_id) AND k.via IS NOT NULL AND w.tid <> t.tid
WITH t, k.via AS a_rid, collect(DISTINCT w.tid) AS wakers, sum(k.wakeups) AS wakeups,
     sum(k.wake_to_run_ns) AS wake_to_run_ns
WHERE wakeups >= $min_wakeups
MATCH (t)-[b:BLOCKED_ON]->(rb:Resource)
WHERE rb.rid <> a_rid AND b.episodes >= $min_episodes AND b.blocked_ns >= $min_ns
  AND any(op IN b.ops WHERE op IN ['write', 'writev', 'sendto', 'sendmsg'])
OPTIONAL MATCH (d:Task)-[kd:WAKES]->(t)
WHERE kd.via = rb.rid AND d.tid <> t.tid
WITH t, a_rid, wakers, wakeups, wake_to_run_ns, rb, b, collect(DISTINCT d.tid) AS drainers
WITH *, [t.tid] + wakers AS tasks, $tids AS scope
WHERE size(scope) = 0 OR any(s_tid IN tasks WHERE s_tid IN scope)
OPTIONAL MATCH (cap:FtraceipcCapture) WHERE cap.capture_id = t.capture_id
RETURN 'wake_then_block' AS pattern, tasks, [a_rid, rb.rid] AS resources,
       b.episodes AS count,
       CASE WHEN coalesce(b.crit_ns, 0) < coalesce(cap.wall_ns, 0) THEN coalesce(b.crit_ns, 0)
            ELSE coalesce(cap.wall_ns, 0) END AS critical_ns,
       b.blocked_ns AS asleep_ns, t.tid AS tid, t.comm AS comm, a_rid AS woken_via,
       wakers, wakeups, wake_to_run_ns, rb.rid AS blocked_on, rb.kind AS kind, b.ops AS ops,
       b.max_ns AS max_ns, drainers
ORDER BY critical_ns DESC, asleep_ns DESC, tid, woken_via, blocked_on
LIMIT $limit
