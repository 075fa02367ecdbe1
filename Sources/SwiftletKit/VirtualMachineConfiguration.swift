import Swiftlet
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Everything a `VirtualMachine` is built from, as a plain value built in code — the counterpart of
/// Virtualization.framework's `VZVirtualMachineConfiguration`. Set the properties, call `validate()` (the
/// `VirtualMachine` initializer calls it too), then create the machine:
///
///     var configuration = try VirtualMachineConfiguration.defaultGuest()
///     configuration.cpuCount = 2
///     configuration.memorySize = 1 << 30
///     try configuration.validate()
///     let vm = try VirtualMachine(configuration: configuration)
///
/// It translates into the VMM's own `MachineConfiguration` (`machineConfiguration()`); nothing here builds a VM.
public struct VirtualMachineConfiguration: Sendable, Equatable {
    /// What the vCPUs start in. nil until set; `validate()` refuses a configuration without one.
    public var bootLoader: BootLoader?
    /// vCPUs the guest sees (`minimumAllowedCPUCount`...`maximumAllowedCPUCount`).
    public var cpuCount: Int = 1
    /// Guest RAM in bytes: a multiple of 4 KiB, `minimumAllowedMemorySize`...`maximumAllowedMemorySize`.
    public var memorySize: UInt64 = 512 << 20
    /// virtio-blk disks, in order: the guest sees /dev/vda, /dev/vdb, ...
    public var storageDevices: [StorageDeviceConfiguration] = []
    /// virtio-net interfaces, in order.
    public var networkDevices: [NetworkDeviceConfiguration] = []
    /// virtio-vsock devices: at most one. The guest agent (`exec`, `copy`) is reached through it.
    public var socketDevices: [SocketDeviceConfiguration] = []
    /// Where the guest's console goes, and on which device.
    public var console: ConsoleConfiguration = ConsoleConfiguration()
    /// How virtio devices reach the guest: virtio-pci (the default) or virtio-mmio.
    public var transport: Transport = .pci

    public static let minimumAllowedCPUCount = 1
    public static let maximumAllowedCPUCount = MachineConfiguration.maximumVCPUs
    public static let minimumAllowedMemorySize: UInt64 = 16 << 20
    public static let maximumAllowedMemorySize: UInt64 = 1 << 40

    public init() {}

    /// The default guest `scripts/setup` prepares (Debian's cloud kernel, or the microVM kernel, with the busybox
    /// initramfs that starts swiftlet-agent when it finds a vsock device), with one vsock device so the agent can
    /// be reached. Throws `.defaultGuestMissing` when setup has not run.
    ///
    /// `socketPath` is the vsock device's host Unix socket; by default a fresh path in the temporary directory.
    public static func defaultGuest(kernel: DefaultGuestKernel = .debian, socketPath: String? = nil) throws(VirtualMachineConfigurationError) -> VirtualMachineConfiguration {
        var configuration = VirtualMachineConfiguration()
        configuration.bootLoader = .linux(try LinuxBootLoader.defaultGuest(kernel: kernel))
        configuration.socketDevices = [SocketDeviceConfiguration(socketPath: socketPath ?? SocketDeviceConfiguration.temporarySocketPath())]
        return configuration
    }

    public enum Transport: String, Sendable, Equatable, CaseIterable {
        case pci
        case mmio
    }

    public enum DefaultGuestKernel: String, Sendable, Equatable, CaseIterable {
        /// Debian's cloud kernel (scripts/setup).
        case debian
        /// Swiftlet's microVM kernel (scripts/build-guest-kernel).
        case microvm
    }
}

/// What the guest runs. `VZBootLoader`'s role; Swiftlet boots Linux kernels, or flat code images for tests.
public enum BootLoader: Sendable, Equatable {
    case linux(LinuxBootLoader)
    /// A flat code image loaded at 0x1000 and entered directly (no interrupt controller: HLT ends it). For tiny
    /// test guests; no disks, network, vsock or virtio console.
    case rawImage(RawImageBootLoader)
}

/// A Linux kernel (bzImage or ELF vmlinux) with an optional initial RAM disk and command line, as
/// `VZLinuxBootLoader`.
public struct LinuxBootLoader: Sendable, Equatable {
    public var kernelPath: String
    public var initialRamdiskPath: String?
    /// The kernel command line; nil: `console=ttyS0 reboot=k panic=-1` (`console=hvc0 ...` with a virtio console).
    public var commandLine: String?

    public init(kernelPath: String, initialRamdiskPath: String? = nil, commandLine: String? = nil) {
        self.kernelPath = kernelPath
        self.initialRamdiskPath = initialRamdiskPath
        self.commandLine = commandLine
    }

    /// The default guest's kernel and initramfs (`~/.cache/swiftlet/guest/`).
    public static func defaultGuest(kernel: VirtualMachineConfiguration.DefaultGuestKernel = .debian) throws(VirtualMachineConfigurationError) -> LinuxBootLoader {
        do {
            let paths = try DefaultGuest.paths(kernel: kernel == .debian ? .debian : .microvm)
            return LinuxBootLoader(kernelPath: paths.kernel, initialRamdiskPath: paths.initrd)
        } catch {
            throw VirtualMachineConfigurationError(error)
        }
    }
}

