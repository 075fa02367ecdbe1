import Testing

@testable import Virtio

/// One vsock connection as the spec describes it (virtio 1.2 §5.10.6.3–4): handshake in both directions,
/// credit-based flow control, shutdown and reset. The test plays the guest by handing in the headers a Linux
/// guest would send, and reads back what the device would put on the RX queue.
@Suite("virtio-vsock connection")
struct VsockConnectionTests {
    static let host = VsockAddress(cid: 2, port: 1 << 30)
    static let guest = VsockAddress(cid: 3, port: 52)

    /// A packet from the guest on this connection, carrying the guest's credit.
    func fromGuest(
        _ operation: VsockOperation, length: UInt32 = 0, flags: UInt32 = 0, bufAlloc: UInt32 = 65536, fwdCnt: UInt32 = 0
    ) -> VsockPacketHeader {
        VsockPacketHeader(
            source: Self.guest, destination: Self.host, operation: operation, length: length, flags: flags,
            bufferAllocation: bufAlloc, forwardCount: fwdCnt)
    }

    func drainControl(_ connection: inout VsockConnection) -> [VsockPacketHeader] {
        var packets: [VsockPacketHeader] = []
        while let packet = connection.nextControlPacket() { packets.append(packet) }
        return packets
    }

    /// A connection the guest opened and we accepted, with the RESPONSE already taken.
    func established(bufferAllocation: UInt32 = 1024, guestBufAlloc: UInt32 = 65536) -> VsockConnection {
        var connection = VsockConnection.guestInitiated(
            request: fromGuest(.request, bufAlloc: guestBufAlloc), bufferAllocation: bufferAllocation)
        _ = drainControl(&connection)
        return connection
    }

    // MARK: Handshake

    @Test("host-initiated: REQUEST goes out, the guest's RESPONSE establishes and brings its credit")
    func hostInitiatedHandshake() {
        var connection = VsockConnection.hostInitiated(local: Self.host, peer: Self.guest, bufferAllocation: 4096)
        #expect(connection.state == .connecting)
        #expect(!connection.canSendData)
        let request = connection.nextControlPacket()
        #expect(request?.operation == .request)
        #expect(request?.source == Self.host && request?.destination == Self.guest)
        #expect(request?.bufferAllocation == 4096 && request?.forwardCount == 0)
        #expect(connection.nextControlPacket() == nil)

        connection.receive(fromGuest(.response, bufAlloc: 8192))
        #expect(connection.state == .established)
        #expect(connection.canSendData)
        #expect(connection.sendCredit == 8192)
    }

    @Test("host-initiated: the guest refuses with RST (no listener on that port)")
    func hostInitiatedRefused() {
        var connection = VsockConnection.hostInitiated(local: Self.host, peer: Self.guest)
        _ = drainControl(&connection)
        connection.receive(fromGuest(.reset))
        #expect(connection.state == .closed && connection.closeReason == .peerReset)
        #expect(connection.isFinished)  // nothing to send back: an RST is never answered
    }

    @Test("guest-initiated: REQUEST accepted with RESPONSE, established at once")
    func guestInitiatedHandshake() {
        var connection = VsockConnection.guestInitiated(request: fromGuest(.request, bufAlloc: 262_144, fwdCnt: 0))
        #expect(connection.state == .established)
        #expect(connection.local == Self.host && connection.peer == Self.guest)
        #expect(connection.sendCredit == 262_144)
        let response = drainControl(&connection)
        #expect(response.map(\.operation) == [.response])
        #expect(response.first?.destination == Self.guest)
        #expect(response.first?.bufferAllocation == VsockConnection.defaultBufferAllocation)
    }

    @Test("a REQUEST to a port nobody serves is answered with RST; an RST is not")
    func resetReply() {
        let reply = VsockConnection.resetReply(to: fromGuest(.request))
        #expect(reply == VsockPacketHeader(source: Self.host, destination: Self.guest, operation: .reset))
        #expect(VsockConnection.resetReply(to: fromGuest(.reset)) == nil)
    }

    @Test("ops that do not fit the state reset the connection")
    func outOfStateOperations() {
        var early = VsockConnection.hostInitiated(local: Self.host, peer: Self.guest)
        _ = drainControl(&early)
        early.receive(fromGuest(.readWrite, length: 1), payload: [1])
        #expect(early.closeReason == .protocolViolation(.unexpectedOperation(.readWrite, .connecting)))
        #expect(drainControl(&early).map(\.operation) == [.reset])

        var open = established()
        open.receive(fromGuest(.request))
        #expect(open.closeReason == .protocolViolation(.unexpectedOperation(.request, .established)))
        #expect(drainControl(&open).map(\.operation) == [.reset])

        var again = established()
        again.receive(fromGuest(.response))
        #expect(again.state == .closed)
    }

