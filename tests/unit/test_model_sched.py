"""SchedModel on hand-made event sequences with hand-computed episodes and wakeups.

Every scenario is also run split into batches at every possible point: the results must not depend
on where the batches end (state carried between batches is per task)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_model_syscalls import Trace, make_batches

from ftraceipc.model import ipc
from ftraceipc.model.critical import Collector
from ftraceipc.model.sched import CLONE_THREAD, SchedModel, SwitchStates, mark_top
from ftraceipc.model.syscalls import SyscallPairer
from rb_builder import load_format

S, D, PREEMPTED = 0x1, 0x2, 0x100
A, B, C = 100, 200, 300  # tids
Q = 400  # a fourth task
PIPE_R, PIPE_W, SOCK_A, SOCK_B = 7, 8, 5, 6  # handles
RIDS = {PIPE_R: "pipe:1", PIPE_W: "pipe:1", SOCK_A: "unix:10", SOCK_B: "unix:11"}


def run(events, handles=None, cuts=(), rid_of=None, intervals_fn=None, peer_of=None, **kw):
    """Pair + feed (handle of each syscall: handles[(tid, fd)], default -1); returns (model, result)."""
    handles = handles or {}
    p = SyscallPairer()
    m = SchedModel(p, **kw)
    for b in make_batches(events, cuts):
        iv = p.pair(b)
        h = [handles.get((t, f), -1) for t, f in zip(iv["tid"].tolist(), iv["fd"].tolist())]
        iv = iv.assign(handle=np.array(h, dtype=np.int64))
        if intervals_fn is not None:
            iv = intervals_fn(iv)
        m.feed(b, iv)
    return m, m.finish(RIDS if rid_of is None else rid_of, peer_of=peer_of)


def rows(df, cols=None):
    return [tuple(r) for r in (df if cols is None else df[cols]).itertuples(index=False, name=None)]


def all_splits(events, handles=None, **kw):
    """The result of one batch, checked equal for every split into two batches and a few into three,
    with and without a critical path collector (which must change nothing in the model)."""
    _, want = run(events, handles, episodes=True, **kw)
    n = len(events)
    splits = [[i] for i in range(1, n)] + [[i, j] for i in range(1, n, 3) for j in range(i + 1, n, 4)]
    for cuts, crit in [(c, None) for c in splits] + [(c, Collector()) for c in [[]] + splits]:
        _, got = run(events, handles, cuts=cuts, episodes=True, crit=crit, **kw)
        for key in ("blocked", "wakes", "waits", "episodes", "wakeups"):
            a = want[key].sort_values(list(want[key].columns[:3])).reset_index(drop=True)
            b = got[key].sort_values(list(got[key].columns[:3])).reset_index(drop=True)
            pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=f"{key} cuts={cuts}")
    return want


def pipe_trace():
    """B sleeps in read on a pipe; A writes into it and wakes B; B runs 30 us after the wakeup."""
    t = Trace()
    t.switch(500, 0, B, cpu=1)
    t.enter(1_000, B, "read", cpu=1, fd=3, count=4096)
    t.switch(2_000, B, 0, state=S, cpu=1)
    t.enter(5_000, A, "write", cpu=0, fd=4, count=10)
    t.waking(6_000, A, B, cpu=0, target_cpu=1)
    t.exit(7_000, A, "write", 10, cpu=0)
    t.switch(36_000, 0, B, cpu=1)
    t.exit(37_000, B, "read", 10, cpu=1)
    return t


PIPE_HANDLES = {(B, 3): PIPE_R, (A, 4): PIPE_W}


def test_pipe_sleep_is_one_episode_on_the_pipe_and_one_wake():
    r = all_splits(pipe_trace().events, PIPE_HANDLES)
    assert rows(r["episodes"]) == [(B, "pipe:1", "read", 3, 2_000, 34_000, "S", A)]
    assert rows(r["blocked"]) == [(B, "pipe:1", 1, 34_000, 34_000, ["read"], 1, 34_000, 0, 0)]  # waited for data
    assert rows(r["wakes"]) == [(A, B, "pipe:1", 1, 30_000, 30_000, 1)]
    assert rows(r["wakeups"]) == [(6_000, A, B, "pipe:1", 30_000, 0, 1)]
    assert list(r["episodes"].columns) == ipc.EPISODE_COLUMNS
    assert list(r["wakeups"].columns) == ipc.WAKEUP_COLUMNS
    assert list(r["blocked"].columns) == ipc.BLOCKED_COLUMNS and list(r["wakes"].columns) == ipc.WAKES_COLUMNS
    assert r["stats"]["episodes"] == 1 and r["stats"]["wakeups"] == 1 and r["stats"]["episodes_unattributed"] == 0


def test_waits_for_sums_sleeps_per_waker_and_marks_the_main_wait():
    t = pipe_trace()  # B's read sleep of 34 us ended by A
    t.enter(40_000, B, "read", cpu=1, fd=3, count=4096)
    t.switch(41_000, B, 0, state=S, cpu=1)
    t.enter(44_000, C, "write", cpu=0, fd=5, count=1)
    t.waking(45_000, C, B, cpu=0, target_cpu=1)
    t.exit(46_000, C, "write", 1, cpu=0)
    t.switch(50_000, 0, B, cpu=1)  # 9 us, ended by C
    t.exit(51_000, B, "read", 1, cpu=1)
    t.enter(60_000, B, "read", cpu=1, fd=9, count=1)  # an fd with no resource: not in WAITS_FOR
    t.switch(61_000, B, 0, state=S, cpu=1)
    t.waking(70_000, A, B, cpu=0, target_cpu=1)
    t.switch(71_000, 0, B, cpu=1)
    t.exit(72_000, B, "read", 1, cpu=1)
    r = all_splits(t.events, {**PIPE_HANDLES, (C, 5): PIPE_W})
    assert list(r["waits"].columns) == ipc.WAITS_COLUMNS
    assert rows(r["waits"]) == [(B, A, "pipe:1", 1, 34_000, 34_000, True, 1, 0),  # each read returned data
                                (B, C, "pipe:1", 1, 9_000, 9_000, False, 1, 0)]
    # BLOCKED_ON still has every sleep: the fd-9 one (10 us) on no resource, and both pipe sleeps
    assert sorted(rows(r["blocked"], ["rid", "episodes", "blocked_ns"]), key=str) == [
        ("pipe:1", 2, 43_000), (None, 1, 10_000)]


def test_unattributed_sleep_and_sleep_outside_syscalls_keep_their_time():
    t = pipe_trace()
    t.switch(40_000, B, 0, state=D, cpu=1)  # outside any syscall (e.g. a page fault)
    t.switch(45_000, 0, B, cpu=1)
    r = all_splits(t.events, {})  # no handles: everything unattributed
    assert rows(r["blocked"]) == [(B, None, 2, 39_000, 34_000, ["read"], 1, 34_000, 0, 0)]
    ep = rows(r["episodes"], ["op", "fd", "dur_ns", "state", "woken_by"])
    assert ep == [("read", 3, 34_000, "S", A), (None, -1, 5_000, "D", -1)]
    assert r["stats"]["episodes_outside_syscall"] == 1 and r["stats"]["episodes_unattributed"] == 1


def test_preemption_is_not_a_sleep():
    t = Trace()
    t.enter(1_000, B, "read", fd=3)
    t.switch(2_000, B, A, state=PREEMPTED)  # R+: preempted inside the read
    t.switch(3_000, A, B, state=PREEMPTED)
    t.exit(4_000, B, "read", 1)
    _, r = run(t.events, PIPE_HANDLES)
    assert r["blocked"].empty and r["stats"]["sleeps"] == 0


def test_prev_state_encoding_is_read_from_the_format():
    st = SwitchStates(load_format("sched:sched_switch").print_fmt)
    assert (st.S, st.D, st.preempt, st.dead_mask) == (0x1, 0x2, 0x100, 0x30)
    assert st.sleeping(np.array([0, 1, 2, 0x100, 0x4, 0x80])).tolist() == [False, True, True, False, False, False]
    old = SwitchStates('prev_state=%s%s", REC->prev_state & (1024-1) ? __print_flags(REC->prev_state & (1024-1), '
                       '"|", { 1, "S"} , { 2, "D" }) : "R", REC->prev_state & (1024) ? "+" : ""')
    assert old.preempt == 1024


def test_poll_sleep_takes_the_resource_it_was_woken_through():
    t = Trace()
    t.enter(1_000, B, "poll", cpu=1, ufds=0x1000, nfds=2, timeout_msecs=-1)
    t.switch(2_000, B, 0, state=S, cpu=1)
    t.enter(5_000, A, "write", fd=4)
    t.waking(6_000, A, B, target_cpu=1)
    t.exit(7_000, A, "write", 10)
    t.switch(16_000, 0, B, cpu=1)
    t.exit(17_000, B, "poll", 1, cpu=1)
    r = all_splits(t.events, PIPE_HANDLES)
    assert rows(r["episodes"]) == [(B, "pipe:1", "poll", -1, 2_000, 14_000, "S", A)]
    assert rows(r["wakes"]) == [(A, B, "pipe:1", 1, 10_000, 10_000, 1)]
    assert r["stats"]["episodes_via_waker"] == 1


def test_socket_wake_prefers_the_wakees_end():
    t = Trace()
    t.enter(1_000, B, "recvfrom", cpu=1, fd=4)
    t.switch(2_000, B, 0, state=S, cpu=1)
    t.enter(5_000, A, "sendto", fd=3)
    t.waking(6_000, A, B, target_cpu=1)
    t.exit(7_000, A, "sendto", 16)
    t.switch(8_000, 0, B, cpu=1)
    t.exit(9_000, B, "recvfrom", 16, cpu=1)
    r = all_splits(t.events, {(A, 3): SOCK_A, (B, 4): SOCK_B})
    assert rows(r["wakes"]) == [(A, B, "unix:11", 1, 2_000, 2_000, 1)]
    assert rows(r["blocked"]) == [(B, "unix:11", 1, 6_000, 6_000, ["recvfrom"], 1, 6_000, 0, 0)]
    # the wakee not attributed: the waker's end names the wakeup
    _, r = run(t.events, {(A, 3): SOCK_A})
    assert rows(r["wakes"], ["via"]) == [("unix:10",)]


def test_interrupt_wakeup_has_no_via_and_wakeup_outside_syscalls():
    t = Trace()
    t.enter(1_000, B, "read", cpu=1, fd=3)
    t.switch(2_000, B, 0, state=S, cpu=1)
    t.enter(3_000, A, "write", fd=4)
    t.waking(4_000, A, B, target_cpu=1, flags=0x08)  # hardirq while A was in write
    t.exit(5_000, A, "write", 1)
    t.switch(6_000, 0, B, cpu=1)
    t.exit(7_000, B, "read", 0, cpu=1)
    t.switch(8_000, B, 0, state=S, cpu=1)  # outside syscalls
    t.waking(9_000, A, B, target_cpu=1)  # A outside syscalls
    t.switch(9_500, 0, B, cpu=1)
    r = all_splits(t.events, PIPE_HANDLES)
    assert rows(r["wakes"]) == [(A, B, None, 2, 2_500, 2_000, 2)]
    assert rows(r["blocked"]) == [(B, None, 1, 1_500, 1_500, [], 0, 0, 0, 0),
                                  (B, "pipe:1", 1, 4_000, 4_000, ["read"], 1, 4_000, 0, 0)]
    assert r["stats"]["wakeups_in_irq"] == 1


def test_wakeup_traced_before_the_wakees_switch_out():
    """The waker's CPU traces the wakeup while the wakee's CPU is still in __schedule."""
    t = Trace()
    t.enter(1_000, B, "read", cpu=1, fd=3)
    t.enter(1_200, A, "write", fd=4)
    t.waking(1_500, A, B, target_cpu=1)
    t.exit(1_600, A, "write", 1)
    t.switch(1_800, B, 0, state=S, cpu=1)
    t.switch(5_000, 0, B, cpu=1)
    t.exit(5_500, B, "read", 1, cpu=1)
    r = all_splits(t.events, PIPE_HANDLES)
    assert rows(r["episodes"], ["start_ts", "dur_ns", "woken_by"]) == [(1_800, 3_200, A)]
    assert rows(r["wakes"]) == [(A, B, "pipe:1", 1, 3_500, 3_500, 1)]
    assert r["stats"]["wakeups_before_switch_out"] == 1


def test_wakeup_of_a_running_task_and_a_task_resumed_without_a_traced_switch_in():
    t = Trace()
    t.switch(500, 0, B, cpu=1)
    t.enter(1_000, B, "read", cpu=1, fd=3)
    t.waking(1_500, A, B, target_cpu=1)  # B set itself sleeping but never switched out
    t.exit(1_600, B, "read", 1, cpu=1)
    t.enter(2_000, B, "read", cpu=1, fd=3)
    t.switch(2_500, B, 0, state=S, cpu=1)
    t.waking(3_000, A, B, target_cpu=1)
    t.exit(4_000, B, "read", 1, cpu=1)  # no switch-in traced: B's own event says it ran
    r = all_splits(t.events, PIPE_HANDLES)
    assert rows(r["wakeups"], ["ts", "wake_to_run_ns"]) == [(1_500, 0), (3_000, 1_000)]
    assert rows(r["episodes"], ["start_ts", "dur_ns", "woken_by"]) == [(2_500, 1_500, A)]
    assert r["stats"]["wakeups_of_running"] == 1 and r["stats"]["sleeps_ended_by_own_event"] == 1


def test_never_run_wakee_and_sleep_open_at_the_end():
    t = Trace()
    t.enter(1_000, B, "read", cpu=1, fd=3)
    t.switch(2_000, B, 0, state=S, cpu=1)
    t.waking(3_000, A, C)  # C never seen
    t.add(10_000, "sys_enter_close", A, fd=9)  # the last event
    r = all_splits(t.events, PIPE_HANDLES)
    assert rows(r["wakes"]) == [(A, C, None, 1, 0, -1, 0)]
    # the read never completed: its handle is unknown without open_intervals
    assert rows(r["episodes"]) == [(B, None, "read", 3, 2_000, 8_000, "S", -1)]
    st = r["stats"]
    assert st["wakeups_never_ran"] == 1 and st["sleeps_open_at_end"] == 1


def test_open_syscall_handles_at_the_end_come_from_open_intervals():
    t = Trace()
    t.enter(1_000, B, "read", cpu=1, fd=3)
    t.switch(2_000, B, 0, state=S, cpu=1)
    t.add(10_000, "sys_enter_close", A, fd=9)
    p = SyscallPairer()
    m = SchedModel(p)
    for b in make_batches(t.events):
        m.feed(b, p.pair(b).assign(handle=-1))
    fin = p.finish()
    r = m.finish(RIDS, open_intervals=fin.assign(handle=np.where(fin["tid"] == B, PIPE_R, -1)))
    assert rows(r["blocked"]) == [(B, "pipe:1", 1, 8_000, 8_000, ["read"], 1, 8_000, 0, 0)]


def test_streaming_sinks_get_handles_and_nothing_is_kept():
    got = {"episodes": [], "wakeups": []}
    _, r = run(pipe_trace().events, PIPE_HANDLES, cuts=[4], episodes=True,
               episode_sink=got["episodes"].append, wakeup_sink=got["wakeups"].append)
    assert r["episodes"] is None and r["wakeups"] is None
    ep = pd.concat(got["episodes"])
    assert list(ep.columns) == ipc.EPISODE_COLUMNS + ["handle"]
    assert rows(ep, ["tid", "rid", "handle", "dur_ns"]) == [(B, None, PIPE_R, 34_000)]
    wu = pd.concat(got["wakeups"])
    assert list(wu.columns) == ipc.WAKEUP_COLUMNS + ["via_handle"]
    assert rows(wu, ["waker", "wakee", "via", "via_handle"]) == [(A, B, None, PIPE_R)]
    # without episodes=True no rows at all
    _, r = run(pipe_trace().events, PIPE_HANDLES)
    assert r["episodes"] is None and rows(r["wakes"], ["wakeups"]) == [(1,)]


def test_intervals_not_from_the_pairer_are_joined_by_tid_and_enter_ts():
    def shuffle(iv):
        return iv.iloc[::-1].reset_index(drop=True)

    _, want = run(pipe_trace().events, PIPE_HANDLES, episodes=True)
    for cuts in ((), (5,)):
        _, got = run(pipe_trace().events, PIPE_HANDLES, cuts=cuts, episodes=True, intervals_fn=shuffle)
        pd.testing.assert_frame_equal(got["episodes"], want["episodes"])
        pd.testing.assert_frame_equal(got["wakes"], want["wakes"])


def test_feed_requires_the_pairers_batch():
    b = make_batches(pipe_trace().events)[0]
    m = SchedModel(SyscallPairer())
    with pytest.raises(ValueError):
        m.feed(b, None)
    m = SchedModel()  # own pairer
    m.feed(b)
    assert rows(m.finish()["wakes"], ["waker", "wakee", "wake_to_run_ns"]) == [(A, B, 30_000)]


def test_missing_events_are_reported_not_fatal():
    t = Trace()
    t.enter(1_000, B, "read", fd=3)
    t.exit(2_000, B, "read", 1)
    m, r = run(t.events, meta={"events": ["syscalls:sys_enter_read", "syscalls:sys_exit_read"]})
    assert "sched_switch" in r["stats"]["missing_events"] and "sched_waking" in r["stats"]["missing_events"]
    assert r["blocked"].empty and r["wakes"].empty
    assert rows(r["tasks"], ["tid", "first_ts", "last_ts"]) == [(B, 1_000, 2_000)]


def test_tasks_threads_processes_comms_and_tracer():
    t = Trace()
    t.switch(100, 0, A, next_comm="main")
    t.add(200, "task_newtask", A, pid=A + 1, comm="main", clone_flags=CLONE_THREAD | 0x3D0F00, oom_score_adj=0)
    t.add(201, "sched_process_fork", A, parent_comm="main", parent_pid=A, child_comm="main", child_pid=A + 1)
    t.add(300, "task_newtask", A, pid=A + 2, comm="main", clone_flags=0x11, oom_score_adj=0)
    t.add(301, "sched_process_fork", A, parent_comm="main", parent_pid=A, child_comm="main", child_pid=A + 2)
    t.add(400, "task_rename", A + 1, pid=A + 1, oldcomm="main", newcomm="worker", oom_score_adj=0)
    t.switch(500, A, A + 2, state=S, prev_comm="main", next_comm="main")
    t.add(600, "sched_process_exec", A + 2, filename="/usr/bin/cat", pid=A + 2, old_pid=A + 2)
    t.switch(700, A + 2, A + 1, state=S, prev_comm="cat", next_comm="worker")
    t.add(800, "sched_process_fork", A + 1, parent_comm="worker", parent_pid=A + 1, child_comm="worker",
          child_pid=A + 3)  # no task_newtask: a process, its parent the worker's process
    _, r = run(t.events, tgid_of={A: A}, ppid_of={A: 1}, tracer_tids=[A + 3],
               meta={"events": ["sched:sched_switch", "task:task_newtask"]})  # no task_rename: exec names
    got = {row[0]: row[1:] for row in rows(r["tasks"])}
    assert got[A] == (A, "main", ["main"], 1, 100, 500, False)
    assert got[A + 1] == (A, "worker", ["main", "worker"], 1, 200, 800, False)
    assert got[A + 2] == (A + 2, "cat", ["main", "cat"], A, 300, 700, False)
    assert got[A + 3] == (-1, None, [], A, 800, 800, True)
    assert list(r["tasks"].columns) == ipc.TASK_COLUMNS


def test_state_is_bounded_by_tasks_over_many_batches():
    """A ping-pong of 400 wakeups fed in 50 batches: carried state stays per task."""
    t = Trace()
    ts = 0
    for k in range(200):
        for me, other, fd in ((A, B, 3), (B, A, 4)):
            ts += 100
            t.enter(ts, me, "write", fd=fd)
            t.waking(ts + 10, me, other, cpu=0)
            t.exit(ts + 20, me, "write", 1)
            t.enter(ts + 30, me, "read", fd=fd)
            t.switch(ts + 40, me, other, state=S)
            t.exit(ts + 50, other, "read", 1)
    p = SyscallPairer()
    m = SchedModel(p)
    n = len(t.events)
    cuts = list(range(n // 50, n, n // 50))
    sizes = []
    for b in make_batches(t.events, cuts):
        m.feed(b, p.pair(b).assign(handle=-1))
        sizes.append((len(m._st["tid"]), len(m._pend["ts"]), len(m._epw["tid"]), len(m._wuw["ts"])))
    assert max(s[0] for s in sizes) <= 2 and max(s[1] + s[2] + s[3] for s in sizes) <= 4
    r = m.finish({})
    assert rows(r["wakes"], ["waker", "wakee", "wakeups", "wake_to_run_ns"]) == [(A, B, 200, 200 * 30),
                                                                                (B, A, 200, 200 * 30)]
    assert rows(r["blocked"], ["tid", "episodes"]) == [(A, 200), (B, 200)]  # B's last sleep: open at the end
    assert r["stats"]["sleeps_open_at_end"] == 1


K = 400  # a kernel thread


def test_switch_in_not_traced_on_the_wakers_cpu():
    """An idle CPU resumes a woken task without tracing the switch-in: the task's own switch-out on
    the waker's CPU is when it ran at the latest (it cannot have been switching out there)."""
    t = Trace()
    t.waking(1_000, 0, K, cpu=1, target_cpu=1, flags=0x08)
    t.switch(1_019, K, A, state=S, cpu=1)
    t.waking(288_000, A, K, cpu=1, target_cpu=1)
    t.switch(288_020, A, K, state=PREEMPTED, cpu=1)
    t.switch(288_050, K, A, state=S, cpu=1)
    r = all_splits(t.events)
    assert rows(r["wakeups"], ["ts", "waker", "wake_to_run_ns"]) == [(1_000, 0, 19), (288_000, A, 20)]
    assert rows(r["episodes"], ["tid", "start_ts", "dur_ns", "woken_by"]) == [(K, 1_019, 287_001, A),
                                                                             (K, 288_050, 0, -1)]


