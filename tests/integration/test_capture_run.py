"""``ftraceipc capture`` for real: a private tracefs instance, a real workload, the CLI run as a
subprocess so exit codes and stderr are what a user sees. Ends by command, duration and signals;
a stale instance of a killed run; --tree-only and --pid; tracefs not mounted; the sudo user.

Every test leaves no ``ftraceipc-*`` instance of ours behind (checked by ``conftest.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import capture_cli as cc  # noqa: E402
from components import need, requires, skip  # noqa: E402

pytestmark = [pytest.mark.root, requires("tracefs")]


def _top_level_state() -> tuple[str, str]:
    return (cc.TRACEFS / "tracing_on").read_text(), (cc.TRACEFS / "set_event").read_text()


def _no_traceback(r_or_err) -> None:
    err = r_or_err if isinstance(r_or_err, str) else r_or_err.stderr
    assert "Traceback" not in err, err


# --- a normal end --------------------------------------------------------------------------------------
def test_command_capture_exits_0_and_writes_a_complete_capture_dir(workload_capture):
    cap, r = workload_capture
    assert r.returncode == 0, r.stderr
    _no_traceback(r)
    assert "Captured" in r.stderr and "exited with code 0" in r.stderr
    meta = cc.assert_complete(cap)
    assert sorted(int(p.name[3:-4]) for p in (cap / "cpu").glob("cpu*.raw")) == meta["cpus"]
    assert meta["cpus"] == sorted(int(d[3:]) for d in os.listdir(cc.TRACEFS / "per_cpu") if d[3:].isdigit())
    assert meta["command"][0] == cc.PY and meta["exit_code"] == 0
    pid = int(r.stdout.split()[0])
    assert meta["command_pid"] == pid
    assert meta["stop_ts"] is None or meta["start_ts"] is None or meta["stop_ts"] >= meta["start_ts"]


def test_proc_jsonl_has_start_and_end_snapshots_and_a_tree_record_for_the_command(workload_capture):
    cap, r = workload_capture
    meta = cc.read_meta(cap)
    recs = cc.proc_records(cap)
    whens = {(x["kind"], x.get("when")) for x in recs}
    assert {("fds", "start"), ("fds", "end"), ("unix", "start"), ("unix", "end")} <= whens
    assert {"kind": "tree", "pid": meta["command_pid"]}.items() <= next(
        x for x in recs if x["kind"] == "tree" and x["pid"] == meta["command_pid"]).items()
    assert all("ts_wall" in x for x in recs)


def test_info_decodes_the_capture(workload_capture):
    cap, _ = workload_capture
    info = cc.info_json(cap)
    assert info["events"] > 0 and not info["warnings"]
    assert info["by_event"].get("sys_enter_write", 0) >= 1 and info["by_event"].get("sched_process_exec", 0) >= 1
    text = cc.cli("info", str(cap))
    assert text.returncode == 0 and "by event" in text.stdout and "did not end cleanly" not in text.stdout


def test_events_holds_the_commands_exec_and_its_pipe_write_with_fd_and_count(workload_capture):
    cap, r = workload_capture
    pid = int(r.stdout.split()[0])
    evs = cc.events_jsonl(cap, "sys_enter_write", "sys_exit_write", "sched_process_exec")
    execs = [e for e in evs if e["event"] == "sched_process_exec" and e["pid"] == pid]
    assert execs and execs[0]["tid"] == pid
    writes = [e for e in evs if e["event"] == "sys_enter_write" and e["tid"] == pid and e["fd"] == cc.WORKLOAD_FD]
    assert [w["count"] for w in writes] == [cc.WORKLOAD_COUNT]
    exits = [e for e in evs if e["event"] == "sys_exit_write" and e["tid"] == pid and e["ts"] > writes[0]["ts"]]
    assert exits and exits[0]["ret"] == cc.WORKLOAD_COUNT
    assert execs[0]["ts"] < writes[0]["ts"]
    assert evs == sorted(evs, key=lambda e: e["ts"])


def test_failing_command_exit_code_is_passed_on_and_the_capture_is_complete(tmp_path):
    out = tmp_path / "fail.ftipc"
    r = cc.cli("capture", "-o", out, "-e", cc.SMALL_EVENTS, "--buffer-kb", "1024", "--", "sh", "-c", "exit 3")
    assert r.returncode == 3, r.stderr
    assert "exited with code 3" in r.stderr
    _no_traceback(r)
    meta = cc.assert_complete(out)
    assert meta["exit_code"] == 3
    cc.info_json(out)


def test_command_runs_with_default_sigpipe_so_pipelines_behave_as_untraced(tmp_path):
    """Python ignores SIGPIPE and SIGXFSZ; ignored signals survive exec. The traced command must
    get default dispositions, or a writer to a closed pipe fails with EPIPE instead of dying."""
    out = tmp_path / "sig.ftipc"
    script = "grep SigIgn /proc/self/status; yes | head -n 1 > /dev/null"
    r = cc.cli("capture", "-o", out, "-e", cc.SMALL_EVENTS, "--buffer-kb", "1024", "--", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    ign = int(r.stdout.split("SigIgn:")[1].split()[0], 16)
    assert not ign & (1 << (signal.SIGPIPE - 1)), f"SIGPIPE ignored in the command (SigIgn {ign:#x})"
    assert not ign & (1 << (signal.SIGXFSZ - 1)), f"SIGXFSZ ignored in the command (SigIgn {ign:#x})"
    assert "Broken pipe" not in r.stderr


def test_duration_without_command_stops_on_its_own(tmp_path):
    out = tmp_path / "dur.ftipc"
    t0 = time.monotonic()
    r = cc.cli("capture", "--duration", "1", "-o", out, "-e", cc.SMALL_EVENTS, "--buffer-kb", "1024", timeout=30)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    _no_traceback(r)
    assert 1.0 <= took < 10, took
    meta = cc.assert_complete(out)
    assert meta["command"] is None and meta["exit_code"] is None
    assert 0.9 <= meta["stop_wall"] - meta["start_wall"] < 5
    cc.info_json(out)


# --- signals -------------------------------------------------------------------------------------------
_COMMANDS = {
    "no-command": ["--duration", "60"],
    "sleep-command": ["--", "sleep", "60"],
    # a shell whose child would outlive it if only the shell got the signal
    "shell-command": ["--", "sh", "-c", "sleep 60 & echo $!; wait"],
}


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("command", list(_COMMANDS))
def test_stop_signal_ends_capture_cleanly(tmp_path, signame, command):
    with_command = command != "no-command"
    out = tmp_path / "sig.ftipc"
    args = ["capture", "-o", out, "-e", cc.SMALL_EVENTS, "--buffer-kb", "1024", *_COMMANDS[command]]
    p = cc.popen(cc.ftraceipc_argv(*args))
    grandchild = None
    try:
        head = cc.wait_for_stderr(p, "Tracing")
        name = f"ftraceipc-{p.pid}"
        assert name in cc.instance_names()
        if command == "shell-command":
            grandchild = int(p.stdout.readline())
        cc.send(p, cc.SIGNALS[signame])
        rc, _, err, took = cc.finish(p, timeout=15)
    finally:
        cc.stop(p)
        if grandchild and cc.pid_alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)  # the 'sleep 60' this test started, by its pid
            pytest.fail(f"the command's child 'sleep 60' (pid {grandchild}) outlived the capture")
    err = head + err
    assert took < 8, f"took {took:.1f} s to end after {signame}"
    assert rc == 0, err
    _no_traceback(err)
    assert "Captured" in err
    assert name not in cc.instance_names()
    meta = cc.assert_complete(out)
    cc.info_json(out)
    if with_command:
        child = meta["command_pid"]
        assert child and f"(pid {child})" in err
        assert not cc.pid_alive(child), f"the traced 'sleep 60' (pid {child}) outlived the capture"
        assert meta["exit_code"] is not None and meta["exit_code"] < 0  # killed by a signal


# --- a killed run ------------------------------------------------------------------------------------
@pytest.mark.parametrize("events", ["small", "default"])
def test_stale_instance_of_a_killed_run_is_removed_by_the_next_capture(tmp_path, events):
    """With the default events a capture has two instances (ftraceipc-PID and the open watcher's
    ftraceipc-PID-open): both are left by SIGKILL and both are removed by the next run."""
    top_before = _top_level_state()
    killed = tmp_path / "killed.ftipc"
    ev = ["-e", cc.SMALL_EVENTS] if events == "small" else []
    p = cc.popen(cc.ftraceipc_argv("capture", "--duration", "60", "-o", killed, *ev, "--buffer-kb", "1024"))
    try:
        cc.wait_for_stderr(p, "Tracing")
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
    finally:
        cc.stop(p)
    stale = f"ftraceipc-{p.pid}"
    assert stale in cc.instance_names(), "SIGKILL leaves the instance (nothing can clean up)"
    if events == "default":
        assert f"{stale}-open" in cc.instance_names()
    assert (cc.INSTANCES / stale / "tracing_on").read_text().strip() == "1"
    assert cc.read_meta(killed)["complete"] is False

    out = tmp_path / "next.ftipc"
    r = cc.cli("capture", "--duration", "0.5", "-o", out, "-e", cc.SMALL_EVENTS, "--buffer-kb", "1024")
    assert r.returncode == 0, r.stderr
    assert f"removed stale tracing instance {stale}" in r.stderr
    assert stale not in cc.instance_names()
    if events == "default":
        assert f"removed stale tracing instance {stale}-open" in r.stderr
        assert f"{stale}-open" not in cc.instance_names()
    assert f"ftraceipc-{r.pid}" not in cc.instance_names()
    cc.assert_complete(out)
    # Nothing we created is left tracing; the top-level buffer was never touched.
    for name in cc.instance_names():
        assert not cc.instance_is_ours(name), name
    assert _top_level_state() == top_before


# --- what is traced ----------------------------------------------------------------------------------
_TREE_CMD = ("import os, time\nr, w = os.pipe()\nfor _ in range(5):\n    os.write(w, b'c' * 1234); os.read(r, 1234)\n"
             "    time.sleep(0.05)\n")
_OTHER = ("import os, sys, time\nr, w = os.pipe()\nprint(os.getpid(), flush=True)\nend = time.time() + 20\n"
          "while time.time() < end:\n    os.write(w, b'o' * 2345); os.read(r, 2345); time.sleep(0.02)\n")


@pytest.fixture
def unrelated_writer():
    """A process outside any traced tree, writing 2345 bytes to a pipe every 20 ms."""
    p = cc.popen([cc.PY, "-c", _OTHER])
    try:
        pid = int(p.stdout.readline())
        yield pid
    finally:
        cc.stop(p)


@pytest.mark.parametrize("tree_only", [True, False], ids=["tree-only", "system-wide"])
def test_tree_only_keeps_the_command_tree_and_drops_unrelated_processes(tmp_path, unrelated_writer, tree_only):
    out = tmp_path / "tree.ftipc"
    # sh forks python (the '; true' keeps dash from exec'ing it): events of a grandchild must be kept too.
    cmd = ["sh", "-c", f"{cc.PY} -c \"$0\"; true", _TREE_CMD]
    r = cc.cli("capture", "-o", out, "-e", cc.SMALL_EVENTS, "--buffer-kb", "2048",
               *(["--tree-only"] if tree_only else []), "--", *cmd)
    assert r.returncode == 0, r.stderr
    meta = cc.assert_complete(out)
    assert meta["tree_only"] is tree_only
    evs = cc.events_jsonl(out, "sys_enter_write", "sched_process_exec")
    mine = [e for e in evs if e["event"] == "sys_enter_write" and e["count"] == 1234]
    assert len(mine) == 5 and {e["tid"] for e in mine} != {meta["command_pid"]}  # the grandchild's
    assert any(e["event"] == "sched_process_exec" and e["pid"] == meta["command_pid"] for e in evs)
    theirs = [e for e in evs if e["tid"] == unrelated_writer]
    if tree_only:
        assert theirs == [], "--tree-only recorded a process outside the tree"
    else:
        assert any(e["event"] == "sys_enter_write" and e["count"] == 2345 for e in theirs)


def test_pid_of_a_running_process_is_recorded_in_meta(tmp_path, unrelated_writer):
    out = tmp_path / "pid.ftipc"
    r = cc.cli("capture", "--pid", str(unrelated_writer), "--tree-only", "--duration", "0.5", "-o", out,
               "-e", cc.SMALL_EVENTS, "--buffer-kb", "1024")
    assert r.returncode == 0, r.stderr
    meta = cc.assert_complete(out)
    assert meta["target_pids"] == [unrelated_writer] and meta["tree_only"] is True
    assert any(x["kind"] == "fds" and x["pid"] == unrelated_writer and x["when"] == "start"
               for x in cc.proc_records(out))
    evs = cc.events_jsonl(out, "sys_enter_write")
    assert evs and {e["tid"] for e in evs} == {unrelated_writer}


# --- the environment -----------------------------------------------------------------------------------
def test_tracefs_not_mounted_is_mounted_by_ftraceipc(tmp_path):
    need("util-linux")  # unshare makes a private mount namespace
    host_ns = os.readlink("/proc/self/ns/mnt")
    out = tmp_path / "mnt.ftipc"
    # In a private mount namespace only (checked before umount: never the host's tracefs).
    script = f"""
