import GuestMemory
import Synchronization
import Testing

@testable import Virtio

/// The guest side of one split virtqueue, played by the test: it lays out a descriptor table, an available
/// ring and a used ring in a `GuestMemory` the way Linux's virtio_ring.c does, publishes chains, and reads
/// back what the device put in the used ring. It can also write any raw descriptor, which is how the tests
/// build malformed chains a real driver never would.
final class TestDriver {
    /// A buffer the driver hands to the device.
    struct Buffer {
        var address: GuestAddress
        var length: UInt32
        var writable: Bool
    }

    // Where things live in the test guest (64 MiB of RAM from 0).
    static let descriptorTableAddress = GuestAddress(0x1_0000)
    static let availableRingAddress = GuestAddress(0x3_0000)
    static let usedRingAddress = GuestAddress(0x4_0000)
    static let bufferArea: UInt64 = 0x10_0000
    static let indirectArea: UInt64 = 0x80_0000

    let memory: GuestMemory
    let size: UInt16
    /// The driver's copy of avail.idx (free-running).
    private(set) var availableIndex: UInt16
    private var nextFreeDescriptor: UInt16 = 0
    private var nextBuffer = TestDriver.bufferArea
    private var nextIndirect = TestDriver.indirectArea
    /// The queue registers as the driver programmed them.
    var configuration: QueueConfiguration

    /// - Parameter startIndex: where avail.idx and used.idx start, to exercise wrap-around.
    init(size: UInt16 = 16, memory: GuestMemory? = nil, startIndex: UInt16 = 0) throws {
        self.memory = try memory ?? GuestMemory(ranges: X86MemoryLayout.ramRanges(size: 64 << 20))
        self.size = size
        self.availableIndex = startIndex
        configuration = QueueConfiguration(maximumSize: 256)
        configuration.size = size
        configuration.ready = true
        configuration.descriptorTable = Self.descriptorTableAddress
        configuration.availableRing = Self.availableRingAddress
        configuration.usedRing = Self.usedRingAddress
        configuration.nextAvailable = startIndex
        configuration.nextUsed = startIndex
        try self.memory.store(startIndex, at: Self.availableRingAddress.adding(2))
        try self.memory.store(startIndex, at: Self.usedRingAddress.adding(2))
    }

    /// The device side of this queue, as the transport would build it at DRIVER_OK.
    func makeQueue(features: UInt64 = VirtioFeature.offeredByCore) throws -> Queue {
        try Queue(index: 0, configuration: configuration, memory: memory, features: features)
    }

    // MARK: Buffers

    /// A device-readable buffer holding `bytes`.
    func readable(_ bytes: [UInt8]) throws -> Buffer {
        let address = allocate(bytes.count)
        try memory.write(bytes, at: address)
        return Buffer(address: address, length: UInt32(bytes.count), writable: false)
    }

    /// A device-writable buffer of `length` bytes, filled with 0xEE so that untouched bytes show.
    func writable(_ length: Int) throws -> Buffer {
        let address = allocate(length)
        try memory.write([UInt8](repeating: 0xEE, count: length), at: address)
        return Buffer(address: address, length: UInt32(length), writable: true)
    }

    private func allocate(_ length: Int) -> GuestAddress {
        let address = GuestAddress(nextBuffer)
        nextBuffer = (nextBuffer + UInt64(length) + 15) & ~15
        return address
    }

    // MARK: Descriptors

    /// Writes one raw `struct virtq_desc` into the table at `table` (the queue's own by default).
    func writeDescriptor(
        _ index: UInt32, address: UInt64, length: UInt32, flags: UInt16, next: UInt16 = 0,
        table: GuestAddress = TestDriver.descriptorTableAddress
    ) throws {
        let base = table.adding(UInt64(index) * 16)
        try memory.store(address, at: base)
        try memory.store(length, at: base.adding(8))
        try memory.store(flags, at: base.adding(12))
        try memory.store(next, at: base.adding(14))
    }

