// The virtio-pci modern transport (virtio 1.2 §4.1): any `VirtioDevice` as a PCI function.
//
// The driver finds the register blocks through vendor-specific capabilities (cfg_type common, notify, ISR,
// device) that point into BAR0 (layout in VirtioPCILayout), programs the device through the common
// configuration structure (CommonConfiguration.swift), kicks queues by writing their notify register, and gets
// interrupts by MSI-X, or by INTx and the ISR when MSI-X is off (TransportInterrupts.swift).
//
// Threads and locks:
// - configuration-space accesses come from vCPU threads with PCIRoot's configuration lock held; BAR accesses from
//   any vCPU thread with no lock held;
// - `queueNotified(index:)` comes from the VMM's event loop (an ioeventfd on the notify register fired), or from
//   a vCPU thread when a notify write exits to the VMM (no ioeventfd registered);
// - the device model signals interrupts from its worker, holding its own lock.
// `lifecycle` serializes device_status writes, which reset or activate the device model; `state` (inside
// TransportInterrupts) guards every register. Order: lifecycle → device → state → MSIXVectors → routing. The
// transport never holds `state` while calling into the device model, because the device calls back into
// `state` (to interrupt) with its own lock held.
//
// Not implemented: the PCI configuration access capability (VIRTIO_PCI_CAP_PCI_CFG, §4.1.4.9), a window onto the
// BARs through configuration space meant for firmware; Linux does not use it.

import Devices
import GuestMemory
import Logging
import Synchronization
import Virtio

public final class VirtioPCIDevice: PCIDevice {
    /// The device model behind the transport.
    public let device: any VirtioDevice
    public let queueCount: Int
    /// Where the MSI-X capability is (its table has `queueCount + 1` vectors: Linux gives vector 0 to
    /// configuration changes and one to each queue).
    public let msixCapability: MSIXCapability

    let memory: GuestMemory
    let interrupts: TransportInterrupts
    let lifecycle = Mutex(())
    private let logger: Logger
    /// Guest register accesses the transport refused, for rate-limited logging.
    private let refusedAccesses = Atomic<UInt64>(0)

    /// - Parameters:
    ///   - device: the device model; its type picks the PCI IDs and class.
    ///   - memory: guest RAM, where the driver puts the virtqueues.
    ///   - msixRouting: where MSI-X vectors go (the VMM: a KVM GSI route + irqfd per vector).
    ///   - intxLine: the function's INTx pin (INTA), wired to I/O APIC input `intxGSI` (see `PCIINTxRouting`,
    ///     which depends on the slot the function is attached at); nil for a function without INTx.
    public init(
        device: any VirtioDevice, memory: GuestMemory, msixRouting: any MSIXRouting,
        intxLine: (any InterruptLine)? = nil, intxGSI: UInt32 = 0,
        logger: Logger = Logger(label: "swiftlet.virtio-pci")
    ) {
        let queueCount = device.queueMaximumSizes.count
        precondition((1...VirtioPCILayout.maximumQueues).contains(queueCount),
                     "virtio-pci: \(queueCount) queues do not fit the layout")
        precondition(device.configurationSize <= Int(VirtioPCILayout.pageSize),
                     "virtio-pci: device configuration larger than a page")
        self.device = device
        self.queueCount = queueCount
        self.memory = memory
        self.logger = logger

        var configuration = PCIConfigurationSpace(identity: VirtioPCILayout.identity(for: device.deviceType))
        configuration.setBAR(VirtioPCILayout.barIndex, .memory64(size: VirtioPCILayout.barSize))
        let bar = UInt8(VirtioPCILayout.barIndex)
        configuration.addVirtioCapability(VirtioPCICapability(
            type: .common, bar: bar, offset: UInt32(VirtioPCILayout.commonOffset),
            length: UInt32(VirtioPCILayout.commonLength)))
        configuration.addVirtioCapability(VirtioPCICapability(
            type: .isr, bar: bar, offset: UInt32(VirtioPCILayout.isrOffset), length: UInt32(VirtioPCILayout.isrLength)))
        if device.configurationSize > 0 {
            configuration.addVirtioCapability(VirtioPCICapability(
                type: .device, bar: bar, offset: UInt32(VirtioPCILayout.deviceOffset),
                length: UInt32(device.configurationSize)))
        }
        configuration.addVirtioCapability(.notify(
            bar: bar, offset: UInt32(VirtioPCILayout.notifyOffset),
            length: UInt32(UInt64(queueCount) * VirtioPCILayout.notifyOffsetMultiplier),
            multiplier: UInt32(VirtioPCILayout.notifyOffsetMultiplier)))
        let vectorCount = queueCount + 1
        msixCapability = configuration.addMSIXCapability(
            vectorCount: vectorCount, tableBAR: VirtioPCILayout.barIndex, tableOffset: VirtioPCILayout.msixTableOffset,
            pbaBAR: VirtioPCILayout.barIndex, pbaOffset: VirtioPCILayout.msixPBAOffset)
        var intx: PCIINTxLine?
        if let intxLine {
            configuration.interruptPin = .intA
            configuration.interruptLine = UInt8(truncatingIfNeeded: intxGSI)
            intx = PCIINTxLine(intxLine)
        }

        let state = TransportState(
            virtio: VirtioDeviceState(deviceFeatures: device.deviceFeatures, queueMaximumSizes: device.queueMaximumSizes),
            configuration: configuration, intx: intx,
            queueVectors: Array(repeating: virtioMSINoVector, count: queueCount))
        interrupts = TransportInterrupts(
            state: state, msix: MSIXVectors(vectorCount: vectorCount, routing: msixRouting), logger: logger)
    }

