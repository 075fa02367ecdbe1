// virtio-rng, the entropy device (virtio 1.2 §5.4).
//
// Device ID 4, one queue ("requestq"), no feature bits, no configuration space. The driver (Linux's
// drivers/char/hw_random/virtio-rng.c) posts device-writable buffers; the device fills them with random bytes
// and returns them with the number of bytes written. §5.4.6.1: the device MUST place one or more random bytes
// into the buffer, but it MAY use less than the entire buffer length — so a huge buffer is answered with at
// most `maximumBytesPerRequest`, which bounds the work (and host memory) one guest request can cost.
//
// Threads: `queueNotified` runs on the transport's notification thread; `activate` / `reset` on a vCPU
// thread. All state sits behind one Mutex; while holding it the device calls only `VirtioInterrupt`.

import GuestMemory
import Logging
import Synchronization

public final class EntropyDevice: VirtioDevice {
    public static let queueSize: UInt16 = 256
    /// Bytes answered per request at most (Linux asks for 64 at a time, /dev/hwrng readers for up to a page).
    public static let maximumBytesPerRequest = 64 * 1024

    public var deviceType: VirtioDeviceType { .entropy }
    public var queueMaximumSizes: [UInt16] { [Self.queueSize] }
    public var deviceFeatures: UInt64 { 0 }
    public var configurationSize: Int { 0 }

    private struct Running {
        var queue: Queue
        let interrupt: any VirtioInterrupt
        /// Malformed requests seen, for rate-limited logging.
        var guestErrors = 0
    }

    private let source: any EntropySource
    private let logger: Logger
    private let running = Mutex<Running?>(nil)

    public init(source: any EntropySource = HostEntropySource(), logger: Logger = Logger(label: "swiftlet.virtio.rng")) {
        self.source = source
        self.logger = logger
    }

    public func readConfiguration(offset: Int, width: Int) -> UInt64 { 0 }
    public func writeConfiguration(offset: Int, width: Int, value: UInt64) {}

    public func activate(_ activation: VirtioActivation) throws {
        guard let queue = activation.queues.first ?? nil else {
            throw VirtioError.activationFailed("virtio-rng: the driver did not enable the request queue")
        }
        running.withLock { $0 = Running(queue: queue, interrupt: activation.interrupt) }
    }

    public func snapshotQueues() -> [QueueConfiguration?]? {
        [running.withLock { $0?.queue.configuration }]
    }

    public func reset() {
        running.withLock { $0 = nil }
    }

    public func queueNotified(index: Int) {
        guard index == 0 else { return }
        running.withLock { state in
            guard var current = state else { return }
            if process(&current) {
                state = current
            } else {
                // The rings are broken: stop using them until the driver resets the device.
                state = nil
            }
        }
    }

    /// Drains the queue. Returns false when the queue failed and the device needs a reset.
    private func process(_ state: inout Running) -> Bool {
        do {
            var guestErrors = state.guestErrors
            let interrupt = try state.queue.serveAvailable(malformed: { head, reason in
                guestErrors += 1
                // Rate limit: the first few, then one in a thousand — a looping guest must not flood the log.
                if guestErrors <= 10 || guestErrors % 1000 == 0 {
                    logger.warning("virtio-rng: queue 0 head \(head): \(reason) (\(guestErrors) so far)")
                }
            }) { fill($0) }
            state.guestErrors = guestErrors
            if interrupt { state.interrupt.signalUsedBuffers(queue: 0) }
        } catch {
            logger.error("virtio-rng: \(error); the device needs a reset")
            state.interrupt.deviceNeedsReset(error)
            return false
        }
        return true
    }

    /// Fills the chain's writable buffers (readable ones, which a correct driver never sends, are ignored).
    private func fill(_ chain: DescriptorChain) -> UInt32 {
        var writer = chain.writer()
        let count = Int(min(writer.remaining, UInt64(Self.maximumBytesPerRequest)))
        guard count > 0 else { return 0 }
        var bytes = [UInt8](repeating: 0, count: count)
        source.fill(&bytes)
        // Cannot fail: count <= remaining and the chain's buffers were proved inside guest RAM.
        try? writer.write(bytes)
        return UInt32(writer.bytesWritten)
    }
}
