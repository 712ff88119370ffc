#!/usr/bin/env bash
# Builds the qemu guest that runs the Linux kernel NFS client, from Debian's packages, and prints
# the folder that holds it: `vmlinux` (the uncompressed kernel of linux-image-amd64, booted through
# PVH), `initramfs.gz` (static busybox, the virtio/9p/NFS modules with their signatures stripped,
# scripts/vm/init.sh as /init), `relay` (the host side of qemu's guestfwd rules) and `lockt` (the
# lock tool of the lock scenarios, run in the guest and on the host).
#
# The result is cached under $RNFSD_VM_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/rnfsd-vm), in
# a folder named after the kernel package and version, the busybox version and a hash of the rig's
# own files; a second run with the same packages prints that folder at once.
#
# Installs what it needs with apt when it is missing and this runs as root: qemu-system-x86,
# busybox-static, xz-utils, cpio, gcc, libc6-dev, iproute2, nfs-common (mount.nfs, used in the
# guest from the host's root), make and git for the build-git scenario, and for the lock scenarios
# rpcbind and rpc.statd (run in the guest), sqlite3 and python3.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${RNFSD_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rnfsd-vm}
# Loaded in this order by /init; their dependencies come from modules.dep.
MODULES=(virtio_pci virtio_net virtio-rng 9pnet_virtio 9p sunrpc grace lockd nfs_acl nfs nfsv3)

SCRIPT=build-guest
source "$HERE/../lib.sh"

# command:package pairs the rig needs on the host.
NEEDED=(qemu-system-x86_64:qemu-system-x86 xz:xz-utils cpio:cpio gcc:gcc ip:iproute2
    unshare:util-linux mount.nfs:nfs-common rpc.statd:nfs-common rpcbind:rpcbind dpkg-deb:dpkg
    apt-get:apt make:make git:git sqlite3:sqlite3 python3:python3)
missing_packages() {
    local pair
    for pair in "${NEEDED[@]}"; do
        command -v "${pair%%:*}" >/dev/null || echo "${pair#*:}"
    done
    [[ -x /bin/busybox && $(/bin/busybox --list 2>/dev/null) == *$'\n'depmod$'\n'* ]] ||
        echo busybox-static
    [[ -e /usr/lib/x86_64-linux-gnu/libc.a ]] || echo libc6-dev
}

apt_updated=0
apt_update() {
    if [[ $apt_updated == 0 ]]; then
        timeout 600 apt-get update -q >&2
        apt_updated=1
    fi
}

