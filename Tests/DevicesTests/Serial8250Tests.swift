import Testing

@testable import Devices

/// UART register offsets from the base port, with the names Linux's include/uapi/linux/serial_reg.h uses.
private enum Reg {
    static let RX: UInt64 = 0  // read, DLAB = 0
    static let TX: UInt64 = 0  // write, DLAB = 0
    static let DLL: UInt64 = 0  // DLAB = 1
    static let IER: UInt64 = 1  // DLAB = 0
    static let DLM: UInt64 = 1  // DLAB = 1
    static let IIR: UInt64 = 2  // read
    static let FCR: UInt64 = 2  // write
    static let EFR: UInt64 = 2  // on chips that have one, with LCR = 0xBF
    static let LCR: UInt64 = 3
    static let MCR: UInt64 = 4
    static let LSR: UInt64 = 5
    static let MSR: UInt64 = 6
    static let SCR: UInt64 = 7
}

// Bit values from serial_reg.h.
private let IER_RDI: UInt8 = 0x01, IER_THRI: UInt8 = 0x02, IER_RLSI: UInt8 = 0x04, IER_MSI: UInt8 = 0x08
private let IIR_NO_INT: UInt8 = 0x01, IIR_THRI: UInt8 = 0x02, IIR_RDI: UInt8 = 0x04, IIR_RLSI: UInt8 = 0x06
private let IIR_MSI: UInt8 = 0x00, IIR_FIFO_BITS: UInt8 = 0xC0
private let FCR_ENABLE_FIFO: UInt8 = 0x01, FCR_CLEAR_RCVR: UInt8 = 0x02, FCR_CLEAR_XMIT: UInt8 = 0x04
private let FCR7_64BYTE: UInt8 = 0x20
private let LCR_DLAB: UInt8 = 0x80, LCR_WLEN8: UInt8 = 0x03
private let MCR_DTR: UInt8 = 0x01, MCR_RTS: UInt8 = 0x02, MCR_OUT1: UInt8 = 0x04, MCR_OUT2: UInt8 = 0x08
private let MCR_LOOP: UInt8 = 0x10
private let LSR_DR: UInt8 = 0x01, LSR_OE: UInt8 = 0x02, LSR_THRE: UInt8 = 0x20, LSR_TEMT: UInt8 = 0x40
private let MSR_DCTS: UInt8 = 0x01, MSR_DDSR: UInt8 = 0x02, MSR_TERI: UInt8 = 0x04, MSR_DDCD: UInt8 = 0x08
private let MSR_CTS: UInt8 = 0x10, MSR_DSR: UInt8 = 0x20, MSR_RI: UInt8 = 0x40, MSR_DCD: UInt8 = 0x80

/// A UART at COM1 with a recording console and IRQ line, accessed with inb/outb as a driver would.
private struct COM1 {
    let irq = RecordingInterruptLine()
    let console = RecordingConsole()
    let firstOutput = CallCounter()
    let uart: Serial8250
    let bus: PortIOBus

    init() {
        uart = Serial8250(sink: console, interrupt: irq, onFirstOutput: firstOutput.callback)
        var bus = PortIOBus()
        try! bus.register(uart, base: Serial8250.com1Base, length: Serial8250.portCount, name: "com1")
        self.bus = bus
    }

    func inb(_ register: UInt64) -> UInt8 {
        UInt8(bus.read(address: Serial8250.com1Base + register, width: 1)!)
    }

    func outb(_ register: UInt64, _ value: UInt8) {
        #expect(bus.write(address: Serial8250.com1Base + register, width: 1, value: UInt64(value)))
    }

    /// Drains the receiver the way serial8250_rx_chars does: read RX while LSR says data is ready.
    func receiveAll(limit: Int = 1 << 20) -> [UInt8] {
        var bytes: [UInt8] = []
        while inb(Reg.LSR) & LSR_DR != 0, bytes.count < limit { bytes.append(inb(Reg.RX)) }
        return bytes
    }
}

