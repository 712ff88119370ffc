"""File handles (RFC 1813 2.3.3, 4.1): garbage, forged, over-long, stale, and across a server
restart when --restart-cmd is given."""

import os

from .. import nfs3, rpc
from ..framework import testcase

E = nfs3


def _bad_handle_status(t, res, what):
    if res.status == E.NFS3ERR_STALE:
        t.warn("%s: NFS3ERR_STALE; NFS3ERR_BADHANDLE fits a handle that fails consistency "
               "checks" % what)
    t.check(res, E.NFS3ERR_BADHANDLE, what)


@testcase("FH1", "fh")
def fh_garbage(t):
    """A random 32-byte handle is BADHANDLE (RFC 1813 2.6 NFS3ERR_BADHANDLE; STALE warns)."""
    _bad_handle_status(t, t.nfs.getattr(os.urandom(32)), "GETATTR of random bytes")


@testcase("FH2", "fh")
def fh_empty(t):
    """A zero-length handle is BADHANDLE (RFC 1813 2.6; STALE warns)."""
    _bad_handle_status(t, t.nfs.getattr(b""), "GETATTR of an empty handle")


@testcase("FH3", "fh robustness")
def fh_too_long(t):
    """A 65-byte handle violates nfs_fh3 opaque<64>: GARBAGE_ARGS (RFC 1813 2.5 nfs_fh3,
    RFC 5531 9; BADHANDLE warns)."""
    r = t.nfs_rpc().call_raw(E.GETATTR, E.args_fh(t.root_fh + os.urandom(65 - len(t.root_fh))))
    if r.success:
        res = E.decode_result(E.GETATTR, r.body)
        t.expect(not res.ok, "a 65-byte handle was accepted")
        t.warn("%s for a 65-byte handle; nfs_fh3 is opaque<64>, so GARBAGE_ARGS"
               % res.status_name)
    t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "got %s" % r.describe())


