"""fd-table state provider: hand-written event sequences (no capture needed)."""

import numpy as np

from ftraceipc.model.fd import (CLONE_THREAD, O_CLOEXEC, FdModel, Reason, rid_from_snapshot)

PIPEFS_SET_INODE = "inode_set_ctime_to_ts"


class Seq:
    """Feeds records at increasing timestamps."""

    def __init__(self, m: FdModel):
        self.m = m
        self.ts = 1000

    def ev(self, tid, event, **fields):
        self.ts += 10
        self.m.feed({"ts": self.ts, "tid": tid, "event": event, **fields})
        return self.ts

    def sc(self, tid, name, ret, inode=None, **args):
        self.ev(tid, f"sys_enter_{name}", **args)
        if inode is not None:
            self.ev(tid, PIPEFS_SET_INODE, dev=15, ino=inode)
        return self.ev(tid, f"sys_exit_{name}", ret=ret)

    def snap(self, pid, fds, when="start", cloexec=()):
        self.ts += 10
        self.m.snapshot({"kind": "fds", "when": when, "pid": pid, "comm": "x", "ppid": 1, "fds": fds,
                         "cloexec": list(cloexec)}, -1 if when == "start" else self.ts)

    def socket(self, pid, fd, sk=None):
        """A socket() call of ``pid`` returning ``fd``: its handle, with kernel address ``sk`` if given."""
        self.sc(pid, "socket", fd, family=1, type=1, protocol=0)
        h = self.m.resolve(np.array([pid]), np.array([fd]), np.array([self.ts + 1]))[0]
        if sk is not None:
            self.m.bind_sk(np.array([h]), np.array([sk]))
        return h

    def rid(self, tid, fd, ts=None):
        h = self.m.resolve(np.array([tid]), np.array([fd]), np.array([self.ts + 1 if ts is None else ts]))[0]
        if h < 0:
            return h
        return self.m.handles[h].rid


def std(extra=None):
    fds = {"0": "/dev/null", "1": "/dev/pts/0", "2": "/dev/pts/0"}
    fds.update(extra or {})
    return fds


def test_rid_from_snapshot():
    assert rid_from_snapshot("pipe:[12]") == "pipe:12"
    assert rid_from_snapshot("socket:[34]") == "unix:34"
    assert rid_from_snapshot("fifo:[56]:/tmp/f") == "fifo:56"
    assert rid_from_snapshot("/dev/null") is None


def test_start_snapshot_names_fds_and_other_files_are_not_ipc():
    s = Seq(FdModel())
    s.snap(100, std({"3": "pipe:[11]", "5": "fifo:[33]:/tmp/f"}))
    s.m.finish()
    assert s.rid(100, 3) == "pipe:11"
    assert s.rid(100, 5) == "fifo:33"
    h = s.m.resolve(np.array([100]), np.array([1]), np.array([s.ts]))[0]
    assert s.m.reason_of(h) is Reason.NOT_IPC


def test_pipe2_fds_are_the_lowest_free_and_the_inode_event_names_the_pipe():
    s = Seq(FdModel())
    s.snap(100, std({"4": "/etc/passwd"}))
    s.sc(100, "pipe2", 0, inode=777, fildes=0, flags=0)
    s.m.finish()
    assert s.rid(100, 3) == "pipe:777"
    assert s.rid(100, 5) == "pipe:777"
    assert s.rid(100, 4) is None  # a regular file: no rid
    assert s.rid(100, 6) == -1  # never opened


def test_fd_reused_for_another_resource_resolves_by_time():
    s = Seq(FdModel())
    s.snap(100, std())
    s.sc(100, "pipe2", 0, inode=1, fildes=0, flags=0)  # fds 3, 4
    t_first = s.ts
    s.sc(100, "close", 0, fd=3)
    s.sc(100, "close", 0, fd=4)
    s.sc(100, "pipe2", 0, inode=2, fildes=0, flags=0)  # fds 3, 4 again
    s.m.finish()
    assert s.rid(100, 3, t_first + 1) == "pipe:1"
    assert s.rid(100, 3) == "pipe:2"


