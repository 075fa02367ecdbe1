// The PC keyboard controller (Intel 8042), modelled far enough for Linux's i8042 and atkbd drivers to probe it
// quickly and for the guest to reset the machine through it.
//
// Ports (one registration covering 0x60...0x64; offsets 1-3 are not decoded and read as 0xFF — on a KVM VM with an
// in-kernel PIT, port 0x61 belongs to KVM's speaker model and never reaches user space):
//   0x60  read: output buffer (a byte from the controller or the keyboard)   write: data / command parameter
//   0x64  read: status register                                              write: controller command
//
// Linux's probe (drivers/input/serio/i8042.c) runs, with a 0.5 s timeout on every byte it waits for:
// flush (read 0x60 while status says OBF), self-test 0xAA → 0x55, read/write the command byte 0x20/0x60, then the
// AUX (mouse) port checks 0xD3 "loop a byte back as if from the mouse" and 0xA9 "test the AUX interface". There is
// no mouse here: 0xD3's byte comes back without the AUX-data status bit, which Linux reads as "no loop support"
// immediately, and 0xA9 answers 0x02 (clock line stuck high, i.e. nothing connected), so the AUX port is dropped
// at once instead of after timeouts. Commands the driver sends at boot on x86 — 0xD1 with 0xDF (A20 on) and the
// no-op 0xFF for SMM firmware — are accepted. Once the keyboard port exists, atkbd talks to the keyboard through
// 0x60; the keyboard here ACKs (0xFA) every command, answers identify (0xF2) with a standard MF2 ID (0xAB 0x83) and
// reset (0xFF) with "self-test passed" (0xAA), delivering those bytes with IRQ 1 like a real keyboard.
//
// Reset: command 0xFE (pulse output line 0, wired to the CPU's reset pin) — and any 0xF0-0xFF pulse command with
// bit 0 clear, or writing the output port with bit 0 clear — calls `onReset`. Linux's reboot=k and its fallback
// path after ACPI reset both use 0xFE.
//
// Interrupt: IRQ 1 is asserted while the output buffer holds a byte and the command byte enables the keyboard
// interrupt (bit 0). The ISA input is edge-triggered, so when the guest reads a byte and another is queued the
// line drops and rises again, as the real controller's does when it loads the next byte.
//
// Threads and lock order: vCPU threads and the VMM (Ctrl-Alt-Del requests) share the controller through one
// Mutex; `InterruptLine.setLevel` is called with it held (lock order: I8042 mutex → interrupt line). `onReset` is
// called after the mutex is released, on the vCPU thread that wrote the command; it must only request the reset
// (for example, ask the VMM's control loop to stop the vCPUs) and not wait for this vCPU to stop.

import Logging
import Synchronization

public final class I8042: BusDevice {
    /// The data port; the registration covers `basePort ..< basePort + portCount`.
    public static let basePort: UInt64 = 0x60
    public static let portCount: UInt64 = 5
    /// The keyboard's ISA interrupt.
    public static let keyboardIRQ: UInt32 = 1

    /// How many bytes the controller queues for the guest to read (the keyboard's own buffer on real hardware).
    static let outputCapacity = 16

    /// Controller and keyboard state, for snapshot and restore.
    public struct State: Codable, Equatable, Sendable {
        /// The "command byte" (CTR): bit 0 keyboard interrupt, 1 AUX interrupt, 2 system flag (POST passed),
        /// 4 keyboard disabled, 5 AUX disabled, 6 translate to scan code set 1. The default is what a BIOS
        /// leaves behind: keyboard interrupt on, POST passed, AUX disabled, translation on.
        public var commandByte: UInt8 = 0x65
        /// The output port: bit 0 = CPU reset line (1 = running), bit 1 = A20 gate.
        public var outputPort: UInt8 = 0x03
        /// A controller command waiting for its parameter byte on port 0x60.
        public var pendingControllerCommand: UInt8? = nil
        /// A keyboard command waiting for its parameter byte (set LEDs, typematic rate, scan code set).
        public var pendingKeyboardCommand: UInt8? = nil
        /// Status bit 3: the last byte the guest wrote went to the command port.
        public var lastWriteWasCommand = false
        /// Whether the keyboard sends scan codes (F4 enables, F5 disables).
        public var keyboardScanning = true
        /// Bytes waiting for the guest to read from port 0x60, oldest first.
        public var outputBuffer: [UInt8] = []