def test_switch_out_after_a_wakeup_on_another_cpu_is_no_race_if_woken_again():
    """Waking on cpu0, the wakee's sleeping switch-out on cpu1, then another waking before it runs:
    it had run in between (switch-in not traced), so the first wakeup ran by that switch-out."""
    t = Trace()
    t.waking(1_000, A, K, cpu=0, target_cpu=1)
    t.switch(1_019, K, 0, state=S, cpu=1)
    t.waking(5_000, B, K, cpu=0, target_cpu=1)
    t.switch(5_100, 0, K, cpu=1)
    r = all_splits(t.events)
    assert rows(r["wakeups"], ["ts", "waker", "wake_to_run_ns"]) == [(1_000, A, 19), (5_000, B, 100)]
    assert rows(r["episodes"], ["tid", "start_ts", "dur_ns", "woken_by"]) == [(K, 1_019, 4_081, B)]
    assert r["stats"]["wakeups_before_switch_out"] == 0


# --- what a sleep waited for, and what the sleeper did next (BLOCKED_ON read_*/write_*, WAITS_FOR
# consumed/turns) ---------------------------------------------------------------------------------------
PEERS = {"unix:10": "unix:11", "unix:11": "unix:10"}


def test_sleeps_are_split_by_what_they_waited_for():
    """A in write waits for room; C in poll woken by A's write waits for data; Q in poll woken by B's
    read waits for room; B in read waits for data."""
    t = Trace()
    t.enter(1_000, A, "write", cpu=0, fd=4)
    t.enter(1_100, C, "poll", cpu=1, ufds=0x1000, nfds=1, timeout_msecs=-1)
    t.switch(1_200, C, 0, state=S, cpu=1)
    t.enter(1_300, Q, "poll", cpu=1, ufds=0x2000, nfds=1, timeout_msecs=-1)
    t.switch(1_400, Q, 0, state=S, cpu=1)
    t.switch(2_000, A, 0, state=S, cpu=0)  # the pipe is full
    t.enter(3_000, B, "read", cpu=1, fd=3)
    t.waking(3_500, B, A, cpu=1, target_cpu=0)  # the read made room
    t.waking(3_600, B, Q, cpu=1, target_cpu=1)
    t.exit(4_000, B, "read", 100, cpu=1)
    t.switch(5_000, 0, A, cpu=0)
    t.exit(6_000, A, "write", 100, cpu=0)
    t.switch(6_500, B, Q, cpu=1)
    t.exit(6_600, Q, "poll", 1, cpu=1)
    t.enter(7_000, A, "write", cpu=0, fd=4)
    t.waking(7_500, A, C, cpu=0, target_cpu=1)  # the write brought data
    t.exit(8_000, A, "write", 10, cpu=0)
    t.switch(9_000, Q, C, cpu=1, state=S)
    t.exit(9_500, C, "poll", 1, cpu=1)
    r = all_splits(t.events, PIPE_HANDLES)
    got = {row[0]: row[6:] for row in rows(r["blocked"]) if row[1] == "pipe:1"}
    assert got == {A: (0, 0, 1, 3_000), C: (1, 7_800, 0, 0), Q: (0, 0, 1, 5_100)}



