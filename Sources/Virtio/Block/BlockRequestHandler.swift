// Runs virtio-blk requests: parse a chain's segments, do the I/O on the backend, write the status byte.
//
// Guest mistakes and host I/O failures both end as a status byte (IOERR or UNSUPP, §5.2.6.2) and a rate-limited
// log line; nothing a guest sends can stop the VMM. A chain without a status byte cannot be answered and is
// reported as dropped, for the queue to return with used length 0.
//
// Threads: one handler may serve several queues on several threads at once. It holds no mutable state except the
// log counters (atomics); the backend is required to be thread-safe.

import GuestMemory
import Logging
import Synchronization

/// How a request ended, for the used ring.
public struct BlockCompletion: Sendable, Equatable {
    /// The status byte written to the guest; nil when the chain had none and was dropped.
    public var status: VirtioBlockStatus?
    /// The used-ring length: bytes the device wrote into the chain's writable buffers, status byte included.
    public var bytesWritten: UInt32

    public init(status: VirtioBlockStatus?, bytesWritten: UInt32) {
        self.status = status
        self.bytesWritten = bytesWritten
    }

    public static let dropped = BlockCompletion(status: nil, bytesWritten: 0)
}

public final class BlockRequestHandler: Sendable {
    public let backend: any BlockBackend
    public let config: VirtioBlockConfig
    /// The GET_ID answer: exactly 20 bytes.
    public let serial: [UInt8]
    private let limits: BlockRequestLimits
    /// The driver did not negotiate VIRTIO_BLK_F_FLUSH, so it cannot ask for a flush and believes each completed
    /// write is on stable storage: the device must then write through (virtio 1.2 §5.2.6.2, "if
    /// VIRTIO_BLK_F_FLUSH is not negotiated, the device MUST ensure that all writes are committed to non-volatile
    /// storage before reporting completion"). Each write and write-zeroes is followed by the backend's flush.
    public let writeThrough: Bool
    private let logger: Logger
    private let guestErrorLog = RateLimitedCounter()
    private let hostErrorLog = RateLimitedCounter()
    /// Requests and bytes by kind, refusals and failures (the device passes its own, which outlive a handler).
    public let counters: BlockDeviceCounters

    /// `config` is usually `VirtioBlockConfig(capacityBytes: backend.capacity, readOnly: backend.isReadOnly, ...)`.
    /// `negotiatedFeatures`: the driver's accepted feature bits, once known (nil: all offered ones).
    /// Throws when `id` is longer than 20 bytes.
    public init(
        backend: any BlockBackend, config: VirtioBlockConfig, id: String?, negotiatedFeatures: UInt64? = nil,
        counters: BlockDeviceCounters = BlockDeviceCounters(),
        logger: Logger = Logger(label: "swiftlet.virtio-blk")
    ) throws(BlockError) {
        precondition(config.capacity << VirtioBlock.sectorShift <= backend.capacity, "config capacity exceeds the backend")
        precondition(!backend.isReadOnly || config.readOnly, "a read-only backend needs a read-only config")
        self.backend = backend
        self.config = config
        self.serial = try VirtioBlockConfig.serial(for: id)
        self.limits = config.requestLimits(negotiated: negotiatedFeatures)
        self.writeThrough = (negotiatedFeatures ?? config.offeredFeatures) & VirtioBlockFeature.flush == 0
        self.counters = counters
        self.logger = logger
    }

    /// Parses and executes one chain: the entry point for a queue. Never throws, never traps on guest input.
    public func handle(_ segments: [BlockSegment], memory: GuestMemory) -> BlockCompletion {
        do throws(BlockRequestFailure) {
            let request = try BlockRequest.parse(segments, memory: memory, limits: limits)
            return execute(request, memory: memory)
        } catch {
            counters.invalidRequests.bump()
            if guestErrorLog.shouldLog() {
                logger.warning(
                    "virtio-blk: refused guest request: \(error.reason)",
                    metadata: ["status": "\(error.statusAddress == nil ? "dropped" : error.reason.status.description)",
                               "segments": "\(segments)", "refused": "\(guestErrorLog.count)"])
            }
            guard let statusAddress = error.statusAddress else { return .dropped }
            return complete(error.reason.status, at: statusAddress, dataBytes: 0, memory: memory)
        }
    }

    /// Executes a parsed request and writes its status byte.
    public func execute(_ request: BlockRequest, memory: GuestMemory) -> BlockCompletion {
        var dataBytes: UInt64 = 0
        do throws(BlockError) {
            switch request.operation {
            case let .read(sector, segments):
                try backend.read(at: sector << VirtioBlock.sectorShift, into: segments, memory: memory)
                dataBytes = BlockRequest.totalLength(segments)
                counters.readRequests.bump()
                counters.readBytes.bump(dataBytes)
            case let .write(sector, segments):
                try backend.write(at: sector << VirtioBlock.sectorShift, from: segments, memory: memory)
                if writeThrough { try backend.flush() }
                counters.writeRequests.bump()
                counters.writeBytes.bump(BlockRequest.totalLength(segments))
            case .flush:
                try backend.flush()
                counters.flushes.bump()
            case let .getID(segments):
                try scatter(serial, into: segments, memory: memory)
                dataBytes = UInt64(serial.count)
            case let .discard(ranges):
                for range in ranges { try backend.discard(at: range.byteOffset, length: range.byteLength) }
            case let .writeZeroes(ranges):
                for range in ranges {
                    try backend.writeZeroes(
                        at: range.byteOffset, length: range.byteLength,
                        mayUnmap: range.unmap && config.writeZeroesMayUnmap != 0)
                }
                if writeThrough { try backend.flush() }
            }
        } catch {
            counters.failedRequests.bump()
            if hostErrorLog.shouldLog() {
                logger.error(
                    "virtio-blk: host I/O error, answering IOERR: \(error)",
                    metadata: ["failures": "\(hostErrorLog.count)"])
            }
            return complete(.ioError, at: request.statusAddress, dataBytes: 0, memory: memory)
        }
        return complete(.ok, at: request.statusAddress, dataBytes: dataBytes, memory: memory)
    }

    private func complete(_ status: VirtioBlockStatus, at address: GuestAddress, dataBytes: UInt64, memory: GuestMemory) -> BlockCompletion {
        do {
            try memory.store(status.rawValue, at: address)
        } catch {
            // Parsing proved the byte is in guest RAM; if it is not, the request cannot be answered.
            return .dropped
        }
        return BlockCompletion(status: status, bytesWritten: UInt32(clamping: dataBytes + 1))
    }

    /// Copies `bytes` to the start of the segments, in order (parsing proved they hold at least that many).
    private func scatter(_ bytes: [UInt8], into segments: [BlockSegment], memory: GuestMemory) throws(BlockError) {
        var offset = 0
        for segment in segments where offset < bytes.count {
            let take = min(Int(segment.length), bytes.count - offset)
            do {
                try memory.write(bytes[offset..<offset + take], at: segment.address)
            } catch {
                throw .guestMemory(error)
            }
            offset += take
        }
    }
}

/// Counts events and says which ones to log: the first 10, then every 1000th, so a guest (or a failing disk)
/// that errs on every request cannot flood the log.
final class RateLimitedCounter: Sendable {
    private let events = Atomic<UInt64>(0)

    var count: UInt64 { events.load(ordering: .relaxed) }

    func shouldLog() -> Bool {
        let n = events.wrappingAdd(1, ordering: .relaxed).newValue
        return n <= 10 || n % 1000 == 0
    }
}
