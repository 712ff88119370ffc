"""READ, WRITE, COMMIT and READLINK (RFC 1813 3.3.5-3.3.7, 3.3.21): data, counts, EOF, stability
and write verifiers."""

import os

from .. import nfs3, rpc
from ..framework import testcase

E = nfs3


@testcase("RD1", "nfs read")
def read_back(t):
    """READ returns the bytes written, with count equal to the data length (RFC 1813 3.3.6)."""
    d = t.scratch()
    data = os.urandom(5000)
    f = t.create_file(d, "f", data)
    r = t.ok(t.nfs.read(f, 0, 5000), "READ")
    t.expect(r.data == data, "data differs")
    t.expect(r.count == len(r.data), "count %d, %d bytes of data" % (r.count, len(r.data)))


@testcase("RD2", "nfs read")
def read_eof_flag(t):
    """READ up to the end sets eof; READ at and beyond the end returns 0 bytes with eof
    (RFC 1813 3.3.6)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"x" * 100)
    r = t.ok(t.nfs.read(f, 50, 100), "READ across EOF")
    t.expect(r.count == 50 and r.eof, "count %d eof %s" % (r.count, r.eof))
    r = t.ok(t.nfs.read(f, 100, 10), "READ at EOF")
    t.expect(r.count == 0 and r.eof, "at EOF: count %d eof %s" % (r.count, r.eof))
    r = t.ok(t.nfs.read(f, 1 << 40, 10), "READ far beyond EOF")
    t.expect(r.count == 0 and r.eof, "beyond EOF: count %d eof %s" % (r.count, r.eof))


@testcase("RD3", "nfs read")
def read_not_eof(t):
    """A READ that ends before the end of the file has eof false (RFC 1813 3.3.6)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"x" * 100)
    r = t.ok(t.nfs.read(f, 0, 10), "READ")
    t.expect(r.count == 10 and not r.eof, "count %d eof %s" % (r.count, r.eof))


@testcase("RD4", "nfs read robustness")
def read_huge_count(t):
    """READ with count 0xffffffff is clamped, not refused: at most rtmax bytes (RFC 1813 3.3.6,
    3.3.19 rtmax)."""
    d = t.scratch()
    f = t.create_file(d, "f", os.urandom(3000))
    r = t.ok(t.nfs.read(f, 0, 0xFFFFFFFF), "READ count 0xffffffff")
    t.expect(len(r.data) == 3000 and r.eof, "got %d bytes" % len(r.data))


@testcase("RD5", "nfs read")
def read_dir(t):
    """READ of a directory fails (ISDIR or INVAL) (RFC 1813 3.3.6)."""
    d = t.scratch()
    t.check(t.nfs.read(d, 0, 100), (E.NFS3ERR_ISDIR, E.NFS3ERR_INVAL), "READ of a directory")


@testcase("RD6", "nfs read")
def read_post_op_attr(t):
    """READ's post-op attributes give the file's size (RFC 1813 3.3.6)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"y" * 777)
    r = t.ok(t.nfs.read(f, 0, 1), "READ")
    t.expect(r.attr is not None and r.attr.size == 777, "post-op attributes")


@testcase("RD7", "nfs read")
def read_zero_count(t):
    """READ of 0 bytes succeeds with no data (RFC 1813 3.3.6)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"abc")
    r = t.ok(t.nfs.read(f, 0, 0), "READ count 0")
    t.expect(r.count == 0 and r.data == b"", "count %d" % r.count)


@testcase("RD8", "nfs read udp")
def read_udp_large(t):
    """READ over UDP of more than a datagram holds is answered with a shorter count
    (RFC 1813 3.3.6: the server may return less)."""
    d = t.scratch()
    data = os.urandom(100000)
    f = t.create_file(d, "f", data)
    c = t.new_nfs("udp")
    r = t.ok(c.read(f, 0, 100000, timeout=5), "READ 100000 bytes over UDP")
    t.expect(0 < r.count < 65536 and r.data == data[:r.count], "count %d" % r.count)


@testcase("WRT1", "nfs write")
def write_file_sync(t):
    """FILE_SYNC WRITE: count equals the data and committed is FILE_SYNC (RFC 1813 3.3.7)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    w = t.ok(t.nfs.write(f, 0, b"hello", E.FILE_SYNC), "WRITE")
    t.expect(w.count == 5, "count %d" % w.count)
    t.expect(w.committed == E.FILE_SYNC, "committed %d for a FILE_SYNC write" % w.committed)
    t.expect(t.read_all(f) == b"hello", "data")


@testcase("WRT2", "nfs write")
def write_data_sync(t):
    """DATA_SYNC WRITE is committed as DATA_SYNC or FILE_SYNC (RFC 1813 3.3.7 committed)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    w = t.ok(t.nfs.write(f, 0, b"hello", E.DATA_SYNC), "WRITE")
    t.expect(w.committed in (E.DATA_SYNC, E.FILE_SYNC), "committed %d" % w.committed)


