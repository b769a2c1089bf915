#!/usr/bin/env python3
"""Late wakeup: a reader whose CPU is taken by a busy loop, so it runs late each time it is woken.

The main process ("waker") writes an 8-byte message, its CLOCK_MONOTONIC time just before the
write, into a pipe every --gap ms, --messages times; the "wakee" process blocks reading it (8 bytes
a read). The wakee is pinned to one CPU (--cpu, default the last one allowed), the waker to another.
The "hog", started by the sample and killed at the end (it does no I/O), busy-loops on the wakee's
CPU at a higher priority. Each write wakes the wakee at once, but it only runs when the hog lets it:
milliseconds later. That is the planted pattern of the `wakeup_latency` detector (truth key
``planted``). ``--no-hog`` runs no hog: the control (the wakee runs within tens of microseconds, no
``planted`` key).

The priorities (--hog):

- ``rt`` (default): the wakee is SCHED_FIFO 1 and the hog SCHED_FIFO 2, spinning --spin ms then
  sleeping --pause ms, over and over (83% of its CPU: under the kernel's 95% real-time limit).
  Woken during a spin, the wakee waits for the spin's end (a few ms); in a pause it runs at once.
  Deterministic, and the wakee (with or without hog) does not depend on the machine's other,
  SCHED_OTHER load: an ordinary wakee was seen delayed up to 0.8 s on a 2-CPU VM busy with other
  work (probably autogroup: its session's weight on its CPU shrinks while the tracer, in that
  session, is busy elsewhere).
  Without the privilege (CAP_SYS_NICE) both stay SCHED_OTHER (the truth's ``policy`` says so).
- ``fair``: an ordinary busy loop (nice 0) that never sleeps, with the wakee at nice 19. Under EEVDF
  (6.6+) the wait is bimodal (nothing, or until the next tick, 4 ms at HZ=250) and its mix swings
  from run to run: median 0.02 to 4 ms over 5 runs on a 2-CPU VM.

The wakee measures what it saw: for each message, from the waker's clock reading to the return of
the read that got it (CLOCK_MONOTONIC both; includes time queued behind earlier messages); the
truth's wakee task has ``latency_ns`` (median, p90, mean, max over the messages) and ``messages``.

    python3 samples/late_wakeup.py --messages 200 --gap 2 --truth truth.json
"""

from __future__ import annotations

import argparse
import os
import signal
import struct
import sys
import time

from truth import Task, Truth, bare_record, fork, options, summary, wait_all

MSG = struct.Struct("=q")
HOG_MAX_S = 20.0  # the hog gives up by itself after this long (or as soon as the main process is gone)


def stats(lat: list[int]) -> dict[str, int]:
    s = sorted(lat)
    if not s:
        return {}
    return {"median": s[len(s) // 2], "p90": s[min(len(s) - 1, (len(s) * 9) // 10)],
            "mean": sum(s) // len(s), "max": s[-1]}


def set_policy(rt_prio: int, nice: int) -> str:
    """SCHED_FIFO ``rt_prio`` (if > 0 and allowed, else SCHED_OTHER) at ``nice``: what was set."""
    if rt_prio:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(rt_prio))
            return f"fifo:{rt_prio}"
        except PermissionError:
            pass
    if nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    return f"other:{nice}"


def wakee(r: int, w: int, cpu: int, args: argparse.Namespace, truth_dir: str) -> None:
    os.close(w)
    os.sched_setaffinity(0, {cpu})
    policy = set_policy(1, 0) if args.hog == "rt" else set_policy(0, 19)
    t = Task("wakee")
    lat = []
    buf = b""
    while data := t.read(r, MSG.size):
        now = time.monotonic_ns()
        buf += data
        while len(buf) >= MSG.size:
            (sent,) = MSG.unpack(buf[:MSG.size])
            buf = buf[MSG.size:]
            lat.append(now - sent)
    t.close(r)
    if buf:
        raise RuntimeError(f"{len(buf)} bytes left over")
    t.report(truth_dir, cpu=cpu, policy=policy, messages=len(lat), latency_ns=stats(lat))


def hog(cpu: int, parent: int, args: argparse.Namespace) -> None:
    """Spin on ``cpu`` until killed (rt: --spin ms spinning, --pause ms asleep, at SCHED_FIFO 2)."""
    os.sched_setaffinity(0, {cpu})
    if args.hog == "rt":
        set_policy(2, 0)
    spin = args.spin / 1000 if args.hog == "rt" else 0.005
    end = time.monotonic() + HOG_MAX_S
    while os.getppid() == parent:
        until = time.monotonic() + spin  # the vDSO clock: no syscall while spinning
        while time.monotonic() < until:
            pass
        if until > end:
            return
        if args.hog == "rt":
            time.sleep(args.pause / 1000)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--gap", type=float, default=2.0, help="ms between writes")
    ap.add_argument("--cpu", type=int, help="the wakee's (and hog's) CPU; default: the last allowed")
    ap.add_argument("--hog", choices=["rt", "fair"], default="rt",
                    help="rt: hog SCHED_FIFO 2 spinning/pausing, wakee SCHED_FIFO 1; fair: hog nice 0, wakee nice 19")
    ap.add_argument("--spin", type=float, default=5.0, help="rt hog: ms spinning between pauses")
    ap.add_argument("--pause", type=float, default=1.0, help="rt hog: ms asleep between spins")
    ap.add_argument("--no-hog", action="store_true", help="no busy loop on the wakee's CPU (the control)")
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[-1] if args.cpu is None else args.cpu
    others = [c for c in cpus if c != cpu]
    if cpu not in cpus or not others:
        raise SystemExit(f"late_wakeup: needs the wakee's CPU {cpu} and another one, may only run on {cpus}")

    truth = Truth("late_wakeup")
    hog_pid = None
    if not args.no_hog:
        hog_pid = fork(hog, cpu, os.getpid(), args)
    r, w = os.pipe()
    pid = fork(wakee, r, w, cpu, args, truth.dir)
    os.close(r)
    os.sched_setaffinity(0, {others[0]})
    t = Task("waker")
    time.sleep(0.02)  # the hog spinning, the wakee blocked in read
    for _ in range(args.messages):
        t.write_all(w, MSG.pack(time.monotonic_ns()))
        time.sleep(args.gap / 1000)
    t.close(w)
    wait_all([pid])
    if hog_pid is not None:
        os.kill(hog_pid, signal.SIGKILL)
        _, status = os.waitpid(hog_pid, 0)
        if os.WIFEXITED(status):
            raise SystemExit(f"late_wakeup: the hog exited early ({os.waitstatus_to_exitcode(status)})")
        truth.add(bare_record(hog_pid, hog_pid, os.getpid(), "hog"))
    truth.add(t.record(cpu=others[0]))
    extra = {} if args.no_hog else {
        "planted": {"pattern": "wakeup_latency", "waker": "waker", "wakee": "wakee", "hog": "hog"}}
    tr = truth.write(args.truth, args=options(args), **extra)
    wk = next(x for x in tr["tasks"] if x["role"] == "wakee")
    if wk["messages"] != args.messages:
        raise SystemExit(f"late_wakeup: the wakee got {wk['messages']} of {args.messages} messages")
    lat = wk["latency_ns"]
    hogged = "no hog" if args.no_hog else f"a {args.hog} hog"
    summary("late_wakeup", f"{args.messages} messages, {hogged} on CPU {cpu}: "
                           f"write to read median {lat['median'] / 1e6:.3f} ms, p90 {lat['p90'] / 1e6:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
