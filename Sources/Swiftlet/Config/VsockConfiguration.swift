import CHost
#if canImport(Glibc)
import Glibc
#endif

/// A virtio-vsock device bridged to host Unix sockets, as Firecracker does it:
///
/// - the guest is `cid` (its AF_VSOCK address; 0–2 are reserved, 0xFFFFFFFF is VMADDR_CID_ANY);
/// - a host program connects to the Unix socket `socketPath`, which Swiftlet listens on, writes
///   `CONNECT <port>\n`, is answered `OK <hostport>\n`, and then talks to the guest's listener on that port;
/// - a guest connecting to CID 2 (the host), port P, reaches a host program listening on `<socketPath>_P`.
public struct VsockConfiguration: Sendable, Equatable, Codable {
    public var guestCID: UInt32
    public var socketPath: String

    /// `socketPath_<port>` must fit a Unix socket address for any port, so the path leaves room for "_4294967295".
    public static var maximumSocketPathLength: Int { Int(chost_unix_path_maximum()) - "_4294967295".utf8.count }

    public init(guestCID: UInt32, socketPath: String) {
        self.guestCID = guestCID
        self.socketPath = socketPath
    }

    /// The checks that need no file system.
    public func checkValues() throws(ConfigurationError) {
        guard guestCID >= 3, guestCID < UInt32.max else {
            throw .invalidVsock("cid=\(guestCID)", reason: "the guest CID must be at least 3 and below 4294967295 (0-2 are reserved, 4294967295 means any)")
        }
        guard !socketPath.isEmpty else { throw .invalidVsock("socket=", reason: "the socket path is empty") }
        guard !socketPath.utf8.contains(0) else { throw .invalidVsock(socketPath, reason: "the socket path contains a NUL byte") }
        guard socketPath.utf8.count <= Self.maximumSocketPathLength else {
            throw .invalidVsock(socketPath, reason: "the socket path is longer than \(Self.maximumSocketPathLength) bytes (with _PORT appended it must fit a Unix socket address)")
        }
    }

    /// Checks the values and that the socket can be created: its directory exists, and whatever is at the path
    /// already is a socket (a stale one from an earlier run is replaced; anything else is left alone).
    public func validate() throws(ConfigurationError) {
        try checkValues()
        var info = stat()
        if lstat(socketPath, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw .invalidVsock(socketPath, reason: "the path exists and is not a socket; remove it or choose another path")
            }
            return
        }
        guard errno == ENOENT else { throw .invalidVsock(socketPath, reason: String(cString: strerror(errno))) }
        let directory = socketPath.contains("/") ? String(socketPath[..<socketPath.lastIndex(of: "/")!]) : "."
        var directoryInfo = stat()
        guard stat(directory.isEmpty ? "/" : directory, &directoryInfo) == 0, directoryInfo.st_mode & S_IFMT == S_IFDIR else {
            throw .invalidVsock(socketPath, reason: "directory \(directory.isEmpty ? "/" : directory) does not exist")
        }
    }
}
