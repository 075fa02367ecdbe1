// Helpers for the virtio-vsock device tests: a guest with rx, tx and event queues, its packets, and fake host
// streams (VsockMuxerTests.FakeStream).

import GuestMemory
import Synchronization
import Testing

@testable import Virtio

typealias FakeStream = VsockMuxerTests.FakeStream

/// The host listeners `<socket>_<port>` a test has put up, by path.
final class FakeListeners: Sendable {
    struct Refused: Error {}
    private let table = Mutex<[String: FakeStream]>([:])
    /// Paths a guest tried to reach, in order.
    private let tried = Mutex<[String]>([])

    func add(_ path: String, _ stream: FakeStream) { table.withLock { $0[path] = stream } }
    var attempts: [String] { tried.withLock { $0 } }

    func open(_ path: String) throws -> any VsockHostStream {
        tried.withLock { $0.append(path) }
        guard let stream = table.withLock({ $0.removeValue(forKey: path) }) else { throw Refused() }
        return stream
    }
}

/// A virtio-vsock device brought up by a fake driver, each queue in its own fake guest memory (the device
/// reaches memory only through its queues), playing Linux's driver: rx chains of a 44-byte header buffer and
/// a payload buffer, tx packets as a header buffer and a payload buffer.
final class VsockHarness {
    static let guestCID: UInt64 = 3
    static let socketPath = "/run/test.vsock"
    static let features = VirtioFeature.version1 | VirtioFeature.ringEventIndex

    let device: VsockDevice
    let listeners = FakeListeners()
    let interrupt = RecordingInterrupt()
    let receive: TestDriver
    let transmit: TestDriver
    let event: TestDriver
    /// The buffers of each rx chain posted, by head.
    private var receiveBuffers: [UInt16: [TestDriver.Buffer]] = [:]
    private var receiveUsedSeen: UInt16 = 0

    init(size: UInt16 = 64, maximumConnections: Int = VsockMuxer.defaultMaximumConnections) throws {
        let listeners = self.listeners
        device = VsockDevice(guestCID: Self.guestCID, socketPath: Self.socketPath, openListener: { try listeners.open($0) },
                             maximumConnections: maximumConnections)
        receive = try TestDriver(size: size)
        transmit = try TestDriver(size: size)
        event = try TestDriver(size: size)
        let queues = try [receive, transmit, event].enumerated().map { index, driver in
            try Queue(index: index, configuration: driver.configuration, memory: driver.memory, features: Self.features)
        }
        try device.activate(VirtioActivation(queues: queues, memory: receive.memory, features: Self.features, interrupt: interrupt))
    }

    /// Posts `count` rx chains (header buffer + `payloadSize` buffer) and kicks, as virtio_vsock_rx_fill does.
    func postReceiveBuffers(_ count: Int, payloadSize: Int = 4096, kick: Bool = true) throws {
        for _ in 0..<count {
            let buffers = [try receive.writable(VsockPacketHeader.size), try receive.writable(payloadSize)]
            receiveBuffers[try receive.publish(buffers)] = buffers
        }
        if kick { device.queueNotified(index: VirtioVsock.receiveQueue) }
    }

    /// Posts one rx chain of a single buffer of `length` bytes.
    func postReceiveChain(length: Int) throws {
        let buffer = try receive.writable(length)
        receiveBuffers[try receive.publish([buffer])] = [buffer]
        device.queueNotified(index: VirtioVsock.receiveQueue)
    }

    /// The packets the device put in rx buffers since the last call, in order: header (parsed) and payload.
    /// An empty used chain (one the device refused) shows as nil.
    func receivedPackets() throws -> [(header: VsockPacketHeader, payload: [UInt8])?] {
        var packets: [(header: VsockPacketHeader, payload: [UInt8])?] = []
        let usedIndex = try receive.usedIndex()
        while receiveUsedSeen != usedIndex {
            let (id, length) = try receive.usedElement(receiveUsedSeen)
            receiveUsedSeen &+= 1
            let posted = receiveBuffers.removeValue(forKey: UInt16(id))
            let buffers = try #require(posted, "used id \(id) was never posted")
            guard length > 0 else {
                packets.append(nil)
                continue
            }
            var bytes: [UInt8] = []
            for buffer in buffers { bytes += try receive.contents(of: buffer) }
            let packet = Array(bytes.prefix(Int(length)))
            let header = try VsockPacketHeader(parsing: packet)
            packets.append((header, Array(packet.dropFirst(VsockPacketHeader.size))))
        }
        return packets
    }

    /// The well-formed packets received since the last call (fails on a refused chain).
    func received() throws -> [(header: VsockPacketHeader, payload: [UInt8])] {
        try receivedPackets().map { try #require($0) }
    }

    /// Puts raw bytes on tx as a header buffer and (if longer) a payload buffer, and kicks.
    func sendRaw(_ packet: [UInt8]) throws {
        var buffers = [try transmit.readable(Array(packet.prefix(VsockPacketHeader.size)))]
        if packet.count > VsockPacketHeader.size { buffers.append(try transmit.readable(Array(packet.dropFirst(VsockPacketHeader.size)))) }
        try transmit.publish(buffers)
        device.queueNotified(index: VirtioVsock.transmitQueue)
    }

    /// Sends a packet from guest port `from` to host port `to`, as the guest's driver would.
    func send(
        _ operation: VsockOperation, from guestPort: UInt32, to hostPort: UInt32, payload: [UInt8] = [],
        bufAlloc: UInt32 = 256 * 1024, fwdCnt: UInt32 = 0, flags: UInt32 = 0
    ) throws {
        try sendRaw(VsockPacketHeader(
            source: VsockAddress(cid: Self.guestCID, port: guestPort), destination: VsockAddress(cid: 2, port: hostPort),
            operation: operation, length: UInt32(payload.count), flags: flags, bufferAllocation: bufAlloc,
            forwardCount: fwdCnt
        ).encoded + payload)
    }
}

extension FakeStream {
    /// A fake whose `pollDescriptor` is `descriptor`, so that it shows in the device's poll interest.
    convenience init(_ text: String = "", descriptor: Int32) {
        self.init(text)
        self.descriptor = descriptor
    }
}
