"""SyscallPairer + SchedModel on real captures of samples, checked against their truth files.

Resource handles are fabricated from the truth (each (tid, fd) the truth names gets a handle whose
rid is the truth's), so this checks the sched model alone, not the fd model.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from components import requires  # noqa: E402
from truth_check import capture_sample  # noqa: E402

from ftraceipc.decode import Decoder  # noqa: E402
from ftraceipc.model.sched import SchedModel, capture_context  # noqa: E402
from ftraceipc.model.syscalls import SyscallPairer  # noqa: E402

pytestmark = requires("tracefs")


def model(cap: Path, truth: dict, chunk_pages: int = 64):
    """Run pairer + sched over the capture (small chunks: many batches) with truth handles."""
    handle_of: dict[tuple[int, int], int] = {}
    rid_of: dict[int, str] = {}
    for e in truth["io"]:
        h = handle_of.setdefault((e["tid"], e["fd"]), len(handle_of))
        rid_of[h] = e["rid"]
    pairer = SyscallPairer()
    m = SchedModel(pairer, episodes=True, **capture_context(cap))
    n_batches = 0
    for batch in Decoder(cap, chunk_pages=chunk_pages).batches():
        iv = pairer.pair(batch)
        h = [handle_of.get(k, -1) for k in zip(iv["tid"].tolist(), iv["fd"].tolist())]
        m.feed(batch, iv.assign(handle=np.array(h, dtype=np.int64)))
        n_batches += 1
    return m.finish(rid_of, open_intervals=pairer.finish().assign(handle=-1)), n_batches


def check_tasks(r: dict, truth: dict) -> None:
    tasks = r["tasks"].set_index("tid")
    for t in truth["tasks"]:
        row = tasks.loc[t["tid"]]
        assert row["pid"] == t["pid"], t
        assert row["ppid"] == t["ppid"], t
        assert row["comm"] is not None and row["first_ts"] <= row["last_ts"], t
        assert not row["tracer"]
    # the sample's tasks exit inside the capture: their sleeps never add up to more than their life
    life = (tasks["last_ts"] - tasks["first_ts"]).to_dict()
    mine = {t["tid"] for t in truth["tasks"]}
    for tid, ns in r["blocked"].groupby("tid")["blocked_ns"].sum().items():
        if tid in mine:
            assert ns <= life[tid], (tid, ns, life[tid])


def test_socketpair_pingpong_blocks_and_wakes_each_way(tmp_path):
    rounds = 2000
    cap, meta, truth = capture_sample(tmp_path, "socketpair_pingpong", ["--rounds", str(rounds)])
    assert all(sum(v.values()) == 0 for v in meta["lost"].values()), meta["lost"]
    r, n_batches = model(cap, truth)
    assert n_batches > 1
    check_tasks(r, truth)
    role = {t["role"]: t["tid"] for t in truth["tasks"]}
    ping, pong = role["ping"], role["pong"]
    rid = {e["tid"]: e["rid"] for e in truth["io"]}
    ping_rid, pong_rid = rid[ping], rid[pong]
    assert ping_rid != pong_rid

    blocked = {(row.tid, row.rid): row for row in r["blocked"].itertuples()}
    for tid, res, op in ((ping, ping_rid, "recvfrom"), (pong, pong_rid, "read")):
        b = blocked[(tid, res)]
        assert b.ops == [op]
        # each round trip the receiver waits for the answer (on two CPUs it may still be running);
        # it may sleep twice: the peer reading our message frees its memory, and the socket's
        # write-space wakeup (unix_write_space) also wakes a recv() sleeping on the same wait queue
        assert 0.5 * rounds <= b.episodes <= 2 * rounds, b
        assert 0 < b.max_ns <= b.blocked_ns
    wakes = {(row.waker, row.wakee, row.via): row for row in r["wakes"].itertuples()}
    # the waker names the resource the wakee waited on: its own end of the socketpair
    for waker, wakee, via in ((ping, pong, pong_rid), (pong, ping, ping_rid)):
        w = wakes[(waker, wakee, via)]
        assert 0.5 * rounds <= w.wakeups <= 2 * rounds, w  # the write-space wakeup too (above)
        assert 0 <= w.max_wake_to_run_ns and w.wake_to_run_ns / w.wakeups < 10_000_000
    assert (pong, ping, pong_rid) not in wakes and (ping, pong, ping_rid) not in wakes

    # episodes: the receivers' sleeps on their socket were (almost all) ended by the other thread
    ep = r["episodes"]
    for tid, res, other in ((ping, ping_rid, pong), (pong, pong_rid, ping)):
        e = ep[(ep["tid"] == tid) & (ep["rid"] == res)]
        assert len(e) == blocked[(tid, res)].episodes
        assert int(e["dur_ns"].sum()) == blocked[(tid, res)].blocked_ns
        by = Counter(e["woken_by"].tolist())
        assert by[other] >= 0.95 * len(e), by.most_common(3)
    wu = r["wakeups"]
    for waker, wakee in ((ping, pong), (pong, ping)):
        rows = wu[(wu["waker"] == waker) & (wu["wakee"] == wakee)]
        agg = r["wakes"][(r["wakes"]["waker"] == waker) & (r["wakes"]["wakee"] == wakee)]
        assert len(rows) == agg["wakeups"].sum()
        assert rows["wake_to_run_ns"].clip(lower=0).sum() == agg["wake_to_run_ns"].sum()
    st = r["stats"]
    assert st["missing_events"] == [] and st["wakeups_never_ran"] <= 5, st


def test_pipeline_stages_block_on_their_pipes(tmp_path):
    """Each stage's attributed sleeps are on the pipes it reads (in read) or writes (in write), and
    the readers that slept in read were woken through that pipe by a holder of its write end (which
    stages sleep depends on timing, so at least one must)."""
    cap, meta, truth = capture_sample(tmp_path, "pipeline")
    assert all(sum(v.values()) == 0 for v in meta["lost"].values()), meta["lost"]
    r, _ = model(cap, truth)
    check_tasks(r, truth)
    blocked, wakes = r["blocked"], r["wakes"]
    woken_readers = 0
    for t in truth["tasks"]:
        tid = t["tid"]
        ops_on = {}
        for e in truth["io"]:
            if e["tid"] == tid:
                ops_on.setdefault(e["rid"], set()).add(e["syscall"])
        mine = blocked[(blocked["tid"] == tid) & blocked["rid"].notna()]
        for row in mine.itertuples():
            assert set(row.ops) <= ops_on.get(row.rid, set()), (t, row)
        for row in mine.itertuples():
            if row.ops == ["read"]:
                # the sleep ends on a write or on the last close of the write end, and the parent
                # (main) holds every write end until all stages are forked: when gen is done first,
                # the reader's EOF comes from main's close
                holders = {e["tid"] for e in truth["io"] if e["rid"] == row.rid and e["op"] == "write"}
                holders |= {x["tid"] for x in truth["tasks"] if x["role"] == "main"}
                w = wakes[wakes["waker"].isin(list(holders)) & (wakes["wakee"] == tid) & (wakes["via"] == row.rid)]
                assert len(w), (t, row)
                woken_readers += 1
    assert woken_readers >= 1, blocked[blocked["tid"].isin([t["tid"] for t in truth["tasks"]])]
