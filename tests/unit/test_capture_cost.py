"""What a capture says it cost (meta.cost -> the summary line), and the open watcher's line parsing."""

from __future__ import annotations

from ftraceipc.capture.procsnap import _OPEN_LINE
from ftraceipc.capture.store import CaptureMeta
from ftraceipc.capture.summary import cost_line


def test_the_cost_line_sums_the_cpu_of_readers_watchers_and_controller():
    line = cost_line({"seconds": 2.0, "events": 3_000_000, "events_per_s": 1_500_000, "readers_cpu_s": 0.25,
                      "open_watcher_cpu_s": 0.5, "open_lookups": 52866, "proc_watcher_cpu_s": 0.1,
                      "controller_cpu_s": 0.3})
    assert line.startswith("ftraceipc's own cost: 1.05 s CPU in 2.00 s (")
    assert "page readers 0.25 s" in line and "open watcher 0.50 s (52,866 opens looked up)" in line
    assert "controller and /proc watcher 0.30 s" in line and line.endswith("1,500,000 events/s")
    paused = cost_line({"seconds": 2.0, "open_watcher_cpu_s": 0.1, "open_lookups": 12, "open_lines_lost": 80000})
    assert "open watcher 0.10 s (12 opens looked up, 80,000 skipped at its CPU budget)" in paused


def test_a_capture_without_cost_prints_no_cost_line_and_loads():
    assert cost_line({}) == ""
    assert CaptureMeta.from_json({"cpus": [0]}).cost == {}  # meta.json written before the cost was kept
    m = CaptureMeta(cost={"seconds": 1.0, "readers_cpu_s": None, "open_watcher_cpu_s": None,
                          "controller_cpu_s": 0.2})
    assert CaptureMeta.from_json(m.to_json()).cost == m.cost
    assert cost_line(m.cost) == "ftraceipc's own cost: 0.20 s CPU in 1.00 s (controller and /proc watcher 0.20 s)"


def test_the_open_watcher_reads_the_tgid_column_when_the_kernel_prints_it():
    with_tgid = "          grep-41230   (  41228) [001] ..... 5123.000456: sys_openat -> 0x3"
    assert _OPEN_LINE.search(with_tgid).groups() == ("41230", "41228", "5123", "000456", "openat", "3")
    unknown = "          grep-41230   (-------) [001] ..... 5123.000456: sys_accept4 -> 0x1f"
    assert _OPEN_LINE.search(unknown).groups() == ("41230", "-------", "5123", "000456", "accept4", "1f")
    without = "          grep-41230   [001] d..1. 5123.000456: sys_openat -> 0x3"
    assert _OPEN_LINE.search(without).groups() == ("41230", None, "5123", "000456", "openat", "3")
    counter = "          grep-41230   [001] ..... 912345678: sys_openat -> 0x3"  # a counter clock
    assert _OPEN_LINE.search(counter).groups() == ("41230", None, "912345678", None, "openat", "3")