def pingpong():
    """B waits in recv on its socket end; A sends, then waits for the answer; B answers and waits again,
    and so on: each wakes the other and goes to sleep before the other sleeps again (turns)."""
    t = Trace()
    t.enter(1_000, B, "recvfrom", cpu=1, fd=4)
    t.switch(2_000, B, 0, state=S, cpu=1)
    t.enter(3_000, A, "sendto", cpu=0, fd=3)
    t.waking(4_000, A, B, cpu=0, target_cpu=1)
    t.exit(5_000, A, "sendto", 1, cpu=0)
    t.enter(6_000, A, "recvfrom", cpu=0, fd=3)
    t.switch(7_000, A, 0, state=S, cpu=0)
    t.switch(8_000, 0, B, cpu=1)
    t.exit(9_000, B, "recvfrom", 1, cpu=1)
    t.enter(10_000, B, "sendto", cpu=1, fd=4)
    t.waking(11_000, B, A, cpu=1, target_cpu=0)
    t.exit(12_000, B, "sendto", 1, cpu=1)
    t.enter(13_000, B, "recvfrom", cpu=1, fd=4)
    t.switch(14_000, B, 0, state=S, cpu=1)
    t.switch(15_000, 0, A, cpu=0)
    t.exit(16_000, A, "recvfrom", 1, cpu=0)
    t.enter(17_000, A, "sendto", cpu=0, fd=3)
    t.waking(18_000, A, B, cpu=0, target_cpu=1)
    t.exit(19_000, A, "sendto", 1, cpu=0)
    t.enter(20_000, A, "recvfrom", cpu=0, fd=3)
    t.switch(21_000, A, 0, state=S, cpu=0)
    t.switch(22_000, 0, B, cpu=1)
    t.exit(23_000, B, "recvfrom", 1, cpu=1)  # B's last window stays open: the capture ends first
    return t


