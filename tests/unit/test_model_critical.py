"""The critical path (ftraceipc.model.critical) on hand-built episode and wakeup tables, one rule per
test, then on hand-made event sequences through SchedModel (every split into batches gives the same
path), then on random tables (the segments always cover the window exactly once)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from test_model_syscalls import Trace, make_batches

from ftraceipc.model import critical
from ftraceipc.model.critical import CRITICAL_COLUMNS, CRITICAL_TASK_COLUMNS, CRITICAL_WAIT_COLUMNS, PathInputs
from ftraceipc.model.sched import SchedModel
from ftraceipc.model.syscalls import SyscallPairer

S, PREEMPTED = 0x1, 0x100
A, B, C, P = 100, 200, 300, 400  # tids


def ep(tid, start, end, woken_by=-1, rid=None, op="read"):
    return {"tid": tid, "rid": rid, "op": op, "fd": 3, "start_ts": start, "dur_ns": end - start, "state": "S",
            "woken_by": woken_by}


def wu(ts, waker, wakee, ran, via=None, irq=False):
    return {"ts": ts, "waker": waker, "wakee": wakee, "via": via, "wake_to_run_ns": ran - ts, "waker_cpu": 0,
            "target_cpu": 1, "irq": irq}


def path(episodes, wakeups=(), root=C, start=0, end=1000, **kw):
    inp = PathInputs.from_tables(pd.DataFrame(episodes), pd.DataFrame(list(wakeups)) if wakeups else None, **kw)
    cp = critical.walk(inp, root, start, end)
    assert critical.check(cp) == [], critical.check(cp)
    return cp


def segs(cp):
    return [(r.tid, r.state, r.reason, r.rid, r.start_ts, r.end_ts)
            for r in cp.segments.itertuples(index=False)]


def own(cp):
    return {r.tid: (r.crit_ns, r.running_ns, r.runnable_ns, r.blocked_ns) for r in cp.tasks.itertuples(index=False)}


def resources(cp):
    return dict(zip(cp.resources["rid"], cp.resources["crit_ns"]))


def waits(cp):
    return {(r.waiter, r.rid): (r.crit_ns, r.waits) for r in cp.waits.itertuples(index=False)}


# --- rules on hand-built tables ----------------------------------------------------------------------
def test_a_chain_of_three_tasks_is_followed_through_both_pipes():
    """C reads pipe:2 written by B, B reads pipe:1 written by A: C's wait is B's path, B's wait A's."""
    cp = path([ep(C, 100, 500, B, "pipe:2"), ep(B, 150, 400, A, "pipe:1")],
              [wu(480, B, C, 500, "pipe:2"), wu(390, A, B, 400, "pipe:1")])
    assert segs(cp) == [(C, "running", "", None, 0, 100), (B, "running", "", None, 100, 150),
                        (A, "running", "", None, 150, 390), (B, "runnable", "read", "pipe:1", 390, 400),
                        (B, "running", "", None, 400, 480), (C, "runnable", "read", "pipe:2", 480, 500),
                        (C, "running", "", None, 500, 1000)]
    assert own(cp) == {C: (620, 600, 20, 0), B: (140, 130, 10, 0), A: (240, 240, 0, 0)}
    assert waits(cp) == {(C, "pipe:2"): (380, 1), (B, "pipe:1"): (240, 1)}
    assert cp.wall_ns == 1000 and cp.segments["dur_ns"].sum() == 1000
    assert list(cp.segments.columns) == CRITICAL_COLUMNS and list(cp.tasks.columns) == CRITICAL_TASK_COLUMNS
    assert list(cp.waits.columns) == CRITICAL_WAIT_COLUMNS
    assert cp.stats["edges"] == 2 and cp.stats["blocked_sleeps"] == 0


def test_running_time_on_the_path_splits_at_the_traced_syscalls():
    """The chain above with syscalls: C's read [90, 520] holds its running 90-100 and 500-520 (its
    runnable 480-500 and its sleep are not running); B's [140, 160] 10 of its running 100-150 (the rest
    is A's); A's write [380, 395] 10 before the wakeup at 390; a syscall off the path counts nothing."""
    sc = pd.DataFrame([(C, 90, 520), (B, 140, 160), (A, 380, 395), (A, 600, 700), (C, 900, 950)],
                      columns=["tid", "enter_ts", "exit_ts"])
    cp = path([ep(C, 100, 500, B, "pipe:2"), ep(B, 150, 400, A, "pipe:1")],
              [wu(480, B, C, 500, "pipe:2"), wu(390, A, B, 400, "pipe:1")], syscalls=sc)
    sys_ns = dict(zip(cp.tasks["tid"], cp.tasks["running_sys_ns"]))
    assert sys_ns == {C: 10 + 20 + 50, B: 10, A: 10}
    assert (cp.tasks["running_sys_ns"] <= cp.tasks["running_ns"]).all()
    # without syscalls: 0, the same path
    cp0 = path([ep(C, 100, 500, B, "pipe:2"), ep(B, 150, 400, A, "pipe:1")],
               [wu(480, B, C, 500, "pipe:2"), wu(390, A, B, 400, "pipe:1")])
    assert segs(cp0) == segs(cp) and (cp0.tasks["running_sys_ns"] == 0).all()


def test_sleeps_no_traced_task_ended_stay_blocked_with_their_reason():
    """An interrupt's wakeup, a wakeup with no IPC resource (read of a regular file) and a sleep with
    no traced wakeup stay with the sleeper; the wakeup still ends the blocked time."""
    cp = path([ep(C, 100, 200, A, None, "nanosleep"), ep(C, 300, 400, B, None, "read"),
               ep(C, 500, 600, -1, "pipe:1", "read"), ep(C, 700, 800, A, "pipe:1", "read")],
              [wu(190, A, C, 200, None, irq=True), wu(390, B, C, 400, None), wu(790, A, C, 800, "pipe:1", irq=True)])
    assert segs(cp) == [(C, "running", "", None, 0, 100), (C, "blocked", "nanosleep", None, 100, 190),
                        (C, "runnable", "nanosleep", None, 190, 200), (C, "running", "", None, 200, 300),
                        (C, "blocked", "read", None, 300, 390), (C, "runnable", "read", None, 390, 400),
                        (C, "running", "", None, 400, 500), (C, "blocked", "read", "pipe:1", 500, 600),
                        (C, "running", "", None, 600, 700), (C, "blocked", "read", "pipe:1", 700, 790),
                        (C, "runnable", "read", "pipe:1", 790, 800), (C, "running", "", None, 800, 1000)]
    assert own(cp) == {C: (1000, 600, 30, 370)} and waits(cp) == {}
    assert cp.stats["edges"] == 0 and cp.stats["blocked_sleeps"] == 4


def test_nested_waits_count_at_each_level():
    """C waits on B over [100, 880]; B, asleep since 50 (before C's sleep), waits on A until 590: A
    owns [100, 590], B's wait counts from 100 (inside C's), C's whole wait counts too."""
    cp = path([ep(C, 100, 900, B, "pipe:2"), ep(B, 50, 600, A, "pipe:1")],
              [wu(880, B, C, 900, "pipe:2"), wu(590, A, B, 600, "pipe:1")])
    assert segs(cp) == [(C, "running", "", None, 0, 100), (A, "running", "", None, 100, 590),
                        (B, "runnable", "read", "pipe:1", 590, 600), (B, "running", "", None, 600, 880),
                        (C, "runnable", "read", "pipe:2", 880, 900), (C, "running", "", None, 900, 1000)]
    assert waits(cp) == {(C, "pipe:2"): (780, 1), (B, "pipe:1"): (490, 1)}
    assert own(cp)[A] == (490, 490, 0, 0)
    # per resource: the wait and the runnable time after it, each instant once
    assert resources(cp) == {"pipe:2": 800, "pipe:1": 500}
    # both waits through one resource (a ring through one socket): its time is counted once
    cp = path([ep(C, 100, 900, B, "unix:1"), ep(B, 50, 600, A, "unix:1")],
              [wu(880, B, C, 900, "unix:1"), wu(590, A, B, 600, "unix:1")])
    assert waits(cp) == {(C, "unix:1"): (780, 1), (B, "unix:1"): (490, 1)}
    assert resources(cp) == {"unix:1": 800}


