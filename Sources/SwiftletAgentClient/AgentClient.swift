import AgentCore
import AgentProtocol
import CAgent
#if canImport(Glibc)
import Glibc
#endif

/// A connection to swiftlet-agent in a guest, through the VM's vsock Unix socket (Firecracker's convention: the
/// host connects to the socket, writes `CONNECT <port>\n` and reads `OK <hostport>\n` once the guest accepted).
/// One request at a time; an exec takes the connection over (`ExecProcess`), so open one client per command.
public final class AgentClient {
    public let channel: FrameChannel
    /// The agent's name and version, from its ready message.
    public let agent: String

    private init(channel: FrameChannel, agent: String) {
        self.channel = channel
        self.agent = agent
    }

    /// Connects and says hello, retrying while the guest is not listening yet (it refuses the connection) until
    /// `timeout`; then fails with `.noAgent`. A missing socket fails at once.
    public static func connect(socketPath: String, port: UInt32 = AgentProtocol.defaultPort,
                               timeout: Duration = .seconds(10)) throws(AgentClientError) -> AgentClient {
        let started = ContinuousClock.now
        let deadline = started + timeout
        var lastProblem = "nothing tried"
        while true {
            let fd = cagent_unix_connect(socketPath)
            guard fd >= 0 else {
                throw .vmSocketUnavailable(path: socketPath, SystemCallError("connect \(socketPath)"))
            }
            do {
                if let client = try attempt(fd: fd, port: port, deadline: deadline, problem: &lastProblem) { return client }
            } catch let error as AgentClientError {
                throw error
            } catch {
                lastProblem = "\(error)"
            }
            if ContinuousClock.now >= deadline { throw .noAgent(port: port, waited: timeout, lastProblem: lastProblem) }
            usleep(100_000)
        }
    }

    /// Whether an agent answers hello within `timeout` (for `ps`'s readiness column): one short connection.
    public static func isReady(socketPath: String, port: UInt32 = AgentProtocol.defaultPort,
                               timeout: Duration = .milliseconds(500)) -> Bool {
        (try? connect(socketPath: socketPath, port: port, timeout: timeout)) != nil
    }

    /// One CONNECT and hello; nil (with `problem` said) when the guest refused or did not answer in time.
    private static func attempt(fd: Int32, port: UInt32, deadline: ContinuousClock.Instant,
                                problem: inout String) throws -> AgentClient? {
        var fd = fd
        defer { Descriptor.close(fd) }
        try Descriptor.writeAll(fd, Array("CONNECT \(port)\n".utf8)[...])
        guard let line = try readLine(fd, deadline: deadline) else {
            problem = "the guest refused the connection to port \(port)"
            return nil
        }
        guard line.hasPrefix("OK ") else {
            problem = "the VM's socket answered '\(line)'"
            return nil
        }
        let channel = try FrameChannel(fd: fd)
        fd = -1   // the channel owns it now
        do {
            return try hello(channel, timeoutMilliseconds: max(1, Int32((deadline - .now).components.seconds * 1000)))
        } catch .connection(.timedOut) {
            problem = "the agent accepted but did not answer hello"
        } catch .connection(.closed) {
            problem = "the connection closed before the agent's ready message"
        }
        return nil
    }

    /// A client on `fd`, a stream already connected to an agent (a socketpair in tests, any transport other
    /// than the vsock bridge): says hello and waits for ready.
    public static func connected(fd: Int32, timeoutMilliseconds: Int32 = 10_000) throws(AgentClientError) -> AgentClient {
        let channel: FrameChannel
        do { channel = try FrameChannel(fd: fd) } catch { throw .connection(error) }
        return try hello(channel, timeoutMilliseconds: timeoutMilliseconds)
    }

    private static func hello(_ channel: FrameChannel, timeoutMilliseconds: Int32) throws(AgentClientError) -> AgentClient {
        let answer: AgentMessage?
        do {
            try channel.sendAndWait(.hello(version: AgentProtocol.version, client: "swiftlet"))
            answer = try channel.receive(timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            throw .connection(error)
        }
        switch answer {
        case let .ready(_, agent)?: return AgentClient(channel: channel, agent: agent)
        case let .error(error)?: throw .agent(error)
        case nil: throw .connection(.closed)
        case let other?: throw .unexpectedMessage(other.name)
        }
    }

    /// The bridge's answer line, read a byte at a time so nothing after it is consumed; nil at end of file.
    private static func readLine(_ fd: Int32, deadline: ContinuousClock.Instant) throws -> String? {
        var line: [UInt8] = []
        while line.count < 128 {
            let left = deadline - .now
            let milliseconds = max(1, Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            if left <= .zero { throw ChannelError.timedOut }
            guard try Descriptor.wait(fd, events: Int16(POLLIN), timeoutMilliseconds: milliseconds) != 0 else { throw ChannelError.timedOut }
            guard let byte = try Descriptor.read(fd, maximum: 1) else { continue }
            if byte.isEmpty { return nil }
            if byte[0] == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte[0])
        }
        return String(decoding: line, as: UTF8.self)
    }

    private func expectDone() throws(AgentClientError) {
        let answer: AgentMessage?
        do { answer = try channel.receive() } catch { throw .connection(error) }
        switch answer {
        case .done?: return
        case let .error(error)?: throw .agent(error)
        case nil: throw .connection(.closed)
        case let other?: throw .unexpectedMessage(other.name)
        }
    }

    /// Sets the guest's CLOCK_REALTIME (to this host's time unless given).
    public func setClock(seconds: Int64? = nil, nanoseconds: UInt32 = 0) throws(AgentClientError) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let message = AgentMessage.setClock(seconds: seconds ?? Int64(now.tv_sec),
                                            nanoseconds: seconds == nil ? UInt32(now.tv_nsec) : nanoseconds)
        do { try channel.sendAndWait(message) } catch { throw .connection(error) }
        try expectDone()
    }

