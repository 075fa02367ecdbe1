import Swiftlet

/// `--vsock cid=N,socket=PATH`: the command line's syntax for a `VsockConfiguration`.
extension VsockConfiguration {
    /// Parses the `--vsock` syntax: `cid=N,socket=PATH` (in either order).
    public init(parsing text: String) throws(ConfigurationError) {
        var cid: UInt32?
        var socket: String?
        for option in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            let parts = option.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 else { throw .invalidVsock(text, reason: "'\(option)' is not key=value") }
            // `cid=3,cid=4` would silently keep the last: refuse it.
            if (parts[0] == "cid" && cid != nil) || (parts[0] == "socket" && socket != nil) {
                throw .invalidVsock(text, reason: "'\(parts[0])' is given more than once")
            }
            switch parts[0] {
            case "cid":
                guard let value = UInt64(parts[1]), value <= UInt64(UInt32.max) else {
                    throw .invalidVsock(text, reason: "cid '\(parts[1])' is not a number below 2^32")
                }
                cid = UInt32(value)
            case "socket":
                socket = parts[1]
            default:
                throw .invalidVsock(text, reason: "unknown option '\(parts[0])' (expected cid, socket)")
            }
        }
        guard let cid else { throw .invalidVsock(text, reason: "no guest CID: add cid=N (3 or more)") }
        guard let socket else { throw .invalidVsock(text, reason: "no host socket: add socket=PATH") }
        self.init(guestCID: cid, socketPath: socket)
        try checkValues()
    }

}
