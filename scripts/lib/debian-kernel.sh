# shellcheck shell=bash
# Fetching a Debian kernel package and picking the modules a small initramfs needs. Source after common.sh.
#
# Debian names its kernels twice: a meta package that tracks the newest ABI (linux-image-cloud-amd64) and the
# versioned package it depends on, which holds the files (linux-image-6.1.0-56-cloud-amd64). We download both with
# `apt-get download` (no root, nothing installed), read the meta package's Depends to find the versioned one, and
# unpack the latter with `dpkg-deb -x`. The .deb files stay in downloads/, so a re-run only downloads when Debian
# has published a newer kernel.

# The file name apt-get download gives PACKAGE at VERSION ("1:2.3" is written "1%3a2.3").
deb_file_name() { printf '%s_%s_amd64.deb' "$1" "${2//:/%3a}"; }

# download_deb PACKAGE VERSION: print the path of PACKAGE's .deb in downloads/, fetching it if it is not there.
download_deb() {
    local package="$1" version="$2" dir="$SWIFTLET_CACHE/downloads"
    local file; file="$dir/$(deb_file_name "$package" "$version")"
    mkdir -p "$dir"
    if [ ! -s "$file" ]; then
        log "  downloading $package $version"
        # As root, apt drops to the _apt user to download, which cannot write into root's home: keep it root.
        local sandbox=()
        [ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
        (cd "$dir" && apt-get download -qq "${sandbox[@]}" "$package=$version") >&2 \
            || die "apt-get download $package=$version failed (did 'apt-get update' run?)"
    fi
    printf '%s\n' "$file"
}

# fetch_debian_kernel META: print the path of the versioned kernel .deb that META currently depends on.
fetch_debian_kernel() {
    local meta="$1" candidate
    candidate="$(apt-cache policy "$meta" | awk '/Candidate:/ { print $2 }')"
    [ -n "$candidate" ] && [ "$candidate" != "(none)" ] \
        || die "apt knows no candidate for $meta: run 'apt-get update' (Debian 12 main must be in sources)"
    local meta_deb; meta_deb="$(download_deb "$meta" "$candidate")"
    # Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)
    local depends package version
    depends="$(dpkg-deb -f "$meta_deb" Depends)"
    package="$(sed -n 's/^\(linux-image-[^ ,]*\) (= \([^)]*\)).*/\1/p' <<<"$depends")"
    version="$(sed -n 's/^\(linux-image-[^ ,]*\) (= \([^)]*\)).*/\2/p' <<<"$depends")"
    [ -n "$package" ] && [ -n "$version" ] || die "cannot read the kernel package from $meta's Depends: $depends"
    download_deb "$package" "$version"
}

# decompress_module SRC DEST: copy a module, decompressing .ko.xz/.ko.zst/.ko.gz (busybox insmod reads plain .ko).
decompress_module() {
    local src="$1" dest="$2"
    mkdir -p "$(dirname "$dest")"
    case "$src" in
        *.ko.xz)  xz -dc "$src" >"$dest" ;;
        *.ko.zst) zstd -q -dc "$src" >"$dest" ;;
        *.ko.gz)  gzip -dc "$src" >"$dest" ;;
        *.ko)     cp "$src" "$dest" ;;
        *)        die "not a kernel module: $src" ;;
    esac
}

# extract_vmlinux BZIMAGE OUT: unpack the ELF vmlinux that a bzImage carries as its compressed payload.
# The payload starts at the first compression magic after the setup code and the decompressor; a magic may also
# occur by chance earlier, so each candidate offset is tried until one decompresses to an ELF file. Decompressors
# complain about the bytes that follow the payload (the bzImage's tail); what they wrote before is the kernel.
# (The same idea as Linux's scripts/extract-vmlinux.) Booting the ELF directly skips running the decompressor,
# which is slow wherever the kernel runs emulated: QEMU boots it through its PVH entry point.
extract_vmlinux() {
    local image="$1" out="$2" magic_tool magic tool offset
    for magic_tool in '\xfd7zXZ\x00:xz -dc' '\x02\x21\x4c\x18:lz4 -dc' '\x28\xb5\x2f\xfd:zstd -dc' '\x1f\x8b\x08:gzip -dc'; do
        magic="${magic_tool%%:*}" tool="${magic_tool#*:}"
        # shellcheck disable=SC2013 # offsets are numbers, one word each
        for offset in $(LC_ALL=C grep -obUaP "$magic" "$image" | cut -d: -f1); do
            # shellcheck disable=SC2086 # tool is a command and its flag
            tail -c +"$((offset + 1))" "$image" | $tool >"$out.tmp" 2>/dev/null || true
            if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
                mv "$out.tmp" "$out"
                return 0
            fi
        done
    done
    rm -f "$out.tmp"
    die "found no compressed ELF kernel in $image"
}