def test_the_time_from_the_wakeup_to_the_run_is_the_wakees():
    """B wakes C at 300 but C runs only at 700 (no CPU): [300, 700] is C's runnable time, not B's,
    even though B runs on meanwhile."""
    cp = path([ep(C, 100, 700, B, "pipe:2")], [wu(300, B, C, 700, "pipe:2")])
    assert segs(cp) == [(C, "running", "", None, 0, 100), (B, "running", "", None, 100, 300),
                        (C, "runnable", "read", "pipe:2", 300, 700), (C, "running", "", None, 700, 1000)]
    assert own(cp) == {C: (800, 400, 400, 0), B: (200, 200, 0, 0)}


def test_of_several_wakers_the_last_one_before_the_run_is_the_edge():
    cp = path([ep(C, 100, 500, A, "pipe:2")],
              [wu(300, B, C, 500, "pipe:2"), wu(450, A, C, 500, "pipe:2")])
    assert segs(cp)[1:3] == [(A, "running", "", None, 100, 450), (C, "runnable", "read", "pipe:2", 450, 500)]
    assert B not in own(cp)


def test_preempted_time_is_runnable_and_the_rest_running():
    cp = path([ep(C, 400, 600, B, "pipe:2")], [wu(550, B, C, 600, "pipe:2")],
              preempted=pd.DataFrame({"tid": [C, C, B], "start_ts": [100, 700, 450], "end_ts": [150, 800, 500]}))
    assert segs(cp) == [(C, "running", "", None, 0, 100), (C, "runnable", "preempted", None, 100, 150),
                        (C, "running", "", None, 150, 400), (B, "running", "", None, 400, 450),
                        (B, "runnable", "preempted", None, 450, 500), (B, "running", "", None, 500, 550),
                        (C, "runnable", "read", "pipe:2", 550, 600), (C, "running", "", None, 600, 700),
                        (C, "runnable", "preempted", None, 700, 800), (C, "running", "", None, 800, 1000)]


