import Foundation
import Synchronization
import Testing
@testable import SwiftletSandbox
#if canImport(Glibc)
import Glibc
#endif

/// The named VMs' state directories: names, creation, liveness by lock, removal, the bounded console log.
@Suite struct SandboxDirectoryTests {
    let directory: SandboxDirectory

    init() {
        directory = SandboxDirectory(root: FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-sandbox-\(UUID().uuidString)").path)
    }

    @Test("names are 1-63 plain characters starting with a letter or digit")
    func names() throws {
        for good in ["web", "a", "vm-01", "db_2.test", String(repeating: "x", count: 63)] {
            #expect(throws: Never.self) { try SandboxDirectory.validate(name: good) }
        }
        for bad in ["", "-web", ".hidden", "a/b", "..", "sp ace", "ünï", String(repeating: "x", count: 64)] {
            #expect(throws: SandboxError.invalidName(bad)) { try SandboxDirectory.validate(name: bad) }
        }
        #expect(SandboxDirectory.generatedName().hasPrefix("vm-"))
        #expect(SandboxDirectory.generatedName().count == 9)
    }

    @Test("a name is taken once: a second create fails, saying whether the first runs")
    func uniqueNames() throws {
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        let paths = try directory.create(name: "web")
        #expect(throws: SandboxError.nameInUse(name: "web", running: false)) { _ = try directory.create(name: "web") }
        let lock = try Self.holdLock(paths)
        defer { close(lock) }
        #expect(throws: SandboxError.nameInUse(name: "web", running: true)) { _ = try directory.create(name: "web") }
        #expect(directory.names() == ["web"])
    }

    @Test("eight concurrent creates of one name (eight `run -d --name web` at once): exactly one wins")
    func concurrentCreatesOfOneName() throws {
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        for round in 0..<20 {
            let name = "web\(round)"
            let outcomes = Mutex<[Bool]>([])
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                let created = (try? directory.create(name: name)) != nil
                outcomes.withLock { $0.append(created) }
            }
            #expect(outcomes.withLock { $0.filter { $0 }.count } == 1, "round \(round)")
        }
        #expect(directory.names().count == 20)
    }

    @Test("running means a process holds the lock; closing it (as a killed VMM does) means exited")
    func livenessIsTheLock() throws {
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        let paths = try directory.create(name: "vm")
        #expect(!paths.isRunning)
        let lock = try Self.holdLock(paths)
        #expect(paths.isRunning)
        #expect(throws: SandboxError.stillRunning(name: "vm")) { try directory.remove(name: "vm") }
        close(lock)
        #expect(!paths.isRunning)
        #expect(SandboxStatus.of(paths).state == .exited)
        #expect(SandboxStatus.of(paths).stateText == "exited (killed)")
        try "3\n".write(toFile: paths.exitStatus, atomically: true, encoding: .utf8)
        #expect(SandboxStatus.of(paths).stateText == "exited (3)")
        try directory.remove(name: "vm")
        #expect(directory.names().isEmpty)
        #expect(throws: SandboxError.noSuchVM(name: "vm")) { _ = try directory.existing(name: "vm") }
    }

    @Test("a running VM whose API does not answer is unresponsive, not running")
    func unresponsive() throws {
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        let paths = try directory.create(name: "stuck")
        let lock = try Self.holdLock(paths)
        defer { close(lock) }
        #expect(SandboxStatus.of(paths, apiTimeout: 0.5).state == .unresponsive)
    }

    @Test("vm.json round-trips")
    func record() throws {
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        let paths = try directory.create(name: "r")
        let record = SandboxRecord(name: "r", arguments: ["--cpus", "2"], created: 1_700_000_000, pid: 42, vcpus: 2, memoryMiB: 512,
                                   vsockSocket: paths.vsockSocket)
        try paths.write(record: record)
        #expect(paths.readRecord() == record)
    }

    @Test("the console log keeps at most two files of its limit")
    func boundedLog() throws {
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        let paths = try directory.create(name: "log")
        var log = try BoundedLog(path: paths.consoleLog, limit: 1000)
        for round in 0..<25 { log.append(ArraySlice(repeating: UInt8(ascii: "a") + UInt8(round % 26), count: 100)) }
        let current = try Data(contentsOf: URL(fileURLWithPath: paths.consoleLog))
        let previous = try Data(contentsOf: URL(fileURLWithPath: paths.consoleLog + ".1"))
        #expect(current.count == 500 && previous.count == 1000)
        // The newest bytes are at the end of the current file.
        #expect(current.last == UInt8(ascii: "a") + 24)
    }

    @Test("columns: uptime and memory")
    func columns() {
        #expect(SandboxStatus.shortDuration(45) == "45s")
        #expect(SandboxStatus.shortDuration(125) == "2m5s")
        #expect(SandboxStatus.shortDuration(3 * 3600 + 120) == "3h2m")
        #expect(SandboxStatus.memoryText(512) == "512M")
        #expect(SandboxStatus.memoryText(2048) == "2G")
    }

    static func holdLock(_ paths: SandboxPaths) throws -> Int32 {
        let fd = open(paths.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else { throw SandboxError.system(operation: "flock", errno: errno) }
        return fd
    }
}
