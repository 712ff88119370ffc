"""NULL, GETATTR, SETATTR, LOOKUP, ACCESS, FSSTAT, FSINFO and PATHCONF (RFC 1813 3.3.0-3.3.4,
3.3.18-3.3.20)."""

import time

from .. import nfs3, rpc
from ..framework import testcase

E = nfs3


@testcase("NULL1", "nfs")
def nfs_null(t):
    """NFS NULL takes and returns nothing (RFC 1813 3.3.0)."""
    t.expect(t.nfs.null() == b"", "NULL result not empty")


@testcase("GATT1", "nfs getattr")
def getattr_root(t):
    """GETATTR of the root: a directory with nlink >= 1 (>= 2 expected) (RFC 1813 3.3.1, 2.6)."""
    a = t.getattr(t.root_fh)
    t.expect(a.type == E.NF3DIR, "root type %d" % a.type)
    t.expect(a.nlink >= 1, "root nlink %d (clients treat 0 as deleted)" % a.nlink)
    t.expect(a.mode & ~0o7777 == 0, "mode %o has bits beyond 07777" % a.mode)
    if a.nlink < 2:
        t.warn("directory nlink %d < 2" % a.nlink)


@testcase("GATT2", "nfs getattr")
def getattr_new_file(t):
    """A new file: REG, size 0, nlink 1, same fsid as its directory, its own fileid
    (RFC 1813 3.3.1, 2.6 fattr3)."""
    d = t.scratch()
    f = t.create_file(d, "f", mode=0o640)
    a, da = t.getattr(f), t.getattr(d)
    t.expect(a.type == E.NF3REG and a.size == 0 and a.nlink == 1,
             "type %d size %d nlink %d" % (a.type, a.size, a.nlink))
    t.expect(a.mode & 0o777 == 0o640, "mode %o, created with 640" % a.mode)
    t.expect(a.fsid == da.fsid, "file fsid differs from its directory's")
    t.expect(a.fileid != da.fileid, "file and directory share a fileid")


@testcase("GATT3", "nfs getattr")
def getattr_stable(t):
    """Two GETATTRs without changes in between return the same attributes (RFC 1813 2.6)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"abc")
    a, b = t.getattr(f), t.getattr(f)
    t.expect(vars(a) == vars(b) or (a.fileid, a.size, a.mtime, a.ctime) ==
             (b.fileid, b.size, b.mtime, b.ctime), "attributes changed without a change")


@testcase("GATT4", "nfs getattr")
def getattr_fsid_stable(t):
    """fsid and fileid of the root stay the same across a new MOUNT (RFC 1813 2.6)."""
    a = t.getattr(t.root_fh)
    t.env.mount_root()
    b = t.getattr(t.env.root_fh)
    t.expect((a.fsid, a.fileid) == (b.fsid, b.fileid), "root fsid/fileid changed")


@testcase("SATT1", "nfs setattr")
def setattr_mode(t):
    """SETATTR mode is applied; wcc_data carries pre and post attributes (RFC 1813 3.3.2)."""
    d = t.scratch()
    f = t.create_file(d, "f", mode=0o644)
    res = t.ok(t.nfs.setattr(f, mode=0o600), "SETATTR mode")
    t.expect(res.obj_wcc.after is not None, "no post-op attributes")
    t.expect(res.obj_wcc.after.mode & 0o7777 == 0o600, "post-op mode %o" % res.obj_wcc.after.mode)
    t.expect(t.getattr(f).mode & 0o7777 == 0o600, "GETATTR mode")


@testcase("SATT2", "nfs setattr semantics")
def setattr_truncate(t):
    """SETATTR size down truncates and size up reads back zeros (RFC 1813 3.3.2 size)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"0123456789" * 100)
    t.ok(t.nfs.setattr(f, size=10), "truncate to 10")
    t.expect(t.getattr(f).size == 10, "size after truncate")
    t.expect(t.read_all(f) == b"0123456789", "data after truncate")
    t.ok(t.nfs.setattr(f, size=5000), "extend to 5000")
    t.expect(t.getattr(f).size == 5000, "size after extend")
    t.expect(t.read_all(f) == b"0123456789" + b"\0" * 4990, "extended bytes are not zeros")