def test_a_childs_exit_ending_its_parents_wait_is_followed():
    """C waits (wait4, not traced: op None) for its child B, whose exit at 780 wakes it at 790; B
    was forked by C at 50. Without the parent relation the same sleep stays blocked."""
    tasks = pd.DataFrame({"tid": [C, B], "pid": [C, B], "ppid": [1, C]})
    rows = [ep(C, 100, 800, B, None, None)]
    wk = [wu(790, B, C, 800, None)]
    cp = path(rows, wk, tasks=tasks, exits={B: 780}, born={B: (50, C)})
    assert segs(cp)[1:3] == [(B, "running", "", None, 100, 790), (C, "runnable", "", None, 790, 800)]
    assert waits(cp) == {(C, None): (690, 1)} and cp.stats["exit_edges"] == 1
    stranger = pd.DataFrame({"tid": [C, B], "pid": [C, B], "ppid": [1, 1]})
    cp = path(rows, wk, tasks=stranger, exits={B: 780})
    assert segs(cp)[1] == (C, "blocked", "", None, 100, 790)
    cp = path(rows, wk, tasks=tasks, exits={B: 795})  # its exit after the wakeup: not the exit's
    assert segs(cp)[1] == (C, "blocked", "", None, 100, 790)


def test_a_sibling_threads_wakeup_ending_a_wait_is_followed():
    """C waits (a futex: a join, a lock) and its thread B (same process C) wakes it at 790: [100, 790]
    is B's, with or without B's exit traced (Python's Thread.join is released just before the thread
    exits); a task of another process waking C outside IPC is no edge."""
    rows = [ep(C, 100, 800, B, None, None)]
    wk = [wu(790, B, C, 800, None)]
    threads = pd.DataFrame({"tid": [C, B], "pid": [C, C], "ppid": [1, 1]})
    for exits in ({B: 780}, {B: 795}, {}):
        cp = path(rows, wk, tasks=threads, exits=exits)
        assert segs(cp)[1:3] == [(B, "running", "", None, 100, 790), (C, "runnable", "", None, 790, 800)], exits
    other = pd.DataFrame({"tid": [C, B], "pid": [C, P], "ppid": [1, 1]})
    assert segs(path(rows, wk, tasks=other, exits={B: 780}))[1] == (C, "blocked", "", None, 100, 790)


