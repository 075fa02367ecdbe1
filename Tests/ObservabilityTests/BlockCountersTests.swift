// virtio-blk's counters, driven through BlockRequestHandler with requests laid out in guest memory.

import GuestMemory
import Testing

@testable import Swiftlet
@testable import Virtio

/// Sectors in memory; fails when told to.
private final class MemoryBackend: BlockBackend, @unchecked Sendable {
    let capacity: UInt64 = 1 << 20
    let isReadOnly = false
    var failNext = false

    private func check() throws(BlockError) {
        if failNext { failNext = false; throw .unexpectedEndOfFile(offset: 0) }
    }
    func read(at offset: UInt64, into segments: [BlockSegment], memory: GuestMemory) throws(BlockError) { try check() }
    func write(at offset: UInt64, from segments: [BlockSegment], memory: GuestMemory) throws(BlockError) { try check() }
    func flush() throws(BlockError) { try check() }
    func discard(at offset: UInt64, length: UInt64) throws(BlockError) { try check() }
    func writeZeroes(at offset: UInt64, length: UInt64, mayUnmap: Bool) throws(BlockError) { try check() }
}

@Suite struct BlockCountersTests {
    let memory = try! GuestMemory(ranges: [(start: GuestAddress(0), size: 1 << 20)])

    /// header | data segments | status, at fixed addresses.
    func request(type: UInt32, data: [(length: UInt32, writable: Bool)]) throws -> [BlockSegment] {
        var header = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: type.littleEndian) { header.replaceSubrange(0..<4, with: $0) }
        try memory.write(header, at: GuestAddress(0x1000))
        var segments = [BlockSegment(address: GuestAddress(0x1000), length: 16, writable: false)]
        var address: UInt64 = 0x2000
        for segment in data {
            segments.append(BlockSegment(address: GuestAddress(address), length: segment.length, writable: segment.writable))
            address += 0x2000
        }
        segments.append(BlockSegment(address: GuestAddress(0x10000), length: 1, writable: true))
        return segments
    }

    @Test func countsReadsWritesFlushesRefusalsAndFailures() throws {
        let backend = MemoryBackend()
        let handler = try BlockRequestHandler(
            backend: backend, config: VirtioBlockConfig(capacityBytes: backend.capacity, readOnly: false), id: nil)
        _ = handler.handle(try request(type: VirtioBlockRequestType.in, data: [(512, true), (1024, true)]), memory: memory)
        _ = handler.handle(try request(type: VirtioBlockRequestType.out, data: [(4096, false)]), memory: memory)
        _ = handler.handle(try request(type: VirtioBlockRequestType.out, data: [(512, false)]), memory: memory)
        _ = handler.handle(try request(type: VirtioBlockRequestType.flush, data: []), memory: memory)
        _ = handler.handle(try request(type: 0xdead, data: []), memory: memory)
        backend.failNext = true
        _ = handler.handle(try request(type: VirtioBlockRequestType.in, data: [(512, true)]), memory: memory)

        let s = handler.counters.snapshot
        #expect(s.readRequests == 1)
        #expect(s.readBytes == 1536)
        #expect(s.writeRequests == 2)
        #expect(s.writeBytes == 4608)
        #expect(s.flushes == 1)
        #expect(s.invalidRequests == 1)
        #expect(s.failedRequests == 1)

        // As Firecracker fields, through the registry.
        let registry = MetricsRegistry()
        registry.registerBlock(id: "rootfs") { handler.counters.snapshot }
        let json = try parse(registry.snapshot())
        #expect(value(json, "block_rootfs", "read_bytes") == 1536)
        #expect(value(json, "block_rootfs", "write_count") == 2)
        #expect(value(json, "block_rootfs", "execute_fails") == 1)
        #expect(value(json, "block", "invalid_reqs_count") == 1)
    }
}
