import ACPI
import Devices
import Foundation
import GuestMemory
import KVM
import Synchronization
import Testing
@testable import Swiftlet

/// An interrupt line that remembers every level it was driven to.
private final class LevelLog: InterruptLine {
    private let levels = Mutex<[Bool]>([])
    func setLevel(_ asserted: Bool) { levels.withLock { $0.append(asserted) } }
    var history: [Bool] { levels.withLock { $0 } }
}

/// The VMM's half of the VM Generation ID: a random ID at boot, a new one and one interrupt pulse per restore.
@Suite struct VMGenerationIDTests {
    @Test func freshIDsAreSixteenRandomBytes() {
        let ids = (0..<8).map { _ in VMGenerationID.freshID() }
        #expect(ids.allSatisfy { $0.count == 16 })
        #expect(Set(ids).count == ids.count, "eight 128-bit random values never repeat")
        #expect(ids.allSatisfy { $0.contains { $0 != 0 } })
    }

    @Test func bootWritesAnIDWithoutNotifyingARestoreWritesANewOneAndPulsesTheLine() throws {
        let memory = try GuestMemory(ranges: [(start: GuestAddress(0), size: 1 << 20)])
        let line = LevelLog()
        let device = VMGenerationID(address: GuestAddress(0xE_0030), interrupt: line)
        #expect(try device.currentID(in: memory) == [UInt8](repeating: 0, count: 16))

        let first = try device.writeFreshID(into: memory)
        #expect(try device.currentID(in: memory) == first)
        #expect(line.history.isEmpty, "at boot the driver reads the ID when it probes: no notification")

        let second = try device.regenerate(in: memory)
        #expect(second != first)
        #expect(try device.currentID(in: memory) == second)
        // One edge on the GED's input: raised, then lowered again (an edge-triggered I/O APIC pin).
        #expect(line.history == [true, false])
        #expect(device.state == VMGenerationID.State(address: 0xE_0030, gsi: 9))
    }

    @Test func anIDOutsideGuestMemoryIsAnError() throws {
        let memory = try GuestMemory(ranges: [(start: GuestAddress(0), size: 1 << 20)])
        let device = VMGenerationID(address: GuestAddress((1 << 20) - 8), interrupt: LevelLog())
        #expect(throws: GuestMemoryError.self) { try device.regenerate(in: memory) }
    }

    @Test func linuxGuestsGetTheDeviceOnALineNoOtherDeviceUses() {
        let acpi = Platform.acpiConfiguration(vcpuCount: 1)
        #expect(acpi.vmGenerationID == VMGenerationIDDescription(gsi: 9))
        // Not a virtio-mmio line, not a PCI INTx line (16-23), not COM1/RTC/i8042.
        #expect(!VirtioMMIOPlatform.gsis.contains(VMGenerationID.gsi))
        #expect(![0, 1, 2, 4, 8, 12].contains(VMGenerationID.gsi) && VMGenerationID.gsi < 16)
    }
}

