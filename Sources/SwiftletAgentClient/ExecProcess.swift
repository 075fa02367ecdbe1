import AgentCore
import AgentProtocol
#if canImport(Glibc)
import Glibc
#endif

/// What a running command reports.
public enum ExecEvent: Equatable, Sendable {
    case started(pid: Int32)
    case stdout([UInt8])
    case stderr([UInt8])
    /// It could not be started; `exited` follows with 127 (not found) or 126.
    case failed(AgentError)
    /// The last event: the exit code (128 + N for signal N) and the signal, 0 if none.
    case exited(code: Int32, signal: Int32)
}

/// A command running in the guest. Either pull events with `nextEvent()`, or poll `descriptor` for input
/// yourself (with `wantsWrite` for output) and call `service(readable:writable:)`.
public final class ExecProcess {
    private let channel: FrameChannel
    public private(set) var finished = false

    init(channel: FrameChannel) { self.channel = channel }

    /// The connection's socket, for a caller's poll loop.
    public var descriptor: Int32 { channel.fd }
    /// Whether queued input waits for the socket to take it (poll for POLLOUT).
    public var wantsWrite: Bool { channel.pendingOutputCount > 0 }
    /// Bytes queued for the guest: stop reading input while this is large.
    public var queuedInput: Int { channel.pendingOutputCount }

    public func write(_ bytes: [UInt8]) throws(AgentClientError) {
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + AgentProtocol.chunkSize)
            try send(.stdin(Array(bytes[offset..<end])))
            offset = end
        }
    }

    public func closeInput() throws(AgentClientError) { try send(.stdinClose) }
    public func signal(_ number: Int32) throws(AgentClientError) { try send(.signal(number)) }
    public func resize(rows: UInt16, columns: UInt16) throws(AgentClientError) { try send(.resize(rows: rows, columns: columns)) }

    private func send(_ message: AgentMessage) throws(AgentClientError) {
        guard !finished else { return }
        do { try channel.send(message) } catch { throw .connection(error) }
    }

    /// Waits for the next event; nil after `exited`.
    public func nextEvent() throws(AgentClientError) -> ExecEvent? {
        guard !finished else { return nil }
        let message: AgentMessage?
        do { message = try channel.receive() } catch { throw .connection(error) }
        guard let message else { throw .connection(.closed) }
        return try event(for: message)
    }

    /// Writes queued input if `writable`, reads if `readable`; the events that completed.
    public func service(readable: Bool, writable: Bool) throws(AgentClientError) -> [ExecEvent] {
        do {
            if writable { try channel.flush() }
            if readable { try channel.readAvailable() }
        } catch {
            throw .connection(error)
        }
        var events: [ExecEvent] = []
        while !finished {
            let message: AgentMessage?
            do { message = try channel.nextBuffered() } catch { throw .connection(error) }
            guard let message else { break }
            events.append(try event(for: message))
        }
        if !finished && events.isEmpty && channel.peerClosed { throw .connection(.closed) }
        return events
    }

    private func event(for message: AgentMessage) throws(AgentClientError) -> ExecEvent {
        switch message {
        case let .started(pid): return .started(pid: pid)
        case let .stdout(bytes): return .stdout(bytes)
        case let .stderr(bytes): return .stderr(bytes)
        case let .error(error):
            guard error.code == .execFailed else { throw .agent(error) }
            return .failed(error)
        case let .exit(code, signal):
            finished = true
            return .exited(code: code, signal: signal)
        default:
            throw .unexpectedMessage(message.name)
        }
    }
}
