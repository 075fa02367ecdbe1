import Devices
import Virtio

/// Everything a virtio-pci function holds that a driver could have changed: the virtio registers (with the
/// running queues' progress), the PCI configuration space, the ISR, the MSI-X vector assignments and table.
public struct VirtioPCISnapshot: Codable, Equatable, Sendable {
    public var virtio: VirtioDeviceState
    public var configurationSpace: [UInt8]
    public var isr: UInt8
    public var configVector: UInt16
    public var queueVectors: [UInt16]
    public var msix: MSIXSnapshot
}

extension VirtioPCIDevice {
    /// The function's state, for a snapshot. Call while the machine is paused. Throws when the device model cannot
    /// be saved.
    public func snapshot() throws(VirtioError) -> VirtioPCISnapshot {
        try lifecycle.withLock { _ throws(VirtioError) in
            let registers = interrupts.state.withLock { $0 }
            return VirtioPCISnapshot(virtio: try VirtioSnapshot.save(registers.virtio, device: device),
                                     configurationSpace: registers.configuration.registerBytes, isr: registers.isr,
                                     configVector: registers.configVector, queueVectors: registers.queueVectors,
                                     msix: interrupts.msix.snapshot())
        }
    }

    /// Gives a freshly built function (same device model, not yet seen by a driver) a snapshot's state and, when
    /// the driver had it running, activates the device with the saved queues. The snapshot is checked first and
    /// nothing is changed when it does not fit. The caller then asks the PCI root to re-read the function's BARs
    /// (`PCIRoot.refreshDecoding`), which moves the queue-notify ioeventfds to them.
    public func restore(_ saved: VirtioPCISnapshot) throws(VirtioError) {
        try VirtioSnapshot.check(saved.virtio, for: device)
        guard saved.queueVectors.count == queueCount else {
            throw .snapshot("virtio-\(device.deviceType): \(saved.queueVectors.count) queue vectors saved, the device has \(queueCount) queues")
        }
        let vectors = msixCapability.vectorCount
        func vectorIsValid(_ vector: UInt16) -> Bool { vector == virtioMSINoVector || Int(vector) < vectors }
        guard vectorIsValid(saved.configVector), saved.queueVectors.allSatisfy(vectorIsValid) else {
            throw .snapshot("virtio-\(device.deviceType): an MSI-X vector beyond the table's \(vectors)")
        }
        try lifecycle.withLock { _ throws(VirtioError) in
            try interrupts.state.withLock { (state: inout TransportState) throws(VirtioError) in
                var configuration = state.configuration
                guard configuration.restoreGuestWritableBits(from: saved.configurationSpace) else {
                    throw .snapshot("virtio-\(device.deviceType): \(saved.configurationSpace.count) bytes of configuration space saved, "
                                    + "the function has \(configuration.size)")
                }
                guard interrupts.msix.restore(saved.msix) else {
                    throw .snapshot("virtio-\(device.deviceType): the saved MSI-X table does not fit \(vectors) vectors")
                }
                state.configuration = configuration
                state.virtio = saved.virtio
                state.isr = saved.isr & (TransportState.isrQueue | TransportState.isrConfiguration)
                state.configVector = saved.configVector
                state.queueVectors = saved.queueVectors
                state.updateINTx(msixEnabled: interrupts.msix.isEnabled)
            }
            try VirtioSnapshot.reactivate(device, state: saved.virtio, memory: memory, interrupt: interrupts)
        }
    }
}