SOCK_HANDLES = {(A, 3): SOCK_A, (B, 4): SOCK_B}


def test_a_pair_that_takes_turns_and_reads_what_woke_it():
    r = all_splits(pingpong().events, SOCK_HANDLES)
    cols = ["waiter", "waker", "via", "episodes", "consumed", "turns"]
    # B's first sleep: A slept (7 us) before B slept again (14 us); its second: B never slept again
    assert rows(r["waits"], cols) == [(A, B, "unix:10", 1, 1, 1), (B, A, "unix:11", 2, 2, 1)]


def test_a_producer_that_keeps_running_takes_no_turns():
    """A writes into the pipe and goes on computing: B reads, sleeps again, and only later does A sleep."""
    t = Trace()
    t.enter(1_000, B, "read", cpu=1, fd=3)
    t.switch(2_000, B, 0, state=S, cpu=1)
    for k in range(3):
        base = 10_000 * (k + 1)
        t.enter(base, A, "write", cpu=0, fd=4)
        t.waking(base + 100, A, B, cpu=0, target_cpu=1)
        t.exit(base + 200, A, "write", 10, cpu=0)
        t.switch(base + 1_000, 0, B, cpu=1)
        t.exit(base + 1_100, B, "read", 10, cpu=1)
        t.enter(base + 2_000, B, "read", cpu=1, fd=3)
        t.switch(base + 2_100, B, 0, state=S, cpu=1)
    t.switch(45_000, A, 0, state=S, cpu=0)  # A sleeps (elsewhere) only at the end
    r = all_splits(t.events, PIPE_HANDLES)
    assert rows(r["waits"], ["waiter", "waker", "episodes", "consumed", "turns"]) == [(B, A, 3, 3, 0)]


