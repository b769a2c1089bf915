"""Every sample under ``ftraceipc capture``: the capture lost nothing, and the decoded syscall
enter/exit pairs hold exactly the calls and bytes each task counted itself, per (tid, fd, syscall)
within one lifetime of the fd (see truth_check). The resource model is not involved: this checks
that the capture holds the truth."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from components import requires  # noqa: E402
from truth_check import capture_sample, mismatches, read_trace  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "samples"))
from truth import SAMPLES  # noqa: E402

pytestmark = requires("tracefs")

# pipeline has its own test: test_capture_sample_truth.py
CASES = [c for c in SAMPLES if c[0] != "pipeline"]


@pytest.mark.parametrize("sample,args", CASES, ids=[" ".join([s, *a]) for s, a in CASES])
def test_capture_holds_the_samples_truth(tmp_path, sample, args):
    cap, meta, truth = capture_sample(tmp_path, sample, args)
    assert meta["complete"] is True
    assert all(sum(v.values()) == 0 for v in meta["lost"].values()), meta["lost"]
    assert truth["sample"] == sample

    trace = read_trace(cap, {t["tid"]: t["pid"] for t in truth["tasks"]})
    assert mismatches(truth, trace) == []

    # Every task was born in the capture: forked (processes and threads alike: clone), and the main
    # process exec'd once; the exec'd grandchildren of shortlived exec'd too.
    main = truth["pid"]
    assert trace.execed[main] == 1
    assert {t["tid"] for t in truth["tasks"]} - {main} <= trace.forked
    for t in truth["tasks"]:
        if t["role"].startswith("exec-"):
            assert trace.execed[t["tid"]] == 1, t


def test_fd_reuse_one_fd_three_resources(tmp_path):
    """fd_reuse's writer writes on one fd number to pipe A, a socket and pipe C: three lifetimes of
    that fd, ended by close(N), dup2(.., N) and close(N), each with its own resource's bytes."""
    cap, meta, truth = capture_sample(tmp_path, "fd_reuse")
    assert all(sum(v.values()) == 0 for v in meta["lost"].values()), meta["lost"]
    writer = next(t for t in truth["tasks"] if t["role"] == "writer")
    tid, n = writer["tid"], writer["reused_fd"]
    trace = read_trace(cap, {t["tid"]: t["pid"] for t in truth["tasks"]})
    want = [{"write": [e["calls"], e["bytes"]]} for e in truth["io"] if e["tid"] == tid and e["fd"] == n]
    assert len({e["rid"] for e in truth["io"] if e["tid"] == tid and e["fd"] == n}) == 3
    writes = [life for life in trace.lifetimes[(tid, n)] if set(life) == {"write"}]
    assert writes == want
    ends = trace.ends[(tid, n)]
    # whatever Python did with fd N while importing, the workload's part ends close, dup2, close
    assert ends[-3:] == ["close", "dup2", "close"], ends
