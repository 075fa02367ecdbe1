import Foundation
import Swiftlet
import SwiftletKit
import Synchronization
import Testing

/// A flat guest image assembled from a few lines of AT&T assembly with the system's binutils, linked at 0x1000
/// (where a raw image is entered). CPL 3 code (`.user`) runs natively even on nested-PVM hosts.
struct TinyImage {
    let path: String

    init(_ source: String, mode: RawImageBootLoader.Mode) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftletkit-tiny-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let asm = directory.appendingPathComponent("guest.S").path, object = directory.appendingPathComponent("guest.o").path
        let linked = directory.appendingPathComponent("guest.elf").path, image = directory.appendingPathComponent("guest.bin").path
        try (".text\n.globl _start\n_start:\n" + (mode == .real ? ".code16\n" : ".code64\n") + source + "\n")
            .write(toFile: asm, atomically: true, encoding: .utf8)
        try Self.tool("/usr/bin/as", ["--64", "-o", object, asm])
        try Self.tool("/usr/bin/ld", ["-m", "elf_x86_64", "-Ttext=0x1000", "-e", "_start", "-o", linked, object])
        try Self.tool("/usr/bin/objcopy", ["-O", "binary", "-j", ".text", linked, image])
        path = image
    }

    struct ToolFailed: Error { let command: String }

    static func tool(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ToolFailed(command: ([executable] + arguments).joined(separator: " ")) }
    }

    static func putChar(_ character: Character) -> String { "mov $0x3f8, %dx\nmov $\(character.asciiValue!), %al\nout %al, (%dx)\n" }

    /// Counts down 2^22, prints '.', forever.
    static let ticker = "2:\nmov $0x400000, %ecx\n1:\ndec %ecx\njnz 1b\n" + putChar(".") + "jmp 2b"
}

/// Records what a delegate is told.
final class RecordingDelegate: VirtualMachineDelegate {
    let events = Mutex<[String]>([])
    func guestDidStop(_ virtualMachine: VirtualMachine) { events.withLock { $0.append("guestDidStop") } }
    func virtualMachine(_ virtualMachine: VirtualMachine, didStopWithError error: VirtualMachineError) {
        events.withLock { $0.append("didStopWithError: \(error)") }
    }
}

