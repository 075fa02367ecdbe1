// virtio-net, the network device (virtio 1.2 §5.1), one queue pair, no control queue.
//
// Device ID 1, two queues of up to 256 entries (§5.1.2):
// - 0, receiveq1: device → driver. The driver posts device-writable chains; `deliver(frame:)` fills them with
//   a frame from the backend (vnet header + Ethernet frame) and returns them with the bytes written. Without
//   MRG_RXBUF each frame takes one chain, which must hold it whole (Linux then posts 64 KiB "big" chains when
//   it negotiated GUEST_TSO, MTU-sized ones otherwise); with MRG_RXBUF a frame is spread over as many chains
//   as it needs and the header's num_buffers says how many (§5.1.6.4).
// - 1, transmitq1: driver → device. Each chain's readable bytes are one vnet header + frame; the device checks
//   the header and hands the bytes to the backend, then returns the chain with used length 0.
//
// No frame is ever dropped for lack of receive buffers: `deliver` returns false instead, the caller keeps the
// frame, and the device asks the driver to kick when it posts buffers (notifications on, EVENT_IDX-aware); that
// kick calls the handler set with `setReceiveBuffersAvailableHandler`, and the caller offers the frame again. Chains popped for a frame that
// then did not fit in what the ring had are held by the device (not returned) until the next attempt.
//
// Guest misbehaviour is survived and counted (`statistics`): malformed chains go back with length 0, bad vnet
// headers and runt or oversized TX frames are dropped; a broken ring (avail.idx jumping, a head outside the
// table) stops the device until the driver resets it.
//
// Threads and locks: `queueNotified` runs on the event loop, `deliver` on whichever thread reads the backend
// (the event loop too), `activate` / `reset` / configuration accesses on vCPU threads. Each direction has its
// own Mutex, never held together: `receive` (receiveq, held chains, RX counters) and `transmit` (transmitq, TX
// counters; held while the backend's `send` runs, so frames leave in order and `send` is never concurrent with
// itself). While holding either the device calls only `VirtioInterrupt` and `send`; the receive-buffers
// handler is called with no lock held.

import GuestMemory
import Logging
import Synchronization

/// What the device counted since it was created (reset does not clear it).
public struct NetDeviceStatistics: Sendable, Equatable {
    /// Frames handed to the backend.
    public var transmittedFrames: UInt64 = 0
    /// Transmit chains dropped because they were malformed: a broken chain (§2.7.5), fewer bytes than a vnet
    /// header and an Ethernet header, more than `NetDevice.maximumPacketLength`, an invalid vnet header, or one
    /// asking for an offload the driver did not negotiate.
    public var malformedTransmitChains: UInt64 = 0
    /// Frames the backend's `send` refused (thrown errors).
    public var transmitBackendErrors: UInt64 = 0
    /// Frames written into receive chains.
    public var receivedFrames: UInt64 = 0
    /// Frames dropped on receive: shorter than a vnet header, or larger than the guest's buffers can ever hold
    /// (one chain without MRG_RXBUF, the whole ring with it).
    public var droppedReceiveFrames: UInt64 = 0
    /// Receive chains the driver made unusable (malformed, or with no room for a vnet header): returned empty.
    public var malformedReceiveChains: UInt64 = 0

    public init() {}
}

public final class NetDevice: VirtioDevice {
    public static let queueSize: UInt16 = 256
    public static let receiveQueueIndex = 0
    public static let transmitQueueIndex = 1
    /// The largest vnet header + frame either way: a 64 KiB GSO frame plus Ethernet and VLAN headers, the
    /// limit Linux's virtio_net and Firecracker use (12 + 65550).
    public static let maximumPacketLength = 65562
    /// A vnet header and a 14-byte Ethernet header: the shortest TX packet that means anything.
    public static let minimumTransmitLength = VirtioNetHeader.size + 14

    public var deviceType: VirtioDeviceType { .network }
    public var queueMaximumSizes: [UInt16] { [Self.queueSize, Self.queueSize] }
    public var deviceFeatures: UInt64 { config.offeredFeatures(offloads: offloads) }
    public var configurationSize: Int { VirtioNetConfig.size }

    /// The configuration space: fixed at creation but for the link state (`setLinkUp`).
    public var config: VirtioNetConfig { link.withLock { $0.config } }
    public let offloads: Bool
    public let backend: any NetworkBackend

    private struct ReceiveQueue {
        var queue: Queue
        let interrupt: any VirtioInterrupt
        let mergeable: Bool
        /// Chains popped for a frame that did not fit yet, in ring order; used first next time.
        var held: [DescriptorChain] = []
        var heldBytes: UInt64 = 0
    }