def test_a_task_born_inside_the_wait_hands_over_to_its_creator():
    """C waits on pipe:2 from 100; Q, forked by P at 300, writes it at 880: Q owns [300, 880], P
    (running while it forked Q) [100, 300]."""
    Q = 500
    cp = path([ep(C, 100, 900, Q, "pipe:2")], [wu(880, Q, C, 900, "pipe:2")], born={Q: (300, P)},
              first_run={Q: 300, P: 0, C: 0})
    assert segs(cp)[1:4] == [(P, "running", "", None, 100, 300), (Q, "running", "", None, 300, 880),
                             (C, "runnable", "read", "pipe:2", 880, 900)]
    assert cp.stats["fork_edges"] == 1


def test_a_task_asleep_since_before_the_capture_is_woken_like_any_sleeper():
    """S (a server, first seen running at 400) was asleep before; X woke it at 350 through unix:7:
    X owns [300, 350] of C's wait, S's pre-capture sleep is not blocked time."""
    Sv, X = 600, 700
    rows = [ep(C, 300, 900, Sv, "unix:1")]
    wk = [wu(880, Sv, C, 900, "unix:1")]
    inp = PathInputs.from_tables(pd.DataFrame(rows), pd.DataFrame(wk), first_run={C: 0, Sv: 400, X: 0})
    inp.pre[Sv] = (350, X, True, inp.rids.index("unix:1"))
    cp = critical.walk(inp, C, 0, 1000)
    assert critical.check(cp) == []
    assert segs(cp)[1:5] == [(X, "running", "", None, 300, 350), (Sv, "runnable", "", "unix:1", 350, 400),
                             (Sv, "running", "", None, 400, 880), (C, "runnable", "read", "unix:1", 880, 900)]
    assert cp.stats["pre_capture_edges"] == 1
    inp.pre.pop(Sv)  # no wakeup known: asleep (blocked), reason unknown
    cp = critical.walk(inp, C, 0, 1000)
    assert segs(cp)[1] == (Sv, "blocked", "", None, 300, 400)


def test_a_sleep_the_window_cuts_is_clipped_to_it():
    cp = path([ep(C, -500, 100, B, "pipe:2"), ep(B, -900, 50, A, "pipe:1")],
              [wu(90, B, C, 100, "pipe:2"), wu(40, A, B, 50, "pipe:1")], start=0, end=300)
    assert segs(cp) == [(A, "running", "", None, 0, 40), (B, "runnable", "read", "pipe:1", 40, 50),
                        (B, "running", "", None, 50, 90), (C, "runnable", "read", "pipe:2", 90, 100),
                        (C, "running", "", None, 100, 300)]
    assert waits(cp) == {(C, "pipe:2"): (90, 1), (B, "pipe:1"): (40, 1)}
    # a window that ends inside a sleep whose wakeup comes later: asleep then, no one to hand it to
    cp = path([ep(C, 200, 1500, B, "pipe:2")], [wu(1400, B, C, 1500, "pipe:2")], start=0, end=1000)
    assert segs(cp) == [(C, "running", "", None, 0, 200), (C, "blocked", "read", "pipe:2", 200, 1000)]


