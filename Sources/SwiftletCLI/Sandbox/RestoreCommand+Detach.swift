import ArgumentParser
import Swiftlet
import SwiftletSandbox

extension RestoreCommand {
    /// `swiftlet restore -d [--name NAME] DIR ...`: the same restore, spawned in the background as `run -d` spawns
    /// a boot (console on a log and a socket, API in the VM's directory); this process prints the name once the
    /// restored VM runs. A snapshot with a vsock device gets its socket moved into the VM's directory unless
    /// --vsock-socket says otherwise, so `swiftlet exec NAME` reaches the agent.
    func restoreDetached() throws {
        let saved: MachineConfiguration
        do {
            saved = try Machine.configuration(ofSnapshot: directory)
        } catch {
            printError("swiftlet: \(error)")
            throw ExitCode.failure
        }
        let arguments = RunCommand.backgroundArguments(Array(CommandLine.arguments.drop { $0 != "restore" }.dropFirst()))
        let request = SandboxLauncher.Request(name: background.name, command: .restore, runArguments: arguments, vcpus: saved.vcpuCount,
                                              memoryMiB: Int(saved.memory.bytes >> 20), addVsock: saved.vsock != nil)
        try BackgroundOptions.launch(request, failed: "was not restored")
    }
}
