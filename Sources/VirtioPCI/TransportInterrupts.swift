// The transport's mutable state, and the interrupt side of virtio-pci (virtio 1.2 §4.1.5.3, §4.1.5.4): how a
// device's "used buffers" and "configuration changed" notifications reach the driver.
//
// - MSI-X enabled: the notification fires the vector the driver assigned (queue_msix_vector / config_msix_vector)
//   through `MSIXVectors`, which delivers it or leaves it pending while masked. NO_VECTOR means "no interrupt".
//   A configuration change also sets ISR bit 1 (§4.1.5.3), which the driver may read but need not.
// - MSI-X disabled: INTx. The device sets the ISR bit (0: a queue, 1: configuration) and asserts its pin; the
//   driver's interrupt handler reads the ISR, which returns the bits and clears them, deasserting the pin
//   (§4.1.4.5) — the level-triggered handshake that lets several functions share one line.
//
// While MSI-X is enabled INTx is never asserted (PCI 3.0 §6.8.2: enabling MSI-X disables the pin).
//
// Threads: the device calls these from its worker (the event loop) with its own lock held, the transport from
// vCPU threads. Lock order: transport lifecycle → device → `state` → MSIXVectors → MSIXRouting; nothing here
// calls into the device.

import Devices
import GuestMemory
import Logging
import Synchronization
import Virtio

/// Everything a virtio-pci function remembers, behind one Mutex (`TransportInterrupts.state`).
struct TransportState: Sendable {
    var virtio: VirtioDeviceState
    var configuration: PCIConfigurationSpace
    var intx: PCIINTxLine?
    /// ISR status: bit 0 queue interrupt, bit 1 configuration change.
    var isr: UInt8 = 0
    var configVector: UInt16 = virtioMSINoVector
    var queueVectors: [UInt16]

    static let isrQueue: UInt8 = 1 << 0
    static let isrConfiguration: UInt8 = 1 << 1

    /// Back to the state after a device reset (§2.4): status, features and queues (`VirtioDeviceState.reset`),
    /// no vectors assigned, nothing pending in the ISR. MSI-X itself is PCI state and stays as the OS set it.
    mutating func resetTransport(msixEnabled: Bool) {
        virtio.reset()
        isr = 0
        configVector = virtioMSINoVector
        queueVectors = queueVectors.map { _ in virtioMSINoVector }
        updateINTx(msixEnabled: msixEnabled)
    }

    /// Drives the INTx pin from the ISR: asserted while a bit is set, MSI-X is off and the OS has not
    /// disabled INTx in the command register.
    mutating func updateINTx(msixEnabled: Bool) {
        configuration.interruptStatus = isr != 0 && !msixEnabled
        intx?.update(from: configuration)
    }

    /// ISR read (§4.1.4.5): the bits, cleared by the read itself.
    mutating func readAndClearISR(msixEnabled: Bool) -> UInt8 {
        let bits = isr
        isr = 0
        updateINTx(msixEnabled: msixEnabled)
        return bits
    }
}

/// The transport's state and its `VirtioInterrupt`: what the device model gets at activation. A separate object
/// from `VirtioPCIDevice` so that the device holding it does not keep the transport (which holds the device) alive.
final class TransportInterrupts: VirtioInterrupt {
    let state: Mutex<TransportState>
    let msix: MSIXVectors
    private let logger: Logger

    init(state: TransportState, msix: MSIXVectors, logger: Logger) {
        self.state = Mutex(state)
        self.msix = msix
        self.logger = logger
    }

    func signalUsedBuffers(queue: Int) {
        state.withLock { state in
            if msix.isEnabled {
                guard state.queueVectors.indices.contains(queue) else { return }
                let vector = state.queueVectors[queue]
                if vector != virtioMSINoVector { msix.trigger(vector: Int(vector)) }
            } else {
                state.isr |= TransportState.isrQueue
                state.updateINTx(msixEnabled: false)
            }
        }
    }

    func signalConfigurationChange() {
        state.withLock { state in
            // §2.5.1: a driver re-reads config_generation around multi-field reads to catch a change mid-way.
            state.virtio.configurationChanged()
            notifyConfigurationChange(&state)
        }
    }

    func deviceNeedsReset(_ error: VirtioError) {
        logger.error("virtio-pci: \(error); setting DEVICE_NEEDS_RESET")
        state.withLock { state in
            // §2.1.2: once DRIVER_OK is set, the driver learns of it through a configuration change notification.
            if state.virtio.markNeedsReset() { notifyConfigurationChange(&state) }
        }
    }

    private func notifyConfigurationChange(_ state: inout TransportState) {
        state.isr |= TransportState.isrConfiguration
        let enabled = msix.isEnabled
        if enabled, state.configVector != virtioMSINoVector {
            msix.trigger(vector: Int(state.configVector))
        }
        state.updateINTx(msixEnabled: enabled)
    }
}
