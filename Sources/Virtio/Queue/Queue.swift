import GuestMemory
import Synchronization

/// The device side of one split virtqueue (virtio 1.2 §2.7), validated and ready to run.
///
/// Built at DRIVER_OK from what the driver programmed (`QueueConfiguration`); the constructor is the one place
/// where the ring addresses are checked, so every later ring access is at a known-good offset. Guest memory
/// layout, all little-endian:
///
///     descriptor table (align 16)   16 × size bytes of struct virtq_desc
///     available ring   (align 2)    le16 flags | le16 idx | le16 ring[size] | le16 used_event
///     used ring        (align 4)    le16 flags | le16 idx | {le32 id, le32 len}[size] | le16 avail_event
///
/// Threads: a `Queue` is a value owned by one device worker at a time (devices keep theirs behind a lock).
/// The guest's vCPUs are the other party: they write the available ring and read the used ring concurrently,
/// which is why the ring indices are accessed with the fences explained at each site.
///
/// Memory ordering: guest RAM is reached through `GuestMemory`'s plain loads and stores (no host pointers
/// leave that module). Each index is an aligned 16-bit field, which x86 reads and writes in one access;
/// the ordering between the index and the data it guards comes from `atomicMemoryFence`, the same pairing
/// Linux's drivers/virtio/virtio_ring.c uses on the driver side (virtio_rmb / virtio_wmb / virtio_mb).
public struct Queue: Sendable {
    /// The largest queue size the split ring format allows (§2.7).
    public static let maximumSize: UInt16 = 32768
    /// VIRTQ_AVAIL_F_NO_INTERRUPT: the driver does not want used-buffer notifications (§2.7.7).
    static let availableFlagNoInterrupt: UInt16 = 1
    /// VIRTQ_USED_F_NO_NOTIFY: the device does not want available-buffer notifications (§2.7.10).
    static let usedFlagNoNotify: UInt16 = 1

    /// This queue's index within its device (for messages and interrupts).
    public let index: Int
    public let size: UInt16
    public let descriptorTable: GuestAddress
    public let availableRing: GuestAddress
    public let usedRing: GuestAddress
    public let memory: GuestMemory
    /// VIRTIO_F_EVENT_IDX negotiated: used_event / avail_event instead of the ring flags.
    public let eventIndexEnabled: Bool
    /// VIRTIO_F_INDIRECT_DESC negotiated.
    public let indirectDescriptorsEnabled: Bool

    /// Free-running index of the next available-ring entry to consume.
    public private(set) var nextAvailable: UInt16
    /// Free-running index of the next used-ring entry to fill; equals the used.idx last published.
    public private(set) var nextUsed: UInt16
    /// used.idx at the previous notification decision: the `old` of vring_need_event.
    private var usedAtLastDecision: UInt16
    /// Whether the device currently asks for available-buffer notifications.
    public private(set) var notificationsEnabled = true
    /// Set once the rings proved malformed; every later operation throws it (the device needs a reset).
    public private(set) var failure: VirtioError?

    private let maximumConfiguredSize: UInt16

    /// Validates the driver's queue setup against guest memory (§2.7 alignment and size table).
    public init(index: Int, configuration: QueueConfiguration, memory: GuestMemory, features: UInt64) throws(VirtioError) {
        let size = configuration.size
        guard size != 0 else { throw .queueSizeZero(queue: index) }
        guard size.nonzeroBitCount == 1 else { throw .queueSizeNotPowerOfTwo(queue: index, size: size) }
        let maximum = min(configuration.maximumSize, Self.maximumSize)
        guard size <= maximum else { throw .queueSizeTooLarge(queue: index, size: size, maximum: maximum) }

        let parts: [(VirtqueuePart, GuestAddress, UInt64, UInt64)] = [
            (.descriptorTable, configuration.descriptorTable, 16, 16 * UInt64(size)),
            (.availableRing, configuration.availableRing, 2, 6 + 2 * UInt64(size)),
            (.usedRing, configuration.usedRing, 4, 6 + 8 * UInt64(size)),
        ]
        for (part, address, alignment, length) in parts {
            guard address.rawValue % alignment == 0 else {
                throw .ringMisaligned(queue: index, part: part, address: address, requiredAlignment: alignment)
            }
            guard memory.contains(address, length: length) else {
                throw .ringOutsideMemory(queue: index, part: part, address: address, length: length)
            }
        }
        self.index = index
        self.size = size
        self.descriptorTable = configuration.descriptorTable
        self.availableRing = configuration.availableRing
        self.usedRing = configuration.usedRing
        self.memory = memory
        self.eventIndexEnabled = features & VirtioFeature.ringEventIndex != 0
        self.indirectDescriptorsEnabled = features & VirtioFeature.indirectDescriptors != 0
        self.nextAvailable = configuration.nextAvailable
        self.nextUsed = configuration.nextUsed
        self.usedAtLastDecision = configuration.nextUsed
        self.maximumConfiguredSize = configuration.maximumSize
    }

