import Devices
import GuestMemory
import KVM
import Logging
import Synchronization
import Virtio
import VirtioPCI

/// Virtio devices as PCI functions on bus 0: one virtio-rng, the virtio-console and the virtio-vsock if asked
/// for, the network interfaces, then the disks in order (so the guest names them vda, vdb, ... in `--disk`
/// order).
///
/// Each transport gets MSI-X vectors routed to KVM GSIs with irqfds (`KVMMSIRouter`), an INTx fallback line, its
/// BAR placed in the 32-bit window, and one ioeventfd per queue on its notify register: a guest's kick is then
/// an eventfd signal that the device event loop answers, off the vCPU threads. The ioeventfds follow the BAR:
/// they are registered when the guest enables memory decoding and moved if it relocates the BAR.
final class VirtioPlatform: Sendable {
    struct Transport: Sendable {
        let address: PCIAddress
        let device: VirtioPCIDevice
        let notifiers: [EventFD]
    }

    private let vm: VirtualMachine
    private let transports = Mutex<[PCIAddress: Transport]>([:])
    /// The notify addresses currently registered with KVM, per transport.
    private let registered = Mutex<[PCIAddress: UInt64]>([:])
    private let logger: Logger
    /// Socket files our listeners created (vsock, `--net socket=...,listen`), removed when the machine stops.
    let socketFiles = Mutex<[OwnedSocketFile]>([])
    /// Every virtio device with its transport, in attach order (snapshots).
    let handles = Mutex<[VirtioTransportHandle]>([])
    /// The devices attached, by control-plane id, for the machine's `DeviceRegistry`.
    let attached = Mutex<(drives: [DeviceRegistry.Drive], networkInterfaces: [DeviceRegistry.NetworkInterface], vsock: VsockDevice?)>(([], [], nil))

    init(vm: VirtualMachine, logger: Logger) {
        self.vm = vm
        self.logger = logger
    }

    /// Creates and attaches the devices. `root` must have been built with `barChanged` as its BAR callback.
    ///
    /// If a device cannot be created (a locked disk, a TAP that does not exist), the socket files the listeners
    /// made so far are removed before the error is thrown: nobody will ever accept on them, and a later attempt
    /// (the next run, or the API's next InstanceStart in this process) must not find them and take them for
    /// another VMM's.
    /// With `transport` mmio the devices become virtio-mmio windows on `mmio` instead (`VirtioMMIOPlatform`), in the
    /// same order.
    func attach(disks: [DiskConfiguration], networks: [NetworkConfiguration], console: ConsoleDevice?, vsock: VsockConfiguration?,
                transport: VirtioTransport, to root: PCIRoot, mmio: inout MMIOBus, memory: GuestMemory, router: KVMMSIRouter,
                loops: DeviceEventLoops) throws(MachineError) {
        do {
            let devices = try makeDevices(disks: disks, networks: networks, console: console, vsock: vsock, eventLoop: loops.shared)
            switch transport {
            case .pci: try attachPCI(devices, to: root, memory: memory, router: router, loops: loops)
            case .mmio:
                let transports = try VirtioMMIOPlatform.attach(devices, to: &mmio, vm: vm, memory: memory, loops: loops)
                handles.withLock { $0 = transports.map { .mmio($0) } }
            }
        } catch {
            removeSocketFiles()
            throw error
        }
    }

    /// Removes the socket files our listeners created (each only if it is still ours).
    func removeSocketFiles() {
        let files = socketFiles.withLock { files in
            defer { files = [] }
            return files
        }
        for file in files { file.remove() }
    }

    /// The device models, in the order the guest sees them: virtio-rng, virtio-console, vsock, networks, disks.
    private func makeDevices(disks: [DiskConfiguration], networks: [NetworkConfiguration], console: ConsoleDevice?, vsock: VsockConfiguration?,
                             eventLoop: DeviceEventLoop) throws(MachineError) -> [any VirtioDevice] {
        var devices: [any VirtioDevice] = [EntropyDevice(logger: Logger(label: "swiftlet.virtio.rng"))]
        if let console { devices.append(console) }
        if let vsock {
            let bridge = try VsockHostBridge(configuration: vsock, logger: Logger(label: "swiftlet.virtio-vsock"))
            bridge.attach(to: eventLoop)
            devices.append(bridge.device)
            attached.withLock { $0.vsock = bridge.device }
            if let file = bridge.socketFile { socketFiles.withLock { $0.append(file) } }
        }
        for (index, network) in networks.enumerated() {
            var networkSocketFiles: [OwnedSocketFile] = []
            let device = try NetworkPump.makeDevice(for: network, eventLoop: eventLoop, socketFiles: &networkSocketFiles)
            socketFiles.withLock { $0 += networkSocketFiles }
            devices.append(device)
            attached.withLock { $0.networkInterfaces.append(.init(id: network.registryID(position: index), device: device)) }
        }
        for (index, disk) in disks.enumerated() {
            do {
                let image = try RawDiskImage(path: disk.path, readOnly: disk.readOnly)
                let device = try BlockDevice(image: image, id: disk.id, readOnly: disk.readOnly)
                devices.append(device)
                attached.withLock { $0.drives.append(.init(id: disk.registryID(position: index), device: device)) }
            } catch {
                throw .configuration(.invalidDisk(disk.path, reason: "\(error)"))
            }
        }
        return devices
    }

