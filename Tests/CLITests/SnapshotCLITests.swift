import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `swiftlet snapshot` and `swiftlet restore`, and the API's `PUT /snapshot/create` / `PUT /snapshot/load` across
/// processes: a counting guest saved from one `swiftlet` process continues its count in another.
@Suite(.serialized)
struct SnapshotCLITests {
    static let hasKVM = FileManager.default.isReadableFile(atPath: "/dev/kvm")

    /// A user-mode (CPL 3) guest that counts in r12 and in the quadword at 1 MiB, printing each count on COM1 as
    /// eight hex digits and a newline, with a short spin between counts. Assembled from:
    ///
    ///         xor %r12, %r12
    ///     1:  mov $0x400000, %ecx
    ///     2:  dec %ecx ; jnz 2b
    ///         inc %r12 ; incq 0x100000
    ///         mov $0x3f8, %dx ; mov %r12d, %esi ; mov $8, %ecx
    ///     3:  rol $4, %esi ; mov %esi, %eax ; and $0xf, %eax ; add $0x30, %eax
    ///         cmp $0x39, %eax ; jbe 4f ; add $7, %eax
    ///     4:  out %al, (%dx) ; dec %ecx ; jnz 3b
    ///         mov $0x0a, %al ; out %al, (%dx) ; jmp 1b
    static let counter: [UInt8] = [
        0x4D, 0x31, 0xE4, 0xB9, 0x00, 0x00, 0x40, 0x00, 0xFF, 0xC9, 0x75, 0xFC, 0x49, 0xFF, 0xC4, 0x48,
        0xFF, 0x04, 0x25, 0x00, 0x00, 0x10, 0x00, 0x66, 0xBA, 0xF8, 0x03, 0x44, 0x89, 0xE6, 0xB9, 0x08,
        0x00, 0x00, 0x00, 0xC1, 0xC6, 0x04, 0x89, 0xF0, 0x83, 0xE0, 0x0F, 0x83, 0xC0, 0x30, 0x83, 0xF8,
        0x39, 0x76, 0x03, 0x83, 0xC0, 0x07, 0xEE, 0xFF, 0xC9, 0x75, 0xE8, 0xB0, 0x0A, 0xEE, 0xEB, 0xC3,
    ]

    static func temporaryDirectory() throws -> String {
        let path = "/tmp/swl-snap-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The counts in `text` (complete lines only).
    static func counts(_ text: String) -> [UInt64] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.removeLast()
        return lines.compactMap { UInt64($0, radix: 16) }
    }

    /// Reads a child's stdout on a thread of its own (never a Swift concurrency pool thread) until it closes.
    final class Collector: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        private let done = DispatchSemaphore(value: 0)

