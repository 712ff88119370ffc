#!/usr/bin/env python3
"""Stable writes, COMMIT and writeback errors, checked against a running rnfsd (run by
scripts/writeback-faults.sh, which builds the filesystem and calls this as root).

The export must be a filesystem whose writeback fails once a few MiB are written (the script
loop-mounts a sparse ext4 image that lives on a small tmpfs: ext4 sees free space, the device
under it runs out). Two parts:

1. While the filesystem is healthy, strace counts the sync calls rnfsd makes for each kind of
   write: none for UNSTABLE, one fdatasync per DATA_SYNC WRITE, one fsync per FILE_SYNC WRITE,
   one fdatasync per COMMIT. The sync happens before the reply, so a reply means durable data.
2. Then the device fills up under UNSTABLE writes that all succeed (they only reach the page
   cache). COMMIT must fail, and the write verifier must change, so a client holding those
   writes resends them instead of trusting them; FILE_SYNC and DATA_SYNC WRITEs must fail rather
   than report data as stable; no reply ever pairs success with the verifier the lost writes
   were acknowledged under; and rnfsd keeps serving.

Exits 0 when every check passed; prints one line per check.
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "conformance"))

from conformance import mount, nfs3, rpc  # noqa: E402

MIB = 1 << 20
FAILED = []


def check(ok, what):
    print("writeback-faults: %s: %s" % ("ok" if ok else "FAIL", what), flush=True)
    if not ok:
        FAILED.append(what)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """rnfsd serving one export on a free 127.0.0.1 port (MOUNT on the same port)."""

    def __init__(self, binary, export, state, log):
        self.port = free_port()
        self.log_path = log
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [binary, "serve", "--bind", "127.0.0.1", "--port", str(self.port), "--mount-port", "0",
             "--portmap", "off", "--state-dir", state,
             "--export", "%s *(rw,no_root_squash,insecure,sync)" % export],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while b"mount with:" not in open(log, "rb").read():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("writeback-faults: rnfsd did not start:\n" + open(log).read())
            time.sleep(0.05)

    def client(self, export):
        cred = rpc.auth_sys(0, 0, [0])
        m = rpc.RpcClient(rpc.connect("tcp", "127.0.0.1", self.port), mount.PROGRAM, 3, cred)
        res = mount.decode_mnt3(m.call(mount.MNT, mount.args_dirpath(export)))
        m.close()
        if res.status != mount.MNT3_OK:
            raise SystemExit("writeback-faults: MOUNT failed: %s" % mount.status_name(res.status))
        nfs = nfs3.Nfs3(rpc.RpcClient(rpc.connect("tcp", "127.0.0.1", self.port, timeout=60),
                                      nfs3.PROGRAM, 3, cred))
        return nfs, res.fh

    def log_text(self):
        return open(self.log_path, errors="replace").read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class SyncTrace:
    """strace on every thread of rnfsd, recording fsync and fdatasync."""

    def __init__(self, pid, out):
        self.out = out
        self.err = out + ".err"
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                ["strace", "-f", "-p", str(pid), "-e", "trace=fsync,fdatasync", "-o", out],
                stdout=subprocess.DEVNULL, stderr=err)
        # strace reports "Process N attached with T threads" once it holds every thread; threads
        # started later are followed (-f).
        deadline = time.monotonic() + 20
        while "attached" not in open(self.err).read():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("writeback-faults: strace did not attach:\n" + open(self.err).read())
            time.sleep(0.05)

    def stop(self):
        """Detaches and returns {syscall: number of calls}."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(20)
        counts = {"fsync": 0, "fdatasync": 0}
        for line in open(self.out):
            m = re.match(r"\d+\s+(fsync|fdatasync)\(", line)
            if m:
                counts[m.group(1)] += 1
        return counts


def create(nfs, root, name):
    res = nfs.create(root, name, nfs3.UNCHECKED, mode=0o644)
    if not res.ok:
        raise SystemExit("writeback-faults: CREATE %s: %s" % (name, res.status_name))
    return res.fh


