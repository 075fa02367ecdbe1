import Testing

@testable import Virtio

/// The muxer end to end with fake host streams: Firecracker's CONNECT/OK handshake, guest connections to
/// `<socket>_<port>`, data both ways within credit, end of file and resets, and packets for nobody.
@Suite("virtio-vsock muxer")
struct VsockMuxerTests {
    /// A host Unix stream: `incoming` is what the host program has written, `written` what it has received.
    /// @unchecked Sendable: a test drives it from one thread.
    final class FakeStream: VsockHostStream, @unchecked Sendable {
        var incoming: [UInt8]
        var endOfFile = false
        var written: [UInt8] = []
        /// Accept at most this many bytes per write (nil: everything).
        var writeLimit: Int?
        var closed = false
        var writeShut = false
        /// What `pollDescriptor` reports (nil: a stream the caller services directly).
        var descriptor: Int32?
        var pollDescriptor: Int32? { closed ? nil : descriptor }

        init(_ text: String = "") { incoming = Array(text.utf8) }

        func read(maximumCount: Int) throws -> [UInt8]? {
            if incoming.isEmpty { return endOfFile ? [] : nil }
            let bytes = Array(incoming.prefix(maximumCount))
            incoming.removeFirst(bytes.count)
            return bytes
        }

        func write(_ bytes: ArraySlice<UInt8>) throws -> Int {
            let count = min(bytes.count, writeLimit ?? bytes.count)
            written += bytes.prefix(count)
            return count
        }

        func shutdownWrite() { writeShut = true }
        func close() { closed = true }
    }

    static let guestCID: UInt64 = 3
    static let firstHostPort = VsockLocalPortAllocator.firstPort

    /// A packet as the guest's driver would put it on the TX queue.
    func guestPacket(
        _ operation: VsockOperation, from guestPort: UInt32, to hostPort: UInt32, payload: [UInt8] = [],
        bufAlloc: UInt32 = 65536, fwdCnt: UInt32 = 0, flags: UInt32 = 0, cid: UInt64 = guestCID
    ) -> [UInt8] {
        VsockPacketHeader(
            source: VsockAddress(cid: cid, port: guestPort), destination: VsockAddress(cid: 2, port: hostPort),
            operation: operation, length: UInt32(payload.count), flags: flags, bufferAllocation: bufAlloc,
            forwardCount: fwdCnt
        ).encoded + payload
    }

    /// The next RX packet, split into header and payload.
    func next(_ muxer: inout VsockMuxer, bufferSize: Int = 4096) throws -> (VsockPacketHeader, [UInt8])? {
        guard let bytes = muxer.nextPacketForGuest(bufferSize: bufferSize) else { return nil }
        let header = try VsockPacketHeader(parsing: bytes)
        return (header, Array(bytes.dropFirst(VsockPacketHeader.size)))
    }

    func muxer(listeners: [String: FakeStream] = [:]) -> VsockMuxer {
        VsockMuxer(guestCID: Self.guestCID, socketPath: "/run/vm.vsock") { path in
            guard let stream = listeners[path] else { throw VsockConnectLineError.unknownCommand(path) }
            return stream
        }
    }

    @Test("host program: CONNECT 52 → REQUEST; guest RESPONSE → OK <hostport>; then bytes flow")
    func hostInitiated() throws {
        var muxer = muxer()
        let host = FakeStream("CONNECT 52\nhello")
        muxer.addHostStream(host)
        muxer.service()
        #expect(muxer.connectionCount == 1 && muxer.handshakingCount == 0)

        let (request, _) = try #require(try next(&muxer))
        #expect(request.operation == .request)
        #expect(request.source == VsockAddress(cid: 2, port: Self.firstHostPort))
        #expect(request.destination == VsockAddress(cid: 3, port: 52))
        #expect(host.written.isEmpty)  // no OK before the guest accepted

        #expect(muxer.receiveFromGuest(guestPacket(.response, from: 52, to: Self.firstHostPort)) == .delivered)
        #expect(host.written == Array("OK 1073741824\n".utf8))

        // "hello" followed the CONNECT line in the same read; it is the first data for the guest.
        let (data, payload) = try #require(try next(&muxer))
        #expect(data.operation == .readWrite && payload == Array("hello".utf8))
        #expect(try next(&muxer) == nil)

        muxer.receiveFromGuest(guestPacket(.readWrite, from: 52, to: Self.firstHostPort, payload: Array("hi!".utf8)))
        #expect(host.written == Array("OK 1073741824\nhi!".utf8))
    }

