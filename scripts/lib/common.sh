# shellcheck shell=bash
# Shared helpers for Keel's test-platform scripts (scripts/guest-image, scripts/rig,
# scripts/bench). Source it; it defines functions and a few variables only:
#   KEEL_REPO_ROOT   repository root (resolved from this file's location)
#   KEEL_GUEST_CACHE $KEEL_REPO_ROOT/.cache/guest (git-ignored)
# Sections: messages, process/cleanup tracking, Debian packages, kernel modules,
# initramfs (cpio) building.

KEEL_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KEEL_REPO_ROOT=$(cd "$KEEL_LIB_DIR/../.." && pwd)
KEEL_GUEST_CACHE=$KEEL_REPO_ROOT/.cache/guest
KEEL_PROG=${KEEL_PROG:-$(basename "$0")}

# ---------------------------------------------------------------- messages

keel_log()  { printf '%s: %s\n' "$KEEL_PROG" "$*" >&2; }
keel_warn() { printf '%s: warning: %s\n' "$KEEL_PROG" "$*" >&2; }
keel_die()  { printf '%s: error: %s\n' "$KEEL_PROG" "$*" >&2; exit "${KEEL_DIE_RC:-1}"; }

# keel_need CMD...: fail clearly when a host tool is missing.
keel_need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || keel_die "required tool '$c' not found (apt-get install it)"
  done
}

# keel_median: the median of the numbers on stdin, one per line ("na" when there are none);
# an even count gives the mean of the middle two.
keel_median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "na"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# keel_now: wall-clock seconds with microseconds (bash 5 EPOCHREALTIME, no fork).
keel_now() { printf '%s\n' "${EPOCHREALTIME/,/.}"; }

# keel_elapsed START [END]: END-START in seconds, 2 decimals.
keel_elapsed() { awk -v a="$1" -v b="${2:-${EPOCHREALTIME/,/.}}" 'BEGIN{printf "%.2f\n", b-a}'; }

# keel_sh_quote ARG...: print the arguments as one POSIX-sh-safe, space-separated string.
keel_sh_quote() {
  local a out="" sq="'\\''"
  for a in "$@"; do
    out+="'${a//\'/$sq}' "
  done
  printf '%s\n' "${out% }"
}

# ---------------------------------------------------- processes and cleanup
# Scripts register PIDs they started and paths to delete; one EXIT/INT/TERM trap
# kills exactly those PIDs (never by name) and removes those paths.

KEEL_PIDS=()
KEEL_TMP_PATHS=()
KEEL_CLEANUP_HOOKS=()

keel_track_pid()   { KEEL_PIDS+=("$1"); }
keel_untrack_pid() {
  local p keep=()
  for p in "${KEEL_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  KEEL_PIDS=("${keep[@]}")
}
keel_track_path()  { KEEL_TMP_PATHS+=("$1"); }
keel_on_cleanup()  { KEEL_CLEANUP_HOOKS+=("$1"); }

# keel_kill_pid PID: TERM, then KILL after 3 s if still alive; reaps it when it is our child.
keel_kill_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}

keel_cleanup() {
  local rc=$? h p
  trap - EXIT INT TERM
  for h in "${KEEL_CLEANUP_HOOKS[@]}"; do "$h" || true; done
  for p in "${KEEL_PIDS[@]}"; do keel_kill_pid "$p"; done
  for p in "${KEEL_TMP_PATHS[@]}"; do [ -n "$p" ] && rm -rf -- "$p"; done
  return "$rc"
}

# keel_install_traps: EXIT cleans up; INT/TERM clean up and exit 130/143.
keel_install_traps() {
  trap 'keel_cleanup' EXIT
  trap 'keel_log "interrupted"; keel_cleanup; exit 130' INT
  trap 'keel_log "terminated"; keel_cleanup; exit 143' TERM
}

# ------------------------------------------------------------ Debian packages

# keel_newest_pkg REGEX: highest-versioned package name matching REGEX (apt-cache).
keel_newest_pkg() {
  apt-cache search --names-only "$1" 2>/dev/null | awk '{print $1}' | sort -V | tail -n 1
}

