import KVM
import Synchronization

/// Where vCPU threads park while the machine is paused, and how the pausing thread learns they all did.
///
/// Pausing (Firecracker's model: each vCPU acknowledges, so "paused" means every vCPU is out of the guest):
/// 1. the pauser calls `requestPause`, sets every vCPU's `immediate_exit` and kicks its thread, so KVM_RUN
///    returns EINTR at once whether the vCPU was in the guest, halted in KVM, or about to enter;
/// 2. each vCPU, seeing `.interrupted`, calls `park`: if the pause is still wanted it counts itself parked in this
///    pause, signals `changed`, and blocks (no CPU used) until the generation moves on or the machine stops;
/// 3. the pauser waits on `changed` until parked + finished vCPUs = all of them.
/// Resuming bumps the generation, clears the request and wakes the parked vCPUs; each clears its own
/// `immediate_exit` and re-checks stop and pause before it enters the guest again, so a stop or a new pause
/// that raced with the resume is never lost.
///
/// Pauses and resumes can follow each other faster than a parked vCPU thread gets a core (the API's PATCH /vm,
/// 200 cycles in a test). Three rules keep that safe, each found as a guest that stopped running under load:
/// - The parked count belongs to one pause: `resume` sets it to 0, and a vCPU leaving an earlier pause does not
///   count. So a pause that follows a resume at once waits until every vCPU has parked *again*, instead of
///   counting a vCPU still on its way out of the last pause.
/// - `park` decides under the lock that the resume also takes: a vCPU that saw the request just before a resume
///   does not park (it would sleep until the next resume while the machine says "running").
/// - The wake-up eventfd alternates with the generation's parity. A resume from generation g signals
///   `resumed[g % 2]`, and the next pause resets only `resumed[(g + 1) % 2]`, so a vCPU of generation g that
///   has not woken yet still finds its eventfd signalled. (A poll(2) woken by a signal that is gone by the time
///   the thread runs goes back to sleep, so one eventfd reset by the next pause could lose that wake-up.) By the
///   time generation g + 2 resets `resumed[g % 2]`, the pause of g + 1 has seen every vCPU park again.
final class PauseGate: Sendable {
    private struct State {
        var generation: UInt64 = 0
        /// vCPUs parked in the current generation's pause.
        var parked = 0
        var finished = 0
    }

    private let state = Mutex(State())
    /// Read on the exit path after EINTR: is a pause wanted? Written only with `state`'s lock held.
    let pauseRequested = Atomic<Bool>(false)
    /// vCPU → pauser: one more vCPU parked or finished.
    private let changed: EventFD
    /// pauser → vCPUs: generation g's pause is over (resumed[g % 2]), or the machine is stopping (both).
    private let resumed: [EventFD]

    init() throws(KVMError) {
        changed = try EventFD(nonBlocking: true)
        resumed = [try EventFD(nonBlocking: true), try EventFD(nonBlocking: true)]
    }

    private func resumedEvent(of generation: UInt64) -> EventFD { resumed[Int(generation & 1)] }

    /// Asks every vCPU to park (step 1, without the kicks, which the machine sends).
    func requestPause() {
        state.withLock { state in
            _ = resumedEvent(of: state.generation).consume()
            pauseRequested.store(true, ordering: .sequentiallyConsistent)
        }
    }

    /// Waits until `total` vCPUs are parked in this pause or finished. Returns false if `milliseconds` passed first.
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
        let event = state.withLock { state -> EventFD in
            let event = resumedEvent(of: state.generation)
            state.generation &+= 1
            state.parked = 0
            pauseRequested.store(false, ordering: .sequentiallyConsistent)
            return event
        }
        event.signal()
    }

    /// Wakes parked vCPUs so they see that the machine is stopping (they return instead of running on).
    func wakeForStop() { resumed.forEach { $0.signal() } }

    /// Called by a vCPU thread that saw `.interrupted` with `pauseRequested` set. Blocks until resumed or until
    /// `stopping` is set, or returns at once if the pause is already over; returns false when the vCPU should end
    /// its run loop.
    func park(stopping: borrowing Atomic<Bool>) -> Bool {
        let entered = state.withLock { state -> UInt64? in
            guard pauseRequested.load(ordering: .sequentiallyConsistent) else { return nil }
            state.parked += 1
            return state.generation
        }
        guard let generation = entered else { return !stopping.load(ordering: .acquiring) }
        changed.signal()
        let event = resumedEvent(of: generation)
        while state.withLock({ $0.generation }) == generation, !stopping.load(ordering: .acquiring) {
            // Never consumed here: another parked vCPU may not have seen the signal yet. Only `resume()` (after
            // moving the generation) and `wakeForStop()` (after `stopping` is set) signal it, and the pause of
            // this generation reset it before any vCPU parked, so a wake-up always finds one of the two true.
            _ = event.wait(milliseconds: -1)
        }
        state.withLock { state in
            // Still this generation: the machine is stopping. (A resume already set the count to 0.)
            if state.generation == generation { state.parked -= 1 }
        }
        return !stopping.load(ordering: .acquiring)
    }

    /// Called once by each vCPU thread as its run loop ends, so a pause never waits for a vCPU that is gone.
    func vcpuFinished() {
        state.withLock { $0.finished += 1 }
        changed.signal()
    }

    /// How many vCPUs are parked in the current pause (tests and the state report).
    var parkedCount: Int { state.withLock { $0.parked } }
}
