"""Decode a capture and print events/s and peak RSS.

    python bench/bench_decode.py CAPTURE [--chunk-pages N] [--records] [--repeat N] [--json out.json]

A tool for a capture you already have (no table in BENCHMARKS.md: ``bench_decode_vs_perf.py``
makes its own captures and is the one ``run_all.py`` runs).

Default: columnar decode (``Decoder.batches``), what analyses use. ``--records`` also builds the
per-event dicts (``iter_records``), what ``ftraceipc events --format jsonl`` pays on top.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's ftraceipc
sys.path.insert(1, str(Path(__file__).resolve().parent))
import _benchutil as bu  # noqa: E402

from ftraceipc.decode.decoder import DEFAULT_CHUNK_PAGES, Decoder  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def run(capture: str, chunk_pages: int, records: bool) -> tuple[int, float]:
    dec = Decoder(capture, chunk_pages=chunk_pages)
    t0 = time.perf_counter()
    n = 0
    if records:
        for _ in dec.iter_records():
            n += 1
    else:
        for b in dec.batches():
            n += len(b)
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture")
    ap.add_argument("--chunk-pages", type=int, default=DEFAULT_CHUNK_PAGES)
    ap.add_argument("--records", action="store_true", help="also build per-event dicts")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    a = ap.parse_args()
    rss0 = peak_rss_mib()
    best = None
    for _ in range(a.repeat):
        n, dt = run(a.capture, a.chunk_pages, a.records)
        best = dt if best is None else min(best, dt)
    size = sum(p.stat().st_size for p in Path(a.capture, "cpu").glob("*.raw"))
    mode = "records" if a.records else "batches"
    print(f"{mode}: {n} events in {best:.3f} s = {n / best / 1e6:.2f} M events/s "
          f"({size / best / 2**20:.0f} MiB/s of raw pages)")
    print(f"peak RSS {peak_rss_mib():.0f} MiB (after imports: {rss0:.0f} MiB)")
    bu.write_json(a.json, {"benchmark": "decode", "command": " ".join(sys.argv), "machine": bu.machine_info(),
                           "args": vars(a), "mode": mode, "events": n, "best_s": best,
                           "events_per_s": n / best, "raw_mib": size / 2**20, "peak_rss_mib": peak_rss_mib(),
                           "rss_after_imports_mib": rss0})


if __name__ == "__main__":
    main()
