import Logging
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// What a socket link counted since it was made.
public struct SocketNetworkLinkStatistics: Sendable, Equatable {
    /// Guest frames written to the peer (or queued for it).
    public var framesSent: UInt64 = 0
    /// Frames from the peer handed on towards the guest.
    public var framesReceived: UInt64 = 0
    /// Guest frames dropped because no peer was connected: a cable unplugged.
    public var framesDroppedWithoutPeer: UInt64 = 0
    /// Guest frames dropped because the peer had stopped reading and the queue for it was full.
    public var framesDroppedPeerBehind: UInt64 = 0
    /// Connections made or accepted.
    public var peersConnected: UInt64 = 0
    /// Connections refused because a peer was already connected (listening side).
    public var peersRefused: UInt64 = 0
    /// Connections that ended: closed by the peer, broken, or dropped for sending something that is not a frame.
    public var peersLost: UInt64 = 0

    public init() {}
}

/// A packet the link refuses: the device should never hand it one (it checks lengths and offers no offloads).
public enum SocketNetworkLinkError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The vnet header asked for checksum or segmentation work.
    case offloadRequested(flags: UInt8, gsoType: UInt8)
    case runt(length: Int)

    public var description: String {
        switch self {
        case let .offloadRequested(flags, gsoType):
            return "a socket link carries no offloads, but the header asks for some "
                + "(flags 0x\(String(flags, radix: 16)), gso_type \(gsoType))"
        case let .runt(length): return "\(length)-byte packet is shorter than a vnet header and an Ethernet header"
        }
    }
}

/// A virtio-net backend joining two VMs over a Unix stream socket: one listens on a path, the other connects to
/// it, and Ethernet frames go both ways as `FrameStream` records (4-byte big-endian length + frame).
///
/// Frames crossing `send` / `receiveFrame` carry the 12-byte vnet header as everywhere in a `NetworkBackend`; the
/// link strips it on the way out and puts an all-zero one in front on the way in. That is only correct when
/// the device offers no offloads (`NetDevice(offloads: false)`): a header asking for checksum or GSO work is
/// refused.
///
/// One peer at a time. The listening side takes a new peer when the old one has gone (a second one while the first
/// is connected is refused and closed); the connecting side connects once at start, waiting a short while for the
/// listener, and after losing its peer connects again at most once a second (`nextReconnectAttempt`, and on a
/// send). Without a peer, the guest's frames are dropped, as on a NIC whose cable is out — and the VMM shows the
/// guest its link down (`NetDevice.setLinkUp`, on the peer change handler).
///
/// Nothing blocks: the socket is non-blocking. Frames the socket does not take at once are queued, up to
/// `maximumQueuedBytes`, and written when it becomes writable (`outputFD`, `flushOutput`); past that, new frames
/// are dropped (a peer that does not read is a congested link). Receive reads only when asked for a frame: a guest
/// without receive buffers stops the reading, the socket fills, and the peer's queue with it.
///
/// Drops are what a network does, not errors: they are counted in `statistics` and logged once when a run of them
/// starts (the next frame sent ends it), and `send` returns normally.
///
/// Threads: `send` runs on the thread serving the transmit queue, the rest on the device event loop (and a vCPU
/// thread, through the device's buffers-available handler). One lock covers the peer and both directions; it is
/// never held across anything that blocks.
public final class SocketNetworkLink: Sendable {
    /// Bytes of encoded frames kept for a peer whose socket is full, beyond its own socket buffer.
    public static let maximumQueuedBytes = 512 * 1024
    /// How long the connecting side waits at start for a listener to appear.
    public static let connectPatience: Duration = .seconds(5)
    /// How often the connecting side tries again after losing its peer.
    public static let reconnectInterval: Duration = .seconds(1)

    private enum Endpoint: Sendable {
        case listener(FileDescriptor, path: String)
        case connector(path: String)
        /// A connection made elsewhere (tests): nothing to accept or reconnect to.
        case fixed
    }