def test_a_poller_that_finds_nothing_did_not_consume():
    """A herd of two pollers: A's write wakes both, B reads the byte, C's non-blocking read fails
    (EAGAIN) and C polls again: one sleep consumed, one not."""
    t = Trace()
    for who, cpu in ((B, 1), (C, 1)):
        t.enter(1_000 + who, who, "poll", cpu=cpu, ufds=0x1000, nfds=1, timeout_msecs=-1)
        t.switch(1_100 + who, who, 0, state=S, cpu=cpu)
    t.enter(2_000, A, "write", cpu=0, fd=4)
    t.waking(2_100, A, B, cpu=0, target_cpu=1)
    t.waking(2_200, A, C, cpu=0, target_cpu=1)
    t.exit(2_300, A, "write", 1, cpu=0)
    t.switch(3_000, 0, B, cpu=1)
    t.exit(3_100, B, "poll", 1, cpu=1)
    t.enter(3_200, B, "read", cpu=1, fd=3)
    t.exit(3_300, B, "read", 1, cpu=1)
    t.switch(4_000, B, C, cpu=1, state=PREEMPTED)
    t.exit(4_100, C, "poll", 1, cpu=1)
    t.enter(4_200, C, "read", cpu=1, fd=5)
    t.exit(4_300, C, "read", -11, cpu=1)  # EAGAIN
    t.enter(4_400, C, "poll", cpu=1, ufds=0x1000, nfds=1, timeout_msecs=-1)
    t.switch(4_500, C, B, cpu=1, state=S)
    t.enter(5_000, B, "poll", cpu=1, ufds=0x1000, nfds=1, timeout_msecs=-1)
    t.switch(5_100, B, 0, state=S, cpu=1)
    r = all_splits(t.events, {**PIPE_HANDLES, (C, 5): PIPE_R})
    assert rows(r["waits"], ["waiter", "waker", "via", "episodes", "consumed"]) == [
        (B, A, "pipe:1", 1, 1), (C, A, "pipe:1", 1, 0)]


