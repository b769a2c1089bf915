"""Sleeps and wakeups: tasks, BLOCKED_ON episodes and WAKES edges from the scheduler events.

``SchedModel`` is fed batches in time order, each after ``SyscallPairer.pair(batch)`` and with that
call's intervals plus an int64 ``handle`` column (the resource handle of each syscall's fd, -1 =
not attributed). Per batch everything is vectorized: the switch and wakeup events and the state
carried over (one row per task, plus wakeups whose wakee has not run yet) are put on one timeline
sorted by (tid, position), and each event's previous/next switch of the same task is found with
running maxima/minima. State carried between batches is per task, never per event.

**Running.** A task runs from its switch-in (``sched_switch`` next_pid) and at each of its own
events (every event's common_pid is the task current on that CPU). The kernel does not trace every
switch-in (seen on 6.18: an idle CPU resuming a woken task often traces none), so "the task next
ran" is the first of its next switch-in and its next own event (an upper bound when the switch-in
was not traced: ``sleeps_ended_by_own_event``).

**Sleeps.** A task switched out (prev_pid) in state S or D (not preempted: the kernel reports a
preempted task as R with the TASK_REPORT_MAX bit; both read from the format file) sleeps until it
next runs. The sleep belongs to the syscall the task is inside at the switch
(``SyscallPairer.syscall_at``): its op, fd and handle. Sleeps in wait syscalls (poll, select,
epoll_wait...: the fds are not in the trace) take the handle through which they were woken (the
waker's syscall handle). ``woken_by`` is the waker of the last sched_waking that led to that run.
Sleeps outside syscalls or on unattributed fds are kept with rid None (blocked time adds up).

**Wakeups.** Each sched_waking: waker = the event's common_pid, wakee = its ``pid`` field;
wake_to_run_ns = time until the wakee next runs. Two kernel races are handled: a wakeup traced just
before the wakee's own switch-out on another CPU (the wakee was already dequeued, its CPU had not
traced the switch yet: no own event of the wakee in between, and no other wakeup of it before it
runs again) counts until the run after that switch-out; a wakeup of a task that is still running
(it had set itself sleeping but not switched out: ``ttwu_runnable``) has wake_to_run 0.
via = the wakee's syscall handle when it is inside a syscall with a handle (what it waited on),
else the waker's syscall handle, else None. Wakeups from interrupt context (common_flags hardirq,
softirq or NMI) keep waker = common_pid (the interrupted task, or 0 for idle) but have via None.

**After a sleep** (BLOCKED_ON ``read_*``/``write_*``, WAITS_FOR ``consumed``/``turns``). A sleep waited
for data when it was in a read/recv, or in a poll ended by a wakeup whose waker was in a write/send
(the waker's syscall at the wakeup); for room in a write/send, or in a poll a read/recv ended. Until
the sleeper's next sleep (its "window", at most one open per task, carried across batches in its
episode row) the model notes its first read/recv that returned data (the handle: compared with the
slept-on resource and its peer once rids are known) and, at that next sleep, whether the waker had
gone to sleep after the wakeup (the latest sleep start of each task is carried): a turn.

Handles of syscalls still open at the end of a batch are not known yet: rows that need one wait
(per open syscall, bounded by tasks) until the syscall completes.

Episode and wakeup rows (``episodes=True``) are streamed, batch by batch, as DataFrames to
``episode_sink``/``wakeup_sink``: ipc.EPISODE_COLUMNS with ``rid`` None plus an int64 ``handle``
column, and ipc.WAKEUP_COLUMNS with ``via`` None plus an int64 ``via_handle`` column; the caller maps
handles to rids (they are only final after the whole capture). Without sinks the rows are kept and
``finish`` returns them mapped.

With a ``crit`` collector (ftraceipc.model.critical.Collector; ``build_model`` always gives one)
the model also hands over what the critical path needs, as compact arrays: each finished sleep with
the time, interrupt flag and via handle of the wakeup that ended it, each preempted interval
(switched out in state R or R+ until it next ran), and per task its birth, exec, exit and first run.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from ftraceipc.decode.decoder import Batch, EventTable
from ftraceipc.model import ipc
from ftraceipc.model.columns import Groups, asof
from ftraceipc.model.critical import Collector
from ftraceipc.model.fd import READ_SYSCALLS, WRITE_SYSCALLS
from ftraceipc.model.syscalls import POS_BITS, ROW_LOST, ROW_OPEN, SyscallPairer, order_by_tid, tid_pos_key

WAIT_OPS = frozenset({"poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "epoll_pwait2"})
IRQ_FLAGS = 0x08 | 0x10 | 0x40  # common_flags: TRACE_FLAG_HARDIRQ | TRACE_FLAG_SOFTIRQ | TRACE_FLAG_NMI
CLONE_PARENT = 0x00008000
CLONE_THREAD = 0x00010000
USED_EVENTS = ("sched_switch", "sched_waking", "sched_wakeup_new", "sched_process_fork", "sched_process_exec",
               "sched_process_exit", "task_newtask", "task_rename")
NEEDED_EVENTS = ("sched_switch", "sched_waking", "sched_process_exec", "sched_process_exit",
                 "task_newtask", "task_rename")

# timeline rows
T_STATE, T_PEND, T_OUT, T_IN, T_WAKE = 0, 1, 2, 3, 4
STATE_POS, PEND_POS = -3, -2  # carried pseudo-rows: after a carried open syscall (-4), before events
UNRESOLVED = -2  # a handle not known yet (its syscall is still open)
NO_NEXT = np.iinfo(np.int64).max  # position: none after
NO_PREV = -(1 << 62)  # position: none before
KIND_READ, KIND_WRITE = 1, 2  # a sleep waiting for data to read / for room to write

Sink = Callable[[pd.DataFrame], None]


class SwitchStates:
    """The ``prev_state`` encoding of sched_switch, read from its format's print fmt (the
    ``__print_flags`` letters and the ``? "+"`` preemption bit), with the 4.14+ values as default."""

    def __init__(self, print_fmt: str | None = None):
        self.bits = {"S": 0x1, "D": 0x2, "T": 0x4, "t": 0x8, "X": 0x10, "Z": 0x20, "P": 0x40, "I": 0x80}
        self.preempt = 0x100
        if print_fmt:
            found = dict((letter, int(v, 0)) for v, letter in
                         re.findall(r'\{\s*(0x[0-9a-fA-F]+|\d+)\s*,\s*"(\w)"\s*\}', print_fmt))
            if "S" in found and "D" in found:
                self.bits.update(found)
            for expr in re.findall(r'REC->prev_state & (\([^?"]*\)) \? "\+"', print_fmt):
                if re.fullmatch(r"[0-9a-fA-Fx()|+<\- ]+", expr):
                    try:
                        self.preempt = int(eval(expr, {"__builtins__": {}}, {}))  # noqa: S307 (digits only)
                    except Exception:  # noqa: BLE001
                        pass
        self.S = self.bits["S"]
        self.D = self.bits["D"]
        self.sleep_mask = self.S | self.D
        self.dead_mask = self.bits.get("X", 0x10) | self.bits.get("Z", 0x20)

    def sleeping(self, state: np.ndarray) -> np.ndarray:
        return ((state & self.sleep_mask) != 0) & ((state & self.preempt) == 0)


def _cat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = [p for p in parts if p is not None]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _take(t: dict[str, np.ndarray], idx) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in t.items()}


def _n(t: dict[str, np.ndarray]) -> int:
    return len(next(iter(t.values())))


def _first_index(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """For each of ``wanted``: the position of its first occurrence in ``keys``, else -1. Unlike
    ``pd.Index.get_indexer`` it accepts repeated keys (a damaged capture can repeat a tid there)."""
    wanted = np.asarray(wanted)
    if not len(keys):
        return np.full(len(wanted), -1, np.int64)
    order = np.argsort(keys, kind="stable")
    s = np.asarray(keys)[order]
    k = np.minimum(np.searchsorted(s, wanted), len(s) - 1)
    return np.where(s[k] == wanted, order[k], -1).astype(np.int64)


def _empty(cols: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.zeros(0, dtype=d) for k, d in cols.items()}


I64, B = np.int64, bool
STATE_COLS = {"tid": I64, "kind": B, "ts": I64, "cpu": I64, "state": I64, "ep": B, "op": I64, "fd": I64,
              "re": I64, "rh": I64}
PEND_COLS = {"ts": I64, "waker": I64, "wakee": I64, "wcpu": I64, "tcpu": I64, "irq": B, "r1e": I64, "r1h": I64,
             "r1c": I64,
             "r2e": I64, "r2h": I64, "alt_ts": I64, "alt_cpu": I64}
EPW_COLS = {"tid": I64, "start": I64, "dur": I64, "state": I64, "op": I64, "fd": I64, "woken_by": I64,
            "re": I64, "rh": I64, "we": I64, "wh": I64, "wts": I64, "wirq": B, "wc": I64, "aw": I64, "ch": I64,
            "turn": I64}
# After a sleep (episode rows ``aw``/``ch``/``turn``): what the sleeper did until its next sleep. ``aw`` is
# AW_PENDING until that next sleep (or the capture's end) is seen; ``ch`` the handle of its first read/recv
# that returned data in between (CH_NONE: none); ``turn`` 1 when its waker went to sleep in between.
AW_PENDING, AW_DONE = 0, 1
CH_NONE = -9  # a handle is >= -1 (-1: a read on an fd not tied to a resource)
WUW_COLS = {"ts": I64, "waker": I64, "wakee": I64, "w2r": I64, "wcpu": I64, "tcpu": I64, "rcpu": I64,
            "r1e": I64, "r1h": I64, "r2e": I64, "r2h": I64, "irq": B}


def _prev_row(mask: np.ndarray, tid: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """For each row of a (tid, position)-sorted timeline: the last row before it of the same tid
    where ``mask``, else -1."""
    n = len(tid)
    out = np.full(n, -1, np.int64)
    if n > 1:
        ff = np.maximum.accumulate(np.where(mask, idx, -1))
        out[1:] = ff[:-1]
        oc = np.maximum(out, 0)
        out = np.where((out >= 0) & (tid[oc] == tid), out, -1)
    return out


def _next_row(mask: np.ndarray, tid: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The first row after each row of the same tid where ``mask``, else -1."""
    n = len(tid)
    out = np.full(n, -1, np.int64)
    if n > 1:
        bf = np.minimum.accumulate(np.where(mask, idx, n)[::-1])[::-1]
        nxt = np.full(n, n, np.int64)
        nxt[:-1] = bf[1:]
        nc = np.minimum(nxt, n - 1)
        out = np.where((nxt < n) & (tid[nc] == tid), nxt, -1)
    return out


