"""The Perfetto/Chrome trace-event export of real captures of the samples, checked against the
trace-event format (validate_trace_events), the samples' truth and the model's episodes."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import capture_cli as cc  # noqa: E402
from components import need, requires  # noqa: E402
from test_model_samples import stdio_rids  # noqa: E402
from truth_check import capture_sample  # noqa: E402

from ftraceipc.model.build import build_model  # noqa: E402
from ftraceipc.report.perfetto import CAPTURE_PID, validate_trace_events, write_perfetto  # noqa: E402

pytestmark = requires("tracefs")

BLOCKED = re.compile(r"^blocked: (\S+)(?: \((\w+)\))?$")
READ_OPS = {"read", "recv"}


def export(tmp_path: Path, cap: Path, model=None):
    out = tmp_path / "trace.json"
    counts = write_perfetto(cap, out, model=model)
    obj = json.loads(out.read_text())
    return counts, obj


def x_events(obj):
    return [e for e in obj["traceEvents"] if e["ph"] == "X" and e["tid"] != CAPTURE_PID]


def check_against_model(obj, counts, model):
    """The file's own counts, and one blocked slice per model episode of each exported task, named
    after the episode's resource."""
    xs = x_events(obj)
    assert counts["slices"] == len(xs)
    assert counts["flows"] == sum(1 for e in obj["traceEvents"] if e["ph"] == "s")
    tids = {e["tid"] for e in xs}
    ep = model.episodes[model.episodes["tid"].isin(tids)]
    blocked = [e for e in xs if e["cat"] == "blocked"]
    assert Counter(e["tid"] for e in blocked) == Counter(ep["tid"].tolist())
    want = Counter((int(t), r) for t, r in zip(ep["tid"], ep["rid"]) if isinstance(r, str))
    got = Counter((e["tid"], BLOCKED.match(e["name"]).group(1)) for e in blocked if BLOCKED.match(e["name"]))
    assert got == want
    # every flow of a wakeup through a resource of an exported task was drawn or counted as dropped
    wu = model.wakeups
    wakees = {e["tid"] for e in xs}
    n_via = int((wu["via"].notna() & wu["wakee"].isin(wakees)).sum())
    assert counts["flows"] + counts["flows_dropped"] == n_via
    assert counts["flows_dropped"] <= max(2, n_via // 20), counts


def truth_io(truth, model):
    """rid -> readers, rid -> writers (tids) from the truth; peers; plus the model's own I/O for
    resources it could only name with a fallback rid (``unix:~N``)."""
    readers, writers = defaultdict(set), defaultdict(set)
    for e in truth["io"]:
        (readers if e["op"] in READ_OPS else writers)[e["rid"]].add(e["tid"])
    for row in model.io.itertuples(index=False):
        if ":~" in row.rid:
            (readers if row.type == "READS" else writers)[row.rid].add(int(row.tid))
    peer = {r["rid"]: r["peer"] for r in truth["resources"]}
    res = model.resources
    peer.update({r: p for r, p in zip(res["rid"], res["peer"]) if ":~" in str(r) and p is not None})
    return readers, writers, peer


def check_sample(tmp_path, sample):
    cap, meta, truth = capture_sample(tmp_path, sample)
    assert all(sum(v.values()) == 0 for v in meta["lost"].values()), f"events lost: {meta['lost']}"
    model = build_model(cap, episodes=True, episodes_dir=tmp_path / "episodes")
    counts, obj = export(tmp_path, cap, model)
    assert validate_trace_events(obj) == []
    # µs: the events span the capture's own duration (meta.json), within 1 %
    assert validate_trace_events(obj, capture_duration_us=(meta["stop_ts"] - meta["start_ts"]) / 1000) == []
    check_against_model(obj, counts, model)
    truth_tids = {t["tid"] for t in truth["tasks"]}
    xs = x_events(obj)
    # one track per task of the sample, named by its comm; pid = tgid
    threads = {(e["pid"], e["tid"]) for e in obj["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}
    for t in truth["tasks"]:
        assert (t["pid"], t["tid"]) in threads
    assert {e["tid"] for e in xs} >= truth_tids
    # the blocked slices of the sample's tasks name its pipes and sockets (or its stdio)
    readers, writers, peer = truth_io(truth, model)
    known = set(readers) | set(writers) | stdio_rids(cap, truth["pid"])
    named = Counter()
    for e in xs:
        m = BLOCKED.match(e["name"])
        if m and e["tid"] in truth_tids:
            assert m.group(1) in known, e
            assert e["args"]["rid"] == m.group(1)
            named[m.group(1)] += 1
    assert set(named) & (set(readers) | set(writers)), named
    # flows go from a writer's track to the reader's: the wakee read from the resource it slept
    # on, the waker wrote into it (a pipe) or into its peer (a socket); or back, when a reader
    # made room for a writer that slept on a full pipe or socket. (Not always: the model takes a
    # wakeup's resource from the syscall the wakee sleeps in, whoever woke it; a few flows of a run
    # come from a task that never used that resource, so 90 % must be writer/reader pairs.)
    ss = {e["id"]: e for e in obj["traceEvents"] if e["ph"] == "s"}
    ff = {e["id"]: e for e in obj["traceEvents"] if e["ph"] == "f"}
    assert set(ss) == set(ff)
    pairs = Counter()
    forward = 0
    odd = []
    for k, s in ss.items():
        f = ff[k]
        assert s["name"] == f["name"] and s["name"].startswith("wakeup via ")
        rid = s["name"][len("wakeup via "):]
        if rid not in readers or f["tid"] not in truth_tids:
            continue
        other = peer.get(rid)
        data = f["tid"] in readers[rid] and s["tid"] in writers[rid] | writers.get(other, set())
        room = f["tid"] in writers[rid] and s["tid"] in readers[rid] | readers.get(other, set())
        assert s["ts"] <= f["ts"]
        if not (data or room):
            odd.append((s["tid"], f["tid"], rid))
            continue
        pairs[(s["tid"], f["tid"])] += 1
        forward += data
    assert forward, "no flow from a writer to a reader"
    # (at most 10 %, or one in a short run: a CI run of the pipeline sample had 5 flows, 1 of them odd)
    assert len(odd) <= max(1, 0.1 * (sum(pairs.values()) + len(odd))), (odd, pairs)
    return truth, pairs, counts


def test_pipeline_export(tmp_path):
    truth, pairs, counts = check_sample(tmp_path, "pipeline")
    role = {t["tid"]: t["role"] for t in truth["tasks"]}
    named_pairs = {(role.get(a), role.get(b)) for a, b in pairs}
    assert named_pairs, "no wakeup flow through the pipeline's pipes"
    assert named_pairs <= {("gen", "upper"), ("upper", "grep"), ("grep", "count"), ("upper", "gen"),
                           ("grep", "upper"), ("count", "grep")}
    assert counts["tracks"] >= 5


def test_socketpair_pingpong_export(tmp_path):
    truth, pairs, counts = check_sample(tmp_path, "socketpair_pingpong")
    role = {t["tid"]: t["role"] for t in truth["tasks"]}
    named_pairs = Counter({(role.get(a), role.get(b)): n for (a, b), n in pairs.items()})
    # 2000 round trips: each thread waits for the other many times
    assert named_pairs[("ping", "pong")] > 100 and named_pairs[("pong", "ping")] > 100, named_pairs


def test_one_task_command_gives_a_valid_file(tmp_path):
    need("tracefs")
    cap = tmp_path / "pass.ftipc"
    r = cc.cli("capture", "-o", str(cap), "--no-model", "--", cc.PY, "-c", "pass", timeout=60)
    assert r.returncode == 0, r.stderr
    counts, obj = export(tmp_path, cap)  # builds the model itself
    assert validate_trace_events(obj) == []
    meta = json.loads((cap / "meta.json").read_text())
    assert validate_trace_events(obj, capture_duration_us=(meta["stop_ts"] - meta["start_ts"]) / 1000) == []
    pid = meta["command_pid"]
    tids = {e["tid"] for e in x_events(obj)}
    assert tids == {pid}, tids
    assert counts["tracks"] == 1 and counts["slices"] >= 1
    assert not any(p.name.startswith("model") for p in cap.iterdir())  # the capture is left as it was
