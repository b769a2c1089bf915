"""``ftraceipc capture -D PATTERN``: trace only the events the chosen detectors need (issue #12,
section 2), and analyze such a capture with those detectors, finding what a full capture finds.

The event sets come from each detector's ``// Needs:`` tables (ftraceipc.model.needs); the unit
tests (tests/unit/test_needs.py) check them against the model's gaps. Here the real CLI and a real
capture of samples/late_wakeup.py, whose planted late wakeup wakeup_latency finds on its own set,
which leaves out the poll/select/epoll syscalls.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from components import requires  # noqa: E402
from truth_check import capture_sample  # noqa: E402

from ftraceipc.capture.events import DEFAULT_EVENTS, POLLS  # noqa: E402
from ftraceipc.detect import DETECTORS, analyze, detector_events  # noqa: E402
from ftraceipc.model.build import build_model  # noqa: E402

needs_tracefs = requires("tracefs")
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ftraceipc", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def test_list_events_with_a_detector_prints_its_set_without_the_poll_syscalls():
    r = cli("capture", "-D", "wakeup_latency", "--list-events")
    assert r.returncode == 0, r.stderr
    got = r.stdout.split()
    assert got == detector_events(["wakeup_latency"])
    assert "sched:sched_switch" in got and "syscalls:sys_exit_write" in got and "sock:sk_data_ready" in got
    assert not set(got) & set(POLLS)


def test_list_events_for_every_detector_is_the_default_set():
    r = cli("capture", "-D", "*", "--list-events")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == list(DEFAULT_EVENTS) == cli("capture", "--list-events").stdout.split()


def test_a_pattern_matching_no_detector_is_one_clear_error():
    r = cli("capture", "-D", "wait_chian", "--list-events")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no detector matches 'wait_chian'" in lines[0] and "wait_chain" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not r.stdout


@needs_tracefs
def test_a_capture_for_wakeup_latency_finds_the_late_wakeup_on_its_own_events(tmp_path):
    cap, meta, truth = capture_sample(tmp_path, "late_wakeup", capture_args=["-D", "wakeup_latency"])
    roles = {t["role"]: t["tid"] for t in truth["tasks"]}
    assert meta["detectors"] == ["wakeup_latency"]
    assert set(meta["events"]) | set(meta["skipped_events"]) == set(detector_events(["wakeup_latency"]))
    assert not set(meta["events"]) & set(POLLS)

    a = analyze(cap, params={"wakeup_latency": {"min_critical_percent": 0}})
    assert a.detectors == ["wakeup_latency"] and a.ran == ["wakeup_latency"] and not a.not_run
    # the poll syscalls were left out by choice: no warning about them
    assert not [w for w in a.warnings if w.kind.name == "EVENTS_MISSING"], [w.line() for w in a.warnings]
    found = [f for f in a.findings + a.minor if roles["wakee"] in f.tasks]
    assert [f.pattern for f in found] == ["wakeup_latency"]
    f = found[0]
    assert list(f.tasks) == [roles["wakee"], roles["waker"]]
    pipe = {e["rid"] for e in truth["io"] if e["tid"] == roles["waker"] and e["op"] == "write"}
    assert set(f.resources) == pipe and len(pipe) == 1
    # the numbers are the model's: its wakeups of the wakee through that pipe
    m = build_model(cap)
    w = m.wakes[(m.wakes["wakee"] == roles["wakee"]) & (m.wakes["via"] == f.resources[0])
                & (m.wakes["waker"] != roles["wakee"])]
    assert f.count == int(w["wakeups"].sum()) >= 10
    assert f.asleep_ns == int(w["wake_to_run_ns"].sum()) >= 10 * 500_000

    # analyze runs the capture's detectors by default, and says why the others cannot run when asked for
    r = cli("analyze", str(cap), "--format", "json", "--min-share", "0")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["capture"]["detectors_run"] == ["wakeup_latency"]
    b = analyze(cap, detectors=list(DETECTORS))
    assert {s.detector for s in b.not_run} == set(DETECTORS) - {"wakeup_latency"}
    assert all(set(s.events) & set(POLLS) for s in b.not_run)


@needs_tracefs
def test_capture_says_whose_events_it_traces(tmp_path):
    out = tmp_path / "d.ftipc"
    r = cli("capture", "-o", str(out), "--no-model", "-D", "wakeup_latency", "--", "true")
    assert r.returncode == 0, r.stderr
    n = len(json.loads((out / "meta.json").read_text())["events"])
    assert f"Tracing the {n} events wakeup_latency needs ('ftraceipc analyze' runs it)" in r.stderr
