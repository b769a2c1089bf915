"""Write a :class:`~ftraceipc.model.ipc.Model` as a text report, one JSON object, or CSV/Parquet tables.

- ``text``: a report for humans (header, tasks, resources, top talkers, blocked time, wakes, what
  could not be attributed). ``rich`` tables when the output is a terminal, plain aligned columns
  otherwise.
- ``json``: one object ``{"capture", "capture_id", "meta", "tasks", "resources", "edges",
  "critical_path", "unattributed", "impossible", "warnings", "stats"}``, one array element per line;
  ``critical_path`` is null or ``{"root", "start_ts", "end_ts", "wall_ns", "segments", "tasks",
  "waits", "resources", "stats"}`` (ftraceipc.model.critical); ``warnings``
  is what the capture is missing (``ftraceipc.problems``, given by the caller; [] when none). Each edge has ``type``,
  ``src``, ``dst`` and its own properties only. With episodes, one ``BLOCKED_ON`` per episode and
  one ``WAKES`` per wakeup (``"episode": true``) follow the aggregated edges; they are written row
  by row, never built as one list. NaN becomes null, numpy numbers Python numbers.
- ``csv`` / ``parquet``: a directory with ``tasks``, ``resources``, ``edges``, the critical path's
  ``critical_path`` (segments), ``critical_tasks``, ``critical_waits`` and ``critical_resources``
  (when the model has one)
  (+ ``episodes``, ``wakeups`` when built with episodes). In ``edges`` ``src``/``dst`` are strings (a tid's digits,
  or a rid, which always has a ``:``); nested values (lists, dicts) are JSON text in CSV, dicts are
  JSON text in Parquet too.

docs/schema.md describes every column.
"""

from __future__ import annotations

import enum
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator, TextIO

import numpy as np
import pandas as pd

from ftraceipc.errors import CommandError, FtraceIPCError
from ftraceipc.model import ipc
from ftraceipc.model.ipc import Model

FORMATS = ("text", "json", "csv", "parquet")
DIR_FORMATS = ("csv", "parquet")
TABLES = ("tasks", "resources", "edges", "critical_path", "critical_tasks", "critical_waits", "critical_resources",
          "episodes", "wakeups")
TOP = 20  # rows per text table before "... N more"
UNKNOWN = "(unknown)"  # the key of blocked time on no known resource
_CHUNK = 10_000  # rows converted to Python at a time when streaming


# --- values --------------------------------------------------------------------------------------
def py(v: Any) -> Any:
    """One cell as a JSON-able Python value: numpy scalars unwrapped, NaN/NA/inf -> None, containers
    converted recursively, anything else as its string."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, dict):
        return {str(k): py(x) for k, x in v.items()}
    if isinstance(v, (set, frozenset)):
        return [py(x) for x in sorted(v, key=str)]
    if isinstance(v, (list, tuple, np.ndarray, pd.Series)):
        return [py(x) for x in v]
    if isinstance(v, enum.Enum):
        return py(v.value)
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return str(v)


def _int_like(s: pd.Series) -> bool:
    """A float column whose values are all whole numbers (ints that gained NaN on the way)."""
    vals = s.to_numpy(dtype=float, na_value=np.nan)
    fin = vals[np.isfinite(vals)]
    return bool(len(fin)) and bool(np.all(fin == np.round(fin))) and bool(np.all(np.abs(fin) < 2**63))


def column_values(s: pd.Series) -> list:
    """A column as a list of JSON-able Python values (fast paths for plain numpy dtypes)."""
    dt = s.dtype
    if isinstance(dt, np.dtype):
        if dt.kind in "iub":
            return s.tolist()
        if dt.kind == "f":
            whole = _int_like(s)
            return [None if not math.isfinite(x) else (int(x) if whole else x) for x in s.tolist()]
    return [py(x) for x in s.tolist()]


def rows(df: pd.DataFrame | None, rename: dict[str, str] | None = None, extra: dict[str, Any] | None = None,
         chunk: int = _CHUNK) -> Iterator[dict[str, Any]]:
    """The rows of ``df`` as dicts of JSON-able values, converted ``chunk`` rows at a time."""
    if df is None or not len(df):
        return
    cols = [(rename or {}).get(c, c) for c in df.columns]
    head = dict(extra or {})
    for start in range(0, len(df), chunk):
        part = df.iloc[start:start + chunk]
        values = [column_values(part[c]) for c in part.columns]
        for row in zip(*values):
            d = dict(head)
            d.update(zip(cols, row))
            yield d


def _dumps(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# --- labels and units (shared with summary.py) ----------------------------------------------------
def human_bytes(n: float | int | None) -> str:
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def short_list(items: Iterable[Any], limit: int = 6) -> str:
    """``items`` joined by ", " for people: the first ``limit``, then "…and 681 more"."""
    xs = [str(x) for x in items]
    if len(xs) <= limit:
        return ", ".join(xs)
    return ", ".join(xs[:limit]) + f", …and {len(xs) - limit:,} more"


def task_label(tid: Any, comm: Any) -> str:
    """How every output names a task: ``comm[tid]`` (``?[tid]`` while its name is unknown)."""
    return f"{comm if isinstance(comm, str) and comm else '?'}[{tid}]"


def human_ns(ns: float | int | None) -> str:
    if ns is None or (isinstance(ns, float) and not math.isfinite(ns)) or ns < 0:
        return "-"  # -1: not measured (e.g. the wakee never ran before the capture ended)
    ns = float(ns)
    if ns < 1e3:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.1f} us"
    if ns < 1e9:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.2f} s"


def _num(v: Any, default: float = 0) -> float:
    v = py(v)
    return default if v is None or isinstance(v, (str, list, dict)) else v


def is_tracer(model: Model) -> pd.Series:
    """True for ftraceipc's own tasks (left out of reports)."""
    t = model.tasks
    if "tracer" not in t.columns or not len(t):
        return pd.Series(False, index=t.index, dtype=bool)
    return pd.Series([py(v) is True for v in t["tracer"].tolist()], index=t.index, dtype=bool)