@testcase("SATT3", "nfs setattr")
def setattr_guard_ok(t):
    """SETATTR with a guard equal to the current ctime succeeds (RFC 1813 3.3.2 guard)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    t.ok(t.nfs.setattr(f, guard=t.getattr(f).ctime, mode=0o600), "guarded SETATTR")


@testcase("SATT4", "nfs setattr")
def setattr_guard_not_sync(t):
    """A guard with a ctime that does not match gives NOT_SYNC and changes nothing
    (RFC 1813 3.3.2: NFS3ERR_NOT_SYNC)."""
    d = t.scratch()
    f = t.create_file(d, "f", mode=0o644)
    ctime = t.getattr(f).ctime
    res = t.check(t.nfs.setattr(f, guard=(ctime[0] - 1000, 7), mode=0o600), E.NFS3ERR_NOT_SYNC,
                  "SETATTR with a stale guard")
    t.expect(t.getattr(f).mode & 0o777 == 0o644, "mode changed despite NOT_SYNC")
    t.expect(res.obj_wcc is not None, "no wcc_data")


@testcase("SATT5", "nfs setattr")
def setattr_client_times(t):
    """SET_TO_CLIENT_TIME stores the given atime and mtime (RFC 1813 3.3.2, 2.5 time_how)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    t.ok(t.nfs.setattr(f, atime=(1000000000, 5000), mtime=(1100000000, 0)), "SETATTR times")
    a = t.getattr(f)
    t.expect(a.mtime[0] == 1100000000, "mtime %s" % (a.mtime,))
    t.expect(a.atime[0] == 1000000000, "atime %s" % (a.atime,))


@testcase("SATT6", "nfs setattr")
def setattr_server_time(t):
    """SET_TO_SERVER_TIME sets mtime to the server's now (RFC 1813 2.5 time_how)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    t.ok(t.nfs.setattr(f, mtime=(1000, 0)), "SETATTR old mtime")
    t.ok(t.nfs.setattr(f, mtime=E.SET_TO_SERVER_TIME, atime=E.SET_TO_SERVER_TIME),
         "SETATTR server time")
    m = t.getattr(f).mtime[0]
    t.expect(abs(m - time.time()) < 300, "mtime %d is not now" % m)


@testcase("SATT7", "nfs setattr")
def setattr_size_dir(t):
    """SETATTR size on a directory fails with INVAL (RFC 1813 3.3.2 lists INVAL; ISDIR, knfsd's
    answer, and BADTYPE warn)."""
    d = t.scratch()
    res = t.nfs.setattr(d, size=0)
    t.expect(not res.ok, "SETATTR size on a directory succeeded")
    if res.status in (E.NFS3ERR_ISDIR, E.NFS3ERR_BADTYPE):
        t.warn("%s; RFC 1813 3.3.2 lists NFS3ERR_INVAL" % res.status_name)
    t.check(res, E.NFS3ERR_INVAL, "SETATTR size on a dir")


@testcase("SATT8", "nfs setattr robustness")
def setattr_bad_time_how(t):
    """A time_how outside the enum is GARBAGE_ARGS or INVAL (RFC 1813 2.5, RFC 4506 4.3)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    args = bytearray(E.args_setattr(f, mtime=E.SET_TO_SERVER_TIME))
    pos = len(args) - 8  # set_mtime discriminant, then the guard's bool
    args[pos:pos + 4] = b"\0\0\0\x07"
    r = t.nfs_rpc().call_raw(E.SETATTR, bytes(args))
    if r.success:
        t.check(E.decode_result(E.SETATTR, r.body), E.NFS3ERR_INVAL, "time_how 7")
    else:
        t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "got %s" % r.describe())


@testcase("SATT9", "nfs setattr")
def setattr_wcc(t):
    """SETATTR size: the pre-op size is the old size and the post-op the new one (RFC 1813 2.6
    wcc_data)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"x" * 100)
    res = t.ok(t.nfs.setattr(f, size=7), "SETATTR")
    if res.obj_wcc.before is not None:
        t.expect(res.obj_wcc.before.size == 100, "pre-op size %d" % res.obj_wcc.before.size)
    else:
        t.note("no pre-op attributes")
    t.expect(res.obj_wcc.after is not None and res.obj_wcc.after.size == 7, "post-op size")


@testcase("SATT10", "nfs setattr")
def setattr_ctime_moves(t):
    """A SETATTR that changes mode moves ctime forward (RFC 1813 2.6 ctime)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    before = t.getattr(f).ctime
    time.sleep(0.05)
    t.ok(t.nfs.setattr(f, mode=0o611), "SETATTR")
    after = t.getattr(f).ctime
    t.expect(after > before, "ctime %s -> %s" % (before, after))


