"""``FdModel.feed_plain`` (runs of opens and closes in columns) makes the same fd model as ``feed`` of
each record in turn: random record sequences, cut into runs at random, against one at a time."""

import random

import numpy as np
import pytest

from ftraceipc.model.fd import O_CLOEXEC, PLAIN_FIELDS, PLAIN_SYSCALLS, FdModel

PIDS = {100: 100, 101: 100, 102: 100, 200: 200}  # tid -> tgid: three threads of 100, and 200


def records(rng: random.Random, n: int) -> list[dict]:
    """Opens and closes of several threads, interleaved: fds reused, closes of unknown fds, failed
    calls, exits without an enter, enters left open across runs."""
    out, ts = [], 10_000
    inside: dict[int, tuple[str, dict]] = {}
    for _ in range(n):
        ts += rng.choice([0, 1, 7])  # equal timestamps too
        tid = rng.choice(list(PIDS))
        if tid in inside and rng.random() < 0.8:
            sc, _args = inside.pop(tid)
            if sc == "close":
                ret = 0 if rng.random() < 0.85 else -9
            else:
                ret = rng.randrange(3, 9) if rng.random() < 0.9 else -2
            out.append({"ts": ts, "tid": tid, "event": f"sys_exit_{sc}", "ret": ret})
        elif rng.random() < 0.03:  # an exit whose enter is not in the trace (or of another call)
            out.append({"ts": ts, "tid": tid, "event": f"sys_exit_{rng.choice(PLAIN_SYSCALLS)}", "ret": 3})
        else:
            sc = rng.choice(PLAIN_SYSCALLS + ("close", "openat"))
            f = PLAIN_FIELDS[PLAIN_SYSCALLS.index(sc)]
            args = {} if f is None else {f: rng.randrange(0, 10) if f == "fd" else rng.choice([0, O_CLOEXEC, 0o100])}
            inside[tid] = (sc, args)
            out.append({"ts": ts, "tid": tid, "event": f"sys_enter_{sc}", **args})
    return out


def seeded() -> FdModel:
    """A model whose tables hold fds already: from a snapshot, a pipe, and a dup (one handle, two fds)."""
    m = FdModel(tgid_of=dict(PIDS))
    fds = {"0": "/dev/null", "3": "pipe:[77]", "4": "pipe:[77]", "5": "/etc/hosts"}
    m.snapshot({"kind": "fds", "when": "start", "pid": 100, "fds": fds, "cloexec": [5]}, 5)
    m.snapshot({"kind": "fds", "when": "start", "pid": 200, "fds": {"0": "/dev/null"}, "cloexec": []}, 5)
    for ev in ({"event": "sys_enter_dup", "fildes": 5}, {"event": "sys_exit_dup", "ret": 6}):
        m.feed({"ts": 50, "tid": 100, **ev})
    return m


def feed_run(m: FdModel, run: list[dict]) -> None:
    """``run`` through ``feed_plain``, as columns."""
    sc = [PLAIN_SYSCALLS.index(r["event"].split("_", 2)[2]) for r in run]
    ex = [r["event"].startswith("sys_exit_") for r in run]
    arg = [0 if e or PLAIN_FIELDS[s] is None else r[PLAIN_FIELDS[s]] for r, s, e in zip(run, sc, ex)]
    m.feed_plain(np.array([r["tid"] for r in run]), np.array([r["ts"] for r in run]), np.array(ex),
                 np.array(sc), np.array(arg), np.array([r.get("ret", 0) for r in run]))


def feed_in_runs(m: FdModel, recs: list[dict], rng: random.Random) -> None:
    i = 0
    while i < len(recs):
        j = min(len(recs), i + rng.choice([1, 2, 5, 30, 200]))
        if j - i == 1 and rng.random() < 0.5:
            m.feed(recs[i])
        else:
            feed_run(m, recs[i:j])
        i = j


def state(m: FdModel) -> dict:
    """What the model holds, once every closed handle no snapshot named is folded (``settle``)."""
    m.settle(1 << 62, compact=False)
    h = m.history()
    return {
        "tables": {pid: {fd: (s.handle.id, s.cloexec, s.uncertain) for fd, s in t.slots.items()}
                   for pid, t in m.tables.items()},
        "history": [tuple(r) for r in h[["pid", "fd", "ts", "handle"]].itertuples(index=False)],
        "handles": [(x.id, x.origin, x.since, x.reason, x.refs, None if x.res is None else (x.res.kind, x.res.inode,
                     x.res.closed_ts)) for x in m.handles],
        "pending": {t: (p.syscall, p.ts, {k: p.args.get(k) for k in ("fd", "flags")}) for t, p in m.pending.items()},
        "unpaired": m.unpaired_exits, "reclaimed": m.reclaimed, "last_change": dict(m._last_change),
        "seen": set(m._seen_pids),
    }


