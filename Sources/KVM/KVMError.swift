import SystemPackage

/// Why a KVM operation failed. Syscall failures carry the ioctl's name and errno.
public enum KVMError: Error, Equatable, CustomStringConvertible {
    /// /dev/kvm could not be opened.
    case deviceUnavailable(path: String, errno: Errno)
    /// The file at `path` opened but is not KVM: it refused KVM_GET_API_VERSION (a device node with the wrong
    /// numbers, a regular file, /dev/null bind-mounted in a sandbox).
    case notKVM(path: String, errno: Errno)
    /// An ioctl returned -1.
    case ioctlFailed(name: String, errno: Errno)
    /// KVM_GET_API_VERSION returned something other than 12 (the only stable API version).
    case unsupportedAPIVersion(Int32)
    /// A capability the VMM requires is absent.
    case missingCapability(String)
    /// mmap of a vCPU's kvm_run page failed.
    case runPageMapFailed(errno: Errno)
    /// A request the host cannot carry (too many CPUID/MSR entries, a bad size).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .deviceUnavailable(path, errno):
            var text = "cannot open \(path): \(errno)"
            switch errno {
            case .noSuchFileOrDirectory, .noSuchAddressOrDevice, .operationNotSupportedByDevice:
                text += ". KVM is not available: enable hardware virtualization (VT-x/AMD-V) in the firmware and load the module (`modprobe kvm_intel` or `modprobe kvm_amd`)"
            case .permissionDenied, .notPermitted:
                text += ". Add your user to the kvm group (`sudo usermod -aG kvm $USER`, then log in again) or run as root"
            default:
                break
            }
            return text
        case let .notKVM(path, errno):
            return "\(path) is not the KVM device: it refused KVM_GET_API_VERSION (\(errno), errno \(errno.rawValue)). "
                + "/dev/kvm must be the character device 10:232 created by the kvm module (`ls -l /dev/kvm`; `modprobe kvm_intel` or `kvm_amd`)"
        case let .ioctlFailed(name, errno):
            return "\(name) failed: \(errno) (errno \(errno.rawValue))"
        case let .unsupportedAPIVersion(version):
            return "KVM API version \(version) is not supported (expected 12)"
        case let .missingCapability(name):
            return "the host's KVM lacks \(name)"
        case let .runPageMapFailed(errno):
            return "mmap of the vCPU run page failed: \(errno)"
        case let .invalidArgument(what):
            return what
        }
    }
}
