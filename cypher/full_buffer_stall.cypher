// full_buffer_stall: writers that keep sleeping on a full pipe or socket whose reader, at other times,
// waits on it empty for them: the two take turns, and a buffer that holds a whole burst would let the
// writer prepare its next burst while the reader drains the last one.
//
// A writer's sleeps waiting for room (BLOCKED_ON write_episodes/write_ns: in a write/send, or in a poll
// that a read ended) are back-pressure from its reader: the reader did not keep up. That alone says
// nothing about the buffer: a reader that is simply slower than the writer never waits on the resource
// (steady state), the writer's stalls only pace it to its reader, and no buffer size changes the run's
// time (that is back_pressure.cypher: the bottleneck's upstream effect). The buffer itself limits when
// the readers (FLOWS from the writer through the resource) also wait on it for this writer (their
// WAITS_FOR edges to it through the resource or, for a socket, its peer end: sleeps that its writes
// ended), long enough and often enough that the writer was doing something else than copying into it:
// the writer produces in bursts bigger than the buffer, stalls while the reader drains it, and the
// reader then waits while the writer prepares the next burst. Three conditions, all from runs of
// realistic size (scripts/detector_survey.py, 2-CPU VM, kernel 6.18, pipes of 64 KiB):
//   - at least $min_turns = 5 such waits (fewer: a reader that waited at the start or the end);
//   - their time at least $min_wait_percent = 10 % of the writer's stall time. Buffer-limited runs had
//     23-100 % (a bursty writer computing 4 ms per 256 KiB burst for a reader taking 2.4 ms to drain it:
//     28 % at 40 bursts, 100 % at 100; the wake_then_block sample 89 %); back-pressure had 0.8 % (the
//     full_buffer sample --steady: its reader waited 9 times in 1,545 stalls) and 2.3 % (`seq 1 5000000
//     | gzip -6 | gzip -dc | wc -l`: gzip -6 waited for seq 20 times, 138 ms, against seq's 1,124
//     stalls, 5.9 s): both a factor of 4 or more from the threshold;
//   - a mean wait of at least $min_mean_wait_ns = 100 us on one side, the reader's waits or the
//     writer's stalls: longer than a hand-off. `dd if=/dev/zero bs=1M count=2000 | cat > /dev/null`
//     takes turns too (cat waited 8,599 times for dd, 23 % of dd's 31,884 stalls' time), but 12 us and
//     14 us at a time: the two only pass the pipe's lock back and forth, copying (a bigger pipe cannot
//     overlap the copies: both hold the pipe's mutex). The bursty writer's reader waited 0.8-1.2 ms on
//     average (the writer computing its next burst); with a bursty reader it is the writer that waits
//     long (bench/workloads/relay.c of branch insight, 200 blocks: the relay's stalls on the pipe to
//     the sink averaged 149 us while the sink computed, the sink's waits 55 us, hand-offs of 4 KiB).
// The defaults min_episodes 10 and min_ns 1 ms ignore occasional stalls (hackbench -g 10 -l 200 over sockets:
// 5-8 stalls per writer and socket, every one of them hundreds of ms waiting for a CPU).
// A burst is the larger of the bytes per write call (a write larger than the free room sleeps until
// all of it is in: the writer needs that much room) and the bytes written per wait of the readers (a
// burst written in several calls; the readers may also wait in the middle of a burst, so this errs
// small). Last condition: the bursts are larger than the buffer (its size as F_SETPIPE_SZ returned it
// in the capture, else $pipe_bytes for a pipe or FIFO, the kernel's default; a socket's is not in the
// trace: any burst). A writer whose bursts fit stalls only because its reader was not running (no CPU
// for it), and a buffer of the burst's size is the one it has: in `seq 1 5000000 | gzip -6 | gzip -dc
// | wc -l` gzip -dc wrote 32 KiB per call, ~37 KB per wait of wc, into a 64 KiB pipe (124 stalls while
// the 2 CPUs ran the gzips), where gzip -6's 253 KiB writes into its 64 KiB pipe are bursts.
// The burst may be the reader's: a reader that takes a block, computes on it, then takes the next
// waits many times in small hand-offs while it takes a block, and the writer stalls once per block
// while it computes. When the readers, on the critical path, were running at least twice as long as
// they waited for a CPU (Task crit_running_ns, crit_runnable_ns: they computed, they were not starved),
// and the first two estimates fit the buffer, the burst is the bytes per stall of the writer: what
// the readers took per turn
// (bench/workloads/relay.c: the relay's 4 KiB writes, 10 KB per wait of the sink, 160 KB per stall
// while the sink, which reads 256 KiB blocks, ran 1.01 s and waited for a CPU 0.08 s on the path). A
// reader starved of CPU (gzip -dc | wc above: wc on the path waiting for a CPU, not running) does not
// count it: its writer's few stalls pass a lot each only because the reader ran rarely.
// A writer that is itself a pipeline stage, fed through another resource that it reads (at least
// $min_fed of its sleeps there ended with data it then read), is wake_then_block's: that finding
// reports the same stall with the stage's input, and the stall is counted once. So every stall waiting
// for room is in exactly one of full_buffer_stall, wake_then_block and back_pressure.cypher.
//
// Needs: BLOCKED_ON, WAITS_FOR, FLOWS, WRITES   (model tables it reads; a capture that cannot have one of them,
//   for lack of events, does not run it: 'ftraceipc analyze' says so instead of finding nothing)
//
// Explained by: ftraceipc/detect/detectors/full_buffer_stall.py
//
// Parameters:
//   $min_episodes = 10       at least this many sleeps of the writer waiting for room on the resource
//   $min_ns = 1000000        and at least this much time asleep so (ns)
//   $min_turns = 5           its readers waited on the resource for it at least this many times...
//   $min_wait_percent = 10   ...for at least this share of its time stalled...
//   $min_mean_wait_ns = 100000  ...and this long on average (ns), or the writer's stalls were
//   $pipe_bytes = 65536      a pipe's or FIFO's buffer when no F_SETPIPE_SZ was seen: bursts must be larger
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
//   critical_ns           the critical path's time inside the writer's sleeps waiting for room there
//                         (BLOCKED_ON crit_room_ns: spent on the path of whoever ended them; not its
//                         sleeps there waiting for data, on a socket end it also reads), at most the
//                         capture's wall_ns
//   asleep_ns             the time of its sleeps waiting for room (BLOCKED_ON write_ns)
//   writer, writer_comm   the stalled task
//   rid, kind             the full resource
//   ops                   the syscalls it slept in there (BLOCKED_ON ops)
//   max_ns                its longest single sleep there (ns)
//   readers               the tids that read what it wrote there (FLOWS)
//   reader_waits          their sleeps on the resource (or its peer) that its writes ended (WAITS_FOR)
//   reader_wait_ns        their time (ns)
//   drainers              tids that woke the writer through the resource (whose reads made room)
//   drain_wakeups         their wakeups of it there
//   bytes                 what the writer wrote into the resource (WRITES bytes)
//   writes                its write/send calls there (WRITES calls)
//   burst_bytes           the larger of bytes / writes and bytes / reader_waits, or when both fit the
//                         buffer and the readers computed on the path, bytes / count: a burst (above)
//   buffer_bytes          the buffer the bursts did not fit in (capacity, or $pipe_bytes, or 0 for a socket)
//   burst_from            which estimate burst_bytes is: 'write' (per write call), 'reader_wait' (per
//                         wait of the readers), 'reader_turn' (per stall, the readers computing)
//   readers_running_ns    the readers' time on the critical path running (Task crit_running_ns, summed)
//   readers_runnable_ns   and waiting for a CPU (crit_runnable_ns)
// Ordered by critical_ns descending, then asleep_ns descending, writer and rid.
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
WHERE reader_waits >= $min_turns
  AND reader_wait_ns * 100 / (CASE WHEN b.write_ns > 0 THEN b.write_ns ELSE 1 END) >= $min_wait_percent
  AND (reader_wait_ns >= $min_mean_wait_ns * reader_waits
       OR b.write_ns >= $min_mean_wait_ns * b.write_episodes)
  AND burst_bytes > buffer_bytes
