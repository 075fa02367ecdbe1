import GuestMemory

/// The transport-independent registers of a virtio device: feature negotiation (§2.2), the device status
/// state machine (§2.1, §3.1.1) and the per-queue setup registers. virtio-pci's common configuration
/// structure (§4.1.4.3) and virtio-mmio's register block (§4.2.2) are both thin maps onto this.
///
/// A plain Codable value so that a snapshot can carry it. The transport owns it (behind its own lock) and
/// turns the outcomes of `writeStatus` into actions on the device model: activate, reset.
public struct VirtioDeviceState: Codable, Equatable, Sendable {
    /// Everything the device offers: its own bits plus the ring features the core implements.
    public let offeredFeatures: UInt64
    /// What the driver wrote into driver_feature (both halves), unfiltered: checked at FEATURES_OK.
    public private(set) var driverFeatures: UInt64 = 0
    public private(set) var status: DeviceStatus = []
    /// device_feature_select / DeviceFeaturesSel: which 32-bit half device_feature shows.
    public var deviceFeatureSelect: UInt32 = 0
    /// driver_feature_select / DriverFeaturesSel: which 32-bit half a driver_feature write sets.
    public var driverFeatureSelect: UInt32 = 0
    /// queue_select / QueueSel.
    public var queueSelect: UInt16 = 0
    public private(set) var queues: [QueueConfiguration]
    /// config_generation: bumped whenever the device changes its configuration space (§2.5.1), so a driver
    /// reading a multi-field config can detect a torn read.
    public private(set) var configurationGeneration: UInt32 = 0

    /// - Parameters:
    ///   - deviceFeatures: the device model's own feature bits; the core adds `VirtioFeature.offeredByCore`
    ///     and strips what it does not implement (`VirtioFeature.neverOffered`).
    ///   - queueMaximumSizes: one entry per queue, its maximum size.
    public init(deviceFeatures: UInt64, queueMaximumSizes: [UInt16]) {
        self.offeredFeatures = (deviceFeatures | VirtioFeature.offeredByCore) & ~VirtioFeature.neverOffered
        self.queues = queueMaximumSizes.map { QueueConfiguration(maximumSize: $0) }
    }

    /// The features both sides agreed on; zero until FEATURES_OK has been accepted.
    public var negotiatedFeatures: UInt64 {
        status.contains(.featuresOK) ? driverFeatures & offeredFeatures : 0
    }

    // MARK: Features (§2.2, §3.1.1 steps 4–6)

    /// device_feature: the half of `offeredFeatures` picked by `deviceFeatureSelect` (0 beyond bit 63).
    public var deviceFeatureWindow: UInt32 {
        switch deviceFeatureSelect {
        case 0: return UInt32(truncatingIfNeeded: offeredFeatures)
        case 1: return UInt32(truncatingIfNeeded: offeredFeatures >> 32)
        default: return 0
        }
    }

    /// driver_feature read-back: the half of what the driver wrote picked by `driverFeatureSelect`.
    public var driverFeatureWindow: UInt32 {
        switch driverFeatureSelect {
        case 0: return UInt32(truncatingIfNeeded: driverFeatures)
        case 1: return UInt32(truncatingIfNeeded: driverFeatures >> 32)
        default: return 0
        }
    }

    /// A driver_feature write. Taken only while negotiation is open — DRIVER set, FEATURES_OK not yet — as
    /// §3.1.1 orders it; returns false (write ignored) otherwise, or for a select beyond bit 63.
    @discardableResult
    public mutating func writeDriverFeatureWindow(_ value: UInt32) -> Bool {
        guard status.contains(.driver), !status.contains(.featuresOK), !status.contains(.failed) else { return false }
        switch driverFeatureSelect {
        case 0: driverFeatures = driverFeatures & 0xFFFF_FFFF_0000_0000 | UInt64(value)
        case 1: driverFeatures = driverFeatures & 0x0000_0000_FFFF_FFFF | UInt64(value) << 32
        default: return false
        }
        return true
    }

    // MARK: Status (§2.1, §2.4, §3.1.1)

