"""READDIR and READDIRPLUS (RFC 1813 3.3.16, 3.3.17): paging, each entry exactly once, cookies,
reply sizes, TOOSMALL, and resumption after the directory changes."""

from .. import nfs3
from ..framework import testcase

E = nfs3


def _page(t, d, plus, cookie, verf, count):
    if plus:
        return t.nfs.readdirplus(d, cookie, verf, count, count)
    return t.nfs.readdir(d, cookie, verf, count)


def _walk(t, d, plus, count, limit=100000):
    """All entries (with their cookies) page by page; checks each page's size against count."""
    entries = []
    cookie, verf = 0, E.ZERO_VERF
    pages = 0
    while True:
        args = (E.args_readdirplus(d, cookie, verf, count, count) if plus
                else E.args_readdir(d, cookie, verf, count))
        proc = E.READDIRPLUS if plus else E.READDIR
        body = t.nfs.rpc.call(proc, args)
        res = t.ok(E.decode_result(proc, body), "READDIR%s page %d" % ("PLUS" if plus else "",
                                                                       pages))
        # count/maxcount bound the READ*3resok structure: everything after the status.
        t.expect(len(body) - 4 <= count, "reply of %d bytes for count %d"
                 % (len(body) - 4, count))
        entries.extend(res.entries)
        pages += 1
        if res.eof:
            return entries, pages
        t.expect(res.entries, "a page with no entries and no eof")
        t.expect(len(entries) <= limit, "listing does not end (%d entries)" % len(entries))
        cookie, verf = res.entries[-1].cookie, res.cookieverf


def _populate(t, d, n, stem="e"):
    names = set()
    for i in range(n):
        name = "%s%04d_%s" % (stem, i, "x" * (i % 23))
        t.ok(t.nfs.create(d, name, E.UNCHECKED, mode=0o644), "CREATE %s" % name)
        names.add(name.encode())
    return names


def _exactly_once(t, entries, names):
    got = [e.name for e in entries if e.name not in (b".", b"..")]
    dups = {n for n in got if got.count(n) > 1}
    t.expect(not dups, "listed more than once: %s" % sorted(dups)[:5])
    missing = names - set(got)
    t.expect(not missing, "missing: %s" % sorted(missing)[:5])
    extra = set(got) - names
    t.expect(not extra, "unexpected: %s" % sorted(extra)[:5])


@testcase("RDIR1", "nfs readdir")
def readdir_empty(t):
    """READDIR of an empty directory: at most "." and "..", eof set (RFC 1813 3.3.16)."""
    d = t.scratch()
    res = t.ok(t.nfs.readdir(d), "READDIR")
    names = {e.name for e in res.entries}
    t.expect(names <= {b".", b".."}, "entries %s" % names)
    t.expect(res.eof, "no eof")


@testcase("RDIR2", "nfs readdir")
def readdir_paging(t):
    """150 entries read with count 1024 over many pages: each exactly once, cookies unique,
    every reply within count (RFC 1813 3.3.16)."""
    d = t.scratch()
    names = _populate(t, d, 150)
    entries, pages = _walk(t, d, False, 1024)
    _exactly_once(t, entries, names)
    cookies = [e.cookie for e in entries]
    t.expect(len(set(cookies)) == len(cookies), "duplicate cookies")
    t.expect(pages > 3, "only %d pages: count ignored" % pages)


@testcase("RDIR3", "nfs readdir")
def readdir_toosmall(t):
    """READDIR with a count too small for one entry is TOOSMALL (RFC 1813 3.3.16)."""
    d = t.scratch()
    _populate(t, d, 3, "a_rather_long_name_to_be_sure_")
    t.check(t.nfs.readdir(d, 0, E.ZERO_VERF, 40), E.NFS3ERR_TOOSMALL, "READDIR count 40")


@testcase("RDIR4", "nfs readdir")
def readdir_resume_after_change(t):
    """Cookies resume after entries are added and removed: entries present throughout are
    listed exactly once and BAD_COOKIE is not needed (RFC 1813 3.3.16 cookieverf; BAD_COOKIE
    warns)."""
    d = t.scratch()
    names = _populate(t, d, 60)
    res = t.ok(t.nfs.readdir(d, 0, E.ZERO_VERF, 1024), "READDIR first page")
    t.expect(not res.eof, "first page holds everything")
    seen = [e.name for e in res.entries]
    removed = sorted(n for n in names if n not in seen)[-5:]
    for n in removed:
        t.ok(t.nfs.remove(d, n), "REMOVE")
    added = _populate(t, d, 10, "new")
    cookie, verf = res.entries[-1].cookie, res.cookieverf
    while True:
        r = t.nfs.readdir(d, cookie, verf, 1024)
        if r.status == E.NFS3ERR_BAD_COOKIE:
            t.warn("BAD_COOKIE after the directory changed")
        t.ok(r, "READDIR after changes")
        seen.extend(e.name for e in r.entries)
        if r.eof:
            break
        cookie, verf = r.entries[-1].cookie, r.cookieverf
    stable = names - set(removed)
    for n in stable:
        t.expect(seen.count(n) == 1, "%r listed %d times" % (n, seen.count(n)))
    for n in added:
        t.expect(seen.count(n) <= 1, "new entry %r listed twice" % n)