    // MARK: - Placement and notifications (for the VMM)

    /// Places BAR0 in the layout's windows, as firmware would before the guest runs (Linux keeps the
    /// assignment). Call once before attaching; without it the BAR stays at 0 until the guest assigns it.
    public func placeBARs(using allocator: inout PCIBARAllocator) throws(PCIError) {
        var configuration = interrupts.state.withLock { $0.configuration }
        try allocator.place(&configuration)
        let placed = configuration
        interrupts.state.withLock { $0.configuration = placed }
    }

    /// Where queue `queue`'s notify register is: BAR index and offset. The VMM adds the BAR's current base
    /// (from `PCIRoot`'s BAR-change callback, or `notifyAddress(queue:)`) and registers an ioeventfd there
    /// without datamatch — each queue has its own address — and with length 0 (any access width; Linux writes
    /// the queue index with iowrite16, so length 2 works too), then calls `queueNotified(index:)` when it fires.
    /// When the BAR moves or stops decoding, move or drop the ioeventfds: a write that KVM does not catch exits
    /// to the VMM and reaches the device through `writeBAR` just the same, only slower.
    public func notifyRegion(queue: Int) -> (barIndex: Int, offset: UInt64) {
        precondition((0..<queueCount).contains(queue), "virtio-pci: no queue \(queue)")
        return (VirtioPCILayout.barIndex, VirtioPCILayout.notifyOffset(queue: queue))
    }

    /// The guest-physical address of queue `queue`'s notify register, or nil while BAR0 does not decode.
    public func notifyAddress(queue: Int) -> UInt64? {
        let region = notifyRegion(queue: queue)
        guard let bar = decodedBARs.first(where: { $0.index == region.barIndex }) else { return nil }
        return bar.base + region.offset
    }

    /// The driver notified queue `index` (an ioeventfd fired, or a notify write exited). Runs the device's
    /// queue processing on the calling thread.
    public func queueNotified(index: Int) {
        guard (0..<queueCount).contains(index) else { return }
        device.queueNotified(index: index)
    }

    /// The device status as the driver sees it (for diagnostics and tests).
    public var status: DeviceStatus { interrupts.state.withLock { $0.virtio.status } }

    // MARK: - PCIDevice: configuration space

    public func readConfiguration(offset: Int, width: Int) -> UInt32 {
        interrupts.state.withLock { $0.configuration.read(offset: offset, width: width) }
    }

    public func writeConfiguration(offset: Int, width: Int, value: UInt32) {
        interrupts.state.withLock { state in
            guard state.configuration.write(offset: offset, width: width, value: value) else { return }
            if msixCapability.isMessageControlWrite(offset: offset, width: width) {
                interrupts.msix.setMessageControl(msixCapability.messageControl(in: state.configuration))
            }
            // The OS may have toggled interrupt-disable or MSI-X enable.
            state.updateINTx(msixEnabled: interrupts.msix.isEnabled)
        }
    }

    public var decodedBARs: [PCIBARMapping] { interrupts.state.withLock { $0.configuration.decodedBARs } }

    // MARK: - PCIDevice: BAR0

