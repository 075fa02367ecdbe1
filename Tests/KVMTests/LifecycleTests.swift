import Foundation
import Testing
@testable import Swiftlet

/// The machine's lifecycle on real KVM, with a tiny guest that prints a '.' on COM1 about every 10 ms from user
/// mode (CPL 3 runs natively even on nested-PVM hosts). Paused, it must print nothing and its vCPU thread must
/// use no CPU; resumed, it goes on; stopped, every thread is gone.
@Suite(.serialized, .enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
struct LifecycleTests {
    /// A guest that counts down 2^22 in a register, prints '.', and starts over, forever.
    static let ticker = """
        2:
        mov $0x400000, %ecx
        1:
        dec %ecx
        jnz 1b
        \(Snippet.putChar("."))
        jmp 2b
        """

    /// A started ticking machine, its console pipe's read end (non-blocking), and a way to count what arrived.
    final class Ticking {
        let machine: Machine
        let output: Pipe
        private(set) var received = 0

        init() throws {
            let guest = try TinyGuest(LifecycleTests.ticker, mode: .userMode)
            output = Pipe()
            _ = fcntl(output.fileHandleForReading.fileDescriptor, F_SETFL, O_NONBLOCK)
            machine = try Machine(configuration: MachineConfiguration(payload: .rawImage(RawImagePayload(path: guest.path, mode: .userMode)),
                                                                      memory: .mebibytes(32)),
                                  consoleOutput: output.fileHandleForWriting.fileDescriptor)
        }

        /// Bytes the guest printed since the last call.
        func drain() -> Int {
            var buffer = [UInt8](repeating: 0, count: 65536)
            var total = 0
            while true {
                let count = read(output.fileHandleForReading.fileDescriptor, &buffer, buffer.count)
                if count <= 0 { break }
                total += count
            }
            received += total
            return total
        }

        /// Lets the output already printed reach the pipe (the console's ring empties, then its drain thread's
        /// last write lands), and discards it.
        func settle() {
            for _ in 0..<500 where machine.consoleOutput.pendingBytes > 0 { Thread.sleep(forTimeInterval: 0.01) }
            Thread.sleep(forTimeInterval: 0.1)
            _ = drain()
        }

        /// Waits (up to 10 s: CI's parallel run can keep the vCPU thread off the cores for a while) until the
        /// guest prints something; the bytes that came.
        func waitForOutput() -> Int {
            for _ in 0..<100 {
                Thread.sleep(forTimeInterval: 0.1)
                let count = drain()
                if count > 0 { return count }
            }
            return 0
        }
    }

    /// CPU time (user + system clock ticks) of this process's thread named `name`.
    static func cpuTicks(ofThread name: String) -> Int? {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return nil }
        for task in tasks {
            guard let comm = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8),
                  comm.trimmingCharacters(in: .whitespacesAndNewlines) == name,
                  let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // Fields after the command name: state is field 3; utime and stime are fields 14 and 15.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
            return user + system
        }
        return nil
    }

    @Test("a new machine is stopped; start → running; pause → paused: no output and no CPU; resume → running: output again; stop → stopped")
    func pauseStopsTheGuestAndResumeContinuesIt() throws {
        let ticking = try Ticking()
        let machine = ticking.machine
        #expect(machine.state == .stopped)
        // A vCPU thread name no other test uses: the other suites' machines run in this process at the same time,
        // and their "vcpu0" threads once made this one look alive after its stop (CI's parallel unit phase).
        try machine.start(StartOptions(attachConsoleInput: false, vcpuThreadPrefix: "lifecycle-vcpu"))
        #expect(machine.state == .running)
        #expect(ticking.waitForOutput() > 0, "the guest prints while running")

        try machine.pause()
        #expect(machine.state == .paused)
        // What the guest printed before the pause may still be on its way to the pipe (the console's drain
        // thread writes it): let it arrive before counting from zero.
        ticking.settle()
        let ticksAtPause = Self.cpuTicks(ofThread: "lifecycle-vcpu0")
        Thread.sleep(forTimeInterval: 0.5)
        #expect(ticking.drain() == 0, "a paused guest prints nothing")
        let ticksLater = Self.cpuTicks(ofThread: "lifecycle-vcpu0")
        #expect(ticksAtPause != nil)
        // One clock tick is 10 ms; a spinning vCPU would use ~50 in half a second.
        #expect((ticksLater ?? 0) - (ticksAtPause ?? 0) <= 1, "a paused vCPU uses no CPU")

        try machine.resume()
        #expect(machine.state == .running)
        #expect(ticking.waitForOutput() > 0, "the guest goes on after resume")

        let reason = machine.stop()
        #expect(reason == .stopRequested)
        #expect(machine.state == .stopped)
        #expect(machine.stopReason == .stopRequested)
        #expect(Self.cpuTicks(ofThread: "lifecycle-vcpu0") == nil, "the vCPU thread is gone")
    }

    @Test("transitions not allowed in the current state throw and change nothing")
    func invalidTransitions() throws {
        let ticking = try Ticking()
        let machine = ticking.machine
        #expect(throws: LifecycleError.invalidTransition(operation: "pause", state: .stopped)) { try machine.pause() }
        #expect(throws: LifecycleError.invalidTransition(operation: "resume", state: .stopped)) { try machine.resume() }
        try machine.start(StartOptions(attachConsoleInput: false))
        #expect(throws: LifecycleError.invalidTransition(operation: "start", state: .running)) { try machine.start() }
        #expect(throws: LifecycleError.invalidTransition(operation: "resume", state: .running)) { try machine.resume() }
        try machine.pause()
        #expect(throws: LifecycleError.invalidTransition(operation: "pause", state: .paused)) { try machine.pause() }
        #expect(machine.state == .paused)
        machine.stop()
        #expect(throws: LifecycleError.invalidTransition(operation: "start", state: .stopped)) { try machine.start() }
        #expect(throws: LifecycleError.invalidTransition(operation: "pause", state: .stopped)) { try machine.pause() }
    }

    @Test("200 pause/resume cycles in a row leave the guest running; a stop while paused ends it")
    func manyCycles() throws {
        let ticking = try Ticking()
        let machine = ticking.machine
        try machine.start(StartOptions(attachConsoleInput: false))
        for _ in 0..<200 {
            try machine.pause()
            try machine.resume()
        }
        _ = ticking.drain()
        #expect(ticking.waitForOutput() > 0)
        try machine.pause()
        #expect(machine.stop() == .stopRequested)
        #expect(machine.state == .stopped)
    }

    @Test("a vCPU that finds immediate_exit set with no pause wanted (a pause resumed before it got there) clears it and runs on")
    func staleImmediateExitIsCleared() throws {
        let ticking = try Ticking()
        let machine = ticking.machine
        try machine.start(StartOptions(attachConsoleInput: false))
        #expect(ticking.waitForOutput() > 0)
        // What a pause leaves behind when its resume overtakes the vCPU: immediate_exit set, no pause requested.
        // Before the fix KVM_RUN returned EINTR forever and the guest printed nothing more.
        for vcpu in machine.vcpus { vcpu.requestImmediateExit(true) }
        // Past the vCPU's next exit (one '.' takes ~10 ms), then what it printed before is let through.
        Thread.sleep(forTimeInterval: 0.2)
        ticking.settle()
        #expect(ticking.waitForOutput() > 0, "the guest runs on")
        #expect(machine.state == .running)
        machine.stop()
    }

    @Test("state changes are observable as a stream that ends when the machine ends")
    func stateStream() async throws {
        let ticking = try Ticking()
        let machine = ticking.machine
        let updates = machine.stateUpdates()
        try await machine.start(StartOptions(attachConsoleInput: false))
        try await machine.pause()
        try await machine.resume()
        _ = await machine.stop()
        var seen: [MachineState] = []
        for await state in updates { seen.append(state) }
        #expect(seen == [.stopped, .starting, .running, .pausing, .paused, .resuming, .running, .stopping, .stopped])
    }

    @Test("a machine stopped before it started ends at once with stopRequested")
    func stopBeforeStart() throws {
        let ticking = try Ticking()
        #expect(ticking.machine.stop() == .stopRequested)
        #expect(throws: LifecycleError.self) { try ticking.machine.start(StartOptions(attachConsoleInput: false)) }
    }
}
