import ArgumentParser
import Swiftlet
import SwiftletSandbox
#if canImport(Glibc)
import Glibc
#endif

extension RunCommand {
    /// `swiftlet run -d [--name NAME] ...`: the same `run`, spawned in the background with its console on a log and
    /// a socket and its API in the VM's directory; this process prints the name once the VM runs.
    func runDetached() throws {
        let request = SandboxLauncher.Request(
            name: background.name, runArguments: Self.backgroundArguments(Array(CommandLine.arguments.drop { $0 != "run" }.dropFirst())),
            vcpus: cpus, memoryMiB: Int((MemorySize(parsing: memory)?.bytes ?? 0) >> 20), addVsock: raw == nil)
        try BackgroundOptions.launch(request, failed: "did not start")
    }

    /// `run`'s arguments for the background VMM: the same, without `-d`/`--detach` and `--name`.
    static func backgroundArguments(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var skipNext = false
        for argument in arguments {
            if skipNext { skipNext = false; continue }
            switch argument {
            case "-d", "--detach": continue
            case "--name": skipNext = true; continue
            default: break
            }
            if argument.hasPrefix("--name=") { continue }
            // A cluster of short flags (`-dv`): keep the others.
            if argument.hasPrefix("-"), !argument.hasPrefix("--"), argument.count > 2, argument.dropFirst().allSatisfy(\.isLetter) {
                let others = argument.dropFirst().filter { $0 != "d" }
                if !others.isEmpty { result.append("-" + others) }
                continue
            }
            result.append(argument)
        }
        return result
    }

    /// This binary's path (what `ps` on the host then shows), from /proc/self/exe.
    static func ownExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
