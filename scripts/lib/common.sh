# shellcheck shell=bash
# Shared helpers for scripts/setup, scripts/testhost and their tests. Source it; it defines functions and a few
# variables and runs nothing.
#
# Paths: everything this project prepares lives in one cache directory so that a developer's machine, CI and the
# test host (which sees the same paths) agree on where the default guest kernel and initramfs are:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/swiftlet/
#     downloads/  the Debian .deb files as fetched (kept so that a re-run does not download again)
#     guest/      the default guest: vmlinuz, config, release, modules/, initramfs.cpio, test-initramfs.cpio
#     testhost/   the test host: vmlinuz, release, modules/, base.cpio

# shellcheck disable=SC2034 # used by the scripts that source this file
SWIFTLET_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SWIFTLET_REPO="$(cd "$SWIFTLET_SCRIPTS/.." && pwd)"
SWIFTLET_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/swiftlet"

# The program name shown in messages; each script sets it before sourcing.
: "${PROG:=$(basename "$0")}"

# Messages go to stderr so that a script's stdout stays the command's output.
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

# Nanoseconds since the epoch (bash's EPOCHREALTIME: no fork) and the difference of two in seconds, "1.23".
now_ns() { local t="${EPOCHREALTIME/[.,]/}"; printf '%s000\n' "$t"; }
seconds_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }

# step "message" command...: print the message, run the command, print how long it took.
step() {
    local message="$1"; shift
    local started; started="$(now_ns)"
    log "$message ..."
    "$@"
    log "  done in $(seconds_between "$started" "$(now_ns)") s"
}

# Human-readable size of a file or directory tree.
size_of() { du -sh --apparent-size "$1" | cut -f1; }

# Run a command as root: directly if we are root, else through sudo (non-interactively in CI).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -- "$@"
    else
        die "need root for: $* (run as root or install sudo)"
    fi
}
