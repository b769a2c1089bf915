"""The command line. Commands stay thin; ``main`` turns every FtraceIPCError into one line and an exit code."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ftraceipc import __version__
from ftraceipc.config import redact_uri
from ftraceipc.errors import CommandError, FtraceIPCError

app = typer.Typer(
    name="ftraceipc",
    help="Trace how tasks talk through pipes, FIFOs and Unix sockets, and find the inefficient interactions.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  sudo ftraceipc capture -o run.ftipc -- ./their-workload
  sudo ftraceipc live -- ./their-workload          findings while it runs
  ftraceipc info run.ftipc
  ftraceipc events run.ftipc --limit 20 --format jsonl
  ftraceipc model run.ftipc
  ftraceipc analyze run.ftipc
  ftraceipc report run.ftipc --html report.html
  ftraceipc export run.ftipc --pyvis graph.html --perfetto trace.json
  ftraceipc query run.ftipc "MATCH (t:Task) RETURN count(t) AS n"
  ftraceipc load run.ftipc --neo4j bolt://localhost:7687
""",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ftraceipc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
          assume_page_layout: bool = typer.Option(
              False, "--assume-page-layout",
              help="Decode a capture that lacks tracefs/header_page or header_event with the x86_64 page layout "
                   "(else that is an error; same as FTRACEIPC_ASSUME_PAGE_LAYOUT=1).")) -> None:
    """ftraceipc: a profiler of inter-process communication built on ftrace."""
    if assume_page_layout:
        import os

        from ftraceipc.decode.decoder import ASSUME_LAYOUT_ENV

        os.environ[ASSUME_LAYOUT_ENV] = "1"


def _warn(problems) -> None:
    """One line on stderr per thing the capture is missing (ftraceipc.problems)."""
    from ftraceipc.problems import warning_lines

    for ln in warning_lines(problems):
        print(ln, file=sys.stderr)


def _model_problems(model):
    """The problems of a built model, naming the detectors its gaps keep from running."""
    from ftraceipc.detect.pipeline import problems

    return problems(model)


