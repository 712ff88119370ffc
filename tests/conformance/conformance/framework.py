"""The test harness: registry of test cases, the server environment, the runner and the reports.

A test case is a function registered with `@testcase(code, flags, deps)`; its docstring says what
it checks and cites the RFC section. The runner resolves dependencies, runs each selected test
with a `TestContext`, classifies it as PASS / WARN / FAIL / SKIP, applies the known-failures file
and writes the text and JSON reports.
"""

import fnmatch
import json
import os
import random
import subprocess
import sys
import time
import traceback

from . import mount, nfs3, portmap, rpc

REGISTRY = []
BY_CODE = {}


def testcase(code, flags="", deps=()):
    """Registers a test function under a code, with space-separated flags and dependency codes."""
    def register(fn):
        if code in BY_CODE:
            raise RuntimeError("duplicate test code %s" % code)
        fn.code = code
        fn.flags = set(flags.split()) | {"all"}
        fn.deps = list(deps)
        REGISTRY.append(fn)
        BY_CODE[code] = fn
        return fn
    return register


class Outcome(Exception):
    status = None

    def __init__(self, reason=""):
        super().__init__(reason)
        self.reason = reason


class Failure(Outcome):
    status = "FAIL"


class Warning_(Outcome):
    status = "WARN"


class Skipped(Outcome):
    status = "SKIP"


class Env:
    """What the suite knows about the server under test, and the connections shared by tests."""

    def __init__(self, opts):
        self.host = opts.host
        self.export = opts.export
        self.opts = opts
        self.uid = opts.uid
        self.gid = opts.gid
        self.portmap_port = None
        self.nfs_port = opts.port
        self.mount_port = opts.mount_port
        self.restart_cmd = opts.restart_cmd
        self.server_root = opts.server_root
        self.run_id = "%d_%04x" % (os.getpid(), random.getrandbits(16))
        self._nfs = None
        self.root_fh = None
        self.fsinfo = None

    def cred(self, uid=None, gid=None, gids=None):
        return rpc.auth_sys(self.uid if uid is None else uid, self.gid if gid is None else gid,
                            [self.gid] if gids is None else gids)

    def discover(self):
        """Finds the portmapper (optional), the ports, and mounts the export."""
        pm_port = self.opts.portmap_port or portmap.PORT
        if not self.opts.no_portmap:
            try:
                c = self.rpc(portmap.PROGRAM, 2, "tcp", pm_port, timeout=3)
                c.call(portmap.PMAPPROC_NULL)
                self.portmap_port = pm_port
                if self.nfs_port is None:
                    body = c.call(portmap.PMAPPROC_GETPORT,
                                  portmap.args_mapping(nfs3.PROGRAM, 3, portmap.IPPROTO_TCP))
                    self.nfs_port = portmap.decode_uint(body) or None
                if self.mount_port is None:
                    body = c.call(portmap.PMAPPROC_GETPORT,
                                  portmap.args_mapping(mount.PROGRAM, 3, portmap.IPPROTO_TCP))
                    self.mount_port = portmap.decode_uint(body) or None
                c.close()
            except (OSError, rpc.ConnectionClosed, rpc.ReplyTimeout, rpc.RpcCallError):
                self.portmap_port = None
        if self.nfs_port is None:
            self.nfs_port = 2049
        if self.mount_port is None:
            self.mount_port = self.nfs_port
        self.mount_root()

    def mount_root(self):
        c = self.mount_client(3)
        try:
            res = mount.decode_mnt3(c.call(mount.MNT, mount.args_dirpath(self.export)))
        finally:
            c.close()
        if res.status != mount.MNT3_OK:
            raise SystemExit("conformance: MOUNT of %s failed: %s"
                             % (self.export, mount.status_name(res.status)))
        self.root_fh = res.fh
        self.fsinfo = self.nfs.fsinfo(self.root_fh)
        if self.server_root == "auto":
            self.server_root = self.probe_identity()

    def probe_identity(self):
        """'yes' when a file created with AUTH_SYS uid 4321 is owned by 4321, else 'no'."""
        name = "conf_probe_%s" % self.run_id
        res = self.nfs.create(self.root_fh, name, nfs3.UNCHECKED,
                              cred=self.cred(4321, 4321, [4321]), mode=0o644)
        if not res.ok:
            return "no"
        attr = res.attr or self.nfs.getattr(res.fh).attr
        self.nfs.remove(self.root_fh, name)
        return "yes" if attr is not None and attr.uid == 4321 else "no"

    def rpc(self, prog, vers, kind="tcp", port=None, cred=None, timeout=10.0, source_port=None):
        t = rpc.connect(kind, self.host, port if port is not None else self.nfs_port, timeout,
                        source_port)
        return rpc.RpcClient(t, prog, vers, cred)

    def mount_client(self, vers=3, kind="tcp", **kw):
        return self.rpc(mount.PROGRAM, vers, kind, self.mount_port, cred=self.cred(), **kw)

    def new_nfs(self, kind="tcp", cred=None, **kw):
        return nfs3.Nfs3(self.rpc(nfs3.PROGRAM, 3, kind, self.nfs_port,
                                  cred if cred is not None else self.cred(), **kw))

    @property
    def nfs(self):
        if self._nfs is None:
            self._nfs = self.new_nfs()
        return self._nfs

    def drop_shared(self):
        if self._nfs is not None:
            self._nfs.close()
            self._nfs = None

    def restart_server(self):
        """Runs the restart command, then waits until the server answers NULL again."""
        self.drop_shared()
        subprocess.run(self.restart_cmd, shell=True, check=True, timeout=120)
        deadline = time.monotonic() + 30
        while True:
            try:
                c = self.new_nfs(timeout=2)
                c.null()
                c.close()
                return
            except (OSError, rpc.ConnectionClosed, rpc.ReplyTimeout):
                if time.monotonic() > deadline:
                    raise Failure("server did not answer NULL within 30 s of the restart")
                time.sleep(0.2)


