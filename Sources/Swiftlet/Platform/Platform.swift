import ACPI
import Devices
import KVM
import GuestMemory
import Logging
import Virtio
#if canImport(Glibc)
import Glibc
#endif

/// The PC platform every guest gets: COM1, the i8042 (for reset), the CMOS RTC, the ACPI power registers and
/// the ports Linux pokes at boot; the PIC, IOAPIC, local APICs and PIT are KVM's in-kernel models.
///
///     port 0x3f8-0x3ff  COM1 16550A, IRQ 4      port 0x60, 0x64  i8042 (CPU reset on 0xFE)
///     port 0x70-0x71    CMOS RTC                port 0x80 etc.   ports answered quietly
///     ACPIPowerDevice   ACPI sleep/reset registers (power-off and reboot end the VM)
///     PCI               host bridge, config ports 0xCF8-0xCFF, ECAM and BAR windows (PCIPlatform)
enum Platform {
    struct Attached {
        let serial: Serial8250
        /// Where the guest's console output goes (the serial port's and the virtio-console's), buffered so that a
        /// reader that does not read never blocks a vCPU or the device loop.
        let consoleOutput: ConsoleOutput
        /// The virtio-console, when the configuration puts the terminal on it.
        let virtioConsole: ConsoleDevice?
        let portBus: PortIOBus
        let mmioBus: MMIOBus
        let pci: PCIRoot
        /// Socket files the devices' listeners created, removed when the machine stops.
        let socketFiles: [OwnedSocketFile]
        let registry: DeviceRegistry
        /// The virtio devices and their transports, in attach order (snapshots).
        let virtioTransports: [VirtioTransportHandle]
    }

    static func acpiConfiguration(vcpuCount: Int) -> ACPIConfiguration {
        var acpi = ACPIConfiguration(vcpuCount: vcpuCount)
        // The keyboard controller is declared (FADT 8042 flag, PNP0303 in the DSDT): on a hardware-reduced platform
        // Linux has no legacy IRQ 1, and its i8042 driver binds only through that device. Without it Ctrl-Alt-Del
        // typed by the VMM (SendCtrlAltDel, Machine.requestStop) goes unheard.
        acpi.i8042Present = true
        // A VM Generation ID, so that every restored clone of a snapshot tells its guest to reseed (VMGenerationID).
        acpi.vmGenerationID = VMGenerationIDDescription(gsi: VMGenerationID.gsi)
        PCIPlatform.describe(in: &acpi)
        return acpi
    }

    /// A write that would take a file past the process's RLIMIT_FSIZE raises SIGXFSZ, whose default action kills
    /// the process. A guest's disk write must not end the VMM: with the signal ignored the write fails with EFBIG
    /// instead, and that one request is answered VIRTIO_BLK_S_IOERR. Process-wide, set once when a machine is
    /// built (before any device thread); harmless to repeat.
    static func ignoreFileSizeSignal() {
        _ = signal(SIGXFSZ, SIG_IGN)
    }

    /// Builds the platform's devices. With `virtio` (Linux guests: it needs the in-kernel irqchip for MSI
    /// routing and irqfds), also the virtio devices as virtio-pci functions (`VirtioPlatform`) or virtio-mmio
    /// windows (`VirtioMMIOPlatform`).
    static func build(vm: VirtualMachine, consoleOutput: Int32, timeline: BootTimeline, stop: StopController,
                      virtio: (memory: GuestMemory, disks: [DiskConfiguration], networks: [NetworkConfiguration], console: Bool,
                               vsock: VsockConfiguration?, transport: VirtioTransport, loops: DeviceEventLoops)?,
                      logger: Logger) throws(MachineError) -> Attached {
        ignoreFileSizeSignal()
        var ports = PortIOBus()
        var mmio = MMIOBus()
        let output = try ConsoleOutput(fd: consoleOutput, logger: logger)
        let serial = Serial8250(sink: output,
                                interrupt: KVMInterruptLine(vm: vm, gsi: Serial8250.com1IRQ),
                                onFirstOutput: { timeline.mark(.firstConsoleByte) })
        do {
            try ports.register(serial, base: Serial8250.com1Base, length: Serial8250.portCount, name: "COM1")
            let i8042 = I8042(interrupt: KVMInterruptLine(vm: vm, gsi: I8042.keyboardIRQ), onReset: { stop.request(.reset) })
            try ports.register(i8042, base: I8042.basePort, length: I8042.portCount, name: "i8042")
            try ports.register(CMOSRTC(), base: CMOSRTC.basePort, length: CMOSRTC.portCount, name: "CMOS RTC")
            try ports.register(SystemControlPortA(onReset: { stop.request(.reset) }), base: 0x92, length: 1, name: "system control port A")
            try QuietPorts.register(on: &ports)
            try ACPIPowerDevice.register(on: &ports, registers: ACPIPowerRegisters(),
                                         onPowerOff: { stop.request(.poweredOff) }, onReset: { stop.request(.reset) })
            let virtioPlatform = VirtioPlatform(vm: vm, logger: logger)
            let pci = try PCIPlatform.attach(ports: &ports, mmio: &mmio, onBARChange: { virtioPlatform.barChanged($0) })
            var virtioConsole: ConsoleDevice?
            if let virtio {
                if virtio.console {
                    virtioConsole = ConsoleDevice(output: { bytes in
                        timeline.mark(.firstConsoleByte)
                        output.write(contentsOf: bytes)
                    })
                }
                try virtioPlatform.attach(disks: virtio.disks, networks: virtio.networks, console: virtioConsole, vsock: virtio.vsock,
                                          transport: virtio.transport, to: pci, mmio: &mmio, memory: virtio.memory,
                                          router: KVMMSIRouter(vm: vm), loops: virtio.loops)
            }
            let attached = virtioPlatform.attached.withLock { $0 }
            let registry = DeviceRegistry(serial: serial, i8042: i8042, drives: attached.drives,
                                          networkInterfaces: attached.networkInterfaces, vsock: attached.vsock)
            return Attached(serial: serial, consoleOutput: output, virtioConsole: virtioConsole, portBus: ports, mmioBus: mmio, pci: pci,
                            socketFiles: virtioPlatform.socketFiles.withLock { $0 }, registry: registry,
                            virtioTransports: virtioPlatform.handles.withLock { $0 })
        } catch let error as MachineError {
            throw error
        } catch {
            throw .device("\(error)")
        }
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