    private struct ReceiveSide {
        var running: ReceiveQueue?
        /// A caller holds a frame `deliver` refused; survives reset so the next driver's kick still wakes it.
        var callerWaiting = false
        var statistics = NetDeviceStatistics()
        var onBuffersAvailable: (@Sendable () -> Void)?
    }

    private struct TransmitQueue {
        var queue: Queue
        let interrupt: any VirtioInterrupt
        /// The negotiated features, which bound the offloads a transmit header may ask for.
        let features: UInt64
    }

    private struct TransmitSide {
        var running: TransmitQueue?
        var statistics = NetDeviceStatistics()
    }

    private struct Link {
        var config: VirtioNetConfig
        /// Set while the driver is running: where a link change is announced.
        var interrupt: (any VirtioInterrupt)?
    }

    private let logger: Logger
    private let link: Mutex<Link>
    private let receive = Mutex(ReceiveSide())
    private let transmit = Mutex(TransmitSide())

    /// A NIC with address `mac` (6 bytes) on `backend`. `mtu` is offered with VIRTIO_NET_F_MTU when set;
    /// `offloads` offers the checksum/TSO/UFO features, which the backend must then honour (see
    /// `NetworkBackend`).
    public init(
        mac: [UInt8], mtu: UInt16? = nil, offloads: Bool = true, backend: any NetworkBackend,
        logger: Logger = Logger(label: "swiftlet.virtio-net")
    ) {
        self.link = Mutex(Link(config: VirtioNetConfig(mac: mac, mtu: mtu)))
        self.offloads = offloads
        self.backend = backend
        self.logger = logger
    }

    /// Called (on the thread that serves queue notifications, no lock held) when the driver posts receive
    /// buffers after `deliver` returned false: offer the kept frame again.
    public func setReceiveBuffersAvailableHandler(_ handler: (@Sendable () -> Void)?) {
        receive.withLock { $0.onBuffersAvailable = handler }
    }

    public var statistics: NetDeviceStatistics {
        var total = receive.withLock { $0.statistics }
        let sent = transmit.withLock { $0.statistics }
        total.transmittedFrames = sent.transmittedFrames
        total.malformedTransmitChains = sent.malformedTransmitChains
        total.transmitBackendErrors = sent.transmitBackendErrors
        return total
    }

    // MARK: Configuration space (§5.1.4)

    public func readConfiguration(offset: Int, width: Int) -> UInt64 { config.read(offset: offset, width: width) }

    /// Sets `status`'s VIRTIO_NET_S_LINK_UP — down while the backend has nowhere to send, like a NIC whose cable is
    /// out — and, when it changed under a running driver, sends a configuration change notification, on which the
    /// driver rereads it (Linux turns the interface's carrier on or off). Callable from any thread.
    public func setLinkUp(_ up: Bool) {
        let interrupt = link.withLock { link -> (any VirtioInterrupt)? in
            guard link.config.linkUp != up else { return nil }
            link.config.linkUp = up
            return link.interrupt
        }
        interrupt?.signalConfigurationChange()
    }

    /// Read-only for a modern driver (the MAC changes only through the control queue, not offered).
    public func writeConfiguration(offset: Int, width: Int, value: UInt64) {}

    // MARK: Lifecycle

    public func activate(_ activation: VirtioActivation) throws {
        let queues = activation.queues
        guard queues.count == 2, let receiveQueue = queues[Self.receiveQueueIndex],
            let transmitQueue = queues[Self.transmitQueueIndex]
        else {
            throw VirtioError.activationFailed("virtio-net: the driver did not enable both receiveq1 and transmitq1")
        }
        let interrupt = activation.interrupt
        let mergeable = activation.features & VirtioNetFeature.mergeableReceiveBuffers != 0
        link.withLock { $0.interrupt = interrupt }
        transmit.withLock {
            $0.running = TransmitQueue(queue: transmitQueue, interrupt: interrupt, features: activation.features)
        }
        let handler = receive.withLock { side -> (@Sendable () -> Void)? in
            side.running = ReceiveQueue(queue: receiveQueue, interrupt: interrupt, mergeable: mergeable)
            // A caller kept a frame while the device was down: let it try now, in case the driver posted its
            // buffers before DRIVER_OK and never kicks again.
            guard side.callerWaiting else { return nil }
            side.callerWaiting = false
            return side.onBuffersAvailable
        }
        handler?()
    }

    /// Drops both queues and any held receive chains (the driver forgets them at reset anyway).
    /// Receive chains held for a frame that did not fit yet are the last ones popped, in ring order: moving
    /// `nextAvailable` back over them gives them back to the ring, and the restored device pops them again.
    public func snapshotQueues() -> [QueueConfiguration?]? {
        let receiveQueue = receive.withLock { side -> QueueConfiguration? in
            guard let running = side.running else { return nil }
            var configuration = running.queue.configuration
            configuration.nextAvailable &-= UInt16(truncatingIfNeeded: running.held.count)
            return configuration
        }
        return [receiveQueue, transmit.withLock { $0.running?.queue.configuration }]
    }