@pytest.mark.parametrize("seed", range(12))
def test_runs_in_columns_make_the_same_fd_model_as_one_record_at_a_time(seed):
    rng = random.Random(seed)
    recs = records(rng, 600)
    one, runs = seeded(), seeded()
    for r in recs:
        one.feed(r)
    feed_in_runs(runs, recs, rng)
    a, b = state(one), state(runs)
    for k in a:
        assert a[k] == b[k], k
    # and every query of the data path resolves alike
    tid = np.array([rng.choice(list(PIDS)) for _ in range(300)])
    fd = np.array([rng.randrange(0, 10) for _ in range(300)])
    ts = np.array([rng.randrange(0, recs[-1]["ts"] + 5) for _ in range(300)])
    assert one.resolve(tid, fd, ts).tolist() == runs.resolve(tid, fd, ts).tolist()


def test_a_run_folds_the_handles_it_opened_and_closed_and_keeps_the_open_ones():
    m = seeded()
    n0 = len(m.handles)
    tid = np.array([200] * 6)
    ts = np.array([100, 101, 102, 103, 104, 105])
    ex = np.array([False, True, False, True, False, True])
    sc = np.array([2, 2, 0, 0, 2, 2])  # openat -> 3, close(3), openat -> 3 (left open)
    arg = np.array([O_CLOEXEC, 0, 3, 0, 0, 0])
    ret = np.array([0, 3, 0, 0, 0, 3])
    m.feed_plain(tid, ts, ex, sc, arg, ret)
    assert len(m.handles) == n0 + 2
    assert m.handles[n0].id == -1 and m.reclaimed == 1  # the one closed: folded at once
    s = m.tables[200].slots[3]
    assert s.handle is m.handles[n0 + 1] and s.handle.refs == 1 and s.cloexec is False
    assert m.resolve(np.array([200, 200, 200]), np.array([3, 3, 3]), np.array([101, 103, 106])).tolist() == [
        n0, -1, n0 + 1]


@pytest.mark.parametrize("t0,ts", [(120, 120), (125, 128)])
def test_a_snapshot_read_inside_a_run_still_names_the_handle_it_saw(t0, ts):
    # a /proc read of pid 200's fd 3 while openat's fd 3 was open (at the very time it returned, or
    # later): applied before the run (build does so with reads that only name fds), it still names
    # that handle (a file here) as one record at a time with the read applied at its time does
    recs = [{"ts": 100, "tid": 200, "event": "sys_enter_openat", "flags": 0},
            {"ts": 120, "tid": 200, "event": "sys_exit_openat", "ret": 3},
            {"ts": 130, "tid": 200, "event": "sys_enter_close", "fd": 3},
            {"ts": 140, "tid": 200, "event": "sys_exit_close", "ret": 0}]
    read = {"kind": "fds", "when": "open", "pid": 200, "fds": {"3": "/etc/hosts"}}
    models = []
    for plain in (False, True):
        m = seeded()
        assert m.passive(read)
        if plain:
            m.snapshot(read, ts, t0)
            feed_run(m, recs)
        else:
            for r in recs:
                if r["ts"] >= ts and read is not None:
                    m.snapshot(read, ts, t0)
                    read = None
                m.feed(r)
            read = {"kind": "fds", "when": "open", "pid": 200, "fds": {"3": "/etc/hosts"}}
        models.append(state(m))
        assert m.handles[-1].res is not None and m.handles[-1].res.kind == "other", plain  # named: a file
    assert models[0] == models[1]


def test_only_reads_that_change_no_fd_table_are_passive():
    m = seeded()
    assert m.passive({"kind": "unix", "sockets": []})
    assert m.passive({"kind": "fds", "when": "later", "pid": 100, "fds": {}})  # a process seen: names only
    assert not m.passive({"kind": "fds", "when": "later", "pid": 4242, "fds": {}})  # its first: seeds the table
    assert not m.passive({"kind": "fds", "when": "start", "pid": 100, "fds": {}})