class TestContext:
    """What a test function gets: the environment, helpers, and cleanup of what it created."""

    def __init__(self, env, fn):
        self.env = env
        self.code = fn.code
        self._cleanups = []
        self._closers = []
        self.notes = []

    # ---- outcomes -----------------------------------------------------------------------------
    def fail(self, reason):
        raise Failure(reason)

    def warn(self, reason):
        raise Warning_(reason)

    def skip(self, reason):
        raise Skipped(reason)

    def note(self, text):
        self.notes.append(text)

    def check(self, res, expected, what):
        """Fails unless the NFS result's status is one of `expected` (a status or a list)."""
        if isinstance(expected, int):
            expected = [expected]
        if res.status not in expected:
            self.fail("%s: got %s, expected %s" % (what, res.status_name,
                                                  " or ".join(nfs3.status_name(s)
                                                              for s in expected)))
        return res

    def ok(self, res, what):
        return self.check(res, nfs3.NFS3_OK, what)

    def expect(self, cond, reason):
        if not cond:
            self.fail(reason)

    # ---- connections --------------------------------------------------------------------------
    @property
    def nfs(self):
        return self.env.nfs

    @property
    def root_fh(self):
        return self.env.root_fh

    def new_nfs(self, kind="tcp", cred=None, **kw):
        c = self.env.new_nfs(kind, cred, **kw)
        self._closers.append(c)
        return c

    def rpc(self, prog, vers, kind="tcp", port=None, **kw):
        c = self.env.rpc(prog, vers, kind, port, **kw)
        self._closers.append(c)
        return c

    def transport(self, kind="tcp", port=None, timeout=10.0):
        t = rpc.connect(kind, self.env.host, port if port is not None else self.env.nfs_port,
                        timeout)
        self._closers.append(t)
        return t

    def nfs_rpc(self, kind="tcp", cred=None, **kw):
        """A raw RpcClient for NFSv3, for tests that build their own argument bytes."""
        return self.rpc(nfs3.PROGRAM, 3, kind, self.env.nfs_port,
                        cred=cred if cred is not None else self.env.cred(), **kw)

    def try_call(self, proc, args, nfs=None):
        """An NFS call whose GARBAGE_ARGS reply becomes a Result with status RPC_GARBAGE_ARGS;
        other RPC-level failures raise."""
        client = (nfs or self.env.nfs).rpc
        r = client.call_raw(proc, args)
        if r.reply_stat == rpc.MSG_ACCEPTED and r.accept_stat == rpc.GARBAGE_ARGS:
            return nfs3.Result(status=nfs3.RPC_GARBAGE_ARGS, proc=proc)
        if not r.success:
            raise rpc.RpcCallError(r)
        return nfs3.decode_result(proc, r.body)

    # ---- scratch objects ----------------------------------------------------------------------
    def unique(self, stem="f"):
        return "%s_%s_%04x" % (stem, self.code.lower(), random.getrandbits(16))

    def scratch(self):
        """A new directory under the export root, removed (recursively) after the test."""
        name = "conf_%s_%s" % (self.code.lower(), self.env.run_id)
        res = self.nfs.mkdir(self.root_fh, name, mode=0o777)
        self.ok(res, "MKDIR of the scratch directory %s" % name)
        fh = res.fh or self.ok(self.nfs.lookup(self.root_fh, name), "LOOKUP scratch").fh
        self._cleanups.append((self.root_fh, name))
        return fh

    def create_file(self, dir_fh, name, data=b"", mode=0o644):
        res = self.ok(self.nfs.create(dir_fh, name, nfs3.UNCHECKED, mode=mode),
                      "CREATE %s" % name)
        fh = res.fh or self.ok(self.nfs.lookup(dir_fh, name), "LOOKUP %s" % name).fh
        if data:
            self.write_all(fh, 0, data)
        return fh

    def mkdir(self, dir_fh, name, mode=0o755):
        res = self.ok(self.nfs.mkdir(dir_fh, name, mode=mode), "MKDIR %s" % name)
        return res.fh or self.ok(self.nfs.lookup(dir_fh, name), "LOOKUP %s" % name).fh

    def write_all(self, fh, offset, data, stable=nfs3.FILE_SYNC):
        wtmax = self.env.fsinfo.wtmax if self.env.fsinfo and self.env.fsinfo.ok else 32768
        pos = 0
        while pos < len(data):
            chunk = data[pos:pos + min(wtmax, 65536)]
            res = self.ok(self.nfs.write(fh, offset + pos, chunk, stable), "WRITE")
            self.expect(res.count > 0, "WRITE wrote 0 bytes")
            pos += res.count

    def read_all(self, fh, size_hint=1 << 30):
        rtmax = self.env.fsinfo.rtmax if self.env.fsinfo and self.env.fsinfo.ok else 32768
        out = []
        pos = 0
        while pos < size_hint:
            res = self.ok(self.nfs.read(fh, pos, min(rtmax, 65536)), "READ")
            out.append(res.data)
            pos += len(res.data)
            if res.eof or not res.data:
                break
        return b"".join(out)

    def getattr(self, fh):
        return self.ok(self.nfs.getattr(fh), "GETATTR").attr

    def list_dir(self, dir_fh, plus=False, count=4096):
        """Every entry name of a directory (bytes), following cookies until eof."""
        names = []
        cookie, verf = 0, nfs3.ZERO_VERF
        for _ in range(100000):
            if plus:
                res = self.ok(self.nfs.readdirplus(dir_fh, cookie, verf, count, count * 8),
                              "READDIRPLUS")
            else:
                res = self.ok(self.nfs.readdir(dir_fh, cookie, verf, count), "READDIR")
            names.extend(e.name for e in res.entries)
            if res.eof:
                return names
            self.expect(res.entries, "READDIR returned no entries and no eof")
            cookie, verf = res.entries[-1].cookie, res.cookieverf
        self.fail("directory listing did not end")

    def remove_tree(self, dir_fh, name):
        """Removes dir_fh/name whatever it is; errors are ignored (best-effort cleanup)."""
        nfs = self.env.nfs
        res = nfs.lookup(dir_fh, name)
        if not res.ok:
            return
        attr = res.attr or nfs.getattr(res.fh).attr
        if attr is not None and attr.type == nfs3.NF3DIR:
            nfs.setattr(res.fh, mode=0o777)
            for _ in range(100):
                lst = nfs.readdir(res.fh, 0, nfs3.ZERO_VERF, 32768)
                if not lst.ok:
                    break
                names = [e.name for e in lst.entries if e.name not in (b".", b"..")]
                if not names:
                    break
                for n in names:
                    self.remove_tree(res.fh, n)
            nfs.rmdir(dir_fh, name)
        else:
            nfs.remove(dir_fh, name)

    def add_cleanup(self, dir_fh, name):
        self._cleanups.append((dir_fh, name))

    def finish(self):
        for c in self._closers:
            try:
                c.close()
            except OSError:
                pass
        for dir_fh, name in reversed(self._cleanups):
            try:
                self.remove_tree(dir_fh, name)
            except Exception:
                # A broken connection must not turn a test's verdict into an error.
                self.env.drop_shared()