[ "$(readlink /proc/self/ns/mnt)" != "{host_ns}" ] || exit 99
umount /sys/kernel/debug 2>/dev/null
umount /sys/kernel/tracing || exit 98
[ ! -d /sys/kernel/tracing/instances ] || exit 97
"$0" -m ftraceipc capture --duration 1 -o "$1" -e {cc.SMALL_EVENTS} --buffer-kb 1024 &
echo "pid $!"
wait $!; rc=$?
grep -q ' /sys/kernel/tracing tracefs ' /proc/self/mounts && echo mounted-by-ftraceipc
exit $rc
"""
    p = cc.popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script, cc.PY, str(out)])
    try:
        first = p.stdout.readline()
        if first.startswith("pid "):
            cc.OWN_PIDS.add(int(first.split()[1]))
        rc, rest, err, _ = cc.finish(p, timeout=60)
    finally:
        cc.stop(p)
    if rc in (97, 98, 99) or "unshare failed" in err:
        skip("util-linux", f"unshare cannot make a private mount namespace without tracefs here (rc {rc}: {err.strip()})")
    assert rc == 0, err
    _no_traceback(err)
    assert "mounted-by-ftraceipc" in rest
    assert (cc.TRACEFS / "instances").is_dir(), "the host's tracefs must still be mounted"
    cc.assert_complete(out)
    cc.info_json(out)


RUNNER = r"""
import os, sys
from pathlib import Path
from ftraceipc.capture.capture import Capture, CaptureOptions
Path(sys.argv[2]).write_text(str(os.getpid()))
Capture(CaptureOptions(output=Path(sys.argv[1]), duration=120, events=sys.argv[3].split(","), buffer_kb=256,
                       status=False), report=lambda m: None).run()
