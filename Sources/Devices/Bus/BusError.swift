/// A device range as registered on a bus, for error messages and diagnostics.
public struct BusRange: Equatable, Sendable, CustomStringConvertible {
    public var name: String
    public var base: UInt64
    public var length: UInt64

    public init(name: String, base: UInt64, length: UInt64) {
        self.name = name
        self.base = base
        self.length = length
    }

    /// The last address inside the range. Only meaningful for a valid (non-empty, non-wrapping) range.
    public var last: UInt64 { base &+ (length &- 1) }

    /// "serial [0x3f8...0x3ff]": the name and the inclusive address range.
    public var description: String { "\(name) [\(hex(base))...\(hex(last))]" }
}

/// Why a device could not be registered on a bus. These are VMM configuration mistakes, found while the bus is
/// being built, before any vCPU runs.
public enum BusError: Error, Equatable, CustomStringConvertible {
    /// The device asked for an empty range.
    case zeroLength(BusRange)
    /// `base + length` runs past the end of the 64-bit address space.
    case wrapsAround(BusRange)
    /// The range runs past the end of this address space (port I/O ends at 0xFFFF).
    case outsideAddressSpace(BusRange, space: String, lastAddress: UInt64)
    /// The range overlaps a device that is already registered.
    case overlap(BusRange, existing: BusRange)

    public var description: String {
        switch self {
        case let .zeroLength(range):
            return "cannot register \(range.name) at \(hex(range.base)): zero length"
        case let .wrapsAround(range):
            return "cannot register \(range.name) at \(hex(range.base)) with length \(hex(range.length)): "
                + "the range wraps past the end of the 64-bit address space"
        case let .outsideAddressSpace(range, space, lastAddress):
            return "cannot register \(range): \(space) ends at \(hex(lastAddress))"
        case let .overlap(range, existing):
            return "cannot register \(range): it overlaps \(existing)"
        }
    }
}

/// "0x3f8": how addresses appear in bus messages.
func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
