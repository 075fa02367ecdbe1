/// Routes vsock packets between the guest and host Unix streams the way Firecracker's muxer does, with no
/// sockets or event loop of its own: the caller hands in streams (`VsockHostStream`) and guest packets, and
/// takes out packets for the guest's RX queue. It is single-threaded state: the device's event-loop thread
/// owns it (hence not Sendable).
///
/// - A host program connects to the device socket; the caller passes the accepted stream to
///   `addHostStream`. Its first line `CONNECT <port>\n` makes us send REQUEST to the guest; the guest's
///   RESPONSE makes us write `OK <hostport>\n` and the stream carries bytes from then on.
/// - A guest REQUEST to host port P opens the Unix listener `<socket>_P` (`openListener`); failure → RST.
/// - Packets for connections we do not know get RST (never in reply to an RST).
///
/// `service()` reads CONNECT lines and flushes guest data to the host streams; `nextPacketForGuest` reads
/// host data within the guest's credit. Connections are visited in table order, not round-robin (a fairness
/// refinement left for later), and a guest that never answers our REQUEST or SHUTDOWN is not timed out here
/// (`VsockDevice` does that, with `connectionStates` and `reset(_:)`).
public struct VsockMuxer {
    /// A connection's identity on this device: the host-side port and the guest port.
    public struct Key: Hashable, Sendable {
        public var hostPort: UInt32
        public var guestPort: UInt32
    }

    /// What happened to one packet from the guest, for logging and counters.
    public enum Delivery: Equatable, Sendable {
        /// Handed to an existing connection.
        case delivered
        /// A new guest-initiated connection to `<socket>_<port>`.
        case accepted(hostPort: UInt32)
        /// Refused with RST (no listener, unknown connection, malformed header).
        case refused
        /// Dropped without answer (truncated header, RST for nobody, wrong CIDs).
        case dropped
    }

    private struct Entry {
        var connection: VsockConnection
        let stream: any VsockHostStream
        /// Protocol bytes for the host stream ahead of guest data (the `OK <port>\n` reply).
        var toHostPrefix: [UInt8] = []
        /// Bytes read from the host stream not yet sent to the guest (what followed the CONNECT line).
        var fromHostBacklog: [UInt8] = []
        /// Host-initiated and not yet acknowledged with OK.
        var awaitingOK: Bool
        /// The host stream has been half-closed after the guest's SHUTDOWN SEND.
        var hostWriteShut = false
    }

    public let guestCID: UInt64
    public let socketPath: String
    public let maximumPayload: UInt32
    private let openListener: (String) throws -> any VsockHostStream
    private var connections: [Key: Entry] = [:]
    /// Host streams that have not finished their CONNECT line yet, with what they sent so far.
    private var handshaking: [(stream: any VsockHostStream, received: [UInt8])] = []
    /// RSTs for packets that matched no connection.
    private var orphanResets: [VsockPacketHeader] = []
    private var ports = VsockLocalPortAllocator()
    /// RSTs for nobody held at most while the guest posts no RX buffers.
    public static let maximumOrphanResets = 256
    /// Connections (established, connecting, and host programs still sending their CONNECT line) one device
    /// holds at most: Firecracker's `MAX_CONNECTIONS`. Each holds a host fd and up to `buf_alloc` (256 KiB) of
    /// guest data a slow host reader has not taken yet, so 1023 bounds a hostile guest's hold on the host at
    /// about 1023 fds — within the usual 1024 soft RLIMIT_NOFILE with the VMM's own — and 256 MiB, while being
    /// far above what a guest agent, an ssh-over-vsock or a port forwarder uses.
    public static let defaultMaximumConnections = 1023
    public let maximumConnections: Int
    /// Connections refused because `maximumConnections` were open: guest REQUESTs answered RST, host programs
    /// whose stream was closed at once.
    public private(set) var refusedConnections: UInt64 = 0

    public init(
        guestCID: UInt64, socketPath: String,
        maximumPayload: UInt32 = VsockPacketHeader.defaultMaximumPayload,
        maximumConnections: Int = VsockMuxer.defaultMaximumConnections,
        openListener: @escaping (String) throws -> any VsockHostStream
    ) {
        precondition(maximumConnections > 0, "a device must allow a connection")
        self.maximumConnections = maximumConnections
        self.guestCID = guestCID
        self.socketPath = socketPath
        self.maximumPayload = maximumPayload
        self.openListener = openListener
    }

    public var connectionCount: Int { connections.count }
    public var handshakingCount: Int { handshaking.count }

    /// A host program connected to the device socket; it must send `CONNECT <port>\n` first.
    /// Past `maximumConnections` the stream is closed at once (the host program reads end of file).
    public mutating func addHostStream(_ stream: any VsockHostStream) {
        guard !isFull else {
            refusedConnections += 1
            stream.close()
            return
        }
        handshaking.append((stream, []))
    }

    /// Whether another connection would exceed `maximumConnections`.
    private var isFull: Bool { connections.count + handshaking.count >= maximumConnections }

