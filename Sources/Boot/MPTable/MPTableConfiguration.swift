import GuestMemory

/// What the Intel MP table describes (MultiProcessor Specification 1.4, "MP spec" below). A plain value with
/// defaults for Swiftlet's machine; `validate()` runs before anything is built (and `MPTable.write` calls it).
///
/// The MP table is how a guest booted with `acpi=off` (Firecracker's and Kata's usual command lines) finds its
/// CPUs, its I/O APIC and how interrupts reach it. It says the same as the MADT and `_PRT` say to an ACPI guest;
/// Linux reads it only when ACPI gave it no MADT (arch/x86/kernel/mpparse.c, default_get_smp_config).
public struct MPTableConfiguration: Sendable, Equatable {
    /// One processor entry per vCPU, local APIC ID = vCPU index (as the MADT and KVM's defaults have it), the
    /// first one the bootstrap processor.
    public var vcpuCount: Int
    /// The I/O APIC's ID. KVM's in-kernel IOAPIC resets its ID register to 0, and the MADT says 0 too: the same
    /// value keeps Linux from reprogramming the register or warning about the difference.
    public var ioapicID: UInt8 = 0
    /// The I/O APIC version register's low byte as KVM's in-kernel IOAPIC reports it (IOAPIC_VERSION_ID 0x11,
    /// arch/x86/kvm/ioapic.h): 0x1x is an integrated 82489DX-successor APIC (MP spec §4.3.3).
    public var ioapicVersion: UInt8 = 0x11
    /// KVM_CREATE_IRQCHIP puts the IOAPIC at 0xFEC00000, its 24 pins being GSIs 0-23.
    public var ioapicAddress: GuestAddress = GuestAddress(0xFEC0_0000)
    /// The local APIC base every vCPU sees (the architectural default).
    public var localAPICAddress: GuestAddress = GuestAddress(0xFEE0_0000)
    /// The local APIC version register's low byte as KVM's LAPIC reports it (APIC_VERSION 0x14,
    /// arch/x86/kvm/lapic.c). Linux warns "APIC version mismatch" if an entry disagrees with the BSP's register.
    public var localAPICVersion: UInt8 = 0x14
    /// CPU signature for the processor entries (CPUID.1:EAX layout: stepping 3:0, model 7:4, family 11:8).
    /// Linux only prints it; the MP spec asks for the processor's own, so the builder may pass CPUID's.
    public var cpuSignature: UInt32 = 0x0600
    /// Feature flags for the processor entries (CPUID.1:EDX layout). Informational too; FPU (bit 0) and
    /// APIC (bit 9) are the two the MP spec names (§4.3.1, Table 4-5).
    public var cpuFeatureFlags: UInt32 = (1 << 0) | (1 << 9)
    /// Whether the machine has a PCI bus (bus 0): then the table has a PCI bus entry and `pciInterrupts`.
    public var pciBusPresent = false
    /// INTx routing of the devices on PCI bus 0, the same table the DSDT's `_PRT` publishes.
    public var pciInterrupts: [PCIInterrupt] = []
    /// Interrupt lines devices use (virtio-mmio devices' GSIs, ...). Those from 16 up are announced as ISA-bus
    /// sources whose bus IRQ is the GSI; those below 16 are ISA IRQs, always described, and need no entry.
    public var additionalLines: [InterruptLine] = []
    /// OEM ID (8 characters) and product ID (12 characters), space padded (MP spec §4.2, Table 4-2).
    public var oemID = "SWIFTLET"
    public var productID = "MICROVM"

    public init(vcpuCount: Int) {
        self.vcpuCount = vcpuCount
    }

    /// xAPIC IDs are 8 bits and 0xFF is the broadcast ID, so 255 processors at most (IDs 0-254), as in the MADT.
    public static let maximumVCPUCount = 255
    /// KVM's in-kernel IOAPIC has 24 pins.
    public static let ioapicPinCount = 24
    /// Linux keeps at most MAX_IRQ_SOURCES (256 on x86-64) I/O interrupt entries and panics when a table holds
    /// that many ("Max # of irq sources exceeded", mpparse.c mp_save_irq); stay below.
    public static let maximumInterruptEntries = 255

