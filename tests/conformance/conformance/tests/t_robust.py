"""Robustness: random bytes, truncated arguments for every procedure, huge counts, names with
"/" or NUL, and symlinks leading out of the export (RFC 1813 3.3 argument decoding, 4.1)."""

import os
import random
import struct

from .. import nfs3, rpc
from ..framework import testcase
from .t_rpc import _serves

E = nfs3


@testcase("ROB1", "robustness")
def random_records(t):
    """200 records of random bytes over TCP: the server answers or closes, and keeps serving
    (RFC 5531 9)."""
    rng = random.Random(1813)
    tr = t.transport(timeout=5)
    for i in range(200):
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
        try:
            tr.send_message(payload)
        except rpc.ConnectionClosed:
            tr = t.transport(timeout=5)
    _serves(t, "random records")


@testcase("ROB2", "robustness udp")
def random_datagrams(t):
    """200 random datagrams over UDP, then NULL is still answered (RFC 5531 9)."""
    rng = random.Random(5531)
    c = t.nfs_rpc("udp")
    for _ in range(200):
        c.transport.send_raw(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 400))))
    # A datagram may be lost under load, and UDP clients retransmit (RFC 5531 section 3), so
    # the server gets three tries to show it still answers.
    for attempt in range(3):
        try:
            t.expect(c.call(E.NULL, timeout=2) == b"", "NULL after random datagrams")
            return
        except rpc.ReplyTimeout:
            if attempt == 2:
                raise


@testcase("ROB3", "robustness")
def random_calls(t):
    """Valid call headers with random argument bytes for every NFS procedure: each gets a
    reply (GARBAGE_ARGS or a status) (RFC 5531 9)."""
    rng = random.Random(4506)
    c = t.nfs_rpc(timeout=10)
    for proc in range(1, 22):
        for _ in range(5):
            args = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
            r = c.call_raw(proc, args)
            t.expect(r.reply_stat == rpc.MSG_ACCEPTED and r.accept_stat in
                     (rpc.SUCCESS, rpc.GARBAGE_ARGS, rpc.SYSTEM_ERR),
                     "%s: %s" % (E.PROC_NAMES[proc], r.describe()))
    _serves(t, "random arguments")


def _valid_args(t, d, f):
    """Valid argument bytes for every procedure, against a scratch directory and file."""
    return {
        E.GETATTR: E.args_fh(f), E.SETATTR: E.args_setattr(f, mode=0o644),
        E.LOOKUP: E.args_diropargs(d, "f"), E.ACCESS: E.args_access(f, 1),
        E.READLINK: E.args_fh(f), E.READ: E.args_read(f, 0, 10),
        E.WRITE: E.args_write(f, 0, b"abcdefgh"),
        E.CREATE: E.args_create(d, "n", E.GUARDED, mode=0o644),
        E.MKDIR: E.args_mkdir(d, "m", mode=0o755), E.SYMLINK: E.args_symlink(d, "s", "t"),
        E.MKNOD: E.args_mknod(d, "p", E.NF3FIFO, mode=0o644),
        E.REMOVE: E.args_diropargs(d, "zz"), E.RMDIR: E.args_diropargs(d, "zz"),
        E.RENAME: E.args_rename(d, "zz", d, "yy"), E.LINK: E.args_link(f, d, "l"),
        E.READDIR: E.args_readdir(d), E.READDIRPLUS: E.args_readdirplus(d),
        E.FSSTAT: E.args_fh(d), E.FSINFO: E.args_fh(d), E.PATHCONF: E.args_fh(d),
        E.COMMIT: E.args_commit(f),
    }