def _default_output() -> Path:
    import time

    return Path(time.strftime("ftraceipc-%Y%m%d-%H%M%S.ftipc"))


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog="""\b
Examples:
  sudo ftraceipc capture -- ./my-pipeline.sh         trace a command, system-wide
  sudo ftraceipc capture -o run.ftipc --duration 10  trace everything for 10 s
  sudo ftraceipc capture --pid 812 --tree-only       trace one running server only
  sudo ftraceipc capture -D wakeup_latency -- ./server   trace only what one detector needs
  sudo ftraceipc capture -D 'wait_*' --list-events      the events those detectors need
  sudo ftraceipc capture -e sched_switch,sys_enter_write -- make -j2
""",
)
def capture(
    ctx: typer.Context,
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Capture directory to write (default ftraceipc-DATE.ftipc)."),
    duration: Optional[float] = typer.Option(None, "--duration", "-d", help="Stop after S seconds."),
    buffer_kb: int = typer.Option(16384, "--buffer-kb", help="Per-CPU ring buffer size in KiB; raise it if events are lost."),
    events: Optional[str] = typer.Option(None, "--events", "-e", help="Comma-separated events (system:event); 'default' adds the default set."),
    detector: List[str] = typer.Option([], "--detector", "-D", help="Trace only the events these detectors need (repeatable; an id or a pattern such as 'wait_*'); 'analyze' then runs them. Default: every detector's, the default set."),
    pid: List[int] = typer.Option([], "--pid", "-p", help="A running process of interest (repeatable); without a command the run ends when every one has exited."),
    tree_only: bool = typer.Option(False, "--tree-only", help="Trace only the command's (or --pid's) process tree: lower overhead, but hides peers outside it."),
    clock: str = typer.Option("local", "--clock", help="Trace clock (local, global, mono, x86-tsc, ...)."),
    open_watcher: bool = typer.Option(True, "--open-watcher/--no-open-watcher", help="Look up each new fd in /proc as it is opened, so FIFOs open for less than a /proc poll (10 ms) are named. Off: lower overhead on workloads that open files by the ten thousand (find, grep, compilers); such FIFOs may then stay unnamed."),
    force: bool = typer.Option(False, "--force", help="Replace an existing capture at -o."),
    list_events: bool = typer.Option(False, "--list-events", help="Print the default event set and exit."),
    html: Optional[Path] = typer.Option(None, "--html", help="At the end, write the HTML report (as 'ftraceipc report --html')."),
    pyvis: Optional[Path] = typer.Option(None, "--pyvis", help="At the end, write the interactive graph (as 'ftraceipc export --pyvis')."),
    no_model: bool = typer.Option(False, "--no-model", help="Skip the IPC model summary, the graph (CAPTURE/graph.lbug) and the top findings at the end (later: 'ftraceipc model', 'ftraceipc analyze')."),
) -> None:
    """Record a capture: raw per-CPU ring-buffer pages, formats and /proc snapshots; then summarize the
    IPC model, build the embedded graph and name the top findings."""
    from ftraceipc.capture import events as ev

    detectors, subset = _detector_events(detector)
    if list_events:
        typer.echo("\n".join(ev.DEFAULT_EVENTS if subset is None else subset))
        return
    if no_model and (html or pyvis):
        raise CommandError("--html and --pyvis need the model", hint="leave out --no-model")
    for opt, p in (("--html", html), ("--pyvis", pyvis)):
        if p is not None:
            _check_out_file(p, opt, force)
    command = list(ctx.args) or None
    if command and command[0].startswith("-"):
        raise CommandError(f"unknown option {command[0]}", hint="see 'ftraceipc capture --help'; put the command after '--'")
    from ftraceipc.capture.capture import Capture, CaptureOptions

    opts = CaptureOptions(output=output or _default_output(), command=command, duration=duration, buffer_kb=buffer_kb,
                          events=ev.parse_event_list(events) if events else None, subset=subset,
                          detectors=detectors, pids=list(pid),
                          tree_only=tree_only, clock=clock, force=force, open_watcher=open_watcher)
    result = Capture(opts).run()
    from ftraceipc.capture.summary import print_summary

    print_summary(result)
    if not no_model:
        model = _model_summary(result.path, episodes=html is not None)
        if model is not None and (html or pyvis):
            try:
                for ln in _pictures(result.path, pyvis=pyvis, perfetto=None, html=html, all_tasks=False,
                                    ungroup=False, model=model):
                    sys.stderr.write(ln + "\n")
            except FtraceIPCError as e:
                sys.stderr.write(f"no pictures: {e.line()}\n")
    code = result.meta.exit_code
    if result.stopped_by == "command" and code:
        raise typer.Exit(code if code > 0 else 128 - code)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog="""\b
Examples:
  sudo ftraceipc live -- ./my-pipeline.sh                 findings while it runs, JSON lines
  sudo ftraceipc live --duration 30 --interval 2 > live.jsonl   everything, 30 s
  sudo ftraceipc live --pid 812 -D wakeup_latency          one server, one detector
  sudo ftraceipc live -o run.ftipc -- make -j2 | jq -c 'select(.type == "finding")'
  sudo ftraceipc live --budget 5 --pid 812                 keep tracing under 5 % of the CPUs
  NEO4J_PASSWORD=... sudo -E ftraceipc live --neo4j bolt://localhost:7687 -- ./server   and in Neo4j Browser
""",
)
def live(
    ctx: typer.Context,
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Capture directory to write (default ftraceipc-DATE.ftipc): the run is recorded as 'capture' records it."),
    duration: Optional[float] = typer.Option(None, "--duration", "-d", help="Stop after S seconds."),
    interval: float = typer.Option(1.0, "--interval", "-i", help="Seconds between analyses and status lines."),
    window: float = typer.Option(10.0, "--window", "-w", help="Seconds of critical path each analysis during the run ranks by (the last S seconds; the end's ranks by the whole run): the analysis's memory and time stay bounded however long it runs."),
    buffer_kb: int = typer.Option(16384, "--buffer-kb", help="Per-CPU ring buffer size in KiB; raise it if events are lost."),
    detector: List[str] = typer.Option([], "--detector", "-D", help="Trace and run only these detectors (repeatable; an id or a pattern such as 'wait_*')."),
    pid: List[int] = typer.Option([], "--pid", "-p", help="A running process of interest (repeatable); without a command the run ends when every one has exited."),
    tree_only: bool = typer.Option(False, "--tree-only", help="Trace only the command's (or --pid's) process tree."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="tui (a full-screen view; the default on a terminal) or jsonl (JSON lines on stdout; the default otherwise)."),
    all_tasks: bool = typer.Option(False, "--all-tasks", help="Findings about every task, not only the traced command's."),
    min_share: float = typer.Option(2.0, "--min-share", help="Leave out findings under this percentage of the traced command's critical path (0: keep all)."),
    open_watcher: bool = typer.Option(True, "--open-watcher/--no-open-watcher", help="As for capture."),
    force: bool = typer.Option(False, "--force", help="Replace an existing capture at -o."),
    budget: Optional[float] = typer.Option(None, "--budget", help="Keep what tracing costs under this percentage of the CPUs' time (readers, watchers, analysis, and the traced tasks' time recording events): over it, poll and data events are turned off, those no finding needs first, and on again when they fit. Each change is in the status line, the JSON and the capture; the scheduler events and the fd lifecycle are always traced."),
    neo4j: Optional[str] = typer.Option(None, "--neo4j", help="Also write the model to this Neo4j 5 server (bolt://HOST:7687) after each analysis, as 'ftraceipc load' does, so Neo4j Browser sees the run as it happens."),
    user: Optional[str] = typer.Option(None, "--user", help="Neo4j user (default $NEO4J_USER, else neo4j)."),
    password_env: Optional[str] = typer.Option(None, "--password-env", help="Environment variable holding the Neo4j password (default NEO4J_PASSWORD)."),
) -> None:
    """Record a capture and analyse it while it runs: each interval, events/s, lost events and the
    analysis lag, the top channels, who is blocked on what, the bottleneck so far and the findings;
    at the end the final findings (those of 'ftraceipc analyze' of the capture). On a terminal a
    full-screen view (--format tui), else JSON lines on stdout (--format jsonl)."""
    import os

    fmt = format or ("tui" if sys.stdout.isatty() else "jsonl")
    _choice("--format", fmt, ("tui", "jsonl"))
    if fmt == "tui" and not sys.stdout.isatty():
        raise CommandError("--format tui needs a terminal on stdout", hint="use --format jsonl to write to a file or pipe")
    if not 0.1 <= interval <= 60:
        raise CommandError(f"--interval must be between 0.1 and 60 seconds (got {interval:g})")
    if not interval <= window <= 3600:
        raise CommandError(f"--window must be between the interval ({interval:g} s) and 3600 seconds (got {window:g})")
    if not 0 <= min_share <= 100:
        raise CommandError(f"--min-share must be between 0 and 100 (got {min_share:g})")
    if budget is not None and not 0 < budget <= 100:
        raise CommandError(f"--budget must be a percentage above 0 and at most 100 (got {budget:g})",
                           hint="e.g. --budget 5: tracing may take 5 % of the CPUs' time")
    detectors, subset = _detector_events(detector)
    command = list(ctx.args) or None
    if command and command[0].startswith("-"):
        raise CommandError(f"unknown option {command[0]}", hint="see 'ftraceipc live --help'; put the command after '--'")
    from ftraceipc.capture.capture import Capture, CaptureOptions, _stderr
    from ftraceipc.live.engine import LiveFollower, LiveOptions

    opts = CaptureOptions(output=output or _default_output(), command=command, duration=duration, buffer_kb=buffer_kb,
                          subset=subset, detectors=detectors, pids=list(pid), tree_only=tree_only, force=force,
                          open_watcher=open_watcher, status=False, flush_ms=max(50, int(interval * 500)))
    lopts = LiveOptions(interval=interval, window=window, detectors=detectors or None, all_tasks=all_tasks,
                        min_share=min_share, budget=budget)
    if neo4j is not None:  # reachable, and the password right, before anything is traced
        if not _is_uri(neo4j):
            raise CommandError(f"--neo4j {redact_uri(neo4j)!r} is not a URI", hint="use bolt://HOST:7687 or neo4j://HOST:7687")
        from ftraceipc.graph.neo4j import Neo4jGraph

        password = _neo4j_password(password_env)
        with Neo4jGraph.connect(neo4j, user, password) as g:
            lopts.neo4j_uri, lopts.neo4j_user, lopts.neo4j_password = neo4j, user, password
    sys.stdout.flush()
    view = None
    report = _stderr
    if fmt == "tui":
        from ftraceipc.live.tui import LiveView

        r_fd, w_fd = os.pipe2(os.O_CLOEXEC)
        view = LiveView(r_fd, capture=str(opts.output))
        follower = LiveFollower(lopts, out_fd=w_fd, on_started=view.run_in_thread)
        report = view.report
    else:
        follower = LiveFollower(lopts, out_fd=sys.stdout.fileno())
    result = None
    try:
        result = Capture(opts, report=report, follower=follower).run()
        report(f"Capture {result.path} recorded; analysing its end…")
    finally:
        err = follower.finish(timeout=None if result is not None else 30)
        if view is not None:
            from ftraceipc.live.tui import print_end, wait_closed

            os.close(w_fd)  # the follower's end is gone too: the view reads to EOF and closes the screen
            started = view.started
            wait_closed(view, 30)
            os.close(r_fd)
            if started:
                print_end(view.end, view.messages, sys.stdout)
    if err is not None:
        raise FtraceIPCError(f"the live analysis failed: {err}",
                             hint=f"the capture is complete: ftraceipc analyze {opts.output}")
    code = result.meta.exit_code
    if result.stopped_by == "command" and code:
        raise typer.Exit(code if code > 0 else 128 - code)