# keel_apt_download DIR PKG...: apt-get download into DIR; runs `apt-get update` once
# (and retries) only when the download fails for lack of package lists.
keel_apt_download() {
  local dir=$1 out; shift
  keel_need apt-get
  if out=$(cd "$dir" && apt-get download -q "$@" 2>&1); then return 0; fi
  if printf '%s' "$out" | grep -qiE 'unable to locate|has no installation candidate|no packages found|failed to fetch'; then
    keel_log "apt-get download failed ($(printf '%s' "$out" | grep -m1 -E '^E:' || true)); running apt-get update"
    apt-get update -q >/dev/null 2>&1 || keel_die "apt-get update failed (are you root / online?)"
    (cd "$dir" && apt-get download -q "$@" >/dev/null 2>&1) || keel_die "apt-get download $* failed"
    return 0
  fi
  printf '%s\n' "$out" >&2
  keel_die "apt-get download $* failed"
}

# keel_deb_extract DEB DIR: unpack a .deb's files (no maintainer scripts, no host changes).
keel_deb_extract() { mkdir -p "$2"; dpkg-deb -x "$1" "$2"; }

# ------------------------------------------------------------- kernel modules
# Debian kernel packages ship no modules.dep; dependencies come from each module's
# .modinfo "depends=" (and "softdep=pre:") strings. Files are .ko (6.1) or .ko.xz (6.12);
# file names may use '-' where the module name uses '_' (hyperv-keyboard).

declare -A KEEL_MOD_PATH=()    # module name (underscores) -> file
declare -A KEEL_MOD_BUILTIN=() # module name -> 1 when built into the kernel
declare -A KEEL_MOD_SEEN=()
KEEL_MOD_ORDER=()              # resolved load order (module names)
KEEL_MOD_MISSING=()

keel_mod_norm() { local n=${1##*/}; n=${n%.xz}; n=${n%.ko}; printf '%s\n' "${n//-/_}"; }

# keel_mod_index MODDIR: index MODDIR (= lib/modules/<release>) for the functions below.
keel_mod_index() {
  local dir=$1 f
  KEEL_MOD_PATH=(); KEEL_MOD_BUILTIN=(); KEEL_MOD_SEEN=(); KEEL_MOD_ORDER=(); KEEL_MOD_MISSING=()
  [ -d "$dir/kernel" ] || keel_die "no kernel modules under $dir"
  while IFS= read -r f; do
    KEEL_MOD_PATH[$(keel_mod_norm "$f")]=$f
  done < <(find "$dir/kernel" -type f \( -name '*.ko' -o -name '*.ko.xz' \))
  if [ -f "$dir/modules.builtin" ]; then
    while IFS= read -r f; do KEEL_MOD_BUILTIN[$(keel_mod_norm "$f")]=1; done < "$dir/modules.builtin"
  fi
}

# keel_mod_field FILE FIELD: print the first FIELD= value of a module's .modinfo.
keel_mod_field() {
  local f=$1 key=$2
  case $f in
    *.xz) xz -dc -- "$f" ;;
    *) cat -- "$f" ;;
  esac | tr '\0' '\n' | awk -v k="$key=" 'index($0, k) == 1 && !n++ { print substr($0, length(k) + 1) }'
}

