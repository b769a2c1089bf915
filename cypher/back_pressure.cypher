// back_pressure: writers that keep sleeping on a full pipe or socket whose readers never (or hardly
// ever) wait on it empty: the readers are slower than the writer, and the writer's stalls only pace it
// to them. No buffer size helps: the time is the readers' (a consequence of the bottleneck downstream,
// not a cause). The explanation of the `bottleneck` finding names these as its upstream effect.
//
// Not a detector of its own (ftraceipc analyze does not list it): the complement of
// full_buffer_stall.cypher and wake_then_block.cypher, with their parameters and their rule, negated.
// A stall waiting for room is exactly one of the three: buffer-limited when its readers also wait on
// the resource for the writer (at least $min_turns times, $min_wait_percent of its stall time,
// $min_mean_wait_ns on average) and its bursts are larger than the buffer (why: full_buffer_stall.cypher),
// then wake_then_block when the
// writer is a stage fed through another resource, full_buffer_stall otherwise; back-pressure otherwise
// (also when no reader of what it wrote was seen: nothing shows that the buffer limits). Keep the three
// files in step.
//
// Needs: BLOCKED_ON, WAITS_FOR, FLOWS, WRITES
//
// Parameters:
//   $min_episodes = 10       at least this many sleeps of the writer waiting for room on the resource
//   $min_ns = 1000000        and at least this much time asleep so (ns)
//   $min_turns = 5           its readers waited on the resource for it fewer than this many times,
//   $min_wait_percent = 10   or for less than this share of its time stalled,
//   $min_mean_wait_ns = 100000  or less than this long on average (ns), and its stalls too,
//   $pipe_bytes = 65536      or its bursts fit in the buffer (a pipe's when no F_SETPIPE_SZ was seen)
//   $limit = 50              at most this many rows, counted after the $tids scope
//   $capture_id = ""         only this capture's tasks (Neo4j holding several captures); "": all
//   $tids = []               only rows whose tasks include one of these tids (the bottleneck: the
//                            stalls it causes upstream, and its own); []: every task
//
// Returns, one row per (writer, resource):
//   pattern               'back_pressure'
//   tasks                 [writer tid, then its readers' tids (no particular order)]
//   resources             [the rid]
//   count                 the writer's sleeps waiting for room there (BLOCKED_ON write_episodes)
//   critical_ns           the critical path's time inside the writer's sleeps waiting for room there
//                         (BLOCKED_ON crit_room_ns), at most the capture's wall_ns (as full_buffer_stall's)
//   asleep_ns             the time of its sleeps waiting for room (BLOCKED_ON write_ns)
//   writer, writer_comm   the stalled task
//   rid, kind             the full resource
//   readers               the tids that read what it wrote there (FLOWS; empty: none seen)
//   reader_waits          their sleeps on the resource (or its peer) that its writes ended (WAITS_FOR)
//   reader_wait_ns        their time (ns)
//   bytes                 what the writer wrote into the resource (WRITES bytes)
//   burst_bytes           its bursts, as full_buffer_stall estimates them
//   buffer_bytes          the buffer (capacity, or $pipe_bytes for a pipe or FIFO, or 0 for a socket)
//   burst_from            which estimate burst_bytes is ('write', 'reader_wait', 'reader_turn': as in
//                         full_buffer_stall)
// Ordered by critical_ns descending, then asleep_ns descending, writer and rid.
//
// Read: the readers set the pace. Make them faster (or add readers); the writer's stall time is what
// it could do meanwhile, not time the run loses because of the buffer.
//
// Runs as-is on LadybugDB and Neo4j 5 (same rows on both: tests/integration/test_detectors.py).
MATCH (w:Task)-[b:BLOCKED_ON]->(r:Resource)
WHERE ($capture_id = '' OR w.capture_id = $capture_id)
  AND b.write_episodes >= $min_episodes AND b.write_ns >= $min_ns
