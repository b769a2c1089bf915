// chatty_pingpong: two tasks that keep sending each other small messages and waking each other for
// each one: every round trip costs two syscalls and two wakeups (a context switch each way, often a
// cross-CPU one) for a few bytes.
//
// FLOWS both ways between a and b, many messages each way, small on average, and WAKES both ways
// through the resources those flows use (a write of a wakes b where b reads it, and back).
//
// Needs: FLOWS, WAKES, SYSCALL_TIME   (model tables it reads, SYSCALL_TIME: Task crit_running_sys_ns,
//   which counts polls only when they are traced; a capture that cannot have one of them, for lack of
//   events, does not run it: 'ftraceipc analyze' says so instead of finding nothing; 'ftraceipc capture
//   -D chatty_pingpong' traces the events they need: ftraceipc/model/needs.py)
//
// Explained by: ftraceipc/detect/detectors/chatty_pingpong.py
//
// Parameters:
//   $min_messages = 100      at least this many messages each way (FLOWS messages, summed per direction)
//   $max_bytes = 256         mean bytes per message at most this, each way
//   $min_wakeups = 10        at least this many wakeups each way through the pair's flow resources
//   $limit = 50              at most this many rows, counted after the $tids scope
//   $capture_id = ""         only this capture's tasks (Neo4j holding several captures); "": all
//   $tids = []               only rows whose tasks include one of these tids (e.g. the traced
//                            command's threads); []: every task
//
// Returns, one row per unordered pair (a = the smaller tid):
//   pattern               'chatty_pingpong'
//   tasks                 [a, b]
//   resources             the rids the pair's FLOWS go through, both ways (via and read_rid; for a
//                         socket both ends, for a pipe the pipe; no particular order, no repeats)
//   count                 messages both ways (messages_ab + messages_ba)
//   critical_ns           what batching could save: the per-message part of the two tasks' own time on
//                         the critical path, their time inside traced syscalls (Task crit_running_sys_ns:
//                         the reads, writes, polls and the wakeups they make) and waiting for a CPU
//                         (crit_runnable_ns: after each hand-off), each task's weighted by the share of
//                         its messages (sent and received, FLOWS) that are this pair's, summed, at most
//                         wall_ns. Their running time outside syscalls (the work each request asks for,
//                         and the event loop) is left out: batching does not remove it. That makes it
//                         a low estimate where the event loop is most of it (measured untraced on this
//                         project's evaluation: redis-benchmark -c 1 GET, predicted 76 %, pipelining
//                         saved 92 %; pgbench -S -c 1, predicted 55 %, saved 71 %)
//   asleep_ns             wake-to-run latency of the pair's wakeups of each other through those
//                         resources, both ways (wake_to_run_ab + wake_to_run_ba, ns)
//   path_ns               the pair's whole time on the critical path, by the same shares (their
//                         crit_ns: running, waiting for a CPU, asleep outside IPC): the most batching
//                         could ever save, at most wall_ns. A task talking to many peers (a
//                         dispatcher and its workers) lends each pair only its share, so the rows
//                         never sum past its own time. The shares count messages with other tasks
//                         only: FLOWS from a task to itself (its own socket pair or self-pipe, or an end
//                         it held for a moment: redis-server read 2 of a new client's first bytes
//                         through that client's end, which gave it a 150,000-message FLOWS to itself)
//                         are not time spent with a peer
//   a, a_comm, b, b_comm  the two tasks
//   messages_ab, bytes_ab, bytes_per_message_ab   a's writes read by b: count, bytes, mean size
//   messages_ba, bytes_ba, bytes_per_message_ba   the same from b to a
//   wakeups_ab, wake_to_run_ab    a's wakeups of b through the pair's resources, their latency (ns)
//   wakeups_ba, wake_to_run_ba    the same for b waking a
//   cross_ab, cross_ba    of those wakeups, the ones that ran the woken task on another CPU than the
//                         waker's (WAKES cross_cpu): most of them, and pinning the pair to one CPU is
//                         the fix that needs no change to the protocol (cross_cpu_wakeup)
// Ordered by critical_ns descending, then count descending, a and b.
//
// Read: wakeups close to messages each way means each message cost a wakeup of its reader. Batch
// requests (fewer, larger messages), pipeline them, or keep both ends on one thread/CPU.
// asleep_ns is only the scheduling latency; the syscalls' own cost is on top.
//
// Runs as-is on LadybugDB and Neo4j 5 (same rows on both: tests/integration/test_detectors.py).
MATCH (ta:Task)-[f:FLOWS]->(tb:Task)
WHERE ($capture_id = '' OR ta.capture_id = $capture_id) AND ta.tid < tb.tid
WITH ta, tb, sum(f.messages) AS messages_ab, sum(f.bytes) AS bytes_ab,
     collect(DISTINCT f.via) AS via_ab, collect(DISTINCT f.read_rid) AS read_ab
WHERE messages_ab >= $min_messages AND bytes_ab <= $max_bytes * messages_ab
MATCH (tb)-[g:FLOWS]->(ta)
WITH ta, tb, messages_ab, bytes_ab, via_ab, read_ab, sum(g.messages) AS messages_ba, sum(g.bytes) AS bytes_ba,
     collect(DISTINCT g.via) AS via_ba, collect(DISTINCT g.read_rid) AS read_ba
