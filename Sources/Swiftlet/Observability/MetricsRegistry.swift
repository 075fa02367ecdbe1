// Where every metric comes from, and the one place that turns them into Firecracker's metrics line.
//
// Devices and vCPUs register sources: closures returning their current totals (so `Virtio` needs nothing from
// this module) or, for vCPUs, their `VCPUExitCounters`. The VMM records API requests, latencies and logger
// failures here directly. `snapshot(commit:)` reads everything, subtracts what the previous flush reported
// (Firecracker's SharedIncMetric semantics, see MetricsTree.swift) and renders one JSON object.
//
// Threads: any thread may register, record or snapshot. Registration and the API counters sit behind one Mutex;
// logger failure counters are atomics (a log handler may fail while a flush holds the lock). Sources are called
// with the lock held, so they must not call back into the registry (device statistics are leaf reads).

import Synchronization
import Virtio
#if canImport(Glibc)
import Glibc
#endif

/// The latencies Firecracker reports under `latencies_us` (microseconds, last value recorded).
public enum MetricsLatency: String, Sendable, CaseIterable {
    /// Measured at the API level: request received → response ready.
    case pauseVM = "pause_vm", resumeVM = "resume_vm"
    case fullCreateSnapshot = "full_create_snapshot", diffCreateSnapshot = "diff_create_snapshot"
    case loadSnapshot = "load_snapshot"
    /// Measured inside the VMM: the pause/resume operation itself.
    case vmmPauseVM = "vmm_pause_vm", vmmResumeVM = "vmm_resume_vm"
    case vmmFullCreateSnapshot = "vmm_full_create_snapshot", vmmDiffCreateSnapshot = "vmm_diff_create_snapshot"
    case vmmLoadSnapshot = "vmm_load_snapshot"
}

public final class MetricsRegistry: Sendable {
    /// The process-wide registry the CLI, the API and the machine share (Firecracker's `METRICS` static).
    /// Tests make their own.
    public static let shared = MetricsRegistry()

    private struct Sources {
        var vcpus: [VCPUExitCounters] = []
        var blocks: [String: @Sendable () -> BlockDeviceStatistics] = [:]
        var nets: [String: @Sendable () -> NetDeviceStatistics] = [:]
        var vsock: (@Sendable () -> VsockDeviceStatistics)?
        /// Extra totals for fixed groups ("i8042", "uart", "entropy", ...), by Firecracker field name.
        var groups: [String: @Sendable () -> [String: UInt64]] = [:]
        /// `get_api_requests`/`put_api_requests`/`patch_api_requests` totals, by "group/field".
        var requests: [String: UInt64] = [:]
        var latencies: [String: UInt64] = [:]
        var startupWallMicroseconds: UInt64 = 0
        var startupCPUMicroseconds: UInt64 = 0
        var baseline = MetricsBaseline()
    }

    private let state = Mutex(Sources())
    private let missedMetrics = Atomic<UInt64>(0)
    private let metricsFailures = Atomic<UInt64>(0)
    private let missedLogs = Atomic<UInt64>(0)

    public init() {}

    // MARK: Sources

    /// Makes and registers the counters for vCPU `index`; the run loop keeps the returned object.
    public func makeVCPUCounters(index: Int) -> VCPUExitCounters {
        let counters = VCPUExitCounters(index: index)
        state.withLock { $0.vcpus.append(counters) }
        return counters
    }

    /// A disk, reported as `block_<id>` and summed into `block`. Registering an id again replaces its source.
    public func registerBlock(id: String, _ source: @escaping @Sendable () -> BlockDeviceStatistics) {
        state.withLock { $0.blocks[id] = source }
    }

    /// A network interface, reported as `net_<id>` and summed into `net`.
    public func registerNet(id: String, _ source: @escaping @Sendable () -> NetDeviceStatistics) {
        state.withLock { $0.nets[id] = source }
    }

    /// The vsock device, reported as `vsock` (Firecracker has at most one).
    public func registerVsock(_ source: @escaping @Sendable () -> VsockDeviceStatistics) {
        state.withLock { $0.vsock = source }
    }

    /// Totals for one of the fixed groups (`i8042`, `uart`, `entropy`, `balloon`, `mmds`, ...) by Firecracker field
    /// name; names the group does not have are ignored.
    public func registerCounters(group: String, _ source: @escaping @Sendable () -> [String: UInt64]) {
        state.withLock { $0.groups[group] = source }
    }

