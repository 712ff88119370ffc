"""NFS version 3 (RFC 1813): constants, argument encoders and result decoders for all 22 procedures.

`Nfs3` wraps an RpcClient for program 100003 version 3. Each method encodes its arguments, makes
the call and decodes the result into a `Result` whose attributes follow the RFC's field names
(`status`, `attr`, `obj_wcc`, ...). Encoders take plain Python values so that tests can also feed
out-of-range ones on purpose.
"""

from types import SimpleNamespace

from .xdr import Packer, Unpacker

PROGRAM = 100003
VERSION = 3

NULL, GETATTR, SETATTR, LOOKUP, ACCESS, READLINK, READ, WRITE, CREATE, MKDIR, SYMLINK, MKNOD, \
    REMOVE, RMDIR, RENAME, LINK, READDIR, READDIRPLUS, FSSTAT, FSINFO, PATHCONF, COMMIT = range(22)
PROC_NAMES = ["NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE",
              "CREATE", "MKDIR", "SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK",
              "READDIR", "READDIRPLUS", "FSSTAT", "FSINFO", "PATHCONF", "COMMIT"]

NFS3_OK = 0
NFS3ERR_PERM = 1
NFS3ERR_NOENT = 2
NFS3ERR_IO = 5
NFS3ERR_NXIO = 6
NFS3ERR_ACCES = 13
NFS3ERR_EXIST = 17
NFS3ERR_XDEV = 18
NFS3ERR_NODEV = 19
NFS3ERR_NOTDIR = 20
NFS3ERR_ISDIR = 21
NFS3ERR_INVAL = 22
NFS3ERR_FBIG = 27
NFS3ERR_NOSPC = 28
NFS3ERR_ROFS = 30
NFS3ERR_MLINK = 31
NFS3ERR_NAMETOOLONG = 63
NFS3ERR_NOTEMPTY = 66
NFS3ERR_DQUOT = 69
NFS3ERR_STALE = 70
NFS3ERR_REMOTE = 71
NFS3ERR_BADHANDLE = 10001
NFS3ERR_NOT_SYNC = 10002
NFS3ERR_BAD_COOKIE = 10003
NFS3ERR_NOTSUPP = 10004
NFS3ERR_TOOSMALL = 10005
NFS3ERR_SERVERFAULT = 10006
NFS3ERR_BADTYPE = 10007
NFS3ERR_JUKEBOX = 10008

STATUS_NAMES = {v: k for k, v in list(globals().items())
                if k.startswith("NFS3ERR_") or k == "NFS3_OK"}

# Not an nfsstat3: stands for an RPC-level GARBAGE_ARGS reply where tests accept either form of
# refusal (knfsd, for one, refuses names containing "/" or NUL while decoding them).
RPC_GARBAGE_ARGS = -4
STATUS_NAMES[RPC_GARBAGE_ARGS] = "RPC GARBAGE_ARGS"

NF3REG, NF3DIR, NF3BLK, NF3CHR, NF3LNK, NF3SOCK, NF3FIFO = range(1, 8)

UNSTABLE, DATA_SYNC, FILE_SYNC = 0, 1, 2
UNCHECKED, GUARDED, EXCLUSIVE = 0, 1, 2

DONT_CHANGE, SET_TO_SERVER_TIME, SET_TO_CLIENT_TIME = 0, 1, 2

ACCESS3_READ = 0x01
ACCESS3_LOOKUP = 0x02
ACCESS3_MODIFY = 0x04
ACCESS3_EXTEND = 0x08
ACCESS3_DELETE = 0x10
ACCESS3_EXECUTE = 0x20
ACCESS3_ALL = 0x3F

FSF3_LINK = 0x01
FSF3_SYMLINK = 0x02
FSF3_HOMOGENEOUS = 0x08
FSF3_CANSETTIME = 0x10

NFS3_FHSIZE = 64
NFS3_COOKIEVERFSIZE = 8
NFS3_CREATEVERFSIZE = 8
NFS3_WRITEVERFSIZE = 8

ZERO_VERF = b"\0" * 8


def status_name(status):
    return STATUS_NAMES.get(status, "status %d" % status)


class Result(SimpleNamespace):
    """A decoded NFS result; `status` is always present."""

    @property
    def ok(self):
        return self.status == NFS3_OK

    @property
    def status_name(self):
        return status_name(self.status)


# ---- encoders ---------------------------------------------------------------------------------

def pack_fh(p, fh):
    p.pack_opaque(fh)


def pack_diropargs(p, dir_fh, name):
    pack_fh(p, dir_fh)
    p.pack_string(name)


def pack_time(p, t):
    p.pack_uint(t[0])
    p.pack_uint(t[1])


