// The guest's side of a virtio-pci function, played as Linux's virtio_pci_modern driver does it: only
// configuration-space accesses and BAR accesses, nothing reached through the transport's Swift API.

#if canImport(Glibc)
    import Glibc
#endif
import Devices
import GuestMemory
import Synchronization
import Virtio

@testable import VirtioPCI

/// MSI-X routing that records what the function asked the VMM to do.
final class RecordingRouting: MSIXRouting {
    private let log = Mutex<(routes: [(Int, MSIMessage?)], deliveries: [(Int, MSIMessage)])>(([], []))

    func routeChanged(vector: Int, message: MSIMessage?) { log.withLock { $0.routes.append((vector, message)) } }
    func deliver(vector: Int, message: MSIMessage) { log.withLock { $0.deliveries.append((vector, message)) } }

    var deliveredVectors: [Int] { log.withLock { $0.deliveries.map(\.0) } }
    var deliveredMessages: [MSIMessage] { log.withLock { $0.deliveries.map(\.1) } }
    func forget() { log.withLock { $0 = ([], []) } }
}

/// An INTx pin that remembers its level.
final class RecordingLine: InterruptLine {
    private let levels = Mutex<[Bool]>([])
    func setLevel(_ asserted: Bool) { levels.withLock { $0.append(asserted) } }
    var isAsserted: Bool { levels.withLock { $0.last ?? false } }
    var history: [Bool] { levels.withLock { $0 } }
}

/// A virtio-pci structure as a capability describes it (`struct virtio_pci_cap`).
struct FoundCapability: Equatable {
    var configOffset: Int
    var bar: Int
    var offset: UInt64
    var length: UInt32
    var notifyMultiplier: UInt32?
}

/// Drives a `PCIDevice` the way the guest kernel does.
struct PCIDriver {
    let function: any PCIDevice

    // Common configuration offsets (struct virtio_pci_common_cfg).
    static let deviceFeatureSelect: UInt64 = 0x00, deviceFeature: UInt64 = 0x04
    static let driverFeatureSelect: UInt64 = 0x08, driverFeature: UInt64 = 0x0C
    static let configMSIXVector: UInt64 = 0x10, numQueues: UInt64 = 0x12
    static let deviceStatus: UInt64 = 0x14, configGeneration: UInt64 = 0x15
    static let queueSelect: UInt64 = 0x16, queueSize: UInt64 = 0x18
    static let queueMSIXVector: UInt64 = 0x1A, queueEnable: UInt64 = 0x1C
    static let queueNotifyOff: UInt64 = 0x1E, queueDesc: UInt64 = 0x20
    static let queueDriver: UInt64 = 0x28, queueDevice: UInt64 = 0x30

    var common: FoundCapability!
    var isr: FoundCapability!
    var device: FoundCapability?
    var notify: FoundCapability!
    var msixOffset: Int!

    init(_ function: any PCIDevice) { self.function = function }

    // MARK: Configuration space

    func config(_ offset: Int, _ width: Int) -> UInt32 { function.readConfiguration(offset: offset, width: width) }
    func setConfig(_ offset: Int, _ width: Int, _ value: UInt32) {
        function.writeConfiguration(offset: offset, width: width, value: value)
    }

    /// Walks the capability list from 0x34 as pci_find_capability / virtio_pci_find_capability do.
    mutating func findCapabilities() {
        var offset = Int(config(0x34, 1)) & ~3
        var seen = 0
        while offset != 0, seen < 48 {
            let id = config(offset, 1)
            if id == 0x09 {
                let found = FoundCapability(
                    configOffset: offset, bar: Int(config(offset + 4, 1)), offset: UInt64(config(offset + 8, 4)),
                    length: config(offset + 12, 4), notifyMultiplier: nil)
                switch config(offset + 3, 1) {
                case 1: common = found
                case 2:
                    notify = found
                    notify.notifyMultiplier = config(offset + 16, 4)
                case 3: isr = found
                case 4: device = found
                default: break
                }
            } else if id == 0x11 {
                msixOffset = offset
            }
            offset = Int(config(offset + 1, 1)) & ~3
            seen += 1
        }
    }

    /// pci_enable_device + pci_set_master: memory decoding and bus mastering (DMA, MSI-X writes) on.
    func enable() { setConfig(0x04, 2, UInt32(PCICommand.memorySpace | PCICommand.busMaster)) }

