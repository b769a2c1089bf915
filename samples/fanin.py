#!/usr/bin/env python3
"""Fan-in: 8 writer processes share the write end of one pipe; the main process reads it all.

Even writers use write(2), one call per message; odd writers use writev(2) with a header and a
body iovec. Every 25th message is 9000 bytes, more than PIPE_BUF, so it may interleave with others
and block the writer while the pipe is full; the rest are 1..--size bytes. The reader reads 64 KiB at
a time until EOF.

    python3 samples/fanin.py --writers 8 --messages 200 --truth truth.json
"""

from __future__ import annotations

import argparse
import os
import sys

from truth import Task, Truth, fork, options, summary, wait_all

BIG = 9000


def message_size(writer: int, k: int, size: int) -> int:
    return BIG if k % 25 == 24 else 1 + (writer * 131 + k * 17) % size


def writer(i: int, r: int, w: int, args: argparse.Namespace, truth_dir: str) -> None:
    os.close(r)
    t = Task(f"writer-{i}")
    for k in range(args.messages):
        n = message_size(i, k, args.size)
        head = f"w{i} m{k} {n}:".encode()
        body = bytes([97 + i]) * max(0, n - len(head))
        if i % 2 == 0:
            t.write_all(w, (head + body)[:n])
        else:
            t.writev_all(w, [head[:n], body])
    t.close(w)
    t.report(truth_dir)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--messages", type=int, default=200, help="messages per writer")
    ap.add_argument("--size", type=int, default=512, help="largest small message")
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    truth = Truth("fanin")
    r, w = os.pipe()
    pids = [fork(writer, i, r, w, args, truth.dir) for i in range(args.writers)]
    os.close(w)
    reader = Task("reader")
    total = 0
    while chunk := reader.read(r, 65536):
        total += len(chunk)
    reader.close(r)
    wait_all(pids)
    truth.add(reader.record())
    truth.write(args.truth, args=options(args))
    expected = sum(message_size(i, k, args.size) for i in range(args.writers) for k in range(args.messages))
    if total != expected:
        raise SystemExit(f"fanin: read {total} bytes, expected {expected}")
    summary("fanin", f"{args.writers} writers x {args.messages} messages, {total} bytes read by one reader")
    return 0


if __name__ == "__main__":
    sys.exit(main())
