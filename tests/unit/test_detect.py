"""The words of the findings (ftraceipc/detect/detectors/<id>.py): each detector's row explained with
its own numbers, the suggestion fitting the resource (pipe vs socket), the Neo4j Browser snippet; the
ranking by critical_ns then asleep_ns, and the text report (time on the critical path and asleep, never
"lost", no total of overlapping findings)."""

from __future__ import annotations

import json

import pytest

from ftraceipc.detect import DETECTORS, Analysis, CriticalPathInfo, Finding, browser_cypher, rank
from ftraceipc.graph import query_path


class FakeNames:
    """comm[tid] labels without a database (the Names interface: call and many)."""

    def __call__(self, tid):
        return f"t{tid}[{tid}]"

    def many(self, tids, limit=6):
        return ", ".join(self(t) for t in tids)


ROWS = {
    "bottleneck": {"tid": 7, "comm": "gzip", "count": 900, "critical_ns": 910_000_000, "asleep_ns": 210_000_000,
                   "wall_ns": 1_000_000_000, "percent": 91, "running_ns": 700_000_000, "runnable_ns": 0,
                   "blocked_ns": 210_000_000, "reasons": ["nanosleep"], "reason_ns": [210_000_000],
                   "stalled": [5], "stalled_rids": ["pipe:9"], "stalled_ns": [2_500_000_000]},
    "full_buffer_stall": {"writer": 5, "rid": "pipe:9", "kind": "pipe", "count": 63, "asleep_ns": 12_300_000,
                          "max_ns": 400_000, "ops": ["write"], "readers": [6], "reader_waits": 40,
                          "reader_wait_ns": 30_000_000, "drainers": [6], "drain_wakeups": 60,
                          "bytes": 10_485_760, "writes": 40, "burst_bytes": 262_144, "buffer_bytes": 65536},
    "wake_then_block": {"tid": 2, "inputs": ["pipe:1"], "blocked_on": "unix:7", "woken": 40, "fed": 39,
                        "wakers": [1], "count": 38, "asleep_ns": 9_000_000, "readers": [3], "reader_waits": 20,
                        "reader_wait_ns": 4_000_000, "drainers": [3], "bytes": 163_840, "writes": 160, "burst_bytes": 8192,
                        "buffer_bytes": 0},
    "thundering_herd": {"waker": 1, "rid": "pipe:1", "n_wakees": 4, "wakees": [2, 3, 4, 5], "count": 84,
                        "consumed": 21, "wasted": 63, "writes": 21, "woken_per_write": 4.0,
                        "consumed_per_write": 1.0, "asleep_ns": 300_000},
    "chatty_pingpong": {"a": 1, "b": 2, "count": 4000, "bytes_per_message_ab": 16.0, "bytes_per_message_ba": 16.0,
                        "wakeups_ab": 1990, "wakeups_ba": 1995, "asleep_ns": 20_000_000},
    "wait_chain": {"tasks": [4, 3, 2, 1], "resources": ["pipe:3", "pipe:2", "pipe:1"], "hops": 3, "count": 60,
                   "asleep_ns": 130_000_000, "cut": False},
    "wait_cycle": {"tasks": [1, 3, 2], "resources": ["pipe:2", "pipe:3", "pipe:1"], "length": 3, "count": 300,
                   "asleep_ns": 50_000_000},
    "cross_cpu_wakeup": {"waker": 1, "wakee": 2, "resources": ["unix:4"], "count": 990, "cross_count": 990, "wakeups": 1000,
                         "percent": 99, "asleep_ns": 5_000_000, "sleeps": 1995, "consumed": 995, "turns": 990},
    "wakeup_latency": {"wakee": 2, "rid": "pipe:1", "wakers": [1], "count": 200, "mean_ns": 3_000_000,
                       "max_ns": 9_000_000, "asleep_ns": 600_000_000},
}
SAYS = {  # what each explanation must contain (numbers in the words of human_ns)
    "bottleneck": ["t7[7] is on the critical path 91 % of the wall time", "910.0 ms of 1.00 s",
                   "running 70 %, in nanosleep 21 %", "t5[5] slept 2.50 s writing into the full pipe:9",
                   "back-pressure"],
    "full_buffer_stall": ["t5[5]", "63 times", "pipe:9", "12.3 ms", "t6[6]", "empty 40 times", "30.0 ms",
                          "40 calls: bursts of ~256.0 KiB, larger than the 64.0 KiB pipe:9 holds"],
    "wake_then_block": ["t2[2]", "40 times through pipe:1", "39 times", "38 times", "unix:7", "9.0 ms", "t3[3]",
                        "empty 20 times", "batches of ~8.0 KiB into unix:7, more than unix:7 took at once"],
    "thundering_herd": ["t1[1]", "4 tasks", "84 sleeps", "63 of them (75%)", "21 writes woke 4.0 of them",
                        "1.0 then read data"],
    "chatty_pingpong": ["t1[1]", "t2[2]", "4,000 messages", "16 B", "3,985 wakeups", "20.0 ms"],
    "wait_chain": ["t4[4] -> t3[3] (via pipe:3) -> t2[2] (via pipe:2) -> t1[1] (via pipe:1)", "130.0 ms", "60 sleeps"],
    "wait_cycle": ["t1[1] (via pipe:2) -> t3[3] (via pipe:3) -> t2[2] (via pipe:1) -> t1[1]", "300 rounds", "50.0 ms"],
    "cross_cpu_wakeup": ["990 of the 1,000", "t2[2]", "t1[1]", "99%", "5.0 ms", "after 990 of the 1,995 sleeps of t2[2] that t1[1] ended (995 with data read after), t1[1] went to sleep"],
    "wakeup_latency": ["t2[2]", "200 times", "3.0 ms on average", "9.0 ms at most", "600.0 ms"],
}
FIXES = {"bottleneck": "split its work", "full_buffer_stall": "F_SETPIPE_SZ", "wake_then_block": "SO_SNDBUF", "thundering_herd": "EPOLLEXCLUSIVE",
         "chatty_pingpong": "Batch", "wait_chain": "t1[1]", "wait_cycle": "merge", "cross_cpu_wakeup": "taskset",
         "wakeup_latency": "priority"}