def _make_truncation_test(proc):
    name = E.PROC_NAMES[proc]

    def test(t):
        d = t.scratch()
        f = t.create_file(d, "f", b"data")
        args = _valid_args(t, d, f)[proc]
        c = t.nfs_rpc()
        cuts = sorted({0, 1, 3, 4, len(args) // 2, len(args) - 4, len(args) - 1} -
                      {len(args)})
        for cut in cuts:
            if cut < 0:
                continue
            r = c.call_raw(proc, args[:cut])
            t.expect(r.accept_stat == rpc.GARBAGE_ARGS,
                     "%s cut to %d of %d bytes: %s" % (name, cut, len(args), r.describe()))
        t.ok(t.nfs.getattr(f), "GETATTR after truncated %s" % name)
    test.__name__ = "truncated_%s" % name.lower()
    test.__doc__ = ("%s arguments cut short at several points are GARBAGE_ARGS, and the "
                    "connection keeps serving (RFC 5531 9, RFC 1813 3.3.%d)" % (name, proc))
    return test


for _proc in range(1, 22):
    testcase("TRUNC%d" % _proc, "robustness trunc")(_make_truncation_test(_proc))


@testcase("ROB4", "robustness readdir")
def huge_readdir_counts(t):
    """READDIR and READDIRPLUS with counts of 0xffffffff are clamped to something sane
    (RFC 1813 3.3.16-17: count is the client's limit, the server may send less)."""
    d = t.scratch()
    for i in range(20):
        t.ok(t.nfs.create(d, "e%d" % i), "CREATE")
    r = t.ok(t.nfs.readdir(d, 0, E.ZERO_VERF, 0xFFFFFFFF), "READDIR count 0xffffffff")
    t.expect(len(r.entries) >= 20, "entries %d" % len(r.entries))
    r = t.ok(t.nfs.readdirplus(d, 0, E.ZERO_VERF, 0xFFFFFFFF, 0xFFFFFFFF),
             "READDIRPLUS counts 0xffffffff")
    t.expect(len(r.entries) >= 20, "entries %d" % len(r.entries))


@testcase("ROB5", "robustness")
def huge_opaque_lengths(t):
    """Length prefixes of 0xffffffff (handle, name, data) are GARBAGE_ARGS, not an allocation
    (RFC 4506 4.10, RFC 5531 9)."""
    c = t.nfs_rpc()
    d = t.scratch()
    cases = {
        "handle": (E.GETATTR, b"\xff\xff\xff\xff" + b"\0" * 16),
        "name": (E.LOOKUP, E.args_fh(d) + b"\xff\xff\xff\xff" + b"abcd"),
        "write data": (E.WRITE, E.args_fh(d) + struct.pack(">QII", 0, 8, 2) +
                       b"\xff\xff\xff\xff" + b"x" * 8),
        "symlink path": (E.SYMLINK, E.args_diropargs(d, "s") + b"\0" * 24 +
                         b"\xff\xff\xff\xf0"),
    }
    for what, (proc, args) in cases.items():
        r = c.call_raw(proc, args)
        t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "%s length 0xffffffff: %s"
                 % (what, r.describe()))


