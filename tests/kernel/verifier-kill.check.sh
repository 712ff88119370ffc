#!/bin/bash
# Host side of `verifier-kill`: the copy is intact in the export, and the proxy's log shows that
# the client wrote again, under the new verifier and with new xids, every range the first
# lifetime had answered UNSTABLE and never committed.
set -euo pipefail
sum=$(sha256sum <"$EXPORT/work/copy" | cut -d' ' -f1)
[[ $sum == $(cat "$OUT/sum.payload") ]] || { echo "check: work/copy on the host has SHA-256 $sum"; exit 1; }
echo "check: work/copy is intact on the host"
exec python3 - "$OUT/faults.log" <<'PY'
import re, sys

# Lines: "conn=N xid=0x... prog=100003 proc=WRITE call offset=O count=C stable=S",
# "... proc=WRITE reply count=C committed=S verf=V", "... proc=COMMIT call offset=O count=C",
# "... proc=COMMIT reply verf=V" (or "status=N" for an error).
line_re = re.compile(r"conn=(\d+) xid=(0x[0-9a-f]+) prog=100003 proc=(WRITE|COMMIT) (call|reply)(.*)")
calls = {}  # (conn, xid) -> [call details], oldest first
events = []  # (kind, xid, details of the call, details of the reply)
for text in open(sys.argv[1]):
    m = line_re.match(text.strip())
    if not m:
        continue
    conn, xid, proc, what, rest = m.groups()
    fields = dict(kv.split("=", 1) for kv in rest.split())
    if what == "call":
        calls.setdefault((conn, xid), []).append(fields)
        events.append((proc + "-call", xid, fields, None))
    else:
        pending = calls.get((conn, xid))
        call = pending.pop(0) if pending else None
        events.append((proc + "-reply", xid, call, fields))

def fail(msg):
    print("check: " + msg)
    sys.exit(1)

verifiers = []
for kind, _, _, reply in events:
    if kind.endswith("-reply") and reply and "verf" in reply and reply["verf"] not in verifiers:
        verifiers.append(reply["verf"])
if len(verifiers) != 2:
    fail(f"expected one write verifier per server lifetime (2), saw {verifiers}")
old, new = verifiers

def covers(commit, offset, count):
    c_off, c_count = int(commit["offset"]), int(commit["count"])
    return offset >= c_off and (c_count == 0 or offset + count <= c_off + c_count)

# Ranges answered UNSTABLE under the old verifier, minus those a COMMIT sent after the reply and
# answered under the old verifier covered.
answered = []  # (position, offset, count, xid)
commits_old = []  # (position of the call, call)
commit_calls = {}
for pos, (kind, xid, call, reply) in enumerate(events):
    if kind == "WRITE-reply" and call and reply.get("verf") == old and reply.get("committed") == "UNSTABLE":
        answered.append((pos, int(call["offset"]), int(call["count"]), xid))
    if kind == "COMMIT-call":
        commit_calls.setdefault(xid, []).append(pos)
    if kind == "COMMIT-reply" and call and reply.get("verf") == old:
        commits_old.append((commit_calls[xid][0], call))
uncommitted = [
    (off, cnt, xid)
    for pos, off, cnt, xid in answered
    if not any(cpos > pos and covers(c, off, cnt) for cpos, c in commits_old)
]
if not uncommitted:
    fail(f"no range was left uncommitted under the old verifier ({len(answered)} UNSTABLE replies)")

# What the new lifetime received: WRITE calls answered under the new verifier.
rewritten = []
old_xids = {xid for _, _, _, xid in answered}
for kind, xid, call, reply in events:
    if kind == "WRITE-reply" and call and reply.get("verf") == new:
        rewritten.append((int(call["offset"]), int(call["count"]), xid))
missing = []
examples = []
for off, cnt, old_xid in uncommitted:
    got = sorted((o, o + c, x) for o, c, x in rewritten if o < off + cnt and o + c > off and x not in old_xids)
    reach = off
    for start, end, _ in got:
        if start <= reach:
            reach = max(reach, end)
    if reach < off + cnt:
        missing.append((off, cnt))
    elif len(examples) < 3:
        examples.append(f"offset {off} count {cnt}: xid {old_xid} under {old}, again as "
                        + ", ".join(f"xid {x}" for _, _, x in got) + f" under {new}")
if missing:
    fail(f"{len(missing)} uncommitted ranges were never written again with a new xid: {missing[:5]}")
commit_new = [r for k, _, _, r in events if k == "COMMIT-reply" and r and r.get("verf") == new]
if not commit_new:
    fail("no COMMIT was answered under the new verifier")
lost = sum(c for _, c, _ in uncommitted)
print(f"check: verifiers {old} (before SIGKILL) and {new} (after)")
print(f"check: {len(answered)} WRITEs answered UNSTABLE under {old}; {len(uncommitted)} of them "
      f"({lost / 1048576:.1f} MiB) were never covered by a COMMIT under it")
print(f"check: every one of those ranges was written again with a new xid and answered under {new} "
      f"({len(rewritten)} WRITEs in the new lifetime, {len(commit_new)} COMMITs answered under {new})")
for example in examples:
    print("check:   " + example)
PY
