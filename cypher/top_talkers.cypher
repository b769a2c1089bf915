// top_talkers: the task pairs that moved the most bytes to each other (FLOWS), biggest first.
//
// Parameters:
//   $min_bytes = 1   leave out pairs that moved fewer bytes
//   $limit = 20      at most this many rows
//   $capture_id = ""  only this capture's tasks (Neo4j holding several captures); "": all
//
// Returns, one row per (writer, reader) pair:
//   writer, writer_comm   the writing task (tid, name)
//   reader, reader_comm   the reading task (tid, name)
//   bytes                 bytes the writer wrote where the reader read (sum over the pair's FLOWS)
//   messages              the writer's write calls for them (sum)
//   channels              the rids written into (distinct FLOWS via; in no particular order)
// Ordered by bytes descending, then writer and reader tids.
//
// Runs as-is on LadybugDB and Neo4j 5 (checked on Ladybug against the model in
// tests/integration/test_graph_ladybug.py).
MATCH (w:Task)-[f:FLOWS]->(r:Task)
WHERE $capture_id = '' OR w.capture_id = $capture_id
WITH w, r, sum(f.bytes) AS bytes, sum(f.messages) AS messages, collect(DISTINCT f.via) AS channels
WHERE bytes >= $min_bytes
RETURN w.tid AS writer, w.comm AS writer_comm, r.tid AS reader, r.comm AS reader_comm,
       bytes, messages, channels
ORDER BY bytes DESC, writer, reader
LIMIT $limit
