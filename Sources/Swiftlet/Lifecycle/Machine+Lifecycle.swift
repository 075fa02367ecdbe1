import CHost
import Devices
import KVM
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The machine's lifecycle state, its threads, and who is watching. One per machine.
final class LifecycleBox: Sendable {
    struct Guarded {
        var state: MachineState = .stopped
        var started = false
        var ended = false
        var stopReason: StopReason?
        var vcpuThreads: [HostThread] = []
        var supervisor: HostThread?
        var console: ConsoleInput?
        var terminal: RawTerminal?
        var nextObserver = 0
        var observers: [Int: AsyncStream<MachineState>.Continuation] = [:]
    }

    let guarded = Mutex(Guarded())
    /// Held for a whole transition (start, pause, resume, the teardown), so transitions never interleave.
    /// `stop()` does not hold it while it waits: the teardown needs it.
    let transition = Mutex<Void>(())
    /// Signalled once the machine has ended and every thread is joined.
    let ended: EventFD

    init() throws(KVMError) { ended = try EventFD(nonBlocking: true) }
}

/// Options for `start`.
public struct StartOptions: Sendable {
    /// Feed the host's stdin to the guest console (and put a terminal in raw mode while the machine runs).
    public var attachConsoleInput: Bool
    /// vCPU threads are named this followed by their index: `vcpu0`; Firecracker mode uses `fc_vcpu ` as
    /// Firecracker does, so tools that look for `fc_vcpu 0` find it.
    public var vcpuThreadPrefix: String

    public init(attachConsoleInput: Bool = true, vcpuThreadPrefix: String = "vcpu") {
        self.attachConsoleInput = attachConsoleInput
        self.vcpuThreadPrefix = vcpuThreadPrefix
    }
}

/// What each state allows (anything else throws `LifecycleError.invalidTransition`):
///
/// | operation     | allowed in          | ends in                      |
/// |---------------|---------------------|------------------------------|
/// | start         | stopped (never run) | running                      |
/// | pause         | running             | paused                       |
/// | resume        | paused              | running                      |
/// | requestStop   | running             | (the guest decides)          |
/// | stop          | any                 | stopped                      |
///
/// All of them may be called from any thread; each returns once its transition is done.
extension Machine {
    /// How long a pause waits for every vCPU to leave the guest and the device loop to finish its round.
    static let pauseTimeoutMilliseconds: Int32 = 5_000

    public var state: MachineState { lifecycle.guarded.withLock { $0.state } }

    /// Why the machine ended; nil while it has not.
    public var stopReason: StopReason? { lifecycle.guarded.withLock { $0.ended ? $0.stopReason : nil } }

    /// Every state change from now on, starting with the current state; finishes when the machine has ended.
    public func stateUpdates() -> AsyncStream<MachineState> {
        AsyncStream { continuation in
            let (current, id, ended) = lifecycle.guarded.withLock { guarded -> (MachineState, Int, Bool) in
                let id = guarded.nextObserver
                guarded.nextObserver += 1
                if !guarded.ended { guarded.observers[id] = continuation }
                return (guarded.state, id, guarded.ended)
            }
            continuation.yield(current)
            if ended { continuation.finish(); return }
            continuation.onTermination = { [lifecycle] _ in
                _ = lifecycle.guarded.withLock { $0.observers.removeValue(forKey: id) }
            }
        }
    }

    private func setState(_ new: MachineState) {
        let observers = lifecycle.guarded.withLock { guarded -> [AsyncStream<MachineState>.Continuation] in
            guarded.state = new
            return Array(guarded.observers.values)
        }
        for observer in observers { observer.yield(new) }
    }

    // MARK: - Transitions