/// A flat code image: the tiny guests of tests and benchmarks.
public struct RawImageBootLoader: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable, CaseIterable {
        /// 16-bit real mode.
        case real
        /// 64-bit long mode at CPL 0.
        case long
        /// 64-bit long mode at CPL 3 (runs natively even where CPL 0 code is emulated).
        case user
    }

    public var imagePath: String
    public var mode: Mode

    public init(imagePath: String, mode: Mode = .real) {
        self.imagePath = imagePath
        self.mode = mode
    }
}

/// A raw disk image (or block device) as a virtio-blk disk (`VZVirtioBlockDeviceConfiguration` with a
/// `VZDiskImageStorageDeviceAttachment`).
public struct StorageDeviceConfiguration: Sendable, Equatable {
    public var imagePath: String
    public var isReadOnly: Bool
    /// The serial the guest reads (at most 20 bytes), `blockDeviceIdentifier` in Virtualization.framework.
    public var blockDeviceIdentifier: String?

    public init(imagePath: String, readOnly: Bool = false, blockDeviceIdentifier: String? = nil) {
        self.imagePath = imagePath
        self.isReadOnly = readOnly
        self.blockDeviceIdentifier = blockDeviceIdentifier
    }
}

/// A virtio-net interface (`VZVirtioNetworkDeviceConfiguration`): its host side and what the guest applies.
public struct NetworkDeviceConfiguration: Sendable, Equatable {
    public enum Attachment: Sendable, Equatable {
        /// A host TAP interface (created when this process may).
        case tap(name: String)
        /// A Unix stream socket to another VM: one side listens, the other connects. No privileges needed.
        case socket(path: String, listen: Bool)
    }

    public var attachment: Attachment
    /// "02:53:..." form; nil: a stable locally administered address derived from the device's position.
    public var macAddress: String?
    /// The guest's address with its prefix, e.g. "10.0.0.2/24" (the default guest's /init applies it).
    public var ipv4Address: String?
    public var ipv4Gateway: String?
    public var mtu: UInt16?

    public init(attachment: Attachment, macAddress: String? = nil, ipv4Address: String? = nil, ipv4Gateway: String? = nil,
                mtu: UInt16? = nil) {
        self.attachment = attachment
        self.macAddress = macAddress
        self.ipv4Address = ipv4Address
        self.ipv4Gateway = ipv4Gateway
        self.mtu = mtu
    }
}

/// A virtio-vsock device (`VZVirtioSocketDeviceConfiguration`) bridged to a host Unix socket, Firecracker's way:
/// host programs connect to `socketPath` and write `CONNECT <port>`; the guest agent listens on port 1024.
public struct SocketDeviceConfiguration: Sendable, Equatable {
    /// The guest's context ID (3 or more).
    public var guestCID: UInt32
    /// The host Unix socket the VMM listens on (created when the VM starts, removed when it stops).
    public var socketPath: String

    public init(guestCID: UInt32 = 3, socketPath: String) {
        self.guestCID = guestCID
        self.socketPath = socketPath
    }

    /// `$TMPDIR/swiftlet-<pid>-<n>.vsock`, a new one per call.
    public static func temporarySocketPath() -> String {
        let number = counter.add(1, ordering: .relaxed).newValue
        var directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        if directory.isEmpty { directory = "/tmp" }
        while directory.count > 1, directory.hasSuffix("/") { directory.removeLast() }
        return "\(directory)/swiftlet-\(getpid())-\(number).vsock"
    }

    private static let counter = Atomic<Int>(0)
}

/// The guest's console: which device carries it, where its output goes, and whether this process's stdin feeds
/// it (`VZVirtioConsoleDeviceSerialPortConfiguration` / `VZSerialPortConfiguration` with a file-handle attachment).
public struct ConsoleConfiguration: Sendable, Equatable {
    public enum Device: String, Sendable, Equatable, CaseIterable {
        /// A 16550A UART on COM1 (the guest's ttyS0).
        case serial
        /// A virtio-console (hvc0).
        case virtio
    }

    public enum Output: Sendable, Equatable {
        case standardOutput
        case standardError
        /// A descriptor the caller owns (kept open by the caller until the VM stops).
        case fileDescriptor(Int32)
        /// A file, created or appended to.
        case file(path: String)
        /// Nowhere.
        case discard
    }

    public var device: Device
    public var output: Output
    /// Feed this process's stdin to the console (and put a terminal in raw mode while the VM runs; Ctrl-A X stops
    /// it). Off by default: a library's caller usually keeps its stdin. `VirtualMachine.sendConsoleInput` works
    /// either way.
    public var readsStandardInput: Bool

    public init(device: Device = .serial, output: Output = .standardOutput, readsStandardInput: Bool = false) {
        self.device = device
        self.output = output
        self.readsStandardInput = readsStandardInput
    }
}
