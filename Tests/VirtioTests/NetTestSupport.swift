// Helpers for the virtio-net tests: a fake backend and a guest with receiveq1 and transmitq1.

import GuestMemory
import Synchronization

@testable import Virtio

/// Records every frame the device sends; can be told to refuse them.
final class RecordingNetworkBackend: NetworkBackend {
    struct Refused: Error {}
    private let state = Mutex<(frames: [[UInt8]], failing: Bool)>(([], false))

    var frames: [[UInt8]] { state.withLock { $0.frames } }
    func setFailing(_ failing: Bool) { state.withLock { $0.failing = failing } }

    func send(_ frame: ArraySlice<UInt8>) throws {
        try state.withLock { state in
            if state.failing { throw Refused() }
            state.frames.append(Array(frame))
        }
    }
}

/// Counts calls of the receive-buffers-available handler.
final class WakeCounter: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func wake() { count.withLock { $0 += 1 } }
}

/// A virtio-net device brought up by a fake driver, each queue in its own fake guest memory (as in
/// `ConsoleHarness`: the device reaches memory only through its queues).
final class NetHarness {
    static let mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
    static let baseFeatures = VirtioFeature.version1 | VirtioFeature.ringEventIndex

    let device: NetDevice
    let backend = RecordingNetworkBackend()
    let interrupt = RecordingInterrupt()
    let wakes = WakeCounter()
    private(set) var receive: TestDriver
    private(set) var transmit: TestDriver

    /// A new device activated with queues of `size` entries; `mergeable` negotiates MRG_RXBUF.
    /// `offloads` negotiates CSUM, GUEST_CSUM and the TSO/UFO bits, as Linux does when they are offered.
    init(size: UInt16 = 16, mergeable: Bool = false, offloads: Bool = true) throws {
        device = NetDevice(mac: Self.mac, backend: backend)
        let wakes = self.wakes
        device.setReceiveBuffersAvailableHandler { wakes.wake() }
        receive = try TestDriver(size: size)
        transmit = try TestDriver(size: size)
        try activate(mergeable: mergeable, offloads: offloads)
    }

    func freshRings() throws {
        receive = try TestDriver(size: receive.size)
        transmit = try TestDriver(size: transmit.size)
    }

    func activate(mergeable: Bool = false, offloads: Bool = true) throws {
        let features = Self.baseFeatures | (mergeable ? VirtioNetFeature.mergeableReceiveBuffers : 0)
            | (offloads ? VirtioNetFeature.offloads : 0)
        let receiveQueue = try Queue(
            index: NetDevice.receiveQueueIndex, configuration: receive.configuration, memory: receive.memory,
            features: features)
        let transmitQueue = try Queue(
            index: NetDevice.transmitQueueIndex, configuration: transmit.configuration, memory: transmit.memory,
            features: features)
        try device.activate(VirtioActivation(
            queues: [receiveQueue, transmitQueue], memory: receive.memory, features: features, interrupt: interrupt))
    }

    /// Posts one receive chain of a single `length`-byte writable buffer, without kicking.
    @discardableResult
    func postReceiveBuffer(_ length: Int) throws -> (head: UInt16, buffer: TestDriver.Buffer) {
        let buffer = try receive.writable(length)
        return (try receive.publish([buffer]), buffer)
    }

    /// Puts `packet` on the transmitq as one chain of `pieces` readable buffers, and kicks.
    @discardableResult
    func transmitPacket(_ packet: [UInt8], pieces: Int = 1) throws -> UInt16 {
        let step = max(1, (packet.count + pieces - 1) / pieces)
        let buffers = try stride(from: 0, to: packet.count, by: step).map {
            try transmit.readable(Array(packet[$0..<min($0 + step, packet.count)]))
        }
        let head = try transmit.publish(buffers)
        device.queueNotified(index: NetDevice.transmitQueueIndex)
        return head
    }
}

/// A vnet header (all zero unless given) followed by an Ethernet frame of `length` bytes: broadcast
/// destination, our MAC as source, EtherType 0x0800, then a counting payload so misplaced bytes show.
func netPacket(length: Int = 60, header: VirtioNetHeader = VirtioNetHeader()) -> [UInt8] {
    var frame: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + NetHarness.mac + [0x08, 0x00]
    frame += (0..<max(0, length - frame.count)).map { UInt8(truncatingIfNeeded: $0) }
    return header.encoded() + frame.prefix(length)
}
