/// `PUT /mmds/config` (before boot only): which interfaces may reach the metadata service and at which
/// address. Swiftlet stores it and checks it as Firecracker does, but does not serve MMDS to the guest yet.
public struct MmdsConfig: Codable, Sendable, Equatable {
    public enum Version: String, WireEnum, Sendable {
        case v1 = "V1"
        case v2 = "V2"
    }

    /// Firecracker's default MMDS address.
    public static let defaultIPv4Address = "169.254.169.254"

    public var version: Version
    public var networkInterfaces: [String]
    public var ipv4Address: String?
    public var imdsCompat: Bool

    enum CodingKeys: String, CodingKey, CaseIterable {
        case version
        case networkInterfaces = "network_interfaces"
        case ipv4Address = "ipv4_address"
        case imdsCompat = "imds_compat"
    }

    public init(version: Version = .v1, networkInterfaces: [String], ipv4Address: String? = nil, imdsCompat: Bool = false) {
        self.version = version
        self.networkInterfaces = networkInterfaces
        self.ipv4Address = ipv4Address
        self.imdsCompat = imdsCompat
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        version = try container.decodeIfPresent(Version.self, forKey: .version) ?? .v1
        networkInterfaces = try container.decode([String].self, forKey: .networkInterfaces)
        ipv4Address = try container.decodeIfPresent(String.self, forKey: .ipv4Address)
        if let ipv4Address, Self.octets(ipv4Address) == nil {
            throw BodyError(detail: "invalid value for `ipv4_address`: '\(ipv4Address)' is not an IPv4 address")
        }
        imdsCompat = try container.decodeIfPresent(Bool.self, forKey: .imdsCompat) ?? false
    }

    static func octets(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let values = parts.compactMap { UInt8($0) }
        return values.count == 4 ? values : nil
    }

    /// MMDS answers on a link-local address (169.254.0.0/16, without the first and last /24), as Firecracker
    /// requires.
    var hasValidAddress: Bool {
        guard let ipv4Address else { return true }
        guard let octets = Self.octets(ipv4Address) else { return false }
        return octets[0] == 169 && octets[1] == 254 && octets[2] != 0 && octets[2] != 255
    }
}
