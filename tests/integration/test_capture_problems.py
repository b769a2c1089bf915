"""A capture that misses something is never reported as clean (issue #10, section 2).

Real captures of samples/pipeline.py, then damaged copies: a cpu file cut short (inside a page, and
on a page boundary), a corrupt page, a missing cpu file, a missing header_page, and a capture made
without sched:sched_waking. ``model``, ``analyze``, ``report`` and ``export`` must print one warning
line per problem on stderr, carry the same list in their JSON / HTML summary / Perfetto metadata,
and report the detectors that could not run as "not run", never as "found nothing". Then fuzzing:
a thousand seeded damages of a small real capture, decoded and modelled in this process, and a few
through the real CLI: a clear error or warnings and a result, never a traceback or a hang.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import capture_cli as cc  # noqa: E402
import capture_fuzz as fz  # noqa: E402
from components import need, requires  # noqa: E402

PIPELINE = str(Path(cc.REPO) / "samples" / "pipeline.py")
WAKES_DETECTORS = {"bottleneck", "full_buffer_stall", "wake_then_block", "thundering_herd", "chatty_pingpong",
                   "wait_chain", "wait_cycle", "cross_cpu_wakeup", "wakeup_latency"}  # all (full_buffer_stall: its
# reader's waits; bottleneck: WAKES)
WARN = "ftraceipc: warning: "


def _capture(out: Path, *extra: str, lines: int | None = None, tree_only: bool = False) -> Path:
    need("tracefs")
    argv = ["capture", "-o", str(out), "--no-model", *extra] + (["--tree-only"] if tree_only else [])
    argv += ["--", cc.PY, PIPELINE] + (["--lines", str(lines)] if lines else [])
    r = cc.cli(*argv, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    """samples/pipeline.py with the default event set."""
    return _capture(tmp_path_factory.mktemp("problems") / "pipeline.ftipc")


@pytest.fixture(scope="module")
def no_waking(tmp_path_factory) -> Path:
    """samples/pipeline.py with the default event set minus sched:sched_waking (``capture -e``)."""
    r = cc.cli("capture", "--list-events")
    events = [e for e in r.stdout.split() if e != "sched:sched_waking"]
    assert len(events) > 100
    return _capture(tmp_path_factory.mktemp("problems") / "nowaking.ftipc", "-e", ",".join(events))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """A small capture (the pipeline's own tree, 100 lines) for fuzzing, made once."""
    return _capture(tmp_path_factory.mktemp("fuzz") / "small.ftipc", lines=100, tree_only=True)


def _copy(cap: Path, dest: Path) -> Path:
    shutil.copytree(cap, dest, ignore=shutil.ignore_patterns("graph.lbug*", "model"))
    return dest


def _busiest_cpu(cap: Path) -> int:
    sizes = {int(p.stem[3:]): p.stat().st_size for p in (cap / "cpu").glob("cpu*.raw")}
    return max(sizes, key=sizes.get)


def _warning_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(WARN)]


def assert_warned_everywhere(cap: Path, tmp: Path, kind: str, needle: str) -> dict:
    """model, analyze, report and export each print the warning (once) and carry it in their output;
    returns analyze's JSON."""
    def check_stderr(r, what):
        assert r.returncode == 0, (what, r.stderr)
        assert "Traceback" not in r.stderr
        hits = [ln for ln in _warning_lines(r.stderr) if needle in ln]
        assert len(hits) == 1, (what, r.stderr)

    def check_json(ws, what):
        assert any(w["kind"] == kind and needle in w["message"] for w in ws), (what, ws)

    r = cc.cli("model", cap, "-f", "json", timeout=120)
    check_stderr(r, "model")
    check_json(json.loads(r.stdout)["warnings"], "model json")
    r = cc.cli("model", cap, timeout=120)
    check_stderr(r, "model text")
    assert needle in r.stdout  # under the header too
    r = cc.cli("analyze", cap, "-f", "json", timeout=120)
    check_stderr(r, "analyze")
    a = json.loads(r.stdout)
    assert list(a) == ["capture", "warnings", "findings"]
    assert a["capture"]["path"] == str(cap)
    check_json(a["warnings"], "analyze json")
    r = cc.cli("analyze", cap, timeout=120)
    check_stderr(r, "analyze text")
    assert "no detector fired above its thresholds." not in r.stdout  # never "clean" when data is missing
    html = tmp / "report.html"
    r = cc.cli("report", cap, "--html", html, timeout=180)
    check_stderr(r, "report")
    m = re.search(r'<ul id="sum-warnings"[^>]*>(.*?)</ul>', html.read_text(), re.S)
    assert m and needle in m.group(1).replace("&#x27;", "'").replace("&quot;", '"'), "no warning in the HTML summary"
    trace = tmp / "trace.json"
    r = cc.cli("export", cap, "--perfetto", trace, timeout=180)
    check_stderr(r, "export")
    check_json(json.loads(trace.read_text())["metadata"]["warnings"], "perfetto metadata")
    return a


