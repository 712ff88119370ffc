"""The duplicate-request cache: a retransmission (same xid, same call) gets the original reply,
on the same connection, a new one, or UDP; a different call under the same xid is executed
(RFC 1813 4.1 idempotency, RFC 5531 9: the xid identifies a call for retransmissions)."""

import time

from .. import nfs3, rpc
from ..framework import testcase

E = nfs3


def _send(t, tr, xid, proc, args, cred):
    tr.send_message(rpc.build_call(xid, E.PROGRAM, 3, proc, args, cred))
    return rpc.Reply(tr.recv_message(10))


def _retransmit_same_conn(t, proc, args, setup_ok=None):
    cred = t.env.cred()
    tr = t.transport()
    xid = rpc.new_xid()
    first = _send(t, tr, xid, proc, args, cred)
    t.expect(first.success, "first call: %s" % first.describe())
    r1 = E.decode_result(proc, first.body)
    t.ok(r1, "first %s" % E.PROC_NAMES[proc])
    second = _send(t, tr, xid, proc, args, cred)
    t.expect(second.xid == xid and second.success, "retransmission: %s" % second.describe())
    r2 = E.decode_result(proc, second.body)
    t.expect(r2.ok, "retransmitted %s executed again: %s (the original reply was %s)"
             % (E.PROC_NAMES[proc], r2.status_name, r1.status_name))
    return first, second


@testcase("DRC1", "drc")
def drc_remove_same_conn(t):
    """A retransmitted REMOVE on the same connection gets the original OK, not NOENT."""
    d = t.scratch()
    t.create_file(d, "f")
    first, second = _retransmit_same_conn(t, E.REMOVE, E.args_diropargs(d, "f"))
    if first.raw != second.raw:
        t.note("replayed reply differs in bytes (fresh wcc data)")


@testcase("DRC2", "drc")
def drc_remove_reconnect_same_port(t):
    """A REMOVE retransmitted on a new connection from the same source port, as the Linux client
    does after a reconnect, gets the original reply."""
    d = t.scratch()
    t.create_file(d, "f")
    cred = t.env.cred()
    xid = rpc.new_xid()
    args = E.args_diropargs(d, "f")
    # The first connection's port is taken with bind(), not left to connect(): connect() may
    # give a port that another connection (to another server port) already uses, and then the
    # second bind below fails with EADDRINUSE. A port taken by bind() is this socket's alone.
    tr = rpc.TcpTransport(t.env.host, t.env.nfs_port, 10, source_port=0)
    t._closers.append(tr)
    port = tr.local_port
    first = _send(t, tr, xid, E.REMOVE, args, cred)
    t.ok(E.decode_result(E.REMOVE, first.body), "first REMOVE")
    tr.abort()
    tr2 = rpc.TcpTransport(t.env.host, t.env.nfs_port, 10, source_port=port)
    t._closers.append(tr2)
    second = _send(t, tr2, xid, E.REMOVE, args, cred)
    r2 = E.decode_result(E.REMOVE, second.body)
    t.expect(r2.ok, "retransmission after reconnect executed again: %s" % r2.status_name)


@testcase("DRC3", "drc")
def drc_remove_new_conn(t):
    """A REMOVE retransmitted on a new connection from another port gets the original reply
    (SHOULD-level: knfsd keys its cache on address and port)."""
    d = t.scratch()
    t.create_file(d, "f")
    cred = t.env.cred()
    xid = rpc.new_xid()
    args = E.args_diropargs(d, "f")
    first = _send(t, t.transport(), xid, E.REMOVE, args, cred)
    t.ok(E.decode_result(E.REMOVE, first.body), "first REMOVE")
    second = _send(t, t.transport(), xid, E.REMOVE, args, cred)
    r2 = E.decode_result(E.REMOVE, second.body)
    if r2.status == E.NFS3ERR_NOENT:
        t.warn("retransmission from a new source port executed again (NOENT)")
    t.ok(r2, "retransmitted REMOVE")


@testcase("DRC4", "drc")
def drc_create_guarded(t):
    """A retransmitted GUARDED CREATE gets the original OK, not EXIST."""
    d = t.scratch()
    _retransmit_same_conn(t, E.CREATE, E.args_create(d, "f", E.GUARDED, mode=0o644))


@testcase("DRC5", "drc")
def drc_rename(t):
    """A retransmitted RENAME gets the original OK, not NOENT."""
    d = t.scratch()
    t.create_file(d, "a")
    _retransmit_same_conn(t, E.RENAME, E.args_rename(d, "a", d, "b"))


@testcase("DRC6", "drc")
def drc_mkdir(t):
    """A retransmitted MKDIR gets the original OK, not EXIST."""
    d = t.scratch()
    _retransmit_same_conn(t, E.MKDIR, E.args_mkdir(d, "sub", mode=0o755))


@testcase("DRC7", "drc")
def drc_rmdir(t):
    """A retransmitted RMDIR gets the original OK, not NOENT."""
    d = t.scratch()
    t.mkdir(d, "sub")
    _retransmit_same_conn(t, E.RMDIR, E.args_diropargs(d, "sub"))


