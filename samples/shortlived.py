#!/usr/bin/env python3
"""Short-lived writers: children fork and exec tiny programs that write to an inherited pipe.

The main process makes a pipe and forks --children children. Child i writes one line into the
pipe itself (os.write: write), then forks a grandchild that dup2()s the pipe's write end onto its
stdout (fd 1, like a shell's `cmd | ...`) and execs a tiny program, which writes to fd 1 and exits
within milliseconds; child i waits for it, reports, and exits. The main process reads the pipe until
EOF (every write end is closed once all grandchildren are gone).

--program python (default): `python3 -I -S -c CODE` writes --parts lines with os.write(1, ...),
counting calls and bytes from the return values, and reports its own pid and counts in a side file
(a regular file opened on another fd, never fd 1).
--program sh: `/bin/sh -c 'printf ...'` (dash) writes one line "exec I pid $$" in one write(2) of fd
1; the shell cannot count return values, so its truth is by construction (1 call, the line's length),
and the main process checks that the line naming each grandchild's pid arrived.

Every line names the writer's pid ($$ / os.getpid()), so the reader checks each exec'd task wrote.

    python3 samples/shortlived.py --children 8 [--program sh] --truth truth.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from truth import Task, Truth, bare_record, fork, options, summary, wait_all, write_record

PY_PROGRAM = r"""
import json, os, sys
i, side, parts = sys.argv[1], sys.argv[2], int(sys.argv[3])
pid = os.getpid()
calls = nbytes = 0
for k in range(parts):
    data = memoryview(f"exec {i} pid {pid} part {k}\n".encode())
    while data:
        n = os.write(1, data)
        calls += 1
        nbytes += n
        data = data[n:]
fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, json.dumps({"pid": pid, "calls": calls, "bytes": nbytes}).encode())
os.close(fd)
"""
SH_PROGRAM = 'printf "exec %s pid %s\\n" "$1" "$$"'


def child(i: int, r: int, w: int, args: argparse.Namespace, truth_dir: str) -> None:
    os.close(r)
    t = Task(f"child-{i}")
    rid = t.rid(w)
    t.write_all(w, f"child {i} pid {os.getpid()}\n".encode())
    side = os.path.join(truth_dir, f"exec-{i}.side")
    if args.program == "python":
        argv = [sys.executable, "-I", "-S", "-c", PY_PROGRAM, str(i), side, str(args.parts)]
    else:
        argv = ["/bin/sh", "-c", SH_PROGRAM, "sh", str(i)]
    gpid = os.fork()
    if gpid == 0:
        try:
            os.dup2(w, 1)  # inheritable, unlike w (O_CLOEXEC): the exec closes w and keeps fd 1
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _, status = os.waitpid(gpid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"exec'd program failed: {status}")
    if args.program == "python":
        with open(side) as f:
            rep = json.load(f)
        os.unlink(side)
        if rep["pid"] != gpid:
            raise RuntimeError(f"exec'd program says pid {rep['pid']}, fork said {gpid}")
        calls, nbytes = rep["calls"], rep["bytes"]
    else:
        calls, nbytes = 1, len(f"exec {i} pid {gpid}\n")
    io = [{"fd": 1, "rid": rid, "op": "write", "syscall": "write", "calls": calls, "bytes": nbytes}]
    write_record(truth_dir, bare_record(gpid, gpid, os.getpid(), f"exec-{i}", io, t.resources.values()))
    t.close(w)
    t.report(truth_dir, exec_pid=gpid)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--children", type=int, default=8)
    ap.add_argument("--program", choices=["python", "sh"], default="python", help="what the grandchildren exec")
    ap.add_argument("--parts", type=int, default=3, help="lines each python grandchild writes")
    ap.add_argument("--truth", help="write the truth JSON here")
    args = ap.parse_args()

    truth = Truth("shortlived")
    r, w = os.pipe()
    pids = [fork(child, i, r, w, args, truth.dir) for i in range(args.children)]
    os.close(w)
    reader = Task("reader")
    data = b""
    while chunk := reader.read(r, 65536):
        data += chunk
    reader.close(r)
    wait_all(pids)
    truth.add(reader.record())
    t = truth.write(args.truth, args=options(args))
    writers = {int(m) for m in re.findall(rb"^(?:exec|child) \d+ pid (\d+)", data, re.M)}
    execs = {x["tid"] for x in t["tasks"] if x["role"].startswith("exec-")}
    if not execs <= writers or len(execs) != args.children:
        raise SystemExit(f"shortlived: exec'd tasks {sorted(execs)} but lines from {sorted(writers)}")
    summary("shortlived", f"{args.children} children each exec'd a {args.program} writer; "
                          f"{len(data)} bytes read from {len(writers)} writers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