def test_fork_copies_the_table_and_threads_share_it():
    s = Seq(FdModel())
    s.snap(100, std())
    s.sc(100, "pipe2", 0, inode=9, fildes=0, flags=0)
    s.ev(100, "task_newtask", pid=200, comm="child", clone_flags=0x1200011)  # fork
    s.ev(100, "task_newtask", pid=101, comm="thr", clone_flags=CLONE_THREAD | 0x100)
    s.sc(100, "close", 0, fd=4)  # the parent closes the write end; the child keeps it
    s.m.finish()
    assert s.rid(200, 4) == "pipe:9"
    assert s.rid(100, 4) == -1
    assert s.rid(101, 3) == "pipe:9"  # a thread of 100
    assert s.m.tables[200].complete


def test_exec_closes_cloexec_fds_and_unknown_flags_make_fds_uncertain():
    s = Seq(FdModel())
    s.snap(100, std({"5": "pipe:[50]"}), cloexec=[5])
    s.sc(100, "pipe2", 0, inode=60, fildes=0, flags=O_CLOEXEC)  # 3, 4: cloexec
    s.sc(100, "dup", 7, fildes=3)  # dup'd copy: not cloexec
    s.ev(100, "sched_process_exec", filename="/bin/x", pid=100, old_pid=100)
    s.m.finish()
    assert s.rid(100, 3) == -1 and s.rid(100, 5) == -1
    assert s.rid(100, 7) == "pipe:60"
    assert s.m.tables[100].complete


def test_without_a_snapshot_pipe_fds_are_unknown_and_counted():
    s = Seq(FdModel())
    s.sc(300, "pipe2", 0, inode=5, fildes=0, flags=0)
    assert s.rid(300, 3) == -1
    assert any("pipe2 fds unknown" in k for k in s.m.notes)


def test_another_threads_fd_change_during_pipe2_makes_it_ambiguous():
    s = Seq(FdModel())
    s.snap(100, std({"3": "/x"}))
    s.ev(100, "task_newtask", pid=101, comm="t", clone_flags=CLONE_THREAD)
    s.ev(100, "sys_enter_pipe2", fildes=0, flags=0)
    s.sc(101, "close", 0, fd=3)  # fd 3 freed while pipe2 ran: was it 3,4 or 4,5?
    s.ev(100, PIPEFS_SET_INODE, dev=15, ino=8)
    s.ev(100, "sys_exit_pipe2", ret=0)
    assert s.rid(100, 4) == -1
    assert not s.m.tables[100].complete


def test_recvmsg_on_a_unix_socket_may_bring_fds_so_later_pipes_are_not_inferred():
    s = Seq(FdModel())
    s.snap(100, std({"3": "socket:[40]"}))
    s.sc(100, "recvmsg", 10, fd=3, msg=0, flags=0)
    s.sc(100, "pipe2", 0, inode=5, fildes=0, flags=0)
    assert s.rid(100, 4) == -1
    assert "SCM_RIGHTS" in s.m.tables[100].why_incomplete


def test_socketpair_ends_are_peers_and_sk_names_the_inode():
    s = Seq(FdModel())
    s.snap(100, std())
    s.sc(100, "socketpair", 0, family=1, type=1 | O_CLOEXEC, protocol=0, usockvec=0)
    h3 = s.m.resolve(np.array([100]), np.array([3]), np.array([s.ts + 1]))[0]
    h4 = s.m.resolve(np.array([100]), np.array([4]), np.array([s.ts + 1]))[0]
    s.m.bind_sk(np.array([h3, h4]), np.array([0xAAA0, 0xBBB0]))
    s.m.snapshot({"kind": "unix", "when": "poll", "sockets": [
        {"num": "aaa0", "inode": 71, "type": 1, "path": None},
        {"num": "bbb0", "inode": 72, "type": 1, "path": None}]}, s.ts + 5)
    s.m.finish()
    r3 = s.m.handles[h3].resource
    assert r3.rid() == "unix:71" and r3.kind == "unix_stream"
    assert r3.peer.rid() == "unix:72"
    assert s.m.handles[h4].resource.peer is r3


