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
