#!/usr/bin/env python3
"""Ring: 3 processes pass one token round a ring of 3 pipes, P0 -> P1 -> P2 -> P0.

P0 (the main process) writes a 1-byte token into pipe 01; P1 reads it and writes it into pipe 12;
P2 reads that and writes it into pipe 20; P0 reads it back: one lap. --laps laps, no sleeps. Each
process blocks reading its input until its predecessor's write wakes it, so the wait-for graph
(waiter -> waker) is the cycle P0 -> P2 -> P1 -> P0: the planted pattern of the `wait_cycle`
detector (truth key ``planted``). At the end P0 closes pipe 01 and the EOF runs round the ring.

    python3 samples/ring.py --laps 300 --truth truth.json
"""

from __future__ import annotations

import argparse
import os
import sys

from truth import Task, Truth, fork, options, summary, wait_all

ROLES = ["P0", "P1", "P2"]


def relay(role: str, r: int, w: int, truth_dir: str) -> None:
    t = Task(role)
    n = 0
    while data := t.read(r, 64):
        t.write_all(w, data)
        n += len(data)
    t.close(r)
    t.close(w)
    t.report(truth_dir, tokens=n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--laps", type=int, default=300)
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    truth = Truth("ring")
    pipes = [os.pipe() for _ in range(3)]  # pipe i goes from P(i) to P(i+1 mod 3)

    def keep_only(*mine: int) -> None:
        for r, w in pipes:
            for fd in (r, w):
                if fd not in mine:
                    os.close(fd)

    def run(i: int) -> None:  # P(i) reads pipe i-1, writes pipe i
        keep_only(pipes[i - 1][0], pipes[i][1])
        relay(ROLES[i], pipes[i - 1][0], pipes[i][1], truth.dir)

    pids = [fork(run, 1), fork(run, 2)]
    r, w = pipes[2][0], pipes[0][1]
    keep_only(r, w)
    p0 = Task("P0")
    laps = 0
    for _ in range(args.laps):
        p0.write_all(w, b"t")
        if p0.read(r, 64) != b"t":
            raise SystemExit(f"ring: the token did not come back after {laps} laps")
        laps += 1
    p0.close(w)  # EOF: P1 ends, closing pipe 12, then P2 ends, closing pipe 20
    if p0.read(r, 64) != b"":
        raise SystemExit("ring: more than one token in the ring")
    p0.close(r)
    wait_all(pids)
    truth.add(p0.record())
    t = truth.write(args.truth, args=options(args),
                    planted={"pattern": "wait_cycle", "cycle": ["P0", "P2", "P1"]})
    bad = [x for x in t["tasks"] if x["role"] != "P0" and x.get("tokens") != args.laps]
    if bad:
        raise SystemExit(f"ring: tasks did not relay {args.laps} tokens: {bad}")
    summary("ring", f"one token went {laps} laps round P0 -> P1 -> P2 -> P0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
