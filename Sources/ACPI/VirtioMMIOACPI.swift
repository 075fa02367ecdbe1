/// virtio-mmio devices as ACPI describes them (virtio 1.2 §4.2.1 leaves discovery to the platform): one device per
/// window with `_HID "LNRO0005"` — the ID Linux's virtio_mmio driver matches in its `acpi_device_id` table, as
/// QEMU's microvm, Firecracker and Cloud Hypervisor declare theirs — and a `_CRS` with the window and its interrupt.
/// This is how a kernel that reads ACPI but was built without `CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES` (Debian's)
/// finds the devices.
///
/// Values only; the VMM's placement (Swiftlet's VirtioMMIOPlatform) is where they come from.
public struct VirtioMMIODescription: Sendable, Equatable {
    /// Guest-physical base of the register window (below 4 GiB: `Memory32Fixed`).
    public var base: UInt32
    /// Window size (4 KiB).
    public var length: UInt32
    /// The I/O APIC input (GSI) the device interrupts on.
    public var gsi: UInt32

    public init(base: UInt32, length: UInt32, gsi: UInt32) {
        self.base = base
        self.length = length
        self.gsi = gsi
    }
}

public enum VirtioMMIOACPI {
    /// One `\_SB_` device per window, named VR00, VR01, ... with `_UID` its index. In ASL:
    ///
    ///     Device (VR00) {
    ///         Name (_HID, "LNRO0005")
    ///         Name (_UID, 0)
    ///         Name (_CRS, ResourceTemplate () {
    ///             Memory32Fixed (ReadWrite, 0xE8000000, 0x00001000)
    ///             Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 5 }
    ///         })
    ///     }
    ///
    /// Edge, active high, as Firecracker declares them: for GSIs below 16 that is what Linux assumes for ISA
    /// interrupts anyway (it overrides a `_CRS` that says otherwise, with a warning), and the transport drives its
    /// line so that both edge- and level-programmed inputs see every interrupt (VirtioMMIO's MMIOInterrupts).
    public static func devices(_ descriptions: [VirtioMMIODescription]) -> [any AMLEncodable] {
        precondition(descriptions.count <= 100, "VRnn names hold 100 devices")
        return descriptions.enumerated().map { index, description in
            let name = AMLName("VR" + (index < 10 ? "0" : "") + String(index))
            return AML.Device(name, [
                AML.Name("_HID", "LNRO0005"),
                AML.Name("_UID", index),
                AML.Name("_CRS", ResourceTemplate([
                    .memory32Fixed(base: description.base, length: description.length, writable: true),
                    .interrupt(gsis: [description.gsi], edgeTriggered: true, activeLow: false, shared: false),
                ])),
            ])
        }
    }
}
