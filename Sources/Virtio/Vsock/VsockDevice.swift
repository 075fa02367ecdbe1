// virtio-vsock, the socket device (virtio 1.2 §5.10), stream sockets only, bridged to host Unix sockets the
// way Firecracker does (see VsockHostProtocol).
//
// Device ID 19, three queues (§5.10.2) and an 8-byte configuration space holding le64 guest_cid (§5.10.4):
// - 0, rx: device → driver. The driver posts device-writable chains (Linux: a 44-byte header buffer and a
//   4 KiB payload buffer); the device writes one packet — header and payload — into each.
// - 1, tx: driver → device. Each chain's readable bytes are one packet; the device takes it and returns the
//   chain with used length 0.
// - 2, event: the driver posts buffers for transport events. The only event, TRANSPORT_RESET, is sent once after
//   a snapshot restore (`didRestore`): the restored VMM has none of the host connections the guest had.
//
// The protocol (connections, credit, the host's CONNECT handshake) is `VsockMuxer`'s; this file moves packets
// between it and the queues, and tells the VMM's event loop what to wait for: `hostInterest()` names the host
// streams worth polling and the next connection deadline, `serviceHost(now:)` is called when one is ready or
// the deadline passed. Host data is read only when the guest has credit for it and RX buffers to take it, so
// a slow guest holds data in the host's socket buffers, not in ours.
//
// Guest misbehaviour is survived and counted (`statistics`): malformed chains go back with length 0, packets
// with a bad header, foreign CIDs or a `len` beyond the chain are answered with RST (or dropped when no
// sender can be trusted). A broken ring stops the device until the driver resets it.
//
// Threads and locks: `queueNotified` and `serviceHost` run on the event loop (queueNotified on a vCPU thread
// before the ioeventfds are registered), `activate` / `reset` / configuration reads on vCPU threads. All state
// sits behind one Mutex; while holding it the device calls the host streams (non-blocking socket calls),
// `openListener` (a non-blocking connect) and `VirtioInterrupt`. The interest-changed handler is called with
// no lock held.

import GuestMemory
import Logging
import Synchronization

/// What the device counted since it was created (reset does not clear it).
public struct VsockDeviceStatistics: Sendable, Equatable {
    /// Packets taken from the tx queue and handed to the muxer.
    public var packetsFromGuest: UInt64 = 0
    /// Packets written into rx buffers.
    public var packetsToGuest: UInt64 = 0
    /// RW payload bytes each way.
    public var bytesFromGuest: UInt64 = 0
    public var bytesToGuest: UInt64 = 0
    /// Guest packets that broke the format: shorter than a header, an unknown op or type, a payload where none
    /// belongs or longer than the limit, bad shutdown flags, a `len` beyond the chain, or addresses other than
    /// guest → host. Answered with RST where the sender can be trusted, else dropped.
    public var malformedPackets: UInt64 = 0
    /// Well-formed packets for no known connection, and connection requests no host listener took: RST.
    public var refusedPackets: UInt64 = 0
    /// Chains the queues rejected (§2.7.5), and rx chains too small for a header and a byte: returned empty.
    public var malformedChains: UInt64 = 0
    /// Connections reset because the guest did not answer a REQUEST or a SHUTDOWN in time.
    public var timedOutConnections: UInt64 = 0
    /// Connections refused because the device already held `VsockMuxer.maximumConnections`: guest REQUESTs
    /// answered RST (also counted in `refusedPackets`), host programs' streams closed.
    public var refusedConnections: UInt64 = 0

    public init() {}
}

public final class VsockDevice: VirtioDevice {
    public static let queueSize: UInt16 = 256
    /// How long the guest has to answer our REQUEST, or to close a connection after our SHUTDOWN, before we
    /// reset it (Firecracker's 2 s): a guest that never answers must not pin the host program's socket.
    public static let connectionTimeout: Duration = .seconds(2)

