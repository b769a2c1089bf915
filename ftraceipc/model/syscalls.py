"""Syscall enter/exit pairing, vectorized over each decoded batch.

``SyscallPairer.pair(batch)`` takes every ``sys_enter_X``/``sys_exit_X`` event of the batch (any X:
the syscalls are found from the event names) and returns the syscalls *completed* in the batch, one
row per exit, in exit order. A task is in at most one syscall at a time, so an exit pairs with the
task's previous syscall event when that is the enter of the same syscall. Enters still open at the
end of the batch are carried to the next one (at most one per task: memory is bounded by tasks).

What cannot pair is counted, never guessed:

- ``unpaired``: exits whose task's previous syscall event is not the matching enter (the enter was
  before the capture, lost, or of another syscall): a row with ``enter_ts`` and ``fd`` -1.
- ``lost_exits``: enters followed by another enter or by a mismatching exit (their exit was lost).
- ``exited_inside``: enters still open when their task exited (``sched_process_exit``).

After ``pair(batch)`` the pairer also answers, for that batch, which syscall a task was inside at
a given event (``syscall_at``): the sched model uses it for sleeps and wakeups.

Positions: every event of a batch has a position (``EventTable.index``, its place in the batch's
merged order). Queries take positions, not timestamps, so events at equal timestamps are ordered
exactly as the decoder merged them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ftraceipc.decode.decoder import Batch

ENTER, EXIT = "sys_enter_", "sys_exit_"
INTERVAL_COLUMNS = ["tid", "syscall", "enter_ts", "exit_ts", "fd", "ret", "cpu"]

# A (tid, position) pair as one sortable int64: tid << POS_BITS | (position + POS_OFF). Positions
# below 0 are pseudo-rows for state carried from earlier batches (before every event of the batch).
POS_BITS = 40
POS_OFF = 8
POS_END = (1 << POS_BITS) - POS_OFF - 1  # after every event of a batch
CARRY_POS = -4  # a syscall carried open from an earlier batch

# ``row`` of an enter in ``syscall_at``/``completed_row``: >= 0 the row of its exit in the frame
# pair() returned; ROW_OPEN: still open at the end of the batch; ROW_LOST: it will never complete
# (exit lost, or the task exited inside it).
ROW_OPEN = -1
ROW_LOST = -2

_MAX_ID = 1 << 16


def tid_pos_key(tid, pos) -> np.ndarray:
    """The sort key of (tid, position) pairs (tids below 2**23, positions below 2**40)."""
    return (np.asarray(tid, dtype=np.int64) << POS_BITS) | (np.asarray(pos, dtype=np.int64) + POS_OFF)


def order_by_tid(tid: np.ndarray) -> np.ndarray:
    """A stable permutation sorting ``tid`` ascending: rows already in position order stay in
    position order within a tid, so the result is sorted by (tid, position). Hash + radix sort:
    linear time when a batch has at most 65536 distinct tids."""
    if len(tid) == 0:
        return np.zeros(0, dtype=np.int64)
    codes, uniq = pd.factorize(tid, sort=True)
    if len(uniq) <= 1:
        return np.arange(len(tid), dtype=np.int64)
    if len(uniq) <= 1 << 16:
        return np.argsort(codes.astype(np.uint16), kind="stable")
    return np.argsort(codes, kind="stable")


def fd_values(col: np.ndarray) -> np.ndarray:
    """Syscall fd arguments as int64: the low 32 bits of the register, signed (an ``int fd``
    argument is stored in an 8-byte field, maybe sign-extended, maybe not)."""
    v = col.astype(np.int64, copy=False) & 0xFFFFFFFF
    return v.astype(np.uint32).view(np.int32).astype(np.int64)


class At(NamedTuple):
    """Which syscall each queried (tid, position) is inside."""

    inside: np.ndarray  # bool
    code: np.ndarray  # int64 syscall code (``SyscallPairer.names``), -1 when not inside
    fd: np.ndarray  # int64 the enter's fd argument (-1: none, or not inside)
    enter_ts: np.ndarray  # int64, -1 when not inside
    row: np.ndarray  # int64: see ROW_OPEN/ROW_LOST (meaningless when not inside)


def _empty_carry() -> dict[str, np.ndarray]:
    return {"tid": np.zeros(0, np.int64), "code": np.zeros(0, np.int64), "ts": np.zeros(0, np.int64),
            "fd": np.zeros(0, np.int64)}


class SyscallPairer:
    """Pairs syscall enters and exits per task across batches (feed batches in time order)."""

    def __init__(self) -> None:
        self.names: list[str] = []  # syscall code -> name
        self._code: dict[str, int] = {}
        self._names_arr = np.zeros(0, dtype=object)
        self._carry = _empty_carry()  # open syscalls, one row per tid, sorted by tid
        self.unpaired = 0
        self.lost_exits = 0
        self.exited_inside = 0
        self.pairs = 0
        self.batch: Batch | None = None  # the batch of the last pair()
        self.rows = 0  # rows pair() returned for it
        self.out: dict[str, np.ndarray] = {}
        self._ix: dict[str, np.ndarray] = {}
        self._index(_empty_carry(), None)

    # --- codes ---------------------------------------------------------------------------------
    def code(self, name: str) -> int:
        c = self._code.get(name)
        if c is None:
            c = self._code[name] = len(self.names)
            self.names.append(name)
            self._names_arr = np.array(self.names + [None], dtype=object)  # [-1] -> None
        return c

    def codes_of(self, names) -> np.ndarray:
        """The codes of those of ``names`` seen so far."""
        return np.array([self._code[n] for n in names if n in self._code], dtype=np.int64)

    def name_array(self, codes: np.ndarray) -> np.ndarray:
        """Object array of syscall names for codes (-1 -> None)."""
        if not len(self._names_arr):
            self._names_arr = np.array([None], dtype=object)
        return self._names_arr[np.asarray(codes, dtype=np.int64)]

    # --- pairing -------------------------------------------------------------------------------
    def pair(self, batch: Batch) -> pd.DataFrame:
        """The syscalls completed in ``batch`` (columns INTERVAL_COLUMNS, in exit order)."""
        tables = []
        for name, t in batch.events.items():
            if not len(t):
                continue
            if name.startswith(ENTER):
                sc, enter = name[len(ENTER):], True
            elif name.startswith(EXIT):
                sc, enter = name[len(EXIT):], False
            else:
                continue
            tables.append((t, self.code(sc), enter, sc))
        n_all = len(batch)
        if tables and n_all:
            lut_code = np.full(_MAX_ID, -1, dtype=np.int64)
            lut_enter = np.zeros(_MAX_ID, dtype=bool)
            val_full = np.empty(n_all, dtype=np.int64)
            for t, code, enter, sc in tables:
                lut_code[t.format.id] = code
                lut_enter[t.format.id] = enter
                if enter:
                    col = t.columns.get("fd")
                    if col is None and sc == "dup":
                        col = t.columns.get("fildes")
                    val_full[t.index] = fd_values(col) if col is not None else -1
                else:
                    col = t.columns.get("ret")
                    val_full[t.index] = col.astype(np.int64, copy=False) if col is not None else 0
            eid = batch.event_id
            code_full = lut_code[eid]
            sel = np.flatnonzero(code_full >= 0)
            code = code_full[sel]
            enter = lut_enter[eid[sel]]
            tid = batch.pid[sel].astype(np.int64)
            ts = batch.ts[sel].astype(np.int64, copy=False)
            cpu = batch.cpu[sel].astype(np.int64)
            val = val_full[sel]
            pos = sel.astype(np.int64)
        else:
            code = tid = ts = cpu = val = pos = np.zeros(0, np.int64)
            enter = np.zeros(0, dtype=bool)
        c = self._carry
        nc = len(c["tid"])
        tid = np.concatenate([c["tid"], tid])
        pos = np.concatenate([np.full(nc, CARRY_POS, np.int64), pos])
        ts = np.concatenate([c["ts"], ts])
        cpu = np.concatenate([np.full(nc, -1, np.int64), cpu])
        code = np.concatenate([c["code"], code])
        enter = np.concatenate([np.ones(nc, bool), enter])
        val = np.concatenate([c["fd"], val])

        perm = order_by_tid(tid)
        tid, pos, ts, cpu, code, enter, val = (a[perm] for a in (tid, pos, ts, cpu, code, enter, val))
        n = len(tid)
        same_prev = np.zeros(n, dtype=bool)
        if n > 1:
            same_prev[1:] = tid[1:] == tid[:-1]
        paired = np.zeros(n, dtype=bool)
        if n > 1:
            paired[1:] = ~enter[1:] & same_prev[1:] & enter[:-1] & (code[1:] == code[:-1])
        is_exit = ~enter
        last = np.ones(n, dtype=bool)
        last[:-1] = ~same_prev[1:]
        nxt_paired = np.zeros(n, dtype=bool)
        nxt_paired[:-1] = paired[1:]
        open_end = enter & last
        lost = enter & ~last & ~nxt_paired
        self.unpaired += int((is_exit & ~paired).sum())
        self.lost_exits += int(lost.sum())
        self.pairs += int(paired.sum())
        # tasks that exited inside a syscall: their open enter never completes
        ex = batch.events.get("sched_process_exit")
        if ex is not None and len(ex) and open_end.any():
            ex_tid = (ex.columns["pid"] if "pid" in ex.columns else ex.pid).astype(np.int64)
            o = np.flatnonzero(open_end)
            hit = np.isin(tid[o], ex_tid)
            if hit.any():
                last_exit = pd.Series(ex.index.astype(np.int64)).groupby(ex_tid).max()
                oh = o[hit]
                gone = pos[oh] < last_exit.reindex(tid[oh]).to_numpy()
                open_end[oh[gone]] = False
                self.exited_inside += int(gone.sum())
        # output rows: the exits, in position (= exit time) order
        xi = np.flatnonzero(is_exit)
        orig = perm[xi]  # positions in the pre-sort (position-ordered) arrays
        mark = np.zeros(n, dtype=bool)
        mark[orig] = True
        rank = (np.cumsum(mark) - 1)[orig]
        nx = len(xi)
        row = np.full(n, ROW_LOST, dtype=np.int64)
        row[open_end] = ROW_OPEN
        row[xi] = -3  # exits are no enters
        p = paired[xi]
        row[xi[p] - 1] = rank[p]
        out = {k: np.empty(nx, dtype=np.int64) for k in ("tid", "code", "enter_ts", "exit_ts", "fd", "ret", "cpu")}
        prv = np.maximum(xi - 1, 0)
        out["tid"][rank] = tid[xi]
        out["code"][rank] = code[xi]
        out["enter_ts"][rank] = np.where(p, ts[prv], -1)
        out["exit_ts"][rank] = ts[xi]
        out["fd"][rank] = np.where(p, val[prv], -1)
        out["ret"][rank] = val[xi]
        out["cpu"][rank] = cpu[xi]

        o = np.flatnonzero(open_end)
        self._carry = {"tid": tid[o], "code": code[o], "ts": ts[o], "fd": val[o]}
        self._index({"tid": tid, "pos": pos, "ts": ts, "enter": enter, "code": code, "fd": val, "row": row}, batch)
        self.rows = nx
        self.out = out  # the same rows as arrays, with the syscall codes
        # syscall names as an object column: pandas' inferred string dtype costs ~60 ns per row
        return pd.DataFrame({"tid": out["tid"], "syscall": pd.Series(self.name_array(out["code"]), dtype=object),
                             "enter_ts": out["enter_ts"], "exit_ts": out["exit_ts"], "fd": out["fd"],
                             "ret": out["ret"], "cpu": out["cpu"]})

    def _index(self, a: dict[str, np.ndarray], batch: Batch | None) -> None:
        if "pos" not in a:  # empty
            z = np.zeros(0, np.int64)
            a = {"tid": z, "pos": z, "ts": z, "enter": np.zeros(0, bool), "code": z, "fd": z, "row": z}
        a["keys"] = tid_pos_key(a["tid"], a["pos"])
        self._ix = a
        self.batch = batch

    # --- queries about the last paired batch ------------------------------------------------------
    def syscall_at(self, tids, pos) -> At:
        """For events of tasks ``tids`` at positions ``pos`` of the last paired batch: the syscall each
        task was inside (entered before that position and not exited before it), including syscalls
        entered in earlier batches. Fastest with queries sorted by (tid, position)."""
        ix = self._ix
        tids = np.asarray(tids, dtype=np.int64)
        q = tid_pos_key(tids, pos)
        j = np.searchsorted(ix["keys"], q, side="left") - 1
        if not len(ix["keys"]):
            z = np.full(len(q), -1, np.int64)
            return At(np.zeros(len(q), bool), z, z.copy(), z.copy(), z.copy())
        jc = np.maximum(j, 0)
        inside = (j >= 0) & (ix["tid"][jc] == tids) & ix["enter"][jc]
        return At(inside, np.where(inside, ix["code"][jc], -1), np.where(inside, ix["fd"][jc], -1),
                  np.where(inside, ix["ts"][jc], -1), np.where(inside, ix["row"][jc], ROW_LOST))

    def count_between(self, tids, lo, hi) -> np.ndarray:
        """Syscall events (enters and exits) of each tid at positions strictly between lo and hi."""
        keys = self._ix["keys"]
        a = np.searchsorted(keys, tid_pos_key(tids, lo), side="right")
        b = np.searchsorted(keys, tid_pos_key(tids, hi), side="left")
        return np.maximum(b - a, 0)

    def completed_row(self, tids, enter_ts) -> np.ndarray:
        """For syscalls entered in an earlier batch (tid, enter ts): the row of their exit in the frame
        the last pair() returned, ROW_OPEN if still open, ROW_LOST if they will never complete."""
        ix = self._ix
        tids = np.asarray(tids, dtype=np.int64)
        enter_ts = np.asarray(enter_ts, dtype=np.int64)
        if not len(tids):
            return np.zeros(0, np.int64)
        if not len(ix["keys"]):
            return np.full(len(tids), ROW_LOST, np.int64)
        j = np.searchsorted(ix["keys"], tid_pos_key(tids, np.full(len(tids), CARRY_POS)), side="left")
        jc = np.minimum(j, len(ix["keys"]) - 1)
        ok = (j < len(ix["keys"])) & (ix["tid"][jc] == tids) & (ix["pos"][jc] == CARRY_POS) & \
            (ix["ts"][jc] == enter_ts)
        return np.where(ok, ix["row"][jc], ROW_LOST)

    # --- open syscalls ----------------------------------------------------------------------------
    def drop_open(self, names) -> int:
        """Forget the open syscalls named (their events were turned off: no exit will come); how many."""
        c = self._carry
        codes = [self._code[n] for n in names if n in self._code]
        if not codes or not len(c["tid"]):
            return 0
        keep = ~np.isin(c["code"], codes)
        n = int((~keep).sum())
        if n:
            self._carry = {k: v[keep] for k, v in c.items()}
        return n

    def open_syscalls(self) -> dict[int, tuple[str, int, int]]:
        """tid -> (syscall, enter_ts, fd) of the syscalls open after the last batch."""
        c = self._carry
        return {int(t): (self.names[int(k)], int(s), int(f))
                for t, k, s, f in zip(c["tid"].tolist(), c["code"].tolist(), c["ts"].tolist(), c["fd"].tolist())}

    def open_calls(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tid, fd, enter_ts) arrays of the syscalls open after the last batch (fd is the enter's
        first argument; meaningful only for syscalls on an fd)."""
        c = self._carry
        return c["tid"], c["fd"], c["ts"]

    def finish(self) -> pd.DataFrame:
        """The syscalls still open at the end: INTERVAL_COLUMNS with exit_ts -1, ret -1, cpu -1."""
        c = self._carry
        n = len(c["tid"])
        return pd.DataFrame({"tid": c["tid"], "syscall": pd.Series(self.name_array(c["code"]), dtype=object),
                             "enter_ts": c["ts"],
                             "exit_ts": np.full(n, -1, np.int64), "fd": c["fd"],
                             "ret": np.full(n, -1, np.int64), "cpu": np.full(n, -1, np.int64)})

    @property
    def stats(self) -> dict[str, int]:
        return {"pairs": self.pairs, "unpaired_exits": self.unpaired, "lost_exits": self.lost_exits,
                "exited_inside": self.exited_inside, "open": len(self._carry["tid"])}