def user_tasks(model: Model) -> pd.DataFrame:
    return model.tasks[~is_tracer(model)]


def tracer_tids(model: Model) -> set[int]:
    t = model.tasks
    return set(column_values(t.loc[is_tracer(model), "tid"])) if len(t) else set()


def _without_tracer(model: Model, df: pd.DataFrame) -> pd.DataFrame:
    tracer = tracer_tids(model)
    if not tracer or not len(df):
        return df
    return df[[py(v) not in tracer for v in df["tid"].tolist()]]


class Labels:
    """``comm[tid]`` for tasks, the rid for resources."""

    def __init__(self, model: Model):
        t = model.tasks
        self.comm: dict[int, str] = {}
        if len(t):
            for tid, comm in zip(column_values(t["tid"]), column_values(t["comm"])):
                if tid is not None:
                    self.comm[int(tid)] = comm if isinstance(comm, str) and comm else "?"

    def task(self, tid: Any) -> str:
        tid = py(tid)
        if tid is None:
            return "-"
        try:
            return task_label(int(tid), self.comm.get(int(tid)))
        except (TypeError, ValueError):
            return str(tid)


def lost_total(model: Model) -> int | None:
    """Events the kernel lost while capturing: meta.json's per-CPU counters (as ``ftraceipc info``
    counts them), else ``stats["lost"]``/``stats["lost_events"]``."""
    per_cpu = model.meta.get("lost") if isinstance(model.meta, dict) else None
    if isinstance(per_cpu, dict) and per_cpu:
        total = 0
        for v in per_cpu.values():
            if isinstance(v, dict):
                g = lambda k: int(py(v.get(k)) or 0)  # noqa: E731
                total += max(g("overrun"), g("missed_events")) + g("commit_overrun") + g("dropped_events")
        return total
    for key in ("lost", "lost_events"):
        lost = py(model.stats.get(key))
        if isinstance(lost, (int, float)):
            return int(lost)
    return None


def duration_ns(model: Model) -> float | None:
    d = py(model.stats.get("duration_ns"))
    if isinstance(d, (int, float)):
        return d
    m = model.meta if isinstance(model.meta, dict) else {}
    if isinstance(m.get("start_ts"), (int, float)) and isinstance(m.get("stop_ts"), (int, float)):
        return m["stop_ts"] - m["start_ts"]
    if isinstance(m.get("start_wall"), (int, float)) and isinstance(m.get("stop_wall"), (int, float)):
        return (m["stop_wall"] - m["start_wall"]) * 1e9
    return None


