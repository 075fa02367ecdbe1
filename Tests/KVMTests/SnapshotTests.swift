import Devices
import Foundation
import GuestMemory
import KVM
import Testing
@testable import Swiftlet

/// Snapshots on real KVM, with a tiny user-mode guest (CPL 3 runs natively on nested-PVM hosts) that counts in a
/// register (r12) and in memory (the quadword at 1 MiB) and prints each count on COM1 as eight hex digits and a
/// newline. A machine is paused, saved and stopped; a new `Machine(restoringFrom:)` must continue the printed
/// sequence where it stopped, with no gap and no restart.
@Suite(.serialized, .enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
struct SnapshotTests {
    static let counterAddress: UInt64 = 0x10_0000

    /// Count, store, print "%08x\n", repeat; about 1.6 ms of spinning between counts.
    static let counter = """
        xor %r12, %r12
        1:
        mov $0x400000, %ecx
        2:
        dec %ecx
        jnz 2b
        inc %r12
        incq 0x100000
        mov $0x3f8, %dx
        mov %r12d, %esi
        mov $8, %ecx
        3:
        rol $4, %esi
        mov %esi, %eax
        and $0xf, %eax
        add $0x30, %eax
        cmp $0x39, %eax
        jbe 4f
        add $7, %eax
        4:
        out %al, (%dx)
        dec %ecx
        jnz 3b
        mov $0x0a, %al
        out %al, (%dx)
        jmp 1b
        """

    /// A machine and the read end of its console pipe (non-blocking).
    final class Console {
        let pipe = Pipe()
        private(set) var text = ""

        init() { _ = fcntl(pipe.fileHandleForReading.fileDescriptor, F_SETFL, O_NONBLOCK) }

        var fd: Int32 { pipe.fileHandleForWriting.fileDescriptor }

        /// Everything printed so far.
        @discardableResult
        func drain() -> String {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(pipe.fileHandleForReading.fileDescriptor, &buffer, buffer.count)
                if count <= 0 { break }
                text += String(decoding: buffer[0..<count], as: UTF8.self)
            }
            return text
        }
    }

    static func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-snap-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The counts in `text` (complete lines only), as numbers.
    static func counts(_ text: String) -> [UInt64] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.removeLast()  // the unfinished line (or "" after the last newline)
        return lines.compactMap { UInt64($0, radix: 16) }
    }

    /// Builds the counting guest, runs it until it printed a few counts, pauses it and saves it into `directory`.
    /// Returns what it printed, the summary, and the register/memory counters at the pause.
    static func runAndSave(memory: MemorySize = .mebibytes(32), to directory: String)
        throws -> (printed: String, summary: Machine.SnapshotSummary, r12: UInt64, memoryCounter: UInt64) {
        let guest = try TinyGuest(counter, mode: .userMode)
        let console = Console()
        let machine = try Machine(configuration: MachineConfiguration(payload: .rawImage(RawImagePayload(path: guest.path, mode: .userMode)),
                                                                      memory: memory),
                                  consoleOutput: console.fd)
        try machine.start(StartOptions(attachConsoleInput: false))
        let deadline = Date().addingTimeInterval(10)
        while counts(console.drain()).count < 20, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        try machine.pause()
        let r12 = try machine.vcpus[0].registersState().bytes.withUnsafeBytes { $0.load(fromByteOffset: 12 * 8, as: UInt64.self) }
        let memoryCounter = try machine.memory.load(UInt64.self, at: GuestAddress(counterAddress))
        let summary = try machine.saveSnapshot(to: directory)
        #expect(machine.state == .paused, "saving leaves the machine paused")
        #expect(machine.stop() == .stopRequested)
        return (console.drain(), summary, r12, memoryCounter)
    }

    /// Restores from `directory`, runs until a few more counts arrived, stops; returns what the new machine printed.
    static func restoreAndRun(from directory: String, counts wanted: Int = 10) throws -> (printed: String, machine: Machine) {
        let console = Console()
        let machine = try Machine(restoringFrom: directory, consoleOutput: console.fd)
        #expect(machine.state == .stopped, "a restored machine has not run yet")
        try machine.start(StartOptions(attachConsoleInput: false))
        let deadline = Date().addingTimeInterval(10)
        while counts(console.drain()).count < wanted, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(machine.stop() == .stopRequested)
        return (console.drain(), machine)
    }

    static func fileBytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    @Test("a paused counting guest saved, stopped and restored into a new machine continues its count: no gap, no restart")
    func restoredGuestContinues() throws {
        let directory = try Self.directory()
        let saved = try Self.runAndSave(to: directory)
        let before = Self.counts(saved.printed)
        #expect(before.count >= 20)
        #expect(before == Array(1...UInt64(before.count)), "the original machine counts from 1")
        #expect(saved.memoryCounter == saved.r12 || saved.memoryCounter + 1 == saved.r12, "memory counter follows the register")
        print("snapshot: state \(saved.summary.stateBytes) bytes, memory file \(saved.summary.memoryFileSize) bytes "
              + "(\(saved.summary.memoryBytesWritten) written); host refused: \(saved.summary.hostRefused)")

        let restored = try Self.restoreAndRun(from: directory)
        // The restored guest picks up mid-line if the pause came mid-line: join the two outputs.
        let all = Self.counts(saved.printed + restored.printed)
        #expect(all.count >= before.count + 10, "the restored guest prints more counts")
        #expect(all == Array(1...UInt64(all.count)), "one unbroken sequence across the save: \(all.prefix(5))...\(all.suffix(5))")
        #expect(!restored.printed.hasPrefix("00000001"), "the restored guest does not start over")
        let memoryCounter = try restored.machine.memory.load(UInt64.self, at: GuestAddress(Self.counterAddress))
        #expect(memoryCounter >= saved.memoryCounter + 10, "the memory counter went on from its saved value")
    }

    @Test("a format-version-1 state file (every section JSON, as Swiftlet wrote before 2026-12-04) still restores and continues")
    func versionOneFilesStillRestore() throws {
        let directory = try Self.directory()
        let saved = try Self.runAndSave(to: directory)
        let statePath = directory + "/" + Machine.snapshotStateFile
        var file = try SnapshotFile.read(path: statePath)
        #expect(file.version == 2)
        // Rewritten as version 1 wrote it: each section's value as JSON.
        func json<T: BinarySnapshotSection>(_ type: T.Type, _ name: String) throws -> [UInt8] {
            SnapshotSection.encodeJSON(try SnapshotSection.decode(type, name, from: file, path: statePath))
        }
        var sections: [SnapshotFile.Section] = []
        for section in file.sections {
            let payload: [UInt8]
            switch section.name {
            case SnapshotSection.machine: payload = try json(MachineSection.self, section.name)
            case SnapshotSection.host: payload = try json(HostSection.self, section.name)
            case SnapshotSection.memory: payload = try json(MemorySection.self, section.name)
            case SnapshotSection.vm: payload = try json(VMSection.self, section.name)
            case SnapshotSection.vcpu(0): payload = try json(VCPUSection.self, section.name)
            case SnapshotSection.serial: payload = try json(Serial8250.State.self, section.name)
            case SnapshotSection.i8042: payload = try json(I8042.State.self, section.name)
            case SnapshotSection.rtc: payload = try json(CMOSRTC.State.self, section.name)
            default: Issue.record("unexpected section \(section.name)"); payload = section.payload
            }
            #expect(payload.first == UInt8(ascii: "{"), "\(section.name) is JSON now")
            sections.append(.init(name: section.name, payload: payload))
        }
        file.version = 1
        file.sections = sections
        try file.write(path: statePath)

        let restored = try Self.restoreAndRun(from: directory)
        let all = Self.counts(saved.printed + restored.printed)
        #expect(all.count >= Self.counts(saved.printed).count + 10, "the restored guest prints more counts")
        #expect(all == Array(1...UInt64(all.count)), "one unbroken sequence across the save")
    }

    @Test("two machines restored from the same files both continue from the same point, and the files are unchanged")
    func restoreTwiceFromTheSameFiles() throws {
        let directory = try Self.directory()
        let saved = try Self.runAndSave(to: directory)
        let state = try Self.fileBytes(directory + "/state"), memory = try Self.fileBytes(directory + "/memory")

        let first = try Self.restoreAndRun(from: directory)
        let second = try Self.restoreAndRun(from: directory)
        #expect(try Self.fileBytes(directory + "/state") == state, "the state file is never written by a restore")
        #expect(try Self.fileBytes(directory + "/memory") == memory, "the memory file is mapped copy-on-write, never written")

        let firstAll = Self.counts(saved.printed + first.printed), secondAll = Self.counts(saved.printed + second.printed)
        #expect(firstAll == Array(1...UInt64(firstAll.count)))
        #expect(secondAll == Array(1...UInt64(secondAll.count)))
        let common = min(first.printed.count, second.printed.count)
        #expect(first.printed.prefix(common) == second.printed.prefix(common), "both clones print the same continuation")
    }

    @Test("two clones of one snapshot run side by side in one process, each continuing the count on its own")
    func clonesRunSideBySide() throws {
        let directory = try Self.directory()
        let saved = try Self.runAndSave(to: directory)
        let consoles = [Console(), Console()]
        let clones = try consoles.map { try Machine(restoringFrom: directory, consoleOutput: $0.fd) }
        for clone in clones { try clone.start(StartOptions(attachConsoleInput: false)) }
        let deadline = Date().addingTimeInterval(10)
        while consoles.contains(where: { Self.counts(saved.printed + $0.drain()).count < Self.counts(saved.printed).count + 20 }),
              Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        for clone in clones {
            #expect(clone.state == .running)
            #expect(clone.stop() == .stopRequested)
        }
        for console in consoles {
            let all = Self.counts(saved.printed + console.drain())
            #expect(all.count >= Self.counts(saved.printed).count + 20)
            #expect(all == Array(1...UInt64(all.count)))
        }
    }

    @Test("five save/restore cycles, each saving the restored machine over the very files it was restored from: one unbroken count")
    func manyCyclesIntoTheSameDirectory() throws {
        let directory = try Self.directory()
        let saved = try Self.runAndSave(to: directory)
        var printed = saved.printed
        for cycle in 0..<5 {
            let console = Console()
            let machine = try Machine(restoringFrom: directory, consoleOutput: console.fd)
            try machine.start(StartOptions(attachConsoleInput: false))
            let target = Self.counts(printed).count + 5
            let deadline = Date().addingTimeInterval(10)
            while Self.counts(printed + console.drain()).count < target, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
            try machine.pause()
            // The machine's RAM is a private mapping of `directory/memory`: the save writes a new file and renames
            // it over the old one, whose pages the mapping still reads.
            try machine.saveSnapshot(to: directory)
            machine.stop()
            printed += console.drain()
            let all = Self.counts(printed)
            #expect(all == Array(1...UInt64(all.count)), "cycle \(cycle): one sequence so far")
        }
        let last = try Self.restoreAndRun(from: directory)
        let all = Self.counts(printed + last.printed)
        #expect(all.count >= Self.counts(saved.printed).count + 5 * 5 + 10)
        #expect(all == Array(1...UInt64(all.count)), "one sequence across six saves")
    }

    @Test("the guest's kvm-clock continues from its saved value, or with advanceGuestClock moves on by the time spent saved")
    func clockOnRestore() throws {
        let directory = try Self.directory()
        _ = try Self.runAndSave(to: directory)
        let snapshot = try RestoredSnapshot.load(directory: directory)
        let saved = VirtualMachine.nanoseconds(of: try #require(snapshot.clock))
        Thread.sleep(forTimeInterval: 0.5)
        let kept = try Machine(restoringFrom: directory, consoleOutput: Console().fd)
        let advanced = try Machine(restoringFrom: directory, consoleOutput: Console().fd, advanceGuestClock: true)
        let keptClock = VirtualMachine.nanoseconds(of: try kept.vm.clock())
        let advancedClock = VirtualMachine.nanoseconds(of: try advanced.vm.clock())
        #expect(keptClock >= saved && keptClock < saved + 400_000_000, "continues from the saved value: +\(keptClock &- saved) ns")
        #expect(advancedClock >= saved + 500_000_000, "moved on by the time saved: +\(advancedClock &- saved) ns")
        kept.stop()
        advanced.stop()
    }

    @Test("saving needs a paused machine")
    func saveNeedsPause() throws {
        let guest = try TinyGuest(Self.counter, mode: .userMode)
        let console = Console()
        let machine = try Machine(configuration: MachineConfiguration(payload: .rawImage(RawImagePayload(path: guest.path, mode: .userMode)),
                                                                      memory: .mebibytes(32)),
                                  consoleOutput: console.fd)
        let directory = try Self.directory()
        #expect(throws: SnapshotError.notPaused(.stopped)) { try machine.saveSnapshot(to: directory) }
        try machine.start(StartOptions(attachConsoleInput: false))
        #expect(throws: SnapshotError.notPaused(.running)) { try machine.saveSnapshot(to: directory) }
        machine.stop()
        #expect(!FileManager.default.fileExists(atPath: directory + "/state"), "nothing written")
    }

    @Test("a mostly untouched guest's memory file is sparse: a 256 MiB guest writes and occupies well under 1 MiB")
    func memoryFileIsSparse() throws {
        let directory = try Self.directory()
        let saved = try Self.runAndSave(memory: .mebibytes(256), to: directory)
        #expect(saved.summary.memoryFileSize == 256 << 20)
        #expect(saved.summary.memoryBytesWritten < 1 << 20, "only the pages the guest and loader touched: \(saved.summary.memoryBytesWritten)")
        var info = stat()
        #expect(stat(directory + "/memory", &info) == 0)
        #expect(info.st_size == 256 << 20)
        #expect(Int(info.st_blocks) * 512 < 2 << 20, "the holes take no disk space: \(Int(info.st_blocks) * 512) bytes allocated")
    }

    // MARK: Refused files, named with their problem

    /// Saves once, then hands out a fresh copy of the snapshot directory per case.
    static func copyOfSnapshot(_ source: String) throws -> String {
        let copy = try directory()
        for name in ["state", "memory"] {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: copy + "/" + name)
        }
        return copy
    }

    static func restoreError(_ directory: String) -> SnapshotError? {
        do { _ = try Machine(restoringFrom: directory, consoleOutput: Console().fd); return nil } catch { return error }
    }

    @Test("corrupted, truncated, version-bumped, foreign state files and a wrong-size memory file are refused, naming the file")
    func badFilesAreRefused() throws {
        let source = try Self.directory()
        _ = try Self.runAndSave(to: source)
        let state = try [UInt8](Self.fileBytes(source + "/state"))

        // A flipped byte in the middle: the checksum no longer matches.
        var directory = try Self.copyOfSnapshot(source)
        var bytes = state
        bytes[bytes.count / 2] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/state"))
        var error = Self.restoreError(directory)
        guard case .checksumMismatch(let path, _, _)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(path == directory + "/state")
        #expect(error!.description.contains("is corrupted"))

        // Cut short.
        directory = try Self.copyOfSnapshot(source)
        try Data(state.prefix(state.count - 100)).write(to: URL(fileURLWithPath: directory + "/state"))
        error = Self.restoreError(directory)
        #expect(error == .truncated(path: directory + "/state", actual: UInt64(state.count - 100), expected: UInt64(state.count)))
        #expect(error?.description.contains("truncated") == true)

        // A newer format version.
        directory = try Self.copyOfSnapshot(source)
        bytes = state
        bytes[8] = 3
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/state"))
        error = Self.restoreError(directory)
        #expect(error == .newerVersion(path: directory + "/state", version: 3, supported: 2))
        #expect(error?.description.contains("format version 3, newer than this Swiftlet reads") == true)

        // Not a snapshot at all.
        directory = try Self.copyOfSnapshot(source)
        try Data("#!/bin/sh\necho hello\n".utf8).write(to: URL(fileURLWithPath: directory + "/state"))
        error = Self.restoreError(directory)
        guard case .notASnapshot(let foreign, _)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(foreign == directory + "/state")

        // A memory file of the wrong size.
        directory = try Self.copyOfSnapshot(source)
        #expect(truncate(directory + "/memory", 16 << 20) == 0)
        error = Self.restoreError(directory)
        #expect(error == .memory(.fileSizeMismatch(path: directory + "/memory", expected: 32 << 20, actual: 16 << 20)))

        // No memory file.
        directory = try Self.copyOfSnapshot(source)
        #expect(unlink(directory + "/memory") == 0)
        error = Self.restoreError(directory)
        guard case .memory(.file(let missing, _, _))? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(missing == directory + "/memory")
    }

    @Test("a snapshot saved on another CPU vendor's host is refused, naming both vendors; this host's own passes")
    func otherCPUVendorIsRefused() throws {
        #expect(HostCPU.vendor(ebx: 0x756E_6547, ecx: 0x6C65_746E, edx: 0x4965_6E69) == "GenuineIntel")
        #expect(HostCPU.vendor(ebx: 0x6874_7541, ecx: 0x444D_4163, edx: 0x6974_6E65) == "AuthenticAMD")
        let directory = try Self.directory()
        _ = try Self.runAndSave(to: directory)
        let snapshot = try RestoredSnapshot.load(directory: directory)
        let saved = try #require(snapshot.vcpus.first?.cpuid.first { $0.function == 0 })
        let savedVendor = HostCPU.vendor(ebx: saved.ebx, ecx: saved.ecx, edx: saved.edx)
        #expect(savedVendor == HostCPU.vendor, "the guest saw this host's vendor")
        try RestoredSnapshot.checkCPUVendor(of: snapshot.vcpus, statePath: directory + "/state")
        let other = savedVendor == "AuthenticAMD" ? "GenuineIntel" : "AuthenticAMD"
        let error = #expect(throws: SnapshotError.self) {
            try RestoredSnapshot.checkCPUVendor(of: snapshot.vcpus, statePath: directory + "/state", hostVendor: other)
        }
        #expect(error?.description.contains("saved on a host with a \(savedVendor) CPU; this host's CPU is \(other)") == true,
                "\(String(describing: error))")
    }

    @Test("a snapshot whose guest saw a CPU feature this host's KVM lacks is refused before it runs, naming the feature (unless saved in this very boot); this host's own passes")
    func missingCPUFeatureIsRefused() throws {
        let directory = try Self.directory()
        _ = try Self.runAndSave(to: directory)
        let kvm = try KVMSystem()
        let supported = try kvm.supportedCPUID()
        let available = try GuestCPUID.seenByANewGuest(try kvm.createVM().createVCPU(id: 0), supported: supported, vcpuCount: 1)
        let snapshot = try RestoredSnapshot.load(directory: directory)
        let saved = try #require(snapshot.cpuid(vcpu: 0))
        #expect(GuestCPUID.missingFeatures(saved: saved, available: available) == [], "this host's own snapshot")
        // Bits KVM sets from the guest's own CR4 and APIC base, and the ones Swiftlet sets, are not features to have.
        var dynamic = supported
        for index in dynamic.indices where dynamic[index].function == 1 {
            dynamic[index].ecx |= 1 << 27 | 1 << 31
            dynamic[index].edx |= 1 << 9 | 1 << 28
        }
        var bare = supported
        for index in bare.indices where bare[index].function == 1 { bare[index].ecx &= ~(1 << 27 | 1 << 31); bare[index].edx &= ~(1 << 9 | 1 << 28) }
        #expect(GuestCPUID.missingFeatures(saved: dynamic, available: bare) == [])

        // The state file rewritten as if saved on a host with one more leaf-7 EBX feature than this one has.
        let statePath = directory + "/" + Machine.snapshotStateFile
        var file = try SnapshotFile.read(path: statePath)
        var vcpu = try SnapshotSection.decode(VCPUSection.self, SnapshotSection.vcpu(0), from: file, path: statePath)
        let leaf7 = available.first { $0.function == 7 && $0.index == 0 }?.ebx ?? 0
        let extra = try #require((0..<32).first { leaf7 & (1 << $0) == 0 }, "leaf 7 EBX has every bit here")
        let entry = try #require(vcpu.cpuid.firstIndex { $0.function == 7 && $0.index == 0 })
        vcpu.cpuid[entry].ebx |= 1 << extra
        let position = try #require(file.sections.firstIndex { $0.name == SnapshotSection.vcpu(0) })
        file.sections[position].payload = SnapshotSection.encode(vcpu)
        // Saved in this boot, the check is skipped (HostBoot): the same CPU and KVM cannot lack what the guest saw.
        #expect(file.section(named: SnapshotSection.host) != nil, "a snapshot records the boot it was saved in")
        try file.write(path: statePath)
        #expect(Self.restoreError(directory) == nil, "saved in this boot: no feature check")
        // As if saved in another boot (or on another host): the check runs and finds the bit.
        let host = try #require(file.sections.firstIndex { $0.name == SnapshotSection.host })
        file.sections[host].payload = SnapshotSection.encode(HostSection(bootID: "00000000-0000-4000-8000-000000000000"))
        try file.write(path: statePath)

        let error = Self.restoreError(directory)
        guard case .unsupported(let message)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(message.hasPrefix(statePath + " was saved on a host whose CPU has features this host's KVM cannot give the guest"), "\(message)")
        #expect(message.contains("CPUID.(EAX=0x7,ECX=0):EBX bit \(extra)"), "\(message)")
    }

    // MARK: Timing

    /// Machine(restoringFrom:) → first KVM_RUN and → first console byte, for two RAM sizes with the same touched
    /// pages: restore maps the memory file instead of reading it, so the two should be close.
    @Test("restore time does not grow with guest memory size (32 MiB vs 1 GiB, same pages touched)")
    func restoreTiming() throws {
        var results: [(UInt64, Double, Double, Double, Double)] = []
        for mebibytes: UInt64 in [32, 1024] {
            let directory = try Self.directory()
            let began = Date()
            let saved = try Self.runAndSave(memory: .mebibytes(mebibytes), to: directory)
            let saveAndRun = Date().timeIntervalSince(began)
            var best = (Double.infinity, Double.infinity, Double.infinity)
            for _ in 0..<5 {
                let console = Console()
                let timeline = BootTimeline()
                let machine = try Machine(restoringFrom: directory, timeline: timeline, consoleOutput: console.fd)
                let built = Double(BootTimeline.now() - timeline.origin) / 1e6
                try machine.start(StartOptions(attachConsoleInput: false))
                let deadline = Date().addingTimeInterval(5)
                while timeline.elapsed(.firstConsoleByte) == nil, Date() < deadline { Thread.sleep(forTimeInterval: 0.001) }
                machine.stop()
                let entry = Double(timeline.elapsed(.firstGuestEntry) ?? 0) / 1e6
                let byte = Double(timeline.elapsed(.firstConsoleByte) ?? 0) / 1e6
                best = (min(best.0, built), min(best.1, entry), min(best.2, byte))
            }
            // Beside it: parsing the state file alone, and a floor built from the bindings alone (a VM, the memory
            // file mapped and registered, one vCPU with the saved registers, one KVM_RUN to the guest's next exit).
            var parse = Double.infinity, floor = Double.infinity
            for _ in 0..<5 {
                var began = BootTimeline.now()
                let snapshot = try RestoredSnapshot.load(directory: directory)
                parse = min(parse, Double(BootTimeline.now() - began) / 1e6)
                began = BootTimeline.now()
                let vm = try KVMSystem().createVM()
                try vm.setTSSAddress(Machine.tssAddress)
                let memory = try GuestMemory(ranges: X86MemoryLayout.ramRanges(size: snapshot.configuration.memory.bytes),
                                             mappingFile: snapshot.memoryPath)
                try vm.mapGuestMemory(memory)
                let vcpu = try vm.createVCPU(id: 0)
                try vcpu.setCPUID(snapshot.vcpus[0].cpuid)
                try vcpu.setSpecialRegistersState(snapshot.vcpus[0].specialRegisters)
                try vcpu.setRegistersState(snapshot.vcpus[0].registers)
                _ = try vcpu.run()
                floor = min(floor, Double(BootTimeline.now() - began) / 1e6)
            }
            print(String(format: "restore floor, %4llu MiB: state file parsed %.2f ms; bare VM + mapped memory + vCPU + first exit %.2f ms (best of 5)",
                         mebibytes, parse, floor))
            print("snapshot of the \(mebibytes) MiB guest: memory file \(saved.summary.memoryFileSize) bytes, \(saved.summary.memoryBytesWritten) written")
            results.append((mebibytes, best.0, best.1, best.2, saveAndRun))
            try? FileManager.default.removeItem(atPath: directory)
        }
        for (size, built, entry, byte, save) in results {
            print(String(format: "restore timing, %4llu MiB: Machine(restoringFrom:) built %.2f ms, first KVM_RUN %.2f ms, first console byte %.2f ms (best of 5); boot+run+save %.2f s",
                         size, built, entry, byte, save))
        }
        #expect(results.count == 2)
        // Generous: mapping is lazy, so 1 GiB must not cost 32× what 32 MiB does. (Within noise on a shared host.)
        #expect(results[1].2 < results[0].2 * 3 + 5, "restore to first KVM_RUN does not scale with RAM")
    }
}