@testcase("LKP1", "nfs lookup")
def lookup_file(t):
    """LOOKUP of an entry returns its handle with attributes equal to GETATTR's (RFC 1813 3.3.3)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"abc")
    res = t.ok(t.nfs.lookup(d, "f"), "LOOKUP")
    a = t.getattr(res.fh)
    t.expect(a.fileid == t.getattr(f).fileid, "LOOKUP handle is another file")
    if res.attr is not None:
        t.expect(res.attr.fileid == a.fileid and res.attr.size == 3, "obj attributes")
    t.expect(res.dir_attr is None or res.dir_attr.type == E.NF3DIR, "dir attributes")


@testcase("LKP2", "nfs lookup")
def lookup_missing(t):
    """LOOKUP of a missing name is NOENT (RFC 1813 3.3.3)."""
    d = t.scratch()
    res = t.check(t.nfs.lookup(d, "missing"), E.NFS3ERR_NOENT, "LOOKUP missing")
    if res.dir_attr is None:
        t.warn("no dir_attributes on failure (RFC 1813 3.3.3 returns them)")


@testcase("LKP3", "nfs lookup")
def lookup_dot(t):
    """LOOKUP "." returns the directory itself (RFC 1813 3.3.3)."""
    d = t.scratch()
    res = t.ok(t.nfs.lookup(d, "."), "LOOKUP .")
    t.expect(t.getattr(res.fh).fileid == t.getattr(d).fileid, '"." is not the directory')


@testcase("LKP4", "nfs lookup")
def lookup_dotdot(t):
    """LOOKUP ".." in a subdirectory returns its parent (RFC 1813 3.3.3)."""
    d = t.scratch()
    sub = t.mkdir(d, "sub")
    res = t.ok(t.nfs.lookup(sub, ".."), "LOOKUP ..")
    t.expect(t.getattr(res.fh).fileid == t.getattr(d).fileid, '".." is not the parent')


@testcase("LKP5", "nfs lookup robustness")
def lookup_dotdot_root(t):
    """LOOKUP ".." at the export root stays at the root (RFC 1813 3.3.3; the server must not
    hand out handles outside the export)."""
    root = t.getattr(t.root_fh)
    res = t.nfs.lookup(t.root_fh, "..")
    if res.ok:
        a = t.getattr(res.fh)
        t.expect(a.fileid == root.fileid and a.fsid == root.fsid,
                 '".." at the root left the export (fileid %d, root %d)' % (a.fileid, root.fileid))
        again = t.ok(t.nfs.lookup(res.fh, ".."), "LOOKUP ../..")
        t.expect(t.getattr(again.fh).fileid == root.fileid, '"../.." left the export')
    else:
        t.check(res, (E.NFS3ERR_ACCES, E.NFS3ERR_PERM, E.NFS3ERR_NOENT), 'LOOKUP ".." at root')


@testcase("LKP6", "nfs lookup")
def lookup_in_file(t):
    """LOOKUP with a file's handle as the directory is NOTDIR (RFC 1813 3.3.3)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    t.check(t.nfs.lookup(f, "x"), E.NFS3ERR_NOTDIR, "LOOKUP in a file")


@testcase("LKP7", "nfs lookup")
def lookup_name_too_long(t):
    """A 256-byte name is NAMETOOLONG (RFC 1813 3.3.3; filename3 is an unbounded string, so
    GARBAGE_ARGS, knfsd's answer, is only a warning)."""
    d = t.scratch()
    r = t.nfs_rpc().call_raw(E.LOOKUP, E.args_diropargs(d, "n" * 256))
    if not r.success:
        t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "got %s" % r.describe())
        t.warn("GARBAGE_ARGS for a 256-byte name instead of NFS3ERR_NAMETOOLONG")
    t.check(E.decode_result(E.LOOKUP, r.body), E.NFS3ERR_NAMETOOLONG, "LOOKUP 256-byte name")


@testcase("LKP8", "nfs lookup robustness")
def lookup_slash(t):
    """A name containing "/" is not a path: LOOKUP "sub/f" fails although sub/f exists
    (RFC 1813 3.3.3: a name is one component)."""
    d = t.scratch()
    sub = t.mkdir(d, "sub")
    t.create_file(sub, "f")
    res = t.try_call(E.LOOKUP, E.args_diropargs(d, "sub/f"))
    t.expect(not res.ok, 'LOOKUP "sub/f" resolved a path')


@testcase("LKP9", "nfs lookup robustness")
def lookup_nul(t):
    """A name with a NUL byte does not match the name before it (RFC 1813 3.3.3)."""
    d = t.scratch()
    t.create_file(d, "f")
    r = t.nfs_rpc().call_raw(E.LOOKUP, E.args_diropargs(d, b"f\0junk"))
    if r.success:
        t.expect(not E.decode_result(E.LOOKUP, r.body).ok, 'LOOKUP "f\\0junk" found "f"')


