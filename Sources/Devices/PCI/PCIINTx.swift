/// The legacy interrupt pins, INTx (PCI Local Bus 3.0 §2.2.6): level-triggered, shared, active low on the wire.
/// The interrupt pin register holds 1-4 for INTA-INTD, 0 for none.
public enum PCIInterruptPin: UInt8, Sendable, CaseIterable {
    case intA = 1, intB, intC, intD

    /// 0 for INTA ... 3 for INTD: the pin number an ACPI `_PRT` entry uses.
    public var index: Int { Int(rawValue) - 1 }
}

/// How the platform wires each slot's INTx pins to I/O APIC inputs (GSIs). Devices on bus 0 have no bridge in
/// between, so this is the whole routing; ACPI's `_PRT` publishes the same table to the guest.
///
/// The default spreads slots over GSIs 16-23 — the I/O APIC pins above the 16 ISA IRQs, free on this machine
/// (KVM's in-kernel I/O APIC has 24) — rotating the pin with the slot number as a PCI-to-PCI bridge swizzles
/// them, so the INTA of neighbouring slots lands on different GSIs.
public struct PCIINTxRouting: Sendable, Equatable {
    public var firstGSI: UInt32
    public var gsiCount: UInt32

    public init(firstGSI: UInt32 = 16, gsiCount: UInt32 = 8) {
        precondition(gsiCount > 0, "INTx routing needs at least one GSI")
        self.firstGSI = firstGSI
        self.gsiCount = gsiCount
    }

    public func gsi(device: UInt8, pin: PCIInterruptPin) -> UInt32 {
        firstGSI + (UInt32(device) + UInt32(pin.index)) % gsiCount
    }
}

/// A function's INTx output as the function's own lock sees it: the configuration space decides the level
/// (interrupt status set and INTx not disabled in the command register) and this only passes changes on.
/// Call `update(from:)` after the function changes its interrupt condition and after every configuration write
/// (the guest may have toggled interrupt-disable). PCI interrupts are level-triggered: the line stays asserted
/// until the driver clears the condition (for virtio, by reading the ISR register).
public struct PCIINTxLine: Sendable {
    private var line: LevelTrackedLine

    public init(_ line: any InterruptLine) { self.line = LevelTrackedLine(line) }

    public var isAsserted: Bool { line.level }

    public mutating func update(from configuration: PCIConfigurationSpace) {
        line.drive(configuration.intxAsserted)
    }
}
