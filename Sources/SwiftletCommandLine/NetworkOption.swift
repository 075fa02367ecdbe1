import Swiftlet

/// `--net tap=NAME|socket=PATH[,listen][,mac=...][,ip=...][,gateway=...][,mtu=N]`: the command line's syntax for a
/// `NetworkConfiguration`.
extension NetworkConfiguration {
    /// Parses the `--net` syntax: `tap=NAME` or `socket=PATH[,listen]`, then
    /// `[,mac=XX:XX:XX:XX:XX:XX][,ip=ADDR/PREFIX][,gateway=ADDR][,mtu=N]`. Without `mac=`, a locally administered address
    /// derived from the backend and `index` (stable across runs; the two ends of a socket get different ones).
    public init(parsing text: String, index: Int) throws(ConfigurationError) {
        var backend: Backend?
        var listen = false
        var mac: MACAddress?
        var address: IPv4Interface?
        var gateway: IPv4Address?
        var mtu: UInt16?
        var seen: Set<String> = []
        for option in text.split(separator: ",").map(String.init) {
            let parts = option.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            // A repeated key would silently override the first one: `mac=...,mac=...` is a mistake, so say so.
            // (Two backends get their own message below.)
            let key = parts[0] == "gw" ? "gateway" : parts[0]
            guard ["tap", "socket"].contains(key) || seen.insert(key).inserted else { throw .invalidNetwork(text, reason: "'\(parts[0])' is given more than once") }
            if option == "listen" {
                listen = true
                continue
            }
            guard parts.count == 2 else { throw .invalidNetwork(text, reason: "'\(option)' is not key=value") }
            if ["tap", "socket"].contains(parts[0]), backend != nil {
                throw .invalidNetwork(text, reason: "one backend per interface: tap= or socket=")
            }
            switch parts[0] {
            case "tap":
                guard (1...15).contains(parts[1].utf8.count), !parts[1].contains("/") else {
                    throw .invalidNetwork(text, reason: "TAP name '\(parts[1])' must be 1 to 15 characters without '/'")
                }
                backend = .tap(name: parts[1])
            case "socket":
                // sun_path holds 108 bytes with the terminating NUL.
                guard (1...107).contains(parts[1].utf8.count), !parts[1].contains("\0") else {
                    throw .invalidNetwork(text, reason: "socket path '\(parts[1])' must be 1 to 107 bytes")
                }
                backend = .socket(path: parts[1], listen: false)
            case "mac":
                guard let parsed = MACAddress(parts[1]) else { throw .invalidNetwork(text, reason: "'\(parts[1])' is not a MAC address") }
                if let problem = parsed.unicastProblem { throw .invalidNetwork(text, reason: problem) }
                mac = parsed
            case "ip":
                guard let parsed = IPv4Interface(parts[1]) else {
                    throw .invalidNetwork(text, reason: "'\(parts[1])' is not an IPv4 address with a prefix, like 10.0.0.2/24")
                }
                if let problem = parsed.hostAddressProblem { throw .invalidNetwork(text, reason: problem) }
                address = parsed
            case "gateway", "gw":
                guard let parsed = IPv4Address(parts[1]) else { throw .invalidNetwork(text, reason: "'\(parts[1])' is not an IPv4 address") }
                gateway = parsed
            case "mtu":
                guard let parsed = UInt16(parts[1]), Self.mtuRange.contains(parsed) else {
                    throw .invalidNetwork(text, reason: "MTU '\(parts[1])' must be \(Self.mtuRange.lowerBound) to \(Self.mtuRange.upperBound)")
                }
                mtu = parsed
            default:
                throw .invalidNetwork(text, reason: "unknown option '\(parts[0])' (expected tap, socket, listen, mac, ip, gateway, mtu)")
            }
        }
        guard var backend else { throw .invalidNetwork(text, reason: "no backend: add tap=NAME or socket=PATH") }
        if listen {
            guard case let .socket(path, _) = backend else {
                throw .invalidNetwork(text, reason: "listen goes with socket=PATH")
            }
            backend = .socket(path: path, listen: true)
        }
        if gateway != nil, address == nil { throw .invalidNetwork(text, reason: "a gateway needs ip=ADDR/PREFIX too") }
        if let gateway, let address {
            if let problem = Self.gatewayProblem(gateway, address: address) { throw .invalidNetwork(text, reason: problem) }
        }
        // The seed names the socket's end, so the two VMs on one socket path do not derive the same MAC.
        let seed: String
        switch backend {
        case let .tap(name): seed = name
        case let .socket(path, listen): seed = "socket:\(path):\(listen ? "listen" : "connect")"
        }
        let derivedMAC = MACAddress.derived(from: "\(seed)#\(index)")
        self.init(backend: backend, mac: mac ?? derivedMAC, address: address, gateway: gateway, mtu: mtu)
    }

}
