"""The events each detector needs (ftraceipc.model.needs, ``capture -D``) agree with the model's gaps
(``build.capture_gaps``: what a capture's events cannot support): a capture made with a detector's
events leaves that detector runnable, one without any group of them does not, and the union over
every detector is the default set."""

from __future__ import annotations

import pytest

from ftraceipc.capture.events import CORE, DEFAULT_EVENTS, GROUPS, POLLS, RESOURCES
from ftraceipc.detect import DETECTORS, detector_events, detector_needs, runnable, select
from ftraceipc.errors import FtraceIPCError
from ftraceipc.model.build import capture_gaps
from ftraceipc.model.needs import TABLE_EVENTS, events_for


def gaps(events):
    return capture_gaps({"events": list(events)})


def test_the_groups_split_the_default_set():
    together = [e for g in GROUPS.values() for e in g]
    assert sorted(together) == sorted(DEFAULT_EVENTS) and len(together) == len(set(together))


def test_every_detector_declares_only_known_tables():
    for d in DETECTORS:
        assert detector_needs(d), d
        assert set(detector_needs(d)) <= set(TABLE_EVENTS), d


def test_every_detectors_union_is_the_default_set():
    assert detector_events(DETECTORS) == list(DEFAULT_EVENTS)


@pytest.mark.parametrize("d", list(DETECTORS))
def test_a_capture_with_a_detectors_events_runs_it(d):
    ran, skipped = runnable([d], gaps(detector_events([d])))
    assert ran == [d] and not skipped


NEEDED = [(d, g) for d in DETECTORS for g in GROUPS if set(detector_events([d])) & set(GROUPS[g])]


@pytest.mark.parametrize("d,group", NEEDED, ids=[f"{d}-{g}" for d, g in NEEDED])
def test_a_capture_without_a_group_a_detector_needs_does_not_run_it(d, group):
    without = [e for e in detector_events([d]) if e not in GROUPS[group]]
    ran, skipped = runnable([d], gaps(without))
    assert ran == [] and [s.detector for s in skipped] == [d]


def test_wakeup_latency_alone_leaves_out_the_poll_syscalls():
    assert detector_events(["wakeup_latency"]) == [e for e in DEFAULT_EVENTS if e not in POLLS]
    # the others read BLOCKED_ON/WAITS_FOR or the time inside syscalls: polls count there
    for d in set(DETECTORS) - {"wakeup_latency"}:
        assert detector_events([d]) == list(DEFAULT_EVENTS), d


def test_events_for_always_has_the_core_and_keeps_the_default_order():
    assert events_for([]) == list(CORE)
    got = events_for(["WAKES"])
    assert got == [e for e in DEFAULT_EVENTS if e in set(CORE) | set(RESOURCES)]
    with pytest.raises(KeyError):
        events_for(["WAKE"])


def test_select_takes_ids_and_shell_patterns_in_detector_order():
    assert select(["wait_*"]) == ["wait_chain", "wait_cycle"]
    assert select(["wakeup_latency", "bottleneck", "bottleneck"]) == ["bottleneck", "wakeup_latency"]
    assert select(["*"]) == list(DETECTORS)
    with pytest.raises(FtraceIPCError, match="no detector matches 'nope'"):
        select(["nope"])