        public init() {}
    }

    private struct Guarded {
        var controller = KeyboardController()
        var irq: LevelTrackedLine
    }

    private let guarded: Mutex<Guarded>
    private let onReset: @Sendable () -> Void
    private let logger: Logger

    /// - Parameters:
    ///   - interrupt: IRQ 1.
    ///   - onReset: called when the guest pulses the CPU reset line (see the file comment for the thread rules).
    public init(
        interrupt: any InterruptLine,
        logger: Logger = Logger(label: "swiftlet.devices.i8042"),
        onReset: @escaping @Sendable () -> Void
    ) {
        self.guarded = Mutex(Guarded(irq: LevelTrackedLine(interrupt)))
        self.logger = logger
        self.onReset = onReset
    }

    // MARK: - Bus access

    public func read(offset: UInt64, width: Int) -> UInt64 {
        guard width == 1 else { return .max }
        return guarded.withLock { state in
            switch offset {
            case 0:
                let (byte, anotherQueued) = state.controller.readData()
                if anotherQueued {
                    // The byte just read is replaced by the next one: the real controller's IRQ 1 drops and
                    // rises again, and the edge-triggered input needs that fresh edge.
                    state.irq.retrigger()
                }
                state.irq.drive(state.controller.interruptPending)
                return UInt64(byte)
            case 4:
                return UInt64(state.controller.status)
            default:
                return 0xFF
            }
        }
    }

    public func write(offset: UInt64, width: Int, value: UInt64) {
        guard width == 1 else { return }
        let byte = UInt8(truncatingIfNeeded: value)
        let effect = guarded.withLock { state -> KeyboardController.Effect in
            let effect: KeyboardController.Effect
            switch offset {
            case 0: effect = state.controller.writeData(byte)
            case 4: effect = state.controller.writeCommand(byte)
            default: effect = .none
            }
            state.irq.drive(state.controller.interruptPending)
            return effect
        }
        switch effect {
        case .none:
            break
        case .resetRequested:
            // Stop first: the machine's own stop message reports the reset; this line is only for --verbose.
            onReset()
            logger.debug("guest requested a CPU reset through the i8042 controller")
        case .unknownCommand(let command):
            logger.debug("ignoring unsupported i8042 command", metadata: ["command": "\(hex(UInt64(command)))"])
        }
    }

    // MARK: - Host requests

    /// Types Ctrl-Alt-Del on the keyboard (make codes only, as Firecracker does), which Linux turns into a clean
    /// reboot request to init. Returns false when the output queue has no room for the whole sequence.
    @discardableResult
    public func sendCtrlAltDelete() -> Bool {
        guarded.withLock { state in
            let sent = state.controller.queueCtrlAltDelete()
            state.irq.drive(state.controller.interruptPending)
            return sent
        }
    }

    // MARK: - Snapshot

    public func saveState() -> State {
        guarded.withLock { $0.controller.state }
    }

    /// Loads a snapshot (the output queue is truncated to its capacity) and drives IRQ 1 to the implied level.
    public func restoreState(_ snapshot: State) {
        guarded.withLock { state in
            state.controller.state = snapshot
            state.irq.force(state.controller.interruptPending)
        }
    }
}

// MARK: - The controller model

/// The 8042's registers, its command interpreter and the attached keyboard, without locking or callbacks.
struct KeyboardController {
    enum Effect: Equatable {
        case none
        case resetRequested
        case unknownCommand(UInt8)
    }

