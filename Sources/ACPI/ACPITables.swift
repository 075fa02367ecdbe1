import GuestMemory

/// Builds Swiftlet's ACPI tables and writes them into guest memory.
///
///     let rsdp = try ACPITables.write(ACPIConfiguration(vcpuCount: 2), into: memory)
///     // then: zero page acpi_rsdp_addr = rsdp; e820 marks [0xE0000, 0x100000) reserved
///
/// Layout, from `base` (0xE0000 by default), each piece 16-byte aligned, all of it below `limit`:
///
///     RSDP  (36 bytes; must be first: it is the one the guest scans for)
///     VM Generation ID (16 bytes, zero; only with `vmGenerationID`: here its address is known before any table
///           is built, and the DSDT's ADDR method names it)
///     XSDT  → FACP, APIC, additional tables
///     FACP  → DSDT (X_DSDT)
///     APIC  (MADT)
///     DSDT
///     additional tables
///
/// The guest finds the RSDP either through the zero page's `acpi_rsdp_addr` or by scanning 0xE0000-0xFFFFF
/// on 16-byte boundaries; the range must be reserved in the e820 map so that Linux does not reuse it.
public enum ACPITables {
    /// Start of the PC BIOS area, where a guest scans for the RSDP.
    public static let defaultBase = GuestAddress(0xE_0000)
    /// End of the BIOS area (1 MiB): the tables must end at or below it.
    public static let defaultLimit = GuestAddress(0x10_0000)

    /// Writes the tables for `config` at `base` and returns the RSDP's address (which is `base`).
    @discardableResult
    public static func write(
        _ config: ACPIConfiguration, into memory: GuestMemory,
        at base: GuestAddress = defaultBase, limit: GuestAddress = defaultLimit
    ) throws(ACPIError) -> GuestAddress {
        try writeImage(config, into: memory, at: base, limit: limit).rsdpAddress
    }

    /// Writes the tables for `config` at `base` and returns them as placed (the RSDP's address, and where the VM
    /// Generation ID goes).
    public static func writeImage(
        _ config: ACPIConfiguration, into memory: GuestMemory,
        at base: GuestAddress = defaultBase, limit: GuestAddress = defaultLimit
    ) throws(ACPIError) -> ACPITableImage {
        let image = try build(config, at: base, limit: limit)
        do throws(GuestMemoryError) {
            try memory.write(image.bytes, at: image.base)
        } catch {
            throw .guestMemory(error)
        }
        return image
    }

    /// Builds the tables for `config` as they would lie in guest memory from `base`, without writing them.
    public static func build(
        _ config: ACPIConfiguration,
        at base: GuestAddress = defaultBase, limit: GuestAddress = defaultLimit
    ) throws(ACPIError) -> ACPITableImage {
        try config.validate()
        guard base.rawValue % 16 == 0 else { throw .misalignedBase(base) }

        var offset = 0
        func place(_ length: Int) -> Int {
            let start = offset
            offset = (offset + length + 15) & ~15
            return start
        }
        let rsdpOffset = place(RSDP.length)
        // The ID's 16 bytes lie in the same e820-reserved block as the tables, so the guest never uses them as
        // RAM; 16-byte aligned, they never cross a page (the guest maps just those bytes).
        let vmGenerationIDAddress = config.vmGenerationID.map { _ in
            // Wrapping: a base that close to 2^64 fails the fit check below before the address is used.
            GuestAddress(base.rawValue &+ UInt64(place(VMGenerationIDACPI.idLength)))
        }

        // Tables that point at nothing are built first; their sizes fix every address.
        let dsdt = DSDT.build(config, vmGenerationIDAddress: vmGenerationIDAddress)
        let madt = MADT.build(config)
        let xsdtEntryCount = 2 + config.additionalTables.count
        let xsdtLength = XSDT.length(entryCount: xsdtEntryCount)

        let xsdtOffset = place(xsdtLength)
        let fadtOffset = place(FADT.length)
        let madtOffset = place(madt.length)
        let dsdtOffset = place(dsdt.length)
        let additionalOffsets = config.additionalTables.map { place($0.length) }
        let size = UInt64(offset)

        guard let end = base.checkedAdding(size), end <= limit else {
            throw .tablesDoNotFit(base: base, size: size, limit: limit)
        }
        func address(_ offset: Int) -> UInt64 { base.rawValue + UInt64(offset) }

        let fadt = FADT.build(config, dsdtAddress: address(dsdtOffset))
        let xsdt = XSDT.build(
            entries: [address(fadtOffset), address(madtOffset)] + additionalOffsets.map(address),
            oem: config.oem)
        let rsdp = RSDP.build(xsdtAddress: address(xsdtOffset), oem: config.oem)

        var bytes = [UInt8](repeating: 0, count: offset)
        var placed: [ACPITableImage.PlacedTable] = []
        func put(_ tableBytes: [UInt8], signature: String, at tableOffset: Int) {
            bytes.replace(at: tableOffset, with: tableBytes)
            placed.append(.init(signature: signature, address: GuestAddress(address(tableOffset)), length: tableBytes.count))
        }
        put(rsdp, signature: RSDP.signature, at: rsdpOffset)
        for (table, tableOffset) in [(xsdt, xsdtOffset), (fadt, fadtOffset), (madt, madtOffset), (dsdt, dsdtOffset)]
            + Array(zip(config.additionalTables, additionalOffsets)) {
            put(table.bytes, signature: table.signature, at: tableOffset)
        }
        return ACPITableImage(base: base, bytes: bytes, tables: placed, vmGenerationIDAddress: vmGenerationIDAddress)
    }
}

/// The tables laid out as they lie in guest memory: one contiguous, zero-padded block from `base`.
public struct ACPITableImage: Sendable {
    public struct PlacedTable: Sendable, Equatable {
        /// "RSD PTR " for the RSDP, the 4-character signature for the others.
        public let signature: String
        public let address: GuestAddress
        public let length: Int
    }

    public let base: GuestAddress
    public let bytes: [UInt8]
    /// In layout order: RSDP, XSDT, FACP, APIC, DSDT, then the additional tables.
    public let tables: [PlacedTable]
    /// Where the VM Generation ID's 16 bytes are (zero in `bytes`), when the configuration has one.
    public let vmGenerationIDAddress: GuestAddress?

    public var rsdpAddress: GuestAddress { base }
    public var end: GuestAddress { base.adding(UInt64(bytes.count)) }

    /// The bytes of the first table with `signature`, or nil.
    public func table(_ signature: String) -> [UInt8]? {
        guard let table = tables.first(where: { $0.signature == signature }) else { return nil }
        let start = Int(table.address.rawValue - base.rawValue)
        return Array(bytes[start..<(start + table.length)])
    }
}
