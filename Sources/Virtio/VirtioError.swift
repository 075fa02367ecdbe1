import GuestMemory

/// Everything that can go wrong in the virtio core. All of it is guest misbehaviour (or a host failure that a
/// device reports); none of it may take the VMM down. Two severities matter to callers:
///
/// - `.malformedChain` fails **one request**: the queue has already consumed that available-ring entry, so the
///   device returns the head to the driver with `addUsed(head:length: 0)` (or a device-specific error status
///   if it can still find one) and carries on with the next chain.
/// - everything else means the queue (or the whole device) cannot be trusted any more: the device stops using
///   it and the transport sets DEVICE_NEEDS_RESET (virtio 1.2 §2.1.1) — see `requiresDeviceReset`.
public enum VirtioError: Error, Equatable, Sendable, CustomStringConvertible {
    // MARK: Queue setup, checked once at activation (virtio 1.2 §2.6, §2.7)

    /// Queue Size 0: the driver enabled a queue it never sized.
    case queueSizeZero(queue: Int)
    /// Split virtqueues need a power-of-two size (§2.7: "Queue Size value is always a power of 2").
    case queueSizeNotPowerOfTwo(queue: Int, size: UInt16)
    /// Larger than the device offered in queue_size / QueueNumMax (and never above 32768).
    case queueSizeTooLarge(queue: Int, size: UInt16, maximum: UInt16)
    /// One of the three ring parts is not aligned as §2.7 table "Virtqueue Part Alignment" requires.
    case ringMisaligned(queue: Int, part: VirtqueuePart, address: GuestAddress, requiredAlignment: UInt64)
    /// A ring part is not wholly inside one RAM region (or its end wraps past 2^64).
    case ringOutsideMemory(queue: Int, part: VirtqueuePart, address: GuestAddress, length: UInt64)

    // MARK: The rings themselves, while running

    /// avail.idx moved more than Queue Size entries past what the device has consumed: the driver claims to
    /// have made available more buffers than the ring holds (§2.7.6). Nothing it says can be believed.
    case availableIndexJump(queue: Int, lastSeen: UInt16, published: UInt16, queueSize: UInt16)
    /// An available-ring entry names a head descriptor outside the descriptor table. The head cannot even be
    /// returned through the used ring (its id would be out of range for the driver too), so the queue is broken.
    case headIndexOutOfRange(queue: Int, head: UInt16, queueSize: UInt16)
    /// The device tried to return a head the queue cannot hold (a device bug, reported rather than trapped).
    case usedHeadOutOfRange(queue: Int, head: UInt16, queueSize: UInt16)
    /// A ring access failed after activation had proved it in bounds (guest memory changed under us).
    case guestMemory(queue: Int, GuestMemoryError)

    // MARK: One request

    /// The chain starting at `head` breaks a rule of §2.7.5; see `DescriptorChainError` for which.
    case malformedChain(queue: Int, head: UInt16, DescriptorChainError)

    // MARK: Device level

    /// A device could not start (e.g. a backend failed); the transport marks the device NEEDS_RESET.
    case activationFailed(String)
    /// A snapshot cannot be taken of this device, or a saved state does not fit it.
    case snapshot(String)

    /// True when the queue can no longer be used and the device must be reset by the driver (§2.1.2: the
    /// device sets DEVICE_NEEDS_RESET and, once DRIVER_OK, sends a configuration change notification).
    public var requiresDeviceReset: Bool {
        if case .malformedChain = self { return false }
        return true
    }

    public var description: String {
        switch self {
        case let .queueSizeZero(queue):
            return "virtqueue \(queue): size is 0"
        case let .queueSizeNotPowerOfTwo(queue, size):
            return "virtqueue \(queue): size \(size) is not a power of two"
        case let .queueSizeTooLarge(queue, size, maximum):
            return "virtqueue \(queue): size \(size) exceeds the device maximum \(maximum)"
        case let .ringMisaligned(queue, part, address, alignment):
            return "virtqueue \(queue): \(part) at \(address) is not \(alignment)-byte aligned"
        case let .ringOutsideMemory(queue, part, address, length):
            return "virtqueue \(queue): \(part) of \(length) bytes at \(address) is outside guest RAM"
        case let .availableIndexJump(queue, lastSeen, published, size):
            return "virtqueue \(queue): avail.idx jumped from \(lastSeen) to \(published), more than the queue size \(size)"
        case let .headIndexOutOfRange(queue, head, size):
            return "virtqueue \(queue): available ring names head descriptor \(head), queue size is \(size)"
        case let .usedHeadOutOfRange(queue, head, size):
            return "virtqueue \(queue): device returned head \(head), queue size is \(size)"
        case let .guestMemory(queue, error):
            return "virtqueue \(queue): ring access failed: \(error)"
        case let .malformedChain(queue, head, error):
            return "virtqueue \(queue): descriptor chain at head \(head): \(error)"
        case let .snapshot(reason):
            return "snapshot: \(reason)"
        case let .activationFailed(reason):
            return "device activation failed: \(reason)"
        }
    }
}

