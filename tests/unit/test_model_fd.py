"""fd-table state provider: hand-written event sequences (no capture needed)."""

from ftraceipc.model import FdModel, Origin, Reason, rid_from_snapshot

_ts = [0]


def ev(m, tid, event, **fields):
    _ts[0] += 10
    m.feed({"ts": _ts[0], "tid": tid, "event": event, **fields})


def sc(m, tid, name, ret, **args):
    ev(m, tid, f"sys_enter_{name}", **args)
    ev(m, tid, f"sys_exit_{name}", ret=ret)


def snap(m, pid, fds, when="start"):
    m.snapshot({"kind": "fds", "when": when, "pid": pid, "comm": "x", "ppid": 1, "fds": fds})


def io(m, tid, fd, name="write", ret=4):
    sc(m, tid, name, ret, fd=fd, count=ret)
    return m.attributions[-1]


def test_rid_from_snapshot():
    assert rid_from_snapshot("pipe:[12]") == "pipe:12"
    assert rid_from_snapshot("socket:[34]") == "unix:34"
    assert rid_from_snapshot("fifo:[56]:/tmp/f") == "fifo:56"
    assert rid_from_snapshot("/dev/null") is None


def test_start_snapshot_names_fds():
    m = FdModel()
    snap(m, 100, {"3": "pipe:[11]", "4": "socket:[22]", "5": "fifo:[33]:/tmp/f"})
    assert io(m, 100, 3).rid == "pipe:11"
    assert io(m, 100, 4, "sendto").rid == "unix:22"
    assert io(m, 100, 5, "read").rid == "fifo:33"
    assert m.failures() == {}


def test_unknown_fd_is_counted_not_guessed():
    m = FdModel()
    for _ in range(3):
        a = io(m, 812, 7)
    assert a.rid is None and a.reason is Reason.INODE_UNKNOWN
    assert m.failures() == {(812, 7, "write", Reason.INODE_UNKNOWN): 3}
    assert m.failure_summary() == [f"3 writes on fd 7 of pid 812: {Reason.INODE_UNKNOWN.value}"]


def test_fd_reuse_after_close_and_late_snapshot():
    m = FdModel()
    snap(m, 100, {"3": "pipe:[11]"})
    a1 = io(m, 100, 3)
    sc(m, 100, "close", 0, fd=3)
    assert m.lookup(100, 3) is None
    sc(m, 100, "socketpair", 0, family=1, type=1, protocol=0, usockvec=0)
    a2 = io(m, 100, 3, "sendto")
    assert a2.rid is None and a2.handle.origin is Origin.FIRST_USE
    snap(m, 100, {"3": "socket:[22]"}, when="end")  # names the handle now open on fd 3
    assert a1.rid == "pipe:11" and a2.rid == "unix:22"  # the earlier I/O resolves retroactively
    assert m.conflicts == []


def test_late_snapshot_never_overrides_trace():
    m = FdModel()
    snap(m, 100, {"3": "pipe:[11]"})
    snap(m, 100, {"3": "pipe:[99]"}, when="end")
    assert m.rid(100, 3) == "pipe:11"
    assert len(m.conflicts) == 1


def test_dup2_replaces_open_fd():
    m = FdModel()
    snap(m, 100, {"3": "pipe:[11]", "4": "socket:[22]"})
    sc(m, 100, "dup2", 4, oldfd=3, newfd=4)
    assert m.rid(100, 4) == "pipe:11" and m.rid(100, 3) == "pipe:11"
    sc(m, 100, "close", 0, fd=3)
    assert io(m, 100, 4).rid == "pipe:11"


def test_dup_dup3_fcntl_share_the_handle():
    m = FdModel()
    sc(m, 100, "pipe2", 0, fildes=0, flags=0)
    a = io(m, 100, 3)
    sc(m, 100, "dup", 5, fildes=3)
    sc(m, 100, "dup3", 6, oldfd=3, newfd=6, flags=0o2000000)
    sc(m, 100, "fcntl", 7, fd=3, cmd=1030, arg=0)
    sc(m, 100, "fcntl", 0, fd=3, cmd=1, arg=0)  # F_GETFD: not a dup
    assert m.lookup(100, 0) is None
    h = m.lookup(100, 3).handle
    assert all(m.lookup(100, fd).handle is h for fd in (5, 6, 7))
    assert m.lookup(100, 6).cloexec and m.lookup(100, 7).cloexec and not m.lookup(100, 5).cloexec
    snap(m, 100, {"7": "pipe:[44]"}, when="appear")  # naming one copy names all, and the past
    assert a.rid == "pipe:44" and m.rid(100, 5) == "pipe:44"


