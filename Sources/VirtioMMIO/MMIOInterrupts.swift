// The interrupt side of virtio-mmio (virtio 1.2 §4.2.2, §4.2.3.4): one interrupt line per device and the
// InterruptStatus register saying why it is raised — bit 0 used buffers, bit 1 configuration change.
//
// The line is level-triggered in spirit: it is high while InterruptStatus is non-zero, and lowered when the
// driver's InterruptACK clears the last bit. Linux's handler (vm_interrupt) reads InterruptStatus, writes those bits
// to InterruptACK, and only then walks the rings, so a used buffer added after its read is either seen by that walk
// or sets bit 0 again — which raises the line again.
//
// The GSI may be programmed edge-triggered by the guest (ISA IRQs below 16 are, by default, and the DSDT declares
// edge as Firecracker does) or level-triggered (an MP table or _CRS that says so). Both work: a rising edge is sent
// whenever the line goes up, and when InterruptACK leaves bits pending (a configuration change that arrived after
// the handler read the register), the line is dropped and raised again so an edge-triggered input sees a new edge;
// on a level-triggered input the same two calls are a no-op that KVM re-evaluates at EOI.
//
// Why a level line through KVM_IRQ_LINE (`InterruptLine`) rather than a plain irqfd, as Firecracker uses: an irqfd on
// an I/O APIC pin is a pulse (assert, deassert) that KVM injects from a kernel worker, and a pulse that arrives while
// a level-triggered pin's remote IRR is still set is lost; an irqfd with a resample fd gives level semantics but
// wakes the VMM on every EOI. The VMM's `InterruptLine` implementation decides; the transport only says the level.
//
// Threads: the device model signals from its worker with its own lock held, the transport from vCPU threads. Lock
// order: transport lifecycle → device → `state`; the line is a leaf (one ioctl). Nothing here calls into the device.

import Devices
import Logging
import Synchronization
import Virtio

/// Everything a virtio-mmio device remembers, behind one Mutex (`MMIOInterrupts.state`).
struct MMIOTransportState: Sendable {
    var virtio: VirtioDeviceState
    /// InterruptStatus: `VirtioMMIOLayout.interruptUsedBuffer` | `.interruptConfigurationChange`.
    var interruptStatus: UInt32 = 0
    /// The level last driven on the line.
    private(set) var lineLevel = false
    let line: any InterruptLine

    init(virtio: VirtioDeviceState, line: any InterruptLine) {
        self.virtio = virtio
        self.line = line
    }

    /// A new reason to interrupt: sets the bits and raises the line if it is low.
    mutating func raise(_ bits: UInt32) {
        interruptStatus |= bits
        drive(true)
    }

    /// InterruptACK (§4.2.2): clears the bits written. The line goes low when nothing is left; when something is
    /// left that the write cleared others beside, it is pulsed so an edge-triggered input notices what remains.
    mutating func acknowledge(_ bits: UInt32) {
        let cleared = interruptStatus & bits
        interruptStatus &= ~bits
        if interruptStatus == 0 {
            drive(false)
        } else if cleared != 0, lineLevel {
            line.setLevel(false)
            line.setLevel(true)
        }
    }

    /// After a device reset (§2.4; `VirtioDeviceState` was reset by the Status write itself): nothing pending,
    /// line low.
    mutating func clearInterrupts() {
        interruptStatus = 0
        drive(false)
    }

    private mutating func drive(_ level: Bool) {
        guard level != lineLevel else { return }
        lineLevel = level
        line.setLevel(level)
    }
}

/// The transport's state and its `VirtioInterrupt`: what the device model gets at activation. A separate object
/// from `VirtioMMIODevice` so that the device holding it does not keep the transport (which holds the device) alive.
final class MMIOInterrupts: VirtioInterrupt {
    let state: Mutex<MMIOTransportState>
    private let logger: Logger

    init(state: MMIOTransportState, logger: Logger) {
        self.state = Mutex(state)
        self.logger = logger
    }

    func signalUsedBuffers(queue: Int) {
        state.withLock { $0.raise(VirtioMMIOLayout.interruptUsedBuffer) }
    }

    func signalConfigurationChange() {
        state.withLock { state in
            // §2.5.1: a driver re-reads ConfigGeneration around multi-field reads to catch a change mid-way.
            state.virtio.configurationChanged()
            state.raise(VirtioMMIOLayout.interruptConfigurationChange)
        }
    }

    func deviceNeedsReset(_ error: VirtioError) {
        logger.error("virtio-mmio: \(error); setting DEVICE_NEEDS_RESET")
        state.withLock { state in
            // §2.1.2: once DRIVER_OK is set, the driver learns of it through a configuration change notification.
            if state.virtio.markNeedsReset() { state.raise(VirtioMMIOLayout.interruptConfigurationChange) }
        }
    }
}