WITH *, coalesce(r.peer, '') AS peer
OPTIONAL MATCH (w)-[i:WAITS_FOR]->(:Task)
WHERE i.consumed > 0 AND i.via <> r.rid AND i.via <> peer
WITH w, r, b, readers, reader_waits, reader_wait_ns, bytes, writes, burst_bytes, buffer_bytes,
     burst_from, readers_running_ns, readers_runnable_ns,
     coalesce(sum(i.consumed), 0) AS fed
WHERE fed < $min_fed
OPTIONAL MATCH (d:Task)-[k:WAKES]->(w)
WHERE k.via = r.rid AND d.tid <> w.tid
WITH w, r, b, readers, reader_waits, reader_wait_ns, bytes, writes, burst_bytes, buffer_bytes,
     burst_from, readers_running_ns, readers_runnable_ns,
     collect(DISTINCT d.tid) AS drainers, coalesce(sum(k.wakeups), 0) AS drain_wakeups
WITH *, [w.tid] + readers AS tasks, $tids AS scope
WHERE size(scope) = 0 OR any(s_tid IN tasks WHERE s_tid IN scope)
OPTIONAL MATCH (cap:FtraceipcCapture) WHERE cap.capture_id = w.capture_id
RETURN 'full_buffer_stall' AS pattern, tasks, [r.rid] AS resources, b.write_episodes AS count,
       CASE WHEN coalesce(b.crit_room_ns, 0) < coalesce(cap.wall_ns, 0) THEN coalesce(b.crit_room_ns, 0)
            ELSE coalesce(cap.wall_ns, 0) END AS critical_ns,
       b.write_ns AS asleep_ns, w.tid AS writer, w.comm AS writer_comm,
       r.rid AS rid, r.kind AS kind, b.ops AS ops, b.max_ns AS max_ns, readers, reader_waits, reader_wait_ns,
       drainers, drain_wakeups, bytes, writes, burst_bytes, buffer_bytes, burst_from, readers_running_ns,
       readers_runnable_ns
ORDER BY critical_ns DESC, asleep_ns DESC, writer, rid
LIMIT $limit