    private struct State {
        var peer: FileDescriptor?
        var decoder = FrameStreamDecoder()
        var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
        /// Encoded frames not yet taken by the socket, from `outputStart` on.
        var output: [UInt8] = []
        var outputStart = 0
        var nextConnectAttempt: ContinuousClock.Instant = .now
        var statistics = SocketNetworkLinkStatistics()
        /// Set while frames are being dropped, so that a run of drops is logged once.
        var dropping = false

        var queuedByteCount: Int { output.count - outputStart }
    }

    private let endpoint: Endpoint
    /// The socket file a listening link created, for removal when the VMM stops.
    public let socketFile: OwnedSocketFile?
    private let state: Mutex<State>
    private let peerChangeHandler = Mutex<(@Sendable () -> Void)?>(nil)
    private let logger: Logger

    /// Listens on `path` (see `UnixSocket.listen` for what may already be there); no peer yet.
    public init(listeningOn path: String, logger: Logger = Logger(label: "swiftlet.net.socket")) throws(UnixSocket.SetupError) {
        // A backlog of 1: one peer at a time; a second one waits (or is refused by the backend when accepted).
        endpoint = .listener(try UnixSocket.listen(path: path, backlog: 1), path: path)
        socketFile = OwnedSocketFile(path: path)
        state = Mutex(State())
        self.logger = logger
    }

    /// Connects to the listener on `path`, trying again for up to `patience` while nobody listens there yet (two
    /// VMs started together need not be started in order).
    public init(
        connectingTo path: String, patience: Duration = SocketNetworkLink.connectPatience,
        logger: Logger = Logger(label: "swiftlet.net.socket")
    ) throws(UnixSocket.SetupError) {
        let deadline = ContinuousClock.now + patience
        var peer: FileDescriptor
        while true {
            do {
                peer = try UnixSocket.connect(path: path)
                break
            } catch .failed(_, _, let errno)
                where [.noSuchFileOrDirectory, .connectionRefused, .resourceTemporarilyUnavailable].contains(errno) {
                guard ContinuousClock.now < deadline else { throw .nobodyListening(path: path, waited: patience, errno: errno) }
                usleep(100_000)
            }
        }
        endpoint = .connector(path: path)
        socketFile = nil
        var initial = State()
        initial.peer = peer
        initial.statistics.peersConnected = 1
        initial.nextConnectAttempt = .now + Self.reconnectInterval
        state = Mutex(initial)
        self.logger = logger
    }

    /// A link over an already connected stream socket (one end of a socketpair, in tests).
    public init(connected peer: FileDescriptor, logger: Logger = Logger(label: "swiftlet.net.socket")) {
        endpoint = .fixed
        socketFile = nil
        var initial = State()
        initial.peer = peer
        state = Mutex(initial)
        self.logger = logger
    }

    deinit {
        if case let .listener(fd, _) = endpoint { try? fd.close() }
        state.withLock { try? $0.peer?.close() }
    }

    /// Called, with no lock held, when a peer connects or goes away and when frames start waiting for the socket:
    /// the fds to watch (and `isConnected`) may have changed.
    public func setPeerChangeHandler(_ handler: (@Sendable () -> Void)?) {
        peerChangeHandler.withLock { $0 = handler }
    }

    public var statistics: SocketNetworkLinkStatistics { state.withLock { $0.statistics } }

    public var isConnected: Bool { state.withLock { $0.peer != nil } }

    private var path: String? {
        switch endpoint {
        case let .listener(_, path), let .connector(path): return path
        case .fixed: return nil
        }
    }

    // MARK: What to watch

    /// The listening socket (readable: a peer is waiting to be accepted), nil on the connecting side.
    public var listenerFD: Int32? {
        if case let .listener(fd, _) = endpoint { return fd.rawValue }
        return nil
    }

    /// The peer's socket (readable: frames for the guest, or the peer closed), nil without a peer.
    public var receiveFD: Int32? { state.withLock { $0.peer?.rawValue } }

