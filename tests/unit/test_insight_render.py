"""bench/insight.py's pure half: findings -> verdicts, results JSON -> EVALUATION.md.

Nothing is measured or traced here: the inputs are results shaped like the harness's own JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import insight  # noqa: E402

MACHINE = {"date": "2026-12-03T04:00:00+00:00", "commit": "0123456789abcdef0123456789abcdef01234567",
           "dirty": False, "kernel": "6.18.44-test", "nproc": 2, "cpu_model": "Test CPU @ 1 GHz",
           "mem_gib": 23.5, "loadavg_start": [0.3, 0.2, 0.1]}


def finding(rank, pattern, comms, tids, resources, ns, ns_from="critical_ns", suggestion=""):
    return {"rank": rank, "pattern": pattern, "tasks": tids, "comms": comms, "resources": resources,
            "count": 10, "ns": ns, "ns_from": ns_from, "critical_ns": ns if ns_from == "critical_ns" else None,
            "asleep_ns": ns, "title": f"{pattern} title", "suggestion": suggestion, "explanation": "why"}


def untraced(walls):
    return insight.stats([{"wall_s": w, "load1": 0.5, "tracing_instances": []} for w in walls])


def case_result(case, top, fixed_findings, asis_walls, fixed_walls, wall_ns=2_000_000_000, extra=()):
    r = {"name": case.name, "kind": case.kind, "real": case.real, "case": insight.case_json(case),
         "sizes": dict(case.size), "error": None,
         "commands": {"asis": "cmd as is", "fixed": "cmd | fixed"},
         "untraced": {"asis": untraced(asis_walls), "fixed": untraced(fixed_walls)},
         "asis_analysis": {"wall_ns": wall_ns, "wall_from": "critical path wall_ns", "capture_s": 3.0,
                           "analyze_s": 4.0, "warnings": [], "findings": [top, *extra]},
         "fixed_analysis": {"wall_ns": wall_ns // 2, "wall_from": "critical path wall_ns", "capture_s": 2.0,
                            "analyze_s": 3.0, "warnings": [], "findings": fixed_findings}}
    insight.judge(case, r)
    return r


def results():
    bursty = insight.CASE_BY_NAME["bursty_pipe"]
    gz = insight.CASE_BY_NAME["gzip_bottleneck"]
    redis = insight.CASE_BY_NAME["redis_pipelining"]
    ctl = insight.CASE_BY_NAME["control_hackbench_pipes"]
    good = case_result(bursty, finding(1, "full_buffer_stall", ["producer", "consumer"], [10, 11], ["pipe:5"],
                                       800_000_000, suggestion="Give pipe:5 a bigger buffer (F_SETPIPE_SZ)"),
                       [], [2.0, 2.1, 1.9], [1.2, 1.25, 1.3])
    # wrong top finding (a wait chain), right one second; its asleep time gives the prediction
    wrong = case_result(redis, finding(1, "wait_chain", ["redis-benchmark", "redis-server"], [20, 21],
                                       ["unix:7"], 1_500_000_000, suggestion="Shorten the chain"),
                        [finding(1, "chatty_pingpong", ["redis-benchmark", "redis-server"], [30, 31], ["unix:9"],
                                 100_000_000, "asleep_ns", "Batch")],
                        [4.0, 4.0], [0.5, 0.6],
                        extra=[finding(2, "chatty_pingpong", ["redis-benchmark", "redis-server"], [20, 21],
                                       ["unix:7"], 1_700_000_000, "asleep_ns", "Batch: pipeline requests")])
    moved = case_result(gz, finding(1, "bottleneck", ["gzip"], [40], [], 1_900_000_000,
                                    suggestion="Make gzip faster or split its work"),
                        [finding(1, "bottleneck", ["pigz", "pigz"], [50, 51], [], 900_000_000)],
                        [2.0, 2.0], [1.9, 2.05])
    control = {"name": ctl.name, "kind": "control", "real": True, "case": insight.case_json(ctl),
               "sizes": dict(ctl.size), "error": None, "commands": {"asis": "perf bench sched messaging -p"},
               "untraced": {"asis": untraced([2.5, 2.6])},
               "asis_analysis": {"wall_ns": 3_000_000_000, "wall_from": "tracing window (meta.json)",
                                 "capture_s": 5, "analyze_s": 6, "warnings": ["lost 12 events on CPU 1"],
                                 "findings": [finding(1, "thundering_herd", ["sched-messaging"], [60], ["pipe:3"], 5),
                                              finding(2, "bottleneck", ["sched-messaging"], [61], [], 5)]}}
    insight.judge(ctl, control)
    failed = {"name": "pgbench_pipeline", "kind": "case", "real": True,
              "case": insight.case_json(insight.CASE_BY_NAME["pgbench_pipeline"]), "sizes": {"t": 1},
              "error": "RuntimeError: postgres did not come up"}
    return {"benchmark": "insight", "command": "sudo python3 bench/insight.py --runs 3", "machine": MACHINE,
            "args": {"runs": 3, "quick": False, "only": []}, "cases": [good, wrong, moved, failed, control]}


def rows_of(md: str) -> dict[str, str]:
    return {ln.split("|")[1].strip(): ln for ln in md.splitlines() if ln.startswith("| ") and "|" in ln[2:]}


def test_a_right_top_finding_passes_every_check_and_its_saving_is_compared():
    r = results()["cases"][0]
    assert r["top_check"] == {"pattern": True, "tasks": True, "resource": True, "advice": True, "right": True,
                              "missing": []}
    assert r["fixed_check"] == {"check": "absent", "ok": True, "findings_of_pattern": 0, "naming_expected_tasks": 0}
    sv = r["savings"]
    assert sv["measured_pct"] == 37.5  # medians 2.0 -> 1.25
    assert sv["predicted_pct"] == 40.0  # 0.8 s of a 2 s wall
    assert sv["within"] is True and sv["fix_helps"] == "yes" and sv["speedup"] == 1.6


def test_a_wrong_top_finding_names_what_is_wrong_and_the_expected_one_predicts():
    r = results()["cases"][1]
    assert r["top_check"]["right"] is False and r["top_check"]["missing"] == ["pattern", "advice"]
    assert r["expected_finding"]["rank"] == 2  # the chatty_pingpong ranked second
    assert r["savings"]["predicted_from"] == "asleep_ns"
    assert r["savings"]["predicted_pct"] == 85.0
    assert r["fixed_check"]["ok"] is False and r["fixed_check"]["findings_of_pattern"] == 1


def test_a_bottleneck_case_is_judged_by_the_bottleneck_moving():
    r = results()["cases"][2]
    assert r["fixed_check"] == {"check": "moved", "ok": True, "now": "pigz", "findings_of_pattern": 1}
    assert r["savings"]["fix_helps"] == "likely"  # medians apart, ranges overlap
    # 95 % predicted, 1.25 % measured: a bottleneck's critical_ns bounds what a faster task saves, the
    # fix's speed-up factor is unknown to the tool: judged by the path moving, not compared
    assert r["savings"]["within"] is None and r["savings"]["judged_by_path"] is True
    assert "– (path moved?)" in insight.markdown(results())


def test_a_bottleneck_finding_must_name_the_expected_task_first():
    case = insight.CASE_BY_NAME["gzip_bottleneck"]
    upstream = finding(1, "bottleneck", ["wc", "gzip"], [3, 2], ["pipe:1"], 1, suggestion="make wc faster")
    assert insight.judge_finding(case, upstream)["missing"] == ["tasks"]
    first = finding(1, "bottleneck", ["gzip", "seq"], [2, 1], ["pipe:1"], 1, suggestion="make gzip faster")
    assert insight.judge_finding(case, first)["right"] is True


def test_comm_is_matched_on_its_first_15_characters():
    case = insight.CASE_BY_NAME["redis_pipelining"]
    f = finding(1, "chatty_pingpong", ["redis-benchmar", "redis-server"], [1, 2], ["unix:1"], 1, suggestion="pipeline")
    assert insight.judge_finding(case, f)["tasks"] is False
    f["comms"][0] = "redis-benchmark"[:15]
    assert insight.judge_finding(case, f)["right"] is True


def test_evaluation_md_has_one_row_per_case_with_its_verdicts():
    md = insight.markdown(results())
    rows = rows_of(md)
    assert "| case " in md and "within ±30%?" in md
    good = rows["bursty_pipe"]
    assert "`full_buffer_stall` producer" in good and "| yes " in good and "2.00 s / 1.25 s" in good
    assert "38 %" in good and "40 %" in good  # measured (2.0-1.25)/2.0 = 37.5 -> 38, predicted 40
    wrong = rows["redis_pipelining"]
    assert "no (pattern, advice)" in wrong and "85 % †" in wrong  # from asleep_ns: marked
    assert "error: RuntimeError: postgres did not come up" in rows["pgbench_pipeline"]
    assert "yes (now pigz)" in rows["gzip_bottleneck"]
    assert "**Predicted savings marked † come from `asleep_ns`" in md
    assert "Right finding first: 2/4." in md  # bursty_pipe and gzip_bottleneck


def test_evaluation_md_reports_false_findings_of_controls_and_the_machine():
    md = insight.markdown(results())
    ctl = rows_of(md)["control_hackbench_pipes"]
    assert "`thundering_herd` ×1, `bottleneck` ×1" in ctl and ctl.count("`thundering_herd`") == 2
    assert "sudo python3 bench/insight.py --runs 3" in md
    assert "Test CPU @ 1 GHz, 2 CPUs, kernel 6.18.44-test" in md and "0123456789abcdef" in md
    assert "### control_hackbench_pipes" in md and "False findings: 1 (thundering_herd)." in md
    assert "lost 12 events on CPU 1" in md


def test_pipes_in_commands_do_not_break_the_table():
    md = insight.markdown(results())
    header = next(ln for ln in md.splitlines() if ln.startswith("| case "))
    for ln in md.splitlines():
        if ln.startswith("| ") and not ln.startswith("| control") and "---" not in ln and "|" in ln[2:]:
            if ln.split("|")[1].strip() in {"bursty_pipe", "redis_pipelining", "gzip_bottleneck"}:
                assert ln.replace("\\|", "").count("|") == header.count("|")


def test_render_only_rewrites_the_document_from_the_json(tmp_path):
    res = tmp_path / "insight.json"
    res.write_text(json.dumps(results()))
    doc = tmp_path / "EVALUATION.md"
    assert insight.main(["--render-only", "--json", str(res), "--doc", str(doc)]) == 0
    assert doc.read_text() == insight.markdown(json.loads(res.read_text()))


def test_every_case_is_declared_completely():
    assert len([c for c in insight.CASES if not c.control]) >= 8
    assert len([c for c in insight.CASES if c.real and not c.control]) >= 4
    for c in insight.CASES:
        assert set(c.size) == set(c.quick), c.name
        assert all(s in insight.SETUPS for s in c.setups), c.name
        assert all((insight.WORKLOADS / f"{b}.c").is_file() for b in c.build), c.name
        if not c.control:
            assert c.fixed and c.pattern and c.advice and c.tasks, c.name


def test_a_dropped_case_is_named_with_its_reason_and_never_scored():
    res = results()
    stale = dict(res["cases"][0], name="make_jobserver_herd")  # a result of the case from an older run
    res["cases"].append(stale)
    md = insight.markdown(res)
    assert "make_jobserver_herd" not in rows_of(md) and "### make_jobserver_herd" not in md
    assert "## Cases dropped" in md and "- `make_jobserver_herd`: make -j16 over 8 recursive sub-makes" in md
    assert "make_jobserver_herd" not in insight.CASE_BY_NAME


def test_a_reanalyzed_run_says_which_commit_made_the_findings():
    res = results()
    assert "analyzed again" not in insight.markdown(res)
    res["reanalyzed"] = dict(MACHINE, commit="fedcba9876543210fedcba9876543210fedcba98", date="2026-12-03T18:00:00+00:00")
    md = insight.markdown(res)
    assert ("The captures of that run were analyzed again on 2026-12-03T18:00:00+00:00 at commit "
            "`fedcba9876543210fedcba9876543210fedcba98`") in md


def test_a_pattern_accepted_as_well_must_carry_the_fix_in_its_advice_and_does_not_predict():
    case = insight.CASE_BY_NAME["perf_pipe_pinned"]
    chatty = finding(1, "chatty_pingpong", ["sched-pipe", "sched-pipe"], [1, 2], ["pipe:1", "pipe:2"],
                     1_000_000_000, suggestion="Batch: send several requests per write.")
    assert insight.judge_finding(case, chatty)["missing"] == ["advice"]
    chatty["suggestion"] += " If each message must wait for its answer, keep them on one CPU (taskset -c)."
    assert insight.judge_finding(case, chatty)["right"] is True
    assert insight.judge_finding(case, dict(chatty, pattern="wait_cycle"))["missing"] == ["pattern"]
    cross = finding(2, "cross_cpu_wakeup", ["sched-pipe", "sched-pipe"], [1, 2], ["pipe:1"], 500_000_000,
                    suggestion="Keep the pair on one CPU (taskset -c)")
    r = case_result(case, chatty, [dict(chatty, rank=1)], [1.2, 1.1], [0.3, 0.3], extra=[cross])
    assert r["top_check"]["right"] is True
    assert r["expected_finding"]["pattern"] == "cross_cpu_wakeup"  # the pin's own time predicts the pin
    assert r["savings"]["predicted_pct"] == 25.0
    assert r["fixed_check"]["ok"] is True  # a ping-pong still, but no cross-CPU wakeups
    assert "(or `chatty_pingpong` with that advice)" in rows_of(insight.markdown(
        dict(results(), cases=[r])))["perf_pipe_pinned"]