    /// The queue's registers and progress, for a snapshot (restore with `init(index:configuration:...)`).
    public var configuration: QueueConfiguration {
        var configuration = QueueConfiguration(maximumSize: maximumConfiguredSize)
        configuration.size = size
        configuration.ready = true
        configuration.descriptorTable = descriptorTable
        configuration.availableRing = availableRing
        configuration.usedRing = usedRing
        configuration.nextAvailable = nextAvailable
        configuration.nextUsed = nextUsed
        return configuration
    }

    // MARK: Ring field addresses (offsets proven in range by init)

    private var availableIndexAddress: GuestAddress { availableRing.adding(2) }
    private func availableEntryAddress(_ position: UInt16) -> GuestAddress {
        // size is a power of two dividing 2^16, so masking keeps positions consistent across index wrap-around.
        availableRing.adding(4 + 2 * UInt64(position & (size - 1)))
    }
    private var usedEventAddress: GuestAddress { availableRing.adding(4 + 2 * UInt64(size)) }
    private var usedFlagsAddress: GuestAddress { usedRing }
    private var usedIndexAddress: GuestAddress { usedRing.adding(2) }
    private func usedEntryAddress(_ position: UInt16) -> GuestAddress {
        usedRing.adding(4 + 8 * UInt64(position & (size - 1)))
    }
    private var availableEventAddress: GuestAddress { usedRing.adding(4 + 8 * UInt64(size)) }

    /// Records a ring-level failure: from now on the queue refuses all work.
    private mutating func fail(_ error: VirtioError) -> VirtioError {
        failure = error
        return error
    }

    /// Runs a ring access. init proved every ring field in bounds, so a failure here means guest memory itself
    /// changed; it is reported (the device then asks for a reset), never trapped.
    private func ringAccess<T>(_ body: () throws(GuestMemoryError) -> T) throws(VirtioError) -> T {
        do { return try body() } catch { throw .guestMemory(queue: index, error) }
    }

    // MARK: Consuming available buffers (§2.7.6, §2.7.13)

    /// How many chains the driver has made available that the device has not popped yet.
    public mutating func pendingCount() throws(VirtioError) -> UInt16 {
        if let failure { throw failure }
        let published = try ringAccess { () throws(GuestMemoryError) in try memory.load(UInt16.self, at: availableIndexAddress) }
        let pending = published &- nextAvailable
        guard pending <= size else {
            throw fail(.availableIndexJump(queue: index, lastSeen: nextAvailable, published: published, queueSize: size))
        }
        return pending
    }

    /// Takes the next available chain, walked and validated, or nil when the driver has published nothing new.
    ///
    /// Throws `.malformedChain` when that chain breaks a rule: its ring entry is consumed all the same, and the
    /// device completes it with `addUsed(head:length: 0)` (or a device error status). Any other error means
    /// the rings are unusable: the queue stays failed and the device must ask for a reset.
    public mutating func popAvailable() throws(VirtioError) -> DescriptorChain? {
        let pending = try pendingCount()
        guard pending > 0 else { return nil }
        // Acquire: the driver wrote the ring entry and the descriptors before it released avail.idx
        // (virtio_wmb in virtqueue_add_split). Without this fence the reads below could be satisfied before
        // the avail.idx read above and see the slot's previous contents.
        atomicMemoryFence(ordering: .acquiring)

        let position = nextAvailable
        let head = try ringAccess { () throws(GuestMemoryError) in try memory.load(UInt16.self, at: availableEntryAddress(position)) }
        guard head < size else { throw fail(.headIndexOutOfRange(queue: index, head: head, queueSize: size)) }
        nextAvailable &+= 1

        if eventIndexEnabled && notificationsEnabled {
            // Keep avail_event at "the next entry I will look at", so the driver's vring_need_event fires when
            // it publishes past what we have consumed (§2.7.10). A device that never toggles notifications
            // stays correct this way.
            try publishAvailableEvent()
        }

        do {
            return try DescriptorChain(
                head: head, table: descriptorTable, queueSize: size, memory: memory,
                indirectAllowed: indirectDescriptorsEnabled)
        } catch {
            throw .malformedChain(queue: index, head: head, error)
        }
    }

    // MARK: Returning used buffers (§2.7.8, §2.7.14)

