/// `PUT /snapshot/create` (Firecracker's `SnapshotCreateParams`): save a paused VM to two files.
public struct SnapshotCreateParams: Codable, Sendable, Equatable {
    public enum SnapshotType: String, WireEnum, Sendable {
        case full = "Full"
        /// Only the pages dirtied since the last snapshot: refused by Swiftlet (no dirty-page tracking yet).
        case diff = "Diff"
    }

    /// Absent: `Full`.
    public var snapshotType: SnapshotType
    /// The state file to write.
    public var snapshotPath: String
    /// The guest memory file to write.
    public var memFilePath: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case snapshotType = "snapshot_type"
        case snapshotPath = "snapshot_path"
        case memFilePath = "mem_file_path"
    }

    public init(snapshotType: SnapshotType = .full, snapshotPath: String, memFilePath: String) {
        self.snapshotType = snapshotType
        self.snapshotPath = snapshotPath
        self.memFilePath = memFilePath
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        snapshotType = try container.decodeIfPresent(SnapshotType.self, forKey: .snapshotType) ?? .full
        snapshotPath = try container.decode(String.self, forKey: .snapshotPath)
        memFilePath = try container.decode(String.self, forKey: .memFilePath)
    }
}

/// `mem_backend`: where a loaded VM's memory comes from.
public struct MemoryBackend: Codable, Sendable, Equatable {
    public enum BackendType: String, WireEnum, Sendable {
        /// The memory file, mapped copy-on-write.
        case file = "File"
        /// A Unix socket to a page-fault handler process (userfaultfd): refused by Swiftlet.
        case uffd = "Uffd"
    }

    public var backendType: BackendType
    public var backendPath: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case backendType = "backend_type"
        case backendPath = "backend_path"
    }

    public init(backendType: BackendType, backendPath: String) {
        self.backendType = backendType
        self.backendPath = backendPath
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        backendType = try container.decode(BackendType.self, forKey: .backendType)
        backendPath = try container.decode(String.self, forKey: .backendPath)
    }
}

/// One `network_overrides` entry: the interface `iface_id` gets the TAP `host_dev_name`. Firecracker does not
/// refuse unknown fields here (no `deny_unknown_fields` on this type), and neither does Swiftlet.
public struct NetworkOverride: Codable, Sendable, Equatable {
    public var ifaceID: String
    public var hostDevName: String

    enum CodingKeys: String, CodingKey {
        case ifaceID = "iface_id"
        case hostDevName = "host_dev_name"
    }

    public init(ifaceID: String, hostDevName: String) {
        self.ifaceID = ifaceID
        self.hostDevName = hostDevName
    }
}

/// One `drive_overrides` entry: the drive `drive_id` now uses the image at `path_on_host`. Not in a Firecracker
/// release yet: the field and its entries follow Firecracker's pull request #5774 (2026), which adds them for the
/// same reason Swiftlet needs them: clones running at once each need their own copy of a read-write disk.
public struct DriveOverride: Codable, Sendable, Equatable {
    public var driveID: String
    public var pathOnHost: String

    enum CodingKeys: String, CodingKey {
        case driveID = "drive_id"
        case pathOnHost = "path_on_host"
    }

    public init(driveID: String, pathOnHost: String) {
        self.driveID = driveID
        self.pathOnHost = pathOnHost
    }
}

/// `vsock_override`: the vsock device's new host socket. Unknown fields are ignored, as in Firecracker.
public struct VsockOverride: Codable, Sendable, Equatable {
    public var udsPath: String

    enum CodingKeys: String, CodingKey {
        case udsPath = "uds_path"
    }

    public init(udsPath: String) { self.udsPath = udsPath }
}

/// `PUT /snapshot/load` as the client sends it (Firecracker's `LoadSnapshotConfig`). The router checks the
/// rules between fields and turns it into a `SnapshotLoad`.
public struct SnapshotLoadParams: Codable, Sendable, Equatable {
    public enum HugePages: String, WireEnum, Sendable {
        case snapshot = "Snapshot"
        case none = "None"
        case transparent = "Transparent"
        case hugetlbfs2M = "2M"
    }

    public var snapshotPath: String
    /// Deprecated in Firecracker: `mem_backend` with `File`. Exactly one of the two.
    public var memFilePath: String?
    public var memBackend: MemoryBackend?
    /// Deprecated in Firecracker: `track_dirty_pages`.
    public var enableDiffSnapshots: Bool
    public var trackDirtyPages: Bool
    public var resumeVM: Bool
    public var networkOverrides: [NetworkOverride]
    public var driveOverrides: [DriveOverride]
    public var vsockOverride: VsockOverride?
    /// Advance the guest's kvm-clock by the wall-clock time since the save.
    public var clockRealtime: Bool
    public var hugePages: HugePages

    enum CodingKeys: String, CodingKey, CaseIterable {
        case snapshotPath = "snapshot_path"
        case memFilePath = "mem_file_path"
        case memBackend = "mem_backend"
        case enableDiffSnapshots = "enable_diff_snapshots"
        case trackDirtyPages = "track_dirty_pages"
        case resumeVM = "resume_vm"
        case networkOverrides = "network_overrides"
        case driveOverrides = "drive_overrides"
        case vsockOverride = "vsock_override"
        case clockRealtime = "clock_realtime"
        case hugePages = "huge_pages"
    }

