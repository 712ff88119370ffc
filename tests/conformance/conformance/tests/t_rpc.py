"""RPC layer (RFC 5531): messages, every error reply, authentication, record marking, pipelining,
oversized and broken records."""

import os
import socket
import struct
import threading
import time

from .. import mount, nfs3, rpc
from ..framework import testcase
from ..xdr import Packer

NONEXISTENT_PROG = 0x20000F7A


def _null_call(xid, cred=None):
    return rpc.build_call(xid, nfs3.PROGRAM, 3, nfs3.NULL, b"", cred)


def _getattr_call(t, xid):
    return rpc.build_call(xid, nfs3.PROGRAM, 3, nfs3.GETATTR, nfs3.args_fh(t.root_fh),
                          t.env.cred())


def _serves(t, what):
    """Fails unless a fresh connection still gets an answer to NULL."""
    try:
        c = t.new_nfs(timeout=5)
        c.null()
    except (OSError, rpc.ConnectionClosed, rpc.ReplyTimeout) as e:
        t.fail("server no longer serves after %s: %s" % (what, e))


def _reply(t, transport, xid, timeout=5):
    try:
        msg = transport.recv_message(timeout)
    except rpc.ReplyTimeout:
        t.fail("no reply")
    except rpc.ConnectionClosed as e:
        t.fail("connection closed instead of a reply (%s)" % e)
    r = rpc.Reply(msg)
    t.expect(r.xid == xid, "reply xid %08x does not match call xid %08x" % (r.xid, xid))
    return r


@testcase("RPC1", "rpc")
def null_tcp(t):
    """NFS NULL over TCP with AUTH_NONE: SUCCESS and no result bytes (RFC 1813 3.3.0, RFC 5531 12.1)."""
    c = t.nfs_rpc(cred=rpc.auth_none())
    t.expect(c.call(nfs3.NULL) == b"", "NULL returned result bytes")


@testcase("RPC2", "rpc udp")
def null_udp(t):
    """NFS NULL over UDP (RFC 5531 section 11 covers TCP only; UDP is one message per datagram)."""
    c = t.nfs_rpc("udp", cred=rpc.auth_none())
    t.expect(c.call(nfs3.NULL) == b"", "NULL returned result bytes")


@testcase("RPC3", "rpc")
def null_auth_sys(t):
    """NULL with AUTH_SYS credentials succeeds (RFC 5531 appendix A)."""
    c = t.nfs_rpc(cred=rpc.auth_sys(1000, 1000, [1000, 10]))
    t.expect(c.call(nfs3.NULL) == b"", "NULL returned result bytes")


@testcase("RPC4", "rpc")
def reply_header(t):
    """The reply echoes the xid and carries a valid verifier (RFC 5531 section 9: xid, 8.2 verf)."""
    tr = t.transport()
    xid = 0x7E57AB1E
    tr.send_message(_getattr_call(t, xid))
    r = _reply(t, tr, xid)
    t.expect(r.success, "GETATTR not accepted: %s" % r.describe())
    t.expect(r.verf.flavor in (rpc.AUTH_NONE_FLAVOR, 2),
             "reply verifier flavor %d for an AUTH_SYS call (expected AUTH_NONE or AUTH_SHORT)"
             % r.verf.flavor)


@testcase("RPC5", "rpc")
def rpc_mismatch(t):
    """RPC version 3 is denied with RPC_MISMATCH naming a range that includes 2 (RFC 5531 9)."""
    c = t.nfs_rpc()
    r = c.call_raw(nfs3.NULL, rpcvers=3)
    t.expect(r.reply_stat == rpc.MSG_DENIED and r.reject_stat == rpc.RPC_MISMATCH,
             "got %s, expected MSG_DENIED RPC_MISMATCH" % r.describe())
    t.expect(r.low <= 2 <= r.high, "RPC_MISMATCH range %d..%d excludes 2" % (r.low, r.high))
    t.expect(c.call(nfs3.NULL) == b"", "connection unusable after RPC_MISMATCH")


@testcase("RPC6", "rpc")
def prog_unavail(t):
    """An unknown program gets PROG_UNAVAIL (RFC 5531 section 9, accept_stat)."""
    c = t.nfs_rpc()
    r = c.call_raw(0, prog=NONEXISTENT_PROG, vers=1)
    t.expect(r.reply_stat == rpc.MSG_ACCEPTED and r.accept_stat == rpc.PROG_UNAVAIL,
             "got %s, expected PROG_UNAVAIL" % r.describe())


