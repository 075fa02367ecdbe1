import GuestMemory
import Testing

@testable import Virtio

/// Everything a buggy or hostile driver can put in a queue. Each malformed chain fails only its own request
/// (`.malformedChain`, the ring entry consumed, the next chain still served); a malformed ring fails the queue
/// (`requiresDeviceReset`). Nothing traps.
@Suite("Malformed chains and rings")
struct MalformedChainTests {
    let next = RawDescriptor.flagNext
    let write = RawDescriptor.flagWrite
    let indirect = RawDescriptor.flagIndirect

    /// Pops the chain at `head` (already written by the test), expects it to fail with `reason`, and checks
    /// that the queue survived: the failed head can be returned and a good chain behind it is served.
    func expectMalformed(
        _ driver: TestDriver, head: UInt16 = 0, features: UInt64 = VirtioFeature.offeredByCore,
        _ reason: DescriptorChainError, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        var queue = try driver.makeQueue(features: features)
        try driver.publishHead(head)
        let error = #expect(throws: VirtioError.self, sourceLocation: sourceLocation) { try queue.popAvailable() }
        #expect(error == .malformedChain(queue: 0, head: head, reason), sourceLocation: sourceLocation)
        #expect(error?.requiresDeviceReset == false, sourceLocation: sourceLocation)

        // The device answers the bad request with an empty used entry and carries on.
        try queue.addUsed(head: head, length: 0)
        try driver.writeDescriptor(15, address: 0x20_0000, length: 8, flags: write)
        try driver.publishHead(15)
        let good = try #require(try queue.popAvailable(), sourceLocation: sourceLocation)
        #expect(good.head == 15, sourceLocation: sourceLocation)
    }

    @Test func aBufferOutsideRAM() throws {
        let driver = try TestDriver()
        try driver.writeDescriptor(0, address: 0xC000_0000, length: 16, flags: 0)  // the MMIO hole
        try expectMalformed(driver, .bufferOutsideMemory(at: .table(index: 0), address: GuestAddress(0xC000_0000), length: 16))
    }

    @Test func aBufferRunningOffTheEndOfRAM() throws {
        let driver = try TestDriver()
        let nearEnd: UInt64 = (64 << 20) - 8
        try driver.writeDescriptor(0, address: nearEnd, length: 16, flags: write)
        try expectMalformed(driver, .bufferOutsideMemory(at: .table(index: 0), address: GuestAddress(nearEnd), length: 16))
    }

    @Test func aBufferWhoseEndWrapsPast2To64() throws {
        let driver = try TestDriver()
        try driver.writeDescriptor(0, address: UInt64.max - 7, length: 0x100, flags: 0)
        try expectMalformed(driver, .bufferAddressOverflow(at: .table(index: 0), address: GuestAddress(UInt64.max - 7), length: 0x100))
    }

    @Test func aNextIndexPastTheTable() throws {
        let driver = try TestDriver(size: 16)
        try driver.writeDescriptor(0, address: 0x20_0000, length: 8, flags: next, next: 16)
        try expectMalformed(driver, .nextIndexOutOfRange(at: .table(index: 0), next: 16, tableSize: 16))
    }

    @Test func aLoop() throws {
        // 0 → 1 → 2 → 1 → ...: would never end; caught once more descriptors than the table holds are followed.
        let driver = try TestDriver(size: 16)
        try driver.writeDescriptor(0, address: 0x20_0000, length: 8, flags: next, next: 1)
        try driver.writeDescriptor(1, address: 0x20_0000, length: 8, flags: next, next: 2)
        try driver.writeDescriptor(2, address: 0x20_0000, length: 8, flags: next, next: 1)
        try expectMalformed(driver, .chainTooLong(limit: 16))
    }

    @Test func aDescriptorChainingToItself() throws {
        let driver = try TestDriver(size: 16)
        try driver.writeDescriptor(3, address: 0x20_0000, length: 8, flags: next, next: 3)
        try expectMalformed(driver, head: 3, .chainTooLong(limit: 16))
    }

