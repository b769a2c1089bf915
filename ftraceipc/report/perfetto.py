"""A capture as a Chrome/Perfetto trace-event JSON file (opens in ui.perfetto.dev and chrome://tracing).

``write_perfetto(capture, out)`` writes one JSON object::

    {"traceEvents": [...], "displayTimeUnit": "ns", "metadata": {...}}

Layout:

- **Units and origin.** ``ts`` and ``dur`` are microseconds (numbers with three decimals: exact
  nanoseconds), relative to the capture's start: ``metadata.ts_origin_ns`` is the trace-clock
  timestamp (ns) of ``ts`` 0 (``meta.json`` ``start_ts``, or the first event if earlier).
  ``metadata.capture_duration_us`` is the capture's length. ``metadata.warnings`` lists what the
  capture is missing (``ftraceipc.problems``: events lost, pages damaged, ...; [] when nothing).
- **Tracks.** One process per tgid (``process_name`` = the comm of its main thread) and one thread
  track per task (``thread_name`` = its comm), ``pid`` = tgid, ``tid`` = tid. A task whose tgid is
  unknown is its own process. One more process, ``ftraceipc capture`` (pid/tid ``CAPTURE_PID``, above
  any real pid), holds one slice ``capture`` spanning the whole capture.
- **Slices** (complete events ``ph: "X"``; category ``running``, ``runnable`` or ``blocked``),
  sequential on each thread, never overlapping (each ends where the task's next state begins):

  - ``running`` (args ``cpu``): from a switch-in (or, when the kernel traced none, from the task's
    first own event after its sleep, or the CPU's previous switch) to the switch-out;
  - ``runnable``: from the wakeup (``sched_waking``) that ended a sleep to the run (args ``waker``,
    ``via``, ``wake_to_run_ns``); ``runnable (preempted)``: switched out in state R until it runs again;
  - ``blocked: RID (OP)`` for each sleep of the model's episodes on a resource (``blocked: pipe:123
    (read)``), ``blocked (OP)`` in a syscall on no known resource, ``sleep`` outside any traced
    syscall; from the switch-out to the wakeup (args ``rid``, ``op``, ``fd``, ``state``,
    ``woken_by``, ``episode_dur_ns``: the model's whole sleep, runnable part included). There is
    exactly one such slice per model episode of the exported tasks (it may last 0 µs when the wakeup
    came at the switch-out itself).

- **Flows** (``ph: "s"``/``"f"``, category ``wakeup``, name ``wakeup via RID``, one ``id`` each):
  one per wakeup through a resource (``model.wakeups`` rows with ``via``) of an exported task. The
  start is on the waker's track at the wakeup's time, inside the waker's slice there; the end
  (``bp: "e"``) is inside the wakee's running slice that began when it ran (wakeup time +
  ``wake_to_run_ns``). A point that would fall on a slice boundary is moved 1 ns inside the slice
  (viewers bind a flow to the slice open at that time). A wakeup whose waker has no slice at that
  time, or whose wakee never ran, or whose slices are shorter than 2 ns, has no flow: counted in
  ``flows_dropped``.

Tasks: by default the traced command's process tree (``model.summary.command_tree``; every task
but ftraceipc's own when the capture has no command), plus the tasks that woke them through a
resource. ``pids``: these processes instead; ``all_tasks=True``: every task.

Memory: the model's episode and wakeup tables and the ``sched_switch`` events of the exported tasks
are held as numpy arrays (a few dozen bytes per switch); the JSON is written in chunks.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

CAPTURE_PID = 4194304  # PID_MAX_LIMIT on 64-bit: no real task has it
CHUNK = 50_000

# point kinds (the order at equal timestamps of one task is the kind's value)
P_RUN, P_IN, P_OUT, P_WAKE, P_GUESS = 0, 1, 2, 3, 4
# states
S_RUNNING, S_BLOCKED, S_WAKE, S_PREEMPT, S_DEAD = 0, 1, 2, 3, 4


def _us(ns: int) -> str:
    """Nanoseconds as microseconds with three decimals, exactly."""
    if ns < 0:
        return "-" + _us(-ns)
    return f"{ns // 1000}.{ns % 1000:03d}"


def _i(v, default: int = -1) -> int:
    try:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return default
        return int(v)
    except (TypeError, ValueError):
        return default


def _s(v) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


# --- tasks -----------------------------------------------------------------------------------------
def _select_tids(model, pids: set[int] | None, all_tasks: bool) -> tuple[set[int], str]:
    from ftraceipc.model.export import is_tracer
    from ftraceipc.model.summary import command_tree

    t = model.tasks
    if not len(t):
        return set(), "no tasks"
    tids = t["tid"].to_numpy(np.int64)
    tg = pd.to_numeric(t["pid"], errors="coerce").fillna(-1).to_numpy(np.int64)
    tracer = is_tracer(model).to_numpy(bool)
    if all_tasks:
        return {int(x) for x in tids if x > 0}, "all tasks"
    if pids is None:
        pids = command_tree(model)
        if pids is None:
            return {int(x) for x, tr in zip(tids, tracer) if x > 0 and not tr}, "all tasks but ftraceipc's (no command)"
        scope = "the traced command's process tree"
    else:
        scope = f"processes {sorted(pids)}"
    want = np.isin(tg, np.fromiter(pids, np.int64, len(pids))) | np.isin(tids, np.fromiter(pids, np.int64, len(pids)))
    return {int(x) for x in tids[want] if x > 0}, scope


# --- sched_switch ----------------------------------------------------------------------------------
SWITCH_KEYS = ["out_tid", "out_ts", "out_cpu", "out_state", "out_prev_ts", "out_traced_in", "in_tid", "in_ts",
               "in_cpu"]


class _SwitchFold:
    """Switch-outs and switch-ins of the exported tids, fed in time order (batch by batch). Each
    switch-out carries the CPU's previous switch (``out_prev_ts``, the capture's start for a CPU's
    first) and whether that switch put this task in (``out_traced_in``)."""

    def __init__(self, tids: np.ndarray, origin: int):
        self.tids = tids
        self.origin = origin
        self.last_ts: dict[int, int] = {}
        self.last_next: dict[int, int] = {}
        self.parts: list[dict[str, np.ndarray]] = []

    def feed(self, ts, cpu, prev, nxt, pst) -> None:
        ts, cpu, prev, nxt, pst = (np.asarray(a).astype(np.int64) for a in (ts, cpu, prev, nxt, pst))
        if not len(ts):
            return
        o = np.lexsort((np.arange(len(ts)), cpu))
        cs, tss, nxs = cpu[o], ts[o], nxt[o]
        pts = np.empty(len(ts), np.int64)
        pnx = np.empty(len(ts), np.int64)
        pts[1:], pnx[1:] = tss[:-1], nxs[:-1]
        for j in np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]]).tolist():
            c = int(cs[j])
            pts[j] = self.last_ts.get(c, self.origin)
            pnx[j] = self.last_next.get(c, -1)
        for j in np.flatnonzero(np.r_[cs[1:] != cs[:-1], True]).tolist():
            self.last_ts[int(cs[j])] = int(tss[j])
            self.last_next[int(cs[j])] = int(nxs[j])
        cpu_prev_ts = np.empty(len(ts), np.int64)
        prev_next = np.empty(len(ts), np.int64)
        cpu_prev_ts[o], prev_next[o] = pts, pnx
        mo = np.isin(prev, self.tids)
        mi = np.isin(nxt, self.tids)
        self.parts.append({"out_tid": prev[mo], "out_ts": ts[mo], "out_cpu": cpu[mo], "out_state": pst[mo],
                           "out_prev_ts": cpu_prev_ts[mo], "out_traced_in": prev_next[mo] == prev[mo],
                           "in_tid": nxt[mi], "in_ts": ts[mi], "in_cpu": cpu[mi]})

    def result(self) -> dict[str, np.ndarray]:
        if not self.parts:
            return {k: np.zeros(0, bool if k == "out_traced_in" else np.int64) for k in SWITCH_KEYS}
        return {k: np.concatenate([p[k] for p in self.parts]) for k in SWITCH_KEYS}


def _switches(capture: Path, tids: np.ndarray, origin: int, frame: pd.DataFrame | None = None):
    """The exported tids' switches (``_SwitchFold``) and the SwitchStates: decoded from the capture's
    ``sched_switch`` events, or from ``frame`` (columns ts, cpu, prev_pid, next_pid, prev_state, in
    time order; the default prev_state encoding)."""
    from ftraceipc.model.sched import SwitchStates

    fold = _SwitchFold(tids, origin)
    if frame is not None:
        fold.feed(frame["ts"], frame["cpu"], frame["prev_pid"], frame["next_pid"], frame["prev_state"])
        return fold.result(), SwitchStates()
    from ftraceipc.decode import Decoder

    states = None
    try:
        for batch in Decoder(capture).batches(["sched_switch"]):
            sw = batch.events.get("sched_switch")
            if sw is None or not len(sw):
                continue
            if states is None:
                states = SwitchStates(sw.format.print_fmt)
            fold.feed(sw.ts, sw.cpu, sw.columns["prev_pid"], sw.columns["next_pid"], sw.columns["prev_state"])
    except KeyError:  # no sched_switch format in the capture
        pass
    return fold.result(), states or SwitchStates()


# --- the per-task timeline -------------------------------------------------------------------------
def _timeline(sw: dict[str, np.ndarray], states, ep: pd.DataFrame, wu: pd.DataFrame, end_ts: int,
              last_event_ts: int) -> pd.DataFrame:
    """Slices (tid, start, end, state, cpu, src, ref): sequential per tid. ``src``/``ref`` say which
    table a slice's details come from: the episode row (blocked) or wakeup row (runnable)."""
    st = sw["out_state"]
    sleeping = states.sleeping(st)
    dead = ((st & states.dead_mask) != 0) & ~sleeping
    out_state = np.where(sleeping, S_BLOCKED, np.where(dead, S_DEAD,
                         np.where((st & ~states.preempt) == 0, S_PREEMPT, S_BLOCKED)))
    n_out, n_in = len(st), len(sw["in_tid"])
    # episodes: their end is a run (unless the sleep was still open at the end of the capture)
    e_tid = ep["tid"].to_numpy(np.int64)
    e_start = ep["start_ts"].to_numpy(np.int64)
    e_end = e_start + ep["dur_ns"].to_numpy(np.int64)
    e_wb = ep["woken_by"].to_numpy(np.int64)
    e_ok = ~((e_wb < 0) & (e_end >= last_event_ts))
    w_wakee = wu["wakee"].to_numpy(np.int64)
    w_ts = wu["ts"].to_numpy(np.int64)

    tid = np.concatenate([sw["out_tid"], sw["in_tid"], e_tid[e_ok], w_wakee])
    ts = np.concatenate([sw["out_ts"], sw["in_ts"], e_end[e_ok], w_ts])
    kind = np.concatenate([np.full(n_out, P_OUT), np.full(n_in, P_IN), np.full(int(e_ok.sum()), P_RUN),
                           np.full(len(w_ts), P_WAKE)]).astype(np.int8)
    state = np.concatenate([out_state, np.full(n_in, S_RUNNING), np.full(int(e_ok.sum()), S_RUNNING),
                            np.full(len(w_ts), S_WAKE)]).astype(np.int8)
    cpu = np.concatenate([sw["out_cpu"], sw["in_cpu"], np.full(int(e_ok.sum()) + len(w_ts), -1)])
    ref = np.concatenate([np.arange(n_out), np.full(n_in + int(e_ok.sum()), -1), np.arange(len(w_ts))])
    o = np.lexsort((kind, ts, tid))
    tid, ts, kind, state, cpu, ref = tid[o], ts[o], kind[o], state[o], cpu[o], ref[o]

    # running start of switch-outs whose switch-in the kernel did not trace: the later of the CPU's
    # previous switch and the task's previous point (it did not run before either)
    outs = np.flatnonzero(kind == P_OUT)
    need = outs[~sw["out_traced_in"][ref[outs]]]
    if len(need):
        has_prev = (need > 0) & (tid[np.maximum(need - 1, 0)] == tid[need])
        gts = sw["out_prev_ts"][ref[need]]
        gts = np.where(has_prev, np.maximum(gts, ts[np.maximum(need - 1, 0)]), gts)
        keep = gts < ts[need]
        need, gts = need[keep], gts[keep]
        k = len(need)
        tid = np.concatenate([tid, tid[need]])
        ts = np.concatenate([ts, gts])
        kind = np.concatenate([kind, np.full(k, P_GUESS, np.int8)])
        state = np.concatenate([state, np.full(k, S_RUNNING, np.int8)])
        cpu = np.concatenate([cpu, cpu[need]])
        ref = np.concatenate([ref, np.full(k, -1)])
        o = np.lexsort((kind, ts, tid))
        tid, ts, kind, state, cpu, ref = tid[o], ts[o], kind[o], state[o], cpu[o], ref[o]

    # a wakeup counts only while the task is blocked (or its state is not known yet)
    n = len(tid)
    idx = np.arange(n)
    nonwake = kind != P_WAKE
    lastnw = np.maximum.accumulate(np.where(nonwake, idx, -1)) if n else idx
    prev_state = np.where((lastnw >= 0) & (tid[np.maximum(lastnw, 0)] == tid), state[np.maximum(lastnw, 0)], -1)
    eff = nonwake | (prev_state == S_BLOCKED) | (prev_state == -1)
    tid, ts, kind, state, cpu, ref = tid[eff], ts[eff], kind[eff], state[eff], cpu[eff], ref[eff]
    # one point per state change (every switch-out into a sleep starts its own slice)
    n = len(tid)
    newtid = np.r_[True, tid[1:] != tid[:-1]] if n else np.zeros(0, bool)
    change = newtid | np.r_[True, state[1:] != state[:-1]] | (state == S_BLOCKED) if n else newtid
    first = np.flatnonzero(change)
    tid, ts, kind, state, cpu, ref = tid[first], ts[first], kind[first], state[first], cpu[first], ref[first]
    n = len(tid)
    # each state lasts until the task's next one (the last until the end of the capture)
    same_next = np.r_[tid[1:] == tid[:-1], False] if n else np.zeros(0, bool)
    nxt = np.minimum(np.arange(n) + 1, max(n - 1, 0))
    end = np.where(same_next, ts[nxt] if n else ts, np.maximum(end_ts, ts))
    # a running slice ran on the CPU of the switch-out that ended it
    end_cpu = np.where(same_next & (kind[nxt] == P_OUT), cpu[nxt] if n else cpu, -1)
    cpu = np.where((state == S_RUNNING) & (end_cpu >= 0), end_cpu, cpu)
    keep = (state != S_DEAD) & ((end > ts) | (state == S_BLOCKED))
    return pd.DataFrame({"tid": tid[keep], "start": ts[keep], "end": end[keep], "state": state[keep],
                         "cpu": cpu[keep], "ref": ref[keep], "kind": kind[keep]})


