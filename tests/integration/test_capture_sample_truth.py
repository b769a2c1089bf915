"""End to end on a sample that records its own truth: capture it, decode, and find exactly the bytes
each stage wrote and read on each fd, from the syscall enter/exit pairs of each tid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from ftraceipc.decode import Decoder

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not Path("/sys/kernel/tracing/instances").is_dir(),
                                reason="needs root and tracefs")


def _io_per_tid_fd(cap: Path, syscall: str) -> dict[tuple[int, int], list[int]]:
    """(tid, fd) -> [calls, bytes] from sys_enter_X (fd) paired with the next sys_exit_X (ret) of that tid."""
    enter, exit_ = f"sys_enter_{syscall}", f"sys_exit_{syscall}"
    pending: dict[int, int] = {}
    out: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for batch in Decoder(cap).batches([enter, exit_]):
        names = {eid: t.name for eid, t in batch.by_id.items()}
        cols = {eid: (t.columns.get("fd"), t.columns.get("ret")) for eid, t in batch.by_id.items()}
        for eid, pid, row in zip(batch.event_id.tolist(), batch.pid.tolist(), batch.row.tolist()):
            fd_col, ret_col = cols[eid]
            if names[eid] == enter:
                pending[pid] = int(fd_col[row])
            elif pid in pending:
                ret = int(ret_col[row])
                fd = pending.pop(pid)
                if ret >= 0:
                    acc = out[(pid, fd)]
                    acc[0] += 1
                    acc[1] += ret
    return out


def test_capture_of_pipeline_sample_attributes_every_byte_to_its_stage_and_fd(tmp_path):
    cap = tmp_path / "pipe.ftipc"
    truth_path = tmp_path / "truth.json"
    r = subprocess.run([sys.executable, "-m", "ftraceipc", "capture", "-o", str(cap), "--",
                        sys.executable, str(ROOT / "samples" / "pipeline.py"), "--lines", "3000",
                        "--truth", str(truth_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    meta = json.loads((cap / "meta.json").read_text())
    assert meta["complete"] is True
    assert all(sum(v.values()) == 0 for v in meta["lost"].values()), meta["lost"]
    truth = json.loads(truth_path.read_text())

    writes = _io_per_tid_fd(cap, "write")
    reads = _io_per_tid_fd(cap, "read")
    for st in truth["stages"]:
        if st["write"]:
            w = st["write"]
            assert writes[(st["tid"], w["fd"])] == [w["calls"], w["bytes"]], st["stage"]
        if st["read"]:
            rd = st["read"]
            assert reads[(st["tid"], rd["fd"])] == [rd["calls"], rd["bytes"]], st["stage"]

    # Every stage's pipe inode is in the /proc snapshots or recoverable later; at least the exec of
    # the sample and the fork of each stage are in the trace.
    forks = exec_seen = 0
    for batch in Decoder(cap).batches(["sched_process_fork", "sched_process_exec"]):
        t = batch.events.get("sched_process_fork")
        if t is not None:
            child = t.columns["child_pid"]
            forks += int(np.isin(child, [s["pid"] for s in truth["stages"]]).sum())
        e = batch.events.get("sched_process_exec")
        if e is not None:
            exec_seen += int((e.columns["pid"] == truth["pid"]).sum())
    assert forks == len(truth["stages"])
    assert exec_seen == 1
