// Log lines in Firecracker's format, to a file or FIFO chosen at run time (`PUT /logger`, `--log-path`).
//
// The line (src/vmm/src/logger/logging.rs, docs/logger.md):
//     <timestamp> [<instance id>:<thread name>(:<LEVEL>)(:<file>:<line>)] <message>
//   - timestamp: local time, `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn` (nanoseconds, CLOCK_REALTIME through localtime_r,
//     Firecracker's `LocalTime`), e.g. `2018-11-07T05:34:25.180751152`;
//   - instance id: `--id`, by default `anonymous-instance`;
//   - thread name: Firecracker's are `fc_api`, `fc_vcpu 0`, ...; ours are the names HostThread gives (`vcpu0`,
//     `devices`, ...) and the program's name on the main thread;
//   - `:LEVEL` only with show_level: ERROR, WARN, INFO, DEBUG, TRACE (Rust's `log::Level` spelling);
//   - `:file:line` only with show_log_origin: here swift-log's `#fileID` (`Swiftlet/Machine.swift`).
// swift-log metadata, which Firecracker has no equivalent for, follows the message as ` key=value` pairs.
//
// Configuration follows Firecracker's `Logger::update`: every field is optional; a missing path, show_level,
// show_log_origin or module keeps the current one, but a missing level resets it to the default, Info.
// Defaults: level Info, show_level false, show_log_origin false, no module filter. Until a path is given, lines go
// to stderr (Firecracker writes them to stdout, which for us is the guest's console).
// The module filter keeps a line when the swift-log `source` (the Swift module: "Swiftlet", "Virtio") or the
// logger's label ("swiftlet.virtio-blk") starts with it — Firecracker matches a Rust module path prefix.
//
// Threads: any thread logs. The settings and the destination sit behind one Mutex, held while a line is written
// with its single write(2), so lines never interleave and a destination switch never cuts one; the level is also
// an atomic, since swift-log asks for it before every message. A line that cannot be written counts in
// `logger.missed_log_count`.

import Logging
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Firecracker's logger levels. Parsing is case-insensitive and accepts "Warn" and "Warning".
public enum LogLevelFilter: String, Sendable, CaseIterable, CustomStringConvertible {
    case off = "Off", error = "Error", warning = "Warning", info = "Info", debug = "Debug", trace = "Trace"

    public init(parsing text: String) throws(ObservabilityError) {
        switch text.lowercased() {
        case "off": self = .off
        case "error": self = .error
        case "warn", "warning": self = .warning
        case "info": self = .info
        case "debug": self = .debug
        case "trace": self = .trace
        default: throw .invalidLogLevel(text)
        }
    }

    /// The least severe swift-log level let through; nil for Off. swift-log's `critical` counts as Error and
    /// `notice` as Info.
    public var minimumLevel: Logger.Level? {
        switch self {
        case .off: nil
        case .error: .error
        case .warning: .warning
        case .info: .info
        case .debug: .debug
        case .trace: .trace
        }
    }

    public var description: String { rawValue }
}

/// `PUT /logger`'s body as a value; nil fields mean "not given" (see the top of this file for what that does).
public struct LoggerConfiguration: Sendable, Equatable {
    public var logPath: String?
    public var level: LogLevelFilter?
    public var showLevel: Bool?
    public var showLogOrigin: Bool?
    public var module: String?

    public init(logPath: String? = nil, level: LogLevelFilter? = nil, showLevel: Bool? = nil, showLogOrigin: Bool? = nil, module: String? = nil) {
        self.logPath = logPath
        self.level = level
        self.showLevel = showLevel
        self.showLogOrigin = showLogOrigin
        self.module = module
    }
}

/// The shared state behind every `FirecrackerLogHandler`: destination, format toggles, filter, instance id.
public final class FirecrackerLogger: Sendable {
    public static let defaultLevel: LogLevelFilter = .info
    public static let defaultInstanceID = "anonymous-instance"
    /// The process-wide logger (Firecracker's `LOGGER`). Tests make their own.
    public static let shared = FirecrackerLogger()

    private struct Settings {
        var destination: OutputFile?
        var showLevel = false
        var showLogOrigin = false
        var module: String?
        var instanceID: String
    }

    private let settings: Mutex<Settings>
    /// `LogLevelFilter` index: 0 off ... 5 trace.
    private let levelIndex = Atomic<Int>(0)
    private let metrics: MetricsRegistry

    public init(instanceID: String = defaultInstanceID, metrics: MetricsRegistry = .shared) {
        settings = Mutex(Settings(instanceID: instanceID))
        self.metrics = metrics
        level = Self.defaultLevel
    }

