"""Run a sample under ``ftraceipc capture`` and read back, from the decoded syscall events, what each
task did on each fd: the trace-side half of the samples' truth checks (no resource model needed).

A (tid, fd) pair is not enough to name a resource: the main process of a sample reads its imported
modules and, at the end, the truth reports on the same small fd numbers as its pipes and sockets.
So each process's use of an fd is cut into *lifetimes* at every event that ends what the fd names
(close, dup2/dup3 onto it, close_range over it, exec), all visible in the trace, and an fd lifetime
names at most one resource. The truth's entries for one (tid, fd, rid) must then equal, syscall for
syscall, the calls and bytes of one lifetime of that fd in that task, in the truth's order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ftraceipc.decode import Decoder

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
IO_SYSCALLS = ["read", "write", "readv", "writev", "sendto", "recvfrom", "sendmsg", "recvmsg"]
FD_ENDS = ["close", "dup2", "dup3", "close_range"]

Totals = dict[str, list[int]]  # syscall -> [calls, bytes] (calls that returned >= 0)


@dataclass
class TraceIO:
    """What the capture says the tasks of one sample did (only tids in ``pid_of`` are followed)."""

    pid_of: dict[int, int]
    # (tid, fd) -> one Totals per lifetime of the fd in the tid's process, in order (empty ones dropped)
    lifetimes: dict[tuple[int, int], list[Totals]] = field(default_factory=dict)
    # (tid, fd) -> the fd-ending syscalls (close/dup2/dup3/close_range/exec) seen on it, in order
    ends: dict[tuple[int, int], list[str]] = field(default_factory=lambda: defaultdict(list))
    forked: set[int] = field(default_factory=set)  # the child (pid) of every task_newtask
    execed: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # pid -> sched_process_exec count
    syscalls: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))  # [ok, failed]


def read_trace(cap: Path, pid_of: dict[int, int]) -> TraceIO:
    """Pair each followed tid's sys_enter_X with its next sys_exit_X and cut fds into lifetimes."""
    out = TraceIO(pid_of=pid_of)
    names = [f"sys_{k}_{s}" for s in IO_SYSCALLS + FD_ENDS for k in ("enter", "exit")]
    names += ["task_newtask", "sched_process_exec"]
    pending: dict[int, tuple[str, int, int]] = {}
    gen: dict[tuple[int, int], int] = defaultdict(int)  # (pid, fd) -> lifetime number
    epoch: dict[int, int] = defaultdict(int)  # pid -> exec count: every fd's lifetime ends at exec
    fds_of: dict[int, set[int]] = defaultdict(set)
    acc: dict[tuple[int, int], dict[tuple[int, int], Totals]] = defaultdict(dict)

    def end(pid: int, fd: int, why: str) -> None:
        gen[(pid, fd)] += 1
        for tid, p in pid_of.items():
            if p == pid:
                out.ends[(tid, fd)].append(why)

    for batch in Decoder(cap).batches(names):
        info = {}
        for eid, t in batch.by_id.items():
            name, cols = t.name, t.columns
            if name.startswith("sys_enter_"):
                sc = name[len("sys_enter_"):]
                a = cols["newfd"] if sc in ("dup2", "dup3") else cols["fd"]
                info[eid] = ("enter", sc, a, cols.get("max_fd"))
            elif name.startswith("sys_exit_"):
                info[eid] = ("exit", name[len("sys_exit_"):], cols["ret"], None)
            elif name == "task_newtask":
                info[eid] = ("fork", None, cols["pid"], None)
            else:
                info[eid] = ("exec", None, cols["pid"], None)
        for eid, tid, row in zip(batch.event_id.tolist(), batch.pid.tolist(), batch.row.tolist()):
            what, sc, col, col2 = info[eid]
            if what == "fork":
                out.forked.add(int(col[row]))
                continue
            if what == "exec":
                pid = int(col[row])
                out.execed[pid] += 1
                if pid in pid_of:
                    epoch[pid] += 1
                    for fd in fds_of[pid]:
                        out.ends[(pid, fd)].append("exec")
                continue
            if tid not in pid_of:
                continue
            pid = pid_of[tid]
            if what == "enter":
                pending[tid] = (sc, int(col[row]), int(col2[row]) if col2 is not None else 0)
                continue
            p = pending.pop(tid, None)
            if p is None or p[0] != sc:
                continue
            _, fd, max_fd = p
            ret = int(col[row])
            out.syscalls[sc][ret < 0] += 1
            if ret < 0:
                continue
            if sc in IO_SYSCALLS:
                fds_of[pid].add(fd)
                key = (epoch[pid], gen[(pid, fd)])
                tot = acc[(tid, fd)].setdefault(key, {})
                c = tot.setdefault(sc, [0, 0])
                c[0] += 1
                c[1] += ret
            elif sc == "close":
                end(pid, fd, sc)
            elif sc in ("dup2", "dup3"):
                end(pid, ret, sc)
            elif sc == "close_range":
                for f in [f for f in fds_of[pid] if fd <= f <= max_fd]:
                    end(pid, f, sc)
    out.lifetimes = {k: list(v.values()) for k, v in acc.items()}
    return out


def capture_sample(tmp: Path, sample: str, args: list[str] = (),
                   capture_args: list[str] = ()) -> tuple[Path, dict, dict]:
    """``ftraceipc capture CAPTURE_ARGS -- python3 samples/SAMPLE.py --truth T ARGS``: (capture dir, meta,
    truth)."""
    cap = tmp / f"{sample}.ftipc"
    truth_path = tmp / f"{sample}.truth.json"
    r = subprocess.run([sys.executable, "-m", "ftraceipc", "capture", "-o", str(cap), *capture_args, "--",
                        sys.executable, str(SAMPLES / f"{sample}.py"), "--truth", str(truth_path), *args],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    meta = json.loads((cap / "meta.json").read_text())
    return cap, meta, json.loads(truth_path.read_text())


def truth_groups(truth: dict) -> dict[tuple[int, int], list[tuple[str, Totals]]]:
    """(tid, fd) -> [(rid, {syscall: [calls, bytes]})] in the truth's order."""
    out: dict[tuple[int, int], dict[str, Totals]] = defaultdict(dict)
    for e in truth["io"]:
        tot = out[(e["tid"], e["fd"])].setdefault(e["rid"], {})
        c = tot.setdefault(e["syscall"], [0, 0])
        c[0] += e["calls"]
        c[1] += e["bytes"]
    return {k: list(v.items()) for k, v in out.items()}


def mismatches(truth: dict, trace: TraceIO) -> list[str]:
    """Truth groups that no fd lifetime of the trace matches exactly (in order)."""
    errs = []
    for (tid, fd), groups in truth_groups(truth).items():
        lives = trace.lifetimes.get((tid, fd), [])
        i = 0
        for rid, want in groups:
            while i < len(lives) and lives[i] != want:
                i += 1
            if i == len(lives):
                near = [life for life in lives if set(life) & set(want)]
                errs.append(f"tid {tid} fd {fd} {rid}: truth {want}; trace lifetimes of this fd with those "
                            f"syscalls: {near}")
                break
            i += 1
    return errs
