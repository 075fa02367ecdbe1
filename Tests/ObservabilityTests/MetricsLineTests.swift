// The metrics line against Firecracker's documented shape (docs/metrics.md, src/vmm/src/logger/metrics.rs):
// keys, field names, what was recorded, and the reset after each flush.

import Foundation
import Testing
import Virtio

@testable import Swiftlet

@Suite struct MetricsLineTests {
    @Test func hasFirecrackersTopLevelKeysAndFieldNames() throws {
        let json = try parse(MetricsRegistry().snapshot())
        // docs/metrics.md's list, less `rtc` (aarch64 only) and `vhost_user_block` (only with such a device).
        for key in ["utc_timestamp_ms", "api_server", "balloon", "block", "deprecated_api", "entropy", "get_api_requests",
                    "i8042", "latencies_us", "logger", "mmds", "net", "patch_api_requests", "put_api_requests",
                    "seccomp", "signals", "uart", "vcpu", "vmm", "vsock"] {
            #expect(json[key] != nil, "missing \(key)")
        }
        #expect(fields(json, "vcpu").isSuperset(of: ["exit_io_in", "exit_io_out", "exit_mmio_read", "exit_mmio_write", "failures"]))
        #expect(fields(json, "put_api_requests").isSuperset(of: ["actions_count", "actions_fails", "drive_count", "drive_fails",
                                                                 "boot_source_count", "machine_cfg_fails", "network_count", "vsock_fails"]))
        #expect(fields(json, "get_api_requests") == ["instance_info_count", "machine_cfg_count", "mmds_count",
                                                      "vmm_version_count", "hotplug_memory_count"])
        #expect(fields(json, "latencies_us").isSuperset(of: ["pause_vm", "resume_vm", "vmm_pause_vm", "vmm_resume_vm"]))
        #expect(fields(json, "logger") == ["missed_metrics_count", "metrics_fails", "missed_log_count", "rate_limited_log_count"])
        #expect(fields(json, "block").isSuperset(of: ["read_bytes", "write_bytes", "read_count", "write_count", "flush_count",
                                                      "invalid_reqs_count", "execute_fails", "queue_event_count"]))
        #expect(fields(json, "net").isSuperset(of: ["rx_packets_count", "tx_packets_count", "tx_malformed_frames", "rx_bytes_count"]))
        #expect(fields(json, "vsock").isSuperset(of: ["rx_bytes_count", "tx_bytes_count", "conns_killed"]))
        // Latency aggregates are objects of min/max/sum.
        let aggregate = try #require((json["vcpu"] as? [String: Any])?["exit_io_in_agg"] as? [String: Any])
        #expect(Set(aggregate.keys) == ["min_us", "max_us", "sum_us"])
        // A millisecond UTC timestamp: after 2020, before 2100.
        let timestamp = try #require(json["utc_timestamp_ms"] as? Int)
        #expect(timestamp > 1_577_836_800_000 && timestamp < 4_102_444_800_000)
    }

    @Test func theTimestampComesFirstAndTheLineIsOneObject() {
        let line = MetricsRegistry().snapshot()
        #expect(line.hasPrefix("{\"utc_timestamp_ms\":"))
        #expect(!line.contains("\n"))
    }

    @Test func countsVCPUExitsOverAllVCPUsAndResetsAfterAFlush() throws {
        let registry = MetricsRegistry()
        let vcpu0 = registry.makeVCPUCounters(index: 0), vcpu1 = registry.makeVCPUCounters(index: 1)
        for _ in 0..<3 { vcpu0.recordIOIn() }
        vcpu1.recordIOIn()
        vcpu0.recordIOOut()
        vcpu1.recordMMIORead(); vcpu1.recordMMIORead()
        vcpu0.recordMMIOWrite()
        vcpu1.recordFailure()

        let first = try parse(registry.snapshot())
        #expect(value(first, "vcpu", "exit_io_in") == 4)
        #expect(value(first, "vcpu", "exit_io_out") == 1)
        #expect(value(first, "vcpu", "exit_mmio_read") == 2)
        #expect(value(first, "vcpu", "exit_mmio_write") == 1)
        #expect(value(first, "vcpu", "failures") == 1)

        // SharedIncMetric: the next flush reports only what happened since.
        vcpu1.recordIOOut()
        let second = try parse(registry.snapshot())
        #expect(value(second, "vcpu", "exit_io_in") == 0)
        #expect(value(second, "vcpu", "exit_io_out") == 1)
        #expect(value(second, "vcpu", "failures") == 0)
    }

    @Test func peekingDoesNotReset() throws {
        let registry = MetricsRegistry()
        registry.makeVCPUCounters(index: 0).recordIOIn()
        #expect(value(try parse(registry.snapshot(commit: false)), "vcpu", "exit_io_in") == 1)
        #expect(value(try parse(registry.snapshot(commit: true)), "vcpu", "exit_io_in") == 1)
        #expect(value(try parse(registry.snapshot(commit: true)), "vcpu", "exit_io_in") == 0)
    }

    @Test func countsAPIRequestsUnderFirecrackersNames() throws {
        let registry = MetricsRegistry()
        #expect(registry.recordAPIRequest(method: "PUT", resource: "/drives/rootfs", failed: false))
        #expect(registry.recordAPIRequest(method: "PUT", resource: "/drives/scratch", failed: true))
        #expect(registry.recordAPIRequest(method: "put", resource: "actions", failed: false))
        #expect(registry.recordAPIRequest(method: "PUT", resource: "/machine-config", failed: true))
        #expect(registry.recordAPIRequest(method: "PUT", resource: "/network-interfaces/eth0", failed: false))
        #expect(registry.recordAPIRequest(method: "PUT", resource: "/boot-source", failed: false))
        #expect(registry.recordAPIRequest(method: "PATCH", resource: "/drives/rootfs", failed: true))
        #expect(registry.recordAPIRequest(method: "GET", resource: "/", failed: false))
        #expect(registry.recordAPIRequest(method: "GET", resource: "/machine-config", failed: true))
        #expect(registry.recordAPIRequest(method: "GET", resource: "/version", failed: false))
        #expect(!registry.recordAPIRequest(method: "PUT", resource: "/snapshot/create", failed: false))
        #expect(!registry.recordAPIRequest(method: "DELETE", resource: "/drives/x", failed: false))

        let json = try parse(registry.snapshot())
        #expect(value(json, "put_api_requests", "drive_count") == 2)
        #expect(value(json, "put_api_requests", "drive_fails") == 1)
        #expect(value(json, "put_api_requests", "actions_count") == 1)
        #expect(value(json, "put_api_requests", "actions_fails") == 0)
        #expect(value(json, "put_api_requests", "machine_cfg_count") == 1)
        #expect(value(json, "put_api_requests", "machine_cfg_fails") == 1)
        #expect(value(json, "put_api_requests", "network_count") == 1)
        #expect(value(json, "put_api_requests", "boot_source_count") == 1)
        #expect(value(json, "patch_api_requests", "drive_count") == 1)
        #expect(value(json, "patch_api_requests", "drive_fails") == 1)
        #expect(value(json, "get_api_requests", "instance_info_count") == 1)
        #expect(value(json, "get_api_requests", "machine_cfg_count") == 1)
        #expect(value(json, "get_api_requests", "vmm_version_count") == 1)

        let next = try parse(registry.snapshot())
        #expect(value(next, "put_api_requests", "drive_count") == 0)
    }

    @Test func latenciesAreKeptAcrossFlushes() throws {
        let registry = MetricsRegistry()
        registry.recordLatency(.pauseVM, microseconds: 1234)
        registry.recordLatency(.vmmResumeVM, microseconds: 56)
        _ = registry.snapshot()
        let json = try parse(registry.snapshot())
        // SharedStoreMetric: reported as is on every line.
        #expect(value(json, "latencies_us", "pause_vm") == 1234)
        #expect(value(json, "latencies_us", "vmm_resume_vm") == 56)
        #expect(value(json, "latencies_us", "resume_vm") == 0)

        let measured = registry.measure(.resumeVM) { 42 }
        #expect(measured == 42)
        #expect(value(try parse(registry.snapshot()), "latencies_us", "resume_vm") != nil)
    }

    @Test func blockDevicesArePerDriveAndAggregated() throws {
        let registry = MetricsRegistry()
        let rootfs = TestSource(BlockDeviceStatistics())
        var scratch = BlockDeviceStatistics()
        scratch.writeRequests = 2
        scratch.writeBytes = 8192
        scratch.flushes = 1
        registry.registerBlock(id: "rootfs") { rootfs.value }
        registry.registerBlock(id: "scratch") { [scratch] in scratch }
        rootfs.update { $0.readRequests = 3; $0.readBytes = 12288; $0.invalidRequests = 1 }

        let json = try parse(registry.snapshot())
        #expect(value(json, "block_rootfs", "read_count") == 3)
        #expect(value(json, "block_rootfs", "read_bytes") == 12288)
        #expect(value(json, "block_rootfs", "invalid_reqs_count") == 1)
        #expect(value(json, "block_scratch", "write_count") == 2)
        #expect(value(json, "block_scratch", "write_bytes") == 8192)
        #expect(value(json, "block", "read_bytes") == 12288)
        #expect(value(json, "block", "write_bytes") == 8192)
        #expect(value(json, "block", "flush_count") == 1)
        #expect(value(json, "block", "invalid_reqs_count") == 1)
        #expect(fields(json, "block_rootfs") == fields(json, "block"))

        // Totals keep growing at the source; each flush reports the difference, per drive and in the aggregate.
        rootfs.update { $0.readRequests = 5; $0.readBytes = 20480 }
        let next = try parse(registry.snapshot())
        #expect(value(next, "block_rootfs", "read_count") == 2)
        #expect(value(next, "block_rootfs", "read_bytes") == 8192)
        #expect(value(next, "block_scratch", "write_count") == 0)
        #expect(value(next, "block", "read_count") == 2)
        #expect(value(next, "block", "write_bytes") == 0)
    }

    @Test func networkAndVsockDevices() throws {
        let registry = MetricsRegistry()
        var eth0 = NetDeviceStatistics()
        eth0.transmittedFrames = 7
        eth0.receivedFrames = 5
        eth0.malformedTransmitChains = 1
        var eth1 = NetDeviceStatistics()
        eth1.receivedFrames = 2
        eth1.droppedReceiveFrames = 1
        var vsock = VsockDeviceStatistics()
        vsock.packetsToGuest = 4
        vsock.bytesFromGuest = 100
        vsock.timedOutConnections = 1
        registry.registerNet(id: "eth0") { [eth0] in eth0 }
        registry.registerNet(id: "eth1") { [eth1] in eth1 }
        registry.registerVsock { [vsock] in vsock }

        let json = try parse(registry.snapshot())
        #expect(value(json, "net_eth0", "tx_packets_count") == 7)
        #expect(value(json, "net_eth0", "rx_packets_count") == 5)
        #expect(value(json, "net_eth0", "tx_malformed_frames") == 1)
        #expect(value(json, "net_eth1", "rx_fails") == 1)
        #expect(value(json, "net", "rx_packets_count") == 7)
        #expect(value(json, "net", "tx_packets_count") == 7)
        #expect(value(json, "vsock", "rx_packets_count") == 4)
        #expect(value(json, "vsock", "tx_bytes_count") == 100)
        #expect(value(json, "vsock", "conns_killed") == 1)
        #expect(value(try parse(registry.snapshot()), "vsock", "tx_bytes_count") == 0)
    }

    @Test func withoutDevicesTheAggregatesAreStillThereAtZero() throws {
        let json = try parse(MetricsRegistry().snapshot())
        #expect(value(json, "block", "read_bytes") == 0)
        #expect(value(json, "net", "tx_packets_count") == 0)
        #expect(value(json, "vsock", "rx_packets_count") == 0)
        #expect(!json.keys.contains { $0.hasPrefix("block_") || $0.hasPrefix("net_") })
    }

    @Test func fixedGroupsCanBeFed() throws {
        let registry = MetricsRegistry()
        registry.registerCounters(group: "i8042") { ["reset_count": 1, "no_such_field": 9] }
        let json = try parse(registry.snapshot())
        #expect(value(json, "i8042", "reset_count") == 1)
        #expect(!fields(json, "i8042").contains("no_such_field"))
    }

    @Test func driveIDsAreEscaped() throws {
        let registry = MetricsRegistry()
        registry.registerBlock(id: "odd\"id\\") { BlockDeviceStatistics() }
        let json = try parse(registry.snapshot())
        #expect(json["block_odd\"id\\"] != nil)
    }
}

/// A statistics value a test changes while the registry holds a closure reading it.
final class TestSource<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func update(_ change: (inout Value) -> Void) { lock.withLock { change(&stored) } }
}
