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
/// Build with `init` (nothing runs yet), then `run()` blocks until the guest stops and returns why. Threads:
/// one per vCPU (KVM_RUN and exit dispatch), one reading the console input, and the caller's thread, which
/// waits for a stop reason or a termination signal and then stops and joins the others.
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
    let virtioConsole: ConsoleDevice?
    /// Socket files our listeners created (vsock, `--net socket=...,listen`): removed once the machine stops, as
    /// the CLI exits without tearing the machine down.
    let socketFiles: [OwnedSocketFile]
    let stopController: StopController
    let eventLoop: DeviceEventLoop
    let logger: Logger

    /// Guest-physical pages KVM needs for its own use on Intel hosts; they sit just below the IOAPIC, in the
    /// MMIO hole where no RAM or device is.
    static let identityMapAddress = GuestAddress(0xFEFF_C000)
    static let tssAddress = GuestAddress(0xFEFF_D000)

    public init(configuration: MachineConfiguration, timeline: BootTimeline = BootTimeline(), logger: Logger = Logger(label: "swiftlet"),
                consoleOutput: Int32 = STDOUT_FILENO) throws(MachineError) {
        do { try configuration.validate() } catch { throw .configuration(error) }
        self.configuration = configuration
        self.timeline = timeline
        self.logger = logger

        // Read and check the payload before any KVM object exists: a wrong file is a configuration error.
        let payload = try PayloadImage.read(configuration.payload)
        guard configuration.disks.isEmpty || payload.wantsInKernelIRQChip else {
            throw .configuration(.invalidDisk(configuration.disks[0].path, reason: "disks need a Linux guest (raw images have no interrupt controller)"))
        }
        let usesInKernelIRQChip = payload.wantsInKernelIRQChip

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
        } catch let error as MachineError {
            throw error
        } catch let error as KVMError {
            throw .kvm(error)
        } catch {
            throw .device("\(error)")
        }

        // Guest RAM, registered with KVM.
        do {
            memory = try GuestMemory(ranges: X86MemoryLayout.ramRanges(size: configuration.memory.bytes))
            try vm.mapGuestMemory(memory)
        } catch let error as GuestMemoryError {
            throw .memory(error)
        } catch let error as KVMError {
            throw .kvm(error)
        } catch {
            throw .device("\(error)")
        }

        // Firmware tables, then the kernel (or raw image) and its entry state.
        let entry = try payload.load(into: memory, vcpuCount: configuration.vcpuCount,
                                     extraCommandLine: configuration.networks.enumerated().map { $1.commandLineParameter(index: $0) })
        bootLog = entry.log

        // Devices on their buses.
        let stop = stopController
        let eventLoop: DeviceEventLoop
        do { eventLoop = try DeviceEventLoop() } catch { throw .kvm(error) }
        self.eventLoop = eventLoop
        let platform = try Platform.build(vm: vm, consoleOutput: consoleOutput, timeline: timeline, stop: stop,
                                          virtio: usesInKernelIRQChip ? (memory, configuration.disks, configuration.networks,
                                                                         configuration.console == .virtio, configuration.vsock,
                                                                         eventLoop) : nil,
                                          logger: logger)
        serial = platform.serial
        virtioConsole = platform.virtioConsole
        socketFiles = platform.socketFiles
        portBus = platform.portBus
        mmioBus = platform.mmioBus

        // vCPUs: CPUID, MSRs, FPU, local APIC pins; the boot CPU also gets the loader's entry state. The others
        // wait in KVM for the INIT/SIPI the guest sends through the in-kernel local APIC.
        do {
            let supported = try vm.system.supportedCPUID()
            var vcpus: [VCPU] = []
            for id in 0..<UInt32(configuration.vcpuCount) {
                let vcpu = try vm.createVCPU(id: id)
                try vcpu.setCPUID(GuestCPUID.table(supported: supported, vcpuID: id, vcpuCount: configuration.vcpuCount))
                Self.setBootMSRs(vcpu, logger: logger)
                try vcpu.resetFPU()
                if usesInKernelIRQChip { try vcpu.configureLocalInterruptPins() }
                if id == 0 { try CPUState.apply(entry.cpu, to: vcpu) }
                vcpus.append(vcpu)
            }
            self.vcpus = vcpus
        } catch {
            throw .kvm(error)
        }
        timeline.mark(.machineBuilt)
    }

    /// Runs the guest until it stops; returns why. Call once.
    ///
    /// Termination signals (SIGINT, SIGTERM, SIGHUP) are blocked in the calling thread for the duration and
    /// read from a signalfd, so they stop the guest cleanly and restore the terminal.
    public func run(timeout: Double? = nil, attachConsoleInput: Bool = true) -> StopReason {
        KickSignal.install()
        TerminationSignals.block()
        defer { TerminationSignals.unblock() }
        let terminal = attachConsoleInput ? RawTerminal() : nil
        defer { terminal?.restore() }

        var signalSet = TerminationSignals.set
        let signalFD = signalfd(-1, &signalSet, Int32(SFD_CLOEXEC))
        defer { if signalFD >= 0 { close(signalFD) } }

        let console: ConsoleInput?
        do {
            if attachConsoleInput {
                let stop = stopController
                console = try ConsoleInput(watchEscape: RawTerminal.stdinIsTerminal,
                                           deliver: { [self] in self.sendConsoleInput($0) },
                                           onEscapeStop: { stop.request(.stopRequested) })
                try console?.start()
            } else {
                console = nil
            }
        } catch {
            return .hostError("\(error)")
        }

        do { try eventLoop.start() } catch { return .hostError("\(error)") }
        var threads: [HostThread] = []
        for vcpu in vcpus {
            let runner = VCPURunner(vcpu: vcpu, portBus: portBus, mmioBus: mmioBus, stop: stopController, timeline: timeline, logger: logger)
            do {
                threads.append(try HostThread(name: "vcpu\(vcpu.id)") { runner.run() })
            } catch {
                stopController.request(.hostError("\(error)"))
                break
            }
        }

        waitForStop(signalFD: signalFD, timeout: timeout)
        stopVCPUs(threads)
        eventLoop.stop()
        console?.stop()
        for file in socketFiles { file.remove() }
        timeline.mark(.stopped)
        return stopController.current ?? .hostError("stopped without a reason")
    }

    /// Queues bytes as if typed on the console (the UART's receive side). Callable from any thread.
    /// Returns how many bytes were taken (the input queue is bounded: retry the rest later).
    @discardableResult
    public func sendConsoleInput<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int {
        if let virtioConsole { return virtioConsole.enqueueInput(bytes) }
        return serial.enqueueInput(bytes)
    }

    /// Asks the machine to stop; `run()` returns `.stopRequested` shortly after. Callable from any thread.
    public func requestStop() { stopController.request(.stopRequested) }

    /// Blocks until a stop reason is set or a termination signal arrives.
    private func waitForStop(signalFD: Int32, timeout: Double?) {
        var fds = [pollfd(fd: stopController.wakeup.fd.rawValue, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
        let deadline = timeout.map { BootTimeline.now() + UInt64($0 * 1e9) }
        while stopController.current == nil {
            var waitMilliseconds: Int32 = -1
            if let deadline {
                let now = BootTimeline.now()
                if now >= deadline { stopController.request(.timedOut); break }
                waitMilliseconds = Int32(min((deadline - now) / 1_000_000 + 1, UInt64(Int32.max)))
            }
            let ready = poll(&fds, signalFD >= 0 ? 2 : 1, waitMilliseconds)
            if ready < 0, errno != EINTR { stopController.request(.hostError("poll failed: errno \(errno)")); break }
            if signalFD >= 0, fds[1].revents & Int16(POLLIN) != 0 {
                var info = signalfd_siginfo()
                let count = read(signalFD, &info, MemoryLayout<signalfd_siginfo>.size)
                if count == MemoryLayout<signalfd_siginfo>.size { stopController.request(.signal(Int32(info.ssi_signo))) }
            }
        }
    }

    /// Makes every vCPU leave KVM_RUN and waits for its thread.
    private func stopVCPUs(_ threads: [HostThread]) {
        stopController.stopping.store(true, ordering: .releasing)
        for vcpu in vcpus { vcpu.requestImmediateExit() }
        for thread in threads { thread.kick() }
        for thread in threads { thread.join() }
    }

    private static func setBootMSRs(_ vcpu: VCPU, logger: Logger) {
        do {
            try vcpu.setMSRs(BootMSRs.entries)
        } catch {
            // Some hosts (nested PVM) refuse a few MSRs: set what they take, one by one, and say what was refused.
            for msr in BootMSRs.entries {
                do { try vcpu.setMSRs([msr]) } catch {
                    logger.debug("host refused boot MSR", metadata: ["msr": "0x\(String(msr.index, radix: 16))"])
                }
            }
        }
    }
}