@testcase("RPC7", "rpc")
def prog_mismatch_nfs(t):
    """NFS version 99 gets PROG_MISMATCH with a range including 3 (RFC 5531 9, mismatch_info)."""
    c = t.nfs_rpc()
    r = c.call_raw(0, vers=99)
    t.expect(r.accept_stat == rpc.PROG_MISMATCH, "got %s, expected PROG_MISMATCH" % r.describe())
    t.expect(r.low <= 3 <= r.high, "PROG_MISMATCH range %d..%d excludes 3" % (r.low, r.high))


@testcase("RPC8", "rpc")
def prog_mismatch_nfs_v1(t):
    """NFS version 1 (never defined) gets PROG_MISMATCH with low > 1 (RFC 5531 9)."""
    c = t.nfs_rpc()
    r = c.call_raw(0, vers=1)
    t.expect(r.accept_stat == rpc.PROG_MISMATCH, "got %s, expected PROG_MISMATCH" % r.describe())
    t.expect(r.low > 1 and r.low <= r.high, "PROG_MISMATCH range %d..%d" % (r.low, r.high))


@testcase("RPC9", "rpc")
def proc_unavail_nfs(t):
    """NFS procedure 22 (beyond COMMIT) gets PROC_UNAVAIL (RFC 5531 9, RFC 1813 3.3)."""
    c = t.nfs_rpc()
    r = c.call_raw(22)
    t.expect(r.accept_stat == rpc.PROC_UNAVAIL, "got %s, expected PROC_UNAVAIL" % r.describe())
    r = c.call_raw(0xFFFFFFFF)
    t.expect(r.accept_stat == rpc.PROC_UNAVAIL,
             "procedure 0xffffffff: got %s, expected PROC_UNAVAIL" % r.describe())


@testcase("RPC10", "rpc mount")
def mount_errors(t):
    """MOUNT version 99 gets PROG_MISMATCH covering 1..3, procedure 6 PROC_UNAVAIL (RFC 5531 9)."""
    c = t.rpc(mount.PROGRAM, 3, port=t.env.mount_port, cred=t.env.cred())
    r = c.call_raw(0, vers=99)
    t.expect(r.accept_stat == rpc.PROG_MISMATCH, "vers 99: got %s" % r.describe())
    t.expect(r.low <= 1 and r.high >= 3, "MOUNT range %d..%d does not cover 1..3"
             % (r.low, r.high))
    r = c.call_raw(6)
    t.expect(r.accept_stat == rpc.PROC_UNAVAIL, "proc 6: got %s" % r.describe())


@testcase("RPC11", "rpc")
def garbage_args_empty(t):
    """GETATTR without arguments gets GARBAGE_ARGS (RFC 5531 9: cannot decode params)."""
    c = t.nfs_rpc()
    r = c.call_raw(nfs3.GETATTR, b"")
    t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "got %s, expected GARBAGE_ARGS" % r.describe())


@testcase("RPC12", "rpc")
def garbage_args_length(t):
    """A handle length reaching past the message gets GARBAGE_ARGS (RFC 5531 9, RFC 4506 4.10)."""
    c = t.nfs_rpc()
    r = c.call_raw(nfs3.GETATTR, struct.pack(">I", 60) + b"\1" * 8)
    t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "got %s, expected GARBAGE_ARGS" % r.describe())


@testcase("RPC13", "rpc", deps=["RPC11"])
def garbage_args_keeps_connection(t):
    """After GARBAGE_ARGS the same connection keeps serving (RFC 5531 9: a reply, not a failure)."""
    c = t.nfs_rpc()
    for _ in range(3):
        c.call_raw(nfs3.LOOKUP, b"\0\0\0\4abcd")
    res = nfs3.decode_result(nfs3.GETATTR, c.call(nfs3.GETATTR, nfs3.args_fh(t.root_fh)))
    t.ok(res, "GETATTR after GARBAGE_ARGS")


