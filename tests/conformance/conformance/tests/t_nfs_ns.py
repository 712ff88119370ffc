"""CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME and LINK (RFC 1813 3.3.8-3.3.15)."""

from .. import nfs3, rpc
from ..framework import testcase

E = nfs3
VERF_A = b"verifA01"
VERF_B = b"verifB02"


def _fileid(t, d, name):
    res = t.ok(t.nfs.lookup(d, name), "LOOKUP %s" % name)
    return t.getattr(res.fh).fileid


def _exists(t, d, name):
    return t.nfs.lookup(d, name).ok


@testcase("CRT1", "nfs create")
def create_unchecked(t):
    """UNCHECKED CREATE of a new name: a handle, REG attributes, dir wcc (RFC 1813 3.3.8)."""
    d = t.scratch()
    res = t.ok(t.nfs.create(d, "f", E.UNCHECKED, mode=0o600), "CREATE")
    t.expect(res.fh is not None, "no handle (post_op_fh3 is optional, but every server has one)")
    t.expect(res.attr is not None and res.attr.type == E.NF3REG, "attributes")
    t.expect(res.attr.mode & 0o777 == 0o600, "mode %o" % res.attr.mode)
    t.expect(res.dir_wcc.after is not None, "no post-op directory attributes")


@testcase("CRT2", "nfs create")
def create_unchecked_existing(t):
    """UNCHECKED CREATE of an existing file succeeds and keeps its data when no size is given
    (RFC 1813 3.3.8 UNCHECKED)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"keep")
    res = t.ok(t.nfs.create(d, "f", E.UNCHECKED), "CREATE existing")
    t.expect(t.read_all(f) == b"keep", "UNCHECKED CREATE without size truncated the file")
    t.expect(res.fh is None or t.getattr(res.fh).fileid == t.getattr(f).fileid, "other file")


@testcase("CRT3", "nfs create")
def create_unchecked_truncate(t):
    """UNCHECKED CREATE of an existing file with size 0 truncates it (RFC 1813 3.3.8)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"gone")
    t.ok(t.nfs.create(d, "f", E.UNCHECKED, size=0), "CREATE size 0")
    t.expect(t.getattr(f).size == 0, "not truncated")


@testcase("CRT4", "nfs create")
def create_guarded_exists(t):
    """GUARDED CREATE of an existing name is EXIST (RFC 1813 3.3.8 GUARDED)."""
    d = t.scratch()
    t.create_file(d, "f")
    t.check(t.nfs.create(d, "f", E.GUARDED), E.NFS3ERR_EXIST, "GUARDED CREATE existing")
    t.ok(t.nfs.create(d, "g", E.GUARDED, mode=0o644), "GUARDED CREATE new")


@testcase("CRT5", "nfs create")
def create_exclusive_retry(t):
    """EXCLUSIVE CREATE retried with the same verifier succeeds on the same file
    (RFC 1813 3.3.8 EXCLUSIVE)."""
    d = t.scratch()
    a = t.ok(t.nfs.create(d, "x", E.EXCLUSIVE, VERF_A), "EXCLUSIVE CREATE")
    b = t.ok(t.nfs.create(d, "x", E.EXCLUSIVE, VERF_A), "EXCLUSIVE CREATE retry")
    fa = a.fh or t.nfs.lookup(d, "x").fh
    fb = b.fh or t.nfs.lookup(d, "x").fh
    t.expect(t.getattr(fa).fileid == t.getattr(fb).fileid, "retry created another file")


@testcase("CRT6", "nfs create")
def create_exclusive_other_verf(t):
    """EXCLUSIVE CREATE with another verifier on an existing name is EXIST (RFC 1813 3.3.8)."""
    d = t.scratch()
    t.ok(t.nfs.create(d, "x", E.EXCLUSIVE, VERF_A), "EXCLUSIVE CREATE")
    t.check(t.nfs.create(d, "x", E.EXCLUSIVE, VERF_B), E.NFS3ERR_EXIST, "other verifier")
    t.create_file(d, "plain")
    t.check(t.nfs.create(d, "plain", E.EXCLUSIVE, VERF_A), E.NFS3ERR_EXIST,
            "EXCLUSIVE on a file made by UNCHECKED")