def pack_sattr(p, mode=None, uid=None, gid=None, size=None, atime=DONT_CHANGE, mtime=DONT_CHANGE):
    """sattr3 (RFC 1813 2.5); atime/mtime are DONT_CHANGE, SET_TO_SERVER_TIME or (sec, nsec)."""
    for v in (mode, uid, gid):
        p.pack_optional(v, p.pack_uint)
    p.pack_optional(size, p.pack_uhyper)
    for t in (atime, mtime):
        if isinstance(t, tuple):
            p.pack_uint(SET_TO_CLIENT_TIME)
            pack_time(p, t)
        else:
            p.pack_uint(t)


# ---- decoders ---------------------------------------------------------------------------------

def unpack_time(u):
    return (u.unpack_uint(), u.unpack_uint())


def unpack_fattr(u):
    a = SimpleNamespace()
    a.type = u.unpack_uint()
    a.mode = u.unpack_uint()
    a.nlink = u.unpack_uint()
    a.uid = u.unpack_uint()
    a.gid = u.unpack_uint()
    a.size = u.unpack_uhyper()
    a.used = u.unpack_uhyper()
    a.rdev = (u.unpack_uint(), u.unpack_uint())
    a.fsid = u.unpack_uhyper()
    a.fileid = u.unpack_uhyper()
    a.atime = unpack_time(u)
    a.mtime = unpack_time(u)
    a.ctime = unpack_time(u)
    return a


def unpack_post_op_attr(u):
    return u.unpack_optional(lambda: unpack_fattr(u))


def unpack_wcc_data(u):
    def wcc_attr():
        return SimpleNamespace(size=u.unpack_uhyper(), mtime=unpack_time(u), ctime=unpack_time(u))
    before = u.unpack_optional(wcc_attr)
    after = unpack_post_op_attr(u)
    return SimpleNamespace(before=before, after=after)


def unpack_fh(u):
    return u.unpack_opaque(NFS3_FHSIZE)


def unpack_post_op_fh(u):
    return u.unpack_optional(lambda: unpack_fh(u))


def _dec_getattr(u, r):
    if r.ok:
        r.attr = unpack_fattr(u)


def _dec_wcc(field):
    def dec(u, r):
        setattr(r, field, unpack_wcc_data(u))
    return dec


def _dec_lookup(u, r):
    if r.ok:
        r.fh = unpack_fh(u)
        r.attr = unpack_post_op_attr(u)
    r.dir_attr = unpack_post_op_attr(u)


def _dec_access(u, r):
    r.attr = unpack_post_op_attr(u)
    if r.ok:
        r.access = u.unpack_uint()


def _dec_readlink(u, r):
    r.attr = unpack_post_op_attr(u)
    if r.ok:
        r.data = u.unpack_opaque()


def _dec_read(u, r):
    r.attr = unpack_post_op_attr(u)
    if r.ok:
        r.count = u.unpack_uint()
        r.eof = u.unpack_bool()
        r.data = u.unpack_opaque()


def _dec_write(u, r):
    r.wcc = unpack_wcc_data(u)
    if r.ok:
        r.count = u.unpack_uint()
        r.committed = u.unpack_uint()
        r.verf = u.unpack_fopaque(8)


def _dec_create(u, r):
    if r.ok:
        r.fh = unpack_post_op_fh(u)
        r.attr = unpack_post_op_attr(u)
    r.dir_wcc = unpack_wcc_data(u)


def _dec_rename(u, r):
    r.fromdir_wcc = unpack_wcc_data(u)
    r.todir_wcc = unpack_wcc_data(u)


def _dec_link(u, r):
    r.attr = unpack_post_op_attr(u)
    r.linkdir_wcc = unpack_wcc_data(u)


def _dec_readdir(u, r):
    r.dir_attr = unpack_post_op_attr(u)
    if r.ok:
        r.cookieverf = u.unpack_fopaque(8)

        def entry():
            return SimpleNamespace(fileid=u.unpack_uhyper(), name=u.unpack_opaque(),
                                   cookie=u.unpack_uhyper())
        r.entries = u.unpack_list(entry)
        r.eof = u.unpack_bool()


def _dec_readdirplus(u, r):
    r.dir_attr = unpack_post_op_attr(u)
    if r.ok:
        r.cookieverf = u.unpack_fopaque(8)

        def entry():
            return SimpleNamespace(fileid=u.unpack_uhyper(), name=u.unpack_opaque(),
                                   cookie=u.unpack_uhyper(), attr=unpack_post_op_attr(u),
                                   fh=unpack_post_op_fh(u))
        r.entries = u.unpack_list(entry)
        r.eof = u.unpack_bool()


def _dec_fsstat(u, r):
    r.attr = unpack_post_op_attr(u)
    if r.ok:
        for f in ("tbytes", "fbytes", "abytes", "tfiles", "ffiles", "afiles"):
            setattr(r, f, u.unpack_uhyper())
        r.invarsec = u.unpack_uint()


