import GuestMemory

/// What the driver programmed for one virtqueue through the transport's registers (virtio-pci common
/// configuration §4.1.4.3, virtio-mmio QueueNum/QueueDesc*/QueueDriver*/QueueDevice*/QueueReady §4.2.2),
/// plus the device's progress through the rings, so that a snapshot can carry a running queue.
///
/// Nothing here is trusted: `Queue.init(configuration:memory:features:)` validates it at DRIVER_OK.
public struct QueueConfiguration: Codable, Equatable, Sendable {
    /// The largest size the device accepts (queue_size as read before the driver writes it).
    public let maximumSize: UInt16
    /// Queue Size as written by the driver (defaults to the maximum, as §4.1.4.3 prescribes on reset).
    public var size: UInt16
    /// queue_enable / QueueReady.
    public var ready: Bool
    // Stored as raw integers so the struct stays Codable; `GuestAddress` views below.
    private var descriptorTableRaw: UInt64 = 0
    private var availableRingRaw: UInt64 = 0
    private var usedRingRaw: UInt64 = 0
    /// The next available-ring position the device will read (a free-running 16-bit index, §2.7.6).
    public var nextAvailable: UInt16 = 0
    /// The next used-ring position the device will write (mirrors used.idx, §2.7.8).
    public var nextUsed: UInt16 = 0

    public init(maximumSize: UInt16) {
        self.maximumSize = maximumSize
        self.size = maximumSize
        self.ready = false
    }

    /// queue_desc: the Descriptor Area.
    public var descriptorTable: GuestAddress {
        get { GuestAddress(descriptorTableRaw) }
        set { descriptorTableRaw = newValue.rawValue }
    }
    /// queue_driver: the Driver Area, i.e. the available ring.
    public var availableRing: GuestAddress {
        get { GuestAddress(availableRingRaw) }
        set { availableRingRaw = newValue.rawValue }
    }
    /// queue_device: the Device Area, i.e. the used ring.
    public var usedRing: GuestAddress {
        get { GuestAddress(usedRingRaw) }
        set { usedRingRaw = newValue.rawValue }
    }

    /// Back to the state after a device reset (§2.4): size back to the maximum, not ready, addresses and
    /// ring positions zero.
    public mutating func reset() {
        self = QueueConfiguration(maximumSize: maximumSize)
    }
}
