"""Build the IPC model of a capture: one pass over the decoded batches, in time order.

Per batch: (1) the fd-lifecycle records go through the fd model in time order, with the /proc
snapshots interleaved at their time: runs of opens and closes in columns (``FdModel.feed_plain``),
every other record one by one; (2) syscall enters and exits are paired (vectorized) and each
data syscall's fd is resolved to a handle through the fd model's binding history; (3) the sock
tracepoints inside those syscalls name the sockets (``sk``) and datagram destinations; (4) I/O is
summed per (task, fd, handle, syscall); (5) the sched model turns switches and wakeups into
BLOCKED_ON episodes and WAKES. State kept between batches is per task, fd and resource, never per
event, and episode rows are streamed to a sink when asked for.
"""

from __future__ import annotations

import gc
import hashlib
import heapq
import itertools
import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from ftraceipc.capture.store import CaptureDir, EventChange
from ftraceipc.decode import Decoder
from ftraceipc.decode.decoder import Batch, python_columns, python_row
from ftraceipc.errors import CaptureFormatError
from ftraceipc.model import critical, ipc
from ftraceipc.model.fd import (FD_CREATORS, PLAIN_FIELDS, PLAIN_SYSCALLS, U64, READ_SYSCALLS, WRITE_SYSCALLS,
                                FdModel, Reason, placed, load_saved_tgids, snapshot_stream)
from ftraceipc.model.sched import WAIT_OPS, SchedModel, mark_top, wakes_inside
from ftraceipc.model.columns import Groups, first_of_each
from ftraceipc.model.syscalls import ROW_LOST, ROW_OPEN, SyscallPairer, order_by_tid

LIFECYCLE = sorted(set(FD_CREATORS) | {"pipe", "pipe2", "socketpair", "dup", "dup2", "dup3", "fcntl", "close",
                                       "close_range"})
LIFECYCLE_EVENTS = frozenset([f"sys_{k}_{s}" for s in LIFECYCLE + ["lseek"] for k in ("enter", "exit")] + [
    "inode_set_ctime_to_ts", "task_newtask", "sched_process_fork", "sched_process_exec", "sched_process_exit"])
RECVMSG_EVENTS = ("sys_enter_recvmsg", "sys_exit_recvmsg", "sys_enter_recvmmsg", "sys_exit_recvmmsg")
DATA = sorted(WRITE_SYSCALLS | READ_SYSCALLS)
SOCK_EVENTS = ("sock_send_length", "sock_recv_length", "sk_data_ready")

Progress = Callable[[int, int], None]


def capture_id(meta: dict[str, Any]) -> str:
    """A stable id for a capture: hostname, start time and command pid, hashed short."""
    key = f"{meta.get('hostname')}|{meta.get('start_wall')}|{meta.get('command_pid')}|{meta.get('start_ts')}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]


_PLAIN_RUN = 128  # shorter runs of opens and closes go one record at a time (the columns' fixed cost)
_PLAIN_EVENTS = {f"sys_{k}_{sc}": (k == "exit", i, "ret" if k == "exit" else f)
                 for i, (sc, f) in enumerate(zip(PLAIN_SYSCALLS, PLAIN_FIELDS)) for k in ("enter", "exit")}


class _Lifecycle:
    """A batch's lifecycle records in time order, as columns: runs of opens and closes go to
    ``FdModel.feed_plain`` (``plain``), every other record as a dict to ``FdModel.feed`` (``record``)."""

    def __init__(self, batch: Batch, names, keep, more_names, more_keep):
        tables = []
        for group, kp in ((names, keep), (more_names, more_keep)):
            for name in group:
                t = batch.events.get(name)
                if t is None or not len(t):
                    continue
                mask = kp(name, t) if kp is not None else None
                if mask is not None:
                    t = t.select(mask)
                    if not len(t):
                        continue
                tables.append((name, t))
        self._tables = tables
        self._lists: dict[int, tuple] = {}  # table -> its rows as Python lists (once many were asked for)
        self._asked: dict[int, int] = {}
        n_t = len(tables)
        plain_of, exit_of, sc_of = np.zeros(n_t, bool), np.zeros(n_t, bool), np.full(n_t, -1, np.int64)
        args = []
        for j, (name, t) in enumerate(tables):
            how = _PLAIN_EVENTS.get(name)
            col = None if how is None else t.columns.get(how[2]) if how[2] is not None else np.zeros(len(t), np.int64)
            if col is not None:  # (an event without its field goes one at a time: its error says so)
                plain_of[j], exit_of[j], sc_of[j] = True, how[0], how[1]
            args.append(col.astype(np.int64, copy=False) if col is not None else np.zeros(len(t), np.int64))
        if not tables:
            self.ts, self._plain = np.zeros(0, np.int64), np.zeros(0, bool)
            return
        sizes = np.array([len(t) for _, t in tables], np.int64)
        self._starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        ix = np.concatenate([t.index for _, t in tables])
        at = np.full(len(batch), -1, np.int64)  # the rows in merged order (positions are distinct: no sort)
        at[ix] = np.arange(len(ix))
        o = self._o = at[at >= 0]
        self._tab = np.repeat(np.arange(n_t), sizes)[o]
        self.ts = np.concatenate([t.ts for _, t in tables])[o].astype(np.int64)
        self._tid = np.concatenate([t.pid for _, t in tables])[o]
        self._arg = np.concatenate(args)[o]
        self._plain, self._exit, self._sc = plain_of[self._tab], exit_of[self._tab], sc_of[self._tab]
        if len(self.ts) > 1 and (np.diff(self.ts) < 0).any():
            self._plain[:] = False  # (never seen: merged order is time order) one at a time, as before

    def runs(self, shortest: int) -> list[tuple[int, int]]:
        """(start, end) of each run of at least ``shortest`` opens and closes, in order."""
        edges = np.flatnonzero(np.diff(np.concatenate([[0], self._plain.view(np.int8), [0]])))
        starts, ends = edges[0::2], edges[1::2]
        long = ends - starts >= shortest
        return list(zip(starts[long].tolist(), ends[long].tolist()))

    def plain(self, a: int, b: int):
        """``feed_plain``'s columns for the records a..b."""
        s = slice(a, b)
        ex = self._exit[s]
        return (self._tid[s], self.ts[s], ex, self._sc[s], np.where(ex, 0, self._arg[s]),
                np.where(ex, self._arg[s], 0))

    def record(self, i: int) -> dict[str, Any]:
        """Record ``i`` as ``FdModel.feed`` takes it."""
        j = int(self._tab[i])
        r = int(self._o[i] - self._starts[j])
        name, t = self._tables[j]
        lists = self._lists.get(j)
        if lists is None:
            n = self._asked[j] = self._asked.get(j, 0) + 1
            if n <= len(t) // 16:  # a few rows of a large table: those rows only
                return {"ts": int(t.ts[r]), "tid": int(t.pid[r]), "event": name, **dict(python_row(t, r))}
            cols = python_columns(t)
            lists = self._lists[j] = (("ts", "tid", "event", *(k for k, _ in cols)), list(zip(
                t.ts.tolist(), t.pid.tolist(), itertools.repeat(name), *(c for _, c in cols))))
        keys, rows = lists
        return dict(zip(keys, rows[r]))


