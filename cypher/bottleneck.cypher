// bottleneck: the task whose own time makes up the largest share of the traced command's critical
// path, by a clear lead over every other task: the stage the whole run waits for. At most one row per
// capture (only the largest share can lead all the others).
//
// The critical path (Task crit_*, FtraceipcCapture wall_ns; docs/schema.md) covers
// the command's wall time once, from its end backwards: a task's own time on it is the time it ran,
// waited for a CPU (runnable), or slept outside IPC between the traced tasks (a timer, a file, the
// network; PathSegment state 'blocked' with the syscall as reason). Its sleeps on a pipe or socket
// that another traced task ended are not its own: the path went to that task instead.
// Making the task faster shortens the path until the next task's share is the largest: what fixing
// it could save is its lead over that next task (critical_ns), not its whole share (own_ns). The next
// task's time is the larger of its own time on the path and its own work (the time it was awake and
// not waiting after a wakeup: last_ts - first_ts minus every sleep, BLOCKED_ON blocked_ns and
// blocked_unattributed_ns): a stage that computes alongside the bottleneck is off the path while the
// bottleneck is on it, but the run can never be shorter than its work (two stages of equal work in
// parallel: neither leads, and making one faster saves nothing). Tasks
// that take turns (a ping-pong, a ring, a producer and a consumer serialised by a small buffer) share
// the path evenly and none leads: the cause is the turns (chatty_pingpong, wait_cycle,
// full_buffer_stall), not one task's pace, and no bottleneck is reported. Thresholds: the share is at
// least 20 % of the wall time (below that, five tasks could share the path: making one faster gains
// under 1.25x) and the lead at least 10 % of it (two tasks within 10 % of each other are a pair,
// not a bottleneck and the stage behind it).
//
// Upstream, a bottleneck causes back-pressure: the tasks that feed it (FLOWS into it, up to 4 hops)
// stall writing into full buffers because it reads no faster (BLOCKED_ON write_episodes, write_ns:
// sleeps waiting for room). Those stalls are listed as its effect (stalled, stalled_rids,
// stalled_ns), not as causes of their own. ftraceipc's finding keeps those that
// back_pressure.cypher finds (ftraceipc/detect/detectors/bottleneck.py, refine): a writer whose
// readers also wait on the resource for it, by turns, is buffer-limited, a full_buffer_stall or
// wake_then_block finding of its own.
//
// Needs: BLOCKED_ON, WAKES   (model tables it reads; a capture that cannot have one of them, for lack of
//   events, does not run it: 'ftraceipc analyze' says so instead of finding nothing)
//
// Explained by: ftraceipc/detect/detectors/bottleneck.py
//
// Parameters:
//   $min_percent = 20        the task's own time is at least this percentage of the wall time
//   $min_lead_percent = 10   and exceeds every other task's time on the path and work by this percentage
//                            of the wall time
//   $min_stall_episodes = 10  an upstream writer's sleeps waiting for room to list it (as full_buffer_stall's
//                            and back_pressure's $min_episodes)
//   $min_stall_ns = 1000000  and their time (ns; as their $min_ns)
//   $limit = 50              at most this many rows, counted after the $tids scope
//   $capture_id = ""         only this capture's tasks (Neo4j holding several captures); "": all
//   $tids = []               only rows whose tasks include one of these tids (e.g. the traced
//                            command's threads); []: every task
//
// Returns, at most one row per capture (the task with the largest own time, if it leads):
//   pattern               'bottleneck'
//   tasks                 [the task's tid, then the stalled upstream writers' tids (no particular order)]
//   resources             the rids those writers stall on (no particular order, no repeats)
//   count                 the task's segments on the critical path (Task crit_segments: its
//                         PathSegment nodes)
//   critical_ns           what making it faster could save: its lead (own_ns minus next_ns: then the
//                         path moves to the next task), and at most its running and asleep time on
//                         the path (faster code does not shorten its waits for a CPU)
//   asleep_ns             of its own time, asleep outside IPC (Task crit_blocked_ns)
//   tid, comm             the task
//   wall_ns               the command's wall time (FtraceipcCapture wall_ns): what the path covers
//   own_ns                the task's own time on the critical path (Task crit_ns), at most wall_ns
//   percent               100 * own_ns / wall_ns (integer)
//   next_tid, next_comm   of the other tasks on the path, the one whose time (the larger of its own
//                         time on the path and its own work) is the largest (null if none)
//   next_ns               that time (0 if none)
//   next_percent          100 * next_ns / wall_ns (integer)
//   next_path_ns          its own time on the path (Task crit_ns)
//   next_work_ns          its own work: from its first to its last event, minus its sleeps (includes
//                         waits for a CPU after a preemption, and any time outside the command's span)
//   running_ns            its time running on the path (Task crit_running_ns)
//   runnable_ns           its time runnable, waiting for a CPU, on the path (Task crit_runnable_ns)
//   blocked_ns            its time asleep outside IPC on the path (Task crit_blocked_ns)
//   reasons               the syscalls of those sleeps ('' when unknown), largest first (Task
//                         crit_reasons: of its blocked PathSegment nodes)
//   reason_ns             the time on the path per reason (ns), in the order of reasons (Task
//                         crit_reason_ns)
//   stalled               upstream writers stalled on a full buffer on the way to the task (tids;
//                         one entry per writer and resource)
//   stalled_rids          the resource each of them stalls writing into (same order)
//   stalled_ns            its time asleep there waiting for room (BLOCKED_ON write_ns; same order)
// Ordered by critical_ns descending, then tid (several captures).
//
// Read: percent is the most the run could gain by making this task infinitely fast; critical_ns
// what it gains before the path moves to the next task. running_ns large: it computes; make it faster or split its work across workers.
// runnable_ns large: it waits for a CPU. A bigger buffer in front of it does not help: its upstream
// stalls are its own pace showing.
//
// Runs as-is on LadybugDB and Neo4j 5 (same rows on both: tests/integration/test_detectors.py).
MATCH (t:Task)
WHERE ($capture_id = '' OR t.capture_id = $capture_id) AND t.crit_ns > 0
OPTIONAL MATCH (cap:FtraceipcCapture) WHERE cap.capture_id = t.capture_id
WITH t, coalesce(cap.wall_ns, 0) AS wall_ns
WHERE wall_ns > 0 AND t.crit_ns * 100 >= $min_percent * wall_ns
OPTIONAL MATCH (o:Task)
WHERE o.capture_id = t.capture_id AND o.tid <> t.tid AND o.crit_ns > 0
OPTIONAL MATCH (o)-[ob:BLOCKED_ON]->(:Resource)
WITH t, wall_ns, o, coalesce(sum(ob.blocked_ns), 0) AS o_blocked
WITH t, wall_ns, o, coalesce(o.last_ts - o.first_ts - coalesce(o.blocked_unattributed_ns, 0) - o_blocked, 0) AS o_work
WITH t, wall_ns, o, CASE WHEN o_work > 0 THEN o_work ELSE 0 END AS o_work
WITH t, wall_ns, o, o_work, CASE WHEN o_work > o.crit_ns THEN o_work ELSE o.crit_ns END AS o_ns
ORDER BY o_ns, o.tid DESC
SKIP 0
WITH t, wall_ns, collect(o.tid) AS o_tids, collect(o_ns) AS o_nss, collect(o.crit_ns) AS o_paths, collect(o_work) AS o_works
WITH t, wall_ns, size(o_tids) > 0 AS any_other, o_tids, o_nss, o_paths, o_works
WITH t, wall_ns, CASE WHEN any_other THEN o_tids[-1] END AS next_tid,
     coalesce(CASE WHEN any_other THEN o_nss[-1] END, 0) AS next_ns,
     coalesce(CASE WHEN any_other THEN o_paths[-1] END, 0) AS next_path_ns,
     coalesce(CASE WHEN any_other THEN o_works[-1] END, 0) AS next_work_ns
