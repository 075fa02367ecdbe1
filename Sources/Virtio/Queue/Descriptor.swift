import GuestMemory

/// One buffer of a descriptor chain, after validation: it lies wholly inside guest RAM and is either
/// device-readable or device-writable (§2.7.5). NEXT and INDIRECT have already been followed, so a chain is
/// simply a list of these.
public struct Descriptor: Equatable, Sendable, CustomStringConvertible {
    public var address: GuestAddress
    public var length: UInt32
    /// VIRTQ_DESC_F_WRITE: the device may write the buffer (and should not read it).
    public var isWriteOnly: Bool
    /// Where the guest put this descriptor: the queue's table or an indirect table (for diagnostics).
    public var location: DescriptorLocation

    public init(address: GuestAddress, length: UInt32, isWriteOnly: Bool, location: DescriptorLocation) {
        self.address = address
        self.length = length
        self.isWriteOnly = isWriteOnly
        self.location = location
    }

    public var description: String {
        "\(location): \(length) bytes at \(address) \(isWriteOnly ? "device-writable" : "device-readable")"
    }
}

/// `struct virtq_desc` exactly as the guest wrote it (§2.7.5): 16 bytes, little-endian.
///
///     0  le64 addr     8  le32 len     12  le16 flags     14  le16 next
struct RawDescriptor: Equatable {
    static let size: UInt64 = 16

    /// VIRTQ_DESC_F_NEXT: the chain continues at `next`.
    static let flagNext: UInt16 = 1
    /// VIRTQ_DESC_F_WRITE: device-writable buffer.
    static let flagWrite: UInt16 = 2
    /// VIRTQ_DESC_F_INDIRECT: `addr`/`len` describe an indirect descriptor table.
    static let flagIndirect: UInt16 = 4

    var address: UInt64
    var length: UInt32
    var flags: UInt16
    var next: UInt16

    var hasNext: Bool { flags & Self.flagNext != 0 }
    var isWriteOnly: Bool { flags & Self.flagWrite != 0 }
    var isIndirect: Bool { flags & Self.flagIndirect != 0 }

    /// Reads descriptor `index` of the table at `table`. The caller has proved `index` in range of a table it
    /// has range-checked; the memory accesses are checked again anyway.
    static func load(from memory: GuestMemory, table: GuestAddress, index: UInt32) throws(GuestMemoryError) -> RawDescriptor {
        // index < 2^32 and size 16: the product fits in UInt64; the sums are checked.
        guard let base = table.checkedAdding(UInt64(index) * size), let second = base.checkedAdding(8) else {
            throw .outOfBounds(address: table, length: (UInt64(index) + 1) * size)
        }
        // Two 64-bit loads instead of a byte copy: no allocation per descriptor on the request path.
        let address = try memory.load(UInt64.self, at: base)
        let rest = try memory.load(UInt64.self, at: second)
        return RawDescriptor(
            address: address, length: UInt32(truncatingIfNeeded: rest),
            flags: UInt16(truncatingIfNeeded: rest >> 32), next: UInt16(truncatingIfNeeded: rest >> 48))
    }
}