    /// Starts the vCPUs, the device loop and (optionally) console input. Returns once every thread runs.
    public func start(_ options: StartOptions = StartOptions()) throws(LifecycleError) {
        try lifecycle.transition.withLock { _ throws(LifecycleError) in
            let current = lifecycle.guarded.withLock { $0 }
            guard current.state == .stopped, !current.started, !current.ended else {
                throw .invalidTransition(operation: "start", state: current.ended ? .stopped : current.state)
            }
            lifecycle.guarded.withLock { $0.started = true }
            setState(.starting)
            // Built, and no guest instruction run yet: every thread gets the union filter now (docs/security.md).
            do { try Seccomp.installProcessFilter() } catch {
                setState(.stopped)
                throw .hostFailure(operation: "start", detail: "\(error)")
            }
            KickSignal.install()
            do {
                if options.attachConsoleInput {
                    let stop = stopController
                    let terminal = RawTerminal()
                    lifecycle.guarded.withLock { $0.terminal = terminal }
                    let console = try ConsoleInput(watchEscape: RawTerminal.stdinIsTerminal,
                                                   deliver: { [self] in self.sendConsoleInput($0) },
                                                   onEscapeStop: { stop.request(.stopRequested) })
                    try console.start()
                    lifecycle.guarded.withLock { $0.console = console }
                }
                try consoleOutput.start()
                try deviceLoops.start()
                for vcpu in vcpus {
                    let runner = VCPURunner(vcpu: vcpu, portBus: portBus, mmioBus: mmioBus, stop: stopController, gate: gate,
                                            counters: metrics.makeVCPUCounters(index: Int(vcpu.id)), timeline: timeline, logger: logger)
                    let thread = try HostThread(name: "\(options.vcpuThreadPrefix)\(vcpu.id)") { runner.run() }
                    lifecycle.guarded.withLock { $0.vcpuThreads.append(thread) }
                }
            } catch {
                // Whatever did start is torn down by the supervisor, as for any other stop.
                stopController.request(.hostError("\(error)"))
            }
            do {
                let supervisor = try HostThread(name: "vmm") { [self] in
                    Seccomp.enterThread(.vmm)
                    _ = stopController.wakeup.wait(milliseconds: -1)
                    tearDown()
                }
                lifecycle.guarded.withLock { $0.supervisor = supervisor }
            } catch {
                // No supervisor thread: tear down here, so nothing is left running.
                stopController.request(.hostError("\(error)"))
                tearDownHoldingTransition()
                throw .hostFailure(operation: "start", detail: "\(error)")
            }
            if stopController.current == nil { setState(.running) }
        }
    }

    /// Parks every vCPU outside the guest and quiesces the device loop (the request it is serving, such as a
    /// disk write, completes first). A paused guest uses no CPU; its clock keeps running (kvm-clock), as on
    /// Firecracker.
    public func pause() throws(LifecycleError) {
        try lifecycle.transition.withLock { _ throws(LifecycleError) in
            let current = state
            guard current == .running else { throw .invalidTransition(operation: "pause", state: current) }
            setState(.pausing)
            let began = BootTimeline.now()
            defer { metrics.recordLatency(.vmmPauseVM, microseconds: (BootTimeline.now() - began) / 1000) }
            gate.requestPause()
            for vcpu in vcpus { vcpu.requestImmediateExit() }
            for thread in lifecycle.guarded.withLock({ $0.vcpuThreads }) { thread.kick() }
            let vcpusParked = gate.waitUntilParked(total: vcpus.count, milliseconds: Int(Self.pauseTimeoutMilliseconds))
            let loopParked = vcpusParked && deviceLoops.pause(milliseconds: Self.pauseTimeoutMilliseconds)
            guard vcpusParked, loopParked else {
                setState(.error)
                let what = vcpusParked ? "a device loop did not finish its work" : "\(vcpus.count - gate.parkedCount) vCPU(s) did not leave the guest"
                throw .timedOut(operation: "pause", detail: "\(what) within \(Self.pauseTimeoutMilliseconds) ms")
            }
            setState(.paused)
        }
    }

    /// Lets a paused machine go on where it stopped.
    public func resume() throws(LifecycleError) {
        try lifecycle.transition.withLock { _ throws(LifecycleError) in
            let current = state
            guard current == .paused else { throw .invalidTransition(operation: "resume", state: current) }
            setState(.resuming)
            let began = BootTimeline.now()
            defer { metrics.recordLatency(.vmmResumeVM, microseconds: (BootTimeline.now() - began) / 1000) }
            deviceLoops.resume()
            gate.resume()
            setState(.running)
        }
    }