def test_a_poller_resleeping_inside_poll_without_a_traced_switch_in_consumes_once():
    """Seen on 6.18 (samples/herd.py): A's first write wakes C on an idle CPU; the kernel traces no
    switch-in, C finds nothing (B took the byte) and sleeps again inside the same poll, so its only
    event is the switch-out that ends the first sleep and begins the next. A's second write wakes C,
    which reads that byte: one read, one sleep consumed (the first sleep's window is empty)."""
    t = Trace()
    t.enter(1_000, C, "poll", cpu=1, ufds=0x1000, nfds=1, timeout_msecs=-1)
    t.switch(1_100, C, 0, state=S, cpu=1)
    t.enter(2_000, A, "write", cpu=0, fd=4)
    t.waking(2_100, A, C, cpu=0, target_cpu=1)
    t.exit(2_200, A, "write", 1, cpu=0)
    t.switch(3_000, C, 0, state=S, cpu=1)  # no switch-in traced before it
    t.enter(4_000, A, "write", cpu=0, fd=4)
    t.waking(4_100, A, C, cpu=0, target_cpu=1)
    t.exit(4_200, A, "write", 1, cpu=0)
    t.switch(5_000, 0, C, cpu=1)
    t.exit(5_100, C, "poll", 1, cpu=1)
    t.enter(5_200, C, "read", cpu=1, fd=5)
    t.exit(5_300, C, "read", 1, cpu=1)
    t.enter(5_400, C, "poll", cpu=1, ufds=0x1000, nfds=1, timeout_msecs=-1)
    t.switch(5_500, C, 0, state=S, cpu=1)
    r = all_splits(t.events, {**PIPE_HANDLES, (C, 5): PIPE_R})
    assert rows(r["waits"], ["waiter", "waker", "via", "episodes", "consumed"]) == [(C, A, "pipe:1", 2, 1)]


