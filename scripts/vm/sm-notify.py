#!/usr/bin/env python3
"""Sends one SM_NOTIFY, as a rebooted client's sm-notify would: over UDP, from that client's
address, to the status monitor (NSM, program 100024 version 1) of a server, found with a
portmapper GETPORT on the server. The lock scenarios send it on behalf of a guest they killed,
since a guest's own UDP cannot leave qemu's restricted network.

usage: sm-notify.py --from ADDR --server ADDR --mon-name NAME --state N
Exits 0 once the server answered, 1 when it did not within 10 s.
"""
import argparse
import os
import socket
import struct
import sys

PMAP_PROG, PMAP_VERS, PMAP_GETPORT = 100000, 2, 3
NSM_PROG, NSM_VERS, SM_NOTIFY = 100024, 1, 6
IPPROTO_UDP = 17


def xdr_string(s: bytes) -> bytes:
    return struct.pack(">I", len(s)) + s + b"\0" * (-len(s) % 4)


def call(sock, to, prog, vers, proc, args: bytes) -> bytes:
    """One UDP call with AUTH_NONE, retransmitted every second; returns the result body."""
    xid = struct.unpack(">I", os.urandom(4))[0]
    msg = struct.pack(">IIIIII", xid, 0, 2, prog, vers, proc) + struct.pack(">IIII", 0, 0, 0, 0) + args
    for _ in range(10):
        sock.sendto(msg, to)
        sock.settimeout(1.0)
        try:
            while True:
                reply, _ = sock.recvfrom(65536)
                if len(reply) >= 24 and struct.unpack(">I", reply[:4])[0] == xid:
                    break
        except socket.timeout:
            continue
        rxid, mtype, stat = struct.unpack(">III", reply[:12])
        if mtype != 1 or stat != 0:
            sys.exit(f"sm-notify: call {prog}/{proc} denied (reply_stat {stat})")
        verf_len = struct.unpack(">I", reply[16:20])[0]
        off = 20 + verf_len + (-verf_len % 4)
        accept = struct.unpack(">I", reply[off:off + 4])[0]
        if accept != 0:
            sys.exit(f"sm-notify: call {prog}/{proc} not accepted (accept_stat {accept})")
        return reply[off + 4:]
    sys.exit(f"sm-notify: no answer from {to[0]}:{to[1]} within 10 s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="source", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--mon-name", required=True)
    ap.add_argument("--state", type=int, required=True)
    a = ap.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((a.source, 0))
    res = call(sock, (a.server, 111), PMAP_PROG, PMAP_VERS, PMAP_GETPORT,
               struct.pack(">IIII", NSM_PROG, NSM_VERS, IPPROTO_UDP, 0))
    port = struct.unpack(">I", res[:4])[0]
    if port == 0:
        sys.exit(f"sm-notify: {a.server} has no status monitor registered for UDP")
    call(sock, (a.server, port), NSM_PROG, NSM_VERS, SM_NOTIFY,
         xdr_string(a.mon_name.encode()) + struct.pack(">i", a.state))
    print(f"sm-notify: told {a.server}:{port} that {a.mon_name} rebooted (state {a.state}) from {a.source}")


if __name__ == "__main__":
    main()
