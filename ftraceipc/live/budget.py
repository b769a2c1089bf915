"""``ftraceipc live --budget PERCENT``: keep what tracing costs the machine under a share of its CPU
time by turning event groups off while tracing, and on again when they fit.

The cost of an interval, measured each interval (:meth:`Budget.step`):

- ``ours``: CPU seconds of ftraceipc's processes: the page readers, the watchers, the controller,
  the follower and its analysis processes (``/proc/PID/stat``, ``os.times``). The analyses' part
  comes in lumps (an analysis every few intervals, its CPU counted when it is done): it is averaged
  over the last intervals of one analysis (``every``, at least two);
- ``kernel``: the events recorded times :data:`KERNEL_NS_PER_EVENT`, the time the traced tasks
  spend writing events into the ring buffer (inside their own syscalls and context switches, so no
  process of ours shows it);

and ``cost_pct = 100 * (ours + kernel) / (CPUs * seconds)``: the share of the machine's CPU time
that tracing took.

What can be turned off is :data:`ftraceipc.capture.events.NARROWABLE` ("polls", "data"): never
the scheduler events (the critical path) nor the fd lifecycle. Over budget, groups go off, those
that no finding so far needs first (a finding needs a group when its detector's events include
it), the busiest first, as many as the estimate says (each event of a group costs
:data:`KERNEL_NS_PER_EVENT` in the traced tasks and :data:`OURS_NS_PER_EVENT` in our processes).
Under budget, an off group goes on again when the estimate with its expected rate stays under 90 %
of the budget, after a hold that doubles each time a group had to go off again. The expected rate is
the cheaper signal that stays on: the group's rate when it was last traced, scaled by how the rate
of the always-traced events (the scheduler's, the fd lifecycle's) moved since then. A burst that
ends lets the groups back on; a burst that comes back turns them off again, and they wait longer.

The analyses cost too (each builds a graph and runs the detectors): still over budget with every
group off, the analyses are spaced out (one every 2, 4, ... up to :data:`MAX_EVERY` intervals; the
status lines stay each interval), and brought back toward each interval when the cost falls under half
the budget and no group fits (with the same doubling hold when that was too costly at once).

Each change is recorded in the capture (``event_changes.jsonl``: ``store.EventChange``, the trace
time it took effect), and the model drops the syscalls it turned off that were open then
(``ModelBuilder.add_event_change``), live and post-mortem alike: the live findings and those of
``ftraceipc analyze`` of the capture stay the same. The analysis warns which groups were off when.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from ftraceipc.capture.events import NARROWABLE

# The traced tasks' time per event recorded, measured on the machine of BENCHMARKS.md section 8.1
# (bench/bench_live.py --parts budget: pgbench -S pinned to one CPU, untraced and under a capture of
# the default set; the extra time per transaction over the events per transaction: 0.51 us). A
# capture of only the always-traced events cost ~1.8 us per event there: more than these events'
# share (what else a capture runs, its watchers and readers, is in that figure too).
KERNEL_NS_PER_EVENT = 550
# Our processes' time per event (the readers' copy, the follower's decoding and model): what an
# event group adds to or takes from "ours" when it goes on or off. On one core the decoder reads
# 1.6-3.0 M events/s and the model builds 0.44-1.05 M events/s (BENCHMARKS.md section 4): 1.3-2.9 us
# per event together; the lower end.
OURS_NS_PER_EVENT = 1300
HEADROOM = 0.9  # a group goes on again when the estimate stays under this share of the budget
HOLD = 2  # intervals after a change before the next widening (the change took effect mid-interval)
MAX_EVERY = 16  # at most this many intervals between two analyses


@dataclass
class Decision:
    off: list[str]  # groups turned off
    on: list[str]  # groups turned on
    reason: str
    cost_pct: float


class Budget:
    """The controller (pure arithmetic: the follower measures and applies, ``Toggler`` writes)."""

    def __init__(self, percent: float, ncpus: int, events: list[str],
                 ns_per_event: float = KERNEL_NS_PER_EVENT, ours_ns_per_event: float = OURS_NS_PER_EVENT):
        self.percent = float(percent)
        self.ncpus = max(1, int(ncpus))
        have = set(events)
        # the groups this capture traces, each with the events of it that it traces
        self.groups = {g: [e for e in evs if e in have] for g, evs in NARROWABLE.items()}
        self.groups = {g: evs for g, evs in self.groups.items() if evs}
        self.ns = float(ns_per_event)
        self.marginal = (float(ns_per_event) + float(ours_ns_per_event)) / 1e9  # seconds per event, on or off
        self.off: set[str] = set()
        self.rate: dict[str, float] = {}  # events/s of each group while it was on
        self.base_at: dict[str, float] = {}  # events/s of the always-traced events then
        self.hold = 0
        self.backoff = HOLD
        self.last_on: str | None = None  # the group turned on last, and how many intervals ago
        self.since_on = 0
        self.cost_pct: float | None = None
        self.over = False  # over budget even with every group off
        self.every = 1  # an analysis every this many intervals
        self.since_relax = 1 << 30  # intervals since the analyses were last brought closer
        self.stretch_hold = 0  # intervals before the analyses may be spaced out further
        self.analyses: list[tuple[float, float]] = []  # (seconds, the analyses' CPU seconds) of the last intervals
        self.stopped: str | None = None  # why it changes nothing more (a write failed, the instance went)

    def _name(self, e: str) -> str:
        return e.split(":", 1)[-1]

    def step(self, seconds: float, ours_cpu_s: float, counts: dict[str, int],
             needed: set[str] | None = None, analysis_cpu_s: float = 0.0) -> Decision | None:
        """One interval: ``seconds`` long, ``ours_cpu_s`` of our processes' CPU but the analyses',
        ``analysis_cpu_s`` of the analyses', ``counts`` events per name (``sched_switch``,
        ``sys_enter_read``, ...) recorded in it; ``needed``: the groups that findings so far need.
        The change to make, if any."""
        if seconds <= 0:
            return None
        self.analyses.append((seconds, analysis_cpu_s))
        del self.analyses[:-max(2, self.every)]  # the intervals of one analysis (at least two)
        s_all = sum(x for x, _ in self.analyses)
        analysis = sum(c for _, c in self.analyses) * seconds / s_all if len(self.analyses) > 1 else analysis_cpu_s
        events = sum(counts.values())
        cost = ours_cpu_s + analysis + events * self.ns / 1e9
        cap = self.ncpus * seconds
        pct = self.cost_pct = 100.0 * cost / cap
        by_group = {g: sum(counts.get(self._name(e), 0) for e in evs) for g, evs in self.groups.items()}
        base = max(0, events - sum(by_group.values())) / seconds  # the events never turned off
        for g, n in by_group.items():
            if g not in self.off:
                self.rate[g] = n / seconds
                self.base_at[g] = base
        self.hold = max(0, self.hold - 1)
        self.stretch_hold = max(0, self.stretch_hold - 1)
        self.since_on += 1
        self.since_relax += 1
        needed = needed or set()
        if pct > self.percent:
            on = [g for g in self.groups if g not in self.off and by_group[g]]  # off, a quiet group saves nothing
            on.sort(key=lambda g: (g in needed, -by_group[g]))
            drop, est = [], cost
            for g in on:
                if 100.0 * est / cap <= self.percent:
                    break
                drop.append(g)
                est = max(0.0, est - by_group[g] * self.marginal)
            self.over = 100.0 * est / cap > self.percent
            if not drop:
                if self.over and not self.stretch_hold and self.every < MAX_EVERY:
                    if self.since_relax <= 2 * HOLD:
                        self.backoff *= 2  # brought closer, and too costly at once: wait longer next time
                    self.every *= 2
                    self.stretch_hold = HOLD  # the next analyses show what this one saves
                    self.hold = max(self.hold, self.backoff)
                    return Decision(off=[], on=[], cost_pct=round(pct, 2),
                                    reason=f"cost {pct:.1f} % of the CPUs > budget {self.percent:g} % with the poll and "
                                           f"data events off: an analysis every {self.every} intervals")
                return None
            if self.last_on in drop and self.since_on <= 2 * HOLD:
                self.backoff *= 2  # it went on and had to go off again: wait longer next time
            self.off |= set(drop)
            self.hold = self.backoff
            self.stretch_hold = HOLD  # what it saves shows in the next intervals
            why = (f"cost {pct:.1f} % of the CPUs > budget {self.percent:g} %"
                   + (f" (still about {100.0 * est / cap:.1f} % without them: the scheduler events and the fd "
                      "lifecycle are always traced)" if self.over else ""))
            return Decision(off=drop, on=[], reason=why, cost_pct=round(pct, 2))
        self.over = False
        if self.hold:
            return None
        for g in sorted(self.off, key=lambda g: self.expected(g, base)):  # coverage first
            est = cost + self.expected(g, base) * seconds * self.marginal
            if 100.0 * est / cap <= HEADROOM * self.percent:
                self.off.discard(g)
                self.hold = HOLD
                self.last_on, self.since_on = g, 0
                return Decision(off=[], on=[g], cost_pct=round(pct, 2),
                                reason=f"cost {pct:.1f} % with it off, about {100.0 * est / cap:.1f} % expected with "
                                       f"it on (its last rate, scaled by the scheduler's events): under the budget "
                                       f"{self.percent:g} %")
        if self.every > 1 and pct <= 0.5 * self.percent:  # then fresher findings
            self.every //= 2
            self.hold = self.backoff
            self.since_relax = 0
            return Decision(off=[], on=[], cost_pct=round(pct, 2),
                            reason=f"cost {pct:.1f} % of the CPUs, under half the budget {self.percent:g} %: "
                                   f"an analysis every {self.every} interval{'s' if self.every > 1 else ''}")
        return None

    def settle(self, d: Decision, off: list[str], on: list[str], why: str) -> None:
        """A change that took effect only in part (``off``/``on``: the events whose writes were done)
        and after which the controller stops: its groups are as the writes left them - one turned off
        is off if any of its events went off, one turned on is on only if all of them did -, and
        ``step`` is not called again (``why``: said with the status)."""
        went_off, went_on = set(off), set(on)
        for g in d.off:
            if not went_off.intersection(self.groups.get(g, [])):
                self.off.discard(g)
        for g in d.on:
            if not set(self.groups.get(g, [])) <= went_on:
                self.off.add(g)
        self.stopped = why

    def expected(self, g: str, base: float) -> float:
        """Events/s group ``g`` would add now: its rate when last traced, scaled by the rate of the
        always-traced events now against then."""
        then = self.base_at.get(g)
        scale = base / then if then else 1.0
        return self.rate.get(g, 0.0) * scale

    def events_of(self, groups: list[str]) -> list[str]:
        return [e for g in groups for e in self.groups.get(g, [])]


def needed_groups(patterns: set[str]) -> set[str]:
    """The narrowable groups the detectors of these findings' patterns need."""
    from ftraceipc.detect.run import detector_events

    out = set()
    for p in patterns:
        try:
            evs = set(detector_events([p]))
        except Exception:  # noqa: BLE001 - an id that is no detector (a finding of another kind)
            continue
        out |= {g for g, ge in NARROWABLE.items() if evs & set(ge)}
    return out


