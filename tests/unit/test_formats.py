"""Format-file parsing, on format text copied byte for byte from a 6.18 kernel's tracefs."""

from __future__ import annotations

import numpy as np
import pytest

from ftraceipc.decode.formats import parse_format, parse_header_event, parse_header_page
from ftraceipc.errors import CaptureFormatError

# --- copied from /sys/kernel/tracing/events/... (x86_64, 6.18) -----------------------------------------
SCHED_SWITCH = r"""name: sched_switch
ID: 372
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:char prev_comm[16];	offset:8;	size:16;	signed:0;
	field:pid_t prev_pid;	offset:24;	size:4;	signed:1;
	field:int prev_prio;	offset:28;	size:4;	signed:1;
	field:long prev_state;	offset:32;	size:8;	signed:1;
	field:char next_comm[16];	offset:40;	size:16;	signed:0;
	field:pid_t next_pid;	offset:56;	size:4;	signed:1;
	field:int next_prio;	offset:60;	size:4;	signed:1;

print fmt: "prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s next_pid=%d next_prio=%d", REC->prev_comm, REC->prev_pid, REC->prev_prio, (REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1)) ? __print_flags(REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1), "|", { 0x00000001, "S" }, { 0x00000002, "D" }, { 0x00000004, "T" }, { 0x00000008, "t" }, { 0x00000010, "X" }, { 0x00000020, "Z" }, { 0x00000040, "P" }, { 0x00000080, "I" }) : "R", REC->prev_state & (((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) ? "+" : "", REC->next_comm, REC->next_pid, REC->next_prio
"""

SCHED_PROCESS_EXEC = r"""name: sched_process_exec
ID: 365
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:__data_loc char[] filename;	offset:8;	size:4;	signed:0;
	field:pid_t pid;	offset:12;	size:4;	signed:1;
	field:pid_t old_pid;	offset:16;	size:4;	signed:1;

print fmt: "filename=%s pid=%d old_pid=%d", __get_str(filename), REC->pid, REC->old_pid
"""

SYS_ENTER_WRITE = r"""name: sys_enter_write
ID: 840
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:int __syscall_nr;	offset:8;	size:4;	signed:1;
	field:unsigned int fd;	offset:16;	size:8;	signed:0;
	field:const char * buf;	offset:24;	size:8;	signed:0;
	field:size_t count;	offset:32;	size:8;	signed:0;

print fmt: "fd: 0x%08lx, buf: 0x%08lx, count: 0x%08lx", ((unsigned long)(REC->fd)), ((unsigned long)(REC->buf)), ((unsigned long)(REC->count))
"""

SOCK_SEND_LENGTH = r"""name: sock_send_length
ID: 2284
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:void * sk;	offset:8;	size:8;	signed:0;
	field:__u16 family;	offset:16;	size:2;	signed:0;
	field:__u16 protocol;	offset:18;	size:2;	signed:0;
	field:int ret;	offset:20;	size:4;	signed:1;
	field:int flags;	offset:24;	size:4;	signed:1;

print fmt: "sk address = %p, family = %s protocol = %s, length = %d, error = %d, flags = 0x%x", REC->sk, __print_symbolic(REC->family, { 2, "AF_INET" }, { 10, "AF_INET6" }), __print_symbolic(REC->protocol, { 6, "IPPROTO_TCP" }, { 132, "IPPROTO_SCTP" }, { 262, "IPPROTO_MPTCP" }), !(REC->flags & 2) ? (REC->ret > 0 ? REC->ret : 0) : 0, REC->ret < 0 ? REC->ret : 0, REC->flags
"""

SCHED_PROCESS_EXIT = r"""name: sched_process_exit
ID: 369
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:char comm[16];	offset:8;	size:16;	signed:0;
	field:pid_t pid;	offset:24;	size:4;	signed:1;
	field:int prio;	offset:28;	size:4;	signed:1;
	field:bool group_dead;	offset:32;	size:1;	signed:0;

print fmt: "comm=%s pid=%d prio=%d group_dead=%s", REC->comm, REC->pid, REC->prio, REC->group_dead ? "true" : "false"
"""

FTRACE_PRINT = r"""name: print
ID: 5
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:unsigned long ip;	offset:8;	size:8;	signed:0;
	field:char buf[];	offset:16;	size:0;	signed:0;

print fmt: "%ps: %s", (void *)REC->ip, REC->buf
"""

