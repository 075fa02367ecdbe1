import SystemPackage

/// What can go wrong configuring or writing metrics and logs. Messages name the path and the call.
public enum ObservabilityError: Error, Equatable, CustomStringConvertible {
    /// `FlushMetrics` (or the periodic flush) before any `PUT /metrics` / `--metrics-path`.
    case metricsNotConfigured
    /// open(2) of a metrics or log destination failed.
    case openFailed(path: String, errno: Errno)
    /// write(2) failed (EAGAIN: a FIFO nobody drains is full).
    case writeFailed(path: String, errno: Errno)
    /// The FIFO has less free room than the line: nothing was written, so no reader sees half a line.
    case fifoFull(path: String, needed: Int, available: Int)
    /// write(2) took only part of the line.
    case shortWrite(path: String, written: Int, length: Int)
    /// An unknown logger level (Firecracker accepts Off, Trace, Debug, Info, Warn/Warning, Error in any case).
    case invalidLogLevel(String)
    /// The periodic flush thread could not be started.
    case threadCreationFailed(String)

    public var description: String {
        switch self {
        case .metricsNotConfigured:
            "metrics are not configured: set a metrics path (PUT /metrics or --metrics-path) before flushing"
        case let .openFailed(path, errno): "cannot open \(path): \(errno)"
        case let .writeFailed(path, errno): "cannot write to \(path): \(errno)"
        case let .fifoFull(path, needed, available):
            "\(path) is full (\(available) bytes free, the line needs \(needed)): is anything reading it?"
        case let .shortWrite(path, written, length): "short write to \(path): \(written) of \(length) bytes"
        case let .invalidLogLevel(level):
            "invalid log level \"\(level)\": expected one of Error, Warning, Info, Debug, Trace, Off"
        case let .threadCreationFailed(reason): "cannot start the metrics thread: \(reason)"
        }
    }
}