WHERE messages_ba >= $min_messages AND bytes_ba <= $max_bytes * messages_ba
WITH ta, tb, messages_ab, bytes_ab, messages_ba, bytes_ba, via_ab + read_ab + via_ba + read_ba AS rids
MATCH (ta)-[k:WAKES]->(tb)
WHERE k.via IN rids
WITH ta, tb, messages_ab, bytes_ab, messages_ba, bytes_ba, rids, sum(k.wakeups) AS wakeups_ab,
     sum(k.wake_to_run_ns) AS wake_to_run_ab, sum(k.cross_cpu) AS cross_ab
WHERE wakeups_ab >= $min_wakeups
MATCH (tb)-[k2:WAKES]->(ta)
WHERE k2.via IN rids
WITH ta, tb, messages_ab, bytes_ab, messages_ba, bytes_ba, rids, wakeups_ab, wake_to_run_ab, cross_ab,
     sum(k2.wakeups) AS wakeups_ba, sum(k2.wake_to_run_ns) AS wake_to_run_ba, sum(k2.cross_cpu) AS cross_ba
WHERE wakeups_ba >= $min_wakeups
UNWIND rids AS rid
WITH ta, tb, messages_ab, bytes_ab, messages_ba, bytes_ba, wakeups_ab, wake_to_run_ab, wakeups_ba,
     wake_to_run_ba, cross_ab, cross_ba, collect(DISTINCT rid) AS resources
WITH *, [ta.tid, tb.tid] AS tasks, $tids AS scope
WHERE size(scope) = 0 OR any(s_tid IN tasks WHERE s_tid IN scope)
WITH ta, tb, messages_ab, bytes_ab, messages_ba, bytes_ba, wakeups_ab, wake_to_run_ab, wakeups_ba,
     wake_to_run_ba, cross_ab, cross_ba, resources, tasks, messages_ab + messages_ba AS pair
OPTIONAL MATCH (ta)-[xa:FLOWS]->(oa:Task) WHERE oa.tid <> ta.tid
WITH ta, tb, messages_ab, bytes_ab, messages_ba, bytes_ba, wakeups_ab, wake_to_run_ab, wakeups_ba,
     wake_to_run_ba, cross_ab, cross_ba, resources, tasks, pair, coalesce(sum(xa.messages), 0) AS a_out
OPTIONAL MATCH (pa:Task)-[ya:FLOWS]->(ta) WHERE pa.tid <> ta.tid
WITH ta, tb, messages_ab, bytes_ab, messages_ba, bytes_ba, wakeups_ab, wake_to_run_ab, wakeups_ba,
     wake_to_run_ba, cross_ab, cross_ba, resources, tasks, pair, a_out, coalesce(sum(ya.messages), 0) AS a_in
OPTIONAL MATCH (tb)-[xb:FLOWS]->(ob:Task) WHERE ob.tid <> tb.tid
WITH ta, tb, messages_ab, bytes_ab, messages_ba, bytes_ba, wakeups_ab, wake_to_run_ab, wakeups_ba,
     wake_to_run_ba, cross_ab, cross_ba, resources, tasks, pair, a_out + a_in AS a_all, coalesce(sum(xb.messages), 0) AS b_out
OPTIONAL MATCH (pb:Task)-[yb:FLOWS]->(tb) WHERE pb.tid <> tb.tid
WITH ta, tb, messages_ab, bytes_ab, messages_ba, bytes_ba, wakeups_ab, wake_to_run_ab, wakeups_ba,
     wake_to_run_ba, cross_ab, cross_ba, resources, tasks, pair, a_all, b_out, coalesce(sum(yb.messages), 0) AS b_in
WITH ta, tb, messages_ab, bytes_ab, messages_ba, bytes_ba, wakeups_ab, wake_to_run_ab, wakeups_ba,
     wake_to_run_ba, cross_ab, cross_ba, resources, tasks,
     coalesce(ta.crit_ns, 0) * pair / a_all + coalesce(tb.crit_ns, 0) * pair / (b_out + b_in) AS whole,
     (coalesce(ta.crit_running_sys_ns, 0) + coalesce(ta.crit_runnable_ns, 0)) * pair / a_all +
     (coalesce(tb.crit_running_sys_ns, 0) + coalesce(tb.crit_runnable_ns, 0)) * pair / (b_out + b_in) AS crit
OPTIONAL MATCH (cap:FtraceipcCapture) WHERE cap.capture_id = ta.capture_id
RETURN 'chatty_pingpong' AS pattern, tasks, resources,
       messages_ab + messages_ba AS count,
       CASE WHEN crit < coalesce(cap.wall_ns, 0) THEN crit ELSE coalesce(cap.wall_ns, 0) END AS critical_ns,
       wake_to_run_ab + wake_to_run_ba AS asleep_ns,
       CASE WHEN whole < coalesce(cap.wall_ns, 0) THEN whole ELSE coalesce(cap.wall_ns, 0) END AS path_ns,
       ta.tid AS a, ta.comm AS a_comm, tb.tid AS b, tb.comm AS b_comm,
       messages_ab, bytes_ab, 1.0 * bytes_ab / messages_ab AS bytes_per_message_ab,
       messages_ba, bytes_ba, 1.0 * bytes_ba / messages_ba AS bytes_per_message_ba,
       wakeups_ab, wake_to_run_ab, wakeups_ba, wake_to_run_ba, cross_ab, cross_ba
ORDER BY critical_ns DESC, count DESC, a, b
LIMIT $limit