    /// Forgets every source (the machine was torn down); recorded API counts and latencies stay.
    public func removeDeviceSources() {
        state.withLock {
            $0.vcpus = []
            $0.blocks = [:]
            $0.nets = [:]
            $0.vsock = nil
            $0.groups = [:]
        }
    }

    // MARK: Recording

    /// Counts an API request in Firecracker's `<method>_api_requests` group. `resource` is the request path
    /// ("/drives/rootfs", "/actions", "/") or its first component ("drives"). A failed request counts in both
    /// `<resource>_count` and `<resource>_fails`, as Firecracker does; GET has no `_fails` fields. Returns false
    /// for a request Firecracker has no counter for (PUT /snapshot/create, GET /balloon, ...).
    @discardableResult
    public func recordAPIRequest(method: String, resource: String, failed: Bool) -> Bool {
        guard let field = Self.requestField(method: method, resource: resource) else { return false }
        state.withLock {
            $0.requests["\(field.group)/\(field.name)_count", default: 0] &+= 1
            if failed, field.group != "get_api_requests" {
                $0.requests["\(field.group)/\(field.name)_fails", default: 0] &+= 1
            }
        }
        return true
    }

    /// Stores a latency (a gauge: the last value is reported on every line until the next one).
    public func recordLatency(_ latency: MetricsLatency, microseconds: UInt64) {
        state.withLock { $0.latencies[latency.rawValue] = microseconds }
    }

    /// Measures `body` and records its duration as `latency`.
    public func measure<T, E: Error>(_ latency: MetricsLatency, _ body: () throws(E) -> T) throws(E) -> T {
        let start = ContinuousClock.now
        defer {
            let elapsed = ContinuousClock.now - start
            let (seconds, attoseconds) = elapsed.components
            recordLatency(latency, microseconds: UInt64(max(0, seconds)) * 1_000_000 + UInt64(max(0, attoseconds)) / 1_000_000_000_000)
        }
        return try body()
    }

    /// `api_server.process_startup_time_us` / `_cpu_us`: process start → API ready (gauges).
    public func setProcessStartupTime(wallMicroseconds: UInt64, cpuMicroseconds: UInt64 = 0) {
        state.withLock {
            $0.startupWallMicroseconds = wallMicroseconds
            $0.startupCPUMicroseconds = cpuMicroseconds
        }
    }

    /// A log line could not be written (`logger.missed_log_count`).
    public func recordMissedLog() { missedLogs.wrappingAdd(1, ordering: .relaxed) }
    /// A metrics flush failed (`logger.metrics_fails`).
    func recordMetricsFailure() { metricsFailures.wrappingAdd(1, ordering: .relaxed) }
    /// A periodic flush was lost (`logger.missed_metrics_count`, which Firecracker's timer counts).
    func recordMissedMetrics() { missedMetrics.wrappingAdd(1, ordering: .relaxed) }

    // MARK: The line

    /// One metrics line: a JSON object without the trailing newline. With `commit` (a flush), counters restart
    /// from here, so the next line reports what happened after this one; without, nothing changes (peeking).
    public func snapshot(commit: Bool = true) -> String {
        let group = state.withLock { state in
            var baseline = state.baseline
            let group = tree(state, baseline: &baseline, commit: commit)
            if commit { state.baseline = baseline }
            return group
        }
        var line = ""
        line.reserveCapacity(12_288)
        MetricsJSON.render(group, into: &line)
        return line
    }

