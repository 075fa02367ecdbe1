import ArgumentParser
import Swiftlet
import SwiftletSandbox

/// `-d`/`--name` of `run` and `restore`, and the hidden options with which `SandboxLauncher` hands the spawned VMM
/// its state directory and lock: one set of options and checks for both commands.
struct BackgroundOptions: ParsableArguments {
    @Flag(name: [.customShort("d"), .customLong("detach")], help: "Run the VM in the background under a name (see --name); print the name once it is up. Then: swiftlet ps, attach, logs, exec, stop, rm.")
    var detach = false

    @Option(help: ArgumentHelp("With -d: the VM's name (letters, digits, _ . -; default: a generated vm-XXXXXX).", valueName: "name"))
    var name: String?

    /// Set by `SandboxLauncher` for the VMM it spawns: the VM's state directory and the descriptor of its lock.
    @Option(name: .customLong("sandbox-dir"), help: .hidden)
    var sandboxDirectory: String?

    @Option(name: .customLong("sandbox-lock-fd"), help: .hidden)
    var sandboxLockDescriptor: Int32?

    /// The checks both commands share; `apiSocket` is the command's own --api-sock.
    func validate(apiSocket: String?) throws {
        if name != nil, !detach { throw ValidationError("--name names a VM run in the background: add -d") }
        if let name { try SandboxDirectory.validate(name: name) }
        if detach, apiSocket != nil { throw ValidationError("-d puts the API socket in the VM's directory (swiftlet inspect shows it): drop --api-sock") }
        if (sandboxDirectory == nil) != (sandboxLockDescriptor == nil) { throw ValidationError("--sandbox-dir and --sandbox-lock-fd go together") }
    }

    /// In the spawned VMM: takes over the VM's directory (lock, console relay, exit status) before anything runs.
    func adoptSandboxDirectory() throws {
        guard let sandboxDirectory, let sandboxLockDescriptor else { return }
        do {
            try SandboxVMM.adopt(directory: sandboxDirectory, lockDescriptor: sandboxLockDescriptor)
        } catch {
            printError("swiftlet: \(error)")
            throw ExitCode.failure
        }
    }

    /// In the launching process: starts `request` in the background and prints the VM's name once it runs; a VMM
    /// that ended first makes this process end with its status and the end of its log (`failed` says what did
    /// not happen: "did not start", "was not restored").
    static func launch(_ request: SandboxLauncher.Request, failed: String) throws {
        let outcome: SandboxLauncher.Outcome
        do {
            outcome = try SandboxLauncher.launch(request, executable: RunCommand.ownExecutable())
        } catch {
            printError("swiftlet: \(error)")
            throw ExitCode.failure
        }
        switch outcome {
        case let .running(name, _):
            print(name)
        case let .exited(name, status, log):
            printError("swiftlet: the VM '\(name)' \(failed) (status \(status)):\n\(log)")
            // A VMM that never ran leaves nothing worth keeping but its log, shown above: the name is free again.
            if status != 124 { try? SandboxDirectory.standard().remove(name: name) }
            throw ExitCode(status == 0 ? 1 : status)
        }
    }
}
