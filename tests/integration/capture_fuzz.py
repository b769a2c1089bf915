"""Damage a real capture the ways a disk, a copy or a hand can: cut a file short, flip bits,
overwrite a run of bytes, delete a file. Each case is a seed: ``mutate(capture, seed, dest)``
makes the same damaged copy every time (``python3 capture_fuzz.py CAPTURE SEED`` prints what it did).

The copy is a tree of symbolic links to the original files, except the one damaged file (a real,
changed copy) or the deleted one (absent): cheap enough for thousands of cases.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

KINDS = ("truncate", "bitflip", "overwrite", "delete")


@dataclass(frozen=True)
class Mutation:
    seed: int
    kind: str
    file: str  # relative to the capture
    detail: str
    cut: bool = False  # the file was deleted or made shorter

    def __str__(self) -> str:
        return f"seed {self.seed}: {self.kind} {self.file} ({self.detail})"


def capture_files(capture: Path) -> list[str]:
    """The files a mutation may hit (never the derived graph or model), relative paths, sorted."""
    out = []
    for p in sorted(capture.rglob("*")):
        rel = p.relative_to(capture)
        if p.is_file() and rel.parts[0] not in ("graph.lbug", "model") and not rel.name.startswith("graph.lbug"):
            out.append(str(rel))
    return out


def _pick_file(rng: random.Random, files: list[str]) -> str:
    """Mostly the raw pages and the files the decoder needs first, sometimes anything."""
    cpu = [f for f in files if f.startswith("cpu/")]
    key = [f for f in files if f in ("meta.json", "tracefs/header_page", "tracefs/header_event", "proc.jsonl",
                                      "opens.jsonl", "tracefs/saved_tgids", "tracefs/saved_cmdlines")]
    fmt = [f for f in files if f.endswith("/format") and ("sched" in f or "read" in f or "write" in f)]
    r = rng.random()
    pool = cpu if r < 0.55 else key if r < 0.75 else fmt if r < 0.85 else files
    return rng.choice(pool or files)


def link_tree(capture: Path, dest: Path, files: list[str]) -> None:
    """``dest``: a symbolic link to each of the capture's files."""
    for rel in files:
        d = dest / rel
        d.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(capture / rel, d)


def mutate(capture: Path, seed: int, dest: Path, files: list[str] | None = None, *, linked: bool = False) -> Mutation:
    """Make ``dest``: ``capture`` with one damage chosen by ``seed``. ``linked``: ``dest`` already
    is ``link_tree(capture, dest)`` (only the damaged file is replaced; ``restore`` undoes it)."""
    rng = random.Random(seed)
    files = files if files is not None else capture_files(capture)
    kind = rng.choices(KINDS, weights=(35, 35, 20, 10))[0]
    target = _pick_file(rng, files)
    if not linked:
        link_tree(capture, dest, files)
    (dest / target).unlink()
    data = bytearray((capture / target).read_bytes())
    n = len(data)
    if kind == "delete":
        return Mutation(seed, kind, target, "removed", cut=True)
    if kind == "truncate":
        at = rng.randrange(n + 1) if rng.random() < 0.7 or n < 4096 else rng.randrange(n // 4096 + 1) * 4096
        detail = f"to {at} of {n} bytes"
        data = data[:at]
    elif kind == "bitflip":
        k = rng.choice((1, 1, 2, 4, 16, 64))
        bits = [rng.randrange(n * 8) for _ in range(k)] if n else []
        for b in bits:
            data[b >> 3] ^= 1 << (b & 7)
        detail = f"{len(bits)} bit(s): {bits[:4]}{'...' if len(bits) > 4 else ''}"
    else:
        at = rng.randrange(n) if n else 0
        ln = rng.choice((1, 4, 8, 16, 64, 512, 4096))
        fill = rng.choice(("zeros", "ones", "random"))
        blob = bytes(ln) if fill == "zeros" else b"\xff" * ln if fill == "ones" else rng.randbytes(ln)
        data[at:at + ln] = blob[:max(0, min(ln, n - at))]
        detail = f"{ln} {fill} bytes at {at}"
    (dest / target).write_bytes(bytes(data))
    return Mutation(seed, kind, target, detail, cut=len(data) < n)


class CaseTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float):
    """Raise CaseTimeout in this (main) thread after ``seconds`` (a hang is a failure, not a stuck test)."""
    def on_alarm(signum, frame):
        raise CaseTimeout(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Outcome:
    mutation: Mutation
    status: str  # "ok" (a result, maybe with warnings), "error" (one clear FtraceIPCError), "crash", "timeout"
    text: str = ""  # the error line, the warning kinds, or the traceback
    kinds: tuple[str, ...] = ()  # problem kinds reported (status "ok")


def restore(capture: Path, dest: Path, m: Mutation) -> None:
    """Put back the link of the file ``m`` damaged (``dest`` made by ``link_tree``)."""
    p = dest / m.file
    if p.exists() or p.is_symlink():
        p.unlink()
    os.symlink(capture / m.file, p)


def run_case(capture: Path, seed: int, work: Path, files: list[str], timeout: float = 20.0) -> Outcome:
    """Damage a copy of ``capture`` (seed), then decode it and build its model in this process as
    the CLI does (``build_model``: the decoder's full pass and the model; then the problems list).
    ``work``: a directory made by ``link_tree`` (reused from case to case), or an empty one."""
    from ftraceipc.errors import FtraceIPCError
    from ftraceipc.model.build import build_model
    from ftraceipc.problems import model_problems

    dest = work / "case"
    if not dest.exists():
        link_tree(capture, dest, files)
    m = mutate(capture, seed, dest, files, linked=True)
    try:
        with time_limit(timeout):
            model = build_model(dest)  # the decoder's full pass, then the model
            probs = model_problems(model)
        return Outcome(m, "ok", "; ".join(p.line() for p in probs), tuple(p.kind.value for p in probs))
    except FtraceIPCError as e:
        return Outcome(m, "error", e.line())
    except CaseTimeout as e:
        return Outcome(m, "timeout", str(e))
    except Exception:  # noqa: BLE001 - what the fuzzing looks for
        return Outcome(m, "crash", traceback.format_exc())
    finally:
        restore(capture, dest, m)


if __name__ == "__main__":  # python3 capture_fuzz.py CAPTURE FIRST_SEED [N]
    import tempfile

    cap = Path(sys.argv[1])
    first = int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    fl = capture_files(cap)
    seen: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for s in range(first, first + count):
            o = run_case(cap, s, Path(tmp), fl)
            seen[o.status] = seen.get(o.status, 0) + 1
            if o.status in ("crash", "timeout") or count == 1:
                print(o.mutation, o.status, o.text, sep="\n  ", flush=True)
    print(f"{count} cases: {seen}")