@testcase("LKP10", "nfs lookup robustness")
def lookup_empty(t):
    """LOOKUP of the empty name fails (an error status or GARBAGE_ARGS) (RFC 1813 3.3.3)."""
    d = t.scratch()
    r = t.nfs_rpc().call_raw(E.LOOKUP, E.args_diropargs(d, ""))
    if r.success:
        t.expect(not E.decode_result(E.LOOKUP, r.body).ok, "LOOKUP of an empty name succeeded")


@testcase("LKP11", "nfs lookup")
def lookup_symlink_not_followed(t):
    """LOOKUP of a symlink returns the link itself, not its target (RFC 1813 3.3.3)."""
    d = t.scratch()
    t.mkdir(d, "target")
    t.ok(t.nfs.symlink(d, "link", "target"), "SYMLINK")
    res = t.ok(t.nfs.lookup(d, "link"), "LOOKUP link")
    t.expect(t.getattr(res.fh).type == E.NF3LNK, "LOOKUP followed the symlink")


@testcase("ACC1", "nfs access")
def access_subset(t):
    """ACCESS returns only bits that were asked for (RFC 1813 3.3.4)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    for mask in (E.ACCESS3_READ, E.ACCESS3_MODIFY | E.ACCESS3_EXTEND, E.ACCESS3_ALL):
        res = t.ok(t.nfs.access(f, mask), "ACCESS %x" % mask)
        t.expect(res.access & ~mask == 0, "asked %x, got %x" % (mask, res.access))


@testcase("ACC2", "nfs access")
def access_owner(t):
    """The owner of a 0644 file may READ, MODIFY and EXTEND it (RFC 1813 3.3.4)."""
    d = t.scratch()
    f = t.create_file(d, "f", mode=0o644)
    res = t.ok(t.nfs.access(f, E.ACCESS3_READ | E.ACCESS3_MODIFY | E.ACCESS3_EXTEND), "ACCESS")
    want = E.ACCESS3_READ | E.ACCESS3_MODIFY | E.ACCESS3_EXTEND
    t.expect(res.access == want, "got %x, expected %x" % (res.access, want))
    t.expect(res.attr is not None, "no post-op attributes")


@testcase("ACC3", "nfs access root")
def access_other_user(t):
    """Another user gets READ but not MODIFY on a 0644 file it does not own (RFC 1813 3.3.4:
    the server checks the caller's credentials)."""
    d = t.scratch()
    f = t.create_file(d, "f", mode=0o644)
    c = t.new_nfs(cred=t.env.cred(54321, 54321, [54321]))
    res = t.ok(c.access(f, E.ACCESS3_READ | E.ACCESS3_MODIFY), "ACCESS as uid 54321")
    t.expect(res.access & E.ACCESS3_READ, "READ denied")
    t.expect(not res.access & E.ACCESS3_MODIFY, "MODIFY granted to a non-owner of a 0644 file")


@testcase("ACC4", "nfs access")
def access_dir_bits(t):
    """On a directory, LOOKUP and DELETE are meaningful and granted to its owner
    (RFC 1813 3.3.4)."""
    d = t.scratch()
    res = t.ok(t.nfs.access(d, E.ACCESS3_LOOKUP | E.ACCESS3_DELETE | E.ACCESS3_EXTEND),
               "ACCESS on a directory")
    t.expect(res.access & E.ACCESS3_LOOKUP, "LOOKUP denied on own 0777 directory")


@testcase("FSS1", "nfs fsstat")
def fsstat_sane(t):
    """FSSTAT: free <= total, available <= total for bytes and files (RFC 1813 3.3.18)."""
    res = t.ok(t.nfs.fsstat(t.root_fh), "FSSTAT")
    t.expect(res.fbytes <= res.tbytes and res.abytes <= res.tbytes,
             "bytes t=%d f=%d a=%d" % (res.tbytes, res.fbytes, res.abytes))
    t.expect(res.ffiles <= res.tfiles and res.afiles <= res.tfiles,
             "files t=%d f=%d a=%d" % (res.tfiles, res.ffiles, res.afiles))
    t.expect(res.tbytes > 0, "total bytes 0")


@testcase("FSS2", "nfs fsstat")
def fsstat_any_handle(t):
    """FSSTAT with a non-root handle of the same file system works (RFC 1813 3.3.18)."""
    d = t.scratch()
    t.ok(t.nfs.fsstat(d), "FSSTAT on a subdirectory")


@testcase("FSI1", "nfs fsinfo")
def fsinfo_sane(t):
    """FSINFO: rtpref <= rtmax, wtpref <= wtmax, nonzero sizes and multiples, time_delta <= 1 s,
    maxfilesize > 0 (RFC 1813 3.3.19)."""
    r = t.ok(t.nfs.fsinfo(t.root_fh), "FSINFO")
    t.expect(0 < r.rtpref <= r.rtmax, "rtpref %d rtmax %d" % (r.rtpref, r.rtmax))
    t.expect(0 < r.wtpref <= r.wtmax, "wtpref %d wtmax %d" % (r.wtpref, r.wtmax))
    t.expect(r.rtmult > 0 and r.wtmult > 0, "rtmult %d wtmult %d" % (r.rtmult, r.wtmult))
    t.expect(r.dtpref > 0, "dtpref 0")
    t.expect(r.maxfilesize > 0, "maxfilesize 0")
    t.expect(r.time_delta[0] <= 1 and r.time_delta[1] < 10 ** 9, "time_delta %s" % (r.time_delta,))
    t.expect(r.attr is not None, "no post-op attributes")


@testcase("FSI2", "nfs fsinfo")
def fsinfo_properties(t):
    """FSINFO properties on a POSIX file system: LINK, SYMLINK, HOMOGENEOUS, CANSETTIME
    (RFC 1813 3.3.19; SHOULD-level)."""
    r = t.ok(t.nfs.fsinfo(t.root_fh), "FSINFO")
    want = E.FSF3_LINK | E.FSF3_SYMLINK | E.FSF3_HOMOGENEOUS | E.FSF3_CANSETTIME
    if r.properties & want != want:
        t.warn("properties %x lack %x" % (r.properties, want & ~r.properties))


@testcase("FSI3", "nfs fsinfo")
def fsinfo_io_sizes(t):
    """rtmax and wtmax are at least 4 KiB and READ/WRITE of that size work (RFC 1813 3.3.19)."""
    r = t.ok(t.nfs.fsinfo(t.root_fh), "FSINFO")
    t.expect(r.rtmax >= 4096 and r.wtmax >= 4096, "rtmax %d wtmax %d" % (r.rtmax, r.wtmax))
    d = t.scratch()
    f = t.create_file(d, "f")
    n = min(r.wtmax, 1 << 20)
    w = t.ok(t.nfs.write(f, 0, b"w" * n), "WRITE of wtmax bytes")
    t.expect(w.count == n, "WRITE of wtmax wrote %d" % w.count)
    rd = t.ok(t.nfs.read(f, 0, min(r.rtmax, n)), "READ of rtmax bytes")
    t.expect(len(rd.data) == min(r.rtmax, n), "READ returned %d" % len(rd.data))


@testcase("PC1", "nfs pathconf")
def pathconf_sane(t):
    """PATHCONF: linkmax >= 1, 0 < name_max, case preserving (RFC 1813 3.3.20)."""
    r = t.ok(t.nfs.pathconf(t.root_fh), "PATHCONF")
    t.expect(r.linkmax >= 1, "linkmax %d" % r.linkmax)
    t.expect(0 < r.name_max <= 4096, "name_max %d" % r.name_max)
    t.expect(r.case_preserving, "not case preserving")
    if not r.no_trunc:
        t.warn("no_trunc false: long names are silently truncated")


@testcase("PC2", "nfs pathconf")
def pathconf_name_max(t):
    """A name of name_max bytes can be created; name_max + 1 gives NAMETOOLONG
    (RFC 1813 3.3.20 name_max, no_trunc; 3.3.8)."""
    r = t.ok(t.nfs.pathconf(t.root_fh), "PATHCONF")
    d = t.scratch()
    n = min(r.name_max, 1024)
    t.ok(t.nfs.create(d, "a" * n, mode=0o644), "CREATE of a name of name_max = %d bytes" % n)
    rep = t.nfs_rpc().call_raw(E.CREATE, E.args_create(d, "b" * (n + 1), mode=0o644))
    if not rep.success:
        t.expect(rep.accept_stat == rpc.GARBAGE_ARGS, "got %s" % rep.describe())
        t.warn("GARBAGE_ARGS for a name of name_max + 1 bytes instead of NAMETOOLONG")
    t.check(E.decode_result(E.CREATE, rep.body), E.NFS3ERR_NAMETOOLONG, "CREATE name_max + 1")