class Toggler:
    """Turns events of our own tracing instance off and on (each event's ``enable`` file, never
    ``set_event``, whose rewrite would stop every event for a moment), and reads the trace clock
    around it. Files are opened per change: no fd of ours keeps the instance from being removed."""

    def __init__(self, instance: str | os.PathLike, cpu: int = 0):
        self.path = Path(instance)
        self.stats = self.path / "per_cpu" / f"cpu{cpu}" / "stats"

    def now(self) -> int | None:
        from ftraceipc.capture.procsnap import TraceClock

        c = TraceClock(self.stats)
        try:
            return c.now()
        finally:
            c.close()

    def set(self, events: list[str], on: bool) -> tuple[list[str], OSError | None]:
        """Turn these events on or off, one by one: those done, and the error that stopped it."""
        done: list[str] = []
        for e in events:
            system, _, name = e.partition(":")
            p = self.path / "events" / system / name / "enable"
            try:
                fd = os.open(p, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, b"1" if on else b"0")
                finally:
                    os.close(fd)
            except OSError as err:
                return done, err
            done.append(e)
        return done, None

    def gone(self, e: OSError) -> bool:
        """The instance is being removed (the capture is ending)."""
        return e.errno in (errno.ENOENT, errno.ENODEV) or not self.path.is_dir()
