// virtio-console, the console device (virtio 1.2 §5.3), one port and no MULTIPORT.
//
// Device ID 3, two queues of up to 256 entries (§5.3.2):
// - 0, receiveq: device → driver. The driver posts device-writable buffers; the device fills them with host
//   input (keystrokes) and returns them with the number of bytes written. Linux's virtio_console fills the
//   queue at port setup and re-posts each buffer once it has consumed it.
// - 1, transmitq: driver → device. The driver posts device-readable buffers holding the guest's console output;
//   the device hands their bytes to `output` in order and returns them with used length 0 (§5.3.6.1: it writes
//   nothing into them).
//
// Host input is kept in a bounded host-side queue (`inputCapacity` bytes) until the driver has buffers for it:
// `enqueueInput` delivers at once when buffers are waiting, otherwise the bytes wait for the driver's next
// receiveq kick. The queue survives a device reset — the bytes were never seen by the guest — so input typed
// before the driver probes the device reaches it once it does.
//
// Malformed chains are returned with used length 0 and the queue carries on; a broken ring (avail.idx jumping,
// a head outside the table) stops that queue until the driver resets the device.
//
// Threads and locks: `queueNotified` runs on the transport's notification thread (the event loop), `activate`,
// `reset` and configuration accesses on vCPU threads, `enqueueInput` on the VMM's stdin thread. Each direction
// has its own Mutex so that a slow `output` never holds up input:
// - `receive` guards the receiveq and the input queue together, so delivery order is enqueue order whichever
//   thread delivers;
// - `transmit` guards the transmitq and is held while `output` runs, so `output` is never called concurrently
//   (emerg_wr characters take the same lock) and sees the guest's bytes in order.
// The two are never held together. While holding either the device calls only `VirtioInterrupt` and `output`;
// `output` must not call back into the device.

import GuestMemory
import Logging
import Synchronization

public final class ConsoleDevice: VirtioDevice {
    public static let queueSize: UInt16 = 256
    public static let receiveQueueIndex = 0
    public static let transmitQueueIndex = 1
    /// Bytes of host input held for the guest at most.
    public static let inputCapacity = 64 * 1024
    /// Guest output is handed to `output` in pieces of at most this many bytes, so one huge transmit buffer
    /// does not turn into an equally huge host allocation.
    public static let maximumOutputChunk = 64 * 1024

    public var deviceType: VirtioDeviceType { .console }
    public var queueMaximumSizes: [UInt16] { [Self.queueSize, Self.queueSize] }
    public var deviceFeatures: UInt64 { VirtioConsoleFeature.emergencyWrite }
    public var configurationSize: Int { VirtioConsoleConfiguration.size }

    /// One running queue and what its worker needs.
    private struct RunningQueue {
        var queue: Queue
        let interrupt: any VirtioInterrupt
        /// Malformed chains seen, for rate-limited logging.
        var guestErrors = 0
    }

    private struct ReceiveSide {
        var running: RunningQueue?
        var input = ConsoleInputBuffer(capacity: ConsoleDevice.inputCapacity)
    }

    private let output: @Sendable (ArraySlice<UInt8>) -> Void
    private let logger: Logger
    private let configuration = VirtioConsoleConfiguration.initialSpace()
    private let receive = Mutex(ReceiveSide())
    private let transmit = Mutex<RunningQueue?>(nil)

    /// A console whose guest output goes to `output` (called with the bytes of each transmit buffer, in order,
    /// never concurrently with itself; it must not call back into the device).
    public init(
        output: @escaping @Sendable (ArraySlice<UInt8>) -> Void,
        logger: Logger = Logger(label: "swiftlet.virtio-console")
    ) {
        self.output = output
        self.logger = logger
    }

    // MARK: Configuration space (§5.3.4)

    public func readConfiguration(offset: Int, width: Int) -> UInt64 {
        configuration.read(offset: offset, width: width)
    }

    /// Only emerg_wr is writable: the low byte of what the driver writes there is one character of output
    /// (§5.3.4: usable "without initializing virtio queues, or even acknowledging the feature"). Linux writes
    /// it as a 32-bit field; narrower writes at the same offset are accepted too.
    public func writeConfiguration(offset: Int, width: Int, value: UInt64) {
        guard offset == VirtioConsoleConfiguration.emergencyWriteOffset, [1, 2, 4].contains(width) else { return }
        let character = [UInt8(truncatingIfNeeded: value)]
        transmit.withLock { _ in output(character[...]) }
    }

    // MARK: Lifecycle

    public func activate(_ activation: VirtioActivation) throws {
        let queues = activation.queues
        guard queues.count == 2, let receiveQueue = queues[Self.receiveQueueIndex],
            let transmitQueue = queues[Self.transmitQueueIndex]
        else {
            throw VirtioError.activationFailed("virtio-console: the driver did not enable both receiveq and transmitq")
        }
        let interrupt = activation.interrupt
        transmit.withLock { $0 = RunningQueue(queue: transmitQueue, interrupt: interrupt) }
        receive.withLock { side in
            side.running = RunningQueue(queue: receiveQueue, interrupt: interrupt)
            // Input that waited for the driver goes now if it posted buffers before DRIVER_OK (Linux does).
            deliverInput(&side)
        }
    }

    /// Drops both queues. Host input not yet delivered stays queued for the next activation.
    /// Host input not yet delivered to the guest is not saved (a restored console starts with none).
    public func snapshotQueues() -> [QueueConfiguration?]? {
        [receive.withLock { $0.running?.queue.configuration }, transmit.withLock { $0?.queue.configuration }]
    }

