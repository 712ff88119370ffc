"""The test cases, one module per area; importing this package registers all of them."""

from . import (t_rpc, t_portmap, t_mount, t_nfs_attr, t_nfs_data, t_nfs_ns, t_readdir,  # noqa
               t_fh, t_drc, t_robust, t_semantics)