"""


def _wait_gone(pid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not cc.pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def _tracing_on(name: str) -> bool:
    """Whether instance `name` is tracing; False while it is still being made (the directory appears
    before its files do) or already gone."""
    try:
        return (cc.INSTANCES / name / "tracing_on").read_text().strip() == "1"
    except OSError:
        return False


def _capturing(name: str) -> bool:
    """Whether the capture owning instance `name` has turned tracing on: a new instance is born
    tracing with no event, and the capture turns it off, sets its events up, then turns it on."""
    try:
        return _tracing_on(name) and bool((cc.INSTANCES / name / "set_event").read_text().strip())
    except OSError:
        return False


def test_a_live_capture_of_another_process_keeps_its_instance(tmp_path):
    """A capture run by a detached process (setsid -f: not a child of this test, and nothing in its
    command line says ftraceipc or pytest) is alive: the next capture must leave its instance on."""
    scratch = Path(tempfile.mkdtemp(prefix="tr-", dir="/tmp"))
    (scratch / "runner.py").write_text(RUNNER)
    pidfile = scratch / "pid"
    subprocess.run(["setsid", "-f", sys.executable, str(scratch / "runner.py"), str(scratch / "live.cap"),
                    str(pidfile), cc.SMALL_EVENTS.replace("syscalls:sys_enter_write,", "")],
                   env=cc.env(), cwd="/tmp", check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = None
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and not (pidfile.exists() and pidfile.read_text()):
            time.sleep(0.05)
        pid = int(pidfile.read_text())
        cc.OWN_PIDS.add(pid)
        live = f"ftraceipc-{pid}"
        while time.monotonic() < end and not _capturing(live):
            time.sleep(0.05)
        assert not cc.is_descendant(pid)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"ftraceipc" not in cmdline and b"pytest" not in cmdline, cmdline
        assert (cc.INSTANCES / live / "tracing_on").read_text().strip() == "1"

        r = cc.cli("capture", "--duration", "0.5", "-o", tmp_path / "next.ftipc", "-e", cc.SMALL_EVENTS,
                   "--buffer-kb", "1024", "--no-model")
        assert r.returncode == 0, r.stderr
        assert "removed stale" not in r.stderr, r.stderr
        assert live in cc.instance_names(), "a live capture's instance was removed"
        assert (cc.INSTANCES / live / "tracing_on").read_text().strip() == "1"
        os.kill(pid, signal.SIGTERM)  # it ends as a capture does: its instance goes with it
        assert _wait_gone(pid, 30)
        assert live not in cc.instance_names()
        assert (scratch / "live.cap" / "meta.json").exists()
    finally:
        if pid is not None and cc.pid_alive(pid):
            os.kill(pid, signal.SIGTERM)  # a capture ends on SIGTERM and removes its instance
            if not _wait_gone(pid, 30):
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 10)
        shutil.rmtree(scratch, ignore_errors=True)


def test_stale_instance_is_judged_by_its_lock_not_by_the_owners_command_line(tmp_path):
    """An instance whose lock file is there but held by nobody is stale, even though a live process
    with "pytest" in its command line has its PID (the PID was reused): the next capture removes it."""
    from ftraceipc.capture.tracefs import InstanceLock

    p = cc.popen(["bash", "-c", "exec -a pytest-lookalike sleep 60"])
    name = f"ftraceipc-{p.pid}"
    lock = InstanceLock.path_for(p.pid)
    try:
        end = time.monotonic() + 10
        while b"pytest" not in Path(f"/proc/{p.pid}/cmdline").read_bytes() and time.monotonic() < end:
            time.sleep(0.02)
        os.mkdir(cc.INSTANCES / name)
        lock.parent.mkdir(mode=0o700, exist_ok=True)
        lock.write_text("")  # as a killed capture leaves it: nobody holds it
        r = cc.cli("capture", "--duration", "0.5", "-o", tmp_path / "next.ftipc", "-e", cc.SMALL_EVENTS,
                   "--buffer-kb", "1024", "--no-model")
        assert r.returncode == 0, r.stderr
        assert f"removed stale tracing instance {name}" in r.stderr
        assert name not in cc.instance_names()
        assert not lock.exists()
    finally:
        cc.stop(p)
        cc.remove_instance(name)
        lock.unlink(missing_ok=True)


def test_command_runs_as_the_sudo_invoking_user(tmp_path):
    shared = Path(tempfile.mkdtemp(prefix="ftraceipc-sudo-", dir="/tmp"))
    try:
        shared.chmod(0o1777)
        out = tmp_path / "sudo.ftipc"
        r = cc.cli("capture", "-o", out, "-e", cc.SMALL_EVENTS, "--buffer-kb", "1024", "--",
                   "sh", "-c", f"id -u > {shared}/ids; id -g >> {shared}/ids; id -G >> {shared}/ids",
                   env_extra={"SUDO_UID": "65534", "SUDO_GID": "65534"})
        assert r.returncode == 0, r.stderr
        assert (shared / "ids").read_text().split() == ["65534", "65534", "65534"]
        assert (shared / "ids").stat().st_uid == 65534
        cc.assert_complete(out)  # the capture itself is still written by root
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_command_gets_the_sudo_invoking_users_environment(tmp_path):
    import pwd

    me = pwd.getpwuid(os.getuid())
    user = next((p for p in pwd.getpwall() if p.pw_uid != 0 and p.pw_dir != me.pw_dir and p.pw_shell != me.pw_shell),
                None) or pwd.getpwnam("nobody")
    out = tmp_path / "sudo-env.ftipc"
    r = cc.cli("capture", "-o", out, "-e", cc.SMALL_EVENTS, "--buffer-kb", "1024", "--no-model", "--",
               "env", env_extra={"SUDO_UID": str(user.pw_uid), "SUDO_GID": str(user.pw_gid),
                                 "SUDO_USER": user.pw_name, "HOME": me.pw_dir, "USER": me.pw_name,
                                 "LOGNAME": me.pw_name, "SHELL": me.pw_shell, "FTIPC_KEPT": "yes"})
    assert r.returncode == 0, r.stderr
    got = dict(ln.split("=", 1) for ln in r.stdout.splitlines() if "=" in ln)
    assert (got["HOME"], got["USER"], got["LOGNAME"], got["SHELL"]) == (
        user.pw_dir, user.pw_name, user.pw_name, user.pw_shell or "/bin/sh")
    assert got["FTIPC_KEPT"] == "yes" and got["SUDO_USER"] == user.pw_name  # the rest is passed on as is
    cc.assert_complete(out)


WRITER = r"""
import os, time
r, w = os.pipe()
end = time.monotonic() + 3
while time.monotonic() < end:
    for _ in range(200):
        os.write(w, b"x" * 64)
        os.read(r, 64)
