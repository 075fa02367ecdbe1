// Firecracker's metrics groups and field names (src/vmm/src/logger/metrics.rs and each device's metrics.rs;
// docs/metrics.md), and how Swiftlet's statistics fill them.
//
// Firecracker emits every group on every line whether or not the component exists ("even if vsock device is not
// attached ... Firecracker will still emit the Vsock metrics with key as vsock and value of all metrics ... as 0",
// docs/metrics.md), so clients index fields freely. We do the same: every field is present, and the ones
// Swiftlet does not measure stay 0. Always 0:
//   - api_server.process_startup_time_cpu_us, and process_startup_time_us until `setProcessStartupTime` is called;
//   - balloon, entropy, pmem, memory_hotplug, mmds, seccomp, signals, deprecated_api, interrupts: no such device
//     or mechanism in Swiftlet (entropy: virtio-rng keeps no statistics yet);
//   - i8042 and uart: the legacy devices keep no statistics yet (`registerCounters(group:)` can feed them);
//   - vmm.panic_count; logger.rate_limited_log_count;
//   - vcpu: kvmclock_ctrl_fails and the four exit_*_agg latency aggregates (timing every exit would cost two
//     clock reads on the hot path);
//   - block: cfg_fails, no_avail_buffer, rate_limiter_*, update_count/update_fails (no PATCH of drives yet),
//     io_engine_throttled_events, remaining_reqs_count, read_agg/write_agg (requests are not timed);
//   - net: byte counts (NetDeviceStatistics counts frames, not bytes), tap_read_fails/tap_write_fails,
//     *_event_count, rate limiter fields, no_rx/tx_avail_buffer, tx_spoofed_mac_count, tap_write_agg;
//   - vsock: the *_event_fails/_event_count fields, conns_added/conns_removed, killq_resync, tx_flush_fails,
//     tx_write_fails, rx_read_fails;
//   - latencies_us: the snapshot fields (no snapshots yet) and whatever the VMM has not recorded.
// rtc is emitted by Firecracker only on aarch64, so not here.

import Virtio

enum FirecrackerMetricsSchema {
    static let apiServer = ["process_startup_time_us", "process_startup_time_cpu_us"]

    static let getRequests = [
        "instance_info_count", "machine_cfg_count", "mmds_count", "vmm_version_count", "hotplug_memory_count",
    ]
    static let putRequests = [
        "actions_count", "actions_fails", "boot_source_count", "boot_source_fails", "drive_count", "drive_fails",
        "logger_count", "logger_fails", "machine_cfg_count", "machine_cfg_fails", "cpu_cfg_count", "cpu_cfg_fails",
        "metrics_count", "metrics_fails", "network_count", "network_fails", "mmds_count", "mmds_fails",
        "vsock_count", "vsock_fails", "pmem_count", "pmem_fails", "serial_count", "serial_fails",
        "hotplug_memory_count", "hotplug_memory_fails",
    ]
    static let patchRequests = [
        "drive_count", "drive_fails", "network_count", "network_fails", "machine_cfg_count", "machine_cfg_fails",
        "mmds_count", "mmds_fails", "hotplug_memory_count", "hotplug_memory_fails", "pmem_count", "pmem_fails",
    ]
    static let deprecatedAPI = ["deprecated_http_api_calls"]
    static let logger = ["missed_metrics_count", "metrics_fails", "missed_log_count", "rate_limited_log_count"]
    static let mmds = [
        "rx_accepted", "rx_accepted_err", "rx_accepted_unusual", "rx_bad_eth", "rx_invalid_token", "rx_no_token",
        "rx_count", "tx_bytes", "tx_count", "tx_errors", "tx_frames", "connections_created", "connections_destroyed",
    ]
    static let seccomp = ["num_faults"]
    static let interrupts = ["triggers", "config_updates"]
    static let i8042 = ["error_count", "missed_read_count", "missed_write_count", "read_count", "reset_count", "write_count"]
    static let uart = [
        "error_count", "flush_count", "missed_read_count", "missed_write_count", "read_count", "write_count",
        "rate_limiter_dropped_bytes",
    ]
    static let balloon = [
        "activate_fails", "inflate_count", "stats_updates_count", "stats_update_fails", "deflate_count", "event_fails",
        "free_page_report_count", "free_page_report_freed", "free_page_report_fails", "free_page_hint_count",
        "free_page_hint_freed", "free_page_hint_fails",
    ]
    static let entropy = [
        "activate_fails", "entropy_event_fails", "entropy_event_count", "entropy_bytes", "host_rng_fails",
        "entropy_rate_limiter_throttled", "rate_limiter_event_count",
    ]
    static let pmem = [
        "activate_fails", "cfg_fails", "event_fails", "queue_event_count", "rate_limiter_throttled_events",
        "rate_limiter_event_count",
    ]
    static let vsock = [
        "activate_fails", "cfg_fails", "rx_queue_event_fails", "tx_queue_event_fails", "ev_queue_event_fails",
        "muxer_event_fails", "conn_event_fails", "rx_queue_event_count", "tx_queue_event_count", "rx_bytes_count",
        "tx_bytes_count", "rx_packets_count", "tx_packets_count", "conns_added", "conns_killed", "conns_removed",
        "killq_resync", "tx_flush_fails", "tx_write_fails", "rx_read_fails",
    ]

    /// Firecracker's `PerformanceMetrics`, all SharedStoreMetric: the last value recorded, never reset.
    static let latencies = [
        "full_create_snapshot", "diff_create_snapshot", "load_snapshot", "pause_vm", "resume_vm",
        "vmm_full_create_snapshot", "vmm_diff_create_snapshot", "vmm_load_snapshot", "vmm_pause_vm", "vmm_resume_vm",
    ]

