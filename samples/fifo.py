#!/usr/bin/env python3
"""A FIFO between two unrelated processes that open it by path.

The main process makes a FIFO (mkfifo) in a fresh temp dir and starts the reader with subprocess
(this script again, --role reader) in a new session, with no fd of the writer's (close_fds). The
reader opens the FIFO by path read-only; the main process opens it write-only (each open waits for
the other side), writes --bytes bytes in chunks of 1..--chunk bytes with os.write() (write), and
closes it. The reader reads 16 KiB at a time with os.read() (read) until EOF and reports its own
count. Resource: "fifo:<inode of the FIFO file>" with its path.

    python3 samples/fifo.py --bytes 524288 --truth truth.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from truth import Task, Truth, options, summary

TIMEOUT = 20  # s: neither side waits for ever on an open whose other side died


def reader(path: str, truth_dir: str) -> None:
    signal.alarm(TIMEOUT)
    t = Task("reader")
    fd = os.open(path, os.O_RDONLY)
    t.watch(fd)
    while t.read(fd, 16384):
        pass
    t.close(fd)
    t.report(truth_dir, sid=os.getsid(0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", type=int, default=512 * 1024, help="bytes to send through the FIFO")
    ap.add_argument("--chunk", type=int, default=16384, help="largest write")
    ap.add_argument("--truth", help="write the truth JSON here")
    ap.add_argument("--role", choices=["writer", "reader"], default="writer", help=argparse.SUPPRESS)
    ap.add_argument("--fifo", help=argparse.SUPPRESS)
    ap.add_argument("--truth-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "reader":
        reader(args.fifo, args.truth_dir)
        return 0

    truth = Truth("fifo")
    tmp = tempfile.mkdtemp(prefix="ftraceipc-fifo-")
    path = os.path.join(tmp, "fifo")
    try:
        os.mkfifo(path, 0o600)
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--role", "reader", "--fifo", path,
                                 "--truth-dir", truth.dir], start_new_session=True, close_fds=True,
                                stdin=subprocess.DEVNULL)
        signal.alarm(TIMEOUT)
        t = Task("writer")
        fd = os.open(path, os.O_WRONLY)
        signal.alarm(0)
        t.watch(fd)
        sent = k = 0
        while sent < args.bytes:
            n = min(args.bytes - sent, 1 + (k * 7919) % args.chunk)
            t.write_all(fd, bytes([65 + k % 26]) * n)
            sent += n
            k += 1
        t.close(fd)
        if proc.wait(timeout=TIMEOUT) != 0:
            raise SystemExit(f"fifo: the reader failed ({proc.returncode})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    truth.add(t.record(sid=os.getsid(0)))
    truth.write(args.truth, args=options(args))
    summary("fifo", f"{sent} bytes through {path} to reader pid {proc.pid} (own session)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
