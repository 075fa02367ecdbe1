// The virtio-mmio transport (virtio 1.2 §4.2, version 2 registers only): any `VirtioDevice` as a 4 KiB MMIO window
// with one interrupt line. The register block is in VirtioMMIORegister.swift, the interrupt line and
// InterruptStatus in MMIOInterrupts.swift; the device status machine and queue registers are the core's
// (`VirtioDeviceState`, `StatusTransition`), shared with virtio-pci.
//
// The driver finds the window on the kernel command line (`virtio_mmio.device=4K@0x...:GSI`) or in the DSDT
// (`LNRO0005`); the VMM places it and says so in both (Swiftlet's VirtioMMIOPlatform).
//
// Threads and locks:
// - register accesses come from any vCPU thread with no lock held;
// - `queueNotified(index:)` comes from the VMM's event loop (the ioeventfd on QueueNotify matching that queue
//   fired), or from a vCPU thread when a QueueNotify write exits to the VMM (no ioeventfd, or no match);
// - the device model signals interrupts from its worker, holding its own lock.
// `lifecycle` serialises Status writes, which reset or activate the device model; `state` (inside MMIOInterrupts)
// guards every register. Order: lifecycle → device → state → line. The transport never holds `state` while
// calling into the device model, because the device calls back into `state` (to interrupt) with its own lock held.
//
// Everything the guest writes is untrusted: widths and offsets are checked here, queue sizes and ring addresses
// when the driver sets DRIVER_OK (`Queue.init`, a failure sets DEVICE_NEEDS_RESET), queue and feature selectors
// clamp to "nothing there".

import Devices
import GuestMemory
import Logging
import Synchronization
import Virtio

public final class VirtioMMIODevice: BusDevice {
    /// The device model behind the transport.
    public let device: any VirtioDevice
    public let queueCount: Int

    let memory: GuestMemory
    let interrupts: MMIOInterrupts
    let lifecycle = Mutex(())
    private let logger: Logger
    /// Guest register accesses the transport refused, for rate-limited logging.
    private let refusedAccesses = Atomic<UInt64>(0)

    /// - Parameters:
    ///   - device: the device model; its type is the DeviceID register.
    ///   - memory: guest RAM, where the driver puts the virtqueues.
    ///   - interruptLine: the device's interrupt line (the VMM: an I/O APIC input).
    public init(device: any VirtioDevice, memory: GuestMemory, interruptLine: any InterruptLine,
                logger: Logger = Logger(label: "swiftlet.virtio-mmio")) {
        let queueCount = device.queueMaximumSizes.count
        precondition(queueCount >= 1, "virtio-mmio: a device needs a queue")
        precondition(device.configurationSize <= VirtioMMIOLayout.maximumConfigurationSize,
                     "virtio-mmio: device configuration larger than the window")
        self.device = device
        self.queueCount = queueCount
        self.memory = memory
        self.logger = logger
        let virtio = VirtioDeviceState(deviceFeatures: device.deviceFeatures, queueMaximumSizes: device.queueMaximumSizes)
        interrupts = MMIOInterrupts(state: MMIOTransportState(virtio: virtio, line: interruptLine), logger: logger)
    }

    /// The driver notified queue `index` (an ioeventfd fired, or a QueueNotify write exited). Runs the device's
    /// queue processing on the calling thread.
    public func queueNotified(index: Int) {
        guard (0..<queueCount).contains(index) else { return }
        device.queueNotified(index: index)
    }

    /// The device status as the driver sees it (for diagnostics and tests).
    public var status: DeviceStatus { interrupts.state.withLock { $0.virtio.status } }

    /// InterruptStatus as the driver would read it (for diagnostics and tests).
    public var interruptStatus: UInt32 { interrupts.state.withLock { $0.interruptStatus } }

    // MARK: - BusDevice

    public func read(offset: UInt64, width: Int) -> UInt64 {
        if offset >= VirtioMMIOLayout.configurationOffset {
            let configurationOffset = offset - VirtioMMIOLayout.configurationOffset
            guard isDeviceConfigurationAccess(offset: configurationOffset, width: width) else {
                return refused("config read", offset: offset, width: width)
            }
            return device.readConfiguration(offset: Int(configurationOffset), width: width)
        }
        guard let register = VirtioMMIORegister.at(offset: offset, width: width) else {
            return refused("read", offset: offset, width: width)
        }
        let value: UInt32 = interrupts.state.withLock { state in
            switch register {
            case .magicValue: return VirtioMMIOLayout.magicValue
            case .version: return VirtioMMIOLayout.version
            case .deviceID: return device.deviceType.rawValue
            case .vendorID: return VirtioMMIOLayout.vendorID
            case .deviceFeatures: return state.virtio.deviceFeatureWindow
            case .queueNumMax: return UInt32(state.virtio.selectedQueue?.maximumSize ?? 0)
            case .queueReady: return state.virtio.readQueueRegister(.ready)
            case .interruptStatus: return state.interruptStatus
            case .status: return UInt32(state.virtio.status.rawValue)
            case .shmLenLow, .shmLenHigh, .shmBaseLow, .shmBaseHigh: return VirtioMMIOLayout.noSharedMemory
            case .configGeneration: return state.virtio.configurationGeneration
            // VIRTIO_F_RING_RESET is not offered: the register reads 0 (§4.2.2).
            case .queueReset: return 0
            // Write-only registers read as 0.
            case .deviceFeaturesSel, .driverFeatures, .driverFeaturesSel, .queueSel, .queueNum, .queueNotify,
                 .interruptACK, .queueDescLow, .queueDescHigh, .queueDriverLow, .queueDriverHigh, .queueDeviceLow,
                 .queueDeviceHigh, .shmSel:
                return 0
            }
        }
        return UInt64(value)
    }

