// virtio-blk, the block device (virtio 1.2 §5.2): the glue between a virtqueue and `BlockRequestHandler`.
//
// Device ID 2, one request queue ("requestq", §5.2.2) of up to 256 entries. The feature bits and the
// configuration space come from `VirtioBlockConfig`; nothing in it is driver-writable (CONFIG_WCE is not
// offered), so configuration writes are dropped. At DRIVER_OK the device builds a request handler limited to the
// negotiated features (a driver that did not accept DISCARD gets UNSUPP for one).
//
// A kick drains the queue: each chain becomes a list of `BlockSegment`s (direct and indirect descriptors look the
// same by then), the handler parses and executes it and writes the status byte, and the chain goes back on the
// used ring with the number of bytes written. A malformed chain goes back with length 0 and the queue carries on;
// a broken ring (avail.idx jumping, a head outside the table) stops the device until the driver resets it.
//
// Threads: `queueNotified` runs on the transport's notification thread (the event loop), `activate` / `reset` on
// a vCPU thread. All state sits behind one Mutex, held for a whole drain, so `reset` waits for the I/O in flight
// to finish; while holding it the device calls only `VirtioInterrupt`.

import GuestMemory
import Logging
import Synchronization

public final class BlockDevice: VirtioDevice {
    /// Queue entries the device accepts at most; `VirtioBlockConfig.segMax` is derived from it.
    public static let queueSize: UInt16 = 256

    public var deviceType: VirtioDeviceType { .block }
    public var queueMaximumSizes: [UInt16] { [Self.queueSize] }
    public var deviceFeatures: UInt64 { config.offeredFeatures }
    public var configurationSize: Int { VirtioBlockConfig.size }

    /// What the driver reads in configuration space.
    public var config: VirtioBlockConfig { medium.withLock { $0.config } }
    public var backend: any BlockBackend { medium.withLock { $0.backend } }
    /// The image and the configuration describing it; both change together when the image is replaced.
    private let medium: Mutex<(config: VirtioBlockConfig, backend: any BlockBackend)>
    /// The GET_ID serial (`id=` of `--disk`), validated at init.
    public let id: String?

    private struct Running {
        var queue: Queue
        var handler: BlockRequestHandler
        let features: UInt64
        let memory: GuestMemory
        let interrupt: any VirtioInterrupt
        /// Malformed chains seen, for rate-limited logging.
        var guestErrors = 0
    }

    private let logger: Logger
    private let running = Mutex<Running?>(nil)
    private let counters = BlockDeviceCounters()

    /// What the device counted since it was created: cheap (relaxed atomic loads), callable from any thread.
    public var statistics: BlockDeviceStatistics { counters.snapshot }

    /// A disk backed by `image` (usually a `RawDiskImage`). `readOnly` offers VIRTIO_BLK_F_RO and refuses writes;
    /// a read-only backend is always presented read-only. Throws `.idTooLong` when `id` exceeds the 20 bytes
    /// GET_ID can return, so a bad `--disk` is rejected before the guest starts.
    public init(
        image: any BlockBackend, id: String?, readOnly: Bool = false,
        logger: Logger = Logger(label: "swiftlet.virtio-blk")
    ) throws(BlockError) {
        _ = try VirtioBlockConfig.serial(for: id)
        self.id = id
        self.medium = Mutex((VirtioBlockConfig(capacityBytes: image.capacity, readOnly: readOnly || image.isReadOnly, queueSize: Self.queueSize),
                             image))
        self.logger = logger
    }

    public func readConfiguration(offset: Int, width: Int) -> UInt64 {
        guard offset >= 0 else { return 0 }
        return medium.withLock { $0.config.read(offset: UInt64(offset), width: width) }
    }

    /// Every field is read-only without VIRTIO_BLK_F_CONFIG_WCE (§5.2.4), which is not offered.
    public func writeConfiguration(offset: Int, width: Int, value: UInt64) {}

    public func activate(_ activation: VirtioActivation) throws {
        guard let queue = activation.queues.first ?? nil else {
            counters.activationFailures.bump()
            throw VirtioError.activationFailed("virtio-blk: the driver did not enable the request queue")
        }
        let handler: BlockRequestHandler
        do {
            handler = try BlockRequestHandler(
                backend: backend, config: config, id: id, negotiatedFeatures: activation.features,
                counters: counters, logger: logger)
        } catch {
            counters.activationFailures.bump()
            throw VirtioError.activationFailed("virtio-blk: \(error)")
        }
        running.withLock {
            $0 = Running(queue: queue, handler: handler, features: activation.features, memory: activation.memory,
                         interrupt: activation.interrupt)
        }
    }

    /// Swaps the image behind the disk (Firecracker's `PATCH /drives/{id}` with a new `path_on_host`): waits for
    /// the request being served to finish (the drain holds `running`), then serves every later request from
    /// `image`, and tells a running driver through a configuration change interrupt that the capacity may have
    /// changed (Linux's virtio_blk then re-reads it and resizes the disk). The disk's read-only-ness is kept, so
    /// the features the driver negotiated stay true; the caller opens `image` with it.
    public func replaceImage(_ image: any BlockBackend) throws(BlockError) {
        let readOnly = config.readOnly
        guard readOnly || !image.isReadOnly else { throw .readOnly }
        let newConfig = VirtioBlockConfig(capacityBytes: image.capacity, readOnly: readOnly, queueSize: Self.queueSize)
        try running.withLock { (state: inout Running?) throws(BlockError) in
            if var current = state {
                current.handler = try BlockRequestHandler(backend: image, config: newConfig, id: id, negotiatedFeatures: current.features,
                                                          counters: counters, logger: logger)
                state = current
            }
            medium.withLock { $0 = (newConfig, image) }
            state?.interrupt.signalConfigurationChange()
        }
    }

    /// Requests are served to completion on the event loop's thread, which a pause parks between rounds: none is
    /// in flight when this runs.
    public func snapshotQueues() -> [QueueConfiguration?]? {
        [running.withLock { $0?.queue.configuration }]
    }

    public func reset() {
        running.withLock { $0 = nil }
    }

    public func queueNotified(index: Int) {
        guard index == 0 else { return }
        counters.queueNotifications.bump()
        running.withLock { state in
            guard var current = state else { return }
            // A broken ring: stop using it until the driver resets the device.
            state = process(&current) ? current : nil
        }
    }

    /// Drains the queue. Returns false when the queue failed and the device needs a reset.
    private func process(_ state: inout Running) -> Bool {
        do {
            let handler = state.handler, memory = state.memory
            var guestErrors = state.guestErrors
            let counters = self.counters
            let interrupt = try state.queue.serveAvailable(malformed: { head, reason in
                counters.invalidRequests.bump()
                guestErrors += 1
                // The first few, then one in a thousand: a looping guest must not flood the log.
                if guestErrors <= 10 || guestErrors % 1000 == 0 {
                    logger.warning("virtio-blk: queue 0 head \(head): \(reason) (\(guestErrors) so far)")
                }
            }) { chain in
                let segments = chain.descriptors.map { BlockSegment(address: $0.address, length: $0.length, writable: $0.isWriteOnly) }
                return handler.handle(segments, memory: memory).bytesWritten
            }
            state.guestErrors = guestErrors
            if interrupt { state.interrupt.signalUsedBuffers(queue: 0) }
        } catch {
            counters.queueFailures.bump()
            logger.error("virtio-blk: \(error); the device needs a reset")
            state.interrupt.deviceNeedsReset(error)
            return false
        }
        return true
    }
}
