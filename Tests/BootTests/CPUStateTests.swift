import Testing
@testable import Boot
import GuestMemory

/// GDT, page tables and the initial register state for the three ways a guest starts: Linux 64-bit
/// entry, PVH 32-bit entry, and a tiny test guest at CPL 0 or CPL 3.
@Suite struct CPUStateTests {
    // MARK: GDT

    @Test func descriptorsEncodeAsTheSDMLaysThemOut() {
        // Flat 4 GiB segments, limit 0xfffff in 4 KiB units, base 0.
        #expect(SegmentDescriptor(flags: 0xa09b, base: 0, limit: 0xfffff).encoded == 0x00af_9b00_0000_ffff)
        #expect(SegmentDescriptor(flags: 0xc093, base: 0, limit: 0xfffff).encoded == 0x00cf_9300_0000_ffff)
        // Base bits are split over three fields: 23:0 at bit 16, 31:24 at bit 56.
        #expect(SegmentDescriptor(flags: 0x008b, base: 0x1234_5678, limit: 0x67).encoded == 0x1200_8b34_5678_0067)
    }

    @Test func gdtHasLinuxsBootSelectors() throws {
        let memory = try makeGuestMemory()
        try BootGDT.write(to: memory)
        func entry(_ selector: UInt16) throws -> UInt64 {
            try memory.load(UInt64.self, at: BootLayout.gdt.adding(UInt64(selector & ~7)))
        }
        #expect(try entry(0x00) == 0)
        #expect(try entry(0x10) == 0x00af_9b00_0000_ffff)      // __BOOT_CS: 64-bit code
        #expect(try entry(0x18) == 0x00cf_9300_0000_ffff)      // __BOOT_DS: data
        #expect(try entry(0x20) == 0x0000_8b00_0600_00e8)      // busy TSS at 0x600, limit 0x67
        #expect(try entry(0x28) == 0)                          // TSS base 63:32
        #expect(try entry(0x30) == 0x00cf_9b00_0000_ffff)      // 32-bit code (PVH)
        #expect(try entry(0x38) == 0x00cf_f300_0000_ffff)      // DPL 3 data
        #expect(try entry(0x40) == 0x00af_fb00_0000_ffff)      // DPL 3 64-bit code
        #expect(BootGDT.limit == 9 * 8 - 1)
        // TSS: RSP0 at offset 4, I/O map base (no bitmap) at 102.
        #expect(try memory.load(UInt64.self, at: BootLayout.tss.adding(4)) == 0xfff0)
        #expect(try memory.load(UInt16.self, at: BootLayout.tss.adding(102)) == 104)
    }