@Suite("Serial8250: detection by Linux")
struct SerialDetectionTests {
    /// Linux's autoconfig() from drivers/tty/serial/8250/8250_port.c, step by step, with the loopback test that
    /// COM1-4 normally skip (UPF_SKIP_TEST) included. Returns the port type Linux would record.
    private func linuxAutoconfig(_ port: COM1) -> String {
        // IER scratch test: IER must hold 0 and 0x0F in its low nibble.
        let savedIER = port.inb(Reg.IER)
        port.outb(Reg.IER, 0)
        let scratch2 = port.inb(Reg.IER) & 0x0F
        port.outb(Reg.IER, 0x0F)
        let scratch3 = port.inb(Reg.IER) & 0x0F
        port.outb(Reg.IER, savedIER)
        guard scratch2 == 0, scratch3 == 0x0F else { return "none (IER test)" }

        let savedMCR = port.inb(Reg.MCR)
        let savedLCR = port.inb(Reg.LCR)

        // Loopback test: with LOOP | OUT2 | RTS, MSR must show DCD | CTS.
        port.outb(Reg.MCR, MCR_LOOP | 0x0A)
        let status1 = port.inb(Reg.MSR) & 0xF0
        port.outb(Reg.MCR, savedMCR)
        guard status1 == 0x90 else { return "none (loop test)" }

        // IIR bits 6-7 after enabling the FIFOs tell the family apart.
        port.outb(Reg.LCR, 0xBF)
        port.outb(Reg.EFR, 0)
        port.outb(Reg.LCR, 0)
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)
        let type: String
        switch port.inb(Reg.IIR) >> 6 {
        case 0: type = "8250/16450"
        case 1: type = "unknown"
        case 2: type = "16550"
        default: type = autoconfig16550A(port)
        }
        port.outb(Reg.LCR, savedLCR)