    public func reset() {
        link.withLock { $0.interrupt = nil }
        transmit.withLock { $0.running = nil }
        receive.withLock { $0.running = nil }
    }

    public func queueNotified(index: Int) {
        switch index {
        case Self.receiveQueueIndex:
            let handler = receive.withLock { side -> (@Sendable () -> Void)? in
                guard side.running != nil, side.callerWaiting else { return nil }
                side.callerWaiting = false
                return side.onBuffersAvailable
            }
            handler?()
        case Self.transmitQueueIndex:
            transmit.withLock { drainTransmit(&$0) }
        default:
            return
        }
    }

    /// Whether a frame offered now would find at least one receive chain (held or in the ring).
    public var hasReceiveBuffers: Bool {
        receive.withLock { side in
            guard var running = side.running else { return false }
            defer { side.running = running }
            return !running.held.isEmpty || ((try? running.queue.pendingCount()) ?? 0) > 0
        }
    }

    // MARK: Backend → receiveq

    /// Writes `frame` (vnet header + Ethernet frame, as a TAP with IFF_VNET_HDR reads it) into the guest's
    /// receive buffers, setting num_buffers. Returns false when the guest has no room for it right now
    /// (or the device is not running): keep the frame and call again when the `setReceiveBuffersAvailableHandler` handler runs.
    /// Returns true when the frame is consumed — delivered, or dropped because it can never fit (counted).
    public func deliver(frame: ArraySlice<UInt8>) -> Bool {
        receive.withLock { side -> Bool in
            guard frame.count >= VirtioNetHeader.size, frame.count <= Self.maximumPacketLength else {
                side.statistics.droppedReceiveFrames += 1
                return true
            }
            guard var running = side.running else {
                side.callerWaiting = true
                return false
            }
            let outcome: ReceiveOutcome
            do throws(VirtioError) {
                outcome = try place(frame, into: &running, statistics: &side.statistics)
            } catch {
                logger.error("virtio-net: receiveq1: \(error); the device needs a reset")
                running.interrupt.deviceNeedsReset(error)
                side.running = nil
                side.callerWaiting = true
                return false
            }
            side.running = running
            switch outcome {
            case .delivered, .dropped:
                side.callerWaiting = false
                return true
            case .noBuffers:
                side.callerWaiting = true
                return false
            }
        }
    }

    private enum ReceiveOutcome { case delivered, dropped, noBuffers }

    private func place(
        _ frame: ArraySlice<UInt8>, into running: inout ReceiveQueue, statistics: inout NetDeviceStatistics
    ) throws(VirtioError) -> ReceiveOutcome {
        let needed = UInt64(frame.count)
        var completed = 0
        defer {
            if completed > 0, running.queue.needsNotification() {
                running.interrupt.signalUsedBuffers(queue: Self.receiveQueueIndex)
            }
        }
        if !running.mergeable, let first = running.held.first, first.writableBytes < needed {
            // §5.1.6.3.1: without MRG_RXBUF one chain must hold the frame; this one never will. Keep the
            // chain for a smaller frame and drop this one, as a NIC does with a frame over its buffer size.
            statistics.droppedReceiveFrames += 1
            return .dropped
        }
        let target = running.mergeable ? needed : 1
        while running.mergeable ? running.heldBytes < target : running.held.isEmpty {
            if running.held.count >= Int(running.queue.size) {
                // Every chain of the ring is held and the frame still does not fit: it never will.
                statistics.droppedReceiveFrames += 1
                return .dropped
            }
            guard let chain = try popReceiveChain(&running, statistics: &statistics, completed: &completed) else {
                // Ask for a kick when buffers come, and look again in case they came meanwhile (§2.7.10).
                if try running.queue.enableNotifications() { continue }
                return .noBuffers
            }
            running.held.append(chain)
            running.heldBytes += chain.writableBytes
            if !running.mergeable, chain.writableBytes < needed {
                statistics.droppedReceiveFrames += 1
                return .dropped
            }
        }
        // Enough room: no kicks needed until the caller runs out again.
        try running.queue.disableNotifications()

        var packet = Array(frame)
        let chainsUsed = running.mergeable ? countChains(for: needed, in: running.held) : 1
        // num_buffers (offset 10) is the device's to fill in: 1 without MRG_RXBUF (§5.1.6.4).
        packet[10] = UInt8(truncatingIfNeeded: chainsUsed)
        packet[11] = UInt8(truncatingIfNeeded: chainsUsed >> 8)
        var rest = packet[...]
        for chain in running.held.prefix(chainsUsed) {
            var writer = chain.writer()
            let piece = rest.prefix(Int(min(writer.remaining, UInt64(rest.count))))
            do {
                try writer.write(piece)
            } catch {
                // Cannot happen: the piece fits and the buffers were proved inside guest RAM.
                logger.error("virtio-net: receiveq1 head \(chain.head): \(error)")
            }
            rest = rest.dropFirst(piece.count)
            try running.queue.addUsed(head: chain.head, length: UInt32(writer.bytesWritten))
            completed += 1
        }
        running.held.removeFirst(chainsUsed)
        running.heldBytes = running.held.reduce(0) { $0 + $1.writableBytes }
        statistics.receivedFrames += 1
        return .delivered
    }