    public func write(offset: UInt64, width: Int, value: UInt64) {
        if offset >= VirtioMMIOLayout.configurationOffset {
            let configurationOffset = offset - VirtioMMIOLayout.configurationOffset
            guard isDeviceConfigurationAccess(offset: configurationOffset, width: width) else {
                _ = refused("config write", offset: offset, width: width)
                return
            }
            device.writeConfiguration(offset: Int(configurationOffset), width: width, value: value)
            return
        }
        guard let register = VirtioMMIORegister.at(offset: offset, width: width) else {
            _ = refused("write", offset: offset, width: width)
            return
        }
        let value32 = UInt32(truncatingIfNeeded: value)
        switch register {
        case .queueNotify:
            // The value is the queue index (no VIRTIO_F_NOTIFICATION_DATA offered). An index with no queue is
            // refused; one before DRIVER_OK finds the device idle and is dropped by it.
            guard value32 < UInt32(queueCount) else {
                _ = refused("QueueNotify of queue \(value32)", offset: offset, width: width)
                return
            }
            queueNotified(index: Int(value32))
        case .status:
            guard let status = UInt8(exactly: value32) else {
                _ = refused("Status write of 0x\(String(value32, radix: 16))", offset: offset, width: width)
                return
            }
            writeStatus(status)
        default:
            let accepted = interrupts.state.withLock { state in
                Self.writeRegister(register, value32, to: &state)
            }
            if !accepted { _ = refused("\(register) write of 0x\(String(value32, radix: 16))", offset: offset, width: width) }
        }
    }

    /// A write to any register except QueueNotify and Status; false when it was ignored.
    private static func writeRegister(_ register: VirtioMMIORegister, _ value: UInt32, to state: inout MMIOTransportState) -> Bool {
        switch register {
        case .deviceFeaturesSel:
            state.virtio.deviceFeatureSelect = value
            return true
        case .driverFeaturesSel:
            state.virtio.driverFeatureSelect = value
            return true
        case .driverFeatures:
            return state.virtio.writeDriverFeatureWindow(value)
        case .queueSel:
            // A selector past 65535 names no queue, as 65535 does not either (at most VirtioPCILayout's few).
            state.virtio.queueSelect = UInt16(exactly: value) ?? .max
            return true
        case .queueNum:
            // Kept as written; `Queue.init` judges it (power of two, at most QueueNumMax) at DRIVER_OK.
            guard value <= UInt32(UInt16.max) else { return false }
            return state.virtio.writeQueueRegister(.size, value)
        case .queueReady:
            // Writing 0 to a queue that is not ready is what Linux's vm_del_vq does on its error path: nothing to do.
            return state.virtio.writeQueueRegister(.ready, value) || value == 0
        case .queueDescLow: return state.virtio.writeQueueRegister(.descriptorLow, value)
        case .queueDescHigh: return state.virtio.writeQueueRegister(.descriptorHigh, value)
        case .queueDriverLow: return state.virtio.writeQueueRegister(.availableLow, value)
        case .queueDriverHigh: return state.virtio.writeQueueRegister(.availableHigh, value)
        case .queueDeviceLow: return state.virtio.writeQueueRegister(.usedLow, value)
        case .queueDeviceHigh: return state.virtio.writeQueueRegister(.usedHigh, value)
        case .interruptACK:
            guard value & ~VirtioMMIOLayout.interruptBits == 0 else { return false }
            state.acknowledge(value)
            return true
        case .shmSel:
            // Any region: none exists, and the length/base registers say so whatever is selected.
            return true
        case .magicValue, .version, .deviceID, .vendorID, .deviceFeatures, .queueNumMax, .interruptStatus,
             .shmLenLow, .shmLenHigh, .shmBaseLow, .shmBaseHigh, .configGeneration, .queueReset, .queueNotify, .status:
            return false
        }
    }

    private func isDeviceConfigurationAccess(offset: UInt64, width: Int) -> Bool {
        [1, 2, 4, 8].contains(width) && offset + UInt64(width) <= UInt64(device.configurationSize)
    }

    /// Logs a guest access the transport does not accept (the first 10, then every 1000th) and answers 0.
    private func refused(_ what: String, offset: UInt64, width: Int) -> UInt64 {
        let count = refusedAccesses.wrappingAdd(1, ordering: .relaxed).newValue
        if count <= 10 || count % 1000 == 0 {
            logger.debug("virtio-mmio \(device.deviceType): ignored \(what) of \(width) bytes at 0x\(String(offset, radix: 16)) (\(count) so far)")
        }
        return 0
    }

    /// Accesses refused so far (for tests and diagnostics).
    public var refusedAccessCount: UInt64 { refusedAccesses.load(ordering: .relaxed) }

    // MARK: - Status (§2.1, §3.1.1)

    private func writeStatus(_ value: UInt8) {
        lifecycle.withLock { _ in
            let transition = interrupts.state.withLock { state in
                StatusTransition.decide(value, state: &state.virtio, memory: memory, transport: "virtio-mmio",
                                        deviceType: device.deviceType, logger: logger)
            }
            transition.perform(on: device, memory: memory, interrupt: interrupts) {
                interrupts.state.withLock { $0.clearInterrupts() }
            }
        }
    }
}