    public func reset() {
        transmit.withLock { $0 = nil }
        receive.withLock { $0.running = nil }
    }

    public func queueNotified(index: Int) {
        switch index {
        case Self.receiveQueueIndex:
            receive.withLock { deliverInput(&$0) }
        case Self.transmitQueueIndex:
            transmit.withLock { running in
                guard var current = running else { return }
                running = drainTransmit(&current) ? current : nil
            }
        default:
            return
        }
    }

    // MARK: Host input → receiveq

    /// Queues host input for the guest and delivers what the driver has room for right away. Returns how many
    /// bytes (a prefix of `bytes`) were accepted; the rest did not fit in the `inputCapacity` queue, and the
    /// caller should offer it again later (once the guest has read some — see `pendingInputCount`).
    public func enqueueInput(_ bytes: some Collection<UInt8>) -> Int {
        receive.withLock { side in
            let accepted = side.input.append(contentsOf: bytes)
            if accepted > 0 { deliverInput(&side) }
            return accepted
        }
    }

    /// Host input bytes waiting for receive buffers.
    public var pendingInputCount: Int { receive.withLock { $0.input.count } }

    /// Moves queued input into the driver's receive buffers while both exist. A broken ring stops the queue.
    private func deliverInput(_ side: inout ReceiveSide) {
        guard var running = side.running else { return }
        var completed = 0
        do {
            // Kicks are only useful while input waits for buffers: with nothing to deliver the device asks for
            // none (new input takes buffers straight from the ring); when buffers run out with input still
            // queued it asks again, and re-checks for buffers that raced with that request (§2.7.10).
            while true {
                if side.input.isEmpty {
                    try running.queue.disableNotifications()
                    break
                }
                if let chain = try popNext(&running, completed: &completed) {
                    let written = fill(chain, from: &side.input)
                    try running.queue.addUsed(head: chain.head, length: written)
                    completed += 1
                } else if try !running.queue.enableNotifications() {
                    break
                }
            }
        } catch {
            logger.error("virtio-console: receiveq: \(error); the device needs a reset")
            running.interrupt.deviceNeedsReset(error)
            side.running = nil
            return
        }
        if completed > 0, running.queue.needsNotification() {
            running.interrupt.signalUsedBuffers(queue: Self.receiveQueueIndex)
        }
        side.running = running
    }

    /// Writes as much queued input as the chain's writable buffers hold; returns the bytes written.
    private func fill(_ chain: DescriptorChain, from input: inout ConsoleInputBuffer) -> UInt32 {
        var writer = chain.writer()
        // A chain carries at most 2^32 bytes (§2.7.5.2), the input at most `inputCapacity`.
        let (first, second) = input.front(Int(min(writer.remaining, UInt64(input.count))))
        do {
            try writer.write(first)
            try writer.write(second)
        } catch {
            // Cannot happen: both runs fit in `remaining` and the buffers were proved inside guest RAM. Should it
            // anyway, only what reached the guest is consumed, so no input is lost.
            logger.error("virtio-console: receiveq head \(chain.head): \(error)")
        }
        input.removeFirst(Int(writer.bytesWritten))
        return UInt32(writer.bytesWritten)
    }

    // MARK: transmitq → output

    /// Drains the transmitq. Returns false when the queue failed and the device needs a reset.
    private func drainTransmit(_ running: inout RunningQueue) -> Bool {
        do {
            // Notifications off while draining (the driver need not kick for what it adds meanwhile); back on at
            // the end, and go again if buffers slipped in between the last pop and re-enabling.
            repeat {
                try running.queue.disableNotifications()
                var completed = 0
                while let chain = try popNext(&running, completed: &completed) {
                    emit(chain)
                    try running.queue.addUsed(head: chain.head, length: 0)
                    completed += 1
                }
                if completed > 0, running.queue.needsNotification() {
                    running.interrupt.signalUsedBuffers(queue: Self.transmitQueueIndex)
                }
            } while try running.queue.enableNotifications()
        } catch {
            logger.error("virtio-console: transmitq: \(error); the device needs a reset")
            running.interrupt.deviceNeedsReset(error)
            return false
        }
        return true
    }

    /// Hands the chain's readable bytes to `output` (writable buffers, which a correct driver never sends on the
    /// transmitq, are ignored).
    private func emit(_ chain: DescriptorChain) {
        var reader = chain.reader()
        while reader.remaining > 0 {
            let count = Int(min(reader.remaining, UInt64(Self.maximumOutputChunk)))
            do {
                output(try reader.read(count: count)[...])
            } catch {
                // Cannot happen: count <= remaining and the buffers were proved inside guest RAM.
                logger.error("virtio-console: transmitq head \(chain.head): \(error)")
                return
            }
        }
    }

    // MARK: Both queues

    /// The next well-formed chain; malformed ones are returned to the driver with length 0 and skipped.
    private func popNext(_ running: inout RunningQueue, completed: inout Int) throws(VirtioError) -> DescriptorChain? {
        while true {
            do {
                return try running.queue.popAvailable()
            } catch .malformedChain(let queue, let head, let reason) {
                running.guestErrors += 1
                // The first few, then one in a thousand: a looping guest must not flood the log.
                if running.guestErrors <= 10 || running.guestErrors % 1000 == 0 {
                    logger.warning(
                        "virtio-console: queue \(queue) head \(head): \(reason) (\(running.guestErrors) so far)")
                }
                try running.queue.addUsed(head: head, length: 0)
                completed += 1
            }
        }
    }
}
