import ACPI
import Boot
import CHost
import Devices
import GuestMemory
import KVM
import Logging
import SystemPackage
import Virtio
#if canImport(Glibc)
import Glibc
#endif

/// One guest: KVM objects, guest RAM, devices and vCPUs, built from a `MachineConfiguration`.
///
/// Build with `init` (nothing runs yet: the machine is `.stopped`), then either `run()`, which starts it and
/// blocks until it stops (the CLI), or drive it with `start()`, `pause()`, `resume()`, `requestStop()` and
/// `stop()` from any thread (the API; Machine+Lifecycle.swift). Threads: one per vCPU (KVM_RUN and exit
/// dispatch), the device event loop, one reading the console input, and a supervisor that tears the machine
/// down once a stop reason is set.
public final class Machine: Sendable {
    public let configuration: MachineConfiguration
    /// What the loader did, in words ("bzImage, protocol 2.15, payload lz4 unpacked in the host, ...").
    public let bootLog: [String]
    public let timeline: BootTimeline

    let vm: VirtualMachine
    let memory: GuestMemory
    let vcpus: [VCPU]
    let portBus: PortIOBus
    let mmioBus: MMIOBus
    let serial: Serial8250
    /// The guest's console output on its way to `consoleOutput` (started and drained by the lifecycle).
    let consoleOutput: ConsoleOutput
    let virtioConsole: ConsoleDevice?
    /// The PCI root bus (a restore asks it to re-read the functions' BARs).
    let pciRoot: PCIRoot
    /// The virtio devices with their transports, in attach order (snapshots).
    let virtioTransports: [VirtioTransportHandle]
    /// Socket files our listeners created (vsock, `--net socket=...,listen`): removed once the machine stops, as
    /// the CLI exits without tearing the machine down.
    let socketFiles: [OwnedSocketFile]
    let stopController: StopController
    let deviceLoops: DeviceEventLoops
    let logger: Logger
    /// The VM Generation ID (Linux guests booted by this version, and their snapshots): a new ID on every restore.
    let vmGenerationID: VMGenerationID?
    /// Devices reachable after boot by their control-plane ids (Ctrl-Alt-Del, drive updates, metrics).
    public let devices: DeviceRegistry
    /// Where the machine's counters are reported (Firecracker's metrics; the process-wide registry by default).
    public let metrics: MetricsRegistry
    /// Where vCPUs park while paused.
    let gate: PauseGate
    /// The lifecycle's state and threads (Machine+Lifecycle.swift).
    let lifecycle: LifecycleBox

    /// Guest-physical pages KVM needs for its own use on Intel hosts; they sit just below the IOAPIC, in the
    /// MMIO hole where no RAM or device is.
    static let identityMapAddress = GuestAddress(0xFEFF_C000)
    static let tssAddress = GuestAddress(0xFEFF_D000)

    public convenience init(configuration: MachineConfiguration, timeline: BootTimeline = BootTimeline(), logger: Logger = Logger(label: "swiftlet"),
                            consoleOutput: Int32 = STDOUT_FILENO, metrics: MetricsRegistry = .shared) throws(MachineError) {
        try self.init(configuration: configuration, timeline: timeline, logger: logger, consoleOutput: consoleOutput, metrics: metrics,
                      restoring: nil)
    }