def test_a_read_of_something_else_than_an_ipc_resource_consumes_nothing():
    """B sleeps writing into the full pipe; A's read wakes it; B then reads a regular file (a handle
    that is no resource): not data from the pipe (dd if=/dev/zero | cat: dd woken for room, then
    reading /dev/zero, was counted as consuming the pipe)."""
    t = Trace()
    t.enter(1_000, B, "write", cpu=1, fd=4, count=1 << 20)
    t.switch(1_100, B, 0, state=S, cpu=1)
    t.enter(2_000, A, "read", cpu=0, fd=3, count=65_536)
    t.waking(2_100, A, B, cpu=0, target_cpu=1)
    t.exit(2_200, A, "read", 65_536, cpu=0)
    t.switch(3_000, 0, B, cpu=1)
    t.exit(3_100, B, "write", 1 << 20, cpu=1)
    t.enter(3_200, B, "read", cpu=1, fd=9, count=1 << 20)
    t.exit(3_300, B, "read", 1 << 20, cpu=1)
    t.enter(3_400, B, "write", cpu=1, fd=4, count=1 << 20)
    t.switch(3_500, B, 0, state=S, cpu=1)
    r = all_splits(t.events, {(B, 4): PIPE_W, (A, 3): PIPE_R, (B, 9): 9})  # handle 9: not in RIDS
    assert rows(r["waits"], ["waiter", "waker", "via", "episodes", "consumed"]) == [(B, A, "pipe:1", 1, 0)]