def test_wakers_waking_each_other_at_the_same_instant_do_not_loop():
    cp = path([ep(C, 100, 500, B, "pipe:2"), ep(B, 100, 500, C, "pipe:1")],
              [wu(500, B, C, 500, "pipe:2"), wu(500, C, B, 500, "pipe:1")])
    assert cp.stats["cut_cycles"] >= 1


# --- through SchedModel ---------------------------------------------------------------------------
PIPE_HANDLES = {(C, 3): 7, (B, 4): 7, (B, 5): 8, (A, 6): 8}
RIDS = {7: "pipe:2", 8: "pipe:1"}


def chain_trace():
    """C execs at 1000 and reads pipe:2 (written by B after B reads pipe:1 written by A), then exits."""
    t = Trace()
    t.add(1_000, "sched_process_exec", C, cpu=1, filename="/bin/c", pid=C, old_pid=C)
    t.enter(2_000, C, "read", cpu=1, fd=3, count=10)
    t.switch(3_000, C, 0, state=S, cpu=1)
    t.enter(3_500, B, "read", cpu=0, fd=5, count=10)
    t.switch(4_000, B, A, state=S, cpu=0)
    t.enter(5_000, A, "write", cpu=0, fd=6, count=1)
    t.waking(6_000, A, B, cpu=0, target_cpu=0)
    t.exit(7_000, A, "write", 1, cpu=0)
    t.switch(8_000, A, B, state=PREEMPTED, cpu=0)
    t.exit(9_000, B, "read", 1, cpu=0)
    t.enter(10_000, B, "write", cpu=0, fd=4, count=1)
    t.waking(11_000, B, C, cpu=0, target_cpu=1)
    t.waking(11_500, A, C, cpu=1, target_cpu=1, flags=0x10)  # an interrupt's wakeup on top: not the waker
    t.exit(12_000, B, "write", 1, cpu=0)
    t.switch(13_000, B, A, state=PREEMPTED, cpu=0)
    t.switch(15_000, 0, C, cpu=1)
    t.exit(16_000, C, "read", 1, cpu=1)
    t.switch(17_000, A, B, state=PREEMPTED, cpu=0)
    t.add(20_000, "sched_process_exit", C, cpu=1, comm="c", pid=C, prio=120)
    return t


def sched_path(events, cuts=(), meta=None):
    p = SyscallPairer()
    col = critical.Collector()
    m = SchedModel(p, crit=col, meta=meta)
    for b in make_batches(events, cuts):
        iv = p.pair(b)
        h = [PIPE_HANDLES.get((t, f), -1) for t, f in zip(iv["tid"].tolist(), iv["fd"].tolist())]
        m.feed(b, iv.assign(handle=np.array(h, dtype=np.int64)))
    r = m.finish(RIDS)
    return critical.compute(col, {"command_pid": C} if meta is None else meta, rid_of=RIDS, names=p.names,
                            tasks=r["tasks"])


def test_an_interrupts_wakeup_that_made_the_sleeper_runnable_keeps_the_sleep_blocked():
    events = chain_trace().events
    cp = sched_path(events, meta={"command_pid": C})
    assert (cp.root, cp.start_ts, cp.end_ts) == (C, 1_000, 20_000)
    assert critical.check(cp) == []
    # the last wakeup before C ran is the one that made it runnable (the kernel traces no sched_waking
    # of a task already runnable): here an interrupt's (in A's context), so the sleep stays C's
    assert segs(cp) == [(C, "running", "", None, 1_000, 3_000), (C, "blocked", "read", "pipe:2", 3_000, 11_500),
                        (C, "runnable", "read", "pipe:2", 11_500, 15_000), (C, "running", "", None, 15_000, 20_000)]
    n = len(events)
    for cuts in [[i] for i in range(1, n)] + [[i, j] for i in range(1, n, 3) for j in range(i + 2, n, 4)]:
        got = sched_path(events, cuts, meta={"command_pid": C})
        assert segs(got) == segs(cp), cuts


