"""XDR (RFC 4506) packing and unpacking: the primitives every codec of the suite is built from.

Python 3.13 removed the standard library's ``xdrlib``, so the suite carries its own. The unpacker is
strict: reading past the end of the buffer raises ``XdrError`` instead of returning short data, so
a truncated reply from a server is reported as such and never silently accepted.
"""

import struct


class XdrError(Exception):
    """The bytes do not decode as the expected XDR type (truncated, bad length, bad bool...)."""


def pad_len(n):
    """Number of zero bytes that follow n bytes of opaque data (RFC 4506 section 3)."""
    return (4 - n % 4) % 4


class Packer:
    """Appends XDR-encoded values to a growing buffer."""

    def __init__(self):
        self._parts = []

    def get_buffer(self):
        return b"".join(self._parts)

    def pack_uint(self, v):
        self._parts.append(struct.pack(">I", v & 0xFFFFFFFF))

    def pack_int(self, v):
        self._parts.append(struct.pack(">i", v))

    def pack_uhyper(self, v):
        self._parts.append(struct.pack(">Q", v & 0xFFFFFFFFFFFFFFFF))

    def pack_hyper(self, v):
        self._parts.append(struct.pack(">q", v))

    def pack_bool(self, v):
        self.pack_uint(1 if v else 0)

    def pack_fopaque(self, n, data):
        """Fixed-length opaque: exactly n bytes (data must have that length) plus padding."""
        if len(data) != n:
            raise ValueError("fixed opaque of %d bytes given %d" % (n, len(data)))
        self._parts.append(bytes(data) + b"\0" * pad_len(n))

    def pack_opaque(self, data):
        """Variable-length opaque or string: length, bytes, padding."""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        self.pack_uint(len(data))
        self._parts.append(bytes(data) + b"\0" * pad_len(len(data)))

    pack_string = pack_opaque

    def pack_raw(self, data):
        """Bytes appended as they are, for deliberately malformed messages."""
        self._parts.append(bytes(data))

    def pack_array(self, items, pack_item):
        self.pack_uint(len(items))
        for item in items:
            pack_item(item)

    def pack_optional(self, value, pack_value):
        if value is None:
            self.pack_bool(False)
        else:
            self.pack_bool(True)
            pack_value(value)


class Unpacker:
    """Reads XDR-encoded values from a buffer, refusing to read past its end."""

    def __init__(self, data):
        self._data = bytes(data)
        self._pos = 0

    @property
    def position(self):
        return self._pos

    def remaining(self):
        return len(self._data) - self._pos

    def _take(self, n, what):
        if n < 0 or self._pos + n > len(self._data):
            raise XdrError(
                "truncated %s: need %d bytes at offset %d, have %d"
                % (what, n, self._pos, len(self._data) - self._pos)
            )
        chunk = self._data[self._pos:self._pos + n]
        self._pos += n
        return chunk

    def unpack_uint(self):
        return struct.unpack(">I", self._take(4, "uint"))[0]

    def unpack_int(self):
        return struct.unpack(">i", self._take(4, "int"))[0]

    def unpack_uhyper(self):
        return struct.unpack(">Q", self._take(8, "hyper"))[0]

    def unpack_hyper(self):
        return struct.unpack(">q", self._take(8, "hyper"))[0]

    def unpack_bool(self):
        v = self.unpack_uint()
        if v not in (0, 1):
            raise XdrError("bool is %d, not 0 or 1" % v)
        return v == 1

    def unpack_fopaque(self, n):
        data = self._take(n, "fixed opaque")
        self._take(pad_len(n), "padding")
        return data

    def unpack_opaque(self, maxlen=None):
        n = self.unpack_uint()
        if maxlen is not None and n > maxlen:
            raise XdrError("opaque of %d bytes exceeds its maximum %d" % (n, maxlen))
        data = self._take(n, "opaque body")
        self._take(pad_len(n), "padding")
        return data

    def unpack_string(self, maxlen=None):
        return self.unpack_opaque(maxlen).decode("utf-8", "surrogateescape")

    def unpack_array(self, unpack_item, maxlen=None):
        n = self.unpack_uint()
        if maxlen is not None and n > maxlen:
            raise XdrError("array of %d items exceeds its maximum %d" % (n, maxlen))
        if n > self.remaining():
            raise XdrError("array claims %d items with %d bytes left" % (n, self.remaining()))
        return [unpack_item() for _ in range(n)]

    def unpack_optional(self, unpack_value):
        return unpack_value() if self.unpack_bool() else None

    def unpack_list(self, unpack_item):
        """An XDR linked list (`*next` optional chain), as used by READDIR and MOUNT replies."""
        items = []
        while self.unpack_bool():
            items.append(unpack_item())
        return items

    def rest(self):
        return self._take(self.remaining(), "rest")

    def done(self):
        if self._pos != len(self._data):
            raise XdrError("%d unexpected bytes after the message" % (len(self._data) - self._pos))