    // MARK: Guest → host data and our credit

    @Test("guest data waits for the host stream; writing it advances fwd_cnt")
    func guestToHostData() {
        var connection = established(bufferAllocation: 1024)
        connection.receive(fromGuest(.readWrite, length: 5), payload: Array("hello".utf8))
        #expect(connection.pendingForHost == Array("hello".utf8))
        connection.didWriteToHost(2)
        #expect(connection.pendingForHost == Array("llo".utf8))
        #expect(connection.forwardCount == 2)
        // The guest still believes 1019 of 1024 bytes are free: no update worth sending yet.
        #expect(!connection.hasControlPacket)
    }

    @Test("a guest that sends beyond our buf_alloc is reset")
    func guestExceedsCredit() {
        var connection = established(bufferAllocation: 8)
        connection.receive(fromGuest(.readWrite, length: 6), payload: [UInt8](repeating: 1, count: 6))
        connection.receive(fromGuest(.readWrite, length: 3), payload: [UInt8](repeating: 2, count: 3))
        #expect(connection.closeReason == .protocolViolation(.creditExceeded(inFlight: 9, bufferAllocation: 8)))
        #expect(drainControl(&connection).map(\.operation) == [.reset])
    }

    @Test("credit returns once the host has taken the bytes, and the guest hears about it")
    func creditUpdateAfterForwarding() {
        var connection = established(bufferAllocation: 8)
        connection.receive(fromGuest(.readWrite, length: 8), payload: [UInt8](repeating: 1, count: 8))
        connection.didWriteToHost(8)
        // The guest believed 0 bytes were free; now all 8 are: tell it.
        let update = drainControl(&connection)
        #expect(update.map(\.operation) == [.creditUpdate])
        #expect(update.first?.forwardCount == 8 && update.first?.bufferAllocation == 8)
        // Counting from the real fwd_cnt, the guest may send a full buffer again.
        connection.receive(fromGuest(.readWrite, length: 8), payload: [UInt8](repeating: 2, count: 8))
        #expect(connection.state == .established)
    }

    @Test("CREDIT_REQUEST is answered with CREDIT_UPDATE carrying our fwd_cnt")
    func creditRequest() {
        var connection = established(bufferAllocation: 1024)
        connection.receive(fromGuest(.readWrite, length: 3), payload: [1, 2, 3])
        connection.didWriteToHost(3)
        connection.receive(fromGuest(.creditRequest))
        let packets = drainControl(&connection)
        #expect(packets.map(\.operation) == [.creditUpdate])
        #expect(packets.first?.forwardCount == 3)
    }

    @Test("RW length must match the payload handed in")
    func lengthMismatch() {
        var connection = established()
        connection.receive(fromGuest(.readWrite, length: 4), payload: [1, 2])
        #expect(connection.closeReason == .protocolViolation(.lengthMismatch(header: 4, payload: 2)))
    }

    // MARK: Host → guest data and the guest's credit

    @Test("the host stops at the guest's credit and resumes on CREDIT_UPDATE")
    func hostRespectsGuestCredit() {
        var connection = established(guestBufAlloc: 100)
        #expect(connection.sendCredit == 100)
        let first = connection.makeDataPacket(length: 60)
        #expect(first.operation == .readWrite && first.length == 60 && first.destination == Self.guest)
        #expect(connection.sendCredit == 40)
        _ = connection.makeDataPacket(length: 40)
        #expect(connection.sendCredit == 0)

        // Out of credit: ask once, not twice.
        connection.requestCreditIfNeeded()
        connection.requestCreditIfNeeded()
        #expect(drainControl(&connection).map(\.operation) == [.creditRequest])

        // The guest read 70 bytes and says so.
        connection.receive(fromGuest(.creditUpdate, bufAlloc: 100, fwdCnt: 70))
        #expect(connection.sendCredit == 70)
        // Data packets piggy-back credit from the guest too.
        connection.receive(fromGuest(.readWrite, length: 1, bufAlloc: 100, fwdCnt: 100), payload: [0])
        #expect(connection.sendCredit == 100)
    }

    @Test("counters wrap at 2^32 without losing credit")
    func wrappingCounters() {
        var connection = established(guestBufAlloc: 0x1_0000)
        // Push tx_cnt close to wrapping, with the guest keeping up each time.
        var sent: UInt32 = 0
        for _ in 0..<0x1_0000 {
            _ = connection.makeDataPacket(length: 0x1_0000)
            sent &+= 0x1_0000
            connection.receive(fromGuest(.creditUpdate, bufAlloc: 0x1_0000, fwdCnt: sent))
        }
        #expect(connection.transmitCount == 0)  // wrapped exactly
        #expect(connection.sendCredit == 0x1_0000)
        _ = connection.makeDataPacket(length: 16)
        #expect(connection.sendCredit == 0x1_0000 - 16)
    }

