"""Regenerate every current table of BENCHMARKS.md at this checkout's HEAD, with one command.

    sudo python3 bench/run_all.py              # the full run: 25-30 minutes on the 2-vCPU VM
    sudo python3 bench/run_all.py --quick      # tiny sizes, 1 repeat: 5-8 minutes, checks the driver
    python3 bench/run_all.py --render-only     # rewrite BENCHMARKS.md from the stored bench/results/*.json
    python3 bench/run_all.py --list            # what would run, with which arguments

Each benchmark script of ``BENCHES`` runs in turn with fixed arguments (``--quick``: tiny ones) and
``--json RESULTS/NAME.json``; its output goes to the terminal and to ``RESULTS/NAME.log``. Then the
script's own ``markdown(results)`` turns that JSON into its tables, and the driver puts them into
BENCHMARKS.md between ``<!-- bench:NAME:begin -->`` and ``<!-- bench:NAME:end -->``, stamped with
the commit (``git rev-parse HEAD``), the date and the machine (CPU model, cores, kernel, RAM), with
the exact command. Nothing outside the markers changes. The block ``machine`` gets the machine, the
driver's command, and each script's duration and status. ``RESULTS/run_all.json`` records the run.

The full run writes ``bench/results/`` and ``BENCHMARKS.md``; ``--quick`` writes a temporary results
directory and rewrites no document unless ``--doc PATH`` is given (tiny sizes are not numbers to
publish). A script that fails leaves its block as it was, the others go on, and the exit status is 1.
A script that is not in the checkout (``bench_events.py`` until it is merged) is skipped with a message.
The measured code is this checkout's (``PYTHONPATH`` is set to it for every script).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))  # this checkout's ftraceipc, before any installed copy
sys.path.insert(1, str(BENCH_DIR))
import _benchutil as bu  # noqa: E402

DOC = REPO / "BENCHMARKS.md"
README = REPO / "README.md"  # its "cost" block: the overhead table users read (issue #12, section 3)
RESULTS = BENCH_DIR / "results"
COMMAND = "sudo python3 bench/run_all.py"


@dataclass(frozen=True)
class Bench:
    name: str  # the block in BENCHMARKS.md and the results file NAME.json
    script: str  # in bench/
    full: tuple[str, ...]  # arguments of the full run (the published numbers)
    quick: tuple[str, ...]  # arguments of --quick
    expected_s: int  # rough duration of the full run on the 2-vCPU VM, seconds
    what: str

    @property
    def path(self) -> Path:
        return BENCH_DIR / self.script

    def argv(self, quick: bool) -> list[str]:
        return list(self.quick if quick else self.full)


BENCHES: tuple[Bench, ...] = (
    Bench("overhead", "bench_overhead.py", ("--repeat", "5", "--variants", "untraced,floor,floor-core,floor-D:wakeup_latency,floor-wakeup,ftraceipc,perf"),
          ("--repeat", "1", "--loops", "20000", "--retry-busy", "0"), 150,
          "tracing overhead on a pinned pipe ping-pong: untraced, floor, ftraceipc, perf record"),
    Bench("overhead-findgrep", "bench_overhead.py",
          ("--workload", "findgrep", "--files", "100000", "--repeat", "7",
           "--variants", "untraced,floor,floor-open,ftraceipc,ftraceipc-noopen,perf"),
          ("--workload", "findgrep", "--files", "5000", "--repeat", "1", "--retry-busy", "0"), 200,
          "tracing overhead on find | xargs grep over 100,000 files: opens and forks, few IPC events (issue #12)"),
    Bench("overhead-findgrep-cold", "bench_overhead.py",
          ("--workload", "findgrep", "--files", "100000", "--cold", "--repeat", "3",
           "--variants", "untraced,floor,floor-open,ftraceipc,ftraceipc-noopen"),
          ("--workload", "findgrep", "--files", "2000", "--cold", "--repeat", "1", "--retry-busy", "0"), 200,
          "tracing overhead on find | xargs grep over 100,000 files, page cache dropped before each run (issue #12)"),
    Bench("overhead-opens", "bench_overhead.py",
          ("--workload", "opens", "--opens", "300000", "--repeat", "5",
           "--variants", "untraced,floor,floor-open,ftraceipc,ftraceipc-noopen"),
          ("--workload", "opens", "--opens", "20000", "--repeat", "1", "--retry-busy", "0"), 120,
          "what one open costs traced, and what the open watcher's instance adds (issue #12)"),
    Bench("overhead-make", "bench_overhead.py",
          ("--workload", "make", "--sources", "120", "--repeat", "3",
           "--variants", "untraced,floor,ftraceipc,ftraceipc-noopen,perf"),
          ("--workload", "make", "--sources", "6", "--repeat", "1", "--retry-busy", "0"), 300,
          "tracing overhead on make -j2 of 120 generated C files (issue #12)"),
    Bench("overhead-pgbench", "bench_overhead.py",
          ("--workload", "pgbench", "--transactions", "25000", "--repeat", "9",
           "--variants", "untraced,floor,floor-core,floor-D:wakeup_latency,floor-wakeup,ftraceipc,perf"),
          ("--workload", "pgbench", "--transactions", "500", "--repeat", "1", "--retry-busy", "0"), 200,
          "tracing overhead on pgbench -S -c 4 over PostgreSQL's Unix socket (issue #12)"),
    Bench("procwatch", "bench_procwatch.py", (), ("--rounds", "50", "--seconds", "1"), 40,
          "the /proc watcher's own cost: one poll round, cold, and the watcher thread at its duty"),
    Bench("lost", "bench_lost.py", ("--repeat", "5"), ("--repeat", "1", "--loops", "20"), 120,
          "lost events under perf bench sched messaging, default buffer"),
    Bench("lost-8mib", "bench_lost.py", ("--repeat", "5", "--buffer-kb", "8192"),
          ("--repeat", "1", "--loops", "20", "--buffer-kb", "8192"), 120,
          "lost events with half the default buffer (8 MiB per CPU)"),
    Bench("decode", "bench_decode_vs_perf.py", ("--repeat", "3", "--big-runs", "5"),
          ("--repeat", "1", "--loops", "20", "--big-runs", "1"), 240,
          "decoding against perf script, and a ~11 M-event capture's memory"),
    Bench("model", "bench_model.py", ("--loops", "200", "1000", "--repeat", "3"),
          ("--loops", "20", "--repeat", "1"), 300,
          "building the IPC model: events/s on one core, peak RSS"),
    Bench("graph-load", "bench_graph_load.py", ("--edges", "1000000", "--repeat", "3"),
          ("--edges", "20000", "--repeat", "1"), 90,
          "loading 1 M edges into the embedded LadybugDB"),
    Bench("neo4j-load", "bench_neo4j_load.py", ("--edges", "300000", "--repeat", "3", "--heap", "4g"),
          ("--edges", "6000", "--tasks", "1000", "--resources", "500", "--repeat", "1", "--heap", "1g",
           "--pagecache", "256m"), 180,
          "loading 317,500 rows into a Neo4j 5.26 started by the script"),
    Bench("detect", "bench_detect.py", ("--loops", "900", "--repeat", "3"), ("--loops", "20", "--repeat", "1"), 180,
          "all detectors on a ~10 M-event capture, against perf sched"),
    Bench("events", "bench_events.py", ("--repeat", "3"), ("--repeat", "1"), 240,
          "events out (csv, jsonl, parquet) against perf script (issue #10 section 6)"),
    # the memory part runs the target's 10 minutes (marks at minute 2 and minute 10): ~4.7 GiB of capture
    Bench("live", "bench_live.py", ("--repeat", "3", "--loops", "200000", "--lost-repeat", "2",
                                    "--memory-minutes", "10", "--memory-first-s", "120"),
          ("--quick",), 2400,
          "ftraceipc live (issue #13): agreement with analyze, finding latency, overhead against capture, "
          "lost events, memory over 10 minutes, --budget on pgbench -S"),
)


def expected_minutes() -> float:
    return sum(b.expected_s for b in BENCHES) / 60


# --- pure: results JSON -> Markdown blocks -> document ---------------------------------------------------
def load_module(path: Path):
    """Import a bench script as a module (its ``main`` does not run)."""
    spec = importlib.util.spec_from_file_location(f"bench_script_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tables_from_output(text: str) -> str:
    """For a script without ``markdown()``: its Markdown tables, target lines and the ``workload:`` /
    ``captures:`` lines that describe them, from what it printed."""
    keep: list[str] = []
    for line in text.splitlines():
        if line.startswith(("|", "workload:", "captures:")) or line.lower().startswith("target"):
            if keep and keep[-1] and keep[-1].startswith("|") != line.startswith("|"):
                keep.append("")  # a text line right after a table would become one of its rows
            keep.append(line)
        elif keep and keep[-1] != "":
            keep.append("")
    return "\n".join(keep).strip("\n")


def script_command(bench: Bench, results: dict, quick: bool, source: str) -> str:
    """The command that produced ``results``: the one its JSON recorded (``command``, the script's
    argv), else the driver's arguments; the script as ``bench/NAME.py``, its JSON as ``source``."""
    argv = str(results.get("command") or "").split()
    if not argv or not argv[0].endswith(bench.script):
        argv = [bench.script, *bench.argv(quick), "--json", source]
    args = argv[1:]
    if "--json" in args and args.index("--json") + 1 < len(args):
        args[args.index("--json") + 1] = source
    return " ".join(["sudo python3", f"bench/{bench.script}", *args])


