"""Parse the kernel's self-description of the trace buffer: event ``format`` files, ``header_page``
and ``header_event``. Nothing about the layout is hard-coded: offsets, sizes, signedness and the
special type_len values all come from these files.

An event ``format`` file looks like::

    name: sched_switch
    ID: 372
    format:
    \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
    ...                                     (the common fields, then a blank line)
    \tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;
    \tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;
    \tfield:char buf[];\toffset:16;\tsize:0;\tsigned:0;

    print fmt: "prev_comm=%s ...", REC->prev_comm, ...

Kernel facts used here:

* A ``__data_loc`` field is a u32: the low 16 bits are the offset of the data from the start of the
  record, the high 16 bits its length (a string's length includes its NUL).
* A ``__rel_loc`` field is the same, but the offset counts from the end of the field itself
  (field offset + 4).
* A ``type name[]`` field of size 0 is a flexible array that runs to the end of the record
  (``ftrace:print``'s ``buf``).
* The ``ctype`` of a field may not match its size: syscall arguments are declared with their C
  type (``unsigned int fd``) but stored as 8-byte longs. The size and ``signed`` flag are the truth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ftraceipc.errors import CaptureFormatError

_FIELD_RE = re.compile(
    r"^\s*field:\s*(?P<decl>[^;]*);\s*offset:\s*(?P<offset>\d+);\s*size:\s*(?P<size>\d+);"
    r"(?:\s*signed:\s*(?P<signed>-?\d+);)?"
)
_ARRAY_RE = re.compile(r"^(?P<head>.*?)\s*\[\s*(?P<len>[^\]]*)\s*\]\s*$")
_HEADER_EVENT_BITS_RE = re.compile(r"^\s*(\w+)\s*:\s*(\d+)\s*bits", re.M)
_HEADER_EVENT_TYPE_RE = re.compile(r"^\s*(\w+)\s*:\s*type\s*==\s*(\d+)", re.M)
_HEADER_EVENT_MAX_RE = re.compile(r"data\s+max\s+type_len\s*==\s*(\d+)")

LITTLE_ENDIAN = "<"
_INT_KINDS = {1: "1", 2: "2", 4: "4", 8: "8"}


@dataclass(frozen=True)
class Field:
    """One field of an event record, as the format file describes it."""

    name: str
    ctype: str  # the C type without the name, e.g. "char[16]", "__data_loc char[]", "const char *"
    offset: int
    size: int
    signed: bool
    array_len: int | None = None  # element count of a fixed array (``char comm[16]`` -> 16); 0 = flexible
    is_common: bool = False

    @property
    def is_dynamic(self) -> bool:
        """``__data_loc``/``__rel_loc``: a u32 locating variable-length data elsewhere in the record."""
        return self.ctype.startswith(("__data_loc", "__rel_loc"))

    @property
    def is_rel_loc(self) -> bool:
        """``__rel_loc``: the data offset counts from the end of this field, not the record start."""
        return self.ctype.startswith("__rel_loc")

    @property
    def is_pointer(self) -> bool:
        return "*" in self.ctype and not self.is_dynamic

    @property
    def is_array(self) -> bool:
        return self.array_len is not None

    @property
    def is_flexible(self) -> bool:
        """``char buf[]`` of size 0: the data runs from ``offset`` to the end of the record."""
        return self.array_len == 0 and self.size == 0 and not self.is_dynamic

    @property
    def base_type(self) -> str:
        """The element type: ``char`` for ``char[16]`` and ``__data_loc char[]``."""
        t = self.ctype
        for prefix in ("__data_loc ", "__rel_loc "):
            if t.startswith(prefix):
                t = t[len(prefix):]
        return t.split("[", 1)[0].strip()

    @property
    def is_string(self) -> bool:
        """A char array (fixed, flexible or dynamic): decoded as text up to the first NUL."""
        return self.base_type in ("char", "const char") and (self.is_array or self.is_dynamic)

    @property
    def elem_size(self) -> int:
        """Size of one element: the field size, or size/count for a fixed array."""
        if self.is_dynamic or self.array_len == 0:
            return _scalar_size(self.base_type) or 1
        if self.array_len:
            return self.size // self.array_len
        return self.size

    def numpy_dtype(self) -> np.dtype:
        """The dtype of this field inside a record (dynamic fields: their u32 locator)."""
        if self.is_dynamic:
            return np.dtype(LITTLE_ENDIAN + "u4")
        if self.array_len:
            n = self.array_len
            es = self.elem_size
            if self.is_string or es * n != self.size or es not in _INT_KINDS:
                return np.dtype((np.uint8, (self.size,)))
            return np.dtype((_int_dtype(es, self.signed), (n,)))
        if self.size in _INT_KINDS:
            return _int_dtype(self.size, self.signed)
        return np.dtype((np.uint8, (self.size,)))


def _int_dtype(size: int, signed: bool) -> np.dtype:
    return np.dtype(LITTLE_ENDIAN + ("i" if signed else "u") + _INT_KINDS[size])


_SCALAR_SIZES = {"char": 1, "unsigned char": 1, "signed char": 1, "u8": 1, "__u8": 1, "s8": 1, "bool": 1,
                 "short": 2, "unsigned short": 2, "u16": 2, "__u16": 2, "s16": 2,
                 "int": 4, "unsigned int": 4, "unsigned": 4, "u32": 4, "__u32": 4, "s32": 4,
                 "long": 8, "unsigned long": 8, "u64": 8, "__u64": 8, "s64": 8, "long long": 8,
                 "unsigned long long": 8}


def _scalar_size(t: str) -> int | None:
    return _SCALAR_SIZES.get(t.strip())


@dataclass
class EventFormat:
    """One event type: its id, its fields (common ones first) and a numpy dtype for the fixed part."""

    name: str
    system: str | None
    id: int
    fields: list[Field]
    print_fmt: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.system}:{self.name}" if self.system else self.name

    @property
    def common_fields(self) -> list[Field]:
        return [f for f in self.fields if f.is_common]

    @property
    def own_fields(self) -> list[Field]:
        return [f for f in self.fields if not f.is_common]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def record_size(self) -> int:
        """Bytes of the fixed part of a record (the end of its last fixed field)."""
        return max((f.offset + f.size for f in self.fields), default=0)

    @cached_property
    def dtype(self) -> np.dtype:
        """Structured dtype of the fixed part: explicit offsets, itemsize = ``record_size``.

        A batch of records of this type, gathered into an ``(n, record_size)`` uint8 array, becomes
        a structured array with ``.view(dtype)``. Flexible arrays (size 0) are left out.
        """
        return self.padded_dtype(self.record_size)

    def padded_dtype(self, itemsize: int) -> np.dtype:
        """The same dtype with a larger itemsize (records are gathered in 4-byte words)."""
        fs = [f for f in self.fields if f.size > 0]
        return np.dtype({"names": [f.name for f in fs], "formats": [f.numpy_dtype() for f in fs],
                         "offsets": [f.offset for f in fs], "itemsize": max(itemsize, self.record_size)})


def _split_decl(decl: str) -> tuple[str, str, int | None]:
    """``char prev_comm[16]`` -> ("char[16]", "prev_comm", 16); ``__data_loc char[] filename`` ->
    ("__data_loc char[]", "filename", None); ``const char * buf`` -> ("const char *", "buf", None)."""
    decl = " ".join(decl.split())
    m = _ARRAY_RE.match(decl)
    if m and not decl.startswith(("__data_loc", "__rel_loc")):
        head, length = m.group("head"), m.group("len").strip()
        ctype, _, name = head.rpartition(" ")
        try:
            n = int(length, 0) if length else 0
        except ValueError:
            n = 0  # a symbolic length (rare); the size tells the bytes
        return f"{ctype}[{length}]", name, n
    # "__data_loc char[] name", "const char * name", "unsigned long name"
    head, _, name = decl.rpartition(" ")
    name = name.lstrip("*")
    if decl.rpartition(" ")[2].startswith("*"):
        head = head + " *"
    return head.strip(), name, None


def parse_format(text: str, system: str | None = None) -> EventFormat:
    """Parse one ``events/<system>/<event>/format`` file."""
    name = None
    ev_id = None
    fields: list[Field] = []
    print_fmt = ""
    in_common = True
    saw_field = False
    for line in text.splitlines():
        if line.startswith("name:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("ID:"):
            try:
                ev_id = int(line.split(":", 1)[1].strip())
            except ValueError:
                raise CaptureFormatError(f"bad event ID line {line!r} in format of {name}") from None
        elif line.startswith("print fmt:"):
            print_fmt = line.split(":", 1)[1].strip()
        elif not line.strip():
            if saw_field:
                in_common = False  # the blank line separates common fields from the event's own
        else:
            m = _FIELD_RE.match(line)
            if not m:
                continue
            ctype, fname, alen = _split_decl(m.group("decl"))
            saw_field = True
            fields.append(Field(name=fname, ctype=ctype, offset=int(m.group("offset")),
                                size=int(m.group("size")), signed=m.group("signed") not in (None, "0"),
                                array_len=alen, is_common=in_common and fname.startswith("common_")))
    if name is None or ev_id is None:
        raise CaptureFormatError(f"not an event format (no name/ID){' for ' + system if system else ''}")
    fmt = EventFormat(name=name, system=system, id=ev_id, fields=fields, print_fmt=print_fmt)
    _check_fields(fmt)
    return fmt


def _check_fields(fmt: EventFormat) -> None:
    """Fields the decoder can lay over a record: unique names, sizes that fit their kind (a damaged
    format file is refused here, with its event named, not met as a crash while decoding)."""
    seen: set[str] = set()
    for f in fmt.fields:
        why = None
        if f.name in seen or not f.name:
            why = "is named twice" if f.name else "has no name"
        elif f.offset < 0 or f.size < 0 or f.offset + f.size > 1 << 16:
            why = f"is out of range (offset {f.offset}, size {f.size})"
        elif f.is_dynamic and f.size != 4:
            why = f"is a data location of {f.size} bytes, not 4"
        elif f.size == 0 and not f.is_flexible:
            why = "has size 0 and is not a flexible array"
        if why:
            raise CaptureFormatError(f"format of {fmt.full_name}: field {f.name!r} {why}")
        seen.add(f.name)
    try:
        fmt.dtype
    except (ValueError, TypeError) as e:
        raise CaptureFormatError(f"format of {fmt.full_name}: its fields do not make a record layout ({e})") from None


@dataclass(frozen=True)
class HeaderPage:
    """Layout of a ring-buffer page (``events/header_page``): ``u64 timestamp; local_t commit; data``.

    ``commit`` holds the bytes of data used plus two flags in bits 31 and 30 (RB_MISSED_EVENTS,
    RB_MISSED_STORED). ``data_size`` is the data capacity of one page (sub-buffer size - header).
    """

    timestamp_offset: int
    timestamp_size: int
    commit_offset: int
    commit_size: int
    data_offset: int
    data_size: int

    @property
    def page_size(self) -> int:
        return self.data_offset + self.data_size

    def for_page_size(self, page_size: int) -> "HeaderPage":
        """The same layout for another sub-buffer size (``buffer_subbuf_size_kb`` changes it)."""
        return HeaderPage(self.timestamp_offset, self.timestamp_size, self.commit_offset, self.commit_size,
                          self.data_offset, page_size - self.data_offset)


def parse_header_page(text: str) -> HeaderPage:
    """Parse ``events/header_page``. The ``overwrite`` pseudo-field (an alias of commit) is ignored."""
    got: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        m = _FIELD_RE.match(line.replace("field: ", "field:"))
        if m:
            _, fname, _ = _split_decl(m.group("decl"))
            got.setdefault(fname, (int(m.group("offset")), int(m.group("size"))))
    try:
        ts, commit, data = got["timestamp"], got["commit"], got["data"]
    except KeyError as e:
        raise CaptureFormatError(f"header_page lacks the {e.args[0]} field") from None
    return HeaderPage(ts[0], ts[1], commit[0], commit[1], data[0], data[1])


@dataclass(frozen=True)
class HeaderEvent:
    """The compressed record header (``events/header_event``): a u32 of ``type_len`` (low bits)
    and ``time_delta`` (high bits), then ``array[0]`` when the type needs it."""

    type_len_bits: int = 5
    time_delta_bits: int = 27
    array_bits: int = 32
    padding: int = 29
    time_extend: int = 30
    time_stamp: int = 31
    data_max_type_len: int = 28

    @property
    def type_len_mask(self) -> int:
        return (1 << self.type_len_bits) - 1

    @property
    def time_delta_mask(self) -> int:
        return (1 << self.time_delta_bits) - 1

    @property
    def ts_shift(self) -> int:
        """TIME_EXTEND/TIME_STAMP: value = (array[0] << ts_shift) | time_delta (kernel TS_SHIFT)."""
        return self.time_delta_bits


def parse_header_event(text: str) -> HeaderEvent:
    """Parse ``events/header_event``."""
    bits = {k: int(v) for k, v in _HEADER_EVENT_BITS_RE.findall(text)}
    types = {k: int(v) for k, v in _HEADER_EVENT_TYPE_RE.findall(text)}
    mx = _HEADER_EVENT_MAX_RE.search(text)
    try:
        he = HeaderEvent(type_len_bits=bits["type_len"], time_delta_bits=bits["time_delta"],
                         array_bits=bits.get("array", 32), padding=types["padding"],
                         time_extend=types["time_extend"], time_stamp=types["time_stamp"],
                         data_max_type_len=int(mx.group(1)) if mx else types["padding"] - 1)
    except KeyError as e:
        raise CaptureFormatError(f"header_event lacks {e.args[0]}") from None
    if he.type_len_bits + he.time_delta_bits != 32:
        raise CaptureFormatError(f"unsupported record header: {he.type_len_bits}+{he.time_delta_bits} bits")
    return he
