"""Semantics: byte-exact data, times, sizes, and identities from AUTH_SYS when the server applies
them (RFC 1813 2.6 fattr3, 3.3.2, 3.3.6-3.3.8, 4.4 permission checking)."""

import os
import random

from .. import nfs3, rpc
from ..framework import testcase

E = nfs3


@testcase("SEM1", "semantics write")
def big_file_exact(t):
    """4 MiB of random data written in wtmax chunks reads back byte for byte (RFC 1813 3.3.6,
    3.3.7)."""
    d = t.scratch()
    data = os.urandom(4 << 20)
    f = t.create_file(d, "f")
    t.write_all(f, 0, data, E.UNSTABLE)
    t.ok(t.nfs.commit(f), "COMMIT")
    t.expect(t.getattr(f).size == len(data), "size")
    t.expect(t.read_all(f) == data, "data differs")


@testcase("SEM2", "semantics write")
def overlapping_writes(t):
    """Overlapping writes at odd offsets give the same bytes as a local model (RFC 1813 3.3.7)."""
    rng = random.Random(1813)
    d = t.scratch()
    f = t.create_file(d, "f")
    model = bytearray()
    for _ in range(60):
        off = rng.randint(0, 20000)
        chunk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000)))
        t.ok(t.nfs.write(f, off, chunk, rng.choice((E.UNSTABLE, E.FILE_SYNC))), "WRITE")
        if len(model) < off + len(chunk):
            model.extend(b"\0" * (off + len(chunk) - len(model)))
        model[off:off + len(chunk)] = chunk
    t.expect(t.read_all(f) == bytes(model), "data differs from the model")


@testcase("SEM3", "semantics")
def other_connection_sees_write(t):
    """Data written on one connection is read on another, and over UDP (RFC 1813 3.3.6)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    t.ok(t.nfs.write(f, 0, b"shared", E.UNSTABLE), "WRITE")
    for kind in ("tcp", "udp"):
        r = t.ok(t.new_nfs(kind).read(f, 0, 100), "READ over %s" % kind)
        t.expect(r.data == b"shared", "%s read %r" % (kind, r.data))


@testcase("SEM4", "semantics")
def size_tracks_writes(t):
    """The size is the end of the furthest write and never shrinks on writes below it
    (RFC 1813 2.6 size)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    for off, n in ((0, 10), (100, 5), (50, 10), (0, 1)):
        t.ok(t.nfs.write(f, off, b"s" * n), "WRITE")
    t.expect(t.getattr(f).size == 105, "size %d" % t.getattr(f).size)


@testcase("SEM5", "semantics")
def dir_mtime_on_remove(t):
    """REMOVE and RENAME move the directory's mtime (RFC 1813 2.6 mtime, 3.3.12, 3.3.14)."""
    d = t.scratch()
    t.create_file(d, "a")
    t.create_file(d, "b")
    t.ok(t.nfs.setattr(d, mtime=(1000000, 0)), "SETATTR")
    t.ok(t.nfs.remove(d, "a"), "REMOVE")
    t.expect(t.getattr(d).mtime[0] > 1000000, "mtime after REMOVE")
    t.ok(t.nfs.setattr(d, mtime=(1000000, 0)), "SETATTR")
    t.ok(t.nfs.rename(d, "b", d, "c"), "RENAME")
    t.expect(t.getattr(d).mtime[0] > 1000000, "mtime after RENAME")


@testcase("SEM6", "semantics")
def truncate_then_write(t):
    """Truncate to 0, then a write at 10: bytes 0-9 read as zeros (RFC 1813 3.3.2, 3.3.7)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"Z" * 50)
    t.ok(t.nfs.setattr(f, size=0), "truncate")
    t.ok(t.nfs.write(f, 10, b"end"), "WRITE")
    t.expect(t.read_all(f) == b"\0" * 10 + b"end", "old data reappeared")


@testcase("SEM7", "semantics")
def wcc_consistency(t):
    """A WRITE's pre-op attributes equal the previous GETATTR when nothing else changed the
    file (RFC 1813 2.6 wcc_data)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"abc")
    a = t.getattr(f)
    w = t.ok(t.nfs.write(f, 3, b"def"), "WRITE")
    if w.wcc.before is None:
        t.warn("no pre-op attributes in WRITE")
    t.expect((w.wcc.before.size, w.wcc.before.mtime, w.wcc.before.ctime) ==
             (a.size, a.mtime, a.ctime), "pre-op attributes do not match GETATTR")


def _probe_root(t):
    if t.env.server_root == "no":
        t.skip("server does not apply AUTH_SYS identities (--server-root no)")


@testcase("SEM8", "semantics root")
def owner_from_auth_sys(t):
    """A file created with AUTH_SYS uid 4321 gid 4322 is owned by them (RFC 1813 3.3.8, 4.4:
    the server acts for the caller's credentials)."""
    _probe_root(t)
    d = t.scratch()
    cred = t.env.cred(4321, 4322, [4322])
    res = t.ok(t.nfs.create(d, "f", E.UNCHECKED, cred=cred, mode=0o644), "CREATE as 4321")
    a = t.getattr(res.fh or t.nfs.lookup(d, "f").fh)
    t.expect((a.uid, a.gid) == (4321, 4322), "owner %d:%d" % (a.uid, a.gid))
    res = t.ok(t.nfs.mkdir(d, "sub", cred=cred, mode=0o755), "MKDIR as 4321")
    a = t.getattr(res.fh or t.nfs.lookup(d, "sub").fh)
    t.expect((a.uid, a.gid) == (4321, 4322), "directory owner %d:%d" % (a.uid, a.gid))


