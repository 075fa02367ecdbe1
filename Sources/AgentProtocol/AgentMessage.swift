/// The messages of the swiftlet-agent protocol (docs/agent.md), one enum for both directions. Each case is one
/// frame; `AgentFrame` encodes and decodes them. The numbers are the wire's message types: never reuse one.
public enum AgentMessage: Equatable, Sendable {
    // Connection set-up.
    /// host → agent, first frame of every connection.
    case hello(version: UInt16, client: String)
    /// agent → host, the answer to hello: the agent is up and speaks `version`.
    case ready(version: UInt16, agent: String)

    // Running a command.
    case exec(ExecRequest)
    /// agent → host: the command runs as `pid`.
    case started(pid: Int32)
    case stdin([UInt8])
    /// host → agent: end of the command's input (the agent closes its stdin; with a TTY it sends ^D).
    case stdinClose
    case stdout([UInt8])
    case stderr([UInt8])
    /// host → agent: deliver this signal to the command's process group.
    case signal(Int32)
    case resize(rows: UInt16, columns: UInt16)
    /// agent → host, last frame of an exec: the exit code, or the signal that ended it (then `code` is 128 + it).
    case exit(code: Int32, signal: Int32)

    // Copying files (a tree of entries; a regular file's entry is followed by its data frames).
    /// host → agent: a tree follows; it becomes `destination/name` if `destination` is a directory, else
    /// `destination` itself (whose parent must exist).
    case copyIn(destination: String, name: String)
    /// host → agent: send the tree at `source`.
    case copyOut(source: String)
    case entry(CopyEntry)
    case data([UInt8])
    /// Either side: the tree is complete.
    case copyEnd
    /// agent → host: the copy-in, or the clock setting, succeeded.
    case done

    /// host → agent: set CLOCK_REALTIME.
    case setClock(seconds: Int64, nanoseconds: UInt32)

    /// Either side: the request failed (or the frame was not understood). `errno` is the guest's, 0 if none.
    case error(AgentError)
}

/// What to run (`exec` message).
public struct ExecRequest: Equatable, Sendable {
    public var arguments: [String]
    /// `NAME=VALUE` strings; empty means the agent's default (PATH, HOME, TERM with a TTY).
    public var environment: [String]
    /// Working directory; empty means `/`.
    public var workingDirectory: String
    /// nil runs as the agent's user (root).
    public var user: User?
    public var tty: Bool
    public var rows: UInt16
    public var columns: UInt16

    public struct User: Equatable, Sendable {
        public var uid: UInt32
        public var gid: UInt32
        public init(uid: UInt32, gid: UInt32) { (self.uid, self.gid) = (uid, gid) }
    }

    public init(arguments: [String], environment: [String] = [], workingDirectory: String = "", user: User? = nil,
                tty: Bool = false, rows: UInt16 = 0, columns: UInt16 = 0) {
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.user = user
        self.tty = tty
        self.rows = rows
        self.columns = columns
    }
}

/// One file, directory or symbolic link of a copied tree.
public struct CopyEntry: Equatable, Sendable {
    public enum Kind: UInt8, Sendable {
        case file = 1
        case directory = 2
        case symlink = 3
    }

    /// Relative to the tree's root, `/`-separated; "" is the root itself. Never absolute, never `.` or `..`.
    public var path: String
    public var kind: Kind
    /// Permission bits (07777).
    public var mode: UInt32
    /// A file's length: exactly this many bytes of data frames follow.
    public var size: UInt64
    /// Modification time, seconds since the epoch.
    public var modificationTime: Int64
    /// A symbolic link's target; "" otherwise.
    public var linkTarget: String

    public init(path: String, kind: Kind, mode: UInt32, size: UInt64 = 0, modificationTime: Int64 = 0,
                linkTarget: String = "") {
        self.path = path
        self.kind = kind
        self.mode = mode
        self.size = size
        self.modificationTime = modificationTime
        self.linkTarget = linkTarget
    }
}

/// A failure reported across the connection.
public struct AgentError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: UInt16, Sendable {
        /// A frame that could not be decoded, or a message not expected now: the connection ends.
        case protocolViolation = 1
        /// The command could not be started (the exit status follows separately: 127 or 126).
        case execFailed = 2
        case copyFailed = 3
        case clockFailed = 4
        case versionMismatch = 5
        case internalError = 6
    }

    public var code: Code
    /// The guest's errno, 0 when there is none.
    public var errno: Int32
    /// A sentence for a person, naming the path or command.
    public var message: String

    public init(code: Code, errno: Int32 = 0, message: String) {
        self.code = code
        self.errno = errno
        self.message = message
    }

    public var description: String { message }
}

/// The protocol's fixed numbers.
public enum AgentProtocol {
    /// Bumped on any incompatible change; the agent refuses a hello of another major version.
    public static let version: UInt16 = 1
    /// The vsock port swiftlet-agent listens on.
    public static let defaultPort: UInt32 = 1024
    /// Largest frame body (type byte + payload). A length above it is refused before anything is allocated.
    public static let maximumFrameBody = 1 << 20
    /// Largest data chunk either side sends (stdin/stdout/stderr/data); receivers accept up to the frame limit.
    public static let chunkSize = 64 * 1024
    /// Largest string (a path, one argument) and count of strings in a list.
    public static let maximumString = 128 * 1024
    public static let maximumStrings = 8192
}
