import GuestMemory
import Synchronization
import Testing

@testable import Virtio

/// virtio-console (virtio 1.2 §5.3), single port: what the guest sees in configuration space, how its output
/// reaches the host (transmitq → `output`), how host input reaches it (`enqueueInput` → receiveq), and what a
/// broken driver or a reset does.
@Suite("virtio-console")
struct ConsoleDeviceTests {
    let ascii: (String) -> [UInt8] = { Array($0.utf8) }

    // MARK: Identity and configuration space

    @Test func isDeviceThreeWithReceiveAndTransmitQueues() {
        let device = ConsoleDevice(output: { _ in })
        #expect(device.deviceType == .console)
        #expect(device.deviceType.rawValue == 3)
        #expect(device.queueMaximumSizes == [256, 256])
        // No SIZE, no MULTIPORT (so no control queues); EMERG_WRITE only.
        #expect(device.deviceFeatures == VirtioConsoleFeature.emergencyWrite)
        #expect(device.configurationSize == 12)
    }

    @Test func configurationSpaceReadsAreLittleEndianAndBoundsChecked() {
        let device = ConsoleDevice(output: { _ in })
        #expect(device.readConfiguration(offset: 0, width: 2) == 0)  // cols
        #expect(device.readConfiguration(offset: 2, width: 2) == 0)  // rows
        #expect(device.readConfiguration(offset: 4, width: 4) == 1)  // max_nr_ports
        #expect(device.readConfiguration(offset: 4, width: 1) == 1)
        #expect(device.readConfiguration(offset: 8, width: 4) == 0)  // emerg_wr reads as 0
        #expect(device.readConfiguration(offset: 0, width: 8) == 1 << 32)
        // Past the end, straddling the end, negative, odd widths: 0, never a trap.
        #expect(device.readConfiguration(offset: 12, width: 1) == 0)
        #expect(device.readConfiguration(offset: 10, width: 4) == 0)
        #expect(device.readConfiguration(offset: 8, width: 8) == 0)
        #expect(device.readConfiguration(offset: -1, width: 1) == 0)
        #expect(device.readConfiguration(offset: 0, width: 3) == 0)
        #expect(device.readConfiguration(offset: Int.max, width: 4) == 0)
    }

    @Test func emergencyWritePrintsOneCharacterEvenBeforeActivation() {
        let output = OutputRecorder()
        let device = ConsoleDevice(output: { output.record($0) })
        device.writeConfiguration(offset: 8, width: 4, value: 0x4F)  // 'O'
        device.writeConfiguration(offset: 8, width: 4, value: 0xFFFF_FF4B)  // 'K': only the low byte counts
        // Everything else in configuration space is read-only.
        device.writeConfiguration(offset: 0, width: 2, value: 80)
        device.writeConfiguration(offset: 4, width: 4, value: 9)
        device.writeConfiguration(offset: 9, width: 1, value: 0x21)
        #expect(output.text == "OK")
        #expect(device.readConfiguration(offset: 0, width: 2) == 0)
        #expect(device.readConfiguration(offset: 4, width: 4) == 1)
    }