@testcase("FH4", "fh robustness")
def fh_bit_flips(t):
    """A handle with any single byte changed is refused or names the same file: handles cannot
    be forged into other files (RFC 1813 4.1 file handle security)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    fid = t.getattr(f).fileid
    for i in range(len(f)):
        bad = bytearray(f)
        bad[i] ^= 0x5A
        res = t.nfs.getattr(bytes(bad))
        if res.ok:
            t.expect(res.attr.fileid == fid, "byte %d changed: handle names fileid %d"
                     % (i, res.attr.fileid))
        else:
            t.check(res, (E.NFS3ERR_BADHANDLE, E.NFS3ERR_STALE), "byte %d changed" % i)


@testcase("FH5", "fh")
def fh_truncated(t):
    """A handle cut short is refused (BADHANDLE or STALE) (RFC 1813 2.6)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    for n in (1, len(f) // 2, len(f) - 1):
        t.check(t.nfs.getattr(f[:n]), (E.NFS3ERR_BADHANDLE, E.NFS3ERR_STALE),
                "handle cut to %d bytes" % n)


@testcase("FH6", "fh")
def fh_stale_file(t):
    """A removed file's handle is STALE for GETATTR, READ, WRITE, SETATTR (RFC 1813 2.6
    NFS3ERR_STALE)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"x")
    t.ok(t.nfs.remove(d, "f"), "REMOVE")
    t.check(t.nfs.getattr(f), E.NFS3ERR_STALE, "GETATTR")
    t.check(t.nfs.read(f, 0, 10), E.NFS3ERR_STALE, "READ")
    t.check(t.nfs.write(f, 0, b"y"), E.NFS3ERR_STALE, "WRITE")
    t.check(t.nfs.setattr(f, mode=0o600), E.NFS3ERR_STALE, "SETATTR")
    t.check(t.nfs.commit(f), E.NFS3ERR_STALE, "COMMIT")
    t.check(t.nfs.access(f), E.NFS3ERR_STALE, "ACCESS")


@testcase("FH7", "fh")
def fh_stale_dir(t):
    """A removed directory's handle is STALE for LOOKUP, READDIR, CREATE (RFC 1813 2.6)."""
    d = t.scratch()
    sub = t.mkdir(d, "sub")
    t.ok(t.nfs.rmdir(d, "sub"), "RMDIR")
    t.check(t.nfs.lookup(sub, "x"), E.NFS3ERR_STALE, "LOOKUP")
    t.check(t.nfs.readdir(sub), E.NFS3ERR_STALE, "READDIR")
    t.check(t.nfs.create(sub, "x"), E.NFS3ERR_STALE, "CREATE")
    t.check(t.nfs.readdirplus(sub), E.NFS3ERR_STALE, "READDIRPLUS")


@testcase("FH8", "fh")
def fh_reused_inode(t):
    """A removed file's handle does not come back to life for a new file that may reuse its
    inode (RFC 1813 2.3.3: handles are never reused for another object)."""
    d = t.scratch()
    old = []
    for i in range(20):
        old.append(t.create_file(d, "f%d" % i, b"old%d" % i))
    for i in range(20):
        t.ok(t.nfs.remove(d, "f%d" % i), "REMOVE")
    for i in range(20):
        t.create_file(d, "g%d" % i, b"new%d" % i)
    for i, fh in enumerate(old):
        res = t.nfs.getattr(fh)
        t.check(res, E.NFS3ERR_STALE, "old handle %d after its inode may be reused" % i)


@testcase("FH9", "fh")
def fh_stale_everywhere(t):
    """A stale directory handle as the target of RENAME and LINK is STALE (RFC 1813 3.3.14,
    3.3.15)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    sub = t.mkdir(d, "sub")
    t.ok(t.nfs.rmdir(d, "sub"), "RMDIR")
    t.check(t.nfs.rename(d, "f", sub, "g"), E.NFS3ERR_STALE, "RENAME into a stale dir")
    t.check(t.nfs.link(f, sub, "g"), E.NFS3ERR_STALE, "LINK into a stale dir")


def _need_restart(t):
    if not t.env.restart_cmd:
        t.skip("no --restart-cmd given")


@testcase("RST1", "fh restart")
def restart_file_handle(t):
    """File and directory handles stay valid across a server restart (RFC 1813 2.3.3, 4.1:
    handles are persistent)."""
    _need_restart(t)
    d = t.scratch()
    data = os.urandom(3000)
    f = t.create_file(d, "f", data)
    before = t.getattr(f)
    t.env.restart_server()
    a = t.ok(t.nfs.getattr(f), "GETATTR of a file handle after restart").attr
    t.expect(a.fileid == before.fileid, "handle names another file after restart")
    t.expect(t.read_all(f) == data, "data after restart")
    t.ok(t.nfs.lookup(d, "f"), "LOOKUP in a directory handle after restart")
    t.ok(t.nfs.getattr(t.root_fh), "GETATTR of the root handle after restart")


@testcase("RST2", "fh restart commit")
def restart_commit_verifier(t):
    """After a restart, COMMIT's verifier differs from the one of the UNSTABLE WRITE, unless
    the data survived (RFC 1813 3.3.7, 3.3.21: the verifier changes when uncommitted data may
    be lost)."""
    _need_restart(t)
    d = t.scratch()
    f = t.create_file(d, "f")
    data = os.urandom(8192)
    w = t.ok(t.nfs.write(f, 0, data, E.UNSTABLE), "UNSTABLE WRITE")
    t.env.restart_server()
    c = t.ok(t.nfs.commit(f), "COMMIT after restart")
    if c.verf == w.verf:
        t.expect(t.read_all(f) == data, "same verifier after restart but the data is lost")
        t.warn("write verifier unchanged across a restart (data did survive)")


@testcase("RST3", "fh restart readdir")
def restart_readdir_cookie(t):
    """A READDIR cookie from before a restart resumes after it (RFC 1813 3.3.16; BAD_COOKIE
    warns)."""
    _need_restart(t)
    d = t.scratch()
    for i in range(40):
        t.ok(t.nfs.create(d, "e%03d" % i), "CREATE")
    r1 = t.ok(t.nfs.readdir(d, 0, E.ZERO_VERF, 600), "READDIR")
    t.expect(not r1.eof, "one page")
    seen = [e.name for e in r1.entries]
    t.env.restart_server()
    cookie, verf = r1.entries[-1].cookie, r1.cookieverf
    while True:
        r = t.nfs.readdir(d, cookie, verf, 600)
        if r.status == E.NFS3ERR_BAD_COOKIE:
            t.warn("BAD_COOKIE for a cookie from before the restart")
        t.ok(r, "READDIR after restart")
        seen.extend(e.name for e in r.entries)
        if r.eof:
            break
        cookie, verf = r.entries[-1].cookie, r.cookieverf
    for i in range(40):
        n = b"e%03d" % i
        t.expect(seen.count(n) == 1, "%r listed %d times" % (n, seen.count(n)))