def _auth_error(t, cred, allowed, what, proc=nfs3.GETATTR):
    c = t.nfs_rpc()
    args = nfs3.args_fh(t.root_fh) if proc == nfs3.GETATTR else b""
    r = c.call_raw(proc, args, cred=cred)
    t.expect(r.reply_stat == rpc.MSG_DENIED and r.reject_stat == rpc.AUTH_ERROR,
             "%s: got %s, expected AUTH_ERROR" % (what, r.describe()))
    if r.auth_stat not in allowed:
        t.fail("%s: got %s, expected %s" % (what, r.describe(),
                                            " or ".join(rpc.AUTH_STAT_NAMES[a] for a in allowed)))
    t.expect(c.call(nfs3.NULL) == b"", "connection unusable after AUTH_ERROR")


@testcase("RPC14", "rpc auth")
def auth_unknown_flavor(t):
    """An unknown credential flavor is refused with AUTH_ERROR (RFC 5531 8.2, 9 auth_stat)."""
    _auth_error(t, rpc.Auth(0x5A5A, b"1234"),
                (rpc.AUTH_BADCRED, rpc.AUTH_REJECTEDCRED, rpc.AUTH_TOOWEAK, rpc.AUTH_FAILED),
                "flavor 0x5a5a")


@testcase("RPC15", "rpc auth")
def auth_sys_truncated(t):
    """A truncated AUTH_SYS body is AUTH_BADCRED (RFC 5531 appendix A, 9)."""
    body = rpc.auth_sys(0, 0, [0, 1, 2]).body
    _auth_error(t, rpc.Auth(rpc.AUTH_SYS_FLAVOR, body[:-6]), (rpc.AUTH_BADCRED,),
                "truncated AUTH_SYS")


@testcase("RPC16", "rpc auth")
def auth_sys_too_many_gids(t):
    """AUTH_SYS with 17 groups exceeds gids<16> and is AUTH_BADCRED (RFC 5531 appendix A)."""
    _auth_error(t, rpc.auth_sys(0, 0, list(range(17))), (rpc.AUTH_BADCRED,), "17 gids")


@testcase("RPC17", "rpc auth")
def auth_body_too_long(t):
    """A credential body over 400 bytes violates opaque_auth body<400> (RFC 5531 8.2)."""
    p = Packer()
    p.pack_uint(0)
    p.pack_string("h" * 420)
    p.pack_uint(0)
    p.pack_uint(0)
    p.pack_uint(0)
    c = t.nfs_rpc()
    try:
        r = c.call_raw(nfs3.GETATTR, nfs3.args_fh(t.root_fh),
                       cred=rpc.Auth(rpc.AUTH_SYS_FLAVOR, p.get_buffer()), timeout=5)
    except rpc.ConnectionClosed:
        t.warn("connection closed instead of an AUTH_ERROR reply")
    t.expect(not r.success, "a 420-byte credential body was accepted")
    if not (r.reply_stat == rpc.MSG_DENIED and r.auth_stat == rpc.AUTH_BADCRED):
        t.warn("got %s; AUTH_ERROR AUTH_BADCRED fits best (the RFC names no reply for it)"
               % r.describe())


@testcase("RPC18", "rpc auth")
def auth_sys_long_machinename(t):
    """AUTH_SYS machinename over 255 bytes is AUTH_BADCRED (RFC 5531 appendix A: string<255>)."""
    _auth_error(t, rpc.auth_sys(0, 0, [], machine="m" * 300), (rpc.AUTH_BADCRED,),
                "300-byte machinename")


@testcase("RPC19", "rpc auth")
def auth_bad_verifier(t):
    """A verifier of an unknown flavor with AUTH_SYS is refused, or ignored as AUTH_SYS
    verifiers carry nothing (RFC 5531 8.2, appendix A: verifier AUTH_NONE)."""
    c = t.nfs_rpc()
    r = c.call_raw(nfs3.GETATTR, nfs3.args_fh(t.root_fh), verf=rpc.Auth(0x5A5A, b"x" * 8))
    if r.reply_stat == rpc.MSG_DENIED:
        t.expect(r.auth_stat in (rpc.AUTH_BADVERF, rpc.AUTH_REJECTEDVERF, rpc.AUTH_BADCRED,
                                 rpc.AUTH_TOOWEAK),
                 "got %s" % r.describe())
    else:
        t.expect(r.success, "got %s" % r.describe())
        t.warn("verifier of unknown flavor 0x5a5a accepted")