    /// Copies the local file or directory at `localPath` into the guest: to `destination/<its name>` when the
    /// guest's `destination` is a directory, else to `destination` itself. Streamed in chunks; modes kept.
    /// Returns the bytes of file data sent.
    @discardableResult
    public func copyIn(localPath: String, to destination: String) throws(AgentClientError) -> UInt64 {
        var sent: UInt64 = 0
        var earlyAnswer: AgentClientError?
        var sentEnd = false
        do {
            try channel.send(.copyIn(destination: destination, name: lastComponent(of: localPath)))
            try TreeSender(send: { [channel] message in
                if case let .data(bytes) = message { sent += UInt64(bytes.count) }
                try channel.send(message)
                // Keep a bounded queue, and notice an early error from the agent (a missing directory, a full
                // disk) instead of sending the whole tree for nothing.
                if channel.pendingOutputCount > 512 * 1024 { try channel.flushAll() }
                // After copy-end the answer is expectDone's to read.
                if message == .copyEnd { sentEnd = true; return }
                let revents = try Descriptor.wait(channel.fd, events: Int16(POLLIN), timeoutMilliseconds: 0)
                if revents != 0 { try channel.readAvailable() }
                if let early = try channel.nextBuffered() {
                    if case let .error(error) = early { earlyAnswer = .agent(error) } else { earlyAnswer = .unexpectedMessage(early.name) }
                    throw CopyStopped()
                }
                if channel.peerClosed { throw ChannelError.closed }
            }).sendTree(at: localPath)
            try channel.flushAll()
        } catch is CopyStopped {
            // The agent answered already (its one answer to this copy): end the tree so that it stops discarding.
            if !sentEnd { do { try channel.sendAndWait(.copyEnd) } catch { throw .connection(error) } }
            throw earlyAnswer!
        } catch let error as ChannelError {
            throw .connection(error)
        } catch {
            // A local failure part-way: end the tree (the agent then reports the short file, or accepts what was
            // complete), take its one answer, and report ours.
            let local = error as? CopyFailure ?? CopyFailure("\(error)")
            if !sentEnd { do { try channel.sendAndWait(.copyEnd) } catch { throw .connection(error) } }
            _ = try? expectDone()
            throw .local(local)
        }
        try expectDone()
        return sent
    }

    private struct CopyStopped: Error {}

    /// Copies the guest's file or directory at `source` to `localPath` (into it, under the source's name, when it
    /// is an existing directory). Returns the bytes of file data received.
    @discardableResult
    public func copyOut(source: String, to localPath: String) throws(AgentClientError) -> UInt64 {
        let target: String
        do { target = try copyTarget(destination: localPath, name: lastComponent(of: source)) } catch { throw .local(error) }
        do { try channel.sendAndWait(.copyOut(source: source)) } catch { throw .connection(error) }
        let receiver = TreeReceiver(target: target)
        defer { receiver.abandon() }
        while true {
            let message: AgentMessage?
            do { message = try channel.receive() } catch { throw .connection(error) }
            do {
                switch message {
                case let .entry(entry)?: try receiver.receive(entry)
                case let .data(bytes)?: try receiver.receive(data: bytes)
                case .copyEnd?:
                    try receiver.finish()
                    return receiver.bytesWritten
                case let .error(error)?: throw AgentClientError.agent(error)
                case nil: throw AgentClientError.connection(.closed)
                case let other?: throw AgentClientError.unexpectedMessage(other.name)
                }
            } catch let error as CopyFailure {
                throw .local(error)
            } catch let error as AgentClientError {
                throw error
            } catch {
                throw .local(CopyFailure("\(error)"))
            }
        }
    }

    /// Starts a command; the returned process carries the connection from here on.
    public func exec(_ request: ExecRequest) throws(AgentClientError) -> ExecProcess {
        do { try channel.sendAndWait(.exec(request)) } catch { throw .connection(error) }
        return ExecProcess(channel: channel)
    }

    /// Runs a command to its end with `input` as its stdin, collecting its output (for small outputs: tests,
    /// scripts). A command that could not start has status 127 or 126 and its reason in `failure`.
    public func run(_ arguments: [String], input: [UInt8] = [], environment: [String] = [],
                    workingDirectory: String = "") throws(AgentClientError) -> ExecResult {
        let process = try exec(ExecRequest(arguments: arguments, environment: environment, workingDirectory: workingDirectory))
        var offset = 0
        while offset < input.count {
            let end = min(input.count, offset + AgentProtocol.chunkSize)
            try process.write(Array(input[offset..<end]))
            offset = end
        }
        try process.closeInput()
        var result = ExecResult()
        while let event = try process.nextEvent() {
            switch event {
            case let .stdout(bytes): result.output += bytes
            case let .stderr(bytes): result.errorOutput += bytes
            case let .failed(error): result.failure = error
            case let .exited(code, signal):
                result.status = code
                result.signal = signal
                return result
            case .started: continue
            }
        }
        throw .connection(.closed)
    }
}

/// A finished command's output and status.
public struct ExecResult: Sendable {
    public var status: Int32 = 0
    /// The signal that ended it, 0 if it exited.
    public var signal: Int32 = 0
    public var output: [UInt8] = []
    public var errorOutput: [UInt8] = []
    /// Why it could not start (status 127: not found; 126: other reasons).
    public var failure: AgentError?
}