def block(bench: Bench, results: dict, source: str, command: str, machine: dict,
          markdown: Callable[[dict], str] | None, output: str = "", quick: bool = False) -> str:
    """The text of one generated block: stamp, the command that produced it, the script's tables."""
    m = results.get("machine") or machine
    body = markdown(results) if markdown is not None else tables_from_output(output)
    warn = "\n\n**A `--quick` run: tiny sizes, one repeat. Not numbers to publish.**" if quick else ""
    return f"{bu.stamp(m, source)}{warn}\n\n```sh\n{command}\n```\n\n{body.strip()}\n"


def machine_block(machine: dict, command: str, runs: list[dict]) -> str:
    """The ``machine`` block: where and when the tables were made, and how long each script took."""
    rows = [["commit", f"`{machine['commit']}`" + (" plus uncommitted changes" if machine.get("dirty") else "")],
            ["date", machine["date"]], ["CPU", machine.get("cpu_model") or "?"], ["cores", machine.get("nproc")],
            ["kernel", machine.get("kernel")], ["RAM", f"{machine.get('mem_gib')} GiB"],
            ["Python", machine.get("python")], ["perf", machine.get("perf") or "not installed"],
            ["1-minute load at the start", f"{machine['loadavg_start'][0]:.2f}"],
            ["command", f"`{command}`"]]
    out = [bu.table(["", ""], rows), ""]
    if runs:
        total = sum(r.get("seconds") or 0 for r in runs)
        out += [bu.table(["block", "script", "seconds", "status"],
                         [[r["name"], r["script"], f"{r['seconds']:.0f}" if r.get("seconds") is not None else "",
                           r["status"]] for r in runs]), "",
                f"total {total / 60:.1f} min"]
    return "\n".join(out) + "\n"


