"""The lines ``ftraceipc capture`` prints at the end, on real captures: tasks are named the same as
``model`` and ``analyze`` name them (a server outside the command's tree, renamed after it started
and alive before the capture, is ``ftipc-srv[PID]``, not ``?[PID]``), and the "not attributed" line
counts only calls that could have been IPC while the reads of files the trace shows to be regular
(a successful lseek: Python seeks every file it opens) are said to be left out, not IPC."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import capture_cli as cc  # noqa: E402
from components import requires  # noqa: E402

pytestmark = requires("tracefs")

# A server started before the capture, outside the traced command's tree, that names itself after
# it started (comm "python3" at exec, "ftipc-srv" from then on) and echoes every request twice.
SERVER = r"""
import os, socket, sys
open("/proc/self/comm", "w").write("ftipc-srv")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(4)
print(os.getpid(), flush=True)
while True:
    c, _ = s.accept()
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d * 2)
    c.close()
"""
# The traced client: a first connection the server accepts in an accept() begun before the capture,
# then one whose accept is traced, carrying 200 requests.
CLIENT = r"""
import socket, sys, time
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect(sys.argv[1]); c.close()
time.sleep(0.2)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect(sys.argv[1])
for _ in range(200):
    c.sendall(b"q" * 4000)
    n = 0
    while n < 8000:
        n += len(c.recv(65536))
c.close()
"""


@pytest.fixture
def server(tmp_path):
    sock = tmp_path / "srv.sock"
    p = cc.popen([cc.PY, "-c", SERVER, str(sock)])
    try:
        yield int(p.stdout.readline()), sock
    finally:
        cc.stop(p)


def test_every_output_names_a_server_outside_the_command_tree_the_same(tmp_path, server):
    pid, sock = server
    cap = tmp_path / "srv.ftipc"
    r = cc.cli("capture", "-o", cap, "--", cc.PY, "-c", CLIENT, str(sock), timeout=180)
    assert r.returncode == 0, r.stderr
    talkers = r.stderr.split("top talkers:", 1)[1].split("blocked:", 1)[0]
    assert f"ftipc-srv[{pid}] -> " in talkers and f" -> ftipc-srv[{pid}] via " in talkers, r.stderr
    assert f"?[{pid}]" not in r.stderr
    model_text = cc.cli("model", cap, timeout=120).stdout
    assert f"ftipc-srv[{pid}]" in model_text and f"?[{pid}]" not in model_text
    labels = set(re.findall(rf"([^\s\[\]]+)\[{pid}\]", r.stderr + model_text))
    assert labels == {"ftipc-srv"}, labels


def test_the_summary_leaves_out_reads_of_regular_files(tmp_path):
    cap = tmp_path / "pipeline.ftipc"
    r = cc.cli("capture", "-o", cap, "--", cc.PY, str(Path(cc.REPO) / "samples" / "pipeline.py"), timeout=180)
    assert r.returncode == 0, r.stderr
    meta = cc.read_meta(cap)
    root = meta["command_pid"]
    # truth from the trace: the command's reads on fds opened by path and then seeked with success
    evs = cc.events_jsonl(cap, "sys_exit_openat", "sys_enter_lseek", "sys_exit_lseek", "sys_enter_read",
                          "sys_enter_close")
    opened, seeked, pending = set(), set(), {}
    seeked_reads = 0
    for e in (e for e in evs if e["tid"] == root):
        if e["event"] == "sys_exit_openat" and e["ret"] >= 0:
            opened.add(e["ret"])
            seeked.discard(e["ret"])
        elif e["event"] == "sys_enter_lseek":
            pending[e["tid"]] = e["fd"]
        elif e["event"] == "sys_exit_lseek" and e["ret"] >= 0 and pending.get(e["tid"]) in opened:
            seeked.add(pending.pop(e["tid"]))
        elif e["event"] == "sys_enter_read" and e["fd"] in seeked:
            seeked_reads += 1
        elif e["event"] == "sys_enter_close":
            opened.discard(e["fd"])
            seeked.discard(e["fd"])
    assert seeked_reads >= 3, "python read no file it had seeked (its modules, the script)"
    model = json.loads(cc.cli("model", cap, "-f", "json", timeout=120).stdout)
    by_pid = model["stats"]["not_ipc_calls_by_pid"]
    assert by_pid.get(str(root), 0) >= seeked_reads
    lines = r.stderr.splitlines()
    left = [ln for ln in lines if ln.startswith("left out: ")]
    tree = {t["pid"] for t in model["tasks"] if t["pid"] is not None} & _tree(model, root)
    n = sum(v for k, v in by_pid.items() if int(k) in tree)
    assert left == [f"left out: {n:,} reads/writes of regular files, ttys and other fds that are no pipe, FIFO "
                    "or Unix socket: not IPC"], lines
    un = [ln for ln in lines if ln.startswith("not attributed: ")]
    assert all("that could have been IPC" in ln for ln in un), un


def _tree(model: dict, root: int) -> set[int]:
    parent = {t["pid"]: t["ppid"] for t in model["tasks"] if t["pid"] is not None}
    tree, grew = {root}, True
    while grew:
        new = {p for p, pp in parent.items() if pp in tree and p not in tree}
        tree |= new
        grew = bool(new)
    return tree
