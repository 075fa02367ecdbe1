#if canImport(Glibc)
import Glibc
#endif

/// Everything needed to build one guest, as a plain `Codable` value with defaults (each resource — disk, network
/// interface, vsock — a value of its own with its own `validate()`, so it can be built and checked one at a time;
/// the command line's syntax for them is in SwiftletCommandLine). `validate()` runs before anything
/// is built, so a bad value is reported without touching /dev/kvm.
public struct MachineConfiguration: Sendable, Equatable, Codable {
    public static let defaultMemory = MemorySize.mebibytes(512)
    public static let maximumVCPUs = 64
    /// Virtio devices a guest can have: one PCI function each on bus 0, devices 1 to 31 (device 0 is the host
    /// bridge). The virtio-rng always takes one.
    public static let maximumVirtioDevices = 31

    /// What the guest runs: a Linux kernel (the normal case), or a raw code image (tiny test guests,
    /// benchmarks).
    public var payload: Payload
    public var vcpuCount: Int
    public var memory: MemorySize
    /// virtio-blk disks, in order: the guest sees them as vda, vdb, ...
    public var disks: [DiskConfiguration]
    /// virtio-net interfaces, in order (eth0, eth1, ... in the guest; the default guest configures them by MAC).
    public var networks: [NetworkConfiguration]
    /// Which device carries the host terminal: the 16550A on COM1 (ttyS0), or a virtio-console (hvc0).
    public var console: Console
    /// A virtio-vsock device bridged to host Unix sockets, if any.
    public var vsock: VsockConfiguration?
    /// How the virtio devices reach the guest: virtio-pci (default) or virtio-mmio.
    public var transport: VirtioTransport

    public enum Console: String, Sendable, CaseIterable, Codable {
        case serial
        case virtio
    }

    public init(payload: Payload, vcpuCount: Int = 1, memory: MemorySize = MachineConfiguration.defaultMemory,
                disks: [DiskConfiguration] = [], networks: [NetworkConfiguration] = [], console: Console = .serial,
                vsock: VsockConfiguration? = nil, transport: VirtioTransport = .pci) {
        self.transport = transport
        self.networks = networks
        self.vsock = vsock
        self.payload = payload
        self.vcpuCount = vcpuCount
        self.memory = memory
        self.disks = disks
        self.console = console
    }

    /// A Linux guest with the given kernel.
    public static func linux(kernel: String, initrd: String? = nil, commandLine: String = LinuxPayload.defaultCommandLine,
                             vcpuCount: Int = 1, memory: MemorySize = defaultMemory) -> MachineConfiguration {
        MachineConfiguration(payload: .linux(LinuxPayload(kernelPath: kernel, initrdPath: initrd, commandLine: commandLine)),
                             vcpuCount: vcpuCount, memory: memory)
    }

    public enum Payload: Sendable, Equatable, Codable {
        case linux(LinuxPayload)
        case rawImage(RawImagePayload)
    }

