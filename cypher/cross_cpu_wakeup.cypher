// cross_cpu_wakeup: pairs of tasks that take turns (one waits while the other runs) and whose wakeups
// of each other through a pipe or socket mostly run the woken task on another CPU than the waker's.
// Each such wakeup costs an inter-processor interrupt, and the woken task runs where the data it is
// about to read is not in cache (the waker just wrote it on its CPU). Since the two never run at the
// same time, one CPU (or two sharing a cache) serves them as well, without those costs.
//
// WAKES edges (one per waker, wakee and via) count in cross_cpu the wakeups whose wakee then ran on
// another CPU; edges through an IPC resource (via not null) are summed per (waker, wakee). Taking turns
// is WAITS_FOR's `turns`: of the wakee's sleeps that the waker ended, those after which the waker went
// to sleep before the wakee slept again, counted against the sleeps after which the wakee read data
// (`consumed`; all its sleeps when it read none, e.g. a writer woken for room). Those are the hand-offs:
// a socketpair reader is also woken, for nothing, when its peer reads (unix_write_space wakes the same
// queue), and its waker, still running, takes no turn then (the xcpu sample: 1,907 sleeps of ping
// ended by pong, 999 with data read, 997 turns). A producer that goes on computing while its consumer
// handles what it sent takes no turns: the two run at the same time, and pinning them to one CPU would
// serialise their work (no row, however many wakeups cross). The time is not measured directly (the
// trace has no cache misses): asleep_ns is the pair's wake-to-run latency prorated to its cross-CPU
// share (wake_to_run_ns * cross_cpu / wakeups), the part of the scheduling delay spent on wakeups that
// crossed.
//
// Thresholds, from the runs of scripts/detector_survey.py (2-CPU VM, kernel 6.18): min_turn_percent
// 80: the ping-pong pairs took turns after 99-100 % of their hand-offs (xcpu 997 of 999 and 1,223 of
// 1,224; socketpair_pingpong 911 and 912 of ~950; late_wakeup 199 of 200), the pairs that compute side
// by side after 0-12 % (xcpu --parallel, hackbench -g 10 over pipes: 0-2 % for its 124 pairs of 50
// wakeups or more, 74-100 % of them across CPUs, which the old rule took for a reason to pin them).
// A bulk transfer takes turns too: `dd if=/dev/zero bs=1M | cat > /dev/null` (dd fills the 64 KiB pipe
// and sleeps, cat drains it and sleeps): dd woke cat 25,502 times, 89 % across, and slept before cat
// did again after 23,995 of cat's 25,500 sleeps that it ended (94 %). The row is right: pinned with
// `taskset -c 0`, 20,000 MiB took 4.5-5.2 s against 14.0-14.8 s on two CPUs (4 runs each, 2-vCPU VM).
// (cat waking dd, for room: turns after 79 % of dd's sleeps, just under the threshold; dd's reads of
// /dev/zero are no data from the pipe.)
// The defaults of min_cross (100) and min_percent (50) are unchanged.
//
// Needs: WAKES, WAITS_FOR   (model tables it reads; a capture that cannot have one of them, for lack of
//   events, does not run it: 'ftraceipc analyze' says so instead of finding nothing)
//
// Explained by: ftraceipc/detect/detectors/cross_cpu_wakeup.py
//
// Parameters:
//   $min_cross = 100         at least this many cross-CPU wakeups of the wakee by the waker
//   $min_percent = 50        and at least this percentage of their wakeups through IPC resources
//   $min_turn_percent = 80   and at least this share of the hand-offs (sleeps of the wakee that the waker
//                            ended and after which it read data) were turns
//   $limit = 50              at most this many rows, counted after the $tids scope
//   $capture_id = ""         only this capture's tasks (Neo4j holding several captures); "": all
//   $tids = []               only rows whose tasks include one of these tids (e.g. the traced
//                            command's threads); []: every task
//
// Returns, one row per pair: pinning the two together serves both ways, so the wakeups the other way
// (wakee waking waker, through IPC resources: at least $min_cross and $min_percent of them across
// CPUs; no turn rule, the pair's turns are established one way) are counted in the same row (back_*).
// When both ways qualify on their own, the row is the one whose waker has the smaller tid:
//   pattern               'cross_cpu_wakeup'
//   tasks                 [waker tid, wakee tid]
//   resources             the rids the wakeups went through, both ways (no particular order)
//   count                 cross-CPU wakeups both ways (cross_count + back_count)
//   critical_ns           what wakeups on the same CPU could save on the path: the wakee's time
//                         waiting for a CPU on the critical path (Task crit_runnable_ns), at most
//                         the wake-to-run latency of its wakeups that crossed CPUs, plus the same for
//                         the waker woken back (0 when that way is not counted), at most the
//                         capture's wall_ns. Not the wakee's whole sleep: while it sleeps the path is
//                         in the waker's work, which pinning does not shorten. perf bench sched pipe:
//                         60 % predicted, 74 % measured with taskset -c 0 (one way only, the old row,
//                         said 32 %); the rest is in the running time (the interrupt, cold caches)
//   asleep_ns             wake_to_run_ns * cross_count / wakeups, plus the same the other way (ns;
//                         the approximation above)
//   waker, waker_comm     the waking task
//   wakee, wakee_comm     the woken task
//   cross_count           cross-CPU wakeups of the wakee by the waker (WAKES cross_cpu, summed)
//   wakeups               all their wakeups through those resources
//   percent               100 * cross_count / wakeups (integer)
//   wake_to_run_ns        summed wake-to-run latency of all those wakeups (ns)
//   sleeps                the wakee's sleeps on IPC resources that the waker ended (WAITS_FOR episodes)
//   consumed              of those, the ones after which the wakee read data from the resource
//   turns                 of those, the ones after which the waker slept before the wakee did again
//   back_count            cross-CPU wakeups of the waker by the wakee (0 when under the thresholds)
//   back_wakeups          all the wakee's wakeups of the waker through IPC resources
//   back_percent          100 * back_count / back_wakeups (integer; 0 when not counted)
//   back_wake_to_run_ns   their summed wake-to-run latency (ns; 0 when not counted)
// Ordered by critical_ns descending, then count descending, waker and wakee.
//
// Read: two tasks that hand work to each other and wait for the answer are cheaper on one CPU (or on
// CPUs that share a cache): pin them together (taskset, sched_setaffinity, cpusets), or batch messages
// so that fewer wakeups are needed.
//
// Runs as-is on LadybugDB and Neo4j 5 (same rows on both: tests/integration/test_detectors.py).
MATCH (w:Task)-[k:WAKES]->(t:Task)
WHERE ($capture_id = '' OR w.capture_id = $capture_id)
  AND k.via IS NOT NULL AND w.tid <> t.tid AND w.tid <> 0
