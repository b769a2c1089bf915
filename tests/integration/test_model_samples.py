"""The IPC model of real captures of the samples, compared with the truth each sample recorded.

For every sample: task -> resource edges (WRITES/READS) and writer -> resource -> reader edges
(FLOWS) have precision = recall = 1.0, bytes and calls are exact, resources have the truth's kind
and peer, and the capture lost no events (else the test fails: a lossy capture proves nothing).

Left out of the comparison, as samples/README.md says the truth does not list them: the command's
inherited stdio (fds 0-2 at start; under pytest they are pipes to the test) and the zero-byte reads
of `subprocess`'s exec-status pipe in fifo.py (truth edges always carry bytes > 0).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from components import requires  # noqa: E402
from truth_check import capture_sample  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "samples"))
from truth import SAMPLES  # noqa: E402

from ftraceipc.capture.store import CaptureDir  # noqa: E402
from ftraceipc.model.build import build_model  # noqa: E402
from ftraceipc.model.fd import rid_from_snapshot  # noqa: E402

pytestmark = requires("tracefs")

OP_TYPE = {"write": "WRITES", "send": "WRITES", "read": "READS", "recv": "READS"}


def stdio_rids(cap: Path, pid: int) -> set[str]:
    out = set()
    for rec in CaptureDir(cap).proc_records():
        if rec.get("kind") == "fds" and rec.get("when") == "start" and rec.get("pid") == pid:
            for fd, target in rec["fds"].items():
                rid = rid_from_snapshot(target)
                if int(fd) <= 2 and rid:
                    out.add(rid)
    return out


def truth_edges(truth: dict) -> dict[tuple[int, str, str], list[int]]:
    out: dict = defaultdict(lambda: [0, 0])
    for e in truth["io"]:
        acc = out[(e["tid"], e["rid"], OP_TYPE[e["op"]])]
        acc[0] += e["calls"]
        acc[1] += e["bytes"]
    return dict(out)


def truth_flows(truth: dict) -> dict[tuple[int, str, int], int]:
    """(writer, via rid, reader) -> bytes the writer wrote into via bound for that reader's resource."""
    peer = {r["rid"]: r["peer"] for r in truth["resources"]}
    readers = defaultdict(set)
    for e in truth["io"]:
        if OP_TYPE[e["op"]] == "READS":
            readers[e["rid"]].add(e["tid"])
    out: dict = defaultdict(int)
    for e in truth["io"]:
        if OP_TYPE[e["op"]] != "WRITES":
            continue
        dest = e.get("to") or (peer.get(e["rid"]) or e["rid"])
        for r in readers[dest]:
            out[(e["tid"], e["rid"], r)] += e["bytes"]
    return dict(out)


def rename_fallbacks(truth: dict, model) -> tuple[dict[str, str], list[str]]:
    """Model rid -> truth rid for resources the model could only name ``kind:~N`` (a socket that
    lived between two /proc/net/unix reads): each must carry exactly the I/O of one truth resource
    (same tasks, directions, calls and bytes), one to one. Inode-named rids are never renamed."""
    sig_t = defaultdict(set)
    for (tid, rid, typ), (calls, nbytes) in truth_edges(truth).items():
        sig_t[rid].add((tid, typ, calls, nbytes))
    sig_m = defaultdict(set)
    for row in model.io.itertuples(index=False):
        if ":~" in row.rid:
            sig_m[row.rid].add((row.tid, row.type, row.calls, row.bytes))
    named = set(model.resources["rid"])
    free = {rid: frozenset(sig) for rid, sig in sig_t.items() if rid not in named}
    mapping, unmatched = {}, []
    for mrid, sig in sig_m.items():
        hits = [t for t, tsig in free.items() if tsig == frozenset(sig)]
        if len(hits) == 1:
            mapping[mrid] = hits.pop()
            del free[mapping[mrid]]
        else:
            unmatched.append(mrid)
    return mapping, unmatched


