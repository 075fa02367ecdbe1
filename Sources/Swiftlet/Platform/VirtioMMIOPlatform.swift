import ACPI
import Devices
import GuestMemory
import KVM
import Logging
import Virtio
import VirtioMMIO

/// Virtio devices as virtio-mmio windows (`--transport mmio`, Firecracker mode without `--enable-pci`): where they
/// are, how the guest learns of them, and their wiring to KVM.
///
///     0xE800_0000 + 4 KiB * i   device i's register window      (above ECAM 0xE000_0000-0xE00F_FFFF, clear of the
///                                                                PCI window 0xC000_0000-0xDFFF_FFFF and the APICs)
///     GSI gsis[i]               its interrupt: ISA IRQs 5, 6, 7, 10, 11, 13, 14, 15 first, then 16-23
///
/// The GSIs skip what the platform uses — 0 (PIT), 1 (i8042), 2 (cascade), 3 (COM2, which Linux may probe), 4 (COM1),
/// 8 (RTC), 9 (the customary SCI line; the VM Generation ID's GED here), 12 (PS/2 mouse) — and take 16-23 last: those
/// are the PCI INTx inputs (`PCIINTxRouting`), unused in this mode, where the only PCI function is the host bridge. An
/// MP table (for `acpi=off` guests) must list the same inputs.
///
/// Discovery, both ways at once, as Firecracker does on x86: the kernel command line gets
/// `virtio_mmio.device=4K@0x<base>:<gsi>` per device (kernels with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, e.g. a
/// microVM kernel), and the DSDT an `LNRO0005` device per window (kernels that read ACPI; Debian's has no
/// command-line devices, and its virtio_mmio module then says "unknown parameter 'device' ignored"). A kernel
/// with both registers each window twice: whichever platform device probes second cannot claim the memory region
/// and fails with -EBUSY, one log line and no other effect (from Linux's virtio_mmio probe, which requests the
/// region first; not yet observed in a test). Booting with `acpi=off` leaves the command line.
///
/// Command-line devices on GSIs 16-23 rely on the guest having set those I/O APIC inputs up: with `acpi=off` the MP
/// table lists them (`MPTablePlatform`, from the GSIs passed to `PayloadImage.load`); with ACPI the DSDT's
/// `Interrupt` descriptors do.
///
/// Each device gets one eventfd per queue, registered as an ioeventfd on its QueueNotify register with datamatch
/// on the queue index (Linux writes the index as a 32-bit value; KVM allows several ioeventfds on one address when
/// their datamatch values differ). A kick for an index without a match exits to the VMM and is refused there.
/// The interrupt line is KVM_IRQ_LINE on the GSI (see VirtioMMIO's MMIOInterrupts for why not a plain irqfd).
enum VirtioMMIOPlatform {
    static let windowBase: UInt64 = 0xE800_0000
    static let gsis: [UInt32] = [5, 6, 7, 10, 11, 13, 14, 15] + Array(16...23)
    static var maximumDevices: Int { gsis.count }

    /// One device's window and interrupt.
    struct Slot: Sendable, Equatable {
        let base: UInt64
        let gsi: UInt32
    }

    /// The slots of the first `count` devices, in device order.
    static func slots(count: Int) -> [Slot] {
        precondition(count <= maximumDevices, "virtio-mmio: \(count) devices, at most \(maximumDevices) (validate first)")
        return (0..<count).map { Slot(base: windowBase + UInt64($0) * VirtioMMIOLayout.windowSize, gsi: gsis[$0]) }
    }

    /// `virtio_mmio.device=4K@0xe8000000:5`, as Firecracker writes it (Linux: size@baseaddr:irq, size through
    /// memparse, base through simple_strtoull with base 0).
    static func commandLineParameters(_ slots: [Slot]) -> [String] {
        slots.map { "virtio_mmio.device=\(VirtioMMIOLayout.windowSize / 1024)K@0x\(String($0.base, radix: 16)):\($0.gsi)" }
    }

    /// Adds an `LNRO0005` device per slot to the DSDT.
    static func describe(_ slots: [Slot], in acpi: inout ACPIConfiguration) {
        acpi.additionalDevices += VirtioMMIOACPI.devices(slots.map {
            VirtioMMIODescription(base: UInt32($0.base), length: UInt32(VirtioMMIOLayout.windowSize), gsi: $0.gsi)
        })
    }

    /// Puts each device behind a virtio-mmio transport in its slot: on the MMIO bus, its interrupt line, and its
    /// queue notifications as ioeventfds that the device's event loop answers (a disk's own, or the shared one).
    /// Returns the transports in device order.
    @discardableResult
    static func attach(_ devices: [any VirtioDevice], to mmio: inout MMIOBus, vm: VirtualMachine, memory: GuestMemory,
                       loops: DeviceEventLoops) throws(MachineError) -> [VirtioMMIODevice] {
        guard devices.count <= maximumDevices else {
            throw .configuration(.tooManyDevices(devices.count, maximum: maximumDevices,
                                                 reason: "one virtio-mmio window and interrupt each"))
        }
        var transports: [VirtioMMIODevice] = []
        for (device, slot) in zip(devices, slots(count: devices.count)) {
            let transport = VirtioMMIODevice(device: device, memory: memory, interruptLine: KVMInterruptLine(vm: vm, gsi: slot.gsi),
                                             logger: Logger(label: "swiftlet.virtio-mmio"))
            do {
                try mmio.register(transport, base: slot.base, length: VirtioMMIOLayout.windowSize,
                                  name: "virtio-mmio \(device.deviceType) (GSI \(slot.gsi))")
                let eventLoop = try loops.loop(for: device)
                for queue in 0..<transport.queueCount {
                    let notifier = try EventFD()
                    eventLoop.add(notifier) { transport.queueNotified(index: queue) }
                    try vm.registerIOEventFD(notifier, at: .mmio(GuestAddress(slot.base + VirtioMMIOLayout.queueNotifyOffset)),
                                             length: 4, matching: UInt64(queue))
                }
            } catch {
                throw .device("virtio-mmio \(device.deviceType) at 0x\(String(slot.base, radix: 16)): \(error)")
            }
            transports.append(transport)
        }
        return transports
    }
}