    private func attachPCI(_ devices: [any VirtioDevice], to root: PCIRoot, memory: GuestMemory, router: KVMMSIRouter,
                           loops: DeviceEventLoops) throws(MachineError) {
        // Device numbers 1 to 31 on bus 0 (0 is the host bridge). `MachineConfiguration.validate` says so first,
        // with the breakdown; this keeps a configuration that skipped validation from trapping in PCIAddress.
        guard devices.count <= MachineConfiguration.maximumVirtioDevices else {
            throw .configuration(.tooManyDevices(devices.count, maximum: MachineConfiguration.maximumVirtioDevices,
                                                 reason: "one PCI device each on bus 0"))
        }
        var allocator = PCIBARAllocator(layout: root.layout)
        for (index, device) in devices.enumerated() {
            let address = PCIAddress(device: UInt8(index + 1))
            let gsi = root.layout.intxRouting.gsi(device: address.device, pin: .intA)
            do {
                let routing = try router.makeRouting(vectorCount: device.queueMaximumSizes.count + 1)
                let transport = VirtioPCIDevice(device: device, memory: memory, msixRouting: routing,
                                                intxLine: KVMInterruptLine(vm: vm, gsi: gsi), intxGSI: gsi)
                try transport.placeBARs(using: &allocator)
                var notifiers: [EventFD] = []
                let eventLoop = try loops.loop(for: device)
                for queue in 0..<transport.queueCount {
                    let notifier = try EventFD()
                    eventLoop.add(notifier) { transport.queueNotified(index: queue) }
                    notifiers.append(notifier)
                }
                transports.withLock { $0[address] = Transport(address: address, device: transport, notifiers: notifiers) }
                handles.withLock { $0.append(.pci(transport, address)) }
                try root.attach(transport, at: address)
            } catch {
                throw .device("virtio \(device.deviceType) at \(address): \(error)")
            }
        }
    }

    /// The guest-physical notify address of each queue of `transport` when its BAR is at `base`.
    func notifyAddresses(of transport: Transport, base: UInt64) -> [UInt64] {
        (0..<transport.notifiers.count).map { base + transport.device.notifyRegion(queue: $0).offset }
    }

    /// The transport at `address`, if any (tests).
    func transport(at address: PCIAddress) -> Transport? { transports.withLock { $0[address] } }

    /// PCIRoot's BAR-change callback (vCPU thread, configuration lock held: no config accesses here).
    func barChanged(_ change: PCIBARChange) {
        guard change.index == VirtioPCILayout.barIndex, let transport = transports.withLock({ $0[change.device] }) else { return }
        registered.withLock { registered in
            if let old = registered[change.device] {
                for (queue, notifier) in transport.notifiers.enumerated() {
                    try? vm.unregisterIOEventFD(notifier, at: .mmio(GuestAddress(old + transport.device.notifyRegion(queue: queue).offset)), length: 0)
                }
                registered[change.device] = nil
            }
            guard let base = change.new?.base else { return }
            let addresses = notifyAddresses(of: transport, base: base)
            var done: [(EventFD, UInt64)] = []
            do {
                for (notifier, address) in zip(transport.notifiers, addresses) {
                    try vm.registerIOEventFD(notifier, at: .mmio(GuestAddress(address)), length: 0)
                    done.append((notifier, address))
                }
                registered[change.device] = base
            } catch {
                // All or none: a half-registered set would leave KVM answering some notify addresses with eventfds
                // nobody expects there, and the next BAR move would not know to remove them. Without ioeventfds
                // the notify writes exit to the VMM and still reach the device (slower).
                for (notifier, address) in done {
                    try? vm.unregisterIOEventFD(notifier, at: .mmio(GuestAddress(address)), length: 0)
                }
                logger.warning("could not register queue notifications for \(change.device): \(error)")
            }
        }
    }
}
