/// Bounds-checked little-endian reads from a file image held in memory.
///
/// Every offset that comes out of a kernel file is untrusted: these helpers return nil instead of trapping
/// when a read would leave the buffer, and callers turn that nil into a `BootError` naming the structure.
extension Array where Element == UInt8 {
    /// The `count` bytes at `offset` as an index range, or nil when they are not all inside the array.
    /// Takes 64-bit values because ELF offsets and sizes are 64-bit; overflow counts as "outside".
    func checkedRange(offset: UInt64, count: UInt64) -> Range<Int>? {
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard !overflow, end <= UInt64(self.count) else { return nil }
        return Int(offset)..<Int(end)
    }

    func le8(at offset: Int) -> UInt8? {
        guard offset >= 0, offset < count else { return nil }
        return self[offset]
    }

    func le16(at offset: Int) -> UInt16? { littleEndian(UInt16.self, at: offset) }
    func le32(at offset: Int) -> UInt32? { littleEndian(UInt32.self, at: offset) }
    func le64(at offset: Int) -> UInt64? { littleEndian(UInt64.self, at: offset) }

    private func littleEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= count - size else { return nil }
        var value: T = 0
        for index in 0..<size {
            value |= T(self[offset + index]) << (8 * index)
        }
        return value
    }
}

/// Little-endian writes into a fixed-size structure being built in host memory (zero page, GDT,
/// hvm_start_info). Offsets here are Swiftlet's own constants, so a bad one is a programmer error and traps.
extension Array where Element == UInt8 {
    mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for index in 0..<MemoryLayout<T>.size {
            self[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index))
        }
    }
}
