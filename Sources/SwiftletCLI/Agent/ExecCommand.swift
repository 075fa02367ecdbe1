import AgentCore
import AgentProtocol
import ArgumentParser
import Swiftlet
import CAgent
import SwiftletAgentClient
#if canImport(Glibc)
import Glibc
#endif

/// `swiftlet exec [-i] [-t] NAME -- CMD ARGS...`: runs a command in a VM through its agent; stdin, stdout and
/// stderr are streamed, Ctrl-C (SIGINT) and other termination signals are forwarded, and the command's exit
/// status becomes swiftlet's (128+N when a signal N ended it; 127 when it was not found).
struct ExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command in a running VM through its guest agent.",
        discussion: """
            The guest needs swiftlet-agent (the default guest starts it) and the VM a vsock device. \
            Exit status: the command's; 127 if it was not found, 126 if it could not run; 1 for a failure to \
            reach the agent; 64 for usage errors.
            """)

    @Flag(name: .shortAndLong, help: "Keep stdin open and send it to the command.")
    var interactive = false

    @Flag(name: .shortAndLong, help: "Give the command a terminal (raw mode here while it runs).")
    var tty = false

    @Option(name: .shortAndLong, help: ArgumentHelp("An environment variable for the command (repeatable).", valueName: "NAME=VALUE"))
    var env: [String] = []

    @Option(name: .shortAndLong, help: ArgumentHelp("The command's working directory.", valueName: "dir"))
    var workdir: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("Run as this user id (and group id).", valueName: "uid[:gid]"))
    var user: String?

    @OptionGroup var endpoint: AgentEndpointOptions

    @Argument(help: "The VM's name.")
    var name: String

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
    var command: [String] = []

    private var arguments: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func validate() throws {
        guard !arguments.isEmpty else { throw ValidationError("give the command to run after --, e.g. swiftlet exec \(name) -- uname -a") }
        for entry in env where !entry.contains("=") { throw ValidationError("--env '\(entry)' is not NAME=VALUE") }
        if let user, parseUser(user) == nil { throw ValidationError("--user '\(user)' is not uid or uid:gid") }
    }

    private func parseUser(_ text: String) -> ExecRequest.User? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard let uid = UInt32(parts[0]), parts.count <= 2 else { return nil }
        if parts.count == 2 { return UInt32(parts[1]).map { .init(uid: uid, gid: $0) } }
        return .init(uid: uid, gid: uid)
    }

    func run() throws {
        do {
            let status = try execute()
            throw ExitCode(status)
        } catch let error as AgentClientError {
            printError("swiftlet: exec: \(error)")
            throw ExitCode.failure
        } catch let error as NamedVMLookup.Failure {
            printError("swiftlet: \(error)")
            throw ExitCode.failure
        }
    }

    private func execute() throws -> Int32 {
        let client = try endpoint.connect(name: name)
        // Raw while a `-t` command runs (the guest's terminal does the line editing and turns Ctrl-C into SIGINT);
        // restored afterwards, also when swiftlet ends through an error or a fatal signal.
        let terminal = tty && isatty(STDIN_FILENO) == 1 ? RawTerminal(fd: STDIN_FILENO) : nil
        var rows: UInt16 = 0, columns: UInt16 = 0
        if tty { _ = cagent_get_window_size(isatty(STDIN_FILENO) == 1 ? STDIN_FILENO : STDOUT_FILENO, &rows, &columns) }
        var environment = env
        if !environment.isEmpty && !environment.contains(where: { $0.hasPrefix("PATH=") }) {
            environment.insert("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", at: 0)
        }
        if tty && !environment.isEmpty && !environment.contains(where: { $0.hasPrefix("TERM=") }) {
            environment.append("TERM=\(getenv("TERM").map { String(cString: $0) } ?? "xterm")")
        }
        let request = ExecRequest(arguments: arguments, environment: environment, workingDirectory: workdir ?? "",
                                  user: user.flatMap(parseUser), tty: tty, rows: rows, columns: columns)
        // Signals are read from a signalfd in the loop (and forwarded) instead of ending swiftlet.
        let forwarded = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH]
        let signals = cagent_signalfd(forwarded, Int32(forwarded.count))
        defer {
            if signals >= 0 { close(signals) }
            cagent_unblock_signals(forwarded, Int32(forwarded.count))
        }
        let process = try client.exec(request)
        if !interactive { try process.closeInput() }
        let status = try pump(process, signals: signals, readInput: interactive)
        terminal?.restore()
        return status
    }

    /// Moves bytes until the command exits: stdin → the guest (while little is queued), the guest's output to
    /// stdout/stderr, signals forwarded (SIGWINCH as a window size with a TTY).
    private func pump(_ process: ExecProcess, signals: Int32, readInput: Bool) throws -> Int32 {
        var inputOpen = readInput
        while true {
            var descriptors = [pollfd(fd: process.descriptor, events: Int16(POLLIN) | (process.wantsWrite ? Int16(POLLOUT) : 0), revents: 0)]
            if signals >= 0 { descriptors.append(pollfd(fd: signals, events: Int16(POLLIN), revents: 0)) }
            let inputIndex = descriptors.count
            if inputOpen && process.queuedInput < 256 * 1024 { descriptors.append(pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)) }
            try Descriptor.poll(&descriptors, timeoutMilliseconds: -1)

            let connection = descriptors[0].revents
            if connection != 0 {
                let events = try process.service(readable: connection & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0,
                                                 writable: connection & Int16(POLLOUT) != 0)
                for event in events {
                    switch event {
                    case let .stdout(bytes): try? Descriptor.writeAll(STDOUT_FILENO, bytes[...])
                    case let .stderr(bytes): try? Descriptor.writeAll(STDERR_FILENO, bytes[...])
                    case let .failed(error): printError("swiftlet: \(error.message)")
                    case let .exited(code, _): return code
                    case .started: break
                    }
                }
            }
            if signals >= 0, descriptors[1].revents != 0 {
                while case let number = cagent_read_signal(signals), number > 0 {
                    if number == SIGWINCH {
                        var rows: UInt16 = 0, columns: UInt16 = 0
                        if tty, cagent_get_window_size(STDIN_FILENO, &rows, &columns) == 0 { try process.resize(rows: rows, columns: columns) }
                    } else {
                        try process.signal(number)
                    }
                }
            }
            if descriptors.count > inputIndex, descriptors[inputIndex].revents != 0 {
                // A read error on stdin is its end, as for `cat`.
                let read: [UInt8]?
                do { read = try Descriptor.read(STDIN_FILENO, maximum: AgentProtocol.chunkSize) } catch { read = [] }
                if let bytes = read {
                    if bytes.isEmpty {
                        inputOpen = false
                        try process.closeInput()
                    } else {
                        try process.write(bytes)
                    }
                }
            }
        }
    }
}
