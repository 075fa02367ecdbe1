import GuestMemory
import Testing

@testable import Virtio

/// virtio-net (virtio 1.2 §5.1), one queue pair: configuration space, guest frames reaching the backend
/// (transmitq1), backend frames reaching the guest (receiveq1, with and without MRG_RXBUF), waiting for receive
/// buffers without losing frames, and surviving a misbehaving driver.
@Suite("virtio-net")
struct NetDeviceTests {
    // MARK: Identity and configuration space (§5.1.4)

    @Test func isDeviceOneWithAQueuePair() {
        let device = NetDevice(mac: NetHarness.mac, backend: RecordingNetworkBackend())
        #expect(device.deviceType == .network)
        #expect(device.deviceType.rawValue == 1)
        #expect(device.queueMaximumSizes == [256, 256])
        #expect(device.configurationSize == 12)
    }

    @Test func configurationHoldsMACStatusPairsAndMTUAtSpecOffsets() {
        let device = NetDevice(mac: NetHarness.mac, mtu: 1500, backend: RecordingNetworkBackend())
        #expect((0..<6).map { UInt8(device.readConfiguration(offset: $0, width: 1)) } == NetHarness.mac)
        #expect(device.readConfiguration(offset: 0, width: 4) == 0x1200_5452)
        #expect(device.readConfiguration(offset: 6, width: 2) == 1)  // status: VIRTIO_NET_S_LINK_UP
        #expect(device.readConfiguration(offset: 8, width: 2) == 1)  // max_virtqueue_pairs
        #expect(device.readConfiguration(offset: 10, width: 2) == 1500)  // mtu
        // Past the end and straddling it: 0.
        #expect(device.readConfiguration(offset: 12, width: 1) == 0)
        #expect(device.readConfiguration(offset: 10, width: 4) == 0)
        // Read-only: writing the MAC changes nothing.
        device.writeConfiguration(offset: 0, width: 4, value: 0)
        #expect(device.readConfiguration(offset: 0, width: 1) == 0x52)
    }

    @Test func linkStateIsStatusBitZeroAndAChangeUnderARunningDriverIsAnnounced() throws {
        let net = try NetHarness()
        #expect(net.device.readConfiguration(offset: 6, width: 2) == 1)
        net.device.setLinkUp(false)  // a socket link's peer went away
        #expect(net.device.readConfiguration(offset: 6, width: 2) == 0)
        #expect(net.interrupt.configurationChanges == 1)
        net.device.setLinkUp(false)  // no change, no notification
        #expect(net.interrupt.configurationChanges == 1)
        net.device.setLinkUp(true)
        #expect(net.device.readConfiguration(offset: 6, width: 2) == 1)
        #expect(net.interrupt.configurationChanges == 2)
        // The rest of the space is untouched by it.
        #expect(net.device.readConfiguration(offset: 0, width: 4) == 0x1200_5452)
        #expect(net.device.readConfiguration(offset: 8, width: 2) == 1)

        // Before DRIVER_OK and after a reset the driver reads the status when it starts: nothing to announce.
        net.device.reset()
        net.device.setLinkUp(false)
        #expect(net.device.readConfiguration(offset: 6, width: 2) == 0)
        #expect(net.interrupt.configurationChanges == 2)
        let fresh = NetDevice(mac: NetHarness.mac, backend: RecordingNetworkBackend())
        fresh.setLinkUp(false)
        #expect(fresh.readConfiguration(offset: 6, width: 2) == 0)
    }

    @Test func offersMACStatusMergeableBuffersAndOffloads() {
        let device = NetDevice(mac: NetHarness.mac, backend: RecordingNetworkBackend())
        let features = device.deviceFeatures
        for bit in [0, 1, 5, 7, 8, 10, 11, 12, 14, 15, 16] as [UInt64] { #expect(features & (1 << bit) != 0) }
        #expect(features & VirtioNetFeature.mtu == 0)  // no MTU configured
        #expect(features & (1 << 17) == 0)  // no control queue
        #expect(features & (1 << 22) == 0)  // no multiqueue

        let plain = NetDevice(mac: NetHarness.mac, mtu: 9000, offloads: false, backend: RecordingNetworkBackend())
        #expect(plain.deviceFeatures == VirtioNetFeature.mac | VirtioNetFeature.status
            | VirtioNetFeature.mergeableReceiveBuffers | VirtioNetFeature.mtu)
    }

