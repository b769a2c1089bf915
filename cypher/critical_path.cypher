// critical_path: the traced command's critical path, segment by segment, with each task's share.
//
// The critical path (ftraceipc/model/critical.py, docs/schema.md) cuts the command's wall time into
// segments, each the own time of the one task the command was waiting for then: running, runnable
// (waiting for a CPU) or blocked (asleep, and no traced task's IPC wakeup ended the sleep: a timer,
// the disk, an interrupt). A sleep that another task ended through a pipe or socket is not on it:
// the waker's time over that sleep is. Task.crit_ns is a task's own time on the whole path; the
// capture node's wall_ns the path's length (the segments add up to it). No rows for a capture
// without a traced command.
//
// Parameters:
//   $min_dur_ns = 0      leave out segments shorter than this (ns)
//   $limit = 1000        at most this many rows
//   $capture_id = ""     only this capture (Neo4j holding several captures); "": all
//
// Returns, one row per path segment:
//   seq                  its place on the path (0: the first, at the command's start)
//   tid, comm            the task whose own time it is
//   state                running, runnable or blocked
//   reason               blocked, or runnable after a wakeup: the syscall slept in; runnable after a
//                        preemption: "preempted"; else ""
//   rid                  the resource slept on (null when none or not known)
//   start_ts, end_ts     the segment (trace clock, ns)
//   dur_ns               its length (ns)
//   task_crit_ns         the task's own time on the whole path (ns; Task.crit_ns)
//   task_running_ns, task_runnable_ns, task_blocked_ns   the same by state (ns)
//   wall_ns              the path's length: the command's wall time (ns)
// Ordered by seq (time order).
//
// Runs as-is on LadybugDB and Neo4j 5 (same rows on both and the model's:
// tests/integration/test_critical_path.py).
MATCH (t:Task)-[:ON_PATH]->(s:PathSegment)
WHERE s.dur_ns >= $min_dur_ns AND ($capture_id = '' OR s.capture_id = $capture_id)
MATCH (c:FtraceipcCapture)
WHERE c.capture_id = s.capture_id
RETURN s.seq AS seq, t.tid AS tid, t.comm AS comm, s.state AS state, s.reason AS reason, s.rid AS rid,
       s.start_ts AS start_ts, s.end_ts AS end_ts, s.dur_ns AS dur_ns, t.crit_ns AS task_crit_ns,
       t.crit_running_ns AS task_running_ns, t.crit_runnable_ns AS task_runnable_ns,
       t.crit_blocked_ns AS task_blocked_ns, c.wall_ns AS wall_ns
ORDER BY seq, tid
LIMIT $limit
