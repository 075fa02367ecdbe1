import AgentProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Why a connection ended or could not go on.
public enum ChannelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The other side closed the connection (at a frame boundary when `inFrame` is false).
    case closed
    case io(SystemCallError)
    case frame(FrameError)
    case timedOut

    public var description: String {
        switch self {
        case .closed: "the connection was closed"
        case let .io(error): "\(error)"
        case let .frame(error): "malformed frame: \(error)"
        case .timedOut: "timed out"
        }
    }
}

/// One protocol connection over a stream socket (vsock in the guest, the VM's Unix socket on the host, a
/// socketpair in tests). The socket is non-blocking: `send` queues and writes what the socket takes, so a poll
/// loop never blocks on a peer that does not read; the blocking calls wait with poll.
public final class FrameChannel {
    public let fd: Int32
    private var decoder = FrameDecoder()
    private var output: [UInt8] = []
    private var outputStart = 0
    /// The peer closed its side (reads return end of file).
    public private(set) var peerClosed = false

    /// Takes ownership of `fd`.
    public init(fd: Int32) throws(ChannelError) {
        self.fd = fd
        do { try Descriptor.setNonBlocking(fd) } catch { throw .io(error) }
    }

    deinit { Descriptor.close(fd) }

    /// Bytes queued for the peer.
    public var pendingOutputCount: Int { output.count - outputStart }

    /// Queues `message` and writes what the socket takes now.
    public func send(_ message: AgentMessage) throws(ChannelError) {
        output.append(contentsOf: AgentFrame.encode(message))
        try flush()
    }

    /// Queues and waits until everything queued is written.
    public func sendAndWait(_ message: AgentMessage) throws(ChannelError) {
        try send(message)
        try flushAll()
    }

    /// Writes what the socket takes now.
    public func flush() throws(ChannelError) {
        while outputStart < output.count {
            let count: Int
            do { count = try Descriptor.writeSome(fd, output[outputStart...]) } catch { throw .io(error) }
            if count == 0 { break }
            outputStart += count
        }
        if outputStart == output.count {
            output.removeAll(keepingCapacity: output.capacity <= 1 << 20)
            outputStart = 0
        } else if outputStart > 1 << 20 {
            output.removeFirst(outputStart)
            outputStart = 0
        }
    }

    public func flushAll(timeoutMilliseconds: Int32 = -1) throws(ChannelError) {
        try flush()
        while pendingOutputCount > 0 {
            let revents: Int16
            do { revents = try Descriptor.wait(fd, events: Int16(POLLOUT), timeoutMilliseconds: timeoutMilliseconds) } catch { throw .io(error) }
            if revents == 0 { throw .timedOut }
            try flush()
        }
    }

    /// The next complete message already received, without reading.
    public func nextBuffered() throws(ChannelError) -> AgentMessage? {
        do { return try decoder.next() } catch { throw .frame(error) }
    }

    /// One read of what the socket has now (call when poll says it is readable). Returns false once the peer
    /// has closed; a close inside a frame is an error.
    @discardableResult
    public func readAvailable() throws(ChannelError) -> Bool {
        let bytes: [UInt8]?
        do { bytes = try Descriptor.read(fd) } catch {
            // A reset connection (the host side went away) is a close too.
            if error.errno == ECONNRESET || error.errno == EPIPE { peerClosed = true; return false }
            throw .io(error)
        }
        guard let bytes else { return true }
        if bytes.isEmpty {
            peerClosed = true
            do { try decoder.finish() } catch { throw .frame(error) }
            return false
        }
        decoder.append(bytes)
        return true
    }

    /// Waits for the next message; nil when the peer closed the connection between frames. Flushes queued
    /// output meanwhile, so that two peers waiting for each other's answer never both hold the other's request.
    public func receive(timeoutMilliseconds: Int32 = -1) throws(ChannelError) -> AgentMessage? {
        let deadline = timeoutMilliseconds < 0 ? nil : ContinuousClock.now + .milliseconds(timeoutMilliseconds)
        while true {
            if let message = try nextBuffered() { return message }
            if peerClosed { return nil }
            var remaining: Int32 = -1
            if let deadline {
                let left = deadline - .now
                if left <= .zero { throw .timedOut }
                remaining = Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            }
            let events = Int16(POLLIN) | (pendingOutputCount > 0 ? Int16(POLLOUT) : 0)
            let revents: Int16
            do { revents = try Descriptor.wait(fd, events: events, timeoutMilliseconds: remaining) } catch { throw .io(error) }
            if revents & Int16(POLLOUT) != 0 { try flush() }
            if revents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0 { try readAvailable() }
        }
    }
}
