import Virtio

/// Everything a virtio-mmio device holds that a driver could have changed: the virtio registers (with the running
/// queues' progress) and InterruptStatus.
public struct VirtioMMIOSnapshot: Codable, Equatable, Sendable {
    public var virtio: VirtioDeviceState
    public var interruptStatus: UInt32
}

extension VirtioMMIODevice {
    /// The device's state, for a snapshot. Call while the machine is paused. Throws when the device model cannot be
    /// saved.
    public func snapshot() throws(VirtioError) -> VirtioMMIOSnapshot {
        try lifecycle.withLock { _ throws(VirtioError) in
            let registers = interrupts.state.withLock { ($0.virtio, $0.interruptStatus) }
            return VirtioMMIOSnapshot(virtio: try VirtioSnapshot.save(registers.0, device: device), interruptStatus: registers.1)
        }
    }

    /// Gives a freshly built transport (same device model, not yet seen by a driver) a snapshot's state: the
    /// interrupt line is driven to match InterruptStatus, and a device the driver had running is activated with
    /// the saved queues. Checked first; nothing changes when the snapshot does not fit.
    public func restore(_ saved: VirtioMMIOSnapshot) throws(VirtioError) {
        try VirtioSnapshot.check(saved.virtio, for: device)
        try lifecycle.withLock { _ throws(VirtioError) in
            interrupts.state.withLock { state in
                state.virtio = saved.virtio
                state.clearInterrupts()
                let pending = saved.interruptStatus & (VirtioMMIOLayout.interruptUsedBuffer | VirtioMMIOLayout.interruptConfigurationChange)
                if pending != 0 { state.raise(pending) }
            }
            try VirtioSnapshot.reactivate(device, state: saved.virtio, memory: memory, interrupt: interrupts)
        }
    }
}
