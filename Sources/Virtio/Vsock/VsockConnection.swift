/// One vsock stream connection between a host endpoint (our side, "local") and a guest socket ("peer"), as
/// pure protocol logic: packets from the guest go in through `receive(_:payload:)`, packets for the guest come
/// out of `nextControlPacket()` and `makeDataPacket(length:)`. Bytes are carried in and out by the caller (the
/// muxer with its host Unix socket); nothing here touches a socket, a queue or guest memory.
///
/// Flow control (virtio 1.2 §5.10.6.3): each side owns a receive buffer of `buf_alloc` bytes and counts in
/// `fwd_cnt` the bytes it has taken out of it. A sender counts in `tx_cnt` the bytes it has sent and may only
/// have `peer_buf_alloc - (tx_cnt - peer_fwd_cnt)` bytes in flight. All counters wrap at 2^32 (so the
/// arithmetic is wrapping, and only differences are meaningful). Every packet carries the sender's current
/// buf_alloc and fwd_cnt, so credit information also travels piggy-backed on data and control packets.
public struct VsockConnection: Sendable {
    /// Where the connection is in its life (§5.10.6.4 connection lifecycle).
    public enum State: Equatable, Sendable {
        /// Host-initiated: we sent (or are about to send) REQUEST and wait for the guest's RESPONSE.
        case connecting
        /// Data may flow (subject to the shutdown flags).
        case established
        /// Reset by either side. A queued RST may still have to reach the guest (`nextControlPacket`).
        case closed
    }

    /// Why the connection ended in `.closed`; useful for logs and counters.
    public enum CloseReason: Equatable, Sendable {
        /// The guest sent RST (it refused a REQUEST, or closed its socket).
        case peerReset
        /// The host side asked for a reset (its stream failed or closed, or a shutdown timed out).
        case localReset
        /// Both sides shut down completely and all data was delivered.
        case shutdownComplete
        /// The guest broke the protocol; we answered with RST.
        case protocolViolation(ProtocolViolation)
    }

    /// The guest misbehaviours that make us reset a connection.
    public enum ProtocolViolation: Equatable, Sendable {
        /// RW payload beyond the credit we granted (it ignored our buf_alloc / fwd_cnt).
        case creditExceeded(inFlight: UInt32, bufferAllocation: UInt32)
        /// An op that makes no sense in the current state (REQUEST on an open connection, RW before RESPONSE).
        case unexpectedOperation(VsockOperation, State)
        /// RW data after the guest said (SHUTDOWN SEND) it would send no more.
        case dataAfterShutdown
        /// The payload handed in does not match the header's `len`.
        case lengthMismatch(header: UInt32, payload: Int)
    }

    public let local: VsockAddress
    public let peer: VsockAddress
    public private(set) var state: State
    public private(set) var closeReason: CloseReason?
    /// What we (the host side) have stopped doing, announced with SHUTDOWN.
    public private(set) var localShutdown: VsockShutdownFlags = []
    /// What the guest has stopped doing.
    public private(set) var peerShutdown: VsockShutdownFlags = []

    // MARK: Receive side (guest → host)

    /// Our buf_alloc: how many received bytes we are prepared to hold before the host stream takes them.
    public let bufferAllocation: UInt32
    /// Our fwd_cnt: bytes the host stream has accepted so far.
    public private(set) var forwardCount: UInt32 = 0
    /// The fwd_cnt the guest last heard from us; the guest's credit is computed from that.
    private var advertisedForwardCount: UInt32 = 0
    /// Total RW bytes received (the guest's tx_cnt as we have seen it).
    private var receivedCount: UInt32 = 0
    /// Received bytes not yet written to the host stream, oldest first.
    public private(set) var pendingForHost: [UInt8] = []

    // MARK: Transmit side (host → guest)

