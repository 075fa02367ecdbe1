/// A command to run in the guest through its agent (the `exec` request of docs/agent.md).
public struct ProcessConfiguration: Sendable {
    /// A path, or a name looked up in the guest's PATH.
    public var executable: String
    public var arguments: [String]
    /// Variables for the command. Empty: the agent's defaults (PATH, HOME). Otherwise these, plus the default
    /// PATH unless one is given.
    public var environment: [String: String]
    /// nil: `/`.
    public var workingDirectory: String?
    /// nil: the agent's user (root).
    public var user: User?
    public var standardInput: StandardInput

    public struct User: Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
        public init(uid: UInt32, gid: UInt32) { (self.uid, self.gid) = (uid, gid) }
    }

    public init(executable: String, arguments: [String] = [], environment: [String: String] = [:],
                workingDirectory: String? = nil, user: User? = nil, standardInput: StandardInput = .none) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.user = user
        self.standardInput = standardInput
    }

    /// The PATH a command gets when the caller sets other variables but no PATH (the agent's own default).
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// `NAME=VALUE` strings, sorted by name (so a request is the same from run to run).
    var environmentStrings: [String] {
        guard !environment.isEmpty else { return [] }
        var variables = environment
        if variables["PATH"] == nil { variables["PATH"] = Self.defaultPath }
        return variables.keys.sorted().map { "\($0)=\(variables[$0]!)" }
    }
}

/// What the command reads as its stdin.
public enum StandardInput: Sendable {
    /// End of file at once.
    case none
    /// These bytes, then end of file.
    case data([UInt8])
    /// Chunks as they come; end of file when the stream finishes.
    case stream(AsyncStream<[UInt8]>)
}

/// A finished command: how it ended and what it wrote (captured whole; for large outputs stream them into a file
/// in the guest and `copy` it out).
public struct ExecResult: Sendable, Equatable {
    /// The exit status: the command's code, 128+N when signal N ended it, 127 when it was not found, 126 when it
    /// could not run.
    public var exitCode: Int32
    /// The signal that ended it, 0 if it exited.
    public var signal: Int32
    public var standardOutput: [UInt8]
    public var standardError: [UInt8]
    /// Why the command could not start (with `exitCode` 127 or 126), in the guest's words.
    public var failureReason: String?

    public init(exitCode: Int32 = 0, signal: Int32 = 0, standardOutput: [UInt8] = [], standardError: [UInt8] = [],
                failureReason: String? = nil) {
        self.exitCode = exitCode
        self.signal = signal
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.failureReason = failureReason
    }

    public var standardOutputText: String { String(decoding: standardOutput, as: UTF8.self) }
    public var standardErrorText: String { String(decoding: standardError, as: UTF8.self) }
}

/// One side of a copy.
public enum CopyLocation: Sendable, Equatable {
    /// A path on this host.
    case host(String)
    /// A path in the guest (absolute).
    case guest(String)
}
