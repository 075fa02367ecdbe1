/// All of a guest's RAM: a few non-overlapping regions, sorted by guest address.
///
/// Every read and write is checked: an access must lie wholly inside one region, with overflow-checked
/// arithmetic, or it throws `GuestMemoryError.outOfBounds`. Guest-controlled addresses (descriptor tables,
/// boot structures a guest could point at) can therefore be passed here as they come.
public final class GuestMemory: Sendable {
    public let regions: [MemoryRegion]

    /// Maps the given `(start, size)` ranges. They must not overlap.
    public init(ranges: [(start: GuestAddress, size: UInt64)]) throws(GuestMemoryError) {
        let sorted = ranges.sorted { $0.start < $1.start }
        var built: [MemoryRegion] = []
        for (index, range) in sorted.enumerated() {
            if index > 0 {
                let previous = sorted[index - 1]
                guard let previousEnd = previous.start.checkedAdding(previous.size), previousEnd <= range.start else {
                    throw .invalidLayout("regions at \(previous.start) and \(range.start) overlap")
                }
            }
            built.append(try MemoryRegion(guestBase: range.start, size: range.size))
        }
        self.regions = built
    }

    /// Wraps regions already built and checked (sorted, non-overlapping): `init(ranges:mappingFile:)`.
    init(checkedRegions: [MemoryRegion]) { regions = checkedRegions }

    /// Total bytes of RAM.
    public var totalSize: UInt64 { regions.reduce(0) { $0 + $1.size } }

    /// The region holding `[address, address + length)` and the offset into it.
    @inline(__always)
    private func locate(_ address: GuestAddress, _ length: UInt64) throws(GuestMemoryError) -> (MemoryRegion, Int) {
        // A guest has at most a handful of regions (two today), so a linear scan beats a search.
        for region in regions {
            if let offset = region.hostOffset(of: address, length: length) { return (region, offset) }
        }
        throw .outOfBounds(address: address, length: length)
    }

    /// True when `[address, address + length)` lies wholly inside one region.
    public func contains(_ address: GuestAddress, length: UInt64) -> Bool {
        regions.contains { $0.hostOffset(of: address, length: length) != nil }
    }

    // MARK: Integers (little-endian, as x86 stores them)

    public func load<T: FixedWidthInteger>(_ type: T.Type, at address: GuestAddress) throws(GuestMemoryError) -> T {
        let (region, offset) = try locate(address, UInt64(MemoryLayout<T>.size))
        return region.loadLittleEndian(type, offset: offset)
    }

    public func store<T: FixedWidthInteger>(_ value: T, at address: GuestAddress) throws(GuestMemoryError) {
        let (region, offset) = try locate(address, UInt64(MemoryLayout<T>.size))
        region.storeLittleEndian(value, offset: offset)
    }

    // MARK: Byte ranges

    /// Copies `count` bytes starting at `address` out of guest memory.
    public func read(at address: GuestAddress, count: Int) throws(GuestMemoryError) -> [UInt8] {
        precondition(count >= 0)
        let (region, offset) = try locate(address, UInt64(count))
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            region.copyOut(offset: offset, into: UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }

    /// Copies guest bytes into `buffer` (its whole length).
    public func read(into buffer: inout [UInt8], at address: GuestAddress) throws(GuestMemoryError) {
        let (region, offset) = try locate(address, UInt64(buffer.count))
        buffer.withUnsafeMutableBytes { region.copyOut(offset: offset, into: $0) }
    }

    /// Copies `bytes` into guest memory at `address`.
    public func write(_ bytes: some Collection<UInt8>, at address: GuestAddress) throws(GuestMemoryError) {
        let (region, offset) = try locate(address, UInt64(bytes.count))
        let copied: Void? = bytes.withContiguousStorageIfAvailable { region.copyIn(offset: offset, from: UnsafeRawBufferPointer($0)) }
        if copied == nil {
            Array(bytes).withUnsafeBytes { region.copyIn(offset: offset, from: $0) }
        }
    }

    /// Sets `count` bytes at `address` to zero.
    public func zero(at address: GuestAddress, count: UInt64) throws(GuestMemoryError) {
        let (region, offset) = try locate(address, count)
        region.zero(offset: offset, count: Int(count))
    }

    /// Reads a NUL-terminated string of at most `maxLength` bytes (without the NUL), for diagnostics.
    public func readCString(at address: GuestAddress, maxLength: Int) throws(GuestMemoryError) -> String {
        var bytes: [UInt8] = []
        var cursor = address
        while bytes.count < maxLength {
            let byte = try load(UInt8.self, at: cursor)
            if byte == 0 { break }
            bytes.append(byte)
            guard let next = cursor.checkedAdding(1) else { break }
            cursor = next
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: In-package fast paths

    /// Runs `body` over the guest bytes `[address, address + count)` without copying. The buffer must not
    /// escape `body`. `package`: for device backends inside Swiftlet only.
    package func withBytes<R>(at address: GuestAddress, count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let (region, offset) = try locate(address, UInt64(count))
        return try region.withBytes(offset: offset, count: count, body)
    }

    package func withMutableBytes<R>(at address: GuestAddress, count: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> R) throws -> R {
        let (region, offset) = try locate(address, UInt64(count))
        return try region.withMutableBytes(offset: offset, count: count, body)
    }
}
