"""bench/run_all.py's pure half: results JSON -> Markdown blocks -> BENCHMARKS.md, markers and stamps.

Nothing is measured here: the inputs are results dicts shaped like the scripts' ``--json`` output.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import _benchutil as bu  # noqa: E402
import run_all  # noqa: E402

MACHINE = {"date": "2026-12-02T22:00:00+00:00", "commit": "0123456789abcdef0123456789abcdef01234567",
           "dirty": False, "kernel": "6.18.44-test", "nproc": 2, "cpu_model": "Test CPU @ 1 GHz",
           "mem_gib": 23.5, "python": "3.11.7", "perf": "perf version 6.1", "loadavg_start": [0.3, 0.2, 0.1]}

SAMPLE = """# Benchmarks

Intro stays.

<!-- bench:lost:begin -->
old lost table
<!-- bench:lost:end -->

Prose between blocks stays, byte for byte.  
<!-- bench:overhead:begin -->
old overhead table
<!-- bench:overhead:end -->
Tail stays.
"""


def lost_results() -> dict:
    def run(workload, rep, events, lost):
        return {"workload": workload, "rep": rep, "events": events, "events_per_s": 2.0e6, "mib_per_s": 80.0,
                "lost": lost, "pages_missed": 1 if lost else 0, "info_missed_events": lost,
                "any_lost": bool(lost), "busy_during": []}

    import bench_lost

    runs = [run("sockets", 0, 2_300_000, 0), run("sockets", 1, 2_290_000, 1234), run("pipes", 0, 1_330_000, 0),
            run("pipes", 1, 1_340_000, 0)]
    summary = bench_lost.summarize(runs)
    return {"benchmark": "lost", "command": "/x/bench/bench_lost.py --repeat 2 --json /tmp/r/lost.json",
            "machine": MACHINE, "args": {"repeat": 2}, "capture_args": [], "runs": runs, "summary": summary,
            "targets": [{"name": "zero lost events", "met": False, "detail": "sockets: 1/2 runs lost events"}]}


def test_replace_block_changes_only_the_text_between_the_markers():
    out = bu.replace_block(SAMPLE, "lost", "| new | table |\n")
    assert "old lost table" not in out
    assert "<!-- bench:lost:begin -->\n| new | table |\n<!-- bench:lost:end -->" in out
    before, after = SAMPLE.split("old lost table\n")
    assert out.startswith(before) and out.endswith(after)  # everything else kept byte for byte


def test_replace_block_twice_gives_the_same_document():
    once = bu.replace_block(SAMPLE, "overhead", "table v2")
    assert bu.replace_block(once, "overhead", "table v2") == once
    assert bu.replace_block(once, "overhead", "old overhead table") == SAMPLE


@pytest.mark.parametrize("text, words", [
    (SAMPLE.replace("<!-- bench:lost:begin -->\n", ""), "has no <!-- bench:lost:begin -->"),
    (SAMPLE.replace("<!-- bench:lost:end -->\n", ""), "has no <!-- bench:lost:end -->"),
    (SAMPLE + "<!-- bench:lost:begin -->\n", "more than one <!-- bench:lost:begin -->"),
])
def test_a_missing_or_repeated_marker_is_an_error_that_says_what_to_add(text, words):
    with pytest.raises(bu.MarkerError) as e:
        bu.replace_block(text, "lost", "x", "BENCHMARKS.md")
    msg = str(e.value)
    assert words in msg and "put exactly one line <!-- bench:lost:begin -->" in msg


def test_an_end_marker_before_its_begin_is_an_error():
    text = "<!-- bench:lost:end -->\nx\n<!-- bench:lost:begin -->\n"
    with pytest.raises(bu.MarkerError, match="comes before"):
        bu.replace_block(text, "lost", "y")


def test_check_markers_fails_before_anything_is_measured_when_one_block_lacks_markers():
    run_all.check_markers(SAMPLE, ["lost", "overhead"], "BENCHMARKS.md")
    with pytest.raises(bu.MarkerError, match="bench:detect:begin"):
        run_all.check_markers(SAMPLE, ["lost", "detect"], "BENCHMARKS.md")


def test_the_lost_table_is_made_from_the_results_json():
    text = __import__("bench_lost").markdown(lost_results())
    lines = text.splitlines()
    header = next(ln for ln in lines if ln.startswith("| workload"))
    assert "runs with loss" in header and "lost (meta.json)" in header
    sockets = next(ln for ln in lines if ln.startswith("| sched messaging -g 4 -l 200"))
    assert "2,295,000" in sockets and "1,234 (max 1,234)" in sockets and "1/2" in sockets
    pipes = next(ln for ln in lines if ln.startswith("| sched messaging -p"))
    assert "0/2" in pipes
    assert "target: zero lost events: NOT MET (sockets: 1/2 runs lost events)" in lines


def test_a_block_is_stamped_with_commit_date_machine_command_and_source():
    import bench_lost

    res = lost_results()
    bench = next(b for b in run_all.BENCHES if b.name == "lost")
    cmd = run_all.script_command(bench, res, False, "bench/results/lost.json")
    assert cmd == "sudo python3 bench/bench_lost.py --repeat 2 --json bench/results/lost.json"  # what really ran
    text = run_all.block(bench, res, "bench/results/lost.json", cmd, {}, bench_lost.markdown)
    stamp = text.splitlines()[0]
    for part in (MACHINE["commit"], MACHINE["date"], "Test CPU @ 1 GHz", "2 cores", "kernel 6.18.44-test",
                 "23.5 GiB RAM", "bench/results/lost.json"):
        assert part in stamp
    assert f"```sh\n{cmd}\n```" in text
    assert "plus uncommitted" not in text and "--quick" not in text
    dirty = run_all.block(bench, {**res, "machine": {**MACHINE, "dirty": True}}, "x.json", cmd, {},
                          bench_lost.markdown, quick=True)
    assert "plus uncommitted changes" in dirty and "Not numbers to publish" in dirty


def test_rewriting_a_document_puts_each_table_in_its_own_block():
    import bench_lost

    res = lost_results()
    bench = next(b for b in run_all.BENCHES if b.name == "lost")
    body = run_all.block(bench, res, "lost.json", "cmd", {}, bench_lost.markdown)
    out = run_all.rewrite(SAMPLE, {"lost": body})
    assert out.count("| sched messaging -g 4 -l 200") == 1
    assert "old overhead table" in out and "old lost table" not in out
    begin, end = out.index("<!-- bench:lost:begin -->"), out.index("<!-- bench:lost:end -->")
    assert begin < out.index("| sched messaging -g 4 -l 200") < end


def test_a_script_without_markdown_function_gets_its_printed_tables():
    printed = ("log line\nworkload: w\n| a | b |\n|---|--:|\n| x | 1 |\nmore log\ntarget: t: MET (d)\n"
               "wrote x.json\n")
    assert run_all.tables_from_output(printed) == ("workload: w\n\n| a | b |\n|---|--:|\n| x | 1 |\n\n"
                                                   "target: t: MET (d)")
    # a target line printed right under the table is still kept apart from it (else it would be a row)
    assert run_all.tables_from_output("| a |\n|---|\n| 1 |\ntarget: t: MET (d)\n") == \
        "| a |\n|---|\n| 1 |\n\ntarget: t: MET (d)"


def test_bench_decode_vs_perf_keeps_the_names_bench_events_imports():
    import bench_decode_vs_perf as d

    assert d.WORKLOAD == ["perf", "bench", "sched", "messaging", "-g", "4", "-l", "200"]
    assert all(callable(getattr(d, f)) for f in ("decode_ftraceipc", "ftraceipc_capture", "perf_capture"))


def test_the_machine_block_names_the_commit_the_command_and_each_scripts_duration():
    runs = [{"name": "lost", "script": "bench/bench_lost.py", "seconds": 61.2, "status": "ok"},
            {"name": "events", "script": "bench/bench_events.py", "seconds": None,
             "status": "skipped: script not in this checkout"}]
    text = run_all.machine_block(MACHINE, "sudo python3 bench/run_all.py", runs)
    assert MACHINE["commit"] in text and "`sudo python3 bench/run_all.py`" in text
    assert "| lost" in text and "61" in text and "skipped: script not in this checkout" in text
    assert "total 1.0 min" in text


def test_benchmarks_md_has_the_markers_of_every_block_the_driver_writes():
    text = (REPO / "BENCHMARKS.md").read_text()
    names = ["machine"] + [b.name for b in run_all.BENCHES if b.path.is_file()]
    run_all.check_markers(text, names, "BENCHMARKS.md")
    assert set(bu.block_names(text)) <= {"machine"} | {b.name for b in run_all.BENCHES}


def test_every_script_the_driver_runs_has_a_markdown_function_and_takes_json():
    for b in run_all.BENCHES:
        if not b.path.is_file():
            continue
        src = b.path.read_text()
        assert '"--json"' in src, b.script
        if b.script != "bench_events.py":  # another engineer's script: its printed tables are the fallback
            assert callable(getattr(run_all.load_module(b.path), "markdown", None)), b.script


def test_the_driver_stops_with_one_clear_line_before_running_anything_when_a_marker_is_missing(tmp_path):
    import subprocess

    doc = tmp_path / "doc.md"
    doc.write_text("<!-- bench:machine:begin -->\n<!-- bench:machine:end -->\n")  # no graph-load block
    r = subprocess.run([sys.executable, str(REPO / "bench" / "run_all.py"), "--render-only", "--only", "graph-load",
                        "--results", str(tmp_path / "results"), "--doc", str(doc)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: doc.md has no <!-- bench:graph-load:begin --> marker line (found begin 0x, end 0x): put exactly one "
        "line <!-- bench:graph-load:begin --> and one line <!-- bench:graph-load:end --> where the graph-load table "
        "goes"]
    assert "Traceback" not in r.stderr and doc.read_text().count("bench:") == 2


def test_the_readme_cost_table_pairs_each_ftraceipc_run_with_the_untraced_run_of_its_repetition():
    def run(variant, rep, value):
        return {"variant": variant, "rep": rep, "value": value}

    res = {"unit": "s", "machine": {**MACHINE, "cpu_model": "AMD EPYC 7B13", "nproc": 2, "commit": "0123456789abcdef"},
           "summary": {"untraced": {"value": 2.0}, "floor": {"value": 2.2}, "ftraceipc": {"value": 2.4}},
           "runs": [run("untraced", 0, 2.0), run("untraced", 1, 1.6), run("ftraceipc", 0, 2.4), run("ftraceipc", 1, 2.4),
                    run("floor", 0, 2.2)]}
    old = {"machine": MACHINE, "summary": {"untraced": {"usecs_per_op": 5.0}, "ftraceipc": {"usecs_per_op": 5.5},
                                           "perf": {"usecs_per_op": 10.0}},
           "runs": [{"variant": "untraced", "rep": 0, "usecs_per_op": 5.0},
                    {"variant": "ftraceipc", "rep": 0, "usecs_per_op": 5.5}]}
    text = run_all.cost_table({"overhead-findgrep": res, "overhead": old})
    rows = [r for r in text.splitlines() if r.startswith("| ") and "workload" not in r]
    assert len(rows) == 2 and "perf bench sched pipe" in rows[0] and "xargs grep" in rows[1]  # COST_ROWS order
    def cells_of(row):  # "\|" is a pipe inside a cell (the find | xargs label), not a border
        return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]

    cells = cells_of(rows[1])
    # median 2.4 / 2.0; worst: rep 1, 2.4 / 1.6; floor 2.2 / 2.0; no perf run
    assert cells[1:8] == ["2 s", "2.4 s", "+20 %", "+50 %", "+10 %", "–", "2"], cells
    assert cells[8] == "AMD EPYC, 2 vCPUs, `01234567`" and len(cells) == 9
    old_cells = cells_of(rows[0])
    assert old_cells[3:7] == ["+10 %", "+10 %", "–", "+100 %"], old_cells  # results of before the "value" key
    assert "No overhead results yet" in run_all.cost_table({})
