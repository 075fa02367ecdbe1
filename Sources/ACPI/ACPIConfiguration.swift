import GuestMemory

/// What the ACPI tables describe. A plain value with defaults for Swiftlet's machine; `validate()` runs
/// before anything is built (and `ACPITables.write` calls it).
public struct ACPIConfiguration: Sendable {
    /// Number of vCPUs: the MADT gets one enabled Processor Local APIC per vCPU, APIC IDs 0..<vcpuCount
    /// (the VMM must give vCPU i the APIC ID i, which is KVM's default for the vCPU created with id i).
    public var vcpuCount: Int
    /// The in-kernel I/O APIC (KVM_CREATE_IRQCHIP puts it at 0xFEC00000, GSIs 0-23).
    public var ioapicAddress: GuestAddress = GuestAddress(0xFEC0_0000)
    /// The I/O APIC's ID in the MADT. KVM's in-kernel IOAPIC resets its ID register to 0, and Linux
    /// warns ("Using reg apic_id 0 instead of N") when the MADT disagrees with the register, so 0.
    public var ioapicID: UInt8 = 0
    /// The local APIC base every vCPU sees (the architectural default).
    public var localAPICAddress: GuestAddress = GuestAddress(0xFEE0_0000)
    /// The ports for power-off and reset; see `ACPIPowerRegisters` for what the guest writes there.
    public var powerRegisters = ACPIPowerRegisters()
    /// Declare COM1 (PNP0501, ports 0x3F8-0x3FF, IRQ 4) in the DSDT.
    public var com1 = true
    /// Declare the CMOS RTC (PNP0B00, ports 0x70-0x71, IRQ 8) in the DSDT; when false the FADT says
    /// "CMOS RTC not present" instead.
    public var cmosRTC = true
    /// CMOS register index of the BCD century byte (FADT CENTURY), or 0 for none. Only set this when the
    /// VMM's RTC implements that register (0x32 on PC-compatible RTCs): Linux then reads the century from
    /// it; with 0 it assumes 19xx/20xx from the two-digit year, which is right until 2070.
    public var cmosCenturyRegister: UInt8 = 0
    /// Whether an 8042 keyboard controller is present: the FADT's IA-PC boot flag "8042" and a PNP0303
    /// keyboard device in the DSDT. Default false: with neither, Linux's i8042 driver does not probe ports
    /// 0x60/0x64 at all, which saves boot time and needs no keyboard emulation. Rebooting through the 8042
    /// (`reboot=k`) works either way: that path writes 0xFE to port 0x64 directly, without the driver. A VMM
    /// that types keys into the guest (Ctrl-Alt-Del) needs it true, and a complete enough i8042.
    public var i8042Present = false
    /// A VM Generation ID device (`VMGenerationIDACPI`) and the Generic Event Device that announces a new ID, or
    /// nil for none. The tables then keep 16 bytes for the ID right after the RSDP (`ACPITableImage.
    /// vmGenerationIDAddress`), zero: the VMM writes the ID there.
    public var vmGenerationID: VMGenerationIDDescription?
    /// More objects for the `\_SB_` scope of the DSDT (virtio-mmio devices, a PCI host bridge, ...).
    public var additionalDevices: [any AMLEncodable] = []
    /// More tables to list in the XSDT (an MCFG, ...), placed after the built-in ones.
    public var additionalTables: [ACPITable] = []
    public var oem = ACPIOEMIdentity()

    public init(vcpuCount: Int) {
        self.vcpuCount = vcpuCount
    }

    /// Largest number of vCPUs the MADT's xAPIC entries can describe (APIC IDs 0-254; 255 is broadcast).
    public static let maximumVCPUCount = 255

    public func validate() throws(ACPIError) {
        guard (1...ACPIConfiguration.maximumVCPUCount).contains(vcpuCount) else {
            throw .vcpuCountOutOfRange(vcpuCount)
        }
        for (field, address) in [("ioapicAddress", ioapicAddress), ("localAPICAddress", localAPICAddress)]
        where address.rawValue > UInt64(UInt32.max) {
            throw .addressAbove4GiB(field: field, address: address)
        }
        try powerRegisters.validate()
        // The GED's interrupt is an I/O APIC input: KVM's in-kernel IOAPIC has 24.
        if let vmGenerationID, vmGenerationID.gsi >= 24 { throw .invalidInterrupt(field: "vmGenerationID.gsi", gsi: vmGenerationID.gsi) }
        try oem.validate()
    }
}
