#!/usr/bin/env python3
"""Thundering herd: several processes poll(2) one pipe; each 1-byte write wakes them all.

--waiters processes each loop: poll the read end (POLLIN), then a non-blocking read of 1 byte;
the one that gets the byte counts it, the others get EAGAIN and go back to poll. The main process
writes --rounds single bytes, --gap ms apart, then closes the pipe (EOF ends the waiters). Every
write wakes every poller, all but one for nothing: the planted pattern of the `thundering_herd`
detector (truth key ``planted``).

    python3 samples/herd.py --waiters 4 --rounds 20 --truth truth.json
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import time

from truth import Task, Truth, fork, options, summary, wait_all


def waiter(i: int, r: int, w: int, truth_dir: str) -> None:
    os.close(w)
    os.set_blocking(r, False)
    t = Task(f"waiter-{i}")
    p = select.poll()
    p.register(r, select.POLLIN)
    got = 0
    while True:
        p.poll()
        try:
            data = os.read(r, 1)
        except BlockingIOError:
            continue  # another waiter got it
        got += len(data)
        if data or got:  # the truth lists only fds that carried bytes (a lone EOF read is left out)
            t.count(r, "read", len(data))
        if not data:
            break
    t.close(r)
    t.report(truth_dir)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--waiters", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--gap", type=float, default=5.0, help="ms between writes")
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    truth = Truth("herd")
    r, w = os.pipe()
    pids = [fork(waiter, i, r, w, truth.dir) for i in range(args.waiters)]
    os.close(r)
    time.sleep(0.05)  # let the waiters reach poll()
    main_t = Task("writer")
    for _ in range(args.rounds):
        main_t.write_all(w, b"x")
        time.sleep(args.gap / 1000)
    main_t.close(w)
    wait_all(pids)
    truth.add(main_t.record())
    truth.write(args.truth, args=options(args),
                planted={"pattern": "thundering_herd", "waker": "writer", "waiters": args.waiters})
    summary("herd", f"{args.rounds} one-byte writes woke {args.waiters} pollers each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
