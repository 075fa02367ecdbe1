#if canImport(Glibc)
import Glibc
#endif

/// What the named-VM commands (`run -d`, `ps`, `attach`, `stop`, `rm` ...) report when they cannot do their job.
public enum SandboxError: Error, Equatable, CustomStringConvertible {
    case invalidName(String)
    case nameInUse(name: String, running: Bool)
    case noSuchVM(name: String)
    case notRunning(name: String)
    case stillRunning(name: String)
    case stateDirectory(path: String, operation: String, errno: Int32)
    case startFailed(name: String, reason: String)
    case system(operation: String, errno: Int32)

    public var description: String {
        switch self {
        case let .invalidName(name):
            return "invalid VM name '\(name)': use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit"
        case let .nameInUse(name, running):
            return running
                ? "a VM named '\(name)' is already running (swiftlet stop \(name), or choose another --name)"
                : "a VM named '\(name)' exists (it has exited): remove it with 'swiftlet rm \(name)' or choose another --name"
        case let .noSuchVM(name): return "no VM named '\(name)' (swiftlet ps lists them)"
        case let .notRunning(name): return "the VM '\(name)' is not running"
        case let .stillRunning(name): return "the VM '\(name)' is running: stop it first (swiftlet stop \(name)) or use --force"
        case let .stateDirectory(path, operation, code):
            return "cannot \(operation) \(path): \(String(cString: strerror(code)))"
        case let .startFailed(name, reason): return "the VM '\(name)' did not start: \(reason)"
        case let .system(operation, code): return "\(operation) failed: \(String(cString: strerror(code)))"
        }
    }
}