    /// Returns chain `head` to the driver, `length` bytes written into its device-writable buffers, and
    /// publishes it at once (used.idx).
    public mutating func addUsed(head: UInt16, length: UInt32) throws(VirtioError) {
        if let failure { throw failure }
        guard head < size else { throw .usedHeadOutOfRange(queue: index, head: head, queueSize: size) }
        let entry = usedEntryAddress(nextUsed)
        try ringAccess { () throws(GuestMemoryError) in
            try memory.store(UInt32(head), at: entry)
            try memory.store(length, at: entry.adding(4))
        }
        // Release: the element (and everything the device wrote into the buffers before) must be visible to
        // the driver before the used.idx that hands it over; the driver pairs this with the virtio_rmb after
        // reading used.idx in virtqueue_get_buf.
        atomicMemoryFence(ordering: .releasing)
        nextUsed &+= 1
        let published = nextUsed
        try ringAccess { () throws(GuestMemoryError) in try memory.store(published, at: usedIndexAddress) }
    }

    // MARK: Used buffer notifications (§2.7.7)

    /// Whether the driver wants a used-buffer notification for what `addUsed` published since the last call.
    /// Call after a batch of `addUsed`, and interrupt the driver when it returns true.
    ///
    /// With EVENT_IDX: notify iff the used index crossed `used_event` in this batch — Linux's
    /// `vring_need_event(used_event, new, old)`, i.e. `(u16)(new - used_event - 1) < (u16)(new - old)`.
    /// Without it: notify unless the driver set VIRTQ_AVAIL_F_NO_INTERRUPT. Either way the answer is only a
    /// hint (§2.7.7: the driver must cope with spurious notifications), so a failed read answers true.
    public mutating func needsNotification() -> Bool {
        // Full fence: our used.idx store must be visible before we read the driver's used_event / flags.
        // Otherwise this store→load pair can be reordered (x86 allows exactly this reordering): we read a
        // stale used_event while the driver reads a stale used.idx, and both conclude no interrupt is
        // needed — a lost wake-up. The driver's virtio_mb in virtqueue_kick_prepare is the other half.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let new = nextUsed
        let old = usedAtLastDecision
        usedAtLastDecision = new
        if eventIndexEnabled {
            guard let usedEvent = try? memory.load(UInt16.self, at: usedEventAddress) else { return true }
            return Self.needEvent(event: usedEvent, new: new, old: old)
        }
        guard let flags = try? memory.load(UInt16.self, at: availableRing) else { return true }
        return flags & Self.availableFlagNoInterrupt == 0
    }

    /// `vring_need_event` (include/uapi/linux/virtio_ring.h): has the index moved from `old` to `new` past
    /// `event`? All arithmetic is modulo 2^16, so it holds across wrap-around.
    public static func needEvent(event: UInt16, new: UInt16, old: UInt16) -> Bool {
        (new &- event &- 1) < (new &- old)
    }

    // MARK: Available buffer notifications (§2.7.10)

    /// Asks the driver not to notify (kick) while the device is busy draining the queue anyway.
    /// Without EVENT_IDX this sets VIRTQ_USED_F_NO_NOTIFY; with it, avail_event simply stops advancing.
    public mutating func disableNotifications() throws(VirtioError) {
        if let failure { throw failure }
        notificationsEnabled = false
        if !eventIndexEnabled {
            try ringAccess { () throws(GuestMemoryError) in try memory.store(Self.usedFlagNoNotify, at: usedFlagsAddress) }
        }
    }

    /// Asks for notifications again. Returns true when buffers arrived in the meantime: the driver may have
    /// published them while notifications were off and will not kick for them, so the caller must pop again.
    public mutating func enableNotifications() throws(VirtioError) -> Bool {
        if let failure { throw failure }
        notificationsEnabled = true
        if eventIndexEnabled {
            try publishAvailableEvent()
        } else {
            // §2.7.10: with EVENT_IDX negotiated the device must leave used.flags 0, so only here.
            try ringAccess { () throws(GuestMemoryError) in try memory.store(UInt16(0), at: usedFlagsAddress) }
        }
        // Full fence: the store above must be visible before we re-read avail.idx. The driver does the mirror
        // image (publish avail.idx, virtio_mb, read our flags / avail_event); with both fences at least one side
        // sees the other's write, so a buffer is never left without a kick.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        return try pendingCount() > 0
    }

    private mutating func publishAvailableEvent() throws(VirtioError) {
        let event = nextAvailable
        try ringAccess { () throws(GuestMemoryError) in try memory.store(event, at: availableEventAddress) }
    }
}