    // Command byte (CTR) bits.
    static let keyboardInterruptEnabled: UInt8 = 0x01
    static let systemFlag: UInt8 = 0x04
    static let keyboardDisabled: UInt8 = 0x10
    static let auxDisabled: UInt8 = 0x20
    static let translate: UInt8 = 0x40

    // Status register bits.
    static let outputBufferFull: UInt8 = 0x01
    static let commandLastWritten: UInt8 = 0x08
    static let keyboardNotInhibited: UInt8 = 0x10

    // Keyboard replies.
    static let acknowledge: UInt8 = 0xFA
    static let selfTestPassed: UInt8 = 0xAA

    var registers = I8042.State()
    var output = ByteQueue(capacity: I8042.outputCapacity)

    var state: I8042.State {
        get {
            var snapshot = registers
            snapshot.outputBuffer = output.elements
            return snapshot
        }
        set {
            registers = newValue
            registers.outputBuffer = []
            output.removeAll()
            for byte in newValue.outputBuffer.prefix(I8042.outputCapacity) { output.push(byte) }
        }
    }

    /// Status (port 0x64). The input buffer is never reported full: every byte is consumed as it is written.
    /// "Keyboard not inhibited" is always set, or Linux warns about an active keylock.
    var status: UInt8 {
        var value = Self.keyboardNotInhibited | (registers.commandByte & Self.systemFlag)
        if !output.isEmpty { value |= Self.outputBufferFull }
        if registers.lastWriteWasCommand { value |= Self.commandLastWritten }
        return value
    }

    var interruptPending: Bool {
        !output.isEmpty && registers.commandByte & Self.keyboardInterruptEnabled != 0
    }

    /// Port 0x60 read: the oldest queued byte (0 when empty), and whether another byte follows it.
    mutating func readData() -> (byte: UInt8, anotherQueued: Bool) {
        let byte = output.pop() ?? 0
        return (byte, !output.isEmpty)
    }

    /// Port 0x64 write: a controller command.
    mutating func writeCommand(_ command: UInt8) -> Effect {
        registers.lastWriteWasCommand = true
        registers.pendingControllerCommand = nil
        switch command {
        case 0x20:  // Read the command byte.
            reply(registers.commandByte)
        case 0x21...0x3F:  // Read controller RAM: not modelled, reads as zero.
            reply(0)
        case 0x60...0x7F, 0xD1, 0xD2, 0xD3, 0xD4:  // Commands whose parameter follows on port 0x60.
            registers.pendingControllerCommand = command
        case 0xA7:  // Disable the AUX port.
            registers.commandByte |= Self.auxDisabled
        case 0xA8:  // Enable the AUX port.
            registers.commandByte &= ~Self.auxDisabled
        case 0xA9:  // Test the AUX interface: "clock line stuck high", i.e. no mouse.
            reply(0x02)
        case 0xAA:  // Controller self-test: passed.
            reply(0x55)
        case 0xAB:  // Test the keyboard interface: no error.
            reply(0x00)
        case 0xAD:  // Disable the keyboard interface.
            registers.commandByte |= Self.keyboardDisabled
        case 0xAE:  // Enable the keyboard interface.
            registers.commandByte &= ~Self.keyboardDisabled
        case 0xC0:  // Read the input port: bit 7 = keyboard not inhibited.
            reply(0x80)
        case 0xD0:  // Read the output port.
            reply(registers.outputPort)
        case 0xDD:  // Gate A20 off.
            registers.outputPort &= ~0x02
        case 0xDF:  // Gate A20 on.
            registers.outputPort |= 0x02
        case 0xF0...0xFF:
            // Pulse the output-port lines whose bit is 0 in the command's low nibble. Line 0 is the CPU reset;
            // 0xFE pulses only it, 0xFF pulses nothing (Linux sends it as a null command).
            if command & 0x01 == 0 { return .resetRequested }
        default:
            return .unknownCommand(command)
        }
        return .none
    }

