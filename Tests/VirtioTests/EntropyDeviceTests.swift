import GuestMemory
import Synchronization
import Testing

@testable import Virtio

/// virtio-rng (virtio 1.2 §5.4) end to end: the driver negotiates, sets up the request queue, posts writable
/// buffers and kicks; the device fills them and interrupts. Only the transport is missing: the test plays it
/// with `VirtioDeviceState` and direct calls.
@Suite("virtio-rng end to end")
struct EntropyDeviceTests {
    /// Predictable "entropy" (0, 1, 2, ...) so the test can check exactly which bytes reached the guest.
    final class CountingSource: EntropySource {
        private let next = Mutex<UInt8>(0)
        func fill(_ buffer: inout [UInt8]) {
            next.withLock { value in
                for index in buffer.indices {
                    buffer[index] = value
                    value &+= 1
                }
            }
        }
    }

    /// Brings the device up the way Linux's virtio-pci driver does and returns the pieces.
    func activate(
        _ device: EntropyDevice, features: UInt64 = VirtioFeature.version1 | VirtioFeature.ringEventIndex
    ) throws -> (TestDriver, RecordingInterrupt) {
        let (driver, interrupt, _) = try TestDriver.activate(device, features: features)
        return (driver, interrupt)
    }

    @Test func sixtyFourBytesRequestedSixtyFourRandomBytesReturned() throws {
        let device = EntropyDevice(source: CountingSource())
        let (driver, interrupt) = try activate(device)
        try driver.setUsedEvent(0)

        let buffer = try driver.writable(64)
        let head = try driver.publish([buffer])
        device.queueNotified(index: 0)

        #expect(try driver.usedIndex() == 1)
        #expect(try driver.usedElement(0) == (UInt32(head), 64))
        #expect(try driver.contents(of: buffer) == (0..<64).map { UInt8($0) })
        #expect(interrupt.usedBufferSignals == [0])
        #expect(interrupt.resetRequests.isEmpty)
    }

    @Test func theHostSourceFillsTheBufferFromGetrandom() throws {
        let device = EntropyDevice()
        let (driver, _) = try activate(device)
        let buffer = try driver.writable(64)
        try driver.publish([buffer])
        device.queueNotified(index: 0)
        #expect(try driver.usedElement(0).length == 64)
        let bytes = try driver.contents(of: buffer)
        // The buffer started as 64 × 0xEE; 64 random bytes all equal to 0xEE has probability 2^-512.
        #expect(bytes != [UInt8](repeating: 0xEE, count: 64))
        #expect(Set(bytes).count > 16)
    }

    @Test func severalRequestsAndBuffersSplitOverDescriptors() throws {
        let device = EntropyDevice(source: CountingSource())
        let (driver, _) = try activate(device, features: VirtioFeature.offeredByCore)  // with INDIRECT_DESC
        let a = try driver.writable(10)
        let b1 = try driver.writable(3)
        let b2 = try driver.writable(5)
        let headA = try driver.publish([a])
        let headB = try driver.publishIndirect([b1, b2])
        device.queueNotified(index: 0)
        #expect(try driver.usedIndex() == 2)
        #expect(try driver.usedElement(0) == (UInt32(headA), 10))
        #expect(try driver.usedElement(1) == (UInt32(headB), 8))
        #expect(try driver.contents(of: b1) + driver.contents(of: b2) == (10..<18).map { UInt8($0) })
    }

    @Test func aHugeBufferGetsAtMostTheRequestCap() throws {
        let device = EntropyDevice(source: CountingSource())
        let (driver, _) = try activate(device)
        try driver.publish([try driver.writable(EntropyDevice.maximumBytesPerRequest + 4096)])
        device.queueNotified(index: 0)
        // §5.4.6.1: the device MAY use less than the entire buffer.
        #expect(try driver.usedElement(0).length == UInt32(EntropyDevice.maximumBytesPerRequest))
    }

    @Test func aMalformedRequestIsReturnedEmptyAndTheNextOneServed() throws {
        let device = EntropyDevice(source: CountingSource())
        let (driver, interrupt) = try activate(device)
        try driver.writeDescriptor(7, address: 0xC000_0000, length: 64, flags: RawDescriptor.flagWrite)
        try driver.publishHead(7)
        let good = try driver.writable(4)
        let goodHead = try driver.publish([good])
        device.queueNotified(index: 0)
        #expect(try driver.usedElement(0) == (7, 0))
        #expect(try driver.usedElement(1) == (UInt32(goodHead), 4))
        #expect(interrupt.resetRequests.isEmpty)
    }

    @Test func aBrokenRingAsksForADeviceReset() throws {
        let device = EntropyDevice(source: CountingSource())
        let (driver, interrupt) = try activate(device)
        try driver.setAvailableIndex(100)
        device.queueNotified(index: 0)
        #expect(interrupt.resetRequests == [.availableIndexJump(queue: 0, lastSeen: 0, published: 100, queueSize: 16)])
        #expect(try driver.usedIndex() == 0)
        // The device has stopped: later kicks do nothing until the driver resets it.
        try driver.setAvailableIndex(1)
        device.queueNotified(index: 0)
        #expect(try driver.usedIndex() == 0)
        #expect(interrupt.resetRequests.count == 1)
    }

    @Test func withoutAnEnabledQueueActivationFails() throws {
        let device = EntropyDevice()
        let memory = try GuestMemory(ranges: X86MemoryLayout.ramRanges(size: 1 << 20))
        #expect(throws: VirtioError.self) {
            try device.activate(VirtioActivation(queues: [nil], memory: memory, features: 0, interrupt: RecordingInterrupt()))
        }
    }

    @Test func afterResetKicksAreIgnored() throws {
        let device = EntropyDevice(source: CountingSource())
        let (driver, _) = try activate(device)
        device.reset()
        try driver.publish([try driver.writable(8)])
        device.queueNotified(index: 0)
        #expect(try driver.usedIndex() == 0)
    }
}
