"""The decoder against the kernel itself: trace a real workload in a private instance, read the
kernel's own rendering (the instance's ``trace`` file) and the raw pages, and check that every
decoded event equals the kernel's line, in the same order.

``trace`` is read twice: with ``options/fields=1`` every field is printed as ``name=0xHEX (DEC)``
(char arrays as text), except that ``char *`` fields (syscall ``buf``/``filename``) print the
address of the field inside the buffer; those are checked against the normal rendering
(``fields=0``), where syscalls print ``sys_write(fd: 1, buf: 0x..., count: 2)``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from components import requires  # noqa: E402
from kernel_trace import ALL_EVENTS, private_instance, run_workload  # noqa: E402

from ftraceipc.decode.decoder import Decoder, record_key  # noqa: E402
from ftraceipc.decode.formats import EventFormat, Field  # noqa: E402
from ftraceipc.decode.render import format_ts, latency_flags  # noqa: E402

pytestmark = requires("tracefs")

LINE_RE = re.compile(r"^\s*(?P<comm>.*)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+(?P<flags>\S{5})\s+"
                     r"(?P<ts>[\d.]+):\s(?P<body>.*)$")
EVENT_RE = re.compile(r"(?P<event>\w+):\s?(?P<rest>.*)$")
PLAIN_ARG_RE = re.compile(r"(\w+): (0x[0-9a-f]+|\d+)")
HEX_DEC_RE = re.compile(r"0x([0-9a-f]+) \((-?\d+)\)")
BYTE_RE = re.compile(r"(?:'.')?\((-?\d+)\)", re.S)
SYMBOL_RE = re.compile(r"\S+ \((-?\d+)\)")
MIN_EVENTS = 100_000


@dataclass
class KernelLine:
    pid: int
    cpu: int
    flags: str
    ts: str
    event: str
    rest: str


@dataclass
class Traced:
    decoder: Decoder
    fields_lines: list[KernelLine]
    plain_lines: list[KernelLine]
    clock: str


def _parse_trace(text: bytes) -> list[KernelLine]:
    out = []
    for raw in text.decode("utf-8", "replace").splitlines():
        if not raw or raw.startswith("#"):
            continue
        assert "LOST" not in raw or not raw.startswith("CPU:"), f"kernel lost events: {raw}"
        m = LINE_RE.match(raw)
        assert m, f"unparsed trace line: {raw!r}"
        ev = EVENT_RE.match(m["body"])  # fields=0 syscall lines are "sys_write(fd: 1, ...)"
        event, rest = (ev["event"], ev["rest"]) if ev else ("", m["body"])
        out.append(KernelLine(int(m["pid"]), int(m["cpu"]), m["flags"], m["ts"], event, rest))
    return out


def _trace(tmp_path: Path, clock: str) -> Traced:
    with private_instance(clock.replace("-", "")) as inst:
        inst.write("buffer_size_kb", "64000")
        inst.write("trace_clock", clock)
        inst.enable(ALL_EVENTS)
        inst.write("tracing_on", "1")
        try:
            run_workload()
        finally:
            inst.write("tracing_on", "0")
        fields_text = inst.read_trace(fields=True)
        plain_text = inst.read_trace(fields=False)
        cap = inst.write_capture(tmp_path / "run.ftipc", ALL_EVENTS, clock)
    return Traced(Decoder(cap), _parse_trace(fields_text), _parse_trace(plain_text), clock)


@pytest.fixture(scope="module")
def traced_local(tmp_path_factory) -> Traced:
    return _trace(tmp_path_factory.mktemp("local"), "local")


@pytest.fixture(scope="module")
def traced_tsc(tmp_path_factory) -> Traced:
    return _trace(tmp_path_factory.mktemp("tsc"), "x86-tsc")


def _split_fields(fmt: EventFormat, rest: str) -> dict[str, str]:
    """``a=1 b=x y c=3`` -> values, using the format's field order (values may hold spaces)."""
    own = fmt.own_fields
    out = {}
    pos = 0
    for i, f in enumerate(own):
        head = f"{f.name}="
        assert rest.startswith(head, pos), f"{fmt.name}: expected {head!r} at {pos} in {rest!r}"
        start = pos + len(head)
        if i + 1 < len(own):
            nxt = rest.find(f" {own[i + 1].name}=", start)
            assert nxt >= 0, f"{fmt.name}: no {own[i + 1].name} in {rest!r}"
        else:
            nxt = len(rest)
        out[f.name] = rest[start:nxt]
        pos = nxt + 1
    return out


def _field_matches(f: Field, ours, text: str, plain: dict[str, str]) -> bool:
    """Compare one decoded value with the kernel's ``fields`` rendering of it."""
    if f.is_string:
        return ours == text
    if f.ctype in ("char *", "const char *"):  # printed as the field's own address: use fields=0
        return f.name in plain and int(plain[f.name], 0) == ours
    mask = (1 << (8 * f.size)) - 1
    if m := HEX_DEC_RE.fullmatch(text):
        return int(m[1], 16) == ours & mask
    if f.size == 1 and (m := BYTE_RE.fullmatch(text)):
        return int(m[1]) == ours & mask
    if m := SYMBOL_RE.fullmatch(text):  # e.g. ip=func+0x29/0x40 (-2115256775): the low 32 bits
        return (int(m[1]) - ours) % (1 << 32) == 0
    return False