    /// Checks every value that can be checked without building the VM. The kernel's format is checked
    /// when it is read (`Machine.init`), also before any KVM object exists.
    public func validate() throws(ConfigurationError) {
        guard vcpuCount >= 1 else { throw .invalidVCPUCount(vcpuCount, reason: "a guest needs at least one vCPU") }
        guard vcpuCount <= Self.maximumVCPUs else {
            throw .invalidVCPUCount(vcpuCount, reason: "at most \(Self.maximumVCPUs) vCPUs are supported")
        }
        guard memory.bytes >= 16 << 20 else {
            throw .invalidMemory(memory, reason: memory.bytes == 0 ? "memory size must be greater than zero" : "a guest needs at least 16 MiB")
        }
        if !networks.isEmpty, case .rawImage = payload {
            throw .invalidNetwork("--net", reason: "network interfaces need a Linux guest")
        }
        let macs = networks.map(\.mac.description)
        if let repeated = macs.first(where: { mac in macs.filter { $0 == mac }.count > 1 }) {
            throw .invalidNetwork(repeated, reason: "two interfaces have the same MAC address")
        }
        if console == .virtio, case .rawImage = payload {
            throw .invalidCommandLine("--console virtio needs a Linux guest")
        }
        if let vsock {
            if case .rawImage = payload { throw .invalidVsock("--vsock", reason: "a vsock device needs a Linux guest") }
            try vsock.validate()
        }
        guard memory.bytes % 4096 == 0 else { throw .invalidMemory(memory, reason: "memory size must be a multiple of 4 KiB") }
        guard memory.bytes <= 1 << 40 else { throw .invalidMemory(memory, reason: "at most 1 TiB is supported") }
        if case .linux = payload, virtioDeviceCount > maximumVirtioDevices {
            throw .tooManyDevices(virtioDeviceCount, maximum: maximumVirtioDevices,
                                  reason: "\(disks.count) disks, \(networks.count) network interfaces, \(vsock == nil ? 0 : 1) vsock, "
                                      + "\(console == .virtio ? 1 : 0) virtio-console and the virtio-rng; "
                                      + (transport == .pci ? "each is a PCI device on bus 0" : "each is a virtio-mmio device with its own interrupt"))
        }
        for network in networks { try network.validate() }
        for disk in disks { try disk.validate() }
        let paths = disks.map(\.path)
        if let repeated = paths.first(where: { path in paths.filter { $0 == path }.count > 1 }) {
            throw .invalidDisk(repeated, reason: "the same image is given twice")
        }
        switch payload {
        case let .linux(linux):
            // The sizes come from stat, before a byte is read: a payload larger than guest RAM cannot be loaded,
            // and reading (say) a 40 GiB initrd first would exhaust host memory or take minutes.
            let kernelSize = try Self.checkReadableFile(linux.kernelPath, role: "kernel")
            try Self.checkFits(kernelSize, role: "kernel", path: linux.kernelPath, memory: memory)
            if let initrd = linux.initrdPath {
                let initrdSize = try Self.checkReadableFile(initrd, role: "initrd")
                try Self.checkFits(kernelSize + initrdSize, role: "initrd", path: initrd, memory: memory,
                                   detail: " with the \(kernelSize)-byte kernel")
            }
            guard !linux.commandLine.utf8.contains(0) else { throw .invalidCommandLine("the command line contains a NUL byte") }
        case let .rawImage(raw):
            try Self.checkReadableFile(raw.path, role: "raw image")
            guard vcpuCount == 1 else { throw .invalidVCPUCount(vcpuCount, reason: "raw images run on one vCPU") }
        }
    }

    /// The most virtio devices the chosen transport holds: 31 PCI devices, or one virtio-mmio window per free
    /// I/O APIC input (`VirtioMMIOPlatform.gsis`).
    public var maximumVirtioDevices: Int {
        transport == .pci ? Self.maximumVirtioDevices : VirtioMMIOPlatform.maximumDevices
    }

    /// How many virtio devices (PCI functions) this configuration needs: the virtio-rng, the virtio-console, the
    /// vsock, the network interfaces and the disks.
    public var virtioDeviceCount: Int {
        1 + (console == .virtio ? 1 : 0) + (vsock == nil ? 0 : 1) + networks.count + disks.count
    }

    static func checkFits(_ size: Int64, role: String, path: String, memory: MemorySize, detail: String = "") throws(ConfigurationError) {
        guard size >= 0, UInt64(size) < memory.bytes else {
            throw .unreadableFile(role: role, path: path,
                                  reason: "\(size) bytes\(detail) do not fit in the guest's \(memory) of memory (--memory)")
        }
    }

    /// Returns the file's size.
    @discardableResult
    static func checkReadableFile(_ path: String, role: String) throws(ConfigurationError) -> Int64 {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .unreadableFile(role: role, path: path, reason: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .unreadableFile(role: role, path: path, reason: "not a regular file") }
        guard access(path, R_OK) == 0 else { throw .unreadableFile(role: role, path: path, reason: String(cString: strerror(errno))) }
        guard info.st_size > 0 else { throw .unreadableFile(role: role, path: path, reason: "the file is empty") }
        return Int64(info.st_size)
    }
}

/// A Linux kernel to boot, with its initrd and command line.
public struct LinuxPayload: Sendable, Equatable, Codable {
    /// How the kernel is entered.
    public enum EntryPoint: String, Sendable, CaseIterable, Codable {
        /// bzImage: unpack the payload in the host when possible, else its 64-bit entry; ELF: its entry.
        case automatic
        /// The PVH 32-bit entry of an ELF kernel with a XEN_ELFNOTE_PHYS32_ENTRY note.
        case pvh
    }

