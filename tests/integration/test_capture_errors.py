"""``ftraceipc`` refusing bad input and failing mid-set-up: one ``ftraceipc: error: ...`` line, a
non-zero exit code, no traceback, no tracing instance or half-written capture left behind, and the
top-level tracing state untouched. Also a truncated capture decoded with a warning, and --help.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import capture_cli as cc  # noqa: E402
from components import need, requires, skip  # noqa: E402


def needs_tracefs(f):
    return pytest.mark.root(requires("tracefs")(f))


def _top_level_state() -> tuple[str, str] | None:
    try:
        return (cc.TRACEFS / "tracing_on").read_text(), (cc.TRACEFS / "set_event").read_text()
    except OSError:
        return None


def assert_one_error_line(r: cc.Result, *needles: str) -> str:
    """Exactly one line on stderr (a stale-instance note of somebody else's killed run aside):
    ``ftraceipc: error: ...`` containing ``needles``; a non-zero exit; no traceback."""
    assert r.returncode != 0, f"exit 0 for {r.argv}: {r.stderr}"
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.error_lines() if not ln.startswith("removed stale tracing instance")]
    assert len(lines) == 1, f"expected one error line, got {lines}"
    assert lines[0].startswith("ftraceipc: error: "), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture
def untouched():
    """The tracing state outside our instances is the same after the test (nothing left enabled)."""
    before = _top_level_state()
    yield
    assert _top_level_state() == before


# --- failures after the instance is created ---------------------------------------------------------
@needs_tracefs
@pytest.mark.parametrize("args, needles", [
    (["--clock", "nosuchclock"], ["trace clock 'nosuchclock' is not available", "local"]),
    (["--buffer-kb", str(10**12)], ["refused", "--buffer-kb"]),
], ids=["bad-clock", "huge-buffer"])
def test_kernel_refusal_after_instance_creation_is_one_error_line_and_leaves_nothing(tmp_path, untouched, args,
                                                                                       needles):
    out = tmp_path / "x.ftipc"
    r = cc.cli("capture", "--duration", "1", "-o", out, *args)
    assert_one_error_line(r, *needles)
    assert r.returncode == 3
    assert not out.exists(), "a capture that never started must not leave a half-written directory"
    assert f"ftraceipc-{r.pid}" not in cc.instance_names()


# --- bad input -----------------------------------------------------------------------------------------
def test_not_root_is_refused_with_one_line(tmp_path):
    out = Path("/tmp") / f"ftraceipc-notroot-{os.getpid()}.ftipc"
    if os.geteuid() != 0:  # already unprivileged
        r = cc.cli("capture", "--duration", "1", "-o", out)
        assert_one_error_line(r, "needs root", "sudo")
        assert not out.exists()
        return
    need("util-linux")  # setpriv drops to an unprivileged user
    # uid/gid nobody, no groups, no capabilities but dac_read_search: it can read the interpreter and
    # this checkout wherever they live (e.g. under /root), nothing more.
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all,+dac_read_search",
            "--ambient-caps=+dac_read_search", "--bounding-set=-all,+dac_read_search",
            *cc.ftraceipc_argv("capture", "--duration", "1", "-o", out)]
    probe = cc.run(argv[:argv.index(cc.PY)] + ["id", "-u"])
    if probe.returncode != 0 or probe.stdout.strip() != "65534":
        skip("util-linux", f"setpriv cannot drop privileges here: {probe.stderr.strip()}")
    try:
        r = cc.run(argv)
        assert_one_error_line(r, "needs root", "sudo")
        assert not out.exists()
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


@needs_tracefs
@pytest.mark.parametrize("case", [
    "missing-event", "output-in-proc", "output-in-sys", "command-not-found", "command-path-not-found",
    "tree-only-alone", "pid-not-running", "unknown-option",
])
def test_bad_capture_input_is_one_error_line_and_leaves_nothing(tmp_path, untouched, case):
    out = tmp_path / "x.ftipc"
    base = ["capture", "--duration", "1", "--buffer-kb", "1024"]
    args, needles, where = {
        "missing-event": (["-o", out, "--events", "sched:nope"], ["sched:nope", "not available"], out),
        "output-in-proc": (["-o", "/proc/ftraceipc-x/y"], ["cannot write the capture to /proc/ftraceipc-x/y"], None),
        "output-in-sys": (["-o", "/sys/kernel/ftraceipc-test-out"], ["cannot write the capture"], None),
        "command-not-found": (["-o", out, "--", "no-such-command-ftraceipc"],
                              ["command not found", "no-such-command-ftraceipc"], out),
        "command-path-not-found": (["-o", out, "--", str(tmp_path / "nope")], ["not executable"], out),
        "tree-only-alone": (["-o", out, "--tree-only"], ["--tree-only needs a command or --pid"], out),
        "pid-not-running": (["-o", out, "--pid", str(_dead_pid())], ["no process with pid"], out),
        "unknown-option": (["-o", out, "--", "--bogus"], ["unknown option --bogus"], out),
    }[case]
    r = cc.cli(*base, *args)
    assert_one_error_line(r, *needles)
    assert r.returncode == 2 or (case == "missing-event" and r.returncode == 3)
    if where is not None:
        assert not where.exists()
    assert not Path("/sys/kernel/ftraceipc-test-out").exists()
    assert f"ftraceipc-{r.pid}" not in cc.instance_names()


@needs_tracefs
def test_existing_output_without_force_is_refused_and_kept(tmp_path, untouched, workload_capture):
    cap, _ = workload_capture
    out = tmp_path / "existing.ftipc"
    shutil.copytree(cap, out)
    before = sorted((p.relative_to(out), p.stat().st_size) for p in out.rglob("*"))
    r = cc.cli("capture", "--duration", "1", "-o", out)
    assert_one_error_line(r, "already exists", "--force")
    assert r.returncode == 2
    assert sorted((p.relative_to(out), p.stat().st_size) for p in out.rglob("*")) == before


@pytest.mark.parametrize("command", ["info", "events"])
def test_non_capture_directory_is_one_error_line(tmp_path, command):
    (tmp_path / "notes.txt").write_text("not a capture\n")
    r = cc.cli(command, tmp_path)
    assert_one_error_line(r, "is not an ftraceipc capture", "meta.json")
    assert r.returncode == 4
    r = cc.cli(command, tmp_path / "absent")
    assert_one_error_line(r, "no capture at")


@needs_tracefs
def test_truncated_capture_decodes_the_intact_pages_and_warns_with_file_and_offset(tmp_path, workload_capture):
    cap, _ = workload_capture
    meta = cc.read_meta(cap)
    ps = meta["page_size"]
    cpu = max(meta["cpus"], key=lambda c: (cap / "cpu" / f"cpu{c}.raw").stat().st_size)
    pages = (cap / "cpu" / f"cpu{cpu}.raw").stat().st_size // ps
    assert pages >= 2, "the workload capture is too small to cut"
    keep = pages // 2
    cut, whole = tmp_path / "cut.ftipc", tmp_path / "whole.ftipc"
    shutil.copytree(cap, cut)
    shutil.copytree(cap, whole)
    with open(cut / "cpu" / f"cpu{cpu}.raw", "r+b") as f:
        f.truncate(keep * ps + ps // 2)  # mid-page
    with open(whole / "cpu" / f"cpu{cpu}.raw", "r+b") as f:
        f.truncate(keep * ps)  # the same pages, cut at the boundary

    r = cc.cli("events", cut, "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    ref = cc.cli("events", whole, "--format", "jsonl")
    assert ref.returncode == 0 and ref.stderr == ""
    got = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert got and r.stdout == ref.stdout, "the intact pages must decode exactly as without the torn one"
    warn = [ln for ln in r.stderr.splitlines() if ln.startswith("ftraceipc: warning: ")]
    assert len(warn) == 1, r.stderr
    assert str(cut / "cpu" / f"cpu{cpu}.raw") in warn[0] and f"offset {keep * ps}" in warn[0]

    info = cc.cli("info", cut)
    assert info.returncode == 0 and f"offset {keep * ps}" in info.stdout


# --- help ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["capture", "info", "events"])
def test_help_has_examples(command):
    r = cc.cli(command, "--help")
    assert r.returncode == 0, r.stderr
    assert "Examples" in r.stdout
    assert f"ftraceipc {command}" in r.stdout


# --- teardown -------------------------------------------------------------------------------------------
NAPPER = r"""
import os, time
print(os.getpid(), flush=True)
time.sleep(3)
"""


@needs_tracefs
def test_every_teardown_step_runs_when_one_raises(tmp_path, untouched):
    """The test holds a file of the capture's second instance (ftraceipc-PID-open) open, so removing
    it fails for real (EBUSY, "stays busy"). The steps after it still run: the main instance is
    removed, the command ended, meta.json written (incomplete), kptr_restrict is what it was; the
    user gets one error line naming the step and a non-zero exit."""
    kptr = Path("/proc/sys/kernel/kptr_restrict")
    kptr_before = kptr.read_text()
    out = tmp_path / "held.ftipc"
    p = cc.popen(cc.ftraceipc_argv("capture", "-o", out, "-e", "default", "--buffer-kb", "256", "--no-model",
                                   "--", sys.executable, "-c", NAPPER))
    held = None
    try:
        cc.wait_for_stderr(p, "Ctrl-C to end", timeout=60)
        open_instance = cc.INSTANCES / f"ftraceipc-{p.pid}-open"
        held = os.open(open_instance / "trace", os.O_RDONLY)
        rc, stdout, stderr, _ = cc.finish(p, timeout=120)
    finally:
        if held is not None:
            os.close(held)
        cc.remove_instance(f"ftraceipc-{p.pid}-open")
        cc.stop(p)
    assert rc != 0 and "Traceback" not in stderr, stderr
    errors = [ln for ln in stderr.splitlines() if ln.startswith("ftraceipc: error: ")]
    assert len(errors) == 1 and "cleaning up after the capture failed" in errors[0], stderr
    assert f"ftraceipc-{p.pid}-open" in errors[0] and "stays busy" in errors[0], errors[0]
    assert f"ftraceipc-{p.pid}" not in cc.instance_names(), "the main instance was left behind"
    command = int(stdout.split()[0])
    assert not cc.pid_alive(command), "the traced command outlived the capture"
    meta = cc.read_meta(out)
    assert meta["complete"] is False and meta["exit_code"] == 0 and meta["stop_wall"]
    assert kptr.read_text() == kptr_before