def _detector_events(patterns: List[str]) -> tuple[list[str], list[str] | None]:
    """``capture -D``: the detectors chosen and the events they need (None, None: every detector's,
    the default set)."""
    if not patterns:
        return [], None
    from ftraceipc.detect.run import detector_events, select

    ids = select(p for arg in patterns for p in arg.split(",") if p.strip())
    if not ids:
        raise CommandError("-D names no detector", hint="e.g. -D wait_chain, -D 'wait_*'; leave -D out for all")
    return ids, detector_events(ids)


def _model_summary(path: Path, episodes: bool = False):
    """The end-of-capture summary of the IPC model, then the graph built beside the capture
    (CAPTURE/graph.lbug) and the top findings; a failure here never fails the capture."""
    from ftraceipc.model.build import build_model
    from ftraceipc.model.summary import summary_lines

    try:
        model = build_model(path, episodes=episodes)
        lines = summary_lines(model)
    except FtraceIPCError as e:
        sys.stderr.write(f"no IPC model summary: {e.line()}\n")
        return None
    sys.stderr.write("".join(f"{ln}\n" for ln in lines))
    try:
        lines = _top_findings(path, model)
    except FtraceIPCError as e:
        lines = [f"no findings: {e.line()}"]
    sys.stderr.write("".join(f"{ln}\n" for ln in lines))
    return model


TOP_FINDINGS = 3


def _top_findings(path: Path, model) -> list[str]:
    """Load the model into CAPTURE/graph.lbug and name the top findings about the command."""
    from ftraceipc.detect.pipeline import MIN_SHARE_PERCENT, Backend, analyze
    from ftraceipc.graph import default_path
    from ftraceipc.report.findings import time_words

    a = analyze(model, backend=Backend(path=default_path(path)))
    found = a.findings
    small = ""
    if a.minor:  # left out of the ranking: say what they are and how to see them
        kinds = ", ".join(dict.fromkeys(f.pattern for f in a.minor))
        small = (f"{len(a.minor)} under {MIN_SHARE_PERCENT:g} % of the critical path ({kinds}): "
                 f"ftraceipc analyze --min-share 0 {path}")
    if not found and small:
        return [f"No finding over {MIN_SHARE_PERCENT:g} % of the critical path; {small}"]
    if not found:
        if a.not_run:
            return [f"No finding from the detectors that ran; not run: {', '.join(s.detector for s in a.not_run)} "
                    f"(the capture lacks {', '.join(dict.fromkeys(e for s in a.not_run for e in s.events))})."]
        return [f"No inefficient interaction found by the detectors (graph in {default_path(path)})."]
    out = [f"Findings: {len(found)} (full report: ftraceipc analyze {path})"]
    for f in found[:TOP_FINDINGS]:
        out.append(f"  #{f.rank} {f.pattern}: {f.title} ({time_words(f, a.wall_ns, short=True)})")
    if small:
        out.append(f"  and {small}")
    return out


