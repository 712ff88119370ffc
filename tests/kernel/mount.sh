#!/bin/bash
# vm-timeout: 180
# The ways users mount, each followed by a write and a read through the mount and an umount:
#   1. plain `mount -t nfs -o vers=3,proto=tcp,nolock`: mount.nfs asks rnfsd's portmapper (guest
#      port 111) for the MOUNT and NFS ports;
#   2. explicit port=2049,mountport=20048 (no portmapper involved);
#   3. MOUNT on the NFS port (mountport=2049);
#   4. mount(2) directly with text options (util-linux `mount -i`, no mount.nfs);
#   5. without vers=: mount.nfs tries NFSv4 first and must fall back to v3.
# Also the portmapper's dump (rpcinfo -T tcp).
source "${BASH_SOURCE%/*}/lib.sh"

# mounted_with OPTION...: every OPTION appears in the mount's /proc/mounts options.
mounted_with() {
    local line opt
    line=$(awk -v m="$MNT" '$2 == m && $3 == "nfs" { print $4 }' /proc/mounts)
    [[ -n $line ]] || fail "$MNT is not an nfs mount: $(grep " $MNT " /proc/mounts || true)"
    for opt in "$@"; do
        [[ ,$line, == *,$opt,* ]] || fail "mount options lack $opt: $line"
    done
}

# use_mount TAG: a file written through the mount reads back, and is left for the host check.
use_mount() {
    local f=$MNT/written-by-$1
    printf 'mounted via %s\n' "$1" >"$f"
    expect_eq "$(cat "$f")" "mounted via $1" "read back through $1"
    ls -la "$MNT" >/dev/null
}

# rpcinfo -p and showmount use UDP or the universal addresses of RPCBIND v3/v4 (127.0.0.1 here,
# the server's own view), neither of which crosses guestfwd; the dump over TCP does.
step "rpcinfo -T tcp $SERVER"
rpcinfo -T tcp "$SERVER" >"$OUT/rpcinfo.txt"
grep -Eq '100003 +3 +tcp .*\.8\.1 ' "$OUT/rpcinfo.txt" || fail "rpcinfo: no NFS v3 on tcp 2049"
grep -Eq '100005 +3 +tcp .*\.78\.80 ' "$OUT/rpcinfo.txt" || fail "rpcinfo: no MOUNT v3 on tcp 20048"

step "1. mount -o $NFS_OPTS (ports from the portmapper)"
nfs_mount
mounted_with vers=3 proto=tcp mountport=20048 nolock
use_mount portmapper
nfs_umount

step "2. mount -o $NFS_OPTS,port=2049,mountport=20048,mountproto=tcp"
nfs_mount port=2049,mountport=20048,mountproto=tcp
mounted_with vers=3 port=2049 mountport=20048 mountproto=tcp
use_mount explicit-ports
nfs_umount

step "3. mount -o $NFS_OPTS,port=2049,mountport=2049,mountproto=tcp"
nfs_mount port=2049,mountport=2049,mountproto=tcp
mounted_with vers=3 port=2049 mountport=2049
use_mount mount-on-nfs-port
nfs_umount

step "4. mount -i (mount(2) with text options, no mount.nfs)"
mkdir -p "$MNT"
mount -i -t nfs -o "$NFS_OPTS,addr=$SERVER,port=2049,mountport=20048,mountproto=tcp" \
    "$SERVER:$EXPORT" "$MNT" || fail "mount -i failed"
mounted_with vers=3 port=2049
use_mount direct-mount2
nfs_umount

step "5. mount -o nolock,proto=tcp (no vers=: v4 is refused, v3 chosen)"
mkdir -p "$MNT"
timeout 120 mount -t nfs -o nolock,proto=tcp "$SERVER:$EXPORT" "$MNT" || fail "mount without vers= failed"
mounted_with vers=3
use_mount version-negotiated
nfs_umount

step "all mount paths work"
