/// Extended System Description Table (ACPI 6.5 §5.2.8), signature "XSDT", revision 1: the header followed
/// by the 64-bit physical addresses of all other tables except the DSDT (which the FADT points to) and
/// the FACS (none on a hardware-reduced platform).
enum XSDT {
    static let revision: UInt8 = 1

    static func length(entryCount: Int) -> Int { ACPITable.headerLength + 8 * entryCount }

    static func build(entries: [UInt64], oem: ACPIOEMIdentity) -> ACPITable {
        var body: [UInt8] = []
        for address in entries { body.appendLittleEndian(address) }
        return ACPITable(signature: "XSDT", revision: revision, oem: oem, body: body)
    }
}