def test_a_sk_address_reused_after_its_socket_closed_names_only_the_new_socket():
    """redis-server accepted a connection (fd 7, sk A) and closed it; socat's next socket got the same
    kernel address A. /proc/net/unix read after the close lists A with the new socket's inode: that
    names the new socket only, not the closed one (which would merge the two and send one connection's
    bytes to the other's reader)."""
    s = Seq(FdModel())
    s.snap(100, std())
    s.snap(200, std())
    old = s.socket(100, 7, 0xA0)
    s.sc(100, "close", 0, fd=7)
    new = s.socket(200, 5, 0xA0)
    s.m.snapshot({"kind": "unix", "when": "poll", "sockets": [
        {"num": "a0", "inode": 84, "type": 1, "path": None}]}, s.ts + 5)
    s.m.finish()
    assert s.m.handles[new].resource.rid() == "unix:84"
    assert s.m.handles[old].resource.rid() != "unix:84" and s.m.handles[old].resource is not s.m.handles[new].resource
    assert s.m.handles[old].resource.inode is None


def test_a_send_links_the_peer_that_had_the_receiver_address_at_the_time_of_the_send():
    """The receiver address of a send (sk_data_ready) names the socket that had it then: a socket
    closed before the next one got the same address is the peer of sends made while it lived."""
    s = Seq(FdModel())
    s.snap(100, std())
    s.snap(200, std())
    send = s.socket(200, 3)  # the sender (connected: no peer known yet)
    first = s.socket(100, 7, 0xA0)
    t_send = s.ts + 1
    s.sc(100, "close", 0, fd=7)
    second = s.socket(100, 8, 0xA0)
    s.m.link_peer(np.array([send]), np.array([0xA0]), np.array([t_send]))
    s.m.finish()
    peer = s.m.handles[send].resource.peer
    assert peer is s.m.handles[first].resource and s.m.handles[second].resource.peer is None


def test_a_send_to_an_address_whose_last_known_socket_is_closed_waits_for_the_socket_that_has_it():
    """redis_socat_chain: socat's first send reaches redis-server's new socket (address A) before
    redis-server's own calls have named A; the only socket known with A then is one closed before.
    The send links no peer then (not the dead socket), and at finish the socket that had A at the
    send's time: the new one."""
    s = Seq(FdModel())
    s.snap(100, std())
    s.snap(200, std())
    dead = s.socket(100, 7, 0xA0)
    s.sc(100, "close", 0, fd=7)
    send = s.socket(200, 3)  # socat's socket
    new = s.socket(100, 8)  # redis-server's new socket gets A
    t_send = s.ts + 1
    s.m.link_peer(np.array([send]), np.array([0xA0]), np.array([t_send]))
    assert s.m.handles[send].resource.peer is None and s.m.handles[dead].resource.peer is None
    s.m.bind_sk(np.array([new]), np.array([0xA0]))  # its first read names A
    s.m.finish()
    assert s.m.handles[send].resource.peer is s.m.handles[new].resource
    assert s.m.handles[dead].resource.peer is None


def test_a_process_exit_closes_its_fds_so_a_reused_address_names_the_next_socket():
    """A process that exits without closing its socket (group_dead: its last thread) releases it then:
    a send after the exit to the same kernel address is not the dead socket's; a thread's exit
    (group_dead false) closes nothing."""
    s = Seq(FdModel())
    s.snap(100, std())
    s.snap(200, std())
    dead = s.socket(100, 7, 0xA0)
    s.m.tgid_of[101] = 100  # a thread of 100
    s.ev(101, "sched_process_exit", pid=101, group_dead=False)
    assert s.rid(100, 7) == s.m.handles[dead].rid and s.m.handles[dead].resource.closed_ts is None
    t_exit = s.ev(100, "sched_process_exit", pid=100, group_dead=True)
    assert s.m.handles[dead].resource.closed_ts == t_exit and s.rid(100, 7) < 0
    send = s.socket(200, 3)
    s.m.link_peer(np.array([send]), np.array([0xA0]), np.array([s.ts + 1]))
    s.m.finish()
    assert s.m.handles[send].resource.peer is None and s.m.handles[dead].resource.peer is None
    assert s.m.notes["sends whose receiver socket is not known"] == 1