INET_SOCK_SET_STATE = r"""name: inet_sock_set_state
ID: 2287
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:const void * skaddr;	offset:8;	size:8;	signed:0;
	field:int oldstate;	offset:16;	size:4;	signed:1;
	field:int newstate;	offset:20;	size:4;	signed:1;
	field:__u16 sport;	offset:24;	size:2;	signed:0;
	field:__u16 dport;	offset:26;	size:2;	signed:0;
	field:__u16 family;	offset:28;	size:2;	signed:0;
	field:__u16 protocol;	offset:30;	size:2;	signed:0;
	field:__u8 saddr[4];	offset:32;	size:4;	signed:0;
	field:__u8 daddr[4];	offset:36;	size:4;	signed:0;
	field:__u8 saddr_v6[16];	offset:40;	size:16;	signed:0;
	field:__u8 daddr_v6[16];	offset:56;	size:16;	signed:0;

print fmt: "family=%s protocol=%s sport=%hu dport=%hu saddr=%pI4 daddr=%pI4 saddrv6=%pI6c daddrv6=%pI6c oldstate=%s newstate=%s", __print_symbolic(REC->family, { 2, "AF_INET" }, { 10, "AF_INET6" }), __print_symbolic(REC->protocol, { 6, "IPPROTO_TCP" }, { 132, "IPPROTO_SCTP" }, { 262, "IPPROTO_MPTCP" }), REC->sport, REC->dport, REC->saddr, REC->daddr, REC->saddr_v6, REC->daddr_v6, __print_symbolic(REC->oldstate, { 1, "TCP_ESTABLISHED" }, { 2, "TCP_SYN_SENT" }, { 3, "TCP_SYN_RECV" }, { 4, "TCP_FIN_WAIT1" }, { 5, "TCP_FIN_WAIT2" }, { 6, "TCP_TIME_WAIT" }, { 7, "TCP_CLOSE" }, { 8, "TCP_CLOSE_WAIT" }, { 9, "TCP_LAST_ACK" }, { 10, "TCP_LISTEN" }, { 11, "TCP_CLOSING" }, { 12, "TCP_NEW_SYN_RECV" }), __print_symbolic(REC->newstate, { 1, "TCP_ESTABLISHED" }, { 2, "TCP_SYN_SENT" }, { 3, "TCP_SYN_RECV" }, { 4, "TCP_FIN_WAIT1" }, { 5, "TCP_FIN_WAIT2" }, { 6, "TCP_TIME_WAIT" }, { 7, "TCP_CLOSE" }, { 8, "TCP_CLOSE_WAIT" }, { 9, "TCP_LAST_ACK" }, { 10, "TCP_LISTEN" }, { 11, "TCP_CLOSING" }, { 12, "TCP_NEW_SYN_RECV" })
"""

HEADER_PAGE = r"""	field: u64 timestamp;	offset:0;	size:8;	signed:0;
	field: local_t commit;	offset:8;	size:8;	signed:1;
	field: int overwrite;	offset:8;	size:1;	signed:1;
	field: char data;	offset:16;	size:4080;	signed:0;
"""

HEADER_EVENT = r"""# compressed entry header
	type_len    :    5 bits
	time_delta  :   27 bits
	array       :   32 bits

	padding     : type == 29
	time_extend : type == 30
	time_stamp : type == 31
	data max type_len  == 28
"""

# Not on this kernel: the kernel's samples/trace_events "foo_rel_loc" shape of a __rel_loc field.
REL_LOC = """name: foo_rel_loc
ID: 1999
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:u32 bar;	offset:8;	size:4;	signed:0;
	field:__rel_loc char[] foo;	offset:12;	size:4;	signed:0;

print fmt: "foo_rel_loc %s, %u", __get_rel_str(foo), REC->bar
"""


def test_sched_switch_fields():
    f = parse_format(SCHED_SWITCH, "sched")
    assert (f.name, f.system, f.id, f.full_name) == ("sched_switch", "sched", 372, "sched:sched_switch")
    assert [x.name for x in f.common_fields] == ["common_type", "common_flags", "common_preempt_count", "common_pid"]
    assert [x.name for x in f.own_fields] == ["prev_comm", "prev_pid", "prev_prio", "prev_state", "next_comm",
                                             "next_pid", "next_prio"]
    pc = f.field("prev_comm")
    assert (pc.ctype, pc.offset, pc.size, pc.array_len, pc.signed) == ("char[16]", 8, 16, 16, False)
    assert pc.is_string and pc.is_array and not pc.is_dynamic and not pc.is_pointer
    ps = f.field("prev_state")
    assert (ps.ctype, ps.offset, ps.size, ps.signed) == ("long", 32, 8, True)
    assert f.field("next_pid").offset == 56 and f.field("common_pid").signed
    assert not f.field("common_type").signed
    assert f.print_fmt.startswith('"prev_comm=%s')
    assert f.record_size == 64 and f.dtype.itemsize == 64
    assert f.dtype.fields["next_prio"] == (np.dtype("<i4"), 60)
    assert f.dtype.fields["prev_state"] == (np.dtype("<i8"), 32)


