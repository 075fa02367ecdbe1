import GuestMemory

/// Differentiated System Description Table (ACPI 6.5 §5.2.11.1), signature "DSDT", revision 2 (so AML
/// integers are 64 bits wide). Its body is AML; Swiftlet's reads, in ASL:
///
///     Name (\_S5, Package () { 5, 0 })          // soft-off: SLP_TYP 5 (see ACPIPowerRegisters)
///     Scope (\_SB) {
///         Device (COM1) { ... PNP0501, IO 0x3F8-0x3FF, IRQ 4 ... }
///         Device (RTC)  { ... PNP0B00, IO 0x70-0x71, IRQ 8 ... }
///         Device (KBD)  { ... PNP0303, IO 0x60, 0x64, IRQ 1 ... }      (when the 8042 is declared present)
///         ...additionalDevices
///         Device (VGEN) { ... }, Device (GED) { ... }      (with a VM Generation ID, see VMGenerationIDACPI)
///     }
enum DSDT {
    static let revision: UInt8 = 2

    /// `\_S5_` (ACPI 6.5 §7.4.2, the `\_Sx` system states): the SLP_TYP values for soft-off, for the PM1a
    /// and PM1b control registers on full-ACPI hardware; a hardware-reduced platform uses only the first,
    /// in SLEEP_CONTROL_REG. Linux offers ACPI power-off only when this object exists.
    static var softOffPackage: AML.Name {
        AML.Name("\\_S5_", AML.Package([Int(ACPIPowerRegisters.s5SleepType), 0]))
    }

    /// `vmGenerationIDAddress`: where the tables keep the ID, when `config.vmGenerationID` asks for one.
    static func build(_ config: ACPIConfiguration, vmGenerationIDAddress: GuestAddress? = nil) -> ACPITable {
        var systemBus: [any AMLEncodable] = []
        if config.com1 { systemBus.append(LegacyDevices.serialPort(name: "COM1", uid: 0, ioBase: 0x3F8, irq: 4)) }
        if config.cmosRTC { systemBus.append(LegacyDevices.cmosRTC()) }
        if config.i8042Present { systemBus.append(LegacyDevices.ps2Keyboard()) }
        systemBus += config.additionalDevices
        if let description = config.vmGenerationID, let vmGenerationIDAddress {
            systemBus += VMGenerationIDACPI.devices(description, idAddress: vmGenerationIDAddress)
        }

        var body = softOffPackage.amlBytes
        AML.Scope("\\_SB_", systemBus).encodeAML(into: &body)
        return ACPITable(signature: "DSDT", revision: revision, oem: config.oem, body: body)
    }
}

/// The PC's legacy ISA devices as DSDT objects. Linux's PNP-ACPI layer binds drivers to them by `_HID`
/// (8250_pnp to PNP0501, rtc_cmos to PNP0B00) and registers their `_CRS` IRQs as I/O APIC GSIs — on a
/// hardware-reduced platform that is the only way an ISA device's interrupt gets routed.
public enum LegacyDevices {
    /// A 16550-compatible UART: `_HID` PNP0501, 8 ports from `ioBase`, one edge-triggered ISA IRQ.
    /// COM1 is `serialPort(name: "COM1", uid: 0, ioBase: 0x3F8, irq: 4)`, COM2 uses 0x2F8 and IRQ 3.
    public static func serialPort(name: AMLName, uid: Int, ioBase: UInt16, irq: UInt8) -> AML.Device {
        AML.Device(name, [
            AML.Name("_HID", AML.EISAID("PNP0501")),
            AML.Name("_UID", uid),
            AML.Name("_CRS", ResourceTemplate([
                .io(minimum: ioBase, maximum: ioBase, alignment: 8, length: 8),
                .irqNoFlags([irq]),
            ])),
        ])
    }

    /// The 8042 keyboard controller's keyboard port: `_HID` PNP0303, data port 0x60, command/status port 0x64,
    /// IRQ 1. Linux's i8042 driver finds the controller through this object (its PNP probe); without it the
    /// driver gives up ("PNP: No PS/2 controller found") and the guest never reads a key, so Ctrl-Alt-Del
    /// typed by the VMM (Firecracker's `SendCtrlAltDel`) would go unheard. No AUX (mouse) port is declared.
    public static func ps2Keyboard(name: AMLName = "KBD") -> AML.Device {
        AML.Device(name, [
            AML.Name("_HID", AML.EISAID("PNP0303")),
            AML.Name("_CRS", ResourceTemplate([
                .io(minimum: 0x60, maximum: 0x60, alignment: 1, length: 1),
                .io(minimum: 0x64, maximum: 0x64, alignment: 1, length: 1),
                .irqNoFlags([1]),
            ])),
        ])
    }

    /// The MC146818-compatible CMOS RTC: `_HID` PNP0B00, index/data ports 0x70-0x71, IRQ 8.
    public static func cmosRTC(name: AMLName = "RTC") -> AML.Device {
        AML.Device(name, [
            AML.Name("_HID", AML.EISAID("PNP0B00")),
            AML.Name("_CRS", ResourceTemplate([
                .io(minimum: 0x70, maximum: 0x70, alignment: 1, length: 2),
                .irqNoFlags([8]),
            ])),
        ])
    }
}
