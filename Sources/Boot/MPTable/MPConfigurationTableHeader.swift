/// The MP Configuration Table Header (MP spec §4.2, Figure 4-3, Table 4-2), 44 bytes, followed by the base table
/// entries. Linux checks the signature, the checksum over BASE TABLE LENGTH bytes, SPEC_REV 1 or 4 and a non-zero
/// local APIC address (mpparse.c, smp_check_mpc) before reading any entry.
///
///     @0  "PCMP"                 @4  BASE TABLE LENGTH u16 (header + entries)   @6 SPEC_REV u8 (4)
///     @7  CHECKSUM u8 (the base table sums to 0)   @8 OEM ID [8]   @16 PRODUCT ID [12]
///     @28 OEM TABLE POINTER u32 (0: none)          @32 OEM TABLE SIZE u16   @34 ENTRY COUNT u16
///     @36 ADDRESS OF LOCAL APIC u32                @40 EXTENDED TABLE LENGTH u16 (0)
///     @42 EXTENDED TABLE CHECKSUM u8 (0)           @43 reserved
enum MPConfigurationTableHeader {
    static let signature = Array("PCMP".utf8)
    static let length = 44
    static let specRevision: UInt8 = 4

    /// The whole base table: this header, then `entries` as they are, the checksum over all of it.
    static func build(entries: [MPBaseEntry], oemID: String, productID: String, localAPICAddress: UInt32) -> [UInt8] {
        let body = entries.flatMap(\.bytes)
        var bytes = [UInt8](repeating: 0, count: length)
        bytes.replaceSubrange(0..<4, with: signature)
        bytes.put(UInt16(length + body.count), at: 4)
        bytes[6] = specRevision
        bytes.replaceSubrange(8..<16, with: padded(oemID, to: 8))
        bytes.replaceSubrange(16..<28, with: padded(productID, to: 12))
        bytes.put(UInt16(entries.count), at: 34)
        bytes.put(localAPICAddress, at: 36)
        bytes += body
        bytes[7] = MPChecksum.complement(of: bytes)
        return bytes
    }

    /// ID strings are space-filled, not NUL-terminated (Table 4-2).
    static func padded(_ text: String, to width: Int) -> [UInt8] {
        let utf8 = Array(text.utf8.prefix(width))
        return utf8 + [UInt8](repeating: 0x20, count: width - utf8.count)
    }
}