@testcase("CRT7", "nfs create")
def create_exclusive_then_setattr(t):
    """After EXCLUSIVE CREATE, the client sets the attributes with SETATTR, which then hold
    (RFC 1813 3.3.8: the verifier may live in the attributes until then)."""
    d = t.scratch()
    res = t.ok(t.nfs.create(d, "x", E.EXCLUSIVE, VERF_A), "EXCLUSIVE CREATE")
    fh = res.fh or t.nfs.lookup(d, "x").fh
    t.ok(t.nfs.setattr(fh, mode=0o640, atime=(1200000000, 0), mtime=(1200000000, 0)),
         "SETATTR")
    a = t.getattr(fh)
    t.expect(a.mode & 0o777 == 0o640 and a.mtime[0] == 1200000000, "attributes not applied")


@testcase("CRT8", "nfs create")
def create_in_file(t):
    """CREATE with a file handle as the directory is NOTDIR (RFC 1813 3.3.8)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    t.check(t.nfs.create(f, "x"), E.NFS3ERR_NOTDIR, "CREATE in a file")


@testcase("CRT9", "nfs create robustness")
def create_dot_names(t):
    """CREATE of "." or ".." fails (EXIST, INVAL, ACCES...) (RFC 1813 3.3.8)."""
    d = t.scratch()
    for name in (".", ".."):
        r = t.nfs_rpc().call_raw(E.CREATE, E.args_create(d, name, E.GUARDED))
        if r.success:
            t.expect(not E.decode_result(E.CREATE, r.body).ok, "CREATE %r succeeded" % name)


@testcase("CRT10", "nfs create robustness")
def create_bad_mode(t):
    """createmode 3 (not in the enum) is GARBAGE_ARGS or INVAL (RFC 1813 3.3.8)."""
    d = t.scratch()
    args = bytearray(E.args_create(d, "m", E.UNCHECKED))
    args[-28:-24] = b"\0\0\0\3"  # createmode, before the six empty sattr3 fields
    r = t.nfs_rpc().call_raw(E.CREATE, bytes(args))
    if r.success:
        t.check(E.decode_result(E.CREATE, r.body), E.NFS3ERR_INVAL, "createmode 3")
    else:
        t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "got %s" % r.describe())
    t.expect(not _exists(t, d, "m"), "file created with createmode 3")


@testcase("CRT11", "nfs create")
def create_dir_wcc(t):
    """CREATE changes the directory's mtime, seen in its post-op wcc attributes
    (RFC 1813 3.3.8 dir_wcc)."""
    d = t.scratch()
    t.ok(t.nfs.setattr(d, mtime=(1000000, 0)), "SETATTR dir mtime")
    res = t.ok(t.nfs.create(d, "f"), "CREATE")
    t.expect(res.dir_wcc.after is not None and res.dir_wcc.after.mtime[0] > 1000000,
             "directory mtime did not move")


@testcase("CRT12", "nfs create")
def create_name_too_long(t):
    """CREATE of a 300-byte name is NAMETOOLONG (RFC 1813 3.3.8; GARBAGE_ARGS only warns)."""
    d = t.scratch()
    r = t.nfs_rpc().call_raw(E.CREATE, E.args_create(d, "c" * 300))
    if not r.success:
        t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "got %s" % r.describe())
        t.warn("GARBAGE_ARGS for a 300-byte name instead of NFS3ERR_NAMETOOLONG")
    t.check(E.decode_result(E.CREATE, r.body), E.NFS3ERR_NAMETOOLONG, "CREATE 300-byte name")


@testcase("MKD1", "nfs mkdir")
def mkdir_basic(t):
    """MKDIR makes a directory with the given mode (RFC 1813 3.3.9)."""
    d = t.scratch()
    res = t.ok(t.nfs.mkdir(d, "sub", mode=0o750), "MKDIR")
    a = t.getattr(res.fh or t.nfs.lookup(d, "sub").fh)
    t.expect(a.type == E.NF3DIR and a.mode & 0o777 == 0o750, "type %d mode %o"
             % (a.type, a.mode))
    if a.nlink < 2:
        t.warn("new directory nlink %d" % a.nlink)


@testcase("MKD2", "nfs mkdir")
def mkdir_exists(t):
    """MKDIR of an existing name is EXIST (RFC 1813 3.3.9)."""
    d = t.scratch()
    t.mkdir(d, "sub")
    t.create_file(d, "f")
    t.check(t.nfs.mkdir(d, "sub"), E.NFS3ERR_EXIST, "MKDIR existing dir")
    t.check(t.nfs.mkdir(d, "f"), E.NFS3ERR_EXIST, "MKDIR over a file")


@testcase("MKD3", "nfs mkdir")
def mkdir_in_file(t):
    """MKDIR in a file handle is NOTDIR (RFC 1813 3.3.9)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    t.check(t.nfs.mkdir(f, "x"), E.NFS3ERR_NOTDIR, "MKDIR in a file")


