// Helpers for the virtio-blk tests: a temporary disk image, and a driver-side builder that lays requests out in
// guest memory the way Linux's virtio_blk does (header, data buffers, status byte) and hands back the segments a
// descriptor chain would describe.

#if canImport(Glibc)
    import Glibc
#endif
import GuestMemory
import Synchronization
import SystemPackage

@testable import Virtio

/// A temporary file deleted when the value goes away.
final class TemporaryImage {
    let path: String

    /// A file of `size` bytes whose byte at offset i is `pattern(i)` (so misplaced reads are caught).
    init(size: Int, directory: String = "/tmp", pattern: (Int) -> UInt8 = { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }) {
        var template = Array("\(directory)/swiftlet-blk-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        precondition(fd >= 0, "mkstemp failed")
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let bytes = (0..<size).map(pattern)
        var written = 0
        while written < size {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + written, size - written, off_t(written)) }
            precondition(n > 0)
            written += n
        }
        close(fd)
    }

    deinit { unlink(path) }

    /// The file's bytes `[offset, offset + count)`, read with the host's own calls.
    func contents(at offset: Int, count: Int) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0xEE, count: count)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        precondition(n == count, "short read of the test image")
        return buffer
    }

    /// Blocks the file system has allocated for the file, in 512-byte units (st_blocks).
    var allocatedBlocks: Int {
        var info = stat()
        precondition(stat(path, &info) == 0)
        return Int(info.st_blocks)
    }

    /// lseek(SEEK_HOLE) from `offset`: where the next hole starts (the file's end counts as a hole).
    func nextHole(from offset: Int) -> Int {
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        return Int(lseek(fd, off_t(offset), 4 /* SEEK_HOLE, <linux/fs.h>; not exported by Swift's Glibc */))
    }
}

/// Fills a small guest with requests: a bump allocator over guest RAM plus request layouts.
struct RequestBuilder {
    let memory: GuestMemory
    private var next: UInt64 = 0x10_0000

    init() throws {
        memory = try GuestMemory(ranges: X86MemoryLayout.ramRanges(size: 16 << 20))
    }

    /// Reserves `count` bytes of guest RAM, optionally filled with `bytes`.
    mutating func allocate(_ count: Int, filledWith bytes: [UInt8]? = nil) throws -> GuestAddress {
        let address = GuestAddress(next)
        next += UInt64(count + 64) & ~63  // gaps between buffers catch overruns
        try memory.write(bytes ?? [UInt8](repeating: 0xA5, count: count), at: address)
        return address
    }

    /// A 16-byte `virtio_blk_req` header.
    static func header(type: UInt32, sector: UInt64, reserved: UInt32 = 0) -> [UInt8] {
        littleEndian(type) + littleEndian(reserved) + littleEndian(sector)
    }

    /// One `virtio_blk_discard_write_zeroes` entry.
    static func range(sector: UInt64, count: UInt32, flags: UInt32 = 0) -> [UInt8] {
        littleEndian(sector) + littleEndian(count) + littleEndian(flags)
    }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    /// A readable segment holding `bytes`.
    mutating func readable(_ bytes: [UInt8]) throws -> BlockSegment {
        BlockSegment(address: try allocate(bytes.count, filledWith: bytes), length: UInt32(bytes.count), writable: false)
    }

    /// A writable segment of `count` bytes (pre-filled with 0xA5 so untouched bytes show).
    mutating func writable(_ count: Int) throws -> BlockSegment {
        BlockSegment(address: try allocate(count), length: UInt32(count), writable: true)
    }

    /// The Linux layout: header segment, data segments, a 1-byte status segment.
    mutating func chain(type: UInt32, sector: UInt64 = 0, out: [[UInt8]] = [], inLengths: [Int] = []) throws -> [BlockSegment] {
        var segments = [try readable(Self.header(type: type, sector: sector))]
        for data in out { segments.append(try readable(data)) }
        for length in inLengths { segments.append(try writable(length)) }
        segments.append(try writable(1))
        return segments
    }

    /// The bytes of the segments, concatenated.
    func bytes(of segments: [BlockSegment]) throws -> [UInt8] {
        try segments.flatMap { try memory.read(at: $0.address, count: Int($0.length)) }
    }

    /// The status byte of a chain (last byte of the last segment).
    func status(of segments: [BlockSegment]) throws -> UInt8 {
        let last = segments.last!
        return try memory.load(UInt8.self, at: last.address.adding(UInt64(last.length) - 1))
    }
}

/// A backend that keeps sectors in memory and can be told to fail, for handler tests that need no file.
final class FakeBackend: BlockBackend {
    struct State {
        var failNext: BlockError?
        var flushes = 0
    }

    let capacity: UInt64
    let isReadOnly: Bool
    let state = Mutex(State())

    init(capacity: UInt64, readOnly: Bool = false) {
        self.capacity = capacity
        self.isReadOnly = readOnly
    }

    private func takeFailure() throws(BlockError) {
        if let failure = state.withLock({ state -> BlockError? in
            defer { state.failNext = nil }
            return state.failNext
        }) {
            throw failure
        }
    }

    func read(at offset: UInt64, into segments: [BlockSegment], memory: GuestMemory) throws(BlockError) {
        try takeFailure()
        for segment in segments {
            do { try memory.write([UInt8](repeating: 0x11, count: Int(segment.length)), at: segment.address) } catch { throw .guestMemory(error) }
        }
    }
    func write(at offset: UInt64, from segments: [BlockSegment], memory: GuestMemory) throws(BlockError) { try takeFailure() }
    func flush() throws(BlockError) {
        try takeFailure()
        state.withLock { $0.flushes += 1 }
    }
    func discard(at offset: UInt64, length: UInt64) throws(BlockError) { try takeFailure() }
    func writeZeroes(at offset: UInt64, length: UInt64, mayUnmap: Bool) throws(BlockError) { try takeFailure() }
}