# The README's cost table: one row per overhead block, from its results JSON (label, what it runs).
COST_ROWS: tuple[tuple[str, str], ...] = (
    ("overhead", "pipe ping-pong: `taskset -c 1 perf bench sched pipe` (per round trip)"),
    ("overhead-pgbench", "PostgreSQL: `pgbench -S -c 4 -j 2` over its Unix socket (per transaction)"),
    ("overhead-findgrep", "`find \\| xargs grep` over 100,000 files (opens and forks)"),
    ("overhead-findgrep-cold", "the same from disk (page cache dropped before each run)"),
    ("overhead-make", "`make -j2` of 120 C files"),
)


def _value(d: dict) -> float | None:
    v = d.get("value", d.get("usecs_per_op"))
    return float(v) if v is not None else None


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * (x - 1):+.0f} %"


def cost_table(results: dict[str, dict]) -> str:
    """The README's table of what tracing costs, from the overhead results (block name -> JSON):
    per workload the untraced median, ftraceipc's typical overhead (median against median) and its
    worst run (against the untraced run of the same repetition), the in-kernel floor alone (the same
    events recorded by the kernel, nobody reading) and perf record, with the machine and commit. Every
    workload's figure is a time per unit of work: lower is better, the overheads are slowdowns."""
    rows = []
    for name, label in COST_ROWS:
        res = results.get(name)
        if not res:
            continue
        sm = res.get("summary") or {}
        unt, ft = sm.get("untraced"), sm.get("ftraceipc")
        if not unt or not ft or not _value(unt):
            continue
        base = _value(unt)
        by_rep: dict[str, dict[int, float]] = {}
        for r in res.get("runs") or []:
            v = _value(r)
            if v is not None:
                by_rep.setdefault(r.get("variant"), {})[r.get("rep")] = v
        pairs = [by_rep["ftraceipc"][k] / u for k, u in (by_rep.get("untraced") or {}).items()
                 if u and k in (by_rep.get("ftraceipc") or {})]
        unit = res.get("unit") or "µs/op"

        def rel(v: str) -> float | None:
            x = _value(sm[v]) if v in sm else None
            return x / base if x is not None else None

        m = res.get("machine") or {}
        cpu = " ".join((m.get("cpu_model") or "?").replace("(R)", "").split()[:2])
        rows.append([label, f"{base:.3g} {unit}", f"{_value(ft):.3g} {unit}", _pct(rel("ftraceipc")),
                     _pct(max(pairs)) if pairs else "–", _pct(rel("floor")), _pct(rel("perf")),
                     str(len(by_rep.get("ftraceipc") or {})),
                     f"{cpu}, {m.get('nproc', '?')} vCPUs, `{(m.get('commit') or '?')[:8]}`"])
    if not rows:
        return "_No overhead results yet: run `sudo python3 bench/run_all.py --only overhead,overhead-pgbench," \
               "overhead-findgrep,overhead-make`._"
    head = ["workload", "untraced", "ftraceipc", "overhead (median)", "worst run", "kernel floor alone",
            "perf record", "runs", "machine, commit"]
    return (bu.table(head, rows) + "\n\nGenerated by `bench/run_all.py` from `bench/results/overhead*.json` "
            "(BENCHMARKS.md section 1 has the commands and every run). Overhead: ftraceipc's median against "
            "the untraced median; worst run: the slowest ftraceipc run against the untraced run of the same "
            "repetition; kernel floor alone: the same events recorded by the kernel into a buffer nobody "
            "reads, the part no reader can remove; perf record: the same events recorded by `perf record`.\n")