@testcase("MKD4", "nfs mkdir robustness")
def mkdir_dot(t):
    """MKDIR "." and ".." fail (RFC 1813 3.3.9)."""
    d = t.scratch()
    for name in (".", ".."):
        t.expect(not t.try_call(E.MKDIR, E.args_mkdir(d, name)).ok, "MKDIR %r succeeded" % name)


@testcase("MKD5", "nfs mkdir")
def mkdir_parent_nlink(t):
    """A subdirectory raises the parent's nlink by one on POSIX file systems (RFC 1813 2.6;
    SHOULD-level: depends on the file system)."""
    d = t.scratch()
    before = t.getattr(d).nlink
    t.mkdir(d, "sub")
    after = t.getattr(d).nlink
    if after != before + 1:
        t.warn("parent nlink %d -> %d" % (before, after))


@testcase("SYM1", "nfs symlink")
def symlink_basic(t):
    """SYMLINK makes a LNK whose READLINK is the target (RFC 1813 3.3.10)."""
    d = t.scratch()
    res = t.ok(t.nfs.symlink(d, "l", "target/file"), "SYMLINK")
    fh = res.fh or t.ok(t.nfs.lookup(d, "l"), "LOOKUP").fh
    t.expect(t.getattr(fh).type == E.NF3LNK, "type")
    t.expect(t.ok(t.nfs.readlink(fh), "READLINK").data == b"target/file", "target")


@testcase("SYM2", "nfs symlink")
def symlink_exists(t):
    """SYMLINK over an existing name is EXIST (RFC 1813 3.3.10)."""
    d = t.scratch()
    t.create_file(d, "f")
    t.check(t.nfs.symlink(d, "f", "x"), E.NFS3ERR_EXIST, "SYMLINK existing")


@testcase("SYM3", "nfs symlink")
def symlink_dangling(t):
    """A dangling symlink can be made and read (RFC 1813 3.3.10: the target is not checked)."""
    d = t.scratch()
    res = t.ok(t.nfs.symlink(d, "l", "/no/such/target"), "SYMLINK dangling")
    fh = res.fh or t.ok(t.nfs.lookup(d, "l"), "LOOKUP").fh
    t.expect(t.ok(t.nfs.readlink(fh), "READLINK").data == b"/no/such/target", "target")


@testcase("MKN1", "nfs mknod")
def mknod_fifo(t):
    """MKNOD NF3FIFO makes a FIFO (RFC 1813 3.3.11)."""
    d = t.scratch()
    res = t.ok(t.nfs.mknod(d, "p", E.NF3FIFO, mode=0o644), "MKNOD FIFO")
    a = t.getattr(res.fh or t.nfs.lookup(d, "p").fh)
    t.expect(a.type == E.NF3FIFO, "type %d" % a.type)


@testcase("MKN2", "nfs mknod")
def mknod_socket(t):
    """MKNOD NF3SOCK makes a socket (RFC 1813 3.3.11)."""
    d = t.scratch()
    res = t.ok(t.nfs.mknod(d, "s", E.NF3SOCK, mode=0o644), "MKNOD SOCK")
    a = t.getattr(res.fh or t.nfs.lookup(d, "s").fh)
    t.expect(a.type == E.NF3SOCK, "type %d" % a.type)