# keel_mod_resolve NAME: append NAME and (first) its dependencies to KEEL_MOD_ORDER.
# Returns 1 (and records NAME in KEEL_MOD_MISSING) when it is neither a module nor built in.
keel_mod_resolve() {
  local name dep f soft
  name=$(keel_mod_norm "$1")
  [ -n "${KEEL_MOD_SEEN[$name]:-}" ] && return 0
  KEEL_MOD_SEEN[$name]=1
  f=${KEEL_MOD_PATH[$name]:-}
  if [ -z "$f" ]; then
    [ -n "${KEEL_MOD_BUILTIN[$name]:-}" ] && return 0
    KEEL_MOD_MISSING+=("$name")
    return 1
  fi
  # soft pre-dependencies such as ext4's "crypto-crc32c": try NAME, then NAME_generic
  soft=$(keel_mod_field "$f" softdep)
  soft=${soft#pre:}; soft=${soft%%post:*}
  for dep in $soft; do
    dep=$(keel_mod_norm "${dep#crypto_}")
    dep=${dep#crypto_}
    if [ -n "${KEEL_MOD_PATH[$dep]:-}" ]; then keel_mod_resolve "$dep" || true
    elif [ -n "${KEEL_MOD_PATH[${dep}_generic]:-}" ]; then keel_mod_resolve "${dep}_generic" || true
    fi
  done
  for dep in $(keel_mod_field "$f" depends | tr ',' ' '); do
    keel_mod_resolve "$dep" || keel_warn "module $name: dependency $dep not found"
  done
  KEEL_MOD_ORDER+=("$name")
}

# keel_mod_stage DESTDIR: write every module in KEEL_MOD_ORDER as DESTDIR/<name>.ko
# (decompressed: busybox insmod cannot read .xz) and DESTDIR/order (one name a line).
keel_mod_stage() {
  local dest=$1 m f
  mkdir -p "$dest"
  : > "$dest/order"
  for m in "${KEEL_MOD_ORDER[@]}"; do
    f=${KEEL_MOD_PATH[$m]}
    case $f in
      *.xz) xz -dc -- "$f" > "$dest/$m.ko" ;;
      *) cp -- "$f" "$dest/$m.ko" ;;
    esac
    printf '%s\n' "$m" >> "$dest/order"
  done
}

# ---------------------------------------------------------- initramfs (cpio)

# keel_cpio_devnodes: a newc cpio archive (to stdout) holding /dev and /dev/console
# (char 5:1), so the kernel can open the initial console before devtmpfs is mounted.
# Written by hand so building needs neither root (mknod) nor gen_init_cpio.
keel_cpio_devnodes() {
  _keel_cpio_entry() { # name mode rdevmajor rdevminor
    local name=$1 mode=$2 maj=$3 min=$4 namesize hdr pad
    namesize=$(( ${#name} + 1 ))
    hdr=$(printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
      0 "$mode" 0 0 1 0 0 0 0 "$maj" "$min" "$namesize" 0)
    printf '%s%s\0' "$hdr" "$name"
    pad=$(( (4 - (110 + namesize) % 4) % 4 ))
    [ "$pad" -gt 0 ] && head -c "$pad" /dev/zero
    return 0
  }
  _keel_cpio_entry dev $((0040755)) 0 0
  _keel_cpio_entry dev/console $((0020600)) 5 1
  _keel_cpio_entry 'TRAILER!!!' 0 0 0
}

# keel_cpio_build DIR OUT.gz BUSYBOX: pack DIR (plus the device nodes) into a gzip'd
# newc initramfs, using BUSYBOX's cpio applet (the host may have no cpio).
keel_cpio_build() {
  local dir=$1 out=$2 bb=$3
  {
    keel_cpio_devnodes
    (cd "$dir" && find . -mindepth 1 | LC_ALL=C sort | "$bb" cpio -o -H newc 2>/dev/null)
  } | gzip -6 > "$out"
}

# keel_busybox_tree DIR BUSYBOX: install a static busybox as DIR/bin/busybox with
# one symlink per applet in DIR/bin (so no --install is needed at boot), and the
# /sbin/poweroff and /sbin/reboot the kernel runs for an orderly shutdown request.
keel_busybox_tree() {
  local dir=$1 bb=$2 a
  mkdir -p "$dir/bin" "$dir/sbin" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/tmp" "$dir/run" \
           "$dir/mnt" "$dir/root" "$dir/etc"
  cp -- "$bb" "$dir/bin/busybox"
  chmod 0755 "$dir/bin/busybox"
  for a in $("$dir/bin/busybox" --list); do
    [ "$a" = busybox ] || [ -e "$dir/bin/$a" ] || ln -s busybox "$dir/bin/$a"
  done
  for a in poweroff reboot halt; do ln -sf ../bin/busybox "$dir/sbin/$a"; done
}
