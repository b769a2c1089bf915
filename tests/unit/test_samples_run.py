"""Each sample runs without tracing, exits 0 with one summary line on stderr, and writes a truth
file that follows the common schema (samples/README.md): every io rid is a resource, peers are
symmetric, calls and bytes > 0, and every byte put into a resource came out of it."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "samples"))
import truth as truth_mod  # noqa: E402

CASES = truth_mod.SAMPLES


def run(tmp_path: Path, sample: str, args: list[str]) -> dict:
    out = tmp_path / "truth.json"
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, str(ROOT / "samples" / f"{sample}.py"), "--truth", str(out), *args],
                       capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{sample}: "), r.stderr
    assert elapsed < 5, f"{sample} took {elapsed:.2f} s"
    return json.loads(out.read_text())


def by_role(truth: dict, prefix: str) -> list[dict]:
    return [t for t in truth["tasks"] if t["role"].startswith(prefix)]


def syscalls_of(truth: dict, tids: set[int]) -> set[str]:
    return {e["syscall"] for e in truth["io"] if e["tid"] in tids}


@pytest.mark.parametrize("sample,args", CASES, ids=[" ".join([s, *a]) for s, a in CASES])
def test_sample_writes_a_valid_truth(tmp_path, sample, args):
    t = run(tmp_path, sample, args)
    assert truth_mod.validate(t) == []
    assert t["sample"] == sample
    assert t["tasks"][0]["pid"] == t["pid"] == t["tasks"][0]["tid"]
    kinds = sorted(r["kind"] for r in t["resources"])
    tids = {x["tid"] for x in t["tasks"]}
    assert tids >= {e["tid"] for e in t["io"]}

    if sample == "pipeline":
        assert kinds == ["pipe"] * 3
    elif sample == "fanin":
        assert kinds == ["pipe"] and len(by_role(t, "writer-")) == 8
        assert syscalls_of(t, {x["tid"] for x in by_role(t, "writer-")}) == {"write", "writev"}
    elif sample == "unix_server":
        workers, clients = by_role(t, "worker-"), by_role(t, "client-")
        assert len(workers) == len(clients) == 10
        assert all(w["pid"] == t["pid"] != w["tid"] for w in workers)  # threads of the server
        res = {r["rid"]: r for r in t["resources"]}
        listening = [r for r in res.values() if r["peer"] is None]
        assert len(listening) == 1 and listening[0]["path"].endswith("/server.sock")
        for c in clients:
            (rid,) = {e["rid"] for e in t["io"] if e["tid"] == c["tid"]}
            assert res[rid]["path"] is None and res[res[rid]["peer"]]["path"] == listening[0]["path"]
        assert syscalls_of(t, {w["tid"] for w in workers}) == {"recvfrom", "sendmsg"}
        assert syscalls_of(t, {c["tid"] for c in clients}) == {"sendto", "recvfrom"}
    elif sample == "socketpair_pingpong":
        ping, pong = by_role(t, "ping")[0], by_role(t, "pong")[0]
        assert ping["pid"] == pong["pid"] == t["pid"]
        assert kinds == ["unix_stream"] * 2
        assert syscalls_of(t, {ping["tid"]}) == {"sendto", "recvfrom"}
        assert syscalls_of(t, {pong["tid"]}) == {"read", "write"}
    elif sample == "unix_dgram":
        res = {r["rid"]: r for r in t["resources"]}
        (recv,) = {e["rid"] for e in t["io"] if e["op"] == "recv"}
        path = res[recv]["path"]
        assert path.startswith("@ftraceipc-dgram-") if args else path.endswith("/dgram.sock")
        sends = [e for e in t["io"] if e["op"] == "send"]
        assert len(sends) == 4 and all(e["to"] == recv and res[e["rid"]]["path"] is None for e in sends)
        assert all(r["kind"] == "unix_dgram" and r["peer"] is None for r in res.values())
    elif sample == "fifo":
        (res,) = t["resources"]
        assert res["kind"] == "fifo" and res["path"].endswith("/fifo")
        writer, reader = by_role(t, "writer")[0], by_role(t, "reader")[0]
        assert reader["ppid"] == writer["pid"] and reader["sid"] == reader["pid"] != writer["sid"]
    elif sample == "shortlived":
        execs, children = by_role(t, "exec-"), by_role(t, "child-")
        assert kinds == ["pipe"] and len(execs) == len(children) == 8
        assert {x["ppid"] for x in execs} == {c["pid"] for c in children}
        assert {c["exec_pid"] for c in children} == {x["pid"] for x in execs}
        assert all(e["fd"] == 1 for e in t["io"] if e["tid"] in {x["tid"] for x in execs})
    elif sample == "fd_reuse":
        writer = by_role(t, "writer")[0]
        on_n = [e for e in t["io"] if e["tid"] == writer["tid"] and e["fd"] == writer["reused_fd"]]
        res = {r["rid"]: r for r in t["resources"]}
        assert [res[e["rid"]]["kind"] for e in on_n] == ["pipe", "unix_stream", "pipe"]
        assert len({e["bytes"] for e in on_n}) == 3
    elif sample == "seqpacket":
        assert kinds == ["unix_seqpacket"] * 2
        server = by_role(t, "server")[0]
        assert server["records"] == 500
        assert syscalls_of(t, {server["tid"]}) == {"recvmsg", "sendto"}
    elif sample == "relay":
        assert kinds == ["pipe"] * 3 and [x["role"] for x in t["tasks"]][0] == "D"
        assert {x["role"] for x in t["tasks"]} == {"A", "B", "C", "D"}
        assert t["planted"]["chain"] == ["D", "C", "B", "A"]
    elif sample == "ring":
        assert kinds == ["pipe"] * 3
        assert sorted(x.get("tokens", 0) for x in t["tasks"]) == [0, t["args"]["laps"], t["args"]["laps"]]
        assert t["planted"] == {"pattern": "wait_cycle", "cycle": ["P0", "P2", "P1"]}
    elif sample == "xcpu":
        assert kinds == ["unix_stream"] * 2
        cpus = {x["role"]: x["cpu"] for x in t["tasks"]}
        assert (cpus["ping"] == cpus["pong"]) == ("--same-cpu" in args)
        assert ("planted" in t) == ("--same-cpu" not in args)
        assert syscalls_of(t, set(tids)) == {"sendto", "recvfrom"}
    elif sample == "late_wakeup":
        hog = "--no-hog" not in args
        assert kinds == ["pipe"] and ("planted" in t) == hog
        assert len(by_role(t, "hog")) == hog and not [e for e in t["io"] if e["tid"] not in
                                                      {x["tid"] for x in by_role(t, "wake")}]
        wakee = by_role(t, "wakee")[0]
        assert wakee["messages"] == t["args"]["messages"]
        assert set(wakee["latency_ns"]) == {"median", "p90", "mean", "max"}


def test_validate_finds_broken_truths(tmp_path):
    good = run(tmp_path, "seqpacket", ["--messages", "5"])
    assert truth_mod.validate(good) == []

    t = copy.deepcopy(good)
    t["resources"][0]["peer"] = None
    assert any("does not point back" in e for e in truth_mod.validate(t))

    t = copy.deepcopy(good)
    t["io"][0]["rid"] = "unix:1"
    assert any("rid is not a resource" in e for e in truth_mod.validate(t))

    t = copy.deepcopy(good)
    t["io"][0]["bytes"] = 0
    assert any("bytes must be > 0" in e for e in truth_mod.validate(t))

    t = copy.deepcopy(good)
    t["io"][0]["op"] = "write"
    assert any("does not match syscall" in e for e in truth_mod.validate(t))

    t = copy.deepcopy(good)
    t["io"][0]["bytes"] += 1  # schema fine, but one byte more went in than came out
    assert any("bytes in" in e for e in truth_mod.validate(t))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("sample,args", [("relay", ["--rounds", "100000"]), ("ring", ["--laps", "10000000"])])
def test_a_sample_ended_by_a_signal_leaves_no_truth_directory(tmp_path, sample, args, sig):
    env = {**os.environ, "TMPDIR": str(tmp_path)}

    def default_signals():  # as at a terminal: a test run started in the background (`cmd &`
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # without job control) hands SIGINT on ignored

    p = subprocess.Popen([sys.executable, str(ROOT / "samples" / f"{sample}.py"), *args], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         preexec_fn=default_signals)
    try:
        end = time.monotonic() + 10
        while not list(tmp_path.glob(f"ftraceipc-{sample}-truth-*")) and time.monotonic() < end:
            time.sleep(0.02)
        assert list(tmp_path.glob(f"ftraceipc-{sample}-truth-*")), "the sample made no truth directory"
        time.sleep(0.3)  # its tasks at work
        os.killpg(p.pid, sig)
        assert p.wait(timeout=10) == -sig  # it still dies of the signal
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert not list(tmp_path.glob("ftraceipc-*")), list(tmp_path.iterdir())