def io_by(model: Model, key: str) -> pd.DataFrame:
    """Bytes and calls written/read per ``key`` (``tid`` or ``rid``): columns written, read,
    write_calls, read_calls, writers, readers."""
    io = _without_tracer(model, model.io)
    cols = ["written", "read", "write_calls", "read_calls", "writers", "readers"]
    if not len(io):
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame({"key": column_values(io[key]), "type": column_values(io["type"]),
                       "bytes": [_num(v) for v in io["bytes"].tolist()],
                       "calls": [_num(v) for v in io["calls"].tolist()],
                       "other": column_values(io["rid" if key == "tid" else "tid"])})
    w, r = df[df["type"] == "WRITES"], df[df["type"] == "READS"]
    out = pd.DataFrame({
        "written": w.groupby("key")["bytes"].sum(), "read": r.groupby("key")["bytes"].sum(),
        "write_calls": w.groupby("key")["calls"].sum(), "read_calls": r.groupby("key")["calls"].sum(),
        "writers": w.groupby("key")["other"].nunique(), "readers": r.groupby("key")["other"].nunique(),
    })
    return out.fillna(0)


def blocked_by(model: Model, key: str) -> pd.DataFrame:
    """Blocked time per ``key`` (``tid`` or ``rid``): blocked_ns, episodes, max_ns, tasks."""
    b = _without_tracer(model, model.blocked)
    if not len(b):
        return pd.DataFrame(columns=["blocked_ns", "episodes", "max_ns", "tasks"])
    keys = [UNKNOWN if k is None else k for k in column_values(b[key])]
    df = pd.DataFrame({"key": pd.Series(keys, dtype=object), "tid": column_values(b["tid"]),
                       "blocked_ns": [_num(v) for v in b["blocked_ns"].tolist()],
                       "episodes": [_num(v) for v in b["episodes"].tolist()],
                       "max_ns": [_num(v) for v in b["max_ns"].tolist()]})
    g = df.groupby("key")
    return pd.DataFrame({"blocked_ns": g["blocked_ns"].sum(), "episodes": g["episodes"].sum(),
                         "max_ns": g["max_ns"].max(), "tasks": g["tid"].nunique()})


# --- JSON ------------------------------------------------------------------------------------------
def edge_tables(model: Model) -> list[tuple[pd.DataFrame, dict[str, str], dict[str, Any]]]:
    """The aggregated edge tables with their renames to src/dst and constant columns."""
    return [
        (model.io, {"tid": "src", "rid": "dst"}, {}),
        (model.blocked, {"tid": "src", "rid": "dst"}, {"type": "BLOCKED_ON"}),
        (model.wakes, {"waker": "src", "wakee": "dst"}, {"type": "WAKES"}),
        (model.flows, {"writer": "src", "reader": "dst"}, {"type": "FLOWS"}),
        (model.waits, {"waiter": "src", "waker": "dst"}, {"type": "WAITS_FOR"}),
    ]


def episode_tables(model: Model) -> list[tuple[pd.DataFrame | None, dict[str, str], dict[str, Any]]]:
    return [
        (model.episodes, {"tid": "src", "rid": "dst"}, {"type": "BLOCKED_ON", "episode": True}),
        (model.wakeups, {"waker": "src", "wakee": "dst"}, {"type": "WAKES", "episode": True}),
    ]


def _edge_rows(model: Model, episodes: bool) -> Iterator[dict[str, Any]]:
    tables = edge_tables(model) + (episode_tables(model) if episodes else [])
    for df, rename, extra in tables:
        for r in rows(df, rename, extra):
            # type, src, dst first, then the properties in the table's order
            head = {"type": r.pop("type"), "src": r.pop("src"), "dst": r.pop("dst")}
            head.update(r)
            yield head


def _write_array(out: TextIO, key: str, items: Iterable[Any], first: bool = False) -> None:
    out.write(("" if first else ",\n") + f"{_dumps(key)}:[")
    sep = "\n"
    for it in items:
        out.write(sep + _dumps(it))
        sep = ",\n"
    out.write("\n]" if sep != "\n" else "]")


