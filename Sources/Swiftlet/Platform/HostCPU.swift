import CHost

/// The host's CPU as CPUID describes it, for checks that a saved guest can run here.
public enum HostCPU {
    /// "GenuineIntel", "AuthenticAMD", ...; nil where CPUID has no leaf 0.
    public static let vendor: String? = {
        var bytes = [CChar](repeating: 0, count: 13)
        guard chost_cpu_vendor(&bytes) == 0 else { return nil }
        return String(decoding: bytes.prefix(12).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// The vendor string CPUID leaf 0 spells in EBX, EDX, ECX (in that order), four little-endian bytes each.
    public static func vendor(ebx: UInt32, ecx: UInt32, edx: UInt32) -> String {
        let bytes = [ebx, edx, ecx].flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The running kernel's boot, as /proc/sys/kernel/random/boot_id names it (a random UUID per boot).
///
/// A snapshot records the boot it was saved in (the `host` section). Restored in that same boot, the guest meets
/// the same CPU, the same kernel and the same KVM with the same module settings, so what it saw is exactly what a
/// new guest here would see and the CPU feature check (`GuestCPUID.missingFeatures`) has nothing to find; it is
/// skipped, which saves KVM_GET_SUPPORTED_CPUID and two CPUID round trips on every clone (~0.35 ms on this
/// project's nested host, where each CPUID instruction traps). After a reboot, or on another host, the check runs.
public enum HostBoot {
    public static let id: String? = ProcFile.read("/proc/sys/kernel/random/boot_id", maximum: 64)
}
