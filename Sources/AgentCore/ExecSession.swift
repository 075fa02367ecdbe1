import AgentProtocol
import CAgent
#if canImport(Glibc)
import Glibc
#endif

/// Runs one `exec` request for a connection: starts the command with pipes (or a pty), then one poll loop moves
/// bytes both ways — the connection's stdin frames into the command, its output into stdout/stderr frames —
/// delivers signals and window sizes, and ends with the exit frame once the process has ended (a pidfd says
/// when) and its output is drained.
///
/// Flow control: output is read from the command only while less than `outputLimit` waits for the peer, and
/// stdin frames are read from the connection only while less than `inputLimit` waits for the command; so a slow
/// reader on either side holds the other back instead of growing a buffer without bound, and the connection is
/// still read for signals while the command does not read its input only until that limit.
final class ExecSession {
    /// The size a command's pty gets: the request's, or 24x80 where it gave 0 rows or columns (no terminal there).
    static func terminalSize(rows: UInt16, columns: UInt16) -> (rows: UInt16, columns: UInt16) {
        rows == 0 || columns == 0 ? (24, 80) : (rows, columns)
    }

    static let outputLimit = 256 * 1024
    static let inputLimit = 256 * 1024
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    private let channel: FrameChannel
    private let request: ExecRequest
    private var pid: pid_t = 0
    private var pidfd: Int32 = -1
    /// Where stdin frames go: a pipe's write end, or the pty master.
    private var inputFD: Int32 = -1
    private var outputFD: Int32 = -1
    private var errorFD: Int32 = -1
    private var pendingInput: [UInt8] = []
    private var closeInputWhenWritten = false

    init(channel: FrameChannel, request: ExecRequest) {
        self.channel = channel
        self.request = request
    }

    deinit {
        if inputFD != outputFD { Descriptor.close(inputFD) }
        Descriptor.close(outputFD)
        Descriptor.close(errorFD)
        Descriptor.close(pidfd)
    }

    /// Runs the command to its end. Throws only when the connection failed (the command is then killed).
    func run() throws(ChannelError) {
        do {
            try start()
        } catch let failure as Spawner.Failure {
            let program = request.arguments[0]
            let code: Int32 = failure.step == 6 && failure.errno == ENOENT ? 127 : 126
            let what = failure.step == 4 ? "exec: \(program): cannot change to \(request.workingDirectory)"
                : failure.step == 5 ? "exec: \(program): cannot switch to the user" : "exec: \(program)"
            let message = "\(what): \(SystemCallError.text(for: failure.errno))"
            try channel.send(.error(AgentError(code: .execFailed, errno: failure.errno, message: message)))
            try channel.sendAndWait(.exit(code: code, signal: 0))
            return
        } catch let error as SystemCallError {
            try channel.send(.error(AgentError(code: .execFailed, errno: error.errno, message: "exec: \(error)")))
            try channel.sendAndWait(.exit(code: 126, signal: 0))
            return
        } catch {
            return
        }
        try channel.send(.started(pid: pid))
        do {
            try loop()
        } catch {
            // The connection is gone: nobody will see the output; end the command rather than leave it orphaned.
            killProcessGroup(SIGKILL)
            _ = reap()
            throw error
        }
    }

