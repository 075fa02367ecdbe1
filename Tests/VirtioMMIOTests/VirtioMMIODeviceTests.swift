import Devices
import GuestMemory
import Testing
import Virtio
import VirtioMMIO

/// The virtio-mmio transport driven as Linux's virtio_mmio driver drives it (virtio 1.2 §4.2.3), and as a
/// misbehaving guest might: every refused access reads 0 and changes nothing.
@Suite("virtio-mmio transport")
struct VirtioMMIODeviceTests {
    static let features = VirtioFeature.version1 | VirtioFeature.ringEventIndex

    func makeMemory() throws -> GuestMemory { try GuestMemory(ranges: X86MemoryLayout.ramRanges(size: 16 << 20)) }

    // MARK: Probe

    @Test func identifiesAsAVersion2Device() throws {
        let line = RecordingLine()
        let rng = MMIODriver(device: VirtioMMIODevice(device: EntropyDevice(), memory: try makeMemory(), interruptLine: line))
        #expect(rng.read(MMIODriver.magic) == 0x7472_6976)  // "virt"
        #expect(rng.read(MMIODriver.version) == 2)
        #expect(rng.read(MMIODriver.deviceID) == 4)  // virtio-rng
        #expect(rng.read(MMIODriver.vendorID) == UInt64(VirtioMMIOLayout.vendorID))
        // No shared memory regions: length all ones, whatever is selected (vm_get_shm_region's "none").
        rng.write(MMIODriver.shmSel, 0)
        #expect(rng.read(MMIODriver.shmLenLow) == 0xFFFF_FFFF && rng.read(MMIODriver.shmLenHigh) == 0xFFFF_FFFF)
        let block = MMIODriver(device: VirtioMMIODevice(device: FakeDevice(), memory: try makeMemory(), interruptLine: line))
        #expect(block.read(MMIODriver.deviceID) == 2)
        #expect(line.history.isEmpty)
    }

    // MARK: Features (§3.1.1, §4.2.3.1)

    @Test func featureNegotiationReachesFeaturesOK() throws {
        let fake = FakeDevice()
        let driver = MMIODriver(device: VirtioMMIODevice(device: fake, memory: try makeMemory(), interruptLine: RecordingLine()))
        let offered = driver.deviceFeatureBits()
        #expect(offered & VirtioFeature.version1 != 0)
        #expect(offered & (1 << 5) != 0)
        #expect(offered & VirtioFeature.ringPacked == 0)
        #expect(driver.negotiate(Self.features | 1 << 5).contains(.featuresOK))
        // A selector past bit 63 shows nothing.
        driver.write(MMIODriver.deviceFeaturesSel, 7)
        #expect(driver.read(MMIODriver.deviceFeatures) == 0)
    }

    @Test func featuresWithoutVersion1OrUnofferedAreRefused() throws {
        let driver = MMIODriver(device: VirtioMMIODevice(device: FakeDevice(), memory: try makeMemory(), interruptLine: RecordingLine()))
        #expect(!driver.negotiate(VirtioFeature.ringEventIndex).contains(.featuresOK))
        #expect(!driver.negotiate(Self.features | 1 << 6).contains(.featuresOK))
        #expect(driver.negotiate(Self.features).contains(.featuresOK))
    }

    // MARK: Queues and notifications (§4.2.3.2, §4.2.3.3)