@pytest.mark.parametrize("detector", list(DETECTORS))
def test_explanation_uses_the_rows_numbers_and_the_fix_fits(detector):
    title, why, fix = DETECTORS[detector].explain(ROWS[detector], FakeNames())
    for needle in SAYS[detector]:
        assert needle in why, (needle, why)
    assert FIXES[detector] in fix, fix
    assert title and "\n" not in title and why.endswith(".") and fix.endswith(".")
    assert "lost" not in why + fix + title


@pytest.mark.parametrize("detector", list(DETECTORS))
def test_each_detector_module_and_query_point_to_each_other(detector):
    """One module per detector, named after it, next to its query: the .cypher header names the
    module that explains its rows, and the module names its query."""
    d = DETECTORS[detector]
    assert d.module == f"ftraceipc.detect.detectors.{detector}" and d.query == query_path(detector)
    mod = __import__(d.module, fromlist=["ID"])
    assert mod.ID == detector and f"cypher/{detector}.cypher" in mod.__doc__
    assert f"// Explained by: ftraceipc/detect/detectors/{detector}.py" in d.query.read_text()


def test_bottleneck_advice_is_about_the_task_never_about_buffers():
    r = ROWS["bottleneck"]
    for variant in (r, dict(r, running_ns=10, reason_ns=[900_000_000], blocked_ns=900_000_000),
                    dict(r, running_ns=10, runnable_ns=800_000_000)):
        _, why, fix = DETECTORS["bottleneck"].explain(variant, FakeNames())
        assert "t7[7]" in fix and "buffer" not in fix.lower() and "F_SETPIPE_SZ" not in fix
    _, _, fix = DETECTORS["bottleneck"].explain(dict(r, running_ns=10, runnable_ns=800_000_000), FakeNames())
    assert "CPU" in fix
    _, why, _ = DETECTORS["bottleneck"].explain(dict(r, stalled=[], stalled_rids=[], stalled_ns=[]), FakeNames())
    assert "Upstream" not in why
    # asleep in no traced syscall: "sleeps on the critical path", not "sleeps asleep"
    _, _, fix = DETECTORS["bottleneck"].explain(dict(r, running_ns=10, reasons=[], reason_ns=[],
                                                     blocked_ns=900_000_000), FakeNames())
    assert fix.startswith("t7[7] sleeps on the critical path, outside any IPC") and "asleep" not in fix
    _, _, fix = DETECTORS["bottleneck"].explain(dict(r, running_ns=10, reasons=["nanosleep"], reason_ns=[900_000_000],
                                                     blocked_ns=900_000_000), FakeNames())
    assert fix.startswith("t7[7] sleeps in nanosleep on the critical path")


