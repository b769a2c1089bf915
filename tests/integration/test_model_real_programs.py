"""The IPC model on programs nobody here wrote, checked against what those programs are known to do.

- A dash pipeline ``seq | gzip | gzip -d | wc -c``: dash makes the pipes with pipe() (not pipe2),
  forks and dup2s them onto 0/1 and execs. The bytes through each pipe are known independently:
  seq's output is computed here, gzip's output size is what the compressor pass writes.
- ``perf bench sched messaging`` (tools/perf/bench/sched-messaging.c): each group has 20 senders
  and 20 receivers; every receiver owns one channel (a pipe with -p, a Unix stream socketpair
  without); every sender writes ``loops`` messages of 100 bytes to every receiver of its group. So
  each channel has 20 writers of loops*100 bytes each and one reader of 20*loops*100 bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from components import requires  # noqa: E402

from ftraceipc.model.build import build_model

pytestmark = requires("tracefs")


def capture(tmp: Path, argv: list[str]) -> tuple[Path, dict]:
    cap = tmp / "run.ftipc"
    r = subprocess.run([sys.executable, "-m", "ftraceipc", "capture", "-o", str(cap), "--no-model", "--", *argv],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    meta = json.loads((cap / "meta.json").read_text())
    assert all(sum(v.values()) == 0 for v in meta["lost"].values()), f"events lost: {meta['lost']}"
    return cap, meta


def comm_tids(model, comm: str) -> set[int]:
    return {int(t) for t, comms in zip(model.tasks["tid"], model.tasks["comms"]) if comm in (comms or [])}


def test_dash_pipeline_bytes_through_each_pipe(tmp_path):
    n = 20000
    seq_bytes = len("".join(f"{i}\n" for i in range(1, n + 1)).encode())
    out = tmp_path / "wc.txt"
    cap, _ = capture(tmp_path, ["/bin/sh", "-c", f"seq 1 {n} | gzip -1 | gzip -dc | wc -c > {out}"])
    assert int(out.read_text()) == seq_bytes
    m = build_model(cap)
    seq, wc = comm_tids(m, "seq"), comm_tids(m, "wc")
    gz = comm_tids(m, "gzip")
    assert len(seq) == 1 and len(wc) == 1 and len(gz) == 2
    w = m.io[m.io["type"] == "WRITES"]
    r = m.io[m.io["type"] == "READS"]
    seq_w = w[w["tid"].isin(seq)]
    assert len(seq_w) == 1 and int(seq_w["bytes"].iloc[0]) == seq_bytes
    p1 = seq_w["rid"].iloc[0]
    assert p1.startswith("pipe:") and ":~" not in p1
    # the first gzip reads all of it from that pipe, and writes the compressed stream into the next
    r1 = r[r["rid"] == p1]
    assert set(r1["tid"]) <= gz and int(r1["bytes"].sum()) == seq_bytes
    (gz1,) = set(r1["tid"])
    gz2 = (gz - {gz1}).pop()
    p2 = w[(w["tid"] == gz1) & w["rid"].str.startswith("pipe:")]
    assert len(p2) == 1
    p2_rid, comp = p2["rid"].iloc[0], int(p2["bytes"].iloc[0])
    assert int(r[(r["rid"] == p2_rid) & (r["tid"] == gz2)]["bytes"].sum()) == comp
    p3 = w[(w["tid"] == gz2) & w["rid"].str.startswith("pipe:")]
    assert len(p3) == 1 and int(p3["bytes"].iloc[0]) == seq_bytes
    assert int(r[(r["rid"] == p3["rid"].iloc[0]) & r["tid"].isin(wc)]["bytes"].sum()) == seq_bytes
    # the flows chain seq -> gzip -> gzip -> wc
    f = {(int(a), int(b)): int(x) for a, b, x in m.flows[["writer", "reader", "bytes"]].itertuples(index=False)}
    (s,), (c,) = seq, wc
    assert f[(s, gz1)] == seq_bytes and f[(gz1, gz2)] == comp and f[(gz2, c)] == seq_bytes


@requires("perf")
@pytest.mark.parametrize("mode", ["-p", "socket"])
def test_perf_bench_messaging_channels(tmp_path, mode):
    loops, groups = 20, 2
    argv = ["perf", "bench", "sched", "messaging", "-g", str(groups), "-l", str(loops)]  # processes
    if mode == "-p":
        argv.insert(4, "-p")
    cap, meta = capture(tmp_path, argv)
    m = build_model(cap)
    perf = comm_tids(m, "sched-messaging") | comm_tids(m, "perf")
    io = m.io[m.io["tid"].isin(perf)]
    kind = "pipe" if mode == "-p" else "unix_stream"
    kinds = dict(zip(m.resources["rid"], m.resources["kind"]))
    per = 100 * loops
    w = io[(io["type"] == "WRITES") & (io["rid"].map(kinds) == kind)]
    r = io[(io["type"] == "READS") & (io["rid"].map(kinds) == kind)]
    # besides the data, every worker writes 1 byte into the "ready" channel and the main process 1 byte
    # into the "wake" channel (same kind as the data channels); the main process prints the result
    main = int(meta["command_pid"])
    sync = w[w["bytes"] == 1]
    assert len(sync) == 20 * 2 * groups + 1 and set(sync["calls"]) == {1}
    w = w[(w["bytes"] != 1) & (w["tid"] != main)]
    # every data write is attributed: 20 senders x 20 receivers x groups channels, loops*100 bytes each
    assert len(w) == 20 * 20 * groups and set(w["bytes"]) == {per} and set(w["calls"]) == {loops}
    readers = defaultdict(set)
    for rid, tid in r[["rid", "tid"]].itertuples(index=False):
        readers[rid].add(tid)
    # each channel is read by one receiver, which reads all 20 senders' bytes
    read_rid = {}
    if kind == "pipe":
        read_rid = {rid: rid for rid in w["rid"].unique()}
    else:
        peer = dict(zip(m.resources["rid"], m.resources["peer"]))
        read_rid = {rid: peer[rid] for rid in w["rid"].unique()}
    chans = defaultdict(set)
    for rid, tid in w[["rid", "tid"]].itertuples(index=False):
        chans[read_rid[rid]].add(tid)
    assert len(chans) == 20 * groups
    for ch, writers in chans.items():
        assert len(writers) == 20
        assert len(readers[ch]) == 1
        assert int(r[r["rid"] == ch]["bytes"].sum()) == 20 * per
    # and nothing else: all bytes read from channels of that kind are data or the 1-byte syncs
    assert int(r[r["rid"].isin(list(chans))]["bytes"].sum()) == 20 * per * 20 * groups
    assert int(r[~r["rid"].isin(list(chans))]["bytes"].sum()) <= len(sync)


SCM = r"""
import array, json, os, socket, sys
a, b = socket.socketpair()
f = os.open("/etc/hostname", os.O_RDONLY)
a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [f]))])
os.close(f)
msg, anc, _, _ = b.recvmsg(16, socket.CMSG_SPACE(4))
got = array.array("i"); got.frombytes(anc[0][2])
r, w = os.pipe()
for _ in range(3):
    os.write(w, b"xyz"); os.read(r, 3)
