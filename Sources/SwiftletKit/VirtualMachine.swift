import Swiftlet
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Told when a virtual machine ends on its own (`VZVirtualMachineDelegate`'s role). Both methods are optional.
/// They are called on a task of the machine's monitor, once per run; not for a `stop()` the program asked for.
public protocol VirtualMachineDelegate: AnyObject, Sendable {
    /// The guest powered off or rebooted (Swiftlet ends a VM on reboot, as Firecracker does).
    func guestDidStop(_ virtualMachine: VirtualMachine)
    /// The machine ended because something failed: the guest crashed (a triple fault, a KVM internal error) or a
    /// host call did. The error is `.stopped(reason)`.
    func virtualMachine(_ virtualMachine: VirtualMachine, didStopWithError error: VirtualMachineError)
}

extension VirtualMachineDelegate {
    public func guestDidStop(_ virtualMachine: VirtualMachine) {}
    public func virtualMachine(_ virtualMachine: VirtualMachine, didStopWithError error: VirtualMachineError) {}
}

/// A virtual machine built from a `VirtualMachineConfiguration`, shaped like Virtualization.framework's
/// `VZVirtualMachine`: an observable `state` with `canStart`, `canPause`, ...; `async` `start()`, `pause()`,
/// `resume()`, `stop()`; `requestStop()` asks the guest; a delegate and an `AsyncStream` of state changes; and
/// `exec`/`copy` through the guest agent (VirtualMachine+Agent.swift).
///
/// A thin layer over the VMM's `Machine`: each `start()` builds a fresh `Machine` (reading the kernel, creating
/// the KVM objects) and starts it, so a stopped VM can be started again, as with `VZVirtualMachine`. Every
/// blocking step runs on a thread of its own, never on the Swift concurrency pool; methods may be called from any
/// task or thread.
///
/// | method        | allowed when (`can...`)        | returns once                         |
/// |---------------|--------------------------------|--------------------------------------|
/// | start         | stopped (new, or ended)        | running (or throws; stays stopped)   |
/// | pause         | running                        | paused: every vCPU parked            |
/// | resume        | paused                         | running                              |
/// | requestStop   | running                        | at once: Ctrl-Alt-Del sent           |
/// | stop          | starting, running, paused, ... | stopped: every thread joined         |
public final class VirtualMachine: Sendable {
    /// stopped, starting, running, pausing, paused, resuming, stopping, error: `VZVirtualMachine.State`'s cases
    /// (without saving/restoring).
    public typealias State = MachineState

    public let configuration: VirtualMachineConfiguration
    let machineConfiguration: MachineConfiguration

    /// One start of the machine: the `Machine` it built, and who waits for its end.
    final class Run: Sendable {
        let machine: Machine
        let ownedConsoleFD: Int32?
        struct Ending {
            var reason: StopReason?
            var waiters: [CheckedContinuation<StopReason, Never>] = []
        }
        let ending = Mutex(Ending())

        init(machine: Machine, ownedConsoleFD: Int32?) {
            self.machine = machine
            self.ownedConsoleFD = ownedConsoleFD
        }
    }

    struct Guarded {
        var run: Run?
        /// A start is building its machine (reading the kernel): the state reads `.starting`.
        var building = false
        var lastStopReason: StopReason?
        weak var delegate: (any VirtualMachineDelegate)?
        var nextObserver = 0
        var observers: [Int: AsyncStream<State>.Continuation] = [:]
        var lastPublished: State = .stopped
    }

    let guarded = Mutex(Guarded())

    /// Validates the configuration (`VirtualMachineConfiguration.validate()`); builds nothing yet.
    public init(configuration: VirtualMachineConfiguration) throws(VirtualMachineError) {
        self.configuration = configuration
        do { machineConfiguration = try configuration.machineConfiguration() } catch { throw .invalidConfiguration(error) }
    }

    deinit {
        for observer in guarded.withLock({ $0.observers.values }) { observer.finish() }
    }

    public var delegate: (any VirtualMachineDelegate)? {
        get { guarded.withLock { $0.delegate } }
        set { guarded.withLock { $0.delegate = newValue } }
    }

    // MARK: - State

    public var state: State {
        guarded.withLock { guarded in
            if guarded.building { return .starting }
            return guarded.run?.machine.state ?? .stopped
        }
    }

    public var canStart: Bool {
        guarded.withLock { !$0.building && ($0.run == nil || $0.run!.machine.stopReason != nil) }
    }
    public var canPause: Bool { state == .running }
    public var canResume: Bool { state == .paused }
    public var canRequestStop: Bool { state == .running }
    public var canStop: Bool {
        guarded.withLock { guarded in guarded.run.map { $0.machine.stopReason == nil } ?? false }
    }

    /// Why the last run ended; nil before the first one has.
    public var stopReason: StopReason? { guarded.withLock { $0.lastStopReason } }

    /// Every state change from now on, starting with the current state. A stream does not finish when the VM
    /// stops (it may be started again); it finishes when the `VirtualMachine` is released, or stop iterating.
    public var stateUpdates: AsyncStream<State> {
        AsyncStream { continuation in
            let (id, current) = guarded.withLock { guarded -> (Int, State) in
                let id = guarded.nextObserver
                guarded.nextObserver += 1
                guarded.observers[id] = continuation
                return (id, guarded.lastPublished)
            }
            continuation.yield(current)
            continuation.onTermination = { [weak self] _ in
                _ = self?.guarded.withLock { $0.observers.removeValue(forKey: id) }
            }
        }
    }

    /// Sends `state` to the observers, unless it is the one last sent.
    private func publish(_ state: State) {
        let observers = guarded.withLock { guarded -> [AsyncStream<State>.Continuation] in
            guard guarded.lastPublished != state else { return [] }
            guarded.lastPublished = state
            return Array(guarded.observers.values)
        }
        for observer in observers { observer.yield(state) }
    }

    // MARK: - Lifecycle

    /// Builds the machine (reads the kernel and initrd, creates the KVM VM, its memory, devices and vCPUs) and
    /// starts it. Returns once the vCPUs run; the guest then boots on its own.
    public func start() async throws(VirtualMachineError) {
        // A previous run that has ended but whose monitor has not finished yet: let it finish first, so its last
        // `.stopped` and its delegate call come before this run's states.
        if let previous = guarded.withLock({ $0.run }), previous.machine.stopReason != nil { await waitUntilStopped() }
        let allowed = guarded.withLock { guarded -> Bool in
            guard !guarded.building, guarded.run == nil || guarded.run!.machine.stopReason != nil else { return false }
            guarded.building = true
            return true
        }
        guard allowed else { throw .invalidState(operation: "start", state: state) }
        publish(.starting)
        let configuration = configuration
        let machineConfiguration = machineConfiguration
        let built: Run
        do throws(VirtualMachineError) {
            built = try await OffThread.run("vm-build", { () throws(VirtualMachineError) -> Run in
                let (fd, owned) = try Self.openConsoleOutput(configuration.console.output)
                do throws(MachineError) {
                    let machine = try Machine(configuration: machineConfiguration, consoleOutput: fd)
                    return Run(machine: machine, ownedConsoleFD: owned ? fd : nil)
                } catch {
                    if owned { close(fd) }
                    throw VirtualMachineError(error)
                }
            }, threadFailure: { VirtualMachineError($0) })
        } catch {
            guarded.withLock { $0.building = false }
            publish(.stopped)
            throw error
        }
        // Watch this run's states before it starts, so none is missed.
        let updates = built.machine.stateUpdates()
        guarded.withLock {
            $0.run = built
            $0.building = false
        }
        Task { [self] in await monitor(built, updates) }
        let readsInput = configuration.console.readsStandardInput
        do {
            try await OffThread.run("vm-start", { () throws(LifecycleError) in
                try built.machine.start(StartOptions(attachConsoleInput: readsInput))
            }, threadFailure: { .hostFailure(operation: "start", detail: "\($0)") })
        } catch {
            _ = await OffThread.run("vm-stop") { built.machine.stop() }
            throw VirtualMachineError(error)
        }
    }

    /// Parks every vCPU outside the guest; returns once they all are. The guest's clock keeps running.
    public func pause() async throws(VirtualMachineError) {
        let machine = try currentMachine(for: "pause")
        do {
            try await OffThread.run("vm-pause", { () throws(LifecycleError) in try machine.pause() },
                                    threadFailure: { .hostFailure(operation: "pause", detail: "\($0)") })
        } catch {
            throw VirtualMachineError(error)
        }
    }

    public func resume() async throws(VirtualMachineError) {
        let machine = try currentMachine(for: "resume")
        do {
            try await OffThread.run("vm-resume", { () throws(LifecycleError) in try machine.resume() },
                                    threadFailure: { .hostFailure(operation: "resume", detail: "\($0)") })
        } catch {
            throw VirtualMachineError(error)
        }
    }

    /// Asks the guest to shut down (Ctrl-Alt-Del through the i8042; Linux reboots, and the VM ends). Returns at
    /// once: the guest decides, and the delegate's `guestDidStop` tells when it did.
    public func requestStop() throws(VirtualMachineError) {
        let machine = try currentMachine(for: "request a stop of")
        do { try machine.requestStop() } catch { throw VirtualMachineError(error) }
    }

    /// Ends the machine now, without asking the guest (a destructive operation, as `VZVirtualMachine.stop`).
    /// Returns once every thread of the machine is joined.
    public func stop() async throws(VirtualMachineError) {
        guard let run = guarded.withLock({ $0.run }), run.machine.stopReason == nil else {
            throw .invalidState(operation: "stop", state: state)
        }
        _ = await OffThread.run("vm-stop") { run.machine.stop() }
        _ = await waitUntilStopped()
    }

    /// Waits until the current run has ended (the guest powered off, crashed, or `stop()` was called) and
    /// returns why; at once when nothing runs.
    @discardableResult
    public func waitUntilStopped() async -> StopReason {
        guard let run = guarded.withLock({ $0.run }) else { return stopReason ?? .stopRequested }
        return await withCheckedContinuation { continuation in
            let reason = run.ending.withLock { ending -> StopReason? in
                if let reason = ending.reason { return reason }
                ending.waiters.append(continuation)
                return nil
            }
            if let reason { continuation.resume(returning: reason) }
        }
    }

    /// Bytes for the guest's console input, as if typed (bounded: returns how many were taken).
    @discardableResult
    public func sendConsoleInput(_ bytes: [UInt8]) -> Int {
        guard let run = guarded.withLock({ $0.run }) else { return 0 }
        return run.machine.sendConsoleInput(bytes)
    }

    /// The machine of the current run, when it has not ended.
    private func currentMachine(for operation: String) throws(VirtualMachineError) -> Machine {
        let (run, building) = guarded.withLock { ($0.run, $0.building) }
        guard !building, let run, run.machine.stopReason == nil else {
            throw .invalidState(operation: operation, state: building ? .starting : .stopped)
        }
        return run.machine
    }

    /// Forwards one run's states; at its end records why, releases its console descriptor, wakes the waiters and
    /// tells the delegate.
    private func monitor(_ run: Run, _ updates: AsyncStream<State>) async {
        var first = true
        for await state in updates {
            // The stream opens with the built machine's `.stopped`; `.starting` was published already.
            if first, state == .stopped, run.machine.stopReason == nil { first = false; continue }
            first = false
            publish(state)
        }
        let reason = run.machine.stopReason ?? .hostError("the machine ended without a reason")
        if let fd = run.ownedConsoleFD { close(fd) }
        let delegate = guarded.withLock { guarded -> (any VirtualMachineDelegate)? in
            guarded.lastStopReason = reason
            return guarded.delegate
        }
        publish(.stopped)
        // The delegate hears first, so a caller woken from waitUntilStopped() sees what it did.
        switch reason {
        case .poweredOff, .reset: delegate?.guestDidStop(self)
        case .stopRequested: break
        default: delegate?.virtualMachine(self, didStopWithError: .stopped(reason))
        }
        let waiters = run.ending.withLock { ending -> [CheckedContinuation<StopReason, Never>] in
            ending.reason = reason
            defer { ending.waiters = [] }
            return ending.waiters
        }
        for waiter in waiters { waiter.resume(returning: reason) }
    }

    /// The descriptor the console writes to, and whether this VM opened it (and so closes it).
    private static func openConsoleOutput(_ output: ConsoleConfiguration.Output) throws(VirtualMachineError) -> (Int32, Bool) {
        switch output {
        case .standardOutput: return (STDOUT_FILENO, false)
        case .standardError: return (STDERR_FILENO, false)
        case let .fileDescriptor(fd): return (fd, false)
        case .discard:
            let fd = open("/dev/null", O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw .hostFailure(operation: "open /dev/null", detail: String(cString: strerror(errno))) }
            return (fd, true)
        case let .file(path):
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw .hostFailure(operation: "open console file \(path)", detail: String(cString: strerror(errno))) }
            return (fd, true)
        }
    }
}
