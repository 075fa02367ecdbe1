// The common configuration structure (virtio 1.2 §4.1.4.3), `struct virtio_pci_common_cfg`, little-endian:
//
//     0x00 le32 device_feature_select  RW    0x04 le32 device_feature   RO
//     0x08 le32 driver_feature_select  RW    0x0C le32 driver_feature   RW
//     0x10 le16 config_msix_vector     RW    0x12 le16 num_queues       RO
//     0x14 u8   device_status          RW    0x15 u8   config_generation RO
//     0x16 le16 queue_select           RW    0x18 le16 queue_size       RW
//     0x1A le16 queue_msix_vector      RW    0x1C le16 queue_enable     RW
//     0x1E le16 queue_notify_off       RO    0x20 le64 queue_desc       RW
//     0x28 le64 queue_driver           RW    0x30 le64 queue_device     RW
//
// The queue_* fields show the queue picked by queue_select. §4.1.3.1: the driver accesses each field with its own
// width, and 64-bit fields may be accessed as two 32-bit halves (Linux's vp_iowrite64_twopart does, low half
// first). Anything else — a 2-byte read of a 4-byte field, a byte in the middle of one, an offset past 0x38 —
// reads 0 and writes nothing: survived, never trusted.
//
// MSI-X vectors (§4.1.5.1.2): the device keeps the vector number the driver assigns to configuration changes and
// to each queue, and answers NO_VECTOR (0xFFFF) on read-back when it cannot use the one written (past the table).
// Linux checks that read-back and falls back to fewer vectors or INTx when it sees NO_VECTOR.

import Virtio

/// One field of the common configuration structure.
enum CommonField: Equatable {
    case deviceFeatureSelect, deviceFeature, driverFeatureSelect, driverFeature
    case configMSIXVector, numQueues, deviceStatus, configGeneration
    case queueSelect, queueSize, queueMSIXVector, queueEnable, queueNotifyOff
    case queueDescriptor, queueDriver, queueDevice

    /// Field offsets, in structure order, with their widths.
    static let layout: [(offset: UInt64, width: Int, field: CommonField)] = [
        (0x00, 4, .deviceFeatureSelect), (0x04, 4, .deviceFeature),
        (0x08, 4, .driverFeatureSelect), (0x0C, 4, .driverFeature),
        (0x10, 2, .configMSIXVector), (0x12, 2, .numQueues),
        (0x14, 1, .deviceStatus), (0x15, 1, .configGeneration),
        (0x16, 2, .queueSelect), (0x18, 2, .queueSize),
        (0x1A, 2, .queueMSIXVector), (0x1C, 2, .queueEnable),
        (0x1E, 2, .queueNotifyOff),
        (0x20, 8, .queueDescriptor), (0x28, 8, .queueDriver), (0x30, 8, .queueDevice),
    ]

    /// Which part of a field an access covers: all of it, or one 32-bit half of a 64-bit field.
    enum Part: Equatable { case whole, low, high }

    /// The field an access of `width` bytes at `offset` is a legal access to, or nil.
    static func access(offset: UInt64, width: Int) -> (field: CommonField, part: Part)? {
        for entry in layout {
            if entry.offset == offset && entry.width == width { return (entry.field, .whole) }
            if entry.width == 8 && width == 4 {
                if entry.offset == offset { return (entry.field, .low) }
                if entry.offset + 4 == offset { return (entry.field, .high) }
            }
        }
        return nil
    }
}

/// VIRTIO_MSI_NO_VECTOR: no MSI-X vector is assigned (§4.1.4.3).
public let virtioMSINoVector: UInt16 = 0xFFFF