    @Test("the guest refuses (no listener on its port): the host stream is closed")
    func hostInitiatedRefused() throws {
        var muxer = muxer()
        let host = FakeStream("CONNECT 9\n")
        muxer.addHostStream(host)
        muxer.service()
        _ = try next(&muxer)
        muxer.receiveFromGuest(guestPacket(.reset, from: 9, to: Self.firstHostPort))
        #expect(try next(&muxer) == nil)
        #expect(host.closed && muxer.connectionCount == 0)
    }

    @Test("malformed CONNECT lines and early end of file close the stream", arguments: ["LISTEN 5\n", "CONNECT x\n"])
    func badConnectLine(line: String) {
        var muxer = muxer()
        let host = FakeStream(line)
        muxer.addHostStream(host)
        muxer.service()
        #expect(host.closed && muxer.connectionCount == 0 && muxer.handshakingCount == 0)
    }

    @Test("a CONNECT line split across reads waits for the rest")
    func splitConnectLine() {
        var muxer = muxer()
        let host = FakeStream("CONN")
        muxer.addHostStream(host)
        muxer.service()
        #expect(muxer.handshakingCount == 1)
        host.incoming = Array("ECT 52\n".utf8)
        muxer.service()
        #expect(muxer.connectionCount == 1 && muxer.handshakingCount == 0)

        let silent = FakeStream()
        silent.endOfFile = true
        muxer.addHostStream(silent)
        muxer.service()
        #expect(silent.closed && muxer.handshakingCount == 0)
    }

    @Test("guest connects to host port 1234: the listener at <socket>_1234 gets the stream")
    func guestInitiated() throws {
        let listener = FakeStream()
        var muxer = muxer(listeners: ["/run/vm.vsock_1234": listener])
        #expect(muxer.receiveFromGuest(guestPacket(.request, from: 40000, to: 1234)) == .accepted(hostPort: 1234))
        let (response, _) = try #require(try next(&muxer))
        #expect(response.operation == .response)
        #expect(response.destination == VsockAddress(cid: 3, port: 40000))

        muxer.receiveFromGuest(guestPacket(.readWrite, from: 40000, to: 1234, payload: Array("ping".utf8)))
        #expect(listener.written == Array("ping".utf8))
        listener.incoming = Array("pong".utf8)
        let (data, payload) = try #require(try next(&muxer))
        #expect(data.operation == .readWrite && data.source.port == 1234 && payload == Array("pong".utf8))
    }

    @Test("no listener, unknown connections and bad headers are answered with RST; some things only dropped")
    func refusals() throws {
        var muxer = muxer()
        #expect(muxer.receiveFromGuest(guestPacket(.request, from: 1, to: 80)) == .refused)
        #expect(muxer.receiveFromGuest(guestPacket(.readWrite, from: 1, to: 80, payload: [1])) == .refused)
        var badOp = guestPacket(.request, from: 1, to: 80)
        badOp[30] = 99
        #expect(muxer.receiveFromGuest(badOp) == .refused)
        for _ in 0..<3 {
            let (reset, _) = try #require(try next(&muxer))
            #expect(reset.operation == .reset && reset.destination == VsockAddress(cid: 3, port: 1))
        }
        #expect(muxer.receiveFromGuest(guestPacket(.reset, from: 1, to: 80)) == .dropped)
        #expect(muxer.receiveFromGuest([1, 2, 3]) == .dropped)
        #expect(muxer.receiveFromGuest(guestPacket(.request, from: 1, to: 80, cid: 7)) == .dropped)
        #expect(try next(&muxer) == nil)
    }

    @Test("host data stops at the guest's credit and resumes after its CREDIT_UPDATE")
    func creditLimitsHostData() throws {
        let listener = FakeStream("0123456789")
        var muxer = muxer(listeners: ["/run/vm.vsock_7": listener])
        muxer.receiveFromGuest(guestPacket(.request, from: 5, to: 7, bufAlloc: 4))
        _ = try next(&muxer)  // RESPONSE
        let (_, first) = try #require(try next(&muxer))
        #expect(first == Array("0123".utf8))
        // Out of credit: one CREDIT_REQUEST, then nothing; the rest stays in the socket.
        let (request, _) = try #require(try next(&muxer))
        #expect(request.operation == .creditRequest)
        #expect(try next(&muxer) == nil)
        #expect(listener.incoming == Array("456789".utf8))

        muxer.receiveFromGuest(guestPacket(.creditUpdate, from: 5, to: 7, bufAlloc: 4, fwdCnt: 4))
        let (_, second) = try #require(try next(&muxer))
        #expect(second == Array("4567".utf8))
    }

