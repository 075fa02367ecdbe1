/// Multiple APIC Description Table (ACPI 6.5 §5.2.12), signature "APIC", revision 5 (ACPI 6.3: the revision
/// from which the Online Capable flag is defined). It is how Linux learns how many CPUs there are and where
/// the I/O APIC is: the Debian cloud kernel has no MP-table parser (CONFIG_X86_MPPARSE is off), so without
/// this table it boots one CPU and no I/O APIC.
///
/// Layout: header, Local Interrupt Controller Address u32 @36, Flags u32 @40, then interrupt controller
/// structures from @44, each starting with Type u8 and Length u8. Swiftlet's MADT holds:
/// - one Processor Local APIC (type 0) per vCPU, APIC ID = ACPI processor UID = vCPU index, enabled;
/// - one I/O APIC (type 1): KVM's in-kernel IOAPIC, GSI base 0 (its 24 pins are GSIs 0-23);
/// - one Interrupt Source Override (type 2): ISA IRQ 0 → GSI 2. KVM's in-kernel PIT raises IRQ 0, and
///   KVM's default IRQ routing delivers IRQ 0 to PIC pin 0 and IOAPIC pin 2 (as wired on real PCs, whose
///   IOAPIC pin 0 carries the 8259's output). ISA IRQs without an override map to the GSI of the same
///   number — so a VMM raising IRQ 4 or 8 with KVM_IRQ_LINE reaches IOAPIC pins 4 and 8;
/// - one Local APIC NMI (type 4): LINT1 of every processor is the NMI input.
enum MADT {
    static let revision: UInt8 = 5

    /// Flags @40 bit 0, PCAT_COMPAT: the machine also has dual 8259 PICs, which the OS must mask before
    /// using the APICs. True here — KVM_CREATE_IRQCHIP creates the PIC pair next to the IOAPIC.
    static let pcatCompatible: UInt32 = 1 << 0

    enum EntryType {
        static let processorLocalAPIC: UInt8 = 0
        static let ioAPIC: UInt8 = 1
        static let interruptSourceOverride: UInt8 = 2
        static let localAPICNMI: UInt8 = 4
    }

    /// MPS INTI flags (§5.2.12.5, Table 5.26): polarity bits 0-1 (01 active high, 11 active low), trigger
    /// mode bits 2-3 (01 edge, 11 level); 0 means "conforms to the bus" — for ISA, edge and active high.
    enum INTIFlags {
        static let conforming: UInt16 = 0
        static let activeHighEdge: UInt16 = 0b01_01
    }

    static func length(vcpuCount: Int) -> Int {
        ACPITable.headerLength + 8 + 8 * vcpuCount + 12 + 10 + 6
    }

    static func build(_ config: ACPIConfiguration) -> ACPITable {
        var body: [UInt8] = []
        body.appendLittleEndian(UInt32(config.localAPICAddress.rawValue))
        body.appendLittleEndian(pcatCompatible)

        // Processor Local APIC (§5.2.12.2), 8 bytes: type, length, ACPI Processor UID, APIC ID,
        // flags u32 (bit 0 Enabled, bit 1 Online Capable — only meaningful for disabled entries).
        for index in 0..<config.vcpuCount {
            body += [EntryType.processorLocalAPIC, 8, UInt8(index), UInt8(index)]
            body.appendLittleEndian(UInt32(1))
        }

        // I/O APIC (§5.2.12.3), 12 bytes: type, length, I/O APIC ID, reserved, address u32, GSI base u32.
        body += [EntryType.ioAPIC, 12, config.ioapicID, 0]
        body.appendLittleEndian(UInt32(config.ioapicAddress.rawValue))
        body.appendLittleEndian(UInt32(0))

        // Interrupt Source Override (§5.2.12.5), 10 bytes: type, length, bus (0 = ISA), source IRQ,
        // GSI u32, flags u16. The PIT's IRQ 0 arrives on IOAPIC pin 2; flags conform to ISA (edge, high).
        // (A VMM that replaces KVM's default routing with KVM_SET_GSI_ROUTING must keep GSI 0 → pin 2.)
        body += [EntryType.interruptSourceOverride, 10, 0, 0]
        body.appendLittleEndian(UInt32(2))
        body.appendLittleEndian(INTIFlags.conforming)

        // Local APIC NMI (§5.2.12.7), 6 bytes: type, length, ACPI Processor UID (0xFF = all processors),
        // flags u16, local APIC LINT# (1). Linux warns if the NMI is not on LINT1.
        body += [EntryType.localAPICNMI, 6, 0xFF]
        body.appendLittleEndian(INTIFlags.activeHighEdge)
        body.append(1)

        return ACPITable(signature: "APIC", revision: revision, oem: config.oem, body: body)
    }
}
