#!/usr/bin/env python3
"""Cross-CPU ping-pong: two processes, each pinned to its own CPU, bounce 1 byte over a socketpair.

The main process ("ping") pins itself (sched_setaffinity) to the first CPU it may run on, makes an
AF_UNIX stream socketpair and forks "pong", which pins itself to the second CPU before any I/O. Ping
sends 1 byte with sock.send() (the sendto syscall) and waits for the answer with sock.recv()
(recvfrom); pong does the same the other way round. --trips round trips; then ping closes its end
and pong's recv returns 0. Every wakeup through the socket crosses CPUs: the planted pattern of the
`cross_cpu_wakeup` detector (truth key ``planted``). ``--same-cpu`` pins both to the first CPU: the
control, with no cross-CPU wakeup and no ``planted`` key. Each task's ``cpu`` is in the truth.

``--parallel``: the other control. Ping is a producer that computes --work ms per message and sends
it (--size bytes) without waiting for an answer; pong a consumer that computes 0.3 x --work ms on each
message it receives. Every wakeup still crosses CPUs (pong waits on the empty socket for each
message), but the two compute at the same time: on one CPU they would take twice as long. No
``planted`` key: pinning them together is no advice to give.

    python3 samples/xcpu.py --trips 1000 --truth truth.json
    python3 samples/xcpu.py --parallel --trips 300 --truth truth.json
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

from truth import Task, Truth, fork, options, summary, wait_all


def spin(ms: float) -> None:
    """Compute (burn the CPU) for ``ms`` milliseconds."""
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


def consumer(sock: socket.socket, other: socket.socket, cpu: int, args: argparse.Namespace,
             truth_dir: str) -> None:
    other.close()
    os.sched_setaffinity(0, {cpu})
    t = Task("pong")
    t.watch(sock, link="pair")
    n = 0
    while data := t.recv(sock, args.size):
        n += len(data)
        spin(0.3 * args.work * len(data) / args.size)
    t.close(sock)
    t.report(truth_dir, cpu=cpu, trips=n // args.size)


def pong(sock: socket.socket, other: socket.socket, cpu: int, truth_dir: str) -> None:
    other.close()
    os.sched_setaffinity(0, {cpu})
    t = Task("pong")
    t.watch(sock, link="pair")
    n = 0
    while data := t.recv(sock, 1):
        t.send_all(sock, data)
        n += 1
    t.close(sock)
    t.report(truth_dir, cpu=cpu, trips=n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trips", type=int, default=1000)
    ap.add_argument("--same-cpu", action="store_true", help="pin both to one CPU (the control)")
    ap.add_argument("--parallel", action="store_true",
                    help="the other control: a producer and a consumer that compute side by side")
    ap.add_argument("--work", type=float, default=1.0, help="--parallel: ms the producer computes per message")
    ap.add_argument("--size", type=int, default=1024, help="--parallel: bytes per message")
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    cpus = sorted(os.sched_getaffinity(0))
    if not args.same_cpu and len(cpus) < 2:
        raise SystemExit(f"xcpu: needs two CPUs, may only run on {cpus}")
    ping_cpu = cpus[0]
    pong_cpu = cpus[0] if args.same_cpu else cpus[1]

    os.sched_setaffinity(0, {ping_cpu})  # before the fork: pong starts on ping's CPU, then moves
    truth = Truth("xcpu")
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    if args.parallel:
        pid = fork(consumer, theirs, mine, pong_cpu, args, truth.dir)
    else:
        pid = fork(pong, theirs, mine, pong_cpu, truth.dir)
    theirs.close()
    t = Task("ping")
    t.watch(mine, link="pair")
    for k in range(args.trips):
        b = bytes([k & 0xFF])
        if args.parallel:
            spin(args.work)
            t.send_all(mine, b * args.size)
            continue
        t.send_all(mine, b)
        if t.recv(mine, 1) != b:
            raise SystemExit(f"xcpu: bad answer in round trip {k}")
    t.close(mine)
    wait_all([pid])
    truth.add(t.record(cpu=ping_cpu))
    control = args.same_cpu or args.parallel
    extra = {} if control else {"planted": {"pattern": "cross_cpu_wakeup", "tasks": ["ping", "pong"]}}
    tr = truth.write(args.truth, args=options(args), **extra)
    trips = next(x["trips"] for x in tr["tasks"] if x["role"] == "pong")
    if trips != args.trips:
        raise SystemExit(f"xcpu: pong answered {trips} of {args.trips} round trips")
    what = f"{args.trips} messages of {args.size} bytes computed side by side" if args.parallel else \
        f"{args.trips} one-byte round trips"
    summary("xcpu", f"{what} between CPU {ping_cpu} and CPU {pong_cpu}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