    @Test func aReadableBufferAfterAWritableOne() throws {
        let driver = try TestDriver()
        try driver.writeDescriptor(0, address: 0x20_0000, length: 8, flags: write | next, next: 1)
        try driver.writeDescriptor(1, address: 0x20_0100, length: 8, flags: 0)
        try expectMalformed(driver, .readableAfterWritable(at: .table(index: 1)))
    }

    @Test func moreThan4GiBInOneChain() throws {
        // §2.7.5.2: at most 2^32 bytes per chain. 5 GiB of RAM, lazily mapped, holds two huge buffers.
        let memory = try GuestMemory(ranges: X86MemoryLayout.ramRanges(size: 5 << 30))
        let driver = try TestDriver(memory: memory)
        try driver.writeDescriptor(0, address: 0x1000_0000, length: 0xA000_0000, flags: next, next: 1)
        try driver.writeDescriptor(1, address: 0x1_0000_0000, length: 0x7000_0000, flags: write)
        try expectMalformed(driver, .totalLengthOverflow)
    }

    // MARK: Indirect descriptors (§2.7.5.3)

    @Test func indirectWithoutTheFeature() throws {
        let driver = try TestDriver()
        let table = driver.writeIndirectTable([try driver.writable(4)])
        try driver.writeDescriptor(0, address: table.address.rawValue, length: table.length, flags: indirect)
        try expectMalformed(driver, features: VirtioFeature.version1, .indirectNotNegotiated(at: .table(index: 0)))
    }

    @Test func indirectTogetherWithNext() throws {
        let driver = try TestDriver()
        let table = driver.writeIndirectTable([try driver.writable(4)])
        try driver.writeDescriptor(0, address: table.address.rawValue, length: table.length, flags: indirect | next, next: 1)
        try expectMalformed(driver, .indirectWithNext(at: .table(index: 0)))
    }

    @Test func indirectInsideIndirect() throws {
        let driver = try TestDriver()
        let inner = driver.writeIndirectTable([try driver.writable(4)])
        let outer = driver.writeIndirectTable([])
        try driver.writeDescriptor(0, address: inner.address.rawValue, length: inner.length, flags: indirect, table: outer.address)
        try driver.writeDescriptor(0, address: outer.address.rawValue, length: 16, flags: indirect)
        try expectMalformed(driver, .nestedIndirect(at: .indirect(index: 0)))
    }

    @Test(arguments: [UInt32(0), 8, 24, 17])
    func anIndirectTableLengthThatIsNotAPositiveMultipleOf16(length: UInt32) throws {
        let driver = try TestDriver()
        let table = driver.writeIndirectTable([try driver.writable(4), try driver.writable(4)])
        try driver.writeDescriptor(0, address: table.address.rawValue, length: length, flags: indirect)
        try expectMalformed(driver, .indirectTableLengthInvalid(at: .table(index: 0), length: length))
    }

    @Test func anIndirectTableOutsideRAM() throws {
        let driver = try TestDriver()
        try driver.writeDescriptor(0, address: 0xD000_0000, length: 32, flags: indirect)
        try expectMalformed(driver, .indirectTableOutsideMemory(at: .table(index: 0), address: GuestAddress(0xD000_0000), length: 32))
    }

    @Test func anIndirectTableTooLarge() throws {
        let driver = try TestDriver()
        let entries = DescriptorChain.maxIndirectEntries + 1
        try driver.writeDescriptor(0, address: 0x100_0000, length: entries * 16, flags: indirect)
        try expectMalformed(driver, .indirectTableTooLarge(at: .table(index: 0), entries: entries, limit: DescriptorChain.maxIndirectEntries))
    }