    private func tree(_ s: Sources, baseline: inout MetricsBaseline, commit: Bool) -> MetricGroup {
        typealias Schema = FirecrackerMetricsSchema
        func delta(_ key: String, _ value: MetricValue) -> (key: String, value: MetricValue) {
            (key, baseline.delta(value, path: key, commit: commit))
        }
        func fixed(_ key: String, _ fields: [String]) -> (key: String, value: MetricValue) {
            delta(key, .counters(fields, s.groups[key]?() ?? [:]))
        }
        func requests(_ key: String, _ fields: [String]) -> (key: String, value: MetricValue) {
            var values: [String: UInt64] = [:]
            for field in fields { values[field] = s.requests["\(key)/\(field)"] }
            return delta(key, .counters(fields, values))
        }

        var line: MetricGroup = [("utc_timestamp_ms", .gauge(Self.utcMilliseconds()))]
        line.append(("api_server", .group([
            ("process_startup_time_us", .gauge(s.startupWallMicroseconds)),
            ("process_startup_time_cpu_us", .gauge(s.startupCPUMicroseconds)),
        ])))
        line.append(fixed("balloon", Schema.balloon))

        // Per device first (sorted by id, like Firecracker's BTreeMap), then the aggregate of their deltas.
        let blocks = s.blocks.sorted { $0.key < $1.key }.map { delta("block_\($0.key)", Schema.block($0.value())) }
        line += blocks
        line.append(("block", .aggregate(blocks.map(\.value), shape: Schema.block(BlockDeviceStatistics()))))

        line.append(fixed("deprecated_api", Schema.deprecatedAPI))
        line.append(requests("get_api_requests", Schema.getRequests))
        line.append(fixed("i8042", Schema.i8042))
        line.append(fixed("uart", Schema.uart))
        line.append(("latencies_us", .group(Schema.latencies.map { ($0, .gauge(s.latencies[$0] ?? 0)) })))
        line.append(delta("logger", .group([
            ("missed_metrics_count", .counter(missedMetrics.load(ordering: .relaxed))),
            ("metrics_fails", .counter(metricsFailures.load(ordering: .relaxed))),
            ("missed_log_count", .counter(missedLogs.load(ordering: .relaxed))),
            ("rate_limited_log_count", .counter(0)),
        ])))
        line.append(fixed("mmds", Schema.mmds))

        let nets = s.nets.sorted { $0.key < $1.key }.map { delta("net_\($0.key)", Schema.net($0.value())) }
        line += nets
        line.append(("net", .aggregate(nets.map(\.value), shape: Schema.net(NetDeviceStatistics()))))

        line.append(requests("patch_api_requests", Schema.patchRequests))
        line.append(requests("put_api_requests", Schema.putRequests))
        line.append(("seccomp", .group([("num_faults", .gauge(0))])))

        // Firecracker keeps one `vcpu` group all vCPUs add to: the sum of each vCPU's delta.
        let vcpus = s.vcpus.map { baseline.delta(Schema.vcpu($0.counts), path: "vcpu\($0.index)", commit: commit) }
        line.append(("vcpu", .aggregate(vcpus, shape: Schema.vcpu(VCPUExitCounts()))))
        line.append(("vmm", .group([("panic_count", .gauge(0))])))
        line.append(("signals", Schema.signals()))
        line.append(delta("vsock", s.vsock.map { Schema.vsock($0()) } ?? .counters(Schema.vsock)))
        line.append(fixed("entropy", Schema.entropy))
        line.append(("pmem", MetricValue.counters(Schema.pmem)))
        line.append(fixed("interrupts", Schema.interrupts))
        line.append(("memory_hotplug", Schema.memoryHotplug()))
        return line
    }

    static func utcMilliseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec) / 1_000_000
    }

    // MARK: API request names

    /// Firecracker's counter for a request: its group and field stem ("put_api_requests", "drive").
    static func requestField(method: String, resource: String) -> (group: String, name: String)? {
        let path = resource.split(separator: "/", omittingEmptySubsequences: true)
        let first = path.first.map(String.init) ?? ""
        switch method.uppercased() {
        case "GET":
            let name: String? = switch first {
            case "": "instance_info"
            case "machine-config": "machine_cfg"
            case "mmds": "mmds"
            case "version": "vmm_version"
            case "hotplug" where path.count > 1 && path[1] == "memory": "hotplug_memory"
            default: nil
            }
            return name.map { ("get_api_requests", $0) }
        case "PUT":
            let name: String? = switch first {
            case "actions": "actions"
            case "boot-source": "boot_source"
            case "drives": "drive"
            case "logger": "logger"
            case "machine-config": "machine_cfg"
            case "cpu-config": "cpu_cfg"
            case "metrics": "metrics"
            case "network-interfaces": "network"
            case "mmds": "mmds"
            case "vsock": "vsock"
            case "pmem": "pmem"
            case "serial": "serial"
            case "hotplug" where path.count > 1 && path[1] == "memory": "hotplug_memory"
            default: nil
            }
            return name.map { ("put_api_requests", $0) }
        case "PATCH":
            let name: String? = switch first {
            case "drives": "drive"
            case "network-interfaces": "network"
            case "machine-config": "machine_cfg"
            case "mmds": "mmds"
            case "hotplug" where path.count > 1 && path[1] == "memory": "hotplug_memory"
            case "pmem": "pmem"
            default: nil
            }
            return name.map { ("patch_api_requests", $0) }
        default:
            return nil
        }
    }
}
