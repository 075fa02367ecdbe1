import GuestMemory

/// Device IDs (virtio 1.2 §5 "Device Types"). A struct rather than an enum: transports only pass the
/// number through (virtio-pci device ID 0x1040 + id, virtio-mmio DeviceID).
public struct VirtioDeviceType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let network = VirtioDeviceType(rawValue: 1)
    public static let block = VirtioDeviceType(rawValue: 2)
    public static let console = VirtioDeviceType(rawValue: 3)
    public static let entropy = VirtioDeviceType(rawValue: 4)
    public static let balloon = VirtioDeviceType(rawValue: 5)
    public static let vsock = VirtioDeviceType(rawValue: 19)

    public var description: String {
        switch self {
        case .network: return "net"
        case .block: return "blk"
        case .console: return "console"
        case .entropy: return "rng"
        case .balloon: return "balloon"
        case .vsock: return "vsock"
        default: return "virtio-\(rawValue)"
        }
    }
}

/// How a device reaches the driver: the transport implements it (virtio-pci: MSI-X through irqfd, or INTx
/// with the ISR status register; virtio-mmio: the interrupt line with InterruptStatus).
public protocol VirtioInterrupt: Sendable {
    /// A used buffer notification for queue `queue` (§2.3). Call only when `Queue.needsNotification()`
    /// said so.
    func signalUsedBuffers(queue: Int)
    /// A configuration change notification (§2.3): the device's configuration space changed.
    func signalConfigurationChange()
    /// The device cannot go on (a queue's rings are malformed, a backend died): the transport sets
    /// DEVICE_NEEDS_RESET and, once DRIVER_OK, sends a configuration change notification (§2.1.2).
    func deviceNeedsReset(_ error: VirtioError)
}

/// What a device gets when the driver sets DRIVER_OK.
public struct VirtioActivation: Sendable {
    /// One entry per queue of the device, validated; nil where the driver did not enable the queue.
    public var queues: [Queue?]
    public var memory: GuestMemory
    /// The negotiated features (device-specific bits and ring bits).
    public var features: UInt64
    public var interrupt: any VirtioInterrupt

    public init(queues: [Queue?], memory: GuestMemory, features: UInt64, interrupt: any VirtioInterrupt) {
        self.queues = queues
        self.memory = memory
        self.features = features
        self.interrupt = interrupt
    }
}

/// A virtio device model, independent of the transport that exposes it.
///
/// Threads: the transport calls the configuration accessors from vCPU threads (register accesses) and
/// `queueNotified` from whichever thread receives the driver's notifications (the event loop reading the
/// queue's ioeventfd — not a vCPU thread, so device work stays off them). `activate` and `reset` come from a
/// vCPU thread (the device_status write). A model therefore keeps its state behind its own lock, and must not
/// call back into the transport while holding it except through `VirtioInterrupt`.
public protocol VirtioDevice: AnyObject, Sendable {
    var deviceType: VirtioDeviceType { get }
    /// The maximum size of each queue; its count is the device's number of queues.
    var queueMaximumSizes: [UInt16] { get }
    /// The device-type feature bits offered (bits 0–23, plus any reserved bit the model itself implements).
    /// The core adds VERSION_1, EVENT_IDX and INDIRECT_DESC.
    var deviceFeatures: UInt64 { get }
    /// Bytes of device-specific configuration space (§2.5).
    var configurationSize: Int { get }

    /// Reads `width` (1, 2, 4 or 8) bytes of configuration space at `offset`, little-endian. Out of range
    /// reads return 0; the transport has already checked `offset + width <= configurationSize`.
    func readConfiguration(offset: Int, width: Int) -> UInt64
    /// Writes configuration space; most fields are read-only and ignore writes.
    func writeConfiguration(offset: Int, width: Int, value: UInt64)

    /// DRIVER_OK: start processing. Throwing marks the device NEEDS_RESET.
    func activate(_ activation: VirtioActivation) throws
    /// The driver notified queue `index` (an available buffer notification, §2.3).
    func queueNotified(index: Int)
    /// Device reset (§2.4): drop the queues and go back to the pre-activation state.
    func reset()

    /// For a snapshot, taken while the machine is paused (no worker is serving a queue): each queue's registers
    /// and progress while the device runs it, nil for a queue it does not run. A chain the device popped but has
    /// not used is given back: its queue's `nextAvailable` is moved back over it, so the restored device pops it
    /// again. nil: this model cannot be saved (the default).
    func snapshotQueues() -> [QueueConfiguration?]?
    /// Called once after a restore activated the device from a snapshot's queues, before the guest runs again:
    /// what a device owes a driver whose host side changed (vsock: TRANSPORT_RESET). Nothing by default.
    func didRestore()
}

extension VirtioDevice {
    public func snapshotQueues() -> [QueueConfiguration?]? { nil }
    public func didRestore() {}
}

/// Little-endian configuration space bytes with bounds-checked, width-checked reads: a helper for device
/// models whose configuration is a fixed structure (§2.5).
public struct ConfigurationSpace: Sendable, Equatable {
    public var bytes: [UInt8]

    public init(size: Int) { bytes = [UInt8](repeating: 0, count: size) }

    /// Reads `width` bytes at `offset`; 0 for widths other than 1/2/4/8 or ranges not wholly inside.
    public func read(offset: Int, width: Int) -> UInt64 {
        guard [1, 2, 4, 8].contains(width), offset >= 0, offset <= bytes.count - width else { return 0 }
        var value: UInt64 = 0
        for index in 0..<width { value |= UInt64(bytes[offset + index]) << (8 * index) }
        return value
    }

    /// Stores a little-endian field (the device filling in its own configuration).
    public mutating func set<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for index in 0..<MemoryLayout<T>.size {
            bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index))
        }
    }
}