@testcase("RDIR5", "nfs readdir")
def readdir_notdir(t):
    """READDIR of a file is NOTDIR (RFC 1813 3.3.16)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    t.check(t.nfs.readdir(f), E.NFS3ERR_NOTDIR, "READDIR of a file")


@testcase("RDIR6", "nfs readdir")
def readdir_fileids(t):
    """READDIR fileids equal the entries' GETATTR fileids (RFC 1813 3.3.16 fileid)."""
    d = t.scratch()
    _populate(t, d, 5)
    t.mkdir(d, "sub")
    for e in t.ok(t.nfs.readdir(d, 0, E.ZERO_VERF, 8192), "READDIR").entries:
        if e.name in (b".", b".."):
            continue
        fid = t.getattr(t.ok(t.nfs.lookup(d, e.name), "LOOKUP").fh).fileid
        t.expect(e.fileid == fid, "%r: READDIR fileid %d, GETATTR %d" % (e.name, e.fileid, fid))


@testcase("RDIR7", "nfs readdir")
def readdir_hard_link_cookies(t):
    """Hard links share a fileid but get distinct cookies and are each listed once
    (RFC 1813 3.3.16: cookies identify entries, not files)."""
    d = t.scratch()
    f = t.create_file(d, "l0")
    names = {b"l0"}
    for i in range(1, 20):
        t.ok(t.nfs.link(f, d, "l%d" % i), "LINK")
        names.add(b"l%d" % i)
    entries, _ = _walk(t, d, False, 512)
    _exactly_once(t, entries, names)
    cookies = [e.cookie for e in entries]
    t.expect(len(set(cookies)) == len(cookies), "cookies repeat among hard links")


@testcase("RDIR8", "nfs readdir robustness")
def readdir_bogus_cookie(t):
    """A cookie the server never gave is BAD_COOKIE, or ends the listing (RFC 1813 3.3.16)."""
    d = t.scratch()
    _populate(t, d, 3)
    res = t.nfs.readdir(d, 0x7FFFFFFFFFFF1234, E.ZERO_VERF, 4096)
    if res.ok:
        t.expect(res.eof, "listing continues from a bogus cookie")
    else:
        t.check(res, (E.NFS3ERR_BAD_COOKIE, E.NFS3ERR_INVAL), "bogus cookie")


@testcase("RDIR9", "nfs readdir")
def readdir_large(t):
    """1000 entries with the server's preferred size (dtpref): each exactly once
    (RFC 1813 3.3.16, 3.3.19 dtpref)."""
    d = t.scratch()
    names = _populate(t, d, 1000)
    entries, _ = _walk(t, d, False, max(t.env.fsinfo.dtpref, 1024), 5000)
    _exactly_once(t, entries, names)


@testcase("RDIR10", "nfs readdir")
def readdir_verifier_echo(t):
    """A cookieverf the server returned is accepted on the next page (RFC 1813 3.3.16)."""
    d = t.scratch()
    _populate(t, d, 40)
    r1 = t.ok(t.nfs.readdir(d, 0, E.ZERO_VERF, 600), "READDIR")
    t.expect(not r1.eof, "one page")
    t.ok(t.nfs.readdir(d, r1.entries[-1].cookie, r1.cookieverf, 600), "READDIR with cookieverf")


@testcase("RDIR11", "nfs readdir")
def readdir_names_bytes(t):
    """Names with spaces, UTF-8 and punctuation come back byte-exact (RFC 1813 2.5 filename3)."""
    d = t.scratch()
    names = {"with space", "\u00e9\u00e8\u4e2d\u6587", "a:b;c", "-dash", "...dots", "#hash"}
    for n in names:
        t.ok(t.nfs.create(d, n), "CREATE %r" % n)
    got = set(t.list_dir(d)) - {b".", b".."}
    t.expect(got == {n.encode() for n in names}, "names %s" % got)


