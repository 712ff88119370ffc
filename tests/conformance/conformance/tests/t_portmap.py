"""Portmapper v2 and RPCBIND v3/v4 (RFC 1833). Skipped when no portmapper answers."""

import time

from .. import mount, nfs3, portmap, rpc
from ..framework import testcase
from ..xdr import Unpacker

UNREGISTERED = 0x2ABCDEF0


def _pm(t, vers=2, kind="tcp"):
    if t.env.portmap_port is None:
        t.skip("no portmapper reachable (use --portmap-port)")
    return t.rpc(portmap.PROGRAM, vers, kind, t.env.portmap_port)


def _getport(c, prog, vers, prot):
    return portmap.decode_uint(c.call(portmap.PMAPPROC_GETPORT,
                                      portmap.args_mapping(prog, vers, prot)))


@testcase("PMAP1", "portmap")
def pmap_null(t):
    """PMAP v2 NULL over TCP and UDP (RFC 1833 3.2)."""
    for kind in ("tcp", "udp"):
        t.expect(_pm(t, 2, kind).call(portmap.PMAPPROC_NULL) == b"", "NULL over %s" % kind)


@testcase("PMAP2", "portmap")
def pmap_getport_nfs(t):
    """GETPORT for NFS v3/TCP returns the port NFS answers on (RFC 1833 3.2 PMAPPROC_GETPORT)."""
    port = _getport(_pm(t), nfs3.PROGRAM, 3, portmap.IPPROTO_TCP)
    t.expect(port != 0, "NFS v3/TCP is not registered")
    c = t.rpc(nfs3.PROGRAM, 3, "tcp", port)
    t.expect(c.call(nfs3.NULL) == b"", "NFS NULL on the registered port")
    if port != t.env.nfs_port:
        t.fail("registered port %d, tested port %d" % (port, t.env.nfs_port))


@testcase("PMAP3", "portmap udp")
def pmap_getport_nfs_udp(t):
    """A registered NFS v3/UDP port answers NFS over UDP (RFC 1833 3.2)."""
    port = _getport(_pm(t), nfs3.PROGRAM, 3, portmap.IPPROTO_UDP)
    if port == 0:
        t.skip("NFS v3/UDP not registered (server without UDP)")
    t.expect(t.rpc(nfs3.PROGRAM, 3, "udp", port).call(nfs3.NULL) == b"", "NULL over UDP")


@testcase("PMAP4", "portmap mount")
def pmap_getport_mount(t):
    """GETPORT for MOUNT v3/TCP and v1/TCP gives ports where MOUNT answers (RFC 1833 3.2)."""
    c = _pm(t)
    for vers in (3, 1):
        port = _getport(c, mount.PROGRAM, vers, portmap.IPPROTO_TCP)
        t.expect(port != 0, "MOUNT v%d/TCP is not registered" % vers)
        m = t.rpc(mount.PROGRAM, vers, "tcp", port)
        t.expect(m.call(mount.NULL) == b"", "MOUNT v%d NULL on port %d" % (vers, port))


@testcase("PMAP5", "portmap")
def pmap_getport_unregistered(t):
    """GETPORT of an unregistered program returns port 0 (RFC 1833 3.2: 'zero means ... not
    registered')."""
    c = _pm(t)
    t.expect(_getport(c, UNREGISTERED, 1, portmap.IPPROTO_TCP) == 0, "port for unknown program")
    # Like the original portmapper, a server may answer an unregistered version of a registered
    # program with that program's port, where the caller then gets PROG_MISMATCH.
    port = _getport(c, nfs3.PROGRAM, 99, portmap.IPPROTO_TCP)
    t.expect(port in (0, t.env.nfs_port), "port %d for NFS v99" % port)


@testcase("PMAP6", "portmap")
def pmap_getport_side_programs(t):
    """NLM and NFS_ACL have port 0 unless they really answer there (RFC 1833 3.2): a
    registered port must serve the program."""
    c = _pm(t)
    for prog, vers in ((100021, 4), (100227, 3)):
        port = _getport(c, prog, vers, portmap.IPPROTO_TCP)
        if port:
            r = t.rpc(prog, vers, "tcp", port).call_raw(0)
            t.expect(r.success, "program %d registered on %d but NULL gets %s"
                     % (prog, port, r.describe()))


