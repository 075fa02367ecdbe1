import Testing
@testable import Boot
import GuestMemory

/// The e820 map a PC guest gets: conventional memory, the EBDA and BIOS area reserved, RAM from 1 MiB to
/// the MMIO hole, and RAM above 4 GiB for large guests.
@Suite struct E820MapTests {
    typealias Entry = E820Map.Entry

    @Test func guestOf512MiB() throws {
        let map = try E820Map(ramRanges: X86MemoryLayout.ramRanges(size: 512 << 20))
        #expect(map.entries == [
            Entry(address: GuestAddress(0), size: 0x9_fc00, type: .ram),
            Entry(address: GuestAddress(0x9_fc00), size: 0x400, type: .reserved),      // EBDA
            Entry(address: GuestAddress(0xe_0000), size: 0x2_0000, type: .reserved),   // BIOS area, ACPI
            Entry(address: GuestAddress(0x10_0000), size: (512 << 20) - 0x10_0000, type: .ram),
        ])
        #expect(map.lowRAMEnd == GuestAddress(512 << 20))
    }

    @Test func guestOf6GiBContinuesAbove4GiB() throws {
        // 3 GiB below the MMIO hole at 0xc0000000, the other 3 GiB from 4 GiB up.
        let map = try E820Map(ramRanges: X86MemoryLayout.ramRanges(size: 6 << 30))
        #expect(map.entries == [
            Entry(address: GuestAddress(0), size: 0x9_fc00, type: .ram),
            Entry(address: GuestAddress(0x9_fc00), size: 0x400, type: .reserved),
            Entry(address: GuestAddress(0xe_0000), size: 0x2_0000, type: .reserved),
            Entry(address: GuestAddress(0x10_0000), size: 0xc000_0000 - 0x10_0000, type: .ram),
            Entry(address: GuestAddress(0x1_0000_0000), size: 3 << 30, type: .ram),
        ])
        #expect(map.lowRAMEnd == GuestAddress(0xc000_0000))
    }

    @Test func builtFromGuestMemoryRegions() throws {
        let memory = try makeGuestMemory(mebibytes: 128)
        #expect(try E820Map(memory: memory) == E820Map(ramRanges: X86MemoryLayout.ramRanges(size: 128 << 20)))
    }

    @Test func guestWithoutRAMAbove1MiBIsRejected() {
        guard case .unsupportedMemoryLayout = thrownError({ try E820Map(ramRanges: [(GuestAddress(0), 0x8_0000)]) }) else {
            Issue.record("expected unsupportedMemoryLayout")
            return
        }
    }

    @Test func guestWithoutRAMAtZeroIsRejected() {
        #expect(thrownError { try E820Map(ramRanges: [(GuestAddress(0x1_0000_0000), 1 << 30)]) } != nil)
    }
}
