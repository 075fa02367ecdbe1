import Testing
@testable import GuestMemory

@Suite struct GuestMemoryBounds {
    let memory = try! GuestMemory(ranges: [(GuestAddress(0), 0x1000), (GuestAddress(0x10000), 0x1000)])

    @Test func roundTripsIntegersLittleEndian() throws {
        try memory.store(UInt32(0x1122_3344), at: GuestAddress(0x10))
        #expect(try memory.load(UInt8.self, at: GuestAddress(0x10)) == 0x44)
        #expect(try memory.load(UInt32.self, at: GuestAddress(0x10)) == 0x1122_3344)
        try memory.store(UInt64.max, at: GuestAddress(0x10FF8))
        #expect(try memory.load(UInt64.self, at: GuestAddress(0x10FF8)) == .max)
    }

    @Test func rejectsAccessesThatLeaveARegion() {
        // Straddles the end of the first region by one byte.
        #expect(throws: GuestMemoryError.outOfBounds(address: GuestAddress(0xFFD), length: 4)) {
            try memory.load(UInt32.self, at: GuestAddress(0xFFD))
        }
        // In the gap between the regions.
        #expect(throws: GuestMemoryError.self) { try memory.write([1, 2, 3], at: GuestAddress(0x2000)) }
        // Past the last region.
        #expect(throws: GuestMemoryError.self) { try memory.read(at: GuestAddress(0x11000), count: 1) }
    }

    @Test func rejectsLengthsThatWrapTheAddressSpace() {
        #expect(throws: GuestMemoryError.self) { try memory.read(at: GuestAddress(UInt64.max), count: 2) }
        #expect(throws: GuestMemoryError.self) { try memory.zero(at: GuestAddress(0x10), count: UInt64.max) }
        #expect(!memory.contains(GuestAddress(0x10), length: UInt64.max - 8))
    }

    @Test func copiesByteRanges() throws {
        try memory.write([1, 2, 3, 4], at: GuestAddress(0x10FFC))
        #expect(try memory.read(at: GuestAddress(0x10FFC), count: 4) == [1, 2, 3, 4])
        var buffer = [UInt8](repeating: 0, count: 2)
        try memory.read(into: &buffer, at: GuestAddress(0x10FFE))
        #expect(buffer == [3, 4])
        try memory.zero(at: GuestAddress(0x10FFC), count: 4)
        #expect(try memory.read(at: GuestAddress(0x10FFC), count: 4) == [0, 0, 0, 0])
    }

    @Test func zeroLengthAccessAtTheEndIsAllowed() throws {
        #expect(try memory.read(at: GuestAddress(0x1000), count: 0) == [])
    }

    @Test func rejectsOverlappingRegions() {
        #expect(throws: GuestMemoryError.self) {
            try GuestMemory(ranges: [(GuestAddress(0), 0x2000), (GuestAddress(0x1000), 0x1000)])
        }
        #expect(throws: GuestMemoryError.self) { try GuestMemory(ranges: [(GuestAddress(0), 0)]) }
    }

    @Test func readsCStrings() throws {
        try memory.write(Array("console=ttyS0".utf8) + [0], at: GuestAddress(0x100))
        #expect(try memory.readCString(at: GuestAddress(0x100), maxLength: 64) == "console=ttyS0")
        #expect(try memory.readCString(at: GuestAddress(0x100), maxLength: 7) == "console")
    }
}

@Suite struct X86Layout {
    @Test func smallGuestsAreOneLowRegion() {
        let ranges = X86MemoryLayout.ramRanges(size: 512 << 20)
        #expect(ranges.count == 1)
        #expect(ranges[0].size == 512 << 20)
    }

    @Test func largeGuestsContinueAbove4GiB() {
        let ranges = X86MemoryLayout.ramRanges(size: 6 << 30)
        #expect(ranges.count == 2)
        #expect(ranges[0].start == GuestAddress(0) && ranges[0].size == 3 << 30)
        #expect(ranges[1].start == GuestAddress(4 << 30) && ranges[1].size == 3 << 30)
    }
}
