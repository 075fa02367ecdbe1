/// The Generic Event Device (ACPI 6.5 §5.6.9, `_HID "ACPI0013"`): how a hardware-reduced platform, which has no
/// SCI and no GPE blocks, tells the OS that something happened. The GED lists interrupts in its `_CRS`; when one
/// fires, the OS runs the GED's `_EVT` method with the interrupt's number as Arg0, and `_EVT` does the rest —
/// here, a `Notify` to the device the event is about.
///
/// Linux's driver is drivers/acpi/evged.c (built whenever CONFIG_ACPI is: there is no option to leave it out). It
/// requests each `_CRS` interrupt as a threaded, one-shot IRQ with the trigger the descriptor gives, and for an
/// interrupt numbered 0-255 looks for a method `_Exx`/`_Lxx` first and falls back to `_EVT`; Swiftlet declares
/// only `_EVT`. Firecracker and Cloud Hypervisor signal their VM Generation ID devices the same way.
public enum GenericEventDevice {
    /// One interrupt of the GED and the notification its `_EVT` sends.
    public struct Event: Sendable, Equatable {
        /// The I/O APIC input (GSI) the VMM raises.
        public var gsi: UInt32
        /// The device to notify, by its full path (`\_SB_.VGEN`).
        public var target: AMLName
        public var value: UInt8

        public init(gsi: UInt32, target: AMLName, value: UInt8) {
            self.gsi = gsi
            self.target = target
            self.value = value
        }
    }

    /// In ASL, for one event on GSI 9:
    ///
    ///     Device (GED) {
    ///         Name (_HID, "ACPI0013")
    ///         Name (_UID, 0)
    ///         Name (_CRS, ResourceTemplate () {
    ///             Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 9 }
    ///         })
    ///         Method (_EVT, 1, Serialized) {
    ///             If (LEqual (Arg0, 9)) { Notify (\_SB_.VGEN, 0x80) }
    ///         }
    ///     }
    ///
    /// Edge-triggered: the VMM pulses the line once per event (raise, lower), and an edge cannot be lost to a
    /// level the guest has not yet acknowledged. `_EVT` is Serialized so that two events never run it at once.
    public static func device(name: AMLName = "GED", events: [Event]) -> AML.Device {
        precondition(!events.isEmpty, "a GED without interrupts has nothing to report")
        return AML.Device(name, [
            AML.Name("_HID", "ACPI0013"),
            AML.Name("_UID", 0),
            AML.Name("_CRS", ResourceTemplate([
                .interrupt(gsis: events.map(\.gsi), edgeTriggered: true, activeLow: false, shared: false),
            ])),
            AML.Method("_EVT", argumentCount: 1, serialized: true, events.map { event in
                AML.If(AML.LEqual(AML.Arg(0), UInt64(event.gsi)), [AML.Notify(event.target, event.value)])
            }),
        ])
    }
}