def _dec_fsinfo(u, r):
    r.attr = unpack_post_op_attr(u)
    if r.ok:
        for f in ("rtmax", "rtpref", "rtmult", "wtmax", "wtpref", "wtmult", "dtpref"):
            setattr(r, f, u.unpack_uint())
        r.maxfilesize = u.unpack_uhyper()
        r.time_delta = unpack_time(u)
        r.properties = u.unpack_uint()


def _dec_pathconf(u, r):
    r.attr = unpack_post_op_attr(u)
    if r.ok:
        r.linkmax = u.unpack_uint()
        r.name_max = u.unpack_uint()
        r.no_trunc = u.unpack_bool()
        r.chown_restricted = u.unpack_bool()
        r.case_insensitive = u.unpack_bool()
        r.case_preserving = u.unpack_bool()


def _dec_commit(u, r):
    r.wcc = unpack_wcc_data(u)
    if r.ok:
        r.verf = u.unpack_fopaque(8)


DECODERS = {
    GETATTR: _dec_getattr, SETATTR: _dec_wcc("obj_wcc"), LOOKUP: _dec_lookup,
    ACCESS: _dec_access, READLINK: _dec_readlink, READ: _dec_read, WRITE: _dec_write,
    CREATE: _dec_create, MKDIR: _dec_create, SYMLINK: _dec_create, MKNOD: _dec_create,
    REMOVE: _dec_wcc("dir_wcc"), RMDIR: _dec_wcc("dir_wcc"), RENAME: _dec_rename,
    LINK: _dec_link, READDIR: _dec_readdir, READDIRPLUS: _dec_readdirplus, FSSTAT: _dec_fsstat,
    FSINFO: _dec_fsinfo, PATHCONF: _dec_pathconf, COMMIT: _dec_commit,
}


def decode_result(proc, body):
    """Decodes a procedure's result; the whole body must be consumed."""
    u = Unpacker(body)
    r = Result(status=u.unpack_uint(), proc=proc)
    DECODERS[proc](u, r)
    u.done()
    return r


# ---- argument encoders ------------------------------------------------------------------------

def args_fh(fh):
    p = Packer()
    pack_fh(p, fh)
    return p.get_buffer()


def args_diropargs(dir_fh, name):
    p = Packer()
    pack_diropargs(p, dir_fh, name)
    return p.get_buffer()


def args_setattr(fh, guard=None, **sattr):
    p = Packer()
    pack_fh(p, fh)
    pack_sattr(p, **sattr)
    p.pack_optional(guard, lambda t: pack_time(p, t))
    return p.get_buffer()


def args_access(fh, access):
    p = Packer()
    pack_fh(p, fh)
    p.pack_uint(access)
    return p.get_buffer()


def args_read(fh, offset, count):
    p = Packer()
    pack_fh(p, fh)
    p.pack_uhyper(offset)
    p.pack_uint(count)
    return p.get_buffer()


def args_write(fh, offset, data, stable=FILE_SYNC, count=None):
    p = Packer()
    pack_fh(p, fh)
    p.pack_uhyper(offset)
    p.pack_uint(len(data) if count is None else count)
    p.pack_uint(stable)
    p.pack_opaque(data)
    return p.get_buffer()


def args_create(dir_fh, name, how=UNCHECKED, verf=None, **sattr):
    p = Packer()
    pack_diropargs(p, dir_fh, name)
    p.pack_uint(how)
    if how == EXCLUSIVE:
        p.pack_fopaque(8, verf)
    else:
        pack_sattr(p, **sattr)
    return p.get_buffer()


def args_mkdir(dir_fh, name, **sattr):
    p = Packer()
    pack_diropargs(p, dir_fh, name)
    pack_sattr(p, **sattr)
    return p.get_buffer()


def args_symlink(dir_fh, name, target, **sattr):
    p = Packer()
    pack_diropargs(p, dir_fh, name)
    pack_sattr(p, **sattr)
    p.pack_string(target)
    return p.get_buffer()


def args_mknod(dir_fh, name, ftype, spec=(0, 0), **sattr):
    p = Packer()
    pack_diropargs(p, dir_fh, name)
    p.pack_uint(ftype)
    if ftype in (NF3CHR, NF3BLK):
        pack_sattr(p, **sattr)
        p.pack_uint(spec[0])
        p.pack_uint(spec[1])
    elif ftype in (NF3SOCK, NF3FIFO):
        pack_sattr(p, **sattr)
    return p.get_buffer()


def args_rename(from_dir, from_name, to_dir, to_name):
    p = Packer()
    pack_diropargs(p, from_dir, from_name)
    pack_diropargs(p, to_dir, to_name)
    return p.get_buffer()


def args_link(fh, dir_fh, name):
    p = Packer()
    pack_fh(p, fh)
    pack_diropargs(p, dir_fh, name)
    return p.get_buffer()