def _compare(t: Traced) -> dict[str, int]:
    dec = t.decoder
    in_ns = t.clock == "local"
    lines, plain = t.fields_lines, t.plain_lines
    assert len(lines) == len(plain)
    formats = {f.name: f for f in dec.format_list}
    counts: dict[str, int] = {}
    mismatches: list[str] = []
    i = 0
    for batch in dec.batches():
        for r, fl, pc in _records_with_flags(batch):
            assert i < len(lines), "the decoder found more events than the kernel printed"
            k, kp = lines[i], plain[i]
            fmt = formats[r["event"]]
            ts_ok = (format_ts(r["ts"], True).strip() == k.ts) if in_ns else (int(k.ts) == r["ts"])
            problems = []
            if (r["cpu"], r["tid"], r["event"]) != (k.cpu, k.pid, k.event):
                problems.append(f"cpu/tid/event {r['cpu']}/{r['tid']}/{r['event']} != {k.cpu}/{k.pid}/{k.event}")
            if not ts_ok:
                problems.append(f"ts {r['ts']} vs {k.ts}")
            if latency_flags(fl, pc) != k.flags:
                problems.append(f"flags {latency_flags(fl, pc)} vs {k.flags}")
            if (kp.cpu, kp.pid, kp.ts) != (k.cpu, k.pid, k.ts):
                problems.append("the two trace reads disagree")
            if not problems:
                values = _split_fields(fmt, k.rest)
                pargs = dict(PLAIN_ARG_RE.findall(kp.rest))
                for f in fmt.own_fields:
                    if not _field_matches(f, r[record_key(f.name)], values[f.name], pargs):
                        problems.append(f"{f.name}: decoded {r[record_key(f.name)]!r}, kernel {values[f.name]!r}")
            if problems and len(mismatches) < 20:
                mismatches.append(f"event {i} ({k.event} cpu {k.cpu} ts {k.ts}): " + "; ".join(problems))
            counts[r["event"]] = counts.get(r["event"], 0) + 1
            i += 1
    assert not mismatches, "\n".join(mismatches)
    assert i == len(lines), f"decoded {i} events, the kernel printed {len(lines)}"
    return counts


def _records_with_flags(batch):
    fl = {eid: (t.flags.tolist(), t.preempt_count.tolist()) for eid, t in batch.by_id.items()}
    for r, eid, row in zip(batch.records(), batch.event_id.tolist(), batch.row.tolist()):
        f, p = fl[eid]
        yield r, f[row], p[row]


def _check_all(t: Traced) -> None:
    counts = _compare(t)
    total = sum(counts.values())
    assert total >= MIN_EVENTS, f"only {total} events traced"
    missing = {e.split(":")[1] for e in ALL_EVENTS} - set(counts)
    assert not missing, f"event types that never occurred: {sorted(missing)}"
    assert not t.decoder.warnings, [str(w) for w in t.decoder.warnings]
    longest = max(len(r["filename"]) for r in t.decoder.iter_records(events=["sched_process_exec"]))
    assert longest > 112, "no exec record long enough for a type_len 0 ring-buffer record"
    st = t.decoder.stats()
    assert st.events == total and st.unknown_ids == {}
    assert all(c.corrupt_pages == 0 for c in st.per_cpu.values())


def test_decode_equals_kernel_trace_local_clock(traced_local):
    _check_all(traced_local)


def test_decode_equals_kernel_trace_tsc_clock_exact_timestamps(traced_tsc):
    _check_all(traced_tsc)


def test_reference_and_vectorized_walkers_agree_on_kernel_pages(traced_local):
    import numpy as np

    from ftraceipc.decode.ringbuf import walk_buffer_reference, walk_pages

    dec = traced_local.decoder
    for cpu in dec.meta.cpus:
        raw = dec.capture.cpu_path(cpu).read_bytes()
        ref = walk_buffer_reference(raw, dec.layout)
        vec = walk_pages(np.frombuffer(raw, dtype=np.uint8), dec.layout)
        assert vec.ts.tolist() == [r.ts for w in ref for r in w.records]
        assert vec.payload_off.tolist() == [r.payload_offset for w in ref for r in w.records]
        assert vec.payload_len.tolist() == [r.payload_len for w in ref for r in w.records]
        assert vec.missed_events.tolist() == [w.missed_events for w in ref]
        assert all(w.error.value == 0 for w in ref)


def _stat(text: str, key: str) -> int:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split(":", 1)[1])
    raise KeyError(key)


def test_lost_events_match_the_kernel_overrun_counter(tmp_path):
    """A tiny buffer overflows; the first page read carries RB_MISSED_EVENTS and, when the page has
    8 bytes to spare, the count (RB_MISSED_STORED), which equals the per-CPU ``overrun`` counter;
    ``entries`` equals what we decode."""
    with private_instance("lost") as inst:
        inst.write("buffer_size_kb", "64")
        inst.enable(ALL_EVENTS)
        inst.write("tracing_on", "1")
        try:
            run_workload(perf_loops=30)
        finally:
            inst.write("tracing_on", "0")
        cpus = sorted(int(p.name[3:]) for p in (inst.path / "per_cpu").iterdir() if p.name[3:].isdigit())
        stats = {c: inst.read(f"per_cpu/cpu{c}/stats") for c in cpus}
        cap = inst.write_capture(tmp_path / "lost.ftipc", ALL_EVENTS, "local")
    st = Decoder(cap).stats()
    assert sum(_stat(s, "overrun") for s in stats.values()) > 0, "the buffer did not overflow"
    for cpu in cpus:
        cs = st.per_cpu[cpu]
        overrun = _stat(stats[cpu], "overrun")
        assert cs.events == _stat(stats[cpu], "entries")
        assert cs.pages_missed == (1 if overrun else 0) and cs.corrupt_pages == 0
        if cs.pages_missed_unknown == 0:
            assert cs.missed_events == overrun
        else:  # the flagged page was too full to store the count after its data
            assert cs.missed_events == 0 and cs.pages_missed_unknown == 1
