import KVM
import Logging
import Swiftlet
import SwiftletAPI
import SwiftletSandbox
#if canImport(Glibc)
import Glibc
#endif

/// What `swiftlet run` and `swiftlet restore` do with a machine they built: run it with the guest's console on this
/// terminal (and the API beside it with `--api-sock`), then end the process with the guest's exit status.
struct MachineSession {
    var apiSocket: String?
    var timeout: Double?
    /// `--boot-timeline`: print the timeline to stderr at the end.
    var printTimeline: Bool
    var timeline: BootTimeline
    var logger: Logger
    var observability: Observability

    /// Seconds after the machine starts at which the process gives back the executable's pages start-up touched
    /// (`StartupPages`): the VMM's own start-up is long over (it takes milliseconds), and what runs from then on
    /// faults its few pages back in.
    static let startupPagesReleaseDelay = 1.0

    /// The CLI's log lines on stderr; a client's `PUT /logger` adds Firecracker's log file beside them.
    static func bootstrapLogging(observability: Observability, verbose: Bool) {
        LoggingSystem.bootstrap { label in
            var handler = ConsoleLogHandler(label: label)
            handler.logLevel = verbose ? .debug : .info
            return MultiplexLogHandler([handler, LogFileOnlyHandler(inner: observability.log.makeHandler(label: label))])
        }
    }

    /// Runs the machine (never started yet) until it ends, and exits the process.
    func runToEnd(_ machine: Machine) throws -> Never {
        let reason: StopReason
        if let apiSocket {
            reason = try runWithAPI(machine, socket: apiSocket)
        } else {
            reason = machine.run(timeout: timeout, releaseStartupPagesAfter: Self.startupPagesReleaseDelay)
        }
        if printTimeline { printError(timeline.report) }
        if reason.isClean {
            logger.info("\(reason)")
        } else {
            logger.error("\(reason)")
        }
        // Exit now, as Firecracker does: every thread is joined and the terminal restored, and the kernel
        // releases the VM, its memory and the disk images with the process; tearing the machine down object
        // by object first only delays the exit status.
        SandboxVMM.recordExit(status: reason.exitCode)
        Glibc.exit(reason.exitCode)
    }

    /// Starts the machine, then serves the API for it (already booted: the pre-boot PUTs are refused, as after
    /// Firecracker's InstanceStart) until the machine ends.
    private func runWithAPI(_ machine: Machine, socket: String) throws -> StopReason {
        TerminationSignals.block()
        let backend = try MachineBackend(timeline: timeline, logger: logger, startOptions: StartOptions(), observability: observability)
        try machine.start()
        backend.adopt(machine)
        let controller = APIController(backend: backend,
                                       vmmVersion: APIController.firecrackerAPIVersion, logger: logger,
                                       onRequest: { [observability] record in
                                           observability.recordAPIRequest(method: record.method, resource: record.resource, failed: record.failed)
                                       })
        let server = APIServer(socketPath: socket, controller: controller, logger: logger)
        do {
            try server.start()
        } catch {
            logger.error("cannot serve the API on \(socket): \(error)")
            return machine.stop()
        }
        defer { server.stop() }
        server.execute(onAPIThread: { Seccomp.enterThread(.api) })
        let reason = machine.waitUntilStopped(timeout: timeout, releaseStartupPagesAfter: Self.startupPagesReleaseDelay)
        observability.machineEnded()
        return reason
    }
}
