// thundering_herd: several readers or pollers of one resource, woken together by one task's writes,
// of which most go back to sleep on it without reading anything: one write wakes them all, one gets
// the data (every poller of a pipe, epoll without EPOLLEXCLUSIVE, readers of a shared socket).
//
// WAITS_FOR edges into the waker through the resource: the sleepers' sleeps there that its wakeups
// ended, and `consumed`, those after which the sleeper read data from the resource before sleeping
// again. The sleepers must be waiting there for data (most of their sleeps on it are BLOCKED_ON
// read_episodes: in a read/recv, or in a poll a write ended): writers woken as room frees up (all the
// senders of a socket woken by one read) are no herd. A barrier that releases everyone is no herd
// either: each woken task reads what is meant for it (consumed), or none does (consumed 0: required > 0),
// and it releases each task once (at least $min_wakeups sleeps each are required).
// The time is the CPU-side cost: the wake-to-run latency of the waker's wakeups of them through the
// resource (WAKES), prorated to the share of sleeps that ended with nothing to read.
//
// Thresholds (why each value), against what `scripts/detector_survey.py -v` measured on a 2-CPU VM
// (kernel 6.18), per (waker, resource): sleepers, their sleeps it ended, of which consumed:
//   herds: bench/workloads/herd.c in poll mode (4,000 jobs, 32 workers): 32 sleepers, 113,527 sleeps,
//   3,802 consumed (97 % wasted); GNU make 4.3 -j16 over 8 sub-makes (bench/insight.py's
//   make_jobserver_herd): each sub-make woke the 7 others 157 times, 45 consumed (71 % wasted);
//   samples/herd.py: 4 sleepers, 84 sleeps, 20 consumed (76 % wasted);
//   no herds: herd.c with EPOLLEXCLUSIVE (the fix): 12 sleepers, 4,009 sleeps, 2,480 consumed (38 %
//   wasted: under 50); hackbench -g 10 over sockets: writers woken as room frees, up to 9 sleepers and
//   50 sleeps per waker, 0 consumed (and their sleeps wait for room, not data); hackbench over pipes:
//   no waker that ended 5 sleeps each of 2 sleepers on one pipe.
//   - $min_wakees = 3: two sleepers woken by one task are a pair taking turns (chatty_pingpong,
//     cross_cpu_wakeup), not a crowd;
//   - $min_wakeups = 5 sleeps each: a barrier or a start-up signal releases each task once or twice;
//   - $min_wasted_percent = 50: when every write wakes n pollers and one of them reads, (n - 1) / n of
//     the sleeps are wasted, 67 % already at n = 3 (samples/herd.py: 4 pollers woken about 21 times
//     each); readers that each get their own message waste none.
//
// Needs: WAITS_FOR, BLOCKED_ON, WAKES, WRITES, SYSCALL_TIME   (model tables it reads, SYSCALL_TIME: Task
//   crit_running_sys_ns; a capture that cannot have one of them, for lack of events, does not run it:
//   'ftraceipc analyze' says so instead of finding nothing)
//
// Explained by: ftraceipc/detect/detectors/thundering_herd.py
//
// Parameters:
//   $min_wakees = 3          at least this many sleepers woken by the waker through the resource...
//   $min_wakeups = 5         ...each with at least this many sleeps there that its wakeups ended
//   $min_wasted_percent = 50  at least this share of those sleeps ended with nothing read
//   $limit = 50              at most this many rows, counted after the $tids scope
//   $capture_id = ""         only this capture's tasks (Neo4j holding several captures); "": all
//   $tids = []               only rows whose tasks include one of these tids (e.g. the traced
//                            command's threads); []: every task
//
// Returns, one row per (waker, resource):
//   pattern               'thundering_herd'
//   tasks                 [waker tid, then the sleepers' tids, ascending (the same on both backends)]
//   resources             [the rid]
//   count                 the sleepers' sleeps there that the waker ended (WAITS_FOR episodes, summed)
//   critical_ns           the wasted share ((woken - consumed) / woken) of two times on the critical
//                         path: the path's time inside the wakees' sleeps on the resource (BLOCKED_ON
//                         crit_ns, summed over them), and the waker's time waiting for a CPU on it
//                         (Task crit_runnable_ns: the wakees it woke for nothing hold the CPUs it
//                         waits for; with 32 pollers on 2 CPUs that is most of the run); plus
//                         waking_crit_ns, the waker's own time waking them. At most wall_ns
//   asleep_ns             wake_to_run_ns * wasted / count: the wake-to-run time of the useless wakeups
//   waker, waker_comm     the task that woke the herd
//   rid, kind             the resource they waited on
//   wakees                the woken tids (each with >= $min_wakeups such sleeps), ascending
//   n_wakees              how many
//   consumed              the sleeps after which the sleeper read data from the resource
//   wasted                count - consumed: woken, found nothing, waited again
//   wakeups               the waker's wakeups of them through the resource (WAKES)
//   wake_to_run_ns        their wake-to-run latency, summed (ns)
//   writes                the waker's write/send calls into the resource (0 when none: it woke them
//                         another way)
//   waking_ns             the waker's time inside its writes into the resource spent waking the
//                         sleepers that found nothing: WRITES wake_ns (each write's duration fitted
//                         to the wakeups it made: the cost of one wakeup times their number) times
//                         (woken - consumed) / woken; 0 when the fit cannot tell (wake_ns 0)
//   waking_crit_ns        the part of waking_ns on the critical path: at most the waker's time in
//                         syscalls on it (Task crit_running_sys_ns)
//   woken_per_write       count / writes (null when writes = 0): about n_wakees for a true herd
//   consumed_per_write    consumed / writes (null when writes = 0): about 1 when one of them takes
//                         each message
// Ordered by critical_ns descending, then wasted descending, waker and rid.
//
// Read: each write woke woken_per_write of them and consumed_per_write read something. Wake one waiter
// per message (EPOLLEXCLUSIVE, one fd per worker, one dispatcher).
//
// Runs as-is on LadybugDB and Neo4j 5 (same rows on both: tests/integration/test_detectors.py).
MATCH (t:Task)-[a:WAITS_FOR]->(w:Task)
WHERE ($capture_id = '' OR w.capture_id = $capture_id) AND a.episodes >= $min_wakeups
MATCH (t)-[bb:BLOCKED_ON]->(r:Resource)
WHERE r.rid = a.via AND bb.read_episodes * 2 >= bb.episodes
WITH w, r, t, a
ORDER BY t.tid
SKIP 0
WITH w, r, collect(DISTINCT t.tid) AS wakees, count(DISTINCT t) AS n_wakees, sum(a.episodes) AS woken,
     sum(a.consumed) AS consumed
