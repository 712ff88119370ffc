"""MOUNT v1 and v3 (RFC 1813 appendix I; RFC 1094 appendix A for v1): every procedure, paths
that are not exported, and client restrictions."""

from .. import mount, nfs3, rpc
from ..framework import testcase

MOUNT_DENIED = (mount.MNT3ERR_NOENT, mount.MNT3ERR_ACCES, mount.MNT3ERR_PERM,
                mount.MNT3ERR_NOTDIR, mount.MNT3ERR_INVAL)


def _mc(t, vers=3, kind="tcp", **kw):
    return t.rpc(mount.PROGRAM, vers, kind, t.env.mount_port, cred=t.env.cred(), **kw)


def _mnt(t, path, vers=3, kind="tcp", **kw):
    c = _mc(t, vers, kind, **kw)
    return mount.decode_mnt3(c.call(mount.MNT, mount.args_dirpath(path)))


@testcase("MNT1", "mount")
def mount_null(t):
    """MOUNT v3 and v1 NULL over TCP and UDP (RFC 1813 5.2.0)."""
    for vers in (3, 1):
        for kind in ("tcp", "udp"):
            t.expect(_mc(t, vers, kind).call(mount.NULL) == b"", "v%d %s NULL" % (vers, kind))


@testcase("MNT2", "mount")
def mount_export(t):
    """MNT of the export returns a handle of at most 64 bytes and AUTH_SYS among the flavors;
    the handle is the export's root directory (RFC 1813 5.2.1)."""
    r = _mnt(t, t.env.export)
    t.expect(r.status == mount.MNT3_OK, "MNT: %s" % mount.status_name(r.status))
    t.expect(0 < len(r.fh) <= 64, "handle of %d bytes" % len(r.fh))
    t.expect(rpc.AUTH_SYS_FLAVOR in r.flavors or rpc.AUTH_NONE_FLAVOR in r.flavors,
             "flavors %s" % r.flavors)
    a = t.ok(t.nfs.getattr(r.fh), "GETATTR of the mounted handle").attr
    t.expect(a.type == nfs3.NF3DIR, "mounted handle is type %d" % a.type)
    t.expect(a.fileid == t.getattr(t.root_fh).fileid, "MNT handles of one path differ in fileid")


@testcase("MNT3", "mount udp")
def mount_udp(t):
    """MNT over UDP works like over TCP (RFC 1813 5.2.1)."""
    r = _mnt(t, t.env.export, kind="udp")
    t.expect(r.status == mount.MNT3_OK, "MNT over UDP: %s" % mount.status_name(r.status))


@testcase("MNT4", "mount")
def mount_not_exported(t):
    """MNT of a path that is not exported fails with an error status (RFC 1813 5.2.1)."""
    for path in ("/conformance-not-exported-%s" % t.env.run_id, "/"):
        if path == t.env.export:
            continue
        r = _mnt(t, path)
        t.expect(r.status in MOUNT_DENIED, "MNT %s: %s" % (path, mount.status_name(r.status)))


@testcase("MNT5", "mount")
def mount_missing_subdir(t):
    """MNT of a missing path inside the export fails (NOENT or ACCES) (RFC 1813 5.2.1)."""
    r = _mnt(t, t.env.export.rstrip("/") + "/no-such-dir-%s" % t.env.run_id)
    t.expect(r.status in MOUNT_DENIED, "got %s" % mount.status_name(r.status))


@testcase("MNT6", "mount")
def mount_dotdot_escape(t):
    """MNT of EXPORT/.. (a path leaving the export) is refused (RFC 1813 5.2.1; the parent is
    not exported)."""
    r = _mnt(t, t.env.export.rstrip("/") + "/..")
    if r.status == mount.MNT3_OK:
        a = t.getattr(r.fh)
        t.expect(a.fileid == t.getattr(t.root_fh).fileid,
                 "MNT of EXPORT/.. returned a handle outside the export")
    else:
        t.expect(r.status in MOUNT_DENIED, "got %s" % mount.status_name(r.status))


