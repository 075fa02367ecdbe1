import KVM

/// Can this host run a guest saved elsewhere? Its kernel probed the CPU features at boot and uses them from then
/// on (AVX-512 in memcpy, XSAVE areas of a given size, ...): restored on a host whose KVM cannot give it one of
/// them, it would take #UD or corrupt state at its first use. So a restore compares the feature bits of the
/// saved CPUID table (what the guest saw) with what a guest booted on this host would see, as Firecracker's CPU
/// templates and Cloud Hypervisor's CPUID compatibility check do.
extension GuestCPUID {
    enum Register: String { case eax, ebx, ecx, edx }

    /// A register of feature flags compared on restore, and the bits in it that are not features the host must
    /// have: ones KVM changes at run time from the guest's own settings (OSXSAVE and OSPKE follow CR4, APIC the
    /// APIC base MSR) and ones Swiftlet sets itself (hypervisor, HTT; `table`).
    struct FeatureRegister {
        let function: UInt32
        let index: UInt32
        let register: Register
        let ignored: UInt32
    }

    static let featureRegisters: [FeatureRegister] = [
        FeatureRegister(function: 0x1, index: 0, register: .ecx, ignored: hypervisorBit | 1 << 27),   // OSXSAVE
        FeatureRegister(function: 0x1, index: 0, register: .edx, ignored: htt | 1 << 9),              // APIC
        FeatureRegister(function: 0x7, index: 0, register: .ebx, ignored: 0),
        FeatureRegister(function: 0x7, index: 0, register: .ecx, ignored: 1 << 4),                    // OSPKE
        FeatureRegister(function: 0x7, index: 0, register: .edx, ignored: 0),
        FeatureRegister(function: 0x7, index: 1, register: .eax, ignored: 0),
        FeatureRegister(function: 0xD, index: 1, register: .eax, ignored: 0),                         // XSAVEOPT, XSAVES, ...
        FeatureRegister(function: 0x8000_0001, index: 0, register: .ecx, ignored: 0),
        FeatureRegister(function: 0x8000_0001, index: 0, register: .edx, ignored: 0),
    ]

    /// What a guest booted here would see: `vcpu` (new, not yet run) is given the table `table` builds and
    /// KVM_GET_CPUID2 reads back what KVM made of it. That is usually the table itself, but not everywhere: a
    /// nested PVM host (KVM-HERE.md) reports a reduced KVM_GET_SUPPORTED_CPUID and gives its guests the host's
    /// own CPUID. A host that refuses KVM_GET_CPUID2 is compared with the table as set. The caller sets the
    /// vCPU's real table afterwards (KVM takes a new one until the first KVM_RUN).
    static func seenByANewGuest(_ vcpu: VCPU, supported: [CPUIDEntry], vcpuCount: Int) throws(KVMError) -> [CPUIDEntry] {
        let fresh = table(supported: supported, vcpuID: vcpu.id, vcpuCount: vcpuCount)
        try vcpu.setCPUID(fresh)
        return (try? vcpu.cpuid()) ?? fresh
    }

    /// The features the guest saw in `saved` that `available` lacks, as "CPUID.(EAX=0x7,ECX=0):EBX bits 5, 16";
    /// empty when this host can run it. A leaf the saved table does not have is not compared.
    static func missingFeatures(saved: [CPUIDEntry], available: [CPUIDEntry]) -> [String] {
        func entry(_ table: [CPUIDEntry], _ function: UInt32, _ index: UInt32) -> CPUIDEntry? {
            table.first { $0.function == function && $0.index == index }
        }
        func value(_ entry: CPUIDEntry?, _ register: Register) -> UInt32 {
            guard let entry else { return 0 }
            switch register {
            case .eax: return entry.eax
            case .ebx: return entry.ebx
            case .ecx: return entry.ecx
            case .edx: return entry.edx
            }
        }
        var missing: [String] = []
        for feature in featureRegisters {
            guard let savedEntry = entry(saved, feature.function, feature.index) else { continue }
            let lacking = value(savedEntry, feature.register) & ~value(entry(available, feature.function, feature.index), feature.register)
                & ~feature.ignored
            guard lacking != 0 else { continue }
            let bits = (0..<32).filter { lacking & (1 << $0) != 0 }.map(String.init).joined(separator: ", ")
            missing.append("CPUID.(EAX=0x\(String(feature.function, radix: 16)),ECX=\(feature.index)):\(feature.register.rawValue.uppercased()) "
                           + "bit\(lacking.nonzeroBitCount == 1 ? "" : "s") \(bits)")
        }
        return missing
    }
}
