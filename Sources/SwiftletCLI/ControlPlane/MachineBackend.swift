import KVM
import Logging
import Swiftlet
import SwiftletAPI
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The API's `VMMBackend` over a real `Machine`: builds it at `InstanceStart` or `PUT /snapshot/load` (or wraps
/// one the command line already started), and forwards pause, resume, Ctrl-Alt-Del, drive updates and snapshots.
///
/// The main thread waits on `machineStarted` and then supervises the machine (`Machine.waitUntilStopped`),
/// so the process ends with the guest, as Firecracker's does.
final class MachineBackend: VMMBackend {
    private let machine = Mutex<Machine?>(nil)
    /// A machine restored by `PUT /snapshot/load` without `resume_vm`: built, never run, reported paused (as
    /// Firecracker reports a loaded VM) until `resume()` starts it.
    private let awaitingStart = Mutex(false)
    /// machine-config's track_dirty_pages, set before InstanceStart builds the machine.
    private let dirtyPageTracking = Mutex(false)
    /// Why a snapshot load failed: the process then ends (Firecracker's rule), once the API has answered.
    private let loadFailure = Mutex<String?>(nil)
    /// Signalled once a machine exists and runs, or a load failed.
    let machineStarted: EventFD
    private let timeline: BootTimeline
    private let logger: Logger
    private let startOptions: StartOptions
    let observability: Observability

    init(timeline: BootTimeline, logger: Logger, startOptions: StartOptions, observability: Observability) throws {
        machineStarted = try EventFD(nonBlocking: true)
        self.timeline = timeline
        self.logger = logger
        self.startOptions = startOptions
        self.observability = observability
    }

    /// Adopts a machine the command line built and started (`swiftlet run --api-sock`).
    func adopt(_ started: Machine) {
        machine.withLock { $0 = started }
        machineStarted.signal()
    }

    var current: Machine? { machine.withLock { $0 } }

    /// A machine runs (or ran): not merely restored and waiting for `resume()`.
    var hasStarted: Bool { current != nil && !awaitingStart.withLock { $0 } }

    /// The failed load's message, once the API has answered it (see `loadFailed`).
    var fatalLoadFailure: String? { loadFailure.withLock { $0 } }

    var machineState: MachineState {
        if awaitingStart.withLock({ $0 }) { return .paused }
        return current?.state ?? .stopped
    }

    /// The API's `onFatalError`: a snapshot load failed and its answer is on its way; the main thread ends the process.
    func loadFailed(_ message: String) {
        loadFailure.withLock { $0 = message }
        machineStarted.signal()
    }

    func start(_ configuration: MachineConfiguration) async throws {
        guard current == nil else { throw LifecycleError.invalidTransition(operation: "start", state: machineState) }
        timeline.mark(.instanceStart)
        let built = try Machine(configuration: configuration, timeline: timeline, logger: logger)
        for line in built.bootLog { logger.info("\(line)") }
        if dirtyPageTracking.withLock({ $0 }) { try built.enableDirtyPageTracking() }
        try await built.start(startOptions)
        adopt(built)
    }

    func pause() async throws {
        guard let machine = current else { throw LifecycleError.invalidTransition(operation: "pause", state: .stopped) }
        if awaitingStart.withLock({ $0 }) { return }   // a loaded snapshot is paused already
        let began = BootTimeline.now()
        try await machine.pause()
        observability.recordLatency(.pauseVM, nanoseconds: BootTimeline.now() - began)
    }

    func resume() async throws {
        guard let machine = current else { throw LifecycleError.invalidTransition(operation: "resume", state: .stopped) }
        let began = BootTimeline.now()
        if awaitingStart.withLock({ $0 }) {
            // A loaded snapshot's first resume is the restored machine's start: it runs on from where it was saved.
            try await machine.start(startOptions)
            awaitingStart.withLock { $0 = false }
            machineStarted.signal()
            observability.recordLatency(.resumeVM, nanoseconds: BootTimeline.now() - began)
            return
        }
        try await machine.resume()
        observability.recordLatency(.resumeVM, nanoseconds: BootTimeline.now() - began)
    }

    func sendCtrlAltDel() throws {
        guard let machine = current else { throw LifecycleError.invalidTransition(operation: "send Ctrl-Alt-Del to", state: .stopped) }
        try machine.requestStop()
    }

    func replaceDrive(id: String, path: String) throws {
        guard let machine = current else { throw LifecycleError.invalidTransition(operation: "update a drive of", state: .stopped) }
        // The machine knows the drive by its virtio-blk serial: the drive_id cut to 20 bytes.
        try machine.replaceDrive(id: VMResources.serial(for: id), path: path)
    }

    func trackDirtyPages() throws { dirtyPageTracking.withLock { $0 = true } }

    func createSnapshot(statePath: String, memoryPath: String, kind: SnapshotKind) async throws {
        guard let machine = current else { throw LifecycleError.invalidTransition(operation: "snapshot", state: .stopped) }
        guard !awaitingStart.withLock({ $0 }) else {
            throw SnapshotError.unsupported("the loaded snapshot has not run yet: resume it first, or use its files as they are")
        }
        let began = BootTimeline.now()
        let summary = try machine.saveSnapshot(statePath: statePath, memoryPath: memoryPath, kind: kind)
        let elapsed = BootTimeline.now() - began
        observability.recordLatency(kind == .diff ? .diffCreateSnapshot : .fullCreateSnapshot, nanoseconds: elapsed)
        logger.info("snapshot (\(kind.rawValue)): \(statePath) (\(summary.stateBytes) bytes), \(memoryPath) (\(summary.memoryFileSize) bytes, \(summary.memoryBytesWritten) written) in \(elapsed / 1_000_000) ms")
        for line in summary.hostRefused { logger.warning("snapshot: the host refused \(line)") }
    }

    func loadSnapshot(_ request: SnapshotLoadRequest) async throws -> MachineConfiguration {
        guard current == nil else { throw LifecycleError.invalidTransition(operation: "load a snapshot into", state: machineState) }
        let began = BootTimeline.now()
        timeline.mark(.instanceStart)
        let restored = try Machine(restoringFromState: request.statePath, memoryPath: request.memoryPath, timeline: timeline,
                                   logger: logger, overrides: request.overrides)
        for line in restored.bootLog { logger.info("\(line)") }
        if request.trackDirtyPages { try restored.enableDirtyPageTracking() }
        if request.resume {
            do { try await restored.start(startOptions) } catch {
                _ = await restored.stop()
                throw error
            }
            adopt(restored)
        } else {
            awaitingStart.withLock { $0 = true }
            machine.withLock { $0 = restored }
        }
        observability.recordLatency(.loadSnapshot, nanoseconds: BootTimeline.now() - began)
        return restored.configuration
    }

    func flushMetrics() throws { try observability.flushMetrics() }

    func configureMetrics(path: String) throws { try observability.configureMetrics(path: path) }

    func configureLogger(_ settings: LoggerSettings) throws { try observability.configureLogger(settings) }
}