WHERE n_wakees >= $min_wakees AND consumed > 0 AND (woken - consumed) * 100 >= $min_wasted_percent * woken
MATCH (w)-[k:WAKES]->(t2:Task)
WHERE k.via = r.rid AND t2.tid IN wakees
WITH w, r, wakees, n_wakees, woken, consumed, sum(k.wakeups) AS wakeups, sum(k.wake_to_run_ns) AS wake_to_run_ns
OPTIONAL MATCH (w)-[o:WRITES]->(r)
WITH w, r, wakees, n_wakees, woken, consumed, wakeups, wake_to_run_ns, coalesce(sum(o.calls), 0) AS writes,
     coalesce(sum(o.wake_ns), 0) AS write_wake_ns
WITH *, [w.tid] + wakees AS tasks, $tids AS scope
WHERE size(scope) = 0 OR any(s_tid IN tasks WHERE s_tid IN scope)
OPTIONAL MATCH (h:Task)-[bh:BLOCKED_ON]->(r)
WHERE h.tid IN wakees AND h.capture_id = w.capture_id
WITH w, r, wakees, n_wakees, woken, consumed, wakeups, wake_to_run_ns, writes, tasks,
     coalesce(sum(bh.crit_ns), 0) AS wakees_crit, write_wake_ns * (woken - consumed) / woken AS waking
WITH w, r, wakees, n_wakees, woken, consumed, wakeups, wake_to_run_ns, writes, tasks, waking,
     CASE WHEN waking < coalesce(w.crit_running_sys_ns, 0) THEN waking
          ELSE coalesce(w.crit_running_sys_ns, 0) END AS waking_crit,
     (wakees_crit + coalesce(w.crit_runnable_ns, 0)) * (woken - consumed) / woken AS crit
WITH *, crit + waking_crit AS crit_all
OPTIONAL MATCH (cap:FtraceipcCapture) WHERE cap.capture_id = w.capture_id
RETURN 'thundering_herd' AS pattern, tasks, [r.rid] AS resources, woken AS count,
       CASE WHEN crit_all < coalesce(cap.wall_ns, 0) THEN crit_all ELSE coalesce(cap.wall_ns, 0) END AS critical_ns,
       wake_to_run_ns * (woken - consumed) / woken AS asleep_ns, w.tid AS waker, w.comm AS waker_comm,
       r.rid AS rid, r.kind AS kind, wakees, n_wakees, consumed, woken - consumed AS wasted, wakeups,
       wake_to_run_ns, writes, waking AS waking_ns, waking_crit AS waking_crit_ns,
       CASE WHEN writes > 0 THEN 1.0 * woken / writes ELSE null END AS woken_per_write,
       CASE WHEN writes > 0 THEN 1.0 * consumed / writes ELSE null END AS consumed_per_write
ORDER BY critical_ns DESC, wasted DESC, waker, rid
LIMIT $limit