    /// The level filter now in force.
    public var level: LogLevelFilter {
        get { Self.levels[levelIndex.load(ordering: .relaxed)] }
        set { levelIndex.store(Self.levels.firstIndex(of: newValue)!, ordering: .relaxed) }
    }

    private static let levels: [LogLevelFilter] = [.off, .error, .warning, .info, .debug, .trace]

    public var instanceID: String {
        get { settings.withLock { $0.instanceID } }
        set { settings.withLock { $0.instanceID = newValue } }
    }

    /// The destination path, nil while lines go to stderr.
    public var logPath: String? { settings.withLock { $0.destination?.path } }

    /// Applies a `PUT /logger` (or the CLI's flags). The new file is opened before anything changes, so a bad
    /// path leaves the logger as it was. Safe while other threads log.
    public func update(_ configuration: LoggerConfiguration) throws(ObservabilityError) {
        let file = try configuration.logPath.map { path throws(ObservabilityError) in try OutputFile(path: path) }
        settings.withLock { settings in
            if let file { settings.destination = file }
            if let showLevel = configuration.showLevel { settings.showLevel = showLevel }
            if let showLogOrigin = configuration.showLogOrigin { settings.showLogOrigin = showLogOrigin }
            if let module = configuration.module { settings.module = module }
        }
        level = configuration.level ?? Self.defaultLevel
    }

    /// A handler for `LoggingSystem.bootstrap { label in FirecrackerLogger.shared.makeHandler(label: label) }`.
    public func makeHandler(label: String) -> FirecrackerLogHandler {
        FirecrackerLogHandler(label: label, logger: self)
    }

    func isEnabled(_ level: Logger.Level) -> Bool {
        guard let minimum = self.level.minimumLevel else { return false }
        return level >= minimum
    }

    /// Formats and writes one line (if the level and the module filter let it through).
    func log(
        label: String, level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata,
        source: String, file: String, line: UInt, levelChecked: Bool = false
    ) {
        if levelChecked {
            guard self.level != .off else { return }
        } else {
            guard isEnabled(level) else { return }
        }
        let timestamp = Self.timestamp()
        let thread = ThreadName.current
        settings.withLock { settings in
            if let module = settings.module, !source.hasPrefix(module), !label.hasPrefix(module) { return }
            var text = timestamp + " [" + settings.instanceID + ":" + thread
            if settings.showLevel { text += ":" + Self.levelName(level) }
            if settings.showLogOrigin { text += ":\(file):\(line)" }
            text += "] \(message)"
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { text += " \(key)=\(value)" }
            text += "\n"
            let bytes = Array(text.utf8)
            do throws(ObservabilityError) {
                if let destination = settings.destination {
                    try destination.writeLine(bytes)
                } else {
                    let written = try? bytes.withUnsafeBytes { try FileDescriptor.standardError.write($0, retryOnInterrupt: true) }
                    if written != bytes.count { throw .shortWrite(path: "stderr", written: written ?? 0, length: bytes.count) }
                }
            } catch {
                metrics.recordMissedLog()
            }
        }
    }

    /// Rust's `log::Level` names, as Firecracker prints them.
    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .critical, .error: "ERROR"
        case .warning: "WARN"
        case .notice, .info: "INFO"
        case .debug: "DEBUG"
        case .trace: "TRACE"
        }
    }

    /// Local time as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn`.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        localtime_r(&seconds, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
        }
        return pad(Int(parts.tm_year) + 1900, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-" + pad(Int(parts.tm_mday), 2)
            + "T" + pad(Int(parts.tm_hour), 2) + ":" + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2)
            + "." + pad(Int(now.tv_nsec), 9)
    }
}

/// A swift-log handler writing through a `FirecrackerLogger`. Its level follows the logger's (so `PUT /logger`
/// reaches loggers made before it) unless this handler's `logLevel` was set explicitly.
public struct FirecrackerLogHandler: LogHandler {
    public let label: String
    public let logger: FirecrackerLogger
    public var metadata: Logger.Metadata = [:]
    private var levelOverride: Logger.Level?

    public init(label: String, logger: FirecrackerLogger) {
        self.label = label
        self.logger = logger
    }

    public var logLevel: Logger.Level {
        get { levelOverride ?? logger.level.minimumLevel ?? .critical }
        set { levelOverride = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = event.metadata.map { metadata.merging($0) { $1 } } ?? metadata
        // With an explicit per-handler level swift-log has already filtered by it; only Off still silences.
        logger.log(
            label: label, level: event.level, message: event.message, metadata: merged,
            source: event.source, file: event.file, line: event.line, levelChecked: levelOverride != nil)
    }
}