@testcase("MKN3", "nfs mknod root")
def mknod_chr(t):
    """MKNOD NF3CHR by root makes a character device with the given rdev (RFC 1813 3.3.11)."""
    d = t.scratch()
    res = t.nfs.mknod(d, "c", E.NF3CHR, (1, 3), mode=0o600)
    if res.status in (E.NFS3ERR_PERM, E.NFS3ERR_ACCES, E.NFS3ERR_NOTSUPP):
        t.skip("device nodes refused here (%s)" % res.status_name)
    t.ok(res, "MKNOD CHR")
    a = t.getattr(res.fh or t.nfs.lookup(d, "c").fh)
    t.expect(a.type == E.NF3CHR and a.rdev == (1, 3), "type %d rdev %s" % (a.type, a.rdev))


@testcase("MKN4", "nfs mknod")
def mknod_bad_type(t):
    """MKNOD of NF3REG, NF3DIR or NF3LNK is BADTYPE (RFC 1813 3.3.11)."""
    d = t.scratch()
    for ftype in (E.NF3REG, E.NF3DIR, E.NF3LNK):
        r = t.nfs_rpc().call_raw(E.MKNOD, E.args_mknod(d, "x%d" % ftype, ftype))
        t.expect(r.success, "type %d: %s" % (ftype, r.describe()))
        res = E.decode_result(E.MKNOD, r.body)
        if res.status in (E.NFS3ERR_INVAL, E.NFS3ERR_NOTSUPP):
            t.warn("type %d: %s, RFC 1813 says NFS3ERR_BADTYPE" % (ftype, res.status_name))
        t.check(res, E.NFS3ERR_BADTYPE, "MKNOD type %d" % ftype)


@testcase("MKN5", "nfs mknod")
def mknod_exists(t):
    """MKNOD over an existing name is EXIST (RFC 1813 3.3.11)."""
    d = t.scratch()
    t.create_file(d, "f")
    t.check(t.nfs.mknod(d, "f", E.NF3FIFO), E.NFS3ERR_EXIST, "MKNOD existing")


@testcase("RM1", "nfs remove")
def remove_file(t):
    """REMOVE deletes the name; LOOKUP then fails with NOENT (RFC 1813 3.3.12)."""
    d = t.scratch()
    t.create_file(d, "f")
    res = t.ok(t.nfs.remove(d, "f"), "REMOVE")
    t.expect(res.dir_wcc.after is not None, "no post-op directory attributes")
    t.check(t.nfs.lookup(d, "f"), E.NFS3ERR_NOENT, "LOOKUP after REMOVE")


@testcase("RM2", "nfs remove")
def remove_missing(t):
    """REMOVE of a missing name is NOENT (RFC 1813 3.3.12)."""
    d = t.scratch()
    t.check(t.nfs.remove(d, "missing"), E.NFS3ERR_NOENT, "REMOVE missing")


@testcase("RM3", "nfs remove")
def remove_dir(t):
    """REMOVE of a directory fails and leaves it (RFC 1813 3.3.12: RMDIR removes directories)."""
    d = t.scratch()
    t.mkdir(d, "sub")
    res = t.nfs.remove(d, "sub")
    t.expect(not res.ok, "REMOVE removed a directory")
    t.expect(_exists(t, d, "sub"), "directory gone")


@testcase("RM4", "nfs remove")
def remove_hard_link(t):
    """REMOVE of one of two links leaves the other with the data and nlink 1
    (RFC 1813 3.3.12, 3.3.15)."""
    d = t.scratch()
    f = t.create_file(d, "a", b"data")
    t.ok(t.nfs.link(f, d, "b"), "LINK")
    t.ok(t.nfs.remove(d, "a"), "REMOVE a")
    b = t.ok(t.nfs.lookup(d, "b"), "LOOKUP b").fh
    t.expect(t.read_all(b) == b"data", "data")
    t.expect(t.getattr(b).nlink == 1, "nlink %d" % t.getattr(b).nlink)


