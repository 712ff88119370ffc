#!/bin/sh
# /init of the guest's initramfs (busybox sh): loads the virtio, 9p and NFS client modules, brings
# up eth0 with a static address (the NFS server is 10.0.2.100, reachable only through qemu's
# guestfwd rules), mounts the job folder and the host's root (read-only) over 9p, runs the job
# chrooted into the host root, writes its exit status to JOB/rc, and powers off.
#
# The kernel command line carries `rnfsd_job=<host path of the job folder>`, and for a scenario
# with named guests (several guests at once, each with its own address and host name)
# `rnfsd_guest=NAME rnfsd_ip=ADDRESS`: the host name becomes guest-NAME, eth0 gets ADDRESS, the
# job sees GUEST=NAME, and its output and status go to JOB/out-NAME.log and JOB/rc-NAME.
export PATH=/bin:/sbin

say() { echo "vm-init: $*"; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /job /host
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
# devtmpfs lacks these; bash's process substitution needs /dev/fd.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr

JOB= GUEST= ADDRESS=10.0.2.15
for word in $(cat /proc/cmdline); do
    case $word in
    rnfsd_job=*) JOB=${word#rnfsd_job=} ;;
    rnfsd_guest=*) GUEST=${word#rnfsd_guest=} ;;
    rnfsd_ip=*) ADDRESS=${word#rnfsd_ip=} ;;
    esac
done
# Where this guest's output and status go in the job folder.
TAG=${GUEST:+-$GUEST}
[ -n "$GUEST" ] && hostname "guest-$GUEST"

finish() {
    echo "VMRUN-RC=$1"
    [ -d /job ] && echo "$1" >"/job/rc$TAG"
    sync
    umount -l /host 2>/dev/null
    umount -l /job 2>/dev/null
    poweroff -f
}

for m in $(cat /etc/rnfsd-modules); do
    modprobe "$m" || say "modprobe $m failed"
done

ip link set lo up
ip link set eth0 up
ip addr add "$ADDRESS/24" dev eth0
ip route add default via 10.0.2.2

P9=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$P9,access=any" job /job || {
    say "cannot mount the job share"
    finish 125
}
mount -t 9p -o "$P9,ro,cache=loose" hostroot /host || {
    say "cannot mount the host root"
    finish 125
}
[ -n "$JOB" ] || {
    say "no rnfsd_job= on the kernel command line"
    finish 125
}

mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -o bind /dev /host/dev
mount -t devpts devpts /host/dev/pts
for d in tmp var/tmp run mnt root; do
    mount -t tmpfs -o mode=1777 tmpfs "/host/$d"
done
chmod 0700 /host/root
# The job folder appears at its host path, so paths mean the same on both sides. It lives under
# the host's /tmp, which is a tmpfs here, so its mount point can be created.
mkdir -p "/host$JOB"
mount -o bind /job "/host$JOB"

say "running job $JOB"
chroot /host /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 GUEST="$GUEST" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/sh -c "cd '$JOB' && /bin/bash ./job.sh; echo \$? >job$TAG.rc" </dev/null 2>&1 | tee "/job/out$TAG.log"
rc=$(cat "/job/job$TAG.rc" 2>/dev/null || echo 125)
umount -l "/host$JOB"
finish "$rc"