def test_dtype_decodes_a_record():
    f = parse_format(SCHED_SWITCH, "sched")
    raw = bytearray(64)
    raw[0:2] = (372).to_bytes(2, "little")
    raw[4:8] = (1234).to_bytes(4, "little", signed=True)
    raw[8:13] = b"bash\0"
    raw[24:28] = (-1).to_bytes(4, "little", signed=True)
    raw[32:40] = (0x401).to_bytes(8, "little")
    rec = np.frombuffer(bytes(raw), dtype=np.uint8).view(f.dtype)[0]
    assert rec["common_type"] == 372 and rec["common_pid"] == 1234 and rec["prev_pid"] == -1
    assert rec["prev_state"] == 0x401 and bytes(rec["prev_comm"]).rstrip(b"\0") == b"bash"


def test_data_loc_string():
    f = parse_format(SCHED_PROCESS_EXEC, "sched")
    fn = f.field("filename")
    assert fn.ctype == "__data_loc char[]" and fn.is_dynamic and not fn.is_rel_loc and fn.is_string
    assert (fn.offset, fn.size) == (8, 4) and fn.numpy_dtype() == np.dtype("<u4")
    assert [x.name for x in f.own_fields] == ["filename", "pid", "old_pid"]
    assert f.record_size == 20


def test_rel_loc_is_relative_to_the_end_of_the_field():
    f = parse_format(REL_LOC)
    foo = f.field("foo")
    assert foo.is_dynamic and foo.is_rel_loc and foo.is_string and foo.offset + foo.size == 16


def test_syscall_args_are_longs_whatever_their_c_type():
    f = parse_format(SYS_ENTER_WRITE, "syscalls")
    fd, buf, count = f.field("fd"), f.field("buf"), f.field("count")
    assert (fd.ctype, fd.offset, fd.size, fd.signed) == ("unsigned int", 16, 8, False)
    assert fd.numpy_dtype() == np.dtype("<u8")
    assert buf.ctype == "const char *" and buf.is_pointer and not buf.is_string and buf.offset == 24
    assert count.ctype == "size_t" and count.size == 8
    nr = f.field("__syscall_nr")
    assert (nr.offset, nr.size, nr.signed) == (8, 4, True) and not nr.is_common
    assert f.dtype.itemsize == 40


def test_pointer_and_small_ints():
    f = parse_format(SOCK_SEND_LENGTH, "sock")
    assert f.field("sk").is_pointer and f.field("sk").ctype == "void *"
    assert f.field("family").numpy_dtype() == np.dtype("<u2")
    assert f.field("ret").numpy_dtype() == np.dtype("<i4")


def test_bool_and_odd_record_size():
    f = parse_format(SCHED_PROCESS_EXIT, "sched")
    gd = f.field("group_dead")
    assert (gd.ctype, gd.offset, gd.size) == ("bool", 32, 1)
    assert f.record_size == 33 and f.dtype.itemsize == 33
    assert f.padded_dtype(36).itemsize == 36 and f.padded_dtype(36).fields["group_dead"][1] == 32


def test_flexible_array_is_left_out_of_the_dtype():
    f = parse_format(FTRACE_PRINT, "ftrace")
    buf = f.field("buf")
    assert buf.is_flexible and buf.is_string and buf.size == 0 and buf.array_len == 0
    assert "buf" not in f.dtype.names and f.record_size == 16


def test_non_char_arrays():
    f = parse_format(INET_SOCK_SET_STATE, "sock")
    sa = f.field("saddr")
    assert sa.ctype == "__u8[4]" and sa.array_len == 4 and not sa.is_string
    assert sa.numpy_dtype() == np.dtype(("u1", (4,)))
    assert f.field("daddr_v6").numpy_dtype().shape == (16,)
    assert f.field("skaddr").ctype == "const void *"


def test_header_page():
    hp = parse_header_page(HEADER_PAGE)
    assert (hp.timestamp_offset, hp.timestamp_size) == (0, 8)
    assert (hp.commit_offset, hp.commit_size) == (8, 8)  # local_t, not the 1-byte "overwrite" alias
    assert (hp.data_offset, hp.data_size, hp.page_size) == (16, 4080, 4096)
    assert hp.for_page_size(8192).data_size == 8176


def test_header_event():
    he = parse_header_event(HEADER_EVENT)
    assert (he.type_len_bits, he.time_delta_bits, he.array_bits) == (5, 27, 32)
    assert (he.padding, he.time_extend, he.time_stamp, he.data_max_type_len) == (29, 30, 31, 28)
    assert he.type_len_mask == 31 and he.ts_shift == 27


def test_header_event_values_are_read_not_assumed():
    text = HEADER_EVENT.replace("type == 29", "type == 25").replace("== 28", "== 24")
    he = parse_header_event(text)
    assert he.padding == 25 and he.data_max_type_len == 24


@pytest.mark.parametrize("text", ["", "hello\nworld\n", "name: x\nformat:\n"])
def test_not_a_format(text):
    with pytest.raises(CaptureFormatError):
        parse_format(text)


def test_bad_header_event():
    with pytest.raises(CaptureFormatError):
        parse_header_event("nothing here")
    with pytest.raises(CaptureFormatError):
        parse_header_page("nothing here")
