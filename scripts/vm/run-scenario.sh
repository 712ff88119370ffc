#!/usr/bin/env bash
# Runs kernel-client scenarios: for each NAME, starts rnfsd on a fresh export in a private network
# namespace, boots the qemu guest (scripts/vm/build-guest.sh), runs tests/kernel/NAME.sh inside it
# as root with the export reachable at $SERVER:$EXPORT, then runs tests/kernel/NAME.check.sh on the
# host, if present, to compare what the guest wrote with what the host sees in the export.
#
# usage: scripts/vm/run-scenario.sh NAME...     (no NAME: every tests/kernel/*.sh scenario)
#
# Prints each scenario's output, and on failure the guest console and the server log. Exits 0 when
# every scenario passed.
#
# tests/kernel/NAME.host.sh, if present, runs on the host while the guest runs (see
# scripts/vm/in-netns.sh): it can change the export behind the client's back and restart rnfsd.
# A scenario whose header says `# guests: a b` runs with named guests, all at once against one
# rnfsd, each with its own address and host name (see scripts/vm/in-netns.sh); each runs
# NAME.sh with GUEST set to its name, and passes when every guest does (a guest the host side
# killed on purpose excepted). `# lock-grace: N` starts rnfsd with --lock-grace N.
# tests/kernel/NAME.faults, if present, puts the fault proxy (rnfsd-faultproxy) between the guest
# and rnfsd, with the rules it lists armed; the host side can arm more through `fault add RULE`.
#
# Environment:
#   RNFSD_BIN       rnfsd binary to test (default: build target/release/rnfsd with cargo)
#   FAULTPROXY_BIN  rnfsd-faultproxy binary, for scenarios with NAME.faults (default: the one next
#                   to RNFSD_BIN, else build target/release/rnfsd-faultproxy with cargo)
#   VM_TIMEOUT      seconds one guest may run (default: the scenario's `# vm-timeout: N`, else 300)
#   VM_CAPTURE=1    capture the RPC traffic on the namespace's lo into WORK/capture.pcap
#   VM_KEEP=1       keep each scenario's work folder (/tmp/rnfsd-vm.*), even when it passed
#   RNFSD_VM_CACHE  where the guest is cached (default ${XDG_CACHE_HOME:-$HOME/.cache}/rnfsd-vm)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
SCENARIOS=$ROOT/tests/kernel

SCRIPT=kernel-tests
source "$ROOT/scripts/lib.sh"

need_root "unshare --net, and rnfsd's file handles"

if (($# == 0)); then
    for f in "$SCENARIOS"/*.sh; do
        case $f in
        *.check.sh | *.host.sh | */lib.sh | */locker.sh) ;;
        *) set -- "$@" "$(basename "$f" .sh)" ;;
        esac
    done
fi
for name in "$@"; do
    [[ -f $SCENARIOS/$name.sh ]] || die "no scenario tests/kernel/$name.sh"
done

if [[ -n ${RNFSD_BIN:-} ]]; then
    BIN=$(realpath "$RNFSD_BIN")
else
    say "building rnfsd and rnfsd-faultproxy (release)"
    timeout 1800 cargo build --release --quiet -p rnfsd -p rnfsd-faultproxy
    BIN=$ROOT/target/release/rnfsd
fi
[[ -x $BIN ]] || die "$BIN is not an executable"

# The fault proxy, only when a chosen scenario has fault rules.
PROXY_BIN=
for name in "$@"; do
    [[ -f $SCENARIOS/$name.faults ]] || continue
    if [[ -n ${FAULTPROXY_BIN:-} ]]; then
        PROXY_BIN=$(realpath "$FAULTPROXY_BIN")
    elif [[ -x $(dirname "$BIN")/rnfsd-faultproxy ]]; then
        PROXY_BIN=$(dirname "$BIN")/rnfsd-faultproxy
    else
        say "building rnfsd-faultproxy (release)"
        timeout 1800 cargo build --release --quiet -p rnfsd-faultproxy
        PROXY_BIN=$ROOT/target/release/rnfsd-faultproxy
    fi
    [[ -x $PROXY_BIN ]] || die "$PROXY_BIN is not an executable"
    break
done

GUEST=$(timeout 1200 bash "$ROOT/scripts/vm/build-guest.sh") || die "building the guest failed"

# Prints a file between markers, the last $2 lines of it.
show() {
    local title=$1 file=$2 lines=$3
    [[ -s $file ]] || return 0
    echo "---- $title ($file) ----"
    tail -n "$lines" "$file"
    echo "---- end of $title ----"
}