@app.command(epilog="""\b
Examples:
  ftraceipc info run.ftipc
  ftraceipc info run.ftipc --format json | jq .events_by_type
""")
def info(
    capture: Path = typer.Argument(..., help="A capture directory."),
    format: str = typer.Option("text", "--format", "-f", help="text or json."),
) -> None:
    """Events per type and per CPU, lost events, duration."""
    from ftraceipc.decode import render_info

    _choice("--format", format, ("text", "json"))
    render_info(capture, sys.stdout, format=format)


@app.command(epilog="""\b
Examples:
  ftraceipc events run.ftipc --limit 20
  ftraceipc events run.ftipc --event sched_switch --format csv > switches.csv
  ftraceipc events run.ftipc --format jsonl | jq 'select(.event == "sys_exit_write")'
  ftraceipc events run.ftipc --format parquet -o run.parquet
      a directory, one file per event type (run.parquet/sched_switch.parquet, ...);
      columns: seq (position in time order), ts, cpu, tid, event, then the event's
      own fields, typed as in the kernel's format file (ints keep width and sign)
  duckdb -c "SELECT * FROM read_parquet('run.parquet/*.parquet', union_by_name=true) ORDER BY seq"
  python -c "import pandas as pd; print(pd.read_parquet('run.parquet/sched_switch.parquet'))"
""")
def events(
    capture: Path = typer.Argument(..., help="A capture directory."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Print at most N events."),
    event: List[str] = typer.Option([], "--event", "-e", help="Only this event (repeatable), e.g. sched_switch."),
    format: str = typer.Option("text", "--format", "-f", help="text, jsonl, csv or parquet (parquet needs -o DIR)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout; for parquet, the directory to create (one PATH/<event>.parquet per event type)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing -o (for parquet: only a directory of .parquet files)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Processes writing --format parquet (default: the CPUs this process may use, at most one per CPU file; 1: one streaming process). The files are the same."),
) -> None:
    """Decode a capture's events in time order across CPUs."""
    from ftraceipc.decode import Decoder, render_events
    from ftraceipc.decode.render import render_parquet

    _choice("--format", format, ("text", "jsonl", "csv", "parquet"))
    if limit is not None and limit < 0:
        raise CommandError(f"--limit must be >= 0 (got {limit})")
    if format == "parquet" and output is None:
        raise CommandError("--format parquet writes files, not stdout", hint="add -o DIR (created, one .parquet file per event type)")
    if output is not None and format != "parquet":
        _check_out_file(output, "-o", force)
    if jobs is not None and format != "parquet":
        raise CommandError("--jobs applies to --format parquet only", hint="drop --jobs or add --format parquet -o DIR")
    dec = Decoder(capture)
    if format == "parquet":
        n = render_parquet(dec, output, limit=limit, events=event or None, force=force, jobs=jobs)
        typer.echo(f"wrote {n:,} events to {output}/", err=True)
    elif output is not None:
        def w(p):
            with open(p, "w", encoding="utf-8") as out:
                render_events(dec, out, format=format, limit=limit, events=event or None)

        try:
            _write_atomically(output, w)
        except OSError as e:
            raise CommandError(f"cannot write {output}: {e.strerror or e}") from None
    else:
        render_events(dec, sys.stdout, format=format, limit=limit, events=event or None)
        sys.stdout.flush()
    # The events went to stdout; what was skipped (a truncated file, a corrupt page) must not go unnoticed.
    for w in dec.warnings:
        print(f"ftraceipc: warning: {w}", file=sys.stderr)
    if dec.warnings_dropped:
        print(f"ftraceipc: warning: {dec.warnings_dropped} more warning(s) not shown", file=sys.stderr)


@app.command(epilog="""\b
Examples:
  ftraceipc model run.ftipc                              the report
  ftraceipc model run.ftipc -f json | jq '.edges[] | select(.type == "FLOWS")'
  ftraceipc model run.ftipc -f json --episodes -o run.json  one edge per sleep and wakeup too
  ftraceipc model run.ftipc -f parquet -o run.tables        tables for pandas, duckdb, ...
""")
def model(
    capture: Path = typer.Argument(..., help="A capture directory."),
    format: str = typer.Option("text", "--format", "-f", help="text, json, csv or parquet (csv and parquet write a directory: need --output)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of stdout (a directory for csv and parquet)."),
    episodes: bool = typer.Option(False, "--episodes", help="Also one row per blocking episode and per wakeup (json edges; episodes/wakeups tables)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --output."),
) -> None:
    """The IPC model: tasks, pipes/FIFOs/sockets, and who writes, reads, blocks on and wakes whom."""
    from ftraceipc.model.export import check_output, export

    check_output(output, format, force)
    m = _build(capture, episodes=episodes)
    problems = _model_problems(m)
    _warn(problems)
    export(m, format, output=output, force=force, episodes=episodes, warnings=[p.to_json() for p in problems])
    if output is not None:
        print(f"wrote {output}", file=sys.stderr)


def _is_uri(target: str) -> bool:
    return "://" in target


def _neo4j_password(var: Optional[str]) -> Optional[str]:
    """The password from the environment variable ``var`` when one is named (it must be set); else
    None: Neo4jGraph then takes NEO4J_PASSWORD or the config file (ftraceipc.config). Never echoed."""
    import os

    if var is None:
        return None
    value = os.environ.get(var)
    if value is None:
        raise CommandError(f"--password-env {var}: that environment variable is not set")
    return value


def _connect_neo4j(uri: str, user: Optional[str], password_env: Optional[str]):
    from ftraceipc.graph.neo4j import Neo4jGraph

    return Neo4jGraph.connect(uri, user, _neo4j_password(password_env))


def _build(capture: Path, **kw):
    """The capture's model (``kw``: build_model's episodes options), with a progress bar on a terminal."""
    _open_capture(capture)  # one clear error before any work if it is not a capture
    from ftraceipc.model.build import build_model

    with _build_progress() as progress:
        return build_model(capture, **kw, **_progress_kw(build_model, progress))


def _embedded_graph(capture: Path, *, fresh: bool = False):
    """CAPTURE/graph.lbug, (re)built from the capture when missing, stale or ``fresh``
    (``ftraceipc.detect.pipeline.open_embedded``); returns (graph, the model when it was built)."""
    from ftraceipc.detect.pipeline import open_embedded

    _open_capture(capture)  # one clear error before a database is made anywhere
    return open_embedded(capture, fresh=fresh, build=_build, log=_log)


def _log(line: str) -> None:
    print(f"ftraceipc: {line}", file=sys.stderr)


@app.command(epilog="""\b
Examples:
  ftraceipc load run.ftipc                                   into run.ftipc/graph.lbug (embedded)
  NEO4J_PASSWORD=... ftraceipc load run.ftipc --neo4j bolt://localhost:7687
  ftraceipc load run.ftipc --neo4j neo4j://db:7687 --user ipc --password-env IPC_DB_PW
""")
def load(
    capture: Path = typer.Argument(..., help="A capture directory."),
    neo4j: Optional[str] = typer.Option(None, "--neo4j", help="Neo4j URI (bolt://HOST:7687); default: the embedded CAPTURE/graph.lbug."),
    user: Optional[str] = typer.Option(None, "--user", help="Neo4j user (default $NEO4J_USER, else neo4j)."),
    password_env: Optional[str] = typer.Option(None, "--password-env", help="Environment variable holding the Neo4j password (default NEO4J_PASSWORD)."),
    batch: int = typer.Option(10000, "--batch", help="Rows per Neo4j transaction."),
) -> None:
    """Load a capture's IPC model into a graph database (Neo4j, or the embedded LadybugDB file)."""
    import time

    if batch < 1:
        raise CommandError(f"--batch must be >= 1 (got {batch})")
    if neo4j is not None:
        if not _is_uri(neo4j):
            raise CommandError(f"--neo4j {redact_uri(neo4j)!r} is not a URI", hint="use bolt://HOST:7687 or neo4j://HOST:7687")
        g = _connect_neo4j(neo4j, user, password_env)  # fails fast, before the model is built
        with g:
            model = _build(capture)
            t = time.perf_counter()
            counts = g.load(model, batch=batch)
            secs = time.perf_counter() - t
        where = f"Neo4j at {g.uri}"  # without any user:password@ of the URI given
    else:
        t = time.perf_counter()
        g, model = _embedded_graph(capture, fresh=True)
        with g:
            counts = g.counts()
        secs = time.perf_counter() - t
        where = str(g.path)
    total = sum(counts.values())
    typer.echo(f"loaded capture {model.capture_id} into {where}: "
               + ", ".join(f"{k} {v:,}" for k, v in counts.items()) + f" ({total:,} rows in {secs:.1f} s)")


PARAM_TYPES = ("str", "int", "float", "bool", "json")
PARAM_HELP = ("NAME=VALUE (repeatable). VALUE is a string, never guessed from its shape: ask for a type with "
              "NAME:int=5, NAME:float=0.5, NAME:bool=true or NAME:json=[1,2]. A query file's parameter takes "
              "the type of its header's default (-p limit=5 is an integer when the header says $limit = 20), "
              "also in Cypher text pasted from one.")


def _param_value(name: str, text: str, typ: str):
    """``text`` as the type ``typ`` asked for (one of PARAM_TYPES); a clear error when it is not one."""
    import json

    try:
        if typ == "str":
            return text
        if typ == "int":
            return int(text)
        if typ == "float":
            return float(text)
        if typ == "bool":
            low = text.strip().lower()
            if low not in ("true", "false"):
                raise ValueError(text)
            return low == "true"
        return json.loads(text)
    except ValueError:
        what = "JSON" if typ == "json" else ("an " if typ == "int" else "a ") + typ
        raise CommandError(f"--param {name}: {text!r} is not {what}",
                           hint=f"give a {typ} value, or NAME=VALUE for a string") from None


def _params(items: List[str], defaults: Optional[dict] = None) -> dict:
    """``-p`` values: strings unless a type is asked for (``NAME:int=5``) or, for a query file, its
    header declares the parameter's default (``defaults``): then the default's type."""
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        name, colon, typ = k.partition(":")
        name = name.strip().lstrip("$")
        if not sep or not name:
            raise CommandError(f"--param {it!r} is not NAME=VALUE", hint="e.g. -p comm=nginx or -p limit:int=5")
        typ = typ.strip()
        if colon and typ not in PARAM_TYPES:
            raise CommandError(f"--param {it!r}: unknown type {typ!r}", hint=f"choose from {', '.join(PARAM_TYPES)}")
        if not colon:
            declared = (defaults or {}).get(name)
            typ = ("bool" if isinstance(declared, bool) else "int" if isinstance(declared, int)
                   else "float" if isinstance(declared, float) else "str")
        out[name] = _param_value(name, v, typ)
    return out


def _cell(v):
    """A result cell as JSON/CSV takes it (numpy scalars to Python, NaN to None)."""
    import math

    import numpy as np

    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, float) and math.isnan(v):
        return None
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, (list, tuple)):
        return [_cell(x) for x in v]
    if isinstance(v, dict):
        return {k: _cell(x) for k, x in v.items()}
    try:
        return {k: _cell(x) for k, x in dict(v).items()}  # a node or relationship
    except (TypeError, ValueError):
        return str(v)


