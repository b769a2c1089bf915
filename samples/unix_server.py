#!/usr/bin/env python3
"""A named Unix stream server with one thread per client, and 10 client processes.

The server binds SOCKET_DIR/server.sock (a fresh temp dir), listens, and its main thread accepts
exactly --clients connections, starting one worker thread per connection (so the server's tasks are
threads of one process: tid != pid). Each client process connects and makes --requests requests:
a 4-byte big-endian length and a payload, sent with sock.send() in a loop (the sendto syscall); it
reads the reply with sock.recv() (recvfrom). A worker reads the request the same way and replies
with sendmsg() of two iovecs (length, reversed payload). A client closes its socket when done; the
worker's recv then returns 0 and the worker ends.

Peers: the worker learns its client's pid with SO_PEERCRED; both sides link their socket under
"conn-<client pid>", which gives the accepted socket and the client socket as each other's peer.
The listening socket and the accepted ones have the server path (getsockname); clients' have none.

    python3 samples/unix_server.py --clients 10 --requests 40 --truth truth.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading

from truth import Task, Truth, fork, options, summary, wait_all


def request_size(client: int, k: int, size: int) -> int:
    return 1 + (client * 97 + k * 31) % size


def client(i: int, path: str, listener: socket.socket, args: argparse.Namespace, truth_dir: str) -> None:
    listener.close()
    t = Task(f"client-{i}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    t.watch(sock, link=f"conn-{os.getpid()}")
    for k in range(args.requests):
        payload = (f"client {i} request {k} ".encode() * 100)[:request_size(i, k, args.size)]
        t.send_all(sock, struct.pack(">I", len(payload)) + payload)
        (n,) = struct.unpack(">I", t.recv_exactly(sock, 4))
        reply = t.recv_exactly(sock, n)
        if reply != payload[::-1]:
            raise RuntimeError(f"client {i}: bad reply to request {k}")
    t.close(sock)
    t.report(truth_dir)


def worker(conn: socket.socket, index: int, records: list) -> None:
    t = Task(f"worker-{index}")
    pid, _uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    t.watch(conn, link=f"conn-{pid}")
    while head := t.recv_exactly(conn, 4):
        (n,) = struct.unpack(">I", head)
        payload = t.recv_exactly(conn, n)
        t.sendmsg_all(conn, [head, payload[::-1]])
    t.close(conn)
    records.append(t.record(client_pid=pid))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--requests", type=int, default=40, help="requests per client")
    ap.add_argument("--size", type=int, default=1500, help="largest request payload")
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    truth = Truth("unix_server")
    tmp = tempfile.mkdtemp(prefix="ftraceipc-unix-server-")
    path = os.path.join(tmp, "server.sock")
    try:
        acceptor = Task("acceptor")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(args.clients)
        acceptor.watch(listener)
        pids = [fork(client, i, path, listener, args, truth.dir) for i in range(args.clients)]
        records: list = []
        threads = []
        for index in range(args.clients):
            conn, _ = listener.accept()
            th = threading.Thread(target=worker, args=(conn, index, records), name=f"worker-{index}")
            th.start()
            threads.append(th)
        for th in threads:
            th.join()
        acceptor.close(listener)
        wait_all(pids)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if len(records) != args.clients:
        raise SystemExit("unix_server: a worker thread failed")
    truth.add(acceptor.record())
    for rec in records:
        truth.add(rec)
    t = truth.write(args.truth, args=options(args))
    nbytes = sum(e["bytes"] for e in t["io"] if e["op"] == "send")
    summary("unix_server", f"{args.clients} clients x {args.requests} requests, {nbytes} bytes sent "
                           f"(thread per client)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