@requires("tracefs")
def test_whole_capture_has_no_warnings(pipeline):
    r = cc.cli("analyze", pipeline, "-f", "json", timeout=120)
    assert r.returncode == 0, r.stderr
    a = json.loads(r.stdout)
    assert a["warnings"] == [] and a["capture"]["not_run"] == [] and not _warning_lines(r.stderr)
    assert len(a["capture"]["detectors_run"]) == len(WAKES_DETECTORS) == 9
    meta = json.loads((pipeline / "meta.json").read_text())
    assert {int(c): n for c, n in meta["cpu_bytes"].items()} == \
        {int(p.stem[3:]): p.stat().st_size for p in (pipeline / "cpu").glob("cpu*.raw")}


def test_cpu_file_cut_inside_a_page_warns_in_every_command(pipeline, tmp_path):
    cap = _copy(pipeline, tmp_path / "cut.ftipc")
    cpu = _busiest_cpu(cap)
    raw = cap / "cpu" / f"cpu{cpu}.raw"
    size = raw.stat().st_size
    os.truncate(raw, size * 3 // 4 + 1000)  # a quarter gone, ending inside a page
    a = assert_warned_everywhere(cap, tmp_path, "capture_incomplete", f"cpu{cpu} raw file ends inside a page")
    w = next(w for w in a["warnings"] if w["kind"] == "capture_incomplete")
    assert w["cpu"] == cpu and w["count"] > 0 and "the capture is incomplete" in w["message"]
    # about a quarter of that CPU's events: the estimate comes from the bytes written (meta cpu_bytes)
    info = json.loads(cc.cli("info", pipeline, "-f", "json").stdout)
    total = info["per_cpu"][str(cpu)]["events"]
    assert 0.15 * total < w["count"] < 0.35 * total, (w, total)


def test_cpu_file_cut_on_a_page_boundary_is_still_seen(pipeline, tmp_path):
    cap = _copy(pipeline, tmp_path / "cut.ftipc")
    cpu = _busiest_cpu(cap)
    raw = cap / "cpu" / f"cpu{cpu}.raw"
    os.truncate(raw, raw.stat().st_size * 3 // 4 // 4096 * 4096)
    r = cc.cli("analyze", cap, "-f", "json", timeout=120)
    assert r.returncode == 0, r.stderr
    w = [w for w in json.loads(r.stdout)["warnings"] if w["kind"] == "capture_incomplete"]
    assert len(w) == 1 and w[0]["cpu"] == cpu and "shorter than written" in w[0]["message"], w


def test_corrupt_page_warns_in_every_command(pipeline, tmp_path):
    cap = _copy(pipeline, tmp_path / "corrupt.ftipc")
    cpu = _busiest_cpu(cap)
    raw = cap / "cpu" / f"cpu{cpu}.raw"
    data = bytearray(raw.read_bytes())
    data[2 * 4096 + 8:2 * 4096 + 16] = b"\xff" * 8  # the third page's commit word: no page is that long
    raw.write_bytes(bytes(data))
    a = assert_warned_everywhere(cap, tmp_path, "pages_damaged", f"1 page of cpu{cpu} damaged and skipped")
    w = next(w for w in a["warnings"] if w["kind"] == "pages_damaged")
    assert w["cpu"] == cpu and w["count"] > 0


def test_missing_cpu_file_is_an_incomplete_capture(pipeline, tmp_path):
    cap = _copy(pipeline, tmp_path / "nocpu.ftipc")
    cpu = _busiest_cpu(cap)
    (cap / "cpu" / f"cpu{cpu}.raw").unlink()
    r = cc.cli("model", cap, "-f", "json", timeout=120)
    assert r.returncode == 0, r.stderr
    assert any(f"cpu{cpu} raw file is missing" in ln for ln in _warning_lines(r.stderr)), r.stderr
    assert [w["cpu"] for w in json.loads(r.stdout)["warnings"] if w["kind"] == "capture_incomplete"] == [cpu]


def test_missing_header_page_is_an_error_naming_the_file_unless_assumed(pipeline, tmp_path):
    from test_cli_model import assert_one_error_line

    cap = _copy(pipeline, tmp_path / "nohdr.ftipc")
    (cap / "tracefs" / "header_page").unlink()
    path = str(cap / "tracefs" / "header_page")
    for argv in (("model", cap), ("analyze", cap), ("report", cap, "--html", tmp_path / "r.html"),
                 ("export", cap, "--perfetto", tmp_path / "t.json"), ("events", cap, "-n", "3"), ("info", cap)):
        r = cc.cli(*argv, timeout=120)
        assert r.returncode == 4, (argv, r.returncode, r.stderr)
        assert_one_error_line(r, "header_page", path, "--assume-page-layout")
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "t.json").exists()
    # the explicit override: decoded with the x86_64 layout, and said
    r = cc.cli("--assume-page-layout", "analyze", cap, "-f", "json", timeout=120)
    assert r.returncode == 0, r.stderr
    hits = [ln for ln in _warning_lines(r.stderr) if "header_page" in ln and "--assume-page-layout" in ln]
    assert len(hits) == 1, r.stderr
    assert any(w["kind"] == "undecodable" and "header_page" in w["message"] for w in json.loads(r.stdout)["warnings"])
    r = cc.cli("model", cap, "-f", "json", env_extra={"FTRACEIPC_ASSUME_PAGE_LAYOUT": "1"}, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["stats"]["events"] > 1000, r.stderr


def test_capture_without_sched_waking_reports_detectors_not_run(no_waking, tmp_path):
    a = assert_warned_everywhere(no_waking, tmp_path, "events_missing", "events missing: sched:sched_waking")
    w = next(w for w in a["warnings"] if w["kind"] == "events_missing")
    assert w["events"] == ["sched:sched_waking"] and set(w["detectors"]) == WAKES_DETECTORS
    assert "not run: " in w["message"]
    c = a["capture"]
    assert c["detectors_run"] == []
    assert {x["detector"] for x in c["not_run"]} == WAKES_DETECTORS
    assert all(x["missing_events"] == ["sched:sched_waking"] and x["needs"] for x in c["not_run"])
    r = cc.cli("analyze", no_waking, timeout=120)
    for d in WAKES_DETECTORS:
        assert f"not run: {d} (needs " in r.stdout, r.stdout
    assert "No inefficient interaction found" not in r.stdout
    # only some detectors asked for: the others are neither run nor reported
    r = cc.cli("analyze", no_waking, "-D", "wait_chain", "-D", "full_buffer_stall", "-f", "json", timeout=120)
    c = json.loads(r.stdout)["capture"]
    assert c["detectors_run"] == [] and [x["detector"] for x in c["not_run"]] == ["wait_chain", "full_buffer_stall"]


# --- fuzzing -----------------------------------------------------------------------------------------
FUZZ_CASES = 1000
FUZZ_FIRST_SEED = 10_000
CLI_CASES = 24


def test_fuzzed_captures_give_a_clear_error_or_warnings_never_a_traceback(small, tmp_path):
    """1,000 seeded damages (truncations, bit flips, overwrites, deletions) of a real capture, each
    decoded and modelled in this process as the CLI does, 20 s at most each. Reproduce one case
    with ``python3 tests/integration/capture_fuzz.py CAPTURE SEED``."""
    files = fz.capture_files(small)
    bad, stats = [], {}
    for seed in range(FUZZ_FIRST_SEED, FUZZ_FIRST_SEED + FUZZ_CASES):
        o = fz.run_case(small, seed, tmp_path, files, timeout=20.0)
        stats[o.status] = stats.get(o.status, 0) + 1
        m = o.mutation
        if o.status in ("crash", "timeout"):
            bad.append(f"{m}: {o.status}\n{o.text}")
        elif o.status == "error":
            if "\n" in o.text or not o.text:
                bad.append(f"{m}: error not one line: {o.text!r}")
        elif m.file.startswith("cpu/") and m.cut and "capture_incomplete" not in o.kinds:
            bad.append(f"{m}: a cpu file deleted or cut short, and no warning says so: {o.kinds}")
        elif m.file == "tracefs/header_page" and m.kind == "delete":
            bad.append(f"{m}: decoded without header_page: {o.kinds}")
    assert not bad, f"{len(bad)} of {FUZZ_CASES} cases failed ({stats}):\n" + "\n".join(bad[:10])
    assert stats.get("ok", 0) > FUZZ_CASES // 3 and stats.get("error", 0) > 10, stats  # both paths exercised


def test_fuzzed_captures_through_the_cli(small, tmp_path):
    """The same damages through the real ``ftraceipc analyze`` (a subprocess): exit 0 with findings
    and warnings, or one ``ftraceipc: error:`` line and a non-zero exit; never a traceback."""
    files = fz.capture_files(small)
    for seed in range(FUZZ_FIRST_SEED, FUZZ_FIRST_SEED + CLI_CASES):
        dest = tmp_path / f"case{seed}"
        m = fz.mutate(small, seed, dest, files)
        r = cc.cli("analyze", dest, "-f", "json", timeout=120)
        assert "Traceback" not in r.stderr, f"{m}\n{r.stderr}"
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert all(ln.startswith("ftraceipc: ") for ln in lines), f"{m}\n{r.stderr}"
        if r.returncode == 0:
            json.loads(r.stdout)["findings"]
        else:
            errors = [ln for ln in lines if ln.startswith("ftraceipc: error: ")]
            assert len(errors) == 1 and r.returncode in (1, 2, 4, 5), f"{m}: exit {r.returncode}\n{r.stderr}"
        shutil.rmtree(dest)
