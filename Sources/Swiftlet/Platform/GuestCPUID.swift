import KVM

/// Builds each vCPU's CPUID table from what KVM supports (KVM_GET_SUPPORTED_CPUID).
///
/// KVM returns what the host *can* virtualise; the VMM decides what the guest sees. We change only what
/// identifies the vCPU and the machine:
/// - leaf 1 ECX bit 31, "running under a hypervisor": KVM leaves it clear, and without it Linux does not look
///   for the KVM paravirtual leaves, finds no kvm-clock, fails to calibrate the TSC and stalls (KVM-HERE.md);
/// - the initial APIC ID (leaf 1 EBX[31:24]; leaves 0xB and 0x1F EDX), and the logical-processor count, so
///   each vCPU knows who it is and the guest's topology matches the MADT: one core per vCPU, one thread each.
public enum GuestCPUID {
    static let hypervisorBit: UInt32 = 1 << 31
    static let htt: UInt32 = 1 << 28

    public static func table(supported: [CPUIDEntry], vcpuID: UInt32, vcpuCount: Int) -> [CPUIDEntry] {
        let count = UInt32(max(vcpuCount, 1))
        // Bits needed to number the cores: the x2APIC ID shift of the core level.
        let coreShift = UInt32(count <= 1 ? 0 : 32 - (count - 1).leadingZeroBitCount)
        return supported.map { entry in
            var e = entry
            switch e.function {
            case 0x1:
                e.ecx |= hypervisorBit
                e.ebx = (e.ebx & 0x0000_FFFF) | (vcpuID << 24) | (min(count, 255) << 16)
                if count > 1 { e.edx |= htt } else { e.edx &= ~htt }
            case 0xB, 0x1F:
                // Extended topology: subleaf 0 is the SMT level (1 thread per core), subleaf 1 the core level.
                e.edx = vcpuID
                switch e.index {
                case 0: e.eax = 0; e.ebx = 1; e.ecx = (1 << 8) | e.index
                case 1: e.eax = coreShift; e.ebx = count; e.ecx = (2 << 8) | e.index
                default: e.eax = 0; e.ebx = 0; e.ecx = e.index
                }
            default:
                break
            }
            return e
        }
    }
}
