import GuestMemory
import Testing

@testable import Virtio

/// virtio-blk (virtio 1.2 §5.2) as a device: a driver negotiates, sets up the request queue, posts requests laid
/// out as Linux's virtio_blk does (header, data, status byte) and kicks; the device answers through the used ring
/// and interrupts. The transport is played by the test with `VirtioDeviceState` and direct calls.
@Suite("virtio-blk device")
struct BlockDeviceTests {
    /// Brings the device up the way Linux's driver does: accept `features`, one queue of 16, DRIVER_OK.
    func activate(
        _ device: BlockDevice, features: UInt64? = nil
    ) throws -> (TestDriver, RecordingInterrupt, VirtioDeviceState) {
        try TestDriver.activate(device, features: features)
    }

    /// The three-part request Linux sends: header, data buffers, status byte.
    func publishRequest(
        _ driver: TestDriver, type: UInt32, sector: UInt64, out: [UInt8]? = nil, inLength: Int? = nil
    ) throws -> (head: UInt16, data: TestDriver.Buffer?, status: TestDriver.Buffer) {
        var buffers = [try driver.readable(RequestBuilder.header(type: type, sector: sector))]
        var data: TestDriver.Buffer?
        if let out { data = try driver.readable(out) }
        if let inLength { data = try driver.writable(inLength) }
        if let data { buffers.append(data) }
        let status = try driver.writable(1)
        buffers.append(status)
        return (try driver.publish(buffers), data, status)
    }