    @Test func aLoopInsideAnIndirectTable() throws {
        let driver = try TestDriver()
        let table = GuestAddress(0x90_0000)
        try driver.writeDescriptor(0, address: 0x20_0000, length: 4, flags: next, next: 1, table: table)
        try driver.writeDescriptor(1, address: 0x20_0000, length: 4, flags: next, next: 0, table: table)
        try driver.writeDescriptor(0, address: table.rawValue, length: 32, flags: indirect)
        try expectMalformed(driver, .chainTooLong(limit: 2))
    }

    @Test func aNextIndexPastTheIndirectTable() throws {
        let driver = try TestDriver()
        let table = GuestAddress(0x90_0000)
        try driver.writeDescriptor(0, address: 0x20_0000, length: 4, flags: next, next: 2, table: table)
        try driver.writeDescriptor(1, address: 0x20_0000, length: 4, flags: 0, table: table)
        try driver.writeDescriptor(0, address: table.rawValue, length: 32, flags: indirect)
        try expectMalformed(driver, .nextIndexOutOfRange(at: .indirect(index: 0), next: 2, tableSize: 2))
    }

    @Test func aBadBufferInsideAnIndirectTable() throws {
        let driver = try TestDriver()
        let table = GuestAddress(0x90_0000)
        try driver.writeDescriptor(0, address: 0x20_0000, length: 4, flags: next, next: 1, table: table)
        try driver.writeDescriptor(1, address: 0xFEC0_0000, length: 4, flags: write, table: table)
        try driver.writeDescriptor(0, address: table.rawValue, length: 32, flags: indirect)
        try expectMalformed(driver, .bufferOutsideMemory(at: .indirect(index: 1), address: GuestAddress(0xFEC0_0000), length: 4))
    }

    // MARK: Malformed rings: the queue is finished

    @Test func availableIndexJumpingPastTheQueueSize() throws {
        let driver = try TestDriver(size: 8)
        var queue = try driver.makeQueue()
        try driver.setAvailableIndex(9)  // 9 new buffers in an 8-entry ring
        let expected = VirtioError.availableIndexJump(queue: 0, lastSeen: 0, published: 9, queueSize: 8)
        #expect(throws: expected) { try queue.popAvailable() }
        #expect(expected.requiresDeviceReset)

        // The queue stays failed even if the driver "fixes" the index: it must reset the device.
        try driver.setAvailableIndex(1)
        #expect(throws: expected) { try queue.popAvailable() }
        #expect(throws: expected) { try queue.addUsed(head: 0, length: 0) }
        #expect(queue.failure == expected)
    }

    @Test func availableIndexGoingBackwards() throws {
        // §2.7.6.1: the driver MUST NOT decrement avail.idx. Going back by one looks like 65535 new buffers.
        let driver = try TestDriver(size: 8)
        var queue = try driver.makeQueue()
        try driver.publish([try driver.writable(1)])
        _ = try queue.popAvailable()
        try driver.setAvailableIndex(0)
        #expect(throws: VirtioError.availableIndexJump(queue: 0, lastSeen: 1, published: 0, queueSize: 8)) {
            try queue.popAvailable()
        }
    }

    @Test func aHeadIndexOutsideTheTable() throws {
        let driver = try TestDriver(size: 8)
        var queue = try driver.makeQueue()
        try driver.publishHead(8)
        let error = #expect(throws: VirtioError.headIndexOutOfRange(queue: 0, head: 8, queueSize: 8)) {
            try queue.popAvailable()
        }
        #expect(error?.requiresDeviceReset == true)
    }

    @Test func theDeviceCannotReturnAHeadOutsideTheTable() throws {
        let driver = try TestDriver(size: 8)
        var queue = try driver.makeQueue()
        #expect(throws: VirtioError.usedHeadOutOfRange(queue: 0, head: 8, queueSize: 8)) {
            try queue.addUsed(head: 8, length: 0)
        }
        #expect(try driver.usedIndex() == 0)
    }
}
