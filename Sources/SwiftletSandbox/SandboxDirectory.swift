#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Where named VMs live: one directory per VM under a per-user root, holding everything the CLI needs to find and
/// drive it. The CLI keeps no other state: `ps` lists these directories and asks each VMM through its API socket.
///
///     $XDG_RUNTIME_DIR/swiftlet/NAME/     (/run/swiftlet/NAME/ as root without XDG_RUNTIME_DIR;
///                                          $SWIFTLET_STATE_DIR/NAME/ when set, for tests and custom setups)
///       lock          held (flock) by the VMM for its whole life: "running" means someone holds it
///       vm.json       what was started: name, command line, creation time, pid (SandboxRecord)
///       api.sock      the VMM's Firecracker-compatible API
///       console.sock  the guest's console for `swiftlet attach`
///       console.log   the console's output (console.log.1 the previous MiB): `swiftlet logs`
///       vsock.sock    the guest's vsock device (the agent is reached through it)
///       vmm.log       the VMM's own messages (why it failed to start, why it stopped)
///       exit-status   the VMM's exit status, written as it exits (empty while it runs and if it was killed)
///
/// Liveness is the lock, never the pid: a VMM killed with SIGKILL releases its lock with its last file
/// descriptor, so a stale directory is never mistaken for a live VM, even if the pid has been reused.
public struct SandboxDirectory: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    /// The root for this user, from the environment.
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> SandboxDirectory {
        if let explicit = environment["SWIFTLET_STATE_DIR"], !explicit.isEmpty { return SandboxDirectory(root: explicit) }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty { return SandboxDirectory(root: runtime + "/swiftlet") }
        if getuid() == 0 { return SandboxDirectory(root: "/run/swiftlet") }
        return SandboxDirectory(root: "/tmp/swiftlet-\(getuid())")
    }

    /// Names become directory names and parts of socket paths (at most 108 bytes), so they are short and plain.
    public static func validate(name: String) throws(SandboxError) {
        let bytes = Array(name.utf8)
        func plain(_ byte: UInt8) -> Bool {
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
        }
        guard (1...63).contains(bytes.count), plain(bytes[0]),
              bytes.allSatisfy({ plain($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") })
        else { throw .invalidName(name) }
    }

    /// A fresh name for `run -d` without `--name`: `vm-` and six hex digits.
    public static func generatedName() -> String {
        "vm-" + String(UInt32.random(in: 0..<(1 << 24)), radix: 16).leftPadded(to: 6)
    }

    public func paths(for name: String) -> SandboxPaths { SandboxPaths(directory: root + "/" + name) }

    /// Creates the VM's directory; fails if the name is taken (a running VM or the remains of an exited one:
    /// as with `docker run --name`, the name is free again only after `rm`). mkdir is atomic, so two `run -d` of
    /// one name at once cannot both succeed.
    public func create(name: String) throws(SandboxError) -> SandboxPaths {
        try Self.validate(name: name)
        try makeRoot()
        let paths = self.paths(for: name)
        if mkdir(paths.directory, 0o700) != 0 {
            let code = errno
            if code == EEXIST { throw .nameInUse(name: name, running: paths.isRunning) }
            throw .stateDirectory(path: paths.directory, operation: "create", errno: code)
        }
        return paths
    }

    /// The existing VM called `name`.
    public func existing(name: String) throws(SandboxError) -> SandboxPaths {
        try Self.validate(name: name)
        let paths = self.paths(for: name)
        var info = stat()
        guard stat(paths.directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { throw .noSuchVM(name: name) }
        return paths
    }

    /// The names of every VM directory, sorted.
    public func names() -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
        return entries.filter { (try? Self.validate(name: $0)) != nil && isDirectory(root + "/" + $0) }.sorted()
    }

    /// Removes a VM's directory and what is in it (only regular files and sockets: nothing else is ever put there).
    public func remove(name: String) throws(SandboxError) {
        let paths = try existing(name: name)
        if paths.isRunning { throw .stillRunning(name: name) }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: paths.directory)) ?? [] {
            unlink(paths.directory + "/" + entry)
        }
        if rmdir(paths.directory) != 0 {
            throw .stateDirectory(path: paths.directory, operation: "remove", errno: errno)
        }
    }

    private func makeRoot() throws(SandboxError) {
        // The parents (XDG_RUNTIME_DIR, /run) exist; only the last component is ours, private to the user.
        var path = ""
        for component in root.split(separator: "/", omittingEmptySubsequences: true) {
            path += "/" + component
            if mkdir(path, 0o700) != 0, errno != EEXIST {
                throw .stateDirectory(path: path, operation: "create", errno: errno)
            }
        }
    }

    private func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }
}

/// The files of one named VM.
public struct SandboxPaths: Sendable, Equatable {
    public let directory: String

    public var name: String { String(directory.split(separator: "/").last ?? "") }
    public var lock: String { directory + "/lock" }
    public var record: String { directory + "/vm.json" }
    public var apiSocket: String { directory + "/api.sock" }
    public var consoleSocket: String { directory + "/console.sock" }
    public var consoleLog: String { directory + "/console.log" }
    public var vsockSocket: String { directory + "/vsock.sock" }
    public var vmmLog: String { directory + "/vmm.log" }
    public var exitStatus: String { directory + "/exit-status" }

    /// Whether a VMM holds the VM's lock. Probed by trying to take it: flock locks belong to open file
    /// descriptions, so this conflicts with the VMM's lock even inside one process.
    public var isRunning: Bool {
        let fd = open(lock, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 { return false }
        return errno == EWOULDBLOCK
    }

    /// The exit status the VMM wrote as it exited; nil if it was killed (or still runs: the file is empty then).
    public var recordedExitStatus: Int32? {
        guard let text = try? String(contentsOfFile: exitStatus, encoding: .utf8) else { return nil }
        return Int32(text.filter { !$0.isWhitespace })
    }

    public func readRecord() -> SandboxRecord? {
        guard let data = FileManager.default.contents(atPath: record) else { return nil }
        return try? JSONDecoder().decode(SandboxRecord.self, from: data)
    }

    public func write(record value: SandboxRecord) throws(SandboxError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do { data = try encoder.encode(value) } catch { throw .system(operation: "encode vm.json", errno: EINVAL) }
        // Written beside and renamed, so a reader never sees half a file.
        let temporary = record + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw .stateDirectory(path: temporary, operation: "write", errno: errno)
        }
        if rename(temporary, record) != 0 { throw .stateDirectory(path: record, operation: "write", errno: errno) }
    }
}

/// What `run -d` started, kept in `vm.json` for `ps` and `inspect` (also after the VMM is gone).
public struct SandboxRecord: Codable, Sendable, Equatable {
    public var name: String
    /// The `swiftlet run` arguments the VM was started with (after `run`, without `-d` and `--name`).
    public var arguments: [String]
    /// Seconds since the epoch.
    public var created: Double
    public var pid: Int32?
    public var vcpus: Int
    public var memoryMiB: Int
    /// The vsock device's Unix socket (the agent's way in), when the VM has one.
    public var vsockSocket: String?

    public init(name: String, arguments: [String], created: Double, pid: Int32? = nil, vcpus: Int, memoryMiB: Int, vsockSocket: String?) {
        self.name = name
        self.arguments = arguments
        self.created = created
        self.pid = pid
        self.vcpus = vcpus
        self.memoryMiB = memoryMiB
        self.vsockSocket = vsockSocket
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
