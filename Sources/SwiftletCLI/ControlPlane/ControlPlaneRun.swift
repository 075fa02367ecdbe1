import KVM
import Logging
import Swiftlet
import SwiftletAPI
#if canImport(Glibc)
import Glibc
#endif

/// What `swiftlet serve`, `swiftlet run --api-sock` and Firecracker mode share: an API server on a Unix socket in
/// front of a `MachineBackend`, an optional config file booted without API calls, and the main thread waiting
/// for the machine to end (or a termination signal before it ever started).
struct ControlPlaneRun {
    var apiSocket: String?
    var configFile: String?
    var instanceID: String = APIController.defaultInstanceID
    var startOptions = StartOptions()
    var vmmVersion: String
    var observability: Observability
    var logger: Logger
    var timeline: BootTimeline
    var transport: VirtioTransport = .pci

    /// Runs until the machine ends; returns the process's exit status.
    func run() -> Int32 {
        // Before any thread exists, so every thread inherits the mask and only this one reads them (signalfd).
        TerminationSignals.block()
        let backend: MachineBackend
        do {
            backend = try MachineBackend(timeline: timeline, logger: logger, startOptions: startOptions, observability: observability)
        } catch {
            logger.error("\(error)")
            return 1
        }
        let controller = APIController(backend: backend, instanceID: instanceID, vmmVersion: vmmVersion, logger: logger,
                                       onRequest: { [observability] record in
                                           observability.recordAPIRequest(method: record.method, resource: record.resource, failed: record.failed)
                                       }, transport: transport, onFatalError: { [backend] in backend.loadFailed($0) })
        var server: APIServer?
        if let apiSocket {
            let created = APIServer(socketPath: apiSocket, controller: controller, logger: logger)
            do {
                try created.start()
            } catch {
                logger.error("cannot serve the API on \(apiSocket): \(error)")
                return 1
            }
            timeline.mark(.apiReady)
            // Firecracker's api_server.process_startup_time_us / _cpu_us: process start → API listening.
            var cpu = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu)
            observability.registry.setProcessStartupTime(
                wallMicroseconds: (timeline.elapsed(.apiReady) ?? 0) / 1000,
                cpuMicroseconds: UInt64(cpu.tv_sec) * 1_000_000 + UInt64(cpu.tv_nsec) / 1000)
            server = created
        }
        defer { server?.stop() }

        if let configFile {
            guard let bytes = readWholeFile(configFile) else {
                logger.error("cannot read --config-file \(configFile): \(String(cString: strerror(errno)))")
                return 1
            }
            let outcome = blockingAwait {
                do throws(APIFault) {
                    try await controller.loadConfigFile(bytes)
                } catch {
                    return APIResponse(fault: error)
                }
                return await controller.execute(.instanceStart)
            }
            guard outcome.status < 300 else {
                // Firecracker's rule: a config file that cannot boot ends the process.
                logger.error("cannot start the VM from \(configFile): \(outcome.faultMessage ?? "status \(outcome.status)")")
                return 1
            }
        }
        return waitForMachine(backend, server: server)
    }

    /// Waits for `InstanceStart` or a loaded snapshot's start (or a termination signal before it), then supervises
    /// the machine to its end. A failed snapshot load ends the process with status 1 (Firecracker's rule).
    private func waitForMachine(_ backend: MachineBackend, server: APIServer?) -> Int32 {
        let signal = TerminationSignals.wait(until: backend.machineStarted)
        if let failure = backend.fatalLoadFailure {
            logger.error("\(failure)")
            return 1
        }
        if let signal, !backend.hasStarted {
            logger.info("stopped by signal \(signal) before the VM started")
            return 128 + signal
        }
        guard backend.hasStarted, let machine = backend.current else { return 1 }
        // The VM runs: the API thread's own seccomp filter (the main thread's comes with waitUntilStopped).
        server?.execute(onAPIThread: { Seccomp.enterThread(.api) })
        let reason = machine.waitUntilStopped(releaseStartupPagesAfter: MachineSession.startupPagesReleaseDelay)
        observability.machineEnded()
        if reason.isClean { logger.info("\(reason)") } else { logger.error("\(reason)") }
        return reason.exitCode
    }
}

/// Runs an async body to completion from synchronous code (the CLI's main thread), on the Swift runtime's
/// threads, and returns its result.
func blockingAwait<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let done = try! EventFD(nonBlocking: true)
    let box = ResultBox<T>()
    Task {
        box.value = await body()
        done.signal()
    }
    _ = done.wait(milliseconds: -1)
    return box.value!
}

private final class ResultBox<T>: @unchecked Sendable {
    // SAFETY: written once by the task before it signals the eventfd, read once by the waiter after it.
    var value: T?
}

/// The whole of a small file (a config file), or nil with errno set.
func readWholeFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count < 0 { if errno == EINTR { continue }; return nil }
        if count == 0 { return bytes }
        bytes += buffer[..<count]
        if bytes.count > 16 << 20 { errno = EFBIG; return nil }
    }
}
