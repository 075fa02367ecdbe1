import ACPI
import Devices
import KVM
import Logging

/// The PC platform every guest gets: COM1, the i8042 (for reset), the CMOS RTC, the ACPI power registers and
/// the ports Linux pokes at boot; the PIC, IOAPIC, local APICs and PIT are KVM's in-kernel models.
///
///     port 0x3f8-0x3ff  COM1 16550A, IRQ 4      port 0x60, 0x64  i8042 (CPU reset on 0xFE)
///     port 0x70-0x71    CMOS RTC                port 0x80 etc.   ports answered quietly
///     ACPIPowerDevice   ACPI sleep/reset registers (power-off and reboot end the VM)
enum Platform {
    struct Attached {
        let serial: Serial8250
        let portBus: PortIOBus
        let mmioBus: MMIOBus
    }

    static let com1Base: UInt64 = 0x3F8
    static let com1IRQ: UInt32 = 4

    static func acpiConfiguration(vcpuCount: Int) -> ACPIConfiguration {
        ACPIConfiguration(vcpuCount: vcpuCount)
    }

    static func build(vm: VirtualMachine, consoleOutput: Int32, timeline: BootTimeline, stop: StopController) throws(MachineError) -> Attached {
        var ports = PortIOBus()
        let mmio = MMIOBus()
        let serial = Serial8250(interrupt: KVMInterruptLine(vm: vm, gsi: com1IRQ),
                                output: ConsoleOutput(fd: consoleOutput, onFirstByte: { timeline.mark(.firstConsoleByte) }))
        do {
            try ports.register(serial, base: com1Base, length: 8, name: "COM1")
            let i8042 = I8042(onReset: { stop.request(.reset) })
            try ports.register(i8042, base: 0x60, length: 1, name: "i8042 data")
            try ports.register(i8042, base: 0x64, length: 1, name: "i8042 command")
            try ports.register(CMOSRTC(), base: 0x70, length: 2, name: "CMOS RTC")
            try PlatformPorts.register(on: &ports)
            try ACPIPowerDevice.register(on: &ports, onPowerOff: { stop.request(.poweredOff) }, onReset: { stop.request(.reset) })
        } catch {
            throw .device("\(error)")
        }
        return Attached(serial: serial, portBus: ports, mmioBus: mmio)
    }
}

/// A device interrupt wired to a GSI of KVM's in-kernel PIC/IOAPIC through KVM_IRQ_LINE.
final class KVMInterruptLine: InterruptLine {
    let vm: VirtualMachine
    let gsi: UInt32

    init(vm: VirtualMachine, gsi: UInt32) {
        self.vm = vm
        self.gsi = gsi
    }

    func setLevel(_ asserted: Bool) {
        // Fails only without an in-kernel irqchip (raw-image guests), where there is nobody to interrupt.
        try? vm.setIRQLine(gsi, level: asserted)
    }
}