# Runs one scenario; returns its status.
run_one() {
    local name=$1 work limit rc started
    limit=${VM_TIMEOUT:-$(sed -n 's/^# vm-timeout: *\([0-9]\+\).*/\1/p' "$SCENARIOS/$name.sh" | head -1)}
    limit=${limit:-300}
    # Under /tmp: the guest mounts a tmpfs over /tmp, where the job folder's mount point can be made.
    work=$(mktemp -d /tmp/rnfsd-vm.XXXXXX)
    mkdir -p "$work/export" "$work/state" "$work/job/out" "$work/job/sync"
    cp "$SCENARIOS/lib.sh" "$SCENARIOS/locker.sh" "$SCENARIOS/$name.sh" "$work/job/"
    cp "$GUEST/lockt" "$work/job/lockt"
    [[ -f $SCENARIOS/$name.host.sh ]] && cp "$SCENARIOS/$name.host.sh" "$work/host.sh"
    [[ -f $SCENARIOS/$name.faults ]] && cp "$SCENARIOS/$name.faults" "$work/faults"
    {
        echo '#!/bin/bash'
        printf 'export SERVER=10.0.2.100 EXPORT=%q JOB=%q MNT=/mnt/nfs OUT=%q LOCKT=%q\n' \
            "$work/export" "$work/job" "$work/job/out" "$work/job/lockt"
        printf 'exec /bin/bash ./%q\n' "$name.sh"
    } >"$work/job/job.sh"

    say "$name: starting (limit ${limit}s, work $work)"
    started=$SECONDS
    local guests grace
    guests=$(sed -n 's/^# guests: *\(.*\)/\1/p' "$SCENARIOS/$name.sh" | head -1)
    grace=$(sed -n 's/^# lock-grace: *\([0-9]\+\).*/\1/p' "$SCENARIOS/$name.sh" | head -1)
    rc=0
    GUESTS=$guests LOCK_GRACE=$grace unshare --net -- \
        bash "$ROOT/scripts/vm/in-netns.sh" "$work" "$GUEST" "$BIN" "$limit" "$PROXY_BIN" || rc=$?
    local guest_rc g
    if [[ -n $guests ]]; then
        guest_rc=0
        for g in $guests; do
            local r
            if [[ -e $work/killed-$g ]]; then
                r=killed
            elif [[ -f $work/job/rc-$g ]]; then
                r=$(cat "$work/job/rc-$g")
            elif ((rc == 124)); then
                r=124
            else
                r=125
            fi
            say "$name: guest $g: $r"
            echo "---- $name: guest $g output ----"
            cat "$work/job/out-$g.log" 2>/dev/null || true
            echo "---- end of guest $g output ----"
            [[ $r == 0 || $r == killed || $guest_rc != 0 ]] || guest_rc=$r
        done
    elif [[ -f $work/job/rc ]]; then
        guest_rc=$(cat "$work/job/rc")
    elif grep -q 'VMRUN-RC=' "$work/console.log" 2>/dev/null; then
        guest_rc=$(sed -n 's/.*VMRUN-RC=\([0-9]*\).*/\1/p' "$work/console.log" | tail -1)
    elif ((rc == 124)); then
        say "$name: the guest ran out of time (${limit}s)"
        guest_rc=124
    else
        say "$name: the guest returned no status (namespace script exit $rc)"
        guest_rc=125
    fi
    if [[ -z $guests ]]; then
        echo "---- $name: guest output ----"
        cat "$work/job/out.log" 2>/dev/null || true
        echo "---- end of guest output ----"
    fi

    if [[ -f $work/host.sh ]]; then
        echo "---- $name: host side ----"
        cat "$work/host.log" 2>/dev/null || true
        echo "---- end of host side ----"
        local host_rc
        host_rc=$(cat "$work/host.rc" 2>/dev/null || echo unfinished)
        if [[ $host_rc != 0 ]]; then
            say "$name: the host side ended with status $host_rc"
            [[ $guest_rc != 0 ]] || guest_rc=1
        fi
    fi
    if [[ $guest_rc == 0 && -f $SCENARIOS/$name.check.sh ]]; then
        say "$name: host-side check"
        EXPORT=$work/export OUT=$work/job/out timeout 600 bash "$SCENARIOS/$name.check.sh" || guest_rc=$?
    fi
    local took=$((SECONDS - started))
    if [[ $guest_rc == 0 ]]; then
        say "$name: PASS (${took}s)"
        RESULTS+=("PASS  $name  ${took}s")
        [[ ${VM_KEEP:-0} == 1 ]] || rm -rf "$work"
        return 0
    fi
    show "guest console" "$work/console.log" 150
    for g in $guests; do
        show "guest $g console" "$work/console-$g.log" 80
    done
    show "rnfsd log" "$work/server.log" 150
    show "relay log" "$work/relay.log" 30
    show "fault proxy events" "$work/faults.log" 40
    show "fault proxy log" "$work/faultproxy.log" 20
    say "$name: FAIL (status $guest_rc, ${took}s); work folder kept: $work"
    RESULTS+=("FAIL  $name  ${took}s  (status $guest_rc, $work)")
    return 1
}

RESULTS=()
failed=0
for name in "$@"; do
    run_one "$name" || failed=$((failed + 1))
done
echo "==== kernel-client scenarios ===="
printf '%s\n' "${RESULTS[@]}"
((failed == 0))
