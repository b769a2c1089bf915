#!/usr/bin/env python3
"""A shell-like pipeline of 4 processes joined by pipes: gen | upper | grep | count.

It records what it really did (pids, fds, pipe inodes, bytes and calls per fd) in a JSON truth file,
so tests can compare ftraceipc's model with the truth.

    python3 samples/pipeline.py --lines 2000 --truth truth.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def inode(fd: int) -> int:
    return os.fstat(fd).st_ino


def stage(name: str, rfd: int | None, wfd: int | None, lines: int, truth_w: int) -> None:
    """Run one stage in this (child) process and report its own truth on truth_w."""
    rec = {"stage": name, "pid": os.getpid(), "tid": os.getpid(), "read": {}, "write": {}}
    if rfd is not None:
        rec["read"] = {"fd": rfd, "inode": inode(rfd), "bytes": 0, "calls": 0}
    if wfd is not None:
        rec["write"] = {"fd": wfd, "inode": inode(wfd), "bytes": 0, "calls": 0}

    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(wfd, view)
            rec["write"]["bytes"] += n
            rec["write"]["calls"] += 1
            view = view[n:]

    if rfd is None:  # generator
        for i in range(lines):
            write(f"line {i} {'x' * (i % 50)}\n".encode())
    else:
        buf = b""
        count = 0
        while True:
            chunk = os.read(rfd, 4096)
            rec["read"]["calls"] += 1
            if not chunk:
                break
            rec["read"]["bytes"] += len(chunk)
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
                write(b"\n".join(out) + b"\n")
        rec["count"] = count
    if wfd is not None:
        os.close(wfd)
    os.write(truth_w, (json.dumps(rec) + "\n").encode())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    names = ["gen", "upper", "grep", "count"]
    pipes = [os.pipe() for _ in range(len(names) - 1)]
    tr, tw = os.pipe()
    pids = []
    for i, name in enumerate(names):
        rfd = pipes[i - 1][0] if i > 0 else None
        wfd = pipes[i][1] if i < len(pipes) else None
        pid = os.fork()
        if pid == 0:
            for r, w in pipes:  # keep only this stage's two ends, like a shell does
                if r != rfd:
                    os.close(r)
                if w != wfd:
                    os.close(w)
            os.close(tr)
            stage(name, rfd, wfd, args.lines, tw)
            os._exit(0)
        pids.append(pid)
    for r, w in pipes:
        os.close(r)
        os.close(w)
    os.close(tw)
    for pid in pids:
        os.waitpid(pid, 0)
    recs = [json.loads(line) for line in os.fdopen(tr).read().splitlines()]
    truth = {"sample": "pipeline", "pid": os.getpid(), "stages": sorted(recs, key=lambda r: names.index(r["stage"]))}
    if args.truth:
        with open(args.truth, "w") as f:
            json.dump(truth, f, indent=1)
    count = next(r for r in recs if r["stage"] == "count")["count"]
    print(f"pipeline: {args.lines} lines generated, {count} passed grep", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