@testcase("RM5", "nfs remove robustness")
def remove_dots(t):
    """REMOVE "." and ".." fail and remove nothing (RFC 1813 3.3.12)."""
    d = t.scratch()
    sub = t.mkdir(d, "sub")
    for name in (".", ".."):
        t.expect(not t.try_call(E.REMOVE, E.args_diropargs(sub, name)).ok, "REMOVE %r succeeded" % name)
    t.expect(_exists(t, d, "sub"), "subdirectory gone")


@testcase("RMD1", "nfs rmdir")
def rmdir_empty(t):
    """RMDIR of an empty directory succeeds (RFC 1813 3.3.13)."""
    d = t.scratch()
    t.mkdir(d, "sub")
    t.ok(t.nfs.rmdir(d, "sub"), "RMDIR")
    t.check(t.nfs.lookup(d, "sub"), E.NFS3ERR_NOENT, "LOOKUP after RMDIR")


@testcase("RMD2", "nfs rmdir")
def rmdir_not_empty(t):
    """RMDIR of a non-empty directory is NOTEMPTY (RFC 1813 3.3.13; EXIST only warns)."""
    d = t.scratch()
    sub = t.mkdir(d, "sub")
    t.create_file(sub, "f")
    res = t.nfs.rmdir(d, "sub")
    if res.status == E.NFS3ERR_EXIST:
        t.warn("NFS3ERR_EXIST for a non-empty directory")
    t.check(res, E.NFS3ERR_NOTEMPTY, "RMDIR non-empty")


@testcase("RMD3", "nfs rmdir")
def rmdir_file(t):
    """RMDIR of a file is NOTDIR (RFC 1813 3.3.13)."""
    d = t.scratch()
    t.create_file(d, "f")
    t.check(t.nfs.rmdir(d, "f"), E.NFS3ERR_NOTDIR, "RMDIR of a file")


@testcase("RMD4", "nfs rmdir")
def rmdir_missing(t):
    """RMDIR of a missing name is NOENT (RFC 1813 3.3.13)."""
    d = t.scratch()
    t.check(t.nfs.rmdir(d, "missing"), E.NFS3ERR_NOENT, "RMDIR missing")


@testcase("RMD5", "nfs rmdir robustness")
def rmdir_dots(t):
    """RMDIR "." and ".." fail (INVAL, EXIST, NOTEMPTY...) (RFC 1813 3.3.13)."""
    d = t.scratch()
    sub = t.mkdir(d, "sub")
    for name in (".", ".."):
        t.expect(not t.try_call(E.RMDIR, E.args_diropargs(sub, name)).ok, "RMDIR %r succeeded" % name)
    t.expect(_exists(t, d, "sub"), "subdirectory gone")


@testcase("REN1", "nfs rename")
def rename_same_dir(t):
    """RENAME within a directory keeps the file (same fileid) under the new name
    (RFC 1813 3.3.14)."""
    d = t.scratch()
    f = t.create_file(d, "a", b"x")
    fid = t.getattr(f).fileid
    res = t.ok(t.nfs.rename(d, "a", d, "b"), "RENAME")
    t.expect(res.fromdir_wcc.after is not None and res.todir_wcc.after is not None, "wcc")
    t.check(t.nfs.lookup(d, "a"), E.NFS3ERR_NOENT, "old name")
    t.expect(_fileid(t, d, "b") == fid, "new name is another file")


@testcase("REN2", "nfs rename")
def rename_across_dirs(t):
    """RENAME between directories (RFC 1813 3.3.14)."""
    d = t.scratch()
    a, b = t.mkdir(d, "a"), t.mkdir(d, "b")
    f = t.create_file(a, "f")
    fid = t.getattr(f).fileid
    t.ok(t.nfs.rename(a, "f", b, "g"), "RENAME across")
    t.expect(_fileid(t, b, "g") == fid and not _exists(t, a, "f"), "not moved")


@testcase("REN3", "nfs rename")
def rename_over_file(t):
    """RENAME over an existing file replaces it (RFC 1813 3.3.14: compatible target removed)."""
    d = t.scratch()
    t.create_file(d, "a", b"new")
    t.create_file(d, "b", b"old")
    t.ok(t.nfs.rename(d, "a", d, "b"), "RENAME over a file")
    b = t.ok(t.nfs.lookup(d, "b"), "LOOKUP").fh
    t.expect(t.read_all(b) == b"new", "target not replaced")


