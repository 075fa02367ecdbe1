/// A guest network interface: its host backend, MAC address, and the IPv4 configuration the guest applies at boot.
///
/// The Debian cloud kernel has no `ip=` autoconfiguration (CONFIG_IP_PNP is off), so Swiftlet passes each
/// interface's settings on the kernel command line in a parameter of its own, which the default guest's /init
/// applies with busybox `ip`:
///
///     swiftlet.net0=mac=02:53:57:0a:1b:2c,ip=10.0.0.2/24,gw=10.0.0.1
///
/// The interface is found by its MAC address, so the order in which the guest names interfaces does not matter.
public struct NetworkConfiguration: Sendable, Equatable, Codable {
    public enum Backend: Sendable, Equatable, Codable {
        /// An existing (or creatable) TAP interface on the host.
        case tap(name: String)
        /// A Unix stream socket to another VM: this one listens on `path` (`listen: true`) or connects to it.
        /// Frames travel as `FrameStream` records; see docs/networking.md.
        case socket(path: String, listen: Bool)
    }

    public var backend: Backend
    public var mac: MACAddress
    public var address: IPv4Interface?
    public var gateway: IPv4Address?
    /// The MTU the device advises (VIRTIO_NET_F_MTU; Linux's virtio_net takes it as the interface's MTU). nil: the
    /// backend's default, `defaultMTU(for:)`.
    public var mtu: UInt16?
    /// The interface's name in the control plane (Firecracker's `iface_id`); nil for interfaces given on the
    /// command line, which the API then names by position (`net0`, `net1`, ...).
    public var id: String?

    /// The id the machine's device registry and snapshot overrides know this interface by: `id` (the API's
    /// `iface_id`), or `net0`, `net1`, ... by its position among the interfaces.
    func registryID(position: Int) -> String { id ?? "net\(position)" }

    /// What `mtu=` accepts: IPv4's minimum (Linux's ETH_MIN_MTU) up to what a socket link's frames can hold with
    /// a VLAN tag (`FrameStream.frameLengths`).
    public static let mtuRange: ClosedRange<UInt16> = 68...65520

    public init(backend: Backend, mac: MACAddress, address: IPv4Interface? = nil, gateway: IPv4Address? = nil, mtu: UInt16? = nil,
                id: String? = nil) {
        self.id = id
        self.backend = backend
        self.mac = mac
        self.address = address
        self.gateway = gateway
        self.mtu = mtu
    }

    /// A TAP advises none (the guest takes Ethernet's 1500; large segments travel as TSO instead). A socket link
    /// carries no offloads, so every TCP segment is a frame of its own: the largest MTU lets a segment be 64 KiB,
    /// which costs the two guests and VMMs one frame where 1500 would cost 45. TCP still works with a peer of a
    /// smaller MTU (each side sends segments no larger than the other announced).
    public static func defaultMTU(for backend: Backend) -> UInt16? {
        switch backend {
        case .tap: return nil
        case .socket: return mtuRange.upperBound
        }
    }

    /// The MTU the guest is advised: `mtu=`, else the backend's default.
    public var advisedMTU: UInt16? { mtu ?? Self.defaultMTU(for: backend) }

    /// The checks of a configuration made in code (the parser makes them too, with the `--net` text).
    public func validate() throws(ConfigurationError) {
        if let problem = mac.unicastProblem { throw .invalidNetwork("\(mac)", reason: problem) }
        if let address, let problem = address.hostAddressProblem { throw .invalidNetwork("\(address)", reason: problem) }
        if let gateway {
            guard let address else { throw .invalidNetwork("\(gateway)", reason: "a gateway needs an interface address too") }
            if let problem = Self.gatewayProblem(gateway, address: address) { throw .invalidNetwork("\(gateway)", reason: problem) }
        }
    }

    /// Why `gateway` cannot be the gateway of an interface at `address`, if it cannot.
    public static func gatewayProblem(_ gateway: IPv4Address, address: IPv4Interface) -> String? {
        if !address.contains(gateway) { return "gateway \(gateway) is not in \(address)" }
        if gateway == address.address { return "gateway \(gateway) is the interface's own address" }
        if address.prefixLength <= 30, gateway.value == address.networkAddress || gateway.value == address.broadcastAddress {
            return "gateway \(gateway) is the network or broadcast address of \(address)"
        }
        return nil
    }

    /// The kernel command-line parameter that tells the guest's /init about interface `index`.
    public func commandLineParameter(index: Int) -> String {
        var value = "mac=\(mac)"
        if let address { value += ",ip=\(address)" }
        if let gateway { value += ",gw=\(gateway)" }
        return "swiftlet.net\(index)=\(value)"
    }
}

public struct MACAddress: Sendable, Equatable, CustomStringConvertible, Codable {
    public var bytes: [UInt8]

    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// Why this cannot be an interface's own address: all zeros is no address, and a multicast address (the
    /// low bit of the first byte, IEEE 802) names a group, never one station.
    public var unicastProblem: String? {
        if bytes.allSatisfy({ $0 == 0 }) { return "\(self) is not a usable MAC address (all zeros)" }
        if bytes[0] & 1 != 0 { return "\(self) is a multicast address" }
        return nil
    }

    /// A locally administered unicast address (first byte 0x02) from a 32-bit FNV-1a hash of `seed`.
    public static func derived(from seed: String) -> MACAddress {
        var hash: UInt32 = 0x811C_9DC5
        for byte in seed.utf8 { hash = (hash ^ UInt32(byte)) &* 0x0100_0193 }
        return MACAddress(bytes: [0x02, 0x53, UInt8(truncatingIfNeeded: hash >> 24), UInt8(truncatingIfNeeded: hash >> 16),
                                  UInt8(truncatingIfNeeded: hash >> 8), UInt8(truncatingIfNeeded: hash)])
    }

    public var description: String {
        bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined(separator: ":")
    }
}

public struct IPv4Address: Sendable, Equatable, CustomStringConvertible, Codable {
    public var value: UInt32

    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let byte = UInt8(part) else { return nil }
            value = value << 8 | UInt32(byte)
        }
        self.value = value
    }

    public var description: String { (0..<4).map { String((value >> (24 - 8 * $0)) & 0xFF) }.joined(separator: ".") }
}

/// An address with its network prefix, as `ip addr add` takes it (`10.0.0.2/24`).
public struct IPv4Interface: Sendable, Equatable, CustomStringConvertible, Codable {
    public var address: IPv4Address
    public var prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(String(parts[0])), let prefix = Int(parts[1]), (1...32).contains(prefix) else { return nil }
        self.address = address
        prefixLength = prefix
    }

    var mask: UInt32 { prefixLength == 0 ? 0 : ~UInt32(0) << (32 - UInt32(prefixLength)) }

    public func contains(_ other: IPv4Address) -> Bool { other.value & mask == address.value & mask }

    var networkAddress: UInt32 { address.value & mask }
    var broadcastAddress: UInt32 { address.value | ~mask }

    /// Why this cannot be a host's address: up to /30 the first and last addresses of a subnet are the network
    /// and its broadcast (RFC 919/922); /31 (RFC 3021) and /32 have neither.
    public var hostAddressProblem: String? {
        guard prefixLength <= 30 else { return nil }
        if address.value == networkAddress { return "\(self) is the network address, not a host's" }
        if address.value == broadcastAddress { return "\(self) is the broadcast address, not a host's" }
        return nil
    }

    public var description: String { "\(address)/\(prefixLength)" }
}