def test_a_read_of_the_peer_end_consumes_what_a_poll_on_the_senders_end_waited_for():
    """C polls; A's send on its end (unix:10) wakes it, so the sleep is on unix:10; C then reads its own
    end, unix:11: consumed only because the two ends are peers."""
    t = Trace()
    t.enter(1_000, C, "poll", cpu=1, ufds=0x1000, nfds=1, timeout_msecs=-1)
    t.switch(1_100, C, 0, state=S, cpu=1)
    t.enter(2_000, A, "sendto", cpu=0, fd=3)
    t.waking(2_100, A, C, cpu=0, target_cpu=1)
    t.exit(2_200, A, "sendto", 8, cpu=0)
    t.switch(3_000, 0, C, cpu=1)
    t.exit(3_100, C, "poll", 1, cpu=1)
    t.enter(3_200, C, "recvfrom", cpu=1, fd=4)
    t.exit(3_300, C, "recvfrom", 8, cpu=1)
    t.enter(3_400, C, "poll", cpu=1, ufds=0x1000, nfds=1, timeout_msecs=-1)
    t.switch(3_500, C, 0, state=S, cpu=1)
    handles = {(A, 3): SOCK_A, (C, 4): SOCK_B}
    cols = ["waiter", "via", "episodes", "consumed"]
    assert rows(all_splits(t.events, handles, peer_of=PEERS)["waits"], cols) == [(C, "unix:10", 1, 1)]
    assert rows(all_splits(t.events, handles)["waits"], cols) == [(C, "unix:10", 1, 0)]  # peers unknown


def test_the_critical_path_collector_changes_no_table():
    """build_model always gives a Collector; with it, episodes still wait for their handles and for the
    sleeper's next sleep, and each is counted once (a scalar `wait` once turned the ready mask into
    integers, which `_take` read as row numbers: episodes doubled on real captures)."""
    from ftraceipc.model.critical import Collector

    for events, handles in ((pingpong().events, SOCK_HANDLES), (pipe_trace().events, PIPE_HANDLES)):
        n = len(events)
        for cuts in [()] + [[i] for i in range(1, n)]:
            _, plain = run(events, handles, cuts=cuts, peer_of=PEERS)
            _, crit = run(events, handles, cuts=cuts, peer_of=PEERS, crit=Collector())
            for key in ("blocked", "wakes", "waits"):
                pd.testing.assert_frame_equal(plain[key], crit[key], check_dtype=False, obj=f"{key} cuts={cuts}")
            assert crit["stats"]["episodes"] == crit["stats"]["sleeps"]


def test_first_index_finds_the_first_of_repeated_tids_and_minus_one_for_the_absent():
    """A damaged capture can repeat a tid in the switch states (a fuzzed capture did; pandas'
    get_indexer then raised InvalidIndexError): the lookup must still answer."""
    from ftraceipc.model.sched import _first_index

    keys = np.array([7, 3, 7, 9, 3], dtype=np.int32)
    assert _first_index(keys, np.array([3, 7, 9, 4, 100], dtype=np.int32)).tolist() == [1, 0, 3, -1, -1]
    assert _first_index(np.array([], dtype=np.int32), np.array([1, 2])).tolist() == [-1, -1]


def test_a_waiters_main_wait_is_the_one_on_the_critical_path_then_the_longest():
    """A relay (2) waits for its client (1) a little longer than for its server (3), but only its waits
    for the server hold the command up (on the critical path): that is its main wait. A task with
    no time on the path (4) keeps its longest wait; ties: more episodes, then the lower waker."""
    waits = pd.DataFrame([(2, 1, "unix:10", 100, 800, 20, False, 100, 0),
                          (2, 3, "unix:11", 100, 600, 20, False, 100, 0),
                          (4, 5, "pipe:20", 10, 500, 90, False, 10, 0),
                          (4, 6, "pipe:21", 12, 500, 90, False, 12, 0),
                          (4, 7, "pipe:22", 12, 500, 90, False, 12, 0)], columns=ipc.WAITS_COLUMNS)
    crit = pd.DataFrame([(2, "unix:11", 400, 90, 0), (2, "unix:10", 0, 0, 0), (1, None, 50, 1, 0)],
                        columns=["waiter", "rid", "crit_ns", "waits", "room_ns"])
    top = mark_top(waits, crit)
    assert [(w, k) for w, k, t in zip(top["waiter"], top["waker"], top["top"]) if t] == [(2, 3), (4, 6)]
    by_time = mark_top(waits)
    assert [(w, k) for w, k, t in zip(by_time["waiter"], by_time["waker"], by_time["top"]) if t] == [(2, 1), (4, 6)]
    assert list(top[["waiter", "waker"]].itertuples(index=False, name=None)) == [(2, 1), (2, 3), (4, 5), (4, 6), (4, 7)]