def test_failed_syscalls_change_nothing():
    m = FdModel()
    snap(m, 100, {"3": "pipe:[11]", "4": "pipe:[12]"})
    sc(m, 100, "close", -9, fd=3)
    sc(m, 100, "dup2", -9, oldfd=4, newfd=3)
    assert m.rid(100, 3) == "pipe:11"


def test_close_range_and_cloexec_flag():
    m = FdModel()
    snap(m, 100, {str(fd): f"pipe:[{fd}]" for fd in range(3, 10)})
    sc(m, 100, "close_range", 0, fd=5, max_fd=7, flags=0)
    assert sorted(m.tables[100].slots) == [3, 4, 8, 9]
    sc(m, 100, "close_range", 0, fd=8, max_fd=4294967295, flags=4)  # CLOSE_RANGE_CLOEXEC
    assert sorted(m.tables[100].slots) == [3, 4, 8, 9]
    ev(m, 100, "sched_process_exec", filename="/bin/sh", pid=100, old_pid=100)
    assert sorted(m.tables[100].slots) == [3, 4]  # cloexec ones closed, others uncertain
    a = io(m, 100, 3)
    assert a.rid is None and a.reason is Reason.AFTER_EXEC
    snap(m, 100, {"3": "pipe:[3]"}, when="appear")  # the snapshot confirms fd 3
    assert io(m, 100, 3).rid == "pipe:3"
    assert io(m, 100, 4).reason is Reason.AFTER_EXEC


def test_fork_copies_table():
    m = FdModel()
    snap(m, 100, {"3": "pipe:[11]", "4": "pipe:[12]"})
    ev(m, 100, "sched_process_fork", parent_comm="p", parent_pid=100, child_comm="p", child_pid=200)
    sc(m, 200, "close", 0, fd=3)
    assert m.rid(100, 3) == "pipe:11" and m.rid(200, 3) is None  # child's close is its own
    sc(m, 100, "dup2", 4, oldfd=3, newfd=4)
    assert m.rid(200, 4) == "pipe:12" and m.rid(100, 4) == "pipe:11"
    assert io(m, 200, 4).rid == "pipe:12"


def test_fork_then_child_snapshot_names_shared_handle():
    m = FdModel()
    sc(m, 100, "pipe2", 0, fildes=0, flags=0)
    a = io(m, 100, 4)
    ev(m, 100, "sched_process_fork", parent_comm="p", parent_pid=100, child_comm="p", child_pid=200)
    b = io(m, 200, 4)
    snap(m, 200, {"4": "pipe:[77]"}, when="appear")
    assert a.rid == b.rid == "pipe:77"


def test_threads_share_the_table():
    m = FdModel(tgid_of={101: 100})
    snap(m, 100, {"3": "socket:[22]"})
    # a thread's clone shows up as a fork event too; a known tgid keeps it in the parent's table
    ev(m, 100, "sched_process_fork", parent_comm="p", parent_pid=100, child_comm="p", child_pid=101)
    assert io(m, 101, 3, "recvfrom").rid == "unix:22"
    sc(m, 101, "close", 0, fd=3)
    assert m.lookup(100, 3) is None  # the thread's close closes it for the whole process
    sc(m, 100, "accept4", 3, fd=5, upeer_sockaddr=0, upeer_addrlen=0, flags=0)
    a = io(m, 101, 3, "recvfrom")
    assert a.handle.origin is Origin.ACCEPT and a.pid == 100 and a.reason is Reason.INODE_UNKNOWN


def test_add_thread_after_fork_event():
    m = FdModel()
    snap(m, 100, {"3": "socket:[22]"})
    ev(m, 100, "sched_process_fork", parent_comm="p", parent_pid=100, child_comm="p", child_pid=101)
    m.add_thread(101, 100)
    sc(m, 101, "close", 0, fd=3)
    assert m.lookup(100, 3) is None


def test_unpaired_exit_is_ignored_and_counted():
    m = FdModel()
    snap(m, 100, {"3": "pipe:[11]"})
    ev(m, 100, "sys_exit_close", ret=0)  # enter lost / before the capture
    assert m.rid(100, 3) == "pipe:11" and m.unpaired_exits == 1


def test_snapshot_after_exec_does_not_name_the_pre_exec_handle():
    m = FdModel()
    sc(m, 100, "pipe2", 0, fildes=0, flags=0)
    before = io(m, 100, 3)
    ev(m, 100, "sched_process_exec", filename="/bin/sh", pid=100, old_pid=100)
    snap(m, 100, {"3": "pipe:[55]"}, when="appear")
    assert io(m, 100, 3).rid == "pipe:55"
    assert before.rid is None  # fd 3 may have been closed on exec and reused
