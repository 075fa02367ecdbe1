import AgentCore
import AgentProtocol
import Swiftlet
import SwiftletAgentClient

/// Why a `VirtualMachineConfiguration` cannot work: one case per rule, naming the value and the reason.
public enum VirtualMachineConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `bootLoader` is nil.
    case missingBootLoader
    case invalidCPUCount(Int, reason: String)
    case invalidMemorySize(UInt64, reason: String)
    /// More than one socket device (Swiftlet gives a guest one vsock device).
    case tooManySocketDevices(Int)
    /// A raw-image guest has no interrupt controller, so no virtio device: `device` names what was asked for.
    case deviceNeedsLinuxGuest(device: String)
    /// A kernel, initrd or raw image that cannot be read (missing, not a regular file, empty, too big for RAM).
    case unreadableFile(role: String, path: String, reason: String)
    case notAKernel(path: String, reason: String)
    case invalidKernelCommandLine(reason: String)
    case invalidStorageDevice(path: String, reason: String)
    case invalidNetworkDevice(String, reason: String)
    case invalidSocketDevice(String, reason: String)
    case tooManyDevices(Int, maximum: Int, reason: String)
    /// `defaultGuest()` before `scripts/setup` prepared it.
    case defaultGuestMissing(directory: String)
    case microVMKernelMissing(path: String)

    /// The VMM's own configuration error, in these terms.
    init(_ error: ConfigurationError) {
        switch error {
        case let .invalidVCPUCount(count, reason): self = .invalidCPUCount(count, reason: reason)
        case let .invalidMemory(size, reason): self = .invalidMemorySize(size.bytes, reason: reason)
        case let .unreadableFile(role, path, reason): self = .unreadableFile(role: role, path: path, reason: reason)
        case let .invalidCommandLine(reason): self = .invalidKernelCommandLine(reason: reason)
        case let .notAKernel(path, reason): self = .notAKernel(path: path, reason: reason)
        case let .invalidDisk(path, reason): self = .invalidStorageDevice(path: path, reason: reason)
        case let .invalidNetwork(value, reason): self = .invalidNetworkDevice(value, reason: reason)
        case let .invalidVsock(value, reason): self = .invalidSocketDevice(value, reason: reason)
        case let .tooManyDevices(count, maximum, reason): self = .tooManyDevices(count, maximum: maximum, reason: reason)
        case let .defaultGuestMissing(directory): self = .defaultGuestMissing(directory: directory)
        case let .microVMKernelMissing(path): self = .microVMKernelMissing(path: path)
        }
    }

    public var description: String {
        switch self {
        case .missingBootLoader: "no boot loader: set bootLoader to a Linux kernel (or LinuxBootLoader.defaultGuest())"
        case let .invalidCPUCount(count, reason): "cpuCount \(count): \(reason)"
        case let .invalidMemorySize(size, reason): "memorySize \(size): \(reason)"
        case let .tooManySocketDevices(count): "\(count) socket devices: a guest has at most one vsock device"
        case let .deviceNeedsLinuxGuest(device): "\(device) needs a Linux guest (a raw image has no interrupt controller)"
        case let .unreadableFile(role, path, reason): "cannot read \(role) \(path): \(reason)"
        case let .notAKernel(path, reason): "\(path) is not a bootable kernel: \(reason)"
        case let .invalidKernelCommandLine(reason): "invalid kernel command line: \(reason)"
        case let .invalidStorageDevice(path, reason): "storage device \(path): \(reason)"
        case let .invalidNetworkDevice(value, reason): "network device \(value): \(reason)"
        case let .invalidSocketDevice(value, reason): "socket device \(value): \(reason)"
        case let .tooManyDevices(count, maximum, reason): "too many devices: \(count) virtio devices (\(reason)), at most \(maximum)"
        case let .defaultGuestMissing(directory):
            "the default guest is not prepared (\(directory) is missing): run scripts/setup, or give a LinuxBootLoader"
        case let .microVMKernelMissing(path): "the microVM guest kernel is not built (\(path) is missing): run scripts/build-guest-kernel"
        }
    }
}