def write_json(model: Model, out: TextIO, *, episodes: bool | None = None, warnings: Iterable[dict] = ()) -> None:
    """The model as one JSON object, written incrementally (one array element per line).

    ``episodes``: include the episode rows (default: when the model has them); ``warnings``: the
    capture's problems as JSON objects (``ftraceipc.problems.Problem.to_json``)."""
    if episodes is None:
        episodes = model.episodes is not None or model.wakeups is not None
    out.write("{")
    out.write(f"{_dumps('capture')}:{_dumps(str(model.capture))},\n")
    out.write(f"{_dumps('capture_id')}:{_dumps(py(model.capture_id))},\n")
    out.write(f"{_dumps('meta')}:{_dumps(py(model.meta or {}))},\n")
    _write_array(out, "tasks", rows(model.tasks), first=True)
    _write_array(out, "resources", rows(model.resources))
    _write_array(out, "edges", _edge_rows(model, episodes))
    _write_critical(out, model)
    _write_array(out, "unattributed", (py(dict(u.__dict__, line=u.line())) for u in model.unattributed))
    _write_array(out, "impossible", (str(s) for s in model.impossible))
    _write_array(out, "warnings", (py(w) for w in warnings))
    out.write(f",\n{_dumps('stats')}:{_dumps(py(model.stats or {}))}}}\n")


def _write_critical(out: TextIO, model: Model) -> None:
    """``"critical_path"``: null, or the path's scalars then its tables (one element per line)."""
    cp = model.critical
    out.write(f",\n{_dumps('critical_path')}:")
    if cp is None:
        out.write("null")
        return
    out.write("{" + ",".join(f"{_dumps(k)}:{_dumps(int(v))}" for k, v in (
        ("root", cp.root), ("start_ts", cp.start_ts), ("end_ts", cp.end_ts), ("wall_ns", cp.wall_ns))))
    _write_array(out, "segments", rows(cp.segments))
    _write_array(out, "tasks", rows(cp.tasks))
    _write_array(out, "waits", rows(cp.waits))
    _write_array(out, "resources", rows(cp.resources))
    out.write(f",\n{_dumps('stats')}:{_dumps(py(cp.stats or {}))}}}")


# --- CSV / Parquet ----------------------------------------------------------------------------------
def _restore_ints(df: pd.DataFrame) -> pd.DataFrame:
    """Float columns holding whole numbers (ints that gained NaN) back to nullable Int64."""
    out = df.copy()
    for c in out.columns:
        s = out[c]
        if isinstance(s.dtype, np.dtype) and s.dtype.kind == "f" and _int_like(s):
            out[c] = pd.array([None if not math.isfinite(x) else int(x) for x in s.tolist()], dtype="Int64")
    return out


def _nullable(df: pd.DataFrame) -> pd.DataFrame:
    """Plain int/bool columns as nullable dtypes, so a union of tables keeps them whole."""
    out = df.copy()
    for c in out.columns:
        dt = out[c].dtype
        if isinstance(dt, np.dtype) and dt.kind in "iu":
            out[c] = out[c].astype("Int64")
        elif isinstance(dt, np.dtype) and dt.kind == "b":
            out[c] = out[c].astype("boolean")
    return out


def edges_frame(model: Model, *, episodes: bool = False) -> pd.DataFrame:
    """All edges in one table: type, src, dst (as strings), then the union of the properties; integer
    properties stay integers (nullable) where other edge types lack them."""
    parts = []
    tables = edge_tables(model) + (episode_tables(model) if episodes else [])
    for df, rename, extra in tables:
        if df is None or not len(df):
            continue
        p = _nullable(_restore_ints(df)).rename(columns=rename)
        for k, v in extra.items():
            p[k] = v
        parts.append(p)
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in ("type", "src", "dst")})
    df = pd.concat(parts, ignore_index=True, sort=False)
    for c in ("src", "dst"):
        df[c] = pd.array([None if (v := py(x)) is None else str(v) for x in df[c].tolist()], dtype="str")
    if "episode" in df.columns:
        df["episode"] = df["episode"].fillna(False).astype(bool)
    first = ["type", "src", "dst"]
    return df[first + [c for c in df.columns if c not in first]]


def _tables(model: Model, episodes: bool) -> dict[str, pd.DataFrame]:
    t = {"tasks": model.tasks, "resources": model.resources, "edges": edges_frame(model)}
    if model.critical is not None:
        t.update(critical_path=model.critical.segments, critical_tasks=model.critical.tasks,
                 critical_waits=model.critical.waits, critical_resources=model.critical.resources)
    if episodes:
        t["episodes"] = model.episodes if model.episodes is not None else ipc.empty(ipc.EPISODE_COLUMNS)
        t["wakeups"] = model.wakeups if model.wakeups is not None else ipc.empty(ipc.WAKEUP_COLUMNS)
    return t


def _is_nested(v: Any) -> bool:
    return isinstance(v, (list, tuple, dict, set, frozenset, np.ndarray))


