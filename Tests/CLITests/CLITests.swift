import Foundation
import Testing

/// The `swiftlet` command as a user meets it: run as a subprocess, judged by exit status and messages.
@Suite(.serialized)
struct CLITests {
    @Test func printsItsVersion() throws {
        let result = try Swiftlet.run(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0.1.0")
    }

    @Test("invalid values are rejected before any VM is built, naming the problem",
          arguments: [
            (["run", "--cpus", "0"], "--cpus must be at least 1"),
            (["run", "--cpus", "65"], "more than the 64 vCPUs"),
            (["run", "--memory", "0"], "--memory must be greater than zero"),
            (["run", "--memory", "lots"], "--memory lots is not a size"),
            (["run", "--kernel", "/nonexistent/vmlinuz"], "cannot read kernel /nonexistent/vmlinuz"),
            (["run", "--kernel", "/etc/hostname"], "/etc/hostname is not a bootable kernel"),
            (["run", "--kernel", "/etc"], "not a regular file"),
            (["run", "--vsock", "cid=2,socket=/tmp/swiftlet-cli.vsock"], "the guest CID must be at least 3"),
            (["run", "--vsock", "cid=3"], "no host socket: add socket=PATH"),
            (["run", "--kernel", "/etc/hostname", "--vsock", "cid=3,socket=/etc/hostname"], "the path exists and is not a socket"),
          ])
    func rejectsInvalidValues(arguments: [String], message: String) throws {
        let result = try Swiftlet.run(arguments)
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "stderr was: \(result.stderr)")
    }

    @Test func explainsAMissingDefaultGuest() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-empty-\(UUID().uuidString)").path
        let result = try Swiftlet.run(["run"], environment: ["XDG_CACHE_HOME": empty])
        #expect(result.status == 1)
        #expect(result.stderr.contains("Run `scripts/setup` first"), "stderr was: \(result.stderr)")
    }

    @Test("SIGTERM stops a running guest cleanly with status 128+15",
          .enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
    func sigtermStopsTheGuest() throws {
        let image = try Swiftlet.rawImage([0xEB, 0xFE])   // jmp . (spins forever)
        let process = try Swiftlet.start(["run", "--raw", image])
        Thread.sleep(forTimeInterval: 1.0)
        process.process.terminate()   // SIGTERM
        process.process.waitUntilExit()
        #expect(process.process.terminationStatus == 143)
        let stderr = String(decoding: process.stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(stderr.contains("stopped by signal 15"), "stderr was: \(stderr)")
    }

    @Test("while the guest runs, its vCPU thread carries its name",
          .enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
    func threadsAreNamed() throws {
        let image = try Swiftlet.rawImage([0xEB, 0xFE])   // jmp . (spins forever)
        let process = try Swiftlet.start(["run", "--raw", image])
        defer { process.process.terminate(); process.process.waitUntilExit() }
        Thread.sleep(forTimeInterval: 1.0)
        let tasks = "/proc/\(process.process.processIdentifier)/task"
        let names = try FileManager.default.contentsOfDirectory(atPath: tasks).map {
            try String(contentsOfFile: "\(tasks)/\($0)/comm", encoding: .utf8).trimmingCharacters(in: .newlines)
        }
        #expect(names.contains("vcpu0"), "threads: \(names)")
    }

    @Test("--boot-timeline reports the first instruction, first console byte and stop",
          .enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
    func bootTimeline() throws {
        // mov $0x3f8,%dx; mov $'!',%al; out %al,(%dx); hlt
        let image = try Swiftlet.rawImage([0xBA, 0xF8, 0x03, 0xB0, 0x21, 0xEE, 0xF4])
        let result = try Swiftlet.run(["run", "--raw", image, "--boot-timeline"])
        #expect(result.status == 3)
        #expect(result.stdout == "!")
        for label in ["first guest instruction", "first console byte", "guest stopped"] {
            #expect(result.stderr.contains(label), "stderr was: \(result.stderr)")
        }
    }
}

/// Runs the `swiftlet` binary that `swift build` / `swift test` produced.
enum Swiftlet {
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["SWIFTLET_BIN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for configuration in ["debug", "release"] {
            let candidate = root.appendingPathComponent(".build/\(configuration)/swiftlet").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return root.appendingPathComponent(".build/debug/swiftlet").path
    }

    struct Result { let status: Int32; let stdout: String; let stderr: String }
    struct Started { let process: Process; let stdout: Pipe; let stderr: Pipe }

    static func start(_ arguments: [String], environment: [String: String] = [:], executable: String? = nil) throws -> Started {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable ?? binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return Started(process: process, stdout: stdout, stderr: stderr)
    }

    static func run(_ arguments: [String], environment: [String: String] = [:], executable: String? = nil) throws -> Result {
        let started = try start(arguments, environment: environment, executable: executable)
        let out = started.stdout.fileHandleForReading.readDataToEndOfFile()
        let err = started.stderr.fileHandleForReading.readDataToEndOfFile()
        started.process.waitUntilExit()
        return Result(status: started.process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                      stderr: String(decoding: err, as: UTF8.self))
    }

    /// Writes a raw real-mode image to a temporary file.
    static func rawImage(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-raw-\(UUID().uuidString).bin").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}
