"""A capture lacking the events an attribution needs: the model says which attributions were
impossible and why, and still builds what it can (issue #3, bad input)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from components import requires  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

pytestmark = requires("tracefs")


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "ftraceipc", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, **kw)


def capture(tmp_path, events: str) -> Path:
    cap = tmp_path / "run.ftipc"
    r = run("capture", "-o", cap, "-e", events, "--", sys.executable, ROOT / "samples" / "pipeline.py",
            "--truth", tmp_path / "t.json")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return cap


def model_json(cap: Path) -> dict:
    r = run("model", cap, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_sched_only_capture_has_wakes_and_says_io_was_impossible(tmp_path):
    cap = capture(tmp_path, "sched:sched_switch,sched:sched_waking,sched:sched_process_fork")
    m = model_json(cap)
    imp = " | ".join(m["impossible"])
    assert "WRITES, READS and FLOWS" in imp and "no read/write/send/recv syscall events" in imp
    types = {e["type"] for e in m["edges"]}
    assert "WAKES" in types
    assert not types & {"WRITES", "READS", "FLOWS"}
    truth = json.loads((tmp_path / "t.json").read_text())
    tids = {t["tid"] for t in m["tasks"]}
    assert {t["tid"] for t in truth["tasks"]} <= tids


def test_syscalls_without_switches_has_exact_io_and_says_sleeps_were_impossible(tmp_path):
    cap2 = tmp_path / "nosched"
    cap2.mkdir()
    from ftraceipc.capture.events import DEFAULT_EVENTS

    no_switch = [e for e in DEFAULT_EVENTS if e not in ("sched:sched_switch", "sched:sched_waking",
                                                          "sched:sched_wakeup", "sched:sched_wakeup_new")]
    have = set(os.listdir("/sys/kernel/tracing/events/syscalls"))
    no_switch = [e for e in no_switch if not e.startswith("syscalls:") or e.split(":")[1] in have]
    r = run("capture", "-o", cap2 / "run.ftipc", "-e", ",".join(no_switch),
            "--", sys.executable, ROOT / "samples" / "pipeline.py", "--truth", cap2 / "t.json")
    assert r.returncode == 0, r.stderr
    m = model_json(cap2 / "run.ftipc")
    imp = " | ".join(m["impossible"])
    assert "BLOCKED_ON: no sched:sched_switch events" in imp and "WAKES: no sched:sched_waking events" in imp
    truth = json.loads((cap2 / "t.json").read_text())
    want = {(e["tid"], e["rid"]): e["bytes"] for e in truth["io"] if e["op"] == "write"}
    got = {(e["src"], e["dst"]): e["bytes"] for e in m["edges"] if e["type"] == "WRITES"}
    assert want and all(got.get(k) == v for k, v in want.items()), (want, got)
    assert not [e for e in m["edges"] if e["type"] in ("BLOCKED_ON", "WAKES") and not e.get("episode")
                and e["src"] in {t["tid"] for t in truth["tasks"]}]
    assert not any("fds of pipe/socketpair" in x for x in m["impossible"])


def test_without_exec_events_no_io_is_attributed_and_the_reason_is_given(tmp_path):
    cap = capture(tmp_path, "syscalls:sys_enter_write,syscalls:sys_exit_write,sched:sched_process_fork")
    m = model_json(cap)
    assert any("no sched:sched_process_exec events" in x for x in m["impossible"])
    assert not [e for e in m["edges"] if e["type"] in ("WRITES", "READS", "FLOWS")]
    truth = json.loads((tmp_path / "t.json").read_text())
    gen = next(t["tid"] for t in truth["tasks"] if t["role"] == "gen")
    un = [u for u in m["unattributed"] if u["tid"] == gen]
    assert un and all("sched_process_exec" in u["reason"] for u in un)
    assert sum(u["bytes"] for u in un) >= 69890