@testcase("RDP1", "nfs readdirplus")
def readdirplus_attrs_handles(t):
    """READDIRPLUS entries carry attributes and handles that match GETATTR/LOOKUP
    (RFC 1813 3.3.17)."""
    d = t.scratch()
    _populate(t, d, 10)
    t.mkdir(d, "sub")
    res = t.ok(t.nfs.readdirplus(d, 0, E.ZERO_VERF, 8192, 65536), "READDIRPLUS")
    t.expect(res.eof, "no eof")
    for e in res.entries:
        if e.name in (b".", b".."):
            continue
        t.expect(e.attr is not None and e.fh is not None, "%r without attributes or handle"
                 % e.name)
        a = t.getattr(e.fh)
        t.expect(a.fileid == e.fileid == e.attr.fileid, "%r fileids differ" % e.name)
        want = E.NF3DIR if e.name == b"sub" else E.NF3REG
        t.expect(e.attr.type == want, "%r type %d" % (e.name, e.attr.type))


@testcase("RDP2", "nfs readdirplus")
def readdirplus_paging(t):
    """150 entries with maxcount 2048: each exactly once, replies within maxcount
    (RFC 1813 3.3.17)."""
    d = t.scratch()
    names = _populate(t, d, 150)
    entries, pages = _walk(t, d, True, 2048)
    _exactly_once(t, entries, names)
    t.expect(pages > 3, "only %d pages: maxcount ignored" % pages)


@testcase("RDP3", "nfs readdirplus")
def readdirplus_toosmall(t):
    """READDIRPLUS with a maxcount too small for one entry is TOOSMALL (RFC 1813 3.3.17)."""
    d = t.scratch()
    _populate(t, d, 3, "a_rather_long_name_to_be_sure_")
    t.check(t.nfs.readdirplus(d, 0, E.ZERO_VERF, 40, 60), E.NFS3ERR_TOOSMALL,
            "READDIRPLUS maxcount 60")


@testcase("RDP4", "nfs readdirplus")
def readdirplus_notdir(t):
    """READDIRPLUS of a file is NOTDIR (RFC 1813 3.3.17)."""
    d = t.scratch()
    f = t.create_file(d, "f")
    t.check(t.nfs.readdirplus(f), E.NFS3ERR_NOTDIR, "READDIRPLUS of a file")


@testcase("RDP5", "nfs readdirplus")
def readdirplus_resume_after_change(t):
    """READDIRPLUS cookies resume after the directory changes, stable entries exactly once
    (RFC 1813 3.3.17; BAD_COOKIE warns)."""
    d = t.scratch()
    names = _populate(t, d, 60)
    res = t.ok(t.nfs.readdirplus(d, 0, E.ZERO_VERF, 1024, 2048), "READDIRPLUS first page")
    t.expect(not res.eof, "first page holds everything")
    seen = [e.name for e in res.entries]
    _populate(t, d, 10, "new")
    cookie, verf = res.entries[-1].cookie, res.cookieverf
    while True:
        r = t.nfs.readdirplus(d, cookie, verf, 1024, 2048)
        if r.status == E.NFS3ERR_BAD_COOKIE:
            t.warn("BAD_COOKIE after the directory changed")
        t.ok(r, "READDIRPLUS after changes")
        seen.extend(e.name for e in r.entries)
        if r.eof:
            break
        cookie, verf = r.entries[-1].cookie, r.cookieverf
    for n in names:
        t.expect(seen.count(n) == 1, "%r listed %d times" % (n, seen.count(n)))


@testcase("RDP6", "nfs readdirplus")
def readdirplus_large(t):
    """1000 entries by READDIRPLUS: each exactly once, same set as READDIR (RFC 1813 3.3.17)."""
    d = t.scratch()
    names = _populate(t, d, 1000)
    entries, _ = _walk(t, d, True, 32768, 5000)
    _exactly_once(t, entries, names)
    plain, _ = _walk(t, d, False, 8192, 5000)
    t.expect({e.name for e in plain} == {e.name for e in entries}, "READDIR and READDIRPLUS "
             "list different names")


@testcase("RDP7", "nfs readdirplus")
def readdirplus_dots(t):
    """"." and ".." in READDIRPLUS, when listed, have the directory's and the parent's fileids
    (RFC 1813 3.3.17)."""
    d = t.scratch()
    sub = t.mkdir(d, "sub")
    res = t.ok(t.nfs.readdirplus(sub, 0, E.ZERO_VERF, 8192, 65536), "READDIRPLUS")
    by = {e.name: e for e in res.entries}
    if b"." in by:
        t.expect(by[b"."].fileid == t.getattr(sub).fileid, '"." fileid')
    if b".." in by:
        t.expect(by[b".."].fileid == t.getattr(d).fileid, '".." fileid')
