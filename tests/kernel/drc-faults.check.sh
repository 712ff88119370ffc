#!/bin/bash
# Host side of `drc-faults`: each command's effect is on disk exactly once, the proxy logged one
# lost reply per procedure, and rnfsd's cache answered at least one retransmission per fault.
set -euo pipefail
fail() {
    echo "check: $*"
    exit 1
}
d=$EXPORT/d
listing=$(cd "$d" && ls -A | tr '\n' ' ')
[[ $listing == "dir-new file-ln file-ln2 file-moved file-new sym " ]] || fail "the export holds: $listing"
[[ $(stat -c '%h %a' "$d/file-ln") == "2 600" ]] || fail "file-ln: $(stat -c '%h %a' "$d/file-ln")"
[[ $(stat -c %i "$d/file-ln") == $(stat -c %i "$d/file-ln2") ]] || fail "file-ln2 is not a link to file-ln"
[[ $(readlink "$d/sym") == "target/of/the link" ]] || fail "sym points to $(readlink "$d/sym")"
[[ $(cat "$d/file-moved") == "moved once" ]] || fail "file-moved holds $(cat "$d/file-moved")"
[[ -d $d/dir-new && -f $d/file-new && ! -s $d/file-new ]] || fail "dir-new or file-new is wrong"
# faults.log has a line per call, reply and fault: "conn=N xid=0x... prog=P proc=NAME WHAT".
for proc in REMOVE RMDIR RENAME MKDIR LINK SYMLINK CREATE SETATTR; do
    n=$(grep -c "proc=$proc action=drop-reply-close" "$OUT/faults.log" || true)
    [[ $n == 1 ]] || fail "$n lost replies of $proc in the proxy's log, expected 1"
    read -r conn xid _ < <(grep "proc=$proc action=drop-reply-close" "$OUT/faults.log")
    # The client retransmitted the same xid on a new connection, and got a reply there.
    again=$(grep " $xid .* call$" "$OUT/faults.log" | grep -vc "^$conn " || true)
    answered=$(grep " $xid .* reply$" "$OUT/faults.log" | grep -vc "^$conn " || true)
    ((again >= 1 && answered >= 1)) ||
        fail "$proc $xid: $again retransmissions and $answered replies on a new connection"
    echo "check: $proc $xid: reply lost on $conn, retransmitted and answered on a new connection"
done
hits=$(sed -n 's/.* drc_hits=\([0-9]*\).*/\1/p' "$OUT/counters")
[[ -n $hits ]] || fail "no counters line: $(cat "$OUT/counters")"
((hits >= 8)) || fail "only $hits DRC hits for 8 lost replies: $(cat "$OUT/counters")"
echo "check: one effect per command on disk; 8 lost replies logged; $(sed 's/.*counters: //' "$OUT/counters")"