    public var deviceType: VirtioDeviceType { .vsock }
    public var queueMaximumSizes: [UInt16] { [Self.queueSize, Self.queueSize, Self.queueSize] }
    /// No device-specific feature: stream sockets only (no SEQPACKET). The core adds VERSION_1.
    public var deviceFeatures: UInt64 { 0 }
    public var configurationSize: Int { VirtioVsock.configSize }

    public let guestCID: UInt64
    public let socketPath: String

    private struct Running {
        var receive: Queue
        var transmit: Queue
        /// The event queue, used only after a restore (TRANSPORT_RESET); nil when the driver did not enable it.
        var event: Queue?
        let interrupt: any VirtioInterrupt
        /// An rx chain popped when the muxer then had nothing to send; used first next time.
        var heldReceiveChain: DescriptorChain?
        /// The last attempt to send found no rx buffer; notifications are on and the driver's kick clears it.
        var receiveStarved = false
    }

    private struct State {
        var muxer: VsockMuxer
        var running: Running?
        var statistics = VsockDeviceStatistics()
        /// When each connection waiting on the guest (our REQUEST, our SHUTDOWN) gets reset.
        var deadlines: [VsockMuxer.Key: ContinuousClock.Instant] = [:]
        var onInterestChanged: (@Sendable () -> Void)?
    }

    private let configuration: ConfigurationSpace
    private let logger: Logger
    private let state: Mutex<State>

    /// A device for guest CID `guestCID` (3 ..< 2^32-1, checked by the caller's configuration) whose host
    /// programs connect to the Unix socket `socketPath`; a guest connection to host port P opens the listener
    /// `socketPath_P` through `openListener` (throwing refuses it with RST). At most `maximumConnections` are
    /// held at once; more are refused (`VsockDeviceStatistics.refusedConnections`).
    public init(
        guestCID: UInt64, socketPath: String,
        openListener: @escaping @Sendable (String) throws -> any VsockHostStream,
        maximumConnections: Int = VsockMuxer.defaultMaximumConnections,
        logger: Logger = Logger(label: "swiftlet.virtio-vsock")
    ) {
        precondition(VirtioVsock.isValidGuestCID(guestCID), "guest CID \(guestCID) is reserved")
        self.guestCID = guestCID
        self.socketPath = socketPath
        self.logger = logger
        var space = ConfigurationSpace(size: VirtioVsock.configSize)
        space.bytes = VirtioVsock.configSpace(guestCID: guestCID)
        configuration = space
        state = Mutex(State(muxer: VsockMuxer(guestCID: guestCID, socketPath: socketPath, maximumConnections: maximumConnections,
                                                openListener: openListener)))
    }

    /// Called, with no lock held, when the set of host streams to poll may have changed through a call from a
    /// thread other than the event loop's (activation, reset, a notification taken on a vCPU thread).
    public func setInterestChangedHandler(_ handler: (@Sendable () -> Void)?) {
        state.withLock { $0.onInterestChanged = handler }
    }

    public var statistics: VsockDeviceStatistics {
        state.withLock { state in
            var statistics = state.statistics
            statistics.refusedConnections = state.muxer.refusedConnections
            return statistics
        }
    }

    /// Connections the muxer knows (established, connecting, or waiting for a last RST), and host programs
    /// still to send their CONNECT line.
    public var connectionCount: Int { state.withLock { $0.muxer.connectionCount + $0.muxer.handshakingCount } }

    // MARK: Configuration space (§5.10.4)

    public func readConfiguration(offset: Int, width: Int) -> UInt64 { configuration.read(offset: offset, width: width) }

    /// guest_cid is read-only.
    public func writeConfiguration(offset: Int, width: Int, value: UInt64) {}

    // MARK: Lifecycle

