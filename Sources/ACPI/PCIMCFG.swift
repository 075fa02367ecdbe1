extension PCIHostBridgeACPI {
    static let mcfgRevision: UInt8 = 1

    /// The MCFG table (PCI Firmware Specification 3.2 §4.1.2): where each segment's ECAM space is.
    ///
    ///     header (36 bytes) | reserved (8 bytes) | one 16-byte allocation per segment:
    ///       +0 base address (u64, the address of bus 0) | +8 segment (u16) | +10 start bus | +11 end bus
    ///       +12 reserved (u32)
    public static func mcfg(_ description: PCIHostBridgeDescription, oem: ACPIOEMIdentity = ACPIOEMIdentity())
        -> ACPITable
    {
        var body = [UInt8](repeating: 0, count: 8)
        body.appendLittleEndian(description.ecamBase)
        body.appendLittleEndian(description.segment)
        body.append(description.busRange.lowerBound)
        body.append(description.busRange.upperBound)
        body.appendLittleEndian(UInt32(0))
        return ACPITable(signature: "MCFG", revision: mcfgRevision, oem: oem, body: body)
    }
}
