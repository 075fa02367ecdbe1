import ArgumentParser
import Swiftlet

struct SwiftletCommand: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "swiftlet",
        abstract: "Run Linux guests on KVM.",
        discussion: """
            Swiftlet boots an unmodified x86-64 Linux kernel through /dev/kvm with the guest's serial console on \
            this terminal. Type Ctrl-A X to stop the guest.
            """,
        version: version,
        subcommands: [RunCommand.self, ServeCommand.self, PsCommand.self, AttachCommand.self, LogsCommand.self, PauseCommand.self,
                      ResumeCommand.self, StopCommand.self, KillCommand.self, RmCommand.self, InspectCommand.self,
                      ExecCommand.self, CopyCommand.self, SnapshotCommand.self, RestoreCommand.self, MergeMemoryCommand.self,
                      JailCommand.self],
        defaultSubcommand: nil
    )

    /// `swiftlet` alone is a usage error: the help goes to stderr and the status is 64, as for any other.
    func run() throws {
        printError(Self.helpMessage())
        throw ExitCode(RunCommand.usageErrorStatus)
    }
}
