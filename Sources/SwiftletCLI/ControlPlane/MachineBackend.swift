import KVM
import Logging
import Swiftlet
import SwiftletAPI
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The API's `VMMBackend` over a real `Machine`: builds it at `InstanceStart` (or wraps one the command line
/// already started), and forwards pause, resume, Ctrl-Alt-Del and drive updates to it.
///
/// The main thread waits on `machineStarted` and then supervises the machine (`Machine.waitUntilStopped`),
/// so the process ends with the guest, as Firecracker's does.
final class MachineBackend: VMMBackend {
    private let machine = Mutex<Machine?>(nil)
    /// Signalled once a machine exists and runs.
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

    var machineState: MachineState { current?.state ?? .stopped }

    func start(_ configuration: MachineConfiguration) async throws {
        guard current == nil else { throw LifecycleError.invalidTransition(operation: "start", state: machineState) }
        timeline.mark(.instanceStart)
        let built = try Machine(configuration: configuration, timeline: timeline, logger: logger)
        for line in built.bootLog { logger.info("\(line)") }
        try await built.start(startOptions)
        adopt(built)
    }

    func pause() async throws {
        guard let machine = current else { throw LifecycleError.invalidTransition(operation: "pause", state: .stopped) }
        let began = BootTimeline.now()
        try await machine.pause()
        observability.recordLatency(.pauseVM, nanoseconds: BootTimeline.now() - began)
    }

    func resume() async throws {
        guard let machine = current else { throw LifecycleError.invalidTransition(operation: "resume", state: .stopped) }
        let began = BootTimeline.now()
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

    func flushMetrics() throws { try observability.flushMetrics() }

    func configureMetrics(path: String) throws { try observability.configureMetrics(path: path) }

    func configureLogger(_ settings: LoggerSettings) throws { try observability.configureLogger(settings) }
}