def test_socket_never_named_gets_a_fallback_rid_shared_by_its_fds():
    s = Seq(FdModel())
    s.snap(100, std())
    s.sc(100, "socketpair", 0, family=1, type=2, protocol=0, usockvec=0)
    s.sc(100, "dup", 9, fildes=3)
    s.m.finish()
    assert s.rid(100, 3).startswith("unix:~")
    assert s.rid(100, 9) == s.rid(100, 3)
    assert s.rid(100, 4) != s.rid(100, 3)


def test_later_snapshot_names_an_opened_fifo_and_a_disagreement_is_a_conflict():
    s = Seq(FdModel())
    s.snap(100, std())
    s.sc(100, "openat", 3, dfd=-100, filename=0, flags=0, mode=0)
    s.sc(100, "pipe2", 0, inode=5, fildes=0, flags=0)  # 4, 5
    h = s.m.resolve(np.array([100]), np.array([3]), np.array([s.ts + 1]))[0]
    assert s.m.reason_of(h) is Reason.OPENED_UNNAMED
    s.snap(100, {"3": "fifo:[90]:/tmp/f", "4": "pipe:[6]"}, when="appear")
    s.m.finish()
    assert s.rid(100, 3) == "fifo:90"
    assert s.m.handles[h].resource.path == "/tmp/f"
    assert s.m.conflicts == ["pid 100 fd 4: snapshot pipe:6, trace pipe:5"]


def test_dup2_onto_an_open_fd_replaces_it():
    s = Seq(FdModel())
    s.snap(100, std({"3": "pipe:[1]", "4": "pipe:[2]"}))
    s.sc(100, "dup2", 1, oldfd=3, newfd=1)
    s.m.finish()
    assert s.rid(100, 1) == "pipe:1"


def test_sk_pointers_from_the_trace_as_int64_match_proc_net_unix():
    s = Seq(FdModel())
    s.snap(100, std())
    s.sc(100, "socket", 3, family=1, type=2, protocol=0)
    h = s.m.resolve(np.array([100]), np.array([3]), np.array([s.ts + 1]))[0]
    sk = 0xFFFF88813EBD4900
    s.m.bind_sk(np.array([h]), np.array([sk - (1 << 64)], dtype=np.int64))  # as numpy int64 holds it
    s.m.snapshot({"kind": "unix", "when": "poll", "sockets": [
        {"num": "ffff88813ebd4900", "inode": 81, "type": 2, "path": "/run/x.sock"}]}, s.ts + 5)
    s.m.finish()
    r = s.m.handles[h].resource
    assert r.rid() == "unix:81" and r.kind == "unix_dgram" and r.path == "/run/x.sock"
    assert s.m.resource_of_sk(sk - (1 << 64)) is r


def test_a_socket_in_an_fd_table_that_no_proc_net_unix_read_listed_is_not_ipc():
    s = Seq(FdModel())
    s.m.snapshot({"kind": "unix", "when": "start", "sockets": [{"num": "0", "inode": 5, "type": 1}]}, -1)
    s.snap(100, std({"3": "socket:[77]", "4": "socket:[5]"}))
    s.m.finish()
    h3, h4 = s.m.resolve(np.array([100, 100]), np.array([3, 4]), np.array([s.ts, s.ts]))
    assert s.m.reason_of(h3) is Reason.NOT_IPC  # e.g. a TCP connection
    assert s.m.handles[h4].rid == "unix:5" and s.m.reason_of(h4) is None


