#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Firecracker's `--config-file`: the pre-boot resources in one JSON object (`VmmConfig`, kebab-case keys).
/// As in Firecracker, `boot-source` and `drives` are required and keys it does not know are ignored; each
/// resource inside is read with the same strict rules and checks as its API request.
struct ConfigFile: Decodable {
    var bootSource: BootSource
    var drives: [Drive]
    var machineConfig: MachineConfig?
    var networkInterfaces: [NetworkInterface]
    var vsock: Vsock?
    var entropy: Entropy?
    var logger: LoggerConfig?
    var metrics: MetricsConfig?
    var mmdsConfig: MmdsConfig?

    enum CodingKeys: String, CodingKey {
        case bootSource = "boot-source"
        case drives
        case machineConfig = "machine-config"
        case networkInterfaces = "network-interfaces"
        case vsock, entropy, logger, metrics
        case mmdsConfig = "mmds-config"
        // Firecracker resources Swiftlet does not have: refused when given a value.
        case balloon
        case cpuConfig = "cpu-config"
        case pmem
        case memoryHotplug = "memory-hotplug"
    }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        for key in [CodingKeys.balloon, .cpuConfig, .memoryHotplug] {
            if try !container.isAbsentOrNull(key) {
                throw BodyError(detail: "`\(key.stringValue)` is not implemented in this version of Swiftlet")
            }
        }
        if let pmem = try container.decodeIfPresent(JSONValue.self, forKey: .pmem), pmem != .array([]), pmem != .null {
            throw BodyError(detail: "`pmem` is not implemented in this version of Swiftlet")
        }
        bootSource = try container.decode(BootSource.self, forKey: .bootSource)
        drives = try container.decode([Drive].self, forKey: .drives)
        machineConfig = try container.decodeIfPresent(MachineConfig.self, forKey: .machineConfig)
        networkInterfaces = try container.decodeIfPresent([NetworkInterface].self, forKey: .networkInterfaces) ?? []
        vsock = try container.decodeIfPresent(Vsock.self, forKey: .vsock)
        entropy = try container.decodeIfPresent(Entropy.self, forKey: .entropy)
        logger = try container.decodeIfPresent(LoggerConfig.self, forKey: .logger)
        metrics = try container.decodeIfPresent(MetricsConfig.self, forKey: .metrics)
        mmdsConfig = try container.decodeIfPresent(MmdsConfig.self, forKey: .mmdsConfig)
    }
}

extension KeyedDecodingContainer {
    /// True when `key` is absent or null.
    fileprivate func isAbsentOrNull(_ key: Key) throws -> Bool {
        guard contains(key) else { return true }
        return try decodeNil(forKey: key)
    }
}

extension VMResources {
    /// Reads a Firecracker config file. The logger and metrics it names are stored here; the caller hands them
    /// to the backend (`APIController.loadConfigFile` does).
    public init(configFile bytes: [UInt8]) throws(APIFault) {
        let file: ConfigFile
        do {
            file = try WireJSON.decoder().decode(ConfigFile.self, from: Data(bytes))
        } catch {
            throw APIFault(message: "Invalid JSON: " + WireJSON.describe(error))
        }
        self.init()
        logger = file.logger
        metrics = file.metrics
        if let machine = file.machineConfig { try updateMachineConfig(machine.asUpdate) }
        try setBootSource(file.bootSource)
        for drive in file.drives { try insertDrive(drive) }
        for interface in file.networkInterfaces { try insertNetworkInterface(interface) }
        vsock = file.vsock
        entropy = file.entropy
        if let mmds = file.mmdsConfig { try setMmdsConfig(mmds) }
    }
}