@testcase("RPC20", "rpc auth")
def auth_none_nfs(t):
    """AUTH_NONE on GETATTR is served (as anonymous) or refused with AUTH_TOOWEAK/BADCRED
    (RFC 5531 8.2; RFC 1813 4.4: the server decides what flavors it accepts)."""
    c = t.nfs_rpc(cred=rpc.auth_none())
    r = c.call_raw(nfs3.GETATTR, nfs3.args_fh(t.root_fh))
    if r.reply_stat == rpc.MSG_DENIED:
        t.expect(r.auth_stat in (rpc.AUTH_TOOWEAK, rpc.AUTH_BADCRED, rpc.AUTH_REJECTEDCRED),
                 "got %s" % r.describe())
        return
    t.expect(r.success, "got %s" % r.describe())
    res = nfs3.decode_result(nfs3.GETATTR, r.body)
    t.check(res, (nfs3.NFS3_OK, nfs3.NFS3ERR_ACCES, nfs3.NFS3ERR_PERM), "GETATTR as AUTH_NONE")


@testcase("RPC21", "rpc")
def reply_message_ignored(t):
    """A REPLY message sent to the server gets no reply and the connection goes on (RFC 5531 9)."""
    tr = t.transport()
    tr.send_message(rpc.build_call(0x1111, nfs3.PROGRAM, 3, 0, msg_type=rpc.REPLY))
    tr.send_message(_null_call(0x2222))
    try:
        r = rpc.Reply(tr.recv_message(5))
    except rpc.ConnectionClosed:
        t.warn("server closed the connection on a REPLY message (allowed, but not needed)")
    t.expect(r.xid == 0x2222, "got a reply for xid %08x (the REPLY message was answered)" % r.xid)


@testcase("RPC22", "rpc recmark")
def fragments(t):
    """A call split into 4 fragments is assembled into one record (RFC 5531 section 11)."""
    tr = t.transport()
    msg = _getattr_call(t, 0x3333)
    tr.send_message(msg, [4, 11, 7])
    r = _reply(t, tr, 0x3333)
    t.expect(r.success, "got %s" % r.describe())
    res = nfs3.decode_result(nfs3.GETATTR, r.body)
    t.ok(res, "GETATTR in fragments")


@testcase("RPC23", "rpc recmark")
def one_byte_fragments(t):
    """A call sent as one-byte fragments is still a single record (RFC 5531 section 11)."""
    tr = t.transport()
    msg = _getattr_call(t, 0x4444)
    tr.send_message(msg, [1] * len(msg))
    r = _reply(t, tr, 0x4444)
    t.expect(r.success, "got %s" % r.describe())


@testcase("RPC24", "rpc recmark")
def empty_fragment(t):
    """A zero-length non-last fragment is legal and adds nothing (RFC 5531 section 11)."""
    tr = t.transport()
    msg = _null_call(0x5555)
    tr.send_raw(struct.pack(">I", 0) + struct.pack(">I", 0x80000000 | len(msg)) + msg)
    r = _reply(t, tr, 0x5555)
    t.expect(r.success, "got %s" % r.describe())


@testcase("RPC25", "rpc recmark")
def slow_sender(t):
    """A record that arrives a few bytes at a time, with pauses, is served (RFC 5531 11)."""
    tr = t.transport()
    data = rpc.record_mark(_getattr_call(t, 0x6666))
    for i in range(0, len(data), 5):
        tr.send_raw(data[i:i + 5])
        time.sleep(0.02)
    r = _reply(t, tr, 0x6666)
    t.expect(r.success, "got %s" % r.describe())


@testcase("RPC26", "rpc pipeline")
def pipelining(t):
    """32 calls written before any reply is read all get their own replies (RFC 5531 11, 9 xid)."""
    tr = t.transport()
    xids = [0x10000 + i for i in range(32)]
    tr.send_raw(b"".join(rpc.record_mark(_getattr_call(t, x) if x % 2 else _null_call(x))
                         for x in xids))
    seen = set()
    for _ in xids:
        r = rpc.Reply(tr.recv_message(10))
        t.expect(r.xid in xids, "reply for unknown xid %08x" % r.xid)
        t.expect(r.xid not in seen, "two replies for xid %08x" % r.xid)
        t.expect(r.success, "xid %08x: %s" % (r.xid, r.describe()))
        if r.xid % 2:
            t.ok(nfs3.decode_result(nfs3.GETATTR, r.body), "pipelined GETATTR")
        else:
            t.expect(r.body == b"", "NULL reply with result bytes")
        seen.add(r.xid)