    /// What a status write did, for the transport to act on.
    public enum StatusWriteOutcome: Equatable, Sendable {
        /// 0 was written: the device is reset (§2.4). The transport resets the device model and its own
        /// per-queue state (MSI-X vectors, notification eventfds).
        case reset
        /// Bits were added in a valid order; nothing else to do.
        case accepted
        /// FEATURES_OK was requested and granted.
        case featuresAccepted
        /// FEATURES_OK was requested but not granted: the driver accepted `unoffered` bits the device never
        /// offered, or did not accept VIRTIO_F_VERSION_1 (`missingVersion1`). The bit stays clear, which is
        /// how the driver learns of it when it re-reads the status (§3.1.1 step 6).
        case featuresRefused(unoffered: UInt64, missingVersion1: Bool)
        /// DRIVER_OK was set: the transport builds the queues (`makeQueues`) and activates the device.
        case activate
        /// The driver set FAILED: it gave up on the device.
        case failed
        /// The write was ignored because it broke the state machine: it cleared a bit, skipped a step,
        /// or came after FAILED.
        case ignored(attempted: DeviceStatus)
    }

    /// A write to device_status.
    public mutating func writeStatus(_ value: UInt8) -> StatusWriteOutcome {
        let requested = DeviceStatus(rawValue: value)
        if requested.isEmpty {
            reset()
            return .reset
        }
        // DEVICE_NEEDS_RESET belongs to the device: a driver writing it back (or omitting it) changes nothing.
        let driverBits = requested.subtracting(.deviceNeedsReset)
        let current = status.subtracting(.deviceNeedsReset)
        // §2.1.2: "The driver MUST NOT clear a device status bit." Only a write of 0 resets.
        guard driverBits.isSuperset(of: current), !current.contains(.failed) else { return .ignored(attempted: requested) }
        let added = driverBits.subtracting(current)
        if added.contains(.failed) {
            status.insert(.failed)
            return .failed
        }
        // §3.1.1: each bit needs the one before it.
        let ordered = (!driverBits.contains(.driver) || driverBits.contains(.acknowledge))
            && (!driverBits.contains(.featuresOK) || driverBits.contains(.driver))
            && (!driverBits.contains(.driverOK) || driverBits.contains(.featuresOK))
        guard ordered else { return .ignored(attempted: requested) }

        var outcome = StatusWriteOutcome.accepted
        if added.contains(.featuresOK) {
            let unoffered = driverFeatures & ~offeredFeatures
            let missingVersion1 = driverFeatures & VirtioFeature.version1 == 0
            if unoffered != 0 || missingVersion1 {
                // Keep the earlier bits, drop FEATURES_OK (and DRIVER_OK, which needs it).
                status = status.union(driverBits.subtracting([.featuresOK, .driverOK]))
                return .featuresRefused(unoffered: unoffered, missingVersion1: missingVersion1)
            }
            outcome = .featuresAccepted
        }
        status = status.union(driverBits)
        if added.contains(.driverOK) { outcome = .activate }
        return outcome
    }

    /// The device (or the transport on its behalf) hit an unrecoverable error: sets DEVICE_NEEDS_RESET.
    /// Returns true when the driver must be told by a configuration change notification (§2.1.2: only once
    /// DRIVER_OK is set).
    public mutating func markNeedsReset() -> Bool {
        let alreadySet = status.contains(.deviceNeedsReset)
        status.insert(.deviceNeedsReset)
        return !alreadySet && status.contains(.driverOK)
    }

    /// The device changed its configuration space: bump config_generation (§2.5).
    public mutating func configurationChanged() {
        configurationGeneration &+= 1
    }

    /// Device reset (§2.4): status, negotiated features, selectors and every queue back to their initial
    /// values. What the device offers stays.
    public mutating func reset() {
        status = []
        driverFeatures = 0
        deviceFeatureSelect = 0
        driverFeatureSelect = 0
        queueSelect = 0
        for index in queues.indices { queues[index].reset() }
    }

    // MARK: Queue setup registers (§4.1.4.3 queue_*, §4.2.2 Queue*)

    /// The registers of one queue that the driver programs.
    public enum QueueRegister: Sendable {
        case size, ready
        case descriptorLow, descriptorHigh
        case availableLow, availableHigh
        case usedLow, usedHigh
    }

