import Devices
import GuestMemory
import Synchronization
import Testing

@testable import Virtio
@testable import VirtioPCI

/// Predictable "entropy" (0, 1, 2, ...) so a test can check exactly which bytes reached the guest.
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

/// A transport with its guest: memory, the ring builder, the fake MSI-X routing and INTx line.
struct Rig {
    let transport: VirtioPCIDevice
    let ring: TestDriver
    let routing = RecordingRouting()
    let line = RecordingLine()
    var pci: PCIDriver
    let barBase: UInt64

    init(_ device: any VirtioDevice) throws {
        ring = try TestDriver(size: 16)
        transport = VirtioPCIDevice(
            device: device, memory: ring.memory, msixRouting: routing, intxLine: line, intxGSI: 17)
        // Placed as firmware would, in the default layout's 32-bit window (no 64-bit window there).
        var allocator = PCIBARAllocator(layout: PCILayout())
        try transport.placeBARs(using: &allocator)
        barBase = UInt64(transport.readConfiguration(offset: 0x10, width: 4) & 0xFFFF_FFF0)
        pci = PCIDriver(transport)
        pci.findCapabilities()
        pci.enable()
    }

    /// Everything Linux does up to DRIVER_OK with MSI-X: config vector 0, queue 0 on vector 1.
    func bringUp(features: UInt64 = VirtioFeature.version1 | VirtioFeature.ringEventIndex) {
        pci.enableMSIX()
        pci.programVector(0, address: 0xFEE0_0000, data: 0x40)
        pci.programVector(1, address: 0xFEE0_1000, data: 0x41)
        #expect(pci.negotiate(features) & DeviceStatus.featuresOK.rawValue != 0)
        pci.write(pci.common, PCIDriver.configMSIXVector, 2, 0)
        #expect(pci.read(pci.common, PCIDriver.configMSIXVector, 2) == 0)
        #expect(pci.setUpQueue(0, size: 16, vector: 1) == 1)
        pci.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
    }
}

@Suite("virtio-pci transport")
struct VirtioPCIDeviceTests {
    // MARK: Identity and capabilities

