// swiftlet-example: boots the default guest (scripts/setup prepares it) with its agent, runs a command in it
// through SwiftletKit, prints the command's output and exit status, and stops the VM.
//
//     swift build --product swiftlet-example
//     .build/debug/swiftlet-example                     # runs `uname -a`
//     .build/debug/swiftlet-example cat /proc/cpuinfo   # or any command
//     .build/debug/swiftlet-example --console           # with the guest's console on stderr
//
// It needs a /dev/kvm on which a guest's user space runs (real hardware virtualization, or scripts/testhost).
import SwiftletKit
#if canImport(Glibc)
import Glibc
#endif

/// Says when the guest stops on its own (Virtualization.framework's delegate pattern).
final class Observer: VirtualMachineDelegate {
    func guestDidStop(_ virtualMachine: VirtualMachine) {
        print("delegate: the guest stopped")
    }

    func virtualMachine(_ virtualMachine: VirtualMachine, didStopWithError error: VirtualMachineError) {
        print("delegate: the VM stopped with an error: \(error)")
    }
}

func printError(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    printError("swiftlet-example: \(message)\n")
    exit(1)
}

var arguments = Array(CommandLine.arguments.dropFirst())
let showConsole = arguments.first == "--console"
if showConsole { arguments.removeFirst() }
let command = arguments.isEmpty ? ["uname", "-a"] : arguments
let clock = ContinuousClock()

var configuration: VirtualMachineConfiguration
do {
    configuration = try VirtualMachineConfiguration.defaultGuest()
} catch {
    fail("\(error)")
}
configuration.cpuCount = 1
configuration.memorySize = 512 << 20
configuration.console.output = showConsole ? .standardError : .discard
do {
    try configuration.validate()
} catch {
    fail("invalid configuration: \(error)")
}

let vm: VirtualMachine
do {
    vm = try VirtualMachine(configuration: configuration)
} catch {
    fail("\(error)")
}
let observer = Observer()
vm.delegate = observer

let began = clock.now
do {
    try await vm.start()
} catch {
    fail("start: \(error)")
}
print("started: \(vm.state), \(configuration.cpuCount) vCPU, \(configuration.memorySize >> 20) MiB")

// The guest boots on its own; its agent answers once /init has started it.
guard let agent = vm.agent else { fail("no socket device") }
do {
    try await agent.waitUntilReady(timeout: .seconds(300))
} catch {
    fail("\(error)")
}
print("agent ready after \(began.duration(to: clock.now).formatted)")

print("$ \(command.joined(separator: " "))")
let result: ExecResult
do {
    let execBegan = clock.now
    result = try await vm.exec(command[0], Array(command.dropFirst()))
    printError("(exec took \(execBegan.duration(to: clock.now).formatted))\n")
} catch {
    fail("exec: \(error)")
}
print(result.standardOutputText, terminator: "")
if !result.standardError.isEmpty { printError(result.standardErrorText) }
if let reason = result.failureReason { print("could not run: \(reason)") }
print("exit status: \(result.exitCode)")

// Ask the guest to shut down (Ctrl-Alt-Del: the default guest powers off); stop it outright if it has not
// within 30 s.
do {
    try vm.requestStop()
} catch {
    fail("requestStop: \(error)")
}
let stopped = await withTaskGroup(of: Bool.self) { group in
    group.addTask { await vm.waitUntilStopped(); return true }
    group.addTask {
        try? await Task.sleep(for: .seconds(30))
        if !Task.isCancelled { try? await vm.stop() }
        return false
    }
    let first = await group.next() ?? false
    group.cancelAll()
    return first
}
print("\(stopped ? "" : "no power-off within 30 s: ")stopped: \(vm.stopReason.map { "\($0)" } ?? "?") (state \(vm.state))")
exit(result.exitCode)

extension Duration {
    /// "38.2 s", "41 ms".
    var formatted: String {
        let milliseconds = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        return milliseconds < 1000 ? "\(milliseconds) ms" : "\(milliseconds / 1000).\((milliseconds % 1000) / 100) s"
    }
}
