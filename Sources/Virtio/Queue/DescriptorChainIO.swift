import GuestMemory

/// A cursor over a run of validated descriptors that treats their buffers as one byte stream. Devices must
/// not assume any particular framing (§2.7.4.1: "The device MUST NOT make assumptions about the particular
/// arrangement of descriptors"), so a 16-byte header may arrive split over several buffers; the cursor hides
/// that.
struct SegmentCursor: Sendable {
    let memory: GuestMemory
    private let segments: [Descriptor]
    private var segment = 0
    private var offset: UInt64 = 0
    /// Bytes not yet consumed.
    private(set) var remaining: UInt64
    /// Bytes consumed so far.
    private(set) var consumed: UInt64 = 0

    init(memory: GuestMemory, segments: ArraySlice<Descriptor>) {
        self.memory = memory
        self.segments = Array(segments)
        self.remaining = segments.reduce(0) { $0 + UInt64($1.length) }
    }

    /// Consumes the next contiguous guest range of at most `maxLength` bytes (nil at the end of the stream).
    /// Every range lies inside one descriptor, which the chain proved to be inside guest RAM.
    mutating func next(maxLength: UInt64) -> (address: GuestAddress, length: UInt64, location: DescriptorLocation)? {
        while segment < segments.count {
            let descriptor = segments[segment]
            let left = UInt64(descriptor.length) - offset
            if left == 0 {
                segment += 1
                offset = 0
                continue
            }
            let take = min(left, maxLength)
            guard take > 0 else { return nil }
            // Cannot overflow: the chain checked address + length for this descriptor.
            let address = descriptor.address.adding(offset)
            offset += take
            remaining -= take
            consumed += take
            return (address, take, descriptor.location)
        }
        return nil
    }
}

/// Reads the device-readable part of a chain as one byte stream (see `DescriptorChain.reader()`).
public struct DescriptorChainReader: Sendable {
    private var cursor: SegmentCursor

    init(memory: GuestMemory, segments: ArraySlice<Descriptor>) {
        cursor = SegmentCursor(memory: memory, segments: segments)
    }

    /// Bytes left to read.
    public var remaining: UInt64 { cursor.remaining }
    /// Bytes read (or skipped) so far.
    public var bytesRead: UInt64 { cursor.consumed }

    /// Reads exactly `count` bytes, or throws `.readBeyondEnd` without consuming anything.
    public mutating func read(count: Int) throws(DescriptorChainError) -> [UInt8] {
        precondition(count >= 0)
        guard UInt64(count) <= remaining else { throw .readBeyondEnd(requested: UInt64(count), remaining: remaining) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while bytes.count < count, let piece = cursor.next(maxLength: UInt64(count - bytes.count)) {
            do {
                bytes += try cursor.memory.read(at: piece.address, count: Int(piece.length))
            } catch {
                throw .bufferOutsideMemory(at: piece.location, address: piece.address, length: UInt32(piece.length))
            }
        }
        return bytes
    }

    /// Reads a little-endian integer (virtio structures are little-endian, §1.4), even across buffers.
    public mutating func readInteger<T: FixedWidthInteger>(_: T.Type = T.self) throws(DescriptorChainError) -> T {
        let bytes = try read(count: MemoryLayout<T>.size)
        var value: T = 0
        for (shift, byte) in bytes.enumerated() { value |= T(byte) << (8 * shift) }
        return value
    }

    /// Skips `count` bytes, or throws `.readBeyondEnd` without consuming anything.
    public mutating func skip(_ count: UInt64) throws(DescriptorChainError) {
        guard count <= remaining else { throw .readBeyondEnd(requested: count, remaining: remaining) }
        var left = count
        while left > 0, let piece = cursor.next(maxLength: left) { left -= piece.length }
    }

    /// Consumes the next contiguous guest range of at most `maxLength` bytes, for backends that move data
    /// straight between guest RAM and a file (nil once the readable part is exhausted).
    public mutating func nextSegment(maxLength: UInt64 = .max) -> (address: GuestAddress, length: UInt64)? {
        cursor.next(maxLength: maxLength).map { ($0.address, $0.length) }
    }
}

/// Writes the device-writable part of a chain as one byte stream (see `DescriptorChain.writer()`).
/// `bytesWritten` is what the device reports as the used length (§2.7.8).
public struct DescriptorChainWriter: Sendable {
    private var cursor: SegmentCursor

    init(memory: GuestMemory, segments: ArraySlice<Descriptor>) {
        cursor = SegmentCursor(memory: memory, segments: segments)
    }

    /// Space left.
    public var remaining: UInt64 { cursor.remaining }
    /// Bytes written (or skipped) so far: the used length to report for this chain.
    public var bytesWritten: UInt64 { cursor.consumed }

    /// Writes all of `bytes`, or throws `.writeBeyondEnd` without writing anything.
    public mutating func write(_ bytes: some Collection<UInt8>) throws(DescriptorChainError) {
        guard UInt64(bytes.count) <= remaining else {
            throw .writeBeyondEnd(requested: UInt64(bytes.count), remaining: remaining)
        }
        var rest = bytes[...]
        while !rest.isEmpty, let piece = cursor.next(maxLength: UInt64(rest.count)) {
            let chunk = rest.prefix(Int(piece.length))
            do {
                try cursor.memory.write(chunk, at: piece.address)
            } catch {
                throw .bufferOutsideMemory(at: piece.location, address: piece.address, length: UInt32(piece.length))
            }
            rest = rest.dropFirst(chunk.count)
        }
    }

    /// Writes a little-endian integer, even across buffers.
    public mutating func writeInteger<T: FixedWidthInteger>(_ value: T) throws(DescriptorChainError) {
        try write((0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) })
    }

    /// Consumes the next contiguous guest range of at most `maxLength` bytes, for backends that fill guest RAM
    /// directly (the bytes count as written).
    public mutating func nextSegment(maxLength: UInt64 = .max) -> (address: GuestAddress, length: UInt64)? {
        cursor.next(maxLength: maxLength).map { ($0.address, $0.length) }
    }
}
