"""live --budget's controller (``live.budget.Budget``): what it turns off and on for measured costs,
and the warnings an analysis gives for a capture whose event set changed (``problems.narrowed``)."""

from __future__ import annotations

from ftraceipc.capture.events import DEFAULT_EVENTS, NARROWABLE
from ftraceipc.capture.store import CaptureDir, CaptureMeta, EventChange
from ftraceipc.live.budget import HOLD, MAX_EVERY, Budget, Decision, needed_groups
from ftraceipc.problems import ProblemKind, narrowed


def counts(switches=0, reads=0, polls=0) -> dict[str, int]:
    """Events of one interval: scheduler, data (read enter+exit) and poll (ppoll enter+exit) events."""
    return {"sched_switch": switches, "sys_enter_read": reads // 2, "sys_exit_read": reads - reads // 2,
            "sys_enter_ppoll": polls // 2, "sys_exit_ppoll": polls - polls // 2}


def test_the_narrowable_groups_never_hold_the_scheduler_or_the_fd_lifecycle():
    for evs in NARROWABLE.values():
        for e in evs:
            assert e in DEFAULT_EVENTS
            assert not e.startswith("sched:") and not e.startswith("task:")
            assert not any(e.endswith(f"_{s}") for s in ("close", "dup", "dup2", "dup3", "openat", "pipe2",
                                                          "socket", "accept4", "connect", "recvmsg", "fcntl"))


def test_under_budget_nothing_changes():
    b = Budget(10, 2, DEFAULT_EVENTS, ns_per_event=1000, ours_ns_per_event=0)
    assert b.step(1.0, 0.05, counts(switches=10_000, reads=10_000)) is None
    assert b.cost_pct == 100 * (0.05 + 20_000 * 1e-6) / 2
    assert not b.off


def test_over_budget_the_busiest_group_no_finding_needs_goes_off_first_and_only_as_many_as_needed():
    b = Budget(11, 2, DEFAULT_EVENTS, ns_per_event=1000, ours_ns_per_event=0)
    # 0.1 s ours + 200k events (0.2 s): 15 % of 2 CPUs; without the 100k data events 10 %
    d = b.step(1.0, 0.1, counts(switches=50_000, reads=100_000, polls=50_000))
    assert d is not None and d.off == ["data"] and d.on == []
    assert b.off == {"data"} and not b.over
    assert "15.0 %" in d.reason and "budget 11 %" in d.reason
    assert b.events_of(["data"]) == NARROWABLE["data"]


def test_a_group_that_findings_need_goes_off_after_the_others():
    b = Budget(10, 2, DEFAULT_EVENTS, ns_per_event=1000, ours_ns_per_event=0)
    d = b.step(1.0, 0.1, counts(switches=50_000, reads=100_000, polls=50_000), needed={"data"})
    assert d.off == ["polls", "data"]  # polls alone is not enough (12.5 %)
    b2 = Budget(13, 2, DEFAULT_EVENTS, ns_per_event=1000, ours_ns_per_event=0)
    d2 = b2.step(1.0, 0.1, counts(switches=50_000, reads=100_000, polls=50_000), needed={"data"})
    assert d2.off == ["polls"]


def test_a_group_goes_on_again_after_the_hold_when_its_last_rate_fits_and_backs_off_when_it_does_not():
    b = Budget(10, 2, DEFAULT_EVENTS, ns_per_event=1000, ours_ns_per_event=0)
    b.step(1.0, 0.1, counts(switches=50_000, reads=100_000))  # 15 %: data off
    assert b.off == {"data"}
    quiet = counts(switches=50_000)  # the workload as before, our processes cost less: 5 %, 10 % with data
    for _ in range(HOLD):
        assert b.step(1.0, 0.05, quiet) is None
    # 10 % > 90 % of 10: stays off; when our processes cost less still it fits (3.5 %, 8.5 % with data)
    assert b.step(1.0, 0.05, quiet) is None and b.off == {"data"}
    d = b.step(1.0, 0.02, quiet)
    assert d is not None and d.on == ["data"] and not b.off
    # it costs too much again at once: off, and the next try waits twice as long
    d = b.step(1.0, 0.1, counts(switches=50_000, reads=100_000))
    assert d.off == ["data"] and b.hold == 2 * HOLD


def test_an_off_group_is_expected_to_follow_the_scheduler_events_rate():
    b = Budget(10, 2, DEFAULT_EVENTS, ns_per_event=1000, ours_ns_per_event=0)
    b.step(1.0, 0.05, counts(switches=100_000, reads=200_000))  # a burst: 17.5 %, data off
    assert b.off == {"data"}
    for _ in range(HOLD):
        b.step(1.0, 0.05, counts(switches=100_000))
    # still bursting (the scheduler's rate as then): data would add its 200k events/s again
    assert b.expected("data", 100_000) == 200_000
    assert b.step(1.0, 0.05, counts(switches=100_000)) is None and b.off == {"data"}
    # the burst is over: a tenth of the switches, so about a tenth of the reads: 20k/s fits
    assert b.expected("data", 10_000) == 20_000
    d = b.step(1.0, 0.05, counts(switches=10_000))
    assert d is not None and d.on == ["data"] and "scaled by the scheduler's events" in d.reason


def test_still_over_with_every_group_off_the_analyses_are_spaced_out_and_come_back():
    b = Budget(5, 2, DEFAULT_EVENTS, ns_per_event=1000, ours_ns_per_event=0)
    d = b.step(1.0, 0.5, counts(switches=10_000, reads=10_000, polls=10_000))
    assert set(d.off) == {"data", "polls"} and b.over
    seen = []
    for _ in range(40):
        d = b.step(1.0, 0.5, counts(switches=10_000))
        if d is not None:
            assert not d.off and not d.on
            seen.append(b.every)
    assert seen == [2, 4, 8, 16] and b.every == MAX_EVERY
    for _ in range(40):  # idle: the groups on again, then back to an analysis each interval
        b.step(1.0, 0.001, counts(switches=100))
    assert b.every == 1 and not b.off and not b.over


def test_an_event_group_costs_the_kernel_and_our_processes_per_event():
    b = Budget(10, 1, DEFAULT_EVENTS, ns_per_event=500, ours_ns_per_event=1500)
    # 0.2 s ours + 100k events * 0.5 us = 25 %; data's 50k events take 50k * 2 us = 0.1 s with them
    d = b.step(1.0, 0.2, counts(switches=50_000, reads=50_000))
    assert d.off == ["data"] and round(b.cost_pct, 6) == 25.0 and b.over  # about 15 % without: still over


def test_needed_groups_follow_the_detectors_event_needs():
    assert needed_groups({"relays"}) == {"data"}  # FLOWS: data syscalls
    assert needed_groups({"wait_chain"}) == {"data", "polls"}
    assert needed_groups({"no_such_detector"}) == set()


def test_event_changes_round_trip_through_the_capture(tmp_path):
    cap = CaptureDir(tmp_path)
    a = EventChange(ts=2_000, start_ts=1_500, off=NARROWABLE["polls"], groups_off=["polls"], reason="r",
                    cost_pct=12.5, budget_pct=5)
    b = EventChange(ts=5_000, start_ts=4_900, on=NARROWABLE["polls"], reason="back")
    cap.add_event_change(b)
    cap.add_event_change(a)
    assert cap.event_changes() == [a, b]
    assert CaptureDir(tmp_path / "none").event_changes() == []


def test_narrowed_says_which_group_was_off_when_and_why():
    meta = CaptureMeta(start_ts=1_000_000_000)
    changes = [EventChange(ts=3_000_000_000, start_ts=2_999_000_000, off=NARROWABLE["data"] + NARROWABLE["polls"],
                           reason="cost 30.0 % of the CPUs > budget 5 %", budget_pct=5),
               EventChange(ts=6_500_000_000, start_ts=6_400_000_000, on=NARROWABLE["polls"], reason="fits")]
    ps = {p.message.split()[0]: p for p in narrowed(meta, changes)}
    assert set(ps) == {"data", "polls"} and all(p.kind == ProblemKind.EVENTS_NARROWED for p in ps.values())
    assert "(2.0-the end; cost 30.0 % of the CPUs > budget 5 %)" in ps["data"].message
    assert "(2.0-5.5 s;" in ps["polls"].message
    assert "--budget 5" in ps["polls"].message and "raise --budget" in ps["polls"].fix
    assert set(ps["polls"].events) == set(NARROWABLE["polls"])
    assert narrowed(meta, []) == []


def test_the_screen_shows_the_cost_the_budget_and_what_is_off():
    import io

    from rich.console import Console

    from ftraceipc.live.tui import LiveView

    con = Console(file=io.StringIO(), width=300, height=40, force_terminal=False)
    v = LiveView(-1, "run.ftipc", console=con)
    v._take({"type": "start", "start_ts": 0, "interval_s": 1.0, "capture": "run.ftipc"})
    v._take({"type": "status", "ts": 2_000_000_000, "events": 10, "lost": 0, "lag_ns": 0, "events_per_s": 5,
             "analyses": 1, "budget_pct": 5.0, "cost_pct": 22.46, "traced_off": ["data", "polls"],
             "analysis_every": 4, "over_budget": True})
    con.print(v._render())
    text = con.file.getvalue()
    assert "cost 22.5 % / budget 5 % (off: data, polls) (an analysis every 4 intervals)" in text
    v._take({"type": "status", "ts": 3_000_000_000, "events": 10, "lost": 0, "lag_ns": 0, "events_per_s": 5,
             "analyses": 1})
    con.file.truncate(0)
    con.print(v._render())
    assert "budget" not in con.file.getvalue()


def test_analyses_brought_closer_and_at_once_too_costly_wait_longer_the_next_time():
    core = [e for e in DEFAULT_EVENTS if not any(e in g for g in NARROWABLE.values())]
    b = Budget(5, 2, core, ns_per_event=1000, ours_ns_per_event=0)  # (capture -D of core detectors)
    assert not b.groups
    while b.every < 4:
        b.step(1.0, 0.5, counts(switches=100))
    waits = []
    for _ in range(3):  # each time: quiet until the analyses come closer, then too costly at once
        n = 0
        while b.step(1.0, 0.001, counts(switches=100)) is None:
            n += 1
        waits.append(n)
        assert b.every == 2
        d = b.step(1.0, 0.5, counts(switches=100))
        assert d is not None and b.every == 4
    assert waits[1] > waits[0] and waits[2] > waits[1]


def test_an_analysis_s_lump_of_cpu_is_averaged_over_the_intervals_before_it():
    b = Budget(10, 2, DEFAULT_EVENTS, ns_per_event=1000, ours_ns_per_event=0)
    b.every, b.hold = 8, 100  # spaced out just before (and not brought closer during this test)
    for _ in range(7):
        assert b.step(1.0, 0.05, counts(switches=1_000, reads=1_000)) is None
    # one analysis every 8 intervals, 1 CPU second each: 0.125 s a second on average; 8.85 % in all
    assert b.step(1.0, 0.05, counts(switches=1_000, reads=1_000), analysis_cpu_s=1.0) is None
    assert round(b.cost_pct, 2) == 8.85 and not b.off
    # analyses that cost that much each interval are too much: the data group goes off
    for _ in range(8):
        b.step(1.0, 0.05, counts(switches=1_000, reads=1_000), analysis_cpu_s=1.0)
    assert b.off


def test_a_change_stopped_half_way_leaves_the_groups_as_the_writes_left_them():
    b = Budget(5, 2, DEFAULT_EVENTS)
    data, polls = b.groups["data"], b.groups["polls"]
    # turning data and polls off: one data event went off, then the writes failed
    b.off |= {"data", "polls"}
    b.settle(Decision(off=["data", "polls"], on=[], reason="", cost_pct=9.0), data[:1], [], "write failed")
    assert b.off == {"data"} and b.stopped == "write failed"
    # turning polls on again: only part of it went on, so it is still (partly) off
    b = Budget(5, 2, DEFAULT_EVENTS)  # polls was off; step() took it out of b.off when it decided
    b.settle(Decision(off=[], on=["polls"], reason="", cost_pct=1.0), [], polls[:-1], "write failed")
    assert b.off == {"polls"}
    # the capture ended before any write: the decision is undone whole
    b = Budget(5, 2, DEFAULT_EVENTS)  # data was off, likewise
    b.settle(Decision(off=[], on=["data"], reason="", cost_pct=1.0), [], [], "the capture ended")
    assert b.off == {"data"} and b.stopped == "the capture ended"
