"""The pattern detectors (cypher/<pattern>.cypher, issue #4) on LadybugDB, against samples that plant
each pattern and controls that do not.

Each sample is captured once per module (``ftraceipc capture``, system-wide), its model built and
loaded into a Ladybug database. A capture holds every task that ran meanwhile, so a detector is only
judged on the rows that name one of the sample's own tasks (its truth's tids): elsewhere on the
machine something may well be chatty. Expected values come from the truth (roles, rids) and, for
the numbers, from the model's own tables (pandas), so each detector's arithmetic is checked, not
just that it runs.

Default thresholds against what the samples show (3 runs each on a 2-CPU VM): full_buffer's writer
~63 sleeps in write (min_episodes 10), wake_then_block's mid 40-45 (min 5), fanin's writers 2-5
(a little contention on the shared pipe, below 10); herd's 4 waiters are woken 21 times each
(min_wakeups 5) while fanin's reader wakes its writers 1-3 times; socketpair_pingpong moves 2000
messages of 16 bytes each way (min 100, max 256 bytes).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from truth_check import capture_sample  # noqa: E402

from ftraceipc.graph import read_query  # noqa: E402
from ftraceipc.model import ipc  # noqa: E402
from ftraceipc.model.build import build_model  # noqa: E402

needs_tracefs = pytest.mark.skipif(os.geteuid() != 0 or not Path("/sys/kernel/tracing/instances").is_dir(),
                                   reason="needs root and tracefs")

DETECTORS = ["full_buffer_stall", "thundering_herd", "wake_then_block", "chatty_pingpong"]
COMMON = ["pattern", "tasks", "resources", "count", "lost_ns"]
WRITE_OPS = {"write", "writev", "sendto", "sendmsg"}


@dataclass
class Sample:
    name: str
    graph: object  # LadybugGraph
    model: ipc.Model
    truth: dict

    @property
    def tids(self) -> set[int]:
        return {t["tid"] for t in self.truth["tasks"]}

    @property
    def roles(self) -> dict[str, int]:
        return {t["role"]: t["tid"] for t in self.truth["tasks"]}

    def detect(self, detector: str, **params) -> pd.DataFrame:
        """The detector's rows that name at least one of the sample's tasks."""
        df = self.graph.run_file(detector, **params)
        assert list(df.columns[:len(COMMON)]) == COMMON, df.columns
        assert (df["pattern"] == detector).all(), df
        keep = [bool(self.tids & {int(t) for t in ts}) for ts in df["tasks"]]
        return df[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """``sample(name)``: that sample captured (once per module), modelled and loaded into Ladybug."""
    from ftraceipc.graph.ladybug import LadybugGraph

    done: dict[str, Sample] = {}

    def get(name: str) -> Sample:
        if name not in done:
            tmp = tmp_path_factory.mktemp(name)
            cap, _meta, truth = capture_sample(tmp, name)
            model = build_model(cap)
            g = LadybugGraph.open(tmp / "graph.lbug")
            g.load(model)
            done[name] = Sample(name, g, model, truth)
        return done[name]

    yield get
    for s in done.values():
        s.graph.close()


def only_row(df: pd.DataFrame) -> pd.Series:
    assert len(df) == 1, df.to_string()
    return df.iloc[0]


def ints(xs) -> list[int]:
    return [int(x) for x in xs]


# headers --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("detector", DETECTORS)
def test_header_gives_a_default_for_every_parameter(detector):
    from ftraceipc.graph import parameters_used

    q = read_query(detector)
    assert parameters_used(q.text) == set(q.defaults), q.defaults
    assert all(isinstance(v, int) for v in q.defaults.values()), q.defaults
    for col in COMMON:
        assert f"//   {col} " in q.text, f"header does not describe {col}"


# hand-built model: edge cases no sample shows ----------------------------------------------------------
def hand_model() -> ipc.Model:
    """Herd: task 1 wakes 2, 3, 4 via pipe:10 (10, 10, 6 wakeups: a tie for the busiest) and 5 only
    twice. Full buffer: 6 sleeps in write on pipe:11 with no other waker (it wakes itself), 7 sleeps in
    read there. Ping-pong: 8 <-> 9 over two socketpairs (parallel FLOWS and WAKES), plus a wakeup of 9
    by 8 through an unrelated pipe:12 (not counted)."""
    P, Q, R, S1, S2, S3, S4 = "pipe:10", "pipe:11", "pipe:12", "unix:20", "unix:21", "unix:22", "unix:23"
    m = ipc.Model(capture="hand.ftipc", capture_id="hand", meta={})
    tids = np.arange(1, 10, dtype=np.int64)
    m.tasks = pd.DataFrame({"tid": tids, "pid": tids, "comm": [f"t{t}" for t in tids],
                            "comms": [[f"t{t}"] for t in tids], "ppid": 0, "first_ts": 1, "last_ts": 2, "tracer": False}, columns=ipc.TASK_COLUMNS)
    rids = [P, Q, R, S1, S2, S3, S4]
    m.resources = pd.DataFrame({"rid": rids, "kind": ["pipe"] * 3 + ["unix_stream"] * 4,
                                "inode": [int(r.split(":")[1]) for r in rids], "path": None,
                                "peer": [None, None, None, S2, S1, S4, S3], "evidence": [["pipe2"]] * 7},
                               columns=ipc.RESOURCE_COLUMNS)
    m.io = pd.DataFrame({"type": ["WRITES"], "tid": [1], "rid": [P], "calls": [10], "bytes": [10], "first_ts": [1],
                         "last_ts": [2], "syscalls": [["write"]]}, columns=ipc.IO_COLUMNS)
    m.blocked = pd.DataFrame({"tid": [6, 7, 2], "rid": [Q, Q, P], "episodes": [12, 50, 10],
                              "blocked_ns": [5_000_000, 9_000_000, 1_000_000], "max_ns": [1_000_000, 1_000_000, 1],
                              "ops": [["write"], ["read"], ["poll"]]}, columns=ipc.BLOCKED_COLUMNS)
    w = [(1, 2, P, 10, 100), (1, 3, P, 10, 300), (1, 4, P, 6, 50), (1, 5, P, 2, 1000), (6, 6, Q, 12, 7),
         (8, 9, S2, 150, 1000), (8, 9, S4, 60, 500), (8, 9, R, 99, 99999), (9, 8, S1, 120, 2000)]
    m.wakes = pd.DataFrame(w, columns=["waker", "wakee", "via", "wakeups", "wake_to_run_ns"]).assign(
        max_wake_to_run_ns=1, cross_cpu=0)[ipc.WAKES_COLUMNS]
    f = [(8, 9, S1, S2, 3200, 200), (8, 9, S3, S4, 1600, 100), (9, 8, S2, S1, 4800, 300)]
    m.flows = pd.DataFrame(f, columns=ipc.FLOW_COLUMNS)
    return m


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    from ftraceipc.graph.ladybug import LadybugGraph

    with LadybugGraph.open(tmp_path_factory.mktemp("hand") / "graph.lbug") as g:
        g.load(hand_model())
        yield g


def test_hand_thundering_herd_tie_and_small_wakees(hand):
    row = only_row(hand.run_file("thundering_herd"))
    assert ints(row["tasks"])[0] == 1 and sorted(ints(row["wakees"])) == [2, 3, 4]  # 5: only 2 wakeups
    assert list(row["resources"]) == ["pipe:10"] and int(row["n_wakees"]) == 3
    assert int(row["count"]) == 26 and int(row["wake_to_run_ns"]) == 450
    assert int(row["top_wakeups"]) == 10 and int(row["lost_ns"]) == 450 - 300  # tie 2/3: the larger sum
    assert int(row["writes"]) == 10 and float(row["wakeups_per_write"]) == pytest.approx(2.6)
    assert sorted(ints(only_row(hand.run_file("thundering_herd", min_wakeups=2))["wakees"])) == [2, 3, 4, 5]


def test_hand_full_buffer_stall_without_drainer(hand):
    row = only_row(hand.run_file("full_buffer_stall"))  # 7 sleeps in read, 2 in poll: not writers
    assert ints(row["tasks"]) == [6] and list(row["drainers"]) == []  # its own wakeups are no drain
    assert int(row["drain_wakeups"]) == 0 and int(row["drain_wake_to_run_ns"]) == 0
    assert int(row["count"]) == 12 and int(row["lost_ns"]) == 5_000_000
    assert hand.run_file("wake_then_block").empty  # woken (by itself) via the very pipe it blocks on


def test_hand_chatty_pingpong_parallel_edges(hand):
    row = only_row(hand.run_file("chatty_pingpong"))
    assert ints(row["tasks"]) == [8, 9] and sorted(row["resources"]) == ["unix:20", "unix:21", "unix:22", "unix:23"]
    assert int(row["messages_ab"]) == 300 and int(row["messages_ba"]) == 300 and int(row["count"]) == 600
    assert float(row["bytes_per_message_ab"]) == 16.0 and float(row["bytes_per_message_ba"]) == 16.0
    assert int(row["wakeups_ab"]) == 210 and int(row["wakeups_ba"]) == 120  # not the pipe:12 wakeups
    assert int(row["lost_ns"]) == 1500 + 2000
    assert hand.run_file("chatty_pingpong", max_bytes=15).empty
    assert hand.run_file("chatty_pingpong", min_wakeups=121).empty


# full_buffer_stall ---------------------------------------------------------------------------------------
@needs_tracefs
def test_full_buffer_stall_fires_on_the_writer_of_the_full_pipe(sample):
    s = sample("full_buffer")
    w, r = s.roles["writer"], s.roles["reader"]
    pipe = s.truth["resources"][0]["rid"]
    row = only_row(s.detect("full_buffer_stall"))
    b = s.model.blocked[(s.model.blocked["tid"] == w) & (s.model.blocked["rid"] == pipe)].iloc[0]
    wk = s.model.wakes[(s.model.wakes["wakee"] == w) & (s.model.wakes["via"] == pipe)
                       & (s.model.wakes["waker"] != w)]
    assert int(row["writer"]) == w and ints(row["tasks"]) == [w, r]
    assert list(row["resources"]) == [pipe] and row["rid"] == pipe and row["kind"] == "pipe"
    assert ints(row["drainers"]) == [r]
    assert int(row["count"]) == int(b["episodes"]) >= 10
    assert int(row["lost_ns"]) == int(b["blocked_ns"]) > 0
    assert int(row["drain_wakeups"]) == int(wk["wakeups"].sum()) > 0
    assert int(row["drain_wake_to_run_ns"]) == int(wk["wake_to_run_ns"].sum())
    assert set(row["ops"]) & WRITE_OPS
    # the thresholds are parameters
    assert s.detect("full_buffer_stall", min_episodes=int(b["episodes"]) + 1).empty
    assert s.detect("full_buffer_stall", min_ns=int(b["blocked_ns"]) + 1).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["pipeline", "herd"])
def test_full_buffer_stall_is_silent_on(sample, control):
    df = sample(control).detect("full_buffer_stall")
    assert df.empty, df.to_string()


# thundering_herd -----------------------------------------------------------------------------------------
@needs_tracefs
def test_thundering_herd_fires_on_the_writer_and_its_pollers(sample):
    s = sample("herd")
    writer = s.roles["writer"]
    waiters = sorted(tid for role, tid in s.roles.items() if role.startswith("waiter-"))
    pipe = s.truth["resources"][0]["rid"]
    row = only_row(s.detect("thundering_herd"))
    assert int(row["waker"]) == writer and ints(row["tasks"])[0] == writer
    assert sorted(ints(row["tasks"])[1:]) == sorted(ints(row["wakees"])) == waiters
    assert list(row["resources"]) == [pipe] and row["rid"] == pipe
    assert int(row["n_wakees"]) == len(waiters)
    wk = s.model.wakes[(s.model.wakes["waker"] == writer) & (s.model.wakes["via"] == pipe)
                       & s.model.wakes["wakee"].isin(waiters)]
    assert int(row["count"]) == int(wk["wakeups"].sum()) >= 2 * s.truth["args"]["rounds"]
    assert int(row["wake_to_run_ns"]) == int(wk["wake_to_run_ns"].sum())
    # lost: all but the busiest wakee (of a tie, the one with the largest wake-to-run sum)
    top = wk[wk["wakeups"] == wk["wakeups"].max()]["wake_to_run_ns"].max()
    assert int(row["lost_ns"]) == int(wk["wake_to_run_ns"].sum()) - int(top) > 0
    assert int(row["top_wakeups"]) == int(wk["wakeups"].max())
    assert int(row["writes"]) == s.truth["args"]["rounds"]
    assert float(row["wakeups_per_write"]) >= 2  # one write, several wakees
    assert s.detect("thundering_herd", min_wakees=len(waiters) + 1).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["pipeline", "full_buffer"])
def test_thundering_herd_is_silent_on(sample, control):
    df = sample(control).detect("thundering_herd")
    assert df.empty, df.to_string()


# wake_then_block -----------------------------------------------------------------------------------------
@needs_tracefs
def test_wake_then_block_fires_on_the_middle_stage(sample):
    s = sample("wake_then_block")
    gen, mid, reader = s.roles["gen"], s.roles["mid"], s.roles["reader"]
    a = next(e["rid"] for e in s.truth["io"] if e["tid"] == gen)
    b = next(e["rid"] for e in s.truth["io"] if e["tid"] == mid and e["op"] == "write")
    row = only_row(s.detect("wake_then_block"))
    assert int(row["tid"]) == mid and ints(row["tasks"]) == [mid, gen]
    assert list(row["resources"]) == [a, b]
    assert row["woken_via"] == a and row["blocked_on"] == b
    assert ints(row["wakers"]) == [gen] and ints(row["drainers"]) == [reader]
    bl = s.model.blocked[(s.model.blocked["tid"] == mid) & (s.model.blocked["rid"] == b)].iloc[0]
    assert int(row["count"]) == int(bl["episodes"]) >= 5
    assert int(row["lost_ns"]) == int(bl["blocked_ns"]) > 0
    wk = s.model.wakes[(s.model.wakes["wakee"] == mid) & (s.model.wakes["via"] == a)
                       & (s.model.wakes["waker"] != mid)]
    assert int(row["wakeups"]) == int(wk["wakeups"].sum()) >= 5
    assert set(row["ops"]) & WRITE_OPS
    assert s.detect("wake_then_block", min_wakeups=int(wk["wakeups"].sum()) + 1).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["pipeline", "full_buffer"])
def test_wake_then_block_is_silent_on(sample, control):
    # full_buffer's writer is woken through the pipe it blocks on: one resource, not two
    df = sample(control).detect("wake_then_block")
    assert df.empty, df.to_string()


# chatty_pingpong -----------------------------------------------------------------------------------------
@needs_tracefs
def test_chatty_pingpong_fires_on_the_two_threads(sample):
    s = sample("socketpair_pingpong")
    ping, pong = s.roles["ping"], s.roles["pong"]
    ends = sorted(r["rid"] for r in s.truth["resources"])
    row = only_row(s.detect("chatty_pingpong"))
    assert sorted(ints(row["tasks"])) == sorted([ping, pong])
    a, b = int(row["a"]), int(row["b"])
    assert ints(row["tasks"]) == [a, b] and a < b
    assert sorted(row["resources"]) == ends
    sent = {e["tid"]: e["calls"] for e in s.truth["io"] if e["op"] in ("write", "send")}
    assert int(row["messages_ab"]) == sent[a] and int(row["messages_ba"]) == sent[b]
    assert int(row["count"]) == sent[a] + sent[b] == 2 * s.truth["args"]["rounds"]
    assert float(row["bytes_per_message_ab"]) == float(row["bytes_per_message_ba"]) == 16.0
    wk = s.model.wakes[s.model.wakes["via"].isin(ends)]
    ab = wk[(wk["waker"] == a) & (wk["wakee"] == b)]
    ba = wk[(wk["waker"] == b) & (wk["wakee"] == a)]
    assert int(row["wakeups_ab"]) == int(ab["wakeups"].sum()) > 0
    assert int(row["wakeups_ba"]) == int(ba["wakeups"].sum()) > 0
    assert int(row["lost_ns"]) == int(ab["wake_to_run_ns"].sum()) + int(ba["wake_to_run_ns"].sum()) > 0
    assert s.detect("chatty_pingpong", max_bytes=15).empty
    assert s.detect("chatty_pingpong", min_messages=sent[a] + 1).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["pipeline", "fanin"])
def test_chatty_pingpong_is_silent_on(sample, control):
    df = sample(control).detect("chatty_pingpong")
    assert df.empty, df.to_string()
