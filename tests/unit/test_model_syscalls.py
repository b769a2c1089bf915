"""SyscallPairer on hand-made batches (Batch/EventTable built directly with numpy).

``Trace`` and ``make_batches`` are also used by test_model_sched.py.
"""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from rb_builder import load_format

from ftraceipc.decode.decoder import Batch, EventTable
from ftraceipc.decode.formats import EventFormat
from ftraceipc.model.syscalls import ROW_LOST, ROW_OPEN, SyscallPairer, fd_values, order_by_tid

STRING_FIELDS = {"prev_comm", "next_comm", "comm", "oldcomm", "newcomm"}
OBJECT_FIELDS = {"filename", "parent_comm", "child_comm"}
_FORMATS: dict[str, EventFormat] = {}


def fmt(name: str) -> EventFormat:
    f = _FORMATS.get(name)
    if f is None:
        if name in ("sched_switch", "sched_waking"):
            f = load_format(f"sched:{name}")  # the kernel's format (prev_state encoding)
        else:
            system = "syscalls" if name.startswith("sys_") else "task" if name.startswith("task_") else "sched"
            f = EventFormat(name=name, system=system, id=1000 + len(_FORMATS), fields=[])
        _FORMATS[name] = f
    return f


def make_batch(events: list[dict]) -> Batch:
    """Events (dicts: ev, ts, cpu, tid, flags?, fields...) in the given order -> one Batch."""
    n = len(events)
    by: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(events):
        by[e["ev"]].append(i)
    event_id = np.zeros(n, np.int32)
    row = np.zeros(n, np.int64)
    events_t: dict[str, EventTable] = {}
    by_id: dict[int, EventTable] = {}
    for name, idxs in by.items():
        f = fmt(name)
        keys = sorted(set().union(*(events[i].keys() for i in idxs)) - {"ev", "ts", "cpu", "tid", "flags"})
        cols = {}
        for k in keys:
            vals = [events[i].get(k, 0) for i in idxs]
            if k in STRING_FIELDS:
                cols[k] = np.array([v.encode() if isinstance(v, str) else v for v in vals], dtype="S16")
            elif k in OBJECT_FIELDS:
                cols[k] = np.array(vals, dtype=object)
            else:
                cols[k] = np.array(vals, dtype=np.int64)
        ix = np.array(idxs, dtype=np.int64)
        t = EventTable(format=f, ts=np.array([events[i]["ts"] for i in idxs], np.int64),
                       cpu=np.array([events[i].get("cpu", 0) for i in idxs], np.int32),
                       pid=np.array([events[i]["tid"] for i in idxs], np.int32),
                       flags=np.array([events[i].get("flags", 0) for i in idxs], np.uint8),
                       preempt_count=np.zeros(len(idxs), np.uint8), index=ix, columns=cols)
        event_id[ix] = f.id
        row[ix] = np.arange(len(idxs))
        events_t[name] = t
        by_id[f.id] = t
    return Batch(ts=np.array([e["ts"] for e in events], np.int64), cpu=np.array([e.get("cpu", 0) for e in events],
                 np.int32), event_id=event_id, pid=np.array([e["tid"] for e in events], np.int32), row=row,
                 events=events_t, by_id=by_id)


def make_batches(events: list[dict], cuts=()) -> list[Batch]:
    """Split the event list at these indexes into consecutive batches."""
    bounds = [0, *sorted(cuts), len(events)]
    return [make_batch(events[a:b]) for a, b in zip(bounds, bounds[1:])]