    public func activate(_ activation: VirtioActivation) throws {
        let queues = activation.queues
        guard queues.count == 3, let receive = queues[VirtioVsock.receiveQueue],
            let transmit = queues[VirtioVsock.transmitQueue]
        else {
            throw VirtioError.activationFailed("virtio-vsock: the driver did not enable both rx and tx")
        }
        let handler = state.withLock { state in
            state.running = Running(receive: receive, transmit: transmit, event: queues[VirtioVsock.eventQueue],
                                    interrupt: activation.interrupt)
            // Linux posts its rx buffers before DRIVER_OK and kicks only then; look at them now.
            fillReceive(&state)
            return state.onInterestChanged
        }
        handler?()
    }

    /// The held rx chain is the last one popped: moving `nextAvailable` back over it gives it back to the ring.
    /// Connections are not saved: a restore starts with none and tells the driver so (`didRestore`).
    public func snapshotQueues() -> [QueueConfiguration?]? {
        state.withLock { state in
            guard let running = state.running else { return [nil, nil, nil] }
            var receive = running.receive.configuration
            if running.heldReceiveChain != nil { receive.nextAvailable &-= 1 }
            return [receive, running.transmit.configuration, running.event?.configuration]
        }
    }

    /// The host side of every connection the guest had is gone (the restored VMM is a new process), so the
    /// driver gets VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (§5.10.6.6), as after a migration: Linux then resets every
    /// socket and re-reads the guest CID, and new connections work. Without an event buffer the driver is not
    /// told; its old connections are answered with RST when they next send.
    public func didRestore() {
        state.withLock { state in
            guard var running = state.running, var event = running.event else { return }
            do {
                guard let chain = try event.popAvailable() else {
                    logger.warning("virtio-vsock: no event buffer for TRANSPORT_RESET after the restore")
                    return
                }
                var writer = chain.writer()
                // struct virtio_vsock_event { le32 id; }; a buffer too small for it gets what fits (nothing).
                try? writer.writeInteger(VirtioVsock.transportResetEvent)
                try event.addUsed(head: chain.head, length: UInt32(writer.bytesWritten))
                if event.needsNotification() { running.interrupt.signalUsedBuffers(queue: VirtioVsock.eventQueue) }
            } catch {
                logger.warning("virtio-vsock: TRANSPORT_RESET after the restore failed: \(error)")
            }
            running.event = event
            state.running = running
        }
    }

    /// Drops the queues and every connection: host streams are closed. The driver forgets its sockets on reset
    /// too, so no RST is owed.
    public func reset() {
        let handler = state.withLock { state in
            state.running = nil
            state.muxer.closeAll()
            state.deadlines.removeAll()
            return state.onInterestChanged
        }
        handler?()
    }

    public func queueNotified(index: Int) {
        let handler = state.withLock { state -> (@Sendable () -> Void)? in
            switch index {
            case VirtioVsock.transmitQueue:
                drainTransmit(&state)
            case VirtioVsock.receiveQueue:
                state.running?.receiveStarved = false
            default:
                return nil  // event queue buffers: nothing to deliver
            }
            fillReceive(&state)
            refreshDeadlines(&state, now: .now)
            return state.onInterestChanged
        }
        handler?()
    }

    // MARK: The host side

    /// True while the driver is running: host programs are accepted only then, so that a REQUEST never waits
    /// for a driver that is not there (the host's connect waits in the listen backlog instead).
    public var acceptsHostStreams: Bool { state.withLock { $0.running != nil } }

    /// A host program connected to the device socket (it must send `CONNECT <port>\n` first).
    public func addHostStream(_ stream: any VsockHostStream) {
        state.withLock { state in
            state.muxer.addHostStream(stream)
            state.muxer.service()
            fillReceive(&state)
            refreshDeadlines(&state, now: .now)
        }
    }

    /// What the event loop should wait for: the host streams that can make progress, and the earliest
    /// connection deadline.
    public func hostInterest() -> (streams: [VsockMuxer.HostStreamInterest], deadline: ContinuousClock.Instant?) {
        state.withLock { state in
            let guestCanReceive = state.running.map { !$0.receiveStarved } ?? false
            return (state.muxer.hostStreamInterests(guestCanReceive: guestCanReceive), state.deadlines.values.min())
        }
    }

