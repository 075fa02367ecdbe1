import ACPI
import GuestMemory
import Testing

// Field offsets in these tests are the ACPI 6.5 specification's (§5.2.5.3 RSDP, §5.2.6 header, §5.2.8 XSDT,
// §5.2.9 FADT, §5.2.12 MADT), written out as numbers on purpose: the tests are the spec, not the code.

@Suite("ACPI tables")
struct TableTests {
    let image: ACPITableImage

    init() throws {
        image = try ACPITables.build(ACPIConfiguration(vcpuCount: 2))
    }

    // MARK: Every table

    @Test("every table's checksum sums to 0 and its Length field is its size")
    func checksumsAndLengths() throws {
        #expect(image.tables.map(\.signature) == ["RSD PTR ", "XSDT", "FACP", "APIC", "DSDT"])
        for placed in image.tables where placed.signature != "RSD PTR " {
            let table = try #require(image.table(placed.signature))
            #expect(table.byteSum == 0, "\(placed.signature) checksum")
            #expect(Int(table.u32(4)) == table.count, "\(placed.signature) length")
            #expect(table.ascii(0, 4) == placed.signature)
            #expect(table.ascii(10, 6) == "SWIFTL")
            #expect(table.ascii(16, 8) == "SWIFTLET")
            #expect(table.ascii(28, 4) == "SWFT")
        }
    }

    @Test("tables lie at 16-byte aligned addresses inside [0xE0000, 0x100000)")
    func placement() {
        #expect(image.base == GuestAddress(0xE_0000))
        #expect(image.rsdpAddress == GuestAddress(0xE_0000))
        for table in image.tables {
            #expect(table.address.rawValue % 16 == 0)
            #expect(table.address.rawValue >= 0xE_0000)
            #expect(table.address.rawValue + UInt64(table.length) <= 0x10_0000)
        }
    }

    // MARK: RSDP

    @Test("RSDP: revision 2, both checksums, no RSDT, the XSDT's address")
    func rsdp() throws {
        let rsdp = try #require(image.table("RSD PTR "))
        #expect(rsdp.count == 36)
        #expect(rsdp.ascii(0, 8) == "RSD PTR ")
        #expect(Array(rsdp[0..<20]).byteSum == 0, "ACPI 1.0 checksum over the first 20 bytes")
        #expect(rsdp.byteSum == 0, "extended checksum over all 36 bytes")
        #expect(rsdp.ascii(9, 6) == "SWIFTL")
        #expect(rsdp.u8(15) == 2)
        #expect(rsdp.u32(16) == 0, "RsdtAddress")
        #expect(rsdp.u32(20) == 36)
        let xsdt = try #require(image.tables.first { $0.signature == "XSDT" })
        #expect(rsdp.u64(24) == xsdt.address.rawValue)
    }

    // MARK: XSDT

    @Test("XSDT lists the FADT and the MADT, not the DSDT")
    func xsdt() throws {
        let xsdt = try #require(image.table("XSDT"))
        #expect(xsdt.u8(8) == 1, "revision")
        #expect(xsdt.count == 36 + 2 * 8)
        let address = { (signature: String) in image.tables.first { $0.signature == signature }!.address.rawValue }
        #expect(xsdt.u64(36) == address("FACP"))
        #expect(xsdt.u64(44) == address("APIC"))
    }

    @Test("additional tables are laid out after the DSDT and listed in the XSDT")
    func additionalTables() throws {
        var config = ACPIConfiguration(vcpuCount: 1)
        let mcfg = ACPITable(signature: "MCFG", revision: 1, oem: config.oem, body: [UInt8](repeating: 0, count: 8 + 16))
        config.additionalTables = [mcfg]
        let image = try ACPITables.build(config)
        let xsdt = try #require(image.table("XSDT"))
        #expect(xsdt.count == 36 + 3 * 8)
        let placed = try #require(image.tables.last)
        #expect(placed.signature == "MCFG")
        #expect(xsdt.u64(52) == placed.address.rawValue)
        #expect(image.table("MCFG") == mcfg.bytes)
        #expect(mcfg.bytes.byteSum == 0)
    }

    // MARK: FADT