def test_the_path_time_inside_sleeps_waiting_for_room_is_kept_apart():
    """C writes pipe:2 and sleeps for room until B's read wakes it ([3, 6] us handed to B), then reads
    pipe:2 and sleeps for data until B's write ([12, 14] us): one wait row, 5 us, 3 of them for room."""
    t = Trace()
    t.add(1_000, "sched_process_exec", C, cpu=1, filename="/bin/c", pid=C, old_pid=C)
    t.enter(2_000, C, "write", cpu=1, fd=3, count=100_000)
    t.switch(3_000, C, 0, state=S, cpu=1)
    t.enter(5_000, B, "read", cpu=0, fd=4, count=65_536)
    t.waking(6_000, B, C, cpu=0, target_cpu=1)
    t.exit(7_000, B, "read", 65_536, cpu=0)
    t.switch(9_000, 0, C, cpu=1)
    t.exit(10_000, C, "write", 100_000, cpu=1)
    t.enter(11_000, C, "read", cpu=1, fd=3, count=10)
    t.switch(12_000, C, 0, state=S, cpu=1)
    t.enter(13_000, B, "write", cpu=0, fd=4, count=10)
    t.waking(14_000, B, C, cpu=0, target_cpu=1)
    t.exit(15_000, B, "write", 10, cpu=0)
    t.switch(16_000, 0, C, cpu=1)
    t.exit(17_000, C, "read", 10, cpu=1)
    t.add(20_000, "sched_process_exit", C, cpu=1, comm="c", pid=C, prio=120)
    cp = sched_path(t.events)
    assert waits(cp) == {(C, "pipe:2"): (3_000 + 2_000, 2)}
    assert cp.waits[["waiter", "rid", "room_ns"]].values.tolist() == [[C, "pipe:2", 3_000]]
    # from tables (episode rows): a sleep in a write waited for room
    cp2 = path([ep(C, 100, 500, B, "pipe:2", op="write"), ep(C, 600, 700, B, "pipe:2")],
               [wu(480, B, C, 500, "pipe:2"), wu(690, B, C, 700, "pipe:2")])
    assert waits(cp2) == {(C, "pipe:2"): (380 + 90, 2)} and cp2.waits["room_ns"].tolist() == [380]


def test_a_wakeup_through_a_pipe_hands_the_wait_to_the_writer_and_its_own_waits():
    """Without the interrupt, B's wakeup ends C's sleep: [3, 11] us is B's and, inside B's wait,
    A's; every split into batches gives the same path."""
    t = chain_trace()
    events = [e for e in t.events if not (e["ev"] == "sched_waking" and e["flags"])]
    cp = sched_path(events)
    assert segs(cp) == [(C, "running", "", None, 1_000, 3_000), (B, "running", "", None, 3_000, 4_000),
                        (A, "running", "", None, 4_000, 6_000), (B, "runnable", "read", "pipe:1", 6_000, 8_000),
                        (B, "running", "", None, 8_000, 11_000), (C, "runnable", "read", "pipe:2", 11_000, 15_000),
                        (C, "running", "", None, 15_000, 20_000)]
    assert waits(cp) == {(C, "pipe:2"): (8_000, 1), (B, "pipe:1"): (2_000, 1)}
    n = len(events)
    for cuts in [[i] for i in range(1, n)] + [[i, j] for i in range(1, n, 3) for j in range(i + 2, n, 4)]:
        assert segs(sched_path(events, cuts)) == segs(cp), cuts


