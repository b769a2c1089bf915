"""The Perfetto/Chrome trace-event export on hand-built models and switch sequences, and the
validator on known-bad inputs."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

from ftraceipc.model import ipc
from ftraceipc.report.perfetto import CAPTURE_PID, _find, _find_vec, validate_trace_events, write_perfetto

S, D, DEAD, R, PREEMPTED = 0x1, 0x2, 0x10, 0x0, 0x100  # sched_switch prev_state (4.14+ encoding)
A, B = 10, 20


def _model(tasks, episodes, wakeups, *, command_pid=A, start=500, stop=7000) -> ipc.Model:
    m = ipc.Model(capture="x.ftipc", capture_id="test", meta={"command_pid": command_pid, "start_ts": start,
                                                               "stop_ts": stop, "lost": {}})
    m.tasks = pd.DataFrame(tasks, columns=ipc.TASK_COLUMNS)
    m.episodes = pd.DataFrame(episodes, columns=ipc.EPISODE_COLUMNS)
    m.wakeups = pd.DataFrame(wakeups, columns=ipc.WAKEUP_COLUMNS)
    return m


def _switches(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["ts", "cpu", "prev_pid", "next_pid", "prev_state"])


def _export(model, switches, **kw):
    out = io.StringIO()
    counts = write_perfetto("x.ftipc", out, model=model, switches=switches, **kw)
    obj = json.loads(out.getvalue())
    return counts, obj


def _slices(obj, tid):
    return [(e["name"], round(e["ts"] * 1000), round((e["ts"] + e["dur"]) * 1000), e.get("args"))
            for e in obj["traceEvents"] if e["ph"] == "X" and e["tid"] == tid]


def _two_tasks():
    """A (tid 10) and B (tid 20) on CPU 0: A preempted by B; B sleeps reading pipe:5; A writes
    and wakes B (at 3500, B runs at 5000); A sleeps outside any syscall until the end; B exits."""
    tasks = [(A, A, "a", ["a"], 1, 1000, 6500, False), (B, B, "b", ["b"], A, 2000, 6000, False)]
    episodes = [(B, "pipe:5", "read", 3, 3000, 2000, "S", A), (A, None, None, -1, 5000, 1500, "S", -1)]
    wakeups = [(3500, A, B, "pipe:5", 1500, 0, 0)]
    switches = _switches([(1000, 0, 0, A, R), (2000, 0, A, B, R | PREEMPTED), (3000, 0, B, A, S),
                          (5000, 0, A, B, S), (6000, 0, B, 0, DEAD)])
    return _model(tasks, episodes, wakeups, stop=6500), switches


def test_slices_are_sequential_named_and_closed():
    model, sw = _two_tasks()
    counts, obj = _export(model, sw)
    assert validate_trace_events(obj) == []
    assert obj["displayTimeUnit"] == "ns"
    assert obj["metadata"]["ts_origin_ns"] == 500
    assert _slices(obj, A) == [
        ("running", 500, 1500, {"cpu": 0}),
        ("runnable (preempted)", 1500, 2500, {}),
        ("running", 2500, 4500, {"cpu": 0}),
        ("sleep", 4500, 6000, {"rid": None, "op": None, "fd": -1, "state": "S", "woken_by": -1,
                               "episode_dur_ns": 1500}),
    ]
    assert _slices(obj, B) == [
        ("running", 1500, 2500, {"cpu": 0}),
        ("blocked: pipe:5 (read)", 2500, 3000, {"rid": "pipe:5", "op": "read", "fd": 3, "state": "S",
                                                 "woken_by": A, "episode_dur_ns": 2000}),
        ("runnable", 3000, 4500, {"waker": A, "via": "pipe:5", "wake_to_run_ns": 1500}),
        ("running", 4500, 5500, {"cpu": 0}),
    ]
    assert counts["slices"] == 8 and counts["blocked"] == 2 and counts["flows"] == 1
    assert counts["flows_dropped"] == 0 and counts["tracks"] == 2


def test_flow_goes_from_the_waker_to_the_wakees_next_run():
    model, sw = _two_tasks()
    _, obj = _export(model, sw)
    s = [e for e in obj["traceEvents"] if e["ph"] == "s"]
    f = [e for e in obj["traceEvents"] if e["ph"] == "f"]
    assert len(s) == len(f) == 1
    s, f = s[0], f[0]
    assert (s["tid"], f["tid"]) == (A, B)
    assert s["name"] == f["name"] == "wakeup via pipe:5" and s["id"] == f["id"] and s["cat"] == f["cat"]
    assert f["bp"] == "e"
    assert round(s["ts"] * 1000) == 3000  # the wakeup, inside A's running slice [2500, 4500]
    assert round(f["ts"] * 1000) == 4501  # 1 ns inside B's run that began at 4500


def test_metadata_names_every_track_and_the_capture_span():
    model, sw = _two_tasks()
    _, obj = _export(model, sw)
    md = [e for e in obj["traceEvents"] if e["ph"] == "M"]
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in md if e["name"] == "thread_name"}
    assert threads == {(A, A): "a", (B, B): "b", (CAPTURE_PID, CAPTURE_PID): "capture"}
    cap = [e for e in obj["traceEvents"] if e["ph"] == "X" and e["tid"] == CAPTURE_PID]
    assert len(cap) == 1 and cap[0]["ts"] == 0 and cap[0]["dur"] == 6.0
    assert obj["metadata"]["capture_duration_us"] == 6.0


def test_untraced_switch_in_starts_the_run_at_the_tasks_own_event():
    """CPU 1 traced no switch from idle to B: B's sleep ended at its own event (4200, the episode's
    end), its run lasts until the switch-out at 4800."""
    tasks = [(A, A, "a", ["a"], 1, 1000, 6000, False), (B, B, "b", ["b"], A, 2000, 6000, False)]
    episodes = [(B, "pipe:5", "read", 3, 3000, 1200, "S", A)]
    wakeups = [(4000, A, B, "pipe:5", 200, 0, 1)]
    sw = _switches([(1000, 0, 0, A, R), (2000, 1, 0, B, R), (3000, 1, B, 0, S), (4800, 1, B, 0, S)])
    model = _model(tasks, episodes, wakeups, stop=6000)
    model.episodes = pd.concat([model.episodes, pd.DataFrame([(B, None, None, -1, 4800, 1200, "S", -1)],
                                                             columns=ipc.EPISODE_COLUMNS)], ignore_index=True)
    counts, obj = _export(model, sw)
    assert validate_trace_events(obj) == []
    got = [(n, a, b) for n, a, b, _ in _slices(obj, B)]
    assert got == [("running", 1500, 2500), ("blocked: pipe:5 (read)", 2500, 3500), ("runnable", 3500, 3700),
                   ("running", 3700, 4300), ("sleep", 4300, 5500)]
    assert _slices(obj, B)[3][3] == {"cpu": 1}
    assert counts["flows"] == 1


def test_wakeup_while_running_and_task_running_since_before_the_capture():
    """A was running before the capture (first switch is its switch-out: its run starts at the
    capture start); B is woken while still running (before its switch-out: the sleep shows)."""
    tasks = [(A, A, "a", ["a"], 1, 600, 6000, False), (B, B, "b", ["b"], A, 1000, 6000, False)]
    episodes = [(B, "pipe:5", "read", 3, 2000, 1000, "S", A)]
    wakeups = [(1900, A, B, "pipe:5", 1100, 1, 0)]
    sw = _switches([(1000, 0, A, B, R | PREEMPTED), (2000, 0, B, A, S), (3000, 0, A, B, R | PREEMPTED)])
    counts, obj = _export(_model(tasks, episodes, wakeups, stop=6000), sw)
    assert validate_trace_events(obj) == []
    assert [(n, a, b) for n, a, b, _ in _slices(obj, A)] == [
        ("running", 0, 500), ("runnable (preempted)", 500, 1500), ("running", 1500, 2500),
        ("runnable (preempted)", 2500, 5500)]
    assert [(n, a, b) for n, a, b, _ in _slices(obj, B)] == [
        ("running", 500, 1500), ("blocked: pipe:5 (read)", 1500, 2500), ("running", 2500, 5500)]
    # the flow starts in whatever slice of the waker encloses the wakeup (here a contrived one) and
    # ends in B's run from 3000
    s = [e for e in obj["traceEvents"] if e["ph"] == "s"]
    assert counts["flows"] == 1 and s[0]["tid"] == A


def test_scope_command_tree_plus_wakers_and_all_tasks():
    """Only the command's tree (A and its child B) by default, plus C, which woke B through a pipe;
    D (unrelated) only with all_tasks."""
    C, Dd = 30, 40
    tasks = [(A, A, "a", ["a"], 1, 1000, 6000, False), (B, B, "b", ["b"], A, 1000, 6000, False),
             (C, C, "c", ["c"], 1, 1000, 6000, False), (Dd, Dd, "d", ["d"], 1, 1000, 6000, False)]
    episodes = [(B, "pipe:5", "read", 3, 2000, 1000, "S", C)]
    wakeups = [(2500, C, B, "pipe:5", 500, 1, 0)]
    sw = _switches([(1000, 0, 0, B, R), (1000, 1, 0, C, R), (2000, 0, B, Dd, S), (2800, 0, Dd, A, R),
                    (3000, 0, A, B, R | PREEMPTED)])
    model = _model(tasks, episodes, wakeups, stop=6000)
    counts, obj = _export(model, sw)
    tids = {e["tid"] for e in obj["traceEvents"] if e["ph"] == "X"} - {CAPTURE_PID}
    assert tids == {A, B, C} and counts["flows"] == 1
    assert validate_trace_events(obj) == []
    counts, obj = _export(model, sw, all_tasks=True)
    assert {e["tid"] for e in obj["traceEvents"] if e["ph"] == "X"} - {CAPTURE_PID} == {A, B, C, Dd}
    counts, obj = _export(model, sw, pids={Dd})
    assert {e["tid"] for e in obj["traceEvents"] if e["ph"] == "X"} - {CAPTURE_PID} == {Dd}
    assert validate_trace_events(obj) == []


def test_unpaired_flows_are_dropped_and_counted():
    """A wakeup whose wakee never ran (wake_to_run -1) and one whose waker has no slice then."""
    model, sw = _two_tasks()
    model.wakeups = pd.concat([model.wakeups, pd.DataFrame(
        [(5600, B, A, "pipe:6", -1, 0, 0), (400, A, B, "pipe:5", 10, 0, 0)], columns=ipc.WAKEUP_COLUMNS)],
        ignore_index=True)
    counts, obj = _export(model, sw)
    assert counts["flows"] == 1 and counts["flows_dropped"] == 2
    assert validate_trace_events(obj) == []


def test_one_task_and_no_switches_still_give_a_valid_file():
    tasks = [(A, A, "python3", ["python3"], 1, 1000, 2000, False)]
    counts, obj = _export(_model(tasks, [], [], stop=3000), _switches([]))
    assert validate_trace_events(obj) == []
    assert counts["slices"] == 0 and counts["flows"] == 0
    counts, obj = _export(_model(tasks, [], [], stop=3000), _switches([(1500, 0, 0, A, R), (2500, 0, A, 0, DEAD)]))
    assert validate_trace_events(obj) == []
    assert [(n, a, b) for n, a, b, _ in _slices(obj, A)] == [("running", 1000, 2000)]


def test_path_output_is_written_whole(tmp_path):
    model, sw = _two_tasks()
    p = tmp_path / "t.json"
    counts = write_perfetto("x.ftipc", p, model=model, switches=sw)
    assert validate_trace_events(json.loads(p.read_text())) == []
    assert counts["flows"] == 1 and [x.name for x in tmp_path.iterdir()] == ["t.json"]


def test_slice_lookup_vectorized_and_plain_agree():
    rng = np.random.default_rng(5)
    rows = []
    for tid in (3, 7, 9):
        t = 0
        for _ in range(50):
            t += int(rng.integers(0, 5))
            d = int(rng.integers(1, 6))
            rows.append((tid, t, t + d))
            t += d
    sl = pd.DataFrame(rows, columns=["tid", "start", "end"])
    tid = rng.choice(np.array([1, 3, 7, 9, 11]), 400)
    t = rng.integers(-2, 300, 400).astype(np.int64)
    for fwd in (False, True):
        assert (_find(sl, tid, t, fwd) == _find_vec(sl, tid, t, fwd)).all()


# --- the validator on known-bad inputs ----------------------------------------------------------------
def _ok_trace():
    model, sw = _two_tasks()
    return _export(model, sw)[1]


def _meta(pid, tid, name="t"):
    return {"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "ts": 0, "args": {"name": name}}


def test_validator_flags_an_unclosed_begin():
    obj = {"traceEvents": [_meta(1, 1), {"ph": "B", "name": "x", "pid": 1, "tid": 1, "ts": 1.0},
                           {"ph": "B", "name": "y", "pid": 1, "tid": 1, "ts": 2.0},
                           {"ph": "E", "pid": 1, "tid": 1, "ts": 3.0}]}
    probs = validate_trace_events(obj)
    assert any("never closed" in p for p in probs)
    obj["traceEvents"].append({"ph": "E", "pid": 1, "tid": 1, "ts": 4.0})
    assert validate_trace_events(obj) == []
    obj["traceEvents"].append({"ph": "E", "pid": 1, "tid": 1, "ts": 5.0})
    assert any("without an open B" in p for p in validate_trace_events(obj))


def test_validator_flags_unpaired_and_backward_flows():
    obj = _ok_trace()
    ev = obj["traceEvents"]
    f = next(e for e in ev if e["ph"] == "f")
    ev.remove(f)
    assert any("1 start(s) and 0 end(s)" in p for p in validate_trace_events(obj))
    ev.append(dict(f))
    ev.append(dict(f))
    assert any("1 start(s) and 2 end(s)" in p for p in validate_trace_events(obj))
    ev.pop()
    s = next(e for e in ev if e["ph"] == "s")
    s["ts"] = f["ts"] + 0.0005
    assert any("before it starts" in p for p in validate_trace_events(obj))


def test_validator_flags_flows_outside_slices():
    obj = _ok_trace()
    s = next(e for e in obj["traceEvents"] if e["ph"] == "s")
    s["ts"] = 6.5  # after the end of every slice of A
    assert any("inside no slice" in p for p in validate_trace_events(obj))


def test_validator_flags_nanoseconds_instead_of_microseconds():
    obj = _ok_trace()
    for e in obj["traceEvents"]:
        if e["ph"] != "M":
            e["ts"] *= 1000
            if "dur" in e:
                e["dur"] *= 1000
    probs = validate_trace_events(obj)
    assert any("not in µs" in p for p in probs), probs
    assert validate_trace_events(obj, capture_duration_us=6000.0) == []


def test_validator_flags_overlaps_negative_durations_missing_fields_and_names():
    base = [_meta(1, 1)]
    obj = {"traceEvents": base + [{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 0.0, "dur": 2.0},
                                  {"ph": "X", "name": "b", "pid": 1, "tid": 1, "ts": 1.0, "dur": 2.0}]}
    assert any("overlaps" in p for p in validate_trace_events(obj))
    obj = {"traceEvents": base + [{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 0.0, "dur": 3.0},
                                  {"ph": "X", "name": "b", "pid": 1, "tid": 1, "ts": 1.0, "dur": 2.0},
                                  {"ph": "X", "name": "c", "pid": 1, "tid": 1, "ts": 3.0, "dur": 1.0}]}
    assert validate_trace_events(obj) == []  # nested, then adjacent
    obj = {"traceEvents": base + [{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 0.0, "dur": -1}]}
    assert any("dur" in p for p in validate_trace_events(obj))
    obj = {"traceEvents": base + [{"ph": "X", "name": "a", "pid": 1, "ts": 0.0, "dur": 1}]}
    assert any("lacks tid" in p for p in validate_trace_events(obj))
    obj = {"traceEvents": base + [{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": "0", "dur": 1}]}
    assert any("not a number" in p for p in validate_trace_events(obj))
    obj = {"traceEvents": [{"ph": "X", "name": "a", "pid": 1, "tid": 2, "ts": 0.0, "dur": 1}]}
    assert any("no thread_name" in p for p in validate_trace_events(obj))
    assert validate_trace_events({"events": []}) != []
