"""The event set: what the IPC model needs, by kernel subsystem."""

from __future__ import annotations

SCHED = [
    "sched:sched_switch",
    "sched:sched_waking",
    "sched:sched_wakeup",
    "sched:sched_wakeup_new",
    "sched:sched_process_fork",
    "sched:sched_process_exec",
    "sched:sched_process_exit",
]

# Data transfer on fds: enter (fd, count) and exit (bytes moved or -errno).
IO_SYSCALLS = ["read", "write", "readv", "writev", "sendto", "recvfrom", "sendmsg", "recvmsg", "splice"]

# The fd lifecycle: how fds come to name a pipe, FIFO or socket, and stop naming it.
FD_SYSCALLS = ["pipe", "pipe2", "socket", "socketpair", "accept", "accept4", "connect", "bind", "listen",
               "dup", "dup2", "dup3", "fcntl", "close", "close_range", "openat"]

# Where tasks wait on many fds at once.
WAIT_SYSCALLS = ["poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "epoll_ctl"]

SOCK = ["sock:sock_send_length", "sock:sock_recv_length", "sock:sk_data_ready"]


def syscall_events(names: list[str]) -> list[str]:
    out = []
    for n in names:
        out += [f"syscalls:sys_enter_{n}", f"syscalls:sys_exit_{n}"]
    return out


DEFAULT_EVENTS: list[str] = SCHED + syscall_events(IO_SYSCALLS + FD_SYSCALLS + WAIT_SYSCALLS) + SOCK


def normalize(spec: str) -> str:
    """Accept ``sched:sched_switch``, ``sched/sched_switch`` or a bare well-known name."""
    spec = spec.strip().replace("/", ":")
    if ":" in spec:
        return spec
    if spec.startswith(("sys_enter_", "sys_exit_")):
        return f"syscalls:{spec}"
    if spec.startswith("sched_"):
        return f"sched:{spec}"
    if spec.startswith(("sock_", "sk_")):
        return f"sock:{spec}"
    return spec


def parse_event_list(text: str) -> list[str]:
    out: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if part == "default":
            out += DEFAULT_EVENTS
        else:
            out.append(normalize(part))
    seen: set[str] = set()
    return [e for e in out if not (e in seen or seen.add(e))]