def test_bottleneck_split_counts_unnamed_sleep_and_leaves_out_nothing():
    from ftraceipc.detect.detectors.bottleneck import shares

    r = dict(ROWS["bottleneck"], runnable_ns=30, blocked_ns=250, reasons=["nanosleep", ""], reason_ns=[200, 20])
    assert shares(dict(r, running_ns=500)) == [("running", 500), ("in nanosleep", 200), ("asleep", 50),
                                              ("waiting for a CPU", 30)]  # asleep: the '' reason + 30 unnamed


def test_findings_rank_by_critical_path_time_then_asleep():
    mk = lambda p, c, a, n=1: Finding(p, [1], [], n, c, a, "w.", "f.")
    fs = rank([mk("a", 0, 9_000), mk("b", 50, 1), mk("c", 50, 2), mk("d", 0, 10_000)])
    assert [(f.pattern, f.rank) for f in fs] == [("c", 1), ("b", 2), ("d", 3), ("a", 4)]


def test_a_bottleneck_goes_after_an_interaction_of_its_task_that_accounts_for_the_same_time():
    mk = lambda p, tasks, c: Finding(p, tasks, [], 1, c, 0, "w.", "f.")
    # poll_herd: the dispatcher (7) is the herd's writer; the herd has 99.9 % of the bottleneck's time
    fs = rank([mk("bottleneck", [7], 1_668), mk("thundering_herd", [7, 8, 9], 1_667), mk("chatty_pingpong", [7, 8], 112)])
    assert [f.pattern for f in fs] == ["thundering_herd", "bottleneck", "chatty_pingpong"]
    assert [f.rank for f in fs] == [1, 2, 3]
    # under 90 % of it, or not naming its task: ranked by time as usual
    fs = rank([mk("bottleneck", [7], 1_000), mk("wait_cycle", [7, 8], 899), mk("wait_chain", [8, 9], 950)])
    assert [f.pattern for f in fs] == ["bottleneck", "wait_chain", "wait_cycle"]
    # a herd whose waker is the bottleneck comes first from half its time: its wakeups are the waker's
    # own running time (poll_herd on another VM: bottleneck 53 %, herd 45 %, the herd fixed saved 74 %)
    fs = rank([mk("bottleneck", [7], 1_000), mk("thundering_herd", [7, 8, 9], 500), mk("wait_chain", [8, 9], 950)])
    assert [f.pattern for f in fs] == ["wait_chain", "thundering_herd", "bottleneck"]
    # ... not under half of it (samples/herd.py: a herd of 2-5 % of a path its writer leads)
    fs = rank([mk("bottleneck", [7], 1_000), mk("thundering_herd", [7, 8, 9], 499)])
    assert [f.pattern for f in fs] == ["bottleneck", "thundering_herd"]
    # ... nor when the bottleneck is one of the herd's sleepers
    fs = rank([mk("bottleneck", [7], 1_000), mk("thundering_herd", [6, 7, 8], 800)])
    assert [f.pattern for f in fs] == ["bottleneck", "thundering_herd"]
    # the first such finding, not a later one
    fs = rank([mk("bottleneck", [7], 1_000), mk("wait_chain", [8, 9], 990), mk("wait_cycle", [7, 8], 950),
               mk("cross_cpu_wakeup", [7, 8], 920)])
    assert [f.pattern for f in fs] == ["wait_chain", "wait_cycle", "bottleneck", "cross_cpu_wakeup"]


def test_every_detector_has_words():
    assert set(DETECTORS) == set(ROWS) == set(SAYS)


def test_herd_without_writes_says_nothing_per_write():
    r = dict(ROWS["thundering_herd"], writes=0, woken_per_write=None, consumed_per_write=None)
    _, why, _ = DETECTORS["thundering_herd"].explain(r, FakeNames())
    assert "84 sleeps" in why and "per write" not in why and "writes" not in why


