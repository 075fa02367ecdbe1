/// Fixed ACPI Description Table (ACPI 6.5 §5.2.9), signature "FACP", revision 6, 276 bytes.
///
/// Swiftlet's machine is a **hardware-reduced ACPI** platform (FADT flag HW_REDUCED_ACPI, §4.1): it has
/// none of the PC's ACPI fixed hardware (PM1 event/control blocks, PM timer, GPE blocks, SCI, FACS,
/// SMI_CMD) — all those fields stay 0. What it has:
/// - SLEEP_CONTROL_REG / SLEEP_STATUS_REG, through which the guest powers off (§4.8.3.7);
/// - RESET_REG with RESET_REG_SUP, through which it resets (§4.8.3.6);
/// - X_DSDT, the DSDT's address;
/// - the IA-PC boot architecture flags (§5.2.9.3) describing which legacy devices exist.
///
/// What Linux does differently on a hardware-reduced platform (arch/x86/kernel/acpi/boot.c,
/// `acpi_generic_reduced_hw_init`): it skips the PIT/HPET timer setup and uses a null legacy PIC, so
/// ISA interrupts are only routed (through the I/O APIC) for devices the DSDT declares with their IRQ in
/// `_CRS` — which is why COM1 and the RTC are in the DSDT. Timekeeping comes from kvm-clock and the local
/// APIC timer: with no PIT tick, Linux calibrates the local APIC timer against the TSC, so it must know
/// the TSC frequency (kvm-clock tells it; a QEMU TCG test guest whose PIT calibration failed hung there).
/// Cloud Hypervisor and Firecracker run Linux guests the same way.
///
/// Field offsets used (all others are 0):
///
/// | offset | field                  | value                                                     |
/// |--------|------------------------|-----------------------------------------------------------|
/// | 40     | DSDT (32-bit)          | 0 — "must be zero when X_DSDT is non-zero"                |
/// | 46     | SCI_INT (u16)          | 9, see `sciInterrupt`                                     |
/// | 96     | P_LVL2_LAT (u16)       | 101: C2 not supported (> 100)                             |
/// | 98     | P_LVL3_LAT (u16)       | 1001: C3 not supported (> 1000)                           |
/// | 108    | CENTURY                | CMOS century register index or 0                          |
/// | 109    | IAPC_BOOT_ARCH (u16)   | see `bootArchitectureFlags`                               |
/// | 112    | Flags (u32)            | HW_REDUCED_ACPI, RESET_REG_SUP, PWR_BUTTON, SLP_BUTTON    |
/// | 116    | RESET_REG (GAS)        | system I/O, 8 bits, byte access, reset port               |
/// | 128    | RESET_VALUE            | `ACPIPowerRegisters.resetValue`                           |
/// | 131    | FADT Minor Version     | 3 (the FADT is ACPI 6.3's: major = header revision 6)     |
/// | 140    | X_DSDT (u64)           | DSDT address                                              |
/// | 244    | SLEEP_CONTROL_REG (GAS)| system I/O, 8 bits, byte access, sleep control port       |
/// | 256    | SLEEP_STATUS_REG (GAS) | system I/O, 8 bits, byte access, sleep status port        |
/// | 268    | Hypervisor Vendor ID   | "SWIFTLET"                                                |
enum FADT {
    static let length = 276
    static let revision: UInt8 = 6
    static let minorRevision: UInt8 = 3

    // Offsets within the table (header included), from ACPI 6.5 Table 5.9.
    enum Offset {
        static let dsdt = 40
        static let sciInterrupt = 46
        static let cState2Latency = 96
        static let cState3Latency = 98
        static let century = 108
        static let bootArchitectureFlags = 109
        static let flags = 112
        static let resetRegister = 116
        static let resetValue = 128
        static let minorVersion = 131
        static let extendedDSDT = 140
        static let sleepControlRegister = 244
        static let sleepStatusRegister = 256
        static let hypervisorVendorIdentity = 268
    }

