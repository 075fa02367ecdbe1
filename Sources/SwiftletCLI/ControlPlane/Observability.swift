import Logging
import Swiftlet
import SwiftletAPI

/// The process's metrics and Firecracker-format log, as the API and the CLI flags configure them.
///
/// Metrics: `PUT /metrics` or `--metrics-path` names a file or FIFO; a line is written on `FlushMetrics`, every
/// 60 s while a machine runs (Firecracker's interval), and once more when the machine ends.
/// Log: `PUT /logger` or `--log-path`/`--level`/`--show-level`/`--show-log-origin` (Firecracker's line format).
final class Observability: Sendable {
    let registry: MetricsRegistry
    let writer: MetricsWriter
    let log: FirecrackerLogger

    init(registry: MetricsRegistry = .shared, log: FirecrackerLogger = .shared) {
        self.registry = registry
        self.log = log
        writer = MetricsWriter(registry: registry, logger: Logger(label: "swiftlet.metrics"))
    }

    func configureMetrics(path: String) throws {
        try writer.configure(path: path)
        if !writer.isFlushingPeriodically { try writer.startPeriodicFlush() }
    }

    func flushMetrics() throws { try writer.flush() }

    func configureLogger(_ settings: LoggerSettings) throws {
        try log.update(LoggerConfiguration(logPath: settings.logPath,
                                           level: try settings.level.map { text throws(ObservabilityError) in try LogLevelFilter(parsing: text) },
                                           showLevel: settings.showLevel, showLogOrigin: settings.showLogOrigin, module: settings.module))
    }

    func recordAPIRequest(method: String, resource: String, failed: Bool) {
        _ = registry.recordAPIRequest(method: method, resource: resource, failed: failed)
    }

    func recordLatency(_ latency: MetricsLatency, nanoseconds: UInt64) {
        registry.recordLatency(latency, microseconds: nanoseconds / 1000)
    }

    /// The last line, so counters of the machine's final seconds are not lost, and no more timer.
    func machineEnded() {
        if writer.path != nil { try? writer.flush() }
        writer.stopPeriodicFlush()
    }
}

/// Firecracker's log line only once a log file is configured (`swiftlet run --api-sock` keeps its own console
/// lines on stderr, and adds the file when a client sends `PUT /logger`).
struct LogFileOnlyHandler: LogHandler {
    var inner: FirecrackerLogHandler

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        guard inner.logger.logPath != nil else { return }
        inner.log(event: event)
    }
}
