// wake_then_block: a pipeline stage that is woken through its input (A), reads it, and then stalls
// writing into its output (B), whose reader takes turns with it: each batch it is fed, it can pass on
// only what B holds before it sleeps again, and while it sleeps on B it does not take its next input.
//
// The stage: WAITS_FOR edges of the task through A (its sleeps on A that another task ended) after
// which it read data from A (`consumed`: a task woken through a resource it only writes, e.g. a writer
// woken as room frees up, is not fed through it). Its stall: sleeps waiting for room in B (BLOCKED_ON
// write_*), with B's readers also waiting on B for it and batches larger than B's buffer (the
// full_buffer_stall rule, same parameters and thresholds, explained there: the buffer limits; a reader
// that never waits is back-pressure, back_pressure.cypher). One row per (stage, B), its inputs listed
// (never one row per pair of its resources). The stall is this finding's alone: full_buffer_stall
// leaves out writers that are stages (same $min_fed), so it is counted once.
//
// Default min_fed 5: the stages of realistic pipelines were fed hundreds of times (the wake_then_block
// sample's mid 40 times in 41 sleeps on its input; in `seq | gzip -6 | gzip -dc | wc -l` gzip -dc 135 of
// 136, gzip -6 20 of 20), a writer that is no stage 0 times (hackbench's senders are woken through the
// sockets they write, for room, and never read them), so 5 only keeps out a few reads at start-up.
//
// Needs: BLOCKED_ON, WAITS_FOR, FLOWS, WRITES   (model tables it reads; a capture that cannot have one of them,
//   for lack of events, does not run it: 'ftraceipc analyze' says so instead of finding nothing)
//
// Explained by: ftraceipc/detect/detectors/wake_then_block.py
//
// Parameters:
//   $min_fed = 5             at least this many of its sleeps on its inputs ended with data it then read
//   $min_episodes = 10       at least this many sleeps waiting for room in B
//   $min_ns = 1000000        and at least this much time asleep so (ns)
//   $min_turns = 5           B's readers waited on B for it at least this many times...
//   $min_wait_percent = 10   ...for at least this share of its time stalled on B...
//   $min_mean_wait_ns = 100000  ...and this long on average (ns), or its stalls on B were
//   $pipe_bytes = 65536      B's buffer when it is a pipe or FIFO and no F_SETPIPE_SZ was seen
//   $limit = 50              at most this many rows, counted after the $tids scope
//   $capture_id = ""         only this capture's tasks (Neo4j holding several captures); "": all
//   $tids = []               only rows whose tasks include one of these tids (e.g. the traced
//                            command's threads); []: every task
//
// Returns, one row per (task, B):
//   pattern               'wake_then_block'
//   tasks                 [the task's tid, then the tids that fed it, then B's readers (no particular order)]
//   resources             its inputs (no particular order), then B
//   count                 the task's sleeps waiting for room in B (BLOCKED_ON write_episodes)
//   critical_ns           the critical path's time inside its sleeps waiting for room in B (BLOCKED_ON
//                         crit_room_ns), at most the capture's wall_ns
//   asleep_ns             the time of its sleeps waiting for room in B (BLOCKED_ON write_ns)
//   tid, comm             the task
//   inputs                the rids it was fed through (A)
//   wakers                the tids whose wakeups through them ended its sleeps there
//   woken                 those sleeps (WAITS_FOR episodes, summed)
//   fed                   those after which it read data from the input (WAITS_FOR consumed, summed)
//   blocked_on, kind      B: the rid it stalled writing into, and its kind
//   max_ns                its longest single sleep on B (ns)
//   readers               B's readers (FLOWS from the task through B)
//   reader_waits          their sleeps on B (or its peer) that the task's writes ended (WAITS_FOR)
//   reader_wait_ns        their time (ns)
//   drainers              the tids that woke it through B (whose reads made room; empty when none seen)
//   bytes                 what it wrote into B (WRITES bytes)
//   writes                its write/send calls into B (WRITES calls)
//   burst_bytes           the larger of bytes / writes and bytes / reader_waits, or when both fit B and
//                         its readers computed on the path, bytes / count: a batch (as in full_buffer_stall)
//   buffer_bytes          B's buffer, which the batches did not fit in (as in full_buffer_stall)
//   burst_from            'write', 'reader_wait' or 'reader_turn': which estimate (as in full_buffer_stall)
//   readers_running_ns    B's readers' time on the critical path running (Task crit_running_ns, summed)
//   readers_runnable_ns   and waiting for a CPU (crit_runnable_ns)
// Ordered by critical_ns descending, then asleep_ns descending, tid, blocked_on.
//
// Read: fed close to count means each batch it gets is more than B takes at once. Give B room for a
// batch (ftraceipc's advice rounds burst_bytes up to a power of two), or merge the stage with its
// reader or writer.
//
// Runs as-is on LadybugDB and Neo4j 5 (same rows on both: tests/integration/test_detectors.py).
MATCH (t:Task)-[b:BLOCKED_ON]->(rb:Resource)
WHERE ($capture_id = '' OR t.capture_id = $capture_id)
  AND b.write_episodes >= $min_episodes AND b.write_ns >= $min_ns