def test_herd_text_claims_only_what_was_seen():
    """"only one of them can take each message" was said of every herd, whatever the trace showed."""
    _, why, _ = DETECTORS["thundering_herd"].explain(ROWS["thundering_herd"], FakeNames())
    assert "only one" not in why.lower() and "can take" not in why


def test_full_buffer_on_a_socket_suggests_socket_buffers():
    r = dict(ROWS["full_buffer_stall"], rid="unix:9", kind="unix_stream", drainers=[])
    _, why, fix = DETECTORS["full_buffer_stall"].explain(r, FakeNames())
    assert "SO_SNDBUF, 262144" in fix and "F_SETPIPE_SZ" not in fix and "wmem_max" in fix


@pytest.mark.parametrize("burst, size", [(1, 4096), (4096, 4096), (4097, 8192), (20_000, 32768),
                                         (262_144, 262_144), (262_145, 524_288), (3e6, 4 << 20)])
def test_buffer_size_is_the_burst_rounded_up_to_a_power_of_two(burst, size):
    from ftraceipc.detect.words import buffer_size

    assert buffer_size(burst) == size


def test_pipe_advice_gives_the_size_and_says_when_it_passes_pipe_max_size():
    r = dict(ROWS["full_buffer_stall"], burst_bytes=262_144)
    fix = DETECTORS["full_buffer_stall"].explain(r, FakeNames())[2]
    assert "F_SETPIPE_SZ, 262144" in fix and "pipe-max-size" not in fix
    r = dict(ROWS["full_buffer_stall"], burst_bytes=3_000_000)
    fix = DETECTORS["full_buffer_stall"].explain(r, FakeNames())[2]
    assert "F_SETPIPE_SZ, 4194304" in fix and "above /proc/sys/fs/pipe-max-size" in fix


def test_a_cut_wait_chain_says_so():
    r = dict(ROWS["wait_chain"], cut=True, hops=8)
    title, why, fix = DETECTORS["wait_chain"].explain(r, FakeNames())
    assert "8+ hops" in title and "cut at 8 hops" in why and "beyond t1[1]" in fix


def test_finding_json_has_the_issue_keys_first_after_rank():
    f = Finding("wait_chain", [1, 2], ["pipe:1"], 3, 4, 5, "why.", "fix.", title="t", cypher="c",
                details={"hops": 1}, rank=1)
    d = f.to_json()
    assert list(d) == ["rank", "pattern", "tasks", "resources", "count", "critical_ns", "asleep_ns", "explanation",
                       "suggestion", "title", "cypher", "details"]
    assert (d["critical_ns"], d["asleep_ns"]) == (4, 5) and "lost_ns" not in d
    json.dumps(d)


def test_browser_cypher_sets_parameters_and_never_splices_them():
    text = browser_cypher("abc'def", [1, 2], ["pipe:1"])
    lines = text.splitlines()
    assert lines[:3] == [':param cid => "abc\'def"', ":param tids => [1, 2]", ':param rids => ["pipe:1"]']
    query = "\n".join(lines[3:])
    assert "abc" not in query and "pipe:1" not in query and "$tids" in query and "$rids" in query and "$cid" in query


def test_text_report_shows_at_most_top_per_pattern_and_counts_the_rest():
    import io

    from ftraceipc.report.findings import write_text

    fs = [Finding("wakeup_latency", [i], ["pipe:1"], 1, 100 - i, 200, "why.", "fix.", title=f"w{i}", rank=i)
          for i in range(1, 6)] + [Finding("wait_chain", [9, 8, 7], ["pipe:2", "pipe:3"], 2, 1, 5, "w.", "f.",
                                           title="chain", rank=6)]
    a = Analysis(capture="c", capture_id="id", backend="b", detectors=["x"], findings=fs, scope="s")
    out = io.StringIO()
    write_text(a, out, cypher=False, top=2)
    text = out.getvalue()
    assert [ln.split(":")[0] for ln in text.splitlines() if ln.startswith("#")] == [
        "#1 wakeup_latency", "#2 wakeup_latency", "#6 wait_chain"]
    assert "Not shown: 3 wakeup_latency" in text
    out = io.StringIO()
    write_text(a, out, cypher=False, top=0)
    assert out.getvalue().count("\n#") == 6 and "Not shown" not in out.getvalue()
    out = io.StringIO()
    write_text(Analysis("c", "id", "b", ["x"], [], "s"), out)
    assert "0 findings" in out.getvalue() and "No inefficient interaction found" in out.getvalue()


