"""``ftraceipc live``: the analysis of a capture while it is recorded.

The capture runs as ``ftraceipc capture`` runs it (the same directory, the same raw pages), with
its readers flushing each CPU's partly filled page every half interval and publishing how far each
CPU's file is whole (``capture.reader.Watermarks``). One more process, forked by the capture with
its readers (:class:`LiveFollower`), follows the files (``Decoder.follow``) and feeds the batches to
a ``ModelBuilder`` - the builder of ``build_model``, the one code path of the model. Every interval
it forks a copy of itself that finishes the model so far and runs the analysis pipeline on it
(``detect.pipeline.analyze``: the graph, the detectors, the scope, the critical path - the
post-mortem code), while the original goes on feeding; a copy still busy at the next interval is
waited for (the status says how far the analysis lags). When the capture ends, the rest of the
pages are fed and the last model is analysed in the follower itself: its findings are the end
line's, those of ``ftraceipc analyze`` of the capture.

Output: JSON lines (:class:`Emitter`), to standard output or to the terminal view (``live.tui``).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ftraceipc.capture.reader import ForkedWorker, Watermarks, set_comm
from ftraceipc.capture.store import CaptureDir
from ftraceipc.detect.finding import Analysis, Finding

LIVE_COMM = "ftipc-live"
SPARE_COMM = "ftipc-spare"  # the spare analysis process until it takes over (Analyzer, spare=True)
# a finding is emitted again (``"update": true``) when its count, critical_ns or asleep_ns moved by at
# least this share since it was last emitted
MATERIAL = 0.25
# how much of each CPU's file is read and decoded at once: what the follower holds beyond the model
READ_BYTES = 4 << 20
# The model takes what the readers have completed twice an interval (when they flush their partly
# filled pages), and at once before each snapshot, which then holds the data up to a moment ago.
# Fed once an interval, right after forking the snapshot, the model (and each analysis) was an
# interval old, and the first interval went unread (socketpair_pingpong: the first feed 1.27 s after
# the follower was ready). Not more often, when this was chosen: a feed cost 70-100 ms whatever its
# size (pandas's cost per call, measured post-mortem on samples/seqpacket.py: 172 batches of 12 k
# events took 18.7 s, 11 of 190 k events 2.4-3.0 s), so five feeds a second cost a third to a half
# of a CPU. Since the model's per-batch work is numpy (06ac458) a batch of 23 k events takes 17-19 ms
# (BENCHMARKS 8.2); more feeds an interval were not measured again.
FEEDS_PER_INTERVAL = 2
# --budget judges its cost first this far into the first interval (of it): the capture starts with
# every event, and a workload over the budget was traced in full until the first status line (on
# pgbench -S, 0.49-0.54 M events more than the events it never turns off: about that first second)
FIRST_JUDGE = 0.25


@dataclass
class LiveOptions:
    interval: float = 1.0  # seconds between analyses (and status lines)
    # seconds of critical path each interval's analysis walks (the end's walks the whole run): what
    # the follower holds for the path, and the path's part of an analysis's time, stay bounded
    window: float = 10.0
    detectors: list[str] | None = None  # None: those of the capture (-D), else every detector
    all_tasks: bool = False
    min_share: float | None = None  # as analyze's
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    # a Neo4j server that mirrors the model each interval (the capture id and schema of ``load``)
    neo4j_uri: str | None = None
    neo4j_user: str | None = None
    neo4j_password: str | None = None
    budget: float | None = None  # --budget PERCENT (live.budget)
    instance: str | None = None  # the capture's tracing instance (set by LiveFollower.start)


def _cpu_s(pid: int | None) -> float:
    """CPU seconds of a live process of ours (0 when it is gone or None: then its parent counts them)."""
    if pid is None:
        return 0.0
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


class CpuSeen:
    """CPU seconds of processes of ours that are not our children, each as last seen: one that
    exits keeps counting what it used (read from /proc, its time would go to its own parent and out
    of the sum: a cost estimate that went down, even below zero, for the interval it exited in)."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}

    def total(self, pids: list[int]) -> float:
        for p in pids:
            self.seen[p] = max(self.seen.get(p, 0.0), _cpu_s(p))
        return sum(self.seen.values())


def finding_of(d: dict[str, Any]) -> Finding:
    """A finding back from its JSON (``Finding.to_json``)."""
    return Finding(**{k: d[k] for k in Finding.KEYS if k in d})


def finding_id(f: Finding | dict) -> str:
    """A finding's identity across intervals: its pattern, the set of its tasks and that of its
    resources (a bottleneck lists the tasks it stalls by their share, which moves from one analysis
    to the next and differs between two finishes of the same run where shares tie)."""
    d = f if isinstance(f, dict) else {"pattern": f.pattern, "tasks": f.tasks, "resources": f.resources}
    tasks = ",".join(map(str, sorted(int(t) for t in d.get("tasks") or [])))
    return f"{d.get('pattern')}:{tasks}:{','.join(sorted(d.get('resources') or []))}"


def _moved(a: Finding, b: Finding) -> bool:
    for x, y in ((a.count, b.count), (a.critical_ns, b.critical_ns), (a.asleep_ns, b.asleep_ns)):
        if abs(x - y) > MATERIAL * max(abs(x), abs(y), 1):
            return True
    return False


class Emitter:
    """Writes the JSON lines to one fd (whole lines: a reader never sees half of one)."""

    def __init__(self, fd: int):
        self.fd = fd

    def __call__(self, obj: dict[str, Any]) -> None:
        data = (json.dumps(obj, default=str) + "\n").encode()
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except InterruptedError:
                continue
            except BrokenPipeError:
                return  # the reader went away (| head): the capture goes on
            view = view[n:]