    private func start() throws {
        let environment = request.environment.isEmpty ? defaultEnvironment() : request.environment
        let directory = request.workingDirectory.isEmpty ? "/" : request.workingDirectory
        var childEnds: [Int32] = []
        defer { for fd in childEnds { Descriptor.close(fd) } }
        let standard: Spawner.Standard
        if request.tty {
            var master: Int32 = -1, slave: Int32 = -1
            // 0 rows or columns: the host side has no terminal to take a size from (a script, a pipe). A pty of 0x0
            // breaks programs that ask for its size (busybox's `stty size` fails, editors draw nothing), so it gets
            // a VT100's 24x80 instead.
            let (rows, columns) = ExecSession.terminalSize(rows: request.rows, columns: request.columns)
            guard cagent_open_pty(&master, &slave, rows, columns) == 0 else { throw SystemCallError("open a pty") }
            childEnds = [slave]
            (inputFD, outputFD) = (master, master)
            standard = .init(input: slave, output: slave, error: slave)
        } else {
            let input = try Descriptor.pipe(), output = try Descriptor.pipe(), error = try Descriptor.pipe()
            childEnds = [input.read, output.write, error.write]
            (inputFD, outputFD, errorFD) = (input.write, output.read, error.read)
            for fd in [inputFD, outputFD, errorFD] { try Descriptor.setNonBlocking(fd) }
            standard = .init(input: input.read, output: output.write, error: error.write)
        }
        pid = try Spawner.spawn(arguments: request.arguments, environment: environment, workingDirectory: directory,
                                user: request.user.map { ($0.uid, $0.gid) }, standard: standard, tty: request.tty)
        pidfd = cagent_pidfd_open(pid)
        guard pidfd >= 0 else {
            let error = SystemCallError("pidfd_open")
            killProcessGroup(SIGKILL)
            _ = reap()
            throw error
        }
    }

    private func defaultEnvironment() -> [String] {
        var environment = ["PATH=\(Self.defaultPath)", "HOME=/root"]
        if request.tty { environment.append("TERM=xterm") }
        return environment
    }

    private enum Slot { case connection, input, output, error, process }

