import CHost
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Unix stream sockets as a network backend uses them: every fd non-blocking and close-on-exec, every failure an
/// `Errno` (with the step that failed where there are several), never SIGPIPE.
public enum UnixSocket {
    /// Why a socket could not be set up.
    public enum SetupError: Error, Equatable, Sendable, CustomStringConvertible {
        case failed(path: String, step: String, errno: Errno)
        /// Something that is not a socket is at the path: refused rather than deleted.
        case notASocket(path: String)
        /// A live listener owns the path already.
        case inUse(path: String)
        /// The connecting side waited `waited` and nobody listened; `errno` is the last attempt's.
        case nobodyListening(path: String, waited: Duration, errno: Errno)

        /// The directory part of `path`, if it exists and is a directory.
        static func existingDirectory(of path: String) -> String? {
            let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
            let name = directory.isEmpty ? "/" : directory
            var info = stat()
            guard stat(name, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return nil }
            return name
        }

        static func fileSystemHint(_ directory: String) -> String {
            if directory == "/proc" || directory.hasPrefix("/proc/") { return "procfs" }
            if directory == "/sys" || directory.hasPrefix("/sys/") { return "sysfs" }
            return "it is read-only or special"
        }

        public var description: String {
            switch self {
            case let .failed(path, step, errno):
                var text = "\(path): \(step) failed: \(errno)"
                if step == "listen", errno == .noSuchFileOrDirectory || errno == .notPermitted || errno == .readOnlyFileSystem,
                   let directory = Self.existingDirectory(of: path) {
                    // bind(2) in /proc answers ENOENT although the directory is there, /sys EPERM: say why.
                    text += " (\(directory) exists, but its file system (\(Self.fileSystemHint(directory))) does not allow "
                        + "creating a socket file there; choose a path in a writable directory such as /tmp or /run)"
                }
                return text
            case let .notASocket(path): return "\(path) exists and is not a socket; not replacing it"
            case let .inUse(path): return "\(path) is in use: another process listens on it"
            case let .nobodyListening(path, waited, errno):
                return "nobody listens on \(path) (waited \(waited); \(errno)): start the other VM with socket=\(path),listen"
            }
        }
    }

    /// Listens on `path` (`backlog` connections may wait to be accepted). A socket file left behind by a listener
    /// that is gone (connecting to it is refused) is replaced; a live listener's socket or any other file at the
    /// path is an error.
    public static func listen(path: String, backlog: Int32 = 1) throws(SetupError) -> FileDescriptor {
        var status = stat()
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path: path) }
            guard try !someoneListens(at: path) else { throw .inUse(path: path) }
            // Stale: its listener is gone. (ENOENT: removed meanwhile; bind below creates it anew.)
            guard unlink(path) == 0 || Errno(rawValue: Glibc.errno) == .noSuchFileOrDirectory else {
                throw .failed(path: path, step: "removing the stale socket", errno: Errno(rawValue: Glibc.errno))
            }
        }
        let raw = path.withCString { chost_unix_listen($0, backlog) }
        guard raw >= 0 else { throw .failed(path: path, step: "listen", errno: Errno(rawValue: Glibc.errno)) }
        return FileDescriptor(rawValue: raw)
    }

    /// Whether a listener answers at `path` (a probe connection, closed at once).
    private static func someoneListens(at path: String) throws(SetupError) -> Bool {
        do throws(SetupError) {
            let probe = try connect(path: path)
            try? probe.close()
            return true
        } catch {
            if case let .failed(_, _, errno) = error, errno == .connectionRefused || errno == .noSuchFileOrDirectory {
                return false
            }
            throw error
        }
    }

    /// Connects to the listener at `path`; never waits (see `chost_unix_connect`).
    public static func connect(path: String) throws(SetupError) -> FileDescriptor {
        let raw = path.withCString { chost_unix_connect($0) }
        guard raw >= 0 else { throw .failed(path: path, step: "connect", errno: Errno(rawValue: Glibc.errno)) }
        return FileDescriptor(rawValue: raw)
    }

    /// The next connection waiting on `listener`, nil if none is.
    public static func accept(_ listener: FileDescriptor) throws(Errno) -> FileDescriptor? {
        while true {
            let raw = chost_accept_nonblocking(listener.rawValue)
            if raw >= 0 { return FileDescriptor(rawValue: raw) }
            let error = Errno(rawValue: Glibc.errno)
            switch error {
            case .interrupted: continue
            // ECONNABORTED: that peer gave up before we took it; nothing to take.
            case .resourceTemporarilyUnavailable, .connectionAbort: return nil
            default: throw error
            }
        }
    }

    /// Sends as much of `bytes` as the socket takes now; 0 when it is full. A peer that has gone away is EPIPE
    /// (MSG_NOSIGNAL: an error, not a signal that would kill the VMM).
    public static func send(_ fd: FileDescriptor, _ bytes: ArraySlice<UInt8>) throws(Errno) -> Int {
        while true {
            let flags = Int32(MSG_NOSIGNAL | MSG_DONTWAIT)
            let sent = bytes.withUnsafeBytes { Glibc.send(fd.rawValue, $0.baseAddress, $0.count, flags) }
            if sent >= 0 { return sent }
            let error = Errno(rawValue: Glibc.errno)
            switch error {
            case .interrupted: continue
            case .resourceTemporarilyUnavailable: return 0
            default: throw error
            }
        }
    }

    /// Reads into `buffer`: the byte count, 0 at end of stream (the peer closed), nil when nothing is waiting.
    public static func receive(_ fd: FileDescriptor, into buffer: inout [UInt8]) throws(Errno) -> Int? {
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.recv(fd.rawValue, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count >= 0 { return count }
            let error = Errno(rawValue: Glibc.errno)
            switch error {
            case .interrupted: continue
            case .resourceTemporarilyUnavailable: return nil
            default: throw error
            }
        }
    }

    /// Whether the other end of a connected socket has closed (POLLHUP), without reading from it.
    public static func peerHasClosed(_ fd: FileDescriptor) -> Bool {
        var entry = pollfd(fd: fd.rawValue, events: 0, revents: 0)
        return poll(&entry, 1, 0) == 1 && entry.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0
    }
}

/// The socket file a listener of ours created. The VMM removes it when the machine stops — only if the file there
/// is still that socket (same device and inode), so a file put at the path since is left alone.
public struct OwnedSocketFile: Sendable {
    public let path: String
    private let device: UInt64
    private let inode: UInt64

    /// The socket file now at `path` (call right after listening on it); nil if there is none.
    public init?(path: String) {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else { return nil }
        self.path = path
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        Self.live.withLock { $0[path] = self }
    }

    /// Every socket file this process created and has not removed yet, so that a termination signal during
    /// start-up (before any machine owns them) can still remove them: `removeAllLive()`.
    private static let live = Mutex<[String: OwnedSocketFile]>([:])

    /// Removes every socket file of ours still there (a process ending before its machine was built).
    public static func removeAllLive() {
        for file in live.withLock({ Array($0.values) }) { file.remove() }
    }

    /// Removes the file if it is still ours.
    public func remove() {
        _ = Self.live.withLock { $0.removeValue(forKey: path) }
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK,
              UInt64(info.st_dev) == device, UInt64(info.st_ino) == inode else { return }
        _ = unlink(path)
    }
}
