#if canImport(Glibc)
import Glibc
#endif

/// What kind of KVM this host offers. Most hosts have hardware virtualization; the project's own build
/// machines are VMs whose /dev/kvm is *nested PVM* (the `kvm_pvm` module), where guest kernel code is emulated
/// instruction by instruction and a guest's user space cannot make system calls (see shared/KVM-HERE.md).
public enum HostKind: Sendable, Equatable {
    case hardware
    case nestedPVM

    public static func detect(sysfsModules: String = "/sys/module") -> HostKind {
        access(sysfsModules + "/kvm_pvm", F_OK) == 0 ? .nestedPVM : .hardware
    }

    /// Said before booting a Linux guest on a PVM host.
    public static let pvmWarning = """
        this host's /dev/kvm is nested PVM (module kvm_pvm): a Linux guest's kernel runs here only slowly, \
        emulated, and its user space cannot make system calls, so the guest will not reach a shell. \
        Run it in a test host with real KVM instead: `scripts/testhost swiftlet run ...` (see docs/testhost.md). \
        Tiny test guests run fine here.
        """
}