@testcase("RPC27", "rpc pipeline recmark")
def records_across_segments(t):
    """Two records and half of a third in one write, the rest later: three replies (RFC 5531 11)."""
    tr = t.transport()
    a, b, c = (rpc.record_mark(_null_call(x)) for x in (0xA1, 0xA2, 0xA3))
    tr.send_raw(a + b + c[:7])
    time.sleep(0.1)
    tr.send_raw(c[7:])
    got = sorted(rpc.Reply(tr.recv_message(5)).xid for _ in range(3))
    t.expect(got == [0xA1, 0xA2, 0xA3], "replies for %s" % got)


@testcase("RPC28", "rpc pipeline")
def pipelined_mixed_errors(t):
    """Pipelined calls with errors in between: each gets its own, right reply (RFC 5531 9)."""
    tr = t.transport()
    msgs = [_null_call(1), rpc.build_call(2, NONEXISTENT_PROG, 1, 0),
            rpc.build_call(3, nfs3.PROGRAM, 3, 99), rpc.build_call(4, nfs3.PROGRAM, 3, 1, b""),
            _getattr_call(t, 5)]
    tr.send_raw(b"".join(rpc.record_mark(m) for m in msgs))
    replies = {}
    for _ in msgs:
        r = rpc.Reply(tr.recv_message(5))
        replies[r.xid] = r
    want = {1: rpc.SUCCESS, 2: rpc.PROG_UNAVAIL, 3: rpc.PROC_UNAVAIL, 4: rpc.GARBAGE_ARGS,
            5: rpc.SUCCESS}
    for xid, stat in want.items():
        t.expect(xid in replies, "no reply for xid %d" % xid)
        t.expect(replies[xid].accept_stat == stat, "xid %d: got %s, expected %s"
                 % (xid, replies[xid].describe(), rpc.ACCEPT_STAT_NAMES[stat]))


def _flood_until_closed(tr, header, total, chunk=65536):
    """Sends header then zero bytes; True when the server closes or resets the connection."""
    try:
        tr.send_raw(header)
        sent = 0
        zero = b"\0" * chunk
        while sent < total:
            tr.send_raw(zero)
            sent += chunk
    except (rpc.ConnectionClosed, OSError):
        return True
    return tr.wait_closed(10)


@testcase("RPC29", "rpc recmark robustness")
def oversized_record_claim(t):
    """A fragment header claiming 2 GiB closes the connection early instead of being buffered
    (RFC 5531 11 leaves the size to the server; a server must bound it)."""
    tr = t.transport()
    t.expect(_flood_until_closed(tr, struct.pack(">I", 0xFFFFFFFF), 16 << 20),
             "connection still open after a 2 GiB record claim and 16 MiB of data")
    _serves(t, "an oversized record")


@testcase("RPC30", "rpc recmark robustness")
def oversized_cumulative_record(t):
    """Many small non-last fragments adding up to 64 MiB are cut off: the cap is cumulative
    (RFC 5531 11: a record is the sum of its fragments)."""
    tr = t.transport()
    frag = struct.pack(">I", 65532) + b"\0" * 65532
    closed = False
    try:
        for _ in range(1024):
            tr.send_raw(frag)
    except (rpc.ConnectionClosed, OSError):
        closed = True
    closed = closed or tr.wait_closed(10)
    t.expect(closed, "connection still open after 64 MiB in one unfinished record")
    _serves(t, "an oversized multi-fragment record")


@testcase("RPC31", "rpc recmark robustness")
def closed_mid_record(t):
    """A connection closed in the middle of a record leaves the server serving (RFC 5531 11)."""
    for cut in (2, 4, 30):
        tr = t.transport()
        data = rpc.record_mark(_getattr_call(t, 0x7777))
        tr.send_raw(data[:cut])
        tr.close()
    tr = t.transport()
    tr.send_raw(struct.pack(">I", 0x80000000 | 1000) + b"\0" * 100)
    tr.abort()
    time.sleep(0.2)
    _serves(t, "connections closed mid-record")