@testcase("WRT3", "nfs write")
def write_unstable(t):
    """UNSTABLE WRITE: any committed level, data readable at once (RFC 1813 3.3.7)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    w = t.ok(t.nfs.write(f, 0, b"unstable", E.UNSTABLE), "WRITE")
    t.expect(w.committed in (0, 1, 2), "committed %d" % w.committed)
    t.expect(t.read_all(f) == b"unstable", "data not readable after UNSTABLE WRITE")


@testcase("WRT4", "nfs write semantics")
def write_hole(t):
    """A WRITE past EOF leaves a hole that reads as zeros (RFC 1813 3.3.7)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"ab")
    t.ok(t.nfs.write(f, 10000, b"cd"), "WRITE past EOF")
    t.expect(t.getattr(f).size == 10002, "size")
    t.expect(t.read_all(f) == b"ab" + b"\0" * 9998 + b"cd", "hole is not zeros")


@testcase("WRT5", "nfs write robustness")
def write_count_mismatch(t):
    """WRITE whose count exceeds its data never writes more than the data (RFC 1813 3.3.7:
    count is the data's size)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    r = t.nfs_rpc().call_raw(E.WRITE, E.args_write(f, 0, b"12345678", E.FILE_SYNC, count=100))
    if r.success:
        res = E.decode_result(E.WRITE, r.body)
        if res.ok:
            t.expect(res.count <= 8, "WRITE claims %d bytes from 8" % res.count)
        else:
            t.check(res, E.NFS3ERR_INVAL, "count > data")
    else:
        t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "got %s" % r.describe())
    t.expect(t.getattr(f).size <= 8, "file grew past the data")


@testcase("WRT6", "nfs write")
def write_dir(t):
    """WRITE to a directory fails (ISDIR or INVAL) (RFC 1813 3.3.7)."""
    d = t.scratch()
    t.check(t.nfs.write(d, 0, b"x"), (E.NFS3ERR_ISDIR, E.NFS3ERR_INVAL), "WRITE to a dir")


@testcase("WRT7", "nfs write")
def write_wcc(t):
    """WRITE's wcc_data: pre-op size is the old size, post-op the new one (RFC 1813 3.3.7)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"1234")
    w = t.ok(t.nfs.write(f, 4, b"5678"), "WRITE")
    t.expect(w.wcc.after is not None and w.wcc.after.size == 8, "post-op size")
    if w.wcc.before is not None:
        t.expect(w.wcc.before.size == 4, "pre-op size %d" % w.wcc.before.size)


@testcase("WRT8", "nfs write semantics")
def write_mtime_moves(t):
    """WRITE moves mtime forward (RFC 1813 3.3.7, 2.6 mtime)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    t.ok(t.nfs.setattr(f, mtime=(1000000, 0)), "SETATTR old mtime")
    t.ok(t.nfs.write(f, 0, b"x"), "WRITE")
    t.expect(t.getattr(f).mtime[0] > 1000000, "mtime did not move on WRITE")


@testcase("WRT9", "nfs write")
def write_verifier_stable(t):
    """Within one server instance the write verifier stays the same (RFC 1813 3.3.7 verf)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    v = {t.ok(t.nfs.write(f, i, b"v", E.UNSTABLE), "WRITE").verf for i in range(5)}
    g = t.create_file(d, "g")
    v.add(t.ok(t.nfs.write(g, 0, b"v", E.UNSTABLE), "WRITE").verf)
    t.expect(len(v) == 1, "verifiers %s" % v)


@testcase("WRT10", "nfs write robustness")
def write_bad_stable_how(t):
    """stable_how 7 is GARBAGE_ARGS or INVAL (RFC 1813 3.3.7, RFC 4506 4.3 enums)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    r = t.nfs_rpc().call_raw(E.WRITE, E.args_write(f, 0, b"x", stable=7))
    if r.success:
        t.check(E.decode_result(E.WRITE, r.body), E.NFS3ERR_INVAL, "stable_how 7")
    else:
        t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "got %s" % r.describe())


@testcase("WRT11", "nfs write")
def write_zero(t):
    """A zero-length WRITE succeeds and changes nothing (RFC 1813 3.3.7)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"abc")
    w = t.ok(t.nfs.write(f, 0, b""), "WRITE of 0 bytes")
    t.expect(w.count == 0, "count %d" % w.count)
    t.expect(t.read_all(f) == b"abc", "data changed")


