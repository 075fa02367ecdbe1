import GuestMemory

/// One request: the chain of buffers the driver made available under one head index (§2.7.5, §2.7.13).
///
/// The whole chain is walked and validated when it is popped, before the device sees any of it, so a device
/// model only ever handles well-formed chains: every buffer inside guest RAM, readable buffers before
/// writable ones, no loops, indirect tables well-formed. Walking it once up front also means the guest cannot
/// change the chain's shape while the device works on it (it can still change the buffers' contents, which is
/// its own business).
///
/// The buffers are reached through `reader()` (device-readable part) and `writer()` (device-writable part),
/// which treat the descriptors as one contiguous byte stream each.
public struct DescriptorChain: Sendable, Sequence {
    /// Indirect tables longer than this are refused. The spec sets no limit; 32768 is the largest queue size
    /// (§2.7), so no legitimate driver needs more, and it bounds the work one request can cost.
    public static let maxIndirectEntries: UInt32 = 32768

    /// The head index: what goes back into the used ring for this request.
    public let head: UInt16
    /// The buffers in chain order, readable ones first.
    public let descriptors: [Descriptor]
    /// The guest memory the buffers live in.
    public let memory: GuestMemory

    /// Total bytes of the device-readable buffers.
    public let readableBytes: UInt64
    /// Total bytes of the device-writable buffers.
    public let writableBytes: UInt64

    public func makeIterator() -> IndexingIterator<[Descriptor]> { descriptors.makeIterator() }

    /// The device-readable buffers, in order.
    public var readable: ArraySlice<Descriptor> { descriptors.prefix { !$0.isWriteOnly } }
    /// The device-writable buffers, in order.
    public var writable: ArraySlice<Descriptor> { descriptors.drop { !$0.isWriteOnly } }

    /// Copies out of the readable part, as one byte stream.
    public func reader() -> DescriptorChainReader { DescriptorChainReader(memory: memory, segments: readable) }
    /// Writes into the writable part, as one byte stream; its `bytesWritten` is the used-ring length.
    public func writer() -> DescriptorChainWriter { DescriptorChainWriter(memory: memory, segments: writable) }

    /// Walks and validates the chain starting at `head` of the descriptor table at `table` (`queueSize`
    /// entries, already range-checked by the queue). `head < queueSize` is the caller's to check.
    init(
        head: UInt16, table: GuestAddress, queueSize: UInt16, memory: GuestMemory, indirectAllowed: Bool
    ) throws(DescriptorChainError) {
        var builder = Builder(memory: memory)
        let tableSize = UInt32(queueSize)
        var index = UInt32(head)
        var followed: UInt32 = 0
        while true {
            let location = DescriptorLocation.table(index: UInt16(index))
            // A chain can visit each table entry at most once; one more means it loops (§2.7.5.2).
            followed += 1
            guard followed <= tableSize else { throw .chainTooLong(limit: tableSize) }
            let raw = try Self.load(memory, table, index, location)

            if raw.isIndirect {
                // §2.7.5.3.2: zero or more direct descriptors may be followed by one indirect one, which ends
                // the chain (it cannot also carry NEXT). Its own WRITE flag is meaningless and ignored.
                guard indirectAllowed else { throw .indirectNotNegotiated(at: location) }
                guard !raw.hasNext else { throw .indirectWithNext(at: location) }
                try builder.appendIndirectTable(raw, location: location)
                break
            }
            try builder.append(raw, location: location)
            guard raw.hasNext else { break }
            guard UInt32(raw.next) < tableSize else {
                throw .nextIndexOutOfRange(at: location, next: UInt32(raw.next), tableSize: tableSize)
            }
            index = UInt32(raw.next)
        }
        self.head = head
        self.memory = memory
        self.descriptors = builder.descriptors
        self.readableBytes = builder.readableBytes
        self.writableBytes = builder.writableBytes
    }

    /// A descriptor-table read; the table was range-checked, so a failure here is reported as the buffer
    /// being outside memory rather than trapping.
    fileprivate static func load(
        _ memory: GuestMemory, _ table: GuestAddress, _ index: UInt32, _ location: DescriptorLocation
    ) throws(DescriptorChainError) -> RawDescriptor {
        do {
            return try RawDescriptor.load(from: memory, table: table, index: index)
        } catch {
            throw .bufferOutsideMemory(at: location, address: table, length: UInt32(RawDescriptor.size))
        }
    }

    /// Accumulates validated buffers and enforces the rules that span the chain.
    private struct Builder {
        let memory: GuestMemory
        var descriptors: [Descriptor] = []
        var readableBytes: UInt64 = 0
        var writableBytes: UInt64 = 0

        init(memory: GuestMemory) { self.memory = memory }

        mutating func append(_ raw: RawDescriptor, location: DescriptorLocation) throws(DescriptorChainError) {
            let address = GuestAddress(raw.address)
            guard address.checkedAdding(UInt64(raw.length)) != nil else {
                throw .bufferAddressOverflow(at: location, address: address, length: raw.length)
            }
            guard memory.contains(address, length: UInt64(raw.length)) else {
                throw .bufferOutsideMemory(at: location, address: address, length: raw.length)
            }
            // §2.7.4.2: device-writable elements come after all device-readable ones.
            if !raw.isWriteOnly, descriptors.last?.isWriteOnly == true {
                throw .readableAfterWritable(at: location)
            }
            if raw.isWriteOnly { writableBytes += UInt64(raw.length) } else { readableBytes += UInt64(raw.length) }
            // §2.7.5.2: at most 2^32 bytes per chain. Both sums stay far below 2^64: at most 2 × 32768
            // descriptors of at most 2^32 - 1 bytes each.
            guard readableBytes + writableBytes <= UInt64(UInt32.max) + 1 else { throw .totalLengthOverflow }
            descriptors.append(
                Descriptor(address: address, length: raw.length, isWriteOnly: raw.isWriteOnly, location: location))
        }

        /// Follows the indirect table `pointer` refers to (§2.7.5.3): entries chained by NEXT from index 0.
        mutating func appendIndirectTable(_ pointer: RawDescriptor, location: DescriptorLocation) throws(DescriptorChainError) {
            let tableAddress = GuestAddress(pointer.address)
            guard pointer.length > 0, UInt64(pointer.length) % RawDescriptor.size == 0 else {
                throw .indirectTableLengthInvalid(at: location, length: pointer.length)
            }
            let entries = pointer.length / UInt32(RawDescriptor.size)
            guard entries <= DescriptorChain.maxIndirectEntries else {
                throw .indirectTableTooLarge(at: location, entries: entries, limit: DescriptorChain.maxIndirectEntries)
            }
            guard memory.contains(tableAddress, length: UInt64(pointer.length)) else {
                throw .indirectTableOutsideMemory(at: location, address: tableAddress, length: pointer.length)
            }
            var index: UInt32 = 0
            var followed: UInt32 = 0
            while true {
                let here = DescriptorLocation.indirect(index: index)
                followed += 1
                guard followed <= entries else { throw .chainTooLong(limit: entries) }
                let raw = try DescriptorChain.load(memory, tableAddress, index, here)
                // §2.7.5.3.1: only one table per descriptor.
                guard !raw.isIndirect else { throw .nestedIndirect(at: here) }
                try append(raw, location: here)
                guard raw.hasNext else { break }
                guard UInt32(raw.next) < entries else {
                    throw .nextIndexOutOfRange(at: here, next: UInt32(raw.next), tableSize: entries)
                }
                index = UInt32(raw.next)
            }
        }
    }
}