    /// Used when no command line is given: console on COM1, reset through the i8042 on reboot, and reboot on
    /// panic (which ends the VM rather than leaving it spinning).
    public static let defaultCommandLine = "console=ttyS0 reboot=k panic=-1"
    /// The same with the console on the virtio-console (`--console virtio`).
    public static let defaultVirtioConsoleCommandLine = "console=hvc0 reboot=k panic=-1"

    public var kernelPath: String
    public var initrdPath: String?
    public var commandLine: String
    public var entryPoint: EntryPoint
    /// Unpack a compressed bzImage payload in the host and load the vmlinux it holds (much faster on slow or
    /// emulated CPUs than running the kernel's own decompressor).
    public var unpackKernelInHost: Bool

    public init(kernelPath: String, initrdPath: String? = nil, commandLine: String = LinuxPayload.defaultCommandLine,
                entryPoint: EntryPoint = .automatic, unpackKernelInHost: Bool = true) {
        self.kernelPath = kernelPath
        self.initrdPath = initrdPath
        self.commandLine = commandLine
        self.entryPoint = entryPoint
        self.unpackKernelInHost = unpackKernelInHost
    }
}

/// A flat code image loaded at a fixed address and entered directly: the tiny guests of the tests and
/// benchmarks. Such a machine has the same devices as a Linux guest, but no in-kernel interrupt controller,
/// so a HLT ends it (`StopReason.halted`) instead of waiting for an interrupt.
public struct RawImagePayload: Sendable, Equatable, Codable {
    public enum Mode: String, Sendable, CaseIterable, Codable {
        /// 16-bit real mode, CS = 0, entered at `RawImagePayload.loadAddress`.
        case realMode = "real"
        /// 64-bit long mode at CPL 0 with identity-mapped page tables.
        case longMode = "long"
        /// 64-bit long mode at CPL 3 (user mode), which runs natively even on nested-PVM hosts.
        case userMode = "user"
    }

    /// Where the image is loaded and entered.
    public static let loadAddress: UInt64 = 0x1000
    /// Largest image (24 KiB): it must end below 0x7000, where the stack and the boot page tables begin.
    public static let maximumSize = 0x6000
    /// Initial stack pointer (stack grows down towards the image).
    public static let stackTop: UInt64 = 0x8000

    public var path: String
    public var mode: Mode

    public init(path: String, mode: Mode = .realMode) {
        self.path = path
        self.mode = mode
    }
}

/// A configuration value that cannot work, named with the reason.
public enum ConfigurationError: Error, Equatable, CustomStringConvertible {
    case invalidVCPUCount(Int, reason: String)
    case invalidMemory(MemorySize, reason: String)
    case unreadableFile(role: String, path: String, reason: String)
    case invalidCommandLine(String)
    case notAKernel(path: String, reason: String)
    case invalidDisk(String, reason: String)
    case invalidNetwork(String, reason: String)
    case invalidVsock(String, reason: String)
    case tooManyDevices(Int, maximum: Int, reason: String)
    case defaultGuestMissing(directory: String)
    /// `--guest-kernel microvm` without a microVM kernel in the cache.
    case microVMKernelMissing(path: String)

    public var description: String {
        switch self {
        case let .invalidVCPUCount(count, reason): return "invalid vCPU count \(count): \(reason)"
        case let .invalidMemory(size, reason): return "invalid memory size \(size): \(reason)"
        case let .unreadableFile(role, path, reason): return "cannot read \(role) \(path): \(reason)"
        case let .invalidCommandLine(reason): return "invalid kernel command line: \(reason)"
        case let .notAKernel(path, reason): return "\(path) is not a bootable kernel: \(reason)"
        case let .invalidDisk(spec, reason): return "invalid disk \(spec): \(reason)"
        case let .invalidNetwork(spec, reason): return "invalid network \(spec): \(reason)"
        case let .invalidVsock(spec, reason): return "invalid vsock \(spec): \(reason)"
        case let .tooManyDevices(count, maximum, reason):
            return "too many devices: \(count) virtio devices (\(reason)), at most \(maximum) are supported"
        case let .defaultGuestMissing(directory):
            return "no --kernel given and the default guest is not prepared (\(directory) is missing). Run `scripts/setup` first, or pass --kernel PATH [--initrd PATH]"
        case let .microVMKernelMissing(path):
            return "the microVM guest kernel is not built (\(path) is missing). Run `scripts/build-guest-kernel` (or `scripts/setup --guest-kernel`) first"
        }
    }
}
