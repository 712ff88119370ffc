"""Portmapper v2 and RPCBIND v3/v4 (RFC 1833): encoders and decoders."""

from types import SimpleNamespace

from .xdr import Packer, Unpacker

PROGRAM = 100000
PORT = 111

IPPROTO_TCP = 6
IPPROTO_UDP = 17

# PMAP v2 procedures (RFC 1833 section 3.2).
PMAPPROC_NULL, PMAPPROC_SET, PMAPPROC_UNSET, PMAPPROC_GETPORT, PMAPPROC_DUMP, PMAPPROC_CALLIT = \
    range(6)

# RPCBIND v3/v4 procedures (RFC 1833 section 2.2).
RPCBPROC_NULL = 0
RPCBPROC_SET = 1
RPCBPROC_UNSET = 2
RPCBPROC_GETADDR = 3
RPCBPROC_DUMP = 4
RPCBPROC_CALLIT = 5
RPCBPROC_GETTIME = 6
RPCBPROC_UADDR2TADDR = 7
RPCBPROC_TADDR2UADDR = 8
RPCBPROC_GETVERSADDR = 9
RPCBPROC_INDIRECT = 10
RPCBPROC_GETADDRLIST = 11
RPCBPROC_GETSTAT = 12


def args_mapping(prog, vers, prot, port=0):
    p = Packer()
    for v in (prog, vers, prot, port):
        p.pack_uint(v)
    return p.get_buffer()


def decode_uint(body):
    u = Unpacker(body)
    v = u.unpack_uint()
    u.done()
    return v


def decode_bool(body):
    u = Unpacker(body)
    v = u.unpack_bool()
    u.done()
    return v


def decode_pmap_dump(body):
    u = Unpacker(body)

    def mapping():
        return SimpleNamespace(prog=u.unpack_uint(), vers=u.unpack_uint(), prot=u.unpack_uint(),
                               port=u.unpack_uint())
    entries = u.unpack_list(mapping)
    u.done()
    return entries


def args_rpcb(prog, vers, netid="", addr="", owner=""):
    p = Packer()
    p.pack_uint(prog)
    p.pack_uint(vers)
    p.pack_string(netid)
    p.pack_string(addr)
    p.pack_string(owner)
    return p.get_buffer()


def decode_string(body):
    u = Unpacker(body)
    v = u.unpack_string()
    u.done()
    return v


def decode_rpcb_dump(body):
    u = Unpacker(body)

    def rpcb():
        return SimpleNamespace(prog=u.unpack_uint(), vers=u.unpack_uint(),
                               netid=u.unpack_string(), addr=u.unpack_string(),
                               owner=u.unpack_string())
    entries = u.unpack_list(rpcb)
    u.done()
    return entries


def decode_addrlist(body):
    """rpcb_entry_list_ptr (RPCBIND v4 GETADDRLIST)."""
    u = Unpacker(body)

    def entry():
        return SimpleNamespace(maddr=u.unpack_string(), netid=u.unpack_string(),
                               semantics=u.unpack_uint(), protofmly=u.unpack_string(),
                               proto=u.unpack_string())
    entries = u.unpack_list(entry)
    u.done()
    return entries


def uaddr_port(uaddr):
    """The port of an IPv4/IPv6 universal address "h1.h2.h3.h4.p1.p2" (RFC 1833 section 2.1)."""
    parts = uaddr.rsplit(".", 2)
    if len(parts) != 3:
        raise ValueError("not a universal address: %r" % uaddr)
    return int(parts[1]) * 256 + int(parts[2])
