import GuestMemory
import Logging

/// What a device_status write asks of the device model (virtio 1.2 §2.1, §2.4, §3.1.1), shared by every transport:
/// virtio-pci's device_status field and virtio-mmio's Status register drive the same state machine.
///
/// A transport splits the write in two, because the device model calls back into the transport's state (to
/// interrupt) with its own lock held: `decide` runs under the transport's state lock and only changes
/// `VirtioDeviceState`; `perform` runs after that lock is released (under the transport's lifecycle lock, which
/// serialises status writes) and resets or activates the model.
public enum StatusTransition: Sendable {
    case none
    /// 0 was written: reset the model, then the transport's own interrupt state.
    case reset
    /// DRIVER_OK: the queues as validated at this moment, and the negotiated features.
    case activate(queues: [Queue?], features: UInt64)
    /// DRIVER_OK with a queue that did not validate: the device needs a reset (§2.1.2).
    case fail(VirtioError)

    /// Applies a status write to `virtio` and says what the model must do. `transport` and `deviceType` only
    /// name the device in the log lines (a refused FEATURES_OK is a warning: the driver will give up).
    public static func decide(_ value: UInt8, state virtio: inout VirtioDeviceState, memory: GuestMemory,
                              transport: String, deviceType: VirtioDeviceType, logger: Logger) -> StatusTransition {
        switch virtio.writeStatus(value) {
        case .reset:
            return .reset
        case .activate:
            do throws(VirtioError) {
                return .activate(queues: try virtio.makeQueues(memory: memory), features: virtio.negotiatedFeatures)
            } catch {
                return .fail(error)
            }
        case let .featuresRefused(unoffered, missingVersion1):
            var reasons: [String] = []
            if unoffered != 0 { reasons.append("accepted unoffered features 0x\(String(unoffered, radix: 16))") }
            if missingVersion1 { reasons.append("did not accept VIRTIO_F_VERSION_1") }
            logger.warning("\(transport) \(deviceType): FEATURES_OK refused: the driver \(reasons.joined(separator: " and "))")
            return .none
        case let .ignored(attempted):
            logger.debug("\(transport) \(deviceType): ignored status write \(attempted) (status \(virtio.status))")
            return .none
        case .accepted, .featuresAccepted, .failed:
            return .none
        }
    }

    /// Carries the transition out on `device`. `resetTransport` clears the transport's own interrupt state; it
    /// runs after the model's `reset` has returned, when its worker sends no more interrupts, so nothing stale
    /// is left pending.
    public func perform(on device: any VirtioDevice, memory: GuestMemory, interrupt: any VirtioInterrupt,
                        resetTransport: () -> Void) {
        switch self {
        case .none:
            break
        case .reset:
            device.reset()
            resetTransport()
        case let .activate(queues, features):
            do {
                try device.activate(VirtioActivation(queues: queues, memory: memory, features: features, interrupt: interrupt))
            } catch let error as VirtioError {
                interrupt.deviceNeedsReset(error)
                return
            } catch {
                interrupt.deviceNeedsReset(.activationFailed("\(error)"))
                return
            }
            // A kick that raced with activation found the device not yet running and was dropped: look at every
            // enabled queue once (an extra look at an empty queue costs nothing).
            for (index, queue) in queues.enumerated() where queue != nil { device.queueNotified(index: index) }
        case let .fail(error):
            interrupt.deviceNeedsReset(error)
        }
    }
}
