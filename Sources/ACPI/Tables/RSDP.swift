/// Root System Description Pointer (ACPI 6.5 §5.2.5.3), revision 2, 36 bytes: where the guest starts.
///
/// Linux finds it through the zero page's `acpi_rsdp_addr`, or by scanning 0xE0000-0xFFFFF on 16-byte
/// boundaries for "RSD PTR " and checking the first checksum.
///
/// Layout: Signature "RSD PTR " @0, Checksum u8 @8 (over bytes 0-19, the ACPI 1.0 part), OEMID[6] @9,
/// Revision u8 @15 (2 = ACPI 2.0+), RsdtAddress u32 @16, Length u32 @20 (36), XsdtAddress u64 @24,
/// Extended Checksum u8 @32 (over all 36 bytes), Reserved[3] @33.
///
/// There is no RSDT: RsdtAddress is 0 and a revision-2 RSDP with a non-zero XsdtAddress makes ACPICA use
/// the XSDT, whose 64-bit entries are what every table after ACPI 1.0 expects.
enum RSDP {
    static let length = 36
    static let signature = "RSD PTR "

    static func build(xsdtAddress: UInt64, oem: ACPIOEMIdentity) -> [UInt8] {
        var bytes: [UInt8] = Array(signature.utf8)
        bytes.append(0)  // checksum
        bytes.appendPadded(oem.oemID, width: 6)
        bytes.append(2)  // revision
        bytes.appendLittleEndian(UInt32(0))  // RsdtAddress: no RSDT
        bytes.appendLittleEndian(UInt32(length))
        bytes.appendLittleEndian(xsdtAddress)
        bytes.append(0)  // extended checksum
        bytes += [0, 0, 0]
        bytes[8] = ACPITable.checksum(of: bytes[0..<20])
        bytes[32] = ACPITable.checksum(of: bytes)
        return bytes
    }
}
