// full_buffer_stall: writers that keep sleeping on a full pipe or socket whose reader, at other times,
// waits on it empty: the two take turns, and a buffer that holds a whole burst would let them overlap.
//
// A writer's sleeps waiting for room (BLOCKED_ON write_episodes/write_ns: in a write/send, or in a poll
// that a read ended) are back-pressure from its reader: the reader did not keep up. That alone says
// nothing about the buffer: a reader that is simply slower than the writer never waits on the resource
// (steady state), the writer's stalls only pace it to its reader, and no buffer size changes the run's
// time (that is back_pressure.cypher: the bottleneck's upstream effect). The buffer itself limits when
// its readers (FLOWS from the writer through the resource) also wait on it EMPTY in the same run
// (BLOCKED_ON read_episodes on the resource or, for a socket, its peer end): the writer produces in
// bursts bigger than the buffer, stalls while the reader drains it, and the reader then waits while
// the writer prepares the next burst. The bytes written per wait of the readers estimate a burst: a
// buffer that size lets the writer put a whole burst in and go on while the reader drains it.
// A writer that is itself a pipeline stage, fed through another resource that it reads (at least
// $min_fed of its sleeps there ended with data it then read), is wake_then_block's: that finding
// reports the same stall with the stage's input, and the stall is counted once. So every stall waiting
// for room is in exactly one of full_buffer_stall, wake_then_block and back_pressure.cypher.
//
// Thresholds, from the runs of scripts/detector_survey.py (2-CPU VM, kernel 6.18, see each):
//   $min_episodes, $min_ns   THRESHOLDS_STALL
//   $min_turns, $min_wait_ns THRESHOLDS_TURNS
//
// Needs: BLOCKED_ON, FLOWS   (model tables it reads; a capture that cannot have one of them, for lack of
//   events, does not run it: 'ftraceipc analyze' says so instead of finding nothing)
//
// Parameters:
//   $min_episodes = 10       at least this many sleeps of the writer waiting for room on the resource
//   $min_ns = 1000000        and at least this much time asleep so (ns)
//   $min_turns = 5           its readers waited on it empty at least this many times...
//   $min_wait_ns = 1000000   ...for at least this long in all (ns)
//   $min_fed = 5             a writer fed through another resource at least this many times is a stage:
//                            wake_then_block reports it, not this
//   $limit = 50              at most this many rows, counted after the $tids scope
//   $capture_id = ""         only this capture's tasks (Neo4j holding several captures); "": all
//   $tids = []               only rows whose tasks include one of these tids (e.g. the traced
//                            command's threads); []: every task
//
// Returns, one row per (writer, resource):
//   pattern               'full_buffer_stall'
//   tasks                 [writer tid, then its readers' tids (no particular order)]
//   resources             [the rid]
//   count                 the writer's sleeps waiting for room there (BLOCKED_ON write_episodes)
//   asleep_ns             their time (BLOCKED_ON write_ns)
//   writer, writer_comm   the stalled task
//   rid, kind             the full resource
//   ops                   the syscalls it slept in there (BLOCKED_ON ops)
//   max_ns                its longest single sleep there (ns)
//   readers               the tids that read what it wrote there (FLOWS)
//   reader_waits          their sleeps waiting for data on the resource (or its peer): BLOCKED_ON read_episodes
//   reader_wait_ns        their time (BLOCKED_ON read_ns)
//   drainers              tids that woke the writer through the resource (whose reads made room)
//   drain_wakeups         their wakeups of it there
//   bytes                 what the writer wrote into the resource (WRITES bytes)
//   burst_bytes           bytes / reader_waits: the bytes written per wait of the readers, a burst
// Ordered by asleep_ns descending, then writer and rid.
//
// Read: the writer waits for room while its reader drains, and the reader waits for data while the
// writer prepares more: give the resource room for a burst (ftraceipc's advice rounds burst_bytes up to
// a power of two: F_SETPIPE_SZ for a pipe, at most /proc/sys/fs/pipe-max-size; SO_SNDBUF for a socket).
//
// Runs as-is on LadybugDB and Neo4j 5 (same rows on both: tests/integration/test_detectors.py).
MATCH (w:Task)-[b:BLOCKED_ON]->(r:Resource)
WHERE ($capture_id = '' OR w.capture_id = $capture_id)
  AND b.write_episodes >= $min_episodes AND b.write_ns >= $min_ns
OPTIONAL MATCH (w)-[f:FLOWS]->(rd:Task)
WHERE f.via = r.rid AND rd.tid <> w.tid
WITH w, r, b, collect(DISTINCT rd.tid) AS readers
OPTIONAL MATCH (w)-[f2:FLOWS]->(e:Task)-[eb:BLOCKED_ON]->(x:Resource)
WHERE f2.via = r.rid AND e.tid <> w.tid AND (x.rid = r.rid OR x.rid = f2.read_rid)
WITH w, r, b, readers, coalesce(sum(eb.read_episodes), 0) AS reader_waits,
     coalesce(sum(eb.read_ns), 0) AS reader_wait_ns
WHERE reader_waits >= $min_turns AND reader_wait_ns >= $min_wait_ns
WITH w, r, b, readers, reader_waits, reader_wait_ns, coalesce(r.peer, '') AS peer
OPTIONAL MATCH (w)-[a:WAITS_FOR]->(:Task)
WHERE a.consumed > 0 AND a.via <> r.rid AND a.via <> peer
WITH w, r, b, readers, reader_waits, reader_wait_ns, coalesce(sum(a.consumed), 0) AS fed
WHERE fed < $min_fed
OPTIONAL MATCH (d:Task)-[k:WAKES]->(w)
WHERE k.via = r.rid AND d.tid <> w.tid
WITH w, r, b, readers, reader_waits, reader_wait_ns, collect(DISTINCT d.tid) AS drainers,
     coalesce(sum(k.wakeups), 0) AS drain_wakeups
OPTIONAL MATCH (w)-[o:WRITES]->(r)
WITH w, r, b, readers, reader_waits, reader_wait_ns, drainers, drain_wakeups, coalesce(sum(o.bytes), 0) AS bytes
WITH *, [w.tid] + readers AS tasks, $tids AS scope
WHERE size(scope) = 0 OR any(s_tid IN tasks WHERE s_tid IN scope)
RETURN 'full_buffer_stall' AS pattern, tasks, [r.rid] AS resources,
       b.write_episodes AS count, b.write_ns AS asleep_ns, w.tid AS writer, w.comm AS writer_comm,
       r.rid AS rid, r.kind AS kind, b.ops AS ops, b.max_ns AS max_ns, readers, reader_waits, reader_wait_ns,
       drainers, drain_wakeups, bytes, bytes / reader_waits AS burst_bytes
ORDER BY asleep_ns DESC, writer, rid
LIMIT $limit