def _query_file(text: str):
    """A query file named instead of Cypher text: ``top_talkers`` (a file of cypher/) or a path to a
    ``.cypher`` file; None for Cypher text."""
    import re

    from ftraceipc.graph import CYPHER_DIR

    t = text.strip()
    if re.fullmatch(r"\w+", t) and (CYPHER_DIR / f"{t}.cypher").is_file():
        return t
    if t.endswith(".cypher") and "\n" not in t:
        if not Path(t).is_file():
            raise CommandError(f"no query file {t}", hint="give Cypher text, a .cypher path or a name from cypher/")
        return Path(t)
    return None


@app.command(epilog="""\b
Examples:
  ftraceipc query run.ftipc "MATCH (t:Task) RETURN count(t) AS n"
  ftraceipc query run.ftipc top_talkers -p limit=5          a query of cypher/, its header's defaults
  ftraceipc query run.ftipc wait_chain -f json
  ftraceipc query run.ftipc "MATCH (t:Task) WHERE t.comm = \\$c RETURN t.tid AS tid" --param c=nginx -f json
  ftraceipc query run.ftipc "MATCH (t:Task) WHERE t.tid = \\$t RETURN t.comm AS comm" -p t:int=812
  NEO4J_PASSWORD=... ftraceipc query bolt://localhost:7687 "MATCH (t:Task) RETURN t.capture_id AS c, count(*) AS n" -f csv
""")
def query(
    target: str = typer.Argument(..., help="A capture directory (embedded graph, built on first use) or a Neo4j URI."),
    cypher: str = typer.Argument(..., help="One Cypher statement ($names are --param values), or a query file: a name from cypher/ (top_talkers, wait_chain, ...) or a path to a .cypher file, run with its header's defaults."),
    param: List[str] = typer.Option([], "--param", "-p", help=PARAM_HELP),
    format: str = typer.Option("table", "--format", "-f", help="table, json or csv."),
    user: Optional[str] = typer.Option(None, "--user", help="Neo4j user (default $NEO4J_USER, else neo4j)."),
    password_env: Optional[str] = typer.Option(None, "--password-env", help="Environment variable holding the Neo4j password (default NEO4J_PASSWORD)."),
) -> None:
    """Run a Cypher query on a capture's graph and print the rows."""
    import csv
    import json

    from ftraceipc.graph import GraphError, header_defaults, read_query

    _choice("--format", format, ("table", "json", "csv"))
    if not cypher.strip():
        raise CommandError("the Cypher query is empty")
    qfile = _query_file(cypher)
    # a query file's header (also in Cypher text pasted from one) declares its parameters' types
    params = _params(param, read_query(qfile).defaults if qfile is not None else header_defaults(cypher))
    if _is_uri(target):
        g = _connect_neo4j(target, user, password_env)
    else:
        g, _ = _embedded_graph(Path(target))
    try:
        with g:
            df = g.run_file(qfile, **params) if qfile is not None else g.query(cypher, params)
    except GraphError as e:
        lines = [ln.strip() for ln in str(e.message).splitlines() if ln.strip()]
        raise GraphError(lines[0] if lines else "query failed", query=cypher) from None
    rows = [{str(k): _cell(v) for k, v in zip(df.columns, r)} for r in df.itertuples(index=False, name=None)]
    if format == "json":
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif format == "csv":
        w = csv.writer(sys.stdout)
        w.writerow([str(c) for c in df.columns])
        for r in rows:
            w.writerow([json.dumps(v) if isinstance(v, (list, dict)) else ("" if v is None else v) for v in r.values()])
    else:
        if df.empty:
            typer.echo(" ".join(str(c) for c in df.columns) + "\n(no rows)")
        else:
            import pandas as pd

            with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200,
                                   "display.max_colwidth", 80):
                typer.echo(df.to_string(index=False))


