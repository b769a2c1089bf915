"""Helpers of the live tests: a capture replayed as if it were being written."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ftraceipc.capture.store import CaptureDir
from ftraceipc.decode import Decoder


def merged(batches) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ts, cpu, event id) of every record of these batches, in the order yielded."""
    bs = list(batches)
    if not bs:
        return (np.zeros(0, np.int64),) * 3
    return (np.concatenate([b.ts for b in bs]), np.concatenate([b.cpu for b in bs]),
            np.concatenate([b.event_id for b in bs]))


def replay(src: Path, dst: Path, steps: list[dict[int, int]], max_bytes: int = 1 << 62):
    """Copy capture ``src`` to ``dst`` with empty CPU files, then grow each CPU's file by
    ``steps[i][cpu]`` pages before poll ``i`` of a follower (marks -1: only what was read counts);
    then the rest, and a last ``poll(None)``. Returns (ts, cpu, event id) in the order yielded."""
    shutil.copytree(src, dst)
    cap = CaptureDir.open(dst)
    meta = cap.read_meta()
    ps = meta.page_size
    data = {c: cap.cpu_path(c).read_bytes() for c in meta.cpus}
    done = {c: 0 for c in meta.cpus}
    for c in meta.cpus:
        cap.cpu_path(c).write_bytes(b"")
    fol = Decoder(dst).follow()
    out = []

    def grow(c: int, pages: int) -> None:
        n = min(len(data[c]) - done[c], pages * ps)
        with open(cap.cpu_path(c), "ab") as f:
            f.write(data[c][done[c]:done[c] + n])
        done[c] += n

    for step in steps:
        for c, pages in step.items():
            grow(c, pages)
        while True:
            out += list(fol.poll({c: -1 for c in meta.cpus}, max_bytes))
            if not fol.behind():
                break
    for c in meta.cpus:
        grow(c, len(data[c]))
    out += list(fol.poll(None))
    fol.close()
    return merged(out)