    public init(snapshotPath: String, memFilePath: String? = nil, memBackend: MemoryBackend? = nil, enableDiffSnapshots: Bool = false,
                trackDirtyPages: Bool = false, resumeVM: Bool = false, networkOverrides: [NetworkOverride] = [],
                driveOverrides: [DriveOverride] = [], vsockOverride: VsockOverride? = nil, clockRealtime: Bool = false,
                hugePages: HugePages = .snapshot) {
        self.snapshotPath = snapshotPath
        self.memFilePath = memFilePath
        self.memBackend = memBackend
        self.enableDiffSnapshots = enableDiffSnapshots
        self.trackDirtyPages = trackDirtyPages
        self.resumeVM = resumeVM
        self.networkOverrides = networkOverrides
        self.driveOverrides = driveOverrides
        self.vsockOverride = vsockOverride
        self.clockRealtime = clockRealtime
        self.hugePages = hugePages
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        snapshotPath = try container.decode(String.self, forKey: .snapshotPath)
        memFilePath = try container.decodeIfPresent(String.self, forKey: .memFilePath)
        memBackend = try container.decodeIfPresent(MemoryBackend.self, forKey: .memBackend)
        enableDiffSnapshots = try container.decodeIfPresent(Bool.self, forKey: .enableDiffSnapshots) ?? false
        trackDirtyPages = try container.decodeIfPresent(Bool.self, forKey: .trackDirtyPages) ?? false
        resumeVM = try container.decodeIfPresent(Bool.self, forKey: .resumeVM) ?? false
        networkOverrides = try container.decodeIfPresent([NetworkOverride].self, forKey: .networkOverrides) ?? []
        driveOverrides = try container.decodeIfPresent([DriveOverride].self, forKey: .driveOverrides) ?? []
        vsockOverride = try container.decodeIfPresent(VsockOverride.self, forKey: .vsockOverride)
        clockRealtime = try container.decodeIfPresent(Bool.self, forKey: .clockRealtime) ?? false
        hugePages = try container.decodeIfPresent(HugePages.self, forKey: .hugePages) ?? .snapshot
    }
}

/// A `PUT /snapshot/load` after the router's checks: one memory backend, the deprecated fields folded in (as
/// Firecracker's `parse_put_snapshot_load` folds them).
public struct SnapshotLoad: Sendable, Equatable {
    public var snapshotPath: String
    public var memBackend: MemoryBackend
    /// `track_dirty_pages` or the deprecated `enable_diff_snapshots`.
    public var trackDirtyPages: Bool
    public var resumeVM: Bool
    public var networkOverrides: [NetworkOverride]
    public var driveOverrides: [DriveOverride]
    public var vsockOverride: VsockOverride?
    public var clockRealtime: Bool
    public var hugePages: SnapshotLoadParams.HugePages
    /// The request used `mem_file_path` or `enable_diff_snapshots` (Firecracker logs a deprecation for them).
    public var usedDeprecatedFields: Bool

    public init(snapshotPath: String, memBackend: MemoryBackend, trackDirtyPages: Bool = false, resumeVM: Bool = false,
                networkOverrides: [NetworkOverride] = [], driveOverrides: [DriveOverride] = [], vsockOverride: VsockOverride? = nil,
                clockRealtime: Bool = false, hugePages: SnapshotLoadParams.HugePages = .snapshot, usedDeprecatedFields: Bool = false) {
        self.snapshotPath = snapshotPath
        self.memBackend = memBackend
        self.trackDirtyPages = trackDirtyPages
        self.resumeVM = resumeVM
        self.networkOverrides = networkOverrides
        self.driveOverrides = driveOverrides
        self.vsockOverride = vsockOverride
        self.clockRealtime = clockRealtime
        self.hugePages = hugePages
        self.usedDeprecatedFields = usedDeprecatedFields
    }

    /// Firecracker's texts for the `mem_*` rule (`request/snapshot.rs`).
    static let missingMemory = "missing field: either `mem_backend` or `mem_file_path` is required"
    static let bothMemory = "too many fields: either `mem_backend` or `mem_file_path` exclusively is required"
    static let deprecation = "PUT /snapshot/load: mem_file_path and enable_diff_snapshots fields are deprecated."

    init(_ params: SnapshotLoadParams) throws(APIFault) {
        let backend: MemoryBackend
        switch (params.memBackend, params.memFilePath) {
        case (_?, _?): throw APIFault(message: WireJSON.deserializePrefix + Self.bothMemory + ".")
        case (nil, nil): throw APIFault(message: WireJSON.deserializePrefix + Self.missingMemory + ".")
        case let (given?, nil): backend = given
        case let (nil, path?): backend = MemoryBackend(backendType: .file, backendPath: path)
        }
        self.init(snapshotPath: params.snapshotPath, memBackend: backend,
                  trackDirtyPages: params.trackDirtyPages || params.enableDiffSnapshots, resumeVM: params.resumeVM,
                  networkOverrides: params.networkOverrides, driveOverrides: params.driveOverrides, vsockOverride: params.vsockOverride,
                  clockRealtime: params.clockRealtime, hugePages: params.hugePages,
                  usedDeprecatedFields: params.memFilePath != nil || params.enableDiffSnapshots)
    }
}
