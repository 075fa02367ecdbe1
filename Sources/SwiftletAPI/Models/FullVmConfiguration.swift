/// `GET /vm/config`: every configured resource in one object, the same shape as Firecracker's `--config-file`
/// (kebab-case keys). Like Firecracker, a resource that is not configured appears as `null` (or `[]` for the
/// lists), and `boot-source` before one is set is `{"kernel_image_path": "", "initrd_path": null}`.
///
/// One difference: Firecracker always reports `logger` and `metrics` as null; Swiftlet reports what was set.
public struct FullVmConfiguration: Encodable, Sendable, Equatable {
    public var bootSource: BootSource
    public var machineConfig: MachineConfig
    public var drives: [Drive]
    public var networkInterfaces: [NetworkInterface]
    public var vsock: Vsock?
    public var entropy: Entropy?
    public var logger: LoggerConfig?
    public var metrics: MetricsConfig?
    public var mmdsConfig: MmdsConfig?

    enum CodingKeys: String, CodingKey {
        case balloon
        case drives
        case bootSource = "boot-source"
        case cpuConfig = "cpu-config"
        case logger
        case machineConfig = "machine-config"
        case metrics
        case mmdsConfig = "mmds-config"
        case networkInterfaces = "network-interfaces"
        case vsock
        case entropy
        case pmem
        case memoryHotplug = "memory-hotplug"
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        // Resources Swiftlet does not have are present and empty, as Firecracker shows them unconfigured.
        try container.encodeNil(forKey: .balloon)
        try container.encodeNil(forKey: .cpuConfig)
        try container.encode([Drive](), forKey: .pmem)
        try container.encodeNil(forKey: .memoryHotplug)
        try container.encode(drives, forKey: .drives)
        try container.encode(bootSource, forKey: .bootSource)
        try container.encode(logger, forKey: .logger)
        try container.encode(machineConfig, forKey: .machineConfig)
        try container.encode(metrics, forKey: .metrics)
        try container.encode(mmdsConfig, forKey: .mmdsConfig)
        try container.encode(networkInterfaces, forKey: .networkInterfaces)
        try container.encode(vsock, forKey: .vsock)
        try container.encode(entropy, forKey: .entropy)
    }
}