@testcase("RPC32", "rpc udp")
def udp_errors(t):
    """Over UDP, errors are replies too: PROG_UNAVAIL and PROC_UNAVAIL (RFC 5531 9)."""
    c = t.nfs_rpc("udp")
    r = c.call_raw(0, prog=NONEXISTENT_PROG, vers=1)
    t.expect(r.accept_stat == rpc.PROG_UNAVAIL, "unknown program: got %s" % r.describe())
    r = c.call_raw(77)
    t.expect(r.accept_stat == rpc.PROC_UNAVAIL, "procedure 77: got %s" % r.describe())
    r = c.call_raw(nfs3.GETATTR, b"\0\0")
    t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "GETATTR with 2 bytes of arguments: got %s"
             % r.describe())


@testcase("RPC33", "rpc udp")
def udp_runt_datagram(t):
    """A 3-byte datagram is dropped and the next call is served (RFC 5531 9: not an RPC call)."""
    c = t.nfs_rpc("udp")
    c.transport.send_raw(b"\x01\x02\x03")
    t.expect(c.call(nfs3.NULL, timeout=5) == b"", "NULL after a runt datagram")


@testcase("RPC34", "rpc udp")
def udp_getattr(t):
    """GETATTR over UDP returns the same attributes as over TCP (RFC 1813 3.3.1)."""
    c = t.new_nfs("udp")
    a = t.ok(c.getattr(t.root_fh), "GETATTR over UDP").attr
    b = t.getattr(t.root_fh)
    t.expect((a.fileid, a.fsid, a.type) == (b.fileid, b.fsid, b.type),
             "UDP and TCP attributes differ")


@testcase("RPC35", "rpc")
def parallel_connections(t):
    """16 connections calling at once are all served (RFC 5531: independent transports)."""
    errors = []

    def worker():
        try:
            c = t.env.new_nfs(timeout=10)
            for _ in range(10):
                c.null()
            c.close()
        except Exception as e:
            errors.append(e)
    threads = [threading.Thread(target=worker) for _ in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    t.expect(not errors, "errors: %s" % errors[:3])


@testcase("RPC36", "rpc")
def pipelined_out_of_order_safe(t):
    """A slow call does not stop later replies from matching by xid: a 1 MiB READ and NULLs
    pipelined behind it are all answered (RFC 5531 9: replies are matched by xid)."""
    d = t.scratch()
    f = t.create_file(d, "big", os.urandom(256 * 1024))
    tr = t.transport()
    read = rpc.build_call(0xB0, nfs3.PROGRAM, 3, nfs3.READ, nfs3.args_read(f, 0, 256 * 1024),
                          t.env.cred())
    tr.send_raw(rpc.record_mark(read) + b"".join(rpc.record_mark(_null_call(0xB1 + i))
                                                 for i in range(8)))
    got = set()
    for _ in range(9):
        got.add(rpc.Reply(tr.recv_message(10)).xid)
    t.expect(got == set(range(0xB0, 0xB9)), "replies for %s" % sorted(got))


@testcase("RPC37", "rpc robustness")
def reset_mid_call(t):
    """Clients that reset connections right after a call do not disturb the server (RFC 5531 11)."""
    for i in range(10):
        tr = t.transport()
        tr.send_message(_getattr_call(t, 0x8000 + i))
        tr.abort()
    time.sleep(0.2)
    _serves(t, "connections reset after a call")


@testcase("RPC38", "rpc")
def reply_is_single_record(t):
    """Each reply is one complete record whose length matches its contents (RFC 5531 11)."""
    s = socket.create_connection((t.env.host, t.env.nfs_port), timeout=5)
    try:
        s.sendall(rpc.record_mark(_null_call(0x9999)))
        hdr = b""
        while len(hdr) < 4:
            chunk = s.recv(4 - len(hdr))
            t.expect(chunk, "connection closed")
            hdr += chunk
        (v,) = struct.unpack(">I", hdr)
        n = v & 0x7FFFFFFF
        body = b""
        while len(body) < n:
            chunk = s.recv(n - len(body))
            t.expect(chunk, "connection closed inside the reply")
            body += chunk
        t.expect(v & 0x80000000, "NULL reply not a single last fragment")
        t.expect(len(body) == 24, "NULL reply of %d bytes, expected 24 (header, verf, stat)"
                 % len(body))
    finally:
        s.close()
