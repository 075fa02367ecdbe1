#if canImport(Glibc)
import Glibc
#endif

/// The guest `scripts/setup` prepares: the Debian cloud kernel and a busybox initramfs, under
/// `${XDG_CACHE_HOME:-$HOME/.cache}/swiftlet/guest/`.
public enum DefaultGuest {
    public static var directory: String {
        if let cache = getenv("XDG_CACHE_HOME").map({ String(cString: $0) }), !cache.isEmpty { return cache + "/swiftlet/guest" }
        let home = getenv("HOME").map { String(cString: $0) } ?? "/root"
        return home + "/.cache/swiftlet/guest"
    }

    public static var kernelPath: String { directory + "/vmlinuz" }
    public static var initrdPath: String { directory + "/initramfs.cpio" }

    /// The default guest's files, or `defaultGuestMissing` when setup has not run.
    public static func paths() throws(ConfigurationError) -> (kernel: String, initrd: String) {
        guard access(kernelPath, R_OK) == 0, access(initrdPath, R_OK) == 0 else {
            throw .defaultGuestMissing(directory: directory)
        }
        return (kernelPath, initrdPath)
    }
}