    @Test func queueSetupNotifyAndInterrupt() throws {
        let memory = try makeMemory()
        let line = RecordingLine()
        let transport = VirtioMMIODevice(device: EntropyDevice(source: CountingSource()), memory: memory, interruptLine: line)
        let driver = MMIODriver(device: transport)
        #expect(driver.negotiate(VirtioFeature.version1).contains(.featuresOK))
        driver.write(MMIODriver.queueSel, 0)
        #expect(driver.read(MMIODriver.queueNumMax) == 256)
        // A queue the device does not have: QueueNumMax 0, which is how vm_setup_vq finds out.
        driver.write(MMIODriver.queueSel, 1)
        #expect(driver.read(MMIODriver.queueNumMax) == 0)
        #expect(driver.setUpQueue(0, size: 16, descriptors: Ring.descriptors, available: Ring.available, used: Ring.used))
        driver.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
        #expect(driver.statusBits == [.acknowledge, .driver, .featuresOK, .driverOK])

        var ring = Ring(memory: memory)
        try ring.offerWritable(slot: 0, length: 8)
        driver.write(MMIODriver.queueNotify, 0)  // vm_notify: writel(queue index)
        #expect(try ring.usedIndex() == 1)
        #expect(try ring.usedLength(0) == 8)
        #expect(try ring.buffer(slot: 0, count: 8) == [0, 1, 2, 3, 4, 5, 6, 7])
        #expect(line.history == [true])
        #expect(driver.handleInterrupt() == VirtioMMIOLayout.interruptUsedBuffer)
        #expect(line.history == [true, false])
        #expect(driver.read(MMIODriver.interruptStatus) == 0)

        // A kick for a queue that does not exist is refused, and serves nothing.
        let refusedBefore = transport.refusedAccessCount
        try ring.offerWritable(slot: 1, length: 4)
        driver.write(MMIODriver.queueNotify, 9)
        #expect(try ring.usedIndex() == 1)
        #expect(transport.refusedAccessCount == refusedBefore + 1)
        transport.queueNotified(index: 0)  // the ioeventfd path
        #expect(try ring.usedIndex() == 2)
    }

    @Test func queueRegistersOnlyBetweenFeaturesOKAndDriverOK() throws {
        let fake = FakeDevice()
        let transport = VirtioMMIODevice(device: fake, memory: try makeMemory(), interruptLine: RecordingLine())
        let driver = MMIODriver(device: transport)
        // Before FEATURES_OK: ignored.
        driver.setStatus([.acknowledge, .driver])
        driver.write(MMIODriver.queueSel, 0)
        driver.write(MMIODriver.queueReady, 1)
        #expect(driver.read(MMIODriver.queueReady) == 0)
        #expect(driver.negotiate(Self.features).contains(.featuresOK))
        #expect(driver.setUpQueue(0, size: 8, descriptors: Ring.descriptors, available: Ring.available, used: Ring.used))
        // vm_setup_vq refuses a queue that is already ready.
        #expect(!driver.setUpQueue(0, size: 8, descriptors: Ring.descriptors, available: Ring.available, used: Ring.used))
        driver.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
        let activation = try #require(fake.activation)
        #expect(activation.queues.count == 2)
        #expect(activation.queues[0] != nil && activation.queues[1] == nil)
        #expect(activation.features == Self.features)
        // After DRIVER_OK the queue registers are frozen.
        driver.write(MMIODriver.queueSel, 1)
        driver.write(MMIODriver.queueReady, 1)
        #expect(driver.read(MMIODriver.queueReady) == 0)
    }

    @Test func badQueueSizesAndAddressesNeedAResetNotACrash() throws {
        for (size, descriptors) in [(UInt32(3), Ring.descriptors), (16, Ring.descriptors), (0, Ring.descriptors),
                                    (8, UInt64(0xFFFF_FFFF_FFFF_F000)), (8, UInt64(64 << 20))] {
            let fake = FakeDevice()
            let line = RecordingLine()
            let driver = MMIODriver(device: VirtioMMIODevice(device: fake, memory: try makeMemory(), interruptLine: line))
            #expect(driver.negotiate(Self.features).contains(.featuresOK))
            _ = driver.setUpQueue(0, size: size, descriptors: descriptors, available: Ring.available, used: Ring.used)
            driver.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
            #expect(fake.activation == nil, "size \(size) at 0x\(String(descriptors, radix: 16))")
            #expect(driver.statusBits.contains(.deviceNeedsReset))
            // The driver hears of it through a configuration change interrupt (§2.1.2).
            #expect(driver.handleInterrupt() == VirtioMMIOLayout.interruptConfigurationChange)
            #expect(line.history == [true, false])
        }
    }