def test_a_preemption_seen_by_the_sched_model_is_runnable_preempted():
    t = Trace()
    t.add(1_000, "sched_process_exec", C, filename="/bin/c", pid=C, old_pid=C)
    t.switch(2_000, C, A, state=PREEMPTED)
    t.switch(5_000, A, C, state=PREEMPTED)
    t.switch(6_000, C, A, state=0)  # R without +: yielded, runnable too
    t.add(7_000, "sys_enter_read", C, cpu=1, __syscall_nr=0, fd=3, count=1)  # ran again (own event)
    t.add(9_000, "sched_process_exit", C, cpu=1, comm="c", pid=C, prio=120)
    cp = sched_path(t.events)
    assert segs(cp) == [(C, "running", "", None, 1_000, 2_000), (C, "runnable", "preempted", None, 2_000, 5_000),
                        (C, "running", "", None, 5_000, 6_000), (C, "runnable", "preempted", None, 6_000, 7_000),
                        (C, "running", "", None, 7_000, 9_000)]


def test_no_command_no_root_no_path():
    events = chain_trace().events
    assert sched_path(events, meta={}) is None
    assert sched_path(events, meta={"command_pid": 4242}) is None  # never seen
    cp = sched_path(events, meta={"target_pids": [C, B]})  # --pid: the first target, from its exec
    assert cp.root == C and cp.start_ts == 1_000


# --- coverage on random tables --------------------------------------------------------------------------
def random_inputs(seed: int) -> PathInputs:
    """Random tables: overlapping sleeps, wakeups outside them, tasks waking each other in loops."""
    rnd = random.Random(seed)
    tids = [10, 11, 12, 13, 14]
    rows, wks = [], []
    for _ in range(rnd.randint(0, 40)):
        t = rnd.choice(tids)
        b = rnd.randint(-100, 1000)
        e = b + rnd.randint(0, 300)
        waker = rnd.choice(tids + [-1, 0])
        rows.append(ep(t, b, e, waker, rnd.choice(["pipe:1", None, "unix:2"]), rnd.choice(["read", None])))
        if waker >= 0 and rnd.random() < 0.8:
            w = rnd.randint(b - 50, e)
            wks.append(wu(w, waker, t, e, rnd.choice(["pipe:1", None]), irq=rnd.random() < 0.2))
    born = {t: (rnd.randint(-100, 900), rnd.choice(tids)) for t in tids if rnd.random() < 0.3}
    pre = pd.DataFrame({"tid": [rnd.choice(tids) for _ in range(5)], "start_ts": [rnd.randint(0, 900) for _ in range(5)]})
    pre["end_ts"] = pre["start_ts"] + 30
    return PathInputs.from_tables(pd.DataFrame(rows, columns=list(ep(0, 0, 0))), pd.DataFrame(wks) if wks else None,
                                  born=born, preempted=pre, first_run={t: rnd.randint(-100, 900) for t in tids})


@pytest.mark.parametrize("seed", range(40))
def test_random_tables_are_covered_exactly_once(seed):
    """Whatever the tables (overlapping sleeps, wakeups outside them, tasks waking each other in
    loops), the segments cover the window exactly once and the walk ends."""
    inp = random_inputs(seed)
    cp = critical.walk(inp, 10, 0, 1000)
    assert critical.check(cp) == []
    assert cp.tasks["crit_ns"].sum() == 1000
    assert (cp.waits["crit_ns"] >= 0).all() if len(cp.waits) else True


# --- live mode's window -----------------------------------------------------------------------------------
def clipped(rows, lo):
    """Segments (segs rows) cut to start at ``lo``."""
    return [(t, s, r, rid, max(a, lo), z) for t, s, r, rid, a, z in rows if z > lo]


@pytest.mark.parametrize("seed", range(40))
def test_a_windowed_walk_is_the_whole_walk_cut_at_the_windows_start(seed):
    """The walk goes backwards from the end: stopping it at a later start changes nothing after
    that start (live mode ranks each interval by the path of its last seconds)."""
    inp = random_inputs(seed)
    whole = segs(critical.walk(inp, 10, 0, 1000))
    for lo in (1, 250, 500, 999):
        cp = critical.walk(inp, 10, lo, 1000)
        assert critical.check(cp) == []
        assert segs(cp) == clipped(whole, lo), lo
        assert cp.tasks["crit_ns"].sum() == 1000 - lo


