import GuestMemory

/// Snapshots of a virtio device, shared by both transports: what the transport's registers (`VirtioDeviceState`)
/// plus the running queues' progress are at a save, and how a restored transport checks that state and brings the
/// device model back to running without the driver noticing.
public enum VirtioSnapshot {
    /// The state to save: the transport's registers, each running queue's entry replaced by the device's own (which
    /// carries its ring positions). Throws when the model cannot be saved.
    public static func save(_ registers: VirtioDeviceState, device: any VirtioDevice) throws(VirtioError) -> VirtioDeviceState {
        guard let running = device.snapshotQueues() else {
            throw .snapshot("the virtio-\(device.deviceType) model does not support snapshots")
        }
        var saved = registers
        for (index, queue) in running.enumerated() where index < saved.queues.count {
            if let queue { saved.setQueue(index, queue) }
        }
        return saved
    }

    /// Checks that a saved state (untrusted: it comes from a file) was taken of this device model: the same
    /// offered features and queues, a status a driver could have reached, features within the offer.
    public static func check(_ saved: VirtioDeviceState, for device: any VirtioDevice) throws(VirtioError) {
        let fresh = VirtioDeviceState(deviceFeatures: device.deviceFeatures, queueMaximumSizes: device.queueMaximumSizes)
        guard saved.offeredFeatures == fresh.offeredFeatures else {
            throw .snapshot("virtio-\(device.deviceType): the saved device offered features 0x\(String(saved.offeredFeatures, radix: 16)), "
                            + "this one offers 0x\(String(fresh.offeredFeatures, radix: 16))")
        }
        guard saved.queues.map(\.maximumSize) == device.queueMaximumSizes else {
            throw .snapshot("virtio-\(device.deviceType): the saved device has queues of \(saved.queues.map(\.maximumSize)), "
                            + "this one \(device.queueMaximumSizes)")
        }
        let status = saved.status
        let ordered = (!status.contains(.driver) || status.contains(.acknowledge))
            && (!status.contains(.featuresOK) || status.contains(.driver))
            && (!status.contains(.driverOK) || status.contains(.featuresOK))
        guard ordered else { throw .snapshot("virtio-\(device.deviceType): device status \(status) is not one a driver can reach") }
        if status.contains(.featuresOK), saved.negotiatedFeatures != saved.driverFeatures {
            throw .snapshot("virtio-\(device.deviceType): the driver's features 0x\(String(saved.driverFeatures, radix: 16)) "
                            + "are not all offered")
        }
    }

    /// Whether a restored device is to run: the driver had set DRIVER_OK and neither side had given up.
    public static func isRunning(_ saved: VirtioDeviceState) -> Bool {
        saved.status.contains(.driverOK) && !saved.status.contains(.deviceNeedsReset) && !saved.status.contains(.failed)
    }

    /// Activates a restored device with the saved queues (validated against guest memory here, as at DRIVER_OK),
    /// then lets it do what it owes a driver after a restore (`didRestore`). Call with the transport's registers
    /// already restored, before the guest runs.
    public static func reactivate(_ device: any VirtioDevice, state: VirtioDeviceState, memory: GuestMemory,
                                  interrupt: any VirtioInterrupt) throws(VirtioError) {
        guard isRunning(state) else { return }
        let queues = try state.makeQueues(memory: memory)
        do {
            try device.activate(VirtioActivation(queues: queues, memory: memory, features: state.negotiatedFeatures, interrupt: interrupt))
        } catch let error as VirtioError {
            throw error
        } catch {
            throw .activationFailed("\(error)")
        }
        device.didRestore()
        // Anything the driver published while the machine was saved is looked at now, as after an activation.
        for (index, queue) in queues.enumerated() where queue != nil { device.queueNotified(index: index) }
    }
}
