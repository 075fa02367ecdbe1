/// `PUT /machine-config` and `GET /machine-config`: vCPUs and memory (plus settings Swiftlet stores but does
/// not act on yet: SMT, CPU templates, dirty-page tracking, huge pages).
public struct MachineConfig: Codable, Sendable, Equatable {
    /// Firecracker's `MAX_SUPPORTED_VCPUS`.
    public static let maximumVCPUs: UInt8 = 32
    /// Firecracker's `DEFAULT_MEM_SIZE_MIB`: what a VM gets when machine-config is never set.
    public static let defaultMemoryMiB: UInt64 = 128

    public enum CPUTemplate: String, WireEnum, Sendable {
        case C3, T2, T2S, T2CL, T2A, V1N1
        case none = "None"
    }

    public enum HugePages: String, WireEnum, Sendable {
        case none = "None"
        case twoMegabytes = "2M"
    }

    public var vcpuCount: UInt8
    public var memSizeMib: UInt64
    public var smt: Bool
    /// Deprecated in Firecracker; accepted for old clients.
    public var cpuTemplate: CPUTemplate?
    public var trackDirtyPages: Bool
    public var hugePages: HugePages

    enum CodingKeys: String, CodingKey, CaseIterable {
        case vcpuCount = "vcpu_count"
        case memSizeMib = "mem_size_mib"
        case smt
        case cpuTemplate = "cpu_template"
        case trackDirtyPages = "track_dirty_pages"
        case hugePages = "huge_pages"
    }

    public init(vcpuCount: UInt8 = 1, memSizeMib: UInt64 = MachineConfig.defaultMemoryMiB, smt: Bool = false,
                cpuTemplate: CPUTemplate? = nil, trackDirtyPages: Bool = false, hugePages: HugePages = .none) {
        self.vcpuCount = vcpuCount
        self.memSizeMib = memSizeMib
        self.smt = smt
        self.cpuTemplate = cpuTemplate
        self.trackDirtyPages = trackDirtyPages
        self.hugePages = hugePages
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        vcpuCount = try container.decodeInteger(UInt8.self, forKey: .vcpuCount)
        memSizeMib = try container.decodeInteger(UInt64.self, forKey: .memSizeMib)
        smt = try container.decodeIfPresent(Bool.self, forKey: .smt) ?? false
        cpuTemplate = try container.decodeIfPresent(CPUTemplate.self, forKey: .cpuTemplate)
        trackDirtyPages = try container.decodeIfPresent(Bool.self, forKey: .trackDirtyPages) ?? false
        hugePages = try container.decodeIfPresent(HugePages.self, forKey: .hugePages) ?? .none
    }

    /// Firecracker's `MachineConfig::update`: the result of applying `update`, or the rule it breaks.
    func applying(_ update: PartialMachineConfig) throws(APIFault) -> MachineConfig {
        var result = self
        result.vcpuCount = update.vcpuCount ?? vcpuCount
        result.smt = update.smt ?? smt
        // SMT pairs sibling threads, so a count above 1 must be even.
        guard result.vcpuCount >= 1, result.vcpuCount <= Self.maximumVCPUs, !(result.smt && result.vcpuCount > 1 && result.vcpuCount % 2 == 1) else {
            throw APIFault(message: "Machine config error: The number of vCPUs must be greater than 0, less than \(Self.maximumVCPUs) and must be 1 or an even number if SMT is enabled.")
        }
        result.memSizeMib = update.memSizeMib ?? memSizeMib
        result.hugePages = update.hugePages ?? hugePages
        let pageMiB: UInt64 = result.hugePages == .twoMegabytes ? 2 : 1
        guard result.memSizeMib > 0, result.memSizeMib % pageMiB == 0 else {
            throw APIFault(message: "Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size.")
        }
        switch update.cpuTemplate {
        case nil: break
        case .none?: result.cpuTemplate = nil
        case let template?: result.cpuTemplate = template
        }
        result.trackDirtyPages = update.trackDirtyPages ?? trackDirtyPages
        return result
    }

    /// Every field set: what `PUT /machine-config` applies.
    var asUpdate: PartialMachineConfig {
        PartialMachineConfig(vcpuCount: vcpuCount, memSizeMib: memSizeMib, smt: smt, cpuTemplate: cpuTemplate ?? MachineConfig.CPUTemplate.none,
                             trackDirtyPages: trackDirtyPages, hugePages: hugePages)
    }
}

/// `PATCH /machine-config`: only the fields given change. An empty object is refused ("Empty PATCH request.").
public struct PartialMachineConfig: Codable, Sendable, Equatable {
    public var vcpuCount: UInt8?
    public var memSizeMib: UInt64?
    public var smt: Bool?
    public var cpuTemplate: MachineConfig.CPUTemplate?
    public var trackDirtyPages: Bool?
    public var hugePages: MachineConfig.HugePages?

    typealias CodingKeys = MachineConfig.CodingKeys

    public init(vcpuCount: UInt8? = nil, memSizeMib: UInt64? = nil, smt: Bool? = nil, cpuTemplate: MachineConfig.CPUTemplate? = nil,
                trackDirtyPages: Bool? = nil, hugePages: MachineConfig.HugePages? = nil) {
        self.vcpuCount = vcpuCount
        self.memSizeMib = memSizeMib
        self.smt = smt
        self.cpuTemplate = cpuTemplate
        self.trackDirtyPages = trackDirtyPages
        self.hugePages = hugePages
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        vcpuCount = try container.decodeIntegerIfPresent(UInt8.self, forKey: .vcpuCount)
        memSizeMib = try container.decodeIntegerIfPresent(UInt64.self, forKey: .memSizeMib)
        smt = try container.decodeIfPresent(Bool.self, forKey: .smt)
        cpuTemplate = try container.decodeIfPresent(MachineConfig.CPUTemplate.self, forKey: .cpuTemplate)
        trackDirtyPages = try container.decodeIfPresent(Bool.self, forKey: .trackDirtyPages)
        hugePages = try container.decodeIfPresent(MachineConfig.HugePages.self, forKey: .hugePages)
    }

    var isEmpty: Bool {
        vcpuCount == nil && memSizeMib == nil && smt == nil && cpuTemplate == nil && trackDirtyPages == nil && hugePages == nil
    }
}