@testcase("PMAP7", "portmap")
def pmap_dump(t):
    """DUMP lists the portmapper itself and NFS v3/TCP at the GETPORT port (RFC 1833 3.2)."""
    c = _pm(t)
    maps = portmap.decode_pmap_dump(c.call(portmap.PMAPPROC_DUMP))
    keys = {(m.prog, m.vers, m.prot): m.port for m in maps}
    t.expect((portmap.PROGRAM, 2, portmap.IPPROTO_TCP) in keys, "portmapper v2/TCP not listed")
    nfs = keys.get((nfs3.PROGRAM, 3, portmap.IPPROTO_TCP))
    t.expect(nfs is not None, "NFS v3/TCP not listed")
    t.expect(nfs == _getport(c, nfs3.PROGRAM, 3, portmap.IPPROTO_TCP), "DUMP and GETPORT differ")
    for m in maps:
        t.expect(m.prot in (portmap.IPPROTO_TCP, portmap.IPPROTO_UDP) and 0 < m.port < 65536,
                 "bad mapping %s" % m)


@testcase("PMAP8", "portmap")
def pmap_set_unset(t):
    """SET then GETPORT then UNSET of a private program (RFC 1833 3.2); a refused SET (false)
    is allowed, but an accepted one must take effect."""
    c = _pm(t)
    prog = UNREGISTERED + 1
    ok = portmap.decode_bool(c.call(portmap.PMAPPROC_SET,
                                    portmap.args_mapping(prog, 1, portmap.IPPROTO_TCP, 4242)))
    try:
        if not ok:
            t.note("SET refused")
            return
        t.expect(_getport(c, prog, 1, portmap.IPPROTO_TCP) == 4242, "SET not visible to GETPORT")
    finally:
        if ok:
            c.call(portmap.PMAPPROC_UNSET, portmap.args_mapping(prog, 1, portmap.IPPROTO_TCP))
    t.expect(_getport(c, prog, 1, portmap.IPPROTO_TCP) == 0, "UNSET did not remove the mapping")


@testcase("PMAP9", "portmap rpc")
def pmap_errors(t):
    """Portmapper version 5 gets PROG_MISMATCH covering 2, procedure 99 PROC_UNAVAIL
    (RFC 5531 9)."""
    c = _pm(t)
    r = c.call_raw(0, vers=5)
    t.expect(r.accept_stat == rpc.PROG_MISMATCH and r.low <= 2 <= r.high,
             "vers 5: got %s" % r.describe())
    r = c.call_raw(99)
    t.expect(r.accept_stat == rpc.PROC_UNAVAIL, "proc 99: got %s" % r.describe())
    r = c.call_raw(portmap.PMAPPROC_GETPORT, b"\0\0\0\1")
    t.expect(r.accept_stat == rpc.GARBAGE_ARGS, "short GETPORT: got %s" % r.describe())


@testcase("RPCB1", "portmap rpcbind")
def rpcb_null(t):
    """RPCBIND v3 and v4 NULL (RFC 1833 2.2)."""
    for vers in (3, 4):
        t.expect(_pm(t, vers).call(portmap.RPCBPROC_NULL) == b"", "v%d NULL" % vers)


def _getaddr(c, proc, prog, vers, netid):
    return portmap.decode_string(c.call(proc, portmap.args_rpcb(prog, vers, netid)))


@testcase("RPCB2", "portmap rpcbind")
def rpcb_getaddr(t):
    """GETADDR v3 and v4 for NFS v3 over tcp give a universal address with the NFS port
    (RFC 1833 2.2 RPCBPROC_GETADDR, 2.1 uaddr)."""
    for vers in (3, 4):
        uaddr = _getaddr(_pm(t, vers), portmap.RPCBPROC_GETADDR, nfs3.PROGRAM, 3, "tcp")
        t.expect(uaddr, "v%d: NFS v3 tcp not registered" % vers)
        t.expect(portmap.uaddr_port(uaddr) == t.env.nfs_port,
                 "v%d: uaddr %s is not port %d" % (vers, uaddr, t.env.nfs_port))


@testcase("RPCB3", "portmap rpcbind")
def rpcb_getaddr_unregistered(t):
    """GETADDR of an unregistered program returns the empty string (RFC 1833 2.2)."""
    for vers in (3, 4):
        uaddr = _getaddr(_pm(t, vers), portmap.RPCBPROC_GETADDR, UNREGISTERED, 1, "tcp")
        t.expect(uaddr == "", "v%d: got %r" % (vers, uaddr))


