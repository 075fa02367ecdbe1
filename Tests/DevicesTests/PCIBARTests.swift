import Testing

@testable import Devices

/// BAR sizing and decoding as PCI Local Bus 3.0 §6.2.5.1 describes and Linux's __pci_read_base performs it:
/// save the BAR, write all ones, read back the size mask, restore.
@Suite("PCI BARs")
struct PCIBARTests {
    /// What Linux does to BAR `index`: returns the value read back after writing all ones, and restores.
    func size(_ space: inout PCIConfigurationSpace, bar index: Int) -> UInt32 {
        let offset = PCIRegister.bar(index)
        let saved = space.read(offset: offset, width: 4)
        space.write(offset: offset, width: 4, value: 0xFFFF_FFFF)
        let mask = space.read(offset: offset, width: 4)
        space.write(offset: offset, width: 4, value: saved)
        return mask
    }

    func makeSpace() -> PCIConfigurationSpace { PCIConfigurationSpace(identity: TestPCIFunction.identity) }

    @Test func memory32BARSizesAndKeepsFlags() {
        var space = makeSpace()
        space.setBAR(0, .memory32(size: 0x1000), address: 0xC000_0000)
        space.setBAR(1, .memory32(size: 0x10_0000, prefetchable: true), address: 0xC010_0000)
        #expect(space.read(offset: 0x10, width: 4) == 0xC000_0000)
        #expect(size(&space, bar: 0) == 0xFFFF_F000)
        #expect(size(&space, bar: 1) == 0xFFF0_0008)  // bit 3: prefetchable
        #expect(space.read(offset: 0x10, width: 4) == 0xC000_0000, "restored")
        #expect(space.read(offset: 0x14, width: 4) == 0xC010_0008)
    }

    @Test func memory64BARSizesAcrossBothRegisters() {
        var space = makeSpace()
        space.setBAR(2, .memory64(size: 0x4000), address: 0x1_2345_8000)
        #expect(space.read(offset: 0x18, width: 4) == 0x2345_8004)  // type 10b: 64-bit
        #expect(space.read(offset: 0x1C, width: 4) == 0x0000_0001)
        #expect(space.barAddress(2) == 0x1_2345_8000)
        #expect(size(&space, bar: 2) == 0xFFFF_C004)
        #expect(size(&space, bar: 3) == 0xFFFF_FFFF)  // the upper half: every address bit writable

        // 8 GiB: the size shows in the upper register; the lower has no writable address bits at all.
        space.setBAR(4, .memory64(size: 8 << 30, prefetchable: true))
        #expect(size(&space, bar: 4) == 0x0000_000C)
        #expect(size(&space, bar: 5) == 0xFFFF_FFFE)
    }

    @Test func ioBARSizes() {
        var space = makeSpace()
        space.setBAR(5, .io(size: 0x20), address: 0xC040)
        #expect(space.read(offset: 0x24, width: 4) == 0xC041)  // bit 0: I/O space
        #expect(size(&space, bar: 5) == 0xFFFF_FFE1)
    }

    @Test func unimplementedBARsAndExpansionROMReadZeroAfterSizing() {
        var space = makeSpace()
        space.setBAR(0, .memory32(size: 0x1000))
        #expect(size(&space, bar: 3) == 0)
        space.write(offset: PCIRegister.expansionROM, width: 4, value: 0xFFFF_F801)
        #expect(space.read(offset: PCIRegister.expansionROM, width: 4) == 0)
    }

