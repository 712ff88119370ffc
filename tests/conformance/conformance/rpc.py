"""ONC RPC v2 client (RFC 5531) over TCP and UDP, built to misbehave on purpose.

Owns call and reply messages, AUTH_NONE / AUTH_SYS credentials, TCP record marking (RFC 5531
section 11) and the transports. Besides ordinary calls it can send raw bytes, split a record into
many fragments, pipeline several calls before reading any reply, and reuse an xid, which is what
the conformance tests need to probe a server's RPC layer and its duplicate-request cache.
"""

import errno
import os
import random
import socket
import struct
import time

from .xdr import Packer, Unpacker, XdrError

RPC_VERSION = 2
CALL = 0
REPLY = 1

MSG_ACCEPTED = 0
MSG_DENIED = 1

SUCCESS = 0
PROG_UNAVAIL = 1
PROG_MISMATCH = 2
PROC_UNAVAIL = 3
GARBAGE_ARGS = 4
SYSTEM_ERR = 5
ACCEPT_STAT_NAMES = {0: "SUCCESS", 1: "PROG_UNAVAIL", 2: "PROG_MISMATCH", 3: "PROC_UNAVAIL",
                     4: "GARBAGE_ARGS", 5: "SYSTEM_ERR"}

RPC_MISMATCH = 0
AUTH_ERROR = 1

AUTH_OK = 0
AUTH_BADCRED = 1
AUTH_REJECTEDCRED = 2
AUTH_BADVERF = 3
AUTH_REJECTEDVERF = 4
AUTH_TOOWEAK = 5
AUTH_INVALIDRESP = 6
AUTH_FAILED = 7
AUTH_STAT_NAMES = {0: "AUTH_OK", 1: "AUTH_BADCRED", 2: "AUTH_REJECTEDCRED", 3: "AUTH_BADVERF",
                   4: "AUTH_REJECTEDVERF", 5: "AUTH_TOOWEAK", 6: "AUTH_INVALIDRESP",
                   7: "AUTH_FAILED"}

AUTH_NONE_FLAVOR = 0
AUTH_SYS_FLAVOR = 1

LAST_FRAGMENT = 0x80000000
MAX_REPLY_RECORD = 64 << 20


class ConnectionClosed(Exception):
    """The server closed (or reset) the connection."""


class ReplyTimeout(Exception):
    """No reply arrived in time."""


class Auth:
    """An opaque_auth: a flavor and its body, sent as the credential of a call."""

    def __init__(self, flavor, body=b""):
        self.flavor = flavor
        self.body = bytes(body)

    def pack(self, p):
        p.pack_uint(self.flavor)
        p.pack_opaque(self.body)

    def __repr__(self):
        return "Auth(flavor=%d, %d bytes)" % (self.flavor, len(self.body))


def auth_none():
    return Auth(AUTH_NONE_FLAVOR)


def auth_sys(uid=0, gid=0, gids=(), machine="conformance", stamp=None):
    """AUTH_SYS credentials (RFC 5531 appendix A). gids may hold more than 16 entries on purpose."""
    p = Packer()
    p.pack_uint(stamp if stamp is not None else int(time.time()) & 0xFFFFFFFF)
    p.pack_string(machine)
    p.pack_uint(uid)
    p.pack_uint(gid)
    p.pack_array(list(gids), p.pack_uint)
    return Auth(AUTH_SYS_FLAVOR, p.get_buffer())


def new_xid():
    return random.getrandbits(32)


def build_call(xid, prog, vers, proc, args=b"", cred=None, verf=None, rpcvers=RPC_VERSION,
               msg_type=CALL):
    """The bytes of a call message (RFC 5531 section 9), without record marking."""
    p = Packer()
    p.pack_uint(xid)
    p.pack_uint(msg_type)
    p.pack_uint(rpcvers)
    p.pack_uint(prog)
    p.pack_uint(vers)
    p.pack_uint(proc)
    (cred or auth_none()).pack(p)
    (verf or auth_none()).pack(p)
    return p.get_buffer() + bytes(args)