    /// The selected queue's configuration, or nil when queue_select names no queue (then queue_size reads 0,
    /// which is how a driver finds out a queue does not exist).
    public var selectedQueue: QueueConfiguration? {
        queues.indices.contains(Int(queueSelect)) ? queues[Int(queueSelect)] : nil
    }

    /// Reads a queue register of the selected queue (0 when there is none).
    public func readQueueRegister(_ register: QueueRegister) -> UInt32 {
        guard let queue = selectedQueue else { return 0 }
        switch register {
        case .size: return UInt32(queue.size)
        case .ready: return queue.ready ? 1 : 0
        case .descriptorLow: return UInt32(truncatingIfNeeded: queue.descriptorTable.rawValue)
        case .descriptorHigh: return UInt32(truncatingIfNeeded: queue.descriptorTable.rawValue >> 32)
        case .availableLow: return UInt32(truncatingIfNeeded: queue.availableRing.rawValue)
        case .availableHigh: return UInt32(truncatingIfNeeded: queue.availableRing.rawValue >> 32)
        case .usedLow: return UInt32(truncatingIfNeeded: queue.usedRing.rawValue)
        case .usedHigh: return UInt32(truncatingIfNeeded: queue.usedRing.rawValue >> 32)
        }
    }

    /// Writes a queue register of the selected queue. Ignored (returns false) unless the queue exists, is not
    /// yet enabled, and the device is between FEATURES_OK and DRIVER_OK (§3.1.1 step 7: queues are set up
    /// after feature negotiation, before the driver goes live). Writing 0 to `ready` is ignored too: without
    /// VIRTIO_F_RING_RESET a queue cannot be disabled except by a device reset (§4.1.4.3.2).
    @discardableResult
    public mutating func writeQueueRegister(_ register: QueueRegister, _ value: UInt32) -> Bool {
        let index = Int(queueSelect)
        guard queues.indices.contains(index), !queues[index].ready,
            status.contains(.featuresOK), !status.contains(.driverOK), !status.contains(.failed)
        else { return false }
        func low(_ address: GuestAddress) -> GuestAddress {
            GuestAddress(address.rawValue & 0xFFFF_FFFF_0000_0000 | UInt64(value))
        }
        func high(_ address: GuestAddress) -> GuestAddress {
            GuestAddress(address.rawValue & 0x0000_0000_FFFF_FFFF | UInt64(value) << 32)
        }
        switch register {
        case .size:
            // Kept as written (truncated to the register's 16 bits); `Queue.init` judges it at DRIVER_OK.
            queues[index].size = UInt16(truncatingIfNeeded: value)
        case .ready:
            guard value == 1 else { return false }
            queues[index].ready = true
        case .descriptorLow: queues[index].descriptorTable = low(queues[index].descriptorTable)
        case .descriptorHigh: queues[index].descriptorTable = high(queues[index].descriptorTable)
        case .availableLow: queues[index].availableRing = low(queues[index].availableRing)
        case .availableHigh: queues[index].availableRing = high(queues[index].availableRing)
        case .usedLow: queues[index].usedRing = low(queues[index].usedRing)
        case .usedHigh: queues[index].usedRing = high(queues[index].usedRing)
        }
        return true
    }

    /// Replaces a queue's whole configuration (restoring a snapshot, or a transport that programs queues its
    /// own way). No checks: `makeQueues` validates.
    public mutating func setQueue(_ index: Int, _ configuration: QueueConfiguration) {
        queues[index] = configuration
    }

    /// At DRIVER_OK: validates every enabled queue against guest memory and builds it. Queues the driver did
    /// not enable are nil (a driver need not use every queue a device has). Throws the first invalid queue's
    /// error; the transport then marks the device NEEDS_RESET.
    public func makeQueues(memory: GuestMemory) throws(VirtioError) -> [Queue?] {
        var built: [Queue?] = []
        for (index, configuration) in queues.enumerated() {
            guard configuration.ready else {
                built.append(nil)
                continue
            }
            built.append(try Queue(index: index, configuration: configuration, memory: memory, features: negotiatedFeatures))
        }
        return built
    }
}
