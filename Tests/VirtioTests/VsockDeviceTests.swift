import Testing

@testable import Virtio

/// virtio-vsock (virtio 1.2 §5.10) driven through its queues the way Linux's virtio_transport drives it, with
/// fake host streams behind: connections both ways, data both ways within credit, refusals, malformed packets
/// and chains, a guest without rx buffers, and connection timeouts.
@Suite("virtio-vsock device")
struct VsockDeviceTests {
    static let hostPort = VsockLocalPortAllocator.firstPort

    @Test("device ID 19, three queues, stream only (no device features), le64 guest_cid in the configuration space")
    func identityAndConfiguration() throws {
        let device = VsockDevice(guestCID: 0x1_2345, socketPath: "/run/v.sock", openListener: { _ in throw FakeListeners.Refused() })
        #expect(device.deviceType.rawValue == 19)
        #expect(device.queueMaximumSizes.count == 3)
        #expect(device.deviceFeatures == 0)
        #expect(device.configurationSize == 8)
        #expect(device.readConfiguration(offset: 0, width: 8) == 0x1_2345)
        #expect(device.readConfiguration(offset: 0, width: 4) == 0x1_2345)
        #expect(device.readConfiguration(offset: 4, width: 4) == 0)
        device.writeConfiguration(offset: 0, width: 8, value: 99)  // read-only
        #expect(device.readConfiguration(offset: 0, width: 8) == 0x1_2345)
        let state = VirtioDeviceState(deviceFeatures: device.deviceFeatures, queueMaximumSizes: device.queueMaximumSizes)
        #expect(state.offeredFeatures & VirtioFeature.version1 != 0)
        #expect(throws: (any Error).self) {
            try device.activate(VirtioActivation(queues: [nil, nil, nil], memory: try TestDriver().memory, features: 0,
                                                 interrupt: RecordingInterrupt()))
        }
    }

    @Test("the guest connects to host port 6000: <socket>_6000 gets the stream, RESPONSE goes back, data flows both ways")
    func guestConnectsToAHostListener() throws {
        let guest = try VsockHarness()
        let listener = FakeStream()
        guest.listeners.add("/run/test.vsock_6000", listener)
        try guest.postReceiveBuffers(4)

        try guest.send(.request, from: 40000, to: 6000)
        let response = try guest.received()
        #expect(response.count == 1)
        #expect(response.first?.header.operation == .response)
        #expect(response.first?.header.source == VsockAddress(cid: 2, port: 6000))
        #expect(response.first?.header.destination == VsockAddress(cid: 3, port: 40000))
        #expect(response.first?.header.bufferAllocation == VsockConnection.defaultBufferAllocation)
        #expect(guest.interrupt.usedBufferSignals.contains(VirtioVsock.receiveQueue))

        try guest.send(.readWrite, from: 40000, to: 6000, payload: Array("ping".utf8))
        #expect(listener.written == Array("ping".utf8))

        listener.incoming = Array("pong".utf8)
        guest.device.serviceHost()
        let data = try guest.received()
        #expect(data.count == 1)
        #expect(data.first?.header.operation == .readWrite)
        #expect(data.first?.payload == Array("pong".utf8))
        #expect(data.first?.header.forwardCount == 4, "our fwd_cnt tells the guest its 4 bytes reached the host")

        let statistics = guest.device.statistics
        #expect(statistics.packetsFromGuest == 2 && statistics.packetsToGuest == 2)
        #expect(statistics.bytesFromGuest == 4 && statistics.bytesToGuest == 4)
        #expect(statistics.malformedPackets == 0 && statistics.refusedPackets == 0)
    }

    @Test("a host program sends CONNECT 5000: REQUEST to the guest; its RESPONSE → OK <port>; 10000 bytes split over 4 KiB buffers")
    func hostConnectsToAGuestListener() throws {
        let guest = try VsockHarness()
        try guest.postReceiveBuffers(8)
        let host = FakeStream("CONNECT 5000\n")
        guest.device.addHostStream(host)

        let request = try guest.received()
        #expect(request.count == 1)
        #expect(request.first?.header.operation == .request)
        #expect(request.first?.header.source == VsockAddress(cid: 2, port: Self.hostPort))
        #expect(request.first?.header.destination == VsockAddress(cid: 3, port: 5000))
        #expect(host.written.isEmpty, "no OK before the guest accepted")

        try guest.send(.response, from: 5000, to: Self.hostPort)
        #expect(host.written == Array("OK 1073741824\n".utf8))

        let blob = (0..<10000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        host.incoming = blob
        guest.device.serviceHost()
        let data = try guest.received()
        #expect(data.map(\.payload.count) == [4096, 4096, 1808])
        #expect(data.flatMap(\.payload) == blob)

        try guest.send(.readWrite, from: 5000, to: Self.hostPort, payload: Array("thanks".utf8))
        #expect(host.written == Array("OK 1073741824\nthanks".utf8))
    }

    @Test("the guest refuses a host CONNECT (RST): the host stream is closed and forgotten")
    func guestRefusesHostConnect() throws {
        let guest = try VsockHarness()
        try guest.postReceiveBuffers(2)
        let host = FakeStream("CONNECT 9\n")
        guest.device.addHostStream(host)
        #expect(try guest.received().first?.header.operation == .request)
        try guest.send(.reset, from: 9, to: Self.hostPort)
        #expect(host.closed)
        #expect(host.written.isEmpty)
        #expect(guest.device.connectionCount == 0)
    }

    @Test("host data stops at the guest's buf_alloc (then CREDIT_REQUEST); the stream is not polled until a CREDIT_UPDATE")
    func hostDataRespectsGuestCredit() throws {
        let guest = try VsockHarness()
        try guest.postReceiveBuffers(8)
        let listener = FakeStream("abcdefghijklmnopqrst", descriptor: 10)
        guest.listeners.add("/run/test.vsock_7", listener)

        try guest.send(.request, from: 5, to: 7, bufAlloc: 8)
        let first = try guest.received()
        #expect(first.map(\.header.operation) == [.response, .readWrite, .creditRequest])
        #expect(first[1].payload == Array("abcdefgh".utf8))
        #expect(listener.incoming == Array("ijklmnopqrst".utf8), "the rest stays in the host socket")
        #expect(!guest.device.hostInterest().streams.contains { $0.descriptor == 10 && $0.read }, "no credit: not read")

        // The guest read 8 bytes and says so.
        try guest.send(.creditUpdate, from: 5, to: 7, bufAlloc: 8, fwdCnt: 8)
        let second = try guest.received()
        #expect(second.map(\.header.operation) == [.readWrite, .creditRequest])
        #expect(second.first?.payload == Array("ijklmnop".utf8))

        // With credit again the stream is polled for reading.
        try guest.send(.creditUpdate, from: 5, to: 7, bufAlloc: 64, fwdCnt: 16)
        #expect(try guest.received().map(\.payload) == [Array("qrst".utf8)])
        #expect(guest.device.hostInterest().streams.contains { $0.descriptor == 10 && $0.read })
    }

    @Test("guest data beyond our buf_alloc while the host does not read: the connection is reset, nothing more is written")
    func guestDataBeyondOurCreditResets() throws {
        let guest = try VsockHarness()
        try guest.postReceiveBuffers(4)
        let listener = FakeStream(descriptor: 11)
        listener.writeLimit = 0  // the host program is not reading
        guest.listeners.add("/run/test.vsock_7", listener)
        try guest.send(.request, from: 5, to: 7)
        _ = try guest.received()

        let chunk = [UInt8](repeating: 0x5A, count: 64 * 1024)
        for _ in 0..<4 { try guest.send(.readWrite, from: 5, to: 7, payload: chunk) }  // exactly 256 KiB: allowed
        #expect(try guest.received().isEmpty)
        #expect(guest.device.hostInterest().streams.contains { $0.descriptor == 11 && $0.write }, "owed bytes: polled for writing")

        try guest.send(.readWrite, from: 5, to: 7, payload: [1])  // one byte too many
        let reset = try guest.received()
        #expect(reset.map(\.header.operation) == [.reset])
        #expect(listener.closed && listener.written.isEmpty)
        #expect(guest.device.connectionCount == 0)
    }

    @Test("packets for no connection and requests nobody listens for are answered with RST; an RST is never answered")
    func unknownConnectionsGetReset() throws {
        let guest = try VsockHarness()
        try guest.postReceiveBuffers(4)
        try guest.send(.readWrite, from: 1, to: 80, payload: [1, 2, 3])
        try guest.send(.request, from: 2, to: 81)
        try guest.send(.reset, from: 3, to: 82)
        let replies = try guest.received()
        #expect(replies.map(\.header.operation) == [.reset, .reset])
        #expect(replies.map(\.header.destination) == [VsockAddress(cid: 3, port: 1), VsockAddress(cid: 3, port: 2)])
        #expect(replies.map(\.header.source) == [VsockAddress(cid: 2, port: 80), VsockAddress(cid: 2, port: 81)])
        #expect(guest.listeners.attempts == ["/run/test.vsock_81"])
        #expect(guest.device.statistics.refusedPackets == 2)
        #expect(guest.device.statistics.malformedPackets == 0)
    }

    @Test("malformed packets are counted and answered with RST or dropped; the device carries on")
    func malformedPackets() throws {
        let guest = try VsockHarness()
        try guest.postReceiveBuffers(8)
        func header(_ operation: VsockOperation, sourceCID: UInt64 = 3, length: UInt32 = 0) -> [UInt8] {
            VsockPacketHeader(source: VsockAddress(cid: sourceCID, port: 1), destination: VsockAddress(cid: 2, port: 80),
                              operation: operation, length: length).encoded
        }

        try guest.sendRaw(Array(header(.request).prefix(20)))  // truncated: nobody to answer
        var unknownOperation = header(.request)
        unknownOperation[30] = 99
        try guest.sendRaw(unknownOperation)  // RST
        try guest.sendRaw(header(.request, sourceCID: 7))  // spoofed CID: dropped
        try guest.sendRaw(header(.readWrite, length: 100) + [UInt8](repeating: 0, count: 10))  // len beyond the chain: RST
        try guest.sendRaw(header(.request, length: 4) + [1, 2, 3, 4])  // payload on a REQUEST: RST
        var notStream = header(.request)
        notStream[28] = 2  // SEQPACKET, not negotiated: RST
        try guest.sendRaw(notStream)

        let replies = try guest.received()
        #expect(replies.map(\.header.operation) == [.reset, .reset, .reset, .reset])
        #expect(guest.device.statistics.malformedPackets == 6)
        #expect(guest.device.statistics.packetsFromGuest == 5, "the truncated one never reached the muxer")

        // A chain the queue rejects (a buffer in the MMIO hole) comes back empty; the queue goes on.
        try guest.transmit.writeDescriptor(63, address: 0xC000_0000, length: 44, flags: 0)
        try guest.transmit.publishHead(63)
        guest.device.queueNotified(index: VirtioVsock.transmitQueue)
        #expect(try guest.transmit.usedElement(try guest.transmit.usedIndex() &- 1) == (63, 0))
        #expect(guest.device.statistics.malformedChains == 1)
        #expect(guest.interrupt.resetRequests.isEmpty)

        // Still working: a guest connection goes through.
        guest.listeners.add("/run/test.vsock_6000", FakeStream())
        try guest.send(.request, from: 4, to: 6000)
        #expect(try guest.received().map(\.header.operation) == [.response])
    }

    @Test("len beyond the chain on an open connection resets it; the short payload never reaches the host")
    func shortPayloadResetsItsConnection() throws {
        let guest = try VsockHarness()
        try guest.postReceiveBuffers(4)
        let listener = FakeStream()
        guest.listeners.add("/run/test.vsock_7", listener)
        try guest.send(.request, from: 5, to: 7)
        _ = try guest.received()
        let claimsMore = VsockPacketHeader(source: VsockAddress(cid: 3, port: 5), destination: VsockAddress(cid: 2, port: 7),
                                           operation: .readWrite, length: 100).encoded
        try guest.sendRaw(claimsMore + Array("only ten b".utf8))
        #expect(try guest.received().map(\.header.operation) == [.reset])
        #expect(listener.written.isEmpty && listener.closed)
        #expect(guest.device.statistics.malformedPackets == 1)
    }

    @Test("an rx chain with no room for a header and a byte comes back empty and counted")
    func tinyReceiveChains() throws {
        let guest = try VsockHarness()
        try guest.postReceiveChain(length: VsockPacketHeader.size)
        let packets = try guest.receivedPackets()
        #expect(packets.count == 1 && packets[0] == nil)
        #expect(guest.device.statistics.malformedChains == 1)
    }

    @Test("without rx buffers packets wait and no host stream is read; the driver's rx kick delivers them in order")
    func packetsWaitForReceiveBuffers() throws {
        let guest = try VsockHarness()
        let listener = FakeStream("early data", descriptor: 12)
        guest.listeners.add("/run/test.vsock_7", listener)
        try guest.send(.request, from: 5, to: 7)
        #expect(try guest.received().isEmpty)
        #expect(guest.device.hostInterest().streams.allSatisfy { !$0.read }, "nowhere to put host data: not read")

        try guest.postReceiveBuffers(4)
        let packets = try guest.received()
        #expect(packets.map(\.header.operation) == [.response, .readWrite])
        #expect(packets.last?.payload == Array("early data".utf8))
    }

    @Test("a guest that never answers our REQUEST, or our SHUTDOWN, is reset after the timeout; the host stream closes")
    func connectionsWaitingOnTheGuestTimeOut() throws {
        let guest = try VsockHarness()
        try guest.postReceiveBuffers(8)
        let host = FakeStream("CONNECT 52\n")
        guest.device.addHostStream(host)
        #expect(try guest.received().map(\.header.operation) == [.request])
        let deadline = try #require(guest.device.hostInterest().deadline)
        guest.device.serviceHost(now: deadline - .milliseconds(1))
        #expect(try guest.received().isEmpty && !host.closed)

        guest.device.serviceHost(now: deadline + .milliseconds(1))
        let reset = try guest.received()
        #expect(reset.map(\.header.operation) == [.reset])
        #expect(reset.first?.header.destination.port == 52)
        #expect(host.closed && guest.device.connectionCount == 0)
        #expect(guest.device.hostInterest().deadline == nil)

        // The host program ends its side (end of file): SHUTDOWN, and RST if the guest never closes.
        let listener = FakeStream()
        guest.listeners.add("/run/test.vsock_7", listener)
        try guest.send(.request, from: 5, to: 7)
        listener.endOfFile = true
        guest.device.serviceHost()
        #expect(try guest.received().map(\.header.operation) == [.response, .shutdown])
        guest.device.serviceHost(now: .now + .seconds(3))
        #expect(try guest.received().map(\.header.operation) == [.reset])
        #expect(listener.closed)
        #expect(guest.device.statistics.timedOutConnections == 2)
    }

    @Test("a device reset closes every host stream, connected or still sending its CONNECT line")
    func resetClosesHostStreams() throws {
        let guest = try VsockHarness()
        try guest.postReceiveBuffers(4)
        let listener = FakeStream()
        guest.listeners.add("/run/test.vsock_7", listener)
        try guest.send(.request, from: 5, to: 7)
        let waiting = FakeStream("CONN")
        guest.device.addHostStream(waiting)
        #expect(guest.device.connectionCount == 2)
        #expect(guest.device.acceptsHostStreams)

        guest.device.reset()
        #expect(listener.closed && waiting.closed)
        #expect(guest.device.connectionCount == 0)
        #expect(!guest.device.acceptsHostStreams)
    }
}