def test_accept_on_an_unknown_listener_says_the_fd_was_unknown():
    s = Seq(FdModel())
    s.sc(300, "accept4", 4, fd=3, upeer_sockaddr=0, upeer_addrlen=0, flags=0)
    h = s.m.resolve(np.array([300]), np.array([4]), np.array([s.ts + 1]))[0]
    assert s.m.reason_of(h) is Reason.UNKNOWN_FD


def test_a_reused_pid_does_not_inherit_the_old_process_fds():
    s = Seq(FdModel())
    s.snap(100, std())
    s.snap(200, std({"6": "pipe:[66]"}))  # a process at start that exits; its pid comes back later
    s.sc(100, "pipe2", 0, inode=9, fildes=0, flags=0)  # 3, 4
    s.ev(100, "task_newtask", pid=200, comm="new", clone_flags=0x1200011)
    s.m.finish()
    assert s.rid(200, 6) == -1
    assert s.rid(200, 4) == "pipe:9"


def test_a_capture_without_every_fd_lifecycle_event_never_infers_pipe_fds():
    m = FdModel()
    m.no_inference = "the capture lacks syscalls:sys_exit_openat"
    s = Seq(m)
    s.snap(100, std())
    s.sc(100, "pipe2", 0, inode=5, fildes=0, flags=0)
    assert s.rid(100, 3) == -1
    assert any("lacks syscalls:sys_exit_openat" in k for k in m.notes)


def test_without_exec_events_no_fd_is_trusted():
    m = FdModel()
    m.exec_unseen = True
    s = Seq(m)
    s.snap(100, std({"3": "pipe:[1]"}))
    h = m.resolve(np.array([100]), np.array([3]), np.array([s.ts]))[0]
    assert h == -3 and m.reason_of(h) is Reason.NO_EXEC_EVENTS


# --- settle: the binding history stays bounded by the fds alive --------------------------------------
def _churn(s, pid, rounds, first_inode):
    """``rounds`` of: a pipe (two fds), a file opened, a dup2 of the pipe's read end onto fd 9, then
    everything closed again, so fds are reused with other resources each round."""
    for i in range(rounds):
        s.sc(pid, "pipe2", 0, inode=first_inode + i, fildes=0, flags=0)  # 3, 4
        s.sc(pid, "openat", 5, dfd=-100, filename=0, flags=0, mode=0)
        s.sc(pid, "dup2", 9, oldfd=3, newfd=9)
        for fd in (3, 4, 5, 9):
            s.sc(pid, "close", 0, fd=fd)


def _twins():
    """Two models fed the same records: ``a`` settles, ``b`` keeps the whole history."""
    a, b = FdModel(), FdModel()
    a.settle_min = 0

    class Both(Seq):
        def ev(self, tid, event, **fields):
            self.ts += 10
            for m in (a, b):
                m.feed({"ts": self.ts, "tid": tid, "event": event, **fields})
            return self.ts

        def snap(self, pid, fds, when="start", cloexec=()):
            self.ts += 10
            for m in (a, b):
                m.snapshot({"kind": "fds", "when": when, "pid": pid, "comm": "x", "ppid": 1, "fds": fds,
                            "cloexec": list(cloexec)}, -1 if when == "start" else self.ts)
    return a, b, Both(a)


def _rids(m, tids, fds, tss):
    hs = m.resolve(np.asarray(tids), np.asarray(fds), np.asarray(tss))
    return [int(h) if h < 0 else m.handles[h].rid for h in hs]


def test_settle_forgets_closed_fds_and_every_later_query_resolves_as_on_the_whole_history():
    a, b, s = _twins()
    s.snap(100, std())
    s.snap(200, std({"7": "pipe:[70]"}))
    _churn(s, 100, 50, 1000)
    _churn(s, 200, 50, 2000)
    floor = s.ts
    n_before = len(a.history())
    a.settle(floor)
    assert len(a.history()) < n_before / 10, (len(a.history()), n_before)  # 3 + 4 fds alive: 7 rows (+ closes)
    _churn(s, 100, 3, 3000)
    a.finish()
    b.finish()
    tids = [100, 200] * 10 + [100, 200]
    fds = [0, 1, 2, 3, 4, 5, 7, 9, 11, 40] * 2 + [3, 7]
    tss = [floor + 1] * 20 + [s.ts + 1] * 2  # at the floor and after it
    for fd_list, ts_list in ((fds, tss), (fds, [s.ts - 25] * len(fds))):
        got, want = _rids(a, tids, fd_list, ts_list), _rids(b, tids, fd_list, ts_list)
        assert got == want
    assert _rids(a, [200], [7], [floor + 1]) == ["pipe:70"]
    assert _rids(a, [100], [3], [floor + 1]) == [-1]  # closed at the end of the churn