def _objects(df: pd.DataFrame, cols) -> pd.DataFrame:
    """These columns as object dtype with None for missing values (pandas would infer its string
    dtype, with NaN for None)."""
    for c in cols:
        v = df[c].to_numpy(dtype=object, na_value=None) if df[c].dtype != object else df[c].to_numpy()
        df[c] = pd.Series(v, index=df.index, dtype=object)
    return df


def _col(t: EventTable, name: str, default: int = -1) -> np.ndarray:
    c = t.columns.get(name)
    if c is None:
        return np.full(len(t), default, dtype=np.int64)
    return c.astype(np.int64, copy=False)


def mark_top(waits: pd.DataFrame, crit_waits: pd.DataFrame | None = None) -> pd.DataFrame:
    """WAITS_FOR rows with ``top`` set on each waiter's main wait: the row whose sleeps hold the most
    of the critical path (``crit_waits``: CriticalPath.waits, the path's time inside each (waiter, rid)'s
    sleeps), then the most blocked time, more episodes, the lower waker tid. By the path first: a relay
    waits both for its client's next request (while the client works: off the path) and for the
    server's answer (on it), about as long in each; its main wait is the one that holds the command
    up. Sorted by (waiter, waker, via)."""
    df = waits.reset_index(drop=True)
    if not len(df):
        return df
    crit = np.zeros(len(df), np.int64)
    if crit_waits is not None and len(crit_waits):
        c = crit_waits[crit_waits["rid"].notna()].groupby(["waiter", "rid"])["crit_ns"].sum()
        key = pd.MultiIndex.from_arrays([df["waiter"].astype(np.int64), df["via"].astype(object)])
        crit = c.reindex(key).fillna(0).to_numpy(np.int64)
    df = df.assign(_crit=crit).sort_values(["waiter", "_crit", "blocked_ns", "episodes", "waker"],
                                           ascending=[True, False, False, False, True], kind="stable")
    df["top"] = ~df["waiter"].duplicated()
    return df.drop(columns="_crit").sort_values(["waiter", "waker", "via"], kind="stable").reset_index(drop=True)