n = len(os.read(got[0], 100))
json.dump({"received": got[0], "r": r, "w": w, "ino": os.fstat(r).st_ino, "n": n}, open(sys.argv[1], "w"))
"""


def test_fds_received_with_scm_rights_never_shift_the_pipe_fds(tmp_path):
    """recvmsg may install fds the trace cannot see: the pipe made after it must not be placed on
    the lowest free fds by inference (they are taken by the received fd)."""
    out = tmp_path / "scm.json"
    cap, meta = capture(tmp_path, [sys.executable, "-c", SCM, str(out)])
    facts = json.loads(out.read_text())
    m = build_model(cap)
    pid = int(meta["command_pid"])
    mine = m.io[m.io["tid"] == pid]
    pipe_rows = mine[mine["rid"].str.startswith("pipe:")]
    # either the pipe is attributed exactly, or not at all; never with the received file's read
    for row in pipe_rows.itertuples(index=False):
        assert row.rid == f"pipe:{facts['ino']}"
        assert (row.calls, row.bytes) == (3, 9), row
    un = [u for u in m.unattributed if u.pid == pid and u.fd in (facts["r"], facts["w"])]
    assert pipe_rows.empty == bool(un)
    if un:
        assert all("fd numbers could not be known" in u.reason for u in un), [u.line() for u in un]


DBUS = """
S=$1
dbus-daemon --session --nofork --nopidfile --address=unix:path=$S --print-address=1 > $S.addr 2>/dev/null &
D=$!
i=0; while [ ! -S $S ] && [ $i -lt 250 ]; do sleep 0.02; i=$((i+1)); done
dbus-send --bus=unix:path=$S --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \\
    org.freedesktop.DBus.ListNames > $S.out
