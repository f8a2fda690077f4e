#!/bin/sh
# Keel guest agent: /init of the guest initramfs and of rootfs.ext4 (busybox sh).
# Installed by scripts/guest-image. It sets up the basic mounts, loads the modules in
# /lib/modules/keel/order, prints "KEEL-GUEST key=value ..." report lines on the console,
# optionally runs keel.script=<base64> or a shell (keel.shell=1), then powers off.
# With keel.root=<dev> (initramfs only) it mounts <dev> (ext4) and switch_roots into
# the same agent there. Kernel command line parameters understood:
#   keel.script=<base64 sh script>  keel.shell=1  keel.root=<dev>
#   keel.skip_modules=<mod>,<mod>   (modules not to load)
#   <module>.<param>=<value>  (passed to insmod, as modprobe would)
export PATH=/bin:/sbin
umask 022

say() { echo "KEEL-GUEST $*"; }

is_mounted() { grep -q " $1 " /proc/mounts 2>/dev/null; }

finish() {
    say done
    sync
    [ -n "${KEEL_ROOT:-}" ] && mount -o remount,ro / 2>/dev/null
    sleep 0.3   # let the UART drain before the power goes
    if [ -n "${KEEL_REBOOT:-}" ]; then reboot -f; else poweroff -f; fi
    sleep 5
}

# An orderly shutdown the kernel starts (Hyper-V shutdown service, ACPI power button) runs
# /sbin/poweroff or /sbin/reboot, which signal PID 1 the way busybox init expects. Traps run
# between commands: scripts that wait should sleep in short steps.
if [ $$ -eq 1 ]; then
    trap 'say shutdown=poweroff; finish' USR2
    trap 'say shutdown=halt; finish' USR1
    trap 'say shutdown=reboot; KEEL_REBOOT=1; finish' TERM
fi

# ---- basic mounts (already there when we came through switch_root)
[ -d /proc/self ] || mount -t proc proc /proc
is_mounted /sys || mount -t sysfs sysfs /sys
is_mounted /dev || mount -t devtmpfs devtmpfs /dev
is_mounted /tmp || mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /dev/pts
is_mounted /dev/pts || mount -t devpts devpts /dev/pts 2>/dev/null

CMDLINE=$(cat /proc/cmdline)
opt() { # opt KEY: value of KEY=... on the kernel command line ("" if absent)
    for tok in $CMDLINE; do
        case $tok in "$1="*) echo "${tok#*=}"; return 0 ;; esac
    done
    return 1
}

# ---- modules, in dependency order; already-loaded ones are skipped
# (after switch_root the initramfs stage has loaded them and passes its failures on)
failures=${KEEL_MODULE_FAILURES:-}
if [ -z "${KEEL_ROOT:-}" ] && [ -f /lib/modules/keel/order ]; then
    skip=",$(opt keel.skip_modules || true),"
    for m in $(cat /lib/modules/keel/order); do
        [ -d "/sys/module/$m" ] && continue
        case $skip in *",$m,"*) continue ;; esac
        params=""
        for tok in $CMDLINE; do
            case $tok in "$m."*=*) params="$params ${tok#"$m".}" ;; esac
        done
        # shellcheck disable=SC2086
        if ! insmod "/lib/modules/keel/$m.ko" $params 2>/tmp/insmod.err; then
            case $(cat /tmp/insmod.err) in
                *"File exists"*) ;;
                *) failures="${failures:+$failures,}$m" ;;
            esac
        fi
    done
fi

# ---- optional switch to an ext4 root (initramfs stage only)
root=$(opt keel.root || true)
if [ -n "$root" ] && [ -f /.keel-initramfs ]; then
    case $root in /dev/*) ;; *) root=/dev/$root ;; esac
    i=0
    while [ ! -b "$root" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    mkdir -p /newroot
    if mount -t ext4 "$root" /newroot 2>/tmp/mount.err && [ -x /newroot/init ]; then
        for d in /proc /sys /dev; do mount --move "$d" "/newroot$d"; done
        umount /tmp 2>/dev/null
        export KEEL_MODULE_FAILURES="$failures" KEEL_ROOT="$root"
        exec switch_root /newroot /init
    fi
    say "root_error=$(echo "$root:$(head -n 1 /tmp/mount.err)" | tr ' ' '_')"
fi

# ---- let asynchronously probed devices (vmbus offers, disks, NICs) appear:
# poll every 0.1 s until three samples agree, at most ~2 s.
snapshot() { ls /sys/bus/vmbus/devices /sys/block /sys/class/net 2>/dev/null | tr '\n' ' '; }
prev=$(snapshot); same=0; i=0
while [ $i -lt 20 ] && [ $same -lt 2 ]; do
    sleep 0.1
    cur=$(snapshot)
    if [ "$cur" = "$prev" ]; then same=$((same + 1)); else same=0; prev=$cur; fi
    i=$((i + 1))
done

# ---- report
join() { # join: stdin lines -> comma list, or "none"
    out=$(tr '\n' ',' | sed 's/,*$//')
    echo "${out:-none}"
}

cpus=0
for r in $(tr ',' ' ' < /sys/devices/system/cpu/online); do
    case $r in
        *-*) cpus=$((cpus + ${r#*-} - ${r%-*} + 1)) ;;
        *) cpus=$((cpus + 1)) ;;
    esac
done

hv=$(dmesg 2>/dev/null | sed -n 's/.*Hypervisor detected: *//p' | head -n 1 | tr -s ' \t' '__')

vmbus=$(for d in /sys/bus/vmbus/devices/*; do
            [ -f "$d/class_id" ] && tr -d '{}\n' < "$d/class_id" && echo
        done | sort | join)

blocks=$(for d in /sys/block/*; do
             [ -d "$d" ] || continue
             n=${d##*/}
             case $n in ram*|loop*) continue ;; esac
             echo "$n:$(( $(cat "$d/size") * 512 ))"
         done | join)

nets=$(for d in /sys/class/net/*; do
           [ -d "$d" ] || continue
           n=${d##*/}
           [ "$n" = lo ] && continue
           echo "$n:$(cat "$d/address")"
       done | join)

say "kernel=$(uname -r)"
say "root=${KEEL_ROOT:-initramfs}"
say "cpus=$cpus"
say "memory_kib=$(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo)"
say "hypervisor=${hv:-none}"
say "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo none)"
say "vmbus_devices=$vmbus"
say "block_devices=$blocks"
say "net_devices=$nets"
say "module_failures=${failures:-none}"
read -r up _ < /proc/uptime
say "ready uptime=$up"

# ---- optional work
script=$(opt keel.script || true)
if [ -n "$script" ]; then
    if echo "$script" | base64 -d > /tmp/keel-script.sh 2>/dev/null; then
        # in the background, so a shutdown trap runs while the script still works
        sh /tmp/keel-script.sh <&0 &
        wait $!
        rc=$?
    else
        echo "keel-guest: keel.script is not valid base64"
        rc=127
    fi
    say "script_rc=$rc"
fi

if [ "$(opt keel.shell || true)" = 1 ]; then
    # cttyhack opens the real console as controlling tty, so Ctrl-C works
    setsid cttyhack sh -l
fi

finish
