/// Who made the tables, as every table header and the RSDP say (ACPI 6.5 §5.2.6). Linux only prints these,
/// but they show up in `dmesg` ("ACPI: FACP 0x... 000114 (v06 SWIFTL SWIFTLET 00000001 SWFT 00000001)") and
/// identify the VMM to anyone reading a guest's boot log.
public struct ACPIOEMIdentity: Sendable, Equatable {
    /// OEM ID, up to 6 ASCII characters (padded with spaces).
    public var oemID: String = "SWIFTL"
    /// OEM Table ID, up to 8 ASCII characters; the same for all of Swiftlet's tables.
    public var oemTableID: String = "SWIFTLET"
    public var oemRevision: UInt32 = 1
    /// Creator ID: the vendor of the tool that built the table (iasl writes "INTL"), up to 4 characters.
    public var creatorID: String = "SWFT"
    public var creatorRevision: UInt32 = 1

    public init() {}

    /// Checks the identifiers fit their fixed-width fields and are printable ASCII.
    public func validate() throws(ACPIError) {
        try ACPIOEMIdentity.check(oemID, field: "oemID", width: 6)
        try ACPIOEMIdentity.check(oemTableID, field: "oemTableID", width: 8)
        try ACPIOEMIdentity.check(creatorID, field: "creatorID", width: 4)
    }

    static func check(_ value: String, field: String, width: Int) throws(ACPIError) {
        let bytes = Array(value.utf8)
        guard !bytes.isEmpty, bytes.count <= width, bytes.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            throw .invalidIdentifier(field: field, value: value, width: width)
        }
    }
}

/// One complete system description table: the 36-byte header (ACPI 6.5 §5.2.6) followed by its body, with
/// Length and Checksum filled in.
///
/// Header layout: Signature[4] @0, Length u32 @4, Revision u8 @8, Checksum u8 @9, OEMID[6] @10,
/// OEM Table ID[8] @16, OEM Revision u32 @24, Creator ID[4] @28, Creator Revision u32 @32. The checksum
/// makes all bytes of the table (header included) sum to zero modulo 256.
public struct ACPITable: Sendable, Equatable {
    public static let headerLength = 36

    /// The whole table, header included.
    public let bytes: [UInt8]

    /// Builds a table from its body. `signature` must be 4 ASCII characters ("FACP", "APIC", "MCFG", ...).
    public init(signature: String, revision: UInt8, oem: ACPIOEMIdentity, body: [UInt8]) {
        precondition(signature.utf8.count == 4, "ACPI table signatures have 4 characters: \(signature)")
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ACPITable.headerLength + body.count)
        bytes += signature.utf8
        bytes.appendLittleEndian(UInt32(ACPITable.headerLength + body.count))
        bytes.append(revision)
        bytes.append(0)  // checksum, filled in below
        bytes.appendPadded(oem.oemID, width: 6)
        bytes.appendPadded(oem.oemTableID, width: 8)
        bytes.appendLittleEndian(oem.oemRevision)
        bytes.appendPadded(oem.creatorID, width: 4)
        bytes.appendLittleEndian(oem.creatorRevision)
        bytes += body
        bytes[9] = ACPITable.checksum(of: bytes)
        self.bytes = bytes
    }

    public var signature: String { String(decoding: bytes[0..<4], as: UTF8.self) }
    public var length: Int { bytes.count }

    /// The byte that makes `bytes` (with that byte currently 0) sum to zero modulo 256.
    static func checksum(of bytes: some Sequence<UInt8>) -> UInt8 {
        0 &- bytes.reduce(0, &+)
    }
}

extension Array where Element == UInt8 {
    /// Appends `text` as ASCII, padded with spaces to `width` bytes (ACPI's convention for OEM strings).
    mutating func appendPadded(_ text: String, width: Int) {
        let ascii = Array(text.utf8.prefix(width))
        self += ascii
        self += repeatElement(UInt8(ascii: " "), count: width - ascii.count)
    }
}