@testcase("MNT7", "mount")
def mount_subdirectory(t):
    """MNT of a subdirectory of the export gives that directory (RFC 1813 5.2.1; SHOULD-level:
    knfsd and rnfsd allow it, some servers do not)."""
    d = t.scratch()
    fileid = t.getattr(d).fileid
    name = "conf_mnt7_%s" % t.env.run_id
    r = _mnt(t, t.env.export.rstrip("/") + "/" + name)
    if r.status != mount.MNT3_OK:
        t.warn("MNT of a subdirectory: %s" % mount.status_name(r.status))
    t.expect(t.getattr(r.fh).fileid == fileid, "handle is not the subdirectory")


@testcase("MNT8", "mount")
def mount_file_not_dir(t):
    """MNT of a regular file fails with NOTDIR (or another error) (RFC 1813 5.2.1
    MNT3ERR_NOTDIR)."""
    d = t.scratch()
    t.create_file(d, "file")
    r = _mnt(t, "%s/conf_mnt8_%s/file" % (t.env.export.rstrip("/"), t.env.run_id))
    t.expect(r.status != mount.MNT3_OK, "MNT of a file succeeded")
    if r.status != mount.MNT3ERR_NOTDIR:
        t.warn("MNT of a file: %s (NOTDIR expected)" % mount.status_name(r.status))


@testcase("MNT9", "mount")
def mount_path_too_long(t):
    """A dirpath over MNTPATHLEN (1024) is GARBAGE_ARGS or NAMETOOLONG (RFC 1813 5.1.2)."""
    c = _mc(t)
    r = c.call_raw(mount.MNT, mount.args_dirpath("/" + "a" * 1100))
    if r.success:
        res = mount.decode_mnt3(r.body)
        t.expect(res.status in (mount.MNT3ERR_NAMETOOLONG,) + MOUNT_DENIED,
                 "got %s" % mount.status_name(res.status))
    else:
        t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "got %s" % r.describe())


@testcase("MNT10", "mount")
def mount_relative_and_empty(t):
    """Relative and empty paths are refused (RFC 1813 5.1.1: dirpath is a server path name)."""
    for path in ("", t.env.export.lstrip("/"), "."):
        c = _mc(t)
        r = c.call_raw(mount.MNT, mount.args_dirpath(path))
        if r.success:
            res = mount.decode_mnt3(r.body)
            t.expect(res.status != mount.MNT3_OK, "MNT %r succeeded" % path)
        else:
            t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "MNT %r: %s" % (path, r.describe()))


@testcase("MNT11", "mount")
def mount_dump(t):
    """DUMP decodes as a mount list; after MNT it lists the export (RFC 1813 5.2.2, SHOULD: the
    list is advisory)."""
    _mnt(t, t.env.export)
    entries = mount.decode_dump(_mc(t).call(mount.DUMP))
    if not any(e.directory.rstrip("/") == t.env.export.rstrip("/") for e in entries):
        t.warn("DUMP does not list the export after MNT (%d entries)" % len(entries))


@testcase("MNT12", "mount")
def mount_umnt(t):
    """UMNT returns void and the server keeps serving the handle (RFC 1813 5.2.3: UMNT only
    updates the mount list; handles stay valid)."""
    r = _mnt(t, t.env.export)
    c = _mc(t)
    t.expect(c.call(mount.UMNT, mount.args_dirpath(t.env.export)) == b"", "UMNT result not void")
    t.ok(t.nfs.getattr(r.fh), "GETATTR after UMNT")
    t.expect(c.call(mount.UMNT, mount.args_dirpath("/never-mounted")) == b"",
             "UMNT of a path never mounted is not void")
    _mnt(t, t.env.export)


@testcase("MNT13", "mount")
def mount_umntall(t):
    """UMNTALL returns void (RFC 1813 5.2.4)."""
    t.expect(_mc(t).call(mount.UMNTALL) == b"", "UMNTALL result not void")
    r = _mnt(t, t.env.export)
    t.expect(r.status == mount.MNT3_OK, "MNT after UMNTALL")


@testcase("MNT14", "mount")
def mount_export_list(t):
    """EXPORT lists the export with its groups (RFC 1813 5.2.5)."""
    for vers in (3, 1):
        exports = mount.decode_exports(_mc(t, vers).call(mount.EXPORT))
        t.expect(any(e.dir.rstrip("/") == t.env.export.rstrip("/") for e in exports),
                 "v%d EXPORT lacks %s: %s" % (vers, t.env.export, [e.dir for e in exports]))


