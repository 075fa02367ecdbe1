#if canImport(Glibc)
import Glibc
#endif

/// A small file of the kernel's (/proc, /sys) read with one read(2): such files are produced whole on the first
/// read, and every one Swiftlet reads is far below `maximum` bytes.
enum ProcFile {
    /// The file's text without trailing newlines, or nil if it cannot be opened or is empty.
    static func read(_ path: String, maximum: Int = 8192) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: maximum)
        let count = Glibc.read(fd, &buffer, buffer.count)
        guard count > 0 else { return nil }
        var bytes = buffer[0..<count]
        while bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}