    /// The guest's buf_alloc and fwd_cnt from its most recent packet.
    public private(set) var peerBufferAllocation: UInt32 = 0
    public private(set) var peerForwardCount: UInt32 = 0
    /// Our tx_cnt: RW bytes sent to the guest.
    public private(set) var transmitCount: UInt32 = 0
    /// True between sending CREDIT_REQUEST and the guest's next packet, so we ask only once.
    private var creditRequestOutstanding = false

    /// Control packets waiting for an RX buffer, in order.
    private var controlQueue: [(operation: VsockOperation, flags: UInt32)] = []

    /// The default buf_alloc: 256 KiB, Linux's default vsock buffer size and what Firecracker advertises.
    public static let defaultBufferAllocation: UInt32 = 256 * 1024

    private init(local: VsockAddress, peer: VsockAddress, state: State, bufferAllocation: UInt32) {
        precondition(bufferAllocation > 0, "a zero buf_alloc could never receive anything")
        self.local = local
        self.peer = peer
        self.state = state
        self.bufferAllocation = bufferAllocation
    }

    /// A host program asked to connect to guest port `peer.port` (Firecracker's `CONNECT <port>`): queues the
    /// REQUEST; the connection is established when the guest answers RESPONSE (or closed if it answers RST).
    public static func hostInitiated(
        local: VsockAddress, peer: VsockAddress, bufferAllocation: UInt32 = defaultBufferAllocation
    ) -> VsockConnection {
        var connection = VsockConnection(local: local, peer: peer, state: .connecting, bufferAllocation: bufferAllocation)
        connection.controlQueue.append((.request, 0))
        return connection
    }

    /// The guest sent REQUEST and the host side accepted it (a listener at `<socket>_<port>` answered):
    /// queues the RESPONSE and is established at once. The request already tells us the guest's credit.
    public static func guestInitiated(
        request: VsockPacketHeader, bufferAllocation: UInt32 = defaultBufferAllocation
    ) -> VsockConnection {
        precondition(request.operation == .request, "guestInitiated needs the guest's REQUEST")
        var connection = VsockConnection(
            local: request.destination, peer: request.source, state: .established, bufferAllocation: bufferAllocation)
        connection.peerBufferAllocation = request.bufferAllocation
        connection.peerForwardCount = request.forwardCount
        connection.controlQueue.append((.response, 0))
        return connection
    }

    /// The RST that refuses a packet for which no connection exists (e.g. a REQUEST to a host port nobody
    /// listens on, or data for a connection we already forgot). Returns nil for an RST: never answer those.
    public static func resetReply(to header: VsockPacketHeader) -> VsockPacketHeader? {
        guard header.operation != .reset else { return nil }
        return VsockPacketHeader(source: header.destination, destination: header.source, operation: .reset)
    }

    // MARK: Credit

    /// Bytes we may still send: the guest's buf_alloc minus what is in flight (sent but not yet forwarded by
    /// the guest). A guest that shrinks its buf_alloc below what is in flight gives zero, not a wrapped value.
    public var sendCredit: UInt32 {
        let inFlight = transmitCount &- peerForwardCount
        return inFlight >= peerBufferAllocation ? 0 : peerBufferAllocation - inFlight
    }

    /// True when the host may send RW data now (credit aside).
    public var canSendData: Bool {
        state == .established && !localShutdown.contains(.send) && !peerShutdown.contains(.receive)
    }

    /// True when the host side may still deliver guest data (pending bytes or future RW packets).
    public var expectsDataFromPeer: Bool {
        state == .established && !peerShutdown.contains(.send) || !pendingForHost.isEmpty
    }

    /// True when a control packet is waiting for an RX buffer.
    public var hasControlPacket: Bool { !controlQueue.isEmpty }

    /// True when the connection can be forgotten: closed and its last RST (if any) delivered.
    public var isFinished: Bool { state == .closed && controlQueue.isEmpty }

    // MARK: Packets from the guest

