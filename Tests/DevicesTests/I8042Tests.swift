import Testing

@testable import Devices

// Status and command-byte bits, named as in Linux's drivers/input/serio/i8042.h.
private let STR_OBF: UInt8 = 0x01, STR_IBF: UInt8 = 0x02, STR_AUXDATA: UInt8 = 0x20, STR_KEYLOCK: UInt8 = 0x10
private let CTR_KBDINT: UInt8 = 0x01, CTR_KBDDIS: UInt8 = 0x10, CTR_AUXDIS: UInt8 = 0x20, CTR_XLATE: UInt8 = 0x40

/// An i8042 at ports 0x60/0x64, driven with inb/outb the way Linux's i8042 driver does.
private struct KeyboardController {
    let irq = RecordingInterruptLine()
    let resets = CallCounter()
    let device: I8042
    let bus: PortIOBus

    enum CommandError: Error, Equatable {
        case timeout
        case auxError
    }

    init() {
        device = I8042(interrupt: irq, onReset: resets.callback)
        var bus = PortIOBus()
        try! bus.register(device, base: I8042.basePort, length: I8042.portCount, name: "i8042")
        self.bus = bus
    }

    func inb(_ port: UInt64) -> UInt8 { UInt8(bus.read(address: port, width: 1)!) }
    func outb(_ port: UInt64, _ value: UInt8) { #expect(bus.write(address: port, width: 1, value: UInt64(value))) }
    var status: UInt8 { inb(0x64) }

    /// __i8042_command: send the command, its parameter bytes, then read the expected replies. Linux polls up to
    /// 0.5 s for each reply; a device that never answers costs that much boot time, so here a reply must be
    /// there at once.
    func command(_ command: UInt8, parameters: [UInt8] = [], replies: Int = 0) -> Result<[UInt8], CommandError> {
        #expect(status & STR_IBF == 0)
        outb(0x64, command)
        for parameter in parameters {
            #expect(status & STR_IBF == 0)
            outb(0x60, parameter)
        }
        var answer: [UInt8] = []
        for _ in 0..<replies {
            guard status & STR_OBF != 0 else { return .failure(.timeout) }
            if command == 0xD3, status & STR_AUXDATA == 0 { return .failure(.auxError) }
            answer.append(inb(0x60))
        }
        return .success(answer)
    }

    /// i8042_flush: read and discard whatever the controller holds.
    func flush() -> Int {
        var count = 0
        while status & STR_OBF != 0, count < 16 {
            _ = inb(0x60)
            count += 1
        }
        return count
    }
}

@Suite("I8042")
struct I8042Tests {
    @Test func linuxProbeFindsTheKeyboardPortAndRejectsTheMissingMouseWithoutATimeout() throws {
        let kbc = KeyboardController()

        // i8042_platform_init on x86: "A20 on" through the output port, then the null command for SMM firmware.
        #expect(try kbc.command(0xD1, parameters: [0xDF]).get() == [])
        #expect(try kbc.command(0xFF).get() == [])
        // i8042_controller_check and i8042_controller_selftest.
        #expect(kbc.flush() == 0)
        #expect(try kbc.command(0xAA, replies: 1).get() == [0x55])
        // i8042_controller_init: two identical reads of the command byte, then keyboard disabled, IRQ off.
        let ctr = try kbc.command(0x20, replies: 1).get()[0]
        #expect(try kbc.command(0x20, replies: 1).get()[0] == ctr)
        #expect(kbc.status & STR_KEYLOCK != 0)  // no "Warning: Keylock active"
        let initCTR = (ctr | CTR_KBDDIS) & ~CTR_KBDINT
        #expect(try kbc.command(0x60, parameters: [initCTR]).get() == [])
        #expect(try kbc.command(0x20, replies: 1).get() == [initCTR])
        // i8042_check_aux: the loop command answers without the AUX-data bit, and the AUX interface test reports
        // a fault (anything but 0x00, 0xFA, 0xFF), so Linux gives up on the mouse port immediately.
        #expect(kbc.command(0xD3, parameters: [0x5A], replies: 1) == .failure(.auxError))
        let auxTest = try kbc.command(0xA9, replies: 1).get()[0]
        #expect(![0x00, 0xFA, 0xFF].contains(auxTest))
        // i8042_enable_kbd_port.
        let runCTR = (initCTR & ~CTR_KBDDIS) | CTR_KBDINT
        #expect(try kbc.command(0x60, parameters: [runCTR]).get() == [])
        #expect(try kbc.command(0xAB, replies: 1).get() == [0x00])  // keyboard interface test

        #expect(kbc.resets.calls == 0)
    }

    @Test func commandByteRoundTripsAndPortEnablesToggleItsBits() throws {
        let kbc = KeyboardController()
        #expect(try kbc.command(0x60, parameters: [0x47]).get() == [])
        #expect(try kbc.command(0x20, replies: 1).get() == [0x47])
        _ = try kbc.command(0xAD).get()
        #expect(try kbc.command(0x20, replies: 1).get()[0] & CTR_KBDDIS != 0)
        _ = try kbc.command(0xAE).get()
        #expect(try kbc.command(0x20, replies: 1).get()[0] & CTR_KBDDIS == 0)
        _ = try kbc.command(0xA8).get()
        #expect(try kbc.command(0x20, replies: 1).get()[0] & CTR_AUXDIS == 0)
        _ = try kbc.command(0xA7).get()
        #expect(try kbc.command(0x20, replies: 1).get()[0] & CTR_AUXDIS != 0)
    }

