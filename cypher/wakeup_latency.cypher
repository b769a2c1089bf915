// wakeup_latency: tasks woken through a pipe or socket that then waited long for a CPU: the wakeup
// made them runnable, but they ran only after a long wake-to-run delay (the CPU was busy with other
// work of the same or higher priority, or the wakee's priority is low).
//
// WAKES edges carry the summed and the longest wake-to-run latency of their wakeups. Edges through
// an IPC resource (via not null) are summed per (wakee, via) over all wakers; a row needs enough
// wakeups and a mean latency of at least $min_mean_ns.
//
// Needs: WAKES   (model tables it reads; a capture that cannot have one of them, for lack of
//   events, does not run it: 'ftraceipc analyze' says so instead of finding nothing)
//
// Explained by: ftraceipc/detect/detectors/wakeup_latency.py
//
// Parameters:
//   $min_wakeups = 10        at least this many wakeups of the wakee through the resource
//   $min_mean_ns = 500000    and a mean wake-to-run latency of at least this (ns)
//   $min_critical_percent = 10  and the wakee's runnable time on the critical path (critical_ns) at
//                            least this percentage of the wall time. On a machine the command itself
//                            saturates (hackbench: 400 tasks on 2 CPUs), every task waits for a CPU
//                            after its wakeups, a few percent of the path each: that is the command
//                            being CPU-bound (bottleneck, "waiting for a CPU"), and no priority change
//                            can help all of them. Below 10 % a better priority gains under 1.1x.
//   $limit = 50              at most this many rows, counted after the $tids scope
//   $capture_id = ""         only this capture's tasks (Neo4j holding several captures); "": all
//   $tids = []               only rows whose tasks include one of these tids (e.g. the traced
//                            command's threads); []: every task
//
// Returns, one row per (wakee, resource):
//   pattern               'wakeup_latency'
//   tasks                 [wakee tid, then its wakers' tids (no particular order)]
//   resources             [the rid]
//   count                 the wakeups (WAKES wakeups, summed over the wakers)
//   critical_ns           the wakee's runnable time on the critical path (Task crit_runnable_ns), at
//                         most asleep_ns and the capture's wall_ns
//   asleep_ns             their wake-to-run latency, summed (ns): time runnable but not running
//   wakee, wakee_comm     the woken task
//   rid                   the resource it was woken through
//   wakers                who woke it there
//   mean_ns               asleep_ns / count (integer ns)
//   max_ns                the longest single wake-to-run latency (ns)
// Ordered by critical_ns descending, then asleep_ns descending, wakee and rid.
//
// Read: a mean in the milliseconds means the wakee queued behind other work on its CPU. Look at what
// else runs there (CPU hogs, its nice value or SCHED_IDLE/SCHED_BATCH policy, a cpuset that is too
// small); give it a better priority or its own CPU, or move the competing load.
//
// Runs as-is on LadybugDB and Neo4j 5 (same rows on both: tests/integration/test_detectors.py).
MATCH (w:Task)-[k:WAKES]->(t:Task)
WHERE ($capture_id = '' OR t.capture_id = $capture_id) AND k.via IS NOT NULL AND w.tid <> t.tid
WITH t, k.via AS rid, collect(DISTINCT w.tid) AS wakers, sum(k.wakeups) AS wakeups,
     sum(k.wake_to_run_ns) AS wake_to_run_ns, max(k.max_wake_to_run_ns) AS max_ns
WHERE wakeups >= $min_wakeups AND wake_to_run_ns >= $min_mean_ns * wakeups
WITH *, [t.tid] + wakers AS tasks, $tids AS scope
WHERE size(scope) = 0 OR any(s_tid IN tasks WHERE s_tid IN scope)
OPTIONAL MATCH (cap:FtraceipcCapture) WHERE cap.capture_id = t.capture_id
WITH *, coalesce(t.crit_runnable_ns, 0) AS runnable
WITH *, CASE WHEN runnable < wake_to_run_ns THEN runnable ELSE wake_to_run_ns END AS crit
WHERE crit * 100 >= $min_critical_percent * coalesce(cap.wall_ns, 0)
RETURN 'wakeup_latency' AS pattern, tasks, [rid] AS resources, wakeups AS count,
       CASE WHEN crit < coalesce(cap.wall_ns, 0) THEN crit ELSE coalesce(cap.wall_ns, 0) END AS critical_ns,
       wake_to_run_ns AS asleep_ns, t.tid AS wakee, t.comm AS wakee_comm, rid, wakers,
       wake_to_run_ns / wakeups AS mean_ns, max_ns
ORDER BY critical_ns DESC, asleep_ns DESC, wakee, rid
LIMIT $limit