    /// Port 0x60 write: the parameter of a pending controller command, or else a byte for the keyboard.
    mutating func writeData(_ byte: UInt8) -> Effect {
        registers.lastWriteWasCommand = false
        guard let command = registers.pendingControllerCommand else {
            keyboardReceive(byte)
            return .none
        }
        registers.pendingControllerCommand = nil
        switch command {
        case 0x60:  // Write the command byte.
            registers.commandByte = byte
        case 0xD1:  // Write the output port; clearing bit 0 holds the CPU in reset.
            registers.outputPort = byte
            if byte & 0x01 == 0 { return .resetRequested }
        case 0xD2:  // Write the keyboard output buffer: the byte comes back as if the keyboard sent it.
            reply(byte, replacingQueue: false)
        case 0xD3:
            // Write the AUX output buffer. With no AUX port the byte comes back without the AUX-data status bit,
            // which Linux's i8042_check_aux takes as "AUX loop not supported" without waiting for a timeout.
            reply(byte)
        default:
            // 0x61-0x7F (controller RAM) and 0xD4 (a byte for the absent mouse): nothing to do.
            break
        }
        return .none
    }

    /// A controller reply. Replies replace whatever was queued, so the guest's next read of port 0x60 is the
    /// answer to the command it just sent (Linux's i8042_command reads exactly one byte per expected reply).
    private mutating func reply(_ byte: UInt8, replacingQueue: Bool = true) {
        if replacingQueue { output.removeAll() }
        output.push(byte)
    }

    // MARK: The keyboard

    /// A byte sent to the keyboard (PS/2 keyboard command set, as in Linux's include/linux/libps2.h and atkbd.c).
    private mutating func keyboardReceive(_ byte: UInt8) {
        if let command = registers.pendingKeyboardCommand {
            // The parameter of a two-byte command.
            registers.pendingKeyboardCommand = nil
            output.push(Self.acknowledge)
            // F0 00 asks which scan code set is active; the keyboard itself always runs set 2.
            if command == 0xF0, byte == 0x00 { output.push(0x02) }
            return
        }
        switch byte {
        case 0xED, 0xF0, 0xF3:  // Set LEDs, get/set scan code set, set typematic rate: a parameter follows.
            registers.pendingKeyboardCommand = byte
            output.push(Self.acknowledge)
        case 0xEE:  // Echo.
            output.push(0xEE)
        case 0xF2:  // Identify: an MF2 keyboard.
            output.push(Self.acknowledge)
            output.push(0xAB)
            output.push(0x83)
        case 0xF4:  // Enable scanning.
            registers.keyboardScanning = true
            output.push(Self.acknowledge)
        case 0xF5:  // Disable scanning (and restore defaults).
            registers.keyboardScanning = false
            output.push(Self.acknowledge)
        case 0xF6:  // Restore defaults.
            registers.keyboardScanning = true
            output.push(Self.acknowledge)
        case 0xFF:  // Reset and self-test.
            registers.keyboardScanning = true
            output.push(Self.acknowledge)
            output.push(Self.selfTestPassed)
        default:  // Everything else (typematic/make-break modes, resend, ...) is simply acknowledged.
            output.push(Self.acknowledge)
        }
    }

    /// Queues the make codes for Ctrl, Alt and Delete in the scan code set the guest sees: set 1 when the
    /// controller translates (command byte bit 6), set 2 otherwise.
    mutating func queueCtrlAltDelete() -> Bool {
        let codes: [UInt8] =
            registers.commandByte & Self.translate != 0
            ? [0x1D, 0x38, 0xE0, 0x53]
            : [0x14, 0x11, 0xE0, 0x71]
        guard registers.keyboardScanning, output.freeSpace >= codes.count else { return false }
        for code in codes { output.push(code) }
        return true
    }
}
