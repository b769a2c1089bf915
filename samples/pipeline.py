#!/usr/bin/env python3
"""A shell-like pipeline of 4 processes joined by pipes: gen | upper | grep | count.

Each stage counts its own reads and writes; the truth JSON (schema in samples/README.md) has the 4
stage processes, the 3 pipes and the calls and bytes of every (tid, fd, syscall). Stages use
os.read/os.write (the read and write syscalls).

    python3 samples/pipeline.py --lines 2000 --truth truth.json
"""

from __future__ import annotations

import argparse
import os
import sys

from truth import Task, Truth, fork, options, summary, wait_all

NAMES = ["gen", "upper", "grep", "count"]


def stage(name: str, rfd: int | None, wfd: int | None, lines: int, truth_dir: str) -> None:
    """Run one stage in this (child) process and report its own truth."""
    t = Task(name)
    if rfd is None:  # generator
        for i in range(lines):
            t.write_all(wfd, f"line {i} {'x' * (i % 50)}\n".encode())
        count = None
    else:
        buf = b""
        count = 0
        while True:
            chunk = t.read(rfd, 4096)
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            out = []
            for line in done:
                if name == "upper":
                    out.append(line.upper())
                elif name == "grep" and b"7" in line:
                    out.append(line)
                elif name == "count":
                    count += 1
            if out and wfd is not None:
                t.write_all(wfd, b"\n".join(out) + b"\n")
    if wfd is not None:
        t.close(wfd)
    t.report(truth_dir, **({"count": count} if name == "count" else {}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    truth = Truth("pipeline")
    main_task = Task("main")
    pipes = [os.pipe() for _ in range(len(NAMES) - 1)]
    for r, w in pipes:
        main_task.watch(r)
    pids = []
    for i, name in enumerate(NAMES):
        rfd = pipes[i - 1][0] if i > 0 else None
        wfd = pipes[i][1] if i < len(pipes) else None

        def child(name=name, rfd=rfd, wfd=wfd) -> None:
            for r, w in pipes:  # keep only this stage's two ends, like a shell does
                if r != rfd:
                    os.close(r)
                if w != wfd:
                    os.close(w)
            stage(name, rfd, wfd, args.lines, truth.dir)

        pids.append(fork(child))
    for r, w in pipes:
        os.close(r)
        os.close(w)
    wait_all(pids)
    truth.add(main_task.record())
    t = truth.write(args.truth, args=options(args))
    count = next(x["count"] for x in t["tasks"] if x["role"] == "count")
    summary("pipeline", f"{args.lines} lines generated, {count} passed grep")
    return 0


if __name__ == "__main__":
    sys.exit(main())
