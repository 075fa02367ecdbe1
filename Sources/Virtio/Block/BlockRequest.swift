import GuestMemory

/// What the device allows, for checking requests: the disk's size and the limits it advertised in its
/// configuration space (§5.2.4). Built by `VirtioBlockConfig.requestLimits`; tests build it directly.
public struct BlockRequestLimits: Sendable, Equatable {
    public struct RangeLimits: Sendable, Equatable {
        /// max_discard_seg / max_write_zeroes_seg: entries per request.
        public var maxSegments: UInt32
        /// max_discard_sectors / max_write_zeroes_sectors: sectors per entry.
        public var maxSectors: UInt32

        public init(maxSegments: UInt32, maxSectors: UInt32) {
            self.maxSegments = maxSegments
            self.maxSectors = maxSectors
        }
    }

    public var capacitySectors: UInt64
    public var readOnly: Bool
    /// nil when VIRTIO_BLK_F_DISCARD is not offered.
    public var discard: RangeLimits?
    /// nil when VIRTIO_BLK_F_WRITE_ZEROES is not offered.
    public var writeZeroes: RangeLimits?

    public init(capacitySectors: UInt64, readOnly: Bool, discard: RangeLimits?, writeZeroes: RangeLimits?) {
        self.capacitySectors = capacitySectors
        self.readOnly = readOnly
        self.discard = discard
        self.writeZeroes = writeZeroes
    }
}

/// A block request that passed every check in `parse`: its data buffers are inside guest RAM, point the right
/// way, and cover sectors inside the disk. Executing it can fail only on the host side.
public struct BlockRequest: Sendable, Equatable {
    public enum Operation: Sendable, Equatable {
        /// VIRTIO_BLK_T_IN: read whole sectors starting at `sector` into the writable buffers.
        case read(sector: UInt64, into: [BlockSegment])
        /// VIRTIO_BLK_T_OUT: write the readable buffers to the disk starting at `sector`.
        case write(sector: UInt64, from: [BlockSegment])
        /// VIRTIO_BLK_T_FLUSH: everything completed before it must be durable before it completes.
        case flush
        /// VIRTIO_BLK_T_GET_ID: the 20-byte serial goes to the start of the writable buffers.
        case getID(into: [BlockSegment])
        case discard([BlockRange])
        case writeZeroes([BlockRange])
    }

    public let operation: Operation
    /// The status byte: the last byte of the last (device-writable) segment.
    public let statusAddress: GuestAddress

    /// Internal: a BlockRequest is proof that `parse` checked it, so only `parse` makes one.
    init(operation: Operation, statusAddress: GuestAddress) {
        self.operation = operation
        self.statusAddress = statusAddress
    }

    /// Parses the segments of one descriptor chain.
    ///
    /// Layout (§5.2.6, with VIRTIO_F_ANY_LAYOUT semantics, which 1.x makes mandatory: message framing does not
    /// depend on descriptor boundaries): the device-readable bytes, in order, are the 16-byte header followed by
    /// any data to the device; the device-writable bytes are any data to the driver followed by the status byte,
    /// which is the last byte of the last segment. So a header may span segments and share one with the data.
    ///
    /// Throws a failure carrying the status byte's address when the chain has one (answer it with
    /// `reason.status`), or nil when it has none (drop the chain with used length 0).
    public static func parse(
        _ segments: [BlockSegment], memory: GuestMemory, limits: BlockRequestLimits
    ) throws(BlockRequestFailure) -> BlockRequest {
        guard let last = segments.last else { throw BlockRequestFailure(.emptyChain, statusAddress: nil) }
        guard last.writable, last.length > 0 else { throw BlockRequestFailure(.missingStatusByte, statusAddress: nil) }
        guard let statusAddress = last.address.checkedAdding(UInt64(last.length) - 1),
            memory.contains(statusAddress, length: 1)
        else {
            throw BlockRequestFailure(.statusOutsideGuestMemory(last.address), statusAddress: nil)
        }
        do {
            return BlockRequest(
                operation: try parseOperation(segments, memory: memory, limits: limits), statusAddress: statusAddress)
        } catch {
            throw BlockRequestFailure(error, statusAddress: statusAddress)
        }
    }

