#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Why the API server could not start.
public enum APIServerError: Error, Equatable, CustomStringConvertible {
    /// Another process answers on the socket (a second VMM given the same `--api-sock`).
    case socketInUse(path: String)
    /// The path exists and is not a socket: it is someone's file, left alone.
    case notASocket(path: String)
    case pathTooLong(path: String)
    case bindFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .socketInUse(path): return "the API socket \(path) is in use by another process"
        case let .notASocket(path): return "cannot create the API socket \(path): a file that is not a socket is there"
        case let .pathTooLong(path): return "the API socket path \(path) is longer than a Unix socket address allows"
        case let .bindFailed(path, reason): return "cannot listen on the API socket \(path): \(reason)"
        }
    }
}

/// The Firecracker-compatible REST API on a Unix socket.
///
/// Threads: one event loop thread does all the socket work (accept, read, parse, write) for every client;
/// requests run on the controller (a Swift actor, so on the concurrency pool), one at a time. No vCPU thread
/// ever touches the API.
public final class APIServer: Sendable {
    public let socketPath: String
    private let controller: APIController
    private let logger: Logger
    private let channel = Mutex<(any Channel)?>(nil)

    public init(socketPath: String, controller: APIController, logger: Logger = Logger(label: "swiftlet.api")) {
        self.socketPath = socketPath
        self.controller = controller
        self.logger = logger
    }

    /// Listens on `socketPath`; returns once clients can connect. A stale socket file (nobody listening) is
    /// replaced; a live one is refused.
    public func start() throws {
        try Self.clearStaleSocket(at: socketPath)
        let controller = self.controller
        // The controller's thread: sockets and requests share the one API thread.
        let group = controller.eventLoop
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            // A client may send its request and shut its write side (`nc -N`); it still gets the answer.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(APIHTTPHandler(controller: controller, logger: logger))
                }
            }
        do {
            let listening = try bootstrap.bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: false).wait()
            channel.withLock { $0 = listening }
            logger.info("API listening on \(socketPath)")
        } catch {
            throw APIServerError.bindFailed(path: socketPath, reason: "\(error)")
        }
    }

    /// Runs `body` on the API's event-loop thread: the CLI installs that thread's seccomp filter this way once
    /// the VM runs (docs/security.md).
    public func execute(onAPIThread body: @escaping @Sendable () -> Void) { controller.eventLoop.execute(body) }

    /// Stops listening and removes the socket file; connections still open are closed with the controller's
    /// thread. Not to be called from the API thread itself.
    public func stop() {
        let listening = channel.withLock { current in
            defer { current = nil }
            return current
        }
        guard let listening else { return }
        try? listening.close().wait()
        unlink(socketPath)
    }

    /// Connects to an existing socket file to tell a live server from a stale file a crashed VMM left.
    static func clearStaleSocket(at path: String) throws(APIServerError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path: path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else { throw .pathTooLong(path: path) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected == 0 { throw .socketInUse(path: path) }
        unlink(path)
    }
}
