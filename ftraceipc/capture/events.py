"""The event set: what the IPC model needs, by kernel subsystem."""

from __future__ import annotations

# Not sched:sched_wakeup: the model takes each wakeup from sched_waking (the waker's context: who woke
# whom, inside which syscall) and its end from the wakee's switch-in; sched_wakeup (the wakee made
# runnable, a few µs later, maybe on another CPU) says nothing more and cost one event per wakeup
# (issue #12: bench/bench_overhead.py's floor-wakeup variant measures it). Not sched:sched_process_fork
# either: task:task_newtask, a moment earlier in the same clone, names the creator (common_pid), the
# child and its clone flags (the model reads sched_process_fork only in captures without task_newtask).
SCHED = [
    "sched:sched_switch",
    "sched:sched_waking",
    "sched:sched_wakeup_new",
    "sched:sched_process_exec",
    "sched:sched_process_exit",
]

# Who is a thread of whom (clone_flags) and comm changes.
TASK = ["task:task_newtask", "task:task_rename"]

# A pipe's inode: pipe2 sets the new pipefs inode's ctime inside the syscall, and this is the only
# event that names it (the syscall exit returns 0; the fds go to user memory). Filtered to the pipefs
# device at capture time (FILTERS), so file-system activity costs nothing.
INODES = ["timestamp:inode_set_ctime_to_ts"]

# Data transfer on fds: enter (fd, count) and exit (bytes moved or -errno).
IO_SYSCALLS = ["read", "write", "readv", "writev", "sendto", "recvfrom", "sendmsg", "recvmsg", "splice"]

# The fd lifecycle: how fds come to name a pipe, FIFO or socket, and stop naming it.
FD_SYSCALLS = ["pipe", "pipe2", "socket", "socketpair", "accept", "accept4", "connect", "bind", "listen",
               "dup", "dup2", "dup3", "fcntl", "close", "close_range", "openat"]

# Every other syscall that installs a new fd (its exit returns the fd): with these the model knows a
# process's whole fd table, so the fds pipe2/socketpair returned are the lowest free ones.
# (Not covered: fds received with SCM_RIGHTS and fds returned by ioctl; see docs/schema.md.)
FD_CREATE_SYSCALLS = ["open", "creat", "openat2", "memfd_create", "eventfd", "eventfd2", "epoll_create",
                      "epoll_create1", "signalfd", "signalfd4", "timerfd_create", "inotify_init",
                      "inotify_init1", "fanotify_init", "pidfd_open", "pidfd_getfd", "perf_event_open",
                      "io_uring_setup", "userfaultfd", "open_by_handle_at", "open_tree", "fsopen", "fspick",
                      "fsmount", "memfd_secret", "mq_open", "landlock_create_ruleset"]

# Evidence that an fd is not IPC: lseek succeeds only on seekable files (a pipe, FIFO, socket or tty
# gives ESPIPE), so a file opened by path and seeked (Python does it on every file it opens) is no
# FIFO even when no /proc snapshot caught it open.
SEEK_SYSCALLS = ["lseek"]

# Where tasks wait on many fds at once (the model's sched.WAIT_OPS, plus epoll_ctl).
WAIT_SYSCALLS = ["poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl"]

SOCK = ["sock:sock_send_length", "sock:sock_recv_length", "sock:sk_data_ready"]


def syscall_events(names: list[str]) -> list[str]:
    out = []
    for n in names:
        out += [f"syscalls:sys_enter_{n}", f"syscalls:sys_exit_{n}"]
    return out


DEFAULT_EVENTS: list[str] = (SCHED + TASK + syscall_events(IO_SYSCALLS + FD_SYSCALLS + FD_CREATE_SYSCALLS +
                                                          WAIT_SYSCALLS + SEEK_SYSCALLS) + SOCK + INODES)

# The default set in three groups, by what they give the model (ftraceipc.model.needs says which
# model tables need which group, and each detector's query names its tables):
# - CORE: tasks, their sleeps and wakeups: the critical path, which ranks every finding;
# - RESOURCES: which pipe, FIFO or socket each data syscall, sleep and wakeup went through;
# - POLLS: sleeps inside poll/select/epoll_wait (on the fds woken through) and the time inside them.
CORE: list[str] = SCHED + TASK
RESOURCES: list[str] = (syscall_events(IO_SYSCALLS + FD_SYSCALLS + FD_CREATE_SYSCALLS + SEEK_SYSCALLS) + SOCK +
                        INODES)
POLLS: list[str] = syscall_events(WAIT_SYSCALLS)
GROUPS: dict[str, list[str]] = {"core": CORE, "resources": RESOURCES, "polls": POLLS}

# What ``live --budget`` may turn off while tracing, in two groups (each: the events of the default
# set it holds). Never the core (the critical path) nor the fd lifecycle: an fd opened, duplicated
# or closed while it was off would be resolved wrongly ever after. recvmsg stays too: it brings fds
# (SCM_RIGHTS). The sock tracepoints go with the data syscalls: the model reads them inside those.
# - "polls": sleeps inside poll/select/epoll_wait lose their resource, and time in them is not counted;
# - "data": data through fds is not attributed, sleeps in read/write have no resource.
NARROWABLE: dict[str, list[str]] = {
    "polls": POLLS,
    "data": syscall_events([s for s in IO_SYSCALLS if s != "recvmsg"]) + SOCK,
}


def pipefs_dev() -> int:
    """The kernel dev_t (MAJOR << 20 | MINOR) of the pipefs mount, as trace events print it."""
    import os

    r, w = os.pipe()
    try:
        st = os.fstat(r)
    finally:
        os.close(r)
        os.close(w)
    return (os.major(st.st_dev) << 20) | os.minor(st.st_dev)


def default_filters() -> dict[str, str]:
    """Event filters that the default set needs (``system:event`` -> filter expression)."""
    return {"timestamp:inode_set_ctime_to_ts": f"dev == {pipefs_dev()}"}


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
    if spec.startswith("task_"):
        return f"task:{spec}"
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