    /// How many of `chains`, in order, it takes to hold `bytes`.
    private func countChains(for bytes: UInt64, in chains: [DescriptorChain]) -> Int {
        var room: UInt64 = 0
        for (index, chain) in chains.enumerated() {
            room += chain.writableBytes
            if room >= bytes { return index + 1 }
        }
        return chains.count
    }

    /// The next usable receive chain. Malformed ones, and ones without room for a vnet header (which must sit in
    /// the first chain, §5.1.6.4), go back with length 0 and are counted.
    private func popReceiveChain(
        _ running: inout ReceiveQueue, statistics: inout NetDeviceStatistics, completed: inout Int
    ) throws(VirtioError) -> DescriptorChain? {
        while true {
            let chain: DescriptorChain?
            do {
                chain = try running.queue.popAvailable()
            } catch .malformedChain(let queue, let head, let reason) {
                statistics.malformedReceiveChains += 1
                logGuestError(statistics.malformedReceiveChains, "queue \(queue) head \(head): \(reason)")
                try running.queue.addUsed(head: head, length: 0)
                completed += 1
                continue
            }
            guard let chain else { return nil }
            guard chain.writableBytes >= UInt64(VirtioNetHeader.size) else {
                statistics.malformedReceiveChains += 1
                logGuestError(
                    statistics.malformedReceiveChains,
                    "receiveq1 head \(chain.head): \(chain.writableBytes) writable bytes, no room for a header")
                try running.queue.addUsed(head: chain.head, length: 0)
                completed += 1
                continue
            }
            return chain
        }
    }

    // MARK: transmitq → backend

    private func drainTransmit(_ side: inout TransmitSide) {
        guard var running = side.running else { return }
        let features = running.features
        do {
            let notify = try running.queue.serveAvailable(
                malformed: { head, reason in
                    side.statistics.malformedTransmitChains += 1
                    logGuestError(side.statistics.malformedTransmitChains, "transmitq1 head \(head): \(reason)")
                },
                { chain in
                    transmitChain(chain, features: features, statistics: &side.statistics)
                    return 0  // §5.1.6.2: the device writes nothing into transmit buffers.
                })
            if notify { running.interrupt.signalUsedBuffers(queue: Self.transmitQueueIndex) }
            side.running = running
        } catch {
            logger.error("virtio-net: transmitq1: \(error); the device needs a reset")
            running.interrupt.deviceNeedsReset(error)
            side.running = nil
        }
    }

    /// Checks one transmit chain and hands its bytes to the backend; drops and counts it when malformed.
    private func transmitChain(_ chain: DescriptorChain, features: UInt64, statistics: inout NetDeviceStatistics) {
        let length = chain.readableBytes
        guard length >= UInt64(Self.minimumTransmitLength), length <= UInt64(Self.maximumPacketLength) else {
            statistics.malformedTransmitChains += 1
            logGuestError(statistics.malformedTransmitChains, "transmitq1 head \(chain.head): \(length)-byte packet")
            return
        }
        var reader = chain.reader()
        let packet: [UInt8]
        do {
            packet = try reader.read(count: Int(length))
            try VirtioNetHeader.validated(packet: packet).checkTransmitOffloads(negotiated: features)
        } catch {
            statistics.malformedTransmitChains += 1
            logGuestError(statistics.malformedTransmitChains, "transmitq1 head \(chain.head): \(error)")
            return
        }
        do {
            try backend.send(packet[...])
            statistics.transmittedFrames += 1
        } catch {
            statistics.transmitBackendErrors += 1
            if statistics.transmitBackendErrors <= 10 || statistics.transmitBackendErrors % 1000 == 0 {
                logger.warning("virtio-net: backend send: \(error) (\(statistics.transmitBackendErrors) so far)")
            }
        }
    }

    /// The first few, then one in a thousand: a looping guest must not flood the log.
    private func logGuestError(_ count: UInt64, _ message: String) {
        if count <= 10 || count % 1000 == 0 { logger.warning("virtio-net: \(message) (\(count) so far)") }
    }
}