def _inside(t: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``t`` moved strictly inside [start, end] (1 ns from the edges); ok where the slice has room."""
    ok = end - start >= 2
    return np.minimum(np.maximum(t, start + 1), end - 1), ok


def _find(sl: pd.DataFrame, tid: np.ndarray, t: np.ndarray, forward_ok: bool) -> np.ndarray:
    """Index into ``sl`` (sorted by tid, start) of the slice of ``tid`` containing ``t`` (start <= t <
    end), or with ``forward_ok`` else the next one after it; -1 when none."""
    if not len(sl) or not len(t):
        return np.full(len(t), -1, np.int64)
    s_tid = sl["tid"].to_numpy(np.int64)
    s_start = sl["start"].to_numpy(np.int64)
    s_end = sl["end"].to_numpy(np.int64)
    out = np.full(len(t), -1, np.int64)
    # per tid: slices are sorted and disjoint
    bounds = np.flatnonzero(np.r_[True, s_tid[1:] != s_tid[:-1], True])
    lo_of = dict(zip(s_tid[bounds[:-1]].tolist(), bounds[:-1].tolist()))
    hi_of = dict(zip(s_tid[bounds[:-1]].tolist(), bounds[1:].tolist()))
    lo = np.array([lo_of.get(x, 0) for x in tid.tolist()], np.int64)
    hi = np.array([hi_of.get(x, 0) for x in tid.tolist()], np.int64)
    for i in range(len(t)):  # vectorized per tid below would need a 2-key search; rows are few
        a, b = lo[i], hi[i]
        if a >= b:
            continue
        j = a + int(np.searchsorted(s_start[a:b], t[i], side="right")) - 1
        if j >= a and s_end[j] > t[i]:
            out[i] = j
        elif forward_ok and j + 1 < b:
            out[i] = j + 1
    return out


def _find_vec(sl: pd.DataFrame, tid: np.ndarray, t: np.ndarray, forward_ok: bool) -> np.ndarray:
    """Vectorized ``_find``: one searchsorted on a (tid rank, time) key."""
    if not len(sl) or not len(t):
        return np.full(len(t), -1, np.int64)
    s_tid = sl["tid"].to_numpy(np.int64)
    s_start = sl["start"].to_numpy(np.int64)
    s_end = sl["end"].to_numpy(np.int64)
    base = min(int(s_start.min()), int(t.min()))
    span = max(int(s_end.max()), int(t.max())) - base + 2
    if span >= (1 << 40):
        return _find(sl, tid, t, forward_ok)
    u = np.unique(s_tid)
    rank_s = np.searchsorted(u, s_tid)
    r = np.searchsorted(u, tid)
    known = (r < len(u)) & (u[np.minimum(r, len(u) - 1)] == tid)
    key_s = (rank_s.astype(np.int64) << 40) | (s_start - base)
    key_t = (r.astype(np.int64) << 40) | (t - base)
    j = np.searchsorted(key_s, key_t, side="right") - 1
    jc = np.maximum(j, 0)
    hit = known & (j >= 0) & (s_tid[jc] == tid) & (s_end[jc] > t)
    out = np.where(hit, jc, -1)
    if forward_ok:
        j2 = j + 1
        j2c = np.minimum(j2, len(s_tid) - 1)
        fwd = known & ~hit & (j2 < len(s_tid)) & (s_tid[j2c] == tid)
        out = np.where(fwd, j2c, out)
    return out


# --- writing ---------------------------------------------------------------------------------------
def _json_names(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    codes, uniq = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
    return codes, [json.dumps(x) for x in uniq.tolist()]


def write_perfetto(capture_path, out: TextIO | str | os.PathLike, *, model=None, pids: set[int] | None = None,
                   all_tasks: bool = False, switches: pd.DataFrame | None = None,
                   warnings: list[dict] | None = None) -> dict[str, Any]:
    """Write the capture as trace-event JSON (module doc) to ``out`` (a text stream or a path,
    written beside and renamed). ``model``: an ``ipc.Model`` built with ``episodes=True`` (built here
    when None or without episodes). ``pids``: export these processes (default: the traced command's
    process tree, see the module doc); ``all_tasks``: every task. Returns counts: ``tracks``
    (thread tracks), ``slices`` (task slices: ``running``, ``runnable``, ``blocked`` by kind too),
    ``flows`` (paired s/f), ``flows_dropped``, ``events`` (trace events written), ``scope``.
    ``switches``: the sched_switch rows to use instead of decoding the capture's (tests; columns ts,
    cpu, prev_pid, next_pid, prev_state, in time order)."""
    capture = Path(capture_path)
    if isinstance(out, (str, os.PathLike)):
        target = Path(out)
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        try:
            with open(tmp, "w") as f:
                res = write_perfetto(capture, f, model=model, pids=pids, all_tasks=all_tasks, switches=switches,
                                     warnings=warnings)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
        return res

    tmpdir = None
    if model is None or model.episodes is None or model.wakeups is None:
        from ftraceipc.model.build import build_model
        tmpdir = tempfile.TemporaryDirectory(prefix="ftraceipc-perfetto-")
        model = build_model(capture, episodes=True, episodes_dir=Path(tmpdir.name))
    try:
        if warnings is None:
            from ftraceipc.problems import model_problems

            warnings = [w.to_json() for w in model_problems(model)]
        return _write(capture, out, model, pids, all_tasks, switches, warnings)
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()


def _frame(df: pd.DataFrame | None, cols: list[str]) -> pd.DataFrame:
    if df is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    return df


def _write(capture: Path, out: TextIO, model, pids, all_tasks, switches, warnings: list[dict]) -> dict[str, Any]:
    from ftraceipc.model import ipc

    meta = model.meta or {}
    tids_sel, scope = _select_tids(model, pids, all_tasks)
    ep = _frame(model.episodes, ipc.EPISODE_COLUMNS)
    wu = _frame(model.wakeups, ipc.WAKEUP_COLUMNS)
    # wakers through a resource of the selected tasks get tracks too
    if len(wu):
        wk = wu["wakee"].to_numpy(np.int64)
        via_ok = wu["via"].notna().to_numpy()
        wakers = wu["waker"].to_numpy(np.int64)[via_ok & np.isin(wk, np.fromiter(tids_sel, np.int64, len(tids_sel)))]
        tids_sel |= {int(x) for x in np.unique(wakers) if x > 0}
    tids = np.array(sorted(tids_sel), np.int64)
    ep = ep[ep["tid"].astype(np.int64).isin(tids)].reset_index(drop=True) if len(ep) else ep
    wu_sel = wu[wu["wakee"].astype(np.int64).isin(tids)].reset_index(drop=True) if len(wu) else wu

    t = model.tasks
    last_event_ts = int(pd.to_numeric(t["last_ts"], errors="coerce").max()) if len(t) else 0
    first_event_ts = int(pd.to_numeric(t["first_ts"], errors="coerce").replace(-1, np.nan).min()) if len(t) else 0
    start = _i(meta.get("start_ts"), first_event_ts)
    stop = _i(meta.get("stop_ts"), last_event_ts)
    # ts 0: the capture's start (no event is earlier; checked, as the tables may be hand-made)
    cand = [start, first_event_ts] + ([int(ep["start_ts"].min())] if len(ep) else []) + \
        ([int(wu_sel["ts"].min())] if len(wu_sel) else [])
    origin = min((c for c in cand if c > 0), default=0)
    sw, states = _switches(capture, tids, origin, switches)
    if len(sw["out_ts"]) or len(sw["in_ts"]):
        origin = min(origin, int(np.concatenate([sw["out_ts"], sw["in_ts"]]).min()))
    end_ts = max(stop, last_event_ts, int(sw["out_ts"].max()) if len(sw["out_ts"]) else 0,
                 int(sw["in_ts"].max()) if len(sw["in_ts"]) else 0, origin)

    sl = _timeline(sw, states, ep, wu_sel, end_ts, last_event_ts)
    sl = sl.sort_values(["tid", "start", "kind"], kind="stable").reset_index(drop=True)

    # --- names and args of the slices -----------------------------------------------------------
    n = len(sl)
    state = sl["state"].to_numpy()
    ref = sl["ref"].to_numpy(np.int64)
    names = np.empty(n, dtype=object)
    args = np.empty(n, dtype=object)
    cpu = sl["cpu"].to_numpy(np.int64)
    run = state == S_RUNNING
    names[run] = "running"
    args[run] = [f'{{"cpu":{c}}}' if c >= 0 else "{}" for c in cpu[run].tolist()]
    pre = state == S_PREEMPT
    names[pre] = "runnable (preempted)"
    args[pre] = "{}"
    wk_m = state == S_WAKE
    if wk_m.any():
        r = ref[wk_m]
        names[wk_m] = "runnable"
        args[wk_m] = [json.dumps({"waker": _i(a), "via": _s(v), "wake_to_run_ns": _i(w)})
                      for a, v, w in zip(wu_sel["waker"].to_numpy()[r].tolist(), wu_sel["via"].to_numpy()[r].tolist(),
                                         wu_sel["wake_to_run_ns"].to_numpy()[r].tolist())]
    bl = state == S_BLOCKED
    n_blocked = int(bl.sum())
    if bl.any():
        # the blocked slice's episode: same task, start at the switch-out
        bi = np.flatnonzero(bl)
        key = pd.MultiIndex.from_arrays([sl["tid"].to_numpy(np.int64)[bi], sl["start"].to_numpy(np.int64)[bi]])
        if len(ep):
            eidx = pd.MultiIndex.from_arrays([ep["tid"].to_numpy(np.int64), ep["start_ts"].to_numpy(np.int64)])
            j = pd.Index(eidx).get_indexer(key) if eidx.is_unique else \
                pd.Series(np.arange(len(ep))).groupby(eidx).first().reindex(key).fillna(-1).to_numpy(np.int64)
        else:
            j = np.full(len(bi), -1, np.int64)
        cols = {c: ep[c].to_numpy(dtype=object) if len(ep) else np.zeros(0, object)
                for c in ("rid", "op", "fd", "state", "woken_by", "dur_ns")}
        bn, ba = [], []
        for jj in j.tolist():
            if jj < 0:
                bn.append("sleep")
                ba.append("{}")
                continue
            rid, op = _s(cols["rid"][jj]), _s(cols["op"][jj])
            if rid is not None:
                bn.append(f"blocked: {rid} ({op})" if op else f"blocked: {rid}")
            elif op is not None:
                bn.append(f"blocked ({op})")
            else:
                bn.append("sleep")
            ba.append(json.dumps({"rid": rid, "op": op, "fd": _i(cols["fd"][jj]), "state": _s(cols["state"][jj]),
                                  "woken_by": _i(cols["woken_by"][jj]), "episode_dur_ns": _i(cols["dur_ns"][jj])}))
        names[bi] = bn
        args[bi] = ba

    # --- flows ----------------------------------------------------------------------------------
    flows_s: list[tuple[int, int, int, str]] = []  # (tid, ts, id, name json)
    flows_f: list[tuple[int, int, int, str]] = []
    dropped = 0
    if len(wu_sel):
        fv = wu_sel[wu_sel["via"].notna()]
        if len(fv):
            w_ts = fv["ts"].to_numpy(np.int64)
            waker = fv["waker"].to_numpy(np.int64)
            wakee = fv["wakee"].to_numpy(np.int64)
            w2r = fv["wake_to_run_ns"].to_numpy(np.int64)
            via = fv["via"].to_numpy(dtype=object)
            si = _find_vec(sl, waker, w_ts, False)
            runs = sl[sl["state"] == S_RUNNING]
            run_pos = np.flatnonzero(sl["state"].to_numpy() == S_RUNNING)
            fi_r = _find_vec(runs.reset_index(drop=True), wakee, w_ts + np.maximum(w2r, 0), True)
            fi = np.where(fi_r >= 0, run_pos[np.maximum(fi_r, 0)] if len(run_pos) else -1, -1)
            s_start = sl["start"].to_numpy(np.int64)
            s_end = sl["end"].to_numpy(np.int64)
            sc, fc = np.maximum(si, 0), np.maximum(fi, 0)
            s_ts, ok_s = _inside(w_ts, s_start[sc], s_end[sc]) if n else (w_ts, np.zeros(len(w_ts), bool))
            f_ts, ok_f = _inside(np.maximum(w_ts + np.maximum(w2r, 0), s_ts), s_start[fc], s_end[fc]) if n else \
                (w_ts, np.zeros(len(w_ts), bool))
            ok = (si >= 0) & (fi >= 0) & ok_s & ok_f & (w2r >= 0) & (waker > 0) & (f_ts >= s_ts)
            dropped = int((~ok).sum())
            for k, (a, b, ta, tb, v) in enumerate(zip(waker[ok].tolist(), wakee[ok].tolist(), s_ts[ok].tolist(),
                                                      f_ts[ok].tolist(), via[ok].tolist())):
                nm = json.dumps(f"wakeup via {v}")
                flows_s.append((a, ta, k + 1, nm))
                flows_f.append((b, tb, k + 1, nm))

    # --- tracks ---------------------------------------------------------------------------------
    used = set(sl["tid"].tolist()) | {x[0] for x in flows_s} | {x[0] for x in flows_f}
    tt = t[t["tid"].astype(np.int64).isin(list(used | tids_sel))] if len(t) else t
    pid_of: dict[int, int] = {}
    comm_of: dict[int, str] = {}
    for tid_, p, c in zip(tt["tid"].tolist(), tt["pid"].tolist(), tt["comm"].tolist()):
        p = _i(p)
        pid_of[int(tid_)] = p if p > 0 else int(tid_)
        comm_of[int(tid_)] = _s(c) or f"tid {tid_}"
    for x in used:
        pid_of.setdefault(int(x), int(x))
        comm_of.setdefault(int(x), f"tid {x}")
    proc_name: dict[int, str] = {}
    for x, p in sorted(pid_of.items()):
        if x == p or p not in proc_name:
            proc_name[p] = comm_of[x] if x == p else proc_name.get(p, comm_of[x])

    # --- the file -------------------------------------------------------------------------------
    meta_obj = {"generator": "ftraceipc", "capture": str(capture), "capture_id": model.capture_id,
                "ts_unit": "us", "ts_origin_ns": origin, "capture_duration_us": (end_ts - origin) / 1000.0,
                "scope": scope, "command": meta.get("command"), "clock": meta.get("clock"), "warnings": warnings}
    out.write('{"traceEvents":[\n')
    lines: list[str] = []
    n_events = 0

    def emit(s: str) -> None:
        nonlocal n_events
        lines.append(s)
        n_events += 1
        if len(lines) >= CHUNK:
            flush()

    first = [True]

    def flush() -> None:
        if not lines:
            return
        out.write(("" if first[0] else ",\n") + ",\n".join(lines))
        first[0] = False
        lines.clear()

    emit(f'{{"ph":"M","name":"process_name","pid":{CAPTURE_PID},"tid":{CAPTURE_PID},"ts":0,'
         f'"args":{{"name":"ftraceipc capture"}}}}')
    emit(f'{{"ph":"M","name":"process_sort_index","pid":{CAPTURE_PID},"tid":{CAPTURE_PID},"ts":0,'
         f'"args":{{"sort_index":-1}}}}')
    emit(f'{{"ph":"M","name":"thread_name","pid":{CAPTURE_PID},"tid":{CAPTURE_PID},"ts":0,'
         f'"args":{{"name":"capture"}}}}')
    for p, nm in sorted(proc_name.items()):
        emit(f'{{"ph":"M","name":"process_name","pid":{p},"tid":{p},"ts":0,"args":{{"name":{json.dumps(nm)}}}}}')
    for x in sorted(pid_of):
        emit(f'{{"ph":"M","name":"thread_name","pid":{pid_of[x]},"tid":{x},"ts":0,'
             f'"args":{{"name":{json.dumps(comm_of[x])}}}}}')
    lost = meta.get("lost") or {}
    n_lost = sum(sum(v.values()) for v in lost.values() if isinstance(v, dict))
    emit(f'{{"ph":"X","cat":"capture","name":"capture","pid":{CAPTURE_PID},"tid":{CAPTURE_PID},"ts":0,'
         f'"dur":{_us(end_ts - origin)},"args":{json.dumps({"lost": n_lost, "command": meta.get("command")})}}}')

    codes, jnames = _json_names(names)
    cats = np.where(state == S_BLOCKED, "blocked", np.where(state == S_RUNNING, "running", "runnable"))
    for tid_, st_, en_, c, cat, a in zip(sl["tid"].tolist(), sl["start"].tolist(), sl["end"].tolist(),
                                          codes.tolist(), cats.tolist(), args.tolist()):
        emit(f'{{"ph":"X","cat":"{cat}","name":{jnames[c]},"pid":{pid_of[tid_]},"tid":{tid_},'
             f'"ts":{_us(st_ - origin)},"dur":{_us(en_ - st_)},"args":{a}}}')
    for (a, ta, k, nm), (b, tb, _k, _nm) in zip(flows_s, flows_f):
        emit(f'{{"ph":"s","cat":"wakeup","name":{nm},"id":{k},"pid":{pid_of[a]},"tid":{a},"ts":{_us(ta - origin)}}}')
        emit(f'{{"ph":"f","bp":"e","cat":"wakeup","name":{nm},"id":{k},"pid":{pid_of[b]},"tid":{b},'
             f'"ts":{_us(tb - origin)}}}')
    flush()
    out.write('\n],"displayTimeUnit":"ns","metadata":' + json.dumps(meta_obj) + "}\n")
    return {"tracks": len(pid_of), "slices": n, "running": int(run.sum()),
            "runnable": int(pre.sum() + wk_m.sum()), "blocked": n_blocked, "flows": len(flows_s),
            "flows_dropped": dropped, "events": n_events, "scope": scope}


# --- validation ------------------------------------------------------------------------------------
def _ns(v) -> int:
    return int(round(float(v) * 1000))


def validate_trace_events(obj: Any, *, capture_duration_us: float | None = None, max_problems: int = 50) -> list[str]:
    """Problems of a trace-event JSON object (empty: valid). Checks: every event has ``ph``, ``ts``,
    ``pid``, ``tid`` (numbers); ``X`` events have ``dur`` >= 0; ``B``/``E`` pair up per thread;
    complete slices on one thread never overlap unless nested; each flow ``s`` has exactly one ``f``
    with the same (cat, name, id), not before it, and each sits inside a slice of its thread;
    metadata names every thread used; the span of the events matches the capture's duration
    (``capture_duration_us``, default ``metadata.capture_duration_us``) within 1 % (µs, not ns)."""
    probs: list[str] = []

    def bad(msg: str) -> None:
        if len(probs) < max_problems:
            probs.append(msg)

    if isinstance(obj, list):
        events, md = obj, {}
    elif isinstance(obj, dict) and isinstance(obj.get("traceEvents"), list):
        events, md = obj["traceEvents"], obj.get("metadata") or {}
        if obj.get("displayTimeUnit", "ms") not in ("ms", "ns"):
            bad(f"displayTimeUnit {obj.get('displayTimeUnit')!r} is neither ms nor ns")
    else:
        return ["not a trace-event object: no traceEvents list"]
    if capture_duration_us is None:
        capture_duration_us = md.get("capture_duration_us") if isinstance(md, dict) else None

    named: set[tuple[int, int]] = set()
    used: set[tuple[int, int]] = set()
    slices: dict[tuple[int, int], list[tuple[int, int]]] = {}
    stacks: dict[tuple[int, int], list[int]] = {}
    flows: dict[tuple[Any, Any, Any], dict[str, list]] = {}
    lo, hi = None, None
    for i, e in enumerate(events):
        if not isinstance(e, dict):
            bad(f"event {i} is not an object")
            continue
        ph = e.get("ph")
        miss = [k for k in ("ph", "ts", "pid", "tid") if k not in e]
        if miss:
            bad(f"event {i} ({ph}) lacks {', '.join(miss)}")
            continue
        ts = e["ts"]
        if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
            bad(f"event {i} ({ph}): ts {ts!r} is not a number")
            continue
        key = (e["pid"], e["tid"])
        if ph == "M":
            if e.get("name") == "thread_name" and isinstance(e.get("args"), dict) and e["args"].get("name"):
                named.add(key)
            continue
        used.add(key)
        t0 = _ns(ts)
        t1 = t0
        if ph == "X":
            d = e.get("dur")
            if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or d < 0:
                bad(f"event {i} (X {e.get('name')!r}): dur {d!r} is not a number >= 0")
                continue
            t1 = t0 + _ns(d)
            slices.setdefault(key, []).append((t0, t1))
        elif ph == "B":
            stacks.setdefault(key, []).append(t0)
        elif ph == "E":
            stk = stacks.get(key)
            if not stk:
                bad(f"event {i}: E on thread {key} without an open B")
            else:
                b = stk.pop()
                if t0 < b:
                    bad(f"event {i}: E at {ts} before its B")
                slices.setdefault(key, []).append((b, t0))
        elif ph in ("s", "f", "t"):
            fk = (e.get("cat"), e.get("name"), e.get("id"))
            if e.get("id") is None:
                bad(f"event {i}: flow {ph} without an id")
            flows.setdefault(fk, {"s": [], "f": [], "t": []})[ph].append((t0, key, e.get("bp"), i))
        lo = t0 if lo is None or t0 < lo else lo
        hi = t1 if hi is None or t1 > hi else hi
    for key, stk in stacks.items():
        if stk:
            bad(f"thread {key}: {len(stk)} B event(s) never closed by an E")
    # overlaps: sorted by start (longer first), a stack of open ends
    sorted_sl: dict[tuple[int, int], tuple[list[int], list[int]]] = {}
    for key, ss in slices.items():
        ss.sort(key=lambda x: (x[0], -x[1]))
        stack: list[int] = []
        for a, b in ss:
            while stack and stack[-1] <= a:
                stack.pop()
            if stack and b > stack[-1]:
                bad(f"thread {key}: slice [{a / 1000:.3f}, {b / 1000:.3f}] overlaps an enclosing slice ending at "
                    f"{stack[-1] / 1000:.3f} without nesting in it")
            stack.append(b)
        sorted_sl[key] = ([a for a, _ in ss], [b for _, b in ss])

    def inside(key, t_) -> bool:
        s = sorted_sl.get(key)
        if not s:
            return False
        starts, ends = s
        j = bisect.bisect_left(starts, t_) - 1  # slices starting strictly before t_ (enclosing ones nest)
        for jj in range(j, max(j - 256, -1), -1):
            if ends[jj] > t_:
                return True
        return False

    for fk, d in flows.items():
        ss, ff = d["s"], d["f"]
        if len(ss) != 1 or len(ff) != 1:
            bad(f"flow {fk}: {len(ss)} start(s) and {len(ff)} end(s) (want one of each)")
            continue
        (ts_s, ks, _, _), (ts_f, kf, bp, _) = ss[0], ff[0]
        if ts_f < ts_s:
            bad(f"flow {fk}: ends at {ts_f / 1000:.3f} before it starts at {ts_s / 1000:.3f}")
        if not inside(ks, ts_s):
            bad(f"flow {fk}: start at {ts_s / 1000:.3f} is inside no slice of thread {ks}")
        if bp == "e" and not inside(kf, ts_f):
            bad(f"flow {fk}: end (bp e) at {ts_f / 1000:.3f} is inside no slice of thread {kf}")
    for key in sorted(used - named, key=str)[:10]:
        bad(f"thread {key} has events but no thread_name metadata")
    if capture_duration_us and lo is not None:
        span = (hi - lo) / 1000.0
        if abs(span - capture_duration_us) > 0.01 * capture_duration_us:
            bad(f"the events span {span:.3f} µs but the capture lasted {capture_duration_us:.3f} µs: "
                f"timestamps not in µs?")
    return probs