class _Snapshots:
    """Applies /proc snapshot records (time-ordered (ts, record, t0) from ``snapshot_stream``) to
    the fd model as the trace's time passes them."""

    def __init__(self, it: Iterator[tuple[int, dict, int]], fdm: FdModel):
        self._it = it
        self._fdm = fdm
        self._next = next(it, None)
        self.next_ts = self._next[0] if self._next is not None else 1 << 63

    def apply_until(self, ts: int | None) -> None:
        """Apply every record written at or before ``ts`` (None: all that are left)."""
        while self._next is not None and (ts is None or self._next[0] <= ts):
            self._apply_next()
        self.next_ts = self._next[0] if self._next is not None else 1 << 63

    def _apply_next(self) -> None:
        t, rec, t0 = self._next
        try:
            self._fdm.snapshot(rec, t, t0)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CaptureFormatError(f"a /proc snapshot record is malformed ({type(e).__name__}: {e}): "
                                     f"{str(rec)[:120]}", hint="proc.jsonl or opens.jsonl is damaged") from None
        self._next = next(self._it, None)

    def apply_passive(self, ts: int) -> None:
        """Apply, in order, the records written at or before ``ts`` up to the first that is not
        ``FdModel.passive`` (applied at its time, as ``apply_until`` does)."""
        while self._next is not None and self._next[0] <= ts and self._fdm.passive(self._next[1]):
            self._apply_next()
        self.next_ts = self._next[0] if self._next is not None else 1 << 63


class LiveSnapshots:
    """The /proc snapshot records of a capture being written (``ftraceipc live``): proc.jsonl and
    opens.jsonl read as they grow (whole lines only), placed on the trace clock as
    ``snapshot_stream`` places them, and applied to the fd model in time order as the trace's time
    passes them (``refresh`` before each round of batches). A record read after the trace passed its
    time is applied at once (post-mortem applies it at its time)."""

    def __init__(self, meta: dict[str, Any], cap: CaptureDir):
        self.meta = meta
        self._paths = [cap.proc_path, cap.opens_path]
        self._off = [0, 0]
        self._heap: list[tuple[int, int, dict, int]] = []
        self._seq = itertools.count()
        self._fdm: FdModel | None = None
        self._ppid_of: dict[int, int] = {}
        self.next_ts = 1 << 63
        self.records = 0

    def bind(self, fdm: FdModel, ppid_of: dict[int, int]) -> None:
        self._fdm, self._ppid_of = fdm, ppid_of
        self.refresh()

    def refresh(self) -> None:
        """Read the lines written since the last call."""
        for i, path in enumerate(self._paths):
            try:
                with open(path, "rb") as f:
                    f.seek(self._off[i])
                    data = f.read()
            except OSError:
                continue
            end = data.rfind(b"\n") + 1
            self._off[i] += end
            for line in data[:end].splitlines():
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                x = placed(self.meta, rec)
                if x is None:
                    continue
                if rec.get("ppid") is not None and "pid" in rec:
                    self._ppid_of[int(rec["pid"])] = int(rec["ppid"])
                heapq.heappush(self._heap, (x[0], next(self._seq), x[1], x[2]))
                self.records += 1
        self.next_ts = self._heap[0][0] if self._heap else 1 << 63

    def apply_until(self, ts: int | None) -> None:
        while self._heap and (ts is None or self._heap[0][0] <= ts):
            t, _, rec, t0 = heapq.heappop(self._heap)
            self._fdm.snapshot(rec, t, t0)
        self.next_ts = self._heap[0][0] if self._heap else 1 << 63

    def apply_passive(self, ts: int) -> None:
        """As ``_Snapshots.apply_passive``."""
        while self._heap and self._heap[0][0] <= ts and self._fdm.passive(self._heap[0][2]):
            t, _, rec, t0 = heapq.heappop(self._heap)
            self._fdm.snapshot(rec, t, t0)
        self.next_ts = self._heap[0][0] if self._heap else 1 << 63


class _Enclosing:
    """Match events of a task to the syscall it was inside, by their positions in the batch (the
    pairer's ``syscall_at``: exact at equal timestamps), carrying those whose syscall ends in a later
    batch forward (the pairer's ``completed_row`` then finds its exit). Events inside no syscall the
    trace saw enter are dropped. Bounded: at most the events of syscalls still open."""

    def __init__(self):
        z = np.zeros(0, np.int64)
        self.carry = {"tid": z, "ts": z, "val": z, "enter_ts": z}

    def pending(self) -> int:
        return len(self.carry["tid"])

    def match(self, ev: dict[str, np.ndarray], pairer: SyscallPairer) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Of ``ev`` (``_sock_events`` of the batch the pairer paired last) and the events carried:
        those inside a syscall that completed in that batch, in time order, and each one's row in
        that batch's syscalls (``pairer.out``)."""
        c = self.carry
        rows = [pairer.completed_row(c["tid"], c["enter_ts"])]
        enter = [c["enter_ts"]]
        tid = ev["tid"]
        if len(tid):
            o = order_by_tid(tid)
            at = pairer.syscall_at(tid[o], ev["pos"][o])
            row = np.empty(len(tid), np.int64)
            row[o] = np.where(at.inside, at.row, ROW_LOST)
            ets = np.empty(len(tid), np.int64)
            ets[o] = at.enter_ts
            rows.append(row)
            enter.append(ets)
        rows = np.concatenate(rows)
        cols = {k: np.concatenate([c[k], ev[k]]) for k in ("tid", "ts", "val")}
        cols["enter_ts"] = np.concatenate(enter)
        still = rows == ROW_OPEN
        self.carry = {k: v[still] for k, v in cols.items()}
        ok = rows >= 0
        return {k: cols[k][ok] for k in ("tid", "ts", "val")}, rows[ok]


