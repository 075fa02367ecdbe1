import GuestMemory
import Testing

@testable import Virtio

/// virtio 1.2 §2.7: what a queue's setup must satisfy before the device uses it. Checked once, at DRIVER_OK.
@Suite("Queue setup is validated at activation")
struct QueueSetupTests {
    @Test func aWellFormedSetupBuilds() throws {
        let driver = try TestDriver(size: 16)
        let queue = try driver.makeQueue()
        #expect(queue.size == 16)
        #expect(queue.eventIndexEnabled)
        #expect(queue.indirectDescriptorsEnabled)
        #expect(queue.nextAvailable == 0 && queue.nextUsed == 0)
    }

    @Test func sizeMustBeNonZeroAPowerOfTwoAndWithinTheMaximum() throws {
        let driver = try TestDriver()
        driver.configuration.size = 0
        #expect(throws: VirtioError.queueSizeZero(queue: 0)) { try driver.makeQueue() }

        driver.configuration.size = 24
        #expect(throws: VirtioError.queueSizeNotPowerOfTwo(queue: 0, size: 24)) { try driver.makeQueue() }

        // The device offered 256 (queue_size before the driver wrote it).
        driver.configuration.size = 512
        #expect(throws: VirtioError.queueSizeTooLarge(queue: 0, size: 512, maximum: 256)) { try driver.makeQueue() }
    }

    @Test func eachRingPartMustBeAligned() throws {
        // Descriptor table 16, available ring 2, used ring 4 (§2.7 alignment table).
        let driver = try TestDriver()
        driver.configuration.descriptorTable = GuestAddress(0x1_0008)
        #expect(throws: VirtioError.ringMisaligned(
            queue: 0, part: .descriptorTable, address: GuestAddress(0x1_0008), requiredAlignment: 16)
        ) { try driver.makeQueue() }

        let second = try TestDriver()
        second.configuration.availableRing = GuestAddress(0x3_0001)
        #expect(throws: VirtioError.ringMisaligned(
            queue: 0, part: .availableRing, address: GuestAddress(0x3_0001), requiredAlignment: 2)
        ) { try second.makeQueue() }

        let third = try TestDriver()
        third.configuration.usedRing = GuestAddress(0x4_0002)
        #expect(throws: VirtioError.ringMisaligned(
            queue: 0, part: .usedRing, address: GuestAddress(0x4_0002), requiredAlignment: 4)
        ) { try third.makeQueue() }
    }

    @Test func everyRingPartMustLieWhollyInsideRAM() throws {
        let driver = try TestDriver(size: 16)
        // The table's last byte is one past the end of the 64 MiB of RAM.
        let tooHigh = GuestAddress((64 << 20) - 16 * 16 + 16)
        driver.configuration.descriptorTable = tooHigh
        #expect(throws: VirtioError.ringOutsideMemory(queue: 0, part: .descriptorTable, address: tooHigh, length: 256)) {
            try driver.makeQueue()
        }

        // In the MMIO hole, where there is no RAM at all.
        let second = try TestDriver(size: 16)
        second.configuration.availableRing = X86MemoryLayout.mmioHoleStart
        #expect(throws: VirtioError.ringOutsideMemory(
            queue: 0, part: .availableRing, address: X86MemoryLayout.mmioHoleStart, length: 6 + 2 * 16)
        ) { try second.makeQueue() }

        // A used ring whose end would wrap past 2^64.
        let third = try TestDriver(size: 16)
        let wrapping = GuestAddress(UInt64.max - 3)
        third.configuration.usedRing = wrapping
        #expect(throws: VirtioError.ringOutsideMemory(queue: 0, part: .usedRing, address: wrapping, length: 6 + 8 * 16)) {
            try third.makeQueue()
        }
    }

    @Test func ringFeaturesFollowNegotiation() throws {
        let driver = try TestDriver()
        let plain = try driver.makeQueue(features: VirtioFeature.version1)
        #expect(!plain.eventIndexEnabled)
        #expect(!plain.indirectDescriptorsEnabled)
    }

    @Test func aSnapshotConfigurationRestoresProgress() throws {
        let driver = try TestDriver(size: 8)
        var queue = try driver.makeQueue()
        try driver.publish([try driver.writable(4)])
        let chain = try #require(try queue.popAvailable())
        try queue.addUsed(head: chain.head, length: 4)

        let restored = try Queue(index: 0, configuration: queue.configuration, memory: driver.memory, features: 0)
        #expect(restored.nextAvailable == 1)
        #expect(restored.nextUsed == 1)
        #expect(restored.configuration == queue.configuration)
    }
}