    // MARK: Guest → host

    /// One packet from the guest's TX queue: the 44-byte header followed by its payload.
    @discardableResult
    public mutating func receiveFromGuest(_ packet: [UInt8]) -> Delivery {
        let header: VsockPacketHeader
        do {
            header = try VsockPacketHeader(parsing: packet, maximumPayload: maximumPayload)
        } catch {
            guard let reset = error.resetReply else { return .dropped }
            return queueOrphanReset(reset) ? .refused : .dropped
        }
        // The guest may only speak as itself, and only to the host.
        guard header.source.cid == guestCID, header.destination.cid == VsockHostProtocol.hostCID else { return .dropped }
        let payload = packet.dropFirst(VsockPacketHeader.size)
        let key = Key(hostPort: header.destination.port, guestPort: header.source.port)

        // Taken out of the table while it changes, so that its buffers are not copied on write.
        if var entry = connections.removeValue(forKey: key) {
            let wasConnecting = entry.connection.state == .connecting
            entry.connection.receive(header, payload: payload)
            if wasConnecting, entry.connection.state == .established, entry.awaitingOK {
                entry.awaitingOK = false
                entry.toHostPrefix = VsockHostProtocol.okReply(hostPort: key.hostPort)
            }
            connections[key] = entry
            flushToHost(key)
            forgetFinishedConnections()
            return .delivered
        }
        if header.operation == .request, isFull {
            // Refused like a port nobody listens on: the guest's connect() fails with ECONNRESET.
            refusedConnections += 1
            guard let reset = VsockConnection.resetReply(to: header) else { return .dropped }
            return queueOrphanReset(reset) ? .refused : .dropped
        }
        if header.operation == .request {
            let path = VsockHostProtocol.hostListenerPath(socketPath: socketPath, port: header.destination.port)
            if let stream = try? openListener(path) {
                connections[key] = Entry(connection: .guestInitiated(request: header), stream: stream, awaitingOK: false)
                return .accepted(hostPort: key.hostPort)
            }
        }
        guard let reset = VsockConnection.resetReply(to: header) else { return .dropped }
        return queueOrphanReset(reset) ? .refused : .dropped
    }

    /// Queues an RST for a packet that matched no connection, unless `maximumOrphanResets` are already waiting
    /// for RX buffers: a guest that floods us with bad packets and never takes its answers must not make us
    /// hold an unbounded queue (the RST is a courtesy; the guest learns the same from the next one).
    private mutating func queueOrphanReset(_ reset: VsockPacketHeader) -> Bool {
        guard orphanResets.count < Self.maximumOrphanResets else { return false }
        orphanResets.append(reset)
        return true
    }

    // MARK: Host streams

    /// Reads pending CONNECT lines and writes guest data to the host streams. Call when a host stream is
    /// readable or writable.
    public mutating func service() {
        serviceHandshakes()
        for key in Array(connections.keys) { flushToHost(key) }
        forgetFinishedConnections()
    }

    /// What one host stream waits for: the event loop polls `descriptor` for reading and/or writing, and only
    /// when the muxer can act on the answer (so a stream the guest has no credit for is not polled at all).
    public struct HostStreamInterest: Equatable, Sendable {
        public var descriptor: Int32
        public var read: Bool
        public var write: Bool
    }

    /// The streams worth polling now. `guestCanReceive` is false while the guest has no RX buffers: host
    /// data could not go anywhere, so no stream is read. A handshaking stream is always read (its CONNECT
    /// line); a connection is read when it may send and has credit, written when it owes the host bytes.
    /// Streams without a descriptor (test fakes) are left out.
    public func hostStreamInterests(guestCanReceive: Bool) -> [HostStreamInterest] {
        var interests: [HostStreamInterest] = []
        for pending in handshaking {
            guard let descriptor = pending.stream.pollDescriptor else { continue }
            interests.append(HostStreamInterest(descriptor: descriptor, read: true, write: false))
        }
        for entry in connections.values {
            guard let descriptor = entry.stream.pollDescriptor, entry.connection.state != .closed else { continue }
            let read = guestCanReceive && entry.fromHostBacklog.isEmpty && entry.connection.canSendData
                && entry.connection.sendCredit > 0
            let write = !entry.toHostPrefix.isEmpty || !entry.connection.pendingForHost.isEmpty
            if read || write { interests.append(HostStreamInterest(descriptor: descriptor, read: read, write: write)) }
        }
        return interests
    }

