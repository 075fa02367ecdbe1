/// The base MP configuration table entries (MP spec §4.3, Table 4-3). Each starts with its ENTRY TYPE byte; a
/// processor entry is 20 bytes, every other one 8.
enum MPBaseEntry: Equatable {
    /// §4.3.1 Processor Entry (Figure 4-4).
    case processor(localAPICID: UInt8, localAPICVersion: UInt8, enabled: Bool, bootstrap: Bool,
                   signature: UInt32, featureFlags: UInt32)
    /// §4.3.2 Bus Entry (Figure 4-5): BUS TYPE is a 6-character, space-filled string (Table 4-8).
    case bus(id: UInt8, type: BusType)
    /// §4.3.3 I/O APIC Entry (Figure 4-6).
    case ioAPIC(id: UInt8, version: UInt8, enabled: Bool, address: UInt32)
    /// §4.3.4 I/O Interrupt Assignment Entry (Figure 4-7): which IOAPIC pin a bus's interrupt source reaches.
    case ioInterrupt(type: InterruptType, flags: MPInterruptFlags, sourceBus: UInt8, sourceBusIRQ: UInt8,
                     destinationIOAPIC: UInt8, destinationPin: UInt8)
    /// §4.3.5 Local Interrupt Assignment Entry (Figure 4-8): which local APIC LINTIN pin a source reaches.
    case localInterrupt(type: InterruptType, flags: MPInterruptFlags, sourceBus: UInt8, sourceBusIRQ: UInt8,
                        destinationLocalAPIC: UInt8, destinationLINT: UInt8)

    enum EntryType {
        static let processor: UInt8 = 0
        static let bus: UInt8 = 1
        static let ioAPIC: UInt8 = 2
        static let ioInterrupt: UInt8 = 3
        static let localInterrupt: UInt8 = 4
    }

    enum BusType: String {
        case isa = "ISA   "
        case pci = "PCI   "
    }

    /// INTERRUPT TYPE (Table 4-9).
    enum InterruptType: UInt8 {
        /// A vectored interrupt: the vector comes from the APIC redirection table.
        case int = 0
        case nmi = 1
        case smi = 2
        /// The vector comes from an external 8259 (the PIC), as in virtual wire mode.
        case extINT = 3
    }

    /// CPU FLAGS (Figure 4-4): bit 0 EN (usable), bit 1 BP (the bootstrap processor).
    static let cpuEnabled: UInt8 = 1 << 0
    static let cpuBootstrap: UInt8 = 1 << 1
    /// I/O APIC FLAGS bit 0 EN (Figure 4-6).
    static let ioAPICEnabled: UInt8 = 1 << 0
    /// DESTINATION LOCAL APIC ID 0xFF: every local APIC (§4.3.5).
    static let allLocalAPICs: UInt8 = 0xFF

    static let processorLength = 20
    static let otherLength = 8

    var bytes: [UInt8] {
        var bytes: [UInt8]
        switch self {
        case let .processor(apicID, version, enabled, bootstrap, signature, featureFlags):
            bytes = [UInt8](repeating: 0, count: Self.processorLength)
            bytes[0] = EntryType.processor
            bytes[1] = apicID
            bytes[2] = version
            bytes[3] = (enabled ? Self.cpuEnabled : 0) | (bootstrap ? Self.cpuBootstrap : 0)
            bytes.put(signature, at: 4)
            bytes.put(featureFlags, at: 8)
            // @12-19 reserved
        case let .bus(id, type):
            bytes = [EntryType.bus, id] + Array(type.rawValue.utf8)
        case let .ioAPIC(id, version, enabled, address):
            bytes = [EntryType.ioAPIC, id, version, enabled ? Self.ioAPICEnabled : 0, 0, 0, 0, 0]
            bytes.put(address, at: 4)
        case let .ioInterrupt(type, flags, bus, irq, ioapic, pin):
            bytes = [EntryType.ioInterrupt, type.rawValue, 0, 0, bus, irq, ioapic, pin]
            bytes.put(flags.rawValue, at: 2)
        case let .localInterrupt(type, flags, bus, irq, apic, lint):
            bytes = [EntryType.localInterrupt, type.rawValue, 0, 0, bus, irq, apic, lint]
            bytes.put(flags.rawValue, at: 2)
        }
        return bytes
    }
}
