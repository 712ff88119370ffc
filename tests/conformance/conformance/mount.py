"""MOUNT protocol versions 1 and 3 (RFC 1813 appendix I, RFC 1094 appendix A): encoders/decoders."""

from types import SimpleNamespace

from .xdr import Packer, Unpacker

PROGRAM = 100005

NULL, MNT, DUMP, UMNT, UMNTALL, EXPORT = range(6)

MNT3_OK = 0
MNT3ERR_PERM = 1
MNT3ERR_NOENT = 2
MNT3ERR_IO = 5
MNT3ERR_ACCES = 13
MNT3ERR_NOTDIR = 20
MNT3ERR_INVAL = 22
MNT3ERR_NAMETOOLONG = 63
MNT3ERR_NOTSUPP = 10004
MNT3ERR_SERVERFAULT = 10006

STATUS_NAMES = {0: "MNT3_OK", 1: "MNT3ERR_PERM", 2: "MNT3ERR_NOENT", 5: "MNT3ERR_IO",
                13: "MNT3ERR_ACCES", 20: "MNT3ERR_NOTDIR", 22: "MNT3ERR_INVAL",
                63: "MNT3ERR_NAMETOOLONG", 10004: "MNT3ERR_NOTSUPP", 10006: "MNT3ERR_SERVERFAULT"}

MNTPATHLEN = 1024
MNTNAMLEN = 255
FHSIZE_V1 = 32


def status_name(status):
    return STATUS_NAMES.get(status, "status %d" % status)


def args_dirpath(path):
    p = Packer()
    p.pack_string(path)
    return p.get_buffer()


def decode_mnt3(body):
    """mountres3: status, and on success the file handle and the auth flavors."""
    u = Unpacker(body)
    r = SimpleNamespace(status=u.unpack_uint(), fh=None, flavors=None)
    if r.status == MNT3_OK:
        r.fh = u.unpack_opaque(64)
        r.flavors = u.unpack_array(u.unpack_uint)
    u.done()
    return r


def decode_mnt1(body):
    """fhstatus (MOUNT v1): status, and on success a 32-byte NFSv2 handle."""
    u = Unpacker(body)
    r = SimpleNamespace(status=u.unpack_uint(), fh=None)
    if r.status == 0:
        r.fh = u.unpack_fopaque(FHSIZE_V1)
    u.done()
    return r


def decode_dump(body):
    u = Unpacker(body)

    def entry():
        return SimpleNamespace(hostname=u.unpack_string(MNTNAMLEN),
                               directory=u.unpack_string(MNTPATHLEN))
    entries = u.unpack_list(entry)
    u.done()
    return entries


def decode_exports(body):
    u = Unpacker(body)

    def group():
        return u.unpack_string(MNTNAMLEN)

    def export():
        d = u.unpack_string(MNTPATHLEN)
        return SimpleNamespace(dir=d, groups=u.unpack_list(group))
    entries = u.unpack_list(export)
    u.done()
    return entries