@testcase("RPCB4", "portmap rpcbind")
def rpcb_dump(t):
    """DUMP v3/v4 lists NFS v3 on netid tcp with a parseable address (RFC 1833 2.2)."""
    for vers in (3, 4):
        entries = portmap.decode_rpcb_dump(_pm(t, vers).call(portmap.RPCBPROC_DUMP))
        nfs = [e for e in entries if e.prog == nfs3.PROGRAM and e.vers == 3 and e.netid == "tcp"]
        t.expect(nfs, "v%d DUMP lacks NFS v3 tcp" % vers)
        t.expect(portmap.uaddr_port(nfs[0].addr) == t.env.nfs_port,
                 "v%d: NFS address %s" % (vers, nfs[0].addr))


@testcase("RPCB5", "portmap rpcbind")
def rpcb_gettime(t):
    """GETTIME returns the server's time in seconds (RFC 1833 2.2 RPCBPROC_GETTIME)."""
    v = portmap.decode_uint(_pm(t, 3).call(portmap.RPCBPROC_GETTIME))
    t.expect(abs(v - time.time()) < 300, "GETTIME %d is %d s off" % (v, v - time.time()))


@testcase("RPCB6", "portmap rpcbind")
def rpcb_getversaddr(t):
    """v4 GETVERSADDR for NFS v3 tcp gives the NFS port (RFC 1833 2.2 RPCBPROC_GETVERSADDR)."""
    uaddr = _getaddr(_pm(t, 4), portmap.RPCBPROC_GETVERSADDR, nfs3.PROGRAM, 3, "tcp")
    t.expect(uaddr and portmap.uaddr_port(uaddr) == t.env.nfs_port, "got %r" % uaddr)


@testcase("RPCB7", "portmap rpcbind")
def rpcb_getaddrlist(t):
    """v4 GETADDRLIST for NFS v3 lists a tcp address (RFC 1833 2.2 RPCBPROC_GETADDRLIST)."""
    c = _pm(t, 4)
    r = c.call_raw(portmap.RPCBPROC_GETADDRLIST, portmap.args_rpcb(nfs3.PROGRAM, 3, "tcp"))
    t.expect(r.success, "GETADDRLIST: %s" % r.describe())
    entries = portmap.decode_addrlist(r.body)
    t.expect(any(e.netid == "tcp" and portmap.uaddr_port(e.maddr) == t.env.nfs_port
                 for e in entries), "no tcp entry with the NFS port in %s" % entries)


@testcase("RPCB8", "portmap rpcbind")
def rpcb_getstat(t):
    """v4 GETSTAT returns statistics for versions 2, 3 and 4 (RFC 1833 2.2 RPCBPROC_GETSTAT)."""
    c = _pm(t, 4)
    r = c.call_raw(portmap.RPCBPROC_GETSTAT)
    t.expect(r.success, "GETSTAT: %s" % r.describe())
    u = Unpacker(r.body)
    for _ in range(3):
        for _ in range(13 + 2):
            u.unpack_int()
        u.unpack_list(lambda: (u.unpack_uint(), u.unpack_uint(), u.unpack_int(), u.unpack_int(),
                               u.unpack_string()))
        u.unpack_list(lambda: (u.unpack_uint(), u.unpack_uint(), u.unpack_uint(),
                               u.unpack_int(), u.unpack_int(), u.unpack_int(),
                               u.unpack_string()))
    u.done()


@testcase("RPCB9", "portmap rpcbind")
def rpcb_set_unset(t):
    """v3 SET/GETADDR/UNSET of a private program on loopback (RFC 1833 2.2); a refused SET is
    allowed, an accepted one must take effect."""
    c = _pm(t, 3)
    prog = UNREGISTERED + 2
    ok = portmap.decode_bool(c.call(portmap.RPCBPROC_SET,
                                    portmap.args_rpcb(prog, 1, "tcp", "127.0.0.1.16.146",
                                                      "conformance")))
    try:
        if not ok:
            t.note("SET refused")
            return
        uaddr = _getaddr(c, portmap.RPCBPROC_GETADDR, prog, 1, "tcp")
        t.expect(uaddr and portmap.uaddr_port(uaddr) == 4242, "GETADDR after SET: %r" % uaddr)
    finally:
        if ok:
            c.call(portmap.RPCBPROC_UNSET, portmap.args_rpcb(prog, 1, "tcp", "", "conformance"))
    t.expect(_getaddr(c, portmap.RPCBPROC_GETADDR, prog, 1, "tcp") == "", "UNSET had no effect")
