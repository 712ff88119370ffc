"""rnfsd's NFSv3 conformance suite: an RFC 1813 / 5531 / 1833 wire-level test suite for any server.

Run as `python3 -m conformance SERVER:/export [options] [flags or codes]`; see README.md.
"""
