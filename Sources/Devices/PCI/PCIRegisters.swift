/// Offsets and bits of the type-0 configuration header (PCI Local Bus 3.0 §6.1-6.2; the names follow Linux's
/// include/uapi/linux/pci_regs.h so a reader can grep either side).
///
///     0x00 vendor ID        0x02 device ID         0x04 command          0x06 status
///     0x08 revision ID      0x09 class code (prog-if, subclass, class)   0x0C cache line size
///     0x0D latency timer    0x0E header type       0x0F BIST
///     0x10-0x27 BAR0-BAR5   0x28 CardBus CIS       0x2C subsystem vendor ID   0x2E subsystem ID
///     0x30 expansion ROM    0x34 capabilities pointer
///     0x3C interrupt line   0x3D interrupt pin     0x3E min grant        0x3F max latency
public enum PCIRegister {
    public static let vendorID = 0x00
    public static let deviceID = 0x02
    public static let command = 0x04
    public static let status = 0x06
    public static let revisionID = 0x08
    public static let classProgrammingInterface = 0x09
    public static let classSubclass = 0x0A
    public static let classBase = 0x0B
    public static let cacheLineSize = 0x0C
    public static let latencyTimer = 0x0D
    public static let headerType = 0x0E
    public static let bar0 = 0x10
    public static let subsystemVendorID = 0x2C
    public static let subsystemID = 0x2E
    public static let expansionROM = 0x30
    public static let capabilitiesPointer = 0x34
    public static let interruptLine = 0x3C
    public static let interruptPin = 0x3D

    /// Where capabilities may live: after the 64-byte header, inside the first 256 bytes.
    public static let firstCapabilityOffset = 0x40
    /// The offset of BAR `index` (0-5).
    public static func bar(_ index: Int) -> Int { bar0 + 4 * index }
}

/// Command register bits (PCI Local Bus 3.0 §6.2.2). Only these are writable here; the rest are hardwired 0.
public enum PCICommand {
    /// Respond to I/O-space accesses (I/O BARs decode only while set).
    public static let ioSpace: UInt16 = 1 << 0
    /// Respond to memory-space accesses (memory BARs decode only while set).
    public static let memorySpace: UInt16 = 1 << 1
    /// The function may master the bus: DMA and MSI/MSI-X writes.
    public static let busMaster: UInt16 = 1 << 2
    public static let parityErrorResponse: UInt16 = 1 << 6
    public static let serrEnable: UInt16 = 1 << 8
    /// INTx disable: while set the function must not assert its INTx pin (PCI 3.0 §6.2.2).
    public static let interruptDisable: UInt16 = 1 << 10

    static let writable: UInt16 = ioSpace | memorySpace | busMaster | parityErrorResponse | serrEnable
        | interruptDisable
}

/// Status register bits (PCI Local Bus 3.0 §6.2.3).
public enum PCIStatus {
    /// INTx status: the function's interrupt condition is pending (read-only, independent of interrupt disable).
    public static let interrupt: UInt16 = 1 << 3
    /// A capability list starts at the capabilities pointer (read-only).
    public static let capabilitiesList: UInt16 = 1 << 4
    /// Error bits software clears by writing 1 ("RW1C"): master data parity error, signaled / received target
    /// abort, received master abort, signaled system error, detected parity error.
    public static let writeOneToClear: UInt16 = 1 << 8 | 1 << 11 | 1 << 12 | 1 << 13 | 1 << 14 | 1 << 15
}

/// The capability IDs this package builds (PCI Code and ID Assignment Specification §2).
public enum PCICapabilityID {
    /// Vendor-specific: virtio-pci describes its register blocks with these (virtio 1.2 §4.1.4).
    public static let vendorSpecific: UInt8 = 0x09
    /// MSI-X (PCI Local Bus 3.0 §6.8.2).
    public static let msix: UInt8 = 0x11
}