    static func signals() -> MetricValue {
        // All SharedStoreMetric but sigpipe (a SharedIncMetric), in Firecracker's order.
        .group([
            ("sigbus", .gauge(0)), ("sigsegv", .gauge(0)), ("sigxfsz", .gauge(0)), ("sigxcpu", .gauge(0)),
            ("sigpipe", .counter(0)), ("sighup", .gauge(0)), ("sigill", .gauge(0)),
        ])
    }

    static func memoryHotplug() -> MetricValue {
        var fields: MetricGroup = [("activate_fails", .counter(0)), ("queue_event_fails", .counter(0)), ("queue_event_count", .counter(0))]
        for operation in ["plug", "unplug"] {
            fields.append(("\(operation)_agg", .latencyAggregate()))
            for suffix in ["count", "bytes", "fails"] { fields.append(("\(operation)_\(suffix)", .counter(0))) }
        }
        fields.append(("unplug_discard_fails", .counter(0)))
        fields += [("unplug_all_agg", .latencyAggregate()), ("unplug_all_count", .counter(0)), ("unplug_all_fails", .counter(0))]
        fields += [("state_agg", .latencyAggregate()), ("state_count", .counter(0)), ("state_fails", .counter(0))]
        return .group(fields)
    }

    static func vcpu(_ counts: VCPUExitCounts) -> MetricValue {
        .group([
            ("exit_io_in", .counter(counts.ioIn)), ("exit_io_out", .counter(counts.ioOut)),
            ("exit_mmio_read", .counter(counts.mmioRead)), ("exit_mmio_write", .counter(counts.mmioWrite)),
            ("failures", .counter(counts.failures)), ("kvmclock_ctrl_fails", .counter(0)),
            ("exit_io_in_agg", .latencyAggregate()), ("exit_io_out_agg", .latencyAggregate()),
            ("exit_mmio_read_agg", .latencyAggregate()), ("exit_mmio_write_agg", .latencyAggregate()),
        ])
    }

    /// Firecracker's `BlockDeviceMetrics`, in its field order.
    static func block(_ s: BlockDeviceStatistics) -> MetricValue {
        .group([
            ("activate_fails", .counter(s.activationFailures)), ("cfg_fails", .counter(0)),
            ("no_avail_buffer", .counter(0)), ("event_fails", .counter(s.queueFailures)),
            ("execute_fails", .counter(s.failedRequests)), ("invalid_reqs_count", .counter(s.invalidRequests)),
            ("flush_count", .counter(s.flushes)), ("queue_event_count", .counter(s.queueNotifications)),
            ("rate_limiter_event_count", .counter(0)), ("update_count", .counter(0)), ("update_fails", .counter(0)),
            ("read_bytes", .counter(s.readBytes)), ("write_bytes", .counter(s.writeBytes)),
            ("read_count", .counter(s.readRequests)), ("write_count", .counter(s.writeRequests)),
            ("read_agg", .latencyAggregate()), ("write_agg", .latencyAggregate()),
            ("rate_limiter_throttled_events", .counter(0)), ("io_engine_throttled_events", .counter(0)),
            ("remaining_reqs_count", .counter(0)),
        ])
    }

    /// Firecracker's `NetDeviceMetrics`. A frame is one backend read or write, so `*_count` (successful
    /// operations) equals `*_packets_count`; receive failures are frames dropped plus chains returned empty.
    static func net(_ s: NetDeviceStatistics) -> MetricValue {
        .group([
            ("activate_fails", .counter(0)), ("cfg_fails", .counter(0)), ("no_rx_avail_buffer", .counter(0)),
            ("no_tx_avail_buffer", .counter(0)), ("event_fails", .counter(0)), ("rx_queue_event_count", .counter(0)),
            ("rx_event_rate_limiter_count", .counter(0)), ("rx_rate_limiter_throttled", .counter(0)),
            ("rx_tap_event_count", .counter(0)), ("rx_bytes_count", .counter(0)),
            ("rx_packets_count", .counter(s.receivedFrames)),
            ("rx_fails", .counter(s.droppedReceiveFrames &+ s.malformedReceiveChains)),
            ("rx_count", .counter(s.receivedFrames)), ("tap_read_fails", .counter(0)), ("tap_write_fails", .counter(0)),
            ("tap_write_agg", .latencyAggregate()), ("tx_bytes_count", .counter(0)),
            ("tx_malformed_frames", .counter(s.malformedTransmitChains)), ("tx_fails", .counter(s.transmitBackendErrors)),
            ("tx_count", .counter(s.transmittedFrames)), ("tx_packets_count", .counter(s.transmittedFrames)),
            ("tx_queue_event_count", .counter(0)), ("tx_rate_limiter_event_count", .counter(0)),
            ("tx_rate_limiter_throttled", .counter(0)), ("tx_spoofed_mac_count", .counter(0)),
            ("tx_remaining_reqs_count", .counter(0)),
        ])
    }

    /// Firecracker's `VsockDeviceMetrics`: rx is device → guest, tx guest → device (the queue names). Connections
    /// reset for not answering in time are `conns_killed`. Malformed and refused packets have no Firecracker field.
    static func vsock(_ s: VsockDeviceStatistics) -> MetricValue {
        .counters(vsock, [
            "rx_packets_count": s.packetsToGuest, "tx_packets_count": s.packetsFromGuest,
            "rx_bytes_count": s.bytesToGuest, "tx_bytes_count": s.bytesFromGuest,
            "conns_killed": s.timedOutConnections,
        ])
    }
}
