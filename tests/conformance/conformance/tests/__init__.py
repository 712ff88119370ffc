"""The test cases, one module per area; importing this package registers all of them."""

from . import t_rpc, t_portmap, t_mount  # noqa: F401