    @Test func activationNeedsBothQueues() throws {
        let device = NetDevice(mac: NetHarness.mac, backend: RecordingNetworkBackend())
        let driver = try TestDriver()
        let queue = try driver.makeQueue()
        for queues in [[queue, nil], [nil, queue], [queue]] as [[Queue?]] {
            #expect(throws: VirtioError.self) {
                try device.activate(VirtioActivation(
                    queues: queues, memory: driver.memory, features: 0, interrupt: RecordingInterrupt()))
            }
        }
    }

    // MARK: Transmit (§5.1.6.2)

    @Test func transmittedFrameReachesTheBackendIntact() throws {
        let net = try NetHarness()
        let packet = netPacket(length: 1514)
        let head = try net.transmitPacket(packet, pieces: 3)  // header and frame split across buffers
        #expect(net.backend.frames == [packet])
        #expect(try net.transmit.usedIndex() == 1)
        #expect(try net.transmit.usedElement(0) == (UInt32(head), 0))
        #expect(net.interrupt.usedBufferSignals == [NetDevice.transmitQueueIndex])
        #expect(net.device.statistics.transmittedFrames == 1)
    }

    @Test func checksumOffloadHeaderIsPassedThrough() throws {
        let net = try NetHarness()
        let header = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum, checksumStart: 34, checksumOffset: 16)
        let packet = netPacket(length: 60, header: header)
        try net.transmitPacket(packet)
        #expect(net.backend.frames == [packet])
    }

    @Test func malformedTransmitChainsAreDroppedCountedAndReturned() throws {
        let net = try NetHarness()
        // A runt: a header and 13 bytes, not even an Ethernet header.
        try net.transmitPacket(netPacket(length: 13))
        // A header the TAP would refuse: unknown gso_type.
        try net.transmitPacket(netPacket(length: 60, header: VirtioNetHeader(gsoType: 2, gsoSize: 1448)))
        // Checksum field beyond the frame.
        try net.transmitPacket(netPacket(
            length: 60, header: VirtioNetHeader(flags: 1, checksumStart: 50, checksumOffset: 16)))
        // A chain breaking §2.7.4.2: a readable buffer after a writable one.
        let writable = try net.transmit.writable(16)
        let readable = try net.transmit.readable(netPacket())
        try net.transmit.publish([writable, readable])
        net.device.queueNotified(index: NetDevice.transmitQueueIndex)
        // The queue carries on: a good frame after all that goes out.
        let good = netPacket(length: 100)
        try net.transmitPacket(good)

        #expect(net.backend.frames == [good])
        #expect(net.device.statistics.malformedTransmitChains == 4)
        #expect(net.device.statistics.transmittedFrames == 1)
        #expect(try net.transmit.usedIndex() == 5)
        #expect(net.interrupt.resetRequests.isEmpty)
    }

    @Test func offloadsTheDriverDidNotNegotiateAreRefused() throws {
        let net = try NetHarness(offloads: false)
        let header = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum, checksumStart: 34, checksumOffset: 16)
        try net.transmitPacket(netPacket(length: 60, header: header))
        try net.transmitPacket(netPacket(
            length: 3000, header: VirtioNetHeader(gsoType: VirtioNetHeader.gsoTCPv4, gsoSize: 1448)))
        #expect(net.backend.frames.isEmpty)
        #expect(net.device.statistics.malformedTransmitChains == 2)
    }

    @Test func backendFailuresDropTheFrameOnly() throws {
        let net = try NetHarness()
        net.backend.setFailing(true)
        try net.transmitPacket(netPacket())
        net.backend.setFailing(false)
        let packet = netPacket(length: 70)
        try net.transmitPacket(packet)
        #expect(net.backend.frames == [packet])
        #expect(net.device.statistics.transmitBackendErrors == 1)
        #expect(try net.transmit.usedIndex() == 2)
    }

    @Test func brokenTransmitRingAsksForAReset() throws {
        let net = try NetHarness()
        try net.transmit.setAvailableIndex(100)  // 100 new buffers in a 16-entry ring
        net.device.queueNotified(index: NetDevice.transmitQueueIndex)
        #expect(net.interrupt.resetRequests.count == 1)
        #expect(net.backend.frames.isEmpty)
    }

    // MARK: Receive (§5.1.6.3, §5.1.6.4)

    @Test func receivedFrameFillsOneBufferWithNumBuffersOne() throws {
        let net = try NetHarness()
        let (head, buffer) = try net.postReceiveBuffer(1526)
        let packet = netPacket(length: 300)
        #expect(net.device.deliver(frame: packet[...]))
        var expected = packet
        expected[10] = 1  // num_buffers, set by the device
        #expect(try net.receive.usedElement(0) == (UInt32(head), UInt32(packet.count)))
        #expect(try net.receive.contents(of: buffer).prefix(packet.count) == expected[...])
        #expect(try net.receive.contents(of: buffer)[packet.count] == 0xEE)  // nothing written past the frame
        #expect(net.interrupt.usedBufferSignals == [NetDevice.receiveQueueIndex])
        #expect(net.device.statistics.receivedFrames == 1)
    }

    @Test func mergeableFrameSpansThreeBuffersWithNumBuffersThree() throws {
        let net = try NetHarness(mergeable: true)
        let posted = try (0..<4).map { _ in try net.postReceiveBuffer(100) }
        let packet = netPacket(length: 238)  // 250 bytes with the header: 100 + 100 + 50
        #expect(net.device.deliver(frame: packet[...]))

        #expect(try net.receive.usedIndex() == 3)
        #expect(try net.receive.usedElement(0) == (UInt32(posted[0].head), 100))
        #expect(try net.receive.usedElement(1) == (UInt32(posted[1].head), 100))
        #expect(try net.receive.usedElement(2) == (UInt32(posted[2].head), 50))
        let written = try net.receive.contents(of: posted[0].buffer) + net.receive.contents(of: posted[1].buffer)
            + net.receive.contents(of: posted[2].buffer).prefix(50)
        let header = try VirtioNetHeader(parsing: written)
        #expect(header.numBuffers == 3)
        #expect(Array(written.dropFirst(12)) == Array(packet.dropFirst(12)))
        // One interrupt for the whole frame; the fourth buffer is still the guest's to fill.
        #expect(net.interrupt.usedBufferSignals == [NetDevice.receiveQueueIndex])
        #expect(net.device.hasReceiveBuffers)
    }

    @Test func withoutBuffersDeliverSaysNoThenSucceedsAfterTheDriverPosts() throws {
        let net = try NetHarness()
        let packet = netPacket(length: 80)
        #expect(!net.device.hasReceiveBuffers)
        #expect(!net.device.deliver(frame: packet[...]))
        #expect(!net.device.deliver(frame: packet[...]))  // still nothing; the caller keeps the frame
        #expect(net.wakes.value == 0)
        #expect(net.device.statistics.droppedReceiveFrames == 0)

        let (head, _) = try net.postReceiveBuffer(1526)
        net.device.queueNotified(index: NetDevice.receiveQueueIndex)
        #expect(net.wakes.value == 1)  // the caller is told to try again
        #expect(net.device.hasReceiveBuffers)
        #expect(net.device.deliver(frame: packet[...]))
        #expect(try net.receive.usedElement(0) == (UInt32(head), UInt32(packet.count)))
        // No one is waiting now: further kicks do not wake the caller.
        try net.postReceiveBuffer(1526)
        net.device.queueNotified(index: NetDevice.receiveQueueIndex)
        #expect(net.wakes.value == 1)
    }

    @Test func mergeableFrameWaitsUntilTheWholeFrameFitsAndKeepsItsBuffers() throws {
        let net = try NetHarness(mergeable: true)
        let first = try (0..<2).map { _ in try net.postReceiveBuffer(100) }
        let packet = netPacket(length: 238)
        // 200 bytes of room for 250: nothing is written or returned, nothing dropped.
        #expect(!net.device.deliver(frame: packet[...]))
        #expect(try net.receive.usedIndex() == 0)
        // With EVENT_IDX the device asks to be kicked at the next buffer (avail_event = 2).
        #expect(try net.receive.availableEvent() == 2)

        let third = try net.postReceiveBuffer(100)
        net.device.queueNotified(index: NetDevice.receiveQueueIndex)
        #expect(net.wakes.value == 1)
        #expect(net.device.deliver(frame: packet[...]))
        #expect(try net.receive.usedIndex() == 3)
        #expect(try net.receive.usedElement(0).id == UInt32(first[0].head))
        #expect(try net.receive.usedElement(1).id == UInt32(first[1].head))
        #expect(try net.receive.usedElement(2) == (UInt32(third.head), 50))
        #expect(try VirtioNetHeader(parsing: net.receive.contents(of: first[0].buffer)).numBuffers == 3)
    }

    /// A snapshot taken while the device holds receive chains for a frame that did not fit gives them back to the
    /// ring (nextAvailable moved back over them), so the restored device pops them again and none is lost.
    @Test func aSnapshotGivesHeldReceiveChainsBackToTheRing() throws {
        let net = try NetHarness(mergeable: true)
        for _ in 0..<2 { try net.postReceiveBuffer(100) }
        #expect(!net.device.deliver(frame: netPacket(length: 238)[...]))  // both popped and held
        let saved = try #require(net.device.snapshotQueues())
        #expect(saved.count == 2)
        #expect(saved[NetDevice.receiveQueueIndex]?.nextAvailable == 0)
        #expect(saved[NetDevice.transmitQueueIndex]?.nextAvailable == 0)

        // A device that cannot be saved says so: a reset one runs no queue.
        net.device.reset()
        #expect(net.device.snapshotQueues()?.allSatisfy { $0 == nil } == true)
    }

    @Test func withoutMergeableBuffersAFrameLargerThanTheBufferIsDroppedAndTheBufferKept() throws {
        let net = try NetHarness()
        let (head, _) = try net.postReceiveBuffer(100)
        #expect(net.device.deliver(frame: netPacket(length: 200)[...]))  // consumed: it can never fit
        #expect(net.device.statistics.droppedReceiveFrames == 1)
        #expect(try net.receive.usedIndex() == 0)
        let small = netPacket(length: 60)
        #expect(net.device.deliver(frame: small[...]))
        #expect(try net.receive.usedElement(0) == (UInt32(head), UInt32(small.count)))
    }

    @Test func mergeableFrameLargerThanTheWholeRingIsDropped() throws {
        let net = try NetHarness(size: 4, mergeable: true)
        for _ in 0..<4 { try net.postReceiveBuffer(100) }
        #expect(net.device.deliver(frame: netPacket(length: 500)[...]))
        #expect(net.device.statistics.droppedReceiveFrames == 1)
        // The held buffers serve the next frame.
        #expect(net.device.deliver(frame: netPacket(length: 60)[...]))
        #expect(try net.receive.usedIndex() == 1)
    }

    @Test func runtFramesFromTheBackendAreDropped() throws {
        let net = try NetHarness()
        try net.postReceiveBuffer(1526)
        #expect(net.device.deliver(frame: [1, 2, 3][...]))
        #expect(net.device.statistics.droppedReceiveFrames == 1)
        #expect(try net.receive.usedIndex() == 0)
    }

    @Test func unusableReceiveChainsAreReturnedEmptyAndSkipped() throws {
        let net = try NetHarness()
        // Too small for a vnet header, then a readable (not writable) buffer, then a good one.
        let tiny = try net.postReceiveBuffer(8)
        let readOnly = try net.receive.publish([net.receive.readable([0, 0])])
        let (good, _) = try net.postReceiveBuffer(1526)
        let packet = netPacket()
        #expect(net.device.deliver(frame: packet[...]))
        #expect(try net.receive.usedElement(0) == (UInt32(tiny.head), 0))
        #expect(try net.receive.usedElement(1) == (UInt32(readOnly), 0))
        #expect(try net.receive.usedElement(2) == (UInt32(good), UInt32(packet.count)))
        #expect(net.device.statistics.malformedReceiveChains == 2)
    }

    @Test func activationWakesACallerThatWaitedWhileTheDeviceWasDown() throws {
        let net = try NetHarness()
        net.device.reset()
        #expect(!net.device.deliver(frame: netPacket()[...]))
        // A driver that posts its receive buffers before DRIVER_OK and does not kick.
        try net.freshRings()
        let (head, _) = try net.postReceiveBuffer(1526)
        try net.activate()
        #expect(net.wakes.value == 1)
        #expect(net.device.deliver(frame: netPacket()[...]))
        #expect(try net.receive.usedElement(0).id == UInt32(head))
    }

    // MARK: Reset (§2.4)

    @Test func resetStopsBothQueuesAndAFreshDriverWakesTheWaitingCaller() throws {
        let net = try NetHarness()
        try net.postReceiveBuffer(1526)
        net.device.reset()
        let packet = netPacket()
        #expect(!net.device.deliver(frame: packet[...]))  // not running: the caller waits
        #expect(!net.device.hasReceiveBuffers)
        try net.transmit.publish([net.transmit.readable(netPacket())])
        net.device.queueNotified(index: NetDevice.transmitQueueIndex)
        #expect(net.backend.frames.isEmpty)

        // The driver starts over with new rings, posts a buffer and kicks.
        try net.freshRings()
        try net.activate()
        #expect(net.wakes.value == 1)  // activation: the waiting caller tries again...
        #expect(!net.device.deliver(frame: packet[...]))  // ...no buffers yet, so it waits for the kick
        let (head, _) = try net.postReceiveBuffer(1526)
        net.device.queueNotified(index: NetDevice.receiveQueueIndex)
        #expect(net.wakes.value == 2)
        #expect(net.device.deliver(frame: packet[...]))
        #expect(try net.receive.usedElement(0) == (UInt32(head), UInt32(packet.count)))
        try net.transmitPacket(packet)
        #expect(net.backend.frames == [packet])
    }
}
