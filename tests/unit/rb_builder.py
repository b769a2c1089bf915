"""Build ring-buffer pages by hand, the way the kernel writes them, and say what a walker must find.

Each method appends one record and returns the byte offset it was written at. ``expected`` is the
list of (ts, payload offset in page, payload) that the builder itself computed, an oracle that does
not share code with the walkers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ftraceipc.capture.store import CaptureDir, CaptureMeta
from ftraceipc.decode.formats import EventFormat

PAGE = 4096
DATA = 16  # header: u64 timestamp, local_t commit (8 bytes on x86_64)
TS_SHIFT = 27
DELTA_MAX = (1 << 27) - 1
PADDING, TIME_EXTEND, TIME_STAMP = 29, 30, 31
MISSED_EVENTS, MISSED_STORED = 1 << 31, 1 << 30
U64 = (1 << 64) - 1
DATA_DIR = Path(__file__).parent.parent / "data" / "tracefs"


def hdr(type_len: int, delta: int) -> bytes:
    """The u32 record header: type_len in the low 5 bits, time_delta in the high 27."""
    assert 0 <= type_len < 32 and 0 <= delta <= DELTA_MAX
    return struct.pack("<I", type_len | (delta << 5))


@dataclass
class PageBuilder:
    base_ts: int
    page_size: int = PAGE
    body: bytearray = field(default_factory=bytearray)
    ts: int = 0
    expected: list[tuple[int, int, bytes]] = field(default_factory=list)

    def __post_init__(self):
        self.ts = self.base_ts

    @property
    def capacity(self) -> int:
        return self.page_size - DATA

    @property
    def room(self) -> int:
        return self.capacity - len(self.body)

    def _add(self, b: bytes) -> int:
        off = DATA + len(self.body)
        self.body += b
        return off

    def event(self, payload: bytes, delta: int = 0, force_long: bool = False) -> int:
        """A data record; payload padded to 4 bytes. <= 112 bytes: type_len = len/4, else type_len 0
        with array[0] = payload + 4 (the length word counts itself)."""
        payload = payload + b"\0" * (-len(payload) % 4)
        self.ts = (self.ts + delta) & U64
        if len(payload) <= 28 * 4 and payload and not force_long:
            off = self._add(hdr(len(payload) // 4, delta) + payload)
            self.expected.append((self.ts, off + 4, payload))
        else:
            off = self._add(hdr(0, delta) + struct.pack("<I", len(payload) + 4) + payload)
            self.expected.append((self.ts, off + 8, payload))
        return off

    def extend(self, delta: int) -> int:
        """TIME_EXTEND: adds (array[0] << 27) + time_delta."""
        self.ts = (self.ts + delta) & U64
        return self._add(hdr(TIME_EXTEND, delta & DELTA_MAX) + struct.pack("<I", delta >> TS_SHIFT))

    def stamp(self, ts: int) -> int:
        """TIME_STAMP: absolute ts without its top 5 bits. A reader takes them back from the current
        time (the kernel's rb_fix_abs_ts), carrying once if the low part went backwards."""
        low = ts & ((1 << 59) - 1)
        msb = self.ts & (0x1F << 59)
        if msb:
            low |= msb
            if low < self.ts:
                low = (low + (1 << 59)) & U64
        self.ts = low
        return self._add(hdr(TIME_STAMP, ts & DELTA_MAX) + struct.pack("<I", (ts & ((1 << 59) - 1)) >> TS_SHIFT))

    def discarded(self, total: int, delta: int = 1) -> int:
        """A discarded event (PADDING, delta != 0) of ``total`` bytes; it does not move the clock."""
        assert total >= 8 and total % 4 == 0 and delta
        return self._add(hdr(PADDING, delta) + struct.pack("<I", total - 4) + b"\xaa" * (total - 8))

    def end_padding(self) -> int:
        """PADDING with delta 0: nothing more on this page (counted in the commit size here)."""
        return self._add(hdr(PADDING, 0))

    def build(self, missed: bool = False, missed_count: int | None = None, commit: int | None = None) -> bytes:
        size = len(self.body) if commit is None else commit
        flags = (MISSED_EVENTS if missed or missed_count is not None else 0)
        tail = b""
        if missed_count is not None:
            flags |= MISSED_STORED
            tail = struct.pack("<Q", missed_count)
        page = struct.pack("<QQ", self.base_ts, size | flags) + bytes(self.body) + tail
        return page + b"\0" * (self.page_size - len(page))


def pack_event(fmt: EventFormat, values: dict, strings: dict[str, str | bytes] | None = None, pid: int = 1,
               flags: int = 0, preempt: int = 0) -> bytes:
    """A record payload of ``fmt``: fixed part from ``values``, ``__data_loc`` strings after it."""
    rec = np.zeros(1, dtype=fmt.dtype)
    rec["common_type"] = fmt.id
    rec["common_pid"] = pid
    rec["common_flags"] = flags
    rec["common_preempt_count"] = preempt
    tail = b""
    for f in fmt.own_fields:
        if f.is_dynamic:
            s = (strings or {}).get(f.name, "")
            data = s.encode() + b"\0" if isinstance(s, str) else s  # text gets its NUL, raw bytes not
            start = fmt.record_size + len(tail)
            if f.is_rel_loc:
                start -= f.offset + f.size
            rec[f.name] = (len(data) << 16) | start
            tail += data
        elif f.name in values:
            v = values[f.name]
            if f.is_string:
                b = v.encode() if isinstance(v, str) else v
                rec[f.name] = np.frombuffer(b.ljust(f.size, b"\0")[: f.size], dtype=np.uint8)
            else:
                rec[f.name] = v
    return rec.tobytes() + tail


def write_capture(root: Path, cpu_pages: dict[int, list[bytes]], formats: list[str], clock: str = "local",
                  page_size: int = PAGE, extra_bytes: dict[int, bytes] | None = None) -> CaptureDir:
    """A capture directory with the kernel's header/format files (tests/data) and these pages."""
    cap = CaptureDir(root)
    (root / "cpu").mkdir(parents=True)
    cap.tracefs_dir.mkdir()
    for name in ("header_page", "header_event"):
        (cap.tracefs_dir / name).write_text((DATA_DIR / name).read_text())
    (cap.tracefs_dir / "saved_cmdlines").write_text("100 writer\n200 reader\n")
    for ev in formats:
        system, name = ev.split(":")
        dst = cap.format_path(system, name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text((DATA_DIR / "events" / system / name / "format").read_text())
    for cpu, pages in cpu_pages.items():
        cap.cpu_path(cpu).write_bytes(b"".join(pages) + (extra_bytes or {}).get(cpu, b""))
    cap.write_meta(CaptureMeta(cpus=sorted(cpu_pages), page_size=page_size, clock=clock, events=formats,
                               complete=True))
    return cap


def load_format(event: str) -> EventFormat:
    from ftraceipc.decode.formats import parse_format

    system, name = event.split(":")
    return parse_format((DATA_DIR / "events" / system / name / "format").read_text(), system)
