#if canImport(Glibc)
import Glibc
#endif

/// Why the jailer stopped. Host calls carry the operation, the path and errno.
public enum JailError: Error, Equatable, CustomStringConvertible {
    /// A flag's value breaks a rule (the message names the flag and the rule).
    case invalid(String)
    case system(operation: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case let .invalid(message): message
        case let .system(operation, path, errno):
            "\(operation) \(path): \(String(cString: strerror(errno)))\(errno == EPERM || errno == EACCES ? " (the jailer must run as root)" : "")"
        }
    }
}