@app.command(epilog="""\b
Examples:
  ftraceipc analyze run.ftipc                               ranked findings (embedded graph, built on first use)
  ftraceipc analyze run.ftipc --format json > findings.json
  ftraceipc analyze run.ftipc --detector wait_chain --detector wait_cycle --all-tasks
  NEO4J_PASSWORD=... ftraceipc analyze run.ftipc --neo4j bolt://localhost:7687
""")
def analyze(
    capture: Path = typer.Argument(..., help="A capture directory."),
    format: str = typer.Option("text", "--format", "-f", help="text or json."),
    neo4j: Optional[str] = typer.Option(None, "--neo4j", help="Run the detectors in Neo4j (bolt://HOST:7687); the capture is loaded there first if it is not yet."),
    user: Optional[str] = typer.Option(None, "--user", help="Neo4j user (default $NEO4J_USER, else neo4j)."),
    password_env: Optional[str] = typer.Option(None, "--password-env", help="Environment variable holding the Neo4j password (default NEO4J_PASSWORD)."),
    detector: List[str] = typer.Option([], "--detector", "-D", help="Run only this detector (repeatable)."),
    all_tasks: bool = typer.Option(False, "--all-tasks", help="Report findings about every task, not only the traced command's."),
    no_cypher: bool = typer.Option(False, "--no-cypher", help="Text: leave out the Neo4j Browser query of each finding."),
    top: int = typer.Option(3, "--top", help="Text: at most N findings per pattern (0: all)."),
    min_share: float = typer.Option(2.0, "--min-share", help="Leave out findings under this percentage of the traced command's critical path (0: keep all; JSON lists them in capture.minor_findings)."),
) -> None:
    """Run every detector on a capture's graph and print the findings, ranked by the part of the traced
    command's critical path each accounts for."""
    from ftraceipc.detect import DETECTORS
    from ftraceipc.detect.pipeline import EMBEDDED, Backend, analyze as run_analysis
    from ftraceipc.report.findings import write_json, write_text

    _choice("--format", format, ("text", "json"))
    if top < 0:
        raise CommandError(f"--top must be >= 0 (got {top})")
    if not 0 <= min_share <= 100:
        raise CommandError(f"--min-share must be between 0 and 100 (got {min_share:g})")
    for d in detector:
        if d not in DETECTORS:
            raise CommandError(f"--detector {d!r} is not a detector", hint=f"choose from {', '.join(DETECTORS)}")
    _open_capture(capture)
    backend = EMBEDDED
    if neo4j is not None:
        if not _is_uri(neo4j):
            raise CommandError(f"--neo4j {redact_uri(neo4j)!r} is not a URI", hint="use bolt://HOST:7687 or neo4j://HOST:7687")
        backend = Backend(uri=neo4j, user=user, password=_neo4j_password(password_env))
    a = run_analysis(capture, backend=backend, detectors=list(dict.fromkeys(detector)) or None,
                     all_tasks=all_tasks, build=_build, log=_log, min_share=min_share)
    _warn(a.warnings)
    if format == "json":
        write_json(a, sys.stdout)
    else:
        write_text(a, sys.stdout, cypher=not no_cypher, top=top)


