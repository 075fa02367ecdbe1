import KVM
import Synchronization

/// Where vCPU threads park while the machine is paused, and how the pausing thread learns they all did.
///
/// Pausing (Firecracker's model: each vCPU acknowledges, so "paused" means every vCPU is out of the guest):
/// 1. the pauser sets `pauseRequested`, sets every vCPU's `immediate_exit` and kicks its thread, so KVM_RUN
///    returns EINTR at once whether the vCPU was in the guest, halted in KVM, or about to enter;
/// 2. each vCPU, seeing `.interrupted` and the request, calls `park`: it counts itself parked, signals
///    `changed`, and blocks on `resumed` (no CPU used) until the generation moves on or the machine stops;
/// 3. the pauser waits on `changed` until parked + finished vCPUs = all of them.
/// Resuming bumps the generation, clears the request and signals `resumed`; each vCPU clears its own
/// `immediate_exit` and re-checks stop and pause before it enters the guest again, so a stop or a new pause
/// that raced with the resume is never lost.
///
/// `resumed` is level-triggered (never consumed by the vCPUs) and reset by the next pause, so a vCPU slow to wake
/// still sees the new generation even if a second pause already reset the eventfd.
final class PauseGate: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var parked = 0
        var finished = 0
    }

    private let state = Mutex(State())
    /// Read on the exit path after EINTR: is a pause wanted?
    let pauseRequested = Atomic<Bool>(false)
    /// vCPU → pauser: one more vCPU parked or finished.
    private let changed: EventFD
    /// pauser → vCPUs: the generation moved on (resume) or the machine is stopping.
    private let resumed: EventFD

    init() throws(KVMError) {
        changed = try EventFD(nonBlocking: true)
        resumed = try EventFD(nonBlocking: true)
    }

    /// Asks every vCPU to park (step 1, without the kicks, which the machine sends).
    func requestPause() {
        _ = resumed.consume()
        pauseRequested.store(true, ordering: .sequentiallyConsistent)
    }

    /// Waits until `total` vCPUs are parked or finished. Returns false if `milliseconds` passed first.
    func waitUntilParked(total: Int, milliseconds: Int) -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(milliseconds)
        while true {
            let done = state.withLock { $0.parked + $0.finished >= total }
            if done { return true }
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { return false }
            let (seconds, attoseconds) = remaining.components
            _ = changed.wait(milliseconds: Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1))
            _ = changed.consume()
        }
    }

    /// Lets parked vCPUs go on (step 4).
    func resume() {
        state.withLock { $0.generation &+= 1 }
        pauseRequested.store(false, ordering: .sequentiallyConsistent)
        resumed.signal()
    }

    /// Wakes parked vCPUs so they see that the machine is stopping (they return instead of running on).
    func wakeForStop() { resumed.signal() }

    /// Called by a vCPU thread that saw `.interrupted` with `pauseRequested` set. Blocks until resumed or until
    /// `stopping` is set; returns false when the vCPU should end its run loop.
    func park(stopping: borrowing Atomic<Bool>) -> Bool {
        let generation = state.withLock { state -> UInt64 in
            state.parked += 1
            return state.generation
        }
        changed.signal()
        while state.withLock({ $0.generation }) == generation, !stopping.load(ordering: .acquiring) {
            // Never consumed here: another parked vCPU may not have seen the signal yet. Only `resume()` (after
            // moving the generation) and `wakeForStop()` (after `stopping` is set) signal it, and `requestPause`
            // resets it before any vCPU parks, so a wake-up always finds one of the two conditions true.
            _ = resumed.wait(milliseconds: -1)
        }
        state.withLock { $0.parked -= 1 }
        return !stopping.load(ordering: .acquiring)
    }

    /// Called once by each vCPU thread as its run loop ends, so a pause never waits for a vCPU that is gone.
    func vcpuFinished() {
        state.withLock { $0.finished += 1 }
        changed.signal()
    }

    /// How many vCPUs are parked now (tests and the state report).
    var parkedCount: Int { state.withLock { $0.parked } }
}
