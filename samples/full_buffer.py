#!/usr/bin/env python3
"""Full buffer: a bursty writer stalls on a pipe that its steady reader drains, and the two take turns.

The writer computes for --compute ms (a busy loop), then writes a --burst of bytes into the pipe
with one write call (default 256 KiB, four times the kernel's default pipe size of 64 KiB); the
reader reads --chunk bytes at a time and spends --process ms on each (a busy loop). A burst is
larger than the pipe, so the writer stalls on the full pipe while the reader drains it; the reader
then drains the rest faster than the writer computes the next burst, so it waits on the empty pipe.
The two take turns on the pipe: with a pipe as large as a burst the writer would put the whole burst
in and compute the next one while the reader drains it. The planted pattern of the
`full_buffer_stall` detector (truth key ``planted``); the bigger pipe is measured with ``--pipe-size``.

``--steady``: the control. The writer does not compute (it writes burst after burst) and the reader is
slower than it: the writer always finds the pipe full and the reader never finds it empty. That is
back-pressure from a slow reader, which no pipe size helps (no ``planted`` key).

    python3 samples/full_buffer.py --bursts 40 --truth truth.json
    python3 samples/full_buffer.py --steady --truth truth.json
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time

from truth import Task, Truth, fork, options, summary, wait_all

F_SETPIPE_SZ = 1031


def spin(ms: float) -> None:
    """Compute (burn the CPU) for ``ms`` milliseconds."""
    end = time.perf_counter() + ms / 1000
    x = 0
    while time.perf_counter() < end:
        x += 1


def writer(r: int, w: int, args: argparse.Namespace, truth_dir: str) -> None:
    os.close(r)
    t = Task("writer")
    block = b"w" * args.burst
    for _ in range(args.bursts):
        if args.compute:
            spin(args.compute)
        t.write_all(w, block)
    t.close(w)
    t.report(truth_dir)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bursts", type=int, default=40, help="bursts to write")
    ap.add_argument("--burst", type=int, default=256 * 1024, help="bytes per burst")
    ap.add_argument("--compute", type=float, default=4.0, help="ms the writer computes before each burst")
    ap.add_argument("--chunk", type=int, default=16 * 1024, help="bytes per read")
    ap.add_argument("--process", type=float, default=0.15, help="ms the reader computes per chunk read")
    ap.add_argument("--pipe-size", type=int, default=0, help="F_SETPIPE_SZ the pipe to this (0: the default)")
    ap.add_argument("--steady", action="store_true",
                    help="the control: the writer does not compute and the reader is slow (back-pressure)")
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()
    if args.steady:
        args.compute = 0.0
        args.process = max(args.process, 0.6)

    truth = Truth("full_buffer")
    r, w = os.pipe()
    if args.pipe_size:
        fcntl.fcntl(w, F_SETPIPE_SZ, args.pipe_size)
    t0 = time.perf_counter()
    pid = fork(writer, r, w, args, truth.dir)
    os.close(w)
    reader = Task("reader")
    total = 0
    while chunk := reader.read(r, args.chunk):
        total += len(chunk)
        spin(args.process * len(chunk) / args.chunk)
    reader.close(r)
    wait_all([pid])
    wall = time.perf_counter() - t0
    truth.add(reader.record())
    extra = {} if args.steady else {"planted": {"pattern": "full_buffer_stall", "blocked": "writer", "on": "write",
                                                "burst": args.burst}}
    truth.write(args.truth, args=options(args), wall_s=round(wall, 4), **extra)
    if total != args.bursts * args.burst:
        raise SystemExit(f"full_buffer: read {total} bytes, expected {args.bursts * args.burst}")
    how = "steady writer, slow reader" if args.steady else f"{args.compute} ms of compute per burst"
    summary("full_buffer", f"{total} bytes in {args.bursts} bursts of {args.burst} ({how}) in {wall:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