def _for_csv(df: pd.DataFrame) -> pd.DataFrame:
    out = _restore_ints(df)
    for c in out.columns:
        if out[c].dtype == object:
            vals = out[c].tolist()
            if any(_is_nested(v) or isinstance(v, enum.Enum) for v in vals):
                out[c] = [None if (p := py(v)) is None else (_dumps(p) if _is_nested(p) else p) for v in vals]
    return out


def _arrow_table(df: pd.DataFrame):
    import pyarrow as pa

    df = _restore_ints(df)
    arrays, names = [], []
    for c in df.columns:
        s = df[c]
        names.append(str(c))
        if s.dtype != object:
            arrays.append(pa.Array.from_pandas(s))
            continue
        vals = [py(v) for v in s.tolist()]
        if all(v is None for v in vals):
            arrays.append(pa.array(vals, type=pa.string()))  # e.g. no resource has a path
            continue
        if any(isinstance(v, dict) for v in vals):
            arrays.append(pa.array([None if v is None else _dumps(v) for v in vals], type=pa.string()))
            continue
        try:
            arrays.append(pa.array(vals))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            # mixed types in one column: JSON text keeps each value exactly
            arrays.append(pa.array([None if v is None else (v if isinstance(v, str) else _dumps(v)) for v in vals],
                                   type=pa.string()))
    return pa.Table.from_arrays(arrays, names=names)


def write_tables(model: Model, directory: str | os.PathLike, format: str = "csv", *,
                 episodes: bool | None = None) -> list[Path]:
    """``tasks``, ``resources``, ``edges`` (+ ``episodes``, ``wakeups``) as ``.csv`` or ``.parquet``
    files in ``directory`` (created). Returns the paths written."""
    if format not in DIR_FORMATS:
        raise CommandError(f"table format {format!r} is not one of {', '.join(DIR_FORMATS)}")
    if episodes is None:
        episodes = model.episodes is not None or model.wakeups is not None
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in _tables(model, episodes).items():
        path = d / f"{name}.{format}"
        if format == "csv":
            _for_csv(df).to_csv(path, index=False)
        else:
            import pyarrow.parquet as pq

            pq.write_table(_arrow_table(df), path)
        written.append(path)
    return written


# --- text ------------------------------------------------------------------------------------------
class _Table:
    def __init__(self, title: str, columns: list[str], right: Iterable[str] = (), note: str | None = None):
        self.title = title
        self.columns = columns
        self.right = set(right)
        self.rows: list[list[str]] = []
        self.note = note

    def add(self, *cells: Any) -> None:
        self.rows.append(["-" if c is None else str(c) for c in cells])

    def plain(self, out: TextIO) -> None:
        out.write(f"\n{self.title}\n")
        if not self.rows:
            out.write(f"  {self.note or '(none)'}\n")
            return
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) for i, h in enumerate(self.columns)]

        def line(cells: list[str]) -> str:
            parts = [c.rjust(w) if h in self.right else c.ljust(w) for c, w, h in zip(cells, widths, self.columns)]
            return ("  " + "  ".join(parts)).rstrip() + "\n"

        out.write(line(self.columns))
        for r in self.rows:
            out.write(line(r))
        if self.note:
            out.write(f"  {self.note}\n")

    def rich(self, console) -> None:
        from rich.table import Table

        console.print()
        if not self.rows:
            console.print(f"[bold]{self.title}[/bold]\n  {self.note or '(none)'}", highlight=False)
            return
        t = Table(title=self.title, title_justify="left", title_style="bold", show_edge=False, pad_edge=False,
                  caption=self.note, caption_justify="left")
        for h in self.columns:
            t.add_column(h, justify="right" if h in self.right else "left", no_wrap=h in self.right,
                         overflow="fold")
        for r in self.rows:
            t.add_row(*r)
        console.print(t, highlight=False)


def _more(n: int, shown: int, what: str) -> str | None:
    return f"... {n - shown} more {what} (--format json has all)" if n > shown else None