@testcase("REN4", "nfs rename")
def rename_file_over_dir(t):
    """RENAME of a file over a directory fails (RFC 1813 3.3.14 says EXIST; ISDIR, knfsd's
    answer, warns)."""
    d = t.scratch()
    t.create_file(d, "f")
    t.mkdir(d, "dir")
    res = t.nfs.rename(d, "f", d, "dir")
    t.expect(not res.ok, "file renamed over a directory")
    if res.status in (E.NFS3ERR_ISDIR, E.NFS3ERR_NOTDIR):
        t.warn("got %s, RFC 1813 3.3.14 says NFS3ERR_EXIST" % res.status_name)
    t.check(res, E.NFS3ERR_EXIST, "RENAME file over dir")


@testcase("REN5", "nfs rename")
def rename_dir_over_nonempty(t):
    """RENAME of a directory over a non-empty directory fails (RFC 1813 3.3.14: EXIST;
    NOTEMPTY warns)."""
    d = t.scratch()
    t.mkdir(d, "a")
    b = t.mkdir(d, "b")
    t.create_file(b, "f")
    res = t.nfs.rename(d, "a", d, "b")
    t.expect(not res.ok, "directory renamed over a non-empty directory")
    if res.status == E.NFS3ERR_NOTEMPTY:
        t.warn("NFS3ERR_NOTEMPTY, RFC 1813 3.3.14 says NFS3ERR_EXIST")
    t.check(res, E.NFS3ERR_EXIST, "RENAME dir over non-empty dir")


@testcase("REN6", "nfs rename")
def rename_dir_over_empty(t):
    """RENAME of a directory over an empty directory replaces it (RFC 1813 3.3.14)."""
    d = t.scratch()
    a = t.mkdir(d, "a")
    t.mkdir(d, "b")
    fid = t.getattr(a).fileid
    t.ok(t.nfs.rename(d, "a", d, "b"), "RENAME dir over empty dir")
    t.expect(_fileid(t, d, "b") == fid, "target not replaced")


@testcase("REN7", "nfs rename")
def rename_to_itself(t):
    """RENAME of a name onto itself is OK and changes nothing (RFC 1813 3.3.14)."""
    d = t.scratch()
    t.create_file(d, "a", b"same")
    t.ok(t.nfs.rename(d, "a", d, "a"), "RENAME a -> a")
    t.expect(t.read_all(t.nfs.lookup(d, "a").fh) == b"same", "file changed")


@testcase("REN8", "nfs rename link")
def rename_hard_links(t):
    """RENAME between two links of one file is OK and does nothing (RFC 1813 3.3.14: 'should
    perform no action and return NFS3_OK')."""
    d = t.scratch()
    f = t.create_file(d, "a")
    t.ok(t.nfs.link(f, d, "b"), "LINK")
    t.ok(t.nfs.rename(d, "a", d, "b"), "RENAME between links")
    t.expect(_exists(t, d, "b"), "target gone")
    if not _exists(t, d, "a"):
        t.warn("source link removed (POSIX rename keeps both; RFC says no action)")


@testcase("REN9", "nfs rename")
def rename_into_own_subdir(t):
    """RENAME of a directory into its own subdirectory is INVAL (RFC 1813 3.3.14)."""
    d = t.scratch()
    a = t.mkdir(d, "a")
    t.mkdir(a, "sub")
    sub = t.nfs.lookup(a, "sub").fh
    t.check(t.nfs.rename(d, "a", sub, "x"), E.NFS3ERR_INVAL, "RENAME into own subdir")


@testcase("REN10", "nfs rename")
def rename_missing(t):
    """RENAME of a missing source is NOENT (RFC 1813 3.3.14)."""
    d = t.scratch()
    t.check(t.nfs.rename(d, "missing", d, "x"), E.NFS3ERR_NOENT, "RENAME missing")