@testcase("DRC8", "drc")
def drc_link(t):
    """A retransmitted LINK gets the original OK, not EXIST."""
    d = t.scratch()
    f = t.create_file(d, "a")
    _retransmit_same_conn(t, E.LINK, E.args_link(f, d, "b"))


@testcase("DRC9", "drc")
def drc_symlink(t):
    """A retransmitted SYMLINK gets the original OK, not EXIST."""
    d = t.scratch()
    _retransmit_same_conn(t, E.SYMLINK, E.args_symlink(d, "l", "target"))


@testcase("DRC10", "drc")
def drc_setattr_guard(t):
    """A retransmitted guarded SETATTR gets the original OK, not NOT_SYNC (the first call moved
    ctime)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    ctime = t.getattr(f).ctime
    time.sleep(0.01)
    _retransmit_same_conn(t, E.SETATTR, E.args_setattr(f, guard=ctime, mode=0o600))


@testcase("DRC11", "drc")
def drc_other_proc_same_xid(t):
    """A different procedure under a used xid is executed, not answered from the cache."""
    d = t.scratch()
    t.create_file(d, "f")
    cred = t.env.cred()
    tr = t.transport()
    xid = rpc.new_xid()
    t.ok(E.decode_result(E.REMOVE, _send(t, tr, xid, E.REMOVE, E.args_diropargs(d, "f"),
                                         cred).body), "REMOVE")
    rep = _send(t, tr, xid, E.MKDIR, E.args_mkdir(d, "sub", mode=0o755), cred)
    res = E.decode_result(E.MKDIR, rep.body)
    t.ok(res, "MKDIR under the REMOVE's xid")
    t.ok(t.nfs.lookup(d, "sub"), "the directory exists")


@testcase("DRC12", "drc")
def drc_other_args_same_xid(t):
    """The same procedure with different arguments under a used xid is executed."""
    d = t.scratch()
    t.create_file(d, "a")
    t.create_file(d, "b")
    cred = t.env.cred()
    tr = t.transport()
    xid = rpc.new_xid()
    t.ok(E.decode_result(E.REMOVE, _send(t, tr, xid, E.REMOVE, E.args_diropargs(d, "a"),
                                         cred).body), "REMOVE a")
    t.ok(E.decode_result(E.REMOVE, _send(t, tr, xid, E.REMOVE, E.args_diropargs(d, "b"),
                                         cred).body), "REMOVE b under the same xid")
    t.check(t.nfs.lookup(d, "b"), E.NFS3ERR_NOENT, "b still exists: replayed, not executed")


@testcase("DRC13", "drc udp")
def drc_udp(t):
    """A REMOVE retransmitted over UDP gets the original reply."""
    d = t.scratch()
    t.create_file(d, "f")
    c = t.nfs_rpc("udp")
    xid = rpc.new_xid()
    args = E.args_diropargs(d, "f")
    r1 = E.decode_result(E.REMOVE, c.call(E.REMOVE, args, xid=xid))
    t.ok(r1, "first REMOVE")
    r2 = E.decode_result(E.REMOVE, c.call(E.REMOVE, args, xid=xid))
    t.ok(r2, "retransmitted REMOVE over UDP")


@testcase("DRC14", "drc pipeline")
def drc_in_progress(t):
    """Two copies of one REMOVE sent back to back: any reply to either is the OK of the first
    (a server may drop the in-progress duplicate, never answer it NOENT)."""
    d = t.scratch()
    t.create_file(d, "f")
    cred = t.env.cred()
    tr = t.transport()
    xid = rpc.new_xid()
    msg = rpc.record_mark(rpc.build_call(xid, E.PROGRAM, 3, E.REMOVE, E.args_diropargs(d, "f"),
                                         cred))
    tr.send_raw(msg + msg)
    first = rpc.Reply(tr.recv_message(10))
    t.ok(E.decode_result(E.REMOVE, first.body), "first reply")
    try:
        second = rpc.Reply(tr.recv_message(2))
    except rpc.ReplyTimeout:
        t.note("duplicate dropped")
        return
    t.ok(E.decode_result(E.REMOVE, second.body), "reply to the duplicate")


@testcase("DRC15", "drc")
def drc_different_user(t):
    """The same xid and arguments from another user are not answered with the first user's
    reply (RFC 5531 9: the cache must not leak replies across credentials) -- or, if replayed,
    the call was identical anyway; here the second user has no permission."""
    d = t.scratch()
    sub = t.mkdir(d, "private", mode=0o700)
    t.create_file(sub, "f")
    xid = rpc.new_xid()
    args = E.args_diropargs(sub, "f")
    tr = t.transport()
    r1 = E.decode_result(E.LOOKUP, _send(t, tr, xid, E.LOOKUP, args, t.env.cred()).body)
    t.ok(r1, "LOOKUP as the owner")
    if t.env.server_root == "no":
        t.skip("server does not apply AUTH_SYS identities")
    r2 = E.decode_result(E.LOOKUP, _send(t, tr, xid, E.LOOKUP, args,
                                         t.env.cred(54321, 54321, [54321])).body)
    t.check(r2, E.NFS3ERR_ACCES, "LOOKUP by another user in a 0700 directory")