class Trace:
    """Build an event list; every event at a given ts (ns), in call order."""

    def __init__(self):
        self.events: list[dict] = []

    def add(self, ts: int, ev: str, tid: int, cpu: int = 0, flags: int = 0, **fields) -> "Trace":
        assert not self.events or ts >= self.events[-1]["ts"]
        self.events.append({"ev": ev, "ts": ts, "tid": tid, "cpu": cpu, "flags": flags, **fields})
        return self

    def enter(self, ts, tid, sc, cpu=0, **args):
        return self.add(ts, f"sys_enter_{sc}", tid, cpu, __syscall_nr=0, **args)

    def exit(self, ts, tid, sc, ret, cpu=0):
        return self.add(ts, f"sys_exit_{sc}", tid, cpu, __syscall_nr=0, ret=ret)

    def switch(self, ts, prev, nxt, state=0, cpu=0, prev_comm=None, next_comm=None):
        return self.add(ts, "sched_switch", prev, cpu, prev_comm=prev_comm or f"t{prev}", prev_pid=prev, prev_prio=120,
                        prev_state=state, next_comm=next_comm or f"t{nxt}", next_pid=nxt, next_prio=120)

    def waking(self, ts, waker, wakee, cpu=0, target_cpu=0, flags=0):
        return self.add(ts, "sched_waking", waker, cpu, flags=flags, comm=f"t{wakee}", pid=wakee, prio=120,
                        target_cpu=target_cpu)


def pair_all(batches):
    p = SyscallPairer()
    frames = [p.pair(b) for b in batches]
    return p, pd.concat(frames, ignore_index=True)


# --- tests --------------------------------------------------------------------------------------------
def test_pairs_columns_and_exit_order():
    t = Trace()
    t.enter(100, 1, "read", cpu=0, fd=3, count=10)
    t.enter(110, 2, "write", cpu=1, fd=4, count=5)
    t.exit(120, 2, "write", 5, cpu=1)
    t.enter(125, 2, "dup", cpu=1, fildes=4)
    t.exit(130, 1, "read", 10, cpu=1)  # migrated while inside
    t.exit(131, 2, "dup", 7, cpu=1)
    t.enter(140, 2, "pipe2", fildes=0x7FFF0000, flags=0)  # fildes is a pointer here: no fd
    t.exit(141, 2, "pipe2", 0)
    p, df = pair_all(make_batches(t.events))
    assert list(df.columns) == ["tid", "syscall", "enter_ts", "exit_ts", "fd", "ret", "cpu"]
    assert df.to_dict("records") == [
        {"tid": 2, "syscall": "write", "enter_ts": 110, "exit_ts": 120, "fd": 4, "ret": 5, "cpu": 1},
        {"tid": 1, "syscall": "read", "enter_ts": 100, "exit_ts": 130, "fd": 3, "ret": 10, "cpu": 1},
        {"tid": 2, "syscall": "dup", "enter_ts": 125, "exit_ts": 131, "fd": 4, "ret": 7, "cpu": 1},
        {"tid": 2, "syscall": "pipe2", "enter_ts": 140, "exit_ts": 141, "fd": -1, "ret": 0, "cpu": 0}]
    for c in ("tid", "enter_ts", "exit_ts", "fd", "ret", "cpu"):
        assert df[c].dtype == np.int64
    assert p.unpaired == 0 and p.lost_exits == 0 and p.open_syscalls() == {}


def test_fd_argument_is_the_low_32_bits_signed():
    assert fd_values(np.array([3, 0xFFFFFFFF, 0xFFFFFF9C, -100], dtype=np.int64)).tolist() == [3, -1, -100, -100]
    assert fd_values(np.array([0xFFFFFFFFFFFFFF9C], dtype=np.uint64)).tolist() == [-100]


def test_unpaired_and_mismatched_exits_are_counted():
    t = Trace()
    t.exit(100, 1, "read", 4)  # its enter was before the capture
    t.enter(110, 1, "write", fd=1)
    t.exit(120, 1, "read", 3)  # mismatch: the write's exit and the read's enter were lost
    t.enter(130, 1, "close", fd=5)
    t.enter(140, 1, "close", fd=6)  # enter after enter: the first exit was lost
    t.exit(150, 1, "close", 0)
    p, df = pair_all(make_batches(t.events))
    assert df[["syscall", "enter_ts", "fd", "ret"]].values.tolist() == [
        ["read", -1, -1, 4], ["read", -1, -1, 3], ["close", 140, 6, 0]]
    assert p.unpaired == 2
    assert p.lost_exits == 2  # the write and the first close