def args_readdir(dir_fh, cookie=0, verf=ZERO_VERF, count=4096):
    p = Packer()
    pack_fh(p, dir_fh)
    p.pack_uhyper(cookie)
    p.pack_fopaque(8, verf)
    p.pack_uint(count)
    return p.get_buffer()


def args_readdirplus(dir_fh, cookie=0, verf=ZERO_VERF, dircount=4096, maxcount=32768):
    p = Packer()
    pack_fh(p, dir_fh)
    p.pack_uhyper(cookie)
    p.pack_fopaque(8, verf)
    p.pack_uint(dircount)
    p.pack_uint(maxcount)
    return p.get_buffer()


def args_commit(fh, offset=0, count=0):
    p = Packer()
    pack_fh(p, fh)
    p.pack_uhyper(offset)
    p.pack_uint(count)
    return p.get_buffer()


class Nfs3:
    """NFSv3 procedures over one RpcClient. Methods return `Result`s; RPC-level failures raise."""

    def __init__(self, rpc):
        self.rpc = rpc

    def close(self):
        self.rpc.close()

    def call(self, proc, args, **kw):
        body = self.rpc.call(proc, args, **kw)
        return decode_result(proc, body)

    def null(self, **kw):
        """NULL; returns the result bytes, which must be empty."""
        return self.rpc.call(NULL, b"", **kw)

    def getattr(self, fh, **kw):
        return self.call(GETATTR, args_fh(fh), **kw)

    def setattr(self, fh, guard=None, cred=None, **sattr):
        kw = {"cred": cred} if cred is not None else {}
        return self.call(SETATTR, args_setattr(fh, guard, **sattr), **kw)

    def lookup(self, dir_fh, name, **kw):
        return self.call(LOOKUP, args_diropargs(dir_fh, name), **kw)

    def access(self, fh, access=ACCESS3_ALL, **kw):
        return self.call(ACCESS, args_access(fh, access), **kw)

    def readlink(self, fh, **kw):
        return self.call(READLINK, args_fh(fh), **kw)

    def read(self, fh, offset, count, **kw):
        return self.call(READ, args_read(fh, offset, count), **kw)

    def write(self, fh, offset, data, stable=FILE_SYNC, **kw):
        return self.call(WRITE, args_write(fh, offset, data, stable), **kw)

    def create(self, dir_fh, name, how=UNCHECKED, verf=None, cred=None, **sattr):
        kw = {"cred": cred} if cred is not None else {}
        return self.call(CREATE, args_create(dir_fh, name, how, verf, **sattr), **kw)

    def mkdir(self, dir_fh, name, cred=None, **sattr):
        kw = {"cred": cred} if cred is not None else {}
        return self.call(MKDIR, args_mkdir(dir_fh, name, **sattr), **kw)

    def symlink(self, dir_fh, name, target, cred=None, **sattr):
        kw = {"cred": cred} if cred is not None else {}
        return self.call(SYMLINK, args_symlink(dir_fh, name, target, **sattr), **kw)

    def mknod(self, dir_fh, name, ftype, spec=(0, 0), cred=None, **sattr):
        kw = {"cred": cred} if cred is not None else {}
        return self.call(MKNOD, args_mknod(dir_fh, name, ftype, spec, **sattr), **kw)

    def remove(self, dir_fh, name, **kw):
        return self.call(REMOVE, args_diropargs(dir_fh, name), **kw)

    def rmdir(self, dir_fh, name, **kw):
        return self.call(RMDIR, args_diropargs(dir_fh, name), **kw)

    def rename(self, from_dir, from_name, to_dir, to_name, **kw):
        return self.call(RENAME, args_rename(from_dir, from_name, to_dir, to_name), **kw)

    def link(self, fh, dir_fh, name, **kw):
        return self.call(LINK, args_link(fh, dir_fh, name), **kw)

    def readdir(self, dir_fh, cookie=0, verf=ZERO_VERF, count=4096, **kw):
        return self.call(READDIR, args_readdir(dir_fh, cookie, verf, count), **kw)

    def readdirplus(self, dir_fh, cookie=0, verf=ZERO_VERF, dircount=4096, maxcount=32768, **kw):
        return self.call(READDIRPLUS,
                         args_readdirplus(dir_fh, cookie, verf, dircount, maxcount), **kw)

    def fsstat(self, fh, **kw):
        return self.call(FSSTAT, args_fh(fh), **kw)

    def fsinfo(self, fh, **kw):
        return self.call(FSINFO, args_fh(fh), **kw)

    def pathconf(self, fh, **kw):
        return self.call(PATHCONF, args_fh(fh), **kw)

    def commit(self, fh, offset=0, count=0, **kw):
        return self.call(COMMIT, args_commit(fh, offset, count), **kw)