@testcase("ROB6", "robustness")
def write_huge_count(t):
    """WRITE claiming count 0xffffffff with 8 bytes of data does not grow the file past them
    (RFC 1813 3.3.7)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    r = t.nfs_rpc().call_raw(E.WRITE, E.args_write(f, 0, b"12345678", count=0xFFFFFFFF))
    if r.success:
        res = E.decode_result(E.WRITE, r.body)
        if res.ok:
            t.expect(res.count <= 8, "WRITE claims %d bytes" % res.count)
    t.expect(t.getattr(f).size <= 8, "file size %d" % t.getattr(f).size)


def _no_effect_name(t, op, what):
    d = t.scratch()
    sub = t.mkdir(d, "a")
    res = op(d)
    t.expect(not res.ok, "%s succeeded" % what)
    listing = set(t.list_dir(sub)) - {b".", b".."}
    t.expect(not listing, "%s created %s inside a/" % (what, listing))
    top = set(t.list_dir(d)) - {b".", b"..", b"a"}
    t.expect(not top, "%s created %s" % (what, top))


@testcase("ROB7", "robustness names")
def create_slash_name(t):
    """CREATE "a/b" fails and creates nothing in a/ (RFC 1813 3.3.8: a name is one
    component)."""
    _no_effect_name(t, lambda d: t.try_call(E.CREATE, E.args_create(d, "a/b")), 'CREATE "a/b"')


@testcase("ROB8", "robustness names")
def create_nul_name(t):
    """CREATE "x\\0y" fails and creates nothing (RFC 1813 3.3.8)."""
    _no_effect_name(t, lambda d: t.try_call(E.CREATE, E.args_create(d, b"x\0y")),
                    'CREATE "x\\0y"')


@testcase("ROB9", "robustness names")
def mkdir_slash_name(t):
    """MKDIR "a/b" fails and creates nothing (RFC 1813 3.3.9)."""
    _no_effect_name(t, lambda d: t.try_call(E.MKDIR, E.args_mkdir(d, "a/b")), 'MKDIR "a/b"')


@testcase("ROB10", "robustness names")
def rename_slash_name(t):
    """RENAME to "a/b" fails and moves nothing (RFC 1813 3.3.14)."""
    d = t.scratch()
    sub = t.mkdir(d, "a")
    t.create_file(d, "f")
    t.expect(not t.try_call(E.RENAME, E.args_rename(d, "f", d, "a/b")).ok,
             'RENAME to "a/b" succeeded')
    t.expect(not set(t.list_dir(sub)) - {b".", b".."}, "something moved into a/")


@testcase("ROB11", "robustness names")
def link_symlink_slash_name(t):
    """LINK and SYMLINK named "a/b" fail (RFC 1813 3.3.10, 3.3.15)."""
    d = t.scratch()
    sub = t.mkdir(d, "a")
    f = t.create_file(d, "f")
    t.expect(not t.try_call(E.LINK, E.args_link(f, d, "a/b")).ok, 'LINK "a/b" succeeded')
    t.expect(not t.try_call(E.SYMLINK, E.args_symlink(d, "a/c", "x")).ok,
             'SYMLINK "a/c" succeeded')
    t.expect(not set(t.list_dir(sub)) - {b".", b".."}, "something created inside a/")


@testcase("ROB12", "robustness names")
def remove_slash_name(t):
    """REMOVE "a/f" does not remove a/f (RFC 1813 3.3.12)."""
    d = t.scratch()
    sub = t.mkdir(d, "a")
    t.create_file(sub, "f")
    t.expect(not t.try_call(E.REMOVE, E.args_diropargs(d, "a/f")).ok, 'REMOVE "a/f" succeeded')
    t.ok(t.nfs.lookup(sub, "f"), "a/f still exists")


@testcase("ROB13", "robustness symlink")
def symlink_outside_not_followed(t):
    """A symlink to /etc is never followed by the server: LOOKUP, READDIR, CREATE and READ
    through its handle fail (RFC 1813 3.3.3: the client resolves symlinks)."""
    d = t.scratch()
    t.ok(t.nfs.symlink(d, "esc", "/etc"), "SYMLINK esc -> /etc")
    fh = t.ok(t.nfs.lookup(d, "esc"), "LOOKUP esc").fh
    t.expect(t.getattr(fh).type == E.NF3LNK, "LOOKUP followed the link")
    t.expect(not t.nfs.lookup(fh, "passwd").ok, "LOOKUP esc/passwd reached /etc/passwd")
    t.expect(not t.nfs.readdir(fh).ok, "READDIR through the link listed /etc")
    t.expect(not t.nfs.create(fh, "conformance-escape").ok, "CREATE through the link")
    r = t.nfs.read(fh, 0, 100)
    t.expect(not r.ok or not r.data or r.data == b"/etc", "READ of the link returned data")


@testcase("ROB14", "robustness symlink")
def symlink_relative_escape(t):
    """A symlink to ../../../../.. is stored, but LOOKUP ".." chains from inside never leave the
    export (RFC 1813 3.3.3)."""
    d = t.scratch()
    t.ok(t.nfs.symlink(d, "up", "../../../../../.."), "SYMLINK")
    fh = t.ok(t.nfs.lookup(d, "up"), "LOOKUP up").fh
    t.expect(not t.nfs.lookup(fh, "..").ok, "LOOKUP through the symlink handle")
    root = t.getattr(t.root_fh)
    cur = d
    for _ in range(6):
        cur = t.ok(t.nfs.lookup(cur, ".."), "LOOKUP ..").fh
    a = t.getattr(cur)
    t.expect((a.fileid, a.fsid) == (root.fileid, root.fsid), '".." chain left the export')


@testcase("ROB15", "robustness symlink")
def link_to_symlink_target(t):
    """A hard link to a symlink links the symlink itself, not its target (RFC 1813 3.3.15)."""
    d = t.scratch()
    t.ok(t.nfs.symlink(d, "s", "/etc/passwd"), "SYMLINK")
    s = t.ok(t.nfs.lookup(d, "s"), "LOOKUP").fh
    res = t.nfs.link(s, d, "h")
    if res.ok:
        h = t.ok(t.nfs.lookup(d, "h"), "LOOKUP h").fh
        t.expect(t.getattr(h).type == E.NF3LNK, "hard link followed the symlink")


@testcase("ROB16", "robustness")
def trailing_bytes(t):
    """A call with 8 extra bytes after its arguments gets a reply and the connection goes on
    (RFC 5531 9)."""
    c = t.nfs_rpc()
    r = c.call_raw(E.GETATTR, E.args_fh(t.root_fh) + b"\0" * 8)
    t.expect(r.reply_stat == rpc.MSG_ACCEPTED, "got %s" % r.describe())
    t.expect(c.call(E.NULL) == b"", "NULL after trailing bytes")


@testcase("ROB17", "robustness")
def many_connections(t):
    """64 connections open at once are all served (RFC 5531 11)."""
    conns = [t.new_nfs(timeout=10) for _ in range(64)]
    for c in conns:
        c.null()


@testcase("ROB18", "robustness")
def setattr_huge_size(t):
    """SETATTR size 2^63 fails with FBIG, INVAL or NOSPC and leaves the file alone
    (RFC 1813 3.3.2)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"abc")
    res = t.nfs.setattr(f, size=1 << 63)
    t.check(res, (E.NFS3ERR_FBIG, E.NFS3ERR_INVAL, E.NFS3ERR_NOSPC), "SETATTR size 2^63")
    t.expect(t.getattr(f).size == 3, "size changed")


@testcase("ROB19", "robustness")
def read_huge_offset(t):
    """READ at offset 2^64-1 returns eof or INVAL, not an error of the server (RFC 1813 3.3.6)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"abc")
    res = t.nfs.read(f, (1 << 64) - 1, 100)
    if res.ok:
        t.expect(res.count == 0 and res.eof, "count %d eof %s" % (res.count, res.eof))
    else:
        t.check(res, (E.NFS3ERR_INVAL, E.NFS3ERR_FBIG), "READ at 2^64-1")


@testcase("ROB20", "robustness")
def write_huge_offset(t):
    """WRITE at offset 2^64-4 fails with FBIG or INVAL (RFC 1813 3.3.7)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    t.check(t.nfs.write(f, (1 << 64) - 4, b"abcdefgh"), (E.NFS3ERR_FBIG, E.NFS3ERR_INVAL),
            "WRITE at 2^64-4")
