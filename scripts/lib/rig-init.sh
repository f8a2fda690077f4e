#!/bin/sh
# /init of the L1 test-rig VM (busybox sh), installed by scripts/rig.
# Loads the rig modules (kvm_amd, 9p, tun, ...), checks /dev/kvm, mounts the host root
# read-only (9p tag "hostroot") at /host and the writable out folder (9p tag "rigout")
# at the same absolute path inside it, prepares /tmp /run /proc /sys /dev, then runs the
# command file named on the command line chrooted into /host with stdout+stderr on the
# virtio serial port "keel.out". Console markers (for scripts/rig):
#   KEEL-RIG ready | KEEL-RIG rc=<n> | KEEL-RIG error=<what>
export PATH=/bin:/sbin
RIG_PATH=/opt/swift/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

fail() {
    echo "KEEL-RIG error=$*"
    sync
    poweroff -f
    sleep 5
}

opt() {
    for tok in $(cat /proc/cmdline); do
        case $tok in "$1="*) echo "${tok#*=}"; return 0 ;; esac
    done
    return 1
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm

failed=""
for m in $(cat /lib/modules/rig/order); do
    [ -d "/sys/module/$m" ] && continue
    insmod "/lib/modules/rig/$m.ko" 2>/dev/null || failed="$failed $m"
done
[ -z "$failed" ] || echo "rig-init: modules failed to load:$failed"
[ -c /dev/kvm ] || fail "no-kvm(kvm_amd_did_not_create_/dev/kvm;failed:$(echo $failed | tr ' ' ,))"

out=$(opt keel.rig.out | base64 -d) || fail "bad-keel.rig.out"
cmdfile=$(opt keel.rig.cmd | base64 -d) || fail "bad-keel.rig.cmd"

mkdir -p /host
i=0
until mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /host 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 20 ] || fail "9p-mount-hostroot"; sleep 0.2
done
[ -d "/host$out" ] || fail "out-folder-missing"
# A caller's directory under /tmp or /run (a CI clone, say) stays visible (read-only) after
# those get fresh tmpfs mounts: set it aside, mount the tmpfs, put it back.
keep=$(opt keel.rig.keep | base64 -d 2>/dev/null || true)
if [ -n "$keep" ] && [ -d "/host$keep" ]; then
    mkdir -p /keep && mount -o bind "/host$keep" /keep || fail "bind-keep"
fi
mount -t tmpfs -o mode=1777 tmpfs /host/tmp
mount -t tmpfs -o mode=755 tmpfs /host/run
if [ -n "$keep" ] && [ -d /keep ]; then
    mkdir -p "/host$keep" && mount -o bind /keep "/host$keep" || fail "restore-keep"
fi
mkdir -p "/host$out" 2>/dev/null || true
mount -t 9p -o trans=virtio,version=9p2000.L,rw,msize=262144 rigout "/host$out" || fail "9p-mount-rigout"
mount -o rbind /proc /host/proc
mount -o rbind /sys /host/sys
mount -o rbind /dev /host/dev

port=""
for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = keel.out ] && port=/dev/${p##*/}
done
[ -n "$port" ] && [ -c "$port" ] || fail "no-output-port"

echo "KEEL-RIG ready"
chroot /host /usr/bin/env -i KEEL_IN_RIG=1 HOME=/tmp PATH="$RIG_PATH" TERM=dumb LANG=C.UTF-8 \
    USER=root LOGNAME=root /bin/sh "$out/$cmdfile" < /dev/null > "$port" 2>&1
rc=$?
sync
umount "/host$out" 2>/dev/null
echo "KEEL-RIG rc=$rc"
sleep 0.2
poweroff -f
sleep 5