/// The lifecycle of `VirtualMachine` on real KVM with tiny raw guests: every transition, the state stream, the
/// `can...` properties, refused transitions, a second start, the delegate for each way a guest ends.
@Suite(.serialized, .enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
struct LifecycleTests {
    static func machine(_ source: String, mode: RawImageBootLoader.Mode, output: ConsoleConfiguration.Output = .discard) throws -> VirtualMachine {
        var configuration = VirtualMachineConfiguration()
        configuration.bootLoader = .rawImage(RawImageBootLoader(imagePath: try TinyImage(source, mode: mode).path, mode: mode))
        configuration.memorySize = 32 << 20
        configuration.console.output = output
        return try VirtualMachine(configuration: configuration)
    }

    @Test("start → running, pause → paused, resume → running, stop → stopped: the stream reports each state in order")
    func transitionsAndStream() async throws {
        let vm = try Self.machine(TinyImage.ticker, mode: .user)
        // Collects until the VM has run and stopped again (subscribed now: the stream starts with the current state).
        let updates = vm.stateUpdates
        let collected = Task {
            var states: [VirtualMachine.State] = []
            for await state in updates {
                states.append(state)
                if state == .stopped, states.contains(.running) { break }
            }
            return states
        }
        #expect(vm.state == .stopped && vm.canStart)
        try await vm.start()
        #expect(vm.state == .running)
        #expect(vm.canPause && vm.canStop && vm.canRequestStop && !vm.canResume && !vm.canStart)
        try await vm.pause()
        #expect(vm.state == .paused)
        #expect(vm.canResume && vm.canStop && !vm.canPause && !vm.canRequestStop)
        try await vm.resume()
        #expect(vm.state == .running)
        try await vm.stop()
        #expect(vm.state == .stopped)
        #expect(vm.stopReason == .stopRequested)
        #expect(vm.canStart && !vm.canStop)
        let states = await collected.value
        #expect(states == [.stopped, .starting, .running, .pausing, .paused, .resuming, .running, .stopping, .stopped], "\(states)")
    }

    @Test("transitions not allowed now throw invalidState and change nothing")
    func refusedTransitions() async throws {
        let vm = try Self.machine(TinyImage.ticker, mode: .user)
        await #expect(throws: VirtualMachineError.invalidState(operation: "pause", state: .stopped)) { try await vm.pause() }
        await #expect(throws: VirtualMachineError.invalidState(operation: "stop", state: .stopped)) { try await vm.stop() }
        #expect(throws: VirtualMachineError.invalidState(operation: "request a stop of", state: .stopped)) { try vm.requestStop() }
        try await vm.start()
        await #expect(throws: VirtualMachineError.invalidState(operation: "start", state: .running)) { try await vm.start() }
        await #expect(throws: VirtualMachineError.invalidState(operation: "resume", state: .running)) { try await vm.resume() }
        try await vm.pause()
        await #expect(throws: VirtualMachineError.invalidState(operation: "pause", state: .paused)) { try await vm.pause() }
        #expect(throws: VirtualMachineError.invalidState(operation: "request a stop of", state: .paused)) { try vm.requestStop() }
        #expect(vm.state == .paused)
        try await vm.stop()
        #expect(vm.state == .stopped)
    }

    @Test("a stopped VM starts again (a fresh machine), and its console output reaches the file each time")
    func restart() async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("swiftletkit-console-\(UUID().uuidString)").path
        let vm = try Self.machine(TinyImage.putChar("h") + TinyImage.putChar("i") + "hlt", mode: .real, output: .file(path: log))
        try await vm.start()
        let first = await vm.waitUntilStopped()
        guard case .halted = first else { Issue.record("expected a halt, got \(first)"); return }
        #expect(vm.state == .stopped && vm.canStart)
        try await vm.start()
        let second = await vm.waitUntilStopped()
        guard case .halted = second else { Issue.record("expected a halt, got \(second)"); return }
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "hihi")
    }

    @Test("the delegate: a reset is guestDidStop, a halt with nothing to wake it an error, a stop() by the program neither")
    func delegate() async throws {
        let reset = try Self.machine("mov $0xfe, %al\nout %al, $0x64\nhlt", mode: .real)
        let resetDelegate = RecordingDelegate()
        reset.delegate = resetDelegate
        try await reset.start()
        #expect(await reset.waitUntilStopped() == .reset)
        #expect(resetDelegate.events.withLock { $0 } == ["guestDidStop"])

        let halt = try Self.machine("hlt", mode: .real)
        let haltDelegate = RecordingDelegate()
        halt.delegate = haltDelegate
        try await halt.start()
        let reason = await halt.waitUntilStopped()
        #expect(haltDelegate.events.withLock { $0 } == ["didStopWithError: \(VirtualMachineError.stopped(reason))"])
        #expect(VirtualMachineError.stopped(reason).description.hasPrefix("the virtual machine stopped: vCPU 0 halted at rip 0x"))

        let stopped = try Self.machine(TinyImage.ticker, mode: .user)
        let stoppedDelegate = RecordingDelegate()
        stopped.delegate = stoppedDelegate
        try await stopped.start()
        try await stopped.stop()
        #expect(stoppedDelegate.events.withLock { $0 } == [])
    }

    @Test("a kernel that is not one fails start with invalidConfiguration (notAKernel), and the VM stays stopped")
    func startFailure() async throws {
        var configuration = VirtualMachineConfiguration()
        configuration.bootLoader = .linux(LinuxBootLoader(kernelPath: try ConfigurationTests.fakeKernel()))
        configuration.memorySize = 64 << 20
        configuration.console.output = .discard
        let vm = try VirtualMachine(configuration: configuration)
        do {
            try await vm.start()
            Issue.record("a file of NOPs started as a kernel")
        } catch {
            guard case .invalidConfiguration(.notAKernel) = error else { Issue.record("got \(error)"); return }
        }
        #expect(vm.state == .stopped)
        #expect(vm.canStart)
    }
}
