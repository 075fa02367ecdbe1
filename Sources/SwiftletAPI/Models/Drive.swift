/// `PUT /drives/{drive_id}`: a block device, attached as a virtio-blk disk.
public struct Drive: Codable, Sendable, Equatable {
    /// Firecracker's `CacheType`: `Unsafe` ignores the guest's flushes, `Writeback` honours them.
    public enum CacheType: String, WireEnum, Sendable {
        case unsafe = "Unsafe"
        case writeback = "Writeback"
    }

    /// Firecracker's `FileEngineType`. Swiftlet has one engine; the value is stored and reported only.
    public enum IOEngine: String, WireEnum, Sendable {
        case sync = "Sync"
        case async = "Async"
    }

    public var driveID: String
    public var pathOnHost: String?
    /// The root device becomes /dev/vda and puts `root=` on the kernel command line.
    public var isRootDevice: Bool
    /// With `is_root_device`: boot from this partition (`root=PARTUUID=...`) instead of /dev/vda.
    public var partuuid: String?
    public var isReadOnly: Bool?
    public var cacheType: CacheType
    public var ioEngine: IOEngine?
    public var rateLimiter: RateLimiter?
    /// A vhost-user-blk socket (Firecracker); Swiftlet has no vhost-user and refuses such drives.
    public var socket: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case driveID = "drive_id"
        case pathOnHost = "path_on_host"
        case isRootDevice = "is_root_device"
        case partuuid
        case isReadOnly = "is_read_only"
        case cacheType = "cache_type"
        case ioEngine = "io_engine"
        case rateLimiter = "rate_limiter"
        case socket
    }

    public init(driveID: String, pathOnHost: String?, isRootDevice: Bool = false, partuuid: String? = nil, isReadOnly: Bool? = nil,
                cacheType: CacheType = .unsafe, ioEngine: IOEngine? = nil, rateLimiter: RateLimiter? = nil, socket: String? = nil) {
        self.driveID = driveID
        self.pathOnHost = pathOnHost
        self.isRootDevice = isRootDevice
        self.partuuid = partuuid
        self.isReadOnly = isReadOnly
        self.cacheType = cacheType
        self.ioEngine = ioEngine
        self.rateLimiter = rateLimiter
        self.socket = socket
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        driveID = try container.decode(String.self, forKey: .driveID)
        pathOnHost = try container.decodeIfPresent(String.self, forKey: .pathOnHost)
        isRootDevice = try container.decode(Bool.self, forKey: .isRootDevice)
        partuuid = try container.decodeIfPresent(String.self, forKey: .partuuid)
        isReadOnly = try container.decodeIfPresent(Bool.self, forKey: .isReadOnly)
        cacheType = try container.decodeIfPresent(CacheType.self, forKey: .cacheType) ?? .unsafe
        ioEngine = try container.decodeIfPresent(IOEngine.self, forKey: .ioEngine)
        rateLimiter = try container.decodeIfPresent(RateLimiter.self, forKey: .rateLimiter)
        socket = try container.decodeIfPresent(String.self, forKey: .socket)
    }

    public var readOnly: Bool { isReadOnly ?? false }
}

/// `PATCH /drives/{drive_id}` (after boot only): a new backing file, and/or new rate limits.
public struct PartialDrive: Codable, Sendable, Equatable {
    public var driveID: String
    public var pathOnHost: String?
    public var rateLimiter: RateLimiter?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case driveID = "drive_id"
        case pathOnHost = "path_on_host"
        case rateLimiter = "rate_limiter"
    }

    public init(driveID: String, pathOnHost: String? = nil, rateLimiter: RateLimiter? = nil) {
        self.driveID = driveID
        self.pathOnHost = pathOnHost
        self.rateLimiter = rateLimiter
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        driveID = try container.decode(String.self, forKey: .driveID)
        pathOnHost = try container.decodeIfPresent(String.self, forKey: .pathOnHost)
        rateLimiter = try container.decodeIfPresent(RateLimiter.self, forKey: .rateLimiter)
    }
}