def _header_lines(model: Model) -> list[str]:
    m = model.meta if isinstance(model.meta, dict) else {}
    out = [f"capture   {model.capture}", f"id        {model.capture_id}"]
    if m.get("command"):
        cmd = m["command"]
        cmd = " ".join(map(str, cmd)) if isinstance(cmd, list) else str(cmd)
        out.append(f"command   {cmd} (exit {m.get('exit_code', '?')})")
    d = duration_ns(model)
    out.append(f"duration  {d / 1e9:.3f} s" if d is not None else "duration  -")
    ev = py(model.stats.get("events"))
    lost = lost_total(model)
    line = f"events    {ev:,}" if isinstance(ev, int) else f"events    {ev if ev is not None else '-'}"
    line += f", lost {lost:,}" if lost is not None else ", lost -"
    if lost:
        line += " (the model misses what they carried: recapture with a larger --buffer-kb)"
    out.append(line)
    return out


def report_tables(model: Model, *, top: int = TOP) -> list[_Table]:
    lab = Labels(model)
    tables = []

    # tasks
    tasks = user_tasks(model)
    n_tracer = len(model.tasks) - len(tasks)
    io_t, bl_t = io_by(model, "tid"), blocked_by(model, "tid")
    trows = []
    for r in rows(tasks):
        tid = r.get("tid")
        w = _num(io_t["written"].get(tid, 0)) if len(io_t) else 0
        rd = _num(io_t["read"].get(tid, 0)) if len(io_t) else 0
        b = _num(bl_t["blocked_ns"].get(tid, 0)) if len(bl_t) else 0
        trows.append((-(w + rd), -b, tid if isinstance(tid, int) else 0, r, w, rd, b))
    trows.sort(key=lambda x: x[:3])
    npids = len({x[3].get("pid") for x in trows} - {None})
    note = _more(len(trows), top, "tasks")
    if n_tracer:
        note = ((note + "; ") if note else "") + f"{n_tracer} ftraceipc task(s) left out"
    t = _Table(f"Tasks ({len(trows)} in {npids} process{'es' if npids != 1 else ''})",
               ["tid", "pid", "comm", "written", "read", "blocked"], right={"tid", "pid", "written", "read", "blocked"},
               note=note)
    for *_, r, w, rd, b in trows[:top]:
        t.add(r.get("tid"), r.get("pid"), r.get("comm"), f"{int(w):,}", f"{int(rd):,}", human_ns(b) if b else "-")
    tables.append(t)

    # resources
    res = model.resources
    kinds = pd.Series(column_values(res["kind"])).value_counts() if len(res) else pd.Series(dtype=int)
    by_kind = ", ".join(f"{n} {k}" for k, n in kinds.items())
    io_r, bl_r = io_by(model, "rid"), blocked_by(model, "rid")
    rrows = []
    for r in rows(res):
        rid = r.get("rid")
        w = _num(io_r["written"].get(rid, 0)) if len(io_r) else 0
        rd = _num(io_r["read"].get(rid, 0)) if len(io_r) else 0
        rrows.append((-(w + rd), str(rid), r, w, rd,
                      int(_num(io_r["writers"].get(rid, 0))) if len(io_r) else 0,
                      int(_num(io_r["readers"].get(rid, 0))) if len(io_r) else 0,
                      _num(bl_r["blocked_ns"].get(rid, 0)) if len(bl_r) else 0))
    rrows.sort(key=lambda x: x[:2])
    t = _Table(f"Resources ({len(rrows)}{': ' + by_kind if by_kind else ''})",
               ["rid", "kind", "path", "peer", "written", "read", "writers", "readers", "blocked"],
               right={"written", "read", "writers", "readers", "blocked"}, note=_more(len(rrows), top, "resources"))
    for _, _, r, w, rd, nw, nr, b in rrows[:top]:
        t.add(r.get("rid"), r.get("kind"), r.get("path"), r.get("peer"), f"{int(w):,}", f"{int(rd):,}", nw, nr,
              human_ns(b) if b else "-")
    tables.append(t)

    # top talkers
    tracer = tracer_tids(model)
    fl = model.flows
    if tracer and len(fl):
        fl = fl[[py(a) not in tracer and py(b) not in tracer for a, b in zip(fl["writer"], fl["reader"])]]
    frows = sorted(rows(fl), key=lambda r: (-_num(r.get("bytes")), str(r.get("via"))))
    t = _Table("Top talkers (flows by bytes)", ["writer", "reader", "via", "read from", "bytes", "messages"],
               right={"bytes", "messages"}, note=_more(len(frows), top, "flows"))
    for r in frows[:top]:
        read_rid = r.get("read_rid")
        t.add(lab.task(r.get("writer")), lab.task(r.get("reader")), r.get("via"),
              "same" if read_rid == r.get("via") else read_rid, f"{int(_num(r.get('bytes'))):,}",
              f"{int(_num(r.get('messages'))):,}")
    tables.append(t)

    # blocked time by resource
    brows = sorted(((k, v) for k, v in bl_r.iterrows()), key=lambda kv: (-kv[1]["blocked_ns"], str(kv[0]))) \
        if len(bl_r) else []
    kind_of = dict(zip(column_values(res["rid"]), column_values(res["kind"]))) if len(res) else {}
    t = _Table("Blocked time by resource", ["rid", "kind", "tasks", "episodes", "blocked", "longest"],
               right={"tasks", "episodes", "blocked", "longest"}, note=_more(len(brows), top, "resources"))
    for rid, v in brows[:top]:
        t.add(rid, kind_of.get(rid), int(v["tasks"]), f"{int(v['episodes']):,}", human_ns(v["blocked_ns"]),
              human_ns(v["max_ns"]))
    tables.append(t)

    # wakes
    wk = model.wakes
    if tracer and len(wk):
        wk = wk[[py(a) not in tracer and py(b) not in tracer for a, b in zip(wk["waker"], wk["wakee"])]]
    wrows = sorted(rows(wk), key=lambda r: (-_num(r.get("wakeups")), str(r.get("waker"))))
    t = _Table("Wakes (by wakeups)", ["waker", "wakee", "via", "wakeups", "wake-to-run avg", "max", "cross-cpu"],
               right={"wakeups", "wake-to-run avg", "max", "cross-cpu"}, note=_more(len(wrows), top, "wake edges"))
    for r in wrows[:top]:
        n = _num(r.get("wakeups"))
        tot = py(r.get("wake_to_run_ns"))
        avg = tot / n if isinstance(tot, (int, float)) and n and tot >= 0 else None
        t.add(lab.task(r.get("waker")), lab.task(r.get("wakee")), r.get("via"), f"{int(n):,}", human_ns(avg),
              human_ns(py(r.get("max_wake_to_run_ns"))), r.get("cross_cpu"))
    tables.append(t)

    # longest episodes (only when built with episodes)
    if model.episodes is not None:
        ep = model.episodes
        erows = []
        if len(ep):
            longest = ep.assign(_d=pd.to_numeric(ep["dur_ns"], errors="coerce")).nlargest(min(top, 10), "_d")
            erows = list(rows(longest.drop(columns="_d")))
        t = _Table(f"Longest blocking episodes (of {len(ep):,})", ["task", "rid", "op", "fd", "start_ts", "blocked",
                                                                    "woken by"],
                   right={"fd", "start_ts", "blocked"})
        for r in erows:
            t.add(lab.task(r.get("tid")), r.get("rid"), r.get("op"), r.get("fd"), r.get("start_ts"),
                  human_ns(py(r.get("dur_ns"))), lab.task(r.get("woken_by")) if r.get("woken_by") is not None else "-")
        tables.append(t)
    tables += critical_tables(model, lab, top=top)
    return tables


