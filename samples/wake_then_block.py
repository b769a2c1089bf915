#!/usr/bin/env python3
"""Wake then block: a pipeline stage woken by input that then finds its output pipe full.

gen writes an 8 KiB chunk into pipe A every --gap ms; mid reads a chunk from A and writes it on,
1 KiB per write, into pipe B, shrunk to one page (F_SETPIPE_SZ 4096); the main process reads B
1 KiB at a time, sleeping --pause ms after each read. A chunk is twice what B holds, so mid always
blocks writing it; and the reader drains it (about 8 x --pause ms) before gen's next chunk, so mid
then sleeps on the empty A until gen's write wakes it. Each chunk: mid is woken through A, runs
briefly, and blocks on the full B: the planted pattern of the `wake_then_block` detector (truth key
``planted``).

    python3 samples/wake_then_block.py --chunks 40 --truth truth.json
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time

from truth import Task, Truth, fork, options, summary, wait_all

F_SETPIPE_SZ = 1031
CHUNK = 8192


def gen(a_r: int, a_w: int, b_r: int, b_w: int, args: argparse.Namespace, truth_dir: str) -> None:
    for fd in (a_r, b_r, b_w):
        os.close(fd)
    t = Task("gen")
    for _ in range(args.chunks):
        t.write_all(a_w, b"g" * CHUNK)
        time.sleep(args.gap / 1000)
    t.close(a_w)
    t.report(truth_dir)


def mid(a_r: int, a_w: int, b_r: int, b_w: int, truth_dir: str) -> None:
    os.close(a_w)
    os.close(b_r)
    t = Task("mid")
    buf = b""
    while True:
        data = t.read(a_r, CHUNK)
        if not data:
            break
        buf += data
        while len(buf) >= 1024:
            t.write_all(b_w, buf[:1024])
            buf = buf[1024:]
    if buf:
        t.write_all(b_w, buf)
    t.close(a_r)
    t.close(b_w)
    t.report(truth_dir)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=40)
    ap.add_argument("--gap", type=float, default=20.0,
                    help="ms between gen's chunks (well above the reader's 8 pauses: a 0.3 ms sleep takes about "
                         "1 ms on a busy 2-CPU VM)")
    ap.add_argument("--pause", type=float, default=0.3, help="ms the reader sleeps after each 1 KiB read")
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    truth = Truth("wake_then_block")
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    fcntl.fcntl(b_w, F_SETPIPE_SZ, 4096)
    pids = [fork(gen, a_r, a_w, b_r, b_w, args, truth.dir), fork(mid, a_r, a_w, b_r, b_w, truth.dir)]
    for fd in (a_r, a_w, b_w):
        os.close(fd)
    reader = Task("reader")
    total = 0
    while chunk := reader.read(b_r, 1024):
        total += len(chunk)
        time.sleep(args.pause / 1000)
    reader.close(b_r)
    wait_all(pids)
    truth.add(reader.record())
    truth.write(args.truth, args=options(args),
                planted={"pattern": "wake_then_block", "task": "mid", "woken_via": "A", "blocks_on": "B"})
    if total != args.chunks * CHUNK:
        raise SystemExit(f"wake_then_block: read {total} bytes, expected {args.chunks * CHUNK}")
    summary("wake_then_block", f"{total} bytes: gen -> mid -> a reader pausing {args.pause} ms per KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
