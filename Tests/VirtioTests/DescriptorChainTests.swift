import GuestMemory
import Testing

@testable import Virtio

/// Well-formed chains as a driver builds them (§2.7.5, §2.7.13), and the used ring the device fills (§2.7.8).
@Suite("Descriptor chains and the rings")
struct DescriptorChainTests {
    @Test func nothingPublishedMeansNothingToPop() throws {
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        #expect(try queue.popAvailable() == nil)
        #expect(try queue.pendingCount() == 0)
    }

    @Test func aSingleReadableBuffer() throws {
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        let buffer = try driver.readable([1, 2, 3, 4])
        let head = try driver.publish([buffer])

        let chain = try #require(try queue.popAvailable())
        #expect(chain.head == head)
        #expect(chain.descriptors == [
            Descriptor(address: buffer.address, length: 4, isWriteOnly: false, location: .table(index: head))
        ])
        #expect(chain.readableBytes == 4)
        #expect(chain.writableBytes == 0)
        var reader = chain.reader()
        #expect(try reader.read(count: 4) == [1, 2, 3, 4])
        #expect(try queue.popAvailable() == nil)
    }

    @Test func readableHeaderThenWritableDataAndStatus() throws {
        // The shape of a virtio-blk read: 16-byte header (readable), data and a status byte (writable).
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        let header = try driver.readable([UInt8](0..<16))
        let data = try driver.writable(512)
        let status = try driver.writable(1)
        try driver.publish([header, data, status])

        let chain = try #require(try queue.popAvailable())
        #expect(chain.descriptors.map(\.isWriteOnly) == [false, true, true])
        #expect(chain.readable.count == 1)
        #expect(chain.writable.count == 2)
        #expect(chain.readableBytes == 16)
        #expect(chain.writableBytes == 513)

        var writer = chain.writer()
        try writer.write([UInt8](repeating: 0xAB, count: 512))
        try writer.writeInteger(UInt8(0))
        #expect(writer.bytesWritten == 513)
        #expect(try driver.contents(of: data) == [UInt8](repeating: 0xAB, count: 512))
        #expect(try driver.contents(of: status) == [0])
        // The header was not touched: a device never writes a device-readable buffer.
        #expect(try driver.contents(of: header) == [UInt8](0..<16))

        try queue.addUsed(head: chain.head, length: UInt32(writer.bytesWritten))
        #expect(try driver.usedIndex() == 1)
        #expect(try driver.usedElement(0) == (UInt32(chain.head), 513))
    }

    @Test func anIndirectTable() throws {
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        let header = try driver.readable([9, 9])
        let data = try driver.writable(8)
        let head = try driver.publishIndirect([header, data])

        let chain = try #require(try queue.popAvailable())
        #expect(chain.head == head)
        #expect(chain.descriptors == [
            Descriptor(address: header.address, length: 2, isWriteOnly: false, location: .indirect(index: 0)),
            Descriptor(address: data.address, length: 8, isWriteOnly: true, location: .indirect(index: 1)),
        ])
    }

    @Test func directDescriptorsFollowedByAnIndirectOne() throws {
        // §2.7.5.3.2: the device MUST handle zero or more normal descriptors followed by one indirect one.
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        let header = try driver.readable([7])
        let data = try driver.writable(4)
        try driver.publishIndirect([data], after: [header])

        let chain = try #require(try queue.popAvailable())
        #expect(chain.descriptors.map(\.address) == [header.address, data.address])
        #expect(chain.descriptors.map(\.isWriteOnly) == [false, true])
    }

    @Test func theWriteFlagOfTheTableDescriptorItselfIsIgnored() throws {
        // §2.7.5.3.2: "The device MUST ignore the write-only flag in the descriptor that refers to an
        // indirect table" — so a readable buffer inside is still readable, and not "after a writable one".
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        let table = driver.writeIndirectTable([try driver.readable([1]), try driver.writable(1)])
        try driver.writeDescriptor(
            0, address: table.address.rawValue, length: table.length,
            flags: RawDescriptor.flagIndirect | RawDescriptor.flagWrite)
        try driver.publishHead(0)
        let chain = try #require(try queue.popAvailable())
        #expect(chain.descriptors.map(\.isWriteOnly) == [false, true])
    }

    @Test func chainsAreReturnedInAnyOrder() throws {
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        let first = try driver.publish([try driver.writable(1)])
        let second = try driver.publish([try driver.writable(2)])
        #expect(try queue.pendingCount() == 2)
        let a = try #require(try queue.popAvailable())
        let b = try #require(try queue.popAvailable())
        #expect([a.head, b.head] == [first, second])

        // The device may complete out of order (§2.7.8: the used ring holds the head of each).
        try queue.addUsed(head: b.head, length: 2)
        try queue.addUsed(head: a.head, length: 1)
        #expect(try driver.usedIndex() == 2)
        #expect(try driver.usedElement(0) == (UInt32(second), 2))
        #expect(try driver.usedElement(1) == (UInt32(first), 1))
    }

    @Test(arguments: [UInt16(0), 5, 65_530, 65_535])
    func ringIndicesWrapAroundTheQueueAndPast65535(start: UInt16) throws {
        // Indices are free-running 16-bit counters; the ring slot is the index modulo the queue size. Publish
        // ten chains through a 4-entry queue so both the slot and (from 65530) the index itself wrap.
        let driver = try TestDriver(size: 4, startIndex: start)
        var queue = try driver.makeQueue()
        var expected = start
        for round in 0..<10 {
            let buffer = try driver.writable(round + 1)
            let head = try driver.publish([buffer])
            let chain = try #require(try queue.popAvailable())
            #expect(chain.head == head)
            #expect(chain.writableBytes == UInt64(round + 1))
            try queue.addUsed(head: chain.head, length: UInt32(round + 1))
            #expect(try driver.usedElement(expected) == (UInt32(head), UInt32(round + 1)))
            expected &+= 1
            #expect(try driver.usedIndex() == expected)
        }
        #expect(queue.nextAvailable == start &+ 10)
        #expect(queue.nextUsed == start &+ 10)
    }

    @Test func aFullQueueOfChainsCanBeOutstanding() throws {
        let driver = try TestDriver(size: 4)
        var queue = try driver.makeQueue()
        for _ in 0..<4 { try driver.publish([try driver.writable(1)]) }
        #expect(try queue.pendingCount() == 4)
        for _ in 0..<4 { #expect(try queue.popAvailable() != nil) }
        #expect(try queue.popAvailable() == nil)
    }

    @Test func aZeroLengthBufferIsAccepted() throws {
        // The spec does not forbid empty buffers; they simply carry no bytes.
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        try driver.publish([try driver.readable([]), try driver.writable(3)])
        let chain = try #require(try queue.popAvailable())
        #expect(chain.readableBytes == 0 && chain.writableBytes == 3)
    }
}

extension DescriptorChain: Equatable {
    public static func == (lhs: DescriptorChain, rhs: DescriptorChain) -> Bool {
        lhs.head == rhs.head && lhs.descriptors == rhs.descriptors
    }
}