class Reply:
    """A decoded reply message; `body` holds the procedure's result bytes when accepted."""

    def __init__(self, raw):
        self.raw = raw
        u = Unpacker(raw)
        self.xid = u.unpack_uint()
        mtype = u.unpack_uint()
        if mtype != REPLY:
            raise XdrError("message type %d is not REPLY" % mtype)
        self.reply_stat = u.unpack_uint()
        self.accept_stat = None
        self.reject_stat = None
        self.auth_stat = None
        self.low = self.high = None
        self.verf = None
        self.body = b""
        if self.reply_stat == MSG_ACCEPTED:
            flavor = u.unpack_uint()
            self.verf = Auth(flavor, u.unpack_opaque(400))
            self.accept_stat = u.unpack_uint()
            if self.accept_stat == PROG_MISMATCH:
                self.low = u.unpack_uint()
                self.high = u.unpack_uint()
            self.body = u.rest()
        elif self.reply_stat == MSG_DENIED:
            self.reject_stat = u.unpack_uint()
            if self.reject_stat == RPC_MISMATCH:
                self.low = u.unpack_uint()
                self.high = u.unpack_uint()
            elif self.reject_stat == AUTH_ERROR:
                self.auth_stat = u.unpack_uint()
            else:
                raise XdrError("reject_stat %d is neither RPC_MISMATCH nor AUTH_ERROR"
                               % self.reject_stat)
            self.body = u.rest()
        else:
            raise XdrError("reply_stat %d is neither MSG_ACCEPTED nor MSG_DENIED" % self.reply_stat)

    @property
    def success(self):
        return self.reply_stat == MSG_ACCEPTED and self.accept_stat == SUCCESS

    def describe(self):
        if self.reply_stat == MSG_ACCEPTED:
            s = ACCEPT_STAT_NAMES.get(self.accept_stat, "accept_stat %d" % self.accept_stat)
            if self.accept_stat == PROG_MISMATCH:
                s += " (%d..%d)" % (self.low, self.high)
            return s
        if self.reject_stat == RPC_MISMATCH:
            return "RPC_MISMATCH (%d..%d)" % (self.low, self.high)
        return "AUTH_ERROR %s" % AUTH_STAT_NAMES.get(self.auth_stat, str(self.auth_stat))


class RpcCallError(Exception):
    """An RPC call did not succeed at the RPC layer (not SUCCESS)."""

    def __init__(self, reply):
        super().__init__(reply.describe())
        self.reply = reply


def record_mark(payload, fragment_sizes=None):
    """Record-marked bytes of one record; fragment_sizes splits it into several fragments."""
    if not fragment_sizes:
        return struct.pack(">I", LAST_FRAGMENT | len(payload)) + payload
    out = []
    pos = 0
    sizes = list(fragment_sizes)
    while pos < len(payload) or not out:
        size = sizes.pop(0) if sizes else len(payload) - pos
        chunk = payload[pos:pos + size]
        pos += len(chunk)
        last = pos >= len(payload)
        out.append(struct.pack(">I", (LAST_FRAGMENT if last else 0) | len(chunk)) + chunk)
    return b"".join(out)


