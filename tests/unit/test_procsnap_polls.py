"""The /proc watcher's polls read only what tells a change and record only changes, on the real
/proc of this machine (no tracing needed): ``UnixTable`` (/proc/net/unix), ``read_links`` and
``ProcWatcher`` polling a real child process whose fd table changes while it is watched."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time

from ftraceipc.capture.procsnap import ProcWatcher, UnixTable, read_fds, read_links

CHILD = """
import os, sys, time
print("ready", flush=True)      # started: its fd table stays as it is until the first line
sys.stdin.readline()            # first line: open a pipe and say its fds
r, w = os.pipe()
print(r, w, flush=True)
sys.stdin.readline()            # second line: leave
"""


def wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_unix_table_reports_a_new_socket_once_and_then_nothing_until_the_next_change(tmp_path):
    t = UnixTable()
    first = t.read()
    assert isinstance(first, list)
    assert t.changed() is None  # nothing new since the read
    a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        a.bind(str(tmp_path / "s"))
        ino = os.fstat(a.fileno()).st_ino
        got = t.changed()
        assert got is not None
        mine = [s for s in got if s["inode"] == ino]
        assert len(mine) == 1 and mine[0]["path"] == str(tmp_path / "s")
        assert t.changed() is None
    finally:
        a.close()
    gone = t.changed()  # closing it is a change too
    assert gone is not None and ino not in {s["inode"] for s in gone}


def test_read_links_names_the_same_fds_as_the_whole_read():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        child.stdin.write("\n")
        child.stdin.flush()
        r, w = map(int, child.stdout.readline().split())
        links = read_links(child.pid)
        whole, _cloexec = read_fds(child.pid)
        assert links == whole  # no FIFO among them: the same text
        assert links[str(r)] == links[str(w)] == f"pipe:[{os.stat(f'/proc/{child.pid}/fd/{r}').st_ino}]"
    finally:
        child.kill()
        child.wait(timeout=5)
    assert read_links(child.pid) is None  # gone


def test_the_watcher_records_a_tree_process_fd_table_when_it_changes_and_not_otherwise():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    out = io.StringIO()
    w = ProcWatcher(out, interval=0.01, root_pids=[child.pid])
    try:
        assert child.stdout.readline().strip() == "ready"
        w.start_snapshot()
        w.start()
        assert wait_for(lambda: w.rounds >= 20)  # polls with nothing changing
        quiet = [json.loads(x) for x in out.getvalue().splitlines()]
        assert not [x for x in quiet if x.get("when") == "poll"], "an unchanged table was written again"
        child.stdin.write("\n")
        child.stdin.flush()
        r, wfd = map(int, child.stdout.readline().split())
        ino = os.stat(f"/proc/{child.pid}/fd/{r}").st_ino

        def seen():
            recs = [json.loads(x) for x in out.getvalue().splitlines()]
            return [x for x in recs if x.get("kind") == "fds" and x.get("when") == "poll"
                    and x.get("pid") == child.pid]
        assert wait_for(lambda: seen())
        rec = seen()[0]
        assert rec["fds"][str(r)] == rec["fds"][str(wfd)] == f"pipe:[{ino}]"
        n = len(seen())
        rounds = w.rounds
        assert wait_for(lambda: w.rounds >= rounds + 10)
        assert len(seen()) == n  # recorded once
    finally:
        w.stop()
        w.join(timeout=5)
        child.kill()
        child.wait(timeout=5)
    assert not w.is_alive() and w.error is None


def test_the_watcher_keeps_its_pace_on_a_machine_full_of_busy_tasks():
    """Four spinning processes per CPU: the watcher thread runs as SCHED_FIFO 1 (we are root here, as
    in CI) and paces itself by its own CPU time, so it keeps its pace: 53 rounds/s here, where the
    watcher at normal priority paced by wall time made 23 (live mode's model waits for its rounds)."""
    spin = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(4 * (os.cpu_count() or 1))]
    out = io.StringIO()
    w = ProcWatcher(out, interval=0.01, root_pids=[spin[0].pid])
    try:
        w.start_snapshot()
        w.start()
        time.sleep(0.2)  # the first round and the spinners are under way
        r0, t0 = w.rounds, time.monotonic()
        time.sleep(2.0)
        rate = (w.rounds - r0) / (time.monotonic() - t0)
    finally:
        w.stop()
        w.join(timeout=5)
        for p in spin:
            p.kill()
            p.wait(timeout=5)
    assert not w.is_alive() and w.error is None
    assert w.priority == "SCHED_FIFO 1"
    assert rate >= 30, f"{rate:.1f} rounds/s among busy tasks"
    assert w.cpu_s < 0.1 * 2.2  # its CPU stays bounded by its duty (2.5 %), with room for a cold start
