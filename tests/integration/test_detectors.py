"""The pattern detectors (cypher/<pattern>.cypher, issue #4) on LadybugDB and on a real Neo4j 5.26,
against samples that plant each pattern and controls that do not.

Each sample is captured once per module (``ftraceipc capture``, system-wide), its model built and
loaded into a Ladybug database and into one Neo4j database that holds every sample's capture (so the
detectors' ``$capture_id`` scoping is exercised too). A capture holds every task that ran meanwhile,
so a detector is only judged on the rows that name one of the sample's own tasks (its truth's tids):
elsewhere on the machine something may well be chatty. Expected values come from the truth (roles,
rids) and, for the numbers, from the model's own tables (pandas), so each detector's arithmetic is
checked, not just that it runs. Every detector then gives the same rows on Neo4j as on Ladybug for
every sample capture and for the hand-built model (the hand tests run on both backends).

Default thresholds against what the samples show (3 runs each on a 2-CPU VM): full_buffer's writer
~63 sleeps in write (min_episodes 10), wake_then_block's mid 40-45 (min 5), fanin's writers 2-5
(a little contention on the shared pipe, below 10); herd's 4 waiters are woken 21 times each
(min_wakeups 5) while fanin's reader wakes its writers 1-3 times; socketpair_pingpong moves 2000
messages of 16 bytes each way (min 100, max 256 bytes).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from components import requires  # noqa: E402
from truth_check import capture_sample  # noqa: E402

from ftraceipc.detect import DETECTORS as REGISTRY  # noqa: E402
from ftraceipc.graph import query_path, read_query  # noqa: E402
from ftraceipc.model import ipc  # noqa: E402
from ftraceipc.model.build import build_model  # noqa: E402

needs_tracefs = requires("tracefs")

DETECTORS = list(REGISTRY)
COMMON = ["pattern", "tasks", "resources", "count", "critical_ns", "asleep_ns"]
WRITE_OPS = {"write", "writev", "sendto", "sendmsg"}
ORDERED = {"wait_chain", "wait_cycle"}  # their lists are in chain/cycle order; the others' are sets


class Neo:
    """The session's Neo4j as a detector runner for one capture at a time (``capture_id``)."""

    def __init__(self, graph):
        self.graph = graph
        self.loaded: set[str] = set()

    def load(self, model: ipc.Model) -> None:
        if model.capture_id not in self.loaded:
            self.graph.load(model)
            self.loaded.add(model.capture_id)

    def run_file(self, detector: str, capture_id: str, **params) -> pd.DataFrame:
        return self.graph.run_file(detector, capture_id=capture_id, **params)


@pytest.fixture(scope="module")
def neo(neo4j_server):
    from ftraceipc.graph.neo4j import Neo4jGraph

    with Neo4jGraph.connect(neo4j_server.uri, *neo4j_server.auth) as g:
        g.query("MATCH (n) DETACH DELETE n")
        yield Neo(g)


def _cell(v, ordered: bool):
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        xs = [_cell(x, True) for x in v]
        return tuple(xs) if ordered else tuple(sorted(xs, key=repr))
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, float):
        return round(v, 6)
    try:
        return int(v) if not isinstance(v, (str, bool)) and int(v) == v else v
    except (TypeError, ValueError):
        return v


def normal_rows(detector: str, df: pd.DataFrame) -> list[tuple]:
    """A detector's rows, comparable across backends (cells as plain values; lists sorted where
    their order means nothing), sorted."""
    cols = list(df.columns)
    rows = [tuple((c, _cell(v, detector in ORDERED)) for c, v in zip(cols, r)) for r in df.itertuples(index=False)]
    return sorted(rows, key=repr)


@dataclass
class Sample:
    name: str
    graph: object  # LadybugGraph
    model: ipc.Model
    truth: dict
    neo: Neo | None = None
    _rows: dict = field(default_factory=dict)

    @property
    def tids(self) -> set[int]:
        return {t["tid"] for t in self.truth["tasks"]}

    @property
    def roles(self) -> dict[str, int]:
        return {t["role"]: t["tid"] for t in self.truth["tasks"]}

    def detect(self, detector: str, **params) -> pd.DataFrame:
        """The detector's rows that name at least one of the sample's tasks (Ladybug)."""
        df = self.graph.run_file(detector, **params)
        assert list(df.columns) == _returned(read_query(detector).text), df.columns  # the header's columns
        assert (df["pattern"] == detector).all(), df
        keep = np.array([bool(self.tids & {int(t) for t in ts}) for ts in df["tasks"]], dtype=bool)
        return df[keep].reset_index(drop=True)  # a boolean mask: an empty list would select no columns


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """``sample(name, *args)``: that sample captured (once per module), modelled and loaded into Ladybug."""
    from ftraceipc.graph.ladybug import LadybugGraph

    done: dict[tuple, Sample] = {}

    def get(name: str, *args: str) -> Sample:
        key = (name, *args)
        if key not in done:
            tmp = tmp_path_factory.mktemp(name)
            cap, _meta, truth = capture_sample(tmp, name, list(args))
            model = build_model(cap)
            g = LadybugGraph.open(tmp / "graph.lbug")
            g.load(model)
            done[key] = Sample(name, g, model, truth)
        return done[key]

    yield get
    for s in done.values():
        s.graph.close()


def only_row(df: pd.DataFrame) -> pd.Series:
    assert len(df) == 1, df.to_string()
    return df.iloc[0]


def ints(xs) -> list[int]:
    return [int(x) for x in xs]


# headers --------------------------------------------------------------------------------------------------
def _header(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("//")]


def _returned(text: str) -> list[str]:
    """The column names a header's Returns section lists, in order."""
    lines = _header(text)
    i = next(i for i, ln in enumerate(lines) if ln.startswith("// Returns"))
    out = []
    for ln in lines[i + 1:]:
        body = ln[2:]
        if not body.strip():
            break
        if body.startswith("   ") and not body.startswith("    "):
            out += [c.strip() for c in body.strip().split("  ")[0].split(",")]
    return [c for c in out if c]


@pytest.mark.parametrize("detector", DETECTORS + ["back_pressure"])
@pytest.mark.parametrize("dialect", [None, "ladybug"])
def test_header_gives_a_default_for_every_parameter_and_the_common_columns(detector, dialect):
    from ftraceipc.graph import parameters_used

    q = read_query(detector, dialect)
    assert parameters_used(q.text) == set(q.defaults), q.defaults
    assert all(isinstance(v, int) for k, v in q.defaults.items() if k not in ("capture_id", "tids")), q.defaults
    assert q.defaults["capture_id"] == "" and q.defaults["tids"] == []
    cols = _returned(q.text)
    assert cols[:len(COMMON)] == COMMON, cols


@pytest.mark.parametrize("detector", [d for d in DETECTORS if query_path(d, "ladybug") != query_path(d)])
def test_a_dialect_variant_has_the_same_header_as_the_neo4j_text(detector):
    main, variant = read_query(detector), read_query(detector, "ladybug")
    assert main.defaults == variant.defaults
    strip = lambda t: [ln for ln in _header(t) if "Neo4j text" not in ln and "LadybugDB text" not in ln
                       and "text. Both give" not in ln and "Ladybug cannot" not in ln
                       and "in the first WITH" not in ln and "the Neo4j text" not in ln]
    assert _returned(main.text) == _returned(variant.text)
    assert strip(main.text)[:20] == strip(variant.text)[:20]


# hand-built model: one case per rule, edge cases no sample shows ---------------------------------------
# (waiter, waker, via, episodes, blocked_ns, max_ns, top, consumed, turns): the wait-for graph


def _w(waiter, waker, via, episodes, ns, top=True, consumed=None):
    """A WAITS_FOR row: a wait for data (every sleep consumed) unless told."""
    return (waiter, waker, via, episodes, ns, 1, top, episodes if consumed is None else consumed, 0)


WAIT_ROWS = [
    _w(20, 21, "pipe:31", 10, 5_000_000), _w(20, 24, "pipe:34", 50, 1_000_000, top=False),
    _w(21, 22, "pipe:32", 10, 4_000_000), _w(22, 23, "pipe:33", 10, 3_000_000),
    _w(30, 31, "pipe:41", 20, 2_000_000), _w(31, 32, "pipe:42", 20, 2_000_000), _w(32, 31, "pipe:42", 20, 1_500_000),
    _w(40, 41, "pipe:51", 100, 1_000_000), _w(41, 42, "pipe:52", 80, 900_000), _w(42, 40, "pipe:53", 90, 800_000),
    _w(43, 40, "pipe:54", 10, 9_000_000),
    _w(50, 51, "pipe:61", 10, 9_000_000),
    _w(60, 61, "pipe:71", 10, 2_000_000), _w(61, 62, "pipe:72", 3, 2_000_000),
] + [_w(t, t + 1, f"pipe:{t + 100}", 10, 1_500_000) for t in range(70, 79)] + [  # 70 -> ... -> 79
    _w(140, 141, "pipe:80", 10, 4_000_000), _w(141, 142, "pipe:81", 10, 3_000_000),
    _w(142, 143, "pipe:82", 20, 100_000),  # 142 waits on 143 3 % as long as 141 waits on it: it computes
    _w(150, 151, "pipe:83", 10, 4_000_000),
    _w(151, 152, "pipe:84", 10, 3_000_000, consumed=0),  # 151's main wait is for room: back-pressure, no link
]