    @Test("FADT: revision 6.3, 276 bytes, hardware-reduced with reset and sleep registers")
    func fadt() throws {
        let fadt = try #require(image.table("FACP"))
        #expect(fadt.count == 276)
        #expect(fadt.u8(8) == 6, "major revision")
        #expect(fadt.u8(131) == 3, "FADT minor version")

        let flags = fadt.u32(112)
        #expect(flags == 1 << 20 | 1 << 10 | 1 << 5 | 1 << 4, "HW_REDUCED_ACPI, RESET_REG_SUP, SLP_BUTTON, PWR_BUTTON")

        let dsdt = try #require(image.tables.first { $0.signature == "DSDT" })
        #expect(fadt.u32(40) == 0, "32-bit DSDT must be 0 when X_DSDT is used")
        #expect(fadt.u64(140) == dsdt.address.rawValue, "X_DSDT")
        #expect(fadt.u32(36) == 0 && fadt.u64(132) == 0, "no FACS on a hardware-reduced platform")

        // Generic Address Structures: space 1 (system I/O), 8 bits wide, offset 0, byte access, port.
        #expect(Array(fadt[116..<128]) == [1, 8, 0, 1, 0x02, 0x06, 0, 0, 0, 0, 0, 0], "RESET_REG: port 0x602")
        #expect(fadt.u8(128) == 0x01, "RESET_VALUE")
        #expect(Array(fadt[244..<256]) == [1, 8, 0, 1, 0x00, 0x06, 0, 0, 0, 0, 0, 0], "SLEEP_CONTROL_REG: port 0x600")
        #expect(Array(fadt[256..<268]) == [1, 8, 0, 1, 0x01, 0x06, 0, 0, 0, 0, 0, 0], "SLEEP_STATUS_REG: port 0x601")

        // No fixed hardware: PM1a/PM1b event and control blocks, PM2, PM timer, GPE blocks, SMI_CMD.
        #expect(fadt[48..<96].allSatisfy { $0 == 0 })
        #expect(fadt[148..<244].allSatisfy { $0 == 0 })

        #expect(fadt.u16(46) == 9, "SCI_INT")
        #expect(fadt.u16(96) == 101 && fadt.u16(98) == 1001, "C2/C3 not supported")
        #expect(fadt.u8(108) == 0, "CENTURY: none unless configured")
        #expect(fadt.u16(109) == 0b1_0101, "IA-PC boot flags: LEGACY_DEVICES, VGA not present, no ASPM; no 8042")
        #expect(fadt.ascii(268, 8) == "SWIFTLET")
    }

    @Test("FADT boot flags follow the configured 8042, RTC and century register")
    func fadtOptions() throws {
        var config = ACPIConfiguration(vcpuCount: 1)
        config.i8042Present = true
        config.cmosRTC = false
        config.cmosCenturyRegister = 0x32
        config.powerRegisters = ACPIPowerRegisters(basePort: 0xB000, resetValue: 0x0E)
        let fadt = try #require(try ACPITables.build(config).table("FACP"))
        #expect(fadt.u16(109) == 0b11_0111, "LEGACY_DEVICES, 8042, VGA not present, no ASPM, CMOS RTC not present")
        #expect(fadt.u8(108) == 0x32)
        #expect(fadt.u64(116 + 4) == 0xB002 && fadt.u8(128) == 0x0E)
        #expect(fadt.u64(244 + 4) == 0xB000)
        #expect(fadt.u64(256 + 4) == 0xB001)
    }

    // MARK: MADT

    @Test("MADT: one enabled local APIC per vCPU, the IOAPIC, IRQ0 → GSI2, LINT1 NMI", arguments: [1, 2, 64, 255])
    func madt(vcpuCount: Int) throws {
        let image = try ACPITables.build(ACPIConfiguration(vcpuCount: vcpuCount))
        let madt = try #require(image.table("APIC"))
        #expect(madt.u8(8) == 5, "revision")
        #expect(madt.byteSum == 0)
        #expect(madt.count == 44 + 8 * vcpuCount + 12 + 10 + 6)
        #expect(madt.u32(36) == 0xFEE0_0000, "local APIC address")
        #expect(madt.u32(40) == 1, "PCAT_COMPAT")

        var localAPICs: [(uid: UInt8, apicID: UInt8, flags: UInt32)] = []
        var ioAPICs: [(id: UInt8, address: UInt32, gsiBase: UInt32)] = []
        var overrides: [(bus: UInt8, irq: UInt8, gsi: UInt32, flags: UInt16)] = []
        var nmis: [(uid: UInt8, flags: UInt16, lint: UInt8)] = []
        var offset = 44
        while offset < madt.count {
            let type = madt.u8(offset), length = Int(madt.u8(offset + 1))
            switch type {
            case 0:
                #expect(length == 8)
                localAPICs.append((madt.u8(offset + 2), madt.u8(offset + 3), madt.u32(offset + 4)))
            case 1:
                #expect(length == 12)
                ioAPICs.append((madt.u8(offset + 2), madt.u32(offset + 4), madt.u32(offset + 8)))
            case 2:
                #expect(length == 10)
                overrides.append((madt.u8(offset + 2), madt.u8(offset + 3), madt.u32(offset + 4), madt.u16(offset + 8)))
            case 4:
                #expect(length == 6)
                nmis.append((madt.u8(offset + 2), madt.u16(offset + 3), madt.u8(offset + 5)))
            default:
                Issue.record("unexpected MADT entry type \(type)")
            }
            offset += length
        }
        #expect(offset == madt.count, "entries end exactly at the table's end")

        #expect(localAPICs.count == vcpuCount)
        for (index, entry) in localAPICs.enumerated() {
            #expect(entry.uid == UInt8(index) && entry.apicID == UInt8(index) && entry.flags == 1)
        }
        #expect(ioAPICs.count == 1)
        #expect(ioAPICs.first?.id == 0 && ioAPICs.first?.address == 0xFEC0_0000 && ioAPICs.first?.gsiBase == 0)
        #expect(overrides.count == 1)
        #expect(overrides.first.map { [$0.bus, $0.irq] } == [0, 0])
        #expect(overrides.first?.gsi == 2 && overrides.first?.flags == 0)
        #expect(nmis.count == 1)
        #expect(nmis.first?.uid == 0xFF && nmis.first?.flags == 0x0005 && nmis.first?.lint == 1)

        #expect(image.end.rawValue <= 0x10_0000, "even \(vcpuCount) vCPUs fit below 1 MiB")
    }