"""


def test_live_status_line_shows_the_bytes_written_so_far(tmp_path):
    import pty
    import re

    out = tmp_path / "status.ftipc"
    master, slave = pty.openpty()
    p = subprocess.Popen(cc.ftraceipc_argv("capture", "-o", out, "-e", cc.SMALL_EVENTS, "--buffer-kb", "256",
                                           "--no-model", "--", sys.executable, "-c", WRITER),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, cwd="/tmp", env=cc.env())
    cc.SPAWNED[p.pid] = p
    os.close(slave)
    seen = b""
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the capture ended and closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        assert p.wait(timeout=120) == 0, seen.decode(errors="replace")
    finally:
        os.close(master)
        cc.stop(p)
    text = seen.decode(errors="replace")
    mib = [float(m) for m in re.findall(r"k events/s\s+([0-9.]+) MiB", text)]
    assert len(mib) >= 3, text
    assert max(mib) > 0 and mib == sorted(mib), mib  # grows with what the readers moved
    written = sum(f.stat().st_size for f in (out / "cpu").glob("cpu*.raw"))
    assert max(mib) <= written / 2**20 + 0.05
    cc.assert_complete(out)


OPENER = r"""
import os, sys, time
def opener(name):
    if name:
        with open("/proc/thread-self/comm", "w") as f:
            f.write(name)
    for _ in range(20):
        fd = os.open("/etc/hostname", os.O_RDONLY)
        time.sleep(0.002)
        os.close(fd)