    /// Asks the guest to shut down, as a user pressing Ctrl-Alt-Del would (through the i8042 keyboard; Linux
    /// reboots, and with `reboot=k` the VM then ends). Returns at once; the guest decides what to do.
    public func requestStop() throws(LifecycleError) {
        let current = state
        guard current == .running else { throw .invalidTransition(operation: "request a stop of", state: current) }
        guard devices.i8042.sendCtrlAltDelete() else {
            throw .hostFailure(operation: "Ctrl-Alt-Del", detail: "the keyboard buffer is full: the guest is not reading its keyboard")
        }
    }

    /// Ends the machine now (forced), whatever it is doing, and returns once every thread is joined.
    @discardableResult
    public func stop() -> StopReason {
        stopController.request(.stopRequested)
        let neverStarted = lifecycle.transition.withLock { _ -> Bool in
            let started = lifecycle.guarded.withLock { $0.started }
            if !started { tearDownHoldingTransition() }
            return !started
        }
        if !neverStarted { _ = lifecycle.ended.wait(milliseconds: -1) }
        return stopReason ?? .stopRequested
    }

    /// Blocks until the machine has ended, and returns why. Termination signals (SIGINT, SIGTERM, SIGHUP), if
    /// blocked in this thread, are read here and stop the machine; `timeout` seconds after the call it is
    /// stopped with `.timedOut`. With `releaseStartupPagesAfter`, that many seconds after the call the process
    /// gives back the executable's pages start-up touched (`StartupPages`: a process-wide step, for a process that
    /// exists to run this machine, as the CLI's does).
    public func waitUntilStopped(timeout: Double? = nil, releaseStartupPagesAfter releaseDelay: Double? = nil) -> StopReason {
        // Opened before this thread's filter, which has no open.
        let startupPages = releaseDelay == nil ? nil : StartupPages()
        // The caller (the CLI's main thread) only waits from here on: its own seccomp filter.
        Seccomp.enterThread(.main)
        var signalSet = TerminationSignals.set
        let signalFD = signalfd(-1, &signalSet, Int32(SFD_CLOEXEC))
        defer { if signalFD >= 0 { close(signalFD) } }
        var fds = [pollfd(fd: lifecycle.ended.fd.rawValue, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
        let start = BootTimeline.now()
        let deadline = timeout.map { start + Self.nanoseconds($0) }
        // When to release; nil once released (or with nothing to release).
        var releaseAt = startupPages == nil ? nil : releaseDelay.map { start + Self.nanoseconds($0) }
        while true {
            if let reason = stopReason { return reason }
            let now = BootTimeline.now()
            if let deadline, now >= deadline { stopController.request(.timedOut) }
            if let startupPages, let due = releaseAt, now >= due {
                startupPages.release()
                releaseAt = nil
            }
            // Wake at whichever of the two comes first (a timed-out machine is only waited for). No allocation
            // here: this runs right after the start-up pages are released.
            var wakeAt = UInt64.max
            if let deadline, deadline > now { wakeAt = deadline }
            if let releaseAt { wakeAt = min(wakeAt, releaseAt) }
            let waitMilliseconds = wakeAt == .max ? -1 : Int32(min((wakeAt - now) / 1_000_000 + 1, UInt64(Int32.max)))
            let ready = poll(&fds, signalFD >= 0 ? 2 : 1, waitMilliseconds)
            if ready < 0, errno != EINTR { stopController.request(.hostError("poll failed: errno \(errno)")) }
            if signalFD >= 0, fds[1].revents & Int16(POLLIN) != 0 {
                var info = signalfd_siginfo()
                let count = read(signalFD, &info, MemoryLayout<signalfd_siginfo>.size)
                if count == MemoryLayout<signalfd_siginfo>.size { stopController.request(.signal(Int32(info.ssi_signo))) }
            }
        }
    }

    private static func nanoseconds(_ seconds: Double) -> UInt64 { UInt64(max(0, min(seconds, 1e9)) * 1e9) }

    /// Runs the guest until it stops; returns why. Call once: it is `start()` then `waitUntilStopped()`, with
    /// the termination signals blocked in this thread (and so in the machine's threads) for the duration.
    public func run(timeout: Double? = nil, attachConsoleInput: Bool = true,
                    releaseStartupPagesAfter releaseDelay: Double? = nil) -> StopReason {
        TerminationSignals.block()
        defer { TerminationSignals.unblock() }
        do {
            try start(StartOptions(attachConsoleInput: attachConsoleInput))
        } catch {
            stop()
            return .hostError("\(error)")
        }
        return waitUntilStopped(timeout: timeout, releaseStartupPagesAfter: releaseDelay)
    }

    // MARK: - Teardown (the supervisor thread)

    private func tearDown() {
        lifecycle.transition.withLock { _ in tearDownHoldingTransition() }
    }

    /// Stops and joins every thread, removes our socket files, restores the terminal, records the reason.
    private func tearDownHoldingTransition() {
        if lifecycle.guarded.withLock({ $0.ended }) { return }
        setState(.stopping)
        stopController.stopping.store(true, ordering: .releasing)
        let threads = lifecycle.guarded.withLock { $0.vcpuThreads }
        for vcpu in vcpus { vcpu.requestImmediateExit() }
        gate.wakeForStop()
        for thread in threads { thread.kick() }
        for thread in threads { thread.join() }
        deviceLoops.stop()
        // Every producer has stopped: the guest's last words reach the fd (within a short bound) before the
        // terminal is restored and the stop is reported.
        consoleOutput.stop()
        let (console, terminal) = lifecycle.guarded.withLock { ($0.console, $0.terminal) }
        console?.stop()
        terminal?.restore()
        for file in socketFiles { file.remove() }
        timeline.mark(.stopped)
        let reason = stopController.current ?? .hostError("stopped without a reason")
        let observers = lifecycle.guarded.withLock { guarded -> [AsyncStream<MachineState>.Continuation] in
            guarded.stopReason = reason
            guarded.state = .stopped
            guarded.ended = true
            defer { guarded.observers = [:] }
            return Array(guarded.observers.values)
        }
        for observer in observers {
            observer.yield(.stopped)
            observer.finish()
        }
        lifecycle.ended.signal()
    }
}

/// The same transitions for Swift concurrency: each runs the blocking transition off the caller's executor
/// (pausing waits for vCPUs to acknowledge), and returns when it is done.
extension Machine {
    public func start(_ options: StartOptions = StartOptions()) async throws(LifecycleError) {
        try await Self.offExecutor { () throws(LifecycleError) in try self.start(options) }
    }

    public func pause() async throws(LifecycleError) {
        try await Self.offExecutor { () throws(LifecycleError) in try self.pause() }
    }

    public func resume() async throws(LifecycleError) {
        try await Self.offExecutor { () throws(LifecycleError) in try self.resume() }
    }

    public func stop() async -> StopReason {
        (try? await Self.offExecutor { () throws(LifecycleError) in self.stop() }) ?? .stopRequested
    }

    /// Runs `body` on a thread of its own and resumes the caller with its result.
    private static func offExecutor<T: Sendable>(_ body: @escaping @Sendable () throws(LifecycleError) -> T) async throws(LifecycleError) -> T {
        let result: Result<T, LifecycleError> = await withCheckedContinuation { continuation in
            do {
                let thread = try HostThread(name: "lifecycle") {
                    do throws(LifecycleError) { continuation.resume(returning: .success(try body())) }
                    catch { continuation.resume(returning: .failure(error)) }
                }
                thread.detach()
            } catch {
                continuation.resume(returning: .failure(.hostFailure(operation: "lifecycle", detail: "\(error)")))
            }
        }
        return try result.get()
    }
}