missing=$(missing_packages | sort -u | tr '\n' ' ')
if [[ -n ${missing// /} ]]; then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        die "missing packages: $missing(install them, or run as root with apt)"
    fi
    say "installing $missing"
    apt_update
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q --no-install-recommends $missing >&2
    missing=$(missing_packages | sort -u | tr '\n' ' ')
    [[ -z ${missing// /} ]] || die "still missing after apt-get install: $missing"
fi
# A dynamic busybox cannot run as /init, so the static one must be what /bin/busybox is.
file_is_static() { ! readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'; }
file_is_static /bin/busybox || die "/bin/busybox is not static: install busybox-static"

kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
KPKG=$(kernel_package)
if [[ -z $KPKG ]]; then
    apt_update
    KPKG=$(kernel_package)
fi
[[ -n $KPKG ]] || die "apt does not know linux-image-amd64 (is this Debian with its main archive?)"
KVERSION=$(apt-cache show --no-all-versions "$KPKG" | awk '/^Version:/ { print $2; exit }')
BBVERSION=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)
RIG_HASH=$(cat "$HERE/build-guest.sh" "$HERE/init.sh" "$HERE/relay.c" "$HERE/lockt.c" | sha256sum | cut -c1-12)
KEY="${KPKG}_${KVERSION}_busybox-${BBVERSION}_${RIG_HASH}"
KEY=${KEY//[^A-Za-z0-9._+-]/_}
OUT=$CACHE/$KEY

if [[ -s $OUT/vmlinux && -s $OUT/initramfs.gz && -x $OUT/relay && -x $OUT/lockt ]]; then
    echo "$OUT"
    exit 0
fi

say "building the guest $KEY"
mkdir -p "$CACHE"
STAGE=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
started=$SECONDS

(cd "$STAGE" && timeout 900 apt-get download -q "$KPKG=$KVERSION" >&2 2>&1) ||
    die "apt-get download $KPKG=$KVERSION failed"
DEB=$(ls "$STAGE"/*.deb)
mkdir "$STAGE/pkg"
dpkg-deb -x "$DEB" "$STAGE/pkg"
rm -f "$DEB"
KVER=$(ls "$STAGE/pkg/lib/modules")
[[ $(wc -w <<<"$KVER") == 1 ]] || die "expected one kernel version in $KPKG, found: $KVER"
KROOT=$STAGE/pkg/lib/modules/$KVER
for opt in CONFIG_PVH=y CONFIG_NFS_V3=m CONFIG_9P_FS=m; do
    grep -qx "$opt" "$STAGE/pkg/boot/config-$KVER" || die "$KPKG is not built with $opt"
done

# The bzImage wraps an XZ stream; booting the ELF inside through PVH skips both the real-mode
# setup and the decompression, which take ~7 s under TCG. xz complains about the bytes after the
# stream, so success is judged by the ELF magic.
VMLINUZ=$STAGE/pkg/boot/vmlinuz-$KVER
off=$(grep -a -b -o -m1 $'\xfd7zXZ\x00' "$VMLINUZ" | head -1 | cut -d: -f1)
[[ -n $off ]] || die "no XZ stream in $VMLINUZ"
tail -c +$((off + 1)) "$VMLINUZ" | xz -dc >"$STAGE/vmlinux" 2>/dev/null || true
[[ $(head -c 4 "$STAGE/vmlinux") == $'\x7fELF' ]] || die "could not extract vmlinux from $VMLINUZ"

# The package ships no modules.dep.
/bin/busybox depmod -b "$STAGE/pkg" "$KVER"

# Dependency closure of $MODULES, as paths relative to $KROOT.
closure=$(awk -v want="${MODULES[*]}" '
    function base(p) { sub(/.*\//, "", p); sub(/\.ko.*$/, "", p); gsub(/-/, "_", p); return p }
    BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) { x = w[i]; gsub(/-/, "_", x); wanted[x] = 1 } }
    {
        sub(/:/, "", $1)
        if (base($1) in wanted) { for (i = 1; i <= NF; i++) need[$i] = 1; found[base($1)] = 1 }
    }
    END {
        for (x in wanted) if (!(x in found)) { print "missing module " x > "/dev/stderr"; exit 1 }
        for (p in need) print p
    }' "$KROOT/modules.dep")

INITRD=$STAGE/initramfs
mkdir -p "$INITRD"/{bin,sbin,etc,proc,sys,dev,tmp,job,host,"lib/modules/$KVER"}
cp /bin/busybox "$INITRD/bin/busybox"
for applet in $(/bin/busybox --list); do
    [[ -e $INITRD/bin/$applet ]] || ln -s busybox "$INITRD/bin/$applet"
done
ln -s ../bin/busybox "$INITRD/sbin/modprobe"
cp "$KROOT/modules.builtin" "$KROOT/modules.order" "$INITRD/lib/modules/$KVER/"

# A signed module ends with "~Module signature appended~" (28 bytes) after a 12-byte
# module_signature whose last 4 bytes are the signature length (big-endian). Removing the
# signature saves its RSA check under TCG; the kernel then only logs a taint.
strip_signature() {
    local f=$1 size siglen
    size=$(stat -c %s "$f")
    [[ $(tail -c 28 "$f") == "~Module signature appended~" ]] || return 0
    siglen=$(tail -c 32 "$f" | head -c 4 | od -An -tu1 | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
    truncate -s $((size - siglen - 12 - 28)) "$f"
}
for rel in $closure; do
    mkdir -p "$INITRD/lib/modules/$KVER/$(dirname "$rel")"
    case $rel in
    *.ko.xz) xz -dc "$KROOT/$rel" >"$INITRD/lib/modules/$KVER/${rel%.xz}" ;;
    *.ko) cp "$KROOT/$rel" "$INITRD/lib/modules/$KVER/$rel" ;;
    *) die "unexpected module file $rel" ;;
    esac
    strip_signature "$INITRD/lib/modules/$KVER/${rel%.xz}"
done
/bin/busybox depmod -b "$INITRD" "$KVER"
printf '%s\n' "${MODULES[@]}" >"$INITRD/etc/rnfsd-modules"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$INITRD/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$INITRD/etc/group"
install -m 0755 "$HERE/init.sh" "$INITRD/init"
(cd "$INITRD" && find . | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -6) >"$STAGE/initramfs.gz"

gcc -O2 -Wall -Wextra -Werror -o "$STAGE/relay" "$HERE/relay.c"
gcc -O2 -Wall -Wextra -Werror -o "$STAGE/lockt" "$HERE/lockt.c"

mkdir -p "$OUT.new"
mv "$STAGE/vmlinux" "$STAGE/initramfs.gz" "$STAGE/relay" "$STAGE/lockt" "$OUT.new/"
echo "$KVER" >"$OUT.new/kernel-release"
rm -rf "$OUT"
mv "$OUT.new" "$OUT"
# Older guests are ~70 MB each and never used again.
for old in "$CACHE"/*/; do
    old=${old%/}
    case $old in
    "$OUT" | "$CACHE"/build.*) ;;
    *) rm -rf "$old" ;;
    esac
done
say "guest ready in $((SECONDS - started)) s: $OUT"
echo "$OUT"