        // "Reset the UART", as autoconfig() ends.
        port.outb(Reg.MCR, savedMCR)
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)
        port.outb(Reg.FCR, FCR_ENABLE_FIFO | FCR_CLEAR_RCVR | FCR_CLEAR_XMIT)
        port.outb(Reg.FCR, 0)
        _ = port.inb(Reg.RX)
        port.outb(Reg.IER, 0)
        return type
    }

    /// autoconfig_16550a(): rules out every chip that merely looks like a 16550A.
    private func autoconfig16550A(_ port: COM1) -> String {
        // An EFR readable with DLAB set (ST16C650V1) — reading offset 2 must not give 0.
        port.outb(Reg.LCR, LCR_DLAB)
        if port.inb(Reg.EFR) == 0 { return "16650 (EFR with DLAB)" }
        // An EFR behind LCR = 0xBF (16650V2, 16C950, XR16C850...).
        port.outb(Reg.LCR, 0xBF)
        if port.inb(Reg.EFR) == 0 { return "16650V2 family (EFR)" }
        // National Semiconductor SuperIO: EXCR1 (offset 2 with LCR = 0xE0) follows MCR's LOOP bit.
        port.outb(Reg.LCR, 0)
        let mcr = port.inb(Reg.MCR)
        port.outb(Reg.LCR, 0xE0)
        var excr1 = port.inb(2)
        if (excr1 ^ mcr) & MCR_LOOP == 0 {
            port.outb(Reg.LCR, 0)
            port.outb(Reg.MCR, mcr ^ MCR_LOOP)
            port.outb(Reg.LCR, 0xE0)
            excr1 = port.inb(2)
            port.outb(Reg.LCR, 0)
            port.outb(Reg.MCR, mcr)
            if (excr1 ^ mcr) & MCR_LOOP != 0 { return "NS16550A" }
        }
        // TI 16750: IIR bit 5 reports the 64-byte FIFO.
        port.outb(Reg.LCR, 0)
        port.outb(Reg.FCR, FCR_ENABLE_FIFO | FCR7_64BYTE)
        let iir1 = port.inb(Reg.IIR) >> 5
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)
        port.outb(Reg.LCR, LCR_DLAB)
        port.outb(Reg.FCR, FCR_ENABLE_FIFO | FCR7_64BYTE)
        let iir2 = port.inb(Reg.IIR) >> 5
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)
        port.outb(Reg.LCR, 0)
        if iir1 == 6, iir2 == 7 { return "16750" }
        // XScale: IER bit 6 (UUE) is writable.
        let ier = port.inb(Reg.IER)
        port.outb(Reg.IER, ier & ~0x40)
        if port.inb(Reg.IER) & 0x40 == 0 {
            port.outb(Reg.IER, ier | 0x40)
            if port.inb(Reg.IER) & 0x40 != 0 { return "XScale" }
        }
        port.outb(Reg.IER, ier)
        // U6_16550A: a 64-byte FIFO, counted by size_fifo().
        return sizeFIFO(port) == 64 ? "U6_16550A" : "16550A"
    }

    /// size_fifo(): loop 256 bytes back at 115200 baud and count how many the receiver kept.
    private func sizeFIFO(_ port: COM1) -> Int {
        let oldLCR = port.inb(Reg.LCR)
        port.outb(Reg.LCR, 0)
        let oldFCR = port.inb(Reg.FCR)  // really IIR; Linux writes it back to FCR anyway
        let oldMCR = port.inb(Reg.MCR)
        port.outb(Reg.FCR, FCR_ENABLE_FIFO | FCR_CLEAR_RCVR | FCR_CLEAR_XMIT)
        port.outb(Reg.MCR, MCR_LOOP)
        port.outb(Reg.LCR, LCR_DLAB)
        let oldDLL = port.inb(Reg.DLL)
        let oldDLM = port.inb(Reg.DLM)
        port.outb(Reg.DLL, 1)
        port.outb(Reg.DLM, 0)
        port.outb(Reg.LCR, LCR_WLEN8)
        for byte in 0..<256 { port.outb(Reg.TX, UInt8(byte)) }
        let count = port.receiveAll(limit: 256).count
        port.outb(Reg.FCR, oldFCR)
        port.outb(Reg.MCR, oldMCR)
        port.outb(Reg.LCR, LCR_DLAB)
        port.outb(Reg.DLL, oldDLL)
        port.outb(Reg.DLM, oldDLM)
        port.outb(Reg.LCR, oldLCR)
        return count
    }

    @Test func linuxAutoconfigDetectsA16550A() {
        let port = COM1()
        #expect(linuxAutoconfig(port) == "16550A")
        // The probe transmitted only in loopback: nothing reached the console.
        #expect(port.console.output.isEmpty)
        // And it left the UART quiet: no interrupt enabled, nothing pending.
        #expect(port.inb(Reg.IER) == 0)
        #expect(!port.irq.isAsserted)
    }

    @Test func linuxStartupSeesTheTHREInterruptReassertedSoItNeedsNoPollingWorkaround() {
        // serial8250_do_startup: enable THRI, read IIR, disable, enable again, read IIR. A UART that does not
        // re-raise THRE on the second enable gets UART_BUG_THRE and a polling timer.
        let port = COM1()
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)
        port.outb(Reg.IER, IER_THRI)
        let iir1 = port.inb(Reg.IIR)
        port.outb(Reg.IER, 0)
        port.outb(Reg.IER, IER_THRI)
        let iir = port.inb(Reg.IIR)
        port.outb(Reg.IER, 0)
        #expect(iir1 == IIR_FIFO_BITS | IIR_THRI)
        #expect(iir == IIR_FIFO_BITS | IIR_THRI)
        // The "UART_BUG_TXEN" probe: with THRI just enabled, LSR shows TEMT and IIR a pending interrupt.
        port.outb(Reg.IER, IER_THRI)
        #expect(port.inb(Reg.LSR) & LSR_TEMT != 0)
        #expect(port.inb(Reg.IIR) & IIR_NO_INT == 0)
    }

    @Test func lineStatusNeverReadsAsAllOnes() {
        // serial8250_do_startup refuses a port whose LSR reads 0xFF ("LSR safety check engaged").
        let port = COM1()
        #expect(port.inb(Reg.LSR) == LSR_THRE | LSR_TEMT)
    }
}

