#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// `swiftlet run -d` and `swiftlet restore -d`: starts the VMM in the background under a name and returns once it is
/// up.
///
/// The sequence, and why in this order:
/// 1. the VM's directory is created (atomically: the name is taken or not) and its lock taken, here;
/// 2. the VMM is spawned in a session of its own with the lock's descriptor inherited, so the lock is held
///    without a gap from before the VMM starts until its last descriptor closes — `ps` can never see a VM being
///    started as "exited";
/// 3. this process waits until the VMM's API answers `GET /` with "Running" (the machine is built and started),
///    or until the VMM exits (its status becomes ours, and the end of its log says why).
public enum SandboxLauncher {
    public struct Request: Sendable {
        /// Which VMM command runs in the background: a boot or a restore.
        public enum Command: String, Sendable {
            case run, restore
        }

        public var name: String?
        public var command: Command
        /// The command's arguments (`swiftlet run ...` or `swiftlet restore DIR ...`), without `-d` and `--name`.
        public var runArguments: [String]
        public var vcpus: Int
        public var memoryMiB: Int
        /// Give the VM a vsock device on `vsock.sock` in its directory (the agent's way in) when the arguments
        /// have none. Linux guests only. For a restore: move the saved vsock device's socket there (the snapshot
        /// must have one).
        public var addVsock: Bool
        /// How long the VMM may take to answer "Running".
        public var readyTimeout: Double

        public init(name: String?, command: Command = .run, runArguments: [String], vcpus: Int, memoryMiB: Int, addVsock: Bool,
                    readyTimeout: Double = 60) {
            self.name = name
            self.command = command
            self.runArguments = runArguments
            self.vcpus = vcpus
            self.memoryMiB = memoryMiB
            self.addVsock = addVsock
            self.readyTimeout = readyTimeout
        }
    }

    public enum Outcome: Sendable, Equatable {
        case running(name: String, pid: pid_t)
        /// The VMM exited before it was up: its status and the end of its log.
        case exited(name: String, status: Int32, log: String)
    }

    /// The hidden `swiftlet run` options that make the spawned VMM a named background VM.
    public static let directoryOption = "--sandbox-dir"
    public static let lockDescriptorOption = "--sandbox-lock-fd"
    /// The guest CID given to a VM whose vsock device `run -d` adds.
    public static let defaultGuestCID = 3

    public static func launch(_ request: Request, executable: String, in directory: SandboxDirectory = .standard()) throws(SandboxError) -> Outcome {
        let name = request.name ?? SandboxDirectory.generatedName()
        let paths = try directory.create(name: name)
        do {
            return try start(request, name: name, paths: paths, executable: executable)
        } catch {
            // Nothing started: the name is free again.
            try? directory.remove(name: name)
            throw error
        }
    }

