// What a virtio-blk device counted: requests by kind, bytes moved, refusals and failures. The counters are
// atomics bumped with relaxed ordering on the request path (one add each, no lock, no allocation); a reader takes
// a `BlockDeviceStatistics` snapshot. They only grow: whoever reports them (the metrics registry) keeps its own
// baseline to turn totals into "since the last report".

import Synchronization

/// What the device counted since it was created (reset does not clear it).
public struct BlockDeviceStatistics: Sendable, Equatable {
    /// Successful VIRTIO_BLK_T_IN requests, and the data bytes they copied into the guest.
    public var readRequests: UInt64 = 0
    public var readBytes: UInt64 = 0
    /// Successful VIRTIO_BLK_T_OUT requests, and the data bytes they wrote to the backend.
    public var writeRequests: UInt64 = 0
    public var writeBytes: UInt64 = 0
    /// Successful VIRTIO_BLK_T_FLUSH requests.
    public var flushes: UInt64 = 0
    /// Requests refused as malformed: a chain the queue rejected (§2.7.5) or a request `BlockRequest.parse`
    /// refused (answered UNSUPP/IOERR or dropped).
    public var invalidRequests: UInt64 = 0
    /// Well-formed requests the backend failed (answered IOERR).
    public var failedRequests: UInt64 = 0
    /// Queue notifications (kicks) served.
    public var queueNotifications: UInt64 = 0
    /// DRIVER_OK refused: no request queue, or no request handler for the negotiated features.
    public var activationFailures: UInt64 = 0
    /// Broken rings that stopped the device until the driver resets it.
    public var queueFailures: UInt64 = 0

    public init() {}
}

/// The live counters behind `BlockDeviceStatistics`, shared by a `BlockDevice` and its request handlers.
public final class BlockDeviceCounters: Sendable {
    let readRequests = Atomic<UInt64>(0)
    let readBytes = Atomic<UInt64>(0)
    let writeRequests = Atomic<UInt64>(0)
    let writeBytes = Atomic<UInt64>(0)
    let flushes = Atomic<UInt64>(0)
    let invalidRequests = Atomic<UInt64>(0)
    let failedRequests = Atomic<UInt64>(0)
    let queueNotifications = Atomic<UInt64>(0)
    let activationFailures = Atomic<UInt64>(0)
    let queueFailures = Atomic<UInt64>(0)

    public init() {}

    public var snapshot: BlockDeviceStatistics {
        var s = BlockDeviceStatistics()
        s.readRequests = readRequests.load(ordering: .relaxed)
        s.readBytes = readBytes.load(ordering: .relaxed)
        s.writeRequests = writeRequests.load(ordering: .relaxed)
        s.writeBytes = writeBytes.load(ordering: .relaxed)
        s.flushes = flushes.load(ordering: .relaxed)
        s.invalidRequests = invalidRequests.load(ordering: .relaxed)
        s.failedRequests = failedRequests.load(ordering: .relaxed)
        s.queueNotifications = queueNotifications.load(ordering: .relaxed)
        s.activationFailures = activationFailures.load(ordering: .relaxed)
        s.queueFailures = queueFailures.load(ordering: .relaxed)
        return s
    }
}

extension Atomic where Value == UInt64 {
    /// One relaxed add: the counters order nothing, they only count.
    @inline(__always)
    func bump(_ amount: UInt64 = 1) { wrappingAdd(amount, ordering: .relaxed) }
}
