import KVM
import Synchronization

/// Collects the first reason the machine should stop and wakes the thread waiting for it.
/// Any thread may call `request`; later reasons are ignored (the first cause is the one reported).
final class StopController: Sendable {
    private let reason = Mutex<StopReason?>(nil)
    /// Signalled once a reason is set; the lifecycle thread polls it next to the signalfd.
    let wakeup: EventFD
    /// Read on the vCPU exit path after an EINTR; set once stopping has begun.
    let stopping = Atomic<Bool>(false)
    /// Set as soon as any reason is recorded. vCPUs check it after each device access, so a device that ends
    /// the VM (reset, power-off) takes effect before the guest executes another instruction.
    let requested = Atomic<Bool>(false)

    init() throws(KVMError) { wakeup = try EventFD() }

    func request(_ stopReason: StopReason) {
        let first = reason.withLock { current -> Bool in
            guard current == nil else { return false }
            current = stopReason
            return true
        }
        if first {
            requested.store(true, ordering: .releasing)
            wakeup.signal()
        }
    }

    var current: StopReason? { reason.withLock { $0 } }
}