    @Test("a guest that shrinks buf_alloc below what is in flight gives zero credit, not a wrapped huge one")
    func shrunkBuffer() {
        var connection = established(guestBufAlloc: 100)
        _ = connection.makeDataPacket(length: 80)
        connection.receive(fromGuest(.creditUpdate, bufAlloc: 50, fwdCnt: 0))
        #expect(connection.sendCredit == 0)
    }

    // MARK: Shutdown and reset

    @Test("guest SHUTDOWN SEND: no more data from it; our data may still flow")
    func guestHalfClose() {
        var connection = established()
        connection.receive(fromGuest(.shutdown, flags: VsockShutdownFlags.send.rawValue))
        #expect(connection.peerShutdown == .send)
        #expect(connection.state == .established && connection.canSendData)
        #expect(!connection.expectsDataFromPeer)
        connection.receive(fromGuest(.readWrite, length: 1), payload: [1])
        #expect(connection.closeReason == .protocolViolation(.dataAfterShutdown))
    }

    @Test("guest SHUTDOWN RECEIVE: the host must stop sending")
    func guestStopsReceiving() {
        var connection = established()
        connection.receive(fromGuest(.shutdown, flags: VsockShutdownFlags.receive.rawValue))
        #expect(!connection.canSendData)
        #expect(connection.state == .established)
    }

    @Test("full guest shutdown: pending data still reaches the host, then RST frees both ends")
    func guestFullShutdown() {
        var connection = established()
        connection.receive(fromGuest(.readWrite, length: 2), payload: [7, 8])
        connection.receive(fromGuest(.shutdown, flags: VsockShutdownFlags.both.rawValue))
        #expect(connection.state == .established)  // two bytes still to deliver
        #expect(connection.pendingForHost == [7, 8])
        connection.didWriteToHost(2)
        #expect(connection.closeReason == .shutdownComplete)
        #expect(drainControl(&connection).map(\.operation) == [.reset])
        #expect(connection.isFinished)
    }

    @Test("host end-of-file: SHUTDOWN both to the guest; the guest's RST completes the close")
    func hostShutdown() {
        var connection = established()
        connection.shutdown(.both)
        let packets = drainControl(&connection)
        #expect(packets.map(\.operation) == [.shutdown])
        #expect(packets.first?.shutdownFlags == .both)
        #expect(!connection.canSendData)
        connection.shutdown(.both)  // repeated: nothing new to say
        #expect(!connection.hasControlPacket)
        connection.receive(fromGuest(.reset))
        #expect(connection.closeReason == .peerReset && connection.isFinished)
    }

    @Test("host shut for reading: guest data is dropped but still credited")
    func hostStopsReceiving() {
        var connection = established(bufferAllocation: 4)
        connection.receive(fromGuest(.readWrite, length: 2), payload: [1, 2])
        connection.shutdown(.receive)
        #expect(connection.pendingForHost.isEmpty && connection.forwardCount == 2)
        connection.receive(fromGuest(.readWrite, length: 4), payload: [1, 2, 3, 4])
        #expect(connection.state == .established && connection.forwardCount == 6)
    }

    @Test("both sides finish sending: the connection ends with RST")
    func bothSidesDone() {
        var connection = established()
        connection.receive(fromGuest(.shutdown, flags: VsockShutdownFlags.send.rawValue))
        connection.shutdown(.send)
        #expect(connection.closeReason == .shutdownComplete)
        #expect(drainControl(&connection).map(\.operation) == [.reset])
    }

    @Test("a host-side reset replaces anything queued with one RST; later packets are ignored")
    func hostReset() {
        var connection = established()
        connection.receive(fromGuest(.creditRequest))
        connection.reset()
        #expect(connection.closeReason == .localReset)
        #expect(drainControl(&connection).map(\.operation) == [.reset])
        connection.receive(fromGuest(.readWrite, length: 1), payload: [1])
        #expect(!connection.hasControlPacket && connection.isFinished)
    }

    @Test("shutdown before the guest answered the REQUEST resets instead")
    func shutdownWhileConnecting() {
        var connection = VsockConnection.hostInitiated(local: Self.host, peer: Self.guest)
        connection.shutdown(.both)
        #expect(connection.closeReason == .localReset)
        #expect(drainControl(&connection).map(\.operation) == [.reset])
    }
}