WHERE 100.0 * (t.crit_ns - next_ns) >= 1.0 * $min_lead_percent * wall_ns
OPTIONAL MATCH (o:Task)
WHERE o.capture_id = t.capture_id AND o.tid = next_tid
WITH t, wall_ns, next_ns, next_path_ns, next_work_ns, next_tid, o.comm AS next_comm
WITH t, wall_ns, next_tid, next_comm, next_ns, next_path_ns, next_work_ns, t.crit_segments AS segments,
     t.crit_reasons AS reasons, t.crit_reason_ns AS reason_ns
OPTIONAL MATCH (u:Task)-[:FLOWS*1..4]->(t)
WITH t, wall_ns, next_tid, next_comm, next_ns, next_path_ns, next_work_ns, segments, reasons, reason_ns, collect(DISTINCT u.tid) AS up
OPTIONAL MATCH (w:Task)-[f:FLOWS]->(v:Task), (w)-[b:BLOCKED_ON]->(r:Resource)
WHERE w.tid IN up AND w.tid <> t.tid AND (v.tid = t.tid OR v.tid IN up) AND r.rid = f.via
  AND w.capture_id = t.capture_id AND b.write_episodes >= $min_stall_episodes AND b.write_ns >= $min_stall_ns
WITH DISTINCT t, wall_ns, next_tid, next_comm, next_ns, next_path_ns, next_work_ns, segments, reasons, reason_ns, w.tid AS wt, r.rid AS rid, b.write_ns AS wns
WITH t, wall_ns, next_tid, next_comm, next_ns, next_path_ns, next_work_ns, segments, reasons, reason_ns, collect(wt) AS stalled, collect(rid) AS stalled_rids,
     collect(wns) AS stalled_ns, collect(DISTINCT wt) AS writers, collect(DISTINCT rid) AS rids
WITH *, [t.tid] + writers AS tasks, $tids AS scope
WHERE size(scope) = 0 OR any(s_tid IN tasks WHERE s_tid IN scope)
WITH *, CASE WHEN t.crit_ns < wall_ns THEN t.crit_ns ELSE wall_ns END AS own_ns
RETURN 'bottleneck' AS pattern, tasks, rids AS resources, segments AS count,
       CASE WHEN own_ns - next_ns < t.crit_running_ns + t.crit_blocked_ns THEN own_ns - next_ns
            ELSE t.crit_running_ns + t.crit_blocked_ns END AS critical_ns,
       t.crit_blocked_ns AS asleep_ns, t.tid AS tid, t.comm AS comm, wall_ns, own_ns,
       100 * own_ns / wall_ns AS percent, next_tid, next_comm, next_ns, 100 * next_ns / wall_ns AS next_percent,
       next_path_ns, next_work_ns,
       t.crit_running_ns AS running_ns,
       t.crit_runnable_ns AS runnable_ns, t.crit_blocked_ns AS blocked_ns, reasons, reason_ns, stalled,
       stalled_rids, stalled_ns
ORDER BY critical_ns DESC, tid
LIMIT $limit