def prf(truth: set, got: set) -> tuple[float, float]:
    tp = len(truth & got)
    return (tp / len(got) if got else 1.0), (tp / len(truth) if truth else 1.0)


CASES = [pytest.param(s, a, id=" ".join([s] + a)) for s, a in SAMPLES]


@pytest.mark.parametrize("sample,args", CASES)
def test_model_matches_the_sample_truth(tmp_path, sample, args):
    cap, meta, truth = capture_sample(tmp_path, sample, args)
    assert all(sum(v.values()) == 0 for v in meta["lost"].values()), f"events lost: {meta['lost']}"
    model = build_model(cap)
    tids = {t["tid"] for t in truth["tasks"]}
    skip = stdio_rids(cap, truth["pid"])

    ren, _unmatched = rename_fallbacks(truth, model)
    named = sum(1 for t in truth["resources"] if t["rid"] in set(model.resources["rid"]))
    print(f"{sample}: {named}/{len(truth['resources'])} resources named by inode, {len(ren)} by fallback rid")

    def rn(rid):
        return ren.get(rid, rid)

    want = truth_edges(truth)
    got = {}
    for row in model.io.itertuples(index=False):
        if row.tid in tids and row.bytes > 0 and row.rid not in skip:
            got[(row.tid, rn(row.rid), row.type)] = [row.calls, row.bytes]
    p, r = prf(set(want), set(got))
    assert (p, r) == (1.0, 1.0), (f"task->resource precision {p:.3f} recall {r:.3f}; missing "
                                  f"{sorted(set(want) - set(got))[:8]}; extra {sorted(set(got) - set(want))[:8]}; "
                                  f"unattributed {[u.line() for u in model.unattributed[:8]]}")
    wrong = {k: (want[k], got[k]) for k in want if want[k] != got[k]}
    assert not wrong, f"calls/bytes differ (truth, model): {wrong}"

    wflows = truth_flows(truth)
    gflows = {}
    # the truth lists only fds that carried bytes: a reader whose only read there was a lone EOF read (herd's
    # waiter that never got a byte) has a 0-byte READS edge and a FLOWS edge in the model, not in the truth
    read_bytes = {(r.tid, r.rid) for r in model.io.itertuples(index=False) if r.type == "READS" and r.bytes > 0}
    for f in model.flows.itertuples(index=False):
        if f.writer in tids and f.reader in tids and f.via not in skip and f.bytes > 0 \
                and (f.reader, f.read_rid) in read_bytes:
            gflows[(f.writer, rn(f.via), f.reader)] = f.bytes
    p, r = prf(set(wflows), set(gflows))
    assert (p, r) == (1.0, 1.0), (f"writer->resource->reader precision {p:.3f} recall {r:.3f}; missing "
                                  f"{sorted(set(wflows) - set(gflows))[:8]}; extra {sorted(set(gflows) - set(wflows))[:8]}")
    assert gflows == wflows

    res = model.resources.assign(rid=model.resources["rid"].map(rn),
                                 peer=model.resources["peer"].map(lambda p: rn(p) if isinstance(p, str) else None))
    res = res.set_index("rid")
    for t in truth["resources"]:
        assert t["rid"] in res.index, f"resource {t['rid']} missing"
        row = res.loc[t["rid"]]
        assert row["kind"] == t["kind"], (t, dict(row))
        assert (None if pd.isna(row["peer"]) else row["peer"]) == t["peer"], (t, dict(row))
        named_by_inode = t["rid"] in set(model.resources["rid"])
        if named_by_inode:  # a socket's address comes from /proc/net/unix, with its inode
            assert (None if pd.isna(row["path"]) else row["path"]) == t["path"], (t, dict(row))


