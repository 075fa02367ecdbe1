import ACPI
import Devices

/// The hardware-reduced ACPI sleep and reset registers the FADT declares (see `ACPIPowerRegisters` for the
/// protocol): a write of S5 to SLEEP_CONTROL_REG powers the VM off, RESET_VALUE to RESET_REG resets it (which
/// ends it). Reads return 0: WAK_STS never gets set because the VM never wakes from a sleep state.
final class ACPIPowerDevice: BusDevice {
    private let registers: ACPIPowerRegisters
    private let onPowerOff: @Sendable () -> Void
    private let onReset: @Sendable () -> Void

    init(registers: ACPIPowerRegisters, onPowerOff: @escaping @Sendable () -> Void, onReset: @escaping @Sendable () -> Void) {
        self.registers = registers
        self.onPowerOff = onPowerOff
        self.onReset = onReset
    }

    func read(offset: UInt64, width: Int) -> UInt64 { 0 }

    func write(offset: UInt64, width: Int, value: UInt64) {
        // The registers are one byte wide; a wider write addresses the first of them with its low byte.
        switch registers.request(forWrite: UInt8(truncatingIfNeeded: value), toPort: registers.basePort &+ UInt16(truncatingIfNeeded: offset)) {
        case .powerOff: onPowerOff()
        case .reset: onReset()
        case nil: break
        }
    }

    static func register(on bus: inout PortIOBus, registers: ACPIPowerRegisters, onPowerOff: @escaping @Sendable () -> Void,
                         onReset: @escaping @Sendable () -> Void) throws(BusError) {
        let device = ACPIPowerDevice(registers: registers, onPowerOff: onPowerOff, onReset: onReset)
        try bus.register(device, base: UInt64(registers.basePort), length: UInt64(ACPIPowerRegisters.portCount), name: "ACPI sleep/reset registers")
    }
}