    /// pci_alloc_irq_vectors(PCI_IRQ_MSIX): the enable bit in message control.
    func enableMSIX() { setConfig(msixOffset + 2, 2, UInt32(MSIXControl.enable)) }

    /// Programs MSI-X table entry `vector` (BAR given by the capability's BIR) and unmasks it.
    func programVector(_ vector: Int, address: UInt64, data: UInt32) {
        let table = config(msixOffset + 4, 4)
        let bar = Int(table & 7)
        let base = UInt64(table & ~7) + UInt64(vector) * 16
        function.writeBAR(bar, offset: base, width: 4, value: address & 0xFFFF_FFFF)
        function.writeBAR(bar, offset: base + 4, width: 4, value: address >> 32)
        function.writeBAR(bar, offset: base + 8, width: 4, value: UInt64(data))
        function.writeBAR(bar, offset: base + 12, width: 4, value: 0)
    }

    // MARK: Register blocks in BARs

    func read(_ cap: FoundCapability, _ offset: UInt64, _ width: Int) -> UInt64 {
        function.readBAR(cap.bar, offset: cap.offset + offset, width: width)
    }
    func write(_ cap: FoundCapability, _ offset: UInt64, _ width: Int, _ value: UInt64) {
        function.writeBAR(cap.bar, offset: cap.offset + offset, width: width, value: value)
    }

    func status() -> UInt8 { UInt8(read(common, Self.deviceStatus, 1)) }
    func setStatus(_ status: DeviceStatus) { write(common, Self.deviceStatus, 1, UInt64(status.rawValue)) }

    /// Both 32-bit halves of device_feature.
    func deviceFeatures() -> UInt64 {
        write(common, Self.deviceFeatureSelect, 4, 0)
        let low = read(common, Self.deviceFeature, 4)
        write(common, Self.deviceFeatureSelect, 4, 1)
        return read(common, Self.deviceFeature, 4) << 32 | low
    }

    func setDriverFeatures(_ features: UInt64) {
        write(common, Self.driverFeatureSelect, 4, 0)
        write(common, Self.driverFeature, 4, features & 0xFFFF_FFFF)
        write(common, Self.driverFeatureSelect, 4, 1)
        write(common, Self.driverFeature, 4, features >> 32)
    }

    /// vp_modern_queue_address: each 64-bit address as two 32-bit writes, low half first.
    func writeAddress(_ field: UInt64, _ address: GuestAddress) {
        write(common, field, 4, address.rawValue & 0xFFFF_FFFF)
        write(common, field + 4, 4, address.rawValue >> 32)
    }

    /// Linux's probe up to FEATURES_OK: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK. Returns the status.
    func negotiate(_ features: UInt64) -> UInt8 {
        setStatus([])
        setStatus([.acknowledge])
        setStatus([.acknowledge, .driver])
        setDriverFeatures(features)
        setStatus([.acknowledge, .driver, .featuresOK])
        return status()
    }

    /// setup_vq for queue `index` at the TestDriver's ring addresses, with MSI-X vector `vector`; the queue
    /// is enabled as vp_modern_find_vqs does. Returns the vector the device read back.
    func setUpQueue(_ index: UInt16, size: UInt16, vector: UInt16) -> UInt16 {
        write(common, Self.queueSelect, 2, UInt64(index))
        write(common, Self.queueSize, 2, UInt64(size))
        writeAddress(Self.queueDesc, TestDriver.descriptorTableAddress)
        writeAddress(Self.queueDriver, TestDriver.availableRingAddress)
        writeAddress(Self.queueDevice, TestDriver.usedRingAddress)
        write(common, Self.queueMSIXVector, 2, UInt64(vector))
        let readBack = UInt16(read(common, Self.queueMSIXVector, 2))
        write(common, Self.queueEnable, 2, 1)
        return readBack
    }

    /// vp_notify: the queue index written as 16 bits to notify base + queue_notify_off * multiplier.
    func kick(_ queue: UInt16) {
        write(common, Self.queueSelect, 2, UInt64(queue))
        let off = read(common, Self.queueNotifyOff, 2)
        write(notify, off * UInt64(notify.notifyMultiplier!), 2, UInt64(queue))
    }

    func readISR() -> UInt8 { UInt8(read(isr, 0, 1)) }
}
