import SystemPackage

public enum GuestMemoryError: Error, Equatable, CustomStringConvertible {
    /// The access `[address, address + length)` is not wholly inside one RAM region.
    case outOfBounds(address: GuestAddress, length: UInt64)
    /// Two regions overlap, or a region has size zero or wraps past 2^64.
    case invalidLayout(String)
    /// mmap failed for a region.
    case mapFailed(size: UInt64, errno: Errno)

    public var description: String {
        switch self {
        case let .outOfBounds(address, length):
            return "guest memory access of \(length) bytes at \(address) is outside guest RAM"
        case let .invalidLayout(reason):
            return "invalid guest memory layout: \(reason)"
        case let .mapFailed(size, errno):
            return "mmap of \(size) bytes of guest memory failed: \(errno) (errno \(errno.rawValue))"
        }
    }
}