@testcase("WRT12", "nfs write")
def write_beyond_maxfilesize(t):
    """WRITE ending beyond maxfilesize fails with FBIG (or INVAL) (RFC 1813 3.3.7, 3.3.19)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    mfs = t.env.fsinfo.maxfilesize
    if mfs >= (1 << 64) - 2:
        t.skip("maxfilesize is unbounded")
    t.check(t.nfs.write(f, mfs, b"x"), (E.NFS3ERR_FBIG, E.NFS3ERR_INVAL),
            "WRITE at maxfilesize")


@testcase("WRT13", "nfs write")
def write_over_wtmax(t):
    """A WRITE a little over wtmax writes at most what it got, or fails cleanly
    (RFC 1813 3.3.7: the server may write less than count)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    n = t.env.fsinfo.wtmax + 4096
    data = os.urandom(n)
    r = t.nfs_rpc().call_raw(E.WRITE, E.args_write(f, 0, data))
    if not r.success:
        t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "got %s" % r.describe())
        t.warn("GARBAGE_ARGS for a WRITE of wtmax + 4 KiB")
    res = E.decode_result(E.WRITE, r.body)
    if res.ok:
        t.expect(0 < res.count <= n, "count %d" % res.count)
        t.expect(t.read_all(f) == data[:res.count], "data differs")
    else:
        t.check(res, (E.NFS3ERR_INVAL, E.NFS3ERR_FBIG, E.NFS3ERR_IO), "WRITE over wtmax")


@testcase("CMT1", "nfs commit write")
def commit_verifier(t):
    """COMMIT returns the same verifier as the UNSTABLE WRITEs before it (RFC 1813 3.3.21)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    w = t.ok(t.nfs.write(f, 0, b"x" * 1000, E.UNSTABLE), "WRITE")
    c = t.ok(t.nfs.commit(f, 0, 0), "COMMIT")
    t.expect(c.verf == w.verf, "COMMIT verifier %s != WRITE verifier %s"
             % (c.verf.hex(), w.verf.hex()))
    t.expect(t.read_all(f) == b"x" * 1000, "data after COMMIT")


@testcase("CMT2", "nfs commit write")
def commit_range(t):
    """COMMIT of a range, and of a range past EOF, succeed (RFC 1813 3.3.21)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    t.ok(t.nfs.write(f, 0, b"y" * 5000, E.UNSTABLE), "WRITE")
    c1 = t.ok(t.nfs.commit(f, 100, 200), "COMMIT 100+200")
    c2 = t.ok(t.nfs.commit(f, 1 << 30, 4096), "COMMIT past EOF")
    t.expect(c1.verf == c2.verf, "verifier changed between COMMITs")
    t.expect(c1.wcc.after is not None, "COMMIT without post-op attributes")


@testcase("CMT3", "nfs commit")
def commit_dir(t):
    """COMMIT of a directory fails or does nothing (RFC 1813 3.3.21; knfsd answers ISDIR)."""
    d = t.scratch()
    res = t.nfs.commit(d)
    if res.ok:
        t.warn("COMMIT on a directory succeeded")
    t.check(res, (E.NFS3ERR_ISDIR, E.NFS3ERR_INVAL, E.NFS3ERR_IO), "COMMIT on a directory")


@testcase("CMT4", "nfs commit robustness")
def commit_overflow(t):
    """COMMIT with offset + count past 2^64 is INVAL or succeeds, never crashes the server
    (RFC 1813 3.3.21)."""
    d = t.scratch()
    f = t.create_file(d, "f", b"z")
    t.check(t.nfs.commit(f, (1 << 64) - 10, 100), (E.NFS3_OK, E.NFS3ERR_INVAL), "COMMIT")
    t.ok(t.nfs.getattr(f), "GETATTR after")


@testcase("RDLK1", "nfs readlink")
def readlink_target(t):
    """READLINK returns the target byte for byte, and the link's size is its length
    (RFC 1813 3.3.5, 3.3.10)."""
    d = t.scratch()
    target = "../some where/\u00e9t\u00e9/x" * 3
    res = t.ok(t.nfs.symlink(d, "l", target), "SYMLINK")
    fh = res.fh or t.ok(t.nfs.lookup(d, "l"), "LOOKUP").fh
    r = t.ok(t.nfs.readlink(fh), "READLINK")
    t.expect(r.data == target.encode(), "target %r" % r.data)
    t.expect(t.getattr(fh).size == len(target.encode()), "size is not the target length")


@testcase("RDLK2", "nfs readlink")
def readlink_file(t):
    """READLINK of a regular file is INVAL (RFC 1813 3.3.5)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    t.check(t.nfs.readlink(f), (E.NFS3ERR_INVAL, E.NFS3ERR_BADTYPE), "READLINK of a file")


@testcase("RDLK3", "nfs readlink")
def readlink_long(t):
    """A 1000-byte symlink target round-trips (RFC 1813 3.3.10, nfspath3)."""
    d = t.scratch()
    target = "/".join(["seg%03d" % i for i in range(142)])[:1000]
    res = t.ok(t.nfs.symlink(d, "l", target), "SYMLINK")
    fh = res.fh or t.ok(t.nfs.lookup(d, "l"), "LOOKUP").fh
    t.expect(t.ok(t.nfs.readlink(fh), "READLINK").data == target.encode(), "target differs")