@testcase("REN11", "nfs rename robustness")
def rename_dots(t):
    """RENAME of "." or ".." or onto them fails (RFC 1813 3.3.14)."""
    d = t.scratch()
    sub = t.mkdir(d, "sub")
    t.create_file(d, "f")
    for args in ((sub, ".", d, "x"), (sub, "..", d, "y"), (d, "f", sub, ".."),
                 (d, "f", sub, ".")):
        t.expect(not t.try_call(E.RENAME, E.args_rename(*args)).ok, "RENAME %r -> %r succeeded" % (args[1], args[3]))
    t.expect(_exists(t, d, "f") and _exists(t, d, "sub"), "entries moved")


@testcase("REN12", "nfs rename fh")
def rename_keeps_handle(t):
    """A file's handle stays valid after RENAME (RFC 1813 2.3.3 / 4.1: handles name files,
    not paths)."""
    d = t.scratch()
    a, b = t.mkdir(d, "a"), t.mkdir(d, "b")
    f = t.create_file(a, "f", b"persist")
    t.ok(t.nfs.rename(a, "f", b, "g"), "RENAME")
    t.ok(t.nfs.getattr(f), "GETATTR of the old handle after RENAME")
    t.expect(t.read_all(f) == b"persist", "data through the old handle")
    t.ok(t.nfs.rename(d, "a", d, "a2"), "RENAME of a directory")
    t.ok(t.nfs.create(a, "new"), "CREATE in a renamed directory through its old handle")


@testcase("REN13", "nfs rename")
def rename_notdir(t):
    """RENAME with a file handle as from.dir is NOTDIR (RFC 1813 3.3.14)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    t.check(t.nfs.rename(f, "x", d, "y"), E.NFS3ERR_NOTDIR, "RENAME from a file")


@testcase("LNK1", "nfs link")
def link_basic(t):
    """LINK adds a name for the file: same fileid, nlink 2 (RFC 1813 3.3.15)."""
    d = t.scratch()
    f = t.create_file(d, "a", b"shared")
    res = t.ok(t.nfs.link(f, d, "b"), "LINK")
    if res.attr is not None:
        t.expect(res.attr.nlink == 2, "post-op nlink %d" % res.attr.nlink)
    t.expect(t.getattr(f).nlink == 2, "nlink %d" % t.getattr(f).nlink)
    t.expect(_fileid(t, d, "b") == t.getattr(f).fileid, "link is another file")
    t.ok(t.nfs.write(t.nfs.lookup(d, "b").fh, 0, b"SH"), "WRITE through b")
    t.expect(t.read_all(f) == b"SHared", "data not shared")


@testcase("LNK2", "nfs link")
def link_exists(t):
    """LINK to an existing name is EXIST (RFC 1813 3.3.15)."""
    d = t.scratch()
    f = t.create_file(d, "a")
    t.create_file(d, "b")
    t.check(t.nfs.link(f, d, "b"), E.NFS3ERR_EXIST, "LINK over existing")


@testcase("LNK3", "nfs link")
def link_dir(t):
    """LINK of a directory fails (ISDIR, PERM, INVAL...) (RFC 1813 3.3.15)."""
    d = t.scratch()
    sub = t.mkdir(d, "sub")
    t.expect(not t.nfs.link(sub, d, "sub2").ok, "hard link to a directory made")


@testcase("LNK4", "nfs link")
def link_into_file(t):
    """LINK with a file as the target directory is NOTDIR (RFC 1813 3.3.15)."""
    d = t.scratch()
    f = t.create_file(d, "a")
    g = t.create_file(d, "g")
    t.check(t.nfs.link(f, g, "x"), E.NFS3ERR_NOTDIR, "LINK into a file")


@testcase("LNK5", "nfs link")
def link_wcc(t):
    """LINK returns the directory's wcc_data with a post-op mtime that moved
    (RFC 1813 3.3.15 linkdir_wcc)."""
    d = t.scratch()
    f = t.create_file(d, "a")
    t.ok(t.nfs.setattr(d, mtime=(1000000, 0)), "SETATTR dir mtime")
    res = t.ok(t.nfs.link(f, d, "b"), "LINK")
    t.expect(res.linkdir_wcc.after is not None and res.linkdir_wcc.after.mtime[0] > 1000000,
             "directory mtime did not move")
