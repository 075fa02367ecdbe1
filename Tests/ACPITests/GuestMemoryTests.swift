import ACPI
import GuestMemory
import Testing

/// The tables as a guest kernel finds them: scan the BIOS area for the RSDP the way Linux's
/// `acpi_find_root_pointer` does, then follow the pointers.
@Suite("ACPI tables in guest memory")
struct GuestMemoryTableTests {
    /// Scans [start, end) on 16-byte boundaries for "RSD PTR " with a valid ACPI 1.0 checksum.
    func scanForRSDP(_ memory: GuestMemory, from start: UInt64 = 0xE_0000, to end: UInt64 = 0x10_0000) throws -> UInt64? {
        for address in stride(from: start, to: end, by: 16) {
            let candidate = try memory.bytes(at: address, count: 20)
            if candidate.ascii(0, 8) == "RSD PTR ", candidate.byteSum == 0 { return address }
        }
        return nil
    }

    /// The table at `address`, its length taken from its own header.
    func table(_ memory: GuestMemory, at address: UInt64) throws -> [UInt8] {
        let length = try memory.u32(at: address + 4)
        return try memory.bytes(at: address, count: Int(length))
    }

    @Test("the RSDP is found by scanning, and every pointer leads to a valid table", arguments: [1, 2, 64])
    func followPointers(vcpuCount: Int) throws {
        let memory = try makeGuestMemory()
        let rsdp = try ACPITables.write(ACPIConfiguration(vcpuCount: vcpuCount), into: memory)
        #expect(rsdp == GuestAddress(0xE_0000))
        #expect(try scanForRSDP(memory) == rsdp.rawValue)

        let rsdpBytes = try memory.bytes(at: rsdp.rawValue, count: 36)
        #expect(rsdpBytes.byteSum == 0)
        let xsdt = try table(memory, at: rsdpBytes.u64(24))
        #expect(xsdt.ascii(0, 4) == "XSDT" && xsdt.byteSum == 0)

        var signatures: [String] = []
        for entry in stride(from: 36, to: xsdt.count, by: 8) {
            let tableBytes = try table(memory, at: xsdt.u64(entry))
            #expect(tableBytes.byteSum == 0)
            signatures.append(tableBytes.ascii(0, 4))
            if tableBytes.ascii(0, 4) == "FACP" {
                let dsdt = try table(memory, at: tableBytes.u64(140))
                #expect(dsdt.ascii(0, 4) == "DSDT" && dsdt.byteSum == 0)
            }
            if tableBytes.ascii(0, 4) == "APIC" {
                var localAPICs = 0, offset = 44
                while offset < tableBytes.count {
                    if tableBytes[offset] == 0 { localAPICs += 1 }  // type 0: Processor Local APIC
                    offset += Int(tableBytes[offset + 1])
                }
                #expect(localAPICs == vcpuCount)
            }
        }
        #expect(signatures == ["FACP", "APIC"])
    }

    @Test("nothing but the tables is written: memory outside the image stays untouched")
    func writesOnlyTheImage() throws {
        let memory = try makeGuestMemory()
        try memory.write([UInt8](repeating: 0xCC, count: 0x2_0000), at: GuestAddress(0xE_0000))
        let image = try ACPITables.build(ACPIConfiguration(vcpuCount: 4))
        try ACPITables.write(ACPIConfiguration(vcpuCount: 4), into: memory)
        #expect(try memory.bytes(at: 0xE_0000, count: image.bytes.count) == image.bytes)
        let after = try memory.bytes(at: image.end.rawValue, count: 16)
        #expect(after.allSatisfy { $0 == 0xCC })
    }

    @Test("a guest without RAM at the tables' address gets a typed error")
    func noRAM() throws {
        let memory = try GuestMemory(ranges: [(GuestAddress(0), 0x8_0000)])  // 512 KiB
        #expect {
            try ACPITables.write(ACPIConfiguration(vcpuCount: 1), into: memory)
        } throws: { error in
            guard case .guestMemory(.outOfBounds) = error as? ACPIError else { return false }
            return true
        }
    }
}

@Suite("ACPI power registers")
struct PowerRegisterTests {
    let registers = ACPIPowerRegisters()

    @Test("the block is ports 0x600-0x603: sleep control, sleep status, reset")
    func ports() {
        #expect(registers.ports == 0x600...0x603)
        #expect(registers.sleepControlPort == 0x600)
        #expect(registers.sleepStatusPort == 0x601)
        #expect(registers.resetPort == 0x602)
        #expect(registers.resetValue == 0x01)
    }

    @Test("Linux's S5 write, (5 << 2) | SLP_EN = 0x34, is a power-off request")
    func powerOff() {
        #expect(ACPIPowerRegisters.powerOffValue == 0x34)
        #expect(registers.request(forWrite: 0x34, toPort: 0x600) == .powerOff)
        // Linux first clears WAK_STS in the status register: not a request.
        #expect(registers.request(forWrite: 0x80, toPort: 0x601) == nil)
        // SLP_TYP 5 without SLP_EN, or SLP_EN with another sleep type, is not power-off.
        #expect(registers.request(forWrite: 0x14, toPort: 0x600) == nil)
        #expect(registers.request(forWrite: 0x20, toPort: 0x600) == nil)
        #expect(registers.request(forWrite: 0x2C, toPort: 0x600) == nil)
        // Bits outside SLP_TYP and SLP_EN do not matter.
        #expect(registers.request(forWrite: 0x34 | 0x03, toPort: 0x600) == .powerOff)
    }

    @Test("RESET_VALUE written to RESET_REG is a reset request; other values are not")
    func reset() {
        #expect(registers.request(forWrite: 0x01, toPort: 0x602) == .reset)
        #expect(registers.request(forWrite: 0x06, toPort: 0x602) == nil)
        #expect(registers.request(forWrite: 0x01, toPort: 0x603) == nil)
        #expect(registers.request(forWrite: 0x01, toPort: 0x600) == nil)
    }
}
