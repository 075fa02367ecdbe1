// A 16550A UART (the PC's COM port), as Linux's 8250 driver expects to find it at 0x3F8 / IRQ 4.
//
// Register map (offset from the base port; "DLAB" is LCR bit 7), after the National Semiconductor PC16550D data
// sheet and Linux's include/uapi/linux/serial_reg.h:
//
//   0  read: RBR receive buffer      write: THR transmit holding      DLAB=1: DLL divisor latch, low byte
//   1  IER interrupt enable (bits 0-3)                                DLAB=1: DLM divisor latch, high byte
//   2  read: IIR interrupt identification                             write: FCR FIFO control
//   3  LCR line control      4  MCR modem control      5  LSR line status      6  MSR modem status      7  SCR
//
// What is modelled and why:
// - Transmission is instantaneous: a THR write goes straight to the ConsoleSink, so LSR always shows THRE|TEMT and
//   no transmit FIFO exists. The THR-empty interrupt therefore becomes pending again right after every THR write,
//   exactly as a real UART's does once its shifter has drained.
// - Reception has the real 16-byte receive FIFO (1 byte when FCR bit 0 is clear), fed from a bounded host-side
//   queue (64 KiB) that stands for "the line". Host bytes move into the FIFO whenever there is room, so typing
//   more than 16 bytes ahead loses nothing; only the guest itself can discard received bytes (FCR clear).
//   After an access that clears the receive FIFO, waiting bytes arrive at the guest's next access (as if a little
//   line time had passed): Linux's serial8250_clear_fifos writes FCR three times in a row, and a clear that
//   refilled at once would throw away three FIFOs' worth of typed input instead of the one the guest asked to drop.
// - Interrupts: receiver line status (overrun), received data, THR empty and modem status, with the 16550 IIR
//   priorities. The received-data interrupt is reported whenever data is waiting (IIR 0x04), without modelling the
//   FIFO trigger level or the character-timeout variant (IIR 0x0C); Linux handles both identically.
//   The IRQ output is "some enabled interrupt is pending". On PC boards it is gated by MCR OUT2; like QEMU and
//   Firecracker we do not gate it, so a guest that never sets OUT2 still gets interrupts.
// - Loopback (MCR bit 4): THR feeds the receiver, the host line is disconnected (its bytes wait), and MSR reflects
//   MCR (RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD). Outside loopback the modem inputs read DCD|DSR|CTS: a null-modem
//   cable with the other end ready.
// - Linux's autoconfig() sees a 16550A: IER keeps only bits 0-3 (the scratch and XScale UUE tests), IIR shows 0xC0
//   once FIFOs are enabled and never bit 5 (so it is not taken for a 16750), reading "EFR" (offset 2) with LCR
//   0x80 or 0xBF returns the non-zero IIR (no EFR, not a 16650), and the loopback FIFO-size probe counts 16 bytes.
//
// Threads and lock order: vCPU threads (register accesses) and the host's input thread (`enqueueInput`) share the
// UART through one Mutex. While holding it the device calls `InterruptLine.setLevel` and `ConsoleSink.write`, so
// level changes and output bytes leave in the order the guest caused them; neither may call back into the UART.
// Lock order: Serial8250's mutex → (interrupt line, console sink). `onFirstOutput` runs after the mutex is released.

import Synchronization

public final class Serial8250: BusDevice {
    /// COM1, where Linux's `console=ttyS0` looks.
    public static let com1Base: UInt64 = 0x3F8
    /// COM1's ISA interrupt.
    public static let com1IRQ: UInt32 = 4
    /// The UART decodes eight consecutive ports.
    public static let portCount: UInt64 = 8
    /// How many received bytes the host side holds before `enqueueInput` starts refusing them.
    public static let inputBufferCapacity = 64 * 1024
    /// The 16550A's receive FIFO depth.
    public static let fifoDepth = 16

    /// The guest-visible registers and received bytes, for snapshot and restore. Bytes still waiting on the host
    /// side (not yet in the FIFO) are not part of it: they have not reached the device yet.
    public struct State: Codable, Equatable, Sendable {
        /// DLL / DLM: the baud-rate divisor (115200 / divisor). Stored, not acted on.
        public var divisorLatchLow: UInt8 = 0x0C
        public var divisorLatchHigh: UInt8 = 0x00
        /// IER bits 0-3.
        public var interruptEnable: UInt8 = 0
        /// FCR as last written: FIFO enable (bit 0), DMA mode (bit 3), receive trigger level (bits 6-7).
        public var fifoControl: UInt8 = 0
        /// LCR (bit 7 is DLAB).
        public var lineControl: UInt8 = 0
        /// MCR bits 0-4 (DTR, RTS, OUT1, OUT2, LOOP).
        public var modemControl: UInt8 = 0
        /// SCR, a byte of scratch storage the driver uses to probe for the chip.
        public var scratch: UInt8 = 0
        /// THR-empty interrupt latch: set when THR empties (or the interrupt is enabled), cleared by reading IIR
        /// while it is the reported source.
        public var transmitterEmptyPending = false
        /// LSR OE: a received byte was lost; cleared by reading LSR.
        public var overrunError = false
        /// MSR bits 0-3 (DCTS, DDSR, TERI, DDCD); cleared by reading MSR.
        public var modemStatusDeltas: UInt8 = 0
        /// Received bytes the guest has not read yet, oldest first (at most 16).
        public var receiveFIFO: [UInt8] = []

