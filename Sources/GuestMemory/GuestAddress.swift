/// A guest-physical address. Kept distinct from host addresses and from plain integers so that an
/// offset into a host buffer can never be passed where a guest address is meant (and vice versa).
public struct GuestAddress: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    public static func < (lhs: GuestAddress, rhs: GuestAddress) -> Bool { lhs.rawValue < rhs.rawValue }

    /// `self + offset`, or nil when that wraps past 2^64 (a guest-supplied offset can be anything).
    public func checkedAdding(_ offset: UInt64) -> GuestAddress? {
        let (sum, overflow) = rawValue.addingReportingOverflow(offset)
        return overflow ? nil : GuestAddress(sum)
    }

    /// `self + offset` for offsets the VMM itself computed; traps on overflow (a programmer error).
    public func adding(_ offset: UInt64) -> GuestAddress { GuestAddress(rawValue + offset) }

    /// Rounds up to a multiple of `alignment` (a power of two), or nil on overflow.
    public func alignedUp(to alignment: UInt64) -> GuestAddress? {
        precondition(alignment.nonzeroBitCount == 1, "alignment must be a power of two")
        let (sum, overflow) = rawValue.addingReportingOverflow(alignment - 1)
        return overflow ? nil : GuestAddress(sum & ~(alignment - 1))
    }

    public var description: String { "0x" + String(rawValue, radix: 16) }
}
