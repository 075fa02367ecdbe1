#if canImport(Glibc)
import Glibc
#endif

/// The guest `scripts/setup` prepares: the Debian cloud kernel and a busybox initramfs, under
/// `${XDG_CACHE_HOME:-$HOME/.cache}/swiftlet/guest/`.
///
/// The same initramfs also boots the microVM kernel `scripts/build-guest-kernel` builds (drivers built in, no
/// modules: its init skips module loading when the kernel has none). That kernel is used only when asked for
/// (`swiftlet run --guest-kernel microvm`): the Debian kernel stays the default everywhere, so what a plain
/// `swiftlet run` boots does not change with what happens to be in the cache.
public enum DefaultGuest {
    /// Which kernel the default guest boots.
    public enum Kernel: String, CaseIterable, Sendable {
        /// Debian's cloud kernel (`guest/vmlinuz`), prepared by scripts/setup.
        case debian
        /// Swiftlet's microVM kernel (`microvm/current/vmlinux`), built by scripts/build-guest-kernel.
        case microvm
    }

    /// `${XDG_CACHE_HOME:-$HOME/.cache}/swiftlet`.
    public static var cacheDirectory: String {
        if let cache = getenv("XDG_CACHE_HOME").map({ String(cString: $0) }), !cache.isEmpty { return cache + "/swiftlet" }
        let home = getenv("HOME").map { String(cString: $0) } ?? "/root"
        return home + "/.cache/swiftlet"
    }

    public static var directory: String { cacheDirectory + "/guest" }

    public static var kernelPath: String { directory + "/vmlinuz" }
    public static var initrdPath: String { directory + "/initramfs.cpio" }
    /// The microVM kernel's uncompressed ELF vmlinux (scripts/build-guest-kernel points `current` at its newest build).
    public static var microVMKernelPath: String { cacheDirectory + "/microvm/current/vmlinux" }

    /// The default guest's files, or `defaultGuestMissing` when setup has not run (`microVMKernelMissing` when the
    /// microVM kernel was asked for and has not been built).
    public static func paths(kernel: Kernel = .debian) throws(ConfigurationError) -> (kernel: String, initrd: String) {
        guard access(initrdPath, R_OK) == 0 else { throw .defaultGuestMissing(directory: directory) }
        switch kernel {
        case .debian:
            guard access(kernelPath, R_OK) == 0 else { throw .defaultGuestMissing(directory: directory) }
            return (kernelPath, initrdPath)
        case .microvm:
            guard access(microVMKernelPath, R_OK) == 0 else { throw .microVMKernelMissing(path: microVMKernelPath) }
            return (microVMKernelPath, initrdPath)
        }
    }
}
