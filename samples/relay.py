#!/usr/bin/env python3
"""Relay: a token passed down a chain of 4 processes, A -> B -> C -> D, through 3 pipes.

A sleeps --gap ms (time.sleep), then writes a small token into pipe AB; B blocks reading AB and
forwards what it read into pipe BC; C forwards BC into CD; D (the main process) reads CD. --rounds
tokens. So D waits on C, which waits on B, which waits on A, which sleeps: a chain of 3 wait-for
hops (waiter -> waker: D -> C -> B -> A), the planted pattern of the `wait_chain` detector (truth
key ``planted``). At the end A closes AB and the EOF runs down the chain.

    python3 samples/relay.py --rounds 60 --gap 2 --truth truth.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from truth import Task, Truth, fork, options, summary, wait_all

ROLES = ["A", "B", "C", "D"]


def source(w: int, args: argparse.Namespace, truth_dir: str) -> None:
    t = Task("A")
    for k in range(args.rounds):
        time.sleep(args.gap / 1000)
        t.write_all(w, f"tok {k:05d}\n".encode())
    t.close(w)
    t.report(truth_dir)


def forward(role: str, r: int, w: int, truth_dir: str) -> None:
    t = Task(role)
    while data := t.read(r, 4096):
        t.write_all(w, data)
    t.close(r)
    t.close(w)
    t.report(truth_dir)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--gap", type=float, default=2.0, help="ms A sleeps before each token")
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    truth = Truth("relay")
    pipes = [os.pipe() for _ in range(3)]  # AB, BC, CD

    def keep_only(*mine: int) -> None:
        for r, w in pipes:
            for fd in (r, w):
                if fd not in mine:
                    os.close(fd)

    def run_a() -> None:
        keep_only(pipes[0][1])
        source(pipes[0][1], args, truth.dir)

    def run_stage(i: int) -> None:  # B (i=1) reads AB, writes BC; C (i=2) reads BC, writes CD
        keep_only(pipes[i - 1][0], pipes[i][1])
        forward(ROLES[i], pipes[i - 1][0], pipes[i][1], truth.dir)

    pids = [fork(run_a), fork(run_stage, 1), fork(run_stage, 2)]
    keep_only(pipes[2][0])
    d = Task("D")
    r = pipes[2][0]
    buf = b""
    while data := d.read(r, 4096):
        buf += data
    d.close(r)
    wait_all(pids)
    truth.add(d.record())
    truth.write(args.truth, args=options(args),
                planted={"pattern": "wait_chain", "chain": ["D", "C", "B", "A"],
                         "via": {"D": "CD", "C": "BC", "B": "AB"}})
    want = b"".join(f"tok {k:05d}\n".encode() for k in range(args.rounds))
    if buf != want:
        raise SystemExit(f"relay: D got {len(buf)} bytes, not the {len(want)} bytes of {args.rounds} tokens in order")
    summary("relay", f"{args.rounds} tokens relayed A -> B -> C -> D, one every {args.gap} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
