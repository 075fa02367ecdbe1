import Swiftlet

/// `PUT /network-interfaces/{iface_id}`: a virtio-net device on a host TAP.
public struct NetworkInterface: Codable, Sendable, Equatable {
    public var ifaceID: String
    public var hostDevName: String
    /// `XX:XX:XX:XX:XX:XX`; checked when the body is read. Absent: Swiftlet derives a stable one.
    public var guestMac: String?
    public var mtu: UInt16?
    public var rxRateLimiter: RateLimiter?
    public var txRateLimiter: RateLimiter?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case ifaceID = "iface_id"
        case hostDevName = "host_dev_name"
        case guestMac = "guest_mac"
        case mtu
        case rxRateLimiter = "rx_rate_limiter"
        case txRateLimiter = "tx_rate_limiter"
    }

    public init(ifaceID: String, hostDevName: String, guestMac: String? = nil, mtu: UInt16? = nil,
                rxRateLimiter: RateLimiter? = nil, txRateLimiter: RateLimiter? = nil) {
        self.ifaceID = ifaceID
        self.hostDevName = hostDevName
        self.guestMac = guestMac
        self.mtu = mtu
        self.rxRateLimiter = rxRateLimiter
        self.txRateLimiter = txRateLimiter
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        ifaceID = try container.decode(String.self, forKey: .ifaceID)
        hostDevName = try container.decode(String.self, forKey: .hostDevName)
        guestMac = try container.decodeIfPresent(String.self, forKey: .guestMac)
        if let guestMac, MACAddress(guestMac) == nil {
            throw BodyError(detail: "invalid value for `\(fieldPath(decoder.codingPath + [CodingKeys.guestMac]))`: '\(guestMac)' is not a MAC address (expected XX:XX:XX:XX:XX:XX)")
        }
        mtu = try container.decodeIntegerIfPresent(UInt16.self, forKey: .mtu)
        rxRateLimiter = try container.decodeIfPresent(RateLimiter.self, forKey: .rxRateLimiter)
        txRateLimiter = try container.decodeIfPresent(RateLimiter.self, forKey: .txRateLimiter)
    }
}

/// `PATCH /network-interfaces/{iface_id}` (after boot only): new rate limits, the only thing Firecracker lets
/// change on a running interface.
public struct PartialNetworkInterface: Codable, Sendable, Equatable {
    public var ifaceID: String
    public var rxRateLimiter: RateLimiter?
    public var txRateLimiter: RateLimiter?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case ifaceID = "iface_id"
        case rxRateLimiter = "rx_rate_limiter"
        case txRateLimiter = "tx_rate_limiter"
    }

    public init(ifaceID: String, rxRateLimiter: RateLimiter? = nil, txRateLimiter: RateLimiter? = nil) {
        self.ifaceID = ifaceID
        self.rxRateLimiter = rxRateLimiter
        self.txRateLimiter = txRateLimiter
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        ifaceID = try container.decode(String.self, forKey: .ifaceID)
        rxRateLimiter = try container.decodeIfPresent(RateLimiter.self, forKey: .rxRateLimiter)
        txRateLimiter = try container.decodeIfPresent(RateLimiter.self, forKey: .txRateLimiter)
    }
}
