import Devices
import GuestMemory
import Testing

@testable import Virtio
@testable import VirtioPCI

/// A virtio-pci function saved mid-run and restored into a freshly built one over the same guest memory (what a
/// snapshot restore does in a new process): the driver's setup, the MSI-X routes and the queue positions carry over,
/// so the driver goes on without noticing; a snapshot that does not fit the device is refused, changing nothing.
@Suite("virtio-pci snapshots")
struct VirtioPCISnapshotTests {
    /// A second function over the rig's memory, placed as the first one was, as a restored machine builds it.
    func freshTransport(for rig: Rig, device: any VirtioDevice, routing: RecordingRouting) throws -> VirtioPCIDevice {
        let transport = VirtioPCIDevice(device: device, memory: rig.ring.memory, msixRouting: routing, intxLine: RecordingLine(), intxGSI: 17)
        var allocator = PCIBARAllocator(layout: PCILayout())
        try transport.placeBARs(using: &allocator)
        return transport
    }

    @Test func aRestoredFunctionContinuesTheQueueAndDeliversOnTheSameVector() throws {
        let rig = try Rig(EntropyDevice(source: CountingSource()))
        rig.bringUp()
        for _ in 0..<3 {
            try rig.ring.publish([try rig.ring.writable(8)])
            rig.pci.kick(0)
        }
        #expect(try rig.ring.usedIndex() == 3)
        let saved = try rig.transport.snapshot()
        #expect(saved.virtio.queues[0].nextAvailable == 3 && saved.virtio.queues[0].nextUsed == 3)

        let routing = RecordingRouting()
        let restored = try freshTransport(for: rig, device: EntropyDevice(source: CountingSource()), routing: routing)
        try restored.restore(saved)
        #expect(restored.status == [.acknowledge, .driver, .featuresOK, .driverOK])
        // Both vectors the driver programmed are routed again in the new process, with their messages.
        #expect(restored.decodedBARs == rig.transport.decodedBARs)

        // The driver goes on: its fourth request lands in used slot 3 and interrupts on vector 1 (EVENT_IDX: the
        // driver asks for an interrupt when used entry 3 is published).
        try rig.ring.setUsedEvent(3)
        let buffer = try rig.ring.writable(16)
        let head = try rig.ring.publish([buffer])
        restored.queueNotified(index: 0)
        #expect(try rig.ring.usedIndex() == 4)
        #expect(try rig.ring.usedElement(3) == (UInt32(head), 16))
        #expect(routing.deliveredVectors == [1])
        #expect(routing.deliveredMessages == [MSIMessage(address: 0xFEE0_1000, data: 0x41)])
        // Reading the registers back through BAR0 gives what the driver wrote.
        var pci = PCIDriver(restored)
        pci.findCapabilities()
        #expect(pci.read(pci.common, PCIDriver.configMSIXVector, 2) == 0)
        #expect(pci.status() == DeviceStatus([.acknowledge, .driver, .featuresOK, .driverOK]).rawValue)
    }

    @Test func aFunctionTheDriverNeverStartedIsRestoredStoppedAndCanStillBeBroughtUp() throws {
        let rig = try Rig(EntropyDevice(source: CountingSource()))
        let saved = try rig.transport.snapshot()
        let restored = try freshTransport(for: rig, device: EntropyDevice(source: CountingSource()), routing: RecordingRouting())
        try restored.restore(saved)
        #expect(restored.status == [])
        #expect(restored.decodedBARs == rig.transport.decodedBARs)  // memory decoding was on (Rig enables it)
    }

    @Test func aSnapshotCannotRewriteReadOnlyRegisters() throws {
        let rig = try Rig(EntropyDevice(source: CountingSource()))
        rig.bringUp()
        var saved = try rig.transport.snapshot()
        saved.configurationSpace[0] = 0x34  // vendor ID low byte
        saved.configurationSpace[2] = 0x99  // device ID low byte
        let restored = try freshTransport(for: rig, device: EntropyDevice(), routing: RecordingRouting())
        try restored.restore(saved)
        #expect(restored.readConfiguration(offset: 0, width: 4) == 0x1044_1AF4)
    }

    @Test func aSnapshotOfAnotherDeviceOrWithImpossibleStateIsRefused() throws {
        let rig = try Rig(EntropyDevice(source: CountingSource()))
        rig.bringUp()
        let saved = try rig.transport.snapshot()

        // Another device model: its features or queues differ.
        let image = TemporaryImage(size: 1 << 20)
        let block = try freshTransport(for: rig, device: BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil),
                                       routing: RecordingRouting())
        #expect(throws: VirtioError.self) { try block.restore(saved) }
        #expect(block.status == [])

        // A vector beyond the table.
        var badVector = saved
        badVector.queueVectors = [7]
        let first = try freshTransport(for: rig, device: EntropyDevice(), routing: RecordingRouting())
        #expect(throws: VirtioError.self) { try first.restore(badVector) }
        #expect(first.status == [])

        // A queue outside guest RAM: refused when the device is re-activated.
        var outside = saved
        var queue = outside.virtio.queues[0]
        queue.descriptorTable = GuestAddress(1 << 40)
        outside.virtio.setQueue(0, queue)
        let second = try freshTransport(for: rig, device: EntropyDevice(), routing: RecordingRouting())
        #expect(throws: VirtioError.self) { try second.restore(outside) }

        // A configuration space of the wrong size.
        var short = saved
        short.configurationSpace.removeLast()
        let third = try freshTransport(for: rig, device: EntropyDevice(), routing: RecordingRouting())
        #expect(throws: VirtioError.self) { try third.restore(short) }
        #expect(third.status == [])
    }

    @Test func aBufferPublishedButNotServedAtTheSaveIsServedAfterTheRestore() throws {
        let rig = try Rig(EntropyDevice(source: CountingSource()))
        rig.bringUp()
        try rig.ring.publish([try rig.ring.writable(8)])
        let saved = try rig.transport.snapshot()
        // Published but not yet served (no kick): the device has not consumed it, so a restore serves it.
        #expect(saved.virtio.queues[0].nextAvailable == 0)
        let restored = try freshTransport(for: rig, device: EntropyDevice(source: CountingSource()), routing: RecordingRouting())
        try restored.restore(saved)
        #expect(try rig.ring.usedIndex() == 1)
    }
}