pids = []
for name in ("ftipc-namer", "ftipc-proc", ""):
    pid = os.fork()
    if pid == 0:
        opener(name)
        os._exit(0)
    pids.append(pid)
for p in pids:
    os.waitpid(p, 0)
print(*pids)
"""


def test_open_watcher_leaves_out_tasks_named_like_our_proc_readers(tmp_path):
    """Another capture's /proc readers (named ftipc-namer / ftipc-proc) must not wake our open watcher:
    their opens are not looked up; an ordinary task's opens are."""
    out = tmp_path / "names.ftipc"
    r = cc.cli("capture", "-o", out, "--no-model", "--", sys.executable, "-c", OPENER, timeout=120)
    assert r.returncode == 0, r.stderr
    namer, proc, plain = map(int, r.stdout.split())
    looked_up = [(rec["pid"], target) for rec in map(json.loads, (out / "opens.jsonl").read_text().splitlines())
                 if rec.get("when") == "open" for target in rec["fds"].values()]
    hostname = {pid for pid, target in looked_up if target == "/etc/hostname"}
    assert plain in hostname
    # The renamed ones: one lookup at most each, for their own open of /proc/thread-self/comm, made
    # before the rename. (When the watcher comes to it late, that fd may already be closed and
    # /etc/hostname opened under the same number: the lookup then finds that, and the model gives the
    # name to the fd open throughout the lookup, which is the right one. Not one of their 20 opens.)
    per_pid = Counter(pid for pid, _target in looked_up)
    assert per_pid[namer] <= 1 and per_pid[proc] <= 1 and per_pid[plain] >= 10, looked_up
    # the kernel saw all three open (the main instance is not filtered by name)
    opens = cc.events_jsonl(out, "sys_exit_openat")
    tids = {e["tid"] for e in opens if e["ret"] >= 0}
    assert {namer, proc, plain} <= tids


