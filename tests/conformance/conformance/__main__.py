"""Command line: parse options, find the server, select tests, run them, exit non-zero on failure."""

import argparse
import sys

from . import framework
from . import tests  # noqa: F401  (registers every test case)


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="python3 -m conformance",
        description="NFSv3 conformance suite (RFC 1813, RFC 5531, RFC 1833).")
    ap.add_argument("target", nargs="?", help="SERVER:/export")
    ap.add_argument("selection", nargs="*",
                    help="flags (all, rpc, write, readdir, drc, robustness, root, ...) or code "
                         "globs (WRT*, RPC3); default: all")
    ap.add_argument("--port", type=int, help="NFS port (default: from the portmapper, else 2049)")
    ap.add_argument("--mount-port", type=int,
                    help="MOUNT port (default: from the portmapper, else the NFS port)")
    ap.add_argument("--portmap-port", type=int,
                    help="portmapper port to test and ask (default 111)")
    ap.add_argument("--no-portmap", action="store_true",
                    help="do not contact a portmapper; its tests are skipped")
    ap.add_argument("--restart-cmd", help="shell command that restarts the server (enables the "
                                          "handle-survives-restart tests)")
    ap.add_argument("--json", help="write a JSON report to this file")
    ap.add_argument("--known-failures", help="file of `CODE-GLOB reason` lines for this server")
    ap.add_argument("--uid", type=int, default=0, help="AUTH_SYS uid of ordinary calls (0)")
    ap.add_argument("--gid", type=int, default=0, help="AUTH_SYS gid of ordinary calls (0)")
    ap.add_argument("--server-root", choices=["yes", "no", "auto"], default="auto",
                    help="whether the server applies AUTH_SYS identities to files (runs as "
                         "root, no squashing); `auto` probes it")
    ap.add_argument("--restricted-export",
                    help="an export path this client is NOT allowed to mount (client rules)")
    ap.add_argument("--secure-export",
                    help="an export path with the `secure` option (privileged source ports)")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("-v", "--verbose", action="store_true", help="print test notes")
    opts = ap.parse_intermixed_args(argv)
    if opts.list:
        return opts
    if not opts.target or ":" not in opts.target:
        ap.error("the target must be SERVER:/export")
    opts.host, opts.export = opts.target.split(":", 1)
    if not opts.export.startswith("/"):
        ap.error("the export must be an absolute path")
    return opts


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if opts.list:
        for fn in framework.REGISTRY:
            doc = (fn.__doc__ or "").strip().splitlines()[0]
            print("%-8s %-22s %s" % (fn.code, ",".join(sorted(fn.flags - {"all"})), doc))
        print("%d tests" % len(framework.REGISTRY))
        return 0
    selected = framework.select(opts.selection or ["all"])
    known = framework.load_known_failures(opts.known_failures)
    env = framework.Env(opts)
    env.discover()
    print("conformance: %s:%s nfs port %d, mount port %d, portmapper %s, caller identities "
          "applied: %s; %d tests"
          % (env.host, env.export, env.nfs_port, env.mount_port,
             env.portmap_port if env.portmap_port else "none", env.server_root, len(selected)),
          flush=True)
    failures = framework.run(env, selected, known, opts.json, verbose=opts.verbose)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
