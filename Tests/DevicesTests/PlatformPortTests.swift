import Testing

@testable import Devices

@Suite("Quiet platform ports and port 0x92")
struct PlatformPortTests {
    @Test func quietPortsFloatToAllOnesAndSwallowWrites() throws {
        var bus = PortIOBus()
        try QuietPorts.register(on: &bus)
        #expect(bus.ranges.map(\.name) == ["post-code", "dma-page-registers", "io-delay-alt"])
        #expect(bus.write(address: 0x80, width: 1, value: 0x00))  // Linux's io_delay
        #expect(bus.write(address: 0xED, width: 1, value: 0x00))
        #expect(bus.read(address: 0x87, width: 1) == 0xFF)
        #expect(bus.read(address: 0x81, width: 2) == 0xFFFF)
        // 0x80 and 0x81 are quiet too, but registered as separate ranges: the bus never splits one access
        // between two registrations, so this word read is unclaimed.
        #expect(bus.read(address: 0x80, width: 2) == nil)
        // Nothing the VMM must see is hidden: not the PIC, PIT, port 0x61, 0x92 or PCI config space.
        for port: UInt64 in [0x20, 0x21, 0x40, 0x43, 0x61, 0x92, 0xA0, 0xCF8, 0xCFC] {
            #expect(bus.device(at: port) == nil)
        }
    }

    @Test func quietPortsFitNextToTheModelledLegacyDevices() throws {
        var bus = PortIOBus()
        try QuietPorts.register(on: &bus)
        let irq = RecordingInterruptLine()
        try bus.register(
            Serial8250(sink: RecordingConsole(), interrupt: irq), base: Serial8250.com1Base,
            length: Serial8250.portCount, name: "com1")
        try bus.register(
            I8042(interrupt: irq, onReset: {}), base: I8042.basePort, length: I8042.portCount, name: "i8042")
        try bus.register(CMOSRTC(), base: CMOSRTC.basePort, length: CMOSRTC.portCount, name: "rtc")
        try bus.register(SystemControlPortA(), base: SystemControlPortA.port, length: 1, name: "port-a")
        #expect(bus.ranges.count == 7)
    }

    @Test func portAReportsA20EnabledAndTurnsTheFastResetBitIntoAResetRequest() {
        let resets = CallCounter()
        let portA = SystemControlPortA(onReset: resets.callback)
        #expect(portA.read(offset: 0, width: 1) == 0x02)
        // arch/x86/boot/a20.c's enable_a20_fast: set bit 1, keep bit 0 clear.
        portA.write(offset: 0, width: 1, value: 0x02)
        #expect(resets.calls == 0)
        portA.write(offset: 0, width: 1, value: 0x00)  // A20 cannot be turned off under KVM
        #expect(portA.read(offset: 0, width: 1) == 0x02)
        portA.write(offset: 0, width: 1, value: 0x03)
        #expect(resets.calls == 1)
        #expect(portA.read(offset: 0, width: 1) == 0x02)  // the reset bit does not stick
    }
}