class TraceNow:
    """The trace clock's "now" in this process: CLOCK_MONOTONIC plus an offset read once from the
    instance's stats file (``now``: a function returning the trace clock, read in the capture)."""

    def __init__(self, now: Callable[[], int | None] | None):
        self.offset = 0
        if now is not None:
            a = time.monotonic_ns()
            t = now()
            b = time.monotonic_ns()
            if t is not None:
                self.offset = t - (a + b) // 2

    def __call__(self) -> int:
        return time.monotonic_ns() + self.offset


class LiveFollower:
    """The capture's follower (``Capture(follower=...)``): ``start`` forks the analysis process;
    ``finish`` (after ``Capture.run``) lets it analyse the end and waits for it."""

    def __init__(self, opts: LiveOptions, out_fd: int = 1, on_started: Callable[[], None] | None = None):
        """``out_fd``: where the JSON lines go; ``on_started``: called once the process is forked
        (the TUI starts its drawing thread there: every process of the capture is forked by then)."""
        self.opts = opts
        self.out_fd = out_fd
        self.on_started = on_started
        self.worker: ForkedWorker | None = None

    def start(self, cap: CaptureDir, marks: Watermarks | None, now: Callable[[], int | None] | None = None,
              instance: str | os.PathLike | None = None) -> int:
        clock = TraceNow(now)
        if instance is not None:
            self.opts.instance = str(instance)
        opts, out_fd = self.opts, self.out_fd
        w = ForkedWorker(lambda: LiveAnalysis(cap.root, marks, opts, Emitter(out_fd), clock))
        w.label = "live analysis"
        w.comm = LIVE_COMM
        w.keep_fds = {out_fd}
        w.start()
        self.worker = w
        if self.on_started is not None:
            self.on_started()
        return w.pid

    def finish(self, timeout: float | None = None) -> BaseException | None:
        """Let the follower read the end of the capture, analyse it and leave; its error, if any."""
        w = self.worker
        if w is None:
            return None
        try:
            w.stop()
            w.join(timeout)
            return w.error if not w.is_alive() else TimeoutError("the live analysis did not finish")
        finally:
            w.close()

    @property
    def result(self) -> dict:
        return self.worker.result if self.worker is not None else {}


def _idle_priority() -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):
        pass


def _normal_priority(pid: int) -> None:
    """Every thread of ``pid`` back to SCHED_OTHER (a thread keeps the policy it was started with)."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return
    for tid in tids:
        try:
            if os.sched_getscheduler(tid) == os.SCHED_IDLE:
                os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
        except (OSError, AttributeError):
            pass


def _rss_kib() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class _Database:
    """The analysis process's embedded graph (``live-K.lbug`` in the work directory: a process
    started again opens the next K and the file before it is removed; the spare's ``spare-K.lbug``)."""

    def __init__(self, tmp: Path, k: int = 0, stem: str = "live"):
        self.tmp = tmp
        self.k = k
        self.stem = stem
        self.g = None

    @property
    def path(self) -> Path:
        return self.tmp / f"{self.stem}-{self.k}.lbug"

    def graph(self):
        from ftraceipc.graph.ladybug import LadybugGraph

        if self.g is None:
            self.g = LadybugGraph.open(self.path)
        return self.g

    def close(self) -> None:
        if self.g is not None:
            self.g.close()
            self.g = None
        for f in self.tmp.glob(f"{self.stem}-{self.k}.lbug*"):
            if f.is_dir():
                shutil.rmtree(f, ignore_errors=True)
            else:
                f.unlink(missing_ok=True)