OPTIONAL MATCH (w)-[f:FLOWS]->(rd:Task)
WHERE f.via = r.rid AND rd.tid <> w.tid
WITH w, r, b, collect(DISTINCT rd.tid) AS readers, collect(DISTINCT f.read_rid) + [r.rid] AS rids
OPTIONAL MATCH (e:Task)-[g:WAITS_FOR]->(w)
WHERE e.tid IN readers AND g.via IN rids
WITH w, r, b, readers, coalesce(sum(g.episodes), 0) AS reader_waits,
     coalesce(sum(g.blocked_ns), 0) AS reader_wait_ns
OPTIONAL MATCH (rc:Task)
WHERE rc.tid IN readers AND rc.capture_id = w.capture_id
WITH w, r, b, readers, reader_waits, reader_wait_ns, coalesce(sum(rc.crit_running_ns), 0) AS readers_running_ns,
     coalesce(sum(rc.crit_runnable_ns), 0) AS readers_runnable_ns
OPTIONAL MATCH (w)-[o:WRITES]->(r)
WITH w, r, b, readers, reader_waits, reader_wait_ns, readers_running_ns, readers_runnable_ns,
     coalesce(sum(o.bytes), 0) AS bytes, coalesce(sum(o.calls), 0) AS writes
WITH *, bytes / (CASE WHEN writes > 0 THEN writes ELSE 1 END) AS per_write,
     bytes / (CASE WHEN reader_waits > 0 THEN reader_waits ELSE 1 END) AS per_wait,
     CASE WHEN readers_running_ns > 0 AND readers_running_ns >= 2 * readers_runnable_ns
          THEN bytes / (CASE WHEN b.write_episodes > 0 THEN b.write_episodes ELSE 1 END) ELSE 0 END AS per_turn,
     CASE WHEN r.kind IN ['pipe', 'fifo'] THEN coalesce(r.capacity, $pipe_bytes)
          ELSE coalesce(r.capacity, 0) END AS buffer_bytes
WITH *, CASE WHEN per_write >= per_wait THEN per_write ELSE per_wait END AS burst0
WITH *, CASE WHEN burst0 <= buffer_bytes AND per_turn > burst0 THEN 'reader_turn'
             WHEN per_write >= per_wait THEN 'write' ELSE 'reader_wait' END AS burst_from
WITH *, CASE burst_from WHEN 'write' THEN per_write WHEN 'reader_wait' THEN per_wait ELSE per_turn END AS burst_bytes
WHERE NOT (reader_waits >= $min_turns
           AND reader_wait_ns * 100 / (CASE WHEN b.write_ns > 0 THEN b.write_ns ELSE 1 END) >= $min_wait_percent
           AND (reader_wait_ns >= $min_mean_wait_ns * reader_waits
       OR b.write_ns >= $min_mean_wait_ns * b.write_episodes)
           AND burst_bytes > buffer_bytes)
WITH *, [w.tid] + readers AS tasks, $tids AS scope
WHERE size(scope) = 0 OR any(s_tid IN tasks WHERE s_tid IN scope)
OPTIONAL MATCH (cap:FtraceipcCapture) WHERE cap.capture_id = w.capture_id
RETURN 'back_pressure' AS pattern, tasks, [r.rid] AS resources, b.write_episodes AS count,
       CASE WHEN coalesce(b.crit_room_ns, 0) < coalesce(cap.wall_ns, 0) THEN coalesce(b.crit_room_ns, 0)
            ELSE coalesce(cap.wall_ns, 0) END AS critical_ns,
       b.write_ns AS asleep_ns, w.tid AS writer, w.comm AS writer_comm,
       r.rid AS rid, r.kind AS kind, readers, reader_waits, reader_wait_ns, bytes, burst_bytes,
       buffer_bytes, burst_from
ORDER BY critical_ns DESC, asleep_ns DESC, writer, rid
LIMIT $limit