def test_settle_keeps_the_binding_a_syscall_still_open_resolves_to():
    a, b, s = _twins()
    s.snap(100, std())
    for m in (a, b):
        m.tgid_of[101] = 100
    s.sc(100, "pipe2", 0, inode=42, fildes=0, flags=0)  # 3, 4
    s.ev(101, "sys_enter_read", fd=3)  # a thread's read that blocks through what follows
    t_read = s.ts
    s.sc(100, "close", 0, fd=3)
    _churn(s, 100, 40, 5000)
    a.settle(s.ts, pin_tid=[101], pin_fd=[3], pin_ts=[t_read])
    assert _rids(a, [101], [3], [t_read]) == _rids(b, [101], [3], [t_read]) == ["pipe:42"]
    a.settle(s.ts)  # nothing pinned any more: the old binding goes
    assert _rids(a, [101], [3], [t_read]) == [-1]


def test_a_later_snapshot_read_before_settle_still_names_the_file_opened_then():
    a, b, s = _twins()
    s.snap(100, std())
    s.sc(100, "openat", 3, dfd=-100, filename=0, flags=0, mode=0)
    t_open = s.ts
    s.snap(100, {"3": "fifo:[90]:/tmp/f"}, when="appear")
    h = a.resolve(np.array([100]), np.array([3]), np.array([t_open + 1]))[0]
    s.sc(100, "close", 0, fd=3)
    _churn(s, 100, 40, 6000)
    a.settle(s.ts)
    a.finish()
    b.finish()
    assert a.handles[h].rid == "fifo:90" and a.handles[h].resource.path == "/tmp/f"
    assert _rids(b, [100], [3], [t_open + 1]) == ["fifo:90"]


def test_closed_opened_files_are_reclaimed_and_their_io_still_reads_as_before():
    a, b, s = _twins()
    s.snap(100, std())
    io = []  # (fd, ts) of a read on each file while it was open
    for i in range(30):
        s.sc(100, "openat", 3, dfd=-100, filename=0, flags=0, mode=0)
        io.append((3, s.ts + 1))
        if i % 3 == 0:  # the open watcher named some of them (regular files: not IPC)
            s.snap(100, {"3": "/etc/passwd"}, when="open")
        if i % 10 == 5:  # and one FIFO
            s.snap(100, {"3": "fifo:[77]:/tmp/q"}, when="open")
        s.sc(100, "close", 0, fd=3)
    tids, fds, tss = np.array([100] * len(io)), np.array([f for f, _ in io]), np.array([t for _, t in io])
    ha = a.resolve(tids, fds, tss)  # the reads are resolved as their batch ends, before settling
    a.settle(s.ts + 1)
    assert a.reclaimed == 30 - 3  # all but the FIFOs: no fd names them and nothing will
    a.finish()
    b.finish()
    hb = b.resolve(tids, fds, tss)
    assert (ha >= 0).all() and (hb >= 0).all()
    assert [a.reason_of(int(h)) for h in ha] == [b.reason_of(int(h)) for h in hb]
    assert [a.handles[int(h)].rid for h in ha] == [b.handles[int(h)].rid for h in hb]
    assert {b.reason_of(int(h)) for h in hb} == {Reason.NOT_IPC, Reason.OPENED_UNNAMED, None}
    assert [b.handles[int(h)].rid for h in hb].count("fifo:77") == 3
    assert len(a.history()) <= 4  # the std fds, nothing of the 30 files


