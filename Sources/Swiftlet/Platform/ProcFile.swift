#if canImport(Glibc)
import Glibc
#endif

/// A text file of the kernel's (/proc, /sys), read to its end (or to `maximum` bytes).
enum ProcFile {
    /// The file's text without trailing newlines, or nil if it cannot be opened or is empty.
    static func read(_ path: String, maximum: Int = 8192) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readToEnd(fd, maximum: maximum)
    }

    /// The same, from a file opened earlier (before a seccomp filter that has no open), read again from its
    /// start: each read of a /proc file from offset 0 is a new snapshot of it.
    static func read(descriptor fd: Int32, maximum: Int = 8192) -> String? {
        guard lseek(fd, 0, SEEK_SET) == 0 else { return nil }
        return readToEnd(fd, maximum: maximum)
    }

    /// Reads until end of file: a /proc file such as smaps comes a record at a time, so one read(2) may not be all.
    private static func readToEnd(_ fd: Int32, maximum: Int) -> String? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(maximum, 16384))
        while bytes.count < maximum {
            let count = Glibc.read(fd, &chunk, min(chunk.count, maximum - bytes.count))
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        while bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}