    @Test func pulsingTheResetLineCallsOnReset() {
        let kbc = KeyboardController()
        kbc.outb(0x64, 0xFE)  // what Linux's reboot=k writes
        #expect(kbc.resets.calls == 1)
        // Any pulse command with bit 0 clear pulses the reset line; 0xFF pulses nothing.
        kbc.outb(0x64, 0xF0)
        #expect(kbc.resets.calls == 2)
        kbc.outb(0x64, 0xFF)
        #expect(kbc.resets.calls == 2)
        // Writing the output port with bit 0 (the reset line) clear holds the CPU in reset.
        kbc.outb(0x64, 0xD1)
        kbc.outb(0x60, 0x02)
        #expect(kbc.resets.calls == 3)
    }

    @Test func selfTestAnswers0x55ThroughTheOutputBuffer() {
        let kbc = KeyboardController()
        #expect(kbc.status & STR_OBF == 0)
        kbc.outb(0x64, 0xAA)
        #expect(kbc.status & STR_OBF != 0)
        #expect(kbc.inb(0x60) == 0x55)
        #expect(kbc.status & STR_OBF == 0)
    }

    @Test func keyboardRepliesArriveWithIRQ1AndEachQueuedByteGetsAFreshEdge() throws {
        let kbc = KeyboardController()
        #expect(try kbc.command(0x60, parameters: [CTR_KBDINT | CTR_XLATE]).get() == [])
        kbc.irq.forgetHistory()

        kbc.outb(0x60, 0xF2)  // atkbd_probe: ATKBD_CMD_GETID
        #expect(kbc.irq.isAsserted)
        #expect(kbc.inb(0x60) == 0xFA)  // ACK, and two ID bytes queued behind it
        #expect(kbc.inb(0x60) == 0xAB)
        #expect(kbc.inb(0x60) == 0x83)
        #expect(!kbc.irq.isAsserted)
        // Raised, then a low-high pulse for each byte that replaced the one read, then lowered.
        #expect(kbc.irq.history == [true, false, true, false, true, false])

        kbc.outb(0x60, 0xED)  // set LEDs: ACK, then the parameter byte, ACK
        #expect(kbc.inb(0x60) == 0xFA)
        kbc.outb(0x60, 0x00)
        #expect(kbc.inb(0x60) == 0xFA)
        kbc.outb(0x60, 0xFF)  // reset: ACK, then "self-test passed"
        #expect(kbc.inb(0x60) == 0xFA)
        #expect(kbc.inb(0x60) == 0xAA)
    }

    @Test func withTheKeyboardInterruptDisabledRepliesArePolledWithoutIRQ1() throws {
        let kbc = KeyboardController()
        #expect(try kbc.command(0x60, parameters: [0x00]).get() == [])
        kbc.irq.forgetHistory()
        kbc.outb(0x60, 0xF4)
        #expect(kbc.status & STR_OBF != 0)
        #expect(kbc.inb(0x60) == 0xFA)
        #expect(kbc.irq.history.isEmpty)
    }

    @Test func ctrlAltDeleteIsTypedInTheScanCodeSetTheGuestSees() throws {
        let kbc = KeyboardController()
        // Translation on (the default): set 1 make codes.
        #expect(kbc.device.sendCtrlAltDelete())
        #expect(kbc.irq.isAsserted)
        #expect((0..<4).map { _ in kbc.inb(0x60) } == [0x1D, 0x38, 0xE0, 0x53])
        // Translation off: set 2.
        #expect(try kbc.command(0x60, parameters: [CTR_KBDINT]).get() == [])
        #expect(kbc.device.sendCtrlAltDelete())
        #expect((0..<4).map { _ in kbc.inb(0x60) } == [0x14, 0x11, 0xE0, 0x71])
    }

    @Test func unusedPortsAndWideAccessesAreInert() {
        let kbc = KeyboardController()
        #expect(kbc.inb(0x61) == 0xFF)
        #expect(kbc.device.read(offset: 4, width: 2) == .max)
        kbc.device.write(offset: 4, width: 2, value: 0xFE)
        #expect(kbc.resets.calls == 0)
    }

    @Test func stateRoundTrips() throws {
        let kbc = KeyboardController()
        _ = try kbc.command(0x60, parameters: [0x47]).get()
        kbc.outb(0x60, 0xF2)
        let saved = kbc.device.saveState()
        let other = KeyboardController()
        other.device.restoreState(saved)
        #expect(other.device.saveState() == saved)
        #expect(other.irq.isAsserted)
        #expect((0..<3).map { _ in other.inb(0x60) } == [0xFA, 0xAB, 0x83])
    }
}