@testcase("MNT15", "mount")
def mount_v1_mnt(t):
    """MOUNT v1 MNT answers an fhstatus: 0 with a 32-byte handle, or an errno (RFC 1094 A.1,
    A.2.1); NFSv3 handles may not fit in 32 bytes."""
    c = _mc(t, 1)
    r = mount.decode_mnt1(c.call(mount.MNT, mount.args_dirpath(t.env.export)))
    if r.status == 0:
        t.expect(len(r.fh) == 32, "v1 handle of %d bytes" % len(r.fh))
    r = mount.decode_mnt1(c.call(mount.MNT, mount.args_dirpath("/not-exported-%s"
                                                                % t.env.run_id)))
    t.expect(r.status != 0, "v1 MNT of a path that is not exported succeeded")


@testcase("MNT16", "mount")
def mount_v1_others(t):
    """MOUNT v1 DUMP, UMNT and UMNTALL answer (RFC 1094 A.2.2-A.2.4)."""
    c = _mc(t, 1)
    mount.decode_dump(c.call(mount.DUMP))
    t.expect(c.call(mount.UMNT, mount.args_dirpath("/never-mounted")) == b"", "v1 UMNT")
    t.expect(c.call(mount.UMNTALL) == b"", "v1 UMNTALL")


@testcase("MNT17", "mount")
def mount_garbage(t):
    """MNT with undecodable arguments gets GARBAGE_ARGS (RFC 5531 9)."""
    r = _mc(t).call_raw(mount.MNT, b"\0\0\1\0abc")
    t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "got %s" % r.describe())


@testcase("MNT18", "mount exports")
def mount_restricted(t):
    """MNT of an export whose client list excludes us is refused with ACCES (RFC 1813 5.2.1
    MNT3ERR_ACCES; exports(5) client lists). Needs --restricted-export."""
    path = t.env.opts.restricted_export
    if not path:
        t.skip("no --restricted-export given")
    r = _mnt(t, path)
    t.expect(r.status in (mount.MNT3ERR_ACCES, mount.MNT3ERR_PERM),
             "got %s, expected MNT3ERR_ACCES" % mount.status_name(r.status))


@testcase("MNT19", "mount exports")
def mount_secure_unprivileged(t):
    """MNT of a `secure` export from a source port >= 1024 is refused (exports(5) `secure`,
    RFC 1813 5.2.1 MNT3ERR_ACCES/PERM). Needs --secure-export."""
    path = t.env.opts.secure_export
    if not path:
        t.skip("no --secure-export given")
    r = _mnt(t, path)
    if r.status == mount.MNT3_OK:
        t.warn("MNT from an unprivileged port succeeded (the server may check the port on NFS "
               "calls only; MNT20 checks those)")
    t.expect(r.status in (mount.MNT3ERR_ACCES, mount.MNT3ERR_PERM),
             "got %s" % mount.status_name(r.status))


@testcase("MNT20", "mount exports")
def mount_secure_privileged(t):
    """MNT of a `secure` export from a reserved port succeeds, and NFS calls from an
    unprivileged port on its handle are refused (exports(5) `secure`). Needs --secure-export
    and root."""
    path = t.env.opts.secure_export
    if not path:
        t.skip("no --secure-export given")
    port = rpc.privileged_source_port()
    if port is None:
        t.skip("cannot bind a reserved port (not root)")
    r = _mnt(t, path, source_port=port)
    t.expect(r.status == mount.MNT3_OK, "MNT from port %d: %s" % (port, mount.status_name(r.status)))
    c = t.nfs_rpc()
    rep = c.call_raw(nfs3.GETATTR, nfs3.args_fh(r.fh))
    if rep.success:
        res = nfs3.decode_result(nfs3.GETATTR, rep.body)
        t.expect(res.status in (nfs3.NFS3ERR_ACCES, nfs3.NFS3ERR_PERM, nfs3.NFS3ERR_STALE),
                 "GETATTR from an unprivileged port: %s" % res.status_name)
    else:
        t.expect(rep.reply_stat == rpc.MSG_DENIED, "got %s" % rep.describe())