        public init() {}
    }

    private struct Guarded {
        var uart = UART16550()
        var irq: LevelTrackedLine
        var hasTransmitted = false
    }

    private let guarded: Mutex<Guarded>
    private let sink: any ConsoleSink
    private let onFirstOutput: (@Sendable () -> Void)?

    /// - Parameters:
    ///   - sink: receives every byte the guest transmits.
    ///   - interrupt: the UART's IRQ line (IRQ 4 for COM1).
    ///   - onFirstOutput: called once, on the vCPU thread, right after the first byte reached `sink` and after
    ///     the UART's lock is released (the VMM timestamps "first console output" with it).
    public init(
        sink: any ConsoleSink,
        interrupt: any InterruptLine,
        onFirstOutput: (@Sendable () -> Void)? = nil
    ) {
        self.guarded = Mutex(Guarded(irq: LevelTrackedLine(interrupt)))
        self.sink = sink
        self.onFirstOutput = onFirstOutput
    }

    // MARK: - Bus access (vCPU threads)

    public func read(offset: UInt64, width: Int) -> UInt64 {
        // The UART's registers are bytes; Linux only ever uses inb/outb on them. Wider accesses are not modelled.
        guard width == 1 else { return .max }
        return guarded.withLock { state in
            let value = state.uart.read(register: offset)
            state.irq.drive(state.uart.interruptPending)
            return UInt64(value)
        }
    }

    public func write(offset: UInt64, width: Int, value: UInt64) {
        guard width == 1 else { return }
        let isFirstOutput = guarded.withLock { state -> Bool in
            var isFirst = false
            if let byte = state.uart.write(register: offset, value: UInt8(truncatingIfNeeded: value)) {
                sink.write(byte)
                isFirst = !state.hasTransmitted
                state.hasTransmitted = true
            }
            state.irq.drive(state.uart.interruptPending)
            return isFirst
        }
        if isFirstOutput { onFirstOutput?() }
    }

    // MARK: - Host input (the VMM's stdin thread)

    /// Queues bytes typed on the host for the guest to receive. Returns how many were accepted: all of them unless
    /// the host-side buffer (`inputBufferCapacity`) is full, in which case the caller keeps the rest and retries
    /// later (nothing is silently dropped).
    @discardableResult
    public func enqueueInput(_ bytes: some Collection<UInt8>) -> Int {
        guarded.withLock { state in
            var accepted = 0
            for byte in bytes {
                guard state.uart.hostInput.push(byte) else { break }
                accepted += 1
            }
            state.uart.refillReceiver()
            state.irq.drive(state.uart.interruptPending)
            return accepted
        }
    }

    // MARK: - Snapshot

    public func saveState() -> State {
        guarded.withLock { $0.uart.state }
    }

    /// Loads registers from a snapshot (values out of range are masked or truncated to what the chip can hold)
    /// and drives the interrupt line to the level they imply, whatever it was before.
    public func restoreState(_ snapshot: State) {
        guarded.withLock { state in
            state.uart.state = snapshot
            state.irq.force(state.uart.interruptPending)
        }
    }
}

// MARK: - The register model

/// The UART's registers and their side effects, without locking or I/O: `write` returns the byte to transmit.
struct UART16550 {
    // Bit names from the PC16550D data sheet (and Linux's serial_reg.h).
    enum IER {
        static let receivedData: UInt8 = 0x01  // ERBFI
        static let transmitterEmpty: UInt8 = 0x02  // ETBEI
        static let lineStatus: UInt8 = 0x04  // ELSI
        static let modemStatus: UInt8 = 0x08  // EDSSI
        static let implemented: UInt8 = 0x0F
    }
    enum IIR {
        static let noInterruptPending: UInt8 = 0x01
        static let fifosEnabled: UInt8 = 0xC0
    }
    enum FCR {
        static let enableFIFO: UInt8 = 0x01
        static let clearReceiver: UInt8 = 0x02
        static let stored: UInt8 = 0xC9  // enable, DMA mode select, trigger level
    }
    enum LCR {
        static let divisorLatchAccess: UInt8 = 0x80  // DLAB
    }
    enum MCR {
        static let implemented: UInt8 = 0x1F
        static let loop: UInt8 = 0x10
    }
    enum LSR {
        static let dataReady: UInt8 = 0x01
        static let overrunError: UInt8 = 0x02
        static let transmitterHoldingEmpty: UInt8 = 0x20  // THRE
        static let transmitterEmpty: UInt8 = 0x40  // TEMT
    }
    enum MSR {
        static let clearToSend: UInt8 = 0x10
        static let dataSetReady: UInt8 = 0x20
        static let ringIndicator: UInt8 = 0x40
        static let dataCarrierDetect: UInt8 = 0x80
        static let trailingEdgeRingIndicator: UInt8 = 0x04  // TERI
    }