def sync_calls(server, nfs, root, workdir):
    """Part 1: the sync calls behind each kind of write, counted by strace."""
    fh = create(nfs, root, "counted")
    block = os.urandom(4096)
    verifiers = set()
    cases = [
        ("10 UNSTABLE WRITEs", [("write", nfs3.UNSTABLE)] * 10, {"fsync": 0, "fdatasync": 0}),
        ("1 COMMIT", [("commit", None)], {"fsync": 0, "fdatasync": 1}),
        ("10 DATA_SYNC WRITEs", [("write", nfs3.DATA_SYNC)] * 10, {"fsync": 0, "fdatasync": 10}),
        ("10 FILE_SYNC WRITEs", [("write", nfs3.FILE_SYNC)] * 10, {"fsync": 10, "fdatasync": 0}),
    ]
    for n, (what, calls, expected) in enumerate(cases):
        trace = SyncTrace(server.proc.pid, os.path.join(workdir, "strace.%d" % n))
        answered = []
        for i, (kind, stable) in enumerate(calls):
            if kind == "write":
                res = nfs.write(fh, i * 4096, block, stable)
                answered.append(res.ok and res.committed >= stable)
            else:
                res = nfs.commit(fh)
                answered.append(res.ok)
            if res.ok:
                verifiers.add(res.verf)
        check(all(answered), "%s answered OK (each WRITE as stable as asked)" % what)
        counts = trace.stop()
        check(counts == expected, "%s made %s sync calls (expected %s)" % (what, counts, expected))
    check(len(verifiers) == 1, "one write verifier while nothing failed (%d seen)" % len(verifiers))
    return verifiers.pop() if len(verifiers) == 1 else None


ERRORS = (nfs3.NFS3ERR_IO, nfs3.NFS3ERR_NOSPC)


def writeback_failure(server, nfs, root, verifier, fill_mib):
    """Part 2: a device that fills up under acknowledged UNSTABLE writes."""
    fh = create(nfs, root, "lost")
    chunk = os.urandom(MIB)
    acked = set()
    for i in range(fill_mib):
        res = nfs.write(fh, i * MIB, chunk, nfs3.UNSTABLE)
        if not res.ok:
            check(False, "UNSTABLE WRITE #%d into the page cache: %s" % (i + 1, res.status_name))
            return
        acked.add(res.verf)
    check(acked == {verifier}, "%d MiB of UNSTABLE WRITEs acknowledged under the lifetime's verifier"
          % fill_mib)
    # Every reply from here on: a success may not carry the verifier the lost writes got.
    after = []

    res = nfs.commit(fh)
    check(not res.ok and res.status in ERRORS,
          "COMMIT of the unwritable data fails (%s)" % res.status_name)

    small = create(nfs, root, "after-commit-error")
    res = nfs.write(small, 0, b"x" * 100, nfs3.UNSTABLE)
    if check(res.ok, "an UNSTABLE WRITE after the failed COMMIT is answered (%s)" % res.status_name):
        check(res.verf != verifier, "the write verifier changed after the failed COMMIT")
        after.append(res.verf)

    for stable, name in ((nfs3.FILE_SYNC, "FILE_SYNC"), (nfs3.DATA_SYNC, "DATA_SYNC")):
        target = create(nfs, root, "stable-" + name)
        before = nfs.write(small, 0, b"y", nfs3.UNSTABLE)
        res = nfs.write(target, 0, chunk, stable)
        check(not res.ok and res.status in ERRORS,
              "a %s WRITE that cannot reach the device fails instead of claiming stability (%s)"
              % (name, res.status_name))
        res = nfs.write(small, 0, b"z", nfs3.UNSTABLE)
        if check(res.ok and before.ok, "UNSTABLE WRITEs around the failed %s WRITE are answered" % name):
            check(res.verf != before.verf, "the write verifier changed after the failed %s WRITE" % name)
            after.append(res.verf)

    res = nfs.commit(fh)
    if res.ok:
        after.append(res.verf)
    check(verifier not in after,
          "no successful reply after the failure carries the verifier the lost writes were "
          "acknowledged under (%d successful replies checked)" % len(after))

    check(nfs.getattr(root).ok, "rnfsd still answers GETATTR")
    fresh, fresh_root = server.client(server.export)
    check(fresh.getattr(fresh_root).ok, "a new client can mount and GETATTR")
    fresh.close()
    check("writeback error, rotating the write verifier" in server.log_text(),
          "rnfsd logged the writeback error")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rnfsd", required=True)
    ap.add_argument("--export", required=True, help="the export, on a filesystem that fails writeback")
    ap.add_argument("--work", required=True, help="a folder for the state dir, logs and traces")
    ap.add_argument("--fill-mib", type=int, default=64,
                    help="UNSTABLE MiB written to fill the device (more than it holds)")
    args = ap.parse_args()
    state = os.path.join(args.work, "state")
    os.makedirs(state, exist_ok=True)
    server = Server(args.rnfsd, args.export, state, os.path.join(args.work, "server.log"))
    server.export = args.export
    try:
        nfs, root = server.client(args.export)
        verifier = sync_calls(server, nfs, root, args.work)
        if verifier is not None:
            writeback_failure(server, nfs, root, verifier, args.fill_mib)
        nfs.close()
    finally:
        server.stop()
    if FAILED:
        print("writeback-faults: %d checks failed; rnfsd log:\n%s" % (len(FAILED), server.log_text()[-4000:]))
        return 1
    print("writeback-faults: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