# prepare_kernel_dir DEB OUTDIR MODULE...: unpack DEB and fill OUTDIR with
#   vmlinuz (the bzImage), vmlinux (the ELF kernel inside it), config, release (`uname -r`), package (the .deb),
#   modules/kernel/...   the named modules and everything they depend on, decompressed, at their usual paths,
#   modules/modules.order, modules.builtin, modules.builtin.modinfo   (so depmod can index the copy),
#   modules/load-order   one module path per line, dependencies first: the order to insmod them in.
# A module the kernel has built in is fine (nothing to load); an unknown module name is an error.
# Skips all of it when OUTDIR already holds the same package with the same module list.
prepare_kernel_dir() {
    local deb="$1" outdir="$2"; shift 2
    local wanted="$*"
    if [ -f "$outdir/package" ] && [ "$(cat "$outdir/package")" = "$(basename "$deb")" ] \
        && [ -f "$outdir/wanted-modules" ] && [ "$(cat "$outdir/wanted-modules")" = "$wanted" ] \
        && [ -s "$outdir/vmlinuz" ] && [ -s "$outdir/vmlinux" ] && [ -f "$outdir/modules/load-order" ]; then
        log "  $(basename "$outdir")/ already holds $(basename "$deb"): kept"
        return 0
    fi

    # Unpacked in the cache (same file system as OUTDIR), removed again below and at the start of the next try.
    local unpacked="$outdir.unpacked"
    rm -rf "$unpacked"
    dpkg-deb -x "$deb" "$unpacked"
    local release
    release="$(ls "$unpacked/lib/modules")"
    [ -n "$release" ] && [ "$(wc -w <<<"$release")" -eq 1 ] || die "$deb: expected one /lib/modules/<release>"
    local moddir="$unpacked/lib/modules/$release"

    # The package ships modules.order and modules.builtin but not modules.dep (its postinst runs depmod):
    # build the index in the unpacked tree, then let modprobe resolve each module's dependencies in load order.
    depmod -b "$unpacked" "$release"

    rm -rf "$outdir.new"
    mkdir -p "$outdir.new/modules"
    local module line path rel order=() seen=" "
    for module in "$@"; do
        # -C /dev/null: ignore this machine's /etc/modprobe.d; the lines are "insmod PATH [OPTIONS]" or "builtin NAME".
        local lines
        lines="$(modprobe -C /dev/null -d "$unpacked" -S "$release" --show-depends "$module" 2>&1)" \
            || die "$release has no module '$module': $lines"
        while read -r line; do
            case "$line" in
                builtin\ *) log "  $module: ${line#builtin } is built into $release" ;;
                insmod\ *)
                    path="$(awk '{ print $2 }' <<<"$line")"
                    rel="${path#"$moddir"/}"
                    rel="${rel%.xz}"; rel="${rel%.zst}"; rel="${rel%.gz}"
                    case "$seen" in *" $rel "*) continue ;; esac
                    seen="$seen$rel "
                    decompress_module "$path" "$outdir.new/modules/$rel"
                    order+=("$rel")
                    ;;
                *) die "unexpected modprobe output for $module: $line" ;;
            esac
        done <<<"$lines"
    done
    printf '%s\n' "${order[@]}" >"$outdir.new/modules/load-order"
    cp "$moddir"/modules.order "$moddir"/modules.builtin "$moddir"/modules.builtin.modinfo "$outdir.new/modules/"

    cp "$unpacked/boot/vmlinuz-$release" "$outdir.new/vmlinuz"
    extract_vmlinux "$outdir.new/vmlinuz" "$outdir.new/vmlinux"
    cp "$unpacked/boot/config-$release" "$outdir.new/config"
    printf '%s\n' "$release" >"$outdir.new/release"
    printf '%s\n' "$wanted" >"$outdir.new/wanted-modules"
    basename "$deb" >"$outdir.new/package"

    # Swap in the new directory whole, keeping anything else OUTDIR held (the initramfs files are rebuilt anyway).
    mkdir -p "$outdir"
    rm -rf "$outdir/modules"
    mv "$outdir.new/modules" "$outdir/modules"
    mv "$outdir.new"/* "$outdir/"
    rmdir "$outdir.new"
    rm -rf "$unpacked"
    log "  $(basename "$outdir")/: Linux $release, modules: $(sed 's|.*/||; s|\.ko$||' "$outdir/modules/load-order" | tr '\n' ' ')"
}
