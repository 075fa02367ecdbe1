import Devices
import GuestMemory
import Synchronization
import Virtio
import VirtioMMIO

/// The guest's side of a virtio-mmio device, doing what Linux's drivers/virtio/virtio_mmio.c does, register by
/// register: probe (magic, version, IDs), reset, status bits, features in two 32-bit halves, queue setup (select,
/// check not ready, QueueNumMax, QueueNum, addresses, QueueReady), kicks, and the interrupt handler (read
/// InterruptStatus, write it to InterruptACK).
struct MMIODriver {
    let device: VirtioMMIODevice

    // Register offsets (include/uapi/linux/virtio_mmio.h).
    static let magic: UInt64 = 0x000, version: UInt64 = 0x004, deviceID: UInt64 = 0x008, vendorID: UInt64 = 0x00C
    static let deviceFeatures: UInt64 = 0x010, deviceFeaturesSel: UInt64 = 0x014
    static let driverFeatures: UInt64 = 0x020, driverFeaturesSel: UInt64 = 0x024
    static let queueSel: UInt64 = 0x030, queueNumMax: UInt64 = 0x034, queueNum: UInt64 = 0x038
    static let queueReady: UInt64 = 0x044, queueNotify: UInt64 = 0x050
    static let interruptStatus: UInt64 = 0x060, interruptACK: UInt64 = 0x064, status: UInt64 = 0x070
    static let queueDescLow: UInt64 = 0x080, queueDescHigh: UInt64 = 0x084
    static let queueDriverLow: UInt64 = 0x090, queueDriverHigh: UInt64 = 0x094
    static let queueDeviceLow: UInt64 = 0x0A0, queueDeviceHigh: UInt64 = 0x0A4
    static let shmSel: UInt64 = 0x0AC, shmLenLow: UInt64 = 0x0B0, shmLenHigh: UInt64 = 0x0B4
    static let configGeneration: UInt64 = 0x0FC, config: UInt64 = 0x100

    func read(_ offset: UInt64, width: Int = 4) -> UInt64 { device.read(offset: offset, width: width) }
    func write(_ offset: UInt64, _ value: UInt64, width: Int = 4) { device.write(offset: offset, width: width, value: value) }

    var statusBits: DeviceStatus { DeviceStatus(rawValue: UInt8(truncatingIfNeeded: read(Self.status))) }

    func setStatus(_ status: DeviceStatus) { write(Self.status, UInt64(status.rawValue)) }

    /// vm_get_features: high half first, then low.
    func deviceFeatureBits() -> UInt64 {
        write(Self.deviceFeaturesSel, 1)
        let high = read(Self.deviceFeatures)
        write(Self.deviceFeaturesSel, 0)
        return high << 32 | read(Self.deviceFeatures)
    }

    /// virtio_dev_probe up to FEATURES_OK: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK. Returns the status
    /// read back (FEATURES_OK is missing from it when the device refused the features).
    @discardableResult
    func negotiate(_ features: UInt64) -> DeviceStatus {
        setStatus([])
        setStatus([.acknowledge])
        setStatus([.acknowledge, .driver])
        write(Self.driverFeaturesSel, 1)
        write(Self.driverFeatures, features >> 32)
        write(Self.driverFeaturesSel, 0)
        write(Self.driverFeatures, features & 0xFFFF_FFFF)
        setStatus([.acknowledge, .driver, .featuresOK])
        return statusBits
    }

    /// vm_setup_vq: returns false where Linux gives up (queue already ready, or QueueNumMax 0).
    func setUpQueue(_ index: UInt32, size: UInt32, descriptors: UInt64, available: UInt64, used: UInt64) -> Bool {
        write(Self.queueSel, UInt64(index))
        guard read(Self.queueReady) == 0 else { return false }
        let maximum = read(Self.queueNumMax)
        guard maximum != 0 else { return false }
        write(Self.queueNum, UInt64(size))
        write(Self.queueDescLow, descriptors & 0xFFFF_FFFF)
        write(Self.queueDescHigh, descriptors >> 32)
        write(Self.queueDriverLow, available & 0xFFFF_FFFF)
        write(Self.queueDriverHigh, available >> 32)
        write(Self.queueDeviceLow, used & 0xFFFF_FFFF)
        write(Self.queueDeviceHigh, used >> 32)
        write(Self.queueReady, 1)
        return read(Self.queueReady) == 1
    }

