// Writes metrics lines to the configured destination: on demand (`FlushMetrics`) and every 60 s.
//
// Firecracker flushes every 60 seconds (`WRITE_METRICS_PERIOD_MS`, src/firecracker/src/metrics.rs), once right
// when the timer starts, and on every `{"action_type": "FlushMetrics"}`. A flush is one JSON object and a newline,
// written with one write(2) (OutputFile.swift explains the FIFO handling). A failed flush counts in
// `logger.metrics_fails`; a failed periodic flush also in `logger.missed_metrics_count`, the counter Firecracker's
// timer uses. Either way the counters have already restarted (Firecracker serialises, and so resets, before it
// writes): a lost line is lost.
//
// Threads: `flush` may be called from any thread (the API's, the timer's); one lock orders the flushes, so lines
// never interleave and each reports the interval since the previous one. The timer thread ("metrics") waits on an
// eventfd with a timeout, so `stopPeriodicFlush` wakes it at once.

import KVM
import Logging
import Synchronization

public final class MetricsWriter: Sendable {
    /// Firecracker's period.
    public static let defaultInterval: Duration = .seconds(60)

    public let registry: MetricsRegistry
    private let logger: Logger

    private struct Timer {
        let thread: HostThread
        let wake: EventFD
    }

    private let destination = Mutex<OutputFile?>(nil)
    private let timer = Mutex<Timer?>(nil)

    public init(registry: MetricsRegistry = .shared, logger: Logger = Logger(label: "swiftlet.metrics")) {
        self.registry = registry
        self.logger = logger
    }

    /// The configured path, if any.
    public var path: String? { destination.withLock { $0?.path } }

    /// Opens `path` (a regular file, created if missing and appended to, or a FIFO) as the destination, replacing
    /// any earlier one. `PUT /metrics {"metrics_path"}` and `--metrics-path` end here.
    public func configure(path: String) throws(ObservabilityError) {
        let file = try OutputFile(path: path)
        destination.withLock { $0 = file }
    }

    /// Writes one metrics line now. Throws `.metricsNotConfigured` before `configure` (and then resets nothing).
    public func flush() throws(ObservabilityError) {
        let result: Result<Void, ObservabilityError> = destination.withLock { file in
            guard let file else { return .failure(.metricsNotConfigured) }
            var line = registry.snapshot(commit: true)
            line += "\n"
            do throws(ObservabilityError) {
                try file.writeLine(Array(line.utf8))
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        if case let .failure(error) = result {
            if error != .metricsNotConfigured { registry.recordMetricsFailure() }
            throw error
        }
    }

    /// Starts the "metrics" thread: a flush now, then one every `interval` until `stopPeriodicFlush`. Does nothing
    /// if it is already running.
    public func startPeriodicFlush(interval: Duration = defaultInterval) throws(ObservabilityError) {
        try timer.withLock { (timer: inout Timer?) throws(ObservabilityError) in
            guard timer == nil else { return }
            let wake: EventFD
            do { wake = try EventFD() } catch { throw .threadCreationFailed("eventfd: \(error)") }
            let (seconds, attoseconds) = interval.components
            let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
            let thread: HostThread
            do {
                thread = try HostThread(name: "metrics") { [self] in
                    Seccomp.enterThread(.vmm)
                    repeat { periodicFlush() } while !wake.wait(milliseconds: max(1, milliseconds))
                }
            } catch {
                throw .threadCreationFailed("\(error)")
            }
            timer = Timer(thread: thread, wake: wake)
        }
    }

    /// Stops and joins the periodic thread (no final flush: call `flush()` for one).
    public func stopPeriodicFlush() {
        guard let running = timer.withLock({ timer in defer { timer = nil }; return timer }) else { return }
        running.wake.signal()
        running.thread.join()
    }

    public var isFlushingPeriodically: Bool { timer.withLock { $0 != nil } }

    private func periodicFlush() {
        do {
            try flush()
        } catch .metricsNotConfigured {
            // Nothing to write to yet: like Firecracker, not an error.
        } catch {
            registry.recordMissedMetrics()
            logger.error("Failed to write metrics: \(error)")
        }
    }
}