def _share(ns: float, wall: float) -> str:
    return f"{100 * ns / wall:.1f} %" if wall > 0 else "-"


def critical_tables(model: Model, lab: Labels | None = None, *, top: int = TOP) -> list[_Table]:
    """The critical path's tasks (own time on it, by state) and the waits it went through."""
    cp = model.critical
    if cp is None:
        return []
    lab = lab or Labels(model)
    wall = cp.wall_ns
    t = _Table(f"Critical path of {lab.task(cp.root)} (wall {human_ns(wall)}, {len(cp.segments):,} segments): "
               "each task's own time on it",
               ["task", "on path", "share", "running", "runnable", "blocked"],
               right={"on path", "share", "running", "runnable", "blocked"}, note=_more(len(cp.tasks), top, "tasks"))
    for r in rows(cp.tasks.head(top)):
        t.add(lab.task(r["tid"]), human_ns(r["crit_ns"]), _share(r["crit_ns"], wall),
              *(human_ns(r[c]) if r[c] else "-" for c in ("running_ns", "runnable_ns", "blocked_ns")))
    w = _Table("Critical path: waits handed to the task that ended them (nested waits count at each level)",
               ["waiter", "rid", "on path", "share", "waits"], right={"on path", "share", "waits"},
               note=_more(len(cp.waits), top, "waits"))
    for r in rows(cp.waits.head(top)):
        w.add(lab.task(r["waiter"]), r["rid"] if r["rid"] is not None else "(child exit)", human_ns(r["crit_ns"]),
              _share(r["crit_ns"], wall), f"{int(r['waits']):,}")
    return [t, w]