/// Snapshot restore gives every clone a new ID — in its copy-on-write memory, never in the files — and the
/// section survives a second save. Uses the counting raw guest of SnapshotTests, with a `device.vmgenid` section
/// added to its state file (raw images get no ACPI tables, so no device of their own).
@Suite(.serialized, .enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
struct VMGenerationIDSnapshotTests {
    static let idAddress: UInt64 = 0xE_0030

    /// A saved counting guest whose state file also names a VM Generation ID at `address`, with `id` stored there in
    /// the memory file.
    static func snapshot(address: UInt64 = idAddress, id: [UInt8]) throws -> String {
        let directory = try SnapshotTests.directory()
        _ = try SnapshotTests.runAndSave(to: directory)
        var file = try SnapshotFile.read(path: directory + "/state")
        file.sections.append(.init(name: SnapshotSection.vmGenerationID,
                                   payload: SnapshotSection.encode(VMGenerationID.State(address: address, gsi: 9))))
        try SnapshotFile.writeAtomically(file.encoded(), to: directory + "/state")
        if address + 16 <= 32 << 20 {
            let memory = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/memory"))
            try memory.seek(toOffset: address)
            try memory.write(contentsOf: Data(id))
            try memory.close()
        }
        return directory
    }

    @Test func eachRestoreWritesANewIDIntoItsOwnMemoryAndTheFilesStayUnchanged() throws {
        let saved: [UInt8] = Array(1...16)
        let directory = try Self.snapshot(id: saved)
        let memoryBefore = try SnapshotTests.fileBytes(directory + "/memory")
        let stateBefore = try SnapshotTests.fileBytes(directory + "/state")

        let first = try Machine(restoringFrom: directory, consoleOutput: SnapshotTests.Console().fd)
        let second = try Machine(restoringFrom: directory, consoleOutput: SnapshotTests.Console().fd)
        let firstID = try first.memory.read(at: GuestAddress(Self.idAddress), count: 16)
        let secondID = try second.memory.read(at: GuestAddress(Self.idAddress), count: 16)
        #expect(firstID != saved && secondID != saved, "a restore replaces the saved ID")
        #expect(firstID != secondID, "two clones of one snapshot get different IDs")
        #expect(first.vmGenerationID?.state == VMGenerationID.State(address: Self.idAddress, gsi: 9))
        #expect(try SnapshotTests.fileBytes(directory + "/memory") == memoryBefore, "the memory file is mapped copy-on-write")
        #expect(try SnapshotTests.fileBytes(directory + "/state") == stateBefore)

        // The restored machine runs, pauses and saves again: the new snapshot keeps the section and the new ID.
        try first.start(StartOptions(attachConsoleInput: false))
        try first.pause()
        let again = try SnapshotTests.directory()
        try first.saveSnapshot(to: again)
        #expect(first.stop() == .stopRequested)
        let file = try SnapshotFile.read(path: again + "/state")
        let section = try SnapshotSection.decode(VMGenerationID.State.self, SnapshotSection.vmGenerationID, from: file, path: again)
        #expect(section == VMGenerationID.State(address: Self.idAddress, gsi: 9))
        let memory = try SnapshotTests.fileBytes(again + "/memory")
        #expect(Array(memory[Int(Self.idAddress)..<Int(Self.idAddress + 16)]) == firstID)
        _ = second.stop()
    }

    @Test func anIDOutsideRAMOrAnUnknownLineIsRefused() throws {
        let directory = try Self.snapshot(address: 32 << 20, id: [])
        guard case let .invalidSection(_, name, _)? = SnapshotTests.restoreError(directory) else {
            Issue.record("expected an invalid section")
            return
        }
        #expect(name == SnapshotSection.vmGenerationID)
    }
}

/// A Linux machine built (not run) from the guest kernel: the ID is in place before the guest's first instruction,
/// at the address the DSDT in its memory names.
@Suite(.enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm") && LinuxKernelFile.path != nil,
                "needs /dev/kvm and a guest kernel in ~/.cache/swiftlet"))
struct VMGenerationIDBootTests {
    @Test func aLinuxMachineHasARandomIDWhereTheDSDTSays() throws {
        let kernel = try #require(LinuxKernelFile.path)
        let first = try Machine(configuration: .linux(kernel: kernel), consoleOutput: SnapshotTests.Console().fd)
        let second = try Machine(configuration: .linux(kernel: kernel), consoleOutput: SnapshotTests.Console().fd)
        let device = try #require(first.vmGenerationID)
        #expect(device.gsi == 9)
        let id = try device.currentID(in: first.memory)
        #expect(id.contains { $0 != 0 })
        #expect(try second.vmGenerationID?.currentID(in: second.memory) != id, "every boot draws its own ID")
        // The DSDT as the guest reads it: ADDR's package is Package (0x02) { DWordConst low, Zero } in AML.
        let acpi = try first.memory.read(at: GuestAddress(0xE_0000), count: 0x1_0000)
        let address = UInt32(device.address.rawValue)
        let package: [UInt8] = [0x12, 0x08, 0x02, 0x0C] + (0..<4).map { UInt8(truncatingIfNeeded: address >> (8 * $0)) } + [0x00]
        #expect(acpi.firstRange(of: package) != nil, "ADDR returns 0x\(String(address, radix: 16)), low half first")
        #expect(acpi.firstRange(of: Array("VM_GEN_COUNTER".utf8)) != nil)
        _ = first.stop()
        _ = second.stop()
    }
}

enum LinuxKernelFile {
    /// The microVM kernel's vmlinux (an ELF: loads without unpacking) or else the Debian guest's bzImage.
    static var path: String? {
        let cache = FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/swiftlet"
        return [cache + "/microvm/current/vmlinux", cache + "/guest/vmlinuz"].first { FileManager.default.isReadableFile(atPath: $0) }
    }
}