    // MARK: Configuration space and generation (§2.5, §4.2.2)

    @Test func configurationSpaceAndGeneration() throws {
        let fake = FakeDevice()
        let line = RecordingLine()
        let driver = MMIODriver(device: VirtioMMIODevice(device: fake, memory: try makeMemory(), interruptLine: line))
        #expect(driver.read(MMIODriver.config, width: 4) == 0x5566_7788)
        #expect(driver.read(MMIODriver.config + 4, width: 4) == 0x1122_3344)
        #expect(driver.read(MMIODriver.config, width: 8) == 0x1122_3344_5566_7788)
        #expect(driver.read(MMIODriver.config + 8, width: 1) == 0xDD)
        #expect(driver.read(MMIODriver.config + 10, width: 2) == 0xAABB)
        // Past the device's 12 bytes, or straddling the end: 0.
        #expect(driver.read(MMIODriver.config + 12, width: 1) == 0)
        #expect(driver.read(MMIODriver.config + 10, width: 4) == 0)
        #expect(driver.read(0xFFC, width: 4) == 0)

        #expect(driver.negotiate(Self.features).contains(.featuresOK))
        #expect(driver.setUpQueue(0, size: 8, descriptors: Ring.descriptors, available: Ring.available, used: Ring.used))
        driver.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
        let generation = driver.read(MMIODriver.configGeneration)
        fake.changeConfiguration(capacity: 42)
        #expect(driver.read(MMIODriver.configGeneration) == generation + 1)
        #expect(driver.read(MMIODriver.config, width: 8) == 42)
        #expect(line.history == [true])
        #expect(driver.handleInterrupt() == VirtioMMIOLayout.interruptConfigurationChange)
        #expect(line.history == [true, false])
    }

    // MARK: Interrupt status and acknowledge (§4.2.2)

    @Test func acknowledgeLowersTheLineOnlyWhenNothingIsLeft() throws {
        let fake = FakeDevice()
        let line = RecordingLine()
        let driver = MMIODriver(device: VirtioMMIODevice(device: fake, memory: try makeMemory(), interruptLine: line))
        #expect(driver.negotiate(Self.features).contains(.featuresOK))
        #expect(driver.setUpQueue(0, size: 8, descriptors: Ring.descriptors, available: Ring.available, used: Ring.used))
        driver.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
        let interrupt = try #require(fake.activation?.interrupt)

        interrupt.signalUsedBuffers(queue: 0)
        interrupt.signalUsedBuffers(queue: 0)  // already pending: the line stays up, no second edge
        #expect(line.history == [true])
        // The handler read bit 0; a configuration change arrives before its ACK.
        let seen = UInt32(driver.read(MMIODriver.interruptStatus))
        fake.changeConfiguration(capacity: 1)
        driver.write(MMIODriver.interruptACK, UInt64(seen))
        // Bit 1 is left: the line is pulsed so an edge-triggered input sees it, and stays high.
        #expect(driver.read(MMIODriver.interruptStatus) == UInt64(VirtioMMIOLayout.interruptConfigurationChange))
        #expect(line.history == [true, false, true])
        #expect(driver.handleInterrupt() == VirtioMMIOLayout.interruptConfigurationChange)
        #expect(line.history == [true, false, true, false])
        // An ACK of nothing pending, or of bits that do not exist, changes nothing.
        driver.write(MMIODriver.interruptACK, 1)
        driver.write(MMIODriver.interruptACK, 0x100)
        #expect(line.history == [true, false, true, false])
    }

    // MARK: Reset (§2.4, §4.2.3.1)

