import GuestMemory

/// Builds the Intel MP table (MultiProcessor Specification 1.4) and writes it into guest memory.
///
///     try MPTable.write(MPTableConfiguration(vcpuCount: 2), into: memory)
///
/// Layout from `base` (0xF0000 by default, in the e820-reserved BIOS area where Linux scans for it):
///
///     base        MP floating pointer structure (16 bytes, "_MP_") → base + 16
///     base + 16   MP configuration table ("PCMP" header, then the base entries, sorted by entry type):
///                   one processor entry per vCPU      APIC ID = vCPU index, vCPU 0 the bootstrap processor
///                   bus entries                       PCI (bus 0) when present, ISA
///                   one I/O APIC entry                KVM's in-kernel IOAPIC
///                   I/O interrupt assignments         ISA IRQ n → IOAPIC pin n (n = 0-15), PCI INTx, extra lines
///                   local interrupt assignments       ExtINT → LINT0 of the BSP, NMI → LINT1 of every CPU
///
/// The ACPI tables sit below it (0xE0000 up to `base`). Linux uses this table only when ACPI gives it no MADT
/// (`acpi=off`, or a kernel without ACPI), so both must describe the same machine.
public enum MPTable {
    /// In the BIOS ROM area (0xF0000-0xFFFFF), which Linux scans on 16-byte boundaries and Swiftlet's e820 map
    /// reserves; the 64 KiB below it hold the ACPI tables. The EBDA (the last KiB below 640 KiB, where Firecracker
    /// puts its table) would be scanned too, but 1 KiB cannot hold the entries of 64 vCPUs and 128 PCI routes.
    public static let defaultBase = GuestAddress(0xF_0000)
    /// End of the BIOS area (1 MiB).
    public static let defaultLimit = GuestAddress(0x10_0000)

    /// ISA IRQs described by identity: IRQ n reaches IOAPIC pin n.
    ///
    /// This is how KVM's in-kernel irqchip is wired with its default routes (arch/x86/kvm/irq_comm.c,
    /// default_routing; Swiftlet resends the same ones, `GSIRoute.defaultIRQChipRoutes`): GSI n goes to PIC pin n and
    /// IOAPIC pin n, and the in-kernel PIT raises GSI 0. (QEMU replaces those routes and moves GSI 0 to pin 2, as
    /// real chipsets wire the PIT; its tables then say IRQ 0 → pin 2. Without that reroute pin 2 never fires.)
    /// The 8259's output is not an IOAPIC input in KVM: it reaches the BSP's LINT0, the ExtINT entry below.
    static let isaIRQCount = 16

    /// Writes the table for `config` at `base` and returns the address of its floating pointer (`base`).
    @discardableResult
    public static func write(
        _ config: MPTableConfiguration, into memory: GuestMemory,
        at base: GuestAddress = defaultBase, limit: GuestAddress = defaultLimit
    ) throws(BootError) -> GuestAddress {
        let bytes = try build(config, at: base, limit: limit)
        try writing("MP table at \(base)") { () throws(GuestMemoryError) in try memory.write(bytes, at: base) }
        return base
    }

    /// The table as it lies in guest memory from `base`: the floating pointer, then the configuration table.
    public static func build(
        _ config: MPTableConfiguration,
        at base: GuestAddress = defaultBase, limit: GuestAddress = defaultLimit
    ) throws(BootError) -> [UInt8] {
        try config.validate()
        guard base.rawValue % 16 == 0 else {
            throw .invalidMPTable("base \(base) is not 16-byte aligned (the floating pointer must be, MP spec §4.1)")
        }
        let table = MPConfigurationTableHeader.build(
            entries: entries(config), oemID: config.oemID, productID: config.productID,
            localAPICAddress: UInt32(config.localAPICAddress.rawValue))
        let size = UInt64(MPFloatingPointer.length + table.count)
        guard let end = base.checkedAdding(size), end <= limit, end.rawValue <= UInt64(UInt32.max) else {
            throw .invalidMPTable("\(size) bytes at \(base) do not fit below \(limit)")
        }
        let pointer = MPFloatingPointer.build(
            configurationTableAddress: UInt32(base.rawValue) + UInt32(MPFloatingPointer.length))
        return pointer + table
    }

