/// Turns an HTTP request (method, path, body) into an `APIAction`, or the fault Firecracker's
/// `ParsedRequest::try_from` gives for it. Pure: no state, so every routing rule is testable on its own.
///
/// Like Firecracker, only the first path segment picks the resource; the second is the id (`/drives/rootfs`)
/// or the sub-resource (`/vm/config`, `/mmds/config`). An empty body counts as no body.
public enum APIRouter {
    /// Firecracker's `HTTP_MAX_PAYLOAD_SIZE`: larger bodies are refused before routing.
    public static let maximumBodySize = 51200

    /// The first path segment (`""` for `/`): what the `onRequest` hook counts requests by.
    public static func resource(of path: String) -> String {
        segments(of: path).first ?? ""
    }

    static func segments(of path: String) -> [String] {
        let withoutQuery = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        var trimmed = Substring(withoutQuery)
        while trimmed.hasPrefix("/") { trimmed = trimmed.dropFirst() }
        var parts = trimmed.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.last == "" { parts.removeLast() }   // Rust's split_terminator: a trailing '/' adds nothing
        return parts
    }

    public static func route(method: String, path: String, body: [UInt8]) throws(APIFault) -> APIAction {
        let parts = segments(of: path)
        let resource = parts.first ?? ""
        let second = parts.count > 1 ? parts[1] : nil
        let hasBody = !body.isEmpty

        switch method {
        case "GET":
            if hasBody {
                // Firecracker checks the known GETs first, so a GET with a body on an unknown path is still
                // "GET request cannot have a body."
                throw .getWithBody
            }
            switch resource {
            case "": return .getInstanceInfo
            case "version": return .getVersion
            case "machine-config": return .getMachineConfig
            case "mmds": return .getMMDS
            case "vm" where second == "config": return .getFullConfiguration
            case "balloon": throw .notImplemented(method, path)
            case "hotplug" where second == "memory": throw .notImplemented(method, path)
            default: throw .invalidPathMethod(method, resource)
            }

        case "PUT":
            switch resource {
            case "balloon", "cpu-config", "pmem", "serial":
                guard hasBody else { throw .emptyPUT }
                throw .notImplemented(method, path)
            case "hotplug" where second == "memory":
                guard hasBody else { throw .emptyPUT }
                throw .notImplemented(method, path)
            case "snapshot":
                guard hasBody else { throw .emptyPUT }
                return try routeSnapshot(second, body)
            case "actions", "boot-source", "drives", "logger", "machine-config", "metrics", "mmds", "network-interfaces", "vsock", "entropy":
                guard hasBody else { throw .emptyPUT }
                return try routePUT(resource, second, body)
            default:
                guard hasBody else { throw .emptyPUT }
                throw .invalidPathMethod(method, resource)
            }

        case "PATCH":
            switch resource {
            case "balloon": throw .notImplemented(method, path)
            case "hotplug" where second == "memory":
                guard hasBody else { throw .emptyPATCH }
                throw .notImplemented(method, path)
            case "drives", "machine-config", "mmds", "network-interfaces", "vm":
                guard hasBody else { throw .emptyPATCH }
                return try routePATCH(resource, second, body)
            default:
                guard hasBody else { throw .emptyPATCH }
                throw .invalidPathMethod(method, resource)
            }

        default:
            throw .invalidPathMethod(method, resource)
        }
    }

    private static func routePUT(_ resource: String, _ second: String?, _ body: [UInt8]) throws(APIFault) -> APIAction {
        switch resource {
        case "actions":
            switch try WireJSON.decode(InstanceActionInfo.self, from: body).actionType {
            case .instanceStart: return .instanceStart
            case .sendCtrlAltDel: return .sendCtrlAltDel
            case .flushMetrics: return .flushMetrics
            }
        case "boot-source":
            return .putBootSource(try WireJSON.decode(BootSource.self, from: body))
        case "drives":
            let id = try checkedID(second)
            let drive = try WireJSON.decode(Drive.self, from: body)
            guard drive.driveID == id else { throw APIFault(message: "The id from the path does not match the id from the body!") }
            return .putDrive(drive)
        case "network-interfaces":
            let id = try checkedID(second)
            let interface = try WireJSON.decode(NetworkInterface.self, from: body)
            guard interface.ifaceID == id else { throw idMismatch(id, interface.ifaceID) }
            return .putNetworkInterface(interface)
        case "logger":
            return .putLogger(try WireJSON.decode(LoggerConfig.self, from: body))
        case "machine-config":
            return .putMachineConfig(try WireJSON.decode(MachineConfig.self, from: body))
        case "metrics":
            return .putMetrics(try WireJSON.decode(MetricsConfig.self, from: body))
        case "mmds":
            switch second {
            case nil: return .putMMDS(try WireJSON.decode(JSONValue.self, from: body))
            case "config": return .putMMDSConfig(try WireJSON.decode(MmdsConfig.self, from: body))
            case let other?: throw APIFault(message: "Unrecognized PUT request path `\(other)`.")
            }
        case "vsock":
            return .putVsock(try WireJSON.decode(Vsock.self, from: body))
        default:
            return .putEntropy(try WireJSON.decode(Entropy.self, from: body))
        }
    }

    /// Firecracker's `parse_put_snapshot`: the second segment is the operation.
    private static func routeSnapshot(_ operation: String?, _ body: [UInt8]) throws(APIFault) -> APIAction {
        switch operation {
        case "create":
            return .createSnapshot(try WireJSON.decode(SnapshotCreateParams.self, from: body))
        case "load":
            return .loadSnapshot(try SnapshotLoad(WireJSON.decode(SnapshotLoadParams.self, from: body)))
        case nil:
            throw APIFault(message: "Missing snapshot operation type.")
        case let other?:
            throw .invalidPathMethod("PUT", "/snapshot/\(other)")
        }
    }

    private static func routePATCH(_ resource: String, _ second: String?, _ body: [UInt8]) throws(APIFault) -> APIAction {
        switch resource {
        case "drives":
            let id = try checkedID(second)
            let update = try WireJSON.decode(PartialDrive.self, from: body)
            guard update.driveID == id else { throw APIFault(message: "The id from the path does not match the id from the body!") }
            return .patchDrive(update)
        case "network-interfaces":
            let id = try checkedID(second)
            let update = try WireJSON.decode(PartialNetworkInterface.self, from: body)
            guard update.ifaceID == id else { throw idMismatch(id, update.ifaceID) }
            return .patchNetworkInterface(update)
        case "machine-config":
            let update = try WireJSON.decode(PartialMachineConfig.self, from: body)
            guard !update.isEmpty else { throw .emptyPATCH }
            return .patchMachineConfig(update)
        case "mmds":
            return .patchMMDS(try WireJSON.decode(JSONValue.self, from: body))
        default:
            switch try WireJSON.decode(VmStateChange.self, from: body).state {
            case .paused: return .pause
            case .resumed: return .resume
            }
        }
    }

    /// Firecracker's `checked_id`: present, and only alphanumerics and '_'.
    static func checkedID(_ id: String?) throws(APIFault) -> String {
        guard let id, !id.isEmpty else { throw .emptyID }
        guard id.allSatisfy({ $0 == "_" || $0.isLetter || $0.isNumber }) else { throw .invalidID }
        return id
    }

    private static func idMismatch(_ path: String, _ body: String) -> APIFault {
        APIFault(message: "The id from the path [\(path)] does not match the id from the body [\(body)]!")
    }
}