    @Test("RX buffers smaller than the credit split the data")
    func smallRXBuffers() throws {
        let listener = FakeStream("abcdef")
        var muxer = muxer(listeners: ["/run/vm.vsock_7": listener])
        muxer.receiveFromGuest(guestPacket(.request, from: 5, to: 7))
        _ = try next(&muxer)
        let (_, payload) = try #require(try next(&muxer, bufferSize: VsockPacketHeader.size + 2))
        #expect(payload == Array("ab".utf8))
    }

    @Test("a host stream that accepts only part of the data gets the rest on service()")
    func partialHostWrites() {
        let listener = FakeStream()
        listener.writeLimit = 0
        var muxer = muxer(listeners: ["/run/vm.vsock_7": listener])
        muxer.receiveFromGuest(guestPacket(.request, from: 5, to: 7))
        muxer.receiveFromGuest(guestPacket(.readWrite, from: 5, to: 7, payload: Array("data".utf8)))
        #expect(listener.written.isEmpty)
        listener.writeLimit = nil
        muxer.service()
        #expect(listener.written == Array("data".utf8))
    }

    @Test("host end of file → SHUTDOWN; the guest's RST closes the stream and forgets the connection")
    func hostEndOfFile() throws {
        let listener = FakeStream()
        var muxer = muxer(listeners: ["/run/vm.vsock_7": listener])
        muxer.receiveFromGuest(guestPacket(.request, from: 5, to: 7))
        _ = try next(&muxer)
        listener.endOfFile = true
        let (shutdown, _) = try #require(try next(&muxer))
        #expect(shutdown.operation == .shutdown && shutdown.shutdownFlags == .both)
        muxer.receiveFromGuest(guestPacket(.reset, from: 5, to: 7))
        #expect(try next(&muxer) == nil)
        #expect(listener.closed && muxer.connectionCount == 0)
    }

    @Test("guest SHUTDOWN SEND: the host stream is half-closed after the last bytes, data still flows back")
    func guestHalfClose() throws {
        let listener = FakeStream()
        listener.writeLimit = 2
        var muxer = muxer(listeners: ["/run/vm.vsock_7": listener])
        muxer.receiveFromGuest(guestPacket(.request, from: 5, to: 7))
        _ = try next(&muxer)
        muxer.receiveFromGuest(guestPacket(.readWrite, from: 5, to: 7, payload: Array("abcd".utf8)))
        muxer.receiveFromGuest(guestPacket(.shutdown, from: 5, to: 7, flags: VsockShutdownFlags.send.rawValue))
        #expect(listener.written == Array("abcd".utf8) && listener.writeShut)

        listener.incoming = Array("reply".utf8)
        let (data, payload) = try #require(try next(&muxer))
        #expect(data.operation == .readWrite && payload == Array("reply".utf8))
    }

    @Test("a timed-out connection is reset by key: RST to the guest, then the stream closes")
    func resetByKey() throws {
        var muxer = muxer()
        let host = FakeStream("CONNECT 52\n")
        muxer.addHostStream(host)
        muxer.service()
        let key = VsockMuxer.Key(hostPort: Self.firstHostPort, guestPort: 52)
        #expect(muxer.connectionStates == [key: .connecting])
        _ = try next(&muxer)  // REQUEST, never answered
        muxer.reset(key)
        let (reset, _) = try #require(try next(&muxer))
        #expect(reset.operation == .reset && reset.destination.port == 52)
        #expect(host.closed && muxer.connectionStates.isEmpty)
    }

    @Test("closeAll closes every stream, connected or still handshaking")
    func closeAll() throws {
        let listener = FakeStream()
        var muxer = muxer(listeners: ["/run/vm.vsock_7": listener])
        muxer.receiveFromGuest(guestPacket(.request, from: 5, to: 7))
        let waiting = FakeStream("CONN")
        muxer.addHostStream(waiting)
        muxer.service()
        muxer.closeAll()
        #expect(listener.closed && waiting.closed)
        #expect(muxer.connectionCount == 0 && muxer.handshakingCount == 0)
        #expect(try next(&muxer) == nil)
    }

    @Test("the guest shuts down both ways: the muxer sends the final RST and closes the host stream")
    func guestShutdown() throws {
        let listener = FakeStream()
        var muxer = muxer(listeners: ["/run/vm.vsock_7": listener])
        muxer.receiveFromGuest(guestPacket(.request, from: 5, to: 7))
        _ = try next(&muxer)
        muxer.receiveFromGuest(guestPacket(.shutdown, from: 5, to: 7, flags: 3))
        let (reset, _) = try #require(try next(&muxer))
        #expect(reset.operation == .reset)
        #expect(listener.closed && muxer.connectionCount == 0)
    }
}