@Suite("Serial8250: registers")
struct SerialRegisterTests {
    @Test func divisorLatchRoundTripsBehindDLAB() {
        let port = COM1()
        port.outb(Reg.IER, IER_RDI)
        port.outb(Reg.LCR, LCR_DLAB | LCR_WLEN8)
        port.outb(Reg.DLL, 0x01)  // 115200 baud
        port.outb(Reg.DLM, 0x02)
        #expect(port.inb(Reg.DLL) == 0x01)
        #expect(port.inb(Reg.DLM) == 0x02)
        // With DLAB clear, offsets 0 and 1 are the data and IER registers again, untouched by the divisor writes.
        port.outb(Reg.LCR, LCR_WLEN8)
        #expect(port.inb(Reg.IER) == IER_RDI)
        #expect(port.inb(Reg.LCR) == LCR_WLEN8)
        #expect(port.console.output.isEmpty)
    }

    @Test func scratchRegisterHoldsAnyByte() {
        let port = COM1()
        for value: UInt8 in [0xA5, 0x5A, 0x00, 0xFF] {
            port.outb(Reg.SCR, value)
            #expect(port.inb(Reg.SCR) == value)
        }
    }

    @Test func iirReportsFIFOModeInItsTopBits() {
        let port = COM1()
        #expect(port.inb(Reg.IIR) == IIR_NO_INT)
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)
        #expect(port.inb(Reg.IIR) == IIR_FIFO_BITS | IIR_NO_INT)
        port.outb(Reg.FCR, 0)
        #expect(port.inb(Reg.IIR) == IIR_NO_INT)
    }

    @Test func widerAccessesAreNotModelledAndHaveNoSideEffects() {
        let port = COM1()
        port.uart.enqueueInput([0x41])
        // A 16-bit read at RX would otherwise consume the received byte.
        #expect(port.uart.read(offset: Reg.RX, width: 2) == .max)
        port.uart.write(offset: Reg.TX, width: 4, value: 0x4242_4242)
        #expect(port.console.output.isEmpty)
        #expect(port.receiveAll() == [0x41])
    }
}

@Suite("Serial8250: transmit")
struct SerialTransmitTests {
    @Test func bytesWrittenToTHRReachTheConsoleInOrder() {
        let port = COM1()
        for byte in "Linux version 6.1\n".utf8 {
            // What the early console does: wait for THRE, then write.
            #expect(port.inb(Reg.LSR) & LSR_THRE != 0)
            port.outb(Reg.TX, byte)
        }
        #expect(port.console.text == "Linux version 6.1\n")
        #expect(port.firstOutput.calls == 1)
    }

    @Test func thrEmptyInterruptIsRaisedByEnablingClearedByReadingIIRAndRearmedByTransmitting() {
        let port = COM1()
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)

        port.outb(Reg.IER, IER_THRI)  // THR is empty, so enabling the interrupt raises it at once
        #expect(port.irq.isAsserted)
        #expect(port.inb(Reg.IIR) == IIR_FIFO_BITS | IIR_THRI)
        // Reading IIR while THRE is the reported source acknowledges it.
        #expect(!port.irq.isAsserted)
        #expect(port.inb(Reg.IIR) == IIR_FIFO_BITS | IIR_NO_INT)

        port.outb(Reg.TX, UInt8(ascii: "x"))  // the byte leaves at once, THR empties, the interrupt returns
        #expect(port.irq.isAsserted)
        port.outb(Reg.TX, UInt8(ascii: "y"))  // still pending: no new call on the line
        port.outb(Reg.IER, 0)  // the driver's __stop_tx
        #expect(!port.irq.isAsserted)
        // setLevel is called only on changes.
        #expect(port.irq.history == [true, false, true, false])
        #expect(port.console.text == "xy")
    }
}

@Suite("Serial8250: receive")
struct SerialReceiveTests {
    @Test func receivedBytesAreReadableWithDataReadyAndAnInterruptUntilDrained() {
        let port = COM1()
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)
        port.outb(Reg.IER, IER_RDI)
        #expect(!port.irq.isAsserted)
        #expect(port.inb(Reg.LSR) & LSR_DR == 0)