    /// A host stream is ready, or a deadline passed: reads CONNECT lines, writes what the host streams are owed,
    /// resets connections whose deadline is behind `now`, and sends what the guest can take.
    public func serviceHost(now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            refreshDeadlines(&state, now: now)
            for (key, deadline) in state.deadlines where deadline <= now {
                state.muxer.reset(key)
                state.deadlines[key] = nil
                state.statistics.timedOutConnections += 1
                logger.debug("virtio-vsock: connection \(key.hostPort)→\(key.guestPort) timed out; reset")
            }
            state.muxer.service()
            fillReceive(&state)
            refreshDeadlines(&state, now: now)
        }
    }

    /// Starts the clock for connections that now wait on the guest, and stops it for those that no longer do.
    private func refreshDeadlines(_ state: inout State, now: ContinuousClock.Instant) {
        var deadlines: [VsockMuxer.Key: ContinuousClock.Instant] = [:]
        for (key, connectionState) in state.muxer.connectionStates {
            let waiting: Bool
            switch connectionState {
            case .connecting: waiting = true
            case .established: waiting = !(state.muxer.localShutdown(of: key) ?? []).isEmpty
            case .closed: waiting = false
            }
            if waiting { deadlines[key] = state.deadlines[key] ?? now + Self.connectionTimeout }
        }
        state.deadlines = deadlines
    }

    // MARK: tx → muxer

    private func drainTransmit(_ state: inout State) {
        guard var running = state.running else { return }
        var statistics = state.statistics
        do {
            let notify = try running.transmit.serveAvailable(
                malformed: { head, reason in
                    statistics.malformedChains += 1
                    logGuestError(statistics.malformedChains, "tx head \(head): \(reason)")
                },
                { chain in
                    transmitPacket(chain, muxer: &state.muxer, statistics: &statistics)
                    return 0  // the device writes nothing into tx buffers
                })
            if notify { running.interrupt.signalUsedBuffers(queue: VirtioVsock.transmitQueue) }
            state.running = running
        } catch {
            logger.error("virtio-vsock: tx: \(error); the device needs a reset")
            running.interrupt.deviceNeedsReset(error)
            state.running = nil
        }
        state.statistics = statistics
    }

    /// Reads one packet from a tx chain (its header, then at most `len` payload bytes) and hands it to the muxer.
    private func transmitPacket(_ chain: DescriptorChain, muxer: inout VsockMuxer, statistics: inout VsockDeviceStatistics) {
        let available = chain.readableBytes
        var reader = chain.reader()
        guard available >= UInt64(VsockPacketHeader.size), var packet = try? reader.read(count: VsockPacketHeader.size) else {
            statistics.malformedPackets += 1
            logGuestError(statistics.malformedPackets, "tx head \(chain.head): \(available) bytes, shorter than a packet header")
            return
        }
        // The format is checked here for counting and logging; the muxer checks it again and answers (RST).
        let inChain = available - UInt64(VsockPacketHeader.size)
        var problem: String?
        var payloadCount: UInt64 = 0
        do throws(VsockHeaderError) {
            let header = try VsockPacketHeader(parsing: packet, maximumPayload: muxer.maximumPayload)
            payloadCount = min(UInt64(header.length), inChain)
            if header.source.cid != guestCID || header.destination.cid != VsockHostProtocol.hostCID {
                problem = "packet \(header.source) → \(header.destination) is not from guest CID \(guestCID) to the host"
            } else if UInt64(header.length) > inChain {
                // Handed on short all the same: the connection sees the mismatch and resets (RST), and a packet
                // for no connection is refused anyway.
                problem = "len \(header.length), but \(inChain) payload bytes in the chain"
            } else if header.operation == .readWrite {
                statistics.bytesFromGuest += payloadCount
            }
        } catch {
            problem = error.description
        }
        if payloadCount > 0 {
            guard let payload = try? reader.read(count: Int(payloadCount)) else { return }  // within the chain: cannot fail
            packet += payload
        }
        if let problem {
            statistics.malformedPackets += 1
            logGuestError(statistics.malformedPackets, "tx head \(chain.head): \(problem)")
        }
        statistics.packetsFromGuest += 1
        if muxer.receiveFromGuest(packet) == .refused, problem == nil { statistics.refusedPackets += 1 }
    }

    // MARK: muxer → rx

    /// Writes packets into rx buffers while the muxer has some and the driver has posted buffers.
    private func fillReceive(_ state: inout State) {
        guard var running = state.running else { return }
        var completed = 0
        do throws(VirtioError) {
            while true {
                guard let chain = try nextReceiveChain(&running, statistics: &state.statistics, completed: &completed) else {
                    running.receiveStarved = true
                    break
                }
                running.receiveStarved = false
                guard let packet = state.muxer.nextPacketForGuest(bufferSize: Int(min(chain.writableBytes, 1 << 20))) else {
                    running.heldReceiveChain = chain
                    break
                }
                var writer = chain.writer()
                do {
                    try writer.write(packet)
                } catch {
                    // Cannot happen: the packet fits the chain, whose buffers were proved inside guest RAM.
                    logger.error("virtio-vsock: rx head \(chain.head): \(error)")
                }
                try running.receive.addUsed(head: chain.head, length: UInt32(writer.bytesWritten))
                completed += 1
                state.statistics.packetsToGuest += 1
                if packet.count > VsockPacketHeader.size, packet[30] == UInt8(VsockOperation.readWrite.rawValue) {
                    state.statistics.bytesToGuest += UInt64(packet.count - VsockPacketHeader.size)
                }
            }
            if completed > 0, running.receive.needsNotification() {
                running.interrupt.signalUsedBuffers(queue: VirtioVsock.receiveQueue)
            }
            state.running = running
        } catch {
            logger.error("virtio-vsock: rx: \(error); the device needs a reset")
            running.interrupt.deviceNeedsReset(error)
            state.running = nil
        }
    }

    /// The held rx chain, or the next usable one from the ring; nil when the driver has none (notifications
    /// are then on, so its next post kicks us). Chains too small for a header and one byte go back empty.
    private func nextReceiveChain(
        _ running: inout Running, statistics: inout VsockDeviceStatistics, completed: inout Int
    ) throws(VirtioError) -> DescriptorChain? {
        if let held = running.heldReceiveChain {
            running.heldReceiveChain = nil
            return held
        }
        while true {
            let chain: DescriptorChain?
            do {
                chain = try running.receive.popAvailable()
            } catch .malformedChain(_, let head, let reason) {
                statistics.malformedChains += 1
                logGuestError(statistics.malformedChains, "rx head \(head): \(reason)")
                try running.receive.addUsed(head: head, length: 0)
                completed += 1
                continue
            }
            guard let chain else {
                // Ask for a kick when buffers come, and look again in case they came meanwhile (§2.7.10).
                if try running.receive.enableNotifications() { continue }
                return nil
            }
            guard chain.writableBytes > UInt64(VsockPacketHeader.size) else {
                statistics.malformedChains += 1
                logGuestError(statistics.malformedChains, "rx head \(chain.head): \(chain.writableBytes) writable bytes, no room for a packet")
                try running.receive.addUsed(head: chain.head, length: 0)
                completed += 1
                continue
            }
            // Buffers are here: no kicks needed until we run out again.
            if running.receive.notificationsEnabled { try running.receive.disableNotifications() }
            return chain
        }
    }

    /// The first few, then one in a thousand: a looping guest must not flood the log.
    private func logGuestError(_ count: UInt64, _ message: String) {
        if count <= 10 || count % 1000 == 0 { logger.warning("virtio-vsock: \(message) (\(count) so far)") }
    }
}