    static func flags(for buffer: Buffer, hasNext: Bool) -> UInt16 {
        (buffer.writable ? RawDescriptor.flagWrite : 0) | (hasNext ? RawDescriptor.flagNext : 0)
    }

    /// Takes `count` consecutive free descriptor slots (wrapping around the table like a ring allocator).
    private func takeDescriptors(_ count: Int) -> [UInt16] {
        (0..<count).map { _ in
            defer { nextFreeDescriptor = (nextFreeDescriptor + 1) % size }
            return nextFreeDescriptor
        }
    }

    /// Builds a chain of `buffers` in the descriptor table and makes it available. Returns its head.
    @discardableResult
    func publish(_ buffers: [Buffer]) throws -> UInt16 {
        let slots = takeDescriptors(buffers.count)
        for (position, buffer) in buffers.enumerated() {
            let hasNext = position + 1 < buffers.count
            try writeDescriptor(
                UInt32(slots[position]), address: buffer.address.rawValue, length: buffer.length,
                flags: Self.flags(for: buffer, hasNext: hasNext), next: hasNext ? slots[position + 1] : 0)
        }
        try publishHead(slots[0])
        return slots[0]
    }

    /// Puts `buffers` in a fresh indirect table and makes available a chain of `direct` buffers followed
    /// by one descriptor pointing at that table (just the table descriptor when `direct` is empty, as Linux
    /// does). Returns the head.
    @discardableResult
    func publishIndirect(_ buffers: [Buffer], after direct: [Buffer] = []) throws -> UInt16 {
        let table = writeIndirectTable(buffers)
        let slots = takeDescriptors(direct.count + 1)
        for (position, buffer) in direct.enumerated() {
            try writeDescriptor(
                UInt32(slots[position]), address: buffer.address.rawValue, length: buffer.length,
                flags: Self.flags(for: buffer, hasNext: true), next: slots[position + 1])
        }
        try writeDescriptor(
            UInt32(slots[direct.count]), address: table.address.rawValue, length: table.length,
            flags: RawDescriptor.flagIndirect)
        try publishHead(slots[0])
        return slots[0]
    }

    /// Writes an indirect table chaining `buffers` from entry 0; returns its address and length in bytes.
    func writeIndirectTable(_ buffers: [Buffer]) -> (address: GuestAddress, length: UInt32) {
        let table = GuestAddress(nextIndirect)
        nextIndirect += UInt64(buffers.count) * 16 + 16
        for (position, buffer) in buffers.enumerated() {
            let hasNext = position + 1 < buffers.count
            try! writeDescriptor(
                UInt32(position), address: buffer.address.rawValue, length: buffer.length,
                flags: Self.flags(for: buffer, hasNext: hasNext), next: hasNext ? UInt16(position + 1) : 0,
                table: table)
        }
        return (table, UInt32(buffers.count * 16))
    }

    // MARK: Rings

    /// Writes `head` into the next available-ring slot and then bumps avail.idx, as virtqueue_add_split +
    /// virtqueue_kick_prepare do.
    func publishHead(_ head: UInt16) throws {
        try memory.store(head, at: Self.availableRingAddress.adding(4 + 2 * UInt64(availableIndex % size)))
        availableIndex &+= 1
        try memory.store(availableIndex, at: Self.availableRingAddress.adding(2))
    }

    /// Sets avail.idx to anything (a misbehaving driver).
    func setAvailableIndex(_ index: UInt16) throws {
        availableIndex = index
        try memory.store(index, at: Self.availableRingAddress.adding(2))
    }

    /// avail.flags (VIRTQ_AVAIL_F_NO_INTERRUPT is 1).
    func setAvailableFlags(_ flags: UInt16) throws {
        try memory.store(flags, at: Self.availableRingAddress)
    }

    /// used_event, at the end of the available ring (EVENT_IDX).
    func setUsedEvent(_ event: UInt16) throws {
        try memory.store(event, at: Self.availableRingAddress.adding(4 + 2 * UInt64(size)))
    }

