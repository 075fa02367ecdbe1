import GuestMemory

/// One guest buffer of a block request: what a descriptor says, without the ring around it. The virtio core
/// turns a descriptor chain (direct or indirect) into an array of these, in chain order.
public struct BlockSegment: Sendable, Equatable, CustomStringConvertible {
    public var address: GuestAddress
    public var length: UInt32
    /// VIRTQ_DESC_F_WRITE: the device may write this buffer (and must not read it).
    public var writable: Bool

    public init(address: GuestAddress, length: UInt32, writable: Bool) {
        self.address = address
        self.length = length
        self.writable = writable
    }

    public var description: String { "\(writable ? "W" : "R")[\(address) +\(length)]" }
}

/// One `virtio_blk_discard_write_zeroes` entry, decoded and checked (§5.2.6).
public struct BlockRange: Sendable, Equatable {
    public var sector: UInt64
    public var sectorCount: UInt32
    /// VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP: for WRITE_ZEROES, the device may deallocate the range (it must still
    /// read back as zeros). Never set on a DISCARD that passed parsing.
    public var unmap: Bool

    public init(sector: UInt64, sectorCount: UInt32, unmap: Bool) {
        self.sector = sector
        self.sectorCount = sectorCount
        self.unmap = unmap
    }

    /// Byte offset and length on the disk. Parsing has proved these do not overflow.
    public var byteOffset: UInt64 { sector << VirtioBlock.sectorShift }
    public var byteLength: UInt64 { UInt64(sectorCount) << VirtioBlock.sectorShift }
}