/// Why a virtual machine could not be built, or a lifecycle request could not be honoured.
public enum VirtualMachineError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidConfiguration(VirtualMachineConfigurationError)
    /// /dev/kvm is missing, refused, or lacks a capability (its message says which).
    case hypervisor(String)
    /// The kernel could not be loaded (a truncated image, an unsupported format).
    case invalidKernel(String)
    /// `operation` is not allowed in `state` (see `canStart`, `canPause`, ...).
    case invalidState(operation: String, state: VirtualMachine.State)
    /// The vCPUs did not acknowledge in time; the machine is left in `.error`.
    case timedOut(operation: String, detail: String)
    /// A host call failed (a thread, a file, a device).
    case hostFailure(operation: String, detail: String)
    /// The machine ended for this reason (what the delegate's `didStopWithError` receives for a guest crash or a
    /// host failure while running).
    case stopped(StopReason)

    init(_ error: MachineError) {
        switch error {
        case let .configuration(error): self = .invalidConfiguration(VirtualMachineConfigurationError(error))
        case let .kvm(error): self = .hypervisor(error.description)
        case let .memory(error): self = .hostFailure(operation: "guest memory", detail: error.description)
        case let .boot(error): self = .invalidKernel("\(error)")
        case let .device(detail): self = .hostFailure(operation: "device setup", detail: detail)
        case let .threadCreationFailed(name, errno): self = .hostFailure(operation: "thread \(name)", detail: "errno \(errno)")
        case let .unsupportedSnapshot(message): self = .hostFailure(operation: "restore", detail: message)
        }
    }

    init(_ error: LifecycleError) {
        switch error {
        case let .invalidTransition(operation, state): self = .invalidState(operation: operation, state: state)
        case let .timedOut(operation, detail): self = .timedOut(operation: operation, detail: detail)
        case let .hostFailure(operation, detail): self = .hostFailure(operation: operation, detail: detail)
        }
    }

    public var description: String {
        switch self {
        case let .invalidConfiguration(error): "invalid configuration: \(error)"
        case let .hypervisor(detail): "KVM: \(detail)"
        case let .invalidKernel(detail): "cannot load the kernel: \(detail)"
        case let .invalidState(operation, state): "cannot \(operation) a virtual machine that is \(state)"
        case let .timedOut(operation, detail): "\(operation) timed out: \(detail)"
        case let .hostFailure(operation, detail): "\(operation) failed: \(detail)"
        case let .stopped(reason): "the virtual machine stopped: \(reason)"
        }
    }
}

/// What went wrong reaching the guest agent or running a request through it. A command that runs and fails is
/// not an error: its status is in `ExecResult`.
public enum GuestAgentError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The configuration has no socket device, so no agent can be reached.
    case noSocketDevice
    /// The virtual machine is not running (its agent cannot answer while stopped or paused).
    case notRunning(VirtualMachine.State)
    /// The VM's vsock socket cannot be connected to (the VM is gone, or the path is wrong).
    case socketUnavailable(path: String, reason: String)
    /// The VM is there but nothing answered on the port within the wait.
    case noAgent(port: UInt32, waited: Duration, detail: String)
    /// The connection failed or closed mid-request (a guest that stopped mid-exec).
    case connectionLost(String)
    /// The agent reported a failure: a missing path, a full disk, ... (`errno` is the guest's, 0 if none).
    case agentFailure(message: String, errno: Int32)
    /// A failure on this host's side of a copy (a local path).
    case localFailure(message: String, errno: Int32)
    /// The agent broke the protocol (an unexpected message).
    case protocolError(String)
    /// The calling task was cancelled; the command was killed (SIGKILL to its process group).
    case cancelled

    init(_ error: AgentClientError) {
        switch error {
        case let .vmSocketUnavailable(path, error): self = .socketUnavailable(path: path, reason: SystemCallError.text(for: error.errno))
        case let .noAgent(port, waited, lastProblem): self = .noAgent(port: port, waited: waited, detail: lastProblem)
        case let .connection(error): self = .connectionLost(error == .closed ? "the connection closed" : error.description)
        case let .agent(error): self = .agentFailure(message: error.message, errno: error.errno)
        case let .local(failure): self = .localFailure(message: failure.message, errno: failure.errno)
        case let .unexpectedMessage(name): self = .protocolError("unexpected \(name) message")
        }
    }

    public var description: String {
        switch self {
        case .noSocketDevice: "the virtual machine has no socket device, so no agent can be reached (add a SocketDeviceConfiguration)"
        case let .notRunning(state): "the virtual machine is \(state), not running: its agent cannot answer"
        case let .socketUnavailable(path, reason): "cannot connect to the VM's vsock socket \(path): \(reason)"
        case let .noAgent(port, waited, detail):
            "no agent answering on vsock port \(port): is swiftlet-agent in the guest? (waited \(waited.components.seconds) s; \(detail))"
        case let .connectionLost(detail): "the connection to the guest's agent was lost (did the guest stop?): \(detail)"
        case let .agentFailure(message, _): message
        case let .localFailure(message, _): message
        case let .protocolError(detail): "the guest's agent broke the protocol: \(detail)"
        case .cancelled: "cancelled"
        }
    }
}