class Analyzer:
    """The analysis process of a live run, forked by the follower when it starts: it keeps one
    embedded graph open and, for each model the follower hands it (a pickle in the work
    directory), loads it and runs ``detect.pipeline.analyze`` on it (the prepared queries stay
    prepared: an analysis costs half what a fresh database costs), writing the result beside it.
    Its graph holds no critical-path segments (no detector reads them; they were half of each load
    of a ping-pong's model: 285 k PathSegment nodes and ON_PATH edges, 0.5 s of 0.8).

    ``spare``: a second one, forked with the first, that warms up (its graph open, the detectors run
    once) only when a CPU is idle (SCHED_IDLE) and then waits. When the capture ends while an
    analysis is in flight, that analysis is of a model the end's replaces: its process is killed and
    the spare analyses the end at once, where a new process had to warm up first (0.2-0.9 s more
    before the end line, measured on samples/pipeline.py)."""

    def __init__(self, tmp: Path, opts: LiveOptions, spare: bool = False):
        self.tmp = tmp
        self.opts = opts
        self.spare = spare
        self.pid: int | None = None
        self._req = self._res = -1
        self._neo_state = None  # what the last write to Neo4j wrote (Neo4jGraph.sync)

    def start(self) -> None:
        req_r, req_w = os.pipe2(os.O_CLOEXEC)
        res_r, res_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(req_w)
                os.close(res_r)
                set_comm(SPARE_COMM if self.spare else LIVE_COMM)
                self._serve(req_r, res_w)
                code = 0
            finally:
                os._exit(code)
        os.close(req_r)
        os.close(res_w)
        self.pid, self._req, self._res = pid, req_w, res_r

    @property
    def fd(self) -> int:
        """Readable when an analysis is done."""
        return self._res

    def submit(self, n: int) -> None:
        os.write(self._req, f"{n}\n".encode())

    def done(self) -> list[int]:
        """The numbers of the analyses finished since the last call (reads what is there)."""
        data = os.read(self._res, 4096)
        if not data:
            raise OSError("the live analysis process ended")
        return [int(x) for x in data.split()]

    def kill(self) -> None:
        """Stop it now (an analysis in flight is lost), then ``close``."""
        import signal

        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        self.close()

    def take_over(self) -> None:
        """The spare becomes the analysis process: every thread of it back to normal priority (its
        database's worker threads, started while it was SCHED_IDLE, kept that policy)."""
        if self.pid is not None:
            _normal_priority(self.pid)
        self.spare = False

    def close(self) -> None:
        if self._req >= 0:
            os.close(self._req)  # EOF: it leaves
            self._req = -1
        if self.pid is not None:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = None
        if self._res >= 0:
            os.close(self._res)
            self._res = -1

    # LadybugDB keeps memory of every schema it drops (each load replaces the schema: ~100 MiB per
    # load of a 2 M-event model, 3.5 -> 9.8 GiB in 3 minutes of a live run), and closing the database
    # gives back only part of it (a new database in the same process grew 1.0 -> 1.6 GiB (peak) in 10
    # minutes). So once the process holds GROWTH times what it held after its first analysis, it
    # execs itself again (same pid, same pipes, a new address space: ~1 s once), with the next
    # database file and the requests it had read but not served.
    GROWTH = 1.25

    def _serve(self, req: int, res: int, k: int = 0, pending: bytes = b"", restarts: int = 0) -> None:
        import pickle

        from ftraceipc.detect.pipeline import Backend, analyze

        o = self.opts
        stem = "spare" if self.spare else "live"
        db = _Database(self.tmp, k, stem)
        if k:
            _Database(self.tmp, k - 1, stem).close()  # the file of the process before
        neo = None
        if o.neo4j_uri:
            from ftraceipc.graph.neo4j import Neo4jGraph

            neo = Neo4jGraph.connect(o.neo4j_uri, o.neo4j_user, o.neo4j_password)
            state = self.tmp / "analyzer-neo4j-state.pkl"
            if state.exists():
                self._neo_state = pickle.loads(state.read_bytes())
                state.unlink()
        buf = pending
        base = 0
        if not k and not buf:  # a process started again (k > 0) has its first model soon
            if self.spare:
                _idle_priority()
            self._warm_up(db, req)
            if self.spare:
                _normal_priority(os.getpid())
        try:
            while True:
                if b"\n" not in buf:
                    data = os.read(req, 4096)
                    if not data:
                        return
                    buf += data
                ln, buf = buf.split(b"\n", 1)
                n = int(ln)
                if self.spare:  # taken over
                    self.spare = False
                    set_comm(LIVE_COMM)
                src = self.tmp / f"model-{n}.pkl"
                out = self.tmp / f"result-{n}.json"
                try:
                    t_read = time.perf_counter()
                    d = pickle.loads(src.read_bytes())
                    src.unlink()
                    t0 = time.perf_counter()
                    # the detectors one at a time while the workload runs (two at once take more of
                    # its CPUs at once; the process's peak RSS grew 20 % from minute 2 to 10 of
                    # bench_live's memory run with them), two at once for the end's
                    a = analyze(d["model"], backend=Backend(path=db.path), detectors=o.detectors,
                                all_tasks=o.all_tasks, params=o.params or None, min_share=o.min_share,
                                graph=db.graph(), workers=None if d.get("end") else 1, path_segments=False)
                    t1 = time.perf_counter()
                    v = view(d["model"], a, d["asleep"], o.all_tasks)
                    timing = {**d["timing"], "read_s": round(t0 - t_read, 3), "analyze_s": round(t1 - t0, 3),
                              "detectors_s": round(a.seconds, 3), "view_s": round(time.perf_counter() - t1, 3),
                              "analysis_restarts": restarts}
                    text = json.dumps({"bound": d["bound"], "analysis": a.to_json(), "timing": timing, "view": v,
                                       "end": d.get("end", False)}, default=str)
                except Exception as e:  # noqa: BLE001 - reported by the follower, the run goes on
                    d = None
                    text = json.dumps({"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc(limit=8)})
                tmp = out.with_suffix(".tmp")
                tmp.write_text(text)
                os.replace(tmp, out)
                os.write(res, f"{n}\n".encode())
                if neo is not None and d is not None:
                    self._mirror(neo, d["model"], n, res)
                d = None
                rss = _rss_kib()
                if not base:
                    base = rss
                elif rss > self.GROWTH * base:
                    db.close()
                    db = None
                    if neo is not None:
                        neo.close()
                        neo = None
                        if self._neo_state is not None:
                            (self.tmp / "analyzer-neo4j-state.pkl").write_bytes(pickle.dumps(self._neo_state))
                    self._reexec(req, res, k + 1, buf, restarts + 1)
        finally:
            if db is not None:
                db.close()
            if neo is not None:
                neo.close()

    def _warm_up(self, db: _Database, req: int) -> None:
        """While the follower reads its first interval: the graph opened with its schema and the
        detectors run once on it, empty (the first analysis of a process costs 0.3-0.5 s more than
        the next ones: its imports, query files and the database compiling the queries), as many
        at once as the end's analysis runs. It stops as soon as an analysis is asked for: a run
        shorter than the warm-up (samples/pipeline.py's end comes 0.5 s after the start) waits for
        the imports, not for the rest."""
        from ftraceipc.detect.detectors import DETECTORS
        from ftraceipc.detect.run import DEFAULT_WORKERS, check_ids, run_detectors

        try:
            g = db.graph()
            g.create_schema()
            ids = check_ids(DETECTORS if self.opts.detectors is None else self.opts.detectors)
            for i in range(0, len(ids), DEFAULT_WORKERS):
                if select.select([req], [], [], 0)[0]:
                    return
                run_detectors(g, only=ids[i:i + DEFAULT_WORKERS], capture_id="")
        except Exception:  # noqa: BLE001 - the first analysis does it again, and says what fails
            pass

    def _reexec(self, req: int, res: int, k: int, pending: bytes, restarts: int) -> None:
        """This process again, from a new interpreter (``python -m ftraceipc.live``)."""
        import pickle
        import sys

        opts = self.tmp / "analyzer-options.pkl"  # the work directory is the follower's, mode 0700
        opts.write_bytes(pickle.dumps(self.opts))
        os.set_inheritable(req, True)
        os.set_inheritable(res, True)
        os.execv(sys.executable, [sys.executable, "-m", "ftraceipc.live", "analyzer", str(self.tmp), str(req),
                                  str(res), str(k), str(restarts), pending.decode()])

    @classmethod
    def main(cls, argv: list[str]) -> int:
        """The analysis process started again (``_reexec``): serve until the follower closes the pipe."""
        import pickle

        tmp, req, res, k, restarts = Path(argv[0]), int(argv[1]), int(argv[2]), int(argv[3]), int(argv[4])
        set_comm(LIVE_COMM)
        path = tmp / "analyzer-options.pkl"
        opts = pickle.loads(path.read_bytes())
        path.unlink()
        cls(tmp, opts)._serve(req, res, k, argv[5].encode() if len(argv) > 5 else b"", restarts)
        return 0

    def _mirror(self, neo, model, n: int, res: int) -> None:
        """The model so far into Neo4j, as increments on what the interval before wrote
        (``Neo4jGraph.sync``: the first is what ``ftraceipc load`` writes; then only the nodes and
        relationships that are new, changed or gone, in one transaction: Browser sees the run as it
        happens, never half of an interval). A failure is reported once per analysis as an error
        line of the follower's (``neo4j-N.err``) and the next interval loads again; the run goes on."""
        def put(suffix: str, text: str) -> None:  # whole files only: the follower reads them as they appear
            tmp = self.tmp / f".neo4j-{n}.tmp"
            tmp.write_text(text)
            os.replace(tmp, self.tmp / f"neo4j-{n}{suffix}")

        try:
            t0 = time.perf_counter()
            written, self._neo_state = neo.sync(model, self._neo_state)
            rows = self._neo_state.rows
            put(".json", json.dumps(
                {"seconds": round(time.perf_counter() - t0, 3), "written": sum(written.values()),
                 "rows": sum(map(len, rows.values())) + 1 if rows is not None else sum(written.values())}))
        except Exception as e:  # noqa: BLE001 - the embedded analysis goes on
            self._neo_state = None
            put(".err", f"{type(e).__name__}: {e}")


class LiveAnalysis:
    """The follower process's work (made by ForkedWorker in the child; see the module doc).

    Each interval (when the analysis before is done) it forks a copy of itself that finishes the
    model so far and hands it to the :class:`Analyzer` (a pickle in the work directory); while the
    copy and the analyzer work, it goes on feeding the model. Their results become the view,
    finding and status lines."""

    def __init__(self, root: Path, marks: Watermarks | None, opts: LiveOptions, emit: Emitter, now: TraceNow):
        self.root = Path(root)
        self.marks = marks
        self.opts = opts
        self.emit = emit
        self.now = now
        self.tmp = Path(tempfile.mkdtemp(prefix="ftraceipc-live-"))
        self.analyzer = Analyzer(self.tmp, opts)
        # (not with --neo4j: what the analysis process wrote there, the one taking over does not know)
        self.spare: Analyzer | None = Analyzer(self.tmp, opts, spare=True) if not opts.neo4j_uri else None
        self.children: list[int] = []  # every process of ours (left out of the model)
        self.copy: tuple[int, int] | None = None  # (pid, number) of the copy finishing a model
        self.pending: dict[int, tuple[int, float]] = {}  # number -> (data bound, monotonic start) in flight
        self.n = 0  # snapshots started
        self.shown: dict[str, Finding] = {}  # finding id -> as last emitted
        self.first_seen: dict[str, int] = {}
        self.analyses = 0
        self.analysis_s = 0.0
        self.last_lag = 0
        self.cpu0 = os.times()
        self.mb = self.fol = self.dec = None
        self.timing: dict[str, float] = {}  # the last analysis's steps (seconds)
        self.prev_flows: tuple[int, dict] | None = None  # (bound, bytes per channel) of the last view
        self.analysed_ts: int | None = None  # the data bound of the newest analysis done
        self.final: dict[str, Any] | None = None  # the end's analysis
        self.end_timing: dict[str, float] = {}
        self.neo4j_rows: int | None = None  # rows of the capture in Neo4j, those the last write wrote, its seconds
        self.neo4j_written: int | None = None
        self.neo4j_s: float | None = None
        self.ended = False  # the capture is over (no more changes to what is traced)
        self.budget = None  # live.budget.Budget with --budget
        self.toggler = None
        self.counts: dict[str, int] = {}  # events fed per name since the last budget step
        self.budget_last: tuple[float, tuple[float, float]] | None = None  # (monotonic, _ours_cpu()) then
        self.cpu_others = CpuSeen()  # the capture's processes (readers, watchers, controller)

    # ForkedWorker's protocol
    def raise_priority(self) -> None:
        pass  # the workload's CPU time comes first; a late analysis only lags

    def result(self) -> dict:
        return {"analyses": self.analyses, "analysis_s": round(self.analysis_s, 3),
                "events": self.fol.events if self.fol is not None else 0, "snapshots": self.n}

    def close(self) -> None:
        if self.fol is not None:
            self.fol.close()
        self.analyzer.close()
        if self.spare is not None:
            self.spare.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_until(self, ctl_fd: int) -> None:
        try:
            self._run(ctl_fd)
        except BaseException as e:
            self.emit({"type": "error", "message": f"{type(e).__name__}: {e}",
                       "trace": traceback.format_exc(limit=8)})
            self.close()  # ForkedWorker closes a worker only when it ran well: the work directory goes now
            raise

    @property
    def busy(self) -> bool:
        return self.copy is not None or bool(self.pending)

    # the loop
    def _run(self, ctl_fd: int) -> None:
        poller = select.poll()
        poller.register(ctl_fd, select.POLLIN)
        meta = None
        while meta is None:  # the capture writes meta.json again once tracing is on
            meta = self._started_meta()
            if meta is None and poller.poll(50):
                meta = self._started_meta()
                if meta is None:
                    return  # ended before tracing started
        self.analyzer.start()  # forked before this process holds the model
        self.children.append(self.analyzer.pid)
        if self.spare is not None:
            self.spare.start()
            self.children.append(self.spare.pid)
        poller.register(self.analyzer.fd, select.POLLIN)
        from ftraceipc.decode import Decoder
        from ftraceipc.model.build import LiveSnapshots, ModelBuilder

        cap = CaptureDir(self.root)
        self.dec = Decoder(self.root)
        self.fol = self.dec.follow()
        self.snaps = LiveSnapshots(meta, cap)
        self.mb = ModelBuilder(self.root, meta=meta, snapshots=self.snaps, decoder=self.dec)
        self.mb.add_tracer([self.analyzer.pid] + ([self.spare.pid] if self.spare is not None else []))
        if self.opts.budget is not None and self.opts.instance:
            from ftraceipc.live.budget import Budget, Toggler

            self.budget = Budget(self.opts.budget, os.cpu_count() or 1, list(meta.get("events") or []))
            self.toggler = Toggler(self.opts.instance, (meta.get("cpus") or [0])[0])
            self.budget_last = (time.monotonic(), self._ours_cpu())  # the first status judges
        self.emit({"type": "start", "ts": self.now(), "capture": str(self.root), "interval_s": self.opts.interval,
                   "start_ts": meta.get("start_ts")})
        iv = self.opts.interval
        tick = next_snap = time.monotonic() + iv
        judge = time.monotonic() + FIRST_JUDGE * iv if self.budget is not None else None
        last = (time.monotonic(), 0)
        behind = False
        feed_every = iv / FEEDS_PER_INTERVAL
        while True:
            now = time.monotonic()
            wait = 0 if behind else min(min(tick, next_snap if not self.busy else tick, judge or tick) - now,
                                        feed_every)
            if self.copy is not None:
                wait = min(wait, 0.02)  # the copy's exit is not a poll event
            ended = False
            for fd, _ in poller.poll(max(0, int(wait * 1000))):
                if fd == ctl_fd:
                    ended = True
                else:
                    self._results(self.analyzer.done())
            if ended:
                break  # EOF: the capture is over
            self._copied(block=False)
            # what is complete goes to the model first, then a snapshot of it (when one is due)
            behind = self._advance(self.marks.all() if self.marks is not None else {},
                                   until=min(tick, next_snap, judge or tick),
                                   limit=self.marks.get("proc") if self.marks is not None else None)
            if not self.busy and time.monotonic() >= next_snap:
                self._fork_snapshot()
                next_snap = time.monotonic() + iv * (self.budget.every if self.budget is not None else 1)
            if judge is not None and time.monotonic() >= judge:
                judge = None
                self._budget_step(first=True)
            if time.monotonic() >= tick:
                # what no window's walk will need leaves memory each interval, analysed or not (an
                # analysis busy for seconds held up the snapshots, and with them this: the rows
                # piled up, and moving them at once made the follower's peak RSS jump by 15 MiB)
                if self.mb.last_ts is not None:
                    self.mb.retire(self.mb.last_ts - int(self.opts.window * 1e9))
                t, n = time.monotonic(), self.fol.events
                self._status(rate=(n - last[1]) / max(t - last[0], 1e-9))
                last = (t, n)
                tick = max(tick + iv, time.monotonic())
        self._end()

    def _started_meta(self) -> dict | None:
        try:
            m = CaptureDir(self.root).read_meta().to_json()
        except Exception:  # noqa: BLE001 - being written: try again
            return None
        return m if m.get("start_ts") is not None else None

    def _advance(self, marks: dict[int, int] | None, until: float | None = None, limit: int | None = None) -> bool:
        """Feed the batches now complete to the model, READ_BYTES of each CPU's file at a time,
        until caught up or (``until``, monotonic) the next interval is due; True if still behind.
        ``limit``: the /proc watcher's watermark (its records are read first: each applies at its time)."""
        while True:
            self.snaps.refresh()
            for b in self.fol.poll(marks, READ_BYTES, limit):
                if self.budget is not None:
                    c = self.counts
                    for name, t in b.events.items():
                        c[name] = c.get(name, 0) + len(t)
                self.mb.feed(b)
            if not self.fol.behind():
                return False
            if until is not None and time.monotonic() >= until:
                return True

    def _status(self, rate: float) -> None:
        now = self.now()
        st = self.fol.stats()
        fed = self.mb.last_ts if self.mb.last_ts is not None else self.mb.meta.get("start_ts") or now
        # how old the newest findings' data is (the analysis lag), and how far the model is behind
        self.last_lag = max(0, now - (self.analysed_ts if self.analysed_ts is not None else fed))
        self._neo4j()
        if self.neo4j_rows is not None:
            self.timing = {**self.timing, "neo4j_rows": self.neo4j_rows, "neo4j_written": self.neo4j_written,
                           "neo4j_s": self.neo4j_s}
        cpu_s = self._cpu_s()
        budget = self._budget_step() if self.budget is not None else {}
        self.emit({"type": "status", "ts": now, "events": self.fol.events, "lost": st.missed_events,
                   "lost_pages": st.pages_missed, "lag_ns": self.last_lag, "model_lag_ns": max(0, now - fed),
                   "events_per_s": round(rate), "analyses": self.analyses, "analysis_busy": self.busy,
                   **self.timing, "cpu_s": cpu_s, **budget})

    def _cpu_s(self) -> float:
        """CPU seconds of this process and its children since it started: the copies it waited for,
        the analysis process (and, at the end, what it used before it was waited for)."""
        return round(sum(self._cpu_parts()), 3)

    def _cpu_parts(self) -> tuple[float, float]:
        """(this process's CPU seconds, its analyses': the copies it waited for and the analysis process)."""
        t = os.times()
        return (t.user + t.system - self.cpu0.user - self.cpu0.system,
                t.children_user + t.children_system + _cpu_s(self.analyzer.pid)
                + (_cpu_s(self.spare.pid) if self.spare is not None else 0.0))

    def _ours_cpu(self) -> tuple[float, float]:
        """CPU seconds of every process of ours: (the follower and the capture's processes - the
        readers, the watchers, the controller -, the analyses)."""
        others = [p for p in self.mb.meta.get("tracer_pids") or [] if p != os.getpid()]
        mine, analyses = self._cpu_parts()
        return mine + self.cpu_others.total(others), analyses

    def _budget_step(self, first: bool = False) -> dict[str, Any]:
        """--budget: this interval's cost, and the change it calls for (made here: ``_narrow``).
        ``first``: the early judgment (FIRST_JUDGE), of the capture's cost alone: the analysis
        process's warm-up, then, is no cost of the run."""
        from ftraceipc.live.budget import needed_groups

        b = self.budget
        ours = self._ours_cpu()
        t = time.monotonic()
        last = self.budget_last
        shortest = (0.8 * FIRST_JUDGE if first else 0.5) * self.opts.interval
        if last is not None and t - last[0] < shortest and not self.ended:
            last = None  # a status soon after a late one: too short to judge, judged with the next
        else:
            self.budget_last = (t, ours)
            counts, self.counts = self.counts, {}
        if last is not None and not self.ended and b.stopped is None:
            d = b.step(t - last[0], ours[0] - last[1][0], counts, needed_groups({f.pattern for f in self.shown.values()}),
                       analysis_cpu_s=0.0 if first else max(0.0, ours[1] - last[1][1]))
            if d is not None and (d.off or d.on):
                self._narrow(d)
            elif d is not None:  # the analyses' pace only
                self.emit({"type": "budget", "ts": self.now(), "off": [], "on": [], "traced_off": sorted(b.off),
                           "analysis_every": b.every, "cost_pct": d.cost_pct, "budget_pct": b.percent,
                           "reason": d.reason})
        return self._budget_fields()

    def _budget_fields(self) -> dict[str, Any]:
        """--budget's keys of a status line: what it keeps off now, its last cost, whether it stopped."""
        b = self.budget
        out = {"budget_pct": b.percent, "traced_off": sorted(b.off), "analysis_every": b.every}
        if b.cost_pct is not None:
            out["cost_pct"] = round(b.cost_pct, 2)
        if b.over:
            out["over_budget"] = True
        if b.stopped is not None:
            out["budget_stopped"] = b.stopped
        return out

    def _narrow(self, d) -> None:
        """Turn the decision's groups off and on in the instance, then record when it took effect
        (the trace clock after the writes): the capture's event_changes.jsonl and this model."""
        from ftraceipc.capture.store import EventChange

        b, tg = self.budget, self.toggler
        t0 = tg.now()
        off, err = tg.set(b.events_of(d.off), False)
        on: list[str] = []
        if err is None:
            on, err = tg.set(b.events_of(d.on), True)
        if err is not None and tg.gone(err):
            # the capture is ending (its instance is going, tracing is off): nothing it changed
            # mattered, what was off stays said as it was
            b.settle(d, [], [], "the capture ended")
            return
        t1 = tg.now()
        if t1 is None:
            t1 = self.now()
        if err is not None:
            b.settle(d, off, on, f"changing the traced events failed ({err.strerror or err})")
        # what was done, even when a write failed half-way: the model must know every event turned off
        ch = EventChange(ts=t1 + 1000, start_ts=t0 if t0 is not None else t1, off=off, on=on,
                         groups_off=sorted(b.off), reason=d.reason, cost_pct=d.cost_pct,
                         budget_pct=b.percent)  # +1 us: the stats file prints whole microseconds
        if off or on:
            CaptureDir(self.root).add_event_change(ch)
            self.mb.add_event_change(ch)
        if err is not None:
            self.emit({"type": "error", "message": f"--budget stopped: changing the traced events failed "
                                                   f"({err.strerror or err}); what it changed stays as it is"})
            return
        self.emit({"type": "budget", "ts": ch.ts, "off": d.off, "on": d.on, "traced_off": sorted(b.off),
                   "analysis_every": b.every, "cost_pct": d.cost_pct, "budget_pct": b.percent, "reason": d.reason})

    # the analyses
    def _payload(self, bound: int, end: bool = False, since: int | None = None) -> bytes:
        """The model so far (this process's builder is spent after), what is asleep, pickled.
        ``since``: its critical path from then on (the window; None: the whole run)."""
        import pickle

        t0 = time.perf_counter()
        asleep = self.mb.asleep()
        self.mb.meta["stop_ts"] = bound
        model = self.mb.finish(self.fol.stats(), path_since=since)
        rid_of = self.mb.fdm.rids()
        asleep["rid"] = [rid_of.get(int(h)) if h >= 0 else None for h in asleep["handle"].tolist()]
        return pickle.dumps({"bound": bound, "model": model, "asleep": asleep, "end": end,
                             "timing": {"finish_s": round(time.perf_counter() - t0, 3)}}, protocol=5)

    def _fork_snapshot(self) -> None:
        if self.mb.last_ts is None:
            return
        bound, n = self.mb.last_ts, self.n
        self.n += 1
        since = bound - int(self.opts.window * 1e9)
        self.mb.retire(since)  # what the window's walk does not need leaves memory
        out = self.tmp / f"model-{n}.pkl"
        pid = os.fork()
        if pid == 0:  # the copy: finish the model so far, hand it over, leave
            code = 1
            try:
                set_comm(LIVE_COMM)
                tmp = out.with_suffix(".tmp")
                tmp.write_bytes(self._payload(bound, since=since))
                os.replace(tmp, out)
                code = 0
            except BaseException:  # noqa: BLE001 - the follower reports the missing model
                try:
                    out.with_suffix(".err").write_text(traceback.format_exc(limit=8))
                except OSError:
                    pass
            finally:
                os._exit(code)
        self.children.append(pid)
        self.mb.add_tracer([pid])
        self.copy = (pid, n)
        self.pending[n] = (bound, time.monotonic())

    def _copied(self, block: bool) -> None:
        """The copy has finished its model: hand it to the analyzer."""
        if self.copy is None:
            return
        pid, n = self.copy
        got, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        if not got:
            return
        self.copy = None
        if (self.tmp / f"model-{n}.pkl").exists():
            self.analyzer.submit(n)
        else:
            err = self.tmp / f"model-{n}.err"
            why = err.read_text().strip().splitlines()[-1] if err.exists() else f"exit status {status}"
            self.pending.pop(n, None)
            self.emit({"type": "error", "message": f"finishing the model of the live analysis failed: {why}"})

    def _results(self, numbers: list[int]) -> None:
        for n in numbers:
            bound, t0 = self.pending.pop(n, (0, time.monotonic()))
            out = self.tmp / f"result-{n}.json"
            d = json.loads(out.read_text())
            out.unlink()
            self.analyses += 1
            self.analysis_s += time.monotonic() - t0
            if "error" in d:
                self.emit({"type": "error", "message": f"the analysis of the capture up to {bound} failed: "
                                                       f"{d['error']}"})
                continue
            self.timing = d.get("timing") or {}
            found = [finding_of(f) for f in d["analysis"]["findings"]]
            self._view(d.get("view") or {}, int(d["bound"]))
            self._findings(found, int(d["bound"]))
            if d.get("end"):
                self.final = d

    def _neo4j(self) -> None:
        """Say what the mirror into Neo4j did (its files appear after the analysis's result)."""
        for f in sorted(self.tmp.glob("neo4j-*.*")):
            if f.suffix not in (".json", ".err"):
                continue
            n = f.stem.split("-", 1)[1]
            if f.suffix == ".json":
                d = json.loads(f.read_text())
                self.neo4j_rows, self.neo4j_written, self.neo4j_s = d["rows"], d["written"], d["seconds"]
            else:
                self.emit({"type": "error", "message": f"writing analysis {n} to Neo4j failed: {f.read_text()}"})
            f.unlink()

    def _view(self, v: dict, bound: int) -> None:
        """The "view" line of one analysis: its channels with their rates since the one before."""
        self.analysed_ts = bound
        prev, self.prev_flows = self.prev_flows, (bound, {(c["writer"], c["rid"], c["reader"]): c["bytes"]
                                                          for c in v.get("channels", [])})
        for c in v.get("channels", []):
            before = prev[1].get((c["writer"], c["rid"], c["reader"]), 0) if prev else 0
            dt = (bound - prev[0]) if prev else 0
            c["bytes_per_s"] = round((c["bytes"] - before) * 1e9 / dt) if dt > 0 else None
        if v.get("channels"):
            v["channels"].sort(key=lambda c: (-(c["bytes_per_s"] or 0), -c["bytes"]))
        self.emit({"type": "view", "ts": self.now(), "bound_ts": bound, **v})

    def _findings(self, found: list[Finding], bound: int) -> None:
        """Emit the findings that are new, or moved materially since they were last emitted."""
        for f in found:
            k = finding_id(f)
            prev = self.shown.get(k)
            if prev is not None and not _moved(prev, f):
                continue
            if k not in self.first_seen:
                self.first_seen[k] = bound
            self.shown[k] = f
            self.emit({"type": "finding", "id": k, "update": prev is not None, "first_seen_ts": self.first_seen[k],
                       "emitted_ts": self.now(), **f.to_json()})

    def _wait_analyses(self) -> None:
        self._copied(block=True)
        while self.pending:
            self._results(self.analyzer.done())

    def _abandon(self) -> None:
        """The capture is over: an analysis still in flight is of a model the end's replaces. Its
        copy is stopped; an analyzer busy with it is replaced by the spare, warm already, or else by
        a new one (what it would say comes too late to matter: waiting for it delayed the end line by
        1-3 s). A spare not needed leaves."""
        import signal

        if self.copy is not None:
            pid, n = self.copy
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            os.waitpid(pid, 0)
            self.copy = None
            self.pending.pop(n, None)
            for f in self.tmp.glob(f"model-{n}.*"):
                f.unlink()
        ready = select.poll()
        ready.register(self.analyzer.fd, select.POLLIN)
        while self.pending and ready.poll(0):  # what is done already is shown
            self._results(self.analyzer.done())
        spare, self.spare = self.spare, None
        if self.pending:
            self.analyzer.kill()
            self.pending.clear()
            if spare is not None:
                spare.take_over()
                self.analyzer = spare
                return
            self.analyzer = Analyzer(self.tmp, self.opts)
            self.analyzer.start()
            self.children.append(self.analyzer.pid)
            self.mb.add_tracer([self.analyzer.pid])
        if spare is not None:
            spare.kill()

    def _end(self) -> None:
        """The capture is over: the last pages, meta.json as the capture left it (plus our
        processes), one last analysis, the end line."""
        self.ended = True
        t_end = time.monotonic()
        self._abandon()
        cap = CaptureDir(self.root)
        m = cap.read_meta()
        ours = sorted(set(self.children) - set(m.tracer_pids))
        if ours:  # the analysis processes were tasks of ours: post-mortem leaves them out too
            m.tracer_pids = list(m.tracer_pids) + ours
            m.tracer_tids = sorted(set(m.tracer_tids) | set(ours))
            cap.write_meta(m)
        self.mb.set_meta(m.to_json())
        t_fed, n_fed = time.monotonic(), self.mb.n_events
        self._advance(None)
        n_fed = self.mb.n_events - n_fed
        n = self.n
        self.n += 1
        bound = self.mb.last_ts or 0
        self.pending[n] = (bound, time.monotonic())
        t_model = time.monotonic()
        (self.tmp / f"model-{n}.pkl").write_bytes(self._payload(bound, end=True))
        self.analyzer.submit(n)
        t_sent = time.monotonic()
        self._wait_analyses()
        # where the end's time went (seconds): the analyses still running stopped, the events not fed
        # yet, the whole run's model (and its critical path) finished, its analysis
        self.end_timing = {"abandon_s": round(t_fed - t_end, 3), "catch_up_s": round(t_model - t_fed, 3),
                           "catch_up_events": n_fed,
                           "finish_s": round(t_sent - t_model, 3), "analysis_s": round(time.monotonic() - t_sent, 3),
                           # of which, in the analysis process: reading the model, loading and analysing it
                           # (the detectors and the path's figures), the view
                           **{k: v for k, v in ((self.final or {}).get("timing") or {}).items()
                              if k in ("read_s", "analyze_s", "detectors_s", "view_s")}}
        self.analyzer.close()  # it writes the last model to Neo4j (if asked) before it leaves
        self._status(rate=0.0)
        d = self.final
        if d is None:
            self.emit({"type": "end", "ts": self.now(), "capture": str(self.root), "findings": [], "warnings": [],
                       "error": "the final analysis failed", "analyses": self.analyses})
            return
        a = d["analysis"]
        for f in a["findings"]:
            f["id"] = key = finding_id(f)
            f["first_seen_ts"] = self.first_seen.get(key)
        cj = a["capture"]
        self.emit({"type": "end", "ts": self.now(), "capture": str(self.root), "findings": a["findings"],
                   "warnings": a["warnings"], "critical_path": cj["critical_path"],
                   "minor_findings": len(cj.get("minor_findings") or []), "notes": cj.get("notes", []),
                   "detectors_run": cj.get("detectors_run"), "not_run": cj.get("not_run"),
                   "analyses": self.analyses, "analysis_s": round(self.analysis_s, 3),
                   "end_timing": self.end_timing,
                   **({"neo4j": {"capture_id": cj.get("id"), "rows": self.neo4j_rows}} if self.opts.neo4j_uri else {})})


TOP_CHANNELS = 50
TOP_ASLEEP = 50


def view(model, a: Analysis, asleep, all_tasks: bool) -> dict[str, Any]:
    """What the live screen shows besides the findings, from one analysis's model: the channels
    (writer -> resource -> reader, bytes so far), the tasks asleep at its end and on what, the
    bottleneck so far (the critical path's root and the bottleneck finding), for the traced
    command's tasks (every task with ``all_tasks`` or a system-wide capture), never ours."""
    from ftraceipc.model.summary import command_tree

    t = model.tasks
    label, pid_of, ours = {}, {}, set()
    for tid, pid, comm, tracer in zip(t["tid"].tolist(), t["pid"].tolist(), t["comm"].tolist(), t["tracer"].tolist()):
        label[int(tid)] = f"{comm}[{tid}]"
        pid_of[int(tid)] = int(pid) if pid is not None else -1
        if tracer is True:
            ours.add(int(tid))
    tree = None if all_tasks else command_tree(model)

    def shown(tid: int) -> bool:
        return tid not in ours and (tree is None or pid_of.get(tid, -1) in tree)

    channels = []
    f = model.flows
    if f is not None and len(f):
        f = f.sort_values("bytes", ascending=False)
        for w, r, via, b, m in zip(f["writer"].tolist(), f["reader"].tolist(), f["via"].tolist(),
                                   f["bytes"].tolist(), f["messages"].tolist()):
            if not (shown(int(w)) or shown(int(r))):
                continue
            channels.append({"writer": int(w), "writer_label": label.get(int(w), str(w)), "rid": via,
                             "reader": int(r), "reader_label": label.get(int(r), str(r)), "bytes": int(b),
                             "messages": int(m)})
            if len(channels) >= TOP_CHANNELS:
                break
    blocked = []
    end = model.meta.get("stop_ts") or 0
    for tid, since, rid, op in sorted(zip(asleep["tid"].tolist(), asleep["since_ts"].tolist(),
                                          asleep["rid"].tolist(), asleep["op"].tolist()), key=lambda x: x[1]):
        if not shown(int(tid)):
            continue
        rid = rid if isinstance(rid, str) else None
        blocked.append({"tid": int(tid), "label": label.get(int(tid), str(tid)),
                        "op": op if isinstance(op, str) else None, "rid": rid,
                        "since_ts": int(since), "for_ns": max(0, int(end) - int(since))})
        if len(blocked) >= TOP_ASLEEP:
            break
    b = next((x for x in a.findings if x.pattern == "bottleneck"), None)
    bottleneck = None if b is None else {"task": b.tasks[0] if b.tasks else None, "title": b.title,
                                         "critical_ns": b.critical_ns}
    return {"channels": channels, "blocked": blocked, "bottleneck": bottleneck,
            "critical_path": {**a.critical.to_json(), "root_label": a.critical.root_label}}