    /// Interrupt sources in the 16550's priority order, with their IIR identification codes.
    enum InterruptSource: UInt8 {
        case lineStatus = 0x06
        case receivedData = 0x04
        case transmitterEmpty = 0x02
        case modemStatus = 0x00
    }

    var registers = Serial8250.State()
    var receiver = ByteQueue(capacity: Serial8250.fifoDepth)
    var hostInput = ByteQueue(capacity: Serial8250.inputBufferCapacity)

    private var dlab: Bool { registers.lineControl & LCR.divisorLatchAccess != 0 }
    private var loopback: Bool { registers.modemControl & MCR.loop != 0 }
    private var fifosEnabled: Bool { registers.fifoControl & FCR.enableFIFO != 0 }
    /// With FIFOs disabled the receiver is the single-byte RBR of the original 8250.
    private var receiverCapacity: Int { fifosEnabled ? Serial8250.fifoDepth : 1 }

    var state: Serial8250.State {
        get {
            var snapshot = registers
            snapshot.receiveFIFO = receiver.elements
            return snapshot
        }
        set {
            registers = newValue
            registers.interruptEnable &= IER.implemented
            registers.fifoControl &= FCR.stored
            registers.modemControl &= MCR.implemented
            registers.modemStatusDeltas &= 0x0F
            registers.receiveFIFO = []
            receiver.removeAll()
            for byte in newValue.receiveFIFO.prefix(receiverCapacity) { receiver.push(byte) }
        }
    }

    // MARK: Register reads

    mutating func read(register offset: UInt64) -> UInt8 {
        refillReceiver()
        switch offset {
        case 0:
            if dlab { return registers.divisorLatchLow }
            // Reading an empty RBR returns 0 (real chips return the last byte; no driver relies on either).
            let byte = receiver.pop() ?? 0
            refillReceiver()
            return byte
        case 1:
            return dlab ? registers.divisorLatchHigh : registers.interruptEnable
        case 2:
            return readInterruptIdentification()
        case 3:
            return registers.lineControl
        case 4:
            return registers.modemControl
        case 5:
            return readLineStatus()
        case 6:
            let value = modemInputs | registers.modemStatusDeltas
            registers.modemStatusDeltas = 0
            return value
        case 7:
            return registers.scratch
        default:
            return 0xFF
        }
    }

    /// IIR: the highest-priority pending interrupt, FIFO mode in bits 6-7. Reading it is what acknowledges a
    /// THR-empty interrupt (the other sources clear when their cause goes away).
    private mutating func readInterruptIdentification() -> UInt8 {
        let fifoBits = fifosEnabled ? IIR.fifosEnabled : 0
        guard let source = pendingInterrupt else { return fifoBits | IIR.noInterruptPending }
        if source == .transmitterEmpty { registers.transmitterEmptyPending = false }
        return fifoBits | source.rawValue
    }

    /// LSR: data ready, overrun (cleared by this read), and a transmitter that is always empty.
    private mutating func readLineStatus() -> UInt8 {
        var value = LSR.transmitterHoldingEmpty | LSR.transmitterEmpty
        if !receiver.isEmpty { value |= LSR.dataReady }
        if registers.overrunError { value |= LSR.overrunError }
        registers.overrunError = false
        return value
    }

    /// MSR bits 4-7: the modem input lines.
    private var modemInputs: UInt8 {
        guard loopback else { return MSR.dataCarrierDetect | MSR.dataSetReady | MSR.clearToSend }
        // In loopback the outputs are wired to the inputs: DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD.
        let mcr = registers.modemControl
        var inputs: UInt8 = 0
        if mcr & 0x01 != 0 { inputs |= MSR.dataSetReady }
        if mcr & 0x02 != 0 { inputs |= MSR.clearToSend }
        if mcr & 0x04 != 0 { inputs |= MSR.ringIndicator }
        if mcr & 0x08 != 0 { inputs |= MSR.dataCarrierDetect }
        return inputs
    }