    /// Builds a machine, booting its payload or, with `restoring`, from a snapshot: then guest RAM is the
    /// snapshot's memory file mapped copy-on-write, the payload is not read, and the vCPUs get no boot state
    /// (`Machine(restoringFrom:)` gives them the saved state once this returns).
    init(configuration: MachineConfiguration, timeline: BootTimeline, logger: Logger, consoleOutput: Int32, metrics: MetricsRegistry,
         restoring snapshot: RestoredSnapshot?) throws(MachineError) {
        if snapshot == nil {
            do { try configuration.validate() } catch { throw .configuration(error) }
        }
        self.configuration = configuration
        self.timeline = timeline
        self.logger = logger
        self.metrics = metrics

        // Read and check the payload before any KVM object exists: a wrong file is a configuration error.
        let payload = snapshot == nil ? try PayloadImage.read(configuration.payload) : nil
        guard configuration.disks.isEmpty || (payload?.wantsInKernelIRQChip ?? true) else {
            throw .configuration(.invalidDisk(configuration.disks[0].path, reason: "disks need a Linux guest (raw images have no interrupt controller)"))
        }
        let usesInKernelIRQChip = snapshot?.inKernelIRQChip ?? payload?.wantsInKernelIRQChip ?? false

        let stopController: StopController
        do {
            let kvm = try KVMSystem()
            try kvm.require(KVMCapability.required)
            let vm = try kvm.createVM()
            let maxVCPUs = Int(vm.checkExtension(KVMCapability.maxVCPUs))
            if maxVCPUs > 0, configuration.vcpuCount > maxVCPUs {
                throw MachineError.configuration(.invalidVCPUCount(configuration.vcpuCount, reason: "this host's KVM allows at most \(maxVCPUs)"))
            }
            try vm.setIdentityMapAddress(Self.identityMapAddress)
            try vm.setTSSAddress(Self.tssAddress)
            if usesInKernelIRQChip {
                try vm.createIRQChip()
                try vm.createPIT()
            }
            self.vm = vm
            stopController = try StopController()
            self.stopController = stopController
            gate = try PauseGate()
            lifecycle = try LifecycleBox()
        } catch let error as MachineError {
            throw error
        } catch let error as KVMError {
            throw .kvm(error)
        } catch {
            throw .device("\(error)")
        }

        // Guest RAM, registered with KVM.
        do {
            let ranges = X86MemoryLayout.ramRanges(size: configuration.memory.bytes)
            if let snapshot {
                memory = try GuestMemory(ranges: ranges, mappingFile: snapshot.memoryPath)
            } else {
                memory = try GuestMemory(ranges: ranges)
            }
            try vm.mapGuestMemory(memory)
        } catch let error as GuestMemoryError {
            throw .memory(error)
        } catch let error as KVMError {
            throw .kvm(error)
        } catch {
            throw .device("\(error)")
        }

        // Firmware tables, then the kernel (or raw image) and its entry state.
        // virtio-mmio windows are announced by the firmware tables and the command line, so they are placed now.
        let mmioSlots = usesInKernelIRQChip && configuration.transport == .mmio
            ? VirtioMMIOPlatform.slots(count: configuration.virtioDeviceCount) : []
        let entry = try payload?.load(into: memory, vcpuCount: configuration.vcpuCount,
                                      extraCommandLine: configuration.networks.enumerated().map { $1.commandLineParameter(index: $0) },
                                      mmioSlots: mmioSlots)
        bootLog = entry?.log ?? snapshot?.log ?? []

        // Devices on their buses.
        let stop = stopController
        let deviceLoops: DeviceEventLoops
        do { deviceLoops = try DeviceEventLoops() } catch { throw .kvm(error) }
        self.deviceLoops = deviceLoops
        let platform = try Platform.build(vm: vm, consoleOutput: consoleOutput, timeline: timeline, stop: stop,
                                          virtio: usesInKernelIRQChip ? (memory, configuration.disks, configuration.networks,
                                                                         configuration.console == .virtio, configuration.vsock,
                                                                         configuration.transport, deviceLoops) : nil,
                                          logger: logger)
        serial = platform.serial
        self.consoleOutput = platform.consoleOutput
        virtioConsole = platform.virtioConsole
        pciRoot = platform.pci
        virtioTransports = platform.virtioTransports
        socketFiles = platform.socketFiles
        portBus = platform.portBus
        mmioBus = platform.mmioBus
        devices = platform.registry
        // The VM Generation ID: where the ACPI tables put it at boot (a fresh ID now), or where the snapshot says it
        // is (a new ID once the saved state is in place: Machine+Snapshot's applySnapshot).
        if let address = entry?.vmGenerationIDAddress {
            let device = VMGenerationID(address: address, interrupt: KVMInterruptLine(vm: vm, gsi: VMGenerationID.gsi))
            do { try device.writeFreshID(into: memory) } catch { throw .memory(error) }
            vmGenerationID = device
        } else if let saved = snapshot?.vmGenerationID {
            vmGenerationID = VMGenerationID(address: GuestAddress(saved.address), gsi: saved.gsi,
                                            interrupt: KVMInterruptLine(vm: vm, gsi: saved.gsi))
        } else {
            vmGenerationID = nil
        }
        for drive in devices.drives { metrics.registerBlock(id: drive.id) { drive.device.statistics } }
        for interface in devices.networkInterfaces { metrics.registerNet(id: interface.id) { interface.device.statistics } }
        if let vsock = devices.vsock { metrics.registerVsock { vsock.statistics } }

        // vCPUs: CPUID, MSRs, FPU, local APIC pins; the boot CPU also gets the loader's entry state. The others
        // wait in KVM for the INIT/SIPI the guest sends through the in-kernel local APIC.
        do {
            // What KVM supports, read once and only if needed: a restore in the boot that saved it sets the saved
            // tables and skips the feature check (`HostBoot`).
            let system = vm.system
            var supportedTable: [CPUIDEntry]?
            func supported() throws(KVMError) -> [CPUIDEntry] {
                if let supportedTable { return supportedTable }
                let table = try system.supportedCPUID()
                supportedTable = table
                return table
            }
            var vcpus: [VCPU] = []
            for id in 0..<UInt32(configuration.vcpuCount) {
                let vcpu = try vm.createVCPU(id: id)
                if id == 0, let snapshot, !snapshot.savedInThisBoot, let saved = snapshot.cpuid(vcpu: 0) {
                    let available = try GuestCPUID.seenByANewGuest(vcpu, supported: try supported(), vcpuCount: configuration.vcpuCount)
                    let missing = GuestCPUID.missingFeatures(saved: saved, available: available)
                    guard missing.isEmpty else { throw MachineError.unsupportedSnapshot(snapshot.cpuFeaturesMessage(missing: missing)) }
                }
                try vcpu.setCPUID(try snapshot?.cpuid(vcpu: id)
                                  ?? GuestCPUID.table(supported: try supported(), vcpuID: id, vcpuCount: configuration.vcpuCount))
                if let entry {
                    Self.setBootMSRs(vcpu, logger: logger)
                    try vcpu.resetFPU()
                    if usesInKernelIRQChip { try vcpu.configureLocalInterruptPins() }
                    if id == 0 { try CPUState.apply(entry.cpu, to: vcpu) }
                }
                vcpus.append(vcpu)
            }
            self.vcpus = vcpus
        } catch let error as MachineError {
            throw error
        } catch let error as KVMError {
            throw .kvm(error)
        } catch {
            throw .device("\(error)")
        }
        timeline.mark(.machineBuilt)
    }

    /// Queues bytes as if typed on the console (the UART's receive side). Callable from any thread.
    /// Returns how many bytes were taken (the input queue is bounded: retry the rest later).
    @discardableResult
    public func sendConsoleInput<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int {
        if let virtioConsole { return virtioConsole.enqueueInput(bytes) }
        return serial.enqueueInput(bytes)
    }

    private static func setBootMSRs(_ vcpu: VCPU, logger: Logger) {
        // Some hosts (nested PVM) refuse a few MSRs: set what they take and say what was refused.
        do {
            for index in try vcpu.setMSRsSkippingRefused(BootMSRs.entries) {
                logger.debug("host refused boot MSR", metadata: ["msr": "0x\(String(index, radix: 16))"])
            }
        } catch {
            logger.debug("KVM_SET_MSRS failed for the boot MSRs", metadata: ["error": "\(error)"])
        }
    }
}
