import GuestMemory

/// The MP Floating Pointer Structure (MP spec §4.1, Figure 4-2): 16 bytes on a 16-byte boundary, found by
/// scanning for its signature. Linux scans the first KiB of memory, the last KiB below 640 KiB, the BIOS ROM area
/// 0xF0000-0xFFFFF and the EBDA named by the BIOS data area (mpparse.c, default_find_smp_config); Swiftlet puts it
/// in the BIOS area (`MPTable.defaultBase`).
///
///     @0  "_MP_"                       @4  PHYSICAL ADDRESS POINTER u32 (the configuration table)
///     @8  LENGTH u8 (in 16-byte units: 1)     @9  SPEC_REV u8 (4 = version 1.4)
///     @10 CHECKSUM u8 (all 16 bytes sum to 0)  @11 FEATURE1 u8 (0: a configuration table is present)
///     @12 FEATURE2 u8 (bit 7 IMCRP: 0 = virtual wire mode, no IMCR)   @13-15 FEATURE3-5, reserved 0
enum MPFloatingPointer {
    static let signature = Array("_MP_".utf8)
    static let length = 16
    /// 1.4 (Linux accepts 1 and 4).
    static let specRevision: UInt8 = 4

    /// FEATURE2 bit 7 (IMCRP) clear: the machine runs in virtual wire mode from reset — the 8259's output reaches
    /// the BSP's LINT0, not an IMCR (MP spec §3.6.2.2). KVM wires its PIC that way, and has no IMCR port (0x22/0x23).
    static let feature2VirtualWire: UInt8 = 0

    static func build(configurationTableAddress: UInt32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        bytes.replaceSubrange(0..<4, with: signature)
        bytes.put(configurationTableAddress, at: 4)
        bytes[8] = 1
        bytes[9] = specRevision
        bytes[11] = 0   // FEATURE1 = 0: the table at PHYSICAL ADDRESS POINTER, no default configuration
        bytes[12] = feature2VirtualWire
        bytes[10] = MPChecksum.complement(of: bytes)
        return bytes
    }
}

/// MP spec checksums (§4.1, §4.2): the byte that makes the structure's bytes add up to 0 modulo 256.
enum MPChecksum {
    static func sum(_ bytes: some Collection<UInt8>) -> UInt8 {
        bytes.reduce(0, &+)
    }

    /// The checksum byte for `bytes`, whose checksum field must still be 0.
    static func complement(of bytes: some Collection<UInt8>) -> UInt8 {
        0 &- sum(bytes)
    }
}