kill $D; wait $D
exit 0
"""


@requires("dbus")
def test_dbus_daemon_and_a_client_over_its_unix_socket(tmp_path):
    """A real Unix stream server: dbus-send connects to the bus socket, says Hello and calls
    ListNames (sendmsg/recvmsg, with fds possible); every byte one side sends the other receives."""
    sock = tmp_path / "bus.sock"
    cap, _ = capture(tmp_path, ["/bin/sh", "-c", DBUS, "dbus-test", str(sock)])
    assert "org.freedesktop.DBus" in Path(f"{sock}.out").read_text()
    m = build_model(cap)
    daemon, client = comm_tids(m, "dbus-daemon"), comm_tids(m, "dbus-send")
    assert len(daemon) == 1 and len(client) == 1
    (d,), (c,) = daemon, client
    res = m.resources.set_index("rid")
    cw = m.io[(m.io["tid"] == c) & (m.io["type"] == "WRITES")]
    assert len(cw) == 1
    c_rid = cw["rid"].iloc[0]
    assert res.loc[c_rid, "kind"] == "unix_stream"
    s_rid = res.loc[c_rid, "peer"]
    assert isinstance(s_rid, str) and res.loc[s_rid, "peer"] == c_rid
    assert res.loc[s_rid, "path"] == str(sock)  # the accepted end carries the bus address

    def total(tid, typ, rid):
        sel = m.io[(m.io["tid"] == tid) & (m.io["type"] == typ) & (m.io["rid"] == rid)]
        return int(sel["bytes"].sum())

    sent, answered = total(c, "WRITES", c_rid), total(d, "WRITES", s_rid)
    assert sent > 0 and answered > 0
    assert total(d, "READS", s_rid) == sent
    assert total(c, "READS", c_rid) == answered
    f = {(int(a), int(b)): int(x) for a, b, x in m.flows[["writer", "reader", "bytes"]].itertuples(index=False)}
    assert f[(c, d)] == sent and f[(d, c)] == answered


def test_opens_and_closes_in_columns_build_the_model_of_one_record_at_a_time(tmp_path, monkeypatch):
    """A shell that forks, execs, dup2s and opens files around a Python process opening and closing
    one file 20000 times (a pipe byte every 100 opens): the model built with runs of opens and
    closes in columns (``FdModel.feed_plain``) equals the one built a record at a time."""
    import pandas as pd

    import ftraceipc.model.build as build
    from ftraceipc.decode import Decoder

    churn = Path(__file__).resolve().parents[2] / "bench" / "open_churn.py"
    script = (f"for i in 1 2 3 4 5 6; do cat /etc/hosts | wc -l > {tmp_path}/n.txt; exec 5</etc/hostname; "
              f"exec 5<&-; done; {sys.executable} {churn} 20000; ls / > /dev/null")
    cap, _ = capture(tmp_path, ["/bin/bash", "-c", script])
    models, runs = [], []
    for shortest in (build._PLAIN_RUN, 1 << 40):  # the default, then never a run
        monkeypatch.setattr(build, "_PLAIN_RUN", shortest)
        fed = []
        plain = build.FdModel.feed_plain
        monkeypatch.setattr(build.FdModel, "feed_plain", lambda self, *a, _p=plain, _f=fed: (_f.append(len(a[0])),
                                                                                           _p(self, *a))[1])
        dec = Decoder(cap, chunk_pages=16)  # live mode's small batches: runs cut at batch ends too
        mb = build.ModelBuilder(cap, decoder=dec)
        for b in dec.batches():
            mb.feed(b)
        models.append(mb.finish())
        runs.append(fed)
    assert sum(runs[0]) > 60000 and not runs[1]  # the churn went in columns, then not at all
    a, b = models
    for k in ("tasks", "resources", "io", "blocked", "wakes", "flows", "waits"):
        pd.testing.assert_frame_equal(getattr(a, k), getattr(b, k), obj=k)
    for k in ("fd_handles", "fd_handles_reclaimed", "fd_bindings_kept"):
        assert a.stats[k] == b.stats[k], k
    w = a.io[(a.io["type"] == "WRITES") & a.io["rid"].fillna("").str.startswith("pipe:")]
    assert (w["bytes"] == 200).sum() == 1  # open_churn's own pipe: one byte every 100 opens
    assert (w["bytes"] == Path("/etc/hosts").stat().st_size).sum() == 6  # cat | wc, six times
