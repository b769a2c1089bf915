"""What the capture's /proc watcher costs (``ftraceipc.capture.procsnap.ProcWatcher``).

    sudo python3 bench/bench_procwatch.py [--rounds 400] [--seconds 5] [--fds 3 64] [--json out.json]

The watcher polls the traced command's fd tables and /proc/net/unix every 10 ms at most, within a
share of one CPU (``duty``). Two measurements, each side by side in one run:

1. One round, cold (each after a 10 ms wait in a thread of its own, as the watcher runs it): the
   checks a poll makes now (``list_pids`` + ``read_links`` + ``UnixTable.changed``) against the
   whole reads it made before (``list_pids`` + ``read_fds`` + ``read_unix_sockets``), on a process
   holding ``--fds`` fds (pipes), interleaved blocks of ``--rounds`` rounds. Thread CPU µs per round.
2. The watcher itself for ``--seconds`` on a sleeping process of that many fds, at the duty it runs
   with (2.5 %) and at the old duty (5 %): its CPU as a share of one CPU, its rounds a second and the
   bytes it wrote (proc.jsonl).
"""

from __future__ import annotations

import argparse
import io
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _benchutil as bu  # noqa: E402

from ftraceipc.capture.procsnap import (ProcWatcher, UnixTable, list_pids, read_fds, read_links,  # noqa: E402
                                        read_unix_sockets)

HOLDER = ("import os, sys, time\n"
          "n = int(sys.argv[1])\n"
          "keep = [os.pipe() for _ in range(max(0, n - 3) // 2)]\n"
          "time.sleep(3600)\n")


def holder(fds: int) -> subprocess.Popen:
    """A sleeping process with about ``fds`` fds (stdin/out/err and pipes)."""
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(fds)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL)
    for _ in range(200):
        got = read_links(p.pid)
        if got is not None and len(got) >= min(fds, 3 + 2 * (max(0, fds - 3) // 2)):
            break
        time.sleep(0.01)
    return p


def cold_rounds(pid: int, rounds: int, blocks: int = 4) -> dict[str, float]:
    """Thread CPU µs per round after a 10 ms wait: the checks against the whole reads."""
    unix = UnixTable()
    unix.read()
    variants = {
        "checks": lambda: (list_pids(), unix.changed(), read_links(pid)),
        "whole reads": lambda: (list_pids(), read_unix_sockets(), read_fds(pid)),
    }
    total = {k: 0.0 for k in variants}
    count = {k: 0 for k in variants}

    def block(name: str) -> None:
        r, w = os.pipe()
        po = select.poll()
        po.register(r, select.POLLIN)
        fn = variants[name]
        try:
            for _ in range(rounds):
                po.poll(10)
                c = time.thread_time()
                fn()
                total[name] += time.thread_time() - c
                count[name] += 1
        finally:
            os.close(r)
            os.close(w)

    for b in range(blocks):
        for name in (list(variants) if b % 2 == 0 else list(variants)[::-1]):
            t = threading.Thread(target=block, args=(name,))
            t.start()
            t.join()
    return {k: round(total[k] / count[k] * 1e6, 1) for k in variants}


def watcher_run(pid: int, seconds: float, duty: float) -> dict:
    out = io.StringIO()
    w = ProcWatcher(out, interval=0.01, root_pids=[pid], duty=duty)
    w.start_snapshot()
    start_bytes = len(out.getvalue())
    w.start()
    time.sleep(seconds)
    w.stop()
    w.join()
    return {"duty_pct": duty * 100, "cpu_pct": round((w.cpu_s or 0) / seconds * 100, 2),
            "rounds_per_s": round(w.rounds / seconds, 1),
            "bytes_per_s": round((len(out.getvalue()) - start_bytes) / seconds)}


def markdown(res: dict) -> str:
    lines = ["One poll round, cold (thread CPU µs per round, each after a 10 ms wait; the mean of four "
             f"interleaved blocks of {res['args']['rounds']} rounds):", ""]
    rows = []
    for r in res["cold"]:
        rows.append([r["fds"], r["checks"], r["whole reads"], f"{r['whole reads'] / r['checks']:.2f}x"])
    lines.append(bu.table(["fds of the traced process", "checks (now)", "whole reads (before)", "ratio"], rows))
    lines += ["", f"The watcher thread for {res['args']['seconds']:g} s on a sleeping process:", ""]
    rows = [[r["fds"], f"{r['duty_pct']:g} %", f"{r['cpu_pct']:.2f} %", r["rounds_per_s"], r["bytes_per_s"]]
            for r in res["watcher"]]
    lines.append(bu.table(["fds", "duty", "CPU (of one CPU)", "rounds/s", "proc.jsonl bytes/s"], rows))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=400, help="rounds per block of part 1")
    ap.add_argument("--seconds", type=float, default=5.0, help="part 2: seconds per watcher run")
    ap.add_argument("--fds", type=int, nargs="+", default=[3, 64], help="fds of the traced process")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    bu.install_signal_handlers()
    res: dict = {"benchmark": "procwatch", "command": " ".join(sys.argv), "machine": bu.machine_info(),
                 "args": vars(a), "cold": [], "watcher": []}
    for fds in a.fds:
        p = holder(fds)
        try:
            n = len(read_links(p.pid) or {})
            c = cold_rounds(p.pid, a.rounds)
            res["cold"].append({"fds": n, **c})
            bu.log(f"fds {n}: cold round {c}")
            for duty in (0.025, 0.05):
                w = watcher_run(p.pid, a.seconds, duty)
                res["watcher"].append({"fds": n, **w})
                bu.log(f"fds {n}: watcher {w}")
        finally:
            p.kill()
            p.wait()
    print(markdown(res))
    bu.write_json(a.json, res)


if __name__ == "__main__":
    main()
