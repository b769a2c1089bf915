#!/usr/bin/env python3
"""Request/ack over a SOCK_SEQPACKET socketpair between two processes (message boundaries kept).

The main process ("client") makes an AF_UNIX SOCK_SEQPACKET socketpair and forks the "server",
each keeping one end. The client sends --messages records of 1..--size bytes with sendmsg() of two
iovecs (a header and a body: one record per call); the server receives each with recvmsg() (one
record per call, checking it is exactly the size sent) and answers with a short ack by sock.send()
(the sendto syscall), which the client reads with sock.recv() (recvfrom). The client then closes its
end; the server's recvmsg returns 0 and it exits.

    python3 samples/seqpacket.py --messages 500 --truth truth.json
"""

from __future__ import annotations

import argparse
import socket
import sys

from truth import Task, Truth, fork, options, summary, wait_all


def record_size(k: int, size: int) -> int:
    return max(12, 1 + (k * 389) % size)


def server(sock: socket.socket, other: socket.socket, args: argparse.Namespace, truth_dir: str) -> None:
    other.close()
    t = Task("server")
    t.watch(sock, link="pair")
    k = 0
    while msg := t.recvmsg(sock, 65536):
        if len(msg) != record_size(k, args.size):
            raise RuntimeError(f"record {k}: {len(msg)} bytes, sent {record_size(k, args.size)}")
        t.send_all(sock, f"ack {k} {len(msg)}".encode())
        k += 1
    t.close(sock)
    t.report(truth_dir, records=k)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--size", type=int, default=4000, help="largest record")
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    truth = Truth("seqpacket")
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = fork(server, theirs, mine, args, truth.dir)
    theirs.close()
    t = Task("client")
    t.watch(mine, link="pair")
    for k in range(args.messages):
        n = record_size(k, args.size)
        head = f"rec {k:07d}:".encode()
        t.sendmsg_all(mine, [head, b"s" * (n - len(head))])
        ack = t.recv(mine, 256)
        if ack != f"ack {k} {n}".encode():
            raise SystemExit(f"seqpacket: bad ack {ack!r} for record {k}")
    t.close(mine)
    wait_all([pid])
    truth.add(t.record())
    tr = truth.write(args.truth, args=options(args))
    nbytes = sum(e["bytes"] for e in tr["io"] if e["syscall"] == "sendmsg")
    summary("seqpacket", f"{args.messages} records, {nbytes} bytes, each acked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