def _check_out_file(path: Path, opt: str, force: bool) -> None:
    """One output file: its directory exists, and it is not there yet unless --force (never a directory)."""
    if path.is_dir():
        raise CommandError(f"{opt} {path} is a directory", hint="give a file name, e.g. graph.html")
    if not path.parent.is_dir() and str(path.parent) != "":
        raise CommandError(f"cannot write {path}: {path.parent} is not a directory")
    if path.exists() and not force:
        raise CommandError(f"{path} exists", hint="add --force to replace it")


def _write_atomically(path: Path, write) -> None:
    """``write(tmp_path)`` then rename: a failed export leaves no half file behind."""
    import os

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _pictures(capture: Path, *, pyvis: Optional[Path], perfetto: Optional[Path], html: Optional[Path],
              all_tasks: bool, ungroup: bool, model=None) -> list[str]:
    """Write the asked-for pictures of one capture; returns one line per file written. The episode
    tables go to a temporary directory, and so does the graph when the capture directory is not
    writable (a capture made by root, read by a user): the capture is never required to be writable."""
    import os
    import tempfile

    from ftraceipc.graph import default_path

    need_episodes = perfetto is not None or html is not None
    with tempfile.TemporaryDirectory(prefix="ftraceipc-pictures-") as tmp:
        if model is None or (need_episodes and model.episodes is None):
            model = _build(capture, episodes=need_episodes, episodes_dir=Path(tmp) / "model")
        graph_path = default_path(capture) if os.access(capture, os.W_OK) else Path(tmp) / "graph.lbug"
        return _write_pictures(capture, model, graph_path, pyvis=pyvis, perfetto=perfetto, html=html,
                               all_tasks=all_tasks, ungroup=ungroup)


def _write_pictures(capture: Path, model, graph_path: Path, *, pyvis, perfetto, html, all_tasks: bool,
                    ungroup: bool) -> list[str]:
    lines = []
    analysis = None
    if pyvis is not None or html is not None:
        from ftraceipc.detect.pipeline import Backend, analyze

        analysis = analyze(model, backend=Backend(path=graph_path), all_tasks=all_tasks)
    problems = analysis.warnings if analysis is not None else _model_problems(model)
    _warn(problems)
    if pyvis is not None:
        from ftraceipc.report import graphview

        kw = {"group": None} if ungroup else {}
        kw["all_tasks"] = all_tasks
        _write_atomically(pyvis, lambda p: graphview.write(model, analysis.findings, p, **kw))
        lines.append(f"wrote {pyvis} (interactive graph; open it in a browser)")
    if html is not None:
        from ftraceipc.report import html as html_report

        _write_atomically(html, lambda p: html_report.write_report(capture, p, model=model, analysis=analysis))
        lines.append(f"wrote {html} (report: summary, findings, plots, graph)")
    if perfetto is not None:
        from ftraceipc.report.perfetto import write_perfetto

        def w(p):
            with open(p, "w") as out:
                write_perfetto(capture, out, model=model, all_tasks=all_tasks,
                               warnings=[pr.to_json() for pr in problems])

        _write_atomically(perfetto, w)
        lines.append(f"wrote {perfetto} (open it at https://ui.perfetto.dev)")
    return lines


