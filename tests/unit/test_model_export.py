"""Exporters and the capture summary, on Models built by hand (no capture, no build_model)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ftraceipc.errors import CommandError
from ftraceipc.model import critical, ipc
from ftraceipc.model.export import check_output, edges_frame, export, py, write_json, write_tables, write_text
from ftraceipc.model.ipc import Model, Unattributed
from ftraceipc.model.summary import summary_lines

P1, P2, P3 = "pipe:1114662", "pipe:1114663", "pipe:1114664"
GEN, UPPER, GREP, COUNT, MAIN, TRACER = 3943, 3944, 3945, 3946, 3939, 4000
N_EPISODES = 25_000


def pipeline_model(episodes: bool = False) -> Model:
    """gen | upper | grep | count, with numpy scalars, NaN and a tracer task in it on purpose."""
    tids = [MAIN, GEN, UPPER, GREP, COUNT, TRACER]
    tasks = pd.DataFrame({
        "tid": np.array(tids, dtype=np.int64), "pid": np.array(tids, dtype=np.int64),
        "comm": ["python3"] * 5 + ["ftraceipc"], "comms": [["python3"]] * 6,
        "ppid": [3898, MAIN, MAIN, MAIN, MAIN, 1],
        "first_ts": [1.0, 2, 3, 4, 5, np.nan], "last_ts": [10.0, 20, 30, 40, 50, np.nan],
        "tracer": [False] * 5 + [True]})
    resources = pd.DataFrame({
        "rid": [P1, P2, P3], "kind": ["pipe"] * 3, "inode": np.array([1114662, 1114663, 1114664], dtype=np.int64),
        "path": [None] * 3, "peer": [None] * 3, "evidence": [["pipe2", "snapshot"]] * 3,
        "capacity": [None, 1048576, None]})
    io_ = pd.DataFrame({
        "type": ["WRITES", "READS", "WRITES", "READS", "WRITES", "READS"],
        "tid": [GEN, UPPER, UPPER, GREP, GREP, COUNT], "rid": [P1, P1, P2, P2, P3, P3],
        "calls": [2000, 109, 108, 109, 45, 45], "bytes": [69890, 69890, 69890, 69890, 19355, 19355],
        "first_ts": [11] * 6, "last_ts": [99] * 6,
        "syscalls": [["write"], ["read"], ["write"], ["read"], ["write"], ["read"]]})
    blocked = pd.DataFrame({
        "tid": [UPPER, GREP, COUNT, TRACER], "rid": [P1, P2, P3, None], "episodes": [91, 97, 38, 5],
        "blocked_ns": [5_000_000, 6_000_000, 7_000_000, 900_000_000], "max_ns": [np.int64(200_000)] * 4,
        "ops": [["read"]] * 4, "read_episodes": [91, 97, 38, 5],
        "read_ns": [5_000_000, 6_000_000, 7_000_000, 900_000_000], "write_episodes": 0, "write_ns": 0})
    wakes = pd.DataFrame({
        "waker": [GEN, UPPER, GREP], "wakee": [UPPER, GREP, COUNT], "via": [P1, P2, None],
        "wakeups": [91, 97, 38], "wake_to_run_ns": [910_000.0, 970_000.0, np.nan],
        "max_wake_to_run_ns": [50_000.0, 60_000.0, np.nan], "cross_cpu": [3, 0, 38]})
    flows = pd.DataFrame({
        "writer": [GEN, UPPER, GREP], "reader": [UPPER, GREP, COUNT], "via": [P1, P2, P3], "read_rid": [P1, P2, P3],
        "bytes": [69890, 69890, 19355], "messages": [2000, 108, 45]})
    m = Model(capture="/tmp/p.ftipc", capture_id="0123456789ab",
              meta={"command": ["python3", "samples/pipeline.py"], "exit_code": 0, "start_ts": 100,
                    "stop_ts": 153_644_100,
                    "lost": {"0": {"overrun": 0, "commit_overrun": 0, "dropped_events": 0, "pages_missed": 0,
                                   "missed_events": 0}}},
              tasks=tasks, resources=resources, io=io_, blocked=blocked, wakes=wakes, flows=flows,
              unattributed=[Unattributed(MAIN, MAIN, 0, "read", 3, 120, "fd not known to be open")],
              impossible=["WAKES: no sched:sched_waking events"],
              stats={"events": np.int64(6872), "events_per_s": float("nan"), "sched": {"x": np.float64(1.5)}})
    if episodes:
        n = N_EPISODES
        m.episodes = pd.DataFrame({
            "tid": np.full(n, UPPER), "rid": [P1] * n, "op": ["read"] * n, "fd": np.full(n, 3),
            "start_ts": np.arange(n, dtype=np.int64) * 10, "dur_ns": np.arange(n, dtype=float), "state": ["S"] * n,
            "woken_by": [float(GEN)] * (n - 1) + [np.nan]})
        m.wakeups = pd.DataFrame({
            "ts": np.arange(3), "waker": [GEN] * 3, "wakee": [UPPER] * 3, "via": [P1, None, P1],
            "wake_to_run_ns": [1500.0, np.nan, 3000.0], "waker_cpu": [0, 1, 0], "target_cpu": [1, 1, 1]})
    return m


def with_critical_path(m: Model) -> Model:
    """count (root) reads pipe P3 written by grep, which reads P2 written by upper."""
    ep = pd.DataFrame([
        {"tid": COUNT, "rid": P3, "op": "read", "fd": 0, "start_ts": 1_000, "dur_ns": 9_000, "state": "S",
         "woken_by": GREP},
        {"tid": GREP, "rid": P2, "op": "read", "fd": 0, "start_ts": 2_000, "dur_ns": 5_000, "state": "S",
         "woken_by": UPPER}])
    wu = pd.DataFrame([
        {"ts": 9_500, "waker": GREP, "wakee": COUNT, "via": P3, "wake_to_run_ns": 500, "waker_cpu": 0, "target_cpu": 1},
        {"ts": 6_000, "waker": UPPER, "wakee": GREP, "via": P2, "wake_to_run_ns": 1_000, "waker_cpu": 0,
         "target_cpu": 1}])
    m.critical = critical.walk(critical.PathInputs.from_tables(ep, wu), COUNT, 0, 20_000)
    return m


def as_json(m: Model, **kw) -> dict:
    buf = io.StringIO()
    write_json(m, buf, **kw)
    return json.loads(buf.getvalue())


# --- json ------------------------------------------------------------------------------------------
def test_json_is_one_complete_object():
    d = as_json(pipeline_model())
    assert list(d) == ["capture", "capture_id", "meta", "tasks", "resources", "edges", "critical_path",
                       "unattributed", "impossible", "warnings", "stats"]
    assert d["critical_path"] is None  # no command's path in this model
    assert d["warnings"] == []  # the caller gives them (ftraceipc.problems)
    assert d["capture"] == "/tmp/p.ftipc" and d["capture_id"] == "0123456789ab"
    assert [t["tid"] for t in d["tasks"]] == [MAIN, GEN, UPPER, GREP, COUNT, TRACER]
    assert list(d["tasks"][0]) == ipc.TASK_COLUMNS
    assert list(d["resources"][0]) == ipc.RESOURCE_COLUMNS
    assert d["resources"][0]["evidence"] == ["pipe2", "snapshot"]
    assert d["unattributed"] == [{"pid": MAIN, "tid": MAIN, "fd": 0, "syscall": "read", "calls": 3, "bytes": 120,
                                  "reason": "fd not known to be open",
                                  "line": "3 read calls on fd 0 of pid 3939: fd not known to be open"}]
    assert d["impossible"] == ["WAKES: no sched:sched_waking events"]
    assert d["stats"] == {"events": 6872, "events_per_s": None, "sched": {"x": 1.5}}


def test_json_edges_have_type_src_dst_and_their_own_properties():
    edges = as_json(pipeline_model())["edges"]
    by_type: dict[str, list[dict]] = {}
    for e in edges:
        assert list(e)[:3] == ["type", "src", "dst"]
        by_type.setdefault(e["type"], []).append(e)
    assert {k: len(v) for k, v in by_type.items()} == {"WRITES": 3, "READS": 3, "BLOCKED_ON": 4, "WAKES": 3,
                                                        "FLOWS": 3}
    w = by_type["WRITES"][0]
    assert w == {"type": "WRITES", "src": GEN, "dst": P1, "calls": 2000, "bytes": 69890, "first_ts": 11,
                 "last_ts": 99, "syscalls": ["write"]}
    assert type(w["src"]) is int and type(w["calls"]) is int
    for e in by_type["FLOWS"] + by_type["WAKES"]:
        assert isinstance(e["src"], int) and isinstance(e["dst"], int)
    assert set(by_type["FLOWS"][0]) == {"type", "src", "dst", "via", "read_rid", "bytes", "messages"}
    assert set(by_type["BLOCKED_ON"][0]) == {"type", "src", "dst", "episodes", "blocked_ns", "max_ns", "ops",
                                             "read_episodes", "read_ns", "write_episodes", "write_ns"}
    assert by_type["BLOCKED_ON"][3]["dst"] is None
    assert not any("episode" in e for e in edges)


def test_json_nan_is_null_and_whole_floats_are_ints():
    d = as_json(pipeline_model())
    last = [e for e in d["edges"] if e["type"] == "WAKES"][-1]
    assert last["wake_to_run_ns"] is None and last["max_wake_to_run_ns"] is None and last["via"] is None
    assert [e for e in d["edges"] if e["type"] == "WAKES"][0]["wake_to_run_ns"] == 910_000
    assert d["tasks"][0]["first_ts"] == 1 and type(d["tasks"][0]["first_ts"]) is int
    assert d["tasks"][-1]["first_ts"] is None
    text = io.StringIO()
    write_json(pipeline_model(True), text)
    assert "NaN" not in text.getvalue() and "Infinity" not in text.getvalue()


class _Recorder(io.StringIO):
    def __init__(self):
        super().__init__()
        self.writes = 0
        self.largest = 0

    def write(self, s):
        self.writes += 1
        self.largest = max(self.largest, len(s))
        return super().write(s)


def test_json_episodes_are_edges_written_row_by_row():
    out = _Recorder()
    write_json(pipeline_model(True), out)
    d = json.loads(out.getvalue())
    eps = [e for e in d["edges"] if e.get("episode")]
    blocked = [e for e in eps if e["type"] == "BLOCKED_ON"]
    wakes = [e for e in eps if e["type"] == "WAKES"]
    assert len(blocked) == N_EPISODES and len(wakes) == 3
    assert blocked[0] == {"type": "BLOCKED_ON", "src": UPPER, "dst": P1, "episode": True, "op": "read", "fd": 3,
                          "start_ts": 0, "dur_ns": 0, "state": "S", "woken_by": GEN}
    assert blocked[-1]["woken_by"] is None
    assert wakes[1] == {"type": "WAKES", "src": GEN, "dst": UPPER, "episode": True, "ts": 1, "via": None,
                        "wake_to_run_ns": None, "waker_cpu": 1, "target_cpu": 1}
    # aggregated edges come first, then the episode rows
    assert [e.get("episode", False) for e in d["edges"]] == sorted(e.get("episode", False) for e in d["edges"])
    # streamed: many small writes, none holding a large part of the output
    assert out.writes > N_EPISODES
    assert out.largest < 2000, out.largest


def test_json_episodes_left_out_when_asked():
    d = as_json(pipeline_model(True), episodes=False)
    assert not any(e.get("episode") for e in d["edges"]) and len(d["edges"]) == 16


def test_json_of_an_empty_model():
    d = as_json(Model("x", "y", {}))
    assert d["tasks"] == d["resources"] == d["edges"] == d["unattributed"] == d["impossible"] == []
    assert d["stats"] == {}


def test_py_values():
    assert py(np.int32(3)) == 3 and type(py(np.int64(3))) is int
    assert py(np.float64("nan")) is None and py(float("inf")) is None and py(pd.NA) is None
    assert py(np.bool_(True)) is True
    assert py({"a": [np.int64(1), np.nan], 2: (1, 2)}) == {"a": [1, None], "2": [1, 2]}
    assert py(np.array([1, 2])) == [1, 2]


def test_json_has_the_critical_path_scalars_and_tables():
    cp = as_json(with_critical_path(pipeline_model()))["critical_path"]
    assert list(cp) == ["root", "start_ts", "end_ts", "wall_ns", "segments", "tasks", "waits", "resources", "stats"]
    assert (cp["root"], cp["start_ts"], cp["end_ts"], cp["wall_ns"]) == (COUNT, 0, 20_000, 20_000)
    assert cp["segments"][0] == {"seq": 0, "tid": COUNT, "state": "running", "reason": "", "rid": None,
                                 "start_ts": 0, "end_ts": 1_000, "dur_ns": 1_000}
    assert [(s["tid"], s["state"]) for s in cp["segments"]] == [
        (COUNT, "running"), (GREP, "running"), (UPPER, "running"), (GREP, "runnable"), (GREP, "running"),
        (COUNT, "runnable"), (COUNT, "running")]
    assert sum(s["dur_ns"] for s in cp["segments"]) == 20_000
    assert cp["tasks"][0] == {"tid": COUNT, "crit_ns": 11_500, "running_ns": 11_000, "runnable_ns": 500,
                              "blocked_ns": 0, "running_sys_ns": 0}
    assert cp["waits"] == [{"waiter": COUNT, "rid": P3, "crit_ns": 8_500, "waits": 1, "room_ns": 0},
                           {"waiter": GREP, "rid": P2, "crit_ns": 4_000, "waits": 1, "room_ns": 0}]
    # P3: count's wait [1, 9.5] us and its runnable time after it, once; P2: grep's, inside it
    assert cp["resources"] == [{"rid": P3, "crit_ns": 9_000}, {"rid": P2, "crit_ns": 5_000}]
    assert cp["stats"]["edges"] == 2


# --- csv / parquet ---------------------------------------------------------------------------------
def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_directory_tables_and_columns(tmp_path):
    out = tmp_path / "tables"
    assert export(pipeline_model(), "csv", output=out) == out
    assert sorted(p.name for p in out.iterdir()) == ["edges.csv", "resources.csv", "tasks.csv"]
    tasks = _csv(out / "tasks.csv")
    assert list(tasks[0]) == ipc.TASK_COLUMNS and len(tasks) == 6
    assert tasks[0]["first_ts"] == "1" and tasks[-1]["first_ts"] == "" and tasks[0]["comms"] == '["python3"]'
    res = _csv(out / "resources.csv")
    assert list(res[0]) == ipc.RESOURCE_COLUMNS and [r["rid"] for r in res] == [P1, P2, P3]
    edges = _csv(out / "edges.csv")
    cols = list(edges[0])
    assert cols[:3] == ["type", "src", "dst"]
    for c in ipc.IO_COLUMNS + ipc.BLOCKED_COLUMNS + ipc.WAKES_COLUMNS + ipc.FLOW_COLUMNS:
        if c not in ("tid", "rid", "waker", "wakee", "writer", "reader"):
            assert c in cols, c
    assert len(edges) == 16
    w = edges[0]
    assert (w["type"], w["src"], w["dst"], w["calls"], w["bytes"]) == ("WRITES", str(GEN), P1, "2000", "69890")
    assert w["messages"] == "" and w["syscalls"] == '["write"]'
    f = [e for e in edges if e["type"] == "FLOWS"][0]
    assert (f["src"], f["dst"], f["via"], f["bytes"], f["messages"]) == (str(GEN), str(UPPER), P1, "69890", "2000")


def test_csv_and_parquet_have_the_critical_path_tables(tmp_path):
    m = with_critical_path(pipeline_model())
    out = tmp_path / "tables"
    write_tables(m, out, "csv")
    assert sorted(p.name for p in out.iterdir()) == ["critical_path.csv", "critical_resources.csv", "critical_tasks.csv",
                                                      "critical_waits.csv", "edges.csv", "resources.csv", "tasks.csv"]
    seg = _csv(out / "critical_path.csv")
    assert list(seg[0]) == critical.CRITICAL_COLUMNS and len(seg) == len(m.critical.segments)
    assert seg[0]["rid"] == "" and seg[5]["rid"] == P3 and seg[5]["reason"] == "read"
    assert list(_csv(out / "critical_tasks.csv")[0]) == critical.CRITICAL_TASK_COLUMNS
    assert _csv(out / "critical_waits.csv")[0] == {"waiter": str(COUNT), "rid": P3, "crit_ns": "8500", "waits": "1",
                                                          "room_ns": "0"}
    pout = tmp_path / "ptables"
    export(m, "parquet", output=pout)
    t = pq.read_table(pout / "critical_path.parquet")
    assert t.column_names == critical.CRITICAL_COLUMNS and str(t.schema.field("dur_ns").type) == "int64"
    assert sum(t.column("dur_ns").to_pylist()) == 20_000
    assert pq.read_table(pout / "critical_waits.parquet").column("rid").to_pylist() == [P3, P2]
    export(m, "csv", output=out, force=True)  # an earlier export with these tables is replaced


def test_csv_with_episodes(tmp_path):
    out = tmp_path / "tables"
    write_tables(pipeline_model(True), out, "csv")
    assert sorted(p.name for p in out.iterdir()) == ["edges.csv", "episodes.csv", "resources.csv", "tasks.csv",
                                                      "wakeups.csv"]
    eps = _csv(out / "episodes.csv")
    assert list(eps[0]) == ipc.EPISODE_COLUMNS and len(eps) == N_EPISODES
    assert eps[0]["woken_by"] == str(GEN) and eps[-1]["woken_by"] == ""
    assert list(_csv(out / "wakeups.csv")[0]) == ipc.WAKEUP_COLUMNS
    assert len(_csv(out / "edges.csv")) == 16  # the episodes have their own files


def test_parquet_directory_tables_and_types(tmp_path):
    out = tmp_path / "tables"
    export(pipeline_model(True), "parquet", output=out, episodes=True)
    assert sorted(p.name for p in out.iterdir()) == ["edges.parquet", "episodes.parquet", "resources.parquet",
                                                      "tasks.parquet", "wakeups.parquet"]
    tasks = pq.read_table(out / "tasks.parquet")
    assert tasks.column_names == ipc.TASK_COLUMNS
    assert str(tasks.schema.field("first_ts").type) == "int64"
    assert tasks.column("comms").to_pylist()[0] == ["python3"]
    res = pq.read_table(out / "resources.parquet")
    assert res.column_names == ipc.RESOURCE_COLUMNS
    assert "string" in str(res.schema.field("path").type)  # all null, still a string column
    edges = pq.read_table(out / "edges.parquet")
    assert edges.column_names[:3] == ["type", "src", "dst"]
    assert str(edges.schema.field("calls").type) == "int64"
    assert str(edges.schema.field("wakeups").type) == "int64"
    rows = edges.to_pylist()
    assert rows[0]["src"] == str(GEN) and rows[0]["calls"] == 2000 and rows[0]["wakeups"] is None
    assert pq.read_table(out / "episodes.parquet").num_rows == N_EPISODES
    assert pq.read_table(out / "wakeups.parquet").column_names == ipc.WAKEUP_COLUMNS


def test_edges_frame_keeps_integers():
    e = edges_frame(pipeline_model())
    assert str(e["calls"].dtype) == "Int64" and e["calls"].iloc[0] == 2000 and pd.isna(e["calls"].iloc[-1])
    assert list(e["src"])[:2] == [str(GEN), str(UPPER)]


# --- text ------------------------------------------------------------------------------------------
def test_text_report_has_the_key_lines():
    buf = io.StringIO()
    write_text(pipeline_model(), buf)
    text = buf.getvalue()
    lines = text.splitlines()
    assert "capture   /tmp/p.ftipc" in lines
    assert "command   python3 samples/pipeline.py (exit 0)" in lines
    assert "duration  0.154 s" in lines
    assert "events    6,872, lost 0" in lines
    for heading in ("Tasks (5 in 5 processes)", "Resources (3: 3 pipe)", "Top talkers (flows by bytes)",
                    "Blocked time by resource", "Wakes (by wakeups)", "Not attributed"):
        assert heading in lines, heading
    assert "1 ftraceipc task(s) left out" in text
    assert "ftraceipc[4000]" not in text and "900.0 ms" not in text  # tracer's sleeps are not the workload's
    talker = next(ln for ln in lines if ln.lstrip().startswith("python3[3943]"))
    assert talker.split() == ["python3[3943]", "python3[3944]", P1, "same", "69,890", "2,000"]
    gen = next(ln for ln in lines if ln.split()[:3] == [str(GEN), str(GEN), "python3"])
    assert gen.split()[3:] == ["69,890", "0", "-"]
    na = lines[lines.index("Not attributed") + 1:]
    assert na == ["  3 read calls on fd 0 of pid 3939: fd not known to be open",
                  "  impossible: WAKES: no sched:sched_waking events"]
    assert "━" not in text and "│" not in text  # not a terminal: plain text


def test_text_report_shows_the_critical_path_tasks_and_waits():
    buf = io.StringIO()
    write_text(with_critical_path(pipeline_model()), buf)
    lines = buf.getvalue().splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith("Critical path of python3[3946] (wall 20.0 us, 7 segments)"))
    assert lines[i + 1].split() == ["task", "on", "path", "share", "running", "runnable", "blocked"]
    assert lines[i + 2].split() == ["python3[3946]", "11.5", "us", "57.5", "%", "11.0", "us", "500", "ns", "-"]
    j = next(i for i, ln in enumerate(lines) if ln.startswith("Critical path: waits"))
    assert lines[j + 2].split() == ["python3[3946]", P3, "8.5", "us", "42.5", "%", "1"]


def test_text_report_with_episodes_and_rich():
    buf = io.StringIO()
    write_text(pipeline_model(True), buf, rich=True)
    text = buf.getvalue()
    assert "Longest blocking episodes (of 25,000)" in text and "Not attributed" in text
    assert "│" in text


def test_text_report_of_an_empty_model():
    buf = io.StringIO()
    write_text(Model("x", "y", {}), buf)
    assert "nothing: every call and sleep was tied to a resource" in buf.getvalue()


# --- output files -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, output, force, needle", [
    ("xml", None, False, "--format 'xml' is not one of text, json, csv, parquet"),
    ("csv", None, False, "add --output DIR"),
    ("parquet", None, False, "add --output DIR"),
])
def test_check_output_refuses_bad_options(fmt, output, force, needle):
    with pytest.raises(CommandError) as e:
        check_output(output, fmt, force)
    assert needle in e.value.line()


def test_existing_output_needs_force_and_foreign_directories_are_never_replaced(tmp_path):
    out = tmp_path / "t"
    export(pipeline_model(), "csv", output=out)
    with pytest.raises(CommandError, match="exists"):
        export(pipeline_model(), "parquet", output=out)
    export(pipeline_model(), "parquet", output=out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["edges.parquet", "resources.parquet", "tasks.parquet"]
    export(pipeline_model(), "json", output=out, force=True)  # an earlier export becomes a file
    assert json.loads(out.read_text())["capture_id"] == "0123456789ab"
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(CommandError, match="not replacing"):
        export(pipeline_model(), "csv", output=foreign, force=True)
    assert (foreign / "notes.txt").read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left


def test_text_to_a_file_is_plain(tmp_path):
    out = tmp_path / "report.txt"
    export(pipeline_model(), "text", output=out)
    assert "Top talkers (flows by bytes)" in out.read_text() and "━" not in out.read_text()


# --- summary ---------------------------------------------------------------------------------------
def test_summary_lines():
    lines = summary_lines(pipeline_model())
    assert lines[0] == "model: 5 threads in 5 processes; 3 resources (3 pipe)"
    assert lines[1] == "top talkers:"
    assert lines[2] == f"  python3[{GEN}] -> python3[{UPPER}] via {P1}: 68.3 KiB in 2,000 writes"
    assert lines[4] == f"  python3[{GREP}] -> python3[{COUNT}] via {P3}: 18.9 KiB in 45 writes"
    assert lines[5] == f"blocked: 18.0 ms in total; most: python3[{COUNT}] 7.0 ms, on {P3} 7.0 ms"
    assert lines[6] == ("not attributed: 3 calls that could have been IPC, in 1 group; biggest: 3 read calls on fd 0 of pid 3939: "
                        "fd not known to be open")
    assert lines[7] == "cannot attribute: WAKES: no sched:sched_waking events"
    assert lines[-1] == "details: ftraceipc model /tmp/p.ftipc"
    assert len(lines) <= 9


def test_summary_of_an_empty_model():
    lines = summary_lines(Model("/tmp/x y", "id", {}))
    assert lines[0] == "model: 0 threads in 0 processes; 0 resources"
    assert lines[-1] == "details: ftraceipc model '/tmp/x y'"


def test_short_list_names_a_few_and_counts_the_rest():
    from ftraceipc.model.export import short_list

    assert short_list(range(3)) == "0, 1, 2"
    assert short_list(range(6)) == "0, 1, 2, 3, 4, 5"
    assert short_list(range(687)) == "0, 1, 2, 3, 4, 5, …and 681 more"
    assert short_list(range(2000), 2) == "0, 1, …and 1,998 more"


def test_task_label_is_comm_and_tid_or_a_question_mark():
    from ftraceipc.model.export import Labels, task_label

    assert task_label(18895, "postgres") == "postgres[18895]"
    assert task_label(7, None) == task_label(7, "") == "?[7]"
    m = pipeline_model()
    assert Labels(m).task(GEN) == task_label(GEN, "python3") and Labels(m).task(999999) == "?[999999]"
