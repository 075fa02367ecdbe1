import Foundation
import Synchronization
import SystemPackage
import Testing

@testable import Virtio

/// The socket backend against the other end of a real socket (a socketpair, or a listener on a temporary path):
/// framing both ways, partial writes and reads, garbage from the peer, a peer that goes away or does not read.
@Suite("socket network link")
struct SocketNetworkLinkTests {
    static let header = [UInt8](repeating: 0, count: VirtioNetHeader.size)

    /// A connected non-blocking pair: the link's end and the test's end.
    static func pair() throws -> (FileDescriptor, FileDescriptor) {
        var fds: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else { throw Errno(rawValue: errno) }
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
    }

    /// Everything the test's end can read now, waiting up to `timeout` for `expected` bytes.
    static func readAll(_ fd: FileDescriptor, expected: Int, timeout: Double = 2) throws -> [UInt8] {
        var collected: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        while collected.count < expected, Date() < deadline {
            if let count = try UnixSocket.receive(fd, into: &buffer), count > 0 {
                collected += buffer[0..<count]
            } else {
                Thread.sleep(forTimeInterval: 0.001)
            }
        }
        return collected
    }

    static func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count { offset += try UnixSocket.send(fd, bytes[offset...]) }
    }

    static func ethernet(_ length: Int, seed: UInt8 = 0) -> [UInt8] {
        (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7) &+ seed }
    }

    // MARK: Framing

    @Test func aSentPacketLeavesAsALengthAndTheFrameWithoutItsHeader() throws {
        let (ours, theirs) = try Self.pair()
        defer { try? theirs.close() }
        let link = SocketNetworkLink(connected: ours)
        let frame = Self.ethernet(1514)
        try link.send((Self.header + frame)[...])
        let wire = try Self.readAll(theirs, expected: 4 + 1514)
        #expect(wire == FrameStream.encode(frame[...]))
        #expect(link.statistics.framesSent == 1)
    }

    @Test func framesFromThePeerArriveBehindAZeroHeaderEvenWhenTheyTrickleIn() throws {
        let (ours, theirs) = try Self.pair()
        defer { try? theirs.close() }
        let link = SocketNetworkLink(connected: ours)
        let frames = [Self.ethernet(60), Self.ethernet(1514, seed: 9)]
        let stream = frames.flatMap { FrameStream.encode($0[...]) }
        var buffer = [UInt8](repeating: 0xEE, count: NetDevice.maximumPacketLength)
        var received: [[UInt8]] = []
        // A byte at a time for the first 100 bytes, then the rest at once.
        for byte in stream.prefix(100) {
            try Self.writeAll(theirs, [byte])
            while let length = link.receiveFrame(into: &buffer) { received.append(Array(buffer[0..<length])) }
        }
        #expect(received.count == 1, "the 60-byte frame is whole after 64 bytes; the second is not yet")
        try Self.writeAll(theirs, Array(stream.dropFirst(100)))
        while let length = link.receiveFrame(into: &buffer) { received.append(Array(buffer[0..<length])) }
        #expect(received == frames.map { Self.header + $0 })
        #expect(link.statistics.framesReceived == 2)
        #expect(link.isConnected)
    }

    // MARK: A peer that misbehaves or goes away

    @Test("a peer sending a length that is not a frame's is dropped", arguments: [UInt32(0), 65551, 0xFFFF_FFFF])
    func garbageDropsTheConnection(length: UInt32) throws {
        let (ours, theirs) = try Self.pair()
        defer { try? theirs.close() }
        let link = SocketNetworkLink(connected: ours)
        let changes = Mutex(0)
        link.setPeerChangeHandler { changes.withLock { $0 += 1 } }
        try Self.writeAll(theirs, [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
                            + [UInt8](repeating: 1, count: 100))
        var buffer = [UInt8](repeating: 0, count: NetDevice.maximumPacketLength)
        #expect(link.receiveFrame(into: &buffer) == nil)
        #expect(!link.isConnected)
        #expect(link.receiveFD == nil)
        #expect(link.statistics.peersLost == 1)
        #expect(changes.withLock { $0 } == 1, "the event loop is told to stop watching the old fd")
        // Our end was closed: the peer sees end of stream.
        var probe = [UInt8](repeating: 0, count: 16)
        #expect(try UnixSocket.receive(theirs, into: &probe) == 0)
    }

    @Test func aPeerThatClosesIsDroppedAndLaterFramesAreCountedAsNoPeer() throws {
        let (ours, theirs) = try Self.pair()
        let link = SocketNetworkLink(connected: ours)
        // Half a frame, then gone.
        try Self.writeAll(theirs, Array(FrameStream.encode(Self.ethernet(100)[...]).prefix(50)))
        try theirs.close()
        var buffer = [UInt8](repeating: 0, count: NetDevice.maximumPacketLength)
        #expect(link.receiveFrame(into: &buffer) == nil)
        #expect(!link.isConnected)
        // A cable unplugged: frames are dropped and counted, not errors.
        try link.send((Self.header + Self.ethernet(60))[...])
        try link.send((Self.header + Self.ethernet(60))[...])
        #expect(link.statistics.framesDroppedWithoutPeer == 2)
        #expect(link.statistics.framesSent == 0)
        #expect(link.statistics.peersLost == 1)
    }

    @Test func sendingToAPeerThatClosedDropsItWithoutASignal() throws {
        let (ours, theirs) = try Self.pair()
        let link = SocketNetworkLink(connected: ours)
        try theirs.close()
        // EPIPE, not SIGPIPE (which would end this test process).
        try link.send((Self.header + Self.ethernet(60))[...])
        #expect(!link.isConnected)
        #expect(link.statistics.framesDroppedWithoutPeer == 1)
    }

    // MARK: Partial writes and a peer that does not read

    @Test func recordsTheSocketTakesInPartAreFinishedInOrderWhenItDrains() throws {
        let (ours, theirs) = try Self.pair()
        defer { try? theirs.close() }
        var small: Int32 = 4096
        setsockopt(ours.rawValue, SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        let link = SocketNetworkLink(connected: ours)
        let frames = (0..<40).map { Self.ethernet(1514, seed: UInt8($0)) }
        for frame in frames { try link.send((Self.header + frame)[...]) }
        #expect(link.outputFD != nil, "the socket took only part: the rest waits for it to drain")
        let expected = frames.flatMap { FrameStream.encode($0[...]) }
        var wire: [UInt8] = []
        let deadline = Date().addingTimeInterval(5)
        while wire.count < expected.count, Date() < deadline {
            wire += try Self.readAll(theirs, expected: 1, timeout: 0.05)
            link.flushOutput()
        }
        #expect(wire == expected)
        #expect(link.outputFD == nil)
        #expect(link.statistics.framesSent == 40)
    }

    @Test func aPeerThatDoesNotReadCostsDroppedFramesNotAWait() throws {
        let (ours, theirs) = try Self.pair()
        defer { try? theirs.close() }
        let link = SocketNetworkLink(connected: ours)
        let packet = (Self.header + Self.ethernet(1514))[...]
        let started = ContinuousClock.now
        for _ in 0..<2000 { try link.send(packet) }
        #expect(ContinuousClock.now - started < .seconds(1))
        let statistics = link.statistics
        #expect(statistics.framesDroppedPeerBehind > 0)
        #expect(statistics.framesSent + statistics.framesDroppedPeerBehind == 2000)
        // Every frame counted as sent arrives whole once the peer reads: drops happen between records only.
        var decoder = FrameStreamDecoder()
        var arrived = 0
        let deadline = Date().addingTimeInterval(5)
        while arrived < statistics.framesSent, Date() < deadline {
            decoder.append(try Self.readAll(theirs, expected: 1, timeout: 0.01)[...])
            link.flushOutput()
            while let frame = try decoder.next() {
                #expect(Array(frame) == Self.ethernet(1514))
                arrived += 1
            }
        }
        #expect(arrived == statistics.framesSent)
        #expect(decoder.bufferedByteCount == 0)
        #expect(link.isConnected, "a slow peer is not a lost one")
    }

    @Test func aHeaderAskingForOffloadsIsRefused() throws {
        let (ours, theirs) = try Self.pair()
        defer { try? theirs.close() }
        let link = SocketNetworkLink(connected: ours)
        var packet = Self.header + Self.ethernet(100)
        packet[0] = VirtioNetHeader.flagNeedsChecksum
        #expect(throws: SocketNetworkLinkError.offloadRequested(flags: 1, gsoType: 0)) { try link.send(packet[...]) }
        #expect(throws: SocketNetworkLinkError.runt(length: 20)) { try link.send(Array(packet.prefix(20))[...]) }
    }

    // MARK: Listening and connecting on a path

    static func temporaryPath(_ name: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swt-sock-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent(name).path
    }

    /// Calls `condition` until it holds (at most 2 s); calls it no more after that, as it may consume a frame.
    static func waitUntil(_ condition: () -> Bool) -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return false
    }

    @Test func theListenerTakesOnePeerRefusesASecondAndTakesANewOneWhenTheFirstIsGone() throws {
        let path = try Self.temporaryPath("n.sock")
        let listener = try SocketNetworkLink(listeningOn: path)
        #expect(listener.listenerFD != nil && listener.receiveFD == nil)
        let first = try SocketNetworkLink(connectingTo: path)
        listener.acceptPeers()
        #expect(listener.isConnected)

        // Frames both ways.
        try first.send((Self.header + Self.ethernet(60, seed: 1))[...])
        var buffer = [UInt8](repeating: 0, count: NetDevice.maximumPacketLength)
        var length: Int?
        let firstArrived = Self.waitUntil { length = listener.receiveFrame(into: &buffer); return length != nil }
        #expect(firstArrived)
        #expect(length.map { Array(buffer[0..<$0]) } == Self.header + Self.ethernet(60, seed: 1))

        let intruder = try UnixSocket.connect(path: path)
        defer { try? intruder.close() }
        listener.acceptPeers()
        #expect(listener.statistics.peersRefused == 1)
        var probe = [UInt8](repeating: 0, count: 8)
        #expect(Self.waitUntil { (try? UnixSocket.receive(intruder, into: &probe)) == 0 }, "the second peer is closed")

        // The first goes away (its VM stopped); the next one is taken.
        try UnixSocket.connect(path: path).close()  // connects and leaves at once: refused or replaced, never kept
        listener.acceptPeers()
        _ = consume first
        let second = try UnixSocket.connect(path: path)
        defer { try? second.close() }
        listener.acceptPeers()
        #expect(listener.statistics.peersConnected >= 2)
        try Self.writeAll(second, FrameStream.encode(Self.ethernet(70, seed: 2)[...]))
        let secondArrived = Self.waitUntil { length = listener.receiveFrame(into: &buffer); return length != nil }
        #expect(secondArrived)
        #expect(length.map { Array(buffer[0..<$0]) } == Self.header + Self.ethernet(70, seed: 2))
    }

    @Test func aStaleSocketIsReplacedButALiveOneOrAFileIsNot() throws {
        let path = try Self.temporaryPath("stale.sock")
        do { _ = try SocketNetworkLink(listeningOn: path) }  // gone at once, its socket file left behind
        #expect(FileManager.default.fileExists(atPath: path))
        let live = try SocketNetworkLink(listeningOn: path)
        #expect(throws: UnixSocket.SetupError.inUse(path: path)) { try SocketNetworkLink(listeningOn: path) }
        _ = live

        let file = try Self.temporaryPath("file")
        try "data".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: UnixSocket.SetupError.notASocket(path: file)) { try SocketNetworkLink(listeningOn: file) }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "data", "left alone")
    }

    @Test func connectingWithNobodyListeningWaitsBrieflyThenSaysSo() throws {
        let path = try Self.temporaryPath("nobody.sock")
        let started = ContinuousClock.now
        do {
            _ = try SocketNetworkLink(connectingTo: path, patience: .milliseconds(300))
            Issue.record("connected to nobody")
        } catch {
            #expect(error == .nobodyListening(path: path, waited: .milliseconds(300), errno: .noSuchFileOrDirectory))
            #expect(error.description.contains("nobody listens on \(path) (waited 0.3 seconds"), "\(error)")
            #expect(error.description.hasSuffix("start the other VM with socket=\(path),listen"), "\(error)")
        }
        #expect(ContinuousClock.now - started >= .milliseconds(300))
    }

    @Test func aListenerThatAppearsWithinThePatienceIsFound() throws {
        let path = try Self.temporaryPath("late.sock")
        let listener = Mutex<SocketNetworkLink?>(nil)
        let starter = Thread {
            Thread.sleep(forTimeInterval: 0.3)
            listener.withLock { $0 = try? SocketNetworkLink(listeningOn: path) }
        }
        starter.start()
        let link = try SocketNetworkLink(connectingTo: path, patience: .seconds(5))
        #expect(link.isConnected)
        #expect(listener.withLock { $0 != nil })
    }

    @Test func withoutAPeerTheConnectingSideNamesWhenToTryAgainAndConnectsThen() throws {
        let path = try Self.temporaryPath("retry.sock")
        var listener: SocketNetworkLink? = try SocketNetworkLink(listeningOn: path)
        let link = try SocketNetworkLink(connectingTo: path)
        let changes = Mutex(0)
        link.setPeerChangeHandler { changes.withLock { $0 += 1 } }
        #expect(link.nextReconnectAttempt == nil)  // connected: nothing to retry
        listener?.acceptPeers()
        listener = nil
        var buffer = [UInt8](repeating: 0, count: NetDevice.maximumPacketLength)
        #expect(Self.waitUntil { _ = link.receiveFrame(into: &buffer); return !link.isConnected })
        #expect(changes.withLock { $0 } == 1)  // the peer went away (the device's link goes down)
        // The guest sends nothing while its link is down, so the loop retries at the time the link names.
        let due = try #require(link.nextReconnectAttempt)
        #expect(due <= .now + SocketNetworkLink.reconnectInterval)
        let restarted = try SocketNetworkLink(listeningOn: path)
        #expect(Self.waitUntil { link.reconnectIfDue(); return link.isConnected })
        #expect(link.nextReconnectAttempt == nil)
        #expect(changes.withLock { $0 } == 2)
        restarted.acceptPeers()
        #expect(restarted.isConnected)
        let (mine, theirs) = try Self.pair()
        defer { try? theirs.close() }
        #expect(SocketNetworkLink(connected: mine).nextReconnectAttempt == nil)  // nothing to reconnect to
    }

    @Test func theConnectingSideConnectsAgainWhenItsGuestSendsAfterTheListenerCameBack() throws {
        let path = try Self.temporaryPath("again.sock")
        var listener: SocketNetworkLink? = try SocketNetworkLink(listeningOn: path)
        let link = try SocketNetworkLink(connectingTo: path)
        listener?.acceptPeers()
        listener = nil  // the listening VM stops
        var buffer = [UInt8](repeating: 0, count: NetDevice.maximumPacketLength)
        #expect(Self.waitUntil { _ = link.receiveFrame(into: &buffer); return !link.isConnected })
        let restarted = try SocketNetworkLink(listeningOn: path)
        Thread.sleep(forTimeInterval: 1.05)  // at most one attempt a second
        try link.send((Self.header + Self.ethernet(60, seed: 5))[...])
        #expect(link.isConnected)
        restarted.acceptPeers()
        var length: Int?
        let arrived = Self.waitUntil { length = restarted.receiveFrame(into: &buffer); return length != nil }
        #expect(arrived)
        #expect(length.map { Array(buffer[0..<$0]) } == Self.header + Self.ethernet(60, seed: 5))
        #expect(link.statistics.peersConnected == 2)
    }
}