    private static func start(_ request: Request, name: String, paths: SandboxPaths, executable: String) throws(SandboxError) -> Outcome {
        let lock = open(paths.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw .stateDirectory(path: paths.lock, operation: "create", errno: errno) }
        defer { close(lock) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else { throw .nameInUse(name: name, running: true) }

        var arguments = [request.command.rawValue] + request.runArguments + ["--api-sock", paths.apiSocket]
        var vsock: String? = vsockSocket(in: request.runArguments)
        if request.addVsock, vsock == nil {
            switch request.command {
            case .run: arguments += ["--vsock", "cid=\(defaultGuestCID),socket=\(paths.vsockSocket)"]
            case .restore: arguments += ["--vsock-socket", paths.vsockSocket]
            }
            vsock = paths.vsockSocket
        }
        arguments += [directoryOption, paths.directory, lockDescriptorOption, "\(lock)"]
        var record = SandboxRecord(name: name, arguments: request.runArguments, created: Date().timeIntervalSince1970,
                                   vcpus: request.vcpus, memoryMiB: request.memoryMiB, vsockSocket: vsock)
        try paths.write(record: record)
        let pid = try DetachedProcess.spawn(executable: executable, arguments: arguments, logPath: paths.vmmLog, keeping: lock)
        record.pid = pid
        try paths.write(record: record)
        return waitUntilRunning(pid: pid, paths: paths, timeout: request.readyTimeout)
    }

    private static func waitUntilRunning(pid: pid_t, paths: SandboxPaths, timeout: Double) -> Outcome {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                return .exited(name: paths.name, status: code, log: tail(of: paths.vmmLog))
            }
            if SandboxStatus.of(paths).state == .running { return .running(name: paths.name, pid: pid) }
            if Date() > deadline {
                // Up but not answering: leave it running (the user can look at it, or stop it) and say so.
                return .exited(name: paths.name, status: 124, log: "no answer from the VMM's API on \(paths.apiSocket) within \(Int(timeout)) s (pid \(pid) still runs; see \(paths.vmmLog))")
            }
            usleep(20_000)
        }
    }

    /// The `socket=` of a `--vsock cid=N,socket=PATH` among `run`'s arguments, or `restore`'s `--vsock-socket PATH`.
    static func vsockSocket(in arguments: [String]) -> String? {
        var spec: String?
        for (index, argument) in arguments.enumerated() {
            if argument == "--vsock-socket", index + 1 < arguments.count { return arguments[index + 1] }
            if argument.hasPrefix("--vsock-socket=") { return String(argument.dropFirst("--vsock-socket=".count)) }
            if argument == "--vsock", index + 1 < arguments.count { spec = arguments[index + 1] }
            if argument.hasPrefix("--vsock=") { spec = String(argument.dropFirst("--vsock=".count)) }
        }
        guard let spec else { return nil }
        for part in spec.split(separator: ",") where part.hasPrefix("socket=") { return String(part.dropFirst("socket=".count)) }
        return nil
    }

    /// The last lines of a log, for a start-up failure's message.
    static func tail(of path: String, lines: Int = 12) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "" }
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}

/// The VMM's side of a named background VM: called by `swiftlet run` when started by `SandboxLauncher`.
public enum SandboxVMM {
    /// The exit-status file, opened (empty) when the VMM adopts its directory: at exit only write(2) is needed,
    /// which every thread's seccomp filter allows (open is not allowed on the main thread once filters are on).
    private nonisolated(unsafe) static var exitStatusDescriptor: Int32 = -1

    /// Keeps the inherited lock (not passed on to anything the VMM starts), and puts the console on the relay.
    public static func adopt(directory: String, lockDescriptor: Int32) throws(SandboxError) {
        let paths = SandboxPaths(directory: directory)
        // The lock must be ours: a descriptor number that is not the VM's lock would make `ps` lie.
        var held = stat(), file = stat()
        guard fstat(lockDescriptor, &held) == 0, stat(paths.lock, &file) == 0,
              held.st_ino == file.st_ino, held.st_dev == file.st_dev else {
            throw .startFailed(name: paths.name, reason: "\(SandboxLauncher.lockDescriptorOption) \(lockDescriptor) is not \(paths.lock)")
        }
        _ = fcntl(lockDescriptor, F_SETFD, FD_CLOEXEC)
        unlink(paths.exitStatus)
        let fd = open(paths.exitStatus, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw .startFailed(name: paths.name, reason: "cannot create \(paths.exitStatus): \(String(cString: strerror(errno)))")
        }
        exitStatusDescriptor = fd
        let relay = try ConsoleRelay(paths: paths)
        try relay.start()
    }

    /// Records the VMM's exit status beside its log (for `ps` and `inspect`); a no-op for a foreground VM.
    /// The file stays empty if the VMM is killed, which `ps` reads as "killed".
    public static func recordExit(status: Int32) {
        let fd = exitStatusDescriptor
        guard fd >= 0 else { return }
        exitStatusDescriptor = -1
        let text = "\(status)\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }
}