    /// vm_interrupt: read InterruptStatus, acknowledge exactly that. Returns what was read.
    func handleInterrupt() -> UInt32 {
        let status = UInt32(read(Self.interruptStatus))
        write(Self.interruptACK, UInt64(status))
        return status
    }
}

/// One split virtqueue laid out in guest memory as virtio_ring.c does, with a single writable buffer per request.
struct Ring {
    static let descriptors: UInt64 = 0x1_0000, available: UInt64 = 0x2_0000, used: UInt64 = 0x3_0000
    static let buffers: UInt64 = 0x10_0000
    let memory: GuestMemory
    let size: UInt16
    var availableIndex: UInt16 = 0

    init(memory: GuestMemory, size: UInt16 = 16) {
        self.memory = memory
        self.size = size
    }

    /// Publishes a device-writable buffer of `length` bytes in descriptor `slot`.
    mutating func offerWritable(slot: UInt16, length: UInt32) throws {
        let descriptor = GuestAddress(Self.descriptors + UInt64(slot) * 16)
        try memory.store(Self.buffers + UInt64(slot) * 0x1000, at: descriptor)
        try memory.store(length, at: descriptor.adding(8))
        try memory.store(UInt16(2), at: descriptor.adding(12))  // VIRTQ_DESC_F_WRITE
        try memory.store(UInt16(0), at: descriptor.adding(14))
        try memory.store(slot, at: GuestAddress(Self.available + 4 + 2 * UInt64(availableIndex % size)))
        availableIndex &+= 1
        try memory.store(availableIndex, at: GuestAddress(Self.available + 2))
    }

    func usedIndex() throws -> UInt16 { try memory.load(UInt16.self, at: GuestAddress(Self.used + 2)) }
    func usedLength(_ position: UInt16) throws -> UInt32 {
        try memory.load(UInt32.self, at: GuestAddress(Self.used + 4 + 8 * UInt64(position % size) + 4))
    }
    func buffer(slot: UInt16, count: Int) throws -> [UInt8] {
        try memory.read(at: GuestAddress(Self.buffers + UInt64(slot) * 0x1000), count: count)
    }
}

/// The interrupt line, recorded: every level driven, in order.
final class RecordingLine: InterruptLine {
    private let levels = Mutex<[Bool]>([])
    func setLevel(_ asserted: Bool) { levels.withLock { $0.append(asserted) } }
    var history: [Bool] { levels.withLock { $0 } }
    var isHigh: Bool { history.last ?? false }
}

/// Predictable "entropy" (0, 1, 2, ...).
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

/// A device with a small configuration space, two queues, and a handle to raise a configuration change.
final class FakeDevice: VirtioDevice {
    let deviceType = VirtioDeviceType.block
    let queueMaximumSizes: [UInt16] = [8, 4]
    let deviceFeatures: UInt64 = 1 << 5
    let configurationSize = 12
    private let state = Mutex<(activation: VirtioActivation?, notified: [Int], resets: Int, config: ConfigurationSpace)>(
        (nil, [], 0, ConfigurationSpace(size: 12)))

    init() {
        state.withLock { $0.config.set(UInt64(0x1122_3344_5566_7788), at: 0); $0.config.set(UInt32(0xAABB_CCDD), at: 8) }
    }

    func readConfiguration(offset: Int, width: Int) -> UInt64 { state.withLock { $0.config.read(offset: offset, width: width) } }
    func writeConfiguration(offset: Int, width: Int, value: UInt64) {}
    func activate(_ activation: VirtioActivation) throws { state.withLock { $0.activation = activation } }
    func queueNotified(index: Int) { state.withLock { $0.notified.append(index) } }
    func reset() { state.withLock { $0.activation = nil; $0.resets += 1 } }

    var activation: VirtioActivation? { state.withLock { $0.activation } }
    var notified: [Int] { state.withLock { $0.notified } }
    var resets: Int { state.withLock { $0.resets } }

    /// The device changes its configuration (a resized disk) and tells the driver.
    func changeConfiguration(capacity: UInt64) {
        let interrupt = state.withLock { state in
            state.config.set(capacity, at: 0)
            return state.activation?.interrupt
        }
        interrupt?.signalConfigurationChange()
    }
}