def _open_capture(capture: Path) -> None:
    from ftraceipc.capture.store import CaptureDir

    CaptureDir.open(capture).read_meta()


@app.command(epilog="""\b
Examples:
  ftraceipc export run.ftipc --pyvis graph.html              who talks to whom, findings in red
  ftraceipc export run.ftipc --perfetto trace.json           timeline for ui.perfetto.dev
  ftraceipc export run.ftipc --pyvis g.html --ungroup --all-tasks
""")
def export(
    capture: Path = typer.Argument(..., help="A capture directory."),
    pyvis: Optional[Path] = typer.Option(None, "--pyvis", help="Write the interactive graph of tasks and resources (one HTML file, works offline)."),
    perfetto: Optional[Path] = typer.Option(None, "--perfetto", help="Write a Chrome/Perfetto trace-event JSON timeline."),
    all_tasks: bool = typer.Option(False, "--all-tasks", help="Every task of the capture, not only the traced command's."),
    ungroup: bool = typer.Option(False, "--ungroup", help="Graph: one node per task even over 500 tasks (default: grouped by process)."),
    force: bool = typer.Option(False, "--force", help="Replace existing files."),
) -> None:
    """Export pictures of a capture: an interactive graph (pyvis) and a Perfetto timeline."""
    if pyvis is None and perfetto is None:
        raise CommandError("nothing to export", hint="add --pyvis FILE and/or --perfetto FILE")
    for opt, p in (("--pyvis", pyvis), ("--perfetto", perfetto)):
        if p is not None:
            _check_out_file(p, opt, force)
    _open_capture(capture)
    for ln in _pictures(capture, pyvis=pyvis, perfetto=perfetto, html=None, all_tasks=all_tasks, ungroup=ungroup):
        typer.echo(ln)


@app.command(epilog="""\b
Examples:
  ftraceipc report run.ftipc --html report.html              one self-contained page
""")
def report(
    capture: Path = typer.Argument(..., help="A capture directory."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write the HTML report (one file, works offline)."),
    all_tasks: bool = typer.Option(False, "--all-tasks", help="Findings about every task, not only the traced command's."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
) -> None:
    """Write a one-page HTML report: run summary, ranked findings, plots and the graph."""
    if html is None:
        raise CommandError("no report to write", hint="add --html FILE")
    _check_out_file(html, "--html", force)
    _open_capture(capture)
    for ln in _pictures(capture, pyvis=None, perfetto=None, html=html, all_tasks=all_tasks, ungroup=False):
        typer.echo(ln)


def _progress_kw(fn, progress) -> dict:
    """``progress=`` for builders that take it (a callback ``progress(done_bytes, total_bytes)``)."""
    import inspect

    if progress is None:
        return {}
    try:
        return {"progress": progress} if "progress" in inspect.signature(fn).parameters else {}
    except (TypeError, ValueError):
        return {}


@contextlib.contextmanager
def _build_progress():
    """A rich progress bar on stderr while a model is built, only when stderr is a terminal; yields
    the callback ``progress(done_bytes, total_bytes)`` or None."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress("building model", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("model", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total or None)


def _choice(opt: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise CommandError(f"{opt} {value!r} is not one of {', '.join(allowed)}", hint=f"use {opt} {allowed[0]}")


def _click(name: str) -> tuple[type, ...]:
    """The click exception class ``name`` from click and from typer's own copy of it (typer >= 0.16)."""
    import importlib

    out = []
    for mod in ("click.exceptions", "typer._click.exceptions", "typer.exceptions"):
        try:
            cls = getattr(importlib.import_module(mod), name)
        except (ImportError, AttributeError):
            continue
        if cls not in out:
            out.append(cls)
    return tuple(out)


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place where errors become a line on stderr and an exit code."""
    try:
        rv = app(args=argv, standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except FtraceIPCError as e:
        print(f"ftraceipc: error: {redact_uri(e.line())}", file=sys.stderr)  # never a password of a URI
        code = e.exit_code
    except _click("Exit") as e:
        code = e.exit_code
    except _click("Abort"):
        print("ftraceipc: aborted", file=sys.stderr)
        code = 130
    except _click("UsageError") as e:  # a missing argument, an unknown option, ...: one line too
        if type(e).__name__ == "NoArgsIsHelpError" and e.ctx is not None:  # plain `ftraceipc`: the help
            print(e.ctx.get_help())
            code = 0
        else:
            path = e.ctx.command_path.split(" ", 1) if e.ctx is not None else []
            cmd = f"ftraceipc {path[1]}" if len(path) == 2 else "ftraceipc"
            print(f"ftraceipc: error: {redact_uri(e.format_message().rstrip('.'))}: see '{cmd} --help'",
                  file=sys.stderr)
            code = e.exit_code
    except _click("ClickException") as e:
        e.show()
        code = e.exit_code
    except KeyboardInterrupt:
        print("ftraceipc: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    main()
