import Boot
import GuestMemory
import KVM

/// Why a machine could not be built or started. Wraps the lower layers' typed errors so callers see one type.
public enum MachineError: Error, CustomStringConvertible {
    case configuration(ConfigurationError)
    case kvm(KVMError)
    case memory(GuestMemoryError)
    case boot(BootError)
    case device(String)
    case threadCreationFailed(name: String, errno: Int32)
    /// A snapshot this host cannot run (checked once KVM can say what it supports); the message names the file.
    case unsupportedSnapshot(String)

    public var description: String {
        switch self {
        case let .configuration(error): return error.description
        case let .kvm(error): return error.description
        case let .memory(error): return error.description
        case let .boot(error): return "cannot load the kernel: \(error)"
        case let .device(detail): return "device setup failed: \(detail)"
        case let .threadCreationFailed(name, errno): return "cannot start thread \(name): errno \(errno)"
        case let .unsupportedSnapshot(message): return message
        }
    }
}