        #expect(port.uart.enqueueInput("ok".utf8) == 2)
        #expect(port.irq.isAsserted)
        #expect(port.inb(Reg.IIR) == IIR_FIFO_BITS | IIR_RDI)
        #expect(port.inb(Reg.LSR) & LSR_DR != 0)
        #expect(port.inb(Reg.RX) == UInt8(ascii: "o"))
        #expect(port.irq.isAsserted)  // one byte still waiting
        #expect(port.inb(Reg.RX) == UInt8(ascii: "k"))
        #expect(port.inb(Reg.LSR) & LSR_DR == 0)
        #expect(!port.irq.isAsserted)
        #expect(port.inb(Reg.IIR) == IIR_FIFO_BITS | IIR_NO_INT)
        #expect(port.irq.history == [true, false])
    }

    @Test func receivedDataOutranksTHREmptyInIIR() {
        let port = COM1()
        port.outb(Reg.IER, IER_RDI | IER_THRI)
        port.uart.enqueueInput([0x31])
        #expect(port.inb(Reg.IIR) == IIR_RDI)
        #expect(port.inb(Reg.RX) == 0x31)
        // With the data read, the still-pending THRE interrupt shows through.
        #expect(port.inb(Reg.IIR) == IIR_THRI)
        #expect(port.inb(Reg.IIR) == IIR_NO_INT)
    }

    @Test func inputBeyondTheSixteenByteFIFOIsNotLost() {
        let port = COM1()
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)
        let typed = (0..<1000).map { UInt8(truncatingIfNeeded: $0) }
        #expect(port.uart.enqueueInput(typed) == 1000)
        // The chip itself holds only one FIFO's worth; the rest waits on the host side.
        #expect(port.uart.saveState().receiveFIFO.count == 16)
        #expect(port.receiveAll() == typed)
    }

    @Test func withFIFOsDisabledTheReceiverHoldsOneByteAndStillLosesNothing() {
        let port = COM1()
        port.uart.enqueueInput([1, 2, 3])
        #expect(port.uart.saveState().receiveFIFO == [1])
        #expect(port.receiveAll() == [1, 2, 3])
    }

    @Test func theHostBufferIsBoundedAndSaysHowMuchItTook() {
        let port = COM1()
        let flood = [UInt8](repeating: 0x61, count: Serial8250.inputBufferCapacity + 100)
        #expect(port.uart.enqueueInput(flood) == Serial8250.inputBufferCapacity)
    }

    @Test func clearingTheReceiveFIFODropsOnlyWhatItHolds() {
        let port = COM1()
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)
        port.uart.enqueueInput((0..<40).map { UInt8($0) })
        // serial8250_clear_fifos: three FCR writes in a row discard one FIFO's worth (bytes 0-15), not three.
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)
        port.outb(Reg.FCR, FCR_ENABLE_FIFO | FCR_CLEAR_RCVR | FCR_CLEAR_XMIT)
        port.outb(Reg.FCR, 0)
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)
        #expect(port.receiveAll() == (16..<40).map { UInt8($0) })
    }
}