    private func loop() throws(ChannelError) {
        while true {
            // Frames that arrived together with the exec request (a client sends its stdin and stdin-close right
            // behind it) sit in the channel's buffer already; poll would never report them, and the command would
            // wait for input that has come.
            try handleMessages()
            var descriptors: [pollfd] = []
            var slots: [Slot] = []
            func watch(_ fd: Int32, _ events: Int16, _ slot: Slot) {
                descriptors.append(pollfd(fd: fd, events: events, revents: 0))
                slots.append(slot)
            }
            var connectionEvents: Int16 = channel.pendingOutputCount > 0 ? Int16(POLLOUT) : 0
            if pendingInput.count < Self.inputLimit && !channel.peerClosed { connectionEvents |= Int16(POLLIN) }
            if connectionEvents != 0 { watch(channel.fd, connectionEvents, .connection) }
            let outputRoom = channel.pendingOutputCount < Self.outputLimit
            if outputFD >= 0 && outputRoom { watch(outputFD, Int16(POLLIN), .output) }
            if errorFD >= 0 && outputRoom { watch(errorFD, Int16(POLLIN), .error) }
            if inputFD >= 0 && !pendingInput.isEmpty && inputFD != outputFD { watch(inputFD, Int16(POLLOUT), .input) }
            if inputFD >= 0 && !pendingInput.isEmpty && inputFD == outputFD {
                // The pty master is both: ask for POLLOUT on its output entry (or add one if that is not watched).
                if let index = slots.firstIndex(of: .output) { descriptors[index].events |= Int16(POLLOUT) } else { watch(inputFD, Int16(POLLOUT), .input) }
            }
            watch(pidfd, Int16(POLLIN), .process)
            do { try Descriptor.poll(&descriptors, timeoutMilliseconds: -1) } catch { throw .io(error) }

            var exited = false
            for (descriptor, slot) in zip(descriptors, slots) where descriptor.revents != 0 {
                let revents = descriptor.revents
                switch slot {
                case .connection:
                    if revents & Int16(POLLOUT) != 0 { try channel.flush() }
                    if revents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
                        try channel.readAvailable()
                        try handleMessages()
                        if channel.peerClosed { throw .closed }
                    }
                case .input:
                    writeInput()
                case .output:
                    if revents & Int16(POLLOUT) != 0 { writeInput() }
                    if revents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0 { try forward(from: &outputFD, as: { .stdout($0) }, once: true) }
                case .error:
                    try forward(from: &errorFD, as: { .stderr($0) }, once: true)
                case .process:
                    exited = true
                }
            }
            if exited {
                let status = reap()
                // What the command wrote before it ended is in the pipe (or the pty) already: send all of it.
                try forward(from: &outputFD, as: { .stdout($0) }, once: false)
                try forward(from: &errorFD, as: { .stderr($0) }, once: false)
                let signal: Int32 = (status & 0x7F) != 0 && (status & 0x7F) != 0x7F ? status & 0x7F : 0
                let code: Int32 = signal != 0 ? 128 + signal : (status >> 8) & 0xFF
                try channel.sendAndWait(.exit(code: code, signal: signal))
                return
            }
        }
    }

    /// Reads `fd` and sends what it gave: one read (`once`), or until it has nothing more now. Closes it at
    /// end of file (`fd` becomes -1; for the pty master, which is also the input, input goes with it).
    private func forward(from fd: inout Int32, as message: ([UInt8]) -> AgentMessage, once: Bool) throws(ChannelError) {
        while fd >= 0 {
            let bytes: [UInt8]?
            do { bytes = try Descriptor.read(fd, maximum: AgentProtocol.chunkSize) } catch { bytes = [] }
            guard let bytes else { return }
            if bytes.isEmpty {
                if fd == inputFD { inputFD = -1 }
                Descriptor.close(fd)
                fd = -1
                return
            }
            try channel.send(message(bytes))
            if once { return }
            if channel.pendingOutputCount >= Self.outputLimit { try channel.flushAll() }
        }
    }

    private func handleMessages() throws(ChannelError) {
        while let message = try channel.nextBuffered() {
            switch message {
            case let .stdin(bytes):
                if inputFD >= 0 && !closeInputWhenWritten { pendingInput.append(contentsOf: bytes); writeInput() }
            case .stdinClose:
                closeInputWhenWritten = true
                writeInput()
            case let .signal(number):
                killProcessGroup(number)
            case let .resize(rows, columns):
                if request.tty && outputFD >= 0 { _ = cagent_set_window_size(outputFD, rows, columns) }
            default:
                try channel.send(.error(AgentError(code: .protocolViolation, message: "unexpected message during exec: \(message.name)")))
                throw .closed
            }
        }
    }

    /// Writes pending input the command takes now; closes its input once asked to and everything is written.
    /// A command that closed its input (EPIPE) just loses the rest, as with a shell pipe.
    private func writeInput() {
        guard inputFD >= 0 else { pendingInput.removeAll(); return }
        if !pendingInput.isEmpty {
            do {
                let count = try Descriptor.writeSome(inputFD, pendingInput[...])
                pendingInput.removeFirst(count)
            } catch {
                pendingInput.removeAll()
            }
        }
        guard closeInputWhenWritten && pendingInput.isEmpty else { return }
        if request.tty {
            // A pty has no half-close: end of input is the terminal's EOF character at the start of a line.
            pendingInput = [0x04]
            closeInputWhenWritten = false
            writeInput()
            closeInputWhenWritten = false
            inputFD = -1
        } else {
            Descriptor.close(inputFD)
            inputFD = -1
        }
    }

    /// Signals the command's process group (it leads one: a session with a TTY, a group without), or the
    /// process alone if the group is gone.
    private func killProcessGroup(_ signal: Int32) {
        guard pid > 0 else { return }
        if kill(-pid, signal) != 0 { _ = kill(pid, signal) }
    }

    /// waitpid's raw status.
    private func reap() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 0 }
        }
        return status
    }
}

extension AgentMessage {
    /// The message's name for errors ("exec", "stdin", ...).
    public var name: String {
        switch self {
        case .hello: "hello"
        case .ready: "ready"
        case .exec: "exec"
        case .started: "started"
        case .stdin: "stdin"
        case .stdinClose: "stdin-close"
        case .stdout: "stdout"
        case .stderr: "stderr"
        case .signal: "signal"
        case .resize: "resize"
        case .exit: "exit"
        case .copyIn: "copy-in"
        case .copyOut: "copy-out"
        case .entry: "entry"
        case .data: "data"
        case .copyEnd: "copy-end"
        case .done: "done"
        case .setClock: "set-clock"
        case .error: "error"
        }
    }
}