@pytest.mark.parametrize("sample", ["shortlived", "fd_reuse"])
def test_settling_the_fd_history_every_batch_changes_nothing_in_the_model(tmp_path, sample, monkeypatch):
    """The fd model forgets bindings no later query can see (FdModel.settle); compacting after every
    batch gives the same model as never compacting, on captures full of fork, exec, open and fd reuse
    (decoded a page at a time, so that there are many batches and syscalls open across them)."""
    import functools

    from ftraceipc.decode import Decoder
    from ftraceipc.model import build
    from ftraceipc.model.fd import FdModel

    cap, _meta, _truth = capture_sample(tmp_path, sample)
    monkeypatch.setattr(build, "Decoder", functools.partial(Decoder, chunk_pages=1))
    calls = []
    monkeypatch.setattr(FdModel, "settle", lambda self, *a, _f=FdModel.settle, **k: (calls.append(1), _f(self, *a, **k)))
    tables = ("tasks", "blocked", "wakes", "waits", "io", "flows", "resources")
    got = {}
    for name, every in (("each batch", 0), ("never", 1 << 62)):
        monkeypatch.setattr(FdModel, "settle_min", every)
        m = build_model(cap)
        got[name] = m
        assert len(m.io), sample
        # Python's start-up alone opens and closes dozens of files: folded once closed
        assert 0 < m.stats["fd_handles_reclaimed"] < m.stats["fd_handles"], m.stats
    assert len(calls) >= 2 * 10, len(calls)  # two builds of over 10 batches each
    for t in tables:
        pd.testing.assert_frame_equal(getattr(got["each batch"], t), getattr(got["never"], t), obj=t)
    assert got["each batch"].unattributed == got["never"].unattributed
    assert got["each batch"].stats["fd_notes"] == got["never"].stats["fd_notes"]


def test_our_own_processes_fd_syscalls_stay_out_of_the_fd_model(tmp_path, monkeypatch):
    """ftraceipc's /proc watcher opens and closes files all through a capture: those syscalls are in
    the capture but not in the fd model (no handle, no resource for them), and leaving them out
    changes nothing about the command's tasks: the model is the one built with them fed."""
    from ftraceipc.decode import Decoder
    from ftraceipc.model import build

    cap, meta, _truth = capture_sample(tmp_path, "relay", ["--rounds", "300"])
    ours = {int(t) for t in meta["tracer_tids"]}
    opens = 0
    for b in Decoder(cap).batches():
        t = b.events.get("sys_exit_openat")
        if t is not None:
            opens += int(((t.columns["ret"] >= 0) & pd.Series(t.pid).isin(ours).to_numpy()).sum())
    assert opens >= 20, f"the /proc watcher opened only {opens} files: nothing to leave out"
    m = build_model(cap)
    monkeypatch.setattr(build.ModelBuilder, "_not_ours", lambda self, name, t: None)  # every record fed
    full = build_model(cap)
    # each open of ours made a handle when fed, none now (the command's own opens make theirs in both)
    assert full.stats["fd_handles"] - m.stats["fd_handles"] >= opens, (full.stats["fd_handles"],
                                                                       m.stats["fd_handles"], opens)
    tracer = full.tasks.loc[full.tasks["tracer"].astype(bool), "tid"]
    for name in ("io", "blocked", "wakes", "waits", "flows"):
        pd.testing.assert_frame_equal(getattr(m, name).reset_index(drop=True),
                                      getattr(full, name).reset_index(drop=True), obj=name)
    pd.testing.assert_frame_equal(m.tasks[~m.tasks["tid"].isin(tracer)].reset_index(drop=True),
                                  full.tasks[~full.tasks["tid"].isin(tracer)].reset_index(drop=True), obj="tasks")
    # the resources only ours used (the pipes between the live processes, say) are gone, no other
    used = set(full.io["rid"].dropna()) | set(full.blocked["rid"].dropna())
    assert set(full.resources["rid"]) - set(m.resources["rid"]) <= set(full.resources["rid"]) - used
    assert set(m.resources["rid"]) <= set(full.resources["rid"])
