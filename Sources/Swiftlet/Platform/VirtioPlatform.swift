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
    /// The devices attached, by control-plane id, for the machine's `DeviceRegistry`.
    let attached = Mutex<(drives: [DeviceRegistry.Drive], networkInterfaces: [DeviceRegistry.NetworkInterface], vsock: VsockDevice?)>(([], [], nil))

    init(vm: VirtualMachine, logger: Logger) {
        self.vm = vm
        self.logger = logger
    }

    /// Creates and attaches the devices. `root` must have been built with `barChanged` as its BAR callback.
    func attach(disks: [DiskConfiguration], networks: [NetworkConfiguration], console: ConsoleDevice?, vsock: VsockConfiguration?,
                to root: PCIRoot, memory: GuestMemory, router: KVMMSIRouter, eventLoop: DeviceEventLoop) throws(MachineError) {
        var devices: [any VirtioDevice] = [EntropyDevice(logger: Logger(label: "swiftlet.virtio.rng"))]
        if let console { devices.append(console) }
        if let vsock {
            let bridge = try VsockHostBridge(configuration: vsock, logger: Logger(label: "swiftlet.virtio-vsock"))
            bridge.attach(to: eventLoop)
            devices.append(bridge.device)
            attached.withLock { $0.vsock = bridge.device }
            if let file = bridge.socketFile { socketFiles.withLock { $0.append(file) } }
        }
        var networkSocketFiles: [OwnedSocketFile] = []
        for (index, network) in networks.enumerated() {
            let device = try NetworkPump.makeDevice(for: network, eventLoop: eventLoop, socketFiles: &networkSocketFiles)
            devices.append(device)
            attached.withLock { $0.networkInterfaces.append(.init(id: network.id ?? "net\(index)", device: device)) }
        }
        socketFiles.withLock { $0 += networkSocketFiles }
        for (index, disk) in disks.enumerated() {
            do {
                let image = try RawDiskImage(path: disk.path, readOnly: disk.readOnly)
                let device = try BlockDevice(image: image, id: disk.id, readOnly: disk.readOnly)
                devices.append(device)
                attached.withLock { $0.drives.append(.init(id: disk.id ?? "drive\(index)", device: device)) }
            } catch {
                throw .configuration(.invalidDisk(disk.path, reason: "\(error)"))
            }
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
                for queue in 0..<transport.queueCount {
                    let notifier = try EventFD()
                    eventLoop.add(notifier) { transport.queueNotified(index: queue) }
                    notifiers.append(notifier)
                }
                transports.withLock { $0[address] = Transport(address: address, device: transport, notifiers: notifiers) }
                try root.attach(transport, at: address)
            } catch {
                throw .device("virtio \(device.deviceType) at \(address): \(error)")
            }
        }
    }

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
            do {
                for (queue, notifier) in transport.notifiers.enumerated() {
                    let address = base + transport.device.notifyRegion(queue: queue).offset
                    try vm.registerIOEventFD(notifier, at: .mmio(GuestAddress(address)), length: 0)
                }
                registered[change.device] = base
            } catch {
                // Without ioeventfds the notify writes exit to the VMM and still reach the device (slower).
                logger.warning("could not register queue notifications for \(change.device): \(error)")
            }
        }
    }
}