def load_known_failures(path):
    """Known-failures file: lines `GLOB reason...`; '#' starts a comment."""
    entries = []
    if not path:
        return entries
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split(None, 1)
            entries.append((parts[0], parts[1] if len(parts) > 1 else "listed"))
    return entries


def select(args):
    """Test functions selected by flags or code globs, with their dependencies, in order."""
    wanted = set()
    for fn in REGISTRY:
        for a in args:
            if a in fn.flags or fnmatch.fnmatchcase(fn.code, a.upper()):
                wanted.add(fn.code)
    unknown = [a for a in args
               if not any(a in fn.flags or fnmatch.fnmatchcase(fn.code, a.upper())
                          for fn in REGISTRY)]
    if unknown:
        raise SystemExit("conformance: no test matches %s" % ", ".join(unknown))
    stack = list(wanted)
    while stack:
        for d in BY_CODE[stack.pop()].deps:
            if d not in wanted:
                wanted.add(d)
                stack.append(d)
    return [fn for fn in REGISTRY if fn.code in wanted]


def run(env, tests, known, json_path, out=sys.stdout, verbose=False):
    results = {}
    records = []
    started = time.time()
    for fn in tests:
        t0 = time.monotonic()
        reason = ""
        status = "PASS"
        failed_deps = [d for d in fn.deps if results.get(d) not in ("PASS", "WARN")]
        notes = []
        if failed_deps:
            status, reason = "SKIP", "dependency %s did not pass" % ", ".join(failed_deps)
        elif "root" in fn.flags and env.server_root == "no":
            status, reason = "SKIP", "server does not run requests as the caller (--server-root no)"
        else:
            ctx = TestContext(env, fn)
            try:
                fn(ctx)
            except Outcome as o:
                status, reason = o.status, o.reason
            except (rpc.RpcCallError, rpc.ReplyTimeout, rpc.ConnectionClosed, OSError) as e:
                status, reason = "FAIL", "%s: %s" % (type(e).__name__, e)
                env.drop_shared()
            except Exception as e:
                tb = traceback.extract_tb(e.__traceback__)[-1]
                status = "FAIL"
                reason = "%s: %s (at %s:%d)" % (type(e).__name__, e,
                                                os.path.basename(tb.filename), tb.lineno)
                env.drop_shared()
            finally:
                ctx.finish()
            notes = ctx.notes
        known_reason = None
        if status == "FAIL":
            for glob, why in known:
                if fnmatch.fnmatchcase(fn.code, glob):
                    known_reason = why
                    break
        results[fn.code] = status
        dt = time.monotonic() - t0
        doc = (fn.__doc__ or "").strip()
        line = "%-8s %-44s %s" % (fn.code, fn.__name__, status)
        if reason:
            line += ": " + reason
        if known_reason:
            line += "  [known failure: %s]" % known_reason
        print(line, file=out, flush=True)
        if verbose and notes:
            for n in notes:
                print("         note: %s" % n, file=out)
        records.append({"code": fn.code, "name": fn.__name__, "flags": sorted(fn.flags),
                        "deps": fn.deps, "status": status, "reason": reason,
                        "known_failure": known_reason, "seconds": round(dt, 3),
                        "doc": doc, "notes": notes})
    counts = {k: sum(1 for r in records if r["status"] == k)
              for k in ("PASS", "WARN", "FAIL", "SKIP")}
    known_fails = sum(1 for r in records if r["status"] == "FAIL" and r["known_failure"])
    new_fails = counts["FAIL"] - known_fails
    passed = counts["PASS"] + counts["WARN"]
    summary = {"total": len(records), "passed": counts["PASS"], "warnings": counts["WARN"],
               "failed": new_fails, "known_failures": known_fails, "skipped": counts["SKIP"],
               "seconds": round(time.time() - started, 1)}
    print("", file=out)
    print("summary: %d tests: %d PASS, %d WARN, %d FAIL (%d known), %d SKIP in %.1f s"
          % (len(records), counts["PASS"], counts["WARN"], counts["FAIL"], known_fails,
             counts["SKIP"], summary["seconds"]), file=out)
    if new_fails:
        print("unexpected failures: %s" % " ".join(
            r["code"] for r in records if r["status"] == "FAIL" and not r["known_failure"]),
            file=out)
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"server": "%s:%s" % (env.host, env.export),
                       "ports": {"nfs": env.nfs_port, "mount": env.mount_port,
                                 "portmap": env.portmap_port},
                       "started": started, "summary": summary, "tests": records}, f, indent=1)
    line = "%d passed, %d failed" % (passed, new_fails)
    if counts["SKIP"]:
        line += ", %d skipped" % counts["SKIP"]
    print(line, file=out, flush=True)
    return new_fails