    func usedIndex() throws -> UInt16 { try memory.load(UInt16.self, at: Self.usedRingAddress.adding(2)) }
    func usedFlags() throws -> UInt16 { try memory.load(UInt16.self, at: Self.usedRingAddress) }
    /// avail_event, at the end of the used ring (EVENT_IDX).
    func availableEvent() throws -> UInt16 {
        try memory.load(UInt16.self, at: Self.usedRingAddress.adding(4 + 8 * UInt64(size)))
    }

    /// The used-ring element at free-running position `position`.
    func usedElement(_ position: UInt16) throws -> (id: UInt32, length: UInt32) {
        let base = Self.usedRingAddress.adding(4 + 8 * UInt64(position % size))
        return (try memory.load(UInt32.self, at: base), try memory.load(UInt32.self, at: base.adding(4)))
    }

    /// Contents of a buffer.
    func contents(of buffer: Buffer) throws -> [UInt8] {
        try memory.read(at: buffer.address, count: Int(buffer.length))
    }
}

/// Records what a device asked of its transport.
final class RecordingInterrupt: VirtioInterrupt {
    private let log = Mutex<(used: [Int], configurationChanges: Int, resets: [VirtioError])>(([], 0, []))

    var usedBufferSignals: [Int] { log.withLock { $0.used } }
    var configurationChanges: Int { log.withLock { $0.configurationChanges } }
    var resetRequests: [VirtioError] { log.withLock { $0.resets } }

    func signalUsedBuffers(queue: Int) { log.withLock { $0.used.append(queue) } }
    func signalConfigurationChange() { log.withLock { $0.configurationChanges += 1 } }
    func deviceNeedsReset(_ error: VirtioError) { log.withLock { $0.resets.append(error) } }
}

extension TestDriver {
    /// Brings `device` up the way Linux's driver does: ACKNOWLEDGE, DRIVER, accept `features` (all offered when
    /// nil), FEATURES_OK, queue 0 of 16 at the driver's ring addresses, DRIVER_OK, activation.
    static func activate(
        _ device: any VirtioDevice, features: UInt64? = nil
    ) throws -> (TestDriver, RecordingInterrupt, VirtioDeviceState) {
        let driver = try TestDriver(size: 16)
        var state = VirtioDeviceState(deviceFeatures: device.deviceFeatures, queueMaximumSizes: device.queueMaximumSizes)
        let accepted = features ?? state.offeredFeatures
        _ = state.writeStatus(DeviceStatus.acknowledge.rawValue)
        _ = state.writeStatus(DeviceStatus([.acknowledge, .driver]).rawValue)
        state.driverFeatureSelect = 0
        state.writeDriverFeatureWindow(UInt32(truncatingIfNeeded: accepted))
        state.driverFeatureSelect = 1
        state.writeDriverFeatureWindow(UInt32(truncatingIfNeeded: accepted >> 32))
        #expect(state.writeStatus(DeviceStatus([.acknowledge, .driver, .featuresOK]).rawValue) == .featuresAccepted)
        state.queueSelect = 0
        state.writeQueueRegister(.size, 16)
        state.writeQueueRegister(.descriptorLow, UInt32(TestDriver.descriptorTableAddress.rawValue))
        state.writeQueueRegister(.availableLow, UInt32(TestDriver.availableRingAddress.rawValue))
        state.writeQueueRegister(.usedLow, UInt32(TestDriver.usedRingAddress.rawValue))
        state.writeQueueRegister(.ready, 1)
        #expect(state.writeStatus(DeviceStatus([.acknowledge, .driver, .featuresOK, .driverOK]).rawValue) == .activate)
        let interrupt = RecordingInterrupt()
        try device.activate(VirtioActivation(
            queues: try state.makeQueues(memory: driver.memory), memory: driver.memory,
            features: state.negotiatedFeatures, interrupt: interrupt))
        return (driver, interrupt, state)
    }
}
