import ArgumentParser
import Logging
import Swiftlet
import SwiftletCommandLine
import SwiftletAPI
import SwiftletSandbox
#if canImport(Glibc)
import Glibc
#endif

struct RunCommand: ParsableCommand {
    /// The one status for every usage error, whichever check catches it: swift-argument-parser's own (EX_USAGE
    /// from sysexits.h) for parsing and `validate()`, and ours for a configuration the library refuses.
    static let usageErrorStatus: Int32 = 64
    /// The longest `--timeout` accepted (about 31 years), far below what the deadline arithmetic can hold.
    static let maximumTimeout: Double = 1_000_000_000

    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot a guest and attach its console to this terminal.",
        discussion: """
            Without --kernel, boots the default guest prepared by scripts/setup (the Debian cloud kernel and a \
            busybox initramfs). The guest's console is the terminal: type Ctrl-A X to stop the VM. The exit \
            status is 0 when the guest powers off or reboots, 3 halted, 4 triple fault, 5 KVM internal error, \
            6 failed VM entry, 7 guest crash, 8 unexpected exit, 1 host error (including a missing default guest), \
            64 usage error (a bad option or value, or a file given that cannot be used, reported before the guest \
            starts), 124 timeout, 128+N on signal N (also during start-up).
            """
    )

    @Option(help: ArgumentHelp("Kernel to boot: a bzImage or an uncompressed ELF vmlinux.", valueName: "path"))
    var kernel: String?

    @Option(help: ArgumentHelp("Initial RAM disk (cpio archive, optionally compressed).", valueName: "path"))
    var initrd: String?

    @Option(help: ArgumentHelp("Without --kernel: the default guest's kernel, debian (scripts/setup) or microvm (scripts/build-guest-kernel: boots faster, drivers built in).", valueName: "kernel"))
    var guestKernel: String = DefaultGuest.Kernel.debian.rawValue

    @Option(help: ArgumentHelp("Kernel command line (default: \"\(LinuxPayload.defaultCommandLine)\").", valueName: "string"))
    var cmdline: String?

    @Option(help: "Number of vCPUs (1-\(MachineConfiguration.maximumVCPUs)).")
    var cpus: Int = 1

    @Option(help: ArgumentHelp("Guest RAM, e.g. 512M or 2G (a bare number is MiB).", valueName: "size"))
    var memory: String = "512M"

    @Option(help: ArgumentHelp("Kernel entry: automatic, or pvh (ELF kernels with a PVH note).", valueName: "entry"))
    var entry: String = LinuxPayload.EntryPoint.automatic.rawValue

    @Flag(help: "Run a bzImage's own decompressor instead of unpacking its payload in the host.")
    var noUnpack = false

    @Option(help: ArgumentHelp("Attach a raw disk image as virtio-blk (vda, vdb, ... in order); repeatable.",
                               valueName: "path[,readonly][,id=name]"))
    var disk: [String] = []

    @Option(help: ArgumentHelp("Attach a virtio-net interface on a host TAP or a Unix socket to another VM (listen on one side), with the guest's IPv4 settings; repeatable.",
                               valueName: "tap=name|socket=path[,listen][,mac=m][,ip=addr/prefix][,gateway=addr][,mtu=n]"))
    var net: [String] = []

    @Option(help: ArgumentHelp("Attach a virtio-vsock device with guest CID N; host programs reach it through the Unix socket PATH (CONNECT <port>), guest connections to host port P reach PATH_P.",
                               valueName: "cid=N,socket=PATH"))
    var vsock: String?

    @Option(help: ArgumentHelp("Console device for this terminal: serial (ttyS0) or virtio (hvc0).", valueName: "device"))
    var console: String = MachineConfiguration.Console.serial.rawValue

    @Option(help: ArgumentHelp("How virtio devices reach the guest: pci (virtio-pci with MSI-X) or mmio (virtio-mmio, announced on the kernel command line and in ACPI; works with pci=off).", valueName: "transport"))
    var transport: String = VirtioTransport.pci.rawValue

    @Option(help: ArgumentHelp("Run a raw code image instead of Linux (tiny test guests).", valueName: "path"))
    var raw: String?

    @Option(help: ArgumentHelp("Mode a raw image starts in: real, long or user.", valueName: "mode"))
    var rawMode: String = RawImagePayload.Mode.realMode.rawValue

    @Option(help: ArgumentHelp("Stop the guest after this many seconds (exit status 124).", valueName: "seconds"))
    var timeout: Double?

    @Option(name: .customLong("api-sock"), help: ArgumentHelp("Also serve the Firecracker-compatible REST API on this Unix socket (pause, resume, Ctrl-Alt-Del, metrics, drive updates).", valueName: "path"))
    var apiSocket: String?

    @Flag(help: "Print, at exit, the time to the first guest instruction, first console byte and stop.")
    var bootTimeline = false

    @Flag(name: .shortAndLong, help: "Log what the VMM does, including unclaimed device accesses.")
    var verbose = false

    @OptionGroup var seccomp: SeccompOptions

    @OptionGroup var background: BackgroundOptions

    func validate() throws {
        guard DefaultGuest.Kernel(rawValue: guestKernel) != nil else {
            throw ValidationError("--guest-kernel must be \(DefaultGuest.Kernel.allCases.map(\.rawValue).joined(separator: " or ")) (got \(guestKernel))")
        }
        guard kernel == nil || guestKernel == DefaultGuest.Kernel.debian.rawValue else {
            throw ValidationError("--guest-kernel chooses the default guest's kernel: drop it or --kernel")
        }
        guard cpus >= 1 else { throw ValidationError("--cpus must be at least 1 (got \(cpus))") }
        guard cpus <= MachineConfiguration.maximumVCPUs else {
            throw ValidationError("--cpus \(cpus) is more than the \(MachineConfiguration.maximumVCPUs) vCPUs Swiftlet supports")
        }
        guard let size = MemorySize(parsing: memory) else {
            throw ValidationError("--memory \(memory) is not a size: use a number with a unit, like 512M or 2G")
        }
        guard size.bytes > 0 else { throw ValidationError("--memory must be greater than zero") }
        guard LinuxPayload.EntryPoint(rawValue: entry) != nil else {
            throw ValidationError("--entry must be one of: \(LinuxPayload.EntryPoint.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard RawImagePayload.Mode(rawValue: rawMode) != nil else {
            throw ValidationError("--raw-mode must be one of: \(RawImagePayload.Mode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard MachineConfiguration.Console(rawValue: console) != nil else {
            throw ValidationError("--console must be serial or virtio")
        }
        guard VirtioTransport(rawValue: transport) != nil else { throw ValidationError("--transport must be pci or mmio") }
        if raw != nil, kernel != nil { throw ValidationError("--raw and --kernel exclude each other") }
        if let timeout, !(timeout > 0 && timeout <= Self.maximumTimeout) {
            throw ValidationError("--timeout must be a positive number of seconds, at most \(Int(Self.maximumTimeout)) (got \(timeout))")
        }
        try background.validate(apiSocket: apiSocket)
        if raw != nil, consoleDevice == .virtio {
            throw ValidationError("--console virtio needs a Linux guest: a raw image (--raw) has only the serial console")
        }
    }

    func run() throws {
        // The termination signals are blocked before any thread exists (so in every thread) and read: during
        // start-up by the watch below, then by the machine's wait, which turns them into a clean stop.
        if background.detach { return try runDetached() }
        TerminationSignals.block()
        try background.adoptSandboxDirectory()
        seccomp.apply()
        let observability = Observability()
        MachineSession.bootstrapLogging(observability: observability, verbose: verbose)

        let logger = Logger(label: "swiftlet")
        do {
            let configuration = try makeConfiguration()
            let timeline = BootTimeline(origin: processStart)
            // A signal while the machine is built (unpacking a kernel, waiting for a socket peer): nothing runs
            // yet, so end here (the watch has removed the socket files already created).
            let startUp = try StartUpSignalWatch { signal in
                logger.error("stopped by signal \(signal) during start-up")
                Glibc.exit(128 + signal)
            }
            let machine: Machine
            do {
                machine = try Machine(configuration: configuration, timeline: timeline, logger: logger)
                startUp.finish()
            } catch {
                startUp.finish()
                throw error
            }
            if case let .linux(linux) = configuration.payload, let warning = VirtioTransport.pciOffWarning(
                commandLine: linux.commandLine, transport: configuration.transport,
                hasDevices: !configuration.disks.isEmpty || !configuration.networks.isEmpty || configuration.vsock != nil)
            {
                logger.warning("\(warning)")
            }
            if case let .linux(linux) = configuration.payload, let warning = noapicWithoutACPIOffWarning(commandLine: linux.commandLine) {
                logger.warning("\(warning)")
            }
            if case .linux = configuration.payload, HostKind.detect() == .nestedPVM {
                logger.warning("\(HostKind.pvmWarning)")
            }
            for line in machine.bootLog { logger.info("\(line)") }
            try MachineSession(apiSocket: apiSocket, timeout: timeout, printTimeline: bootTimeline, timeline: timeline, logger: logger,
                               observability: observability).runToEnd(machine)
        } catch let error as MachineError {
            logger.error("\(error)")
            let status: ExitCode
            if case let .configuration(configurationError) = error { status = Self.exitCode(for: configurationError) } else { status = .failure }
            SandboxVMM.recordExit(status: status.rawValue)
            throw status
        } catch let error as ConfigurationError {
            logger.error("\(error)")
            SandboxVMM.recordExit(status: Self.exitCode(for: error).rawValue)
            throw Self.exitCode(for: error)
        }
    }

    /// A configuration the library refuses is a usage error (64), except a default guest that was never set up:
    /// the command line was right, the host is not ready (1).
    static func exitCode(for error: ConfigurationError) -> ExitCode {
        if case .defaultGuestMissing = error { return .failure }
        if case .microVMKernelMissing = error { return .failure }
        return ExitCode(usageErrorStatus)
    }

    private var consoleDevice: MachineConfiguration.Console { MachineConfiguration.Console(rawValue: console)! }

    private func makeConfiguration() throws(ConfigurationError) -> MachineConfiguration {
        let size = MemorySize(parsing: memory)!   // checked in validate()
        var disks: [DiskConfiguration] = []
        for spec in disk { disks.append(try DiskConfiguration(parsing: spec)) }
        var networks: [NetworkConfiguration] = []
        for (index, spec) in net.enumerated() { networks.append(try NetworkConfiguration(parsing: spec, index: index)) }
        let vsockDevice = try vsock.map { spec throws(ConfigurationError) in try VsockConfiguration(parsing: spec) }
        if let raw {
            return MachineConfiguration(payload: .rawImage(RawImagePayload(path: raw, mode: RawImagePayload.Mode(rawValue: rawMode)!)),
                                        vcpuCount: cpus, memory: size, disks: disks, networks: networks, vsock: vsockDevice)
        }
        var kernelPath = kernel
        var initrdPath = initrd
        if kernelPath == nil {
            let defaults = try DefaultGuest.paths(kernel: DefaultGuest.Kernel(rawValue: guestKernel)!)
            kernelPath = defaults.kernel
            if initrdPath == nil { initrdPath = defaults.initrd }
        }
        let payload = LinuxPayload(kernelPath: kernelPath!, initrdPath: initrdPath,
                                   commandLine: cmdline ?? (consoleDevice == .virtio ? LinuxPayload.defaultVirtioConsoleCommandLine
                                                                                     : LinuxPayload.defaultCommandLine),
                                   entryPoint: LinuxPayload.EntryPoint(rawValue: entry)!, unpackKernelInHost: !noUnpack)
        return MachineConfiguration(payload: .linux(payload), vcpuCount: cpus, memory: size, disks: disks, networks: networks,
                                    console: consoleDevice, vsock: vsockDevice, transport: VirtioTransport(rawValue: transport)!)
    }
}

func printError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
}