    @Test func segmentStateIsTheDescriptorsHiddenPart() {
        let code = BootGDT.code64.segmentState(selector: 0x10)
        #expect(code == SegmentState(base: 0, limit: 0xffff_ffff, selector: 0x10, type: 0xb, present: 1, dpl: 0,
                                     db: 0, s: 1, l: 1, g: 1, avl: 0))
        let tss = BootGDT.tss.segmentState(selector: 0x20)
        #expect(tss == SegmentState(base: 0x600, limit: 0xe8, selector: 0x20, type: 0xb, present: 1, dpl: 0,
                                    db: 0, s: 0, l: 0, g: 0, avl: 0))
    }

    // MARK: Page tables

    @Test func pageTablesIdentityMapFourGiBWith2MiBPages() throws {
        let memory = try makeGuestMemory()
        let cr3 = try BootPageTables.write(to: memory)
        #expect(cr3 == 0x9000)
        // PML4[0] → PDPT, present + writable.
        #expect(try memory.load(UInt64.self, at: GuestAddress(0x9000)) == 0xa000 | 0x3)
        #expect(try memory.load(UInt64.self, at: GuestAddress(0x9008)) == 0)
        // PDPT[0...3] → the four page directories.
        for index in 0..<4 {
            #expect(try memory.load(UInt64.self, at: GuestAddress(0xa000 + UInt64(index) * 8)) == 0xb000 + UInt64(index) * 0x1000 | 0x3)
        }
        #expect(try memory.load(UInt64.self, at: GuestAddress(0xa020)) == 0)
        // PD entries: 2 MiB pages (PS, bit 7), mapping virtual = physical.
        #expect(try memory.load(UInt64.self, at: GuestAddress(0xb000)) == 0x0 | 0x83)
        #expect(try memory.load(UInt64.self, at: GuestAddress(0xb008)) == 0x20_0000 | 0x83)
        // The last entry of the last directory maps 4 GiB - 2 MiB.
        #expect(try memory.load(UInt64.self, at: GuestAddress(0xeff8)) == 0xffe0_0000 | 0x83)
    }

    @Test func userAccessiblePageTablesSetUSAtEveryLevel() throws {
        let memory = try makeGuestMemory()
        try BootPageTables.write(to: memory, userAccessible: true)
        #expect(try memory.load(UInt64.self, at: GuestAddress(0x9000)) & 0x4 != 0)
        #expect(try memory.load(UInt64.self, at: GuestAddress(0xa000)) & 0x4 != 0)
        #expect(try memory.load(UInt64.self, at: GuestAddress(0xb000)) == 0x87)
    }

    // MARK: Entry states

    @Test func linux64EntryFollowsThe64BitBootProtocol() throws {
        let memory = try makeGuestMemory()
        let state = try InitialCPUState.linux64(entry: GuestAddress(0x100_0000), in: memory)
        #expect(state.rip == 0x100_0000)
        #expect(state.rsi == 0x7000)                           // zero page
        #expect(state.rsp == 0x8ff0)
        #expect(state.rflags == 0x2)                           // interrupts off
        #expect(state.cr0 == 0x8000_0031)                      // PG | NE | ET | PE
        #expect(state.cr3 == 0x9000)
        #expect(state.cr4 == 0x20)                             // PAE
        #expect(state.efer == 0x500)                           // LMA | LME
        #expect(state.cs.selector == 0x10 && state.cs.l == 1)  // __BOOT_CS, 64-bit
        for segment in [state.ds, state.es, state.ss] { #expect(segment.selector == 0x18) }   // __BOOT_DS
        #expect(state.tr.selector == 0x20 && state.tr.type == 0xb)
        #expect(state.ldt.unusable == 1)
        #expect(state.gdt == DescriptorTableState(base: 0x500, limit: 71))
        #expect(state.idt == DescriptorTableState(base: 0x580, limit: 0))
    }

    @Test func userModeTestGuestRunsAtCPL3() throws {
        let memory = try makeGuestMemory()
        let state = try InitialCPUState.longModeState(entry: GuestAddress(0x10_0000), stack: GuestAddress(0x20_0000),
                                                      in: memory, userMode: true)
        #expect(state.rip == 0x10_0000)
        #expect(state.rsp == 0x20_0000)
        #expect(state.cs.selector == 0x43 && state.cs.dpl == 3 && state.cs.l == 1)
        #expect(state.ss.selector == 0x3b && state.ss.dpl == 3)
        #expect(state.rflags == 0x3002)                        // IOPL 3: port I/O still exits to the VMM
        #expect(try memory.load(UInt64.self, at: GuestAddress(0xb000)) & 0x4 != 0)
    }

    @Test func kernelModeTestGuestRunsAtCPL0() throws {
        let memory = try makeGuestMemory()
        let state = try InitialCPUState.longModeState(entry: GuestAddress(0x10_0000), stack: GuestAddress(0x20_0000),
                                                      in: memory, userMode: false)
        #expect(state.cs.selector == 0x10 && state.cs.dpl == 0)
        #expect(state.rflags == 0x2)
    }

    @Test func pvhEntryIs32BitProtectedModeWithoutPaging() throws {
        let memory = try makeGuestMemory()
        let state = try InitialCPUState.pvh32(entry: GuestAddress(0x100_0008), in: memory)
        #expect(state.rip == 0x100_0008)
        #expect(state.rbx == 0x6000)                           // hvm_start_info
        #expect(state.cr0 == 0x11)                             // PE (+ ET)
        #expect(state.cr3 == 0 && state.cr4 == 0 && state.efer == 0)
        #expect(state.cs.selector == 0x30 && state.cs.db == 1 && state.cs.l == 0 && state.cs.limit == 0xffff_ffff)
        #expect(state.ds.selector == 0x18 && state.ds.limit == 0xffff_ffff)
        #expect(state.tr.type == 0xb)
    }

    @Test func pvhStartInfoLayout() throws {
        let memory = try makeGuestMemory()
        let map = try E820Map(memory: memory)
        try PVHStartInfo.write(to: memory, commandLine: BootLayout.commandLine,
                               initrd: (GuestAddress(0x300_0000), 0x1234), rsdp: GuestAddress(0xe_0000), memoryMap: map)
        let info = try memory.read(at: BootLayout.pvhStartInfo, count: 56)
        #expect(info.u32(0) == 0x336e_c578)                    // magic
        #expect(info.u32(4) == 1)                              // version
        #expect(info.u32(12) == 1)                             // nr_modules
        #expect(info.u64(16) == 0x6040)                        // modlist_paddr
        #expect(info.u64(24) == 0x20000)                       // cmdline_paddr
        #expect(info.u64(32) == 0xe_0000)                      // rsdp_paddr
        #expect(info.u64(40) == 0x6080)                        // memmap_paddr
        #expect(info.u32(48) == 4)                             // memmap_entries
        let module = try memory.read(at: BootLayout.pvhModuleList, count: 32)
        #expect(module.u64(0) == 0x300_0000 && module.u64(8) == 0x1234)
        let lastEntry = try memory.read(at: BootLayout.pvhMemoryMap.adding(3 * 24), count: 24)
        #expect(lastEntry.u64(0) == 0x10_0000 && lastEntry.u64(8) == (64 << 20) - 0x10_0000 && lastEntry.u32(16) == 1)
    }
}