def test_text_report_says_on_the_critical_path_and_asleep_and_prints_no_total():
    import io

    from ftraceipc.report.findings import write_json, write_text

    fs = [Finding("bottleneck", [7], [], 9, 910_000_000, 210_000_000, "why.", "fix.", title="b", rank=1),
          Finding("full_buffer_stall", [5, 7], ["pipe:9"], 60, 0, 2_500_000_000, "w.", "f.", title="s", rank=2)]
    crit = CriticalPathInfo(root=3, root_label="sh[3]", start_ts=0, end_ts=10**9, wall_ns=10**9)
    a = Analysis("c", "id", "b", ["bottleneck"], fs, "s", critical=crit)
    out = io.StringIO()
    write_text(a, out, cypher=False)
    text = out.getvalue()
    assert "910.0 ms on the critical path (91 % of the wall time), 210.0 ms asleep" in text
    assert "0 ns on the critical path (0 % of the wall time), 2.50 s asleep" in text
    assert "critical path of sh[3]: 1.00 s of wall time" in text
    assert "lost" not in text.lower() and "add them up" not in text and "3.41 s" not in text  # no total
    js = io.StringIO()
    write_json(a, js)
    d = json.loads(js.getvalue())
    assert d["capture"]["critical_path"] == {"root": 3, "start_ts": 0, "end_ts": 10**9, "wall_ns": 10**9}
    assert [(f["critical_ns"], f["asleep_ns"]) for f in d["findings"]] == [(910_000_000, 210_000_000),
                                                                          (0, 2_500_000_000)]
    out = io.StringIO()
    write_text(Analysis("c", "id", "b", ["x"], fs, "s"), out, cypher=False)  # no path: asleep only
    assert "critical path: none" in out.getvalue() and "2.50 s asleep" in out.getvalue()


def test_cross_cpu_wakeup_names_the_wakeups_back_in_the_same_row():
    r = dict(ROWS["cross_cpu_wakeup"], cross_count=990, count=1_880, back_count=890, back_wakeups=1_000,
             back_percent=89)
    title, why, _ = DETECTORS["cross_cpu_wakeup"].explain(r, FakeNames())
    assert title == "t1[1] and t2[2] wake each other on other CPUs, and take turns"
    assert "990 of the 1,000 wakeups of t2[2] by t1[1]" in why
    assert "The other way, 890 of the 1,000 wakeups of t1[1] by t2[2] crossed CPUs too (89%)." in why
    title, why, _ = DETECTORS["cross_cpu_wakeup"].explain(dict(r, back_count=0), FakeNames())
    assert title == "t1[1] wakes t2[2] on another CPU, and the two take turns" and "other way" not in why


def test_chatty_pingpong_says_what_batching_divides():
    r = dict(ROWS["chatty_pingpong"], critical_ns=3_000_000, path_ns=5_000_000)
    _, why, _ = DETECTORS["chatty_pingpong"].explain(r, FakeNames())
    assert ("Their round trips take 5.0 ms of the critical path; 3.0 ms of it in syscalls and waiting for a CPU "
            "after each hand-off, which batching divides") in why
    assert "batching can save 3.0 ms or more, at most 5.0 ms." in why
    _, why, _ = DETECTORS["chatty_pingpong"].explain(dict(r, path_ns=3_000_000), FakeNames())
    assert "take 3.0 ms of the critical path, in syscalls and waiting for a CPU: what batching can save." in why


def test_chatty_pingpong_suggests_one_cpu_when_most_wakeups_cross():
    r = dict(ROWS["chatty_pingpong"])
    _, _, fix = DETECTORS["chatty_pingpong"].explain(dict(r, cross_ab=0, cross_ba=0), FakeNames())
    assert "taskset" not in fix
    wk = int(r["wakeups_ab"]) + int(r["wakeups_ba"])
    _, _, fix = DETECTORS["chatty_pingpong"].explain(dict(r, cross_ab=1990, cross_ba=1000), FakeNames())
    assert wk == 3985 and fix.startswith("Batch")
    assert "keep t1[1] and t2[2] on one CPU (taskset -c, sched_setaffinity): 75% of" in fix  # 2,990 of 3,985
    assert fix.endswith(".")