def rewrite_cost(results: Path) -> None:
    """README.md's cost block from the overhead JSON files in ``results``."""
    got = {}
    for name, _ in COST_ROWS:
        f = results / f"{name}.json"
        if f.is_file():
            got[name] = json.loads(f.read_text())
    try:
        write_atomically(README, rewrite(README.read_text(), {"cost": cost_table(got)}, README.name))
        print(f"rewrote cost in {README}")
    except bu.MarkerError as e:
        print(f"warning: {e}", file=sys.stderr)


def rewrite(text: str, blocks: dict[str, str], doc: str = "BENCHMARKS.md") -> str:
    """``text`` with each named block replaced (see ``bu.replace_block``); everything else kept."""
    for name, body in blocks.items():
        text = bu.replace_block(text, name, body, doc)
    return text


def check_markers(text: str, names: list[str], doc: str) -> None:
    """Fail before measuring anything if a block to be written has no (or a repeated) marker pair."""
    for name in names:
        bu.replace_block(text, name, "", doc)


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


# --- running ---------------------------------------------------------------------------------------------
def run_script(bench: Bench, quick: bool, json_path: Path, log_path: Path, env: dict) -> tuple[int, str, float]:
    """Run one script; its output goes to the terminal and to ``log_path``. Returns (status, output, s)."""
    argv = [sys.executable, str(bench.path), *bench.argv(quick), "--json", str(json_path)]
    t0 = time.monotonic()
    out: list[str] = []
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(argv) + "\n")
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
        bu._live[p.pid] = p  # stopped (SIGINT, then harder) if the driver is interrupted
        try:
            for line in p.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                log.write(line)
                out.append(line)
            p.wait()
        finally:
            if p.poll() is None:
                bu.stop_child(p)
            bu._live.pop(p.pid, None)
    return p.returncode, "".join(out), time.monotonic() - t0