/// The three areas of a split virtqueue (§2.7).
public enum VirtqueuePart: String, Sendable, Equatable, CustomStringConvertible {
    case descriptorTable = "descriptor table"
    case availableRing = "available ring"
    case usedRing = "used ring"
    public var description: String { rawValue }
}

/// Where a descriptor lives: in the queue's own descriptor table, or in an indirect table (§2.7.5.3).
public enum DescriptorLocation: Equatable, Sendable, CustomStringConvertible {
    case table(index: UInt16)
    case indirect(index: UInt32)

    public var description: String {
        switch self {
        case let .table(index): return "descriptor \(index)"
        case let .indirect(index): return "indirect descriptor \(index)"
        }
    }
}

/// One case per rule of virtio 1.2 §2.7.5 / §2.7.5.3 / §2.7.4 a descriptor chain can break.
public enum DescriptorChainError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A NEXT field points past the end of the descriptor table (or of the indirect table).
    case nextIndexOutOfRange(at: DescriptorLocation, next: UInt32, tableSize: UInt32)
    /// More descriptors than the table holds were followed: the chain loops (§2.7.5.2: "loops in the descriptor
    /// chain are forbidden"; a chain can never be longer than Queue Size).
    case chainTooLong(limit: UInt32)
    /// `address + length` wraps past 2^64.
    case bufferAddressOverflow(at: DescriptorLocation, address: GuestAddress, length: UInt32)
    /// The buffer is not wholly inside one RAM region.
    case bufferOutsideMemory(at: DescriptorLocation, address: GuestAddress, length: UInt32)
    /// The buffers add up to more than 2^32 bytes (§2.7.5.2: "Drivers MUST NOT add a descriptor chain longer
    /// than 2^32 bytes in total").
    case totalLengthOverflow
    /// A device-readable buffer follows a device-writable one (§2.7.4.2: writable elements come last).
    case readableAfterWritable(at: DescriptorLocation)
    /// VIRTQ_DESC_F_INDIRECT without VIRTIO_F_INDIRECT_DESC negotiated (§2.7.5.3.1).
    case indirectNotNegotiated(at: DescriptorLocation)
    /// VIRTQ_DESC_F_INDIRECT together with VIRTQ_DESC_F_NEXT (§2.7.5.3.1).
    case indirectWithNext(at: DescriptorLocation)
    /// VIRTQ_DESC_F_INDIRECT inside an indirect table (§2.7.5.3.1: only one table per descriptor).
    case nestedIndirect(at: DescriptorLocation)
    /// The indirect table's length is zero or not a multiple of 16 bytes (one descriptor each).
    case indirectTableLengthInvalid(at: DescriptorLocation, length: UInt32)
    /// The indirect table holds more descriptors than we accept (`DescriptorChain.maxIndirectEntries`).
    case indirectTableTooLarge(at: DescriptorLocation, entries: UInt32, limit: UInt32)
    /// The indirect table itself is not wholly inside guest RAM.
    case indirectTableOutsideMemory(at: DescriptorLocation, address: GuestAddress, length: UInt32)
    /// The device needed more device-readable bytes than the chain carries (a request too short for its
    /// header, say). Raised by `DescriptorChainReader`, not by chain validation.
    case readBeyondEnd(requested: UInt64, remaining: UInt64)
    /// The device needed more device-writable space than the chain offers. Raised by `DescriptorChainWriter`.
    case writeBeyondEnd(requested: UInt64, remaining: UInt64)

    public var description: String {
        switch self {
        case let .nextIndexOutOfRange(at, next, size):
            return "\(at) chains to \(next), past the end of its \(size)-entry table"
        case let .chainTooLong(limit):
            return "chain is longer than \(limit) descriptors (a loop)"
        case let .bufferAddressOverflow(at, address, length):
            return "\(at): buffer of \(length) bytes at \(address) wraps past 2^64"
        case let .bufferOutsideMemory(at, address, length):
            return "\(at): buffer of \(length) bytes at \(address) is outside guest RAM"
        case .totalLengthOverflow:
            return "buffers add up to more than 4 GiB"
        case let .readableAfterWritable(at):
            return "\(at) is device-readable but follows a device-writable descriptor"
        case let .indirectNotNegotiated(at):
            return "\(at) is INDIRECT but VIRTIO_F_INDIRECT_DESC was not negotiated"
        case let .indirectWithNext(at):
            return "\(at) sets both INDIRECT and NEXT"
        case let .nestedIndirect(at):
            return "\(at) is INDIRECT inside an indirect table"
        case let .indirectTableLengthInvalid(at, length):
            return "\(at): indirect table length \(length) is not a non-zero multiple of 16"
        case let .indirectTableTooLarge(at, entries, limit):
            return "\(at): indirect table of \(entries) descriptors exceeds the limit \(limit)"
        case let .indirectTableOutsideMemory(at, address, length):
            return "\(at): indirect table of \(length) bytes at \(address) is outside guest RAM"
        case let .readBeyondEnd(requested, remaining):
            return "needed \(requested) device-readable bytes, only \(remaining) left"
        case let .writeBeyondEnd(requested, remaining):
            return "needed \(requested) device-writable bytes, only \(remaining) left"
        }
    }
}
