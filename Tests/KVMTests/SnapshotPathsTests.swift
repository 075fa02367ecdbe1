import Foundation
import GuestMemory
import Testing
@testable import Swiftlet

/// Snapshots named by two file paths (Firecracker's `snapshot_path` and `mem_file_path`) over the directory form:
/// `Machine.saveSnapshot(statePath:memoryPath:)` and `Machine(restoringFromState:memoryPath:)`. The counting guest of
/// `SnapshotTests` is saved to files in two different directories and continues from them; errors name the
/// caller's files, never the staging directory; nothing of the staging is left behind.
@Suite(.serialized, .enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
struct SnapshotPathsTests {
    /// Runs the counting guest until it printed a few counts, pauses it and saves it to the two paths.
    static func runAndSave(statePath: String, memoryPath: String) throws -> String {
        let guest = try TinyGuest(SnapshotTests.counter, mode: .userMode)
        let console = SnapshotTests.Console()
        let machine = try Machine(configuration: MachineConfiguration(payload: .rawImage(RawImagePayload(path: guest.path, mode: .userMode)),
                                                                      memory: .mebibytes(32)),
                                  consoleOutput: console.fd)
        try machine.start(StartOptions(attachConsoleInput: false))
        let deadline = Date().addingTimeInterval(10)
        while SnapshotTests.counts(console.drain()).count < 10, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        try machine.pause()
        try machine.saveSnapshot(statePath: statePath, memoryPath: memoryPath)
        #expect(machine.state == .paused)
        machine.stop()
        return console.drain()
    }

    static func listing(_ directory: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() }

    @Test("saved to files in two directories, restored from them: the count goes on, and no staging file is left")
    func twoPathsRoundTrip() throws {
        let directory = try SnapshotTests.directory()
        try FileManager.default.createDirectory(atPath: directory + "/states", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/memories", withIntermediateDirectories: true)
        let statePath = directory + "/states/vm1.snap", memoryPath = directory + "/memories/vm1.mem"
        let before = try Self.runAndSave(statePath: statePath, memoryPath: memoryPath)
        #expect(Self.listing(directory + "/states") == ["vm1.snap"])
        #expect(Self.listing(directory + "/memories") == ["vm1.mem"])
        #expect(try FileManager.default.attributesOfItem(atPath: memoryPath)[.size] as? UInt64 == 32 << 20)

        let console = SnapshotTests.Console()
        let restored = try Machine(restoringFromState: statePath, memoryPath: memoryPath, consoleOutput: console.fd)
        try restored.start(StartOptions(attachConsoleInput: false))
        let deadline = Date().addingTimeInterval(10)
        while SnapshotTests.counts(console.drain()).count < 10, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        restored.stop()
        let all = SnapshotTests.counts(before + console.drain())
        #expect(all.count >= SnapshotTests.counts(before).count + 10)
        #expect(all == Array(1...UInt64(all.count)), "one unbroken count: \(all.prefix(3))...\(all.suffix(3))")
        // The restore's links are gone; the files are as saved.
        #expect(Self.listing(directory + "/states") == ["vm1.snap"] && Self.listing(directory + "/memories") == ["vm1.mem"])
    }

    @Test("a directory's state and memory are the directory form itself")
    func directoryPairIsTheDirectoryForm() throws {
        let directory = try SnapshotTests.directory()
        _ = try Self.runAndSave(statePath: directory + "/state", memoryPath: directory + "/memory")
        #expect(Self.listing(directory) == ["memory", "state"])
        _ = try Machine(restoringFrom: directory, consoleOutput: SnapshotTests.Console().fd)
    }

    @Test("errors name the caller's files: a damaged state file, a memory file of the wrong size, one file for both")
    func errorsNameTheCallersFiles() throws {
        let directory = try SnapshotTests.directory()
        let statePath = directory + "/vm.snap", memoryPath = directory + "/vm.mem"
        _ = try Self.runAndSave(statePath: statePath, memoryPath: memoryPath)
        let console = SnapshotTests.Console()

        // One byte of the memory file cut off.
        let memory = try FileHandle(forWritingTo: URL(fileURLWithPath: memoryPath))
        try memory.truncate(atOffset: (32 << 20) - 1)
        try memory.close()
        #expect(throws: SnapshotError.memory(.fileSizeMismatch(path: memoryPath, expected: 32 << 20, actual: (32 << 20) - 1))) {
            _ = try Machine(restoringFromState: statePath, memoryPath: memoryPath, consoleOutput: console.fd)
        }

        // A byte of the state file flipped: the CRC catches it, and the error names vm.snap.
        var state = try Data(contentsOf: URL(fileURLWithPath: statePath))
        state[100] ^= 0xFF
        try state.write(to: URL(fileURLWithPath: statePath))
        do {
            _ = try Machine(restoringFromState: statePath, memoryPath: memoryPath, consoleOutput: console.fd)
            Issue.record("a corrupted state file was accepted")
        } catch let error as SnapshotError {
            guard case let .checksumMismatch(path, _, _) = error else { Issue.record("\(error)"); return }
            #expect(path == statePath)
            #expect(error.description.contains(statePath) && !error.description.contains("swiftlet-restore-"), "\(error)")
        }

        #expect(throws: SnapshotError.self) {
            _ = try Machine(restoringFromState: statePath, memoryPath: statePath, consoleOutput: console.fd)
        }
        #expect(Self.listing(directory) == ["vm.mem", "vm.snap"], "nothing was written")
    }

    @Test("overrides reach the restore: a raw machine's snapshot refuses network, drive and vsock ones, naming the state file; the clock advance is taken")
    func overridesReachTheRestore() throws {
        let directory = try SnapshotTests.directory()
        _ = try Self.runAndSave(statePath: directory + "/state", memoryPath: directory + "/memory")
        let console = SnapshotTests.Console()
        for overrides in [SnapshotOverrides(networks: [.init(interfaceID: "net0", backend: .tap(name: "tap0"))]),
                          SnapshotOverrides(drives: [.init(driveID: "drive0", path: "/tmp/copy.img")]),
                          SnapshotOverrides(vsockSocketPath: "/tmp/v.sock")] {
            let error = #expect(throws: SnapshotError.self) {
                _ = try Machine(restoringFromState: directory + "/state", memoryPath: directory + "/memory", consoleOutput: console.fd,
                                overrides: overrides)
            }
            #expect(error?.description.contains(directory + "/state") == true, "\(String(describing: error))")
        }
        let machine = try Machine(restoringFromState: directory + "/state", memoryPath: directory + "/memory", consoleOutput: console.fd,
                                  overrides: SnapshotOverrides(advanceGuestClock: true))
        #expect(machine.state == .stopped)
    }
}
