// A metrics or log destination: a regular file or a named pipe, opened so that the VMM never waits on it.
//
// Opening: O_RDWR | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC, as Firecracker does (`open_file_nonblock` in
// src/vmm/src/utils/mod.rs) plus O_APPEND so an existing file is added to, not overwritten from offset 0.
// For a FIFO, O_RDWR is what keeps the VMM from hanging or failing when nobody reads yet (Linux fifo(7)):
//   - O_WRONLY would block in open(2) until a reader comes, and with O_NONBLOCK fail at once with ENXIO;
//   - O_RDWR opens at once, and since the VMM itself holds the read side, a later write never raises
//     SIGPIPE/EPIPE when an external reader goes away.
// With O_NONBLOCK a write to a full pipe returns EAGAIN instead of blocking: the line is counted as missed.
// The price (also Firecracker's): lines written while nobody reads wait in the pipe (64 KiB by default) and the
// next reader gets them first.
//
// Writing: one write(2) per line. A pipe write larger than PIPE_BUF (4096; a metrics line is about 8 KiB) may be
// cut short when the pipe is nearly full, which would leave half a JSON object for the reader. So for a FIFO we
// first compare the line with the room left (F_GETPIPE_SZ − FIONREAD) and skip the whole line if it does not fit.
// KNOWN GAP (a test shows it): the check counts bytes, but the kernel stores pipe data in 4 KiB pages and each
// ~8 KiB line leaves a partly filled page, so a nearly full FIFO can still take only part of a line. A fix: keep
// the unwritten tail and write it before the next line (the stream stays whole, the line is only late).

import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

final class OutputFile: Sendable {
    let path: String
    let descriptor: FileDescriptor
    let isFIFO: Bool

    /// fcntl(F_GETPIPE_SZ): F_LINUX_SPECIFIC_BASE (1024) + 8, which Glibc's Swift module does not export.
    private static let getPipeSize: Int32 = 1024 + 8

    init(path: String) throws(ObservabilityError) {
        let flags = O_RDWR | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC
        var raw: Int32
        repeat { raw = open(path, flags, 0o644) } while raw < 0 && errno == EINTR
        guard raw >= 0 else { throw .openFailed(path: path, errno: Errno(rawValue: errno)) }
        var status = stat()
        let isFIFO = fstat(raw, &status) == 0 && (status.st_mode & S_IFMT) == S_IFIFO
        self.path = path
        self.descriptor = FileDescriptor(rawValue: raw)
        self.isFIFO = isFIFO
    }

    deinit { try? descriptor.close() }

    /// Writes `bytes` (a whole line, newline included) with a single write(2), or nothing at all when it would
    /// not fit in a FIFO.
    func writeLine(_ bytes: [UInt8]) throws(ObservabilityError) {
        if isFIFO, let room = fifoRoom(), room < bytes.count {
            throw .fifoFull(path: path, needed: bytes.count, available: room)
        }
        let written: Int
        do {
            written = try bytes.withUnsafeBytes { try descriptor.write($0, retryOnInterrupt: true) }
        } catch {
            throw .writeFailed(path: path, errno: error as? Errno ?? .ioError)
        }
        guard written == bytes.count else { throw .shortWrite(path: path, written: written, length: bytes.count) }
    }

    /// Free bytes in the pipe, or nil if the kernel will not say (then the write is simply tried).
    private func fifoRoom() -> Int? {
        let capacity = fcntl(descriptor.rawValue, Self.getPipeSize)
        var queued: Int32 = 0
        guard capacity > 0, ioctl(descriptor.rawValue, UInt(FIONREAD), &queued) == 0 else { return nil }
        return Int(capacity) - Int(queued)
    }
}