def shown_path(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes, 1 repeat, at most 5 s waiting for other tracing instances and no "
                         "re-measuring (5-8 minutes)")
    ap.add_argument("--only", metavar="NAMES", help="comma-separated block names (default: all)")
    ap.add_argument("--results", metavar="DIR",
                    help="where the JSON and logs go (default: bench/results, --quick: a new temporary directory)")
    ap.add_argument("--doc", metavar="PATH",
                    help="the document to rewrite (default: BENCHMARKS.md; --quick: none, the blocks are printed)")
    ap.add_argument("--render-only", action="store_true",
                    help="run nothing: rewrite the document from the JSON already in --results")
    ap.add_argument("--list", action="store_true", help="print the scripts and their arguments, and exit")
    a = ap.parse_args()

    names = [b.name for b in BENCHES]
    chosen = [n.strip() for n in a.only.split(",")] if a.only else names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        print(f"error: unknown block(s) {', '.join(unknown)}; choose from {', '.join(names)}", file=sys.stderr)
        return 2
    benches = [b for b in BENCHES if b.name in chosen]
    if a.list:
        for b in benches:
            mark = "" if b.path.is_file() else "   (script not in this checkout: skipped)"
            print(f"{b.name:11s} ~{b.expected_s:4d} s  bench/{b.script} {' '.join(b.full)}{mark}\n"
                  f"{'':19s}--quick: {' '.join(b.quick) or '(no arguments)'}")
        print(f"full run: about {expected_minutes():.0f} minutes")
        return 0
    if not a.render_only and os.geteuid() != 0:
        print(f"error: the benchmarks trace the kernel and need root: run `{COMMAND}"
              f"{' --quick' if a.quick else ''}`", file=sys.stderr)
        return 2

    results = Path(a.results).resolve() if a.results else (
        Path(tempfile.mkdtemp(prefix="ftraceipc-bench-quick-")) if a.quick and not a.render_only else RESULTS)
    doc = Path(a.doc) if a.doc else (None if a.quick else DOC)
    text = None
    if doc is not None:
        if not doc.is_file():
            print(f"error: {doc} does not exist: give --doc an existing Markdown file", file=sys.stderr)
            return 2
        text = doc.read_text()
        try:  # before measuring for 20 minutes: every block to be written has its markers
            check_markers(text, ["machine"] + [b.name for b in benches if b.path.is_file()], doc.name)
        except bu.MarkerError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    results.mkdir(parents=True, exist_ok=True)

    machine = bu.machine_info()
    if machine.get("dirty"):
        print("warning: the checkout has uncommitted changes: the tables will say so; commit first to publish them",
              file=sys.stderr)
    command = COMMAND + (" --quick" if a.quick else "") + (f" --only {a.only}" if a.only else "")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    if a.quick:  # numbers not to publish: do not wait for, or re-measure around, other people's captures
        env[bu.MAX_WAIT_ENV] = "5"
        env[bu.RETRIES_ENV] = "0"
    if not a.render_only:
        busy = bu.foreign_instances()
        print(f"{bu.describe_machine(machine)}\nresults: {results}"
              + (f"\nwarning: other tracing instances exist ({', '.join(busy)}): the scripts wait for them"
                 if busy else "")
              + (f"\nwarning: 1-minute load {machine['loadavg_start'][0]:.2f}: the machine is not quiet"
                 if machine["loadavg_start"][0] > 1 else ""), flush=True)

    was_quick = a.quick
    if a.render_only and (results / "run_all.json").is_file():  # how the stored results were made
        was_quick = bool(json.loads((results / "run_all.json").read_text()).get("quick"))
    runs: list[dict[str, Any]] = []
    blocks: dict[str, str] = {}
    failed = False
    with bu.cleanup_on_exit():
        for b in benches:
            json_path = results / f"{b.name}.json"
            rec: dict[str, Any] = {"name": b.name, "script": f"bench/{b.script}", "args": b.argv(a.quick),
                                   "seconds": None}
            runs.append(rec)
            if not b.path.is_file():
                rec["status"] = "skipped: script not in this checkout"
                print(f"\n== {b.name}: skipped, bench/{b.script} is not in this checkout "
                      f"(its block in BENCHMARKS.md is left as it is)", flush=True)
                continue
            output = ""
            if a.render_only:
                if not json_path.is_file():
                    rec["status"] = f"skipped: no {json_path.name}"
                    print(f"== {b.name}: no {json_path}: block left as it is", file=sys.stderr)
                    continue
                log_path = results / f"{b.name}.log"
                output = log_path.read_text() if log_path.is_file() else ""
            else:
                print(f"\n== {b.name}: bench/{b.script} {' '.join(b.argv(a.quick))}  ({b.what})", flush=True)
                json_path.unlink(missing_ok=True)
                code, output, secs = run_script(b, a.quick, json_path, results / f"{b.name}.log", env)
                rec["seconds"] = round(secs, 1)
                if code != 0 or not json_path.is_file():
                    rec["status"] = f"FAILED (exit {code}; see {results / (b.name + '.log')})"
                    print(f"== {b.name}: FAILED with exit status {code}: its block is left as it is", flush=True)
                    failed = True
                    continue
            res = json.loads(json_path.read_text())
            measured = (res.get("machine") or {}).get("commit")
            if not a.render_only and measured and measured != machine["commit"]:
                print(f"warning: {b.name} measured commit {measured}, the run started at {machine['commit']}: "
                      "do not commit or check out while the driver runs", file=sys.stderr)
                rec["commit"] = measured
            mod = load_module(b.path)
            source = shown_path(json_path)
            blocks[b.name] = block(b, res, source, script_command(b, res, was_quick, source), machine,
                                   getattr(mod, "markdown", None), output, was_quick)
            rec["status"] = "ok" if not a.render_only else "re-rendered"
            if doc is not None and text is not None:
                text = rewrite(text, {b.name: blocks[b.name]}, doc.name)
                write_atomically(doc, text)  # after each script: a later failure keeps what was measured
    if not a.render_only:
        blocks["machine"] = machine_block(machine, command, runs)
        (results / "run_all.json").write_text(json.dumps({"command": command, "quick": a.quick, "machine": machine,
                                                          "runs": runs}, indent=1) + "\n")
    if doc is not None and text is not None:
        if "machine" in blocks:
            text = rewrite(text, {"machine": blocks["machine"]}, doc.name)
        write_atomically(doc, text)
        print(f"\nrewrote {', '.join(blocks)} in {doc}")
        if doc.resolve() == DOC and any(n in blocks for n, _ in COST_ROWS):
            rewrite_cost(results)
    else:
        for name, body in blocks.items():
            print(f"\n{bu.markers(name)[0]}\n{body}{bu.markers(name)[1]}")
    print("\n" + "\n".join(f"{r['name']:11s} {r['status']}"
                           + (f" ({r['seconds']:.0f} s)" if r.get("seconds") is not None else "") for r in runs))
    print(f"results: {results}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
