import Testing
@testable import KVM
@testable import Swiftlet

/// What each vCPU learns about itself and the machine from CPUID (the rest is what KVM supports, unchanged).
struct GuestCPUIDTests {
    let supported = [
        CPUIDEntry(function: 0x1, eax: 0x00A2_0F12, ebx: 0x0008_0800, ecx: 0x7ED8_320B, edx: 0x178B_FBFF),
        CPUIDEntry(function: 0xB, index: 0, flags: 1), CPUIDEntry(function: 0xB, index: 1, flags: 1),
        CPUIDEntry(function: 0x4000_0000, eax: 0x4000_0001, ebx: 0x4B4D_564B, ecx: 0x564B_4D56, edx: 0x4D),
    ]

    @Test func everyVCPUHasItsOwnAPICIDAndTheHypervisorBit() {
        for id in UInt32(0)..<4 {
            let table = GuestCPUID.table(supported: supported, vcpuID: id, vcpuCount: 4)
            let leaf1 = table.first { $0.function == 1 }!
            #expect(leaf1.ebx >> 24 == id, "initial APIC ID")
            #expect((leaf1.ebx >> 16) & 0xFF == 4, "logical processor count")
            #expect(leaf1.ecx & (1 << 31) != 0, "hypervisor present")
            #expect(leaf1.ebx & 0xFFFF == 0x0800, "CLFLUSH size and brand index kept")
            for entry in table where entry.function == 0xB { #expect(entry.edx == id, "x2APIC ID") }
        }
    }

    @Test func topologyIsOneThreadPerCoreAndNCores() {
        let table = GuestCPUID.table(supported: supported, vcpuID: 2, vcpuCount: 6)
        let smt = table.first { $0.function == 0xB && $0.index == 0 }!
        let core = table.first { $0.function == 0xB && $0.index == 1 }!
        #expect(smt.ebx == 1 && (smt.ecx >> 8) & 0xFF == 1)
        #expect(core.ebx == 6 && (core.ecx >> 8) & 0xFF == 2)
        #expect(core.eax == 3, "6 cores need 3 bits of the x2APIC ID")
    }

    @Test func otherLeavesPassThroughUnchanged() {
        let table = GuestCPUID.table(supported: supported, vcpuID: 0, vcpuCount: 1)
        #expect(table.last == supported.last)
        #expect(table.first { $0.function == 1 }!.edx & (1 << 28) == 0, "no HTT with one vCPU")
    }
}
