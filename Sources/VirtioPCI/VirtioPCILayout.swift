// Where a virtio-pci function keeps its registers (virtio 1.2 §4.1.4). The spec lets a device put each structure
// in any BAR at any offset, described by a vendor-specific capability; we put all of them in one 64-bit memory
// BAR, each on its own 4 KiB page so that KVM can trap (or back with an ioeventfd) each page alone:
//
//     BAR0 + 0x0000  common configuration   struct virtio_pci_common_cfg, 0x38 bytes (§4.1.4.3)
//     BAR0 + 0x1000  ISR status             1 byte, read-to-clear (§4.1.4.5)
//     BAR0 + 0x2000  device configuration   the device's own config space (§4.1.4.6), if it has one
//     BAR0 + 0x3000  notifications          queue i at 0x3000 + 4 * i: queue_notify_off = i, multiplier 4 (§4.1.4.4)
//     BAR0 + 0x4000  MSI-X table            16 bytes per vector (PCI 3.0 §6.8.2)
//     BAR0 + 0x5000  MSI-X PBA              one qword per 64 vectors
//
// A notify multiplier of 4 gives every queue its own dword, so one ioeventfd per queue matches one address
// (Linux writes the queue index as a 16-bit value there, vp_notify → iowrite16).
//
// Identification (§4.1.2): vendor 0x1AF4, device 0x1040 + the virtio device ID (a "modern", non-transitional
// device: legacy drivers bind only 0x1000-0x103F), revision 1. The subsystem IDs repeat vendor and device type,
// as QEMU does; drivers bind on the device ID alone.

import Devices
import Virtio

public enum VirtioPCILayout {
    /// The BAR holding every structure.
    public static let barIndex = 0
    public static let barSize: UInt64 = 0x8000

    public static let commonOffset: UInt64 = 0x0000
    /// sizeof(struct virtio_pci_common_cfg) in virtio 1.0/1.1: through queue_device. The 1.2 additions
    /// (queue_notify_data, queue_reset) belong to features we do not offer and read as 0.
    public static let commonLength: UInt64 = 0x38
    public static let isrOffset: UInt64 = 0x1000
    public static let isrLength: UInt64 = 1
    public static let deviceOffset: UInt64 = 0x2000
    public static let notifyOffset: UInt64 = 0x3000
    public static let notifyOffsetMultiplier: UInt64 = 4
    public static let msixTableOffset: UInt64 = 0x4000
    public static let msixPBAOffset: UInt64 = 0x5000
    /// Each structure has one 4 KiB page.
    static let pageSize: UInt64 = 0x1000

    /// The most queues the layout holds: queues + 1 MSI-X vectors must fit the table's page.
    public static let maximumQueues = Int(pageSize / MSIXVectors.entrySize) - 1

    /// Where queue `queue`'s notification register is, relative to the BAR.
    public static func notifyOffset(queue: Int) -> UInt64 {
        notifyOffset + UInt64(queue) * notifyOffsetMultiplier
    }

    /// The PCI identity of a virtio device of `type` (§4.1.2.1).
    public static func identity(for type: VirtioDeviceType) -> PCIIdentity {
        PCIIdentity(
            vendorID: 0x1AF4, deviceID: UInt16(truncatingIfNeeded: 0x1040 + type.rawValue), revisionID: 1,
            classCode: classCode(for: type), subsystemVendorID: 0x1AF4,
            subsystemID: UInt16(truncatingIfNeeded: type.rawValue))
    }

    /// Class codes as QEMU gives its virtio devices; Linux binds virtio by ID, so this is what `lspci` shows.
    static func classCode(for type: VirtioDeviceType) -> PCIClassCode {
        switch type {
        case .block: return PCIClassCode(baseClass: 0x01, subclass: 0x80)  // mass storage, other
        case .network: return .networkEthernet
        case .console: return .communicationOther
        default: return PCIClassCode(baseClass: 0xFF, subclass: 0x00)  // device does not fit any class
        }
    }

    /// The structure an offset in the BAR falls in, and the offset inside it.
    enum Region: Equatable {
        case common(UInt64)
        case isr(UInt64)
        case device(UInt64)
        case notify(UInt64)
        case msixTable(UInt64)
        case msixPBA(UInt64)
    }

    static func region(at offset: UInt64) -> Region? {
        let inPage = offset % pageSize
        switch offset / pageSize {
        case 0: return .common(inPage)
        case 1: return .isr(inPage)
        case 2: return .device(inPage)
        case 3: return .notify(inPage)
        case 4: return .msixTable(inPage)
        case 5: return .msixPBA(inPage)
        default: return nil
        }
    }
}