    @Test func activationNeedsBothQueues() throws {
        let device = ConsoleDevice(output: { _ in })
        let driver = try TestDriver()
        let queue = try driver.makeQueue()
        for queues in [[queue, nil], [nil, queue], [queue]] as [[Queue?]] {
            #expect(throws: VirtioError.self) {
                try device.activate(VirtioActivation(
                    queues: queues, memory: driver.memory, features: 0, interrupt: RecordingInterrupt()))
            }
        }
    }

    // MARK: Guest output: transmitq (§5.3.6.2)

    @Test func transmittedBuffersReachOutputInOrderAndComeBackWithLengthZero() throws {
        let console = try ConsoleHarness()
        let first = try console.transmitText("Linux version 6.1\n", pieces: 3)
        // Like Linux with EVENT_IDX: having seen used.idx 1, ask to be woken for the next one.
        try console.transmit.setUsedEvent(1)
        let second = try console.transmitText("login: ")
        #expect(console.output.text == "Linux version 6.1\nlogin: ")
        // §5.3.6.1: the device writes nothing into transmit buffers.
        #expect(try console.transmit.usedIndex() == 2)
        #expect(try console.transmit.usedElement(0) == (UInt32(first), 0))
        #expect(try console.transmit.usedElement(1) == (UInt32(second), 0))
        #expect(console.interrupt.usedBufferSignals == [1, 1])
    }

    @Test func severalChainsInOneKickKeepTheirOrder() throws {
        let console = try ConsoleHarness()
        for word in ["one ", "two ", "three"] {
            try console.transmit.publish([try console.transmit.readable(Array(word.utf8))])
        }
        console.device.queueNotified(index: 1)
        #expect(console.output.text == "one two three")
        #expect(try console.transmit.usedIndex() == 3)
        // One pass, one interrupt.
        #expect(console.interrupt.usedBufferSignals == [1])
    }

    @Test func aHugeTransmitBufferIsHandedOverInBoundedPieces() throws {
        let console = try ConsoleHarness()
        let length = ConsoleDevice.maximumOutputChunk * 2 + 100
        let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 31) }
        try console.transmit.publish([try console.transmit.readable(bytes)])
        console.device.queueNotified(index: 1)
        #expect(console.output.bytes == bytes)
        #expect(console.output.calls.map(\.count) == [65536, 65536, 100])
    }

    @Test func withEventIndexTheDeviceInterruptsOnlyWhenUsedEventIsCrossed() throws {
        let console = try ConsoleHarness()
        try console.transmit.setUsedEvent(5)  // "wake me when used.idx passes 5"
        try console.transmitText("a")
        try console.transmitText("b")
        #expect(console.interrupt.usedBufferSignals.isEmpty)
        for _ in 0..<4 { try console.transmitText("c") }
        #expect(console.interrupt.usedBufferSignals == [1])
        #expect(console.output.text == "abcccc")
    }

    // MARK: Host input: receiveq (§5.3.6.1)

    @Test func inputQueuedBeforeTheDriverPostsBuffersArrivesOnceItDoes() throws {
        let console = try ConsoleHarness()
        #expect(console.device.enqueueInput(ascii("ls -l\n")) == 6)
        #expect(console.device.pendingInputCount == 6)
        #expect(try console.receive.usedIndex() == 0)

        let buffer = try console.postReceiveBuffer(64)
        console.device.queueNotified(index: 0)
        #expect(try console.receive.usedElement(0).length == 6)
        #expect(try buffer.text(console.receive, count: 6) == "ls -l\n")
        // The rest of the buffer is untouched.
        #expect(try console.receive.contents(of: buffer)[6] == 0xEE)
        #expect(console.device.pendingInputCount == 0)
        #expect(console.interrupt.usedBufferSignals == [0])
    }

    @Test func inputGoesStraightIntoBuffersAlreadyPosted() throws {
        let console = try ConsoleHarness()
        let buffer = try console.postReceiveBuffer(64)
        console.device.queueNotified(index: 0)  // nothing to deliver yet: the buffer stays with the device
        #expect(try console.receive.usedIndex() == 0)

        #expect(console.device.enqueueInput(ascii("y")) == 1)  // no kick needed
        #expect(try console.receive.usedIndex() == 1)
        #expect(try buffer.text(console.receive, count: 1) == "y")
        #expect(console.interrupt.usedBufferSignals == [0])
    }

    @Test func inputPostedBeforeDriverOKIsDeliveredAtActivation() throws {
        let console = try ConsoleHarness()
        console.device.reset()
        #expect(console.device.enqueueInput(ascii("early")) == 5)
        // Linux posts its receive buffers before setting DRIVER_OK; activation must not wait for a kick.
        let buffer = try console.postReceiveBuffer(8)
        try console.activate()
        #expect(try buffer.text(console.receive, count: 5) == "early")
    }

    @Test func inputLargerThanOneBufferSpansSeveralInOrder() throws {
        let console = try ConsoleHarness()
        let a = try console.postReceiveBuffer(4)
        let b1 = try console.receive.writable(2)
        let b2 = try console.receive.writable(3)
        try console.receive.publish([b1, b2])  // one chain, two writable buffers
        let c = try console.postReceiveBuffer(16)

        #expect(console.device.enqueueInput(ascii("abcdefghijk")) == 11)
        #expect(try console.receive.usedIndex() == 3)
        #expect(try console.receive.usedElement(0).length == 4)
        #expect(try console.receive.usedElement(1).length == 5)
        #expect(try console.receive.usedElement(2).length == 2)
        #expect(try a.text(console.receive, count: 4) == "abcd")
        #expect(try b1.text(console.receive, count: 2) + b2.text(console.receive, count: 3) == "efghi")
        #expect(try c.text(console.receive, count: 2) == "jk")
        #expect(console.interrupt.usedBufferSignals == [0])
    }

    @Test func inputBeyondTheAvailableBuffersWaitsForMore() throws {
        let console = try ConsoleHarness()
        let first = try console.postReceiveBuffer(3)
        #expect(console.device.enqueueInput(ascii("hello")) == 5)
        #expect(try first.text(console.receive, count: 3) == "hel")
        #expect(console.device.pendingInputCount == 2)

        let second = try console.postReceiveBuffer(3)
        console.device.queueNotified(index: 0)
        #expect(try console.receive.usedElement(1).length == 2)
        #expect(try second.text(console.receive, count: 2) == "lo")
    }

    @Test func theHostQueueHoldsAtMost64KiBAndRefusesTheRest() throws {
        let console = try ConsoleHarness()
        let pattern = (0..<(ConsoleDevice.inputCapacity + 1000)).map { UInt8(truncatingIfNeeded: $0 % 251) }
        #expect(console.device.enqueueInput(pattern) == 65536)
        #expect(console.device.enqueueInput([0x41]) == 0)
        #expect(console.device.pendingInputCount == 65536)

        // The guest reads 4 KiB: exactly that much room opens up, and the caller retries the refused tail.
        let buffer = try console.postReceiveBuffer(4096)
        console.device.queueNotified(index: 0)
        #expect(try console.receive.contents(of: buffer) == Array(pattern[0..<4096]))
        #expect(console.device.enqueueInput(pattern[65536...]) == 1000)
        #expect(console.device.enqueueInput(Array(repeating: 0x41, count: 4000)) == 3096)

        // Drain everything (the ring inside has wrapped): no byte lost or reordered.
        var received = try console.receive.contents(of: buffer)
        while console.device.pendingInputCount > 0 {
            let next = try console.postReceiveBuffer(8192)
            let position = try console.receive.usedIndex()
            console.device.queueNotified(index: 0)
            let length = try console.receive.usedElement(position).length
            received += try console.receive.contents(of: next).prefix(Int(length))
        }
        #expect(received == pattern + Array(repeating: 0x41, count: 3096))
    }

    @Test func anIdleReceiveQueueAsksForNoKicksUntilInputWaits() throws {
        // Without EVENT_IDX the request shows as VIRTQ_USED_F_NO_NOTIFY in used.flags (§2.7.10).
        let console = try ConsoleHarness(features: VirtioFeature.version1)
        #expect(try console.receive.usedFlags() == 1)  // nothing to deliver: no kicks wanted
        _ = console.device.enqueueInput(ascii("x"))
        #expect(try console.receive.usedFlags() == 0)  // input waits for a buffer: kick me
        try console.postReceiveBuffer(8)
        console.device.queueNotified(index: 0)
        #expect(try console.receive.usedIndex() == 1)
        #expect(try console.receive.usedFlags() == 1)
    }

    @Test func enqueueingNothingIsANoOp() throws {
        let console = try ConsoleHarness()
        try console.postReceiveBuffer(8)
        #expect(console.device.enqueueInput([UInt8]()) == 0)
        #expect(try console.receive.usedIndex() == 0)
    }

    // MARK: Misbehaving drivers

    @Test func aMalformedReceiveChainIsReturnedEmptyAndTheInputGoesToTheNextBuffer() throws {
        let console = try ConsoleHarness()
        try console.receive.writeDescriptor(9, address: 0xC000_0000, length: 64, flags: RawDescriptor.flagWrite)
        try console.receive.publishHead(9)
        let good = try console.postReceiveBuffer(8)
        #expect(console.device.enqueueInput(ascii("ok")) == 2)
        #expect(try console.receive.usedElement(0) == (9, 0))
        #expect(try console.receive.usedElement(1).length == 2)
        #expect(try good.text(console.receive, count: 2) == "ok")
        #expect(console.interrupt.resetRequests.isEmpty)
    }

    @Test func aReceiveChainWithNoWritableBytesIsReturnedEmpty() throws {
        let console = try ConsoleHarness()
        let readOnly = try console.receive.publish([try console.receive.readable([1, 2, 3])])
        let good = try console.postReceiveBuffer(8)
        _ = console.device.enqueueInput(ascii("z"))
        #expect(try console.receive.usedElement(0) == (UInt32(readOnly), 0))
        #expect(try good.text(console.receive, count: 1) == "z")
    }

    @Test func aMalformedTransmitChainIsReturnedEmptyAndTheNextOneIsPrinted() throws {
        let console = try ConsoleHarness()
        try console.transmit.writeDescriptor(11, address: UInt64.max - 7, length: 0x100, flags: 0)
        try console.transmit.publishHead(11)
        try console.transmitText("after")
        #expect(try console.transmit.usedElement(0) == (11, 0))
        #expect(console.output.text == "after")
        #expect(console.interrupt.resetRequests.isEmpty)
    }

    @Test func aBrokenTransmitRingAsksForAResetAndStopsTheQueue() throws {
        let console = try ConsoleHarness()
        try console.transmit.setAvailableIndex(100)
        console.device.queueNotified(index: 1)
        #expect(console.interrupt.resetRequests == [
            .availableIndexJump(queue: 1, lastSeen: 0, published: 100, queueSize: 16)
        ])
        try console.transmit.setAvailableIndex(0)
        try console.transmitText("ignored")
        #expect(console.output.bytes.isEmpty)
        #expect(console.interrupt.resetRequests.count == 1)
    }

    @Test func aBrokenReceiveRingAsksForAResetAndKeepsTheInput() throws {
        let console = try ConsoleHarness()
        try console.receive.setAvailableIndex(40)
        #expect(console.device.enqueueInput(ascii("keep")) == 4)
        #expect(console.interrupt.resetRequests == [
            .availableIndexJump(queue: 0, lastSeen: 0, published: 40, queueSize: 16)
        ])
        #expect(console.device.pendingInputCount == 4)
        #expect(try console.receive.usedIndex() == 0)
    }

    // MARK: Reset (§2.4)

    @Test func resetDropsTheQueuesButNotTheUndeliveredInput() throws {
        let console = try ConsoleHarness()
        let stale = try console.postReceiveBuffer(8)
        console.device.reset()

        // The old rings are no longer the device's: kicks and input leave them alone.
        #expect(console.device.enqueueInput(ascii("later")) == 5)
        console.device.queueNotified(index: 0)
        try console.transmit.publish([try console.transmit.readable(ascii("old"))])
        console.device.queueNotified(index: 1)
        #expect(try console.receive.usedIndex() == 0)
        #expect(try console.receive.contents(of: stale) == Array(repeating: 0xEE, count: 8))
        #expect(console.output.bytes.isEmpty)
        #expect(console.device.pendingInputCount == 5)

        // The driver sets the device up afresh (new rings from index 0) and the waiting input arrives.
        try console.freshRings()
        let buffer = try console.postReceiveBuffer(8)
        try console.activate()
        #expect(try buffer.text(console.receive, count: 5) == "later")
        #expect(console.device.pendingInputCount == 0)
        try console.transmitText("new")
        #expect(console.output.text == "new")
    }

    // MARK: Threads

    /// The VMM's stdin thread pushes input (retrying what the full queue refuses) while the guest, on another
    /// thread, keeps reposting receive buffers and kicking: every byte arrives once, in order.
    @Test func inputFromAnotherThreadArrivesCompleteAndInOrder() async throws {
        let console = try ConsoleHarness(size: 16)
        let total = 200_000
        let input = (0..<total).map { UInt8(truncatingIfNeeded: $0 % 253) }
        let device = console.device
        let writer = Task.detached {
            var offset = 0
            var spins = 0
            while offset < total, spins < 5_000_000 {
                let accepted = device.enqueueInput(input[offset..<min(offset + 3000, total)])
                offset += accepted
                if accepted == 0 { spins += 1; await Task.yield() }
            }
            return offset
        }

        // The guest: keep 8 buffers of 512 bytes posted, collect what comes back.
        let driver = console.receive
        var outstanding: [UInt16: TestDriver.Buffer] = [:]
        var received: [UInt8] = []
        var seen: UInt16 = 0
        var rounds = 0
        while received.count < total, rounds < 1_000_000 {
            rounds += 1
            while outstanding.count < 8 {
                let buffer = try driver.writable(512)
                outstanding[try driver.publish([buffer])] = buffer
            }
            device.queueNotified(index: 0)
            let published = try driver.usedIndex()
            while seen != published {
                let element = try driver.usedElement(seen)
                let returned = outstanding.removeValue(forKey: UInt16(element.id))
                let buffer = try #require(returned)
                received += try driver.contents(of: buffer).prefix(Int(element.length))
                seen &+= 1
            }
            if published == seen { await Task.yield() }
        }
        #expect(await writer.value == total)
        #expect(received.count == total)
        #expect(received == input)
        #expect(console.interrupt.resetRequests.isEmpty)
    }
}
