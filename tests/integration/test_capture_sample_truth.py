"""End to end on a sample that records its own truth: capture the pipeline sample, decode, and find
exactly the calls and bytes each stage read and wrote on each fd, from the syscall enter/exit pairs
of each tid (within the fd's lifetime: see truth_check). The other samples are in
test_samples_truth.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from components import requires  # noqa: E402
from truth_check import capture_sample, mismatches, read_trace, truth_groups  # noqa: E402

from ftraceipc.decode import Decoder  # noqa: E402

pytestmark = requires("tracefs")


def test_capture_of_pipeline_sample_attributes_every_byte_to_its_stage_and_fd(tmp_path):
    cap, meta, truth = capture_sample(tmp_path, "pipeline", ["--lines", "3000"])
    assert meta["complete"] is True
    assert all(sum(v.values()) == 0 for v in meta["lost"].values()), meta["lost"]
    assert truth["sample"] == "pipeline"

    stages = [t for t in truth["tasks"] if t["role"] != "main"]
    assert [t["role"] for t in stages] == ["gen", "upper", "grep", "count"]
    # gen writes, count reads, upper and grep both: 6 (tid, fd) pairs on 3 pipes
    assert len(truth_groups(truth)) == 6
    assert len(truth["resources"]) == 3
    trace = read_trace(cap, {t["tid"]: t["pid"] for t in truth["tasks"]})
    assert mismatches(truth, trace) == []

    # The exec of the sample and the fork of each stage are in the trace.
    forks = exec_seen = 0
    for batch in Decoder(cap).batches(["task_newtask", "sched_process_exec"]):
        t = batch.events.get("task_newtask")
        if t is not None:
            forks += int(np.isin(t.columns["pid"], [s["pid"] for s in stages]).sum())
        e = batch.events.get("sched_process_exec")
        if e is not None:
            exec_seen += int((e.columns["pid"] == truth["pid"]).sum())
    assert forks == len(stages)
    assert exec_seen == 1
