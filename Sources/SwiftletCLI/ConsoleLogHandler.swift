import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Log lines on stderr as `swiftlet: message` (`swiftlet: warning: ...` for warnings and errors), with any
/// metadata appended as key=value. Written with one write(2) per line so they do not interleave with the
/// guest's console output mid-line more than necessary.
struct ConsoleLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = "\(label): "
        switch event.level {
        case .warning: line += "warning: "
        case .error, .critical: line += "error: "
        case .debug, .trace: line += "debug: "
        default: break
        }
        line += "\(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        if !merged.isEmpty {
            line += " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        printError(line)
    }
}