    /// Handles one packet the guest sent on this connection (the muxer has matched its addresses).
    /// `payload` is the RW data (empty for other ops). Violations reset the connection and queue an RST.
    public mutating func receive(_ header: VsockPacketHeader, payload: some Collection<UInt8> = [UInt8]()) {
        precondition(
            header.source == peer && header.destination == local, "muxer routed \(header.source) to connection \(peer)")
        guard state != .closed else { return }
        // Every packet refreshes the peer's credit (§5.10.6.3).
        peerBufferAllocation = header.bufferAllocation
        peerForwardCount = header.forwardCount
        creditRequestOutstanding = false

        switch header.operation {
        case .request:
            violate(.unexpectedOperation(.request, state))
        case .response:
            guard state == .connecting else { return violate(.unexpectedOperation(.response, state)) }
            state = .established
        case .reset:
            close(.peerReset)
            controlQueue.removeAll()
        case .shutdown:
            guard state == .established else { return violate(.unexpectedOperation(.shutdown, state)) }
            peerShutdown.formUnion(header.shutdownFlags)
            finishIfFullyShutDown()
        case .readWrite:
            receiveData(header, payload: payload)
        case .creditUpdate:
            break  // the credit fields above were the whole message
        case .creditRequest:
            queueControl(.creditUpdate)
        }
    }

    private mutating func receiveData(_ header: VsockPacketHeader, payload: some Collection<UInt8>) {
        guard state == .established else { return violate(.unexpectedOperation(.readWrite, state)) }
        guard !peerShutdown.contains(.send) else { return violate(.dataAfterShutdown) }
        guard payload.count == Int(header.length) else {
            return violate(.lengthMismatch(header: header.length, payload: payload.count))
        }
        // The guest may have at most our advertised buf_alloc in flight; counting against the real fwd_cnt
        // (which is at least the advertised one) is the lenient reading that never punishes a correct guest.
        let inFlight = UInt64(receivedCount &- forwardCount) + UInt64(header.length)
        guard inFlight <= UInt64(bufferAllocation) else {
            return violate(.creditExceeded(inFlight: UInt32(clamping: inFlight), bufferAllocation: bufferAllocation))
        }
        receivedCount &+= header.length
        if localShutdown.contains(.receive) {
            // We said we would read no more: the bytes are dropped but still count as forwarded so the guest's
            // credit does not run dry (Linux does the same for a socket shut for reading).
            forwardCount &+= header.length
            queueCreditUpdateIfDue()
        } else {
            pendingForHost.append(contentsOf: payload)
        }
    }

    // MARK: The host stream

    /// The host stream accepted the first `count` bytes of `pendingForHost`. They leave our buffer, fwd_cnt
    /// moves on, and a CREDIT_UPDATE is queued when the guest's view of our free space has grown stale.
    public mutating func didWriteToHost(_ count: Int) {
        precondition(count >= 0 && count <= pendingForHost.count, "wrote \(count) of \(pendingForHost.count) bytes")
        guard count > 0 else { return }
        if count == pendingForHost.count {
            // Drop the storage, not just the bytes: a connection whose host reader has caught up holds no buffer,
            // so only connections with a slow reader hold memory (each at most buf_alloc: the credit check).
            pendingForHost = []
        } else {
            pendingForHost.removeFirst(count)
        }
        forwardCount &+= UInt32(count)
        guard state == .established else { return }
        queueCreditUpdateIfDue()
        finishIfFullyShutDown()
    }

    /// Makes the header of an RW packet carrying the next `length` bytes read from the host stream, and counts
    /// them as sent. The caller must have checked `canSendData` and kept `length` within `sendCredit`.
    public mutating func makeDataPacket(length: Int) -> VsockPacketHeader {
        precondition(canSendData, "no data may be sent in state \(state), shutdown \(localShutdown)/\(peerShutdown)")
        precondition(length > 0 && length <= Int(sendCredit), "\(length) bytes exceed credit \(sendCredit)")
        transmitCount &+= UInt32(length)
        return stamped(VsockPacketHeader(source: local, destination: peer, operation: .readWrite, length: UInt32(length)))
    }

