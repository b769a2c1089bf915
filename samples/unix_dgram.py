#!/usr/bin/env python3
"""Several sender processes send datagrams to one bound Unix datagram socket.

The main process binds a SOCK_DGRAM socket to SOCKET_DIR/dgram.sock (a fresh temp dir), or with
--abstract to the abstract name "@ftraceipc-dgram-<pid>" (no file), then forks --senders processes.
Each sender makes its own unbound, unconnected datagram socket and sends --datagrams datagrams of
1..--size bytes with sock.sendto(data, address) (the sendto syscall). The receiver reads them with
sock.recvfrom() (recvfrom), one datagram per call, until it has them all. When its queue is full
(net.unix.max_dgram_qlen) the senders block.

Truth: sender sockets have no path and no peer; their io entries carry "to": the receiver's rid.

    python3 samples/unix_dgram.py --senders 4 --datagrams 300 [--abstract] --truth truth.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile

from truth import Task, Truth, fork, options, summary, wait_all


def datagram_size(sender: int, k: int, size: int) -> int:
    return 1 + (sender * 211 + k * 53) % size


def sender(i: int, addr: str | bytes, receiver: socket.socket, to: str, args: argparse.Namespace,
           truth_dir: str) -> None:
    receiver.close()
    t = Task(f"sender-{i}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    t.watch(sock)
    for k in range(args.datagrams):
        n = datagram_size(i, k, args.size)
        data = (f"sender {i} datagram {k} ".encode() * (n // 20 + 1))[:n]
        if t.sendto(sock, data, addr, to=to) != n:
            raise RuntimeError("short datagram send")
    t.close(sock)
    t.report(truth_dir)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--datagrams", type=int, default=300, help="datagrams per sender")
    ap.add_argument("--size", type=int, default=2000, help="largest datagram")
    ap.add_argument("--abstract", action="store_true", help="bind in the abstract namespace")
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    truth = Truth("unix_dgram")
    tmp = None
    if args.abstract:
        addr: str | bytes = f"\0ftraceipc-dgram-{os.getpid()}".encode()
    else:
        tmp = tempfile.mkdtemp(prefix="ftraceipc-unix-dgram-")
        addr = os.path.join(tmp, "dgram.sock")
    try:
        receiver_task = Task("receiver")
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(addr)
        rid = receiver_task.watch(receiver)
        pids = [fork(sender, i, addr, receiver, rid, args, truth.dir) for i in range(args.senders)]
        total = 0
        for _ in range(args.senders * args.datagrams):
            data, _ = receiver_task.recvfrom(receiver, 65536)
            total += len(data)
        receiver_task.close(receiver)
        wait_all(pids)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    truth.add(receiver_task.record())
    truth.write(args.truth, args=options(args))
    where = "@" + addr[1:].decode() if args.abstract else addr
    summary("unix_dgram", f"{args.senders} senders x {args.datagrams} datagrams, {total} bytes received on {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
