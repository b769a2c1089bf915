"""What every detector's explanation uses: task labels from the graph (:class:`Names`), the fix that
fits a resource's kind, percentages of the wall time. The words of each detector are in its own
module, ``ftraceipc/detect/detectors/<id>.py``, next to nothing but its query ``cypher/<id>.cypher``."""

from __future__ import annotations

import math
from typing import Any, Iterable

from ftraceipc.model.export import human_bytes, human_ns, short_list, task_label

__all__ = ["Names", "human_bytes", "human_ns", "short_list", "kind_of", "buffer_size", "buffer_fix", "holds",
           "per", "percent", "on_path", "cap", "PIPE_MAX_SIZE", "WMEM_MAX"]


class Names:
    """``comm[tid]`` labels for the tasks of a graph (one query, on first use), as every output
    names tasks (``model.export.task_label``)."""

    LIMIT = 6  # tasks named in one list of an explanation; the rest are counted

    def __init__(self, graph, capture_id: str = ""):
        self._graph = graph
        self._cid = capture_id
        self._comm: dict[int, str] | None = None

    def _load(self) -> dict[int, str]:
        if self._comm is None:
            df = self._graph.query("MATCH (t:Task) WHERE $cid = '' OR t.capture_id = $cid "
                                   "RETURN t.tid AS tid, t.comm AS comm", {"cid": self._cid})
            self._comm = {int(t): c for t, c in zip(df["tid"].tolist(), df["comm"].tolist())
                          if isinstance(c, str)}
        return self._comm

    def __call__(self, tid: Any) -> str:
        t = int(tid)
        return task_label(t, self._load().get(t))

    def many(self, tids: Iterable[Any], limit: int = LIMIT) -> str:
        """Labels of ``tids``: the first ``limit``, then "…and 681 more"."""
        return short_list((self(t) for t in tids), limit)


def kind_of(rid: str) -> str:
    return str(rid).split(":", 1)[0]


PIPE_MAX_SIZE = 1 << 20  # /proc/sys/fs/pipe-max-size by default: the most F_SETPIPE_SZ gives without root
WMEM_MAX = 212992  # /proc/sys/net/core/wmem_max by default: the most SO_SNDBUF gives without CAP_NET_ADMIN


def buffer_size(burst: float) -> int:
    """The buffer size to suggest for bursts of ``burst`` bytes: rounded up to a power of two, at least a page."""
    return 1 << max(12, (max(1, int(math.ceil(burst))) - 1).bit_length())


def buffer_fix(rid: str, burst: float | None = None) -> str:
    """How to give ``rid`` room for a burst of ``burst`` bytes (a pipe/FIFO or a socket), as a clause;
    no size when the bursts are not known."""
    if kind_of(rid) in ("pipe", "fifo"):
        if not burst:
            return (f"give {rid} a bigger buffer (fcntl(fd, F_SETPIPE_SZ, size); at most /proc/sys/fs/pipe-max-size, "
                    "1 MiB by default)")
        size = buffer_size(burst)
        over = (f"; that is above /proc/sys/fs/pipe-max-size (1 MiB by default): raise it, or have the writer "
                f"write smaller bursts") if size > PIPE_MAX_SIZE else ""
        return (f"give {rid} room for a whole burst: fcntl(fd, F_SETPIPE_SZ, {size}) on either end "
                f"({human_bytes(size)}, a burst of ~{human_bytes(burst)} rounded up to a power of two{over})")
    if not burst:
        return f"raise {rid}'s buffer (setsockopt SO_SNDBUF on the writer, SO_RCVBUF on the reader)"
    size = buffer_size(burst)
    over = (", above /proc/sys/net/core/wmem_max (208 KiB by default): raise that first"
            if size > WMEM_MAX else "")
    return (f"give {rid} room for a whole burst: setsockopt(fd, SOL_SOCKET, SO_SNDBUF, {size}) on the writer's "
            f"socket ({human_bytes(size)}, a burst of ~{human_bytes(burst)} rounded up to a power of two{over})")


def holds(rid: str, buffer: Any) -> str:
    """", larger than the 64.0 KiB pipe:9 holds" (for a socket, whose buffer the trace does not show:
    ", more than unix:5 took at once")."""
    return f", larger than the {human_bytes(buffer)} {rid} holds" if buffer else f", more than {rid} took at once"


def reader_turns(r: dict, readers: str, rid: str) -> str:
    """The sentence for a burst estimated per turn of computing readers (row ``burst_from``
    'reader_turn', with ``readers_running_ns``/``readers_runnable_ns``); "" for the other estimates."""
    if r.get("burst_from") != "reader_turn":
        return ""
    one = len(r.get("readers") or []) == 1
    return (f" Per turn {readers} took ~{human_bytes(r.get('burst_bytes'))} out of {rid} and computed in "
            f"between (on the critical path running {human_ns(r.get('readers_running_ns'))}, waiting for a CPU "
            f"{human_ns(r.get('readers_runnable_ns'))}): {rid} fills up while {'it computes' if one else 'they compute'}.")


def cap(s: str) -> str:
    """``s`` with its first letter upper case."""
    return s[:1].upper() + s[1:]


def per(n: float, d: float) -> float:
    return n / d if d else math.nan


def percent(part: float, whole: float) -> str:
    """``part`` as a whole percentage of ``whole`` ("91 %"; "<1 %" for a small non-zero part)."""
    if not whole:
        return "? %"
    p = 100.0 * part / whole
    if 0 < p < 1:
        return "<1 %"
    return f"{p:.0f} %"


def on_path(r: dict) -> str:
    """" (12.0 ms of it on the critical path)" for a row with ``critical_ns`` > 0, else ""."""
    c = r.get("critical_ns") or 0
    return f" ({human_ns(c)} of it on the critical path)" if c else ""