    /// The peer's socket while frames wait for room in it (writable: call `flushOutput`), else nil.
    public var outputFD: Int32? { state.withLock { $0.queuedByteCount > 0 ? $0.peer?.rawValue : nil } }

    // MARK: Peers

    /// Takes the peers waiting on the listening socket: the first replaces a peer that has gone away; any more,
    /// while one is connected, are refused.
    public func acceptPeers() {
        guard case let .listener(listener, path) = endpoint else { return }
        var changed = false
        state.withLock { state in
            while true {
                let newcomer: FileDescriptor
                do {
                    guard let accepted = try UnixSocket.accept(listener) else { return }
                    newcomer = accepted
                } catch {
                    logger.error("socket network \(path): accept failed: \(error)")
                    return
                }
                if let current = state.peer {
                    guard UnixSocket.peerHasClosed(current) else {
                        try? newcomer.close()
                        state.statistics.peersRefused += 1
                        logger.warning("socket network \(path): refused a second peer; one is connected already")
                        continue
                    }
                    dropPeer(&state, because: "it closed the connection")
                }
                state.peer = newcomer
                state.statistics.peersConnected += 1
                changed = true
                logger.info("socket network \(path): a peer connected")
            }
        }
        if changed { notifyPeerChange() }
    }

    /// Forgets the peer and whatever was half sent or half received from it.
    private func dropPeer(_ state: inout State, because reason: String) {
        guard let peer = state.peer else { return }
        try? peer.close()
        state.peer = nil
        state.decoder.reset()
        state.output.removeAll()
        state.outputStart = 0
        state.statistics.peersLost += 1
        logger.warning("socket network\(path.map { " \($0)" } ?? ""): peer dropped: \(reason)")
    }

    private func notifyPeerChange() {
        peerChangeHandler.withLock { $0 }?()
    }

    /// Connecting side without a peer: when the next connection attempt is due; nil otherwise. Whoever runs the
    /// link's loop calls `reconnectIfDue()` then (the guest sends nothing while its link is down, so sending cannot
    /// be what retries).
    public var nextReconnectAttempt: ContinuousClock.Instant? {
        guard case .connector = endpoint else { return nil }
        return state.withLock { $0.peer == nil ? $0.nextConnectAttempt : nil }
    }

    /// Connecting side without a peer: one connection attempt, unless one was made less than a second ago.
    public func reconnectIfDue() {
        let changed = state.withLock { reconnectIfDue(&$0) }
        if changed { notifyPeerChange() }
    }

    private func reconnectIfDue(_ state: inout State) -> Bool {
        guard case let .connector(path) = endpoint, state.peer == nil, ContinuousClock.now >= state.nextConnectAttempt else {
            return false
        }
        state.nextConnectAttempt = .now + Self.reconnectInterval
        guard let peer = try? UnixSocket.connect(path: path) else { return false }
        state.peer = peer
        state.statistics.peersConnected += 1
        logger.info("socket network \(path): connected again")
        return true
    }

    // MARK: Guest → peer

