// Per-vCPU exit counters, Firecracker's `vcpu` metrics group (src/vmm/src/logger/metrics.rs, `VcpuMetrics`).
//
// The vCPU thread bumps one relaxed atomic per exit: no lock, no allocation, nothing another thread waits on.
// The metrics flush reads the totals from any thread; `MetricsRegistry` turns them into "since the last flush".

import Synchronization

/// What one vCPU's run loop counted. Totals since the vCPU was created; they never go down.
public struct VCPUExitCounts: Sendable, Equatable {
    public var ioIn: UInt64 = 0
    public var ioOut: UInt64 = 0
    public var mmioRead: UInt64 = 0
    public var mmioWrite: UInt64 = 0
    public var failures: UInt64 = 0

    public init() {}
}

/// One vCPU's counters. The run loop calls one method per exit:
/// `.portIn` → `recordIOIn()`, `.portOut` → `recordIOOut()`, `.mmioRead` → `recordMMIORead()`,
/// `.mmioWrite` → `recordMMIOWrite()`, and `recordFailure()` where Firecracker counts `failures`: a KVM_RUN
/// error, an exit the VMM cannot handle (internal error, failed entry, unknown reason), a triple fault.
public final class VCPUExitCounters: Sendable {
    public let index: Int
    private let ioIn = Atomic<UInt64>(0)
    private let ioOut = Atomic<UInt64>(0)
    private let mmioRead = Atomic<UInt64>(0)
    private let mmioWrite = Atomic<UInt64>(0)
    private let failures = Atomic<UInt64>(0)

    public init(index: Int) { self.index = index }

    @inline(__always) public func recordIOIn() { ioIn.wrappingAdd(1, ordering: .relaxed) }
    @inline(__always) public func recordIOOut() { ioOut.wrappingAdd(1, ordering: .relaxed) }
    @inline(__always) public func recordMMIORead() { mmioRead.wrappingAdd(1, ordering: .relaxed) }
    @inline(__always) public func recordMMIOWrite() { mmioWrite.wrappingAdd(1, ordering: .relaxed) }
    @inline(__always) public func recordFailure() { failures.wrappingAdd(1, ordering: .relaxed) }

    public var counts: VCPUExitCounts {
        var counts = VCPUExitCounts()
        counts.ioIn = ioIn.load(ordering: .relaxed)
        counts.ioOut = ioOut.load(ordering: .relaxed)
        counts.mmioRead = mmioRead.load(ordering: .relaxed)
        counts.mmioWrite = mmioWrite.load(ordering: .relaxed)
        counts.failures = failures.load(ordering: .relaxed)
        return counts
    }
}