    @Test func barsDecodeOnlyWhenEnabledAndPlaced() {
        var space = makeSpace()
        space.setBAR(0, .memory32(size: 0x1000), address: 0xC000_0000)
        space.setBAR(1, .memory32(size: 0x1000))  // unassigned (0)
        space.setBAR(2, .memory64(size: 0x4000), address: 0x1_0000_0000)
        space.setBAR(4, .io(size: 0x20), address: 0xC000)
        #expect(space.decodedBARs.isEmpty, "the command register starts with decoding off")

        space.write(offset: 0x04, width: 2, value: UInt32(PCICommand.memorySpace))
        #expect(space.decodedBARs == [
            PCIBARMapping(index: 0, kind: .memory32, base: 0xC000_0000, size: 0x1000),
            PCIBARMapping(index: 2, kind: .memory64, base: 0x1_0000_0000, size: 0x4000),
        ])
        space.write(offset: 0x04, width: 2, value: UInt32(PCICommand.memorySpace | PCICommand.ioSpace))
        #expect(space.decodedBARs.map(\.index) == [0, 2, 4])

        // With decoding left on (a careless guest), the all-ones sizing pattern is not a placement.
        space.write(offset: 0x10, width: 4, value: 0xFFFF_FFFF)
        space.write(offset: 0x18, width: 4, value: 0xFFFF_FFFF)
        space.write(offset: 0x1C, width: 4, value: 0xFFFF_FFFF)
        space.write(offset: 0x20, width: 4, value: 0xFFFF_FFFF)
        #expect(space.decodedBARs.isEmpty)
    }

    @Test func guestMovesABAR() {
        var space = makeSpace()
        space.setBAR(0, .memory32(size: 0x1000), address: 0xC000_0000)
        space.write(offset: 0x04, width: 2, value: UInt32(PCICommand.memorySpace))
        // Low address bits are not writable: an unaligned address lands aligned down.
        space.write(offset: 0x10, width: 4, value: 0xD000_0ABC)
        #expect(space.barAddress(0) == 0xD000_0000)
        #expect(space.decodedBARs.first?.base == 0xD000_0000)
        // Byte writes reach the BAR too (bytes 2-3 are the top of the address).
        space.write(offset: 0x13, width: 1, value: 0xC1)
        #expect(space.barAddress(0) == 0xC100_0000)
    }

    @Test func allocatorAlignsAndReportsExhaustion() throws {
        var layout = PCILayout()
        layout.memory32Window = 0xC000_0000...0xC001_FFFF  // 128 KiB
        layout.memory64Window = 0x10_0000_0000...0x10_FFFF_FFFF
        var allocator = PCIBARAllocator(layout: layout)
        #expect(try allocator.allocate(.memory32(size: 0x100)) == 0xC000_0000)
        #expect(try allocator.allocate(.memory32(size: 0x100)) == 0xC000_1000, "at least a page apart")
        #expect(try allocator.allocate(.memory32(size: 0x8000)) == 0xC000_8000, "aligned to its size")
        #expect(try allocator.allocate(.memory64(size: 0x4000)) == 0x10_0000_0000)
        #expect(try allocator.allocate(.io(size: 0x20)) == 0xC000)
        #expect(try allocator.allocate(.io(size: 0x40)) == 0xC040)
        #expect(throws: PCIError.windowExhausted(window: "32-bit memory", size: 0x2_0000)) {
            try allocator.allocate(.memory32(size: 0x2_0000))
        }

        var space = PCIConfigurationSpace(identity: TestPCIFunction.identity)
        space.setBAR(0, .memory32(size: 0x1000))
        space.setBAR(2, .memory64(size: 0x2000))
        let placed = try allocator.place(&space)
        #expect(placed == [0: 0xC001_0000, 2: 0x10_0000_4000])
        #expect(space.barAddress(2) == 0x10_0000_4000)
    }

    @Test func layoutValidation() {
        var layout = PCILayout()
        #expect(throws: Never.self) { try layout.validate() }
        layout.ecamBase = 0xE000_1000
        #expect(throws: PCIError.self) { try layout.validate() }
        layout = PCILayout()
        layout.memory32Window = 0xD000_0000...0xE000_0FFF
        #expect(throws: PCIError.invalidLayout("the ECAM window overlaps the 32-bit memory window")) {
            try layout.validate()
        }
        layout = PCILayout()
        layout.ioWindow = 0x0C00...0x0FFF
        #expect(throws: PCIError.self) { try layout.validate() }
    }
}