    /// Sends one packet (vnet header + Ethernet frame) to the peer, as a `FrameStream` record; drops it when there
    /// is no peer or the peer has stopped reading. Never waits. Throws only for a packet the device should not
    /// have sent (too short, or asking for offloads).
    public func send(_ packet: ArraySlice<UInt8>) throws(SocketNetworkLinkError) {
        guard packet.count >= VirtioNetHeader.size + FrameStream.frameLengths.lowerBound else {
            throw .runt(length: packet.count)
        }
        let flags = packet[packet.startIndex], gsoType = packet[packet.startIndex + 1]
        guard flags & VirtioNetHeader.flagNeedsChecksum == 0, gsoType == VirtioNetHeader.gsoNone else {
            throw .offloadRequested(flags: flags, gsoType: gsoType)
        }
        let record = FrameStream.encode(packet.dropFirst(VirtioNetHeader.size))
        let changed = state.withLock { state -> Bool in
            var changed = reconnectIfDue(&state)
            guard let peer = state.peer else {
                state.statistics.framesDroppedWithoutPeer += 1
                startDropping(&state, "no peer is connected")
                return changed
            }
            if state.queuedByteCount == 0 {
                let sent: Int
                do {
                    sent = try UnixSocket.send(peer, record[...])
                } catch {
                    dropPeer(&state, because: "\(error)")
                    state.statistics.framesDroppedWithoutPeer += 1
                    startDropping(&state, "no peer is connected")
                    return true
                }
                state.statistics.framesSent += 1
                state.dropping = false
                guard sent < record.count else { return changed }
                // The socket took part of the record: the rest must follow before anything else.
                state.output.removeAll(keepingCapacity: true)
                state.output.append(contentsOf: record[sent...])
                state.outputStart = 0
                return true
            }
            guard state.queuedByteCount + record.count <= Self.maximumQueuedBytes else {
                state.statistics.framesDroppedPeerBehind += 1
                startDropping(&state, "the peer is not reading (\(state.queuedByteCount) bytes wait for it)")
                return changed
            }
            if state.outputStart > state.output.count / 2 {
                state.output.removeFirst(state.outputStart)
                state.outputStart = 0
            }
            state.output.append(contentsOf: record)
            state.statistics.framesSent += 1
            state.dropping = false
            if flush(&state) { changed = true }
            return changed
        }
        if changed { notifyPeerChange() }
    }

    private func startDropping(_ state: inout State, _ reason: String) {
        guard !state.dropping else { return }
        state.dropping = true
        logger.notice("socket network\(path.map { " \($0)" } ?? ""): dropping the guest's frames: \(reason)")
    }

    /// Writes queued records while the peer's socket takes them (call when `outputFD` is writable).
    public func flushOutput() {
        let changed = state.withLock { flush(&$0) }
        if changed { notifyPeerChange() }
    }

    /// Returns true when it dropped the peer.
    private func flush(_ state: inout State) -> Bool {
        guard let peer = state.peer, state.queuedByteCount > 0 else { return false }
        do {
            let sent = try UnixSocket.send(peer, state.output[state.outputStart...])
            state.outputStart += sent
            if state.outputStart == state.output.count {
                state.output.removeAll(keepingCapacity: true)
                state.outputStart = 0
            }
            return false
        } catch {
            dropPeer(&state, because: "\(error)")
            return true
        }
    }

    // MARK: Peer → guest

    /// Writes the next frame from the peer into `buffer` (at least `NetDevice.maximumPacketLength` bytes) behind
    /// an all-zero vnet header and returns the length of both; nil when no whole frame is waiting. Reads the socket
    /// only when no whole frame is buffered. A peer that closed, failed or sent something that is not a frame
    /// is dropped here.
    public func receiveFrame(into buffer: inout [UInt8]) -> Int? {
        var changed = false
        defer { if changed { notifyPeerChange() } }
        return state.withLock { state -> Int? in
            guard let peer = state.peer else { return nil }
            while true {
                let frame: ArraySlice<UInt8>?
                do {
                    frame = try state.decoder.next()
                } catch {
                    dropPeer(&state, because: "it sent something that is not a frame (\(error))")
                    changed = true
                    return nil
                }
                if let frame {
                    let length = VirtioNetHeader.size + frame.count
                    for index in 0..<VirtioNetHeader.size { buffer[index] = 0 }
                    buffer[VirtioNetHeader.size..<length] = frame
                    state.statistics.framesReceived += 1
                    return length
                }
                let count: Int?
                do {
                    count = try UnixSocket.receive(peer, into: &state.readBuffer)
                } catch {
                    dropPeer(&state, because: "\(error)")
                    changed = true
                    return nil
                }
                guard let count else { return nil }
                guard count > 0 else {
                    let partial = state.decoder.bufferedByteCount
                    let midFrame = partial > 0 ? " in the middle of a frame (\(partial) bytes)" : ""
                    dropPeer(&state, because: "it closed the connection" + midFrame)
                    changed = true
                    return nil
                }
                state.decoder.append(state.readBuffer[0..<count])
            }
        }
    }
}
