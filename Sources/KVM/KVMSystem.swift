import CKVM
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The KVM subsystem: an open /dev/kvm. Creates virtual machines and answers what the host supports.
public final class KVMSystem: Sendable {
    public static let defaultPath = "/dev/kvm"
    /// The only stable KVM API version (see Documentation/virt/kvm/api.rst, KVM_GET_API_VERSION).
    public static let stableAPIVersion: Int32 = 12

    let fd: FileDescriptor
    /// Bytes to mmap for each vCPU's kvm_run region (KVM_GET_VCPU_MMAP_SIZE).
    public let vcpuMmapSize: Int

    /// Opens /dev/kvm and checks the API version.
    public init(path: String = KVMSystem.defaultPath) throws(KVMError) {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readWrite, options: [.closeOnExec])
        } catch let error as Errno {
            throw .deviceUnavailable(path: path, errno: error)
        } catch {
            throw .deviceUnavailable(path: path, errno: .ioError)
        }
        self.fd = fd
        let version: Int32
        do {
            version = try Ioctl.none(fd.rawValue, CKVM_GET_API_VERSION, "KVM_GET_API_VERSION")
        } catch {
            // Any file opens; only KVM answers its first ioctl. ENOTTY/EINVAL mean "not this device".
            if case let .ioctlFailed(_, errno) = error { throw .notKVM(path: path, errno: errno) }
            throw error
        }
        guard version == Self.stableAPIVersion else { throw .unsupportedAPIVersion(version) }
        vcpuMmapSize = Int(try Ioctl.none(fd.rawValue, CKVM_GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE"))
    }

    deinit { try? fd.close() }

    /// KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific positive value.
    public func checkExtension(_ capability: Int32) -> Int32 {
        (try? Ioctl.value(fd.rawValue, CKVM_CHECK_EXTENSION, UInt(capability), "KVM_CHECK_EXTENSION")) ?? 0
    }

    /// Throws `missingCapability` unless every listed capability is present.
    public func require(_ capabilities: [(Int32, String)]) throws(KVMError) {
        for (capability, name) in capabilities where checkExtension(capability) == 0 {
            throw .missingCapability(name)
        }
    }

    /// KVM_GET_SUPPORTED_CPUID: the CPUID leaves this host can present to guests.
    public func supportedCPUID() throws(KVMError) -> [CPUIDEntry] {
        var table = ckvm_cpuid()
        table.nent = UInt32(CKVM_MAX_CPUID_ENTRIES)
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_SUPPORTED_CPUID, &table, "KVM_GET_SUPPORTED_CPUID")
        return CPUIDEntry.decode(table)
    }

    /// KVM_CREATE_VM with the default machine type.
    public func createVM() throws(KVMError) -> VirtualMachine {
        let vmFD = try Ioctl.value(fd.rawValue, CKVM_CREATE_VM, 0, "KVM_CREATE_VM")
        return VirtualMachine(fd: FileDescriptor(rawValue: vmFD), system: self)
    }
}

/// Capability numbers the VMM checks (from <linux/kvm.h>).
public enum KVMCapability {
    public static let irqchip = Int32(KVM_CAP_IRQCHIP)
    public static let userMemory = Int32(KVM_CAP_USER_MEMORY)
    public static let setTSSAddress = Int32(KVM_CAP_SET_TSS_ADDR)
    public static let extendedCPUID = Int32(KVM_CAP_EXT_CPUID)
    public static let pit2 = Int32(KVM_CAP_PIT2)
    public static let immediateExit = Int32(KVM_CAP_IMMEDIATE_EXIT)
    public static let irqfd = Int32(KVM_CAP_IRQFD)
    public static let ioeventfd = Int32(KVM_CAP_IOEVENTFD)
    public static let vcpuEvents = Int32(KVM_CAP_VCPU_EVENTS)
    public static let maxVCPUs = Int32(KVM_CAP_MAX_VCPUS)
    public static let nrMemslots = Int32(KVM_CAP_NR_MEMSLOTS)
    public static let irqRouting = Int32(KVM_CAP_IRQ_ROUTING)

    /// What Swiftlet cannot run without.
    public static let required: [(Int32, String)] = [
        (irqchip, "KVM_CAP_IRQCHIP"), (userMemory, "KVM_CAP_USER_MEMORY"), (setTSSAddress, "KVM_CAP_SET_TSS_ADDR"),
        (extendedCPUID, "KVM_CAP_EXT_CPUID"), (pit2, "KVM_CAP_PIT2"), (immediateExit, "KVM_CAP_IMMEDIATE_EXIT"),
    ]
}