def test_sock_evidence_on_a_reclaimed_handle_changes_no_other_file():
    """A syscall that began on a file whose fd another thread then closed resolves to the shared
    reclaimed handle: evidence met there (a sock pointer) must not turn every file into a socket."""
    a, _b, s = _twins()
    a.tgid_of[101] = 100
    s.snap(100, std())
    s.sc(100, "openat", 3, dfd=-100, filename=0, flags=0, mode=0)
    s.snap(100, {"3": "/etc/passwd"}, when="open")
    s.sc(100, "openat", 4, dfd=-100, filename=0, flags=0, mode=0)
    s.snap(100, {"4": "/etc/group"}, when="open")  # a file that stays open
    t_read = s.ev(101, "sys_enter_read", fd=3)
    s.sc(100, "close", 0, fd=3)
    a.settle(s.ts + 1, pin_tid=[101], pin_fd=[3], pin_ts=[t_read])
    h = a.resolve(np.array([101]), np.array([3]), np.array([t_read]))
    assert a.reclaimed == 1 and a.handles[int(h[0])].id == -1
    a.bind_sk(h, np.array([0xffff888012345678]))
    a.finish()
    h4 = int(a.resolve(np.array([100]), np.array([4]), np.array([s.ts]))[0])
    assert a.reason_of(h4) is Reason.NOT_IPC and a.handles[h4].rid is None
    assert a.reason_of(int(h[0])) is Reason.NOT_IPC


def test_a_successful_lseek_shows_an_opened_file_is_not_ipc():
    """lseek works on regular files and fails with ESPIPE on pipes, FIFOs, sockets and ttys: an fd
    opened by path that no snapshot named is known not to be IPC once an lseek on it succeeded."""
    a, b, s = _twins()
    s.snap(100, std({"4": "pipe:[12]"}))
    io = []
    for seek_ret in (0, -29, None):  # seeked; ESPIPE (could be a FIFO); never seeked
        s.sc(100, "openat", 3, dfd=-100, filename=0, flags=0, mode=0)
        if seek_ret is not None:
            s.sc(100, "lseek", seek_ret, fd=3, offset=0, whence=1)
        io.append(s.ts + 1)
        s.sc(100, "close", 0, fd=3)
    s.sc(100, "lseek", -29, fd=4, offset=0, whence=1)  # on the pipe: nothing changes
    tids, fds, tss = np.array([100] * 3), np.array([3] * 3), np.array(io)
    ha = a.resolve(tids, fds, tss)
    a.settle(s.ts + 1)
    a.finish()
    b.finish()
    for m, hs in ((a, ha), (b, b.resolve(tids, fds, tss))):
        assert [m.reason_of(int(h)) for h in hs] == [Reason.NOT_IPC, Reason.OPENED_UNNAMED, Reason.OPENED_UNNAMED]
    assert s.rid(100, 4) == "pipe:12"


def test_f_setpipe_sz_gives_the_pipe_its_capacity():
    """The size the kernel returned (a page multiple): the full_buffer_stall advice compares the bursts
    with it. Other fcntl commands, failures and sockets leave it unknown."""
    s = Seq(FdModel())
    s.snap(100, std({"3": "socket:[9]"}))
    s.sc(100, "pipe2", 0, inode=777, fildes=0, flags=0)  # fds 4 and 5
    s.sc(100, "fcntl", 0, fd=5, cmd=4, arg=0o4000)  # F_SETFL: nothing
    s.sc(100, "fcntl", -1, fd=5, cmd=1031, arg=1 << 30)  # EPERM: nothing
    s.sc(100, "fcntl", 4096, fd=5, cmd=1031, arg=3000)
    s.sc(100, "fcntl", 0, fd=3, cmd=1031, arg=3000)  # not a pipe (the kernel says EBADF; ret 0 ignored)
    s.m.finish()
    caps = {r.rid(): r.capacity for r in s.m.live_resources() if r.rid()}
    assert caps["pipe:777"] == 4096 and caps.get("unix:9") is None
