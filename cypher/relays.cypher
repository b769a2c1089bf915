// relays: tasks that forward what they read: the bytes they write to other tasks (FLOWS out) are
// within $max_diff_percent of the bytes they read from other tasks (FLOWS in). A proxy such as socat
// between redis-benchmark and redis-server, or `cat` in the middle of a pipeline: its own time on the
// critical path (Task crit_ns: running and waiting for a CPU, copying) and the extra wakeup per
// message it adds are what the run pays for the extra hop, which taking it out of the chain saves.
// A stage that transforms its input (gzip: bytes out far from bytes in) is no relay: its work stays.
//
// Not a detector of its own (ftraceipc analyze does not list it): the wait_chain finding uses it
// for the relays in the middle of its chain (ftraceipc/detect/detectors/wait_chain.py, refine).
//
// Needs: FLOWS
//
// Parameters:
//   $max_diff_percent = 10   |bytes out - bytes in| at most this percentage of bytes in
//   $min_bytes = 1           and at least this many bytes in
//   $capture_id = ""         only this capture's tasks (Neo4j holding several captures); "": all
//   $tids = []               only these tasks (the middle of the chains); []: every task
//
// Returns, one row per relay:
//   tid, comm             the task
//   bytes_in              bytes it read that other tasks wrote (FLOWS into it, summed)
//   bytes_out             bytes it wrote that other tasks read (FLOWS out of it, summed)
//   crit_ns               its own time on the critical path (Task crit_ns; 0 when not on it)
// Ordered by tid.
//
// Runs as-is on LadybugDB and Neo4j 5.
MATCH (t:Task)
WHERE ($capture_id = '' OR t.capture_id = $capture_id) AND (size($tids) = 0 OR t.tid IN $tids)
OPTIONAL MATCH (t)-[o:FLOWS]->(:Task)
WITH t, coalesce(sum(o.bytes), 0) AS bytes_out
OPTIONAL MATCH (:Task)-[i:FLOWS]->(t)
WITH t, bytes_out, coalesce(sum(i.bytes), 0) AS bytes_in
WHERE bytes_in >= $min_bytes AND bytes_out > 0
  AND (bytes_out - bytes_in) * 100 <= $max_diff_percent * bytes_in
  AND (bytes_in - bytes_out) * 100 <= $max_diff_percent * bytes_in
RETURN t.tid AS tid, t.comm AS comm, bytes_in, bytes_out, coalesce(t.crit_ns, 0) AS crit_ns
ORDER BY tid
