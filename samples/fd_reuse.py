#!/usr/bin/env python3
"""One fd number, three resources: a process writes to fd N of pipe A, closes it, gets N back for
one end of a socketpair, writes again, then dup2()s pipe C's write end onto N (which implicitly
closes the socket) and writes a third time.

    N = write end of pipe A      write() x --writes, close(N)
    N = socketpair end (lowest free fd, the kernel reuses N)   write() x --writes
    dup2(write end of pipe C, N) (closes the socket end), close the original, write() x --writes

Each resource has its own reader process (forked when the resource exists, keeping only its end,
os.read() until EOF). Every phase writes a different number of bytes, so a model that keeps fd N
on the wrong resource gets the totals wrong. The writer's io entries for (tid, N, "write") come in
the order of the phases (A, socket, C).

    python3 samples/fd_reuse.py --writes 20 --truth truth.json
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from truth import Task, Truth, fork, options, summary, wait_all


def reader(role: str, fd: int, close: list[int], truth_dir: str, link: str | None = None) -> None:
    for c in close:
        os.close(c)
    t = Task(role)
    t.watch(fd, link=link)
    while t.read(fd, 65536):
        pass
    t.close(fd)
    t.report(truth_dir)


def phase(t: Task, fd: int, writes: int, size: int, tag: bytes) -> int:
    total = 0
    for k in range(writes):
        data = tag * (size + k)
        t.write_all(fd, data)
        total += len(data)
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writes", type=int, default=20, help="writes per phase")
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    truth = Truth("fd_reuse")
    t = Task("writer")
    pids = []

    # Phase A: pipe A's write end is fd N.
    ra, n = os.pipe()
    t.watch(n)
    pids.append(fork(reader, "reader-A", ra, [n], truth.dir))
    os.close(ra)
    total_a = phase(t, n, args.writes, 100, b"A")
    t.close(n)

    # Phase B: a socketpair; the kernel hands out the lowest free fds, N among them.
    s1, s2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fds = [s1.detach(), s2.detach()]
    if n not in fds:
        raise SystemExit(f"fd_reuse: fd {n} was not reused by socketpair (got {fds})")
    other = fds[1] if fds[0] == n else fds[0]
    t.watch(n, link="pair")
    pids.append(fork(reader, "reader-B", other, [n], truth.dir, "pair"))
    os.close(other)
    total_b = phase(t, n, args.writes, 200, b"B")

    # Phase C: dup2 pipe C's write end onto N, closing the socket end that N named.
    rc, wc = os.pipe()
    pids.append(fork(reader, "reader-C", rc, [wc, n], truth.dir))
    os.close(rc)
    t.dup2(wc, n)
    t.close(wc)
    total_c = phase(t, n, args.writes, 300, b"C")
    t.close(n)

    wait_all(pids)
    truth.add(t.record(reused_fd=n))
    truth.write(args.truth, args=options(args))
    summary("fd_reuse", f"fd {n}: {total_a} bytes to pipe A, {total_b} to a socket, {total_c} to pipe C")
    return 0


if __name__ == "__main__":
    sys.exit(main())