def not_attributed_lines(model: Model) -> list[str]:
    lines = [u.line() for u in model.unattributed]
    lines += [f"impossible: {s}" for s in model.impossible]
    return lines


def write_text(model: Model, out: TextIO, *, rich: bool | None = None, top: int = TOP,
               warnings: Iterable[dict] = ()) -> None:
    """The human report. ``rich``: rich tables (default: when ``out`` is a terminal); ``warnings``:
    the capture's problems (``Problem.to_json``), one line each under the header."""
    if rich is None:
        rich = bool(getattr(out, "isatty", lambda: False)())
    tables = report_tables(model, top=top)
    header = _header_lines(model) + [f"warning   {w['message']}" for w in warnings]
    na = not_attributed_lines(model)
    if rich:
        from rich.console import Console

        con = Console(file=out, highlight=False)
        con.print("[bold]ftraceipc model[/bold]")
        for ln in header:
            con.print(ln, markup=False)
        for t in tables:
            t.rich(con)
        con.print()
        con.print("[bold]Not attributed[/bold]")
        for ln in na or ["nothing: every call and sleep was tied to a resource"]:
            con.print("  " + ln, markup=False)
        return
    out.write("ftraceipc model\n")
    for ln in header:
        out.write(ln + "\n")
    for t in tables:
        t.plain(out)
    out.write("\nNot attributed\n")
    for ln in na or ["nothing: every call and sleep was tied to a resource"]:
        out.write(f"  {ln}\n")


# --- output files ----------------------------------------------------------------------------------
def _own_export_dir(path: Path) -> bool:
    """A directory that holds only files an export writes (safe to replace with --force)."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    ok = {f"{t}.{ext}" for t in TABLES for ext in DIR_FORMATS}
    return all(n in ok for n in names)


def check_output(output: str | os.PathLike | None, format: str, force: bool) -> None:
    """Refuse before any work: a bad format, a table format without --output, an existing output
    without --force, or a directory that is not an earlier export (never removed)."""
    if format not in FORMATS:
        raise CommandError(f"--format {format!r} is not one of {', '.join(FORMATS)}", hint="use --format text")
    if format in DIR_FORMATS and output is None:
        raise CommandError(f"--format {format} writes a directory of tables", hint="add --output DIR")
    if output is None:
        return
    p = Path(output)
    if not (p.exists() or p.is_symlink()):
        if not p.parent.is_dir() and p.parent != Path(""):
            raise CommandError(f"cannot write {p}: {p.parent} is not a directory")
        return
    if not force:
        raise CommandError(f"{p} exists", hint="add --force to replace it, or choose another --output")
    if p.is_dir() and not p.is_symlink() and not _own_export_dir(p):
        raise CommandError(f"{p} is a directory with files an export does not write; not replacing it",
                           hint="choose another --output")


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def export(model: Model, format: str, *, output: str | os.PathLike | None = None, force: bool = False,
           episodes: bool | None = None, out: TextIO | None = None, warnings: Iterable[dict] = ()) -> Path | None:
    """Write ``model`` as ``format`` to ``output`` (replaced only with ``force``) or, for text and
    json, to ``out`` (default stdout). Files appear whole: written beside, then renamed.
    ``warnings``: the capture's problems (``Problem.to_json``) for the text and json formats."""
    check_output(output, format, force)
    warnings = list(warnings)
    if output is None:
        out = out or sys.stdout
        if format == "text":
            write_text(model, out, warnings=warnings)
        else:
            write_json(model, out, episodes=episodes, warnings=warnings)
        out.flush()
        return None
    dest = Path(output)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        if format in DIR_FORMATS:
            write_tables(model, tmp, format, episodes=episodes)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                if format == "text":
                    write_text(model, f, rich=False, warnings=warnings)
                else:
                    write_json(model, f, episodes=episodes, warnings=warnings)
        if (dest.exists() or dest.is_symlink()) and (tmp.is_dir() or (dest.is_dir() and not dest.is_symlink())):
            _remove(dest)  # check_output allowed it: --force, and a file or an earlier export
        os.replace(tmp, dest)
    except OSError as e:
        _remove(tmp)
        raise FtraceIPCError(f"cannot write {dest}: {e.strerror or e}") from None
    except BaseException:
        _remove(tmp)
        raise
    return dest