    private mutating func serviceHandshakes() {
        var stillWaiting: [(stream: any VsockHostStream, received: [UInt8])] = []
        for var pending in handshaking {
            do {
                guard let bytes = try pending.stream.read(maximumCount: VsockHostProtocol.maximumConnectLineLength)
                else {
                    stillWaiting.append(pending)
                    continue
                }
                guard !bytes.isEmpty else {
                    pending.stream.close()  // gone before saying where to connect
                    continue
                }
                pending.received += bytes
                switch try VsockHostProtocol.parseConnectLine(pending.received) {
                case .incomplete:
                    stillWaiting.append(pending)
                case let .connect(port, consumed):
                    let used = Set(connections.keys.map(\.hostPort))
                    guard let hostPort = ports.allocate(isInUse: used.contains) else {
                        pending.stream.close()
                        continue
                    }
                    let key = Key(hostPort: hostPort, guestPort: port)
                    connections[key] = Entry(
                        connection: .hostInitiated(
                            local: VsockAddress(cid: VsockHostProtocol.hostCID, port: hostPort),
                            peer: VsockAddress(cid: guestCID, port: port)),
                        stream: pending.stream, fromHostBacklog: Array(pending.received.dropFirst(consumed)),
                        awaitingOK: true)
                }
            } catch {
                pending.stream.close()  // malformed line or a failed read: Firecracker just drops the stream
            }
        }
        handshaking = stillWaiting
    }

    /// Writes what the host stream is owed; a failed write resets the connection.
    private mutating func flushToHost(_ key: Key) {
        guard var entry = connections.removeValue(forKey: key) else { return }
        defer { connections[key] = entry }
        do {
            if !entry.toHostPrefix.isEmpty {
                let written = try entry.stream.write(entry.toHostPrefix[...])
                entry.toHostPrefix.removeFirst(written)
                guard entry.toHostPrefix.isEmpty else { return }
            }
            while !entry.connection.pendingForHost.isEmpty {
                let written = try entry.stream.write(entry.connection.pendingForHost[...])
                guard written > 0 else { return }
                entry.connection.didWriteToHost(written)
            }
            if !entry.hostWriteShut, entry.connection.state == .established, !entry.connection.expectsDataFromPeer {
                entry.hostWriteShut = true
                entry.stream.shutdownWrite()
            }
        } catch {
            entry.connection.reset()
        }
    }

    // MARK: Host → guest

    /// The next packet (header and payload bytes) for one RX buffer of `bufferSize` bytes, or nil when there is
    /// nothing to send. Control packets (RST, RESPONSE, credit) go before data.
    public mutating func nextPacketForGuest(bufferSize: Int) -> [UInt8]? {
        precondition(bufferSize > VsockPacketHeader.size, "an RX buffer must hold a header and some data")
        defer { forgetFinishedConnections() }
        if !orphanResets.isEmpty { return orphanResets.removeFirst().encoded }
        for key in Array(connections.keys) {
            guard var entry = connections.removeValue(forKey: key) else { continue }
            defer { connections[key] = entry }
            if let control = entry.connection.nextControlPacket() { return control.encoded }
            guard entry.connection.canSendData, entry.connection.sendCredit > 0 else { continue }
            let room = min(
                Int(entry.connection.sendCredit), Int(maximumPayload), bufferSize - VsockPacketHeader.size)
            var data: [UInt8]
            if !entry.fromHostBacklog.isEmpty {
                data = Array(entry.fromHostBacklog.prefix(room))
                entry.fromHostBacklog.removeFirst(data.count)
            } else {
                do {
                    guard let bytes = try entry.stream.read(maximumCount: room) else { continue }
                    data = bytes
                } catch {
                    entry.connection.reset()
                    if let control = entry.connection.nextControlPacket() { return control.encoded }
                    continue
                }
                if data.isEmpty {
                    // End of file: the host program is done with this connection.
                    entry.connection.shutdown(.both)
                    if let control = entry.connection.nextControlPacket() { return control.encoded }
                    continue
                }
            }
            let header = entry.connection.makeDataPacket(length: data.count)
            // The guest's buffer is full as far as we know: ask it where it stands (CREDIT_REQUEST, §5.10.6.3)
            // rather than wait for an update it may consider not yet due.
            entry.connection.requestCreditIfNeeded()
            return header.encoded + data
        }
        return nil
    }

    /// The connections and where each is, for the caller's timeouts (a REQUEST the guest never answers, a
    /// SHUTDOWN it never follows with RST: Firecracker gives up after 2 s and resets).
    public var connectionStates: [Key: VsockConnection.State] { connections.mapValues(\.connection.state) }
    /// The local shutdown flags of a connection (non-empty once the host side said it is done).
    public func localShutdown(of key: Key) -> VsockShutdownFlags? { connections[key]?.connection.localShutdown }

    /// Gives up on one connection: RST to the guest, and the host stream closes once that RST is delivered.
    public mutating func reset(_ key: Key) {
        connections[key]?.connection.reset()
    }

    /// Device reset or VMM shutdown: closes every host stream and forgets all state. The guest's driver resets
    /// its sockets on a transport reset itself, so no RSTs are sent.
    public mutating func closeAll() {
        for entry in connections.values { entry.stream.close() }
        for pending in handshaking { pending.stream.close() }
        connections.removeAll()
        handshaking.removeAll()
        orphanResets.removeAll()
    }

    private mutating func forgetFinishedConnections() {
        for (key, entry) in connections where entry.connection.isFinished {
            entry.stream.close()
            connections[key] = nil
        }
    }
}