    // MARK: DSDT

    @Test("DSDT: revision 2; \\_S5_ first, then \\_SB_ with COM1 and RTC")
    func dsdt() throws {
        let dsdt = try #require(image.table("DSDT"))
        #expect(dsdt.u8(8) == 2)
        let body = Array(dsdt[36...])
        #expect(Array(body.prefix(12)) == hex("08 5C 5F 53 35 5F 12 05 02 0A 05 00"))
        let expectedSystemBus = AML.Scope("\\_SB_", [
            LegacyDevices.serialPort(name: "COM1", uid: 0, ioBase: 0x3F8, irq: 4),
            LegacyDevices.cmosRTC(),
        ]).amlBytes
        #expect(Array(body[12...]) == expectedSystemBus)
    }

    @Test("DSDT leaves out COM1 and RTC when configured off and carries additional devices")
    func dsdtOptions() throws {
        var config = ACPIConfiguration(vcpuCount: 1)
        config.com1 = false
        config.cmosRTC = false
        config.additionalDevices = [AML.Device("VR00", [AML.Name("_HID", "LNRO0005")])]
        let dsdt = try #require(try ACPITables.build(config).table("DSDT"))
        let body = Array(dsdt[36...])
        #expect(Array(body[12...]) == AML.Scope("\\_SB_", config.additionalDevices).amlBytes)
    }
}

@Suite("ACPI configuration errors")
struct ConfigurationErrorTests {
    @Test("vCPU counts outside 1...255 are rejected", arguments: [0, -1, 256])
    func vcpuCount(count: Int) {
        #expect(throws: ACPIError.vcpuCountOutOfRange(count)) {
            try ACPITables.build(ACPIConfiguration(vcpuCount: count))
        }
    }

    @Test("APIC addresses must fit the MADT's 32-bit fields")
    func addresses() {
        var config = ACPIConfiguration(vcpuCount: 1)
        config.ioapicAddress = GuestAddress(0x1_FEC0_0000)
        #expect(throws: ACPIError.addressAbove4GiB(field: "ioapicAddress", address: GuestAddress(0x1_FEC0_0000))) {
            try ACPITables.build(config)
        }
    }

    @Test("OEM identifiers must fit their fields")
    func identifiers() {
        var config = ACPIConfiguration(vcpuCount: 1)
        config.oem.oemID = "TOOLONG"
        #expect(throws: ACPIError.invalidIdentifier(field: "oemID", value: "TOOLONG", width: 6)) {
            try ACPITables.build(config)
        }
    }

    @Test("the power register block must lie within the 16-bit port space")
    func powerPorts() {
        var config = ACPIConfiguration(vcpuCount: 1)
        config.powerRegisters = ACPIPowerRegisters(basePort: 0xFFFE)
        #expect(throws: ACPIError.invalidPowerRegisterPort(0xFFFE)) { try ACPITables.build(config) }
    }

    @Test("the RSDP must be 16-byte aligned")
    func alignment() {
        #expect(throws: ACPIError.misalignedBase(GuestAddress(0xE_0008))) {
            try ACPITables.build(ACPIConfiguration(vcpuCount: 1), at: GuestAddress(0xE_0008))
        }
    }

    @Test("tables that would run past the limit are rejected, not truncated")
    func tooLarge() throws {
        var config = ACPIConfiguration(vcpuCount: 1)
        // 16 devices with 8 KiB buffers: 128 KiB of AML, more than the BIOS area holds.
        config.additionalDevices = (0..<16).map { index in
            AML.Device(AMLName("BG\(index < 10 ? "0" : "")\(index)"), [AML.Name("DATA", AML.Buffer([UInt8](repeating: 0, count: 8192)))])
        }
        #expect {
            try ACPITables.build(config)
        } throws: { error in
            guard case let .tablesDoNotFit(base, size, limit) = error as? ACPIError else { return false }
            return base == GuestAddress(0xE_0000) && size > 0x2_0000 && limit == GuestAddress(0x10_0000)
        }
        // A tighter limit applies as well.
        #expect(throws: ACPIError.self) {
            try ACPITables.build(ACPIConfiguration(vcpuCount: 1), limit: GuestAddress(0xE_0100))
        }
    }
}
