#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: what was attempted (with the path or command it concerned) and the errno.
public struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
    public var operation: String
    public var errno: Int32

    public init(_ operation: String, errno: Int32 = Glibc.errno) {
        self.operation = operation
        self.errno = errno
    }

    /// "open /x/y: No such file or directory".
    public var description: String { "\(operation): \(Self.text(for: errno))" }

    public static func text(for errno: Int32) -> String {
        guard let text = strerror(errno) else { return "errno \(errno)" }
        return String(cString: text)
    }
}