    /// INTx pin `pin` (0 = INTA ... 3 = INTD) of `device` on PCI bus 0 arrives on IOAPIC pin `gsi`.
    public struct PCIInterrupt: Sendable, Equatable {
        public var device: UInt8
        public var pin: UInt8
        public var gsi: UInt32

        public init(device: UInt8, pin: UInt8, gsi: UInt32) {
            self.device = device
            self.pin = pin
            self.gsi = gsi
        }
    }

    /// A GSI (an IOAPIC pin) a device raises, and how: edge and active high (what ISA conforms to, and how an
    /// irqfd-driven virtio-mmio line behaves) unless the device says otherwise.
    public struct InterruptLine: Sendable, Equatable {
        public var gsi: UInt32
        public var flags: MPInterruptFlags

        public init(gsi: UInt32, flags: MPInterruptFlags = .activeHighEdge) {
            self.gsi = gsi
            self.flags = flags
        }
    }

    public func validate() throws(BootError) {
        guard (1...Self.maximumVCPUCount).contains(vcpuCount) else {
            throw .invalidMPTable("\(vcpuCount) vCPUs: an MP table describes 1 to \(Self.maximumVCPUCount)")
        }
        for (field, address) in [("ioapicAddress", ioapicAddress), ("localAPICAddress", localAPICAddress)]
        where address.rawValue > UInt64(UInt32.max) {
            throw .invalidMPTable("\(field) \(address) is above 4 GiB (MP table addresses are 32-bit)")
        }
        for line in additionalLines where line.gsi >= Self.ioapicPinCount {
            throw .invalidMPTable("interrupt line GSI \(line.gsi): KVM's IOAPIC has pins 0-\(Self.ioapicPinCount - 1)")
        }
        for interrupt in pciInterrupts {
            guard interrupt.device < 32, interrupt.pin < 4, interrupt.gsi < Self.ioapicPinCount else {
                throw .invalidMPTable("PCI interrupt device \(interrupt.device) pin \(interrupt.pin) → GSI \(interrupt.gsi): device must be below 32, pin below 4, GSI below \(Self.ioapicPinCount)")
            }
        }
        if !pciInterrupts.isEmpty && !pciBusPresent {
            throw .invalidMPTable("PCI interrupts given but pciBusPresent is false")
        }
        let interruptEntries = 16 + additionalLines.filter { $0.gsi >= 16 }.count + pciInterrupts.count
        guard interruptEntries <= Self.maximumInterruptEntries else {
            throw .invalidMPTable("\(interruptEntries) I/O interrupt entries (Linux accepts at most \(Self.maximumInterruptEntries))")
        }
        guard oemID.utf8.count <= 8, productID.utf8.count <= 12, (oemID + productID).allSatisfy(\.isASCII) else {
            throw .invalidMPTable("OEM ID \"\(oemID)\" / product ID \"\(productID)\": ASCII, at most 8 and 12 characters")
        }
    }
}

/// The polarity and trigger mode of an interrupt entry (MP spec §4.3.4, Table 4-10: PO bits 1:0, EL bits 3:2).
/// 0 in a field means "conforms to the specifications of the bus": edge, active high for ISA; level, active low
/// for PCI.
public struct MPInterruptFlags: Sendable, Equatable {
    public var rawValue: UInt16

    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let conforming = MPInterruptFlags(rawValue: 0)
    /// PO = 01 (active high), EL = 01 (edge).
    public static let activeHighEdge = MPInterruptFlags(rawValue: 0b01_01)
    /// PO = 11 (active low), EL = 11 (level): what PCI INTx lines are.
    public static let activeLowLevel = MPInterruptFlags(rawValue: 0b11_11)
    /// PO = 01 (active high), EL = 11 (level).
    public static let activeHighLevel = MPInterruptFlags(rawValue: 0b11_01)
}
