"""A bursty producer and a steady consumer over one pipe (case study ``bursty_pipe`` of bench/insight.py).

    python3 bench/workloads/bursty.py BURSTS [--pipe-size BYTES] [--work N]

The producer (comm ``producer``) computes for a while, then writes a burst of 256 KiB into the pipe
in one write; the consumer (comm ``consumer``, a forked child) reads 16 KiB at a time and computes on
each chunk at a steady pace. Both do the same amount of work per burst.

With the default 64 KiB pipe the two take turns: the producer sleeps on the full pipe until the
consumer has drained 3/4 of the burst, and the consumer sleeps on the empty pipe while the producer
computes the next burst. ``--pipe-size 1048576`` (``F_SETPIPE_SZ``) lets a whole burst fit: the
producer goes on computing while the consumer works through the previous burst, so both CPUs work.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys

BURST = 256 * 1024
CHUNK = 16 * 1024


def set_comm(name: str) -> None:
    with open("/proc/self/comm", "w") as f:
        f.write(name)


def work(n: int) -> int:
    x = 1
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return x


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bursts", type=int)
    ap.add_argument("--pipe-size", type=int, default=0, help="F_SETPIPE_SZ on the pipe (0: the default 64 KiB)")
    ap.add_argument("--work", type=int, default=20000, help="loop iterations per burst, on each side")
    a = ap.parse_args()
    r, w = os.pipe()
    if a.pipe_size:
        got = fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, a.pipe_size)
        if got < a.pipe_size:
            print(f"bursty: pipe size {got} < {a.pipe_size}", file=sys.stderr)
            return 1
    per_chunk = max(1, a.work * CHUNK // BURST)
    pid = os.fork()
    if pid == 0:
        os.close(w)
        set_comm("consumer")
        total = 0
        while True:
            b = os.read(r, CHUNK)
            if not b:
                break
            total += len(b)
            work(per_chunk * len(b) // CHUNK)
        os._exit(0 if total == a.bursts * BURST else 3)
    os.close(r)
    set_comm("producer")
    data = b"x" * BURST
    for _ in range(a.bursts):
        work(a.work)
        view = memoryview(data)
        while view:
            n = os.write(w, view)
            view = view[n:]
    os.close(w)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