        init(_ pipe: Pipe) {
            let handle = pipe.fileHandleForReading
            Thread.detachNewThread { [self] in
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    lock.lock(); data.append(chunk); lock.unlock()
                }
                done.signal()
            }
        }

        var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }

        /// Everything, once the writer has closed its end.
        func finish() -> String { done.wait(); return text }

        func waitFor(counts wanted: Int, seconds: Double = 20) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if SnapshotCLITests.counts(text).count >= wanted { return true }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return false
        }
    }

    /// Starts the counting guest with the API on `directory/api.sock` and waits until it has counted `counts`
    /// times and the socket answers.
    static func startCounter(in directory: String, counts: Int, extra: [String] = []) throws
        -> (vmm: Swiftlet.Started, printed: Collector, socket: String) {
        let image = try Swiftlet.rawImage(counter)
        let socket = directory + "/api.sock"
        let vmm = try Swiftlet.start(["run", "--raw", image, "--raw-mode", "user", "--memory", "32M", "--api-sock", socket] + extra)
        let printed = Collector(vmm.stdout)
        #expect(printed.waitFor(counts: counts), "the guest counts: \(printed.text.suffix(40))")
        ControlPlaneCLITests.waitForSocket(socket)
        return (vmm, printed, socket)
    }

    // MARK: Usage errors (no VM needed)

    @Test("snapshot and restore refuse bad arguments with status 64, naming the problem",
          arguments: [
            (["snapshot"], "give NAME DIR"),
            (["snapshot", "/tmp/x"], "give NAME DIR"),
            (["snapshot", "--api-sock", "/tmp/a.sock"], "with --api-sock give one argument"),
            (["snapshot", "--api-sock", "/tmp/a.sock", "vm1", "/tmp/x"], "with --api-sock give one argument"),
            (["snapshot", "no/slashes", "/tmp/x"], "no/slashes"),
            (["restore"], "Missing expected argument"),
            // Not the fast path's form (RestoreFastPath): the general parser answers, as it always did.
            (["restore", "--boot-timeline"], "Missing expected argument"),
            (["restore", "/tmp/a", "/tmp/b"], "Unexpected argument"),
            (["restore", "/tmp/x", "--net", "eth0"], "use ID=tap:NAME or ID=socket:PATH"),
            (["restore", "/tmp/x", "--net", "eth0=bridge:br0"], "use ID=tap:NAME or ID=socket:PATH"),
            (["restore", "/tmp/x", "--net", "eth 0=tap:t0"], "the interface id must be letters, digits and _"),
            (["restore", "/tmp/x", "--net", "eth0=tap:averyveryverylongname"], "a TAP name is 1 to 15 characters"),
            (["restore", "/tmp/x", "--net", "net0=tap:a", "--net", "net0=tap:b"], "names interface net0 twice"),
            (["restore", "/tmp/x", "--vsock-socket", ""], "--vsock-socket needs a path"),
            (["restore", "/tmp/x", "--disk", "/tmp/copy.img"], "use ID=PATH"),
            (["restore", "/tmp/x", "--disk", "drive0="], "use ID=PATH"),
            (["restore", "/tmp/x", "--disk", "drive0=/a", "--disk", "drive0=/b"], "names drive drive0 twice"),
            (["restore", "/tmp/x", "--timeout", "0"], "--timeout must be a positive number"),
          ])
    func usageErrors(arguments: [String], message: String) throws {
        let result = try Swiftlet.run(arguments)
        #expect(result.status == 64, "stderr: \(result.stderr)")
        #expect(result.stderr.contains(message), "stderr: \(result.stderr)")
    }

    @Test func snapshotWithoutAVMSaysSo() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try Swiftlet.run(["snapshot", "--api-sock", directory + "/none.sock", directory + "/snap"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot connect to the API socket \(directory)/none.sock"), "stderr: \(result.stderr)")
    }

    @Test("restore refuses a missing or damaged snapshot with status 1, naming the file, before anything runs")
    func restoreRefusesBadSnapshots() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var result = try Swiftlet.run(["restore", directory])
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot read snapshot file \(directory)/state"), "stderr: \(result.stderr)")

        try Data("not a snapshot at all, just text".utf8).write(to: URL(fileURLWithPath: directory + "/state"))
        result = try Swiftlet.run(["restore", directory])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(directory)/state is not a Swiftlet snapshot"), "stderr: \(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    // MARK: Across processes, on /dev/kvm

    @Test("run --api-sock, swiftlet snapshot --no-resume, then swiftlet restore in a new process: the count goes on with no gap",
          .enabled(if: hasKVM, "needs /dev/kvm"))
    func snapshotThenRestoreInANewProcess() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (original, printed, socket) = try Self.startCounter(in: directory, counts: 10)

        let saved = try Swiftlet.run(["snapshot", "--no-resume", "--api-sock", socket, directory + "/snap"])
        #expect(saved.status == 0, "stderr: \(saved.stderr)")
        #expect(saved.stdout.contains(directory + "/snap/state") && saved.stdout.contains(directory + "/snap/memory"), "stdout: \(saved.stdout)")
        #expect(saved.stdout.contains("the VM is paused"), "stdout: \(saved.stdout)")
        // Left paused: the state the API reports, and no more counts.
        #expect(try ControlPlaneCLITests.request(socket, "GET", "/").body.contains(#""state":"Paused""#))
        original.process.terminate()
        original.process.waitUntilExit()
        let before = printed.finish()

        let restored = try Swiftlet.start(["restore", directory + "/snap", "--timeout", "30"])
        let after = Collector(restored.stdout)
        #expect(after.waitFor(counts: 10), "the restored guest counts: \(after.text.prefix(40))")
        restored.process.terminate()
        restored.process.waitUntilExit()
        let continued = after.finish()
        #expect(restored.process.terminationStatus == 143)
        // The pause may have come mid-line: the two outputs joined are one unbroken count from 1.
        let all = Self.counts(before + continued)
        #expect(all.count >= Self.counts(before).count + 10)
        #expect(all == Array(1...UInt64(all.count)), "one sequence across the processes: \(all.prefix(3))...\(all.suffix(3))")
        #expect(!continued.hasPrefix("00000001"), "the restored guest does not start over")

        // `swiftlet restore DIR` alone takes the fast path (no argument parser): the same files restore the same way.
        let again = try Swiftlet.start(["restore", directory + "/snap"])
        let second = Collector(again.stdout)
        #expect(second.waitFor(counts: 10), "the second restore counts: \(second.text.prefix(40))")
        again.process.terminate()
        again.process.waitUntilExit()
        #expect(again.process.terminationStatus == 143)
        let secondCounts = Self.counts(before + second.finish())
        #expect(secondCounts == Array(1...UInt64(secondCounts.count)), "the fast path's restore continues the same count")
    }

    /// The API thread's seccomp list must cover what a save does: the directory form makes its directory, the
    /// two-path form a staging directory it removes again (mkdir, rmdir), and both rename files into place.
    @Test("with seccomp filters on (trap), a running VMM saves a snapshot in both forms and keeps running",
          .enabled(if: hasKVM, "needs /dev/kvm"))
    func snapshotUnderSeccomp() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (original, printed, socket) = try Self.startCounter(in: directory, counts: 5, extra: ["--seccomp-level", "trap"])

        let saved = try Swiftlet.run(["snapshot", "--api-sock", socket, directory + "/snap"])
        #expect(saved.status == 0, "stderr: \(saved.stderr)")
        #expect(FileManager.default.fileExists(atPath: directory + "/snap/state"))
        try FileManager.default.createDirectory(atPath: directory + "/mem", withIntermediateDirectories: true)
        #expect(try ControlPlaneCLITests.request(socket, "PATCH", "/vm", #"{"state": "Paused"}"#).status == 204)
        let created = try ControlPlaneCLITests.request(socket, "PUT", "/snapshot/create",
            #"{"snapshot_type": "Full", "snapshot_path": "\#(directory)/vm.state", "mem_file_path": "\#(directory)/mem/vm.mem"}"#)
        #expect(created.status == 204, "body: \(created.body)")
        #expect(FileManager.default.fileExists(atPath: directory + "/vm.state"))
        #expect(FileManager.default.fileExists(atPath: directory + "/mem/vm.mem"))
        #expect(try ControlPlaneCLITests.request(socket, "PATCH", "/vm", #"{"state": "Resumed"}"#).status == 204)
        let counted = Self.counts(printed.text).count
        #expect(printed.waitFor(counts: counted + 3), "the guest counts on after both saves")
        original.process.terminate()
        original.process.waitUntilExit()
        let stderr = String(decoding: original.stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(original.process.terminationStatus == 143, "stderr: \(stderr)")
        #expect(!stderr.contains("seccomp"), "stderr: \(stderr)")
    }

    @Test("swiftlet serve, PUT /snapshot/load (Firecracker's two paths): paused until PATCH Resumed, then the count goes on",
          .enabled(if: hasKVM, "needs /dev/kvm"))
    func loadThroughTheAPIInAFreshProcess() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Save through the API itself, to two files of the client's naming in different directories.
        let (original, printed, socket) = try Self.startCounter(in: directory, counts: 5)
        try FileManager.default.createDirectory(atPath: directory + "/mem", withIntermediateDirectories: true)
        let statePath = directory + "/vm.snap", memoryPath = directory + "/mem/vm.mem"
        #expect(try ControlPlaneCLITests.request(socket, "PATCH", "/vm", #"{"state": "Paused"}"#).status == 204)
        let created = try ControlPlaneCLITests.request(socket, "PUT", "/snapshot/create",
                                                       #"{"snapshot_type": "Full", "snapshot_path": "\#(statePath)", "mem_file_path": "\#(memoryPath)"}"#)
        #expect(created.status == 204, "body: \(created.body)")
        original.process.terminate()
        original.process.waitUntilExit()
        let before = printed.finish()
        #expect(FileManager.default.fileExists(atPath: statePath) && FileManager.default.fileExists(atPath: memoryPath))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: directory + "/mem")) == ["vm.mem"], "no staging files are left")

        let loadSocket = directory + "/load.sock"
        let server = try Swiftlet.start(["serve", "--api-sock", loadSocket])
        let after = Collector(server.stdout)
        ControlPlaneCLITests.waitForSocket(loadSocket)
        let loaded = try ControlPlaneCLITests.request(loadSocket, "PUT", "/snapshot/load",
                                                      #"{"snapshot_path": "\#(statePath)", "mem_backend": {"backend_type": "File", "backend_path": "\#(memoryPath)"}}"#)
        #expect(loaded.status == 204, "body: \(loaded.body)")
        #expect(try ControlPlaneCLITests.request(loadSocket, "GET", "/").body.contains(#""state":"Paused""#))
        #expect(try ControlPlaneCLITests.request(loadSocket, "GET", "/machine-config").body.contains(#""mem_size_mib":32"#))
        #expect(try ControlPlaneCLITests.request(loadSocket, "PATCH", "/vm", #"{"state": "Resumed"}"#).status == 204)
        #expect(after.waitFor(counts: 5), "the loaded guest counts: \(after.text.prefix(40))")
        #expect(try ControlPlaneCLITests.request(loadSocket, "GET", "/").body.contains(#""state":"Running""#))
        server.process.terminate()
        server.process.waitUntilExit()
        let all = Self.counts(before + after.finish())
        #expect(all == Array(1...UInt64(all.count)), "one sequence across the processes: \(all.prefix(3))...\(all.suffix(3))")
    }

    @Test("a PUT /snapshot/load that fails is answered with the reason, then the VMM exits with status 1")
    func failedLoadEndsTheProcess() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: directory + "/state"))
        let socket = directory + "/api.sock"
        let server = try Swiftlet.start(["serve", "--api-sock", socket])
        ControlPlaneCLITests.waitForSocket(socket)
        let loaded = try ControlPlaneCLITests.request(socket, "PUT", "/snapshot/load",
                                                      #"{"snapshot_path": "\#(directory)/state", "mem_file_path": "\#(directory)/memory"}"#)
        #expect(loaded.status == 400)
        #expect(loaded.body.contains("Load snapshot error: Failed to restore from snapshot: \(directory)/state is not a Swiftlet snapshot"),
                "body: \(loaded.body)")
        server.process.waitUntilExit()
        #expect(server.process.terminationStatus == 1)
        #expect(!FileManager.default.fileExists(atPath: socket), "the socket file is removed")
    }
}
