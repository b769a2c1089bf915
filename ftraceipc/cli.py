"""The command line. Commands stay thin; ``main`` turns every FtraceIPCError into one line and an exit code."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import List, Optional

import click
import typer

from ftraceipc import __version__
from ftraceipc.errors import CommandError, FtraceIPCError

app = typer.Typer(
    name="ftraceipc",
    help="Trace how tasks talk through pipes, FIFOs and Unix sockets, and find the inefficient interactions.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  sudo ftraceipc capture -o run.ftipc -- ./their-workload
  ftraceipc info run.ftipc
  ftraceipc events run.ftipc --limit 20 --format jsonl
  ftraceipc model run.ftipc
""",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ftraceipc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version.")) -> None:
    """ftraceipc: a profiler of inter-process communication built on ftrace."""


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
  sudo ftraceipc capture -e sched_switch,sys_enter_write -- make -j2
""",
)
def capture(
    ctx: typer.Context,
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Capture directory to write (default ftraceipc-DATE.ftipc)."),
    duration: Optional[float] = typer.Option(None, "--duration", "-d", help="Stop after S seconds."),
    buffer_kb: int = typer.Option(16384, "--buffer-kb", help="Per-CPU ring buffer size in KiB; raise it if events are lost."),
    events: Optional[str] = typer.Option(None, "--events", "-e", help="Comma-separated events (system:event); 'default' adds the default set."),
    pid: List[int] = typer.Option([], "--pid", "-p", help="A running process of interest (repeatable)."),
    tree_only: bool = typer.Option(False, "--tree-only", help="Trace only the command's (or --pid's) process tree: lower overhead, but hides peers outside it."),
    clock: str = typer.Option("local", "--clock", help="Trace clock (local, global, mono, x86-tsc, ...)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing capture at -o."),
    list_events: bool = typer.Option(False, "--list-events", help="Print the default event set and exit."),
    no_model: bool = typer.Option(False, "--no-model", help="Skip the IPC model summary at the end (build it later with 'ftraceipc model')."),
) -> None:
    """Record a capture: raw per-CPU ring-buffer pages, formats and /proc snapshots."""
    from ftraceipc.capture import events as ev

    if list_events:
        typer.echo("\n".join(ev.DEFAULT_EVENTS))
        return
    command = list(ctx.args) or None
    if command and command[0].startswith("-"):
        raise CommandError(f"unknown option {command[0]}", hint="see 'ftraceipc capture --help'; put the command after '--'")
    from ftraceipc.capture.capture import Capture, CaptureOptions

    opts = CaptureOptions(output=output or _default_output(), command=command, duration=duration, buffer_kb=buffer_kb,
                          events=ev.parse_event_list(events) if events else None, pids=list(pid),
                          tree_only=tree_only, clock=clock, force=force)
    result = Capture(opts).run()
    from ftraceipc.capture.summary import print_summary

    print_summary(result)
    if not no_model:
        _model_summary(result.path)
    code = result.meta.exit_code
    if result.stopped_by == "command" and code:
        raise typer.Exit(code if code > 0 else 128 - code)


def _model_summary(path: Path) -> None:
    """The end-of-capture summary of the IPC model; a failure here never fails the capture."""
    from ftraceipc.model.build import build_model
    from ftraceipc.model.summary import summary_lines

    try:
        lines = summary_lines(build_model(path))
    except FtraceIPCError as e:
        lines = [f"no IPC model summary: {e.line()}"]
    sys.stderr.write("".join(f"{ln}\n" for ln in lines))


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
""")
def events(
    capture: Path = typer.Argument(..., help="A capture directory."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Print at most N events."),
    event: List[str] = typer.Option([], "--event", "-e", help="Only this event (repeatable), e.g. sched_switch."),
    format: str = typer.Option("text", "--format", "-f", help="text, jsonl or csv."),
) -> None:
    """Decode a capture's events in time order across CPUs."""
    from ftraceipc.decode import Decoder, render_events

    _choice("--format", format, ("text", "jsonl", "csv"))
    if limit is not None and limit < 0:
        raise CommandError(f"--limit must be >= 0 (got {limit})")
    dec = Decoder(capture)
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
    from ftraceipc.capture.store import CaptureDir
    from ftraceipc.model.export import check_output, export

    check_output(output, format, force)
    CaptureDir.open(capture).read_meta()  # one clear error before any work if it is not a capture
    from ftraceipc.model.build import build_model

    with _build_progress() as progress:
        m = build_model(capture, episodes=episodes, **_progress_kw(build_model, progress))
    export(m, format, output=output, force=force, episodes=episodes)
    if output is not None:
        print(f"wrote {output}", file=sys.stderr)


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


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place where errors become a line on stderr and an exit code."""
    try:
        rv = app(args=argv, standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except FtraceIPCError as e:
        print(f"ftraceipc: error: {e.line()}", file=sys.stderr)
        code = e.exit_code
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.exceptions.Abort:
        print("ftraceipc: aborted", file=sys.stderr)
        code = 130
    except click.ClickException as e:
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
