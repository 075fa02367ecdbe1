import GuestMemory
import Testing

@testable import Virtio

/// Reading and writing a chain as byte streams: devices must not care how the driver split its buffers
/// (§2.7.4.1), so a header split over three descriptors reads exactly like one in a single descriptor.
@Suite("Chain reader and writer")
struct ChainIOTests {
    @Test func integersAreReadLittleEndianAcrossBufferBoundaries() throws {
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        // A 16-byte virtio-blk-like header: le32 type, le32 reserved, le64 sector, split 3 + 6 + 7.
        let header: [UInt8] = [0x01, 0, 0, 0, 0, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
        try driver.publish([
            try driver.readable(Array(header[0..<3])), try driver.readable(Array(header[3..<9])),
            try driver.readable(Array(header[9...])),
        ])
        let chain = try #require(try queue.popAvailable())
        var reader = chain.reader()
        #expect(try reader.readInteger(UInt32.self) == 1)
        try reader.skip(4)
        #expect(try reader.readInteger(UInt64.self) == 0x1122_3344_5566_7788)
        #expect(reader.remaining == 0)
        #expect(reader.bytesRead == 16)
    }

    @Test func readingPastTheEndThrowsAndConsumesNothing() throws {
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        try driver.publish([try driver.readable([1, 2, 3]), try driver.writable(8)])
        var reader = try #require(try queue.popAvailable()).reader()
        #expect(throws: DescriptorChainError.readBeyondEnd(requested: 4, remaining: 3)) { try reader.readInteger(UInt32.self) }
        #expect(throws: DescriptorChainError.readBeyondEnd(requested: 5, remaining: 3)) { try reader.skip(5) }
        // The writable buffer is not part of the readable stream.
        #expect(try reader.read(count: 3) == [1, 2, 3])
    }

    @Test func writesSpanBuffersAndCountTheUsedLength() throws {
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        let first = try driver.writable(3)
        let second = try driver.writable(5)
        try driver.publish([try driver.readable([0]), first, second])
        var writer = try #require(try queue.popAvailable()).writer()
        #expect(writer.remaining == 8)
        try writer.write([1, 2, 3, 4])
        try writer.writeInteger(UInt16(0xBBAA))
        #expect(writer.bytesWritten == 6)
        #expect(try driver.contents(of: first) == [1, 2, 3])
        #expect(try driver.contents(of: second) == [4, 0xAA, 0xBB, 0xEE, 0xEE])

        #expect(throws: DescriptorChainError.writeBeyondEnd(requested: 3, remaining: 2)) { try writer.write([9, 9, 9]) }
        #expect(try driver.contents(of: second) == [4, 0xAA, 0xBB, 0xEE, 0xEE])
    }

    @Test func segmentsGiveBackendsTheGuestRangesDirectly() throws {
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        let first = try driver.writable(4096)
        let second = try driver.writable(100)
        try driver.publish([first, second])
        var writer = try #require(try queue.popAvailable()).writer()
        let aSegment = writer.nextSegment(maxLength: 1000)
        let a = try #require(aSegment)
        #expect(a.address == first.address && a.length == 1000)
        let bSegment = writer.nextSegment()
        let b = try #require(bSegment)
        #expect(b.address == first.address.adding(1000) && b.length == 3096)
        let cSegment = writer.nextSegment()
        let c = try #require(cSegment)
        #expect(c.address == second.address && c.length == 100)
        let end = writer.nextSegment()
        #expect(end == nil)
        #expect(writer.bytesWritten == 4196)
    }
}