    // MARK: Register writes

    /// Applies a register write; returns the byte to send to the console when the guest transmitted one.
    mutating func write(register offset: UInt64, value: UInt8) -> UInt8? {
        switch offset {
        case 0:
            if dlab {
                registers.divisorLatchLow = value
            } else {
                let output = transmit(value)
                refillReceiver()
                return output
            }
        case 1:
            if dlab {
                registers.divisorLatchHigh = value
            } else {
                registers.interruptEnable = value & IER.implemented
                // Enabling (or re-enabling) the THR-empty interrupt while THR is empty raises it at once. Linux
                // relies on this: serial8250_do_startup writes IER=THRI, 0, THRI and expects IIR to report THRE
                // both times, or it marks the port UART_BUG_THRE and falls back to polling with a timer.
                if value & IER.transmitterEmpty != 0 { registers.transmitterEmptyPending = true }
            }
        case 2:
            // A write that clears the receive FIFO does not refill it; see the file comment.
            if writeFIFOControl(value) { return nil }
        case 3:
            registers.lineControl = value
        case 4:
            writeModemControl(value)
        case 7:
            registers.scratch = value
        default:
            // LSR and MSR are read-only (writing LSR is a factory test mode on the real chip).
            break
        }
        refillReceiver()
        return nil
    }

    /// THR: the byte leaves at once, so THR is empty again and the THR-empty interrupt is pending anew.
    private mutating func transmit(_ byte: UInt8) -> UInt8? {
        registers.transmitterEmptyPending = true
        guard loopback else { return byte }
        receiveLocally(byte)
        return nil
    }

    /// A byte arriving at the receiver from the loopback path. When there is no room the chip flags an overrun:
    /// in FIFO mode the new byte is lost, in 8250 mode it overwrites the unread RBR.
    private mutating func receiveLocally(_ byte: UInt8) {
        if receiver.count < receiverCapacity {
            receiver.push(byte)
            return
        }
        registers.overrunError = true
        if !fifosEnabled {
            receiver.removeAll()
            receiver.push(byte)
        }
    }

    /// FCR; returns whether the receive FIFO was cleared.
    private mutating func writeFIFOControl(_ value: UInt8) -> Bool {
        let wasEnabled = fifosEnabled
        guard value & FCR.enableFIFO != 0 else {
            // The other bits are only programmed while bit 0 is set; clearing bit 0 leaves FIFO mode, which
            // resets both FIFOs.
            registers.fifoControl = 0
            if wasEnabled { receiver.removeAll() }
            return wasEnabled
        }
        registers.fifoControl = value & FCR.stored
        // Entering FIFO mode resets the FIFOs too. Clearing the (unmodelled) transmit FIFO, bit 2, has nothing
        // to discard: bytes leave as soon as they are written.
        let clears = !wasEnabled || value & FCR.clearReceiver != 0
        if clears { receiver.removeAll() }
        return clears
    }

    /// MCR; a change of the modem input lines (possible only in loopback) sets the MSR delta bits.
    private mutating func writeModemControl(_ value: UInt8) {
        let before = modemInputs
        registers.modemControl = value & MCR.implemented
        let after = modemInputs
        // DCTS, DDSR and DDCD flag any change of CTS, DSR, DCD (bits 4, 5, 7 → 0, 1, 3);
        // TERI flags only RI going from on to off.
        registers.modemStatusDeltas |= ((before ^ after) >> 4) & 0x0B
        if before & MSR.ringIndicator != 0, after & MSR.ringIndicator == 0 {
            registers.modemStatusDeltas |= MSR.trailingEdgeRingIndicator
        }
    }

    // MARK: Receiver and interrupts

    /// Moves bytes waiting on the host side into the receiver while it has room. In loopback the receiver is
    /// disconnected from the line, so host bytes keep waiting.
    mutating func refillReceiver() {
        guard !loopback else { return }
        while receiver.count < receiverCapacity, let byte = hostInput.pop() {
            receiver.push(byte)
        }
    }

    /// The highest-priority interrupt that is both enabled and pending.
    var pendingInterrupt: InterruptSource? {
        let enabled = registers.interruptEnable
        if enabled & IER.lineStatus != 0, registers.overrunError { return .lineStatus }
        if enabled & IER.receivedData != 0, !receiver.isEmpty { return .receivedData }
        if enabled & IER.transmitterEmpty != 0, registers.transmitterEmptyPending { return .transmitterEmpty }
        if enabled & IER.modemStatus != 0, registers.modemStatusDeltas != 0 { return .modemStatus }
        return nil
    }

    var interruptPending: Bool { pendingInterrupt != nil }
}