    public func readBAR(_ index: Int, offset: UInt64, width: Int) -> UInt64 {
        guard index == VirtioPCILayout.barIndex, let region = VirtioPCILayout.region(at: offset) else {
            return refused("read", offset: offset, width: width)
        }
        switch region {
        case let .common(offset):
            return interrupts.state.withLock { $0.readCommon(offset: offset, width: width) }
        case let .isr(offset):
            guard offset == 0, width == 1 else { return refused("ISR read", offset: offset, width: width) }
            return UInt64(interrupts.state.withLock { $0.readAndClearISR(msixEnabled: interrupts.msix.isEnabled) })
        case let .device(offset):
            guard isDeviceConfigurationAccess(offset: offset, width: width) else {
                return refused("device config read", offset: offset, width: width)
            }
            return device.readConfiguration(offset: Int(offset), width: width)
        case .notify:
            // Notify registers are write-only (§4.1.4.4); reads return 0.
            return 0
        case let .msixTable(offset):
            guard offset < MSIXVectors.tableSize(vectorCount: msixCapability.vectorCount) else { return 0 }
            return interrupts.msix.readTable(offset: offset, width: width)
        case let .msixPBA(offset):
            guard offset < MSIXVectors.pbaSize(vectorCount: msixCapability.vectorCount) else { return 0 }
            return interrupts.msix.readPBA(offset: offset, width: width)
        }
    }

    public func writeBAR(_ index: Int, offset: UInt64, width: Int, value: UInt64) {
        guard index == VirtioPCILayout.barIndex, let region = VirtioPCILayout.region(at: offset) else {
            _ = refused("write", offset: offset, width: width)
            return
        }
        switch region {
        case let .common(offset):
            let vectors = msixCapability.vectorCount
            let result = interrupts.state.withLock {
                $0.writeCommon(offset: offset, width: width, value: value, vectorCount: vectors)
            }
            switch result {
            case .done: break
            case .ignored: _ = refused("common config write", offset: offset, width: width)
            case let .status(status): writeStatus(status)
            }
        case .isr:
            _ = refused("ISR write", offset: offset, width: width)
        case let .device(offset):
            guard isDeviceConfigurationAccess(offset: offset, width: width) else {
                _ = refused("device config write", offset: offset, width: width)
                return
            }
            device.writeConfiguration(offset: Int(offset), width: width, value: value)
        case let .notify(offset):
            // Queue i's register is at i * multiplier; the value written (the queue index, or with
            // NOTIFICATION_DATA more) does not matter since the address already names the queue.
            let queue = offset / VirtioPCILayout.notifyOffsetMultiplier
            guard offset % VirtioPCILayout.notifyOffsetMultiplier == 0, queue < UInt64(queueCount) else {
                _ = refused("notify write", offset: offset, width: width)
                return
            }
            queueNotified(index: Int(queue))
        case let .msixTable(offset):
            guard offset < MSIXVectors.tableSize(vectorCount: msixCapability.vectorCount) else { return }
            interrupts.msix.writeTable(offset: offset, width: width, value: value)
        case .msixPBA:
            // The PBA is read-only.
            break
        }
    }

    private func isDeviceConfigurationAccess(offset: UInt64, width: Int) -> Bool {
        [1, 2, 4, 8].contains(width) && offset + UInt64(width) <= UInt64(device.configurationSize)
    }

    /// Logs a guest access the transport does not accept (the first 10, then every 1000th) and answers 0.
    private func refused(_ what: String, offset: UInt64, width: Int) -> UInt64 {
        let count = refusedAccesses.wrappingAdd(1, ordering: .relaxed).newValue
        if count <= 10 || count % 1000 == 0 {
            logger.debug("virtio-pci: ignored \(what) of \(width) bytes at 0x\(String(offset, radix: 16)) (\(count) so far)")
        }
        return 0
    }

    // MARK: - Device status (§2.1, §3.1.1)

    /// A device_status write (§2.1, §3.1.1): decided under the state lock, carried out outside it
    /// (`StatusTransition`, shared with virtio-mmio).
    private func writeStatus(_ value: UInt8) {
        lifecycle.withLock { _ in
            let transition = interrupts.state.withLock { state in
                StatusTransition.decide(value, state: &state.virtio, memory: memory, transport: "virtio-pci",
                                        deviceType: device.deviceType, logger: logger)
            }
            transition.perform(on: device, memory: memory, interrupt: interrupts) {
                interrupts.state.withLock { $0.resetTransport(msixEnabled: interrupts.msix.isEnabled) }
            }
        }
    }
}
