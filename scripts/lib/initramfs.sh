# shellcheck shell=bash
# Building small initramfs images from busybox, a few kernel modules and an /init script. Source after common.sh.
#
# The images are plain (uncompressed) newc cpio archives: the kernel unpacks them without a decompressor, which
# matters when the kernel runs emulated (the test host under TCG, a guest on this machine's nested KVM), and two
# of them can be concatenated into one initrd (the kernel unpacks each archive in turn over the same rootfs).
# The kernel's own built-in initramfs already provides /dev/console, so no device node has to be created and
# none of this needs root.

SWIFTLET_INITS="$SWIFTLET_SCRIPTS/initramfs"

# The statically linked busybox from Debian's busybox-static (a dynamic one would need its libraries copied too).
static_busybox() {
    local bb
    bb="$(command -v busybox || true)"
    [ -n "$bb" ] || die "busybox not found: run scripts/setup (it installs busybox-static)"
    if ldd "$bb" >/dev/null 2>&1; then
        die "$bb is dynamically linked: install busybox-static (apt-get install busybox-static)"
    fi
    printf '%s\n' "$bb"
}

# initramfs_skeleton ROOT: the directories every image has, busybox with each applet as a symlink to it, and
# just enough of /etc for programs that look up user names.
initramfs_skeleton() {
    local root="$1" bb applet
    bb="$(static_busybox)"
    rm -rf "$root"
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc,mnt,run}
    chmod 1777 "$root/tmp"
    cp "$bb" "$root/bin/busybox"
    # --list-full prints each applet with the directory it belongs in: bin/sh, sbin/insmod, usr/bin/awk, ...
    while read -r applet; do
        [ "$applet" = "bin/busybox" ] || ln -sf /bin/busybox "$root/$applet"
    done < <("$bb" --list-full)
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
    printf 'root:x:0:\n' >"$root/etc/group"
}

# initramfs_modules ROOT KERNELDIR: copy the modules prepared by prepare_kernel_dir to /lib/modules/<release>/,
# with their load order, and index them so that busybox modprobe works in the image's shell too.
initramfs_modules() {
    local root="$1" kdir="$2" release
    release="$(cat "$kdir/release")"
    mkdir -p "$root/lib/modules/$release"
    cp -r "$kdir/modules/." "$root/lib/modules/$release/"
    depmod -b "$root" "$release"
}

# write_cpio ROOT OUT: archive the tree under ROOT as a newc cpio, every file owned by root, entries sorted so
# that each directory comes before what it holds (the kernel does not create missing parent directories).
write_cpio() {
    local root="$1" out="$2"
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) >"$out.$$"
    mv "$out.$$" "$out"
}

# install_init ROOT FILE: FILE from scripts/initramfs/ becomes the image's /init.
install_init() {
    install -m 0755 "$SWIFTLET_INITS/$2" "$1/init"
}

# The test tools in scripts/tools/*.c (vsock-echo: busybox has no AF_VSOCK tool), linked statically because the
# initramfs has no C library. They stay in guest/tools/ too: the end-to-end tests run the host side of
# vsock-echo in the test host from there. Rebuilt when the source is newer.
build_guest_tools() {
    local out="$SWIFTLET_CACHE/guest/tools" source name
    command -v gcc >/dev/null 2>&1 || die "gcc not found: run scripts/setup (it installs gcc and libc6-dev)"
    mkdir -p "$out"
    for source in "$SWIFTLET_SCRIPTS"/tools/*.c; do
        name="$(basename "$source" .c)"
        if [ ! -x "$out/$name" ] || [ "$source" -nt "$out/$name" ]; then
            gcc -static -O2 -Wall -Wextra -o "$out/$name.$$" "$source" || die "cannot compile $source"
            mv "$out/$name.$$" "$out/$name"
        fi
    done
}

# The guest agent (docs/agent.md): swiftlet-agent from this checkout, built in release as a static executable
# (Package.swift links it with -static-executable: the initramfs has no C library or Swift runtime), kept as
# guest/swiftlet-agent. SWIFTLET_AGENT_BIN names a prebuilt one instead. The build compiles only the agent's
# small targets (no Foundation, no NIO), but package resolution fetches the dependencies on a fresh clone.
build_guest_agent() {
    local gdir="$SWIFTLET_CACHE/guest" repo swift built
    repo="$(dirname "$SWIFTLET_SCRIPTS")"
    if [ -n "${SWIFTLET_AGENT_BIN:-}" ]; then
        built="$SWIFTLET_AGENT_BIN"
    else
        swift="$(command -v swift || echo /opt/swift/usr/bin/swift)"
        [ -x "$swift" ] || die "swift not found: the guest agent is built with it (see the Swift check above)"
        (cd "$repo" && "$swift" build -c release --product swiftlet-agent >"$SWIFTLET_CACHE/agent-build.log" 2>&1) || {
            tail -n 30 "$SWIFTLET_CACHE/agent-build.log" >&2
            die "building swiftlet-agent failed (log: $SWIFTLET_CACHE/agent-build.log)"
        }
        built="$repo/.build/release/swiftlet-agent"
    fi
    [ -x "$built" ] || die "no swiftlet-agent at $built"
    if ldd "$built" >/dev/null 2>&1; then
        die "$built is dynamically linked: the guest has no shared libraries (build it with -c release)"
    fi
    # Stripped: 11 MB → 7.7 MB of initramfs that every boot unpacks.
    strip -o "$gdir/swiftlet-agent.$$" "$built" && chmod 0755 "$gdir/swiftlet-agent.$$"
    mv "$gdir/swiftlet-agent.$$" "$gdir/swiftlet-agent"
}

# The default guest: busybox, the virtio/vsock modules, the test tools and swiftlet-agent (when built: setup does
# it first) in /usr/bin, an /init that loads the modules, starts the agent and a shell.
build_guest_initramfs() {
    local gdir="$SWIFTLET_CACHE/guest" root
    root="$(mktemp -d "$SWIFTLET_CACHE/guest/.root.XXXXXX")"
    initramfs_skeleton "$root"
    initramfs_modules "$root" "$gdir"
    build_guest_tools
    cp "$gdir"/tools/* "$root/usr/bin/"
    if [ -x "$gdir/swiftlet-agent" ]; then
        cp "$gdir/swiftlet-agent" "$root/usr/bin/swiftlet-agent"
    fi
    install_init "$root" guest-init
    write_cpio "$root" "$gdir/initramfs.cpio"
    rm -rf "$root"
}

# The test guest: busybox and an /init that prints what the kernel was given and powers off. No modules.
build_guest_test_initramfs() {
    local gdir="$SWIFTLET_CACHE/guest" root
    root="$(mktemp -d "$SWIFTLET_CACHE/guest/.root.XXXXXX")"
    initramfs_skeleton "$root"
    install_init "$root" guest-test-init
    write_cpio "$root" "$gdir/test-initramfs.cpio"
    rm -rf "$root"
}

# The test host's base: busybox, the KVM, tun and veth modules, and the /init that runs a command (scripts/testhost
# appends a second archive with the command and its files).
build_testhost_base() {
    local tdir="$SWIFTLET_CACHE/testhost" root
    root="$(mktemp -d "$SWIFTLET_CACHE/testhost/.root.XXXXXX")"
    initramfs_skeleton "$root"
    initramfs_modules "$root" "$tdir"
    install_init "$root" testhost-init
    mkdir -p "$root/testhost"
    write_cpio "$root" "$tdir/base.cpio"
    rm -rf "$root"
}
