"""A plain install works: the wheel built from this repository, installed with its dependencies into a
fresh virtual environment (no system site-packages, no PYTHONPATH: nothing of the source tree can
leak in), runs every subcommand through the venv's own ``ftraceipc`` console script on a real capture,
from a directory outside the repository.

This is the check for files the product reads at run time but the wheel does not ship (issue #10 §1:
``cypher/`` lives at the repository's top level and is shipped as ``ftraceipc/cypher/``).
Needs the network (PyPI, or pip's cache) for the dependencies; the capture needs root and tracefs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import capture_cli as cc
from components import requires

REPO = Path(__file__).resolve().parents[2]
# what a fresh checkout does not have: left out of the copy the wheel is built from
_NOT_SOURCE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                     ".hypothesis", ".neo4j", "*.ftipc", ".venv*")
WORKLOAD = "seq 1 20000 | wc -c"
WORKLOAD_BYTES = 108894  # the size of seq 1 20000's output


def _run(argv: list, *, env: dict | None = None, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run to the end (killed on timeout, by its pid); the process is registered for the leak check."""
    p = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True, cwd=cwd, env=env)
    cc.SPAWNED[p.pid] = p
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        cc.stop(p)
        raise AssertionError(f"{argv} did not end within {timeout} s") from None
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def _isolated_env(venv: Path) -> dict[str, str]:
    """The environment of a user who installed into ``venv``: its bin first, nothing of this repo."""
    e = {k: v for k, v in os.environ.items()
         if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PIP_USER", "PYTHONSAFEPATH")}
    e["PATH"] = f"{venv / 'bin'}{os.pathsep}{e.get('PATH', '/usr/bin:/bin')}"
    e["VIRTUAL_ENV"] = str(venv)
    e["PYTHONNOUSERSITE"] = "1"
    return e


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this repository, built from a clean copy of it (pip builds in the source tree,
    whose stale build/ could otherwise end up in the wheel)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    shutil.copytree(REPO, src, ignore=_NOT_SOURCE, symlinks=True)
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", base / "dist", src],
             cwd=base, timeout=300)
    assert r.returncode == 0, f"pip wheel failed:\n{r.stderr}"
    wheels = list((base / "dist").glob("ftraceipc-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    """A fresh virtual environment with the wheel and its dependencies installed."""
    base = tmp_path_factory.mktemp("venv")
    v = base / "venv"
    r = _run([sys.executable, "-m", "venv", v], cwd=base, timeout=120)
    assert r.returncode == 0, f"python -m venv failed:\n{r.stderr}"
    r = _run([v / "bin" / "python", "-m", "pip", "install", "-q", "--no-input", "--no-compile", wheel],
             env=_isolated_env(v), cwd=base, timeout=900)
    assert r.returncode == 0, f"installing the wheel (and its dependencies from PyPI) failed:\n{r.stderr}"
    return v


def test_wheel_holds_every_module_and_every_cypher_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    cypher = sorted(p.name for p in (REPO / "cypher").iterdir() if p.is_file())
    assert "schema.cypher" in cypher and "top_talkers.cypher" in cypher
    assert [n for n in cypher if f"ftraceipc/cypher/{n}" not in names] == []
    modules = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "ftraceipc").rglob("*.py"))
    assert [m for m in modules if m not in names] == []


def test_installed_package_reads_nothing_from_the_source_tree(venv, tmp_path):
    code = ("import ftraceipc, ftraceipc.graph as g; "
            "print(ftraceipc.__file__); print(g.CYPHER_DIR); print((g.CYPHER_DIR / 'schema.cypher').is_file())")
    r = _run([venv / "bin" / "python", "-c", code], env=_isolated_env(venv), cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    pkg, cypher_dir, schema = r.stdout.split()
    assert Path(pkg).is_relative_to(venv) and not Path(pkg).is_relative_to(REPO), pkg
    assert Path(cypher_dir) == Path(pkg).parent / "cypher", cypher_dir
    assert schema == "True"


@pytest.mark.root
@requires("tracefs")
def test_installed_console_script_runs_every_subcommand_on_a_real_capture(venv, tmp_path):
    env = _isolated_env(venv)
    exe = venv / "bin" / "ftraceipc"

    def ftraceipc(*args, timeout: float = 180) -> subprocess.CompletedProcess:
        r = _run([exe, *args], env=env, cwd=tmp_path, timeout=timeout)
        assert "Traceback" not in r.stderr, f"ftraceipc {' '.join(map(str, args))}:\n{r.stderr}"
        assert r.returncode == 0, f"ftraceipc {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}"
        return r

    # capture, with its closing summary and findings
    r = ftraceipc("capture", "-o", "run.ftipc", "--", "sh", "-c", WORKLOAD)
    said = r.stdout + r.stderr
    assert str(WORKLOAD_BYTES) in r.stdout  # the traced command's own output
    assert "cannot read query file" not in said, said
    assert "top talkers" in said and "seq[" in said and "wc[" in said, said
    # its closing findings line ran: "Findings: N (full report: ...)", or "No ... by/from the detectors"
    assert "Findings: " in said or "the detectors" in said, said

    r = ftraceipc("info", "run.ftipc")
    assert "events" in r.stdout and "sh -c" in r.stdout, r.stdout

    r = ftraceipc("events", "run.ftipc", "--limit", "50", "--format", "jsonl")
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(events) == 50 and all("event" in e and "ts" in e for e in events)

    r = ftraceipc("model", "run.ftipc")
    assert "pipe" in r.stdout, r.stdout
    model = json.loads(ftraceipc("model", "run.ftipc", "--format", "json").stdout)
    assert {"seq", "wc"} <= {t.get("comm") for t in model["tasks"]}, model["tasks"]

    ftraceipc("load", "run.ftipc")
    assert (tmp_path / "run.ftipc" / "graph.lbug").exists()

    r = ftraceipc("analyze", "run.ftipc")
    assert r.stdout.strip(), r.stderr
    found = json.loads(ftraceipc("analyze", "run.ftipc", "--format", "json").stdout)
    findings = found["findings"] if isinstance(found, dict) else found
    assert isinstance(findings, list)

    rows = json.loads(ftraceipc("query", "run.ftipc", "top_talkers", "--format", "json").stdout)
    seq_to_wc = [row for row in rows if row.get("writer_comm") == "seq" and row.get("reader_comm") == "wc"]
    assert [row["bytes"] for row in seq_to_wc] == [WORKLOAD_BYTES], rows
    rows = json.loads(ftraceipc("query", "run.ftipc", "MATCH (t:Task) RETURN count(t) AS n", "--format", "json").stdout)
    assert rows[0]["n"] >= 3, rows

    ftraceipc("report", "run.ftipc", "--html", "report.html")
    page = (tmp_path / "report.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html") and len(page) > 10_000 and "seq" in page

    ftraceipc("export", "run.ftipc", "--pyvis", "graph.html", "--perfetto", "trace.json")
    graph = (tmp_path / "graph.html").read_text()
    assert len(graph) > 10_000 and "vis-network" in graph  # pyvis's assets, inlined
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert len(trace["traceEvents"]) > 10

    # live, JSON lines (stdout is no terminal here): the same capture, then the final findings
    r = ftraceipc("live", "-o", "live.ftipc", "--interval", "0.5", "--", "sh", "-c", WORKLOAD)
    lines = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert lines[0]["type"] == "start" and lines[-1]["type"] == "end", r.stdout[-2000:]
    assert (tmp_path / "live.ftipc" / "meta.json").exists()
