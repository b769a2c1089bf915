#!/usr/bin/env python3
"""Two threads of one process ping-pong small messages over a Unix stream socketpair.

The "ping" thread sends a 16-byte message with sock.send() (the sendto syscall) and waits for the
answer with sock.recv() (recvfrom); the "pong" thread reads it with os.read() on the other socket's
fd (the read syscall) and answers with os.write() (write). --rounds round trips; then ping closes its
end and pong's read returns 0. Both threads share one fd table, so the tid (not the pid) says who
did what.

    python3 samples/socketpair_pingpong.py --rounds 2000 --truth truth.json
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading

from truth import Task, Truth, options, summary

SIZE = 16


def ping(sock: socket.socket, rounds: int, records: list) -> None:
    t = Task("ping")
    t.watch(sock, link="pair")
    for k in range(rounds):
        msg = f"ping {k:010d}\n".encode()
        t.send_all(sock, msg)
        if t.recv_exactly(sock, SIZE) != f"pong {k:010d}\n".encode():
            raise RuntimeError(f"bad answer in round {k}")
    t.close(sock)
    records.append(t.record())


def pong(sock: socket.socket, records: list) -> None:
    t = Task("pong")
    t.watch(sock, link="pair")
    fd = sock.fileno()
    buf = b""
    while True:
        chunk = t.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= SIZE:
            msg, buf = buf[:SIZE], buf[SIZE:]
            t.write_all(fd, b"pong" + msg[4:])
    t.close(sock)
    records.append(t.record())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    truth = Truth("socketpair_pingpong")
    main_task = Task("main")
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    records: list = []
    threads = [threading.Thread(target=ping, args=(a, args.rounds, records), name="ping"),
               threading.Thread(target=pong, args=(b, records), name="pong")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if len(records) != 2:
        raise SystemExit("socketpair_pingpong: a thread failed")
    truth.add(main_task.record())
    for rec in records:
        truth.add(rec)
    t = truth.write(args.truth, args=options(args))
    nbytes = sum(e["bytes"] for e in t["io"] if e["op"] in ("send", "write"))
    summary("socketpair_pingpong", f"{args.rounds} round trips between two threads, {nbytes} bytes sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