def test_open_syscalls_carry_across_batches_and_finish():
    t = Trace()
    t.enter(100, 1, "read", fd=3)
    t.enter(105, 2, "recvfrom", fd=4)
    t.exit(110, 3, "write", 1)  # unpaired
    # --- batch boundary
    t.exit(200, 1, "read", 8)
    t.enter(210, 3, "write", fd=5)
    batches = make_batches(t.events, cuts=[3])
    p = SyscallPairer()
    df1 = p.pair(batches[0])
    assert df1["syscall"].tolist() == ["write"]
    assert p.open_syscalls() == {1: ("read", 100, 3), 2: ("recvfrom", 105, 4)}
    df2 = p.pair(batches[1])
    assert df2.to_dict("records") == [
        {"tid": 1, "syscall": "read", "enter_ts": 100, "exit_ts": 200, "fd": 3, "ret": 8, "cpu": 0}]
    assert p.open_syscalls() == {2: ("recvfrom", 105, 4), 3: ("write", 210, 5)}
    fin = p.finish()
    assert fin.sort_values("tid").to_dict("records") == [
        {"tid": 2, "syscall": "recvfrom", "enter_ts": 105, "exit_ts": -1, "fd": 4, "ret": -1, "cpu": -1},
        {"tid": 3, "syscall": "write", "enter_ts": 210, "exit_ts": -1, "fd": 5, "ret": -1, "cpu": -1}]


def test_syscall_at_and_completed_row():
    t = Trace()
    t.enter(100, 1, "read", fd=3)         # 0
    t.add(101, "sched_switch", 1)          # 1  (a query position inside the read)
    t.enter(102, 2, "poll")                # 2
    # --- boundary
    t.add(200, "sched_switch", 1)          # 0  inside the carried read
    t.exit(210, 1, "read", 5)             # 1
    t.add(220, "sched_switch", 1)          # 2  outside
    t.add(230, "sched_switch", 2)          # 3  inside the carried poll (still open at the end)
    batches = make_batches(t.events, cuts=[3])
    p = SyscallPairer()
    p.pair(batches[0])
    at = p.syscall_at(np.array([1, 2, 2]), np.array([1, 1, 3]))
    assert at.inside.tolist() == [True, False, True]
    assert [p.names[c] if c >= 0 else None for c in at.code.tolist()] == ["read", None, "poll"]
    assert at.fd.tolist() == [3, -1, -1] and at.enter_ts.tolist() == [100, -1, 102]
    assert at.row[0] == ROW_OPEN and at.row[2] == ROW_OPEN
    df = p.pair(batches[1])
    at = p.syscall_at(np.array([1, 1, 2]), np.array([0, 2, 3]))
    assert at.inside.tolist() == [True, False, True]
    assert at.enter_ts.tolist() == [100, -1, 102]
    assert at.row[0] == 0 and df.iloc[0]["enter_ts"] == 100 and at.row[2] == ROW_OPEN
    assert p.completed_row(np.array([1, 2, 2]), np.array([100, 102, 999])).tolist() == [0, ROW_OPEN, ROW_LOST]
    assert p.count_between(np.array([1]), np.array([-1]), np.array([2])).tolist() == [1]


def test_task_exit_inside_a_syscall_drops_it():
    t = Trace()
    t.enter(100, 1, "read", fd=3)
    t.add(110, "sched_process_exit", 1, comm="x", pid=1, prio=120, group_dead=1)
    t.enter(120, 2, "read", fd=3)
    p, _ = pair_all(make_batches(t.events))
    assert p.open_syscalls() == {2: ("read", 120, 3)}
    assert p.exited_inside == 1


def test_order_by_tid_is_stable():
    tid = np.array([5, 3, 5, 3, 9, 3])
    o = order_by_tid(tid)
    assert tid[o].tolist() == [3, 3, 3, 5, 5, 9] and o.tolist() == [1, 3, 5, 0, 2, 4]
    many = np.arange(70000)[::-1].copy()
    assert (many[order_by_tid(many)] == np.arange(70000)).all()


def random_trace(seed: int, n: int = 300) -> Trace:
    rng = random.Random(seed)
    t = Trace()
    inside: dict[int, str] = {}
    ts = 0
    for _ in range(n):
        ts += rng.randint(0, 3)
        tid = rng.choice([1, 2, 3, 4])
        r = rng.random()
        if tid in inside and r < 0.8:
            sc = inside.pop(tid) if r < 0.75 else rng.choice(["read", "write"])  # some mismatches
            t.exit(ts, tid, sc, rng.randint(-11, 100), cpu=rng.randint(0, 1))
        elif r < 0.05:
            t.exit(ts, tid, "read", 1)  # orphan exit
        else:
            sc = rng.choice(["read", "write", "poll", "close"])
            inside[tid] = sc
            args = {} if sc == "poll" else {"fd": rng.randint(0, 9)}
            t.enter(ts, tid, sc, cpu=rng.randint(0, 1), **args)
    return t


