# shellcheck shell=bash
# Collecting the files a command needs inside the test host, at the same absolute paths as here, in a staging
# tree that scripts/testhost archives. Source after common.sh and initramfs.sh.
#
# Programs are copied with every library `ldd` lists (the Swift runtime in /opt/swift/usr/lib/swift/linux
# included) and this machine's /etc/ld.so.cache, so the dynamic loader inside finds each library exactly where it
# found it here. Files are copied, never linked, so the test host's rootfs holds real files (and must: mounting
# a tmpfs over a copied directory would hide them).

files_root="" files_dynamic=0

files_init() { files_root="$1"; files_dynamic=0; }

# The absolute form of PATH, without resolving symlinks (a program may care which name it was started by).
absolute_path() { realpath -s -- "$1"; }

# add_file PATH: copy one file (following symlinks) to the same path in the staging tree.
add_file() {
    local abs dest
    abs="$(absolute_path "$1")"
    dest="$files_root$abs"
    [ -e "$dest" ] && return 0
    mkdir -p "$(dirname "$dest")"
    cp -L --preserve=mode "$abs" "$dest"
}

# add_tree DIR: copy a directory with everything in it (symlinks inside it stay symlinks).
add_tree() {
    local abs
    abs="$(absolute_path "$1")"
    mkdir -p "$files_root$(dirname "$abs")"
    cp -RH --preserve=mode "$abs" "$files_root$(dirname "$abs")/"
}

# add_program PATH: the program and, if it is dynamically linked, the libraries and loader that ldd lists.
add_program() {
    local program="$1" listing lib
    add_file "$program"
    # ldd fails for static programs and scripts: nothing more to copy then.
    listing="$(ldd "$program" 2>/dev/null)" || return 0
    if grep -q 'not found' <<<"$listing"; then
        die "$program: ldd cannot find some of its libraries here:"$'\n'"$(grep 'not found' <<<"$listing")"
    fi
    # Lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)";
    # linux-vdso.so.1 has no file.
    while read -r lib; do
        add_file "$lib"
    done < <(grep -o '/[^ ]*' <<<"$listing")
    files_dynamic=1
}

# add_if_file PATH: copy PATH if it names an existing file; a dynamically linked program brings its libraries.
add_if_file() {
    [ -n "$1" ] && [ -f "$1" ] || return 0
    if [ -x "$1" ]; then add_program "$1"; else add_file "$1"; fi
}

# files_finish: what every set of copied programs needs besides their libraries.
files_finish() {
    if [ "$files_dynamic" = 1 ] && [ -f /etc/ld.so.cache ]; then
        add_file /etc/ld.so.cache
    fi
}

is_busybox_applet() {
    local bb
    bb="$(static_busybox)"
    "$bb" --list | grep -qxF -- "$1"
}

# The swiftlet binary to run: $SWIFTLET_BIN, else the newer of this repo's release and debug builds.
find_swiftlet_binary() {
    if [ -n "${SWIFTLET_BIN:-}" ]; then
        [ -f "$SWIFTLET_BIN" ] && [ -x "$SWIFTLET_BIN" ] || { log "SWIFTLET_BIN=$SWIFTLET_BIN is not a program"; return 1; }
        printf '%s\n' "$SWIFTLET_BIN"
        return 0
    fi
    local release="$SWIFTLET_REPO/.build/release/swiftlet" debug="$SWIFTLET_REPO/.build/debug/swiftlet" best=""
    [ -x "$release" ] && best="$release"
    if [ -x "$debug" ] && { [ -z "$best" ] || [ "$debug" -nt "$best" ]; }; then best="$debug"; fi
    if [ -z "$best" ]; then
        log "no swiftlet binary: build it first (cd $SWIFTLET_REPO && swift build), or set SWIFTLET_BIN"
        return 1
    fi
    printf '%s\n' "$best"
}

# A word for a POSIX shell script: single-quoted, with each ' written as '\''.
shell_quote() {
    local s="${1//\'/\'\\\'\'}"
    printf "'%s'" "$s"
}
