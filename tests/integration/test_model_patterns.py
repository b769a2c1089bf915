"""The facts the pattern detectors (issue #4) will read, on samples that plant the patterns:
a writer stalled on a full pipe (full_buffer.py) and one write waking every poller (herd.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from truth_check import capture_sample  # noqa: E402

from ftraceipc.model.build import build_model  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not Path("/sys/kernel/tracing/instances").is_dir(),
                                reason="needs root and tracefs")


def role_tids(truth: dict) -> dict[str, int]:
    return {t["role"]: t["tid"] for t in truth["tasks"]}


def test_full_buffer_writer_is_blocked_in_write_and_woken_by_the_reader(tmp_path):
    cap, meta, truth = capture_sample(tmp_path, "full_buffer")
    m = build_model(cap)
    roles = role_tids(truth)
    w, r = roles["writer"], roles["reader"]
    pipe = truth["resources"][0]["rid"]
    b = m.blocked[(m.blocked["tid"] == w) & (m.blocked["rid"] == pipe)]
    assert len(b) == 1 and "write" in b["ops"].iloc[0]
    # 256 KiB through 4 KiB: the writer waits for room dozens of times
    assert int(b["episodes"].iloc[0]) >= 20, b
    wk = m.wakes[(m.wakes["waker"] == r) & (m.wakes["wakee"] == w) & (m.wakes["via"] == pipe)]
    assert len(wk) == 1 and int(wk["wakeups"].iloc[0]) >= 20, m.wakes[m.wakes["wakee"] == w]


def test_herd_one_write_wakes_every_poller_through_the_pipe(tmp_path):
    cap, meta, truth = capture_sample(tmp_path, "herd")
    m = build_model(cap)
    roles = role_tids(truth)
    writer = roles["writer"]
    pipe = truth["resources"][0]["rid"]
    waiters = [tid for role, tid in roles.items() if role.startswith("waiter-")]
    rounds = truth["args"]["rounds"]
    wk = m.wakes[(m.wakes["waker"] == writer) & (m.wakes["via"] == pipe)]
    woken = {int(t): int(n) for t, n in zip(wk["wakee"], wk["wakeups"])}
    # every poller is woken by most writes (not just the one that gets the byte)
    assert set(waiters) <= set(woken), (waiters, woken)
    assert all(woken[t] >= rounds // 2 for t in waiters), woken
    assert sum(woken[t] for t in waiters) >= 2 * rounds
    # and each sleeps in poll on that pipe, attributed through the waker
    b = m.blocked[m.blocked["tid"].isin(waiters) & (m.blocked["rid"] == pipe)]
    assert set(b["tid"]) == set(waiters)
    assert all("poll" in ops for ops in b["ops"])


def test_wake_then_block_stage_is_woken_through_its_input_and_blocks_on_its_output(tmp_path):
    cap, meta, truth = capture_sample(tmp_path, "wake_then_block")
    m = build_model(cap)
    roles = role_tids(truth)
    g, mid = roles["gen"], roles["mid"]
    a = next(e["rid"] for e in truth["io"] if e["tid"] == g)
    b = next(e["rid"] for e in truth["io"] if e["tid"] == mid and e["op"] == "write")
    bl = m.blocked[m.blocked["tid"] == mid].set_index("rid")
    assert a in bl.index and b in bl.index, bl
    assert "read" in bl.loc[a, "ops"] and "write" in bl.loc[b, "ops"]
    assert int(bl.loc[a, "episodes"]) >= 10 and int(bl.loc[b, "episodes"]) >= 10, bl
    wk = m.wakes[(m.wakes["waker"] == g) & (m.wakes["wakee"] == mid) & (m.wakes["via"] == a)]
    assert len(wk) == 1 and int(wk["wakeups"].iloc[0]) >= 10