def wakes_inside(batch: Batch, pairer: SyscallPairer, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For the ``n`` syscalls ``pairer.pair(batch)`` returned: how many wakeups each made (sched_waking
    events of its task inside it, not from an interrupt), and whether its task was switched out inside
    it (it slept or was preempted, so its duration is not all its own work)."""
    wakes = np.zeros(n, np.int64)
    switched = np.zeros(n, bool)

    def rows(tids, pos):
        o = order_by_tid(tids)
        at = pairer.syscall_at(tids[o], pos[o])
        r = at.row[at.inside]
        return r[(r >= 0) & (r < n)]

    wk = batch.events.get("sched_waking")
    if n and wk is not None and len(wk):
        keep = ((wk.flags & IRQ_FLAGS) == 0) & (wk.pid != 0)
        wakes += np.bincount(rows(wk.pid.astype(np.int64)[keep], wk.index.astype(np.int64)[keep]), minlength=n)
    sw = batch.events.get("sched_switch")
    if n and sw is not None and len(sw):
        switched[rows(_col(sw, "prev_pid"), sw.index.astype(np.int64))] = True
    return wakes, switched


def _s(v) -> str:
    if isinstance(v, bytes):
        return v.split(b"\0", 1)[0].decode("utf-8", "replace")
    return str(v)


class SchedModel:
    """Tasks, sleeps and wakeups, fed in time order (see the module doc).

    ``pairer``: the SyscallPairer whose ``pair(batch)`` produced each batch's intervals (without it
    the model pairs syscalls itself and joins handles by (tid, enter_ts)). ``tgid_of``: tid -> tgid
    known from elsewhere (saved_tgids); ``ppid_of``: pid -> ppid (/proc snapshots); ``tracer_tids``
    (default: ``meta["tracer_tids"]``) only fill the ``tracer`` column.
    """

    def __init__(self, pairer: SyscallPairer | None = None, *, meta: dict[str, Any] | None = None,
                 tgid_of: dict[int, int] | None = None, ppid_of: dict[int, int] | None = None,
                 tracer_tids: Iterable[int] | None = None, episodes: bool = False,
                 episode_sink: Sink | None = None, wakeup_sink: Sink | None = None,
                 max_pending_per_task: int = 8, crit: Collector | None = None):
        self.own_pairer = pairer is None
        self.pairer = pairer if pairer is not None else SyscallPairer()
        self.meta = meta or {}
        self.tgid_given = tgid_of if tgid_of is not None else {}
        self.ppid_given = ppid_of if ppid_of is not None else {}
        if tracer_tids is None:
            tracer_tids = self.meta.get("tracer_tids") or []
        self.tracer = {int(t) for t in tracer_tids}
        # processes of ours: their threads too (live mode's analysis processes have some)
        self.tracer_pids = {int(p) for p in self.meta.get("tracer_pids") or []}
        self.episodes = episodes
        self.episode_sink = episode_sink
        self.wakeup_sink = wakeup_sink
        self.max_pending = max(1, int(max_pending_per_task))
        self.crit = crit
        self.states: SwitchStates | None = None
        self._st = _empty(STATE_COLS)
        self._pend = _empty(PEND_COLS)
        self._epw = _empty(EPW_COLS)
        self._wuw = _empty(WUW_COLS)
        self._blocked: dict[tuple[int, int], list] = {}  # (tid, handle) -> [episodes, ns, max, set(op codes)]
        self._wakes: dict[tuple[int, int, int], list] = {}  # (waker, wakee, handle) -> [n, ns, max, cross]
        self._waits: dict[tuple[int, int, int], list] = {}  # (sleeper, woken_by, handle) -> [n, ns, max]
        self._ep_rows: list[pd.DataFrame] = []
        self._wu_rows: list[pd.DataFrame] = []
        # tasks
        self._first: dict[int, int] = {}
        self._last: dict[int, int] = {}
        self._comms: dict[int, list[str]] = {}
        self._tgid: dict[int, int] = {}  # from task_newtask
        self._born: dict[int, tuple[int, int | None]] = {}  # child -> (creator tid, clone_flags or None)
        self._seen_events: set[str] = set()
        self.last_ts = 0
        self.stats: dict[str, Any] = {k: 0 for k in (
            "events", "switches", "wakings", "sleeps", "episodes", "episodes_in_syscall",
            "episodes_outside_syscall", "episodes_unattributed", "episodes_via_waker", "sleeps_ended_by_own_event",
            "sleeps_open_at_end", "wakeups", "wakeups_in_irq", "wakeups_of_idle", "wakeups_of_running",
            "wakeups_before_switch_out", "wakeups_never_ran", "wakeups_superseded", "refs_to_lost_syscalls",
            "handles_without_rid", "lost_marks", "tgid_unknown")}
        self._row_join = True
        self._iv_tid = self._iv_ets = self._iv_h = np.zeros(0, np.int64)
        self._iv_index: pd.MultiIndex | None = None
        self._wait_lut = np.zeros(1, dtype=bool)
        self._kind_lut = np.zeros(1, dtype=np.int8)
        # each task's latest sleep start (earlier batches)
        self._ls_tid = np.zeros(0, np.int64)
        self._ls_ts = np.zeros(0, np.int64)

    # --- handles ----------------------------------------------------------------------------------
    def _set_intervals(self, iv: pd.DataFrame | None) -> None:
        if iv is None or not len(iv):
            self._iv_tid = self._iv_ets = self._iv_h = np.zeros(0, np.int64)
        else:
            self._iv_tid = iv["tid"].to_numpy(np.int64)
            self._iv_ets = iv["enter_ts"].to_numpy(np.int64)
            self._iv_h = iv["handle"].to_numpy(np.int64) if "handle" in iv.columns else \
                np.full(len(iv), -1, np.int64)
        self._row_join = not self.own_pairer and len(self._iv_tid) == self.pairer.rows
        self._iv_index = None

    def _handles_of_rows(self, rows: np.ndarray, tids: np.ndarray, ets: np.ndarray) -> np.ndarray:
        """Handles for the pairer's rows (rows >= 0) of this batch, checked against the intervals
        given to feed(); if they are not the pairer's frame, joined by (tid, enter_ts)."""
        if not len(rows):
            return np.zeros(0, np.int64)
        if self._row_join:
            ok = rows < len(self._iv_tid)
            r = np.where(ok, rows, 0)
            if ok.all() and (self._iv_tid[r] == tids).all() and (self._iv_ets[r] == ets).all():
                return self._iv_h[r]
            self._row_join = False
        if self._iv_index is None:
            self._iv_index = pd.MultiIndex.from_arrays([self._iv_tid, self._iv_ets])
        if not len(self._iv_tid):
            return np.full(len(rows), -1, np.int64)
        j = self._iv_index.get_indexer(pd.MultiIndex.from_arrays([tids, ets]))
        return np.where(j >= 0, self._iv_h[np.maximum(j, 0)], -1)

    def _ref_handles(self, inside: np.ndarray, rows: np.ndarray, tids: np.ndarray, ets: np.ndarray) -> np.ndarray:
        """Handle of each referenced syscall: >= 0, -1 (none / not attributed / never completes) or
        UNRESOLVED (still open)."""
        h = np.full(len(rows), -1, np.int64)
        done = inside & (rows >= 0)
        h[inside & (rows == ROW_OPEN)] = UNRESOLVED
        lost = inside & (rows == ROW_LOST)
        self.stats["refs_to_lost_syscalls"] += int(lost.sum())
        if done.any():
            h[done] = self._handles_of_rows(rows[done], tids[done], ets[done])
        return h

    def _resolve(self, tids: np.ndarray, ets: np.ndarray, h: np.ndarray) -> np.ndarray:
        """Resolve UNRESOLVED handles of syscalls entered in earlier batches."""
        m = h == UNRESOLVED
        if not m.any():
            return h
        h = h.copy()
        rows = self.pairer.completed_row(tids[m], ets[m])
        h[m] = self._ref_handles(np.ones(len(rows), bool), rows, tids[m], ets[m])
        return h

    def _wait_ops(self, op: np.ndarray) -> np.ndarray:
        names = self.pairer.names
        if len(self._wait_lut) != len(names) + 1:
            self._wait_lut = np.array([n in WAIT_OPS for n in names] + [False], dtype=bool)
        return self._wait_lut[op]

    def _kinds(self, op: np.ndarray) -> np.ndarray:
        """Per syscall code: KIND_READ for read/recv calls, KIND_WRITE for write/send calls, else 0."""
        names = self.pairer.names
        if len(self._kind_lut) != len(names) + 1:
            self._kind_lut = np.array([KIND_READ if n in READ_SYSCALLS else KIND_WRITE if n in WRITE_SYSCALLS else 0
                                       for n in names] + [0], dtype=np.int8)
        return self._kind_lut[op]

    def _after_wake(self, iv: pd.DataFrame | None, s_tid: np.ndarray, s_ts: np.ndarray) -> None:
        """Advance the episodes whose sleeper has not slept again yet (``aw`` AW_PENDING) over this
        batch: its first read/recv returning data after the sleep's end (``ch``), and at its next
        sleep (``s_tid``/``s_ts``: the sleeps begun in this batch) whether its waker slept after the
        wakeup and before that (``turn``); then the window is closed (AW_DONE)."""
        epw = self._epw
        pend = np.flatnonzero(epw["aw"] == AW_PENDING)
        s_tid = np.asarray(s_tid, dtype=np.int64)
        s_ts = np.asarray(s_ts, dtype=np.int64)
        if len(pend):
            t = epw["tid"][pend]
            dur = epw["dur"][pend]
            end = epw["start"][pend] + dur
            # the sleeper's next sleep: the first one begun at or after the end of this one. At the end
            # itself too: a task woken on an idle CPU whose switch-in the kernel did not trace, and that
            # went back to sleep inside the syscall (poll re-checks, finds nothing), "ran" only at its
            # next switch-out, which is where its next sleep begins. (Not the sleep itself when it
            # lasted 0 ns.)
            j = asof(t, np.where(dur > 0, end, end + 1), s_tid, s_ts, direction="forward")
            closes = j >= 0
            nx = np.where(closes, s_ts[np.maximum(j, 0)] if len(s_ts) else -1, -1)
            # its first read returning data at or after the end (and not after the next sleep)
            if iv is not None and len(iv):
                ok = iv["syscall"].isin(READ_SYSCALLS).to_numpy() & (iv["ret"].to_numpy() > 0)
                if ok.any():
                    r_tid = iv["tid"].to_numpy(np.int64)[ok]
                    r_ts = iv["exit_ts"].to_numpy(np.int64)[ok]
                    r_h = iv["handle"].to_numpy(np.int64)[ok] if "handle" in iv.columns else np.full(len(r_tid), -1)
                    g = asof(t, end, r_tid, r_ts, direction="forward")
                    gc = np.maximum(g, 0)
                    hit = (g >= 0) & (~closes | (r_ts[gc] <= nx)) & (epw["ch"][pend] == CH_NONE)
                    if hit.any():
                        epw["ch"][pend[hit]] = r_h[gc[hit]]
            if closes.any():
                ci = pend[closes]
                w = epw["woken_by"][ci]
                wts = epw["wts"][ci]
                # the waker's latest sleep begun before the sleeper's next one: in this batch, or the
                # latest of the batches before (all earlier than this batch's)
                a_tid = np.concatenate([self._ls_tid, s_tid])
                a_ts = np.concatenate([self._ls_ts, s_ts])
                p = asof(w, nx[closes], a_tid, a_ts, direction="backward", exact=False)
                last = np.where(p >= 0, a_ts[np.maximum(p, 0)] if len(a_ts) else -1, -1)
                epw["turn"][ci] = ((wts >= 0) & (last > wts)).astype(np.int64)
                epw["aw"][ci] = AW_DONE
        if len(s_tid):  # each task's latest sleep so far
            tids = np.concatenate([self._ls_tid, s_tid])
            g = Groups([tids])
            self._ls_tid, self._ls_ts = g.key(tids), g.reduce(np.concatenate([self._ls_ts, s_ts]), "max")

    # --- feeding ----------------------------------------------------------------------------------
    def feed(self, batch: Batch, intervals: pd.DataFrame | None = None) -> None:
        P = self.pairer
        if self.own_pairer:
            own = P.pair(batch)
            if intervals is None:
                intervals = own
        elif P.batch is not batch:
            raise ValueError("SchedModel.feed: call pairer.pair(batch) first (the pairer answers per batch)")
        self._set_intervals(intervals)
        self._seen_events.update(batch.events)
        self.stats["events"] += len(batch)
        self.stats["lost_marks"] += len(batch.lost)
        if len(batch):
            self.last_ts = max(self.last_ts, int(batch.ts[-1]))
            if self.crit is not None:
                self.crit.span(int(batch.ts[0]), int(batch.ts[-1]))
        sw = batch.events.get("sched_switch")
        if sw is not None and self.states is None:
            self.states = SwitchStates(sw.format.print_fmt)
        states = self.states or SwitchStates()
        wk = batch.events.get("sched_waking")
        self._task_events(batch)

        # carried rows: resolve handles of syscalls (entered in earlier batches) completed in this one
        st, pend, epw, wuw = self._st, self._pend, self._epw, self._wuw
        st["rh"] = self._resolve(st["tid"], st["re"], st["rh"])
        for t_, h, tc, ec in ((pend, "r1h", "waker", "r1e"), (pend, "r2h", "wakee", "r2e"),
                              (epw, "rh", "tid", "re"), (epw, "wh", "woken_by", "we"),
                              (wuw, "r1h", "waker", "r1e"), (wuw, "r2h", "wakee", "r2e")):
            t_[h] = self._resolve(t_[tc], t_[ec], t_[h])

        # --- real events --------------------------------------------------------------------------
        S = len(sw) if sw is not None else 0
        W = len(wk) if wk is not None else 0
        self.stats["switches"] += S
        self.stats["wakings"] += W
        if S:
            sw_pos = sw.index.astype(np.int64)
            sw_ts = sw.ts.astype(np.int64, copy=False)
            sw_cpu = sw.cpu.astype(np.int64)
            prev = _col(sw, "prev_pid")
            nxt = _col(sw, "next_pid")
            pstate = _col(sw, "prev_state", 0)
        else:
            sw_pos = sw_ts = sw_cpu = prev = nxt = pstate = np.zeros(0, np.int64)
        if W:
            wk_pos = wk.index.astype(np.int64)
            real = {"ts": wk.ts.astype(np.int64, copy=False), "waker": wk.pid.astype(np.int64),
                    "wakee": _col(wk, "pid"), "wcpu": wk.cpu.astype(np.int64), "tcpu": _col(wk, "target_cpu"),
                    "irq": (wk.flags & IRQ_FLAGS) != 0, "alt_ts": np.full(W, -1, np.int64),
                    "alt_cpu": np.full(W, -1, np.int64)}
            self.stats["wakeups_in_irq"] += int(real["irq"].sum())
            # the syscall the waker and the wakee are inside at the wakeup (none for wakeups from
            # interrupt context: common_pid is just the interrupted task)
            for who, e, h, skip in (("waker", "r1e", "r1h", real["irq"] | (real["waker"] == 0)),
                                    ("wakee", "r2e", "r2h", real["irq"])):
                tids = real[who]
                o = order_by_tid(tids)
                at = P.syscall_at(tids[o], wk_pos[o])
                inside = np.empty(W, bool)
                inside[o] = at.inside
                inside &= ~skip
                ets = np.empty(W, np.int64)
                ets[o] = at.enter_ts
                rows = np.empty(W, np.int64)
                rows[o] = at.row
                real[e] = np.where(inside, ets, -1)
                real[h] = self._ref_handles(inside, rows, tids, ets)
                if who == "waker":  # its syscall: what it did to the resource (a write fills, a read drains)
                    codes = np.empty(W, np.int64)
                    codes[o] = at.code
                    real["r1c"] = np.where(inside, codes, -1)
            U = _cat([pend, real])
        else:
            wk_pos = np.zeros(0, np.int64)
            U = pend
        n0, n1 = _n(st), _n(pend)

        # --- own events: every event is its common_pid's (the task current on that CPU) ----------------
        # A task is running at any of its own events; the kernel does not trace every switch-in (e.g.
        # an idle CPU resuming a woken task may emit none), so a sleep ends at the first of its next
        # switch-in and its next own event.
        N = len(batch)
        opid = batch.pid.astype(np.int64)
        operm = order_by_tid(opid)  # positions sorted by (pid, position)
        okeys = tid_pos_key(opid[operm], operm)
        bts = batch.ts.astype(np.int64, copy=False)
        bcpu = batch.cpu.astype(np.int64)

        def own_next(t, p):
            j = np.searchsorted(okeys, tid_pos_key(t, p), side="right")
            jc = np.minimum(j, max(N - 1, 0))
            ok = (j < N) & ((okeys[jc] >> POS_BITS) == t) if N else np.zeros(len(t), bool)
            return np.where(ok, operm[jc] if N else 0, NO_NEXT)

        def own_prev(t, p):
            j = np.searchsorted(okeys, tid_pos_key(t, p), side="left") - 1
            jc = np.maximum(j, 0)
            ok = (j >= 0) & ((okeys[jc] >> POS_BITS) == t) if N else np.zeros(len(t), bool)
            return np.where(ok, operm[jc] if N else 0, NO_PREV)

        # --- the timeline: switch and wakeup rows in (tid, position) order -----------------------------
        R = 2 * S + W
        typ_r = np.empty(R, np.int8)
        tid_r = np.empty(R, np.int64)
        pos_r = np.empty(R, np.int64)
        ts_r = np.empty(R, np.int64)
        cpu_r = np.zeros(R, np.int64)
        state_r = np.zeros(R, np.int64)
        src_r = np.empty(R, np.int64)
        if S:
            out_slot = 2 * np.arange(S, dtype=np.int64) + (np.searchsorted(wk_pos, sw_pos) if W else 0)
            in_slot = out_slot + 1
            for slot, kind, t in ((out_slot, T_OUT, prev), (in_slot, T_IN, nxt)):
                typ_r[slot] = kind
                tid_r[slot] = t
                pos_r[slot] = sw_pos
                ts_r[slot] = sw_ts
                cpu_r[slot] = sw_cpu
                src_r[slot] = np.arange(S)
            state_r[out_slot] = pstate
        if W:
            wslot = np.arange(W, dtype=np.int64) + 2 * (np.searchsorted(sw_pos, wk_pos) if S else 0)
            typ_r[wslot] = T_WAKE
            tid_r[wslot] = U["wakee"][n1:]
            pos_r[wslot] = wk_pos
            ts_r[wslot] = U["ts"][n1:]
            src_r[wslot] = n1 + np.arange(W)
        typ = np.concatenate([np.full(n0, T_STATE, np.int8), np.full(n1, T_PEND, np.int8), typ_r])
        tid = np.concatenate([st["tid"], pend["wakee"], tid_r])
        pos = np.concatenate([np.full(n0, STATE_POS, np.int64), np.full(n1, PEND_POS, np.int64), pos_r])
        ts = np.concatenate([st["ts"], pend["ts"], ts_r])
        cpu = np.concatenate([st["cpu"], pend["wcpu"], cpu_r])
        state = np.concatenate([st["state"], np.zeros(n1, np.int64), state_r])
        src = np.concatenate([np.arange(n0), np.arange(n1), src_r])
        kin = np.concatenate([st["kind"], np.zeros(n1, bool), typ_r == T_IN])
        keep = tid > 0  # not the per-CPU idle tasks
        if not keep.all():
            self.stats["wakeups_of_idle"] += int(((typ == T_WAKE) & ~keep).sum())
            typ, tid, pos, ts, cpu, state, src, kin = (a[keep] for a in (typ, tid, pos, ts, cpu, state, src, kin))
        perm = order_by_tid(tid)
        typ, tid, pos, ts, cpu, state, src, kin = (a[perm] for a in (typ, tid, pos, ts, cpu, state, src, kin))
        n = len(tid)
        idx = np.arange(n, dtype=np.int64)
        is_sw = (typ == T_STATE) | (typ == T_OUT) | (typ == T_IN)
        prev_sw = _prev_row(is_sw, tid, idx)
        next_sw = _next_row(is_sw, tid, idx)
        next_in = _next_row(typ == T_IN, tid, idx)
        next_wake = _next_row(typ == T_WAKE, tid, idx)
        sleepy = states.sleeping(state)

        def run_after(k, t, p):
            """The first time task t ran after row k (position p): its next switch-in or own event."""
            ii = next_in[k]
            pin = np.where(ii >= 0, pos[np.maximum(ii, 0)], NO_NEXT)
            po = own_next(t, p)
            by_in = pin <= po
            rpos = np.minimum(pin, po)
            found = rpos < NO_NEXT
            rts = np.full(len(k), -1, np.int64)
            rcpu = np.full(len(k), -1, np.int64)
            a_ = found & by_in
            rts[a_] = ts[ii[a_]]
            rcpu[a_] = cpu[ii[a_]]
            b_ = found & ~by_in
            rts[b_] = bts[po[b_]]
            rcpu[b_] = bcpu[po[b_]]
            return found, rpos, rts, rcpu

        # --- sleeps -------------------------------------------------------------------------------
        new_sleep = (typ == T_OUT) & sleepy
        old_sleep = np.zeros(n, bool)
        if n0:
            so = typ == T_STATE
            old_sleep[so] = st["ep"][src[so]]
        sleep = new_sleep | old_sleep
        ks = np.flatnonzero(sleep)
        self.stats["sleeps"] += int(new_sleep.sum())
        k_op = np.full(len(ks), -1, np.int64)
        k_fd = np.full(len(ks), -1, np.int64)
        k_re = np.full(len(ks), -1, np.int64)
        k_rh = np.full(len(ks), -1, np.int64)
        kn = new_sleep[ks]
        if kn.any():
            q = ks[kn]
            at = P.syscall_at(tid[q], pos[q])
            k_op[kn] = at.code
            k_fd[kn] = at.fd
            k_re[kn] = at.enter_ts
            k_rh[kn] = self._ref_handles(at.inside, at.row, tid[q], at.enter_ts)
        ko = ~kn
        if ko.any():
            s_ = src[ks[ko]]
            k_op[ko] = st["op"][s_]
            k_fd[ko] = st["fd"][s_]
            k_re[ko] = st["re"][s_]
            k_rh[ko] = st["rh"][s_]
        k_end, k_epos, k_ets, _ = run_after(ks, tid[ks], pos[ks])
        k_by_own = k_end & ((next_in[ks] < 0) | (pos[np.maximum(next_in[ks], 0)] != k_epos))
        self.stats["sleeps_ended_by_own_event"] += int(k_by_own.sum())
        if self.crit is not None:
            # preempted (switched out runnable: R or R+) until it next ran, for the critical path
            rstate = ((state & states.preempt) != 0) | ((state & ~states.preempt) == 0)
            pre = rstate & ((typ == T_OUT) | ((typ == T_STATE) & ~kin & ~old_sleep))
            kp = np.flatnonzero(pre)
            if len(kp):
                p_end, _p, p_ets, _c = run_after(kp, tid[kp], pos[kp])
                if p_end.any():
                    kq = kp[p_end]
                    self.crit.add_preempts(tid[kq], ts[kq], np.maximum(p_ets[p_end], ts[kq]))

        # --- wakeups ------------------------------------------------------------------------------
        wr = np.flatnonzero((typ == T_WAKE) | (typ == T_PEND))
        u = src[wr]
        wt, wp = tid[wr], pos[wr]
        a = prev_sw[wr]
        b = next_sw[wr]
        ac, bc = np.maximum(a, 0), np.maximum(b, 0)
        has_a, has_b = a >= 0, b >= 0
        op_ = own_prev(wt, wp)
        on_ = own_next(wt, wp)
        b_out = has_b & ~kin[bc]
        # running at the wakeup: switched in since its last switch-out, or own events since (or, for
        # a task not seen before, switched out next)
        ev_running = (has_a & kin[ac]) | (has_a & ~kin[ac] & (op_ > pos[ac])) | (~has_a & (op_ > NO_PREV))
        # Woken while it was switching out on another CPU: the wakeup is traced first, its next own
        # event is that (sleeping) switch-out, and it runs next without another wakeup. (Another
        # wakeup before it runs again: it had run, its switch-in not traced, and slept again.)
        cand = (ev_running | ~has_a) & b_out & sleepy[bc] & (on_ == pos[bc]) & (U["wcpu"][u] != cpu[bc])
        race = np.zeros(len(wr), bool)
        found = np.zeros(len(wr), bool)
        rpos = np.full(len(wr), NO_NEXT, np.int64)
        rts = np.full(len(wr), -1, np.int64)
        rcpu = np.full(len(wr), -1, np.int64)
        if cand.any():
            ci = np.flatnonzero(cand)
            bb = b[ci]
            f, p_, t_, c_ = run_after(bb, wt[ci], pos[bb])
            nw = next_wake[bb]
            later = (nw >= 0) & (~f | (pos[np.maximum(nw, 0)] < p_))
            ri = ci[~later]
            race[ri] = True
            found[ri], rpos[ri], rts[ri], rcpu[ri] = f[~later], p_[~later], t_[~later], c_[~later]
        rr = ev_running & ~race
        nr = ~ev_running & ~race
        if nr.any():
            f, p_, t_, c_ = run_after(wr[nr], wt[nr], wp[nr])
            found[nr], rpos[nr], rts[nr], rcpu[nr] = f, p_, t_, c_
            # carried wakeups that raced with a switch-out: if the task was woken again before it
            # ran, it had run (untraced) by that switch-out
            alt = nr & (U["alt_ts"][u] >= 0)
            if alt.any():
                nw = next_wake[wr[alt]]
                use = (nw >= 0) & (~found[alt] | (pos[np.maximum(nw, 0)] < rpos[alt]))
                ai = np.flatnonzero(alt)[use]
                found[ai] = True
                rpos[ai] = NO_PREV  # not in this batch: no episode ends there
                rts[ai] = U["alt_ts"][u[ai]]
                rcpu[ai] = U["alt_cpu"][u[ai]]
        rr_done = rr & (on_ < NO_NEXT)
        pending = (~found & ~rr) | (rr & ~rr_done)
        pr = race & ~found  # waiting for the run after the switch-out: remember the switch-out
        if pr.any():
            U["alt_ts"][u[pr]] = ts[b[pr]]
            U["alt_cpu"][u[pr]] = cpu[b[pr]]
        self.stats["wakeups_before_switch_out"] += int(race.sum())
        self.stats["wakeups_of_running"] += int(rr_done.sum())
        w2r = np.full(len(wr), -1, np.int64)
        U_ts = U["ts"][u]
        w2r[found] = np.maximum(rts[found] - U_ts[found], 0)
        w2r[rr_done] = 0
        rcpu[rr_done] = bcpu[on_[rr_done]]

        # --- finished episodes: woken_by = the last wakeup that led to the same run -------------------
        fe = np.flatnonzero(k_end)
        if len(fe):
            kk = ks[fe]
            end_key = tid_pos_key(tid[kk], k_epos[fe])
            lw = np.full(len(fe), -1, np.int64)
            if found.any():
                wkey = tid_pos_key(wt[found], rpos[found])
                wi = np.flatnonzero(found)
                if len(wkey) > 1 and (np.diff(wkey) < 0).any():
                    o = np.argsort(wkey, kind="stable")
                    wkey, wi = wkey[o], wi[o]
                j = np.searchsorted(wkey, end_key, side="right") - 1
                jc = np.maximum(j, 0)
                hit = (j >= 0) & (wkey[jc] == end_key)
                lw = np.where(hit, wi[jc], -1)
            hw = lw >= 0
            m1 = np.full(len(fe), -1, np.int64)
            woken_by, we, wh, wc, wts = m1, m1, m1, m1, m1
            wirq = np.zeros(len(fe), bool)
            if hw.any():
                wu = u[lw[hw]]
                woken_by, we, wh, wc, wts = m1.copy(), m1.copy(), m1.copy(), m1.copy(), m1.copy()
                woken_by[hw], we[hw], wh[hw], wts[hw] = U["waker"][wu], U["r1e"][wu], U["r1h"][wu], U["ts"][wu]
                wc[hw] = U["r1c"][wu]
                wirq[hw] = U["irq"][wu]
            k = len(fe)
            ep = {"tid": tid[kk], "start": ts[kk], "dur": np.maximum(k_ets[fe] - ts[kk], 0), "state": state[kk],
                  "op": k_op[fe], "fd": k_fd[fe], "woken_by": woken_by, "re": k_re[fe], "rh": k_rh[fe],
                  "we": we, "wh": wh, "wts": wts, "wirq": wirq, "wc": wc, "aw": np.full(k, AW_PENDING, np.int64),
                  "ch": np.full(k, CH_NONE, np.int64), "turn": np.zeros(k, np.int64)}
            self._epw = _cat([self._epw, ep])
        # after each sleep: did the sleeper read data, did its waker sleep, before the sleeper's next sleep?
        ns_ = np.flatnonzero(new_sleep)
        self._after_wake(intervals, tid[ns_], ts[ns_])
        # finished wakeups
        done = found | rr_done
        if done.any():
            ud = u[done]
            wu_rows = {"ts": U["ts"][ud], "waker": U["waker"][ud], "wakee": U["wakee"][ud], "w2r": w2r[done],
                       "wcpu": U["wcpu"][ud], "tcpu": U["tcpu"][ud], "rcpu": rcpu[done], "r1e": U["r1e"][ud],
                       "r1h": U["r1h"][ud], "r2e": U["r2e"][ud], "r2h": U["r2h"][ud], "irq": U["irq"][ud]}
            self._wuw = _cat([self._wuw, wu_rows])
        # wakeups still waiting for their wakee to run
        self._pend = self._cap_pending(_take(U, np.sort(u[pending])))

        # --- carried task state: running, or switched out (maybe asleep in a syscall) ------------------
        L = np.flatnonzero(is_sw & (next_sw < 0))  # each task's last switch row, tasks sorted by tid
        li = np.searchsorted(ks, L)
        lic = np.minimum(li, max(len(ks) - 1, 0))
        is_k = (li < len(ks)) & (ks[lic] == L) if len(ks) else np.zeros(len(L), bool)

        def kval(arr):
            return np.where(is_k, arr[lic], -1) if len(ks) else np.full(len(L), -1, np.int64)

        new_st = {"tid": tid[L], "kind": kin[L], "ts": ts[L], "cpu": cpu[L], "state": state[L], "ep": is_k,
                  "op": kval(k_op), "fd": kval(k_fd), "re": kval(k_re), "rh": kval(k_rh)}
        if N:  # own events after the last switch row: running
            ends = np.flatnonzero(np.r_[(okeys[1:] >> POS_BITS) != (okeys[:-1] >> POS_BITS), True])
            o_tid = okeys[ends] >> POS_BITS
            o_pos = operm[ends]
            j = np.searchsorted(o_tid, new_st["tid"])
            jc = np.minimum(j, len(o_tid) - 1)
            has_o = (j < len(o_tid)) & (o_tid[jc] == new_st["tid"])
            after = has_o & ~new_st["kind"] & (o_pos[jc] > pos[L])
            if after.any():
                new_st["kind"] = new_st["kind"] | after
                new_st["ep"] = new_st["ep"] & ~after
                new_st["ts"] = np.where(after, bts[o_pos[jc]], new_st["ts"])
                new_st["cpu"] = np.where(after, bcpu[o_pos[jc]], new_st["cpu"])
                for k_ in ("op", "fd", "re", "rh"):
                    new_st[k_] = np.where(after, -1, new_st[k_])
            only = np.ones(len(o_tid), bool)
            jj = np.searchsorted(new_st["tid"], o_tid)
            jjc = np.minimum(jj, max(len(L) - 1, 0))
            if len(L):
                only &= ~((jj < len(L)) & (new_st["tid"][jjc] == o_tid))
            only &= o_tid > 0
            if only.any():
                k_ = int(only.sum())
                m1 = np.full(k_, -1, np.int64)
                new_st = _cat([new_st, {"tid": o_tid[only], "kind": np.ones(k_, bool), "ts": bts[o_pos[only]],
                                        "cpu": bcpu[o_pos[only]], "state": np.zeros(k_, np.int64),
                                        "ep": np.zeros(k_, bool), "op": m1, "fd": m1, "re": m1, "rh": m1}])
        dead = ~new_st["kind"] & ((new_st["state"] & states.dead_mask) != 0) & ~new_st["ep"]
        self._st = _take(new_st, ~dead) if dead.any() else new_st

        # --- rows waiting for handles, tasks -------------------------------------------------------------
        if self.crit is not None:  # each task's first own event and first switch row of the batch
            ok = okeys >> POS_BITS
            f1 = np.flatnonzero(np.r_[True, ok[1:] != ok[:-1]]) if N else np.zeros(0, np.int64)
            m = np.flatnonzero((typ == T_IN) | (typ == T_OUT))
            f2 = m[np.r_[True, tid[m][1:] != tid[m][:-1]]] if len(m) else m
            self.crit.seen_running(np.concatenate([ok[f1], tid[f2]]), np.concatenate([bts[operm[f1]], ts[f2]]),
                                   np.concatenate([np.zeros(len(f1), bool), typ[f2] == T_IN]))
        self._flush()
        self._tasks_batch(typ, tid, pos, ts, src, sw, okeys, operm, bts)

    def _cap_pending(self, pend: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Keep at most ``max_pending`` waiting wakeups per wakee (more only in a broken trace):
        the older ones are finished as never run."""
        n = _n(pend)
        if n <= self.max_pending:
            return pend
        s = pd.Series(pend["wakee"])
        from_end = s.groupby(s, sort=False).cumcount(ascending=False).to_numpy()
        old = from_end >= self.max_pending
        if old.any():
            self.stats["wakeups_superseded"] += int(old.sum())
            self._never_ran(_take(pend, old), np.full(int(old.sum()), -1, np.int64))
            pend = _take(pend, ~old)
        return pend

    def _never_ran(self, p: dict[str, np.ndarray], rcpu: np.ndarray, w2r: np.ndarray | None = None) -> None:
        k = _n(p)
        if not k:
            return
        rows = {"ts": p["ts"], "waker": p["waker"], "wakee": p["wakee"],
                "w2r": np.full(k, -1, np.int64) if w2r is None else w2r, "wcpu": p["wcpu"], "tcpu": p["tcpu"],
                "rcpu": rcpu, "r1e": p["r1e"], "r1h": p["r1h"], "r2e": p["r2e"], "r2h": p["r2h"], "irq": p["irq"]}
        self._wuw = _cat([self._wuw, rows])

    # --- finishing rows ---------------------------------------------------------------------------------
    def _flush(self, final: bool = False, open_iv: Callable | None = None) -> None:
        """Rows whose handles are all known go to the aggregates (and the sinks). (Handles are
        resolved at the start of each feed; ``final``: the rest through ``open_iv``.)"""
        epw, wuw = self._epw, self._wuw
        if _n(epw):
            if final:
                for h, t, e in (("rh", "tid", "re"), ("wh", "woken_by", "we")):
                    epw[h] = open_iv(epw[t], epw[e], epw[h])
            if final:
                epw["aw"][:] = AW_DONE  # the capture ended before the sleeper slept again: as far as seen
            rh = epw["rh"]
            # (the critical path needs the wakeup's via: the waker's handle when the sleep has none)
            wait = self._wait_ops(epw["op"]) if self.crit is None else np.ones(len(rh), bool)
            ready = (rh != UNRESOLVED) & ((rh >= 0) | ~wait | (epw["wh"] != UNRESOLVED))
            ready &= epw["aw"] == AW_DONE
            if ready.all():
                self._finish_episodes(epw)
                self._epw = _empty(EPW_COLS)
            elif ready.any():
                self._finish_episodes(_take(epw, ready))
                self._epw = _take(epw, ~ready)
        if _n(wuw):
            if final:
                for h, t, e in (("r1h", "waker", "r1e"), ("r2h", "wakee", "r2e")):
                    wuw[h] = open_iv(wuw[t], wuw[e], wuw[h])
            ready = (wuw["r2h"] >= 0) | ((wuw["r2h"] != UNRESOLVED) & (wuw["r1h"] != UNRESOLVED))
            if ready.all():
                self._finish_wakeups(wuw)
                self._wuw = _empty(WUW_COLS)
            elif ready.any():
                self._finish_wakeups(_take(wuw, ready))
                self._wuw = _take(wuw, ~ready)

    def _finish_episodes(self, ep: dict[str, np.ndarray]) -> None:
        k = _n(ep)
        if not k:
            return
        op = ep["op"]
        wait = self._wait_ops(op)
        via_waker = (ep["rh"] < 0) & wait & (ep["wh"] >= 0)
        h = np.where(ep["rh"] >= 0, ep["rh"], np.where(via_waker, ep["wh"], -1))
        st = self.stats
        st["episodes"] += k
        st["episodes_in_syscall"] += int((op >= 0).sum())
        st["episodes_outside_syscall"] += int((op < 0).sum())
        st["episodes_unattributed"] += int(((op >= 0) & (h < 0)).sum())
        st["episodes_via_waker"] += int(via_waker.sum())
        dur = ep["dur"]
        tid = ep["tid"]
        codes, uniq = pd.factorize((tid << 32) | (h + 1))
        g = len(uniq)
        cnt = np.bincount(codes, minlength=g)
        tot = np.zeros(g, np.int64)
        np.add.at(tot, codes, dur)
        mx = np.zeros(g, np.int64)
        np.maximum.at(mx, codes, dur)
        # what it waited for: data (in a read/recv, or in a poll that a write/send ended) or room (in a
        # write/send, or in a poll that a read/recv ended)
        kind = self._kinds(op)
        wk = self._kinds(ep["wc"])
        kind = np.where(wait, np.where(wk == KIND_WRITE, KIND_READ, np.where(wk == KIND_READ, KIND_WRITE, 0)), kind)
        is_r, is_w = kind == KIND_READ, kind == KIND_WRITE
        r_cnt = np.bincount(codes, weights=is_r, minlength=g).astype(np.int64)
        w_cnt = np.bincount(codes, weights=is_w, minlength=g).astype(np.int64)
        r_tot = np.zeros(g, np.int64)
        np.add.at(r_tot, codes, np.where(is_r, dur, 0))
        w_tot = np.zeros(g, np.int64)
        np.add.at(w_tot, codes, np.where(is_w, dur, 0))
        pairs = pd.unique(codes.astype(np.int64) * (len(self.pairer.names) + 1) + (op + 1))
        ops_of: dict[int, set] = {}
        for p in pairs.tolist():
            o = p % (len(self.pairer.names) + 1) - 1
            if o >= 0:
                ops_of.setdefault(p // (len(self.pairer.names) + 1), set()).add(o)
        for i, key in enumerate(uniq.tolist()):
            t, hh = key >> 32, (key & 0xFFFFFFFF) - 1
            acc = self._blocked.get((t, hh))
            if acc is None:
                acc = self._blocked[(t, hh)] = [0, 0, 0, set(), 0, 0, 0, 0]
            acc[0] += int(cnt[i])
            acc[1] += int(tot[i])
            acc[2] = max(acc[2], int(mx[i]))
            acc[3] |= {self.pairer.names[o] for o in ops_of.get(i, ())}
            acc[4] += int(r_cnt[i])
            acc[5] += int(r_tot[i])
            acc[6] += int(w_cnt[i])
            acc[7] += int(w_tot[i])
        self._fold_waits(tid, ep["woken_by"], h, dur, ep["turn"], ep["ch"])
        if self.crit is not None:
            self.crit.add_sleeps(tid, ep["start"], ep["start"] + dur, ep["wts"], ep["woken_by"], ep["wirq"], op, h,
                                 np.where(ep["rh"] >= 0, ep["rh"], np.maximum(ep["wh"], -1)), room=is_w)
        if self.episodes:
            # streamed rows: a string dtype (not object) keeps one parquet schema even when a batch's ops
            # are all None; kept rows: object with None
            sdt = "string" if self.episode_sink is not None else object
            names = self.pairer.name_array(op)
            sleep_state = np.where((ep["state"] & (self.states or SwitchStates()).S) != 0, "S", "D")
            df = pd.DataFrame({"tid": tid, "rid": pd.Series(np.full(k, None, dtype=object), dtype=object),
                               "op": pd.Series(names, dtype=sdt), "fd": ep["fd"], "start_ts": ep["start"],
                               "dur_ns": dur, "state": pd.Series(sleep_state, dtype=sdt),
                               "woken_by": ep["woken_by"], "handle": h})
            if self.episode_sink is not None:
                self.episode_sink(df)
            else:
                self._ep_rows.append(df)

    def _fold_waits(self, tid: np.ndarray, woken_by: np.ndarray, h: np.ndarray, dur: np.ndarray,
                    turn: np.ndarray, ch: np.ndarray) -> None:
        """WAITS_FOR: sleeps on a known handle that another task (not idle, not itself) ended,
        summed per (sleeper, waker, handle), with the turns taken and the handles of the first reads
        that returned data after them (``_after_wake``; compared with the resource in ``_finish_waits``)."""
        m = (h >= 0) & (woken_by > 0) & (woken_by != tid)
        if not m.any():
            return
        t, w, hh, d, ch = tid[m], woken_by[m], h[m], dur[m], ch[m]
        g = Groups([t, w, hh])
        for key, n, tot, mx, tn in zip(zip(g.key(t).tolist(), g.key(w).tolist(), g.key(hh).tolist()),
                                       g.size().tolist(), g.reduce(d).tolist(), g.reduce(d, "max").tolist(),
                                       g.reduce(turn[m]).tolist()):
            acc = self._waits.get(key)
            if acc is None:
                acc = self._waits[key] = [0, 0, 0, 0, {}]
            acc[0] += n
            acc[1] += tot
            acc[2] = max(acc[2], mx)
            acc[3] += tn
        r = ch != CH_NONE
        if r.any():
            t, w, hh, ch = t[r], w[r], hh[r], ch[r]
            g = Groups([t, w, hh, ch])
            for key, c, n in zip(zip(g.key(t).tolist(), g.key(w).tolist(), g.key(hh).tolist()), g.key(ch).tolist(),
                                 g.size().tolist()):
                reads = self._waits[key][4]
                reads[c] = reads.get(c, 0) + n

    def _finish_waits(self, rid_of: dict[int, str | None], peer_of: dict[str, str] | None = None) -> pd.DataFrame:
        """The WAITS_FOR table (ipc.WAITS_COLUMNS): only sleeps on an IPC resource; ``top`` marks
        each sleeper's largest row by blocked time (ties: more episodes, then the lower waker tid);
        ``consumed``: the sleeps after which the sleeper's first read returning data was on the
        resource slept on or on its peer (``peer_of``: rid -> the connected other end)."""
        peer_of = peer_of or {}
        rows: dict[tuple[int, int, str], list] = {}
        for (t, w, h), (n, tot, mx, tn, reads) in self._waits.items():
            rid = self._rid(rid_of, h)
            if rid is None:
                continue
            acc = rows.setdefault((t, w, rid), [0, 0, 0, 0, 0])
            acc[0] += n
            acc[1] += tot
            acc[2] = max(acc[2], mx)
            same = {rid, peer_of.get(rid)} - {None}  # (a read of no resource, e.g. a file, is never one)
            acc[3] += sum(c for hh, c in reads.items() if hh >= 0 and rid_of.get(hh) in same)
            acc[4] += tn
        if not rows:
            return ipc.empty(ipc.WAITS_COLUMNS)
        cols = ["waiter", "waker", "via", "episodes", "blocked_ns", "max_ns", "consumed", "turns"]
        df = pd.DataFrame([(t, w, rid, *a) for (t, w, rid), a in rows.items()], columns=cols)
        return _objects(mark_top(df.assign(top=False))[ipc.WAITS_COLUMNS], ["via"])

    def _finish_wakeups(self, w: dict[str, np.ndarray]) -> None:
        k = _n(w)
        if not k:
            return
        via = np.where(w["r2h"] >= 0, w["r2h"], np.where(w["r1h"] >= 0, w["r1h"], -1))
        w2r = w["w2r"]
        if self.crit is not None:
            self.crit.wakeups(w["ts"], w["waker"], w["wakee"], w["irq"], via)
        known = w2r >= 0
        cross = (w["rcpu"] >= 0) & (w["rcpu"] != w["wcpu"])
        self.stats["wakeups"] += k
        self.stats["wakeups_never_ran"] += int((~known).sum())
        pair_codes, pair_uniq = pd.factorize((w["waker"] << 23) | w["wakee"])
        codes, uniq = pd.factorize((pair_codes.astype(np.int64) << 32) | (via + 1))
        g = len(uniq)
        cnt = np.bincount(codes, minlength=g)
        tot = np.zeros(g, np.int64)
        np.add.at(tot, codes, np.where(known, w2r, 0))
        mx = np.full(g, -1, np.int64)
        np.maximum.at(mx, codes, w2r)
        xc = np.bincount(codes, weights=cross, minlength=g).astype(np.int64)
        pu = pair_uniq.tolist()
        for i, key in enumerate(uniq.tolist()):
            pk = pu[key >> 32]
            waker, wakee, hh = pk >> 23, pk & ((1 << 23) - 1), (key & 0xFFFFFFFF) - 1
            acc = self._wakes.get((waker, wakee, hh))
            if acc is None:
                acc = self._wakes[(waker, wakee, hh)] = [0, 0, -1, 0]
            acc[0] += int(cnt[i])
            acc[1] += int(tot[i])
            acc[2] = max(acc[2], int(mx[i]))
            acc[3] += int(xc[i])
        if self.episodes:
            df = pd.DataFrame({"ts": w["ts"], "waker": w["waker"], "wakee": w["wakee"],
                               "via": pd.Series(np.full(k, None, dtype=object), dtype=object), "wake_to_run_ns": w2r,
                               "waker_cpu": w["wcpu"], "target_cpu": w["tcpu"], "via_handle": via})
            if self.wakeup_sink is not None:
                self.wakeup_sink(df)
            else:
                self._wu_rows.append(df)

    # --- tasks ---------------------------------------------------------------------------------------
    def _tgid_of(self, tid: int) -> int:
        t = self._tgid.get(tid)
        if t is None:
            t = self.tgid_given.get(tid)
        return -1 if t is None else int(t)

    def _seen(self, tid: int, ts: int) -> None:
        f = self._first.get(tid)
        if f is None or ts < f:
            self._first[tid] = ts
        la = self._last.get(tid)
        if la is None or ts > la:
            self._last[tid] = ts

    def _task_events(self, batch: Batch) -> None:
        """The rare events (forks, execs, renames, exits), one by one; comm changes are collected for
        ``_tasks_from_timeline`` (merged with those of the switches in position order)."""
        self._comm_events: list[tuple[int, int, int, str]] = []  # (tid, pos, sub, comm)
        crit = self.crit
        t = batch.events.get("task_newtask")
        if t is not None and len(t):
            comm = t.columns.get("comm")
            for i, (ix, ts, creator, child, flags) in enumerate(zip(
                    t.index.tolist(), t.ts.tolist(), t.pid.tolist(), _col(t, "pid").tolist(),
                    _col(t, "clone_flags", 0).tolist())):
                flags &= (1 << 64) - 1
                self._born[child] = (creator, flags)
                if flags & CLONE_THREAD:
                    tg = self._tgid_of(creator)
                    self._tgid[child] = tg if tg >= 0 else creator
                else:
                    self._tgid[child] = child
                self._seen(child, ts)
                if crit is not None:
                    crit.birth(child, ts, creator)
                if comm is not None:
                    self._comm_events.append((child, ix, 0, _s(comm[i])))
        t = batch.events.get("sched_process_fork")
        if t is not None and len(t):
            for ts, parent, child in zip(t.ts.tolist(), _col(t, "parent_pid").tolist(), _col(t, "child_pid").tolist()):
                if child not in self._born or self._born[child][0] != parent:
                    if child not in self._born:
                        self._born[child] = (parent, None)
                self._seen(child, ts)
                if crit is not None:
                    crit.birth(child, ts, parent)
        if self.meta.get("events"):
            have_rename = "task:task_rename" in self.meta["events"]
        else:
            have_rename = "task_rename" in batch.events
        t = batch.events.get("sched_process_exec")
        if t is not None and len(t):
            fn = t.columns.get("filename")
            for i, (ix, ts, pid, old) in enumerate(zip(t.index.tolist(), t.ts.tolist(), _col(t, "pid").tolist(),
                                                       _col(t, "old_pid").tolist())):
                self._seen(pid, ts)
                if crit is not None:
                    crit.exec(pid, ts)
                if old != pid and old >= 0:  # a non-leader thread exec'd: it took over the leader's tid
                    self._seen(old, ts)
                if not have_rename and fn is not None:
                    self._comm_events.append((pid, ix, 0, os.path.basename(_s(fn[i]))[:15]))
        t = batch.events.get("task_rename")
        if t is not None and len(t):
            old, new = t.columns.get("oldcomm"), t.columns.get("newcomm")
            pids = _col(t, "pid").tolist() if "pid" in t.columns else t.pid.tolist()
            for i, (ix, ts, pid) in enumerate(zip(t.index.tolist(), t.ts.tolist(), pids)):
                self._seen(pid, ts)
                if old is not None:
                    self._comm_events.append((pid, ix, 0, _s(old[i])))
                if new is not None:
                    self._comm_events.append((pid, ix, 1, _s(new[i])))
        for name, field in (("sched_process_exit", "pid"), ("sched_wakeup_new", "pid")):
            t = batch.events.get(name)
            if t is not None and len(t):
                for ts, pid in zip(t.ts.tolist(), _col(t, field).tolist()):
                    self._seen(pid, ts)
                    if crit is not None and name == "sched_process_exit":
                        crit.exit(pid, ts)

    def _tasks_batch(self, typ, tid, pos, ts, src, sw, okeys, operm, bts) -> None:
        """first/last seen per tid (own events, switch-ins, wakeups) and the comm changes, vectorized
        down to one row per task and batch."""
        m = (typ == T_IN) | (typ == T_WAKE)
        for t_, s_ in ((okeys >> POS_BITS, bts[operm]), (tid[m], ts[m])):
            if not len(t_):
                continue
            starts = np.flatnonzero(np.r_[True, t_[1:] != t_[:-1]])
            lo = np.minimum.reduceat(s_, starts)
            hi = np.maximum.reduceat(s_, starts)
            for k, f, la in zip(t_[starts].tolist(), lo.tolist(), hi.tolist()):
                if k > 0:
                    self._seen(k, f)
                    self._seen(k, la)
        ev = self._comm_events
        if sw is not None and len(sw) and "prev_comm" in sw.columns and "next_comm" in sw.columns:
            sel = np.flatnonzero((typ == T_OUT) | (typ == T_IN))
            if len(sel):
                s_ = src[sel]
                cm = np.where(typ[sel] == T_OUT, sw.columns["prev_comm"][s_], sw.columns["next_comm"][s_])
                t_ = tid[sel]
                chg = np.ones(len(sel), bool)
                chg[1:] = (t_[1:] != t_[:-1]) | (cm[1:] != cm[:-1])
                ch = np.flatnonzero(chg)
                ev = ev + list(zip(t_[ch].tolist(), pos[sel][ch].tolist(), [0] * len(ch),
                                   [_s(x) for x in cm[ch].tolist()]))
        if not ev:
            return
        ev.sort(key=lambda x: (x[0], x[1], x[2]))
        for t_, _p, _s2, comm in ev:
            if not comm or t_ <= 0:
                continue
            lst = self._comms.get(t_)
            if lst is None:
                self._comms[t_] = [comm]
            elif lst[-1] != comm:
                lst.append(comm)

    def _ppid(self, tid: int, depth: int = 0) -> int:
        if depth > 8:
            return -1
        tg = self._tgid_of(tid)
        b = self._born.get(tid)
        if b is not None:
            creator, flags = b
            if flags is not None and flags & CLONE_THREAD or (flags is None and tg >= 0 and tg != tid):
                return self._ppid(tg, depth + 1) if tg >= 0 and tg != tid else -1
            if flags is not None and flags & CLONE_PARENT:
                ctg = self._tgid_of(creator)
                return self._ppid(ctg if ctg >= 0 else creator, depth + 1)
            ctg = self._tgid_of(creator)
            return ctg if ctg >= 0 else int(creator)
        if tg >= 0 and tg != tid:
            return self._ppid(tg, depth + 1)
        p = self.ppid_given.get(tid)
        return -1 if p is None else int(p)

    def tasks(self) -> pd.DataFrame:
        """ipc.TASK_COLUMNS: every task seen (pid/ppid -1 when unknown)."""
        tids = sorted(t for t in set(self._first) | set(self._comms) if t > 0)
        rows = []
        for t in tids:
            comms = self._comms.get(t, [])
            pid = self._tgid_of(t)
            if pid < 0:
                self.stats["tgid_unknown"] += 1
            rows.append((t, pid, comms[-1] if comms else None, list(comms), self._ppid(t),
                         self._first.get(t, -1), self._last.get(t, -1),
                         t in self.tracer or (pid > 0 and pid in self.tracer_pids)))
        if not rows:
            return ipc.empty(ipc.TASK_COLUMNS)
        return _objects(pd.DataFrame(rows, columns=ipc.TASK_COLUMNS), ["comm"])

    # --- the end ------------------------------------------------------------------------------------
    def finish(self, rid_of_handle: dict[int, str | None] | None = None,
               open_intervals: pd.DataFrame | None = None, peer_of: dict[str, str] | None = None) -> dict[str, Any]:
        """Close the capture: tasks still asleep get episodes up to the last event (counted in
        ``sleeps_open_at_end``), wakeups whose wakee never ran get wake_to_run_ns -1, handles of
        syscalls that never completed are looked up in ``open_intervals`` (``pairer.finish()`` with a
        ``handle`` column) or else -1. Returns ``{"tasks", "blocked", "wakes", "episodes",
        "wakeups", "stats"}``; episodes/wakeups are DataFrames only with ``episodes=True`` and no
        sinks (else None)."""
        rid_of = rid_of_handle or {}
        oi = None
        if open_intervals is not None and len(open_intervals) and "handle" in open_intervals.columns:
            oi = pd.Series(open_intervals["handle"].to_numpy(np.int64),
                           index=pd.MultiIndex.from_arrays([open_intervals["tid"].to_numpy(np.int64),
                                                            open_intervals["enter_ts"].to_numpy(np.int64)]))

        def open_iv(tids, ets, h):
            m = h == UNRESOLVED
            if not m.any():
                return h
            h = h.copy()
            if oi is not None:
                j = oi.index.get_indexer(pd.MultiIndex.from_arrays([tids[m], ets[m]]))
                h[m] = np.where(j >= 0, oi.to_numpy()[np.maximum(j, 0)], -1)
            else:
                h[m] = -1
            return h

        st = self._st
        # tasks asleep at the end
        o = np.flatnonzero(st["ep"])
        if len(o):
            self.stats["sleeps_open_at_end"] += len(o)
            k = len(o)
            self._epw = _cat([self._epw, {
                "tid": st["tid"][o], "start": st["ts"][o], "dur": np.maximum(self.last_ts - st["ts"][o], 0),
                "state": st["state"][o], "op": st["op"][o], "fd": st["fd"][o], "woken_by": np.full(k, -1, np.int64),
                "re": st["re"][o], "rh": st["rh"][o], "we": np.full(k, -1, np.int64),
                "wh": np.full(k, -1, np.int64), "wts": np.full(k, -1, np.int64), "wirq": np.zeros(k, bool),
                "wc": np.full(k, -1, np.int64), "aw": np.full(k, AW_DONE, np.int64), "ch": np.full(k, CH_NONE, np.int64),
                "turn": np.zeros(k, np.int64)}])
        if self.crit is not None:  # tasks still preempted at the end: runnable until then
            states = self.states or SwitchStates()
            s_ = st["state"]
            pre = np.flatnonzero(~st["kind"] & ~st["ep"] & (((s_ & states.preempt) != 0) | ((s_ & ~states.preempt) == 0)))
            if len(pre):
                self.crit.add_preempts(st["tid"][pre], st["ts"][pre], np.maximum(self.last_ts, st["ts"][pre]))
        # wakeups whose wakee never ran after them (or was running: its last switch was a switch-in)
        p = self._pend
        if _n(p):
            where = _first_index(st["tid"], p["wakee"])
            wc = np.maximum(where, 0)
            running = (where >= 0) & st["kind"][wc] if len(st["tid"]) else np.zeros(_n(p), bool)
            self.stats["wakeups_of_running"] += int(running.sum())
            rcpu = np.where(running, st["cpu"][wc] if len(st["tid"]) else -1, -1)
            self._never_ran(p, rcpu, np.where(running, 0, -1))
            self._pend = _empty(PEND_COLS)
        self._flush(final=True, open_iv=open_iv)

        blocked_rows: dict[tuple[int, Any], list] = {}
        for (t, h), (cnt, tot, mx, ops, r_n, r_ns, w_n, w_ns) in self._blocked.items():
            rid = self._rid(rid_of, h)
            acc = blocked_rows.setdefault((t, rid), [0, 0, 0, set(), 0, 0, 0, 0])
            acc[0] += cnt
            acc[1] += tot
            acc[2] = max(acc[2], mx)
            acc[3] |= ops
            for j, v in enumerate((r_n, r_ns, w_n, w_ns), 4):
                acc[j] += v
        blocked = pd.DataFrame([(t, rid, n, ns, mx, sorted(ops), *rw) for (t, rid), (n, ns, mx, ops, *rw) in
                                sorted(blocked_rows.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))],
                               columns=ipc.BLOCKED_COLUMNS) if blocked_rows else ipc.empty(ipc.BLOCKED_COLUMNS)
        blocked = _objects(blocked, ["rid"])
        wake_rows: dict[tuple[int, int, Any], list] = {}
        for (wr, we, h), (cnt, tot, mx, xc) in self._wakes.items():
            rid = self._rid(rid_of, h)
            acc = wake_rows.setdefault((wr, we, rid), [0, 0, -1, 0])
            acc[0] += cnt
            acc[1] += tot
            acc[2] = max(acc[2], mx)
            acc[3] += xc
        wakes = pd.DataFrame([(wr, we, rid, n, ns, mx, xc) for (wr, we, rid), (n, ns, mx, xc) in
                              sorted(wake_rows.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2])))],
                             columns=ipc.WAKES_COLUMNS) if wake_rows else ipc.empty(ipc.WAKES_COLUMNS)
        wakes = _objects(wakes, ["via"])
        episodes = wakeups = None
        if self.episodes and self.episode_sink is None:
            episodes = self._mapped(self._ep_rows, "handle", "rid", ipc.EPISODE_COLUMNS, rid_of)
        if self.episodes and self.wakeup_sink is None:
            wakeups = self._mapped(self._wu_rows, "via_handle", "via", ipc.WAKEUP_COLUMNS, rid_of)
        have = {e.split(":", 1)[-1] for e in self.meta.get("events") or []} or self._seen_events
        self.stats["missing_events"] = [e for e in NEEDED_EVENTS if e not in have]
        self.stats["syscalls"] = self.pairer.stats
        return {"tasks": self.tasks(), "blocked": blocked, "wakes": wakes, "waits": self._finish_waits(rid_of, peer_of),
                "episodes": episodes, "wakeups": wakeups, "stats": self.stats}

    def _rid(self, rid_of: dict[int, str | None], h: int):
        if h < 0:
            return None
        if h not in rid_of:
            self.stats["handles_without_rid"] += 1
            return None
        return rid_of[h]

    @staticmethod
    def _mapped(parts: list[pd.DataFrame], hcol: str, rcol: str, cols: list[str], rid_of) -> pd.DataFrame:
        if not parts:
            return ipc.empty(cols)
        df = pd.concat(parts, ignore_index=True)
        h = df[hcol].to_numpy(np.int64)
        u, inv = np.unique(h, return_inverse=True)
        vals = np.array([rid_of.get(x) if x >= 0 else None for x in u.tolist()] + [None], dtype=object)[:-1]
        df[rcol] = pd.Series(vals[inv], dtype=object, index=df.index)
        return df[cols]


# --- capture helpers ------------------------------------------------------------------------------
def capture_context(path) -> dict[str, Any]:
    """SchedModel keyword arguments from a capture directory: ``meta``, ``tgid_of`` (saved_tgids),
    ``ppid_of`` (the /proc snapshot records' pid -> ppid) and ``tracer_tids``."""
    from ftraceipc.model.fd import load_saved_tgids

    path = Path(path)
    meta = json.loads((path / "meta.json").read_text())
    ppid_of: dict[int, int] = {}
    try:
        with open(path / "proc.jsonl") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    break
                if "pid" in rec and "ppid" in rec and rec.get("ppid") is not None:
                    ppid_of[int(rec["pid"])] = int(rec["ppid"])
    except OSError:
        pass
    return {"meta": meta, "tgid_of": load_saved_tgids(path / "tracefs" / "saved_tgids"), "ppid_of": ppid_of,
            "tracer_tids": [int(t) for t in meta.get("tracer_tids") or []]}


def run_capture(path, *, episodes: bool = False, events: Iterable[str] | None = None, **kw) -> dict[str, Any]:
    """Pair syscalls and run the sched model over a whole capture with every handle -1 (no fd model):
    for tests and measurements. Returns ``SchedModel.finish({})``."""
    from ftraceipc.decode import Decoder

    pairer = SyscallPairer()
    ctx = capture_context(path)
    ctx.update(kw)
    m = SchedModel(pairer, episodes=episodes, **ctx)
    for batch in Decoder(path).batches(events):
        iv = pairer.pair(batch)
        m.feed(batch, iv.assign(handle=np.full(len(iv), -1, np.int64)))
    return m.finish({})