def sched_collector(events, cuts, retire_at=None):
    p = SyscallPairer()
    col = critical.Collector()
    m = SchedModel(p, crit=col, meta={"command_pid": C})
    for b in make_batches(events, cuts):
        iv = p.pair(b)
        h = [PIPE_HANDLES.get((t, f), -1) for t, f in zip(iv["tid"].tolist(), iv["fd"].tolist())]
        m.feed(b, iv.assign(handle=np.array(h, dtype=np.int64)))
        if retire_at is not None and len(b):
            col.retire(retire_at(int(b.ts[-1])))
    return p, col, m.finish(RIDS)


def test_rows_retired_out_of_memory_come_back_for_the_whole_runs_path():
    events = chain_trace().events
    p, col, r = sched_collector(events, ())
    whole = critical.compute(col, {"command_pid": C}, rid_of=RIDS, names=p.names, tasks=r["tasks"])
    n = len(events)
    for cuts in [[i] for i in range(1, n)] + [[i, j] for i in range(1, n, 3) for j in range(i + 2, n, 4)]:
        p, col, r = sched_collector(events, cuts, retire_at=lambda ts: ts - 2_000)
        got = critical.compute(col, {"command_pid": C}, rid_of=RIDS, names=p.names, tasks=r["tasks"])
        assert segs(got) == segs(whole), cuts
        assert own(got) == own(whole)


def test_a_window_after_retiring_is_the_whole_path_cut_at_its_start():
    events = chain_trace().events
    p, col, r = sched_collector(events, ())
    whole = segs(critical.compute(col, {"command_pid": C}, rid_of=RIDS, names=p.names, tasks=r["tasks"]))
    for since in (2_500, 9_000, 12_000, 16_500):
        p, col, r = sched_collector(events, [3, 7, 11], retire_at=lambda ts, s=since: min(ts, s))
        assert len(col.sleeps) + col.old_sleeps.rows >= 1
        got = critical.compute(col, {"command_pid": C}, rid_of=RIDS, names=p.names, tasks=r["tasks"], since=since)
        assert (got.start_ts, got.end_ts) == (since, 20_000)
        assert segs(got) == clipped(whole, since), since


def test_a_spill_file_is_read_by_a_forked_copy_while_the_original_appends():
    """Reads and writes at explicit offsets: live mode's copy reads the rows there were when it
    was forked, the original's appends land where they belong."""
    import os

    sp = critical._Spill()
    for k in range(10):
        sp.add(np.full(1000, k, np.int32), np.arange(1000) + k * 1000, np.arange(1000) + k * 1000 + 5)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            got = np.concatenate([x["z"] for x in sp.select(range(10))])
            later = np.concatenate([x["tid"] for x in sp.select([3, 4], since=5_000)])
            ok = (len(got) == 10_000 and (got == np.arange(10_000) + 5).all()
                  and set(later.tolist()) == {4} and len(later) == 1000)
            os.write(w, b"ok" if ok else b"bad")
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    for k in range(10, 20):  # appended while the copy reads
        sp.add(np.full(1000, k, np.int32), np.arange(1000) + k * 1000, np.arange(1000) + k * 1000 + 5)
    os.waitpid(pid, 0)
    assert os.read(r, 10) == b"ok"
    os.close(r)
    got = np.concatenate([x["z"] for x in sp.select(range(20))])
    assert (got == np.arange(20_000) + 5).all()
    assert sum(len(x["tid"]) for x in sp.select([12], since=12_500)) == 1000
    assert sum(len(x["tid"]) for x in sp.select([12], since=15_000)) == 0  # its chunk ends before
    sp.close()
    sp.close()