FLOOD_THEN_FIFO = r"""
import os, sys, time
d = sys.argv[1]
for _ in range(40000):  # a flood of opens: the open watcher goes past its CPU budget and pauses
    os.close(os.open("/etc/hostname", os.O_RDONLY))
path = os.path.join(d, "flood.fifo")
os.mkfifo(path)
pid = os.fork()
if pid == 0:
    fd = os.open(path, os.O_WRONLY)
    os.write(fd, b"x" * 300)
    time.sleep(0.2)  # open long enough for the /proc polls
    os.close(fd)
    os._exit(0)
fd = os.open(path, os.O_RDONLY)
got = 0
while got < 300:
    got += len(os.read(fd, 4096))
time.sleep(0.2)
os.close(fd)
os.waitpid(pid, 0)
print(os.getpid(), pid)
"""


def test_an_open_flood_keeps_the_open_watcher_in_its_budget_and_a_fifo_after_it_is_still_named(tmp_path):
    """The open watcher's CPU is bounded (5 % of a CPU after a 100 ms burst): 40,000 opens in a second make
    it pause, which the capture reports (meta.json cost, the summary line); the FIFO opened after the
    flood is still named with its path and its 300 bytes go from the writer to the reader."""
    out = tmp_path / "flood.ftipc"
    r = cc.cli("capture", "-o", out, "--no-model", "--", sys.executable, "-c", FLOOD_THEN_FIFO, str(tmp_path),
               timeout=180)
    assert r.returncode == 0, r.stderr
    reader, writer = map(int, r.stdout.split())
    cost = json.loads((out / "meta.json").read_text())["cost"]
    assert cost["open_lines"] < 40000 and (cost["open_paused_s"] > 0 or cost["open_lines_lost"]), cost
    assert cost["open_pauses"] >= 1 or not cost["open_paused_s"], cost
    assert cost["open_watcher_cpu_s"] < 0.5 * cost["seconds"], cost
    assert "ftraceipc's own cost:" in r.stderr and "open watcher" in r.stderr
    m = json.loads(cc.cli("model", out, "-f", "json", timeout=180).stdout)
    fifos = [x for x in m["resources"] if x.get("kind") == "fifo" and str(x.get("path", "")).endswith("flood.fifo")]
    assert len(fifos) == 1, [x for x in m["resources"] if x.get("kind") == "fifo"]
    flows = [e for e in m["edges"] if e["type"] == "FLOWS" and e["via"] == fifos[0]["rid"]]
    assert [(e["src"], e["dst"], e["bytes"]) for e in flows] == [(writer, reader, 300)], flows


def test_no_open_watcher_makes_no_open_instance_and_no_lookups(tmp_path):
    out = tmp_path / "noopen.ftipc"
    r = cc.cli("capture", "-o", out, "--no-model", "--no-open-watcher", "--", sys.executable, "-c",
               "import os; [os.close(os.open('/etc/hostname', os.O_RDONLY)) for _ in range(100)]", timeout=120)
    assert r.returncode == 0, r.stderr
    cost = json.loads((out / "meta.json").read_text())["cost"]
    assert cost["open_watcher_cpu_s"] is None and cost["open_lookups"] is None
    opens = out / "opens.jsonl"
    assert not opens.exists() or not opens.read_text().strip()
    assert not [d for d in os.listdir("/sys/kernel/tracing/instances") if d.endswith("-open")]
