import Testing

@testable import Virtio

/// What a guest can make the host hold (issue 13, defect 6): connections are capped per device — past the cap a
/// guest REQUEST gets RST and a host program's stream is closed, both counted — and the bytes buffered for a slow
/// host reader are bounded by the connection's buf_alloc and released once the reader catches up.
@Suite("virtio-vsock limits")
struct VsockLimitsTests {
    let packets = VsockMuxerTests()

    func muxer(cap: Int, listeners: [String: FakeStream]) -> VsockMuxer {
        VsockMuxer(guestCID: VsockMuxerTests.guestCID, socketPath: "/run/vm.vsock", maximumConnections: cap) { path in
            guard let stream = listeners[path] else { throw VsockConnectLineError.unknownCommand(path) }
            return stream
        }
    }

    @Test("the default cap is Firecracker's 1023 connections per device")
    func defaultCap() {
        #expect(VsockMuxer.defaultMaximumConnections == 1023)
        let muxer = VsockMuxer(guestCID: 3, socketPath: "/run/v") { _ in throw VsockConnectLineError.unknownCommand("") }
        #expect(muxer.maximumConnections == 1023)
    }

    @Test("past the cap a guest REQUEST is answered RST and counted; a freed slot takes the next one")
    func guestRequestsPastTheCap() throws {
        let listeners = (1...3).reduce(into: [String: FakeStream]()) { $0["/run/vm.vsock_\($1)"] = FakeStream() }
        var muxer = muxer(cap: 2, listeners: listeners)
        #expect(muxer.receiveFromGuest(packets.guestPacket(.request, from: 100, to: 1)) == .accepted(hostPort: 1))
        #expect(muxer.receiveFromGuest(packets.guestPacket(.request, from: 101, to: 2)) == .accepted(hostPort: 2))
        #expect(muxer.receiveFromGuest(packets.guestPacket(.request, from: 102, to: 3)) == .refused)
        #expect(muxer.connectionCount == 2 && muxer.refusedConnections == 1)
        var resets = 0
        while let (header, _) = try packets.next(&muxer) {
            if header.operation == .reset {
                #expect(header.destination == VsockAddress(cid: 3, port: 102))
                resets += 1
            }
        }
        #expect(resets == 1)
        #expect(listeners["/run/vm.vsock_3"]!.closed == false, "the listener was never even opened")

        // The guest closes one connection: the next REQUEST fits.
        muxer.receiveFromGuest(packets.guestPacket(.reset, from: 100, to: 1))
        #expect(muxer.connectionCount == 1)
        #expect(muxer.receiveFromGuest(packets.guestPacket(.request, from: 102, to: 3)) == .accepted(hostPort: 3))
    }

    @Test("past the cap a host program's stream is closed at once (handshaking streams count) and counted")
    func hostStreamsPastTheCap() {
        var muxer = muxer(cap: 2, listeners: ["/run/vm.vsock_1": FakeStream()])
        #expect(muxer.receiveFromGuest(packets.guestPacket(.request, from: 100, to: 1)) == .accepted(hostPort: 1))
        let waiting = FakeStream()  // has not sent its CONNECT line yet
        muxer.addHostStream(waiting)
        let third = FakeStream("CONNECT 52\n")
        muxer.addHostStream(third)
        #expect(third.closed && !waiting.closed)
        #expect(muxer.handshakingCount == 1 && muxer.refusedConnections == 1)
    }

    @Test("the device counts refused connections in its statistics")
    func deviceStatistics() throws {
        let harness = try VsockHarness(maximumConnections: 1)
        harness.listeners.add("\(VsockHarness.socketPath)_1", FakeStream())
        harness.listeners.add("\(VsockHarness.socketPath)_2", FakeStream())
        try harness.postReceiveBuffers(4)
        try harness.send(.request, from: 100, to: 1)
        try harness.send(.request, from: 101, to: 2)
        let replies = try harness.received()
        #expect(replies.map(\.header.operation) == [.response, .reset])
        #expect(harness.device.statistics.refusedConnections == 1)
        #expect(harness.device.statistics.refusedPackets == 1)
    }

    @Test("a connection holds no buffer once its host reader has caught up, and never more than buf_alloc")
    func bufferingIsBounded() {
        let request = VsockPacketHeader(source: VsockAddress(cid: 3, port: 100), destination: VsockAddress(cid: 2, port: 1),
                                        operation: .request, bufferAllocation: 65536)
        var connection = VsockConnection.guestInitiated(request: request, bufferAllocation: 4096)
        func data(_ count: Int) -> VsockPacketHeader {
            VsockPacketHeader(source: VsockAddress(cid: 3, port: 100), destination: VsockAddress(cid: 2, port: 1),
                              operation: .readWrite, length: UInt32(count), bufferAllocation: 65536)
        }
        connection.receive(data(3000), payload: [UInt8](repeating: 1, count: 3000)[...])
        connection.didWriteToHost(1000)
        #expect(connection.pendingForHost.count == 2000)
        connection.didWriteToHost(2000)
        #expect(connection.pendingForHost.isEmpty)
        #expect(connection.pendingForHost.capacity == 0, "the storage is released, not kept for a reader that may never lag again")

        // More than buf_alloc in flight breaks the guest's side of flow control: the connection is reset and
        // the excess is not buffered.
        connection.receive(data(4000), payload: [UInt8](repeating: 2, count: 4000)[...])
        connection.receive(data(1000), payload: [UInt8](repeating: 3, count: 1000)[...])
        #expect(connection.pendingForHost.count <= 4096)
        #expect(connection.state == .closed)
    }
}
