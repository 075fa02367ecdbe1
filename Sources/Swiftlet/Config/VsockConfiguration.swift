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
public struct VsockConfiguration: Sendable, Equatable {
    public var guestCID: UInt32
    public var socketPath: String

    /// `socketPath_<port>` must fit a Unix socket address for any port, so the path leaves room for "_4294967295".
    public static var maximumSocketPathLength: Int { Int(chost_unix_path_maximum()) - "_4294967295".utf8.count }

    public init(guestCID: UInt32, socketPath: String) {
        self.guestCID = guestCID
        self.socketPath = socketPath
    }

    /// Parses the `--vsock` syntax: `cid=N,socket=PATH` (in either order).
    public init(parsing text: String) throws(ConfigurationError) {
        var cid: UInt32?
        var socket: String?
        for option in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            let parts = option.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 else { throw .invalidVsock(text, reason: "'\(option)' is not key=value") }
            // `cid=3,cid=4` would silently keep the last: refuse it.
            if (parts[0] == "cid" && cid != nil) || (parts[0] == "socket" && socket != nil) {
                throw .invalidVsock(text, reason: "'\(parts[0])' is given more than once")
            }
            switch parts[0] {
            case "cid":
                guard let value = UInt64(parts[1]), value <= UInt64(UInt32.max) else {
                    throw .invalidVsock(text, reason: "cid '\(parts[1])' is not a number below 2^32")
                }
                cid = UInt32(value)
            case "socket":
                socket = parts[1]
            default:
                throw .invalidVsock(text, reason: "unknown option '\(parts[0])' (expected cid, socket)")
            }
        }
        guard let cid else { throw .invalidVsock(text, reason: "no guest CID: add cid=N (3 or more)") }
        guard let socket else { throw .invalidVsock(text, reason: "no host socket: add socket=PATH") }
        self.init(guestCID: cid, socketPath: socket)
        try checkValues()
    }

    /// The checks that need no file system.
    private func checkValues() throws(ConfigurationError) {
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
    func validate() throws(ConfigurationError) {
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
