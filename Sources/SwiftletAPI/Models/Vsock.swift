/// `PUT /vsock`: the virtio-vsock device, bridged to the Unix socket `uds_path` (Firecracker's scheme, which
/// Swiftlet's `VsockConfiguration` implements).
public struct Vsock: Codable, Sendable, Equatable {
    /// Deprecated in Firecracker; accepted and ignored.
    public var vsockID: String?
    public var guestCID: UInt32
    public var udsPath: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case vsockID = "vsock_id"
        case guestCID = "guest_cid"
        case udsPath = "uds_path"
    }

    public init(vsockID: String? = nil, guestCID: UInt32, udsPath: String) {
        self.vsockID = vsockID
        self.guestCID = guestCID
        self.udsPath = udsPath
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        vsockID = try container.decodeIfPresent(String.self, forKey: .vsockID)
        guestCID = try container.decodeInteger(UInt32.self, forKey: .guestCID)
        udsPath = try container.decode(String.self, forKey: .udsPath)
    }
}
