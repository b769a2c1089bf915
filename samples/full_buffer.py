#!/usr/bin/env python3
"""Full buffer: a fast writer stalls on a small pipe that a slow reader drains.

The pipe is shrunk to one page (F_SETPIPE_SZ 4096); the writer writes --total bytes in 1 KiB
writes; the reader reads 1 KiB, then sleeps --pause ms. So the writer spends most of its time
blocked in write(2) on the full pipe, and each of the reader's reads wakes it: the planted pattern
of the `full_buffer_stall` detector (truth key ``planted``).

    python3 samples/full_buffer.py --total 262144 --pause 0.2 --truth truth.json
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time

from truth import Task, Truth, fork, options, summary, wait_all

F_SETPIPE_SZ = 1031


def writer(r: int, w: int, total: int, truth_dir: str) -> None:
    os.close(r)
    t = Task("writer")
    block = b"w" * 1024
    for _ in range(total // len(block)):
        t.write_all(w, block)
    t.close(w)
    t.report(truth_dir)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--total", type=int, default=256 * 1024, help="bytes to write (a multiple of 1024)")
    ap.add_argument("--pause", type=float, default=0.2, help="ms the reader sleeps after each read")
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    truth = Truth("full_buffer")
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    pid = fork(writer, r, w, args.total, truth.dir)
    os.close(w)
    reader = Task("reader")
    total = 0
    while chunk := reader.read(r, 1024):
        total += len(chunk)
        time.sleep(args.pause / 1000)
    reader.close(r)
    wait_all([pid])
    truth.add(reader.record())
    rec = truth.write(args.truth, args=options(args),
                      planted={"pattern": "full_buffer_stall", "blocked": "writer", "on": "write"})
    if total != args.total:
        raise SystemExit(f"full_buffer: read {total} bytes, expected {args.total}")
    del rec
    summary("full_buffer", f"{total} bytes through a 4 KiB pipe to a reader pausing {args.pause} ms per KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