extension TransportState {
    /// A read of the common configuration structure.
    func readCommon(offset: UInt64, width: Int) -> UInt64 {
        guard let (field, part) = CommonField.access(offset: offset, width: width) else { return 0 }
        let selected = Int(virtio.queueSelect)
        let queueExists = virtio.queues.indices.contains(selected)
        let value: UInt64
        switch field {
        case .deviceFeatureSelect: value = UInt64(virtio.deviceFeatureSelect)
        case .deviceFeature: value = UInt64(virtio.deviceFeatureWindow)
        case .driverFeatureSelect: value = UInt64(virtio.driverFeatureSelect)
        case .driverFeature: value = UInt64(virtio.driverFeatureWindow)
        case .configMSIXVector: value = UInt64(configVector)
        case .numQueues: value = UInt64(virtio.queues.count)
        case .deviceStatus: value = UInt64(virtio.status.rawValue)
        case .configGeneration: value = UInt64(UInt8(truncatingIfNeeded: virtio.configurationGeneration))
        case .queueSelect: value = UInt64(virtio.queueSelect)
        case .queueSize: value = UInt64(virtio.readQueueRegister(.size))
        case .queueMSIXVector: value = UInt64(queueExists ? queueVectors[selected] : virtioMSINoVector)
        case .queueEnable: value = UInt64(virtio.readQueueRegister(.ready))
        // Queue i's notification address is notify base + i * multiplier (see VirtioPCILayout).
        case .queueNotifyOff: value = queueExists ? UInt64(selected) : 0
        case .queueDescriptor:
            value = UInt64(virtio.readQueueRegister(.descriptorHigh)) << 32 | UInt64(virtio.readQueueRegister(.descriptorLow))
        case .queueDriver:
            value = UInt64(virtio.readQueueRegister(.availableHigh)) << 32 | UInt64(virtio.readQueueRegister(.availableLow))
        case .queueDevice:
            value = UInt64(virtio.readQueueRegister(.usedHigh)) << 32 | UInt64(virtio.readQueueRegister(.usedLow))
        }
        switch part {
        case .whole: return value
        case .low: return value & 0xFFFF_FFFF
        case .high: return value >> 32
        }
    }

    /// What a common-configuration write leaves for the transport to do outside the state lock.
    enum CommonWriteResult: Equatable {
        case done
        /// The access named no field (or a read-only one): ignored.
        case ignored
        /// A device_status write, which the transport runs itself (it may reset or activate the device).
        case status(UInt8)
    }

    /// A write to the common configuration structure, except device_status (returned as `.status`).
    /// `vectorCount` is the size of the MSI-X table: vector numbers beyond it are stored as NO_VECTOR.
    mutating func writeCommon(offset: UInt64, width: Int, value: UInt64, vectorCount: Int) -> CommonWriteResult {
        guard let (field, part) = CommonField.access(offset: offset, width: width) else { return .ignored }
        let value32 = UInt32(truncatingIfNeeded: value)
        let selected = Int(virtio.queueSelect)
        func vector(_ value: UInt64) -> UInt16 {
            let requested = UInt16(truncatingIfNeeded: value)
            return Int(requested) < vectorCount ? requested : virtioMSINoVector
        }
        /// A 64-bit queue address: the whole of it, or one half.
        func address(_ low: VirtioDeviceState.QueueRegister, _ high: VirtioDeviceState.QueueRegister) -> Bool {
            switch part {
            case .whole:
                return virtio.writeQueueRegister(low, value32)
                    && virtio.writeQueueRegister(high, UInt32(truncatingIfNeeded: value >> 32))
            case .low: return virtio.writeQueueRegister(low, value32)
            case .high: return virtio.writeQueueRegister(high, value32)
            }
        }
        let accepted: Bool
        switch field {
        case .deviceFeatureSelect:
            virtio.deviceFeatureSelect = value32
            accepted = true
        case .driverFeatureSelect:
            virtio.driverFeatureSelect = value32
            accepted = true
        case .driverFeature: accepted = virtio.writeDriverFeatureWindow(value32)
        case .configMSIXVector:
            configVector = vector(value)
            accepted = true
        case .deviceStatus: return .status(UInt8(truncatingIfNeeded: value))
        case .queueSelect:
            virtio.queueSelect = UInt16(truncatingIfNeeded: value)
            accepted = true
        case .queueSize: accepted = virtio.writeQueueRegister(.size, value32)
        case .queueMSIXVector:
            guard queueVectors.indices.contains(selected) else { return .ignored }
            queueVectors[selected] = vector(value)
            accepted = true
        case .queueEnable: accepted = virtio.writeQueueRegister(.ready, value32)
        case .queueDescriptor: accepted = address(.descriptorLow, .descriptorHigh)
        case .queueDriver: accepted = address(.availableLow, .availableHigh)
        case .queueDevice: accepted = address(.usedLow, .usedHigh)
        case .deviceFeature, .numQueues, .configGeneration, .queueNotifyOff: accepted = false
        }
        return accepted ? .done : .ignored
    }
}
