// Ports a PC guest touches that need no model, answered quietly so they do not show up as unclaimed accesses.
//
// The VMM answers unclaimed ports itself (all ones, and a debug log line). Registering these ranges changes what
// the guest sees not at all — reads still float to all ones, as on an ISA bus with nothing driving it, and writes
// go nowhere — but documents why each port is expected and keeps the VMM's unclaimed-access log for surprises.
//
// What is deliberately NOT here:
// - The 8259 PICs (0x20/0x21, 0xA0/0xA1, ELCR 0x4D0/0x4D1), the 8254 PIT (0x40-0x43) and port 0x61 (PIT gate and
//   speaker) are emulated inside KVM once the VMM creates the in-kernel irqchip and PIT; their accesses never
//   reach user space, and registering them here would only hide a missing KVM_CREATE_IRQCHIP / KVM_CREATE_PIT2.
// - Port 0x92 (System Control Port A: fast A20 gate and fast reset) is a real, if tiny, device:
//   see SystemControlPortA.
// - 0xCF8-0xCFF (PCI configuration mechanism #1, which also contains the 0xCF9 reset control register) belongs to
//   the PCI host bridge.
// - The other COM ports (0x2F8, 0x3E8, 0x2E8): Linux's 8250 driver probes them and correctly finds nothing when
//   its IER scratch test reads back all ones; they stay unclaimed so a misconfigured console shows up in the log.

public final class QuietPorts: BusDevice {
    /// A range of ports and the reason a guest touches it.
    public struct PortRange: Sendable {
        public var base: UInt64
        public var length: UInt64
        public var name: String
        public var reason: String

        public init(base: UInt64, length: UInt64, name: String, reason: String) {
            self.base = base
            self.length = length
            self.name = name
            self.reason = reason
        }
    }

    /// The legacy PC ports a Linux guest writes during boot without needing an answer.
    public static let pcPlatformPorts: [PortRange] = [
        PortRange(
            base: 0x80, length: 1, name: "post-code",
            reason: "POST diagnostic port. Linux's outb_p()/inb_p() write a byte here after the real access as "
                + "a ~1 µs bus delay (io_delay=0x80, the default), e.g. while programming the PIC and PIT and "
                + "around CMOS accesses; the value is meaningless."),
        PortRange(
            base: 0x81, length: 0xF, name: "dma-page-registers",
            reason: "8237 DMA page registers (0x87 is channel 0's). Only ISA DMA drivers (floppy, parallel port) "
                + "program them; firmware and probes may poke them. No ISA DMA exists here."),
        PortRange(
            base: 0xED, length: 1, name: "io-delay-alt",
            reason: "Alternative delay port for io_delay=0xed, used on machines where port 0x80 misbehaves; "
                + "writes only."),
    ]

    public init() {}

    public func read(offset: UInt64, width: Int) -> UInt64 { .max }
    public func write(offset: UInt64, width: Int, value: UInt64) {}

    /// Registers one shared `QuietPorts` at each of `ranges`.
    public static func register(on bus: inout PortIOBus, ranges: [PortRange] = pcPlatformPorts) throws(BusError) {
        let device = QuietPorts()
        for range in ranges {
            try bus.register(device, base: range.base, length: range.length, name: range.name)
        }
    }
}