class Hand:
    """A model built row by row (columns as in ipc)."""

    def __init__(self):
        self.res: dict[str, tuple[str, str | None]] = {}  # rid -> (kind, peer)
        self.capacity: dict[str, int] = {}  # rid -> F_SETPIPE_SZ seen
        self.io, self.blocked, self.wakes, self.flows, self.waits = [], [], [], [], []
        self.wake: dict[tuple[int, str], tuple[int, int]] = {}  # (tid, rid) -> WRITES wakes, wake_ns

    def pipe(self, *rids, capacity=None):
        for r in rids:
            self.res[r] = ("pipe", None)
            if capacity:
                self.capacity[r] = capacity

    def pair(self, a, b):
        self.res[a] = ("unix_stream", b)
        self.res[b] = ("unix_stream", a)

    def block(self, tid, rid, ops, read=(0, 0), write=(0, 0), other=(0, 0)):
        """read/write/other: (sleeps, ns) waiting for data, for room, for something else."""
        n = read[0] + write[0] + other[0]
        ns = read[1] + write[1] + other[1]
        self.blocked.append((tid, rid, n, ns, max(1, ns // max(1, n)), ops, *read, *write))

    def model(self, cid: str) -> ipc.Model:
        m = ipc.Model(capture=f"{cid}.ftipc", capture_id=cid, meta={})
        tids = sorted({t for row in self.blocked for t in row[:1]} | {t for row in self.wakes for t in row[:2]}
                      | {t for row in self.flows for t in row[:2]} | {t for row in self.waits for t in row[:2]}
                      | {row[0] for row in self.io})
        m.tasks = pd.DataFrame({"tid": np.array(tids, dtype=np.int64), "pid": tids, "comm": [f"t{t}" for t in tids],
                                "comms": [[f"t{t}"] for t in tids], "ppid": 0, "first_ts": 1, "last_ts": 2,
                                "tracer": False}, columns=ipc.TASK_COLUMNS)
        rids = sorted(self.res)
        m.resources = pd.DataFrame({"rid": rids, "kind": [self.res[r][0] for r in rids],
                                    "inode": [int(r.split(":")[1]) for r in rids], "path": None,
                                    "peer": [self.res[r][1] for r in rids], "evidence": [["pipe2"]] * len(rids),
                                    "capacity": [self.capacity.get(r) for r in rids]}, columns=ipc.RESOURCE_COLUMNS)
        m.io = pd.DataFrame([("WRITES", t, r, c, b, 1, 2, ["write"]) for t, r, c, b in self.io], columns=ipc.IO_COLUMNS)
        m.io["wakes"] = [self.wake.get((t, r), (0, 0))[0] for t, r, _c, _b in self.io]
        m.io["wake_ns"] = [self.wake.get((t, r), (0, 0))[1] for t, r, _c, _b in self.io]
        m.blocked = pd.DataFrame(self.blocked, columns=ipc.BLOCKED_COLUMNS)
        m.wakes = pd.DataFrame(self.wakes, columns=ipc.WAKES_COLUMNS)
        m.flows = pd.DataFrame(self.flows, columns=ipc.FLOW_COLUMNS)
        m.waits = pd.DataFrame(self.waits, columns=ipc.WAITS_COLUMNS)
        return m


def hand_model() -> ipc.Model:
    """Every rule's case, with its look-alikes that must not fire:

    - herd: 1's writes into pipe:10 end the poll sleeps of 2, 3, 4 (10, 10, 6; 3, 4, 1 of them then read
      data) and of 5 (twice); 90 reading unix:41 wakes 91, 92, 93 waiting for room on unix:40 (writers:
      no herd); 94's writes wake 95, 96, 97 on pipe:44, each reads its share every time (a barrier);
      98's wake 99, 100, 101 on pipe:46, none reads (a poll barrier: no herd either).
    - full buffer: 6 stalls 12 times on pipe:11 while its reader 7 waits on it for 6 50 times (1 MB
      written); 12 on its socket end unix:24 while 13 waits on the peer end unix:25; 10's reader 11 on
      pipe:13 waited only twice (back-pressure); 14 on pipe:15 has no reader seen (back-pressure); 120's
      reader 121 waits 300 times but 10 us each (hand-offs); 122's reader 123 waits 20 times, 3 % of
      122's stall time (back-pressure).
    - stage: 18 is fed through pipe:16 by 19 (9 of 10 sleeps ended with data read) and stalls on pipe:17,
      whose reader 130 waits on it; 110 is woken through unix:26 (for room: it never reads it) and
      stalls on unix:28, whose reader 112 waits on its end unix:29: a full buffer, no stage.
    - ping-pong: 8 <-> 9 over two socketpairs (parallel FLOWS and WAKES), plus wakeups of 9 by 8 through
      an unrelated pipe:12 (not counted); latency: 5 wakes 4 via pipe:12 20 times, 2 ms on average.
    - cross-CPU: 239 of 8's 309 wakeups of 9 cross, and 140 of the 150 sleeps of 9 that 8 ended were
      turns; 102 wakes 103 through pipe:45 290 of 300 times across CPUs, but only 10 of 290 were turns
      (a producer computing beside its consumer).
    - waits (``WAIT_ROWS``): a chain 20->21->22->23 (20's non-top wait on 24 not followed), a chain
      30->31->32 ending in the 2-cycle 31<->32, the 3-cycle 40->41->42->40 with 43 waiting on it, a
      1-hop chain 50->51, a chain 60->61->62 whose second hop has only 3 sleeps, and 70->...->79, 9 hops.
    """
    h = Hand()
    P, Q, R, S1, S2, S3, S4 = "pipe:10", "pipe:11", "pipe:12", "unix:20", "unix:21", "unix:22", "unix:23"
    h.pipe(P, Q, R, "pipe:13", "pipe:15", "pipe:16", "pipe:44", "pipe:45", "pipe:46")
    h.pipe("pipe:17", capacity=4096)  # shrunk with F_SETPIPE_SZ: the stage's batches (~9.6 KB) do not fit
    for a, b in ((S1, S2), (S3, S4), ("unix:24", "unix:25"), ("unix:26", "unix:27"), ("unix:28", "unix:29"),
                 ("unix:40", "unix:41")):
        h.pair(a, b)
    # herd, and its look-alikes
    h.io.append((1, P, 10, 10))
    h.wake[(1, P)] = (26, 2600)  # 100 ns per wakeup inside its writes
    for t, n, c, w2r in ((2, 10, 3, 100), (3, 10, 4, 300), (4, 6, 1, 50), (5, 2, 0, 1000)):
        h.block(t, P, ["poll"], read=(n, 1_000_000))
        h.waits.append((t, 1, P, n, 1_000_000, 1, True, c, 0))
        h.wakes.append((1, t, P, n, w2r, 1, 0))
    for t in (91, 92, 93):
        h.block(t, "unix:40", ["sendto"], write=(10, 500_000))
        h.waits.append((t, 90, "unix:40", 10, 500_000, 1, True, 0, 0))
        h.wakes.append((90, t, "unix:40", 10, 1000, 1, 0))
    for waker, rid, c in ((94, "pipe:44", 10), (98, "pipe:46", 0)):
        for t in (waker + 1, waker + 2, waker + 3):
            h.block(t, rid, ["read"], read=(10, 1_000_000))
            h.waits.append((t, waker, rid, 10, 1_000_000, 1, True, c, 0))
            h.wakes.append((waker, t, rid, 10, 1000, 1, 0))
        h.io.append((waker, rid, 10, 30))
    # full buffers and back-pressure: a reader's waits for the writer are its WAITS_FOR edge to it
    h.block(6, Q, ["write"], write=(12, 5_000_000))
    h.block(7, Q, ["read"], read=(50, 9_000_000))
    h.waits.append((7, 6, Q, 50, 9_000_000, 1, True, 50, 45))
    h.flows.append((6, 7, Q, Q, 1_000_000, 100))
    h.io.append((6, Q, 4, 1_000_000))  # 250,000 B per write call: larger than the 20,000 per wait of 7
    h.wakes += [(7, 6, Q, 12, 7000, 1000, 0), (6, 6, Q, 3, 7, 7, 0)]  # its own wakeups are no drain
    h.block(12, "unix:24", ["sendto"], write=(15, 3_000_000))
    h.block(13, "unix:25", ["recvfrom"], read=(8, 2_000_000))
    h.waits.append((13, 12, "unix:25", 8, 2_000_000, 1, True, 8, 8))
    h.flows.append((12, 13, "unix:24", "unix:25", 600_000, 60))
    h.io.append((12, "unix:24", 60, 1_200_000))
    h.block(10, "pipe:13", ["write"], write=(20, 4_000_000))
    h.block(11, "pipe:13", ["read"], read=(2, 50_000))
    h.waits.append((11, 10, "pipe:13", 2, 50_000, 1, True, 2, 2))
    # takes turns, but 10 us at a time (a hand-off: dd | cat); waits for 3 % of the stall time (gzip | seq)
    h.pipe("pipe:120", "pipe:122")
    h.block(120, "pipe:120", ["write"], write=(1000, 10_000_000))
    h.block(121, "pipe:120", ["read"], read=(300, 3_000_000))
    h.waits.append((121, 120, "pipe:120", 300, 3_000_000, 1, True, 300, 300))
    h.flows.append((120, 121, "pipe:120", "pipe:120", 10_000_000, 10))
    h.io.append((120, "pipe:120", 10, 10_000_000))
    h.block(122, "pipe:122", ["write"], write=(1000, 100_000_000))
    h.block(123, "pipe:122", ["read"], read=(20, 3_000_000))
    h.waits.append((123, 122, "pipe:122", 20, 3_000_000, 1, True, 20, 20))
    h.flows.append((122, 123, "pipe:122", "pipe:122", 10_000_000, 2500))
    h.io.append((122, "pipe:122", 2500, 10_000_000))
    # takes turns, long waits, but its 4 KiB writes, ~41 KB per wait of its reader, fit in the 64 KiB pipe
    # (it stalls when its reader gets no CPU: gzip -dc | wc)
    h.pipe("pipe:124")
    h.block(124, "pipe:124", ["write"], write=(20, 40_000_000))
    h.block(125, "pipe:124", ["read"], read=(240, 900_000_000))
    h.waits.append((125, 124, "pipe:124", 240, 900_000_000, 1, True, 240, 20))
    h.flows.append((124, 125, "pipe:124", "pipe:124", 10_000_000, 2441))
    h.io.append((124, "pipe:124", 2441, 10_000_000))
    h.flows.append((10, 11, "pipe:13", "pipe:13", 5_000_000, 80))
    h.block(14, "pipe:15", ["write"], write=(30, 6_000_000))
    # the stage, and the writer woken through what it writes
    h.waits.append((18, 19, "pipe:16", 10, 2_000_000, 1, True, 9, 0))
    h.block(18, "pipe:16", ["read"], read=(10, 2_000_000))
    h.flows.append((19, 18, "pipe:16", "pipe:16", 98_304, 12))
    h.block(18, "pipe:17", ["write"], write=(12, 3_000_000))
    h.block(130, "pipe:17", ["read"], read=(10, 2_000_000))
    h.waits.append((130, 18, "pipe:17", 10, 2_000_000, 1, True, 10, 8))
    h.flows.append((18, 130, "pipe:17", "pipe:17", 98_304, 96))
    h.io.append((18, "pipe:17", 96, 98_304))
    h.wakes.append((130, 18, "pipe:17", 12, 1000, 100, 0))
    h.waits.append((110, 111, "unix:26", 20, 2_000_000, 1, True, 0, 0))
    h.block(110, "unix:26", ["sendto"], write=(20, 2_000_000))
    h.block(110, "unix:28", ["sendto"], write=(12, 2_000_000))
    h.block(112, "unix:29", ["recvfrom"], read=(6, 1_500_000))
    h.waits.append((112, 110, "unix:29", 6, 1_500_000, 1, True, 6, 6))
    h.flows += [(110, 111, "unix:26", "unix:27", 10_000, 100), (110, 112, "unix:28", "unix:29", 120_000, 100)]
    h.io += [(110, "unix:26", 100, 10_000), (110, "unix:28", 100, 120_000)]  # 1,200 B per call, 20,000 per wait
    # ping-pong, latency, cross-CPU
    h.flows += [(8, 9, S1, S2, 3200, 200), (8, 9, S3, S4, 1600, 100), (9, 8, S2, S1, 4800, 300)]
    h.wakes += [(8, 9, S2, 150, 1000, 1, 140), (8, 9, S4, 60, 500, 1, 0), (8, 9, R, 99, 99999, 1, 99),
                (9, 8, S1, 120, 2000, 1, 0), (5, 4, R, 20, 40_000_000, 5_000_000, 0)]
    h.waits.append((9, 8, S2, 150, 3_000_000, 1, True, 150, 140))
    h.wakes.append((102, 103, "pipe:45", 300, 3000, 100, 290))
    h.waits.append((103, 102, "pipe:45", 290, 3_000_000, 1, True, 290, 10))
    # waits
    h.waits += WAIT_ROWS
    for row in WAIT_ROWS:
        h.pipe(row[2])
    return h.model("hand")


class HandRunner:
    """Runs detectors on the hand model in one backend (Neo4j: scoped to capture "hand")."""

    def __init__(self, backend: str, graph):
        self.backend, self.graph = backend, graph

    def run_file(self, detector: str, **params) -> pd.DataFrame:
        if self.backend == "neo4j":
            params.setdefault("capture_id", "hand")
        df = self.graph.run_file(detector, **params)
        assert list(df.columns) == _returned(read_query(detector).text), df.columns
        return df


@pytest.fixture(scope="module")
def hand_ladybug(tmp_path_factory):
    from ftraceipc.graph.ladybug import LadybugGraph

    with LadybugGraph.open(tmp_path_factory.mktemp("hand") / "graph.lbug") as g:
        g.load(hand_model())
        yield HandRunner("ladybug", g)


@pytest.fixture(scope="module")
def hand_neo4j(neo):
    neo.load(hand_model())
    return HandRunner("neo4j", neo.graph)


@pytest.fixture(params=["ladybug", "neo4j"])
def hand(request):
    return request.getfixturevalue(f"hand_{request.param}")


def by_first(df: pd.DataFrame) -> dict[int, pd.Series]:
    return {ints(r["tasks"])[0]: r for _, r in df.iterrows()}


def test_hand_thundering_herd_needs_readers_that_find_nothing(hand):
    """Only 1's pollers: the writers woken for room, the barrier whose tasks all read their share and
    the one where none reads are no herds."""
    row = only_row(hand.run_file("thundering_herd"))
    assert ints(row["tasks"])[0] == 1 and sorted(ints(row["wakees"])) == [2, 3, 4]  # 5: only 2 sleeps
    assert list(row["resources"]) == ["pipe:10"] and int(row["n_wakees"]) == 3
    assert int(row["count"]) == 26 and int(row["consumed"]) == 8 and int(row["wasted"]) == 18
    assert int(row["wakeups"]) == 26 and int(row["wake_to_run_ns"]) == 450
    assert int(row["asleep_ns"]) == 450 * 18 // 26
    assert int(row["writes"]) == 10 and float(row["woken_per_write"]) == pytest.approx(2.6)
    # the writes' time spent waking the 18 that found nothing; none on the path (the hand model has none)
    assert int(row["waking_ns"]) == 2600 * 18 // 26 and int(row["waking_crit_ns"]) == 0
    assert float(row["consumed_per_write"]) == pytest.approx(0.8)
    low = only_row(hand.run_file("thundering_herd", min_wakeups=2))
    assert sorted(ints(low["wakees"])) == [2, 3, 4, 5] and int(low["wasted"]) == 20
    assert hand.run_file("thundering_herd", min_wasted_percent=70).empty  # 18 of 26: 69 %
    assert hand.run_file("thundering_herd", min_wakees=4).empty


def test_hand_full_buffer_stall_needs_its_reader_to_wait_empty_too(hand):
    """6 on pipe:11 and 12 on its socket end (its reader waits on the peer end), 110 on unix:28; 10 (a
    reader that waited twice) and 14 (no reader seen) are back-pressure, in back_pressure.cypher; 18 is a
    stage, wake_then_block's."""
    df = hand.run_file("full_buffer_stall")
    rows = by_first(df)
    assert sorted(rows) == [6, 12, 110]
    r = rows[6]
    assert ints(r["tasks"]) == [6, 7] and list(r["resources"]) == ["pipe:11"] and r["kind"] == "pipe"
    assert int(r["count"]) == 12 and int(r["asleep_ns"]) == 5_000_000
    assert ints(r["readers"]) == [7] and int(r["reader_waits"]) == 50 and int(r["reader_wait_ns"]) == 9_000_000
    assert ints(r["drainers"]) == [7] and int(r["drain_wakeups"]) == 12  # not its own wakeups
    assert int(r["bytes"]) == 1_000_000 and int(r["writes"]) == 4 and int(r["burst_bytes"]) == 250_000
    assert int(rows[110]["burst_bytes"]) == 120_000 // 6 and int(rows[110]["writes"]) == 100  # per wait: larger
    s = rows[12]
    assert ints(s["tasks"]) == [12, 13] and list(s["resources"]) == ["unix:24"] and int(s["reader_waits"]) == 8
    assert int(s["burst_bytes"]) == 150_000 and list(s["drainers"]) == [] and int(s["drain_wakeups"]) == 0
    assert [ints(t)[0] for t in df["tasks"]] == [6, 12, 110]  # by time waiting for room
    assert sorted(ints(t)[0] for t in hand.run_file("full_buffer_stall", min_turns=8)["tasks"]) == [6, 12]
    assert sorted(ints(t)[0] for t in hand.run_file("full_buffer_stall", min_wait_percent=70)["tasks"]) == [6, 110]
    # 6's reader waits 180 us on average, but 6 itself stalls 417 us: one long side is enough
    assert sorted(ints(t)[0] for t in hand.run_file("full_buffer_stall", min_mean_wait_ns=400_000)["tasks"]) == [6]
    low = by_first(hand.run_file("full_buffer_stall", min_mean_wait_ns=10_000, min_wait_percent=3))
    assert sorted(low) == [6, 12, 110, 120, 122]  # the hand-offs and the 3 % ones too
    assert 124 in by_first(hand.run_file("full_buffer_stall", pipe_bytes=32768))  # in a 32 KiB pipe: bursts
    assert int(r["buffer_bytes"]) == 65536 and int(rows[12]["buffer_bytes"]) == 0  # a socket's: not traced
    assert sorted(ints(t)[0] for t in hand.run_file("full_buffer_stall", min_episodes=13)["tasks"]) == [12]
    assert 18 in by_first(hand.run_file("full_buffer_stall", min_fed=10))  # fed 9 times: no stage then


def test_hand_back_pressure_is_every_other_stall(hand):
    """The complement of full_buffer_stall and wake_then_block under the same parameters: each stall
    waiting for room is in exactly one of the three."""
    bp = by_first(hand.run_file("back_pressure"))
    assert sorted(bp) == [10, 14, 110, 120, 122, 124]  # 110 on unix:26: its reader never waits there
    assert (int(bp[124]["burst_bytes"]), int(bp[124]["buffer_bytes"])) == (10_000_000 // 240, 65536)
    assert ints(bp[10]["tasks"]) == [10, 11] and int(bp[10]["reader_waits"]) == 2 and int(bp[10]["count"]) == 20
    assert int(bp[10]["asleep_ns"]) == 4_000_000 and int(bp[10]["reader_wait_ns"]) == 50_000
    assert ints(bp[14]["tasks"]) == [14] and list(bp[14]["readers"]) == [] and int(bp[14]["bytes"]) == 0
    assert list(bp[110]["resources"]) == ["unix:26"]
    for params in ({}, {"min_turns": 8}, {"min_turns": 1, "min_wait_percent": 1, "min_mean_wait_ns": 1},
                   {"min_episodes": 13}, {"min_fed": 10}, {"pipe_bytes": 32768}):
        fb = {(int(r["writer"]), r["rid"]) for _, r in hand.run_file("full_buffer_stall", **params).iterrows()}
        wtb = {(int(r["tid"]), r["blocked_on"]) for _, r in hand.run_file("wake_then_block", **params).iterrows()}
        bp = {(int(r["writer"]), r["rid"]) for _, r in hand.run_file("back_pressure", **params).iterrows()}
        stalls = {(t, rid) for t, rid, *_, w, w_ns in hand_model().blocked.itertuples(index=False, name=None)
                  if w >= params.get("min_episodes", 10) and w_ns >= 1_000_000}
        assert not fb & bp and not fb & wtb and not wtb & bp and fb | wtb | bp == stalls, params


def test_hand_wake_then_block_is_a_stage_fed_through_what_it_reads(hand):
    row = only_row(hand.run_file("wake_then_block"))  # not 110: woken through unix:26, it never read it
    assert ints(row["tasks"]) == [18, 19, 130] and list(row["resources"]) == ["pipe:16", "pipe:17"]
    assert list(row["inputs"]) == ["pipe:16"] and row["blocked_on"] == "pipe:17" and row["kind"] == "pipe"
    assert int(row["count"]) == 12 and int(row["asleep_ns"]) == 3_000_000
    assert int(row["woken"]) == 10 and int(row["fed"]) == 9 and int(row["reader_waits"]) == 10
    assert int(row["reader_wait_ns"]) == 2_000_000 and ints(row["readers"]) == [130]
    assert ints(row["wakers"]) == [19] and ints(row["drainers"]) == [130]
    assert int(row["bytes"]) == 98_304 and int(row["writes"]) == 96 and int(row["burst_bytes"]) == 9830
    assert int(row["buffer_bytes"]) == 4096  # its capacity, seen in the trace
    # its stall is not full_buffer_stall's too: counted once
    assert "pipe:17" not in set(hand.run_file("full_buffer_stall")["rid"])
    assert hand.run_file("wake_then_block", min_fed=10).empty
    assert hand.run_file("wake_then_block", min_turns=11).empty  # B's reader waited 10 times


def _on_backend(request, tmp_path, model: ipc.Model):
    """(graph, capture_id) with ``model`` loaded in the backend of ``request.param``: Neo4j (scoped to
    the model's capture id) or a fresh embedded LadybugDB (every task: "")."""
    from ftraceipc.graph.ladybug import LadybugGraph

    if request.param == "neo4j":
        neo = request.getfixturevalue("neo")
        neo.load(model)
        yield neo.graph, model.capture_id
        return
    with LadybugGraph.open(tmp_path / "graph.lbug") as g:
        g.load(model)
        yield g, ""


def herd_on_path_model() -> ipc.Model:
    """300's writes into pipe:300 wake its pollers 301-303 (10 sleeps each, 10 of the 30 then read);
    inside its writes 3 ms went to the 30 wakeups. On the critical path (10 ms) it ran 6 ms, of which
    1.5 ms in syscalls, and waited 4 ms for a CPU."""
    from ftraceipc.model.critical import CRITICAL_TASK_COLUMNS, CriticalPath

    h = Hand()
    h.pipe("pipe:300")
    h.io.append((300, "pipe:300", 10, 10))
    h.wake[(300, "pipe:300")] = (30, 3_000_000)
    for t in (301, 302, 303):
        h.block(t, "pipe:300", ["poll"], read=(10, 1_000_000))
        h.waits.append((t, 300, "pipe:300", 10, 1_000_000, 1, True, 10 // 3 + (t == 301), 0))
        h.wakes.append((300, t, "pipe:300", 10, 1000, 1, 0))
    m = h.model("herdpath")
    m.critical = CriticalPath(root=300, start_ts=0, end_ts=10_000_000, tasks=pd.DataFrame(
        [(300, 10_000_000, 6_000_000, 4_000_000, 0, 1_500_000)], columns=CRITICAL_TASK_COLUMNS))
    return m


@pytest.fixture(params=["ladybug", "neo4j"])
def herd_on_path(request, tmp_path):
    yield from _on_backend(request, tmp_path, herd_on_path_model())


def test_a_herds_time_adds_the_wakers_time_waking_them_inside_its_writes_on_the_path(herd_on_path):
    """critical_ns: the wasted share (20 of 30) of the waker's wait for a CPU, plus the wasted share of
    its writes' waking time (3 ms: 2 ms), cut to its time in syscalls on the path (1.5 ms)."""
    g, cid = herd_on_path
    row = only_row(g.run_file("thundering_herd", capture_id=cid))
    assert int(row["consumed"]) == 10 and int(row["wasted"]) == 20
    assert int(row["waking_ns"]) == 2_000_000 and int(row["waking_crit_ns"]) == 1_500_000
    assert int(row["critical_ns"]) == 4_000_000 * 20 // 30 + 1_500_000


def bursty_reader_model() -> ipc.Model:
    """Readers that take a block, compute on it, then take the next (bench/workloads/relay.c's sink):
    they wait many times in small hand-offs while taking a block (4 KiB writes, ~41 KB per wait: both
    fit the 64 KiB pipe), and the writer stalls once per block, ~500 KB per stall. 200 -> pipe:200 -> 201
    and the stage 211 -> pipe:204 -> 210 -> pipe:206 -> 212 have readers computing on the critical
    path; 202 -> pipe:202 -> 203 the same counts with a reader starved of CPU (gzip -dc | wc)."""
    from ftraceipc.model.critical import CRITICAL_TASK_COLUMNS, CriticalPath

    h = Hand()
    h.pipe("pipe:200", "pipe:202", "pipe:204", "pipe:206")
    for w, rid, rd in ((200, "pipe:200", 201), (202, "pipe:202", 203), (210, "pipe:206", 212)):
        h.block(w, rid, ["write"], write=(20, 40_000_000))
        h.block(rd, rid, ["read"], read=(240, 9_000_000))
        h.waits.append((rd, w, rid, 240, 9_000_000, 1, True, 240, 20))
        h.flows.append((w, rd, rid, rid, 10_000_000, 2441))
        h.io.append((w, rid, 2441, 10_000_000))
    h.block(210, "pipe:204", ["read"], read=(50, 5_000_000))
    h.waits.append((210, 211, "pipe:204", 50, 5_000_000, 1, False, 50, 0))
    h.flows.append((211, 210, "pipe:204", "pipe:204", 10_000_000, 2441))
    m = h.model("bursty")
    crit = pd.DataFrame([(201, 950_000_000, 900_000_000, 50_000_000, 0, 0),
                         (203, 510_000_000, 10_000_000, 500_000_000, 0, 0),
                         (212, 950_000_000, 900_000_000, 50_000_000, 0, 0)], columns=CRITICAL_TASK_COLUMNS)
    m.critical = CriticalPath(root=200, start_ts=0, end_ts=2_000_000_000, tasks=crit)
    return m


@pytest.fixture(params=["ladybug", "neo4j"])
def bursty(request, tmp_path):
    yield from _on_backend(request, tmp_path, bursty_reader_model())


def test_a_reader_computing_between_blocks_makes_the_bursts_the_writers_stalls(bursty):
    """The burst of a computing reader is what it takes per turn (bytes per stall of the writer): the
    buffer limits, full_buffer_stall (200) and wake_then_block (the stage 210) say so with that size;
    the same counts with a reader waiting for a CPU instead are back-pressure (202)."""
    from ftraceipc.detect import words

    g, cid = bursty
    fb = only_row(g.run_file("full_buffer_stall", capture_id=cid))
    assert int(fb["writer"]) == 200 and fb["burst_from"] == "reader_turn"
    assert int(fb["burst_bytes"]) == 10_000_000 // 20 and int(fb["buffer_bytes"]) == 65536
    assert (int(fb["readers_running_ns"]), int(fb["readers_runnable_ns"])) == (900_000_000, 50_000_000)
    wtb = only_row(g.run_file("wake_then_block", capture_id=cid))
    assert int(wtb["tid"]) == 210 and wtb["blocked_on"] == "pipe:206" and list(wtb["inputs"]) == ["pipe:204"]
    assert wtb["burst_from"] == "reader_turn" and int(wtb["burst_bytes"]) == 500_000
    bp = by_first(g.run_file("back_pressure", capture_id=cid))
    assert sorted(bp) == [202] and bp[202]["burst_from"] == "reader_wait"
    assert int(bp[202]["burst_bytes"]) == 10_000_000 // 240  # fits: the reader ran rarely, not in blocks
    row = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in fb.items()}
    assert "Per turn t201 took ~488.3 KiB out of pipe:200" in words.reader_turns(row, "t201", "pipe:200")
    assert words.reader_turns({**row, "burst_from": "write"}, "t201", "pipe:200") == ""


def test_hand_chatty_pingpong_parallel_edges(hand):
    row = only_row(hand.run_file("chatty_pingpong"))
    assert ints(row["tasks"]) == [8, 9] and sorted(row["resources"]) == ["unix:20", "unix:21", "unix:22", "unix:23"]
    assert int(row["messages_ab"]) == 300 and int(row["messages_ba"]) == 300 and int(row["count"]) == 600
    assert float(row["bytes_per_message_ab"]) == 16.0 and float(row["bytes_per_message_ba"]) == 16.0
    assert int(row["wakeups_ab"]) == 210 and int(row["wakeups_ba"]) == 120  # not the pipe:12 wakeups
    assert int(row["asleep_ns"]) == 1500 + 2000
    assert hand.run_file("chatty_pingpong", max_bytes=15).empty
    assert hand.run_file("chatty_pingpong", min_wakeups=121).empty


def test_hand_wait_chain_follows_main_waits_to_the_end(hand):
    df = hand.run_file("wait_chain")
    got = [(ints(r["tasks"]), list(r["resources"]), int(r["count"]), int(r["asleep_ns"]), int(r["hops"]),
            bool(r["cut"])) for _, r in df.iterrows()]
    assert got == [([43, 40, 41, 42], ["pipe:54", "pipe:51", "pipe:52"], 10, 9_000_000, 3, False),  # into the cycle
                   ([20, 21, 22, 23], ["pipe:31", "pipe:32", "pipe:33"], 10, 5_000_000, 3, False),  # not via 24
                   ([140, 141, 142], ["pipe:80", "pipe:81"], 10, 4_000_000, 2, False),  # 142 mostly computes
                   ([30, 31, 32], ["pipe:41", "pipe:42"], 20, 2_000_000, 2, False),  # stops at the 2-cycle
                   ([130, 18, 19], ["pipe:17", "pipe:16"], 10, 2_000_000, 2, False),  # the stage's reader
                   (list(range(70, 79)), [f"pipe:{t}" for t in range(170, 178)], 10, 1_500_000, 8, True)]
    # 112 -> 110 -> 111 and 150 -> 151 -> 152 stop after one hop: 110's and 151's main waits are for room
    assert ints(df.iloc[1]["hop_ns"]) == [5_000_000, 4_000_000, 3_000_000]
    assert ints(df.iloc[1]["hop_episodes"]) == [10, 10, 10] and list(df.iloc[1]["comms"]) == ["t20", "t21", "t22", "t23"]
    # 50->51 is one hop; 61->62 has 3 sleeps: both below the defaults
    one_hop = hand.run_file("wait_chain", min_hops=1)
    assert [50, 51] in [ints(t) for t in one_hop["tasks"]]
    low = hand.run_file("wait_chain", min_episodes=3)
    assert [60, 61, 62] in [ints(t) for t in low["tasks"]]
    assert [140, 141, 142, 143] in [ints(t) for t in hand.run_file("wait_chain", min_hop_percent=3)["tasks"]]
    assert [150, 151, 152] in [ints(t) for t in hand.run_file("wait_chain", min_data_percent=0)["tasks"]]
    assert hand.run_file("wait_chain", min_ns=9_000_001).empty


def test_hand_wait_chain_longer_than_the_hop_limit_is_reported_cut(hand):
    row = only_row(hand.run_file("wait_chain", tids=[74]))  # 9 hops: the first 8, cut (the old rule dropped it)
    assert ints(row["tasks"]) == list(range(70, 79)) and int(row["hops"]) == 8 and bool(row["cut"])
    assert ints(row["hop_ns"]) == [1_500_000] * 8
    assert hand.run_file("wait_chain", tids=[79]).empty  # 79 is beyond the cut: not named
    # a chain that ends within the limit is not cut
    assert not any(bool(c) for c in hand.run_file("wait_chain", tids=[20])["cut"])


def test_hand_wait_cycle_takes_wall_time_not_a_sum(hand):
    row = only_row(hand.run_file("wait_cycle"))
    assert ints(row["tasks"]) == [40, 41, 42] and list(row["resources"]) == ["pipe:51", "pipe:52", "pipe:53"]
    assert int(row["count"]) == 80 and int(row["length"]) == 3
    assert int(row["asleep_ns"]) == 1_000_000  # the longest hop, not 2.7 ms: the waits overlap
    assert ints(row["hop_episodes"]) == [100, 80, 90] and ints(row["hop_ns"]) == [1_000_000, 900_000, 800_000]
    assert list(row["comms"]) == ["t40", "t41", "t42"]
    two = hand.run_file("wait_cycle", min_length=2)
    assert sorted(ints(t) for t in two["tasks"]) == [[31, 32], [40, 41, 42]]
    r2 = two[[ints(t) == [31, 32] for t in two["tasks"]]].iloc[0]
    assert int(r2["asleep_ns"]) == 2_000_000 and int(r2["count"]) == 20
    assert hand.run_file("wait_cycle", min_episodes=81).empty  # one hop below: no cycle
    assert hand.run_file("wait_cycle", min_ns=1_000_001).empty


def test_hand_cross_cpu_wakeup_only_for_pairs_that_take_turns(hand):
    row = only_row(hand.run_file("cross_cpu_wakeup"))  # not 102 -> 103: they compute side by side
    assert ints(row["tasks"]) == [8, 9] and sorted(row["resources"]) == ["pipe:12", "unix:21", "unix:23"]
    assert int(row["count"]) == 239 and int(row["wakeups"]) == 309 and int(row["percent"]) == 77
    assert int(row["cross_count"]) == 239 and int(row["back_count"]) == 0  # 9 -> 8: under 100 across
    assert int(row["asleep_ns"]) == (1000 + 500 + 99999) * 239 // 309
    assert int(row["sleeps"]) == 150 and int(row["turns"]) == 140
    assert hand.run_file("cross_cpu_wakeup", min_percent=78).empty
    assert hand.run_file("cross_cpu_wakeup", min_cross=240).empty
    assert hand.run_file("cross_cpu_wakeup", min_turn_percent=94).empty  # 140 of 150: 93 %
    low = hand.run_file("cross_cpu_wakeup", min_turn_percent=3)
    assert sorted(ints(t) for t in low["tasks"]) == [[8, 9], [102, 103]]


def test_hand_wakeup_latency_needs_a_long_mean(hand):
    row = only_row(hand.run_file("wakeup_latency"))
    assert ints(row["tasks"]) == [4, 5] and list(row["resources"]) == ["pipe:12"]
    assert int(row["count"]) == 20 and int(row["asleep_ns"]) == 40_000_000
    assert int(row["mean_ns"]) == 2_000_000 and int(row["max_ns"]) == 5_000_000
    assert hand.run_file("wakeup_latency", min_mean_ns=2_000_001).empty
    low = hand.run_file("wakeup_latency", min_mean_ns=1000, min_wakeups=1)  # + 9 via pipe:12 (1 us)
    assert [(ints(r["tasks"]), int(r["mean_ns"])) for _, r in low.iterrows()] == [([4, 5], 2_000_000), ([9, 8], 99999 // 99)]


def test_run_detectors_ranks_and_explains_every_hand_finding(hand):
    from ftraceipc.detect import run_detectors

    cid = "hand" if hand.backend == "neo4j" else ""
    found = run_detectors(hand.graph, capture_id=cid, browser_capture_id="hand")
    assert sorted(f.pattern for f in found) == sorted(
        ["thundering_herd", "full_buffer_stall", "full_buffer_stall", "full_buffer_stall",
         "wake_then_block", "chatty_pingpong", "wait_chain", "wait_chain", "wait_chain", "wait_chain",
         "wait_chain", "wait_chain",
         "wait_cycle", "cross_cpu_wakeup", "wakeup_latency"])
    assert [f.rank for f in found] == list(range(1, len(found) + 1))
    assert [f.asleep_ns for f in found] == sorted((f.asleep_ns for f in found), reverse=True)
    top = found[0]  # wakeup_latency: 40 ms
    assert (top.pattern, top.tasks, top.resources, top.count, top.asleep_ns) == (
        "wakeup_latency", [4, 5], ["pipe:12"], 20, 40_000_000)
    assert "t4[4]" in top.explanation and "2.0 ms on average" in top.explanation
    chain = next(f for f in found if f.pattern == "wait_chain" and f.tasks[0] == 43)
    assert chain.explanation.startswith("t43[43] -> t40[40] (via pipe:54)")
    assert ':param cid => "hand"' in chain.cypher and chain.details["hops"] == 3
    cut = next(f for f in found if f.pattern == "wait_chain" and f.tasks[0] == 70)
    assert "cut at 8 hops" in cut.explanation and "beyond t78[78]" in cut.suggestion
    fb = next(f for f in found if f.pattern == "full_buffer_stall" and f.tasks[0] == 6)
    assert "waited on it empty 50 times" in fb.explanation and "F_SETPIPE_SZ, 262144" in fb.suggestion
    sock = next(f for f in found if f.pattern == "full_buffer_stall" and f.tasks[0] == 12)
    assert "SO_SNDBUF, 262144" in sock.suggestion and "wmem_max" in sock.suggestion
    herd = next(f for f in found if f.pattern == "thundering_herd")
    assert "only one" not in herd.explanation and "2.6 of them" in herd.explanation and "0.8 then read" in herd.explanation
    assert "1.8 us of its time in them went to waking tasks that then found nothing" in herd.explanation
    stage = next(f for f in found if f.pattern == "wake_then_block")
    assert stage.asleep_ns == 3_000_000 and "is a stage" in stage.explanation and "F_SETPIPE_SZ, 16384" in stage.suggestion
    x = next(f for f in found if f.pattern == "cross_cpu_wakeup")
    assert ("after 140 of the 150 sleeps of t9[9] that t8[8] ended (150 with data read after), t8[8] went to "
            "sleep before t9[9] slept again") in x.explanation
    only = run_detectors(hand.graph, only=["wait_cycle"], capture_id=cid)
    assert [f.tasks for f in only] == [[40, 41, 42]]


def test_run_detectors_finds_the_same_one_query_at_a_time_as_two_at_once(hand):
    """Two queries at once run on two connections of the embedded graph (LadybugGraph.connections);
    the findings, their order and words are those of one at a time (Neo4j: one at a time always)."""
    from ftraceipc.detect import run_detectors

    cid = "hand" if hand.backend == "neo4j" else ""
    one = [f.to_json() for f in run_detectors(hand.graph, capture_id=cid, workers=1)]
    two = [f.to_json() for f in run_detectors(hand.graph, capture_id=cid, workers=2)]
    assert one and one == two



# scoping before the row limit --------------------------------------------------------------------------
CROWD = 60  # stalled writers elsewhere on the machine, each costlier than the command's own stall


def crowded_model() -> ipc.Model:
    """60 writers (tids 1000..1059) stalling on their own full pipes for 10..69 ms each, read by 2000..2059
    that wait on them empty too, and the traced command's writer 7 (its reader 8) stalling 2 ms on
    pipe:7: the cheapest full_buffer_stall of all."""
    h = Hand()
    crowd = list(range(1000, 1000 + CROWD))
    for i, w in enumerate([7] + crowd):
        rid, reader = f"pipe:{w}", (8 if w == 7 else w + 1000)
        h.pipe(rid)
        h.block(w, rid, ["write"], write=(20, 2_000_000 if w == 7 else 10_000_000 + 1_000_000 * (i - 1)))
        h.block(reader, rid, ["read"], read=(10, 10_000_000))
        h.waits.append((reader, w, rid, 10, 10_000_000, 1, True, 10, 10))
        h.flows.append((w, reader, rid, rid, 100_000, 100))
        h.io.append((w, rid, 1, 1_000_000))
        h.wakes.append((reader, w, rid, 20, 1000, 100, 0))
    return h.model("crowd")


@pytest.fixture(params=["ladybug", "neo4j"])
def crowded(request, tmp_path):
    yield from _on_backend(request, tmp_path, crowded_model())


def test_the_row_limit_counts_only_the_rows_in_scope(crowded):
    """With more stalls elsewhere than $limit, the command's own (the cheapest) still comes out: the
    scope ($tids) is applied inside the query, before LIMIT."""
    g, cid = crowded
    whole = g.run_file("full_buffer_stall", capture_id=cid, limit=CROWD)
    assert len(whole) == CROWD and 7 not in {int(t[0]) for t in whole["tasks"]}  # cut away without scope
    by_writer = g.run_file("full_buffer_stall", capture_id=cid, limit=5, tids=[7])
    assert [ints(t) for t in by_writer["tasks"]] == [[7, 8]] and int(by_writer["asleep_ns"].iloc[0]) == 2_000_000
    by_reader = g.run_file("full_buffer_stall", capture_id=cid, limit=5, tids=[8])  # any task of the row
    assert [ints(t) for t in by_reader["tasks"]] == [[7, 8]]
    assert len(g.run_file("full_buffer_stall", capture_id=cid, limit=5, tids=[])) == 5  # []: every task


def test_run_detectors_keeps_the_commands_finding_behind_a_crowd(crowded):
    from ftraceipc.detect import run_detectors

    g, cid = crowded
    params = {d: {"limit": 10} for d in REGISTRY}
    found = run_detectors(g, capture_id=cid, tids={7, 8}, params=params)
    assert [(f.pattern, f.tasks, f.asleep_ns, f.rank) for f in found] == [("full_buffer_stall", [7, 8], 2_000_000, 1)]
    assert len(run_detectors(g, capture_id=cid, params=params)) == 10  # the whole machine: the crowd's top 10


def test_every_detector_keeps_exactly_the_rows_naming_a_task_in_scope(hand):
    """$tids keeps a row when any of its tasks is in scope (the head, a drainer, a wakee...), on both
    backends and in both dialects; a tid nobody has gives no row."""
    low = {"wait_cycle": {"min_length": 2}, "wakeup_latency": {"min_mean_ns": 1000, "min_wakeups": 1}}
    for d in DETECTORS + ["back_pressure"]:
        every = [ints(ts) for ts in hand.run_file(d, **low.get(d, {}))["tasks"]]
        for ts in every:
            for tid in (ts[0], ts[-1]):
                got = [ints(x) for x in hand.run_file(d, tids=[tid], **low.get(d, {}))["tasks"]]
                assert got == [x for x in every if tid in x], (d, tid)
        assert hand.run_file(d, tids=[987654], **low.get(d, {})).empty, d


def test_long_task_lists_are_cut_in_the_text_and_complete_in_json(tmp_path):
    """One waker waking 700 pollers: the explanation and analyze's text name a few and count the rest;
    the finding's JSON keeps every tid."""
    import io

    from ftraceipc.detect import run_detectors
    from ftraceipc.graph.ladybug import LadybugGraph
    from ftraceipc.detect import Analysis
    from ftraceipc.report.findings import write_json, write_text

    n = 700
    m = ipc.Model(capture="herd700.ftipc", capture_id="herd700", meta={})
    tids = np.arange(1, n + 2, dtype=np.int64)
    m.tasks = pd.DataFrame({"tid": tids, "pid": tids, "comm": [f"w{t}" for t in tids],
                            "comms": [[f"w{t}"] for t in tids], "ppid": 0, "first_ts": 1, "last_ts": 2,
                            "tracer": False}, columns=ipc.TASK_COLUMNS)
    m.resources = pd.DataFrame({"rid": ["pipe:5"], "kind": ["pipe"], "inode": [5], "path": None, "peer": None,
                                "evidence": [["pipe2"]]}, columns=ipc.RESOURCE_COLUMNS)
    m.io = pd.DataFrame(columns=ipc.IO_COLUMNS)
    m.blocked = pd.DataFrame([(int(w), "pipe:5", 10, 10_000, 1000, ["poll"], 10, 10_000, 0, 0) for w in tids[1:]],
                             columns=ipc.BLOCKED_COLUMNS)
    m.wakes = pd.DataFrame([(1, int(w), "pipe:5", 10, 1000 + int(w), 2000, 0) for w in tids[1:]],
                           columns=ipc.WAKES_COLUMNS)
    m.flows = pd.DataFrame(columns=ipc.FLOW_COLUMNS)
    m.waits = pd.DataFrame([(int(w), 1, "pipe:5", 10, 10_000, 1000, True, 1, 0) for w in tids[1:]],
                           columns=ipc.WAITS_COLUMNS)
    with LadybugGraph.open(tmp_path / "graph.lbug") as g:
        g.load(m)
        found = run_detectors(g, only=["thundering_herd"])
    (f,) = found
    assert len(f.tasks) == n + 1 and len(f.details["wakees"]) == n
    assert f", …and {n - 6} more" in f.explanation and f.explanation.count("[") == 1 + 6  # waker + 6 wakees
    a = Analysis(capture="herd700.ftipc", capture_id="herd700", backend="embedded graph.lbug",
                 detectors=["thundering_herd"], findings=found, scope="every task of the capture")
    text, js = io.StringIO(), io.StringIO()
    write_text(a, text)
    write_json(a, js)
    assert f"…and {n + 1 - 12} more" in text.getvalue()
    listed = next(ln for ln in text.getvalue().splitlines() if "; tasks " in ln).split("; tasks ")[1].split("…")[0]
    assert len([x for x in listed.split(",") if x.strip()]) == 12  # the rest counted
    assert max(len(ln) for ln in text.getvalue().splitlines()) < 200
    import json

    doc = json.loads(js.getvalue())
    fj = (doc["findings"] if isinstance(doc, dict) else doc)[0]
    assert sorted(fj["tasks"]) == [int(x) for x in tids] and len(fj["details"]["wakees"]) == n

# full_buffer_stall and back_pressure -----------------------------------------------------------------------
def _reader_waits(s: Sample, readers, rids) -> tuple[int, int]:
    b = s.model.blocked
    rb = b[b["tid"].isin(list(readers)) & b["rid"].isin(list(rids))]
    return int(rb["read_episodes"].sum()), int(rb["read_ns"].sum())


@needs_tracefs
def test_full_buffer_stall_fires_on_the_bursty_writer_and_its_reader(sample):
    s = sample("full_buffer")
    w, r = s.roles["writer"], s.roles["reader"]
    pipe = s.truth["resources"][0]["rid"]
    row = only_row(s.detect("full_buffer_stall"))
    b = s.model.blocked[(s.model.blocked["tid"] == w) & (s.model.blocked["rid"] == pipe)].iloc[0]
    assert int(row["writer"]) == w and ints(row["tasks"]) == [w, r] and ints(row["readers"]) == [r]
    assert list(row["resources"]) == [pipe] and row["rid"] == pipe and row["kind"] == "pipe"
    assert int(row["count"]) == int(b["write_episodes"]) >= 10
    assert int(row["asleep_ns"]) == int(b["write_ns"]) > 0
    waits, wait_ns = _reader_waits(s, [r], [pipe])
    assert int(row["reader_waits"]) == waits and int(row["reader_wait_ns"]) == wait_ns
    # the reader waits on the empty pipe about once per burst: a burst is what was written per wait
    # (more often when the writer is preempted inside a burst: 107 waits for 40 bursts on a loaded VM)
    bursts = s.truth["args"]["bursts"]
    assert bursts // 2 <= waits <= 4 * bursts, waits
    assert row["burst_from"] in ("write", "reader_wait")  # the writer's bursts, not its reader's turns
    written = next(e["bytes"] for e in s.truth["io"] if e["tid"] == w and e["op"] == "write")
    # a burst: the larger of the bytes per write call and per reader wait (the reader may also wait
    # inside a burst on a busy machine, then the write calls say it)
    assert int(row["bytes"]) == written and int(row["writes"]) > 0
    assert int(row["burst_bytes"]) == max(written // int(row["writes"]), written // waits)
    assert ints(row["drainers"]) == [r] and int(row["drain_wakeups"]) > 0
    # its advice: a pipe that holds a burst (256 KiB)
    from ftraceipc.detect.words import buffer_size

    assert buffer_size(int(row["burst_bytes"])) == s.truth["args"]["burst"]
    assert s.detect("back_pressure").empty
    # the thresholds are parameters
    assert s.detect("full_buffer_stall", min_episodes=int(b["write_episodes"]) + 1).empty
    assert s.detect("full_buffer_stall", min_turns=waits + 1).empty


@needs_tracefs
def test_a_steady_writer_behind_a_slow_reader_is_back_pressure_not_a_full_buffer(sample):
    s = sample("full_buffer", "--steady")
    w, r = s.roles["writer"], s.roles["reader"]
    pipe = s.truth["resources"][0]["rid"]
    assert s.detect("full_buffer_stall").empty
    row = only_row(s.detect("back_pressure"))
    assert int(row["writer"]) == w and ints(row["readers"]) == [r] and list(row["resources"]) == [pipe]
    b = s.model.blocked[(s.model.blocked["tid"] == w) & (s.model.blocked["rid"] == pipe)].iloc[0]
    assert int(row["count"]) == int(b["write_episodes"]) >= 10 and int(row["asleep_ns"]) == int(b["write_ns"])
    assert (int(row["reader_waits"]), int(row["reader_wait_ns"])) == _reader_waits(s, [r], [pipe])


@needs_tracefs
@pytest.mark.parametrize("control", ["pipeline", "herd"])
def test_full_buffer_stall_is_silent_on(sample, control):
    df = sample(control).detect("full_buffer_stall")
    assert df.empty, df.to_string()


# thundering_herd -----------------------------------------------------------------------------------------
@needs_tracefs
def test_thundering_herd_fires_on_the_writer_and_its_pollers(sample):
    s = sample("herd")
    writer = s.roles["writer"]
    waiters = sorted(tid for role, tid in s.roles.items() if role.startswith("waiter-"))
    pipe = s.truth["resources"][0]["rid"]
    row = only_row(s.detect("thundering_herd"))
    assert int(row["waker"]) == writer and ints(row["tasks"])[0] == writer
    assert sorted(ints(row["tasks"])[1:]) == sorted(ints(row["wakees"])) == waiters
    assert list(row["resources"]) == [pipe] and row["rid"] == pipe and int(row["n_wakees"]) == len(waiters)
    wt = s.model.waits[(s.model.waits["waker"] == writer) & (s.model.waits["via"] == pipe)
                       & s.model.waits["waiter"].isin(waiters)]
    rounds = s.truth["args"]["rounds"]
    assert int(row["count"]) == int(wt["episodes"].sum()) >= 2 * rounds
    # one poller takes each byte: what they read is what was written, once per write
    got = sum(e["bytes"] for e in s.truth["io"] if e["tid"] in waiters)
    assert got == rounds and int(row["consumed"]) == int(wt["consumed"].sum())
    assert rounds // 2 <= int(row["consumed"]) <= rounds, int(row["consumed"])
    assert int(row["wasted"]) == int(row["count"]) - int(row["consumed"]) > int(row["consumed"])
    wk = s.model.wakes[(s.model.wakes["waker"] == writer) & (s.model.wakes["via"] == pipe)
                       & s.model.wakes["wakee"].isin(waiters)]
    assert int(row["wakeups"]) == int(wk["wakeups"].sum())
    assert int(row["wake_to_run_ns"]) == int(wk["wake_to_run_ns"].sum())
    assert int(row["asleep_ns"]) == int(row["wake_to_run_ns"]) * int(row["wasted"]) // int(row["count"])
    assert int(row["writes"]) == rounds and float(row["woken_per_write"]) >= 2
    assert float(row["consumed_per_write"]) <= 1
    assert s.detect("thundering_herd", min_wakees=len(waiters) + 1).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["pipeline", "full_buffer"])
def test_thundering_herd_is_silent_on(sample, control):
    df = sample(control).detect("thundering_herd")
    assert df.empty, df.to_string()


# wake_then_block -----------------------------------------------------------------------------------------
@needs_tracefs
def test_wake_then_block_fires_on_the_middle_stage(sample):
    s = sample("wake_then_block")
    gen, mid, reader = s.roles["gen"], s.roles["mid"], s.roles["reader"]
    a = next(e["rid"] for e in s.truth["io"] if e["tid"] == gen)
    b = next(e["rid"] for e in s.truth["io"] if e["tid"] == mid and e["op"] == "write")
    row = only_row(s.detect("wake_then_block"))
    assert int(row["tid"]) == mid and ints(row["tasks"]) == [mid, gen, reader]
    assert list(row["resources"]) == [a, b] and list(row["inputs"]) == [a] and row["blocked_on"] == b
    assert ints(row["wakers"]) == [gen] and ints(row["readers"]) == [reader] and ints(row["drainers"]) == [reader]
    bl = s.model.blocked[(s.model.blocked["tid"] == mid) & (s.model.blocked["rid"] == b)].iloc[0]
    assert int(row["count"]) == int(bl["write_episodes"]) >= 10
    assert int(row["asleep_ns"]) == int(bl["write_ns"]) > 0
    wt = s.model.waits[(s.model.waits["waiter"] == mid) & (s.model.waits["via"] == a)]
    assert int(row["woken"]) == int(wt["episodes"].sum()) and int(row["fed"]) == int(wt["consumed"].sum()) >= 5
    assert (int(row["reader_waits"]), int(row["reader_wait_ns"])) == _reader_waits(s, [reader], [b])
    # the stall is counted once: full_buffer_stall leaves the stage out
    assert b not in set(s.detect("full_buffer_stall")["rid"])
    assert s.detect("wake_then_block", min_fed=int(row["fed"]) + 1).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["pipeline", "full_buffer"])
def test_wake_then_block_is_silent_on(sample, control):
    # full_buffer's writer reads nothing: it is fed through no input
    df = sample(control).detect("wake_then_block")
    assert df.empty, df.to_string()


# chatty_pingpong -----------------------------------------------------------------------------------------
@needs_tracefs
def test_chatty_pingpong_fires_on_the_two_threads(sample):
    s = sample("socketpair_pingpong")
    ping, pong = s.roles["ping"], s.roles["pong"]
    ends = sorted(r["rid"] for r in s.truth["resources"])
    row = only_row(s.detect("chatty_pingpong"))
    assert sorted(ints(row["tasks"])) == sorted([ping, pong])
    a, b = int(row["a"]), int(row["b"])
    assert ints(row["tasks"]) == [a, b] and a < b
    assert sorted(row["resources"]) == ends
    sent = {e["tid"]: e["calls"] for e in s.truth["io"] if e["op"] in ("write", "send")}
    assert int(row["messages_ab"]) == sent[a] and int(row["messages_ba"]) == sent[b]
    assert int(row["count"]) == sent[a] + sent[b] == 2 * s.truth["args"]["rounds"]
    assert float(row["bytes_per_message_ab"]) == float(row["bytes_per_message_ba"]) == 16.0
    wk = s.model.wakes[s.model.wakes["via"].isin(ends)]
    ab = wk[(wk["waker"] == a) & (wk["wakee"] == b)]
    ba = wk[(wk["waker"] == b) & (wk["wakee"] == a)]
    assert int(row["wakeups_ab"]) == int(ab["wakeups"].sum()) > 0
    assert int(row["wakeups_ba"]) == int(ba["wakeups"].sum()) > 0
    assert int(row["asleep_ns"]) == int(ab["wake_to_run_ns"].sum()) + int(ba["wake_to_run_ns"].sum()) > 0
    assert s.detect("chatty_pingpong", max_bytes=15).empty
    assert s.detect("chatty_pingpong", min_messages=sent[a] + 1).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["pipeline", "fanin"])
def test_chatty_pingpong_is_silent_on(sample, control):
    df = sample(control).detect("chatty_pingpong")
    assert df.empty, df.to_string()


# wait_chain ----------------------------------------------------------------------------------------------
def _rid_between(s: Sample, writer: str, reader: str) -> str:
    """The resource the truth says ``writer`` wrote and ``reader`` read."""
    w = {e["rid"] for e in s.truth["io"] if e["tid"] == s.roles[writer] and e["op"] in ("write", "send")}
    r = {e["rid"] for e in s.truth["io"] if e["tid"] == s.roles[reader] and e["op"] in ("read", "recv")}
    (rid,) = w & r
    return rid


@needs_tracefs
def test_wait_chain_fires_on_the_relay_from_its_last_stage(sample):
    s = sample("relay")
    chain = s.truth["planted"]["chain"]  # waiter -> waker: D, C, B, A
    row = only_row(s.detect("wait_chain"))
    assert ints(row["tasks"]) == [s.roles[r] for r in chain]
    assert list(row["resources"]) == [_rid_between(s, b, a) for a, b in zip(chain, chain[1:])]
    assert int(row["hops"]) == len(chain) - 1
    w = s.model.waits
    hops = [w[(w["waiter"] == s.roles[a]) & (w["waker"] == s.roles[b])].iloc[0] for a, b in zip(chain, chain[1:])]
    assert all(bool(h["top"]) for h in hops)
    assert ints(row["hop_episodes"]) == [int(h["episodes"]) for h in hops]
    assert ints(row["hop_ns"]) == [int(h["blocked_ns"]) for h in hops]
    assert int(row["count"]) == int(hops[0]["episodes"]) >= s.truth["args"]["rounds"] // 2
    assert int(row["asleep_ns"]) == int(hops[0]["blocked_ns"]) > 0 and not bool(row["cut"])
    assert s.detect("wait_chain", min_hops=len(chain)).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["socketpair_pingpong", "fanin"])
def test_wait_chain_is_silent_on(sample, control):
    df = sample(control).detect("wait_chain")
    assert df.empty, df.to_string()


# wait_cycle ----------------------------------------------------------------------------------------------
@needs_tracefs
def test_wait_cycle_fires_on_the_ring(sample):
    s = sample("ring")
    cyc = [s.roles[r] for r in s.truth["planted"]["cycle"]]  # waiter -> waker
    i = cyc.index(min(cyc))
    cyc = cyc[i:] + cyc[:i]
    row = only_row(s.detect("wait_cycle"))
    assert ints(row["tasks"]) == cyc and int(row["length"]) == 3
    w = s.model.waits
    hops = [w[(w["waiter"] == a) & (w["waker"] == b)].iloc[0] for a, b in zip(cyc, cyc[1:] + cyc[:1])]
    assert list(row["resources"]) == [h["via"] for h in hops]
    assert int(row["count"]) == min(int(h["episodes"]) for h in hops) >= s.truth["args"]["laps"] // 2
    # wall time: the longest hop (the hops' waits overlap), never their sum
    assert ints(row["hop_ns"]) == [int(h["blocked_ns"]) for h in hops]
    assert int(row["asleep_ns"]) == max(int(h["blocked_ns"]) for h in hops) > 0
    assert int(row["asleep_ns"]) < sum(int(h["blocked_ns"]) for h in hops)
    assert s.detect("wait_cycle", min_length=4).empty


@needs_tracefs
@pytest.mark.parametrize("control", ["pipeline", "relay"])
def test_wait_cycle_is_silent_on(sample, control):
    df = sample(control).detect("wait_cycle")
    assert df.empty, df.to_string()


# cross_cpu_wakeup ----------------------------------------------------------------------------------------
@needs_tracefs
def test_cross_cpu_wakeup_fires_on_the_pinned_pair(sample):
    s = sample("xcpu")
    ping, pong = s.roles["ping"], s.roles["pong"]
    df = s.detect("cross_cpu_wakeup")
    # one row for the pair (pinning them together serves both ways), its waker the smaller tid
    assert [ints(t) for t in df["tasks"]] == [sorted([ping, pong])], df.to_string()
    wk = s.model.wakes[s.model.wakes["via"].notna()]
    for _, row in df.iterrows():
        e = wk[(wk["waker"] == int(row["waker"])) & (wk["wakee"] == int(row["wakee"]))]
        back = wk[(wk["waker"] == int(row["wakee"])) & (wk["wakee"] == int(row["waker"]))]
        assert int(row["cross_count"]) == int(e["cross_cpu"].sum()) and int(row["wakeups"]) == int(e["wakeups"].sum())
        assert int(row["back_count"]) == int(back["cross_cpu"].sum()) > 0
        assert int(row["back_wakeups"]) == int(back["wakeups"].sum())
        assert int(row["count"]) == int(row["cross_count"]) + int(row["back_count"])
        assert int(row["percent"]) >= 90 and int(row["back_percent"]) >= 90
        assert int(row["asleep_ns"]) == (int(e["wake_to_run_ns"].sum()) * int(row["cross_count"]) // int(row["wakeups"])
                                         + int(back["wake_to_run_ns"].sum()) * int(row["back_count"])
                                         // int(row["back_wakeups"]))
        assert set(row["resources"]) <= {r["rid"] for r in s.truth["resources"]}
        # they take turns: each waits for the other's answer
        wt = s.model.waits[(s.model.waits["waiter"] == int(row["wakee"])) & (s.model.waits["waker"] == int(row["waker"]))]
        assert int(row["sleeps"]) == int(wt["episodes"].sum()) and int(row["turns"]) == int(wt["turns"].sum())
        assert int(row["consumed"]) == int(wt["consumed"].sum())
        # turns are counted against the hand-offs (the sleeps that ended with data read; all sleeps
        # when none did): a socketpair end is also woken for nothing when its peer reads
        handoffs = int(row["consumed"]) or int(row["sleeps"])
        assert int(row["turns"]) * 100 >= 80 * handoffs


@needs_tracefs
@pytest.mark.parametrize("control", [("--same-cpu",), ("--parallel",)], ids=["same-cpu", "parallel"])
def test_cross_cpu_wakeup_is_silent_on(sample, control):
    """One CPU: nothing crosses. Side by side: the wakeups cross, but the two compute at the same time
    (the producer runs on while the consumer works): pinning them together would serialise them."""
    s = sample("xcpu", *control)
    df = s.detect("cross_cpu_wakeup")
    assert df.empty, df.to_string()
    if control[0] == "--parallel":
        ping, pong = s.roles["ping"], s.roles["pong"]
        wk = s.model.wakes[(s.model.wakes["waker"] == ping) & (s.model.wakes["wakee"] == pong)]
        assert int(wk["cross_cpu"].sum()) >= 100  # the old rule fired on this pair


# wakeup_latency ------------------------------------------------------------------------------------------
@needs_tracefs
def test_wakeup_latency_fires_on_the_wakee_behind_the_hog(sample):
    s = sample("late_wakeup")
    wakee, waker = s.roles["wakee"], s.roles["waker"]
    pipe = _rid_between(s, "waker", "wakee")
    # the waker never waits for the wakee: its late runs are off the command's critical path, under the
    # default 10 % share (that is for the command's wall time; a latency finding needs the threshold off)
    assert s.detect("wakeup_latency").empty
    row = only_row(s.detect("wakeup_latency", min_critical_percent=0))
    assert ints(row["tasks"]) == [wakee, waker] and list(row["resources"]) == [pipe]
    e = s.model.wakes[(s.model.wakes["wakee"] == wakee) & (s.model.wakes["via"] == pipe)
                      & (s.model.wakes["waker"] != wakee)]
    assert int(row["count"]) == int(e["wakeups"].sum()) >= 10
    assert int(row["asleep_ns"]) == int(e["wake_to_run_ns"].sum())
    assert int(row["mean_ns"]) == int(row["asleep_ns"]) // int(row["count"]) >= 500_000
    assert int(row["max_ns"]) == int(e["max_wake_to_run_ns"].max())


@needs_tracefs
def test_wakeup_latency_is_silent_without_the_hog(sample):
    df = sample("late_wakeup", "--no-hog").detect("wakeup_latency")
    assert df.empty, df.to_string()


# both backends -------------------------------------------------------------------------------------------
SAMPLE_RUNS = [("full_buffer",), ("full_buffer", "--steady"), ("herd",), ("wake_then_block",),
               ("socketpair_pingpong",), ("pipeline",), ("fanin",), ("relay",), ("ring",), ("xcpu",),
               ("xcpu", "--same-cpu"), ("xcpu", "--parallel"), ("late_wakeup",),
               ("late_wakeup", "--no-hog")]


@needs_tracefs
@pytest.mark.parametrize("run", SAMPLE_RUNS, ids=lambda r: "-".join(a.lstrip("-") for a in r))
def test_every_detector_gives_the_same_rows_on_neo4j(sample, neo, run):
    """The whole capture's rows (not only the sample's), Neo4j scoped to the capture by $capture_id
    while the database holds the other samples' captures too."""
    s = sample(*run)
    neo.load(s.model)
    fired = 0
    for d in DETECTORS + ["back_pressure"]:
        a = normal_rows(d, s.graph.run_file(d))
        b = normal_rows(d, neo.run_file(d, s.model.capture_id))
        assert a == b, d
        fired += len(a)
    if "planted" in s.truth:
        assert fired, "the planted pattern did not fire"
