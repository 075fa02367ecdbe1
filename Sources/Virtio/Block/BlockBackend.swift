import GuestMemory
import SystemPackage

/// Where a virtio-blk device keeps its sectors. Offsets and lengths are in bytes, already checked by the request
/// parser against `capacity`, and whole sectors. Data moves straight between the backend and guest memory, so a
/// file backend can pread/pwrite into guest RAM without a bounce buffer.
///
/// Threads: with several request queues, several threads call one backend at once; implementations must be safe
/// for that (positional I/O on one fd is).
public protocol BlockBackend: Sendable {
    /// Size of the disk in bytes: a multiple of 512.
    var capacity: UInt64 { get }
    var isReadOnly: Bool { get }

    /// Fills the segments, in order, with the disk bytes starting at `offset`.
    func read(at offset: UInt64, into segments: [BlockSegment], memory: GuestMemory) throws(BlockError)
    /// Writes the segments' bytes, in order, to the disk starting at `offset`.
    func write(at offset: UInt64, from segments: [BlockSegment], memory: GuestMemory) throws(BlockError)
    /// Returns once every completed write is durable (survives a host crash or a kill of the VMM).
    func flush() throws(BlockError)
    /// The guest no longer needs `[offset, offset + length)`; the backend may free it. What the range reads back
    /// as afterwards is unspecified (§5.2.6.2), so a backend that cannot free space may do nothing.
    func discard(at offset: UInt64, length: UInt64) throws(BlockError)
    /// `[offset, offset + length)` must read back as zeros. With `mayUnmap`, the space may be freed as well.
    func writeZeroes(at offset: UInt64, length: UInt64, mayUnmap: Bool) throws(BlockError)
}

/// Host-side failures of a block backend: opening the image, or I/O on it. Syscall failures carry the call's
/// name and errno. During a request these become VIRTIO_BLK_S_IOERR and a log line; at open they stop the VMM
/// from starting.
public enum BlockError: Error, Equatable, Sendable, CustomStringConvertible {
    /// open(2) failed: a missing file, no permission, a read-only file system for a writable disk, ...
    case openFailed(path: String, readOnly: Bool, errno: Errno)
    /// Not a regular file or a block device (a directory, a FIFO, ...).
    case notADiskImage(path: String)
    /// Another process (another VMM?) holds a conflicting lock on the image.
    case locked(path: String)
    /// The image is smaller than one 512-byte sector: the guest would get a disk of 0 sectors.
    case tooSmall(path: String, size: UInt64)
    /// A syscall failed on an open image.
    case io(operation: String, offset: UInt64, length: UInt64, errno: Errno)
    /// The image ended before the data did (it shrank under us).
    case unexpectedEndOfFile(offset: UInt64)
    /// The image is read-only and a write reached the backend.
    case readOnly
    /// The `id=` of a disk is longer than the 20 bytes GET_ID can return.
    case idTooLong(String)
    /// A data buffer was not in guest memory (the parser prevents this; kept so nothing traps).
    case guestMemory(GuestMemoryError)

    public var description: String {
        switch self {
        case let .openFailed(path, readOnly, errno):
            let mode = readOnly ? "reading" : "reading and writing"
            let hint = !readOnly && (errno == .permissionDenied || errno == .readOnlyFileSystem) ? " (add ,readonly to use it read-only)" : ""
            return "cannot open disk image \(path) for \(mode): \(errno) (errno \(errno.rawValue))\(hint)"
        case let .notADiskImage(path): return "disk image \(path) is neither a regular file nor a block device"
        case let .locked(path): return "disk image \(path) is in use by another process, or opened twice (someone holds a conflicting lock on it)"
        case let .tooSmall(path, size):
            return "disk image \(path) has \(size) bytes, less than one 512-byte sector"
        case let .io(operation, offset, length, errno):
            return "\(operation) of \(length) bytes at offset \(offset) failed: \(errno) (errno \(errno.rawValue))"
        case let .unexpectedEndOfFile(offset): return "disk image ended early, at offset \(offset)"
        case .readOnly: return "write to a read-only disk image"
        case let .idTooLong(id): return "disk id \"\(id)\" is longer than 20 bytes (virtio-blk serials are at most 20)"
        case let .guestMemory(error): return error.description
        }
    }
}