    @Test func resetClearsEverything() throws {
        let fake = FakeDevice()
        let line = RecordingLine()
        let driver = MMIODriver(device: VirtioMMIODevice(device: fake, memory: try makeMemory(), interruptLine: line))
        #expect(driver.negotiate(Self.features).contains(.featuresOK))
        #expect(driver.setUpQueue(0, size: 8, descriptors: Ring.descriptors, available: Ring.available, used: Ring.used))
        driver.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
        fake.activation?.interrupt.signalUsedBuffers(queue: 0)
        #expect(line.isHigh)

        driver.setStatus([])  // vm_reset
        #expect(driver.read(MMIODriver.status) == 0)  // Linux polls until it reads 0
        #expect(fake.resets == 2 && fake.activation == nil)  // negotiate() began with a reset too
        #expect(driver.read(MMIODriver.interruptStatus) == 0)
        #expect(!line.isHigh)
        driver.write(MMIODriver.queueSel, 0)
        #expect(driver.read(MMIODriver.queueReady) == 0)
        // vm_del_vq after a reset writes QueueReady 0 and warns unless it reads back 0.
        driver.write(MMIODriver.queueReady, 0)
        #expect(driver.read(MMIODriver.queueReady) == 0)
        // And the device comes up again.
        #expect(driver.negotiate(Self.features).contains(.featuresOK))
        #expect(driver.setUpQueue(0, size: 8, descriptors: Ring.descriptors, available: Ring.available, used: Ring.used))
        driver.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
        #expect(fake.activation != nil)
    }

    // MARK: Malformed accesses

    @Test func badWidthsOffsetsAndValuesAreRefused() throws {
        let fake = FakeDevice()
        let line = RecordingLine()
        let transport = VirtioMMIODevice(device: fake, memory: try makeMemory(), interruptLine: line)
        let driver = MMIODriver(device: transport)
        // Control registers: 32-bit aligned only (§4.2.2.2).
        #expect(driver.read(MMIODriver.magic, width: 1) == 0)
        #expect(driver.read(MMIODriver.magic, width: 2) == 0)
        #expect(driver.read(MMIODriver.magic, width: 8) == 0)
        #expect(driver.read(MMIODriver.magic + 1, width: 4) == 0)
        #expect(driver.read(0x018) == 0)  // a hole
        driver.write(MMIODriver.status, 1, width: 1)
        driver.write(MMIODriver.status, 1, width: 2)
        #expect(driver.statusBits == [])
        // Read-only registers ignore writes; Status takes only a byte's worth.
        driver.write(MMIODriver.magic, 0)
        driver.write(MMIODriver.queueNumMax, 0)
        driver.write(MMIODriver.status, 0x101)
        #expect(driver.read(MMIODriver.magic) == 0x7472_6976)
        #expect(driver.statusBits == [])
        // Status bits out of order, or cleared, are ignored (§2.1.2, §3.1.1).
        driver.setStatus([.acknowledge, .driverOK])
        #expect(driver.statusBits == [])
        #expect(driver.negotiate(Self.features).contains(.featuresOK))
        driver.setStatus([.acknowledge])
        #expect(driver.statusBits.contains(.featuresOK))
        // A QueueNum above 16 bits, a QueueSel above 16 bits (no such queue, not queue 0 by truncation).
        driver.write(MMIODriver.queueSel, 0x1_0000)
        #expect(driver.read(MMIODriver.queueNumMax) == 0)
        driver.write(MMIODriver.queueSel, 0)
        driver.write(MMIODriver.queueNum, 0x1_0008)
        driver.write(MMIODriver.queueReady, 2)
        #expect(driver.read(MMIODriver.queueReady) == 0)
        // Writes to configuration space past its end land nowhere; the window's last bytes too.
        driver.write(MMIODriver.config + 12, 0xFF, width: 1)
        driver.write(0xFFF, 0xFF, width: 1)
        #expect(transport.refusedAccessCount >= 14)
        #expect(line.history.isEmpty)
        #expect(fake.notified.isEmpty && fake.activation == nil)
    }
}