class TcpTransport:
    """One TCP connection carrying record-marked messages."""

    kind = "tcp"

    def __init__(self, host, port, timeout=10.0, source_port=None):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source_port is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("", source_port))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self._buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Closes with a TCP reset (SO_LINGER 0), leaving no TIME_WAIT, so the port can be reused."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def send_raw(self, data):
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise ConnectionClosed(str(e))

    def send_message(self, payload, fragment_sizes=None):
        self.send_raw(record_mark(payload, fragment_sizes))

    def _read_exact(self, n, deadline):
        while len(self._buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReplyTimeout("no reply within %.1f s" % self.timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(max(65536, n - len(self._buf)))
            except socket.timeout:
                raise ReplyTimeout("no reply within %.1f s" % self.timeout)
            except ConnectionResetError as e:
                raise ConnectionClosed(str(e))
            if not chunk:
                raise ConnectionClosed("server closed the connection")
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def recv_message(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        parts = []
        total = 0
        while True:
            (header,) = struct.unpack(">I", self._read_exact(4, deadline))
            size = header & 0x7FFFFFFF
            total += size
            if total > MAX_REPLY_RECORD:
                raise XdrError("reply record of over %d bytes" % total)
            parts.append(self._read_exact(size, deadline))
            if header & LAST_FRAGMENT:
                return b"".join(parts)

    def wait_closed(self, timeout):
        """True when the server closes the connection within timeout (any data is discarded)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True


class UdpTransport:
    """A connected UDP socket: one message per datagram."""

    kind = "udp"

    def __init__(self, host, port, timeout=5.0, source_port=None):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if source_port is not None:
            self.sock.bind(("", source_port))
        self.sock.connect((host, port))

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.send(data)

    def send_message(self, payload, fragment_sizes=None):
        if fragment_sizes:
            raise ValueError("UDP has no record marking")
        self.sock.send(payload)

    def recv_message(self, timeout=None):
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        try:
            return self.sock.recv(70000)
        except socket.timeout:
            raise ReplyTimeout("no reply within %.1f s" % self.sock.gettimeout())
        except ConnectionRefusedError as e:
            raise ConnectionClosed(str(e))


def privileged_source_port():
    """A free reserved port (below 1024) to bind, for `secure` exports; needs root."""
    for port in random.sample(range(600, 1024), 100):
        s = socket.socket()
        try:
            s.bind(("", port))
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EPERM):
                return None
            continue
        finally:
            s.close()
        return port
    return None


def connect(kind, host, port, timeout=10.0, source_port=None):
    if kind == "tcp":
        return TcpTransport(host, port, timeout, source_port)
    if kind == "udp":
        return UdpTransport(host, port, timeout, source_port)
    raise ValueError("transport %r" % kind)


class RpcClient:
    """Calls one program and version over one transport; replies are matched by xid.

    Replies that arrive for other xids (pipelined calls) are kept until asked for.
    """

    def __init__(self, transport, prog, vers, cred=None):
        self.transport = transport
        self.prog = prog
        self.vers = vers
        self.cred = cred if cred is not None else auth_none()
        self._pending = {}

    def close(self):
        self.transport.close()

    def send_call(self, proc, args=b"", xid=None, cred=None, verf=None, prog=None, vers=None,
                  rpcvers=RPC_VERSION, fragment_sizes=None):
        xid = new_xid() if xid is None else xid
        msg = build_call(xid, self.prog if prog is None else prog,
                         self.vers if vers is None else vers, proc, args,
                         cred if cred is not None else self.cred, verf, rpcvers)
        self.transport.send_message(msg, fragment_sizes)
        return xid

    def recv_reply(self, xid, timeout=None):
        if xid in self._pending:
            return self._pending.pop(xid)
        deadline = time.monotonic() + (timeout if timeout is not None else self.transport.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReplyTimeout("no reply to xid %08x" % xid)
            reply = Reply(self.transport.recv_message(left))
            if reply.xid == xid:
                return reply
            self._pending[reply.xid] = reply

    def call_raw(self, proc, args=b"", timeout=None, **kw):
        """Sends a call and returns its Reply, whatever its status."""
        xid = self.send_call(proc, args, **kw)
        return self.recv_reply(xid, timeout)

    def call(self, proc, args=b"", timeout=None, **kw):
        """Sends a call and returns the result bytes; raises RpcCallError unless SUCCESS."""
        reply = self.call_raw(proc, args, timeout, **kw)
        if not reply.success:
            raise RpcCallError(reply)
        return reply.body


def random_bytes(n):
    return os.urandom(n)