def reference_pairs(events):
    """Per-record reference pairing (what fd.py did)."""
    pending = {}
    rows = []
    for e in events:
        name, tid = e["ev"], e["tid"]
        if name.startswith("sys_enter_"):
            pending[tid] = (name[10:], e["ts"], e.get("fd", -1))
        elif name.startswith("sys_exit_"):
            p = pending.pop(tid, None)
            sc = name[9:]
            if p is None or p[0] != sc:
                rows.append((tid, sc, -1, e["ts"], -1, e["ret"]))
            else:
                rows.append((tid, sc, p[1], e["ts"], p[2], e["ret"]))
    return rows, {t: v for t, v in pending.items()}


@pytest.mark.parametrize("seed", range(5))
def test_random_sequences_match_the_reference_for_any_batch_split(seed):
    t = random_trace(seed)
    want, open_ = reference_pairs(t.events)
    rng = random.Random(seed)
    for cuts in ([], [1], [len(t.events) // 2], sorted(rng.sample(range(1, len(t.events)), 7))):
        p, df = pair_all(make_batches(t.events, cuts))
        got = list(df[["tid", "syscall", "enter_ts", "exit_ts", "fd", "ret"]].itertuples(index=False, name=None))
        assert got == want, cuts
        assert p.open_syscalls() == open_


def test_drop_open_forgets_only_the_open_syscalls_named():
    t = Trace()
    t.enter(100, 1, "read", fd=3)
    t.enter(105, 2, "ppoll", fd=0)
    t.enter(107, 3, "close", fd=9)
    p = SyscallPairer()
    p.pair(make_batch(t.events))
    assert p.drop_open({"read", "ppoll", "never_seen"}) == 2
    assert p.open_syscalls() == {3: ("close", 107, 9)}
    assert p.drop_open({"read"}) == 0
    # the exit of a dropped call is then one the pairer cannot pair (its enter is forgotten), counted
    t2 = Trace().exit(200, 1, "read", 8).exit(201, 3, "close", 0)
    df = p.pair(make_batch(t2.events))
    assert df[["tid", "enter_ts"]].to_dict("records") == [{"tid": 1, "enter_ts": -1}, {"tid": 3, "enter_ts": 107}]


def _records(b: Batch) -> list[tuple]:
    out = []
    for i in range(len(b)):
        t = b.by_id[int(b.event_id[i])]
        r = int(b.row[i])
        assert int(t.index[r]) == i  # the merged order and the table agree
        out.append((int(b.ts[i]), t.name, int(t.pid[r]), {k: v[r].item() if hasattr(v[r], "item") else v[r]
                                                          for k, v in t.columns.items()}))
    return out


@pytest.mark.parametrize("n", [0, 1, 3, 5, 7])
def test_batch_split_gives_two_batches_whose_events_are_the_whole(n):
    t = Trace()
    t.enter(100, 1, "read", fd=3).switch(101, 1, 2).enter(102, 2, "write", fd=4).exit(103, 2, "write", 1)
    t.switch(104, 2, 1).exit(105, 1, "read", 1).enter(106, 1, "read", fd=3)
    b = make_batch(t.events)
    whole = _records(b)
    head, tail = b.split(n)
    assert len(head) == min(n, len(b)) and len(head) + len(tail) == len(b)
    assert _records(head) + _records(tail) == whole
    assert all(len(tb) for tb in tail.events.values()) and all(len(tb) for tb in head.events.values())
    # pairing the halves one after the other is pairing the whole
    a, b2 = SyscallPairer(), SyscallPairer()
    whole_df = a.pair(b)
    parts = pd.concat([b2.pair(head), b2.pair(tail)], ignore_index=True)
    assert parts.to_dict("records") == whole_df.to_dict("records")
    assert a.open_syscalls() == b2.open_syscalls()