    @Test func identifiesAsAModernVirtioFunction() throws {
        let rig = try Rig(EntropyDevice())
        let pci = rig.pci
        #expect(pci.config(0x00, 2) == 0x1AF4)
        #expect(pci.config(0x02, 2) == 0x1044)  // 0x1040 + virtio-rng's ID 4
        #expect(pci.config(0x08, 1) == 1)  // revision 1: non-transitional
        #expect(pci.config(0x08, 4) >> 8 == 0xFF0000)
        #expect(pci.config(0x2C, 2) == 0x1AF4)
        #expect(pci.config(0x2E, 2) == 4)
        #expect(pci.config(0x3D, 1) == 1)  // INTA
        #expect(pci.config(0x3C, 1) == 17)

        let image = TemporaryImage(size: 1 << 20)
        let block = try Rig(BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil))
        #expect(block.pci.config(0x02, 2) == 0x1042)
        #expect(block.pci.config(0x08, 4) >> 8 == 0x018000)
    }

    @Test func capabilitiesDescribeTheRegisterBlocksInBAR0() throws {
        let image = TemporaryImage(size: 1 << 20)
        let rig = try Rig(BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil))
        let pci = rig.pci
        #expect(pci.common == FoundCapability(configOffset: pci.common.configOffset, bar: 0, offset: 0, length: 0x38))
        #expect(pci.isr.offset == 0x1000 && pci.isr.length == 1 && pci.isr.bar == 0)
        #expect(pci.device?.offset == 0x2000 && pci.device?.length == UInt32(VirtioBlockConfig.size))
        #expect(pci.notify.offset == 0x3000 && pci.notify.length == 4 && pci.notify.notifyMultiplier == 4)
        // MSI-X: queues + 1 = 2 vectors, table at BAR0 + 0x4000, PBA at BAR0 + 0x5000.
        #expect(pci.config(pci.msixOffset + 2, 2) & 0x7FF == 1)
        #expect(pci.config(pci.msixOffset + 4, 4) == 0x4000)
        #expect(pci.config(pci.msixOffset + 8, 4) == 0x5000)
        // BAR0: 64-bit memory, 32 KiB, placed and decoding once memory space is on.
        #expect(pci.config(0x10, 4) & 0xF == 0x4)
        #expect(rig.transport.decodedBARs == [PCIBARMapping(index: 0, kind: .memory64, base: rig.barBase, size: 0x8000)])
        #expect(rig.transport.notifyRegion(queue: 0) == (0, 0x3000))
        #expect(rig.transport.notifyAddress(queue: 0) == rig.barBase + 0x3000)
    }

    @Test func aDeviceWithoutConfigurationHasNoDeviceCapability() throws {
        let rig = try Rig(EntropyDevice())
        #expect(rig.pci.device == nil)
        #expect(rig.pci.common != nil && rig.pci.notify != nil && rig.pci.isr != nil)
    }

    // MARK: End to end

    @Test func anEntropyRequestIsServedAndInterruptsOnVector1() throws {
        let rig = try Rig(EntropyDevice(source: CountingSource()))
        rig.bringUp()
        #expect(rig.transport.status == [.acknowledge, .driver, .featuresOK, .driverOK])
        // The route for vectors 0 and 1 was announced when they were unmasked with MSI-X on.
        rig.routing.forget()
        try rig.ring.setUsedEvent(0)

        let buffer = try rig.ring.writable(64)
        let head = try rig.ring.publish([buffer])
        rig.pci.kick(0)

        #expect(try rig.ring.usedIndex() == 1)
        #expect(try rig.ring.usedElement(0) == (UInt32(head), 64))
        #expect(try rig.ring.contents(of: buffer) == (0..<64).map { UInt8($0) })
        #expect(rig.routing.deliveredVectors == [1])
        #expect(rig.routing.deliveredMessages == [MSIMessage(address: 0xFEE0_1000, data: 0x41)])
        #expect(!rig.line.isAsserted)
        #expect(rig.pci.readISR() == 0)  // MSI-X on: queue interrupts do not touch the ISR
    }

    @Test func aBlockReadIsServedAndInterruptsOnVector1() throws {
        let image = TemporaryImage(size: 1 << 20)
        let rig = try Rig(BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: "d0"))
        // The driver reads capacity through the device capability: 2048 sectors.
        #expect(rig.pci.read(rig.pci.device!, 0, 4) == 2048)
        #expect(rig.pci.read(rig.pci.device!, 0, 8) == 2048)
        let offered = rig.pci.deviceFeatures()
        #expect(offered & VirtioFeature.version1 != 0)
        #expect(offered & VirtioBlockFeature.flush != 0)
        rig.bringUp(features: offered)
        rig.routing.forget()
        try rig.ring.setUsedEvent(0)

        let header = try rig.ring.readable([0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0])  // IN, sector 2
        let data = try rig.ring.writable(1024)
        let status = try rig.ring.writable(1)
        let head = try rig.ring.publish([header, data, status])
        rig.pci.kick(0)

        #expect(try rig.ring.usedElement(0) == (UInt32(head), 1025))
        #expect(try rig.ring.contents(of: data) == image.contents(at: 1024, count: 1024))
        #expect(try rig.ring.contents(of: status) == [0])
        #expect(rig.routing.deliveredVectors == [1])
    }

    @Test func theIoeventfdPathNotifiesTheSameWay() throws {
        let rig = try Rig(EntropyDevice(source: CountingSource()))
        rig.bringUp()
        let buffer = try rig.ring.writable(8)
        try rig.ring.publish([buffer])
        rig.transport.queueNotified(index: 0)
        #expect(try rig.ring.usedElement(0).length == 8)
        rig.transport.queueNotified(index: 7)  // no such queue: ignored
        rig.transport.queueNotified(index: -1)
    }

    @Test func withoutMSIXTheISRAndINTxCarryTheInterrupt() throws {
        let rig = try Rig(EntropyDevice(source: CountingSource()))
        #expect(rig.pci.negotiate(VirtioFeature.version1) & DeviceStatus.featuresOK.rawValue != 0)
        // Without MSI-X enabled, vectors read back as NO_VECTOR... the driver uses none.
        _ = rig.pci.setUpQueue(0, size: 16, vector: 0xFFFF)
        rig.pci.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])

        try rig.ring.publish([try rig.ring.writable(4)])
        rig.pci.kick(0)
        #expect(rig.line.isAsserted)
        #expect(rig.pci.config(0x06, 2) & UInt32(PCIStatus.interrupt) != 0)
        // A read of another width neither answers nor clears.
        #expect(rig.pci.read(rig.pci.isr, 0, 4) == 0)
        #expect(rig.line.isAsserted)
        // The handler's ISR read returns bit 0 (queue) and deasserts the line.
        #expect(rig.pci.readISR() == 1)
        #expect(!rig.line.isAsserted)
        #expect(rig.pci.readISR() == 0)
        #expect(rig.routing.deliveredVectors.isEmpty)

        // Interrupt-disable in the command register holds the pin low while the ISR bit stays set.
        rig.pci.setConfig(0x04, 2, UInt32(PCICommand.memorySpace | PCICommand.busMaster | PCICommand.interruptDisable))
        try rig.ring.publish([try rig.ring.writable(4)])
        rig.pci.kick(0)
        #expect(!rig.line.isAsserted)
        rig.pci.enable()
        #expect(rig.line.isAsserted)
        #expect(rig.pci.readISR() == 1)
        #expect(!rig.line.isAsserted)
    }

    @Test func aMaskedVectorIsDeliveredWhenUnmasked() throws {
        let rig = try Rig(EntropyDevice(source: CountingSource()))
        rig.bringUp()
        // Mask vector 1 (vector control = 1), use the queue, then unmask.
        rig.transport.writeBAR(0, offset: 0x4000 + 16 + 12, width: 4, value: 1)
        rig.routing.forget()
        try rig.ring.publish([try rig.ring.writable(4)])
        rig.pci.kick(0)
        #expect(rig.routing.deliveredVectors.isEmpty)
        #expect(rig.transport.readBAR(0, offset: 0x5000, width: 8) == 0b10)  // PBA: vector 1 pending
        rig.transport.writeBAR(0, offset: 0x4000 + 16 + 12, width: 4, value: 0)
        #expect(rig.routing.deliveredVectors == [1])
        #expect(rig.transport.readBAR(0, offset: 0x5000, width: 8) == 0)
    }

    // MARK: Common configuration semantics

    @Test func commonConfigurationRegistersReadBackAsLinuxExpects() throws {
        let rig = try Rig(EntropyDevice())
        let pci = rig.pci
        let common = pci.common!
        #expect(pci.read(common, PCIDriver.numQueues, 2) == 1)
        #expect(pci.read(common, PCIDriver.configMSIXVector, 2) == 0xFFFF)
        #expect(pci.read(common, PCIDriver.queueMSIXVector, 2) == 0xFFFF)
        #expect(pci.read(common, PCIDriver.queueSize, 2) == 256)
        #expect(pci.read(common, PCIDriver.queueNotifyOff, 2) == 0)
        #expect(pci.read(common, PCIDriver.configGeneration, 1) == 0)
        // Offered features: VERSION_1 in the high half, EVENT_IDX and INDIRECT_DESC in the low half.
        #expect(pci.deviceFeatures() == VirtioFeature.offeredByCore)
        // device_feature_select beyond 1 shows nothing.
        pci.write(common, PCIDriver.deviceFeatureSelect, 4, 2)
        #expect(pci.read(common, PCIDriver.deviceFeature, 4) == 0)

        #expect(pci.negotiate(VirtioFeature.version1) == DeviceStatus([.acknowledge, .driver, .featuresOK]).rawValue)
        pci.write(common, PCIDriver.queueSelect, 2, 0)
        pci.write(common, PCIDriver.queueSize, 2, 64)
        #expect(pci.read(common, PCIDriver.queueSize, 2) == 64)
        // 64-bit addresses: as two halves or as one 8-byte access.
        pci.writeAddress(PCIDriver.queueDesc, GuestAddress(0x1_2345_6000))
        #expect(pci.read(common, PCIDriver.queueDesc, 8) == 0x1_2345_6000)
        #expect(pci.read(common, PCIDriver.queueDesc, 4) == 0x2345_6000)
        #expect(pci.read(common, PCIDriver.queueDesc + 4, 4) == 1)
        pci.write(common, PCIDriver.queueDevice, 8, 0x4_0000)
        #expect(pci.read(common, PCIDriver.queueDevice, 8) == 0x4_0000)
        // A vector past the 2-entry table reads back as NO_VECTOR (Linux then falls back).
        pci.write(common, PCIDriver.queueMSIXVector, 2, 5)
        #expect(pci.read(common, PCIDriver.queueMSIXVector, 2) == 0xFFFF)
        pci.write(common, PCIDriver.configMSIXVector, 2, 1)
        #expect(pci.read(common, PCIDriver.configMSIXVector, 2) == 1)
        // A queue that does not exist: size 0 and no vector, and its registers take nothing.
        pci.write(common, PCIDriver.queueSelect, 2, 3)
        #expect(pci.read(common, PCIDriver.queueSize, 2) == 0)
        #expect(pci.read(common, PCIDriver.queueMSIXVector, 2) == 0xFFFF)
        pci.write(common, PCIDriver.queueMSIXVector, 2, 1)
        pci.write(common, PCIDriver.queueEnable, 2, 1)
        #expect(pci.read(common, PCIDriver.queueEnable, 2) == 0)
    }

    @Test func unofferedFeaturesAreRefusedAtFeaturesOK() throws {
        let rig = try Rig(EntropyDevice())
        // VIRTIO_F_ACCESS_PLATFORM (bit 33) was never offered.
        let status = rig.pci.negotiate(VirtioFeature.version1 | VirtioFeature.accessPlatform)
        #expect(status == DeviceStatus([.acknowledge, .driver]).rawValue)
        // Without VERSION_1 too (a legacy driver).
        #expect(rig.pci.negotiate(VirtioFeature.ringEventIndex) == DeviceStatus([.acknowledge, .driver]).rawValue)
        // DRIVER_OK cannot follow a refused FEATURES_OK.
        rig.pci.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
        #expect(rig.pci.status() & DeviceStatus.driverOK.rawValue == 0)
    }

    @Test func resetReturnsEverythingToItsInitialStateAndStopsTheDevice() throws {
        let rig = try Rig(EntropyDevice(source: CountingSource()))
        rig.bringUp()
        try rig.ring.publish([try rig.ring.writable(4)])
        rig.pci.kick(0)
        #expect(try rig.ring.usedIndex() == 1)

        rig.pci.setStatus([])
        let pci = rig.pci
        #expect(pci.status() == 0)
        #expect(pci.read(pci.common, PCIDriver.queueEnable, 2) == 0)
        #expect(pci.read(pci.common, PCIDriver.queueSize, 2) == 256)
        #expect(pci.read(pci.common, PCIDriver.queueMSIXVector, 2) == 0xFFFF)
        #expect(pci.read(pci.common, PCIDriver.configMSIXVector, 2) == 0xFFFF)
        #expect(pci.read(pci.common, PCIDriver.queueDesc, 8) == 0)
        // The device no longer serves the old rings.
        try rig.ring.publish([try rig.ring.writable(4)])
        rig.pci.kick(0)
        #expect(try rig.ring.usedIndex() == 1)
        // MSI-X stays enabled across a virtio reset: it is PCI state the OS owns.
        #expect(rig.pci.config(rig.pci.msixOffset + 2, 2) & UInt32(MSIXControl.enable) != 0)
    }

    @Test func aQueueOutsideRAMMarksNeedsResetAndInterruptsOnTheConfigVector() throws {
        let rig = try Rig(EntropyDevice())
        let pci = rig.pci
        pci.enableMSIX()
        pci.programVector(0, address: 0xFEE0_0000, data: 0x40)
        _ = pci.negotiate(VirtioFeature.version1)
        pci.write(pci.common, PCIDriver.configMSIXVector, 2, 0)
        pci.write(pci.common, PCIDriver.queueSelect, 2, 0)
        pci.write(pci.common, PCIDriver.queueSize, 2, 16)
        pci.writeAddress(PCIDriver.queueDesc, GuestAddress(0xC000_0000))  // in the MMIO hole
        pci.writeAddress(PCIDriver.queueDriver, TestDriver.availableRingAddress)
        pci.writeAddress(PCIDriver.queueDevice, TestDriver.usedRingAddress)
        pci.write(pci.common, PCIDriver.queueEnable, 2, 1)
        rig.routing.forget()
        pci.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
        #expect(pci.status() & DeviceStatus.deviceNeedsReset.rawValue != 0)
        #expect(rig.routing.deliveredVectors == [0])
        #expect(pci.readISR() == 2)  // configuration change
    }

    @Test func theRNGWithoutItsQueueEnabledNeedsAReset() throws {
        let rig = try Rig(EntropyDevice())
        _ = rig.pci.negotiate(VirtioFeature.version1)
        rig.pci.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
        #expect(rig.pci.status() & DeviceStatus.deviceNeedsReset.rawValue != 0)
        // Without MSI-X, the configuration change goes out as INTx with ISR bit 1.
        #expect(rig.line.isAsserted)
        #expect(rig.pci.readISR() == 2)
    }

    // MARK: Malformed accesses

    @Test func oddWidthsAndOffsetsInTheCommonConfigurationAreSurvived() throws {
        let rig = try Rig(EntropyDevice())
        let pci = rig.pci
        let common = pci.common!
        // Wrong widths for a field read 0 ...
        #expect(pci.read(common, PCIDriver.deviceFeature, 2) == 0)
        #expect(pci.read(common, PCIDriver.deviceFeature + 1, 1) == 0)
        #expect(pci.read(common, PCIDriver.queueSize, 4) == 0)
        #expect(pci.read(common, PCIDriver.queueDesc + 2, 4) == 0)
        #expect(pci.read(common, PCIDriver.numQueues, 8) == 0)
        // ... past the structure too, and in the rest of its page.
        for offset: UInt64 in [0x38, 0x3A, 0x40, 0x800, 0xFFF] { #expect(pci.read(common, offset, 1) == 0) }
        // ... and writes of wrong widths change nothing.
        pci.write(common, PCIDriver.queueSelect, 1, 5)
        #expect(pci.read(common, PCIDriver.queueSelect, 2) == 0)
        pci.write(common, PCIDriver.deviceStatus, 2, 1)
        #expect(pci.status() == 0)
        pci.write(common, PCIDriver.deviceStatus, 4, 1)
        #expect(pci.status() == 0)
        pci.write(common, PCIDriver.numQueues, 2, 9)
        #expect(pci.read(common, PCIDriver.numQueues, 2) == 1)
        pci.write(common, 0x200, 8, .max)
        // Queue registers before FEATURES_OK are ignored (§3.1.1 order).
        pci.write(common, PCIDriver.queueSize, 2, 8)
        #expect(pci.read(common, PCIDriver.queueSize, 2) == 256)
        // The device still works afterwards.
        rig.bringUp()
        #expect(rig.transport.status.contains(.driverOK))
    }

    @Test func oddAccessesToISRNotifyDeviceConfigAndMSIXAreSurvived() throws {
        let image = TemporaryImage(size: 1 << 20)
        let rig = try Rig(BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil))
        let transport = rig.transport
        // ISR: only byte reads at offset 0 answer; writes do nothing.
        transport.writeBAR(0, offset: 0x1000, width: 1, value: 0xFF)
        #expect(transport.readBAR(0, offset: 0x1000, width: 1) == 0)
        #expect(transport.readBAR(0, offset: 0x1001, width: 1) == 0)
        #expect(transport.readBAR(0, offset: 0x1000, width: 8) == 0)
        // Device config: inside its 60 bytes only.
        #expect(transport.readBAR(0, offset: 0x2000, width: 8) == 2048)
        #expect(transport.readBAR(0, offset: 0x2000 + 56, width: 8) == 0)  // runs past byte 60
        #expect(transport.readBAR(0, offset: 0x2000 + 60, width: 1) == 0)
        #expect(transport.readBAR(0, offset: 0x2FFF, width: 1) == 0)
        #expect(transport.readBAR(0, offset: 0x2000, width: 3) == 0)
        transport.writeBAR(0, offset: 0x2000, width: 8, value: 1)  // read-only field
        #expect(transport.readBAR(0, offset: 0x2000, width: 8) == 2048)
        // Notify: reads 0; writes off the queue's dword or past the last queue do nothing (no device yet
        // either, so nothing to see but that nothing traps).
        #expect(transport.readBAR(0, offset: 0x3000, width: 2) == 0)
        transport.writeBAR(0, offset: 0x3002, width: 2, value: 0)
        transport.writeBAR(0, offset: 0x3004, width: 2, value: 1)
        transport.writeBAR(0, offset: 0x3FFE, width: 2, value: 0)
        transport.writeBAR(0, offset: 0x3000, width: 1, value: 0)  // before DRIVER_OK: the device ignores it
        // MSI-X table: dword/qword only (others read all ones, like unclaimed memory); beyond the 2 entries, 0.
        #expect(transport.readBAR(0, offset: 0x4000 + 12, width: 4) == 1)  // masked at reset
        #expect(transport.readBAR(0, offset: 0x4000, width: 1) == UInt64.max)
        #expect(transport.readBAR(0, offset: 0x4000 + 32, width: 4) == 0)
        transport.writeBAR(0, offset: 0x4000 + 32, width: 4, value: 0)
        transport.writeBAR(0, offset: 0x4001, width: 2, value: 0xFFFF)
        // PBA: read-only.
        transport.writeBAR(0, offset: 0x5000, width: 8, value: .max)
        #expect(transport.readBAR(0, offset: 0x5000, width: 8) == 0)
        #expect(transport.readBAR(0, offset: 0x5008, width: 8) == 0)
        // The rest of the BAR, and other BARs.
        #expect(transport.readBAR(0, offset: 0x6000, width: 4) == 0)
        #expect(transport.readBAR(0, offset: 0x7FF8, width: 8) == 0)
        transport.writeBAR(0, offset: 0x7000, width: 4, value: 1)
        #expect(transport.readBAR(1, offset: 0, width: 4) == 0)
        transport.writeBAR(2, offset: 0, width: 4, value: 1)
        // Configuration space: malformed accesses answer all ones and change nothing.
        #expect(transport.readConfiguration(offset: 0x01, width: 2) == 0xFFFF)
        #expect(transport.readConfiguration(offset: 0, width: 3) == 0xFFFF_FFFF)
        #expect(transport.readConfiguration(offset: 0x100, width: 4) == 0xFFFF_FFFF)
        transport.writeConfiguration(offset: 0x00, width: 4, value: 0)  // IDs are read-only
        #expect(transport.readConfiguration(offset: 0, width: 2) == 0x1AF4)
        // Through it all the device still comes up and serves a request.
        rig.bringUp(features: rig.pci.deviceFeatures())
        let header = try rig.ring.readable([4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])  // FLUSH
        let status = try rig.ring.writable(1)
        try rig.ring.publish([header, status])
        rig.pci.kick(0)
        #expect(try rig.ring.contents(of: status) == [0])
    }

    @Test func barSizingAndRelocationMoveTheNotifyAddress() throws {
        let rig = try Rig(EntropyDevice())
        // Sizing: all ones, read back ~(size - 1) | flags, as Linux's __pci_read_base does with decoding off.
        rig.pci.setConfig(0x04, 2, 0)
        #expect(rig.transport.notifyAddress(queue: 0) == nil)
        rig.pci.setConfig(0x10, 4, 0xFFFF_FFFF)
        rig.pci.setConfig(0x14, 4, 0xFFFF_FFFF)
        #expect(rig.pci.config(0x10, 4) == 0xFFFF_8004)
        rig.pci.setConfig(0x10, 4, 0xD000_0000)
        rig.pci.setConfig(0x14, 4, 0)
        rig.pci.enable()
        #expect(rig.transport.notifyAddress(queue: 0) == 0xD000_3000)
    }
}
