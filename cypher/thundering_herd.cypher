// thundering_herd: one task whose wakeups through one resource keep waking several tasks at once,
// where one of them would do (every poller of a pipe woken by each write, one gets the data).
//
// WAKES edges are one per (waker, wakee, via): a waker with many wakees through one via, each woken
// many times, is a herd. The aggregated graph cannot tell which wakeups of one write were useless, so
// the time it costs is approximated: the wake-to-run latency of every wakee but the busiest (most
// wakeups; of a tie, the one with the largest wake-to-run sum) is counted, as if the busiest
// one had done all the work. It is the CPU-side cost of the herd (scheduling the useless wakees), not
// the time they slept.
//
// Needs: WAKES, WRITES   (model tables it reads; a capture that cannot have one of them, for lack of
//   events, does not run it: 'ftraceipc analyze' says so instead of finding nothing)
//
// Explained by: ftraceipc/detect/detectors/thundering_herd.py
//
// Parameters:
//   $min_wakees = 3          at least this many distinct tasks woken via the resource...
//   $min_wakeups = 5         ...each of them at least this many times (smaller WAKES edges ignored)
//   $limit = 50              at most this many rows, counted after the $tids scope
//   $capture_id = ""         only this capture's tasks (Neo4j holding several captures); "": all
//   $tids = []               only rows whose tasks include one of these tids (e.g. the traced
//                            command's threads); []: every task
//
// Returns, one row per (waker, resource):
//   pattern               'thundering_herd'
//   tasks                 [waker tid, then the wakees' tids (no particular order)]
//   resources             [the rid]
//   count                 total wakeups of those wakees by the waker via the resource
//   critical_ns           the critical path's time inside the wakees' sleeps on the resource
//                         (BLOCKED_ON crit_ns, summed over them), at most the capture's wall_ns
//   asleep_ns             wake_to_run_ns summed over all wakees but the busiest (the approximation above)
//   waker, waker_comm     the task that woke the herd
//   rid, kind             the resource they were woken through
//   wakees                the woken tids (each with >= $min_wakeups wakeups)
//   n_wakees              how many
//   wake_to_run_ns        wake-to-run latency summed over all of them (ns)
//   top_wakeups           the busiest wakee's wakeups
//   writes                the waker's write/send calls into the resource (0 when none: it woke them
//                         another way, e.g. by reading or closing)
//   wakeups_per_write     count / writes (null when writes = 0): about n_wakees for a true herd,
//                         where every write wakes every waiter
// Ordered by critical_ns descending, then count descending, waker and rid.
//
// Read: wakeups_per_write well above 1 means one write woke several tasks; only one of them can get
// each message. Use one waiter per resource (or EPOLLEXCLUSIVE / a work queue) instead of all polling it.
//
// Runs as-is on LadybugDB and Neo4j 5 (same rows on both: tests/integration/test_detectors.py).
MATCH (w:Task)-[k:WAKES]->(t:Task)
WHERE ($capture_id = '' OR w.capture_id = $capture_id)
  AND k.via IS NOT NULL AND k.wakeups >= $min_wakeups AND t.tid <> w.tid
WITH w, k.via AS rid, collect(DISTINCT t.tid) AS wakees, count(DISTINCT t) AS n_wakees,
     sum(k.wakeups) AS wakeups, sum(k.wake_to_run_ns) AS wake_to_run_ns, max(k.wakeups) AS top_wakeups
WHERE n_wakees >= $min_wakees
MATCH (w)-[k2:WAKES]->(t2:Task)
WHERE k2.via = rid AND k2.wakeups = top_wakeups AND t2.tid <> w.tid
WITH w, rid, wakees, n_wakees, wakeups, wake_to_run_ns, top_wakeups, max(k2.wake_to_run_ns) AS top_wake_to_run_ns
MATCH (r:Resource)
WHERE r.rid = rid AND r.capture_id = w.capture_id
OPTIONAL MATCH (w)-[o:WRITES]->(r)
WITH w, r, wakees, n_wakees, wakeups, wake_to_run_ns, top_wakeups, top_wake_to_run_ns,
     coalesce(sum(o.calls), 0) AS writes
WITH *, [w.tid] + wakees AS tasks, $tids AS scope
WHERE size(scope) = 0 OR any(s_tid IN tasks WHERE s_tid IN scope)
OPTIONAL MATCH (h:Task)-[bh:BLOCKED_ON]->(r)
WHERE h.tid IN wakees
WITH w, r, wakees, n_wakees, wakeups, wake_to_run_ns, top_wakeups, top_wake_to_run_ns, writes, tasks,
     coalesce(sum(bh.crit_ns), 0) AS crit
OPTIONAL MATCH (cap:FtraceipcCapture) WHERE cap.capture_id = w.capture_id
RETURN 'thundering_herd' AS pattern, tasks, [r.rid] AS resources, wakeups AS count,
       CASE WHEN crit < coalesce(cap.wall_ns, 0) THEN crit ELSE coalesce(cap.wall_ns, 0) END AS critical_ns,
       wake_to_run_ns - top_wake_to_run_ns AS asleep_ns, w.tid AS waker, w.comm AS waker_comm,
       r.rid AS rid, r.kind AS kind, wakees, n_wakees, wake_to_run_ns, top_wakeups, writes,
       CASE WHEN writes > 0 THEN 1.0 * wakeups / writes ELSE null END AS wakeups_per_write
ORDER BY critical_ns DESC, count DESC, waker, rid
LIMIT $limit
