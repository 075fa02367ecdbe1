import SystemPackage

public enum GuestMemoryError: Error, Equatable, CustomStringConvertible {
    /// The access `[address, address + length)` is not wholly inside one RAM region.
    case outOfBounds(address: GuestAddress, length: UInt64)
    /// Two regions overlap, or a region has size zero or wraps past 2^64.
    case invalidLayout(String)
    /// mmap failed for a region.
    case mapFailed(size: UInt64, errno: Errno)
    /// A memory file could not be opened, sized, read or written.
    case file(path: String, operation: String, errno: Errno)
    /// A memory file's size does not match the layout it is meant to back.
    case fileSizeMismatch(path: String, expected: UInt64, actual: UInt64)

    public var description: String {
        switch self {
        case let .outOfBounds(address, length):
            return "guest memory access of \(length) bytes at \(address) is outside guest RAM"
        case let .invalidLayout(reason):
            return "invalid guest memory layout: \(reason)"
        case let .mapFailed(size, errno):
            return "mmap of \(size) bytes of guest memory failed: \(errno) (errno \(errno.rawValue))"
        case let .file(path, operation, errno):
            return "cannot \(operation) memory file \(path): \(errno) (errno \(errno.rawValue))"
        case let .fileSizeMismatch(path, expected, actual):
            return "memory file \(path) is \(actual) bytes; the snapshot's memory layout needs exactly \(expected)"
        }
    }
}
