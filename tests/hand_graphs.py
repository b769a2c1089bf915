"""Hand-built models with a critical path, shared by the unit tests of the analysis pipeline and the
integration tests of the bottleneck detector on both backends."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ftraceipc.model import ipc
from ftraceipc.model.critical import CRITICAL_COLUMNS, CRITICAL_TASK_COLUMNS, CRITICAL_WAIT_COLUMNS, CriticalPath

MS = 1_000_000
WALL = 1000 * MS
SH, SEQ, GZ, GZD, WC, GEN, OTHER, OTHER_R = 10, 1, 2, 3, 4, 5, 50, 51
WRITE = ["write"]


def pipeline_model(capture_id: str = "bneck") -> ipc.Model:
    """gen(5) -> seq(1) -> gz(2) -> gzd(3) -> wc(4) through pipes 51, 12, 23, 34; sh(10) is the root.
    The path: sh runs 10 ms, gz runs 700 ms and sleeps 210 ms in nanosleep, wc runs 80 ms. Stalls
    writing into full pipes: seq on pipe:12 (900 ms; its waits row says 1.5 s on the path, more
    than the wall time), gen on pipe:51 (500 ms), gzd on pipe:34 (300 ms, downstream of gz): their
    readers never wait for them, back-pressure (back_pressure.cypher); and other(50) on pipe:60
    (400 ms, elsewhere), whose reader otherr(51) waits for it 20 times (200 ms) and whose 100 KB
    writes do not fit the 64 KiB pipe: buffer-limited, a full_buffer_stall (its waits row: 1.2 s on
    the path, more than the wall time too)."""
    m = ipc.Model(capture=f"{capture_id}.ftipc", capture_id=capture_id, meta={})
    names = {SH: "sh", SEQ: "seq", GZ: "gzip", GZD: "gzip", WC: "wc", GEN: "gen", OTHER: "other", OTHER_R: "otherr"}
    tids = np.array(sorted(names), dtype=np.int64)
    # wc starts at 320 ms: its own work (awake, not waiting after a wakeup) is 1000 - 320 - 600 ms asleep
    # = 80 ms, its time on the path; sh waits 990 ms for its children (a sleep on no IPC resource)
    m.tasks = pd.DataFrame({"tid": tids, "pid": tids, "comm": [names[t] for t in tids],
                            "comms": [[names[t]] for t in tids], "ppid": 0,
                            "first_ts": [320 * MS if t == WC else 0 for t in tids], "last_ts": WALL,
                            "tracer": False}, columns=ipc.TASK_COLUMNS)
    rids = ["pipe:51", "pipe:12", "pipe:23", "pipe:34", "pipe:60"]
    m.resources = pd.DataFrame({"rid": rids, "kind": "pipe", "inode": [int(r[5:]) for r in rids], "path": None,
                                "peer": None, "evidence": [["pipe2"]] * len(rids)}, columns=ipc.RESOURCE_COLUMNS)
    m.io = pd.DataFrame([("WRITES", OTHER, "pipe:60", 10, 10**6, 0, WALL, WRITE),
                         ("READS", OTHER_R, "pipe:60", 100, 10**6, 0, WALL, ["read"])], columns=ipc.IO_COLUMNS)
    # (tid, rid, episodes, blocked_ns, max_ns, ops, read_episodes, read_ns, write_episodes, write_ns)
    m.blocked = pd.DataFrame([(SEQ, "pipe:12", 100, 900 * MS, 20 * MS, WRITE, 0, 0, 100, 900 * MS),
                              (GEN, "pipe:51", 50, 500 * MS, 20 * MS, WRITE, 0, 0, 50, 500 * MS),
                              (GZD, "pipe:34", 40, 300 * MS, 20 * MS, WRITE, 0, 0, 40, 300 * MS),
                              (OTHER, "pipe:60", 40, 400 * MS, 20 * MS, WRITE, 0, 0, 40, 400 * MS),
                              (WC, "pipe:34", 30, 600 * MS, 30 * MS, ["read"], 30, 600 * MS, 0, 0),
                              (OTHER_R, "pipe:60", 20, 200 * MS, 20 * MS, ["read"], 20, 200 * MS, 0, 0),
                              (SH, None, 1, 990 * MS, 990 * MS, ["wait4"], 0, 0, 0, 0)],
                             columns=ipc.BLOCKED_COLUMNS)
    m.wakes = pd.DataFrame([(GZ, SEQ, "pipe:12", 100, 1000, 10, 0), (WC, GZD, "pipe:34", 40, 1000, 10, 0),
                            (GZD, WC, "pipe:34", 30, 1000, 10, 0)], columns=ipc.WAKES_COLUMNS)
    m.flows = pd.DataFrame([(GEN, SEQ, "pipe:51", "pipe:51", 10**6, 100), (SEQ, GZ, "pipe:12", "pipe:12", 10**7, 1000),
                            (GZ, GZD, "pipe:23", "pipe:23", 10**6, 100), (GZD, WC, "pipe:34", "pipe:34", 10**7, 1000),
                            (OTHER, OTHER_R, "pipe:60", "pipe:60", 10**6, 100)], columns=ipc.FLOW_COLUMNS)
    # (waiter, waker, via, episodes, blocked_ns, max_ns, top, consumed, turns)
    m.waits = pd.DataFrame([(OTHER_R, OTHER, "pipe:60", 20, 200 * MS, 20 * MS, True, 20, 20)],
                           columns=ipc.WAITS_COLUMNS)
    seg = [(0, SH, "running", "", None, 0, 10 * MS), (1, GZ, "running", "", None, 10 * MS, 710 * MS),
           (2, GZ, "blocked", "nanosleep", None, 710 * MS, 920 * MS), (3, WC, "running", "", None, 920 * MS, WALL)]
    segments = pd.DataFrame([(*s, s[6] - s[5]) for s in seg], columns=CRITICAL_COLUMNS)
    # (tid, crit_ns, running_ns, runnable_ns, blocked_ns, running_sys_ns)
    tasks = pd.DataFrame([(SH, 10 * MS, 10 * MS, 0, 0, 1 * MS), (GZ, 910 * MS, 700 * MS, 0, 210 * MS, 20 * MS),
                          (WC, 80 * MS, 80 * MS, 0, 0, 40 * MS)], columns=CRITICAL_TASK_COLUMNS)
    # (waiter, rid, crit_ns, waits, room_ns): seq and OTHER wait for room, wc for data
    waits = pd.DataFrame([(SEQ, "pipe:12", 1500 * MS, 10, 1500 * MS), (WC, "pipe:34", 990 * MS, 30, 0),
                          (OTHER, "pipe:60", 1200 * MS, 5, 1200 * MS)], columns=CRITICAL_WAIT_COLUMNS)
    m.critical = CriticalPath(root=SH, start_ts=0, end_ts=WALL, segments=segments, tasks=tasks, waits=waits)
    return m