    private static func parseOperation(
        _ segments: [BlockSegment], memory: GuestMemory, limits: BlockRequestLimits
    ) throws(BlockRequestError) -> Operation {
        // Readable segments first, then writable ones (§2.7.4.2); every non-empty one inside guest RAM.
        let firstWritable = segments.firstIndex { $0.writable }!  // the last segment is writable
        for (index, segment) in segments.enumerated() {
            if index > firstWritable, !segment.writable { throw .readableAfterWritable(index: index) }
            if segment.length > 0, !memory.contains(segment.address, length: UInt64(segment.length)) {
                throw .segmentOutsideGuestMemory(index: index, address: segment.address, length: segment.length)
            }
        }
        let readable = Array(segments[..<firstWritable])
        let writable = Array(segments[firstWritable...])

        let readableBytes = totalLength(readable)
        guard readableBytes >= VirtioBlock.headerSize else { throw .headerTooShort(readableBytes: readableBytes) }
        let header = try gather(readable, count: Int(VirtioBlock.headerSize), memory: memory)
        let type = littleEndian(UInt32.self, header, at: 0)
        // header[4..<8] is `reserved` (legacy ioprio): ignored.
        let sector = littleEndian(UInt64.self, header, at: 8)

        let dataOut = dropping(prefix: VirtioBlock.headerSize, of: readable)  // to the device
        let dataIn = dropping(suffix: 1, of: writable)  // to the driver (the status byte removed)
        let dataOutBytes = readableBytes - VirtioBlock.headerSize
        let dataInBytes = totalLength(dataIn)

        func expectNoDataOut() throws(BlockRequestError) {
            if dataOutBytes != 0 { throw .unexpectedReadableData(type: type, bytes: dataOutBytes) }
        }
        func expectNoDataIn() throws(BlockRequestError) {
            if dataInBytes != 0 { throw .unexpectedWritableData(type: type, bytes: dataInBytes) }
        }

        switch type {
        case VirtioBlockRequestType.in:
            try expectNoDataOut()
            try checkSectors(sector: sector, byteCount: dataInBytes, limits: limits)
            return .read(sector: sector, into: dataIn)
        case VirtioBlockRequestType.out:
            if limits.readOnly { throw .writeToReadOnlyDisk(type: type) }
            try expectNoDataIn()
            try checkSectors(sector: sector, byteCount: dataOutBytes, limits: limits)
            return .write(sector: sector, from: dataOut)
        case VirtioBlockRequestType.flush:
            // The driver sets sector to 0 (§5.2.6.1); the device need not care.
            try expectNoDataOut()
            try expectNoDataIn()
            return .flush
        case VirtioBlockRequestType.getID:
            try expectNoDataOut()
            guard dataInBytes >= UInt64(VirtioBlock.idBytes) else { throw .idBufferTooSmall(dataInBytes) }
            return .getID(into: dataIn)
        case VirtioBlockRequestType.discard, VirtioBlockRequestType.writeZeroes:
            let isDiscard = type == VirtioBlockRequestType.discard
            guard let rangeLimits = isDiscard ? limits.discard : limits.writeZeroes else {
                throw .featureNotOffered(type: type)
            }
            if limits.readOnly { throw .writeToReadOnlyDisk(type: type) }
            try expectNoDataIn()
            let ranges = try parseRanges(
                dataOut, byteCount: dataOutBytes, isDiscard: isDiscard, rangeLimits: rangeLimits,
                capacitySectors: limits.capacitySectors, memory: memory)
            return isDiscard ? .discard(ranges) : .writeZeroes(ranges)
        default:
            throw .unsupportedType(type)
        }
    }

    /// IN/OUT: whole sectors, and `[sector, sector + count)` inside the disk. Written so nothing can overflow:
    /// capacity - sector is only computed once sector <= capacity is known.
    private static func checkSectors(sector: UInt64, byteCount: UInt64, limits: BlockRequestLimits) throws(BlockRequestError) {
        guard byteCount % VirtioBlock.sectorSize == 0 else { throw .dataLengthNotSectorMultiple(byteCount) }
        let count = byteCount >> VirtioBlock.sectorShift
        guard sector <= limits.capacitySectors, count <= limits.capacitySectors - sector else {
            throw .beyondEndOfDisk(sector: sector, byteCount: byteCount, capacitySectors: limits.capacitySectors)
        }
    }