    @Test func identityFeaturesAndConfigurationComeFromTheImage() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: "disk0")
        #expect(device.deviceType == .block)
        #expect(device.queueMaximumSizes == [256])
        #expect(device.deviceFeatures == VirtioBlockConfig(capacityBytes: 1 << 20, readOnly: false).offeredFeatures)
        #expect(device.deviceFeatures & VirtioBlockFeature.flush != 0)
        #expect(device.configurationSize == VirtioBlockConfig.size)
        // capacity: 2048 sectors, at offset 0, readable as one le64 or two le32 halves.
        #expect(device.readConfiguration(offset: 0, width: 8) == 2048)
        #expect(device.readConfiguration(offset: 0, width: 4) == 2048)
        #expect(device.readConfiguration(offset: 4, width: 4) == 0)
        #expect(device.readConfiguration(offset: 12, width: 4) == 254)  // seg_max = queue size - 2
        // Writes are dropped; odd offsets and widths are survived.
        device.writeConfiguration(offset: 0, width: 8, value: 1)
        #expect(device.readConfiguration(offset: 0, width: 8) == 2048)
        #expect(device.readConfiguration(offset: -1, width: 4) == 0)
        #expect(device.readConfiguration(offset: 1 << 20, width: 4) == 0)
    }

    @Test func aReadRequestFillsTheBufferAndReportsDataPlusStatus() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil)
        let (driver, interrupt, _) = try activate(device)
        try driver.setUsedEvent(0)
        let request = try publishRequest(driver, type: VirtioBlockRequestType.in, sector: 3, inLength: 1024)
        device.queueNotified(index: 0)

        #expect(try driver.usedIndex() == 1)
        #expect(try driver.usedElement(0) == (UInt32(request.head), 1025))
        #expect(try driver.contents(of: request.data!) == image.contents(at: 3 * 512, count: 1024))
        #expect(try driver.contents(of: request.status) == [VirtioBlockStatus.ok.rawValue])
        #expect(interrupt.usedBufferSignals == [0])
    }

    @Test func aWriteThenAFlushReachTheFile() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil)
        let (driver, _, _) = try activate(device)
        let bytes = [UInt8](repeating: 0x5A, count: 512)
        let write = try publishRequest(driver, type: VirtioBlockRequestType.out, sector: 7, out: bytes)
        let flush = try publishRequest(driver, type: VirtioBlockRequestType.flush, sector: 0)
        device.queueNotified(index: 0)

        #expect(try driver.usedIndex() == 2)
        #expect(try driver.usedElement(0) == (UInt32(write.head), 1))  // only the status byte was written
        #expect(try driver.usedElement(1) == (UInt32(flush.head), 1))
        #expect(try driver.contents(of: write.status) == [0])
        #expect(try driver.contents(of: flush.status) == [0])
        #expect(image.contents(at: 7 * 512, count: 512) == bytes)
    }

    @Test func getIDAnswersTheSerial() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: "vol-1")
        let (driver, _, _) = try activate(device)
        let request = try publishRequest(driver, type: VirtioBlockRequestType.getID, sector: 0, inLength: 20)
        device.queueNotified(index: 0)
        #expect(try driver.usedElement(0).length == 21)
        #expect(try driver.contents(of: request.data!) == Array("vol-1".utf8) + [UInt8](repeating: 0, count: 15))
    }

    @Test func aRequestBeyondTheEndGetsIOERR() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil)
        let (driver, _, _) = try activate(device)
        let request = try publishRequest(driver, type: VirtioBlockRequestType.in, sector: 2048, inLength: 512)
        device.queueNotified(index: 0)
        #expect(try driver.usedElement(0) == (UInt32(request.head), 1))
        #expect(try driver.contents(of: request.status) == [VirtioBlockStatus.ioError.rawValue])
    }

    @Test func aReadOnlyDiskOffersROAndRefusesWrites() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil, readOnly: true)
        #expect(device.deviceFeatures & VirtioBlockFeature.readOnly != 0)
        #expect(device.deviceFeatures & VirtioBlockFeature.discard == 0)
        let (driver, _, _) = try activate(device)
        let before = image.contents(at: 0, count: 512)
        let request = try publishRequest(
            driver, type: VirtioBlockRequestType.out, sector: 0, out: [UInt8](repeating: 1, count: 512))
        device.queueNotified(index: 0)
        #expect(try driver.contents(of: request.status) == [VirtioBlockStatus.ioError.rawValue])
        #expect(image.contents(at: 0, count: 512) == before)
    }

    @Test func aReadOnlyImageIsPresentedReadOnly() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try BlockDevice(image: RawDiskImage(path: image.path, readOnly: true), id: nil, readOnly: false)
        #expect(device.config.readOnly)
        #expect(device.deviceFeatures & VirtioBlockFeature.readOnly != 0)
    }

    @Test func anUnacceptedDiscardIsUnsupported() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil)
        let features = VirtioFeature.version1 | VirtioBlockFeature.flush
        let (driver, _, _) = try activate(device, features: features)
        let request = try publishRequest(
            driver, type: VirtioBlockRequestType.discard, sector: 0, out: RequestBuilder.range(sector: 0, count: 8))
        device.queueNotified(index: 0)
        #expect(try driver.contents(of: request.status) == [VirtioBlockStatus.unsupported.rawValue])
    }

    @Test func aMalformedChainIsReturnedEmptyAndTheNextRequestServed() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil)
        let (driver, interrupt, _) = try activate(device)
        // A buffer outside guest RAM.
        try driver.writeDescriptor(9, address: 0xC000_0000, length: 16, flags: 0)
        try driver.publishHead(9)
        let good = try publishRequest(driver, type: VirtioBlockRequestType.in, sector: 0, inLength: 512)
        device.queueNotified(index: 0)
        #expect(try driver.usedElement(0) == (9, 0))
        #expect(try driver.usedElement(1) == (UInt32(good.head), 513))
        #expect(interrupt.resetRequests.isEmpty)
    }

    @Test func aChainWithoutAStatusByteIsDropped() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil)
        let (driver, _, _) = try activate(device)
        let head = try driver.publish([try driver.readable(RequestBuilder.header(type: 0, sector: 0))])
        device.queueNotified(index: 0)
        #expect(try driver.usedElement(0) == (UInt32(head), 0))
    }

    @Test func aBrokenRingAsksForAResetAndStopsTheDevice() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil)
        let (driver, interrupt, _) = try activate(device)
        try driver.setAvailableIndex(100)
        device.queueNotified(index: 0)
        #expect(interrupt.resetRequests == [.availableIndexJump(queue: 0, lastSeen: 0, published: 100, queueSize: 16)])
        try driver.setAvailableIndex(1)
        device.queueNotified(index: 0)
        #expect(try driver.usedIndex() == 0)
        #expect(interrupt.resetRequests.count == 1)
    }

    @Test func usedBufferNotificationsFollowEventIndex() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil)
        let (driver, interrupt, _) = try activate(device)
        // used_event = 1: the driver wants an interrupt once the second buffer is used, not before.
        try driver.setUsedEvent(1)
        _ = try publishRequest(driver, type: VirtioBlockRequestType.flush, sector: 0)
        device.queueNotified(index: 0)
        #expect(interrupt.usedBufferSignals.isEmpty)
        _ = try publishRequest(driver, type: VirtioBlockRequestType.flush, sector: 0)
        device.queueNotified(index: 0)
        #expect(interrupt.usedBufferSignals == [0])
    }

    @Test func afterResetKicksAreIgnored() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil)
        let (driver, _, _) = try activate(device)
        device.reset()
        _ = try publishRequest(driver, type: VirtioBlockRequestType.flush, sector: 0)
        device.queueNotified(index: 0)
        #expect(try driver.usedIndex() == 0)
    }

    @Test func activationWithoutTheQueueFailsAndLongIDsAreRefused() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try BlockDevice(image: RawDiskImage(path: image.path, readOnly: false), id: nil)
        let memory = try GuestMemory(ranges: X86MemoryLayout.ramRanges(size: 1 << 20))
        #expect(throws: VirtioError.self) {
            try device.activate(VirtioActivation(
                queues: [nil], memory: memory, features: VirtioFeature.version1, interrupt: RecordingInterrupt()))
        }
        #expect(throws: BlockError.idTooLong(String(repeating: "x", count: 21))) {
            _ = try BlockDevice(image: FakeBackend(capacity: 1 << 20), id: String(repeating: "x", count: 21))
        }
    }
}
