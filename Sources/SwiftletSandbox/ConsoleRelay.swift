import Swiftlet
import SystemPackage
import Virtio
#if canImport(Glibc)
import Glibc
#endif

/// The console of a VM running in the background (`swiftlet run -d`): the VMM's stdin and stdout become two pipes,
/// and one thread moves the guest's output into a bounded log (`swiftlet logs`) and to every client attached to
/// the console socket (`swiftlet attach`), and the clients' keystrokes into the guest.
///
/// Nothing here may stall the VMM: the guest's output is read as it comes (the VMM's own console buffer never
/// fills because of us); a client that reads too slowly misses output (counted, as a serial line drops what
/// nobody takes) instead of holding the others back; keystrokes a guest does not read are dropped when the pipe
/// is full.
public final class ConsoleRelay: @unchecked Sendable {
    /// The largest console.log before it is rotated to console.log.1 (so at most twice this is kept).
    public static let logLimit = 1 << 20

    private let paths: SandboxPaths
    private let outputRead: Int32
    private let inputWrite: Int32
    private let listener: FileDescriptor
    private var log: BoundedLog
    private var clients: [FileDescriptor] = []
    /// Output bytes a slow client missed.
    private(set) var droppedForClients: UInt64 = 0

    /// Creates the pipes and makes them the process's stdin and stdout, creates the console socket and the log.
    /// Call before the machine is built (it reads stdin and writes stdout from then on).
    public init(paths: SandboxPaths) throws(SandboxError) {
        self.paths = paths
        var output: [Int32] = [0, 0], input: [Int32] = [0, 0]
        guard pipe(&output) == 0, pipe(&input) == 0 else { throw .system(operation: "pipe", errno: errno) }
        for fd in output + input { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        // The VMM's side: stdout is the output pipe's write end, stdin the input pipe's read end (dup2 clears
        // CLOEXEC on the copies, which is what a child of the VMM, if any, should inherit anyway).
        guard dup2(output[1], STDOUT_FILENO) >= 0, dup2(input[0], STDIN_FILENO) >= 0 else {
            throw .system(operation: "dup2", errno: errno)
        }
        close(output[1]); close(input[0])
        outputRead = output[0]
        inputWrite = input[1]
        // A guest that does not read its input must not block the relay: extra keystrokes are dropped.
        _ = fcntl(inputWrite, F_SETFL, fcntl(inputWrite, F_GETFL) | O_NONBLOCK)
        do {
            listener = try UnixSocket.listen(path: paths.consoleSocket, backlog: 8)
        } catch {
            throw .startFailed(name: paths.name, reason: "\(error)")
        }
        log = try BoundedLog(path: paths.consoleLog, limit: Self.logLimit)
    }

    /// Starts the relay thread. It runs until the process exits.
    public func start() throws(SandboxError) {
        // A plain POSIX thread (Foundation's Thread would bring Foundation's internationalisation and ICU into the
        // static binary), with the creator's signal mask: the termination signals stay blocked here.
        do {
            try HostThread(name: "console-relay") { [self] in self.run() }.detach()
        } catch {
            throw .startFailed(name: paths.name, reason: "\(error)")
        }
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            var fds = [pollfd(fd: outputRead, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: listener.rawValue, events: Int16(POLLIN), revents: 0)]
            for client in clients { fds.append(pollfd(fd: client.rawValue, events: Int16(POLLIN), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[0].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(outputRead, $0.baseAddress, $0.count) }
                if count == 0 { return }   // the VMM closed its stdout: it is exiting
                if count > 0 { relayOutput(buffer[0..<count]) }
            }
            if fds[1].revents != 0, let client = try? UnixSocket.accept(listener) {
                clients.append(client)
            }
            var closed: [FileDescriptor] = []
            for (index, entry) in fds.enumerated().dropFirst(2) where entry.revents != 0 {
                let client = clients[index - 2]
                var input = [UInt8](repeating: 0, count: 4096)
                do {
                    guard let count = try UnixSocket.receive(client, into: &input) else { continue }   // nothing yet
                    if count == 0 { closed.append(client); continue }   // the client detached
                    input.withUnsafeBytes { _ = write(inputWrite, $0.baseAddress, count) }
                } catch {
                    closed.append(client)
                }
            }
            for client in closed { drop(client) }
        }
    }

    private func relayOutput(_ bytes: ArraySlice<UInt8>) {
        log.append(bytes)
        var gone: [FileDescriptor] = []
        for client in clients {
            do {
                let sent = try UnixSocket.send(client, bytes)
                droppedForClients += UInt64(bytes.count - sent)
            } catch {
                gone.append(client)
            }
        }
        for client in gone { drop(client) }
    }

    private func drop(_ client: FileDescriptor) {
        clients.removeAll { $0 == client }
        try? client.close()
    }
}

/// An append-only log file that keeps at most `limit` bytes in the current file and the previous `limit` in
/// `path.1`, so a chatty guest cannot fill the disk.
struct BoundedLog {
    let path: String
    let limit: Int
    private var fd: Int32
    private var size: Int

    init(path: String, limit: Int) throws(SandboxError) {
        self.path = path
        self.limit = limit
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .stateDirectory(path: path, operation: "create", errno: errno) }
        var info = stat()
        size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
    }

    mutating func append(_ bytes: ArraySlice<UInt8>) {
        var rest = bytes
        while !rest.isEmpty {
            if size >= limit { rotate() }
            let room = Swift.max(limit - size, 1)
            let chunk = rest.prefix(room)
            let written = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            // A failing log (a full disk) loses console output, never the VM.
            guard written > 0 else { return }
            size += written
            rest = rest.dropFirst(written)
        }
    }

    /// console.log becomes console.log.1 (replacing the older one) and a new console.log starts.
    private mutating func rotate() {
        rename(path, path + ".1")
        let reopened = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o600)
        guard reopened >= 0 else { return }
        close(fd)
        fd = reopened
        size = 0
    }
}
