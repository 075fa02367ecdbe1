import AgentProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The agent's side of one connection: hello → ready, then requests one after another until the host closes
/// it. Independent of the transport, so tests drive it over a socketpair and swiftlet-agent over vsock.
public enum AgentConnection {
    public static let agentName = "swiftlet-agent 1.0"

    /// Serves `fd` (taken over, closed at the end). Never traps on what the host sends: a malformed frame gets an
    /// error frame (when the connection still works) and ends the connection.
    public static func serve(fd: Int32, log: (String) -> Void = { _ in }) {
        let channel: FrameChannel
        do { channel = try FrameChannel(fd: fd) } catch {
            Descriptor.close(fd)
            return
        }
        do {
            try serve(channel)
        } catch let error as ChannelError {
            switch error {
            case .closed: break
            case let .frame(frameError):
                log("malformed frame: \(frameError)")
                try? channel.sendAndWait(.error(AgentError(code: .protocolViolation, message: "malformed frame: \(frameError)")))
            default:
                log("connection: \(error)")
            }
        } catch {
            log("connection: \(error)")
        }
    }

    private static func serve(_ channel: FrameChannel) throws {
        guard let first = try channel.receive() else { return }
        guard case let .hello(version, _) = first else {
            try channel.sendAndWait(.error(AgentError(code: .protocolViolation, message: "expected hello, got \(first.name)")))
            return
        }
        guard version == AgentProtocol.version else {
            try channel.sendAndWait(.error(AgentError(code: .versionMismatch,
                message: "protocol version \(version) is not supported (this agent speaks \(AgentProtocol.version))")))
            return
        }
        try channel.sendAndWait(.ready(version: AgentProtocol.version, agent: agentName))
        while let message = try channel.receive() {
            switch message {
            case let .exec(request):
                try ExecSession(channel: channel, request: request).run()
            case let .copyIn(destination, name):
                try copyIn(channel, destination: destination, name: name)
            case let .copyOut(source):
                try copyOut(channel, source: source)
            case let .setClock(seconds, nanoseconds):
                var time = timespec(tv_sec: Int(seconds), tv_nsec: Int(nanoseconds))
                if clock_settime(CLOCK_REALTIME, &time) == 0 {
                    try channel.sendAndWait(.done)
                } else {
                    let error = SystemCallError("set the clock")
                    try channel.sendAndWait(.error(AgentError(code: .clockFailed, errno: error.errno, message: error.description)))
                }
            case .stdin, .stdinClose, .signal, .resize:
                // In flight when the last command ended: nobody to give them to.
                continue
            default:
                try channel.sendAndWait(.error(AgentError(code: .protocolViolation, message: "unexpected \(message.name) message")))
                return
            }
        }
    }

    /// Receives a tree. On failure the error is sent at once (so the host stops sending) and the rest of the
    /// tree is read and dropped up to its end, keeping the connection usable.
    private static func copyIn(_ channel: FrameChannel, destination: String, name: String) throws {
        var receiver: TreeReceiver?
        var failure: CopyFailure?
        do { receiver = TreeReceiver(target: try copyTarget(destination: destination, name: name)) } catch { failure = error }
        if let failure { try channel.send(.error(failure.agentError)) }
        while true {
            guard let message = try channel.receive() else { throw ChannelError.closed }
            do {
                switch message {
                case let .entry(entry): try receiver?.receive(entry)
                case let .data(bytes): try receiver?.receive(data: bytes)
                case .copyEnd:
                    try receiver?.finish()
                    if failure == nil { try channel.sendAndWait(.done) }
                    return
                default:
                    receiver?.abandon()
                    try channel.sendAndWait(.error(AgentError(code: .protocolViolation, message: "unexpected \(message.name) message during a copy")))
                    throw ChannelError.closed
                }
            } catch let error as CopyFailure {
                receiver?.abandon()
                receiver = nil
                if failure == nil {
                    failure = error
                    try channel.send(.error(error.agentError))
                }
            }
        }
    }

    /// Sends the tree at `source`; a failure part-way is an error frame in place of the rest.
    private static func copyOut(_ channel: FrameChannel, source: String) throws {
        do {
            try TreeSender(send: { message in try channel.send(message); if channel.pendingOutputCount > 1 << 20 { try channel.flushAll() } })
                .sendTree(at: source)
            try channel.flushAll()
        } catch let error as CopyFailure {
            try channel.sendAndWait(.error(error.agentError))
        }
    }
}