    /// The host has data but no credit: ask the guest once for a CREDIT_UPDATE (§5.10.6.3). Linux usually
    /// sends updates on its own after reading, so this is a safety net. Does nothing while a request is out.
    public mutating func requestCreditIfNeeded() {
        guard state == .established, sendCredit == 0, !creditRequestOutstanding else { return }
        creditRequestOutstanding = true
        queueControl(.creditRequest)
    }

    /// The host side stops receiving and/or sending (e.g. its stream hit end-of-file: `.both`). Tells the
    /// guest with SHUTDOWN. The guest normally answers a full shutdown with RST once it has read everything;
    /// the caller should reset after a timeout if it does not (Firecracker waits 2 s).
    public mutating func shutdown(_ flags: VsockShutdownFlags) {
        guard state == .established else {
            if state == .connecting { reset() }
            return
        }
        let added = flags.subtracting(localShutdown)
        guard !added.isEmpty else { return }
        localShutdown.formUnion(added)
        if added.contains(.receive) {
            // Nobody will take these bytes any more; release their credit.
            forwardCount &+= UInt32(pendingForHost.count)
            pendingForHost.removeAll()
        }
        queueControl(.shutdown, flags: localShutdown.rawValue)
        finishIfFullyShutDown()
    }

    /// The host side gives up on the connection (its stream failed, or a shutdown timed out): RST the guest.
    public mutating func reset() {
        guard state != .closed else { return }
        close(.localReset)
        controlQueue = [(.reset, 0)]
    }

    // MARK: Packets for the guest

    /// The next control packet for the guest (REQUEST, RESPONSE, RST, SHUTDOWN, CREDIT_UPDATE/REQUEST), with
    /// our current credit stamped in. Control packets go before data so that an RST is never stuck behind RW.
    public mutating func nextControlPacket() -> VsockPacketHeader? {
        guard !controlQueue.isEmpty else { return nil }
        let (operation, flags) = controlQueue.removeFirst()
        return stamped(VsockPacketHeader(source: local, destination: peer, operation: operation, flags: flags))
    }

    // MARK: Helpers

    /// Every packet we send carries our buf_alloc and fwd_cnt; from then on that is what the guest knows.
    private mutating func stamped(_ header: VsockPacketHeader) -> VsockPacketHeader {
        var header = header
        header.bufferAllocation = bufferAllocation
        header.forwardCount = forwardCount
        advertisedForwardCount = forwardCount
        return header
    }

    /// Sends CREDIT_UPDATE when the guest believes less than half of our buffer is free although we have
    /// forwarded more since we last told it. Half the buffer keeps updates rare on a fast stream, and a guest
    /// that sees at least half free can always make progress, so it never waits on an update we withheld.
    private mutating func queueCreditUpdateIfDue() {
        guard forwardCount != advertisedForwardCount else { return }
        let believedFree = Int64(bufferAllocation) - Int64(receivedCount &- advertisedForwardCount)
        if believedFree < Int64(bufferAllocation / 2) { queueControl(.creditUpdate) }
    }

    /// Both directions are shut and everything the guest sent has reached the host: the connection is over.
    /// Like Linux, the side that sees the complete shutdown sends the RST that frees both ends.
    private mutating func finishIfFullyShutDown() {
        guard peerShutdown == .both || (peerShutdown.contains(.send) && localShutdown.contains(.send)),
            pendingForHost.isEmpty
        else { return }
        close(.shutdownComplete)
        controlQueue = [(.reset, 0)]
    }

    private mutating func queueControl(_ operation: VsockOperation, flags: UInt32 = 0) {
        if operation == .creditUpdate, controlQueue.contains(where: { $0.operation == .creditUpdate }) { return }
        controlQueue.append((operation, flags))
    }

    private mutating func violate(_ violation: ProtocolViolation) {
        close(.protocolViolation(violation))
        controlQueue = [(.reset, 0)]
    }

    private mutating func close(_ reason: CloseReason) {
        state = .closed
        closeReason = reason
    }
}
