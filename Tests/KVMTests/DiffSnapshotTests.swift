import Foundation
import GuestMemory
import KVM
import Testing
@testable import Swiftlet

/// `Diff` snapshots on real KVM with the counting guest of `SnapshotTests`: what a Diff writes, merged onto the
/// Full snapshot before it, is byte for byte the Full snapshot of the same moment, and restores to a guest that
/// counts on.
@Suite(.serialized, .enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
struct DiffSnapshotTests {
    typealias Console = SnapshotTests.Console

    static func countingMachine(console: Console) throws -> Machine {
        let guest = try TinyGuest(SnapshotTests.counter, mode: .userMode)
        return try Machine(configuration: MachineConfiguration(payload: .rawImage(RawImagePayload(path: guest.path, mode: .userMode)),
                                                               memory: .mebibytes(32)),
                           consoleOutput: console.fd)
    }

    static func run(_ machine: Machine, _ console: Console, until wanted: Int) {
        let deadline = Date().addingTimeInterval(10)
        while SnapshotTests.counts(console.drain()).count < wanted, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    }

    @Test("Full, run on, Diff: the Diff holds only the pages written since (the vCPU's and the VMM's), and merged onto the Full it equals a Full of that moment, which restores and counts on")
    func diffOnTopOfFullEqualsFull() throws {
        let full = try SnapshotTests.directory(), diff = try SnapshotTests.directory(), reference = try SnapshotTests.directory()
        let console = Console()
        let machine = try Self.countingMachine(console: console)
        try machine.enableDirtyPageTracking()
        #expect(machine.isTrackingDirtyPages)
        try machine.start(StartOptions(attachConsoleInput: false))
        Self.run(machine, console, until: 10)
        try machine.pause()
        try machine.saveSnapshot(to: full)
        try machine.resume()
        Self.run(machine, console, until: SnapshotTests.counts(console.drain()).count + 10)
        try machine.pause()
        // A page only the VMM writes (as a device model would): KVM's log cannot see it, the memory's own log must.
        try machine.memory.store(UInt64(0x5157_4946_544C_4554), at: GuestAddress(0x80_0000))
        let diffSummary = try machine.saveSnapshot(to: diff, kind: .diff)
        let fullSummary = try machine.saveSnapshot(to: reference)
        #expect(machine.stop() == .stopRequested)
        let printed = console.drain()

        print("diff snapshot: \(diffSummary.memoryBytesWritten) bytes written of \(diffSummary.memoryFileSize); "
              + "a Full of the same moment wrote \(fullSummary.memoryBytesWritten)")
        #expect(diffSummary.memoryFileSize == fullSummary.memoryFileSize)
        #expect(diffSummary.memoryBytesWritten > 0)
        #expect(diffSummary.memoryBytesWritten < fullSummary.memoryBytesWritten, "only what was written since the Full")

        let merged = full + "/memory"
        let copied = try GuestMemory.mergeDiff(from: diff + "/memory", onto: merged)
        #expect(copied == diffSummary.memoryBytesWritten)
        #expect(try SnapshotTests.fileBytes(merged) == SnapshotTests.fileBytes(reference + "/memory"), "Diff on top of Full equals a Full")

        // The Diff's state with the merged memory: the guest counts on from where the Diff was taken.
        let restoreDirectory = try SnapshotTests.directory()
        try FileManager.default.copyItem(atPath: diff + "/state", toPath: restoreDirectory + "/state")
        try FileManager.default.copyItem(atPath: merged, toPath: restoreDirectory + "/memory")
        let restored = try SnapshotTests.restoreAndRun(from: restoreDirectory)
        let all = SnapshotTests.counts(printed + restored.printed)
        #expect(all.count >= SnapshotTests.counts(printed).count + 10)
        #expect(all == Array(1...UInt64(all.count)), "one unbroken count: \(all.prefix(3))...\(all.suffix(3))")
        #expect(try restored.machine.memory.load(UInt64.self, at: GuestAddress(0x80_0000)) == 0x5157_4946_544C_4554)
    }

    @Test("a Diff of a machine that does not track dirty pages is refused, naming the setting; tracking cannot start while it runs")
    func diffNeedsTracking() throws {
        let console = Console()
        let machine = try Self.countingMachine(console: console)
        try machine.start(StartOptions(attachConsoleInput: false))
        #expect(throws: SnapshotError.self) { try machine.enableDirtyPageTracking() }
        try machine.pause()
        let directory = try SnapshotTests.directory()
        let error = #expect(throws: SnapshotError.self) { try machine.saveSnapshot(to: directory, kind: .diff) }
        #expect(error?.description.contains("track_dirty_pages") == true, "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: directory + "/state"), "nothing written")
        #expect(machine.stop() == .stopRequested)
    }
}