/// The KVM state bindings on their own, against a VM with the in-kernel irqchip and PIT (a Linux machine's shape,
/// which `Machine` snapshots refuse for now because of virtio): every piece reads back and can be written again.
@Suite(.serialized, .enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
struct SnapshotKVMStateTests {
    @Test("irqchip (PIC master/slave, IOAPIC), PIT and clock round-trip on a VM; a vCPU's whole state round-trips")
    func stateRoundTrips() throws {
        let kvm = try KVMSystem()
        let vm = try kvm.createVM()
        try vm.createIRQChip()
        try vm.createPIT()
        var refused: [String] = []
        for chip in IRQChipID.allCases {
            do {
                let state = try vm.irqchip(chip)
                try vm.setIRQChip(chip, state)
                #expect(try vm.irqchip(chip) == state, "\(chip.name) reads back as written")
            } catch { refused.append("\(chip.name): \(error)") }
        }
        do {
            let pit = try vm.pitState()
            try vm.setPITState(pit)
        } catch { refused.append("PIT: \(error)") }
        do {
            let clock = try vm.clock()
            try vm.setClock(clock)
            #expect(VirtualMachine.nanoseconds(of: try vm.clock()) >= VirtualMachine.nanoseconds(of: clock))
        } catch { refused.append("clock: \(error)") }
        #expect(throws: KVMError.self) { try vm.setIRQChip(.ioapic, try vm.irqchip(.picMaster)) }

        let vcpu = try vm.createVCPU(id: 0)
        try vcpu.setCPUID(try kvm.supportedCPUID())
        let msrs = try kvm.msrIndexList()
        #expect(!msrs.isEmpty)
        let state = try vcpu.saveState(msrIndices: msrs, inKernelIRQChip: true)
        let restoreRefused = try vcpu.restoreState(state)
        let again = try vcpu.saveState(msrIndices: msrs, inKernelIRQChip: true)
        #expect(again.registers == state.registers)
        #expect(again.specialRegisters == state.specialRegisters)
        #expect(again.lapic == state.lapic)
        print("KVM state on this host: \(msrs.count) saveable MSRs, \(state.msrs.count) read; VM refused: \(refused); "
              + "vCPU save refused: \(state.refused); vCPU restore refused: \(restoreRefused)")
    }

    @Test("state bytes of the wrong size are refused before any ioctl")
    func wrongSizeIsRefused() {
        #expect(throws: KVMError.self) { try XSAVEState(bytes: [UInt8](repeating: 0, count: 100)) }
        #expect(throws: KVMError.self) { try RegistersState(bytes: []) }
        #expect((try? LAPICState(bytes: [UInt8](repeating: 0, count: LAPICState.size))) != nil)
    }
}