    // Fixed feature flags (§5.2.9, Table 5.10), by bit number.
    enum Flag {
        /// PWR_BUTTON: 1 = no fixed-feature power button (it would be a control-method device, if any).
        static let powerButton: UInt32 = 1 << 4
        /// SLP_BUTTON: 1 = no fixed-feature sleep button.
        static let sleepButton: UInt32 = 1 << 5
        /// RESET_REG_SUP: RESET_REG is valid; the OS may reset by writing RESET_VALUE to it.
        static let resetRegisterSupported: UInt32 = 1 << 10
        /// HW_REDUCED_ACPI: no ACPI fixed hardware; power management through the sleep registers.
        static let hardwareReduced: UInt32 = 1 << 20
    }

    // IA-PC Boot Architecture Flags (§5.2.9.3, Table 5.11).
    enum BootFlag {
        /// LEGACY_DEVICES: the machine has ISA-style devices the OS cannot enumerate otherwise (COM1, RTC).
        static let legacyDevices: UInt16 = 1 << 0
        /// 8042: an 8042-compatible keyboard controller exists at ports 0x60/0x64.
        static let i8042: UInt16 = 1 << 1
        /// VGA Not Present: probing VGA ports/memory is not safe.
        static let vgaNotPresent: UInt16 = 1 << 2
        /// PCIe ASPM Controls: the OS must not enable Active State Power Management.
        static let noASPM: UInt16 = 1 << 4
        /// CMOS RTC Not Present.
        static let cmosRTCNotPresent: UInt16 = 1 << 5
    }

    /// SCI_INT. A hardware-reduced platform has no SCI and ACPICA installs no handler for it, but Linux's
    /// MADT parser still compares every Interrupt Source Override's source IRQ with SCI_INT
    /// (`acpi_parse_int_src_ovr`): left at 0 it would take the IRQ0 → GSI2 timer override for the SCI's.
    /// 9 is the PC's customary SCI IRQ; no override is declared for it (Linux skips its made-up SCI override
    /// on hardware-reduced platforms), so GSI 9 stays free for devices: the VM Generation ID's Generic Event
    /// Device interrupts on it (`VMGenerationIDDescription.defaultGSI`).
    static let sciInterrupt: UInt16 = 9

    static let hypervisorVendorIdentity = "SWIFTLET"

    static func bootArchitectureFlags(_ config: ACPIConfiguration) -> UInt16 {
        var flags = BootFlag.legacyDevices | BootFlag.vgaNotPresent | BootFlag.noASPM
        if config.i8042Present { flags |= BootFlag.i8042 }
        if !config.cmosRTC { flags |= BootFlag.cmosRTCNotPresent }
        return flags
    }

    static func build(_ config: ACPIConfiguration, dsdtAddress: UInt64) -> ACPITable {
        var table = [UInt8](repeating: 0, count: length)
        table.setLittleEndian(sciInterrupt, at: Offset.sciInterrupt)
        table.setLittleEndian(UInt16(101), at: Offset.cState2Latency)
        table.setLittleEndian(UInt16(1001), at: Offset.cState3Latency)
        table[Offset.century] = config.cmosCenturyRegister
        table.setLittleEndian(bootArchitectureFlags(config), at: Offset.bootArchitectureFlags)
        let flags = Flag.hardwareReduced | Flag.resetRegisterSupported | Flag.powerButton | Flag.sleepButton
        table.setLittleEndian(flags, at: Offset.flags)
        let registers = config.powerRegisters
        table.replace(at: Offset.resetRegister, with: GenericAddress.ioPort8(registers.resetPort).bytes)
        table[Offset.resetValue] = registers.resetValue
        table[Offset.minorVersion] = minorRevision
        table.setLittleEndian(dsdtAddress, at: Offset.extendedDSDT)
        table.replace(at: Offset.sleepControlRegister, with: GenericAddress.ioPort8(registers.sleepControlPort).bytes)
        table.replace(at: Offset.sleepStatusRegister, with: GenericAddress.ioPort8(registers.sleepStatusPort).bytes)
        table.replace(at: Offset.hypervisorVendorIdentity, with: Array(hypervisorVendorIdentity.utf8))
        return ACPITable(signature: "FACP", revision: revision, oem: config.oem, body: Array(table[ACPITable.headerLength...]))
    }
}

extension Array where Element == UInt8 {
    /// Overwrites `count` bytes starting at `offset` with `bytes`.
    mutating func replace(at offset: Int, with bytes: [UInt8]) {
        replaceSubrange(offset..<(offset + bytes.count), with: bytes)
    }
}