    /// DISCARD/WRITE_ZEROES payload: an array of 16-byte `virtio_blk_discard_write_zeroes` entries (§5.2.6).
    private static func parseRanges(
        _ data: [BlockSegment], byteCount: UInt64, isDiscard: Bool, rangeLimits: BlockRequestLimits.RangeLimits,
        capacitySectors: UInt64, memory: GuestMemory
    ) throws(BlockRequestError) -> [BlockRange] {
        guard byteCount > 0, byteCount % VirtioBlock.rangeEntrySize == 0 else { throw .rangeListLengthInvalid(byteCount) }
        let count = byteCount / VirtioBlock.rangeEntrySize
        guard count <= UInt64(rangeLimits.maxSegments) else { throw .tooManyRanges(count: count, max: rangeLimits.maxSegments) }
        // count is bounded by maxSegments (a UInt32) and the bytes are in guest RAM, so this fits an Int.
        let bytes = try gather(data, count: Int(byteCount), memory: memory)
        var ranges: [BlockRange] = []
        ranges.reserveCapacity(Int(count))
        for entry in 0..<Int(count) {
            let base = entry * Int(VirtioBlock.rangeEntrySize)
            let sector = littleEndian(UInt64.self, bytes, at: base)
            let sectorCount = littleEndian(UInt32.self, bytes, at: base + 8)
            let flags = littleEndian(UInt32.self, bytes, at: base + 12)
            // §5.2.6.2: unknown flag bits, or unmap on a DISCARD, get UNSUPP.
            if flags & ~VirtioBlock.unmapFlag != 0 { throw .reservedRangeFlags(flags) }
            let unmap = flags & VirtioBlock.unmapFlag != 0
            if isDiscard, unmap { throw .unmapOnDiscard }
            guard sectorCount <= rangeLimits.maxSectors else {
                throw .rangeTooLarge(sectorCount: sectorCount, max: rangeLimits.maxSectors)
            }
            guard sector <= capacitySectors, UInt64(sectorCount) <= capacitySectors - sector else {
                throw .rangeBeyondEndOfDisk(sector: sector, sectorCount: sectorCount, capacitySectors: capacitySectors)
            }
            ranges.append(BlockRange(sector: sector, sectorCount: sectorCount, unmap: unmap))
        }
        return ranges
    }

    // MARK: Segment-list helpers

    static func totalLength(_ segments: [BlockSegment]) -> UInt64 {
        // At most a queue's worth (≤ 32768) of UInt32 lengths: cannot overflow a UInt64.
        segments.reduce(0) { $0 + UInt64($1.length) }
    }

    /// The segments with their first `count` bytes removed (and emptied segments dropped).
    static func dropping(prefix count: UInt64, of segments: [BlockSegment]) -> [BlockSegment] {
        var remaining = count
        var result: [BlockSegment] = []
        for segment in segments {
            let length = UInt64(segment.length)
            if remaining >= length {
                remaining -= length
                continue
            }
            // remaining < length <= UInt32.max, and the segment is inside guest RAM, so these cannot overflow.
            result.append(
                BlockSegment(
                    address: segment.address.adding(remaining), length: UInt32(length - remaining),
                    writable: segment.writable))
            remaining = 0
        }
        return result
    }

    /// The segments with their last `count` bytes removed (and emptied segments dropped).
    static func dropping(suffix count: UInt64, of segments: [BlockSegment]) -> [BlockSegment] {
        var remaining = count
        var result: [BlockSegment] = []
        for segment in segments.reversed() {
            let length = UInt64(segment.length)
            if remaining >= length {
                remaining -= length
                continue
            }
            result.append(BlockSegment(address: segment.address, length: UInt32(length - remaining), writable: segment.writable))
            remaining = 0
        }
        return result.reversed()
    }

    /// Copies the first `count` bytes of the segments out of guest memory (count <= their total length).
    private static func gather(_ segments: [BlockSegment], count: Int, memory: GuestMemory) throws(BlockRequestError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        for (index, segment) in segments.enumerated() where bytes.count < count {
            let take = min(Int(segment.length), count - bytes.count)
            do {
                bytes += try memory.read(at: segment.address, count: take)
            } catch {
                throw .segmentOutsideGuestMemory(index: index, address: segment.address, length: segment.length)
            }
        }
        return bytes
    }

    private static func littleEndian<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], at offset: Int) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size {
            value |= T(bytes[offset + index]) << (8 * index)
        }
        return value
    }
}