    /// How many bytes the table takes for `config` (floating pointer included).
    public static func size(_ config: MPTableConfiguration) -> Int {
        MPFloatingPointer.length + MPConfigurationTableHeader.length
            + entries(config).reduce(0) { $0 + $1.bytes.count }
    }

    /// The base entries in the order the MP spec asks for: by entry type, ascending (§4.3).
    static func entries(_ config: MPTableConfiguration) -> [MPBaseEntry] {
        var entries: [MPBaseEntry] = []
        for index in 0..<config.vcpuCount {
            entries.append(.processor(localAPICID: UInt8(index), localAPICVersion: config.localAPICVersion,
                                      enabled: true, bootstrap: index == 0,
                                      signature: config.cpuSignature, featureFlags: config.cpuFeatureFlags))
        }

        // Linux finds a PCI device's INTx entry by comparing the entry's source bus ID with the device's PCI bus
        // number (io_apic.c, IO_APIC_get_PCI_irq_vector), so PCI bus 0 must be MP bus 0; ISA takes the next ID.
        let pciBus: UInt8 = 0
        let isaBus: UInt8 = config.pciBusPresent ? 1 : 0
        if config.pciBusPresent { entries.append(.bus(id: pciBus, type: .pci)) }
        entries.append(.bus(id: isaBus, type: .isa))

        entries.append(.ioAPIC(id: config.ioapicID, version: config.ioapicVersion, enabled: true,
                               address: UInt32(config.ioapicAddress.rawValue)))

        // ISA IRQs: edge, active high — "conforms to the bus" says that for ISA.
        for irq in 0..<isaIRQCount {
            entries.append(.ioInterrupt(type: .int, flags: .conforming, sourceBus: isaBus, sourceBusIRQ: UInt8(irq),
                                        destinationIOAPIC: config.ioapicID, destinationPin: UInt8(irq)))
        }
        // PCI INTx: the source bus IRQ holds the device number in bits 6:2 and the pin (0 = INTA) in bits 1:0
        // (MP spec §D.3); PCI lines are level-triggered, active low.
        for route in config.pciInterrupts {
            entries.append(.ioInterrupt(type: .int, flags: .activeLowLevel, sourceBus: pciBus,
                                        sourceBusIRQ: route.device << 2 | route.pin,
                                        destinationIOAPIC: config.ioapicID, destinationPin: UInt8(route.gsi)))
        }
        // Lines beyond ISA (virtio-mmio devices' GSIs): announced on the ISA bus with the GSI as bus IRQ, as other
        // VMMs do; Linux maps such a pin to an IRQ of its own choosing above the 16 legacy ones.
        var announced = Set<UInt32>()
        for line in config.additionalLines where line.gsi >= UInt32(isaIRQCount) && announced.insert(line.gsi).inserted {
            entries.append(.ioInterrupt(type: .int, flags: line.flags, sourceBus: isaBus, sourceBusIRQ: UInt8(line.gsi),
                                        destinationIOAPIC: config.ioapicID, destinationPin: UInt8(line.gsi)))
        }

        // Virtual wire mode (MP spec §3.6.2.2): the 8259's INTR reaches LINT0 of the BSP as ExtINT — KVM delivers
        // its PIC's output there — and LINT1 of every local APIC is the NMI input, as the MADT's Local APIC NMI says.
        entries.append(.localInterrupt(type: .extINT, flags: .conforming, sourceBus: isaBus, sourceBusIRQ: 0,
                                       destinationLocalAPIC: 0, destinationLINT: 0))
        entries.append(.localInterrupt(type: .nmi, flags: .conforming, sourceBus: isaBus, sourceBusIRQ: 0,
                                       destinationLocalAPIC: MPBaseEntry.allLocalAPICs, destinationLINT: 1))
        return entries
    }
}
