"""What the model needs from the trace: the events behind each model table.

Every model needs :data:`ftraceipc.capture.events.CORE` (tasks, sleeps, wakeups: the critical path
that ranks every finding). A table needs more: :data:`TABLE_EVENTS`. Detectors name the tables they
read (the ``// Needs:`` line of their query), so the events a detector needs are
``events_for(its tables)`` (``ftraceipc.detect.run.detector_events``), and ``capture -D`` enables
just those. ``build.capture_gaps`` is the other direction: the tables a capture's events cannot
support; ``tests/unit/test_needs.py`` checks that the two agree for every detector.

``SYSCALL_TIME`` is not an edge table: it is the Task columns of time inside traced syscalls
(``*_sys_ns``, the critical path's ``crit_running_sys_ns``), which count polls only when the poll
syscalls are traced.
"""

from __future__ import annotations

from typing import Iterable

from ftraceipc.capture.events import CORE, DEFAULT_EVENTS, POLLS, RESOURCES

MODEL_EVENTS: tuple[str, ...] = tuple(CORE)

TABLE_EVENTS: dict[str, tuple[str, ...]] = {
    # data through fds, attributed to their resource and its two ends
    "WRITES": tuple(RESOURCES),
    "READS": tuple(RESOURCES),
    "FLOWS": tuple(RESOURCES),
    # a wakeup's resource: the wakee's syscall, else the waker's (a write, a send)
    "WAKES": tuple(RESOURCES),
    # a sleep's resource: its syscall's fd; inside a poll, the resource it was woken through
    "BLOCKED_ON": tuple(RESOURCES + POLLS),
    "WAITS_FOR": tuple(RESOURCES + POLLS),
    "SYSCALL_TIME": tuple(POLLS),
}


def events_for(tables: Iterable[str]) -> list[str]:
    """The events a model with these tables needs (the core set always), in the default set's order.
    An unknown table name is an error (a typo in a ``// Needs:`` line)."""
    want = set(MODEL_EVENTS)
    for t in tables:
        if t not in TABLE_EVENTS:
            raise KeyError(f"unknown model table {t!r} (known: {', '.join(TABLE_EVENTS)})")
        want.update(TABLE_EVENTS[t])
    return [e for e in DEFAULT_EVENTS if e in want]
