import Foundation
import Testing

/// The control plane as a Firecracker client meets it: `swiftlet` processes serving the REST API on a Unix
/// socket, driven with curl. Raw guests run directly on /dev/kvm here, so a VM's pause and resume are real.
@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "needs curl"))
struct ControlPlaneCLITests {
    static let hasKVM = FileManager.default.isReadableFile(atPath: "/dev/kvm")

    /// A fresh socket path (short: Unix socket paths are limited to 107 bytes).
    static func socketPath() -> String { "/tmp/swiftlet-api-\(UUID().uuidString.prefix(8)).sock" }

    /// One curl request; returns the HTTP status and the body.
    static func request(_ socket: String, _ method: String, _ path: String, _ body: String? = nil) throws -> (status: Int, body: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        var arguments = ["-s", "--max-time", "10", "--unix-socket", socket, "-X", method, "-w", "\n%{http_code}", "http://localhost\(path)"]
        if let body { arguments += ["-H", "Content-Type: application/json", "-d", body] }
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    /// Waits until `socket` exists (the server is listening), up to 10 s.
    static func waitForSocket(_ socket: String) {
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: socket) { Thread.sleep(forTimeInterval: 0.05) }
    }

    /// CPU clock ticks of the process's threads whose name starts with `prefix`.
    static func cpuTicks(pid: Int32, threadsNamed prefix: String) -> Int {
        let tasks = "/proc/\(pid)/task"
        var total = 0
        for task in (try? FileManager.default.contentsOfDirectory(atPath: tasks)) ?? [] {
            guard let comm = try? String(contentsOfFile: "\(tasks)/\(task)/comm", encoding: .utf8), comm.hasPrefix(prefix),
                  let stat = try? String(contentsOfFile: "\(tasks)/\(task)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            total += (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
        }
        return total
    }

    static func threadNames(pid: Int32) -> [String] {
        let tasks = "/proc/\(pid)/task"
        return ((try? FileManager.default.contentsOfDirectory(atPath: tasks)) ?? []).compactMap {
            try? String(contentsOfFile: "\(tasks)/\($0)/comm", encoding: .utf8).trimmingCharacters(in: .newlines)
        }
    }

    @Test("run --api-sock: GET / says Running; PATCH /vm Paused parks the vCPU (no CPU used) and Resumed lets it spin again; bad requests get 400 and change nothing",
          .enabled(if: hasKVM, "needs /dev/kvm"))
    func pauseAndResumeARunningVM() throws {
        let image = try Swiftlet.rawImage([0xEB, 0xFE])   // jmp . — spins at CPL 3, natively
        let socket = Self.socketPath()
        let vmm = try Swiftlet.start(["run", "--raw", image, "--raw-mode", "user", "--api-sock", socket])
        defer { vmm.process.terminate(); vmm.process.waitUntilExit() }
        Self.waitForSocket(socket)
        let pid = vmm.process.processIdentifier

        let info = try Self.request(socket, "GET", "/")
        #expect(info.status == 200)
        #expect(info.body.contains("\"state\":\"Running\""), "GET / said \(info.body)")

        // Before boot only: refused now, with Firecracker's message.
        let lateBootSource = try Self.request(socket, "PUT", "/boot-source", #"{"kernel_image_path": "/x"}"#)
        #expect(lateBootSource.status == 400)
        #expect(lateBootSource.body.contains("fault_message"))

        let badState = try Self.request(socket, "PATCH", "/vm", #"{"state": "Sleeping"}"#)
        #expect(badState.status == 400, "body: \(badState.body)")

        // The vCPU spins before the pause: its CPU time grows (read until it does, up to 10 s; a tick is 10 ms, so
        // the few ms of one request are too short a window to see it in).
        let started = Self.cpuTicks(pid: pid, threadsNamed: "vcpu")
        var spinning = started
        for _ in 0..<100 where spinning <= started {
            Thread.sleep(forTimeInterval: 0.1)
            spinning = Self.cpuTicks(pid: pid, threadsNamed: "vcpu")
        }
        #expect(spinning > started, "the vCPU spun before the pause")
        #expect(try Self.request(socket, "PATCH", "/vm", #"{"state": "Paused"}"#).status == 204)
        #expect(try Self.request(socket, "GET", "/").body.contains("\"state\":\"Paused\""))
        let atPause = Self.cpuTicks(pid: pid, threadsNamed: "vcpu")
        Thread.sleep(forTimeInterval: 1.0)
        let afterPause = Self.cpuTicks(pid: pid, threadsNamed: "vcpu")
        #expect(afterPause - atPause <= 2, "a paused vCPU uses no CPU (\(afterPause - atPause) ticks in 1 s)")
        let pausedAgain = try Self.request(socket, "PATCH", "/vm", #"{"state": "Paused"}"#)
        #expect(pausedAgain.status == 204 || pausedAgain.status == 400)

        #expect(try Self.request(socket, "PATCH", "/vm", #"{"state": "Resumed"}"#).status == 204)
        Thread.sleep(forTimeInterval: 1.0)
        let afterResume = Self.cpuTicks(pid: pid, threadsNamed: "vcpu")
        // A low bar (5 ticks, 50 ms of CPU in 1 s) against the paused ≤ 2: in CI's parallel run two cores are
        // shared by many spinning guests.
        #expect(afterResume - afterPause >= 5, "the vCPU spins again (\(afterResume - afterPause) ticks in 1 s)")
        #expect(try Self.request(socket, "GET", "/").body.contains("\"state\":\"Running\""))

        vmm.process.terminate()
        vmm.process.waitUntilExit()
        #expect(vmm.process.terminationStatus == 143)
        #expect(!FileManager.default.fileExists(atPath: socket), "the API socket is removed at exit")
    }

    @Test("serve: the API answers before any VM exists; pre-boot PUTs are stored and read back by GET /vm/config; SIGTERM ends it with 143")
    func serveWaitsForConfiguration() throws {
        let socket = Self.socketPath()
        let vmm = try Swiftlet.start(["serve", "--api-sock", socket, "--id", "vm-under-test"])
        defer { if vmm.process.isRunning { vmm.process.terminate(); vmm.process.waitUntilExit() } }
        Self.waitForSocket(socket)

        let info = try Self.request(socket, "GET", "/")
        #expect(info.status == 200)
        #expect(info.body.contains("\"state\":\"Not started\""), "GET / said \(info.body)")
        #expect(info.body.contains("\"id\":\"vm-under-test\""), "GET / said \(info.body)")
        #expect(try Self.request(socket, "PUT", "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 256}"#).status == 204)
        let unknown = try Self.request(socket, "PUT", "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 256, "bogus": 1}"#)
        #expect(unknown.status == 400)
        #expect(unknown.body.contains("bogus"), "the fault names the field: \(unknown.body)")
        let config = try Self.request(socket, "GET", "/vm/config")
        #expect(config.status == 200)
        #expect(config.body.contains("\"vcpu_count\":2") && config.body.contains("\"mem_size_mib\":256"), "GET /vm/config said \(config.body)")
        let start = try Self.request(socket, "PUT", "/actions", #"{"action_type": "InstanceStart"}"#)
        #expect(start.status == 400, "no boot source yet: \(start.body)")

        vmm.process.terminate()
        vmm.process.waitUntilExit()
        #expect(vmm.process.terminationStatus == 143)
    }

    @Test("run as `firecracker`: --version's first line is 'Firecracker vX.Y.Z ...' and names Swiftlet; --no-api without --config-file is a usage error")
    func firecrackerMode() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-fc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let link = directory.appendingPathComponent("firecracker").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: Swiftlet.binary)

        let version = try Swiftlet.run(["--version"], executable: link)
        #expect(version.status == 0)
        let first = version.stdout.split(separator: "\n").first.map(String.init) ?? ""
        let words = first.split(separator: " ")
        #expect(words.first == "Firecracker", "first line: \(first)")
        #expect(words.count > 1 && words[1].hasPrefix("v") && words[1].dropFirst().split(separator: ".").count >= 3, "first line: \(first)")
        #expect(first.contains("Swiftlet"))

        let noAPI = try Swiftlet.run(["--no-api"], executable: link)
        #expect(noAPI.status != 0)
        #expect(noAPI.stderr.contains("--config-file"), "stderr: \(noAPI.stderr)")
    }

    @Test("Firecracker mode boots the default guest's kernel through the API: vCPU threads are named 'fc_vcpu N'",
          .enabled(if: hasKVM && FileManager.default.fileExists(atPath: defaultKernel), "needs /dev/kvm and scripts/setup's guest kernel"))
    func firecrackerModeNamesVCPUThreads() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-fc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let link = directory.appendingPathComponent("firecracker").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: Swiftlet.binary)
        let socket = Self.socketPath()
        let vmm = try Swiftlet.start(["--api-sock", socket], executable: link)
        defer { if vmm.process.isRunning { vmm.process.terminate(); vmm.process.waitUntilExit() } }
        Self.waitForSocket(socket)
        #expect(try Self.request(socket, "PUT", "/boot-source", #"{"kernel_image_path": "\#(Self.defaultKernel)", "boot_args": "console=ttyS0 reboot=k panic=1"}"#).status == 204)
        #expect(try Self.request(socket, "PUT", "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 128}"#).status == 204)
        let start = try Self.request(socket, "PUT", "/actions", #"{"action_type": "InstanceStart"}"#)
        #expect(start.status == 204, "InstanceStart: \(start.body)")
        let names = Self.threadNames(pid: vmm.process.processIdentifier)
        #expect(names.contains("fc_vcpu 0") && names.contains("fc_vcpu 1"), "threads: \(names)")
        #expect(try Self.request(socket, "GET", "/").body.contains("\"state\":\"Running\""))
        #expect(try Self.request(socket, "PUT", "/actions", #"{"action_type": "InstanceStart"}"#).status == 400, "a second start is refused")
    }

    @Test("track_dirty_pages through the API: Full, resume, pause, Diff; the Diff's memory file is smaller, and swiftlet merge-memory puts it onto the Full's",
          .enabled(if: hasKVM && FileManager.default.fileExists(atPath: defaultKernel), "needs /dev/kvm and scripts/setup's guest kernel"))
    func diffSnapshotThroughTheAPI() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-diff-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socket = Self.socketPath()
        let vmm = try Swiftlet.start(["serve", "--api-sock", socket])
        defer { if vmm.process.isRunning { vmm.process.terminate(); vmm.process.waitUntilExit() } }
        Self.waitForSocket(socket)
        #expect(try Self.request(socket, "PUT", "/boot-source", #"{"kernel_image_path": "\#(Self.defaultKernel)", "boot_args": "console=ttyS0 reboot=k panic=1"}"#).status == 204)
        #expect(try Self.request(socket, "PUT", "/machine-config", #"{"vcpu_count": 1, "mem_size_mib": 128, "track_dirty_pages": true}"#).status == 204)
        #expect(try Self.request(socket, "PUT", "/actions", #"{"action_type": "InstanceStart"}"#).status == 204)
        Thread.sleep(forTimeInterval: 0.5)
        #expect(try Self.request(socket, "PATCH", "/vm", #"{"state": "Paused"}"#).status == 204)
        let full = try Self.request(socket, "PUT", "/snapshot/create",
                                    #"{"snapshot_type": "Full", "snapshot_path": "\#(directory)/full.state", "mem_file_path": "\#(directory)/full.mem"}"#)
        #expect(full.status == 204, "\(full.body)")
        #expect(try Self.request(socket, "PATCH", "/vm", #"{"state": "Resumed"}"#).status == 204)
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try Self.request(socket, "PATCH", "/vm", #"{"state": "Paused"}"#).status == 204)
        let diff = try Self.request(socket, "PUT", "/snapshot/create",
                                    #"{"snapshot_type": "Diff", "snapshot_path": "\#(directory)/diff.state", "mem_file_path": "\#(directory)/diff.mem"}"#)
        #expect(diff.status == 204, "\(diff.body)")

        func allocated(_ path: String) -> Int {
            var info = stat()
            return stat(path, &info) == 0 ? Int(info.st_blocks) * 512 : -1
        }
        let fullBytes = allocated(directory + "/full.mem"), diffBytes = allocated(directory + "/diff.mem")
        print("API Diff: the Full's memory file takes \(fullBytes) bytes on disk, the Diff's \(diffBytes)")
        #expect(diffBytes > 0 && diffBytes < fullBytes, "full \(fullBytes), diff \(diffBytes)")
        let merge = try Swiftlet.run(["merge-memory", directory + "/diff.mem", directory + "/full.mem"])
        #expect(merge.status == 0, "stderr: \(merge.stderr)")
        #expect(merge.stdout.contains("written onto"), "stdout: \(merge.stdout)")
        let mismatch = try Swiftlet.run(["merge-memory", directory + "/diff.mem", directory + "/diff.state"])
        #expect(mismatch.status == 1 && mismatch.stderr.contains("diff.mem"), "stderr: \(mismatch.stderr)")
    }

    static var defaultKernel: String {
        let cache = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")
        return cache + "/swiftlet/guest/vmlinux"
    }
}