@Suite("Serial8250: loopback and modem status")
struct SerialLoopbackTests {
    @Test func inLoopbackTransmittedBytesComeBackAndNeverReachTheConsole() {
        let port = COM1()
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)
        port.outb(Reg.MCR, MCR_LOOP)
        for byte in "ping".utf8 { port.outb(Reg.TX, byte) }
        #expect(port.receiveAll() == Array("ping".utf8))
        #expect(port.console.output.isEmpty)
    }

    @Test func hostInputWaitsWhileTheReceiverListensToTheTransmitter() {
        let port = COM1()
        port.outb(Reg.MCR, MCR_LOOP)
        port.uart.enqueueInput("host".utf8)
        #expect(port.inb(Reg.LSR) & LSR_DR == 0)
        port.outb(Reg.MCR, 0)
        #expect(port.receiveAll() == Array("host".utf8))
    }

    @Test func msrMirrorsMCRInLoopbackAndReportsAConnectedModemOtherwise() {
        let port = COM1()
        #expect(port.inb(Reg.MSR) == MSR_DCD | MSR_DSR | MSR_CTS)

        port.outb(Reg.MCR, MCR_LOOP | MCR_DTR)
        // DCD and CTS dropped (their deltas are flagged), DSR stays on (it follows DTR).
        #expect(port.inb(Reg.MSR) == MSR_DSR | MSR_DDCD | MSR_DCTS)
        #expect(port.inb(Reg.MSR) == MSR_DSR)  // reading MSR cleared the deltas

        port.outb(Reg.MCR, MCR_LOOP | MCR_RTS | MCR_OUT1 | MCR_OUT2)
        #expect(port.inb(Reg.MSR) & 0xF0 == MSR_CTS | MSR_RI | MSR_DCD)
        port.outb(Reg.MCR, MCR_LOOP | MCR_RTS | MCR_OUT2)
        // RI going from on to off is a trailing edge.
        #expect(port.inb(Reg.MSR) & MSR_TERI != 0)
    }

    @Test func modemStatusChangesRaiseTheModemStatusInterrupt() {
        let port = COM1()
        port.outb(Reg.IER, IER_MSI)
        port.outb(Reg.MCR, MCR_LOOP | MCR_RTS | MCR_DTR | MCR_OUT2)  // DCD, DSR and CTS stay on: no change
        #expect(!port.irq.isAsserted)
        port.outb(Reg.MCR, MCR_LOOP | MCR_DTR | MCR_OUT2)  // CTS drops
        #expect(port.irq.isAsserted)
        #expect(port.inb(Reg.IIR) == IIR_MSI)
        #expect(port.inb(Reg.MSR) & MSR_DCTS != 0)
        #expect(!port.irq.isAsserted)
    }

    @Test func overflowingTheFIFOInLoopbackFlagsAnOverrunOnce() {
        let port = COM1()
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)
        port.outb(Reg.MCR, MCR_LOOP)
        port.outb(Reg.IER, IER_RLSI)
        for byte in 0..<17 { port.outb(Reg.TX, UInt8(byte)) }
        #expect(port.irq.isAsserted)
        #expect(port.inb(Reg.IIR) == IIR_FIFO_BITS | IIR_RLSI)
        #expect(port.inb(Reg.LSR) & LSR_OE != 0)  // reading LSR clears the overrun...
        #expect(port.inb(Reg.LSR) & LSR_OE == 0)
        #expect(!port.irq.isAsserted)  // ...and with it the line-status interrupt
        // The 17th byte was the one lost.
        #expect(port.receiveAll() == (0..<16).map { UInt8($0) })
    }
}

@Suite("Serial8250: snapshot and threads")
struct SerialStateTests {
    @Test func stateRoundTripsIntoAFreshUARTWhichRedrivesItsInterruptLine() {
        let port = COM1()
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)
        port.outb(Reg.LCR, LCR_DLAB)
        port.outb(Reg.DLL, 0x01)
        port.outb(Reg.LCR, LCR_WLEN8)
        port.outb(Reg.SCR, 0x5A)
        port.outb(Reg.IER, IER_RDI)
        port.uart.enqueueInput("abc".utf8)
        let saved = port.uart.saveState()

        let restored = COM1()
        restored.uart.restoreState(saved)
        #expect(restored.uart.saveState() == saved)
        #expect(restored.irq.isAsserted)
        #expect(restored.inb(Reg.SCR) == 0x5A)
        #expect(restored.receiveAll() == Array("abc".utf8))
    }

    @Test func concurrentWritersAndAnInputThreadLoseNothing() async {
        let port = COM1()
        let uart = port.uart
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    for _ in 0..<500 { uart.write(offset: Reg.TX, width: 1, value: UInt64(0x30 + writer)) }
                }
            }
            group.addTask {
                for _ in 0..<500 { uart.enqueueInput([0x7A]) }
            }
        }
        #expect(port.console.output.count == 2000)
        #expect(port.firstOutput.calls == 1)
        port.outb(Reg.FCR, FCR_ENABLE_FIFO)  // entering FIFO mode clears the 1-byte receiver...
        #expect(port.receiveAll().count == 499)  // ...so exactly one received byte is dropped, by the guest
    }
}
