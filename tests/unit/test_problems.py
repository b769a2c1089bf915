"""ftraceipc.problems: one list of what a capture is missing, from the facts of the layers below
(meta.json, the decoder's statistics, the model's gaps), and the detectors that cannot run."""

from __future__ import annotations

import json

from rb_builder import PAGE, PageBuilder, load_format, pack_event, write_capture

from ftraceipc.capture.store import CaptureMeta, CpuLost
from ftraceipc.decode.decoder import Decoder
from ftraceipc.detect import DETECTORS, detector_needs, runnable
from ftraceipc.model import ipc
from ftraceipc.model.build import capture_gaps
from ftraceipc.problems import ProblemKind, collect, not_run

ENTER = load_format("syscalls:sys_enter_write")
EVENTS = ["syscalls:sys_enter_write"]
EDGE_TYPES = {"WRITES", "READS", "BLOCKED_ON", "WAKES", "FLOWS", "WAITS_FOR"}


def _page(ts=1):
    p = PageBuilder(ts)
    for i in range(10):
        p.event(pack_event(ENTER, {"__syscall_nr": 1, "fd": 3, "buf": 0, "count": 5}, pid=100), 1)
    return p.build()


def test_every_detector_declares_the_model_tables_it_needs():
    for d in DETECTORS:
        needs = detector_needs(d)
        # the edge tables, and SYSCALL_TIME (Task columns of time inside syscalls: ftraceipc.model.needs)
        assert needs and set(needs) <= EDGE_TYPES | {"SYSCALL_TIME"}, (d, needs)


def test_without_sched_waking_no_detector_runs():
    """Each needs WAKES or WAITS_FOR (full_buffer_stall: whether the reader waited for the writer)."""
    meta = {"events": ["sched:sched_switch", "syscalls:sys_exit_write", "syscalls:sys_exit_epoll_wait",
                       "sched:sched_process_exec"]}
    run, skipped = runnable(list(DETECTORS), capture_gaps(meta))
    assert run == []
    assert {s.detector for s in skipped} == set(DETECTORS)
    assert all("sched:sched_waking" in s.events for s in skipped)
    assert json.loads(json.dumps(skipped[0].to_json()))["missing_events"] == ["sched:sched_waking"]


def test_a_whole_capture_has_no_problems(tmp_path):
    cap = write_capture(tmp_path / "ok.ftipc", {0: [_page()]}, EVENTS)
    meta = cap.read_meta()
    meta.cpu_bytes = {0: PAGE}
    assert collect(meta, Decoder(cap).stats(), []) == []


def test_lost_damaged_cut_and_missing_are_each_one_problem(tmp_path):
    bad = bytearray(_page(2))
    bad[8:16] = (5000).to_bytes(8, "little")  # commit larger than the page
    cap = write_capture(tmp_path / "bad.ftipc", {0: [_page(), bytes(bad), _page(3)], 1: [_page()] * 4, 2: [_page()]},
                        EVENTS, extra_bytes={1: b"\x01" * 100})
    cap.cpu_path(2).unlink()
    meta = cap.read_meta()
    meta.lost = {0: CpuLost(overrun=12)}
    meta.buffer_kb = 1024
    meta.cpu_bytes = {0: 3 * PAGE, 1: 8 * PAGE, 2: PAGE}
    meta.complete = False
    probs = collect(meta, Decoder(cap).stats(), [])
    by = {(p.kind, p.cpu): p for p in probs}
    assert len(by) == len(probs) == 5, [p.line() for p in probs]
    lost = by[(ProblemKind.EVENTS_LOST, 0)]
    assert lost.count == 12 and lost.line().startswith("12 events lost on CPU0") and "--buffer-kb" in lost.line()
    dmg = by[(ProblemKind.PAGES_DAMAGED, 0)]
    assert dmg.count == 10 and "1 page of cpu0 damaged" in dmg.message
    cut = by[(ProblemKind.CAPTURE_INCOMPLETE, 1)]
    assert "ends inside a page" in cut.message and cut.count == 40  # 4 pages cut at 10 events a page
    assert "raw file is missing" in by[(ProblemKind.CAPTURE_INCOMPLETE, 2)].message
    assert "complete=false" in by[(ProblemKind.CAPTURE_INCOMPLETE, None)].message
    assert all(json.loads(json.dumps(p.to_json()))["message"] == p.line() for p in probs)


def test_missing_events_name_the_detectors_not_run():
    gaps = capture_gaps({"events": ["sched:sched_switch", "syscalls:sys_exit_write", "syscalls:sys_exit_epoll_wait",
                                  "sched:sched_process_exec"]})
    _, skipped = runnable(list(DETECTORS), gaps)
    probs = collect(CaptureMeta(complete=True), None, gaps, skipped)
    [waking] = [p for p in probs if "sched:sched_waking" in p.events]
    assert waking.kind is ProblemKind.EVENTS_MISSING and set(waking.detectors) == {s.detector for s in skipped}
    assert waking.line().startswith("events missing: sched:sched_waking; not run: bottleneck, full_buffer_stall, "
                                    "wake_then_block")
    # the gaps that only make the model less exact are said too, without detectors
    assert all(not p.detectors for p in probs if p is not waking)
    assert not_run({"x": ("WAKES",)}, [ipc.Gap(("a:b",), ("BLOCKED_ON",), "t")]) == []
