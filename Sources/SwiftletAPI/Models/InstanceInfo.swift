/// `GET /`: who and what this VMM is, and where its microVM is in its life.
public struct InstanceInfo: Codable, Sendable, Equatable {
    /// Firecracker's three words for the lifecycle; Swiftlet's finer `MachineState` maps onto them.
    public enum State: String, WireEnum, Sendable {
        case notStarted = "Not started"
        case running = "Running"
        case paused = "Paused"
    }

    public var id: String
    public var state: State
    public var vmmVersion: String
    public var appName: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, state
        case vmmVersion = "vmm_version"
        case appName = "app_name"
    }

    public init(id: String, state: State, vmmVersion: String, appName: String) {
        self.id = id
        self.state = state
        self.vmmVersion = vmmVersion
        self.appName = appName
    }
}

/// `GET /version`.
public struct VersionInfo: Codable, Sendable, Equatable {
    public var firecrackerVersion: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case firecrackerVersion = "firecracker_version"
    }

    public init(firecrackerVersion: String) { self.firecrackerVersion = firecrackerVersion }
}
