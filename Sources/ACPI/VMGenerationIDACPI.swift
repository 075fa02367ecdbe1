import GuestMemory

/// A VM Generation ID device (Microsoft's "Virtual Machine Generation ID" specification; Linux's
/// drivers/virt/vmgenid.c): 16 bytes of guest memory holding an ID the VMM changes whenever the guest may have
/// been duplicated — every snapshot restore — so that a guest's random number generator never continues two
/// clones from one state. The guest learns where the ID is from the device's `ADDR` method and that it changed
/// from a `Notify (VGEN, 0x80)`, which the Generic Event Device sends when the VMM raises its interrupt.
///
/// Linux (6.1, CONFIG_VMGENID) binds to `_CID "VM_GEN_COUNTER"`, reads the ID once at probe and mixes it into the
/// entropy pool, and on the notification re-reads it and, if it differs, calls `add_vmfork_randomness` (which
/// reseeds the CRNG at once and logs "crng reseeded due to virtual machine fork").
public struct VMGenerationIDDescription: Sendable, Equatable {
    /// The I/O APIC input the Generic Event Device interrupts on. 9, the PC's customary SCI line, which a
    /// hardware-reduced platform leaves unused (FADT `sciInterrupt`) and no other Swiftlet device takes.
    public var gsi: UInt32

    public static let defaultGSI: UInt32 = 9

    public init(gsi: UInt32 = VMGenerationIDDescription.defaultGSI) {
        self.gsi = gsi
    }
}

public enum VMGenerationIDACPI {
    /// The ID is a 128-bit value.
    public static let idLength = 16
    /// The device's path, which the GED's `Notify` names.
    public static let devicePath: AMLName = "\\_SB_.VGEN"
    /// The notification value the specification (and Linux's driver, which accepts any) uses for "the ID changed".
    public static let notificationValue: UInt8 = 0x80

    /// The `\_SB_` objects, in ASL:
    ///
    ///     Device (VGEN) {
    ///         Name (_HID, "SWFT0001")
    ///         Name (_CID, "VM_GEN_COUNTER")
    ///         Name (_DDN, "VM_GEN_COUNTER")
    ///         Method (ADDR, 0, NotSerialized) { Return (Package () { low32, high32 }) }
    ///     }
    ///     Device (GED) { ... _EVT: Notify (\_SB_.VGEN, 0x80) on the description's GSI ... }
    ///
    /// `_HID` is Swiftlet's own, in the ACPI ID form (four letters, four hex digits: iasl refuses QEMU's "QEMUVGID"
    /// or Firecracker's "FCVMGID" shape when it recompiles the table); what drivers match is the `_CID`.
    /// `ADDR` returns the ID's guest-physical address as two 32-bit halves, low first, as the specification says;
    /// Linux adds them up as `low | high << 32` and memremaps 16 bytes there.
    public static func devices(_ description: VMGenerationIDDescription, idAddress: GuestAddress) -> [any AMLEncodable] {
        let address = idAddress.rawValue
        return [
            AML.Device("VGEN", [
                AML.Name("_HID", "SWFT0001"),
                AML.Name("_CID", "VM_GEN_COUNTER"),
                AML.Name("_DDN", "VM_GEN_COUNTER"),
                AML.Method("ADDR", [
                    AML.Return(AML.Package([UInt64(address & 0xFFFF_FFFF), UInt64(address >> 32)])),
                ]),
            ]),
            GenericEventDevice.device(events: [
                GenericEventDevice.Event(gsi: description.gsi, target: devicePath, value: notificationValue),
            ]),
        ]
    }
}