OPTIONAL MATCH (t)-[f:FLOWS]->(rd:Task)
WHERE f.via = rb.rid AND rd.tid <> t.tid
WITH t, rb, b, collect(DISTINCT rd.tid) AS readers, collect(DISTINCT f.read_rid) + [rb.rid] AS rids
OPTIONAL MATCH (e:Task)-[g:WAITS_FOR]->(t)
WHERE e.tid IN readers AND g.via IN rids
WITH t, rb, b, readers, coalesce(sum(g.episodes), 0) AS reader_waits,
     coalesce(sum(g.blocked_ns), 0) AS reader_wait_ns
OPTIONAL MATCH (rc:Task)
WHERE rc.tid IN readers AND rc.capture_id = t.capture_id
WITH t, rb, b, readers, reader_waits, reader_wait_ns, coalesce(sum(rc.crit_running_ns), 0) AS readers_running_ns,
     coalesce(sum(rc.crit_runnable_ns), 0) AS readers_runnable_ns
OPTIONAL MATCH (t)-[o:WRITES]->(rb)
WITH t, rb, b, readers, reader_waits, reader_wait_ns, readers_running_ns, readers_runnable_ns,
     coalesce(sum(o.bytes), 0) AS bytes, coalesce(sum(o.calls), 0) AS writes
WITH *, bytes / (CASE WHEN writes > 0 THEN writes ELSE 1 END) AS per_write,
     bytes / (CASE WHEN reader_waits > 0 THEN reader_waits ELSE 1 END) AS per_wait,
     CASE WHEN readers_running_ns > 0 AND readers_running_ns >= 2 * readers_runnable_ns
          THEN bytes / (CASE WHEN b.write_episodes > 0 THEN b.write_episodes ELSE 1 END) ELSE 0 END AS per_turn,
     CASE WHEN rb.kind IN ['pipe', 'fifo'] THEN coalesce(rb.capacity, $pipe_bytes)
          ELSE coalesce(rb.capacity, 0) END AS buffer_bytes
WITH *, CASE WHEN per_write >= per_wait THEN per_write ELSE per_wait END AS burst0
WITH *, CASE WHEN burst0 <= buffer_bytes AND per_turn > burst0 THEN 'reader_turn'
             WHEN per_write >= per_wait THEN 'write' ELSE 'reader_wait' END AS burst_from
WITH *, CASE burst_from WHEN 'write' THEN per_write WHEN 'reader_wait' THEN per_wait ELSE per_turn END AS burst_bytes
WHERE reader_waits >= $min_turns
  AND reader_wait_ns * 100 / (CASE WHEN b.write_ns > 0 THEN b.write_ns ELSE 1 END) >= $min_wait_percent
  AND (reader_wait_ns >= $min_mean_wait_ns * reader_waits
       OR b.write_ns >= $min_mean_wait_ns * b.write_episodes)
  AND burst_bytes > buffer_bytes
WITH *, coalesce(rb.peer, '') AS peer
MATCH (t)-[a:WAITS_FOR]->(wk:Task)
WHERE a.consumed > 0 AND a.via <> rb.rid AND a.via <> peer
WITH t, rb, b, readers, reader_waits, reader_wait_ns, bytes, writes, burst_bytes, buffer_bytes,
     burst_from, readers_running_ns, readers_runnable_ns,
     collect(DISTINCT a.via) AS inputs, collect(DISTINCT wk.tid) AS wakers, sum(a.episodes) AS woken,
     sum(a.consumed) AS fed
WHERE fed >= $min_fed
OPTIONAL MATCH (d:Task)-[kd:WAKES]->(t)
WHERE kd.via = rb.rid AND d.tid <> t.tid
WITH t, rb, b, readers, reader_waits, reader_wait_ns, bytes, writes, burst_bytes, buffer_bytes, burst_from,
     readers_running_ns, readers_runnable_ns, inputs, wakers,
     woken, fed, collect(DISTINCT d.tid) AS drainers
WITH *, [t.tid] + wakers + readers AS tasks, $tids AS scope
WHERE size(scope) = 0 OR any(s_tid IN tasks WHERE s_tid IN scope)
OPTIONAL MATCH (cap:FtraceipcCapture) WHERE cap.capture_id = t.capture_id
RETURN 'wake_then_block' AS pattern, tasks, inputs + [rb.rid] AS resources, b.write_episodes AS count,
       CASE WHEN coalesce(b.crit_room_ns, 0) < coalesce(cap.wall_ns, 0) THEN coalesce(b.crit_room_ns, 0)
            ELSE coalesce(cap.wall_ns, 0) END AS critical_ns,
       b.write_ns AS asleep_ns, t.tid AS tid, t.comm AS comm, inputs, wakers, woken, fed, rb.rid AS blocked_on,
       rb.kind AS kind, b.max_ns AS max_ns, readers, reader_waits, reader_wait_ns, drainers, bytes, writes,
       burst_bytes, buffer_bytes, burst_from, readers_running_ns, readers_runnable_ns
ORDER BY critical_ns DESC, asleep_ns DESC, tid, blocked_on
LIMIT $limit