@testcase("SEM9", "semantics root")
def permissions_enforced(t):
    """A 0600 file of uid 4321 cannot be read or written by uid 5555 (RFC 1813 4.4)."""
    _probe_root(t)
    d = t.scratch()
    owner = t.env.cred(4321, 4321, [4321])
    res = t.ok(t.nfs.create(d, "f", E.UNCHECKED, cred=owner, mode=0o600), "CREATE")
    fh = res.fh or t.nfs.lookup(d, "f").fh
    other = t.new_nfs(cred=t.env.cred(5555, 5555, [5555]))
    t.check(other.read(fh, 0, 10), E.NFS3ERR_ACCES, "READ by another user")
    t.check(other.write(fh, 0, b"x"), E.NFS3ERR_ACCES, "WRITE by another user")
    t.check(other.setattr(fh, mode=0o777), E.NFS3ERR_PERM, "chmod by a non-owner")
    t.ok(t.new_nfs(cred=owner).write(fh, 0, b"mine"), "WRITE by the owner")


@testcase("SEM10", "semantics root")
def supplementary_groups(t):
    """Group access comes from AUTH_SYS's gids list too (RFC 5531 appendix A, RFC 1813 4.4)."""
    _probe_root(t)
    d = t.scratch()
    sub = t.mkdir(d, "g")
    t.ok(t.nfs.setattr(sub, uid=4321, gid=7777, mode=0o070), "SETATTR owner and mode")
    member = t.new_nfs(cred=t.env.cred(5555, 5555, [5555, 7777]))
    t.ok(member.create(sub, "in", mode=0o644), "CREATE by a member of gid 7777 (supplementary)")
    outsider = t.new_nfs(cred=t.env.cred(5556, 5556, [5556]))
    t.check(outsider.create(sub, "out", mode=0o644), E.NFS3ERR_ACCES, "CREATE by an outsider")


@testcase("SEM11", "semantics root")
def chown_by_root(t):
    """Root (no_root_squash) can SETATTR uid and gid (RFC 1813 3.3.2)."""
    _probe_root(t)
    d = t.scratch()
    f = t.create_file(d, "f")
    t.ok(t.nfs.setattr(f, uid=1234, gid=5678), "chown")
    a = t.getattr(f)
    t.expect((a.uid, a.gid) == (1234, 5678), "owner %d:%d" % (a.uid, a.gid))


@testcase("SEM12", "semantics root")
def chown_by_user_refused(t):
    """A non-root owner cannot give a file away: SETATTR uid is PERM (RFC 1813 3.3.2, POSIX
    chown_restricted as PATHCONF reports)."""
    _probe_root(t)
    pc = t.ok(t.nfs.pathconf(t.root_fh), "PATHCONF")
    if not pc.chown_restricted:
        t.skip("PATHCONF says chown is not restricted")
    d = t.scratch()
    owner = t.env.cred(4321, 4321, [4321])
    res = t.ok(t.nfs.create(d, "f", E.UNCHECKED, cred=owner, mode=0o644), "CREATE")
    fh = res.fh or t.nfs.lookup(d, "f").fh
    t.check(t.nfs.setattr(fh, cred=owner, uid=9999), E.NFS3ERR_PERM, "chown by the owner")


@testcase("SEM13", "semantics")
def access_matches_mode(t):
    """ACCESS of a 0444 file does not grant MODIFY to a non-root owner (RFC 1813 3.3.4)."""
    if t.env.server_root == "no":
        t.skip("server does not apply AUTH_SYS identities")
    d = t.scratch()
    owner = t.env.cred(4321, 4321, [4321])
    res = t.ok(t.nfs.create(d, "f", E.UNCHECKED, cred=owner, mode=0o444), "CREATE")
    fh = res.fh or t.nfs.lookup(d, "f").fh
    r = t.ok(t.new_nfs(cred=owner).access(fh, E.ACCESS3_READ | E.ACCESS3_MODIFY), "ACCESS")
    t.expect(r.access == E.ACCESS3_READ, "access %x for a 0444 file" % r.access)


@testcase("SEM14", "semantics")
def rpc_auth_sys_anonymous_none(t):
    """With AUTH_NONE the server acts as an anonymous user: what it creates is not owned by
    root (RFC 1813 4.4; knfsd maps AUTH_NONE to the anonymous ids), or it refuses."""
    d = t.scratch()
    c = t.new_nfs(cred=rpc.auth_none())
    try:
        res = c.create(d, "anon", mode=0o644)
    except rpc.RpcCallError as e:
        t.expect(e.reply.reply_stat == rpc.MSG_DENIED, "got %s" % e)
        return
    if res.ok:
        a = t.getattr(res.fh or t.nfs.lookup(d, "anon").fh)
        t.expect(a.uid != 0, "AUTH_NONE created a root-owned file")