@contextmanager
def _young_gc_rarely():
    """The lifecycle path makes a dict per record, by the million: CPython's cyclic collector then
    runs every 700 allocations and scans the young objects each time, for cycles that this code
    does not make. Collect the young generation every 100,000 allocations instead (20-30 % of an
    open-heavy build's time here); older generations as before; the thresholds come back after."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 100_000), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def build_model(capture, *, episodes: bool = False, episodes_dir: Path | None = None,
                progress: Progress | None = None) -> ipc.Model:
    """The IPC model of a capture directory. With ``episodes`` the per-sleep and per-wakeup rows are
    streamed to parquet files in ``episodes_dir`` (default CAPTURE/model) and read back lazily by the
    exporters (``Model.episodes``/``wakeups`` then hold the file paths' frames)."""
    with _young_gc_rarely():
        mb = ModelBuilder(capture, episodes=episodes, episodes_dir=episodes_dir)
        dec = mb.dec
        t0, t1 = mb.meta.get("start_ts"), mb.meta.get("stop_ts")
        span = max(1, (t1 or 0) - (t0 or 0))
        t_loop = time.perf_counter()
        for batch in dec.batches():
            mb.feed(batch)
            if progress is not None and len(batch) and t0 is not None and t1 is not None:
                progress(min(span, max(0, int(batch.ts[-1]) - t0)), span)
        t_loop = time.perf_counter() - t_loop
        model = mb.finish(dec.last_stats)
        # the batch loop alone (decoding + feeding, without the start and the finish): the rate live
        # mode has to sustain
        model.stats["batches_s"] = round(t_loop, 3)
        if progress is not None:
            progress(span, span)
        return model


class ModelBuilder:
    """The model built batch by batch (``feed``), then closed (``finish``): the one code path of
    ``build_model`` (over ``Decoder.batches()``) and of ``ftraceipc live`` (over a
    ``Decoder.follow()`` of a capture being written, with ``snapshots`` that grow too, finishing a
    forked copy each interval). ``meta``: the capture's meta (default its meta.json)."""

    def __init__(self, capture, *, episodes: bool = False, episodes_dir: Path | None = None,
                 meta: dict[str, Any] | None = None, snapshots=None, decoder: Decoder | None = None):
        self.t_start = time.perf_counter()
        self.path = path = Path(capture)
        self.cap = cap = CaptureDir(path)
        self.meta_obj = cap.read_meta()
        self.meta = meta = dict(meta) if meta is not None else self.meta_obj.to_json()
        self.dec = decoder if decoder is not None else Decoder(path)
        events = set(meta.get("events") or [])
        self.have = have = {e.split(":", 1)[-1] for e in events}

        self.fdm = fdm = FdModel(tgid_of=load_saved_tgids(path / "tracefs" / "saved_tgids"),
                                 pipefs_inode_events="inode_set_ctime_to_ts" in have)
        fdm.exec_unseen = "sched_process_exec" not in have
        missing = _missing_lifecycle(events, set(meta.get("skipped_events") or []))
        if missing:
            fdm.no_inference = (f"the capture lacks {missing[0]}" + (
                f" and {len(missing) - 1} more fd-lifecycle events" if len(missing) > 1 else ""))
        if snapshots is None:
            proc_snaps, snaps = snapshot_stream(meta, cap)
            self.snaps = _Snapshots(snaps, fdm)
            ppid_of = {int(r["pid"]): int(r["ppid"]) for _, r, _ in proc_snaps
                       if r.get("ppid") is not None and "pid" in r}
        else:  # live: records that arrive while the capture runs (``snapshots.bind(fdm, ppid_of)``)
            ppid_of = {}
            self.snaps = snapshots
            snapshots.bind(fdm, ppid_of)
        self.tracer = tracer = set(int(t) for t in meta.get("tracer_tids") or [])
        self._tracer_arr = np.fromiter(tracer, dtype=np.int64, count=len(tracer))  # for np.isin
        self.pairer = pairer = SyscallPairer()
        self.episodes = episodes
        self.sinks: dict[str, Any] = {}
        if episodes:
            sink_dir = Path(episodes_dir) if episodes_dir else path / "model"
            sink_dir.mkdir(parents=True, exist_ok=True)
            self.sinks = {"episodes": _ParquetSink(sink_dir / "episodes.parquet"),
                          "wakeups": _ParquetSink(sink_dir / "wakeups.parquet")}
        self.crit = crit = critical.Collector()
        self.sched = SchedModel(pairer, meta=meta, tgid_of=fdm.tgid_of, ppid_of=ppid_of, tracer_tids=tracer,
                                episodes=episodes, episode_sink=self.sinks.get("episodes"),
                                wakeup_sink=self.sinks.get("wakeups"), crit=crit)
        self.enc_sock = _Enclosing()
        self.enc_ready = _Enclosing()
        # per-batch sums (dicts of columns), folded every 16 batches and at the end
        self.io_parts: list[dict[str, np.ndarray]] = []
        self.io_acc: dict[str, np.ndarray] | None = None
        self.dest_parts: list[dict[str, np.ndarray]] = []
        self.dest_acc: dict[str, np.ndarray] | None = None
        self.n_events = 0
        self.last_ts: int | None = None
        # events turned off while tracing (live --budget): at each change's time, the syscalls it
        # turned off that are still open will never show their exit
        self.event_changes: list[EventChange] = cap.event_changes()
        self._to_apply = [c for c in self.event_changes if c.off]
        self.narrowed_open = 0  # open syscalls dropped at a change

    def add_event_change(self, ch: EventChange) -> None:
        """A change made now (live mode), before any event after it is fed."""
        if any(c.ts == ch.ts for c in self.event_changes):
            return
        self.event_changes.append(ch)
        if ch.off:
            self._to_apply.append(ch)
            self._to_apply.sort(key=lambda c: c.ts)

    def add_tracer(self, pids) -> None:
        """More of ftraceipc's own processes (live mode's analysis processes): left out from now on."""
        pids = {int(t) for t in pids}
        self.tracer |= pids
        self._tracer_arr = np.fromiter(self.tracer, dtype=np.int64, count=len(self.tracer))
        self.sched.tracer |= pids
        self.sched.tracer_pids |= pids

    def asleep(self) -> pd.DataFrame:
        """The tasks asleep at the last event fed (live mode's "blocked right now"): ``tid``,
        ``since_ts``, ``op`` (the syscall it sleeps in, None outside one) and ``handle`` (its fd's
        handle, -1 none: ``fdm.rids()`` names it after ``finish``). Call before ``finish``."""
        st = self.sched._st
        o = np.flatnonzero(st["ep"])
        tid, since, op, fd = st["tid"][o], st["ts"][o], st["op"][o], st["fd"][o]
        h = np.full(len(o), -1, np.int64)
        m = fd >= 0
        if m.any():
            h[m] = self.fdm.resolve(tid[m], fd[m], since[m])
        names = self.pairer.names
        return pd.DataFrame({"tid": tid, "since_ts": since, "handle": h,
                             "op": [names[i] if 0 <= i < len(names) else None for i in op.tolist()]})

    def set_meta(self, meta: dict[str, Any]) -> None:
        """The capture's meta as it is now (live mode: at the end, meta.json with the stop time,
        the losses and the exit code), seen by every part that holds it."""
        self.meta.clear()
        self.meta.update(meta)
        self.meta_obj = self.cap.read_meta()

    def feed(self, batch: Batch) -> None:
        """One decoded batch, in time order after the previous one."""
        while self._to_apply and len(batch) and int(batch.ts[-1]) >= self._to_apply[0].ts:
            ch = self._to_apply.pop(0)
            n = int(np.searchsorted(batch.ts, ch.ts, side="left"))
            if n:
                head, batch = batch.split(n)
                self._feed(head)
            off = {e.split(":", 1)[-1][len("sys_enter_"):] for e in ch.off
                   if e.split(":", 1)[-1].startswith("sys_enter_")}
            self.narrowed_open += self.pairer.drop_open(off)
        if len(batch):
            self._feed(batch)

    def _feed(self, batch: Batch) -> None:
        fdm, snaps, pairer, dec = self.fdm, self.snaps, self.pairer, self.dec
        crit, tracer = self.crit, self.tracer
        self.n_events += len(batch)
        # (1) lifecycle records and snapshots, in time order
        # recvmsg may bring fds (SCM_RIGHTS): fed one by one for every process whose table is (or may
        # become within this batch) complete; processes already known incomplete are skipped
        incomplete = np.fromiter((pid for pid, t in fdm.tables.items() if not t.complete), dtype=np.int64)

        def recv_keep(name, t, incomplete=incomplete):
            return ~np.isin(fdm.pids_of(t.pid), incomplete)

        lc = _Lifecycle(batch, [n for n in batch.events if n in LIFECYCLE_EVENTS], self._not_ours,
                        [n for n in RECVMSG_EVENTS if n in batch.events], recv_keep)
        rec = None
        try:
            ts, ts_l, pos = lc.ts, lc.ts.tolist(), 0
            for a, b in [*lc.runs(_PLAIN_RUN), (len(ts_l), len(ts_l))]:
                for i in range(pos, a):  # other records, and short runs of opens and closes: one by one
                    if snaps.next_ts <= ts_l[i]:
                        snaps.apply_until(ts_l[i])
                    rec = lc.record(i)
                    fdm.feed(rec)
                p = a
                while p < b:  # a run of opens and closes: in columns, cut where a snapshot comes
                    if snaps.next_ts <= ts_l[p]:
                        snaps.apply_until(ts_l[p])
                    snaps.apply_passive(ts_l[b - 1])  # (those that only name fds: no cut)
                    nt = snaps.next_ts
                    e = b if nt > ts_l[b - 1] else p + int(np.searchsorted(ts[p:b], nt, side="left"))
                    if e - p >= _PLAIN_RUN:
                        fdm.feed_plain(*lc.plain(p, e))
                    else:
                        for i in range(p, e):
                            rec = lc.record(i)
                            fdm.feed(rec)
                    p = e
                pos = b
        except KeyError as e:
            field = e.args[0] if e.args else None
            event = e.args[1] if len(e.args) > 1 else rec["event"] if rec is not None and field not in rec else None
            if event is None:
                raise
            fmt = dec.capture.format_files().get(next((f.full_name for f in dec.format_list
                                                        if f.name == event), ""))
            raise CaptureFormatError(f"{event} events have no field {field!r}: their format file is "
                                     "damaged", path=str(fmt) if fmt else None) from None
        if len(batch):
            snaps.apply_until(int(batch.ts[-1]))
            self.last_ts = int(batch.ts[-1])
        # (2) syscalls paired, data syscalls resolved
        iv = pairer.pair(batch)
        out = pairer.out
        if len(iv):
            paired = out["enter_ts"] >= 0
            crit.add_syscalls(out["tid"][paired], out["enter_ts"][paired], out["exit_ts"][paired])
            handle = fdm.resolve(out["tid"], out["fd"], out["enter_ts"])
        else:
            handle = np.zeros(0, np.int64)
        iv = iv.assign(handle=handle)
        # (3) sock tracepoints inside syscalls
        sock = _sock_events(batch, ("sock_send_length", "sock_recv_length"))
        if len(sock["tid"]) or self.enc_sock.pending():
            ev, row = self.enc_sock.match(sock, pairer)
            if len(row):
                h, v = handle[row], ev["val"]
                u = first_of_each([h, v])
                fdm.bind_sk(h[u], v[u])
        ready = _sock_events(batch, ("sk_data_ready",))
        if len(ready["tid"]) or self.enc_ready.pending():
            ev, row = self.enc_ready.match(ready, pairer)
            keep = np.isin(out["code"][row], pairer.codes_of(WRITE_SYSCALLS)) & (out["ret"][row] >= 0)
            if keep.any():
                row = row[keep]
                tid, ts, val = ev["tid"][keep], ev["ts"][keep], ev["val"][keep]
                h = handle[row]
                first = first_of_each([h, val])  # the earliest send of each (rows are in time order)
                fdm.link_peer(h[first], val[first], ts[first])
                # one data-ready per datagram: destination per (task, handle, receiving sk)
                u = first_of_each([tid, ts])
                g = Groups([tid[u], h[u], val[u]])
                self.dest_parts.append({"tid": g.key(tid[u]), "handle": g.key(h[u]), "val": g.key(val[u]),
                                        "messages": g.size()})
                if len(self.dest_parts) >= 16:
                    self.dest_acc = _fold_sums(self.dest_acc, self.dest_parts, _DEST_KEYS, _DEST_SUMS)
                    self.dest_parts = []
        # (4) I/O per (task, fd, handle, syscall), with the wakeups made inside the calls and the sums
        # that fit each call's duration to its wakeups (calls its task stayed on CPU through)
        n = len(iv)
        if n:
            wakes, switched = wakes_inside(batch, pairer, n)
            # a call entered in an earlier batch: its switches and wakeups there are not counted here,
            # so it stays out of the fit
            switched |= out["enter_ts"] < int(batch.ts[0])
            sel = np.isin(out["code"], pairer.codes_of(DATA)) & (out["ret"] >= 0)
            r = np.flatnonzero(sel)
            if tracer and len(r):  # our tasks, and the threads of our processes (the embedded database's, say)
                r = r[~np.isin(fdm.pids_of(out["tid"][r]), self._tracer_arr)]
            if len(r):
                cols = {k: out[k][r] for k in ("tid", "fd", "code", "enter_ts", "exit_ts", "ret")}
                cols["handle"] = handle[r]
                cols["wakes"] = wakes[r]
                cols.update(_fit_terms(cols["wakes"], cols["enter_ts"], cols["exit_ts"], switched[r]))
                g = Groups([cols[k] for k in _IO_KEYS])
                part = {k: g.key(cols[k]) for k in _IO_KEYS}
                part.update(calls=g.size(), bytes=g.reduce(cols["ret"]), first_ts=g.reduce(cols["enter_ts"], "min"),
                            last_ts=g.reduce(cols["exit_ts"], "max"), **{c: g.reduce(cols[c]) for c in _FIT_SUMS})
                self.io_parts.append(part)
                if len(self.io_parts) >= 16:
                    self.io_acc = _fold_sums(self.io_acc, self.io_parts, _IO_KEYS, _IO_HOW)
                    self.io_parts = []
        # (5) sleeps and wakeups
        self.sched.feed(batch, iv)
        # later queries: syscalls still open (pinned) and those of later batches (not before this
        # batch's end): the fd history can forget what none of them can see
        if len(batch):
            fdm.settle(int(batch.ts[-1]), *pairer.open_calls())

    def _not_ours(self, name: str, t) -> np.ndarray | None:
        """The fd-lifecycle syscalls of ftraceipc's own processes are left out (their tables are
        never asked: their tasks are out of every result). The /proc watcher opens and closes ~500
        files a second and live mode's analysis processes import and open their databases: kept,
        they cost the fd model's per-record path and a handle each. Process lifecycle stays (which
        process a thread belongs to)."""
        if not self.tracer or not (name.startswith("sys_") or name == "inode_set_ctime_to_ts"):
            return None
        return ~np.isin(self.fdm.pids_of(t.pid), self._tracer_arr)

    def retire(self, before: int) -> int:
        """Live mode: what only a critical path from before ``before`` would need leaves memory
        (``critical.Collector.retire``: to temporary files, read back by a ``finish`` of the whole
        run). The rows moved."""
        return self.crit.retire(int(before)) if self.crit is not None else 0

    def finish(self, decode_stats=None, path_since: int | None = None) -> ipc.Model:
        """The model of everything fed (the builder is spent: live mode finishes a forked copy).
        ``decode_stats``: the decoder's summary, kept in ``model.decode_stats``. ``path_since``:
        the critical path from that time only (live mode's window; default the whole run)."""
        fdm, pairer, meta, dec = self.fdm, self.pairer, self.meta, self.dec
        self.snaps.apply_until(None)
        io_acc = _io_frame(_fold_sums(self.io_acc, self.io_parts, _IO_KEYS, _IO_HOW), pairer)
        dest = _fold_sums(self.dest_acc, self.dest_parts, _DEST_KEYS, _DEST_SUMS)
        dest = pd.DataFrame(dest) if dest is not None else None
        fdm.finish()
        rid_of = fdm.rids()
        open_iv = pairer.finish()
        if len(open_iv):
            open_iv = open_iv.assign(handle=fdm.resolve(open_iv["tid"].to_numpy(), open_iv["fd"].to_numpy(),
                                                        open_iv["enter_ts"].to_numpy()))
        sched = self.sched
        s = sched.finish(rid_of, open_iv, _peer_of(fdm))
        for sk in self.sinks.values():
            sk.close()

        model = ipc.Model(capture=str(self.path), capture_id=capture_id(meta), meta=meta)
        model.tasks = s["tasks"]
        model.blocked = s["blocked"]
        model.wakes = s["wakes"]
        model.waits = s["waits"]
        have = self.have
        t_crit = time.perf_counter()
        model.critical = critical.compute(self.crit, meta, rid_of=rid_of, names=pairer.names, tasks=model.tasks,
                                          have_switches=("sched_switch" in have) if have
                                          else s["stats"]["switches"] > 0, since=path_since)
        t_crit = time.perf_counter() - t_crit
        if model.critical is not None:  # each task's main wait: the one on the critical path first
            model.waits = mark_top(model.waits, model.critical.waits)
        sched.crit = None
        self.crit = None
        if self.episodes:
            model.episodes = self.sinks["episodes"].read(rid_of)
            model.wakeups = self.sinks["wakeups"].read(rid_of)
        not_ipc = _io_tables(model, fdm, io_acc, dest)  # calls per pid
        model.gaps = capture_gaps(meta)
        model.event_changes = [c.to_json() for c in self.event_changes]
        model.impossible = [g.text for g in model.gaps]
        model.decode_stats = decode_stats
        elapsed = time.perf_counter() - self.t_start
        n_events = self.n_events
        model.stats = {
            "events": n_events, "build_s": round(elapsed, 3), "not_ipc_calls": sum(not_ipc.values()),
            "not_ipc_calls_by_pid": {str(pid): n for pid, n in sorted(not_ipc.items())},
            "events_per_s": round(n_events / elapsed) if elapsed > 0 else None,
            "lost_events": sum(c.total for c in self.meta_obj.lost.values()),
            "fd_notes": dict(fdm.notes), "conflicts": fdm.conflicts[:50], "n_conflicts": len(fdm.conflicts),
            "unpaired_syscall_exits": int(getattr(pairer, "unpaired", 0)),
            "narrowed_open_syscalls": self.narrowed_open,
            "fd_handles": len(fdm.handles), "fd_handles_reclaimed": fdm.reclaimed,
            "fd_bindings_kept": len(fdm.history()),
            "sched": s.get("stats", {}),
            "critical_s": round(t_crit, 3),
            "decode_warnings": [str(w) for w in dec.warnings[:20]] if hasattr(dec, "warnings") else [],
        }
        return model


def _peer_of(fdm: FdModel) -> dict[str, str]:
    """rid -> the rid of its connected other end (sockets with a known peer), as in ``resources.peer``."""
    out: dict[str, str] = {}
    seen: set[int] = set()
    for h in fdm.handles:
        r = h.resource
        if r is None or id(r) in seen:
            continue
        seen.add(id(r))
        if r.peer is not None:
            a, b = r.rid(), r.peer.root().rid()
            if a is not None and b is not None:
                out[a] = b
    return out


def _sock_events(batch: Batch, names) -> dict[str, np.ndarray]:
    """The AF_UNIX events of ``names`` in the batch: ``tid``, ``ts``, ``val`` (the sk address) and
    ``pos`` (place in the batch), in position order."""
    parts = []
    for name in names:
        t = batch.events.get(name)
        if t is None or not len(t):
            continue
        col = t.columns.get("sk")
        if col is None:
            col = t.columns.get("skaddr")  # sk_data_ready names it so
        if col is None:
            continue
        part = {"tid": t.pid.astype(np.int64), "ts": t.ts.astype(np.int64, copy=False),
                "val": col.astype(np.uint64).astype(np.int64), "pos": t.index.astype(np.int64)}
        fam = t.columns.get("family")
        if fam is not None:
            m = fam == 1
            part = {k: v[m] for k, v in part.items()}
        parts.append(part)
    if not parts:
        z = np.zeros(0, np.int64)
        return {"tid": z, "ts": z, "val": z, "pos": z}
    if len(parts) == 1:
        return parts[0]
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    o = np.argsort(out["pos"], kind="stable")
    return {k: v[o] for k, v in out.items()}


_IO_KEYS = ("tid", "fd", "handle", "code")
_DEST_KEYS = ("tid", "handle", "val")
_DEST_SUMS = {"messages": "sum"}


def _fold_sums(acc: dict[str, np.ndarray] | None, parts: list[dict[str, np.ndarray]], keys,
               how: dict[str, str]) -> dict[str, np.ndarray] | None:
    """Per-batch sums (and mins, maxes) folded into one row per key, in first-appearance order."""
    if not parts:
        return acc
    parts = ([acc] if acc is not None else []) + parts
    cols = {k: np.concatenate([p[k] for p in parts]) for k in list(keys) + list(how)}
    g = Groups([cols[k] for k in keys])
    out = {k: g.key(cols[k]) for k in keys}
    out.update({c: g.reduce(cols[c], h) for c, h in how.items()})
    return out


# Per data syscall, sums that fit its duration d to the wakeups x it made, d = a + b·x, over the calls
# its task was not switched out of (least squares): b is what each wakeup cost the caller.
_FIT_SUMS = ("wakes", "fit_n", "fit_x", "fit_xx", "fit_d", "fit_xd")
# at least this many such calls, whose wakeups vary (variance >= this), to trust the slope
FIT_MIN_CALLS = 10
FIT_MIN_VAR = 0.25


def _fit_terms(wakes: np.ndarray, enter_ts: np.ndarray, exit_ts: np.ndarray,
               switched: np.ndarray) -> dict[str, np.ndarray]:
    x = wakes.astype(np.float64)
    d = (exit_ts - enter_ts).astype(np.float64)
    u = (~switched & (enter_ts >= 0)).astype(np.float64)
    return {"fit_n": u, "fit_x": x * u, "fit_xx": x * x * u, "fit_d": d * u, "fit_xd": x * d * u}


def wake_cost_ns(s: pd.DataFrame) -> np.ndarray:
    """From the ``_FIT_SUMS`` of some calls: the time they spent waking other tasks, their wakeups
    times the fitted cost of one (the slope of duration on wakeups over the calls not switched out,
    at least 0, and at most their own mean duration per wakeup). 0 where the fit cannot tell: fewer
    than FIT_MIN_CALLS such calls, or wakeups that hardly vary from call to call."""
    n = s["fit_n"].to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, md = s["fit_x"] / n, s["fit_d"] / n
        var = s["fit_xx"] / n - mx * mx
        slope = (s["fit_xd"] / n - mx * md) / var
        ok = (n >= FIT_MIN_CALLS) & (var >= FIT_MIN_VAR)
        cap = np.where(s["fit_x"] > 0, s["fit_d"] / s["fit_x"], 0.0)
        per = np.clip(np.where(ok, slope, 0.0), 0.0, cap)
    return np.nan_to_num(per * s["wakes"].to_numpy(np.float64)).round().astype(np.int64)


_IO_HOW = {"calls": "sum", "bytes": "sum", "first_ts": "min", "last_ts": "max", **{c: "sum" for c in _FIT_SUMS}}


def _io_frame(acc: dict[str, np.ndarray] | None, pairer: SyscallPairer) -> pd.DataFrame | None:
    """The folded I/O sums as the frame ``_io_tables`` reads (syscall names for codes)."""
    if acc is None:
        return None
    cols = {k: acc[k] for k in ("tid", "fd", "handle")}
    cols["syscall"] = pd.Series(pairer.name_array(acc["code"]), dtype=object)
    cols.update({c: acc[c] for c in _IO_HOW})
    return pd.DataFrame(cols)


def _io_tables(model: ipc.Model, fdm: FdModel, io: pd.DataFrame | None, dest: pd.DataFrame | None) -> dict[int, int]:
    """WRITES/READS, FLOWS, resources and the unattributed list from the I/O sums."""
    rid_of = {}
    res_of = {}
    reason_of = {}
    if io is not None and len(io):
        for h in io["handle"].unique().tolist():
            reason = fdm.reason_of(int(h))
            reason_of[h] = reason
            if reason is None:
                r = fdm.handles[int(h)].resource
                rid_of[h] = r.rid()
                res_of[r.rid()] = r
        io = io.assign(rid=io["handle"].map(rid_of))
        ok = io[io["rid"].notna()]
        bad = io[io["rid"].isna()]
    else:
        ok = bad = None
    # resources: every IPC object with I/O, every one made during the capture, and their peers
    used = dict(res_of)
    for r in fdm.live_resources():
        rid = r.rid()
        if rid is not None and r.evidence - {"snapshot", "later snapshot"}:
            used.setdefault(rid, r)
    for r in list(used.values()):
        if r.peer is not None and r.peer.root().rid() is not None:
            used.setdefault(r.peer.root().rid(), r.peer.root())
    rows = []
    for rid, r in sorted(used.items()):
        peer = r.peer.root().rid() if r.peer is not None else None
        rows.append({"rid": rid, "kind": r.kind, "inode": r.inode, "path": r.path, "peer": peer,
                     "evidence": sorted(r.evidence), "capacity": r.capacity})
    model.resources = pd.DataFrame(rows, columns=ipc.RESOURCE_COLUMNS) if rows else ipc.empty(ipc.RESOURCE_COLUMNS)
    # WRITES / READS
    if ok is not None and len(ok):
        ok = ok.assign(type=np.where(ok["syscall"].isin(list(WRITE_SYSCALLS)), "WRITES", "READS"))
        g = ok.groupby(["type", "tid", "rid"], sort=True).agg(
            calls=("calls", "sum"), bytes=("bytes", "sum"), first_ts=("first_ts", "min"),
            last_ts=("last_ts", "max"), syscalls=("syscall", lambda s: sorted(set(s))),
            **{c: (c, "sum") for c in _FIT_SUMS}).reset_index()
        g["wake_ns"] = wake_cost_ns(g)
        model.io = g[ipc.IO_COLUMNS + ipc.IO_WAKE_COLUMNS]
    # unattributed (not IPC at all is not a failure: counted only)
    acc: dict[tuple, list[int]] = {}
    not_ipc: dict[int, int] = {}  # pid -> calls on fds known not to be IPC (files, ttys...)
    gate_tid = int((model.meta or {}).get("command_pid") or -1)
    if bad is not None and len(bad):
        pid_of = fdm.pids_of(bad["tid"].to_numpy())
        for (tid, fd, h, sc, calls, nbytes, first), pid in zip(
                bad[["tid", "fd", "handle", "syscall", "calls", "bytes", "first_ts"]].itertuples(index=False, name=None),
                pid_of):
            if fd < 0 and int(tid) == gate_tid and sc == "read" and (calls, nbytes) == (1, 1):
                continue  # the traced command's read of ftraceipc's gate byte, begun before tracing (ours)
            reason = fdm.reason_of(int(h)) or Reason.UNKNOWN_FD
            if fd < 0:
                reason = Reason.ENTER_MISSED
            elif h == -1 and fdm.unknown_pairs.get(int(pid), first + 1) <= first:
                reason = Reason.FDS_UNKNOWN
            if reason is Reason.NOT_IPC:
                not_ipc[int(pid)] = not_ipc.get(int(pid), 0) + int(calls)
                continue
            a = acc.setdefault((int(pid), int(tid), int(fd), sc, reason.value), [0, 0])
            a[0] += int(calls)
            a[1] += int(nbytes)
    un = [ipc.Unattributed(pid, tid, fd, sc, c, b, why) for (pid, tid, fd, sc, why), (c, b) in acc.items()]
    un.sort(key=lambda u: (-u.calls, u.pid, u.fd))
    model.unattributed = un
    # FLOWS: writer -> reader through the resource written into
    if len(model.io):
        model.flows = _flows(model.io, used, fdm, dest)
    return not_ipc


def _flows(io: pd.DataFrame, res: dict, fdm: FdModel, dest: pd.DataFrame | None) -> pd.DataFrame:
    writes = io[io["type"] == "WRITES"]
    reads = io[io["type"] == "READS"]
    readers = {rid: list(zip(g["tid"].tolist(), g["bytes"].tolist())) for rid, g in reads.groupby("rid")}
    # datagrams to a destination: (tid, rid written into) -> [(dest rid, messages)]
    dests: dict[tuple[int, str], list[tuple[str, int]]] = {}
    if dest is not None and len(dest):
        by_sk = fdm._sk_index()
        for tid, h, sk, msgs in dest[["tid", "handle", "val", "messages"]].itertuples(index=False, name=None):
            if h < 0:
                continue
            r = fdm.handles[int(h)].resource
            dr = by_sk.get(int(sk) & U64)
            if r is None or dr is None:
                continue
            dr = dr.root()
            if r.kind == "unix_dgram" and dr.rid() is not None:
                dests.setdefault((int(tid), r.rid()), []).append((dr.rid(), int(msgs)))
    rows = []
    for tid, rid, calls, nbytes in writes[["tid", "rid", "calls", "bytes"]].itertuples(index=False, name=None):
        r = res.get(rid)
        if r is None:
            continue
        targets: list[tuple[str, float]] = []
        if r.kind in ("pipe", "fifo"):
            targets = [(rid, 1.0)]
        elif r.peer is not None and r.peer.root().rid() is not None:
            targets = [(r.peer.root().rid(), 1.0)]
        elif (tid, rid) in dests:
            ds = dests[(tid, rid)]
            tot = sum(m for _, m in ds)
            targets = [(d, m / tot) for d, m in ds]
        for read_rid, share in targets:
            for rtid, _rb in readers.get(read_rid, []):
                rows.append({"writer": int(tid), "reader": int(rtid), "via": rid, "read_rid": read_rid,
                             "bytes": int(round(nbytes * share)) if share < 1 else int(nbytes),
                             "messages": int(round(calls * share)) if share < 1 else int(calls)})
    if not rows:
        return ipc.empty(ipc.FLOW_COLUMNS)
    return pd.DataFrame(rows, columns=ipc.FLOW_COLUMNS)


def _missing_lifecycle(events: set[str], skipped: set[str]) -> list[str]:
    """Default fd-lifecycle events the capture lacks (and the kernel has): without every one, a fd
    table is never known whole and the fds of pipe/socketpair are not inferred."""
    from ftraceipc.capture.events import DEFAULT_EVENTS

    need = {f"sys_{k}_{s}" for s in LIFECYCLE for k in ("enter", "exit")} | {"sched_process_exec"}
    out = [e for e in DEFAULT_EVENTS if e.split(":", 1)[-1] in need and e not in events and e not in skipped]
    if not ({"task:task_newtask", "sched:sched_process_fork"} & events):
        out.append("task:task_newtask")
    return out


def capture_gaps(meta: dict[str, Any]) -> list[ipc.Gap]:
    """What a capture with these events (meta.json) cannot support: the model tables it leaves empty
    and the attributions it makes less exact, each with the events it lacks. Needs only the meta."""
    events = set(meta.get("events") or [])
    have = {e.split(":", 1)[-1] for e in events}
    missing = _missing_lifecycle(events, set(meta.get("skipped_events") or []))
    io_tables = ("WRITES", "READS", "FLOWS")
    out = []
    if "sched_process_exec" not in have:
        out.append(ipc.Gap(("sched:sched_process_exec",), io_tables,
                           "WRITES, READS and FLOWS through fds: no sched:sched_process_exec events, so an exec "
                           "may have closed any fd unseen; all I/O is listed as unattributed"))
    if missing:
        out.append(ipc.Gap(tuple(missing), (),
                           f"fds of pipe/socketpair: the capture lacks {', '.join(missing[:4])}"
                           f"{' and more' if len(missing) > 4 else ''}, so no process's fd table is known whole; "
                           "these fds are named by /proc snapshots only"))
    data = {f"sys_exit_{s}" for s in DATA}
    if not data & have:
        out.append(ipc.Gap(("syscalls:sys_exit_read", "syscalls:sys_exit_write"),
                           io_tables + ("BLOCKED_ON", "WAKES", "WAITS_FOR"),
                           "WRITES, READS and FLOWS, and the resources of sleeps and wakeups (BLOCKED_ON, WAKES, "
                           "WAITS_FOR): no read/write/send/recv syscall events in the capture "
                           "(capture with the default event set)"))
    if "sched_switch" not in have:
        out.append(ipc.Gap(("sched:sched_switch",), ("BLOCKED_ON", "WAITS_FOR"),
                           "BLOCKED_ON: no sched:sched_switch events"))
    if "sched_waking" not in have:
        out.append(ipc.Gap(("sched:sched_waking",), ("WAKES", "WAITS_FOR"), "WAKES: no sched:sched_waking events"))
    if not {f"sys_exit_{s}" for s in WAIT_OPS} & have:
        out.append(ipc.Gap(tuple(f"syscalls:sys_exit_{s}" for s in ("poll", "ppoll", "select", "epoll_wait")),
                           ("BLOCKED_ON", "WAITS_FOR", "SYSCALL_TIME"),
                           "sleeps in poll/select/epoll_wait: no poll, select or epoll syscall events, so a task "
                           "waiting there is not known to wait on the fd it was woken through (BLOCKED_ON, "
                           "WAITS_FOR) and its time there is not counted as time inside syscalls"))
    if not {"sys_exit_close", "sys_exit_pipe2", "sys_exit_dup2"} & have:
        out.append(ipc.Gap(("syscalls:sys_exit_close", "syscalls:sys_exit_pipe2", "syscalls:sys_exit_dup2"), (),
                           "fd lifecycle: no close/pipe2/dup syscall events; fds are named by /proc snapshots only"))
    if "inode_set_ctime_to_ts" not in have:
        out.append(ipc.Gap(("timestamp:inode_set_ctime_to_ts",), (),
                           "pipe inodes: no timestamp:inode_set_ctime_to_ts events; pipes made during the capture "
                           "are named by /proc snapshots only"))
    if not {"sock_send_length", "sock_recv_length"} & have:
        out.append(ipc.Gap(("sock:sock_send_length", "sock:sock_recv_length"), (),
                           "socket identity: no sock:sock_send_length/sock_recv_length events; sockets made during "
                           "the capture are named by /proc snapshots only"))
    if "sk_data_ready" not in have:
        out.append(ipc.Gap(("sock:sk_data_ready",), (), "datagram destinations and socket peers: no sock:sk_data_ready events"))
    return out


class _ParquetSink:
    """Episode rows streamed to one parquet file, batch by batch (bounded memory)."""

    def __init__(self, path: Path):
        self.path = path
        self.writer = None
        self.schema = None

    def __call__(self, df: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not len(df):
            return
        table = pa.Table.from_pandas(df, preserve_index=False)
        if self.writer is None:
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.write_table(table.cast(self.schema))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def read(self, rid_of: dict[int, str | None]) -> pd.DataFrame | None:
        if not self.path.exists():
            return None
        df = pd.read_parquet(self.path)
        for col in ("handle", "via_handle"):
            if col in df.columns:
                target = "rid" if col == "handle" else "via"
                df[target] = df[col].map(lambda h: rid_of.get(int(h)) if h is not None and h >= 0 else None)
                df = df.drop(columns=[col])
        return df