WITH w, t, collect(DISTINCT k.via) AS resources, sum(k.wakeups) AS wakeups, sum(k.cross_cpu) AS cross,
     sum(k.wake_to_run_ns) AS wake_to_run_ns
WHERE cross >= $min_cross AND cross * 100 >= $min_percent * wakeups
MATCH (t)-[a:WAITS_FOR]->(w)
WITH w, t, resources, wakeups, cross, wake_to_run_ns, sum(a.episodes) AS sleeps, sum(a.consumed) AS consumed,
     sum(a.turns) AS turns
WHERE turns * 100 >= $min_turn_percent * (CASE WHEN consumed > 0 THEN consumed ELSE sleeps END)
OPTIONAL MATCH (t)-[k2:WAKES]->(w)
WHERE k2.via IS NOT NULL
WITH w, t, resources, wakeups, cross, wake_to_run_ns, sleeps, consumed, turns,
     collect(DISTINCT k2.via) AS back_vias, coalesce(sum(k2.wakeups), 0) AS back_wakeups,
     coalesce(sum(k2.cross_cpu), 0) AS back_cross0, coalesce(sum(k2.wake_to_run_ns), 0) AS back_wtr
WITH *, back_cross0 >= $min_cross AND back_cross0 * 100 >= $min_percent * back_wakeups AS back_crosses
OPTIONAL MATCH (w)-[a2:WAITS_FOR]->(t)
WITH w, t, resources, wakeups, cross, wake_to_run_ns, sleeps, consumed, turns, back_vias, back_wakeups,
     back_cross0, back_wtr, back_crosses, coalesce(sum(a2.episodes), 0) AS back_sleeps,
     coalesce(sum(a2.consumed), 0) AS back_consumed, coalesce(sum(a2.turns), 0) AS back_turns
// both ways take turns: one row for the pair, the one whose waker has the smaller tid
WHERE NOT (back_crosses AND back_sleeps > 0
           AND back_turns * 100 >= $min_turn_percent * (CASE WHEN back_consumed > 0 THEN back_consumed ELSE back_sleeps END))
   OR w.tid < t.tid
WITH *, [w.tid, t.tid] AS tasks, $tids AS scope
WHERE size(scope) = 0 OR any(s_tid IN tasks WHERE s_tid IN scope)
WITH *, wake_to_run_ns * cross / wakeups AS cross_wait,
     CASE WHEN back_crosses THEN back_cross0 ELSE 0 END AS back_count
WITH *, CASE WHEN back_count > 0 THEN back_wtr * back_count / back_wakeups ELSE 0 END AS back_wait
WITH *, CASE WHEN coalesce(t.crit_runnable_ns, 0) < cross_wait THEN coalesce(t.crit_runnable_ns, 0)
             ELSE cross_wait END AS crit,
     CASE WHEN coalesce(w.crit_runnable_ns, 0) < back_wait THEN coalesce(w.crit_runnable_ns, 0)
             ELSE back_wait END AS back_crit
WITH *, CASE WHEN back_count > 0 THEN back_vias ELSE [] END AS more_rids
UNWIND (resources + more_rids) AS rid
WITH w, t, tasks, wakeups, cross, wake_to_run_ns, sleeps, consumed, turns, back_wakeups, back_count,
     back_wtr, cross_wait, back_wait, crit, back_crit, collect(DISTINCT rid) AS rids
OPTIONAL MATCH (cap:FtraceipcCapture) WHERE cap.capture_id = t.capture_id
RETURN 'cross_cpu_wakeup' AS pattern, tasks, rids AS resources, cross + back_count AS count,
       CASE WHEN crit + back_crit < coalesce(cap.wall_ns, 0) THEN crit + back_crit
            ELSE coalesce(cap.wall_ns, 0) END AS critical_ns,
       cross_wait + back_wait AS asleep_ns, w.tid AS waker, w.comm AS waker_comm,
       t.tid AS wakee, t.comm AS wakee_comm, cross AS cross_count, wakeups, 100 * cross / wakeups AS percent,
       wake_to_run_ns, sleeps, consumed, turns, back_count, back_wakeups,
       CASE WHEN back_wakeups > 0 THEN 100 * back_count / back_wakeups ELSE 0 END AS back_percent,
       CASE WHEN back_count > 0 THEN back_wtr ELSE 0 END AS back_wake_to_run_ns
ORDER BY critical_ns DESC, count DESC, waker, wakee
LIMIT $limit
