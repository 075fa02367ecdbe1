import ArgumentParser
import SwiftletAgentClient
#if canImport(Glibc)
import Glibc
#endif

/// `swiftlet cp NAME:/path LOCAL` and `swiftlet cp LOCAL NAME:/path`: copies files and directories between this
/// host and a VM through its agent, streamed, modes and modification times kept. As with `docker cp`, a
/// destination that is an existing directory receives the source under its own name.
struct CopyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cp",
        abstract: "Copy files or directories between this host and a running VM.",
        discussion: """
            One side is NAME:PATH (a path in the VM called NAME), the other a local path. With --vsock-socket, \
            NAME may be empty (:PATH).
            """)

    @OptionGroup var endpoint: AgentEndpointOptions

    @Argument(help: ArgumentHelp("The source: NAME:PATH or a local path.", valueName: "source"))
    var source: String

    @Argument(help: ArgumentHelp("The destination: NAME:PATH or a local path.", valueName: "destination"))
    var destination: String

    /// NAME:PATH splits at the first colon when what follows it is an absolute path (a local path with a colon
    /// in it is written ./a:b).
    static func guestPath(_ argument: String) -> (name: String, path: String)? {
        guard let colon = argument.firstIndex(of: ":"), !argument[..<colon].contains("/") else { return nil }
        let path = String(argument[argument.index(after: colon)...])
        guard path.hasPrefix("/") else { return nil }
        return (String(argument[..<colon]), path)
    }

    func validate() throws {
        switch (Self.guestPath(source), Self.guestPath(destination)) {
        case (nil, nil): throw ValidationError("one side must be NAME:/path (a path in the VM)")
        case (_?, _?): throw ValidationError("copying between two VMs is not supported: one side must be a local path")
        default: break
        }
    }

    func run() throws {
        do {
            if let guest = Self.guestPath(source) {
                let client = try endpoint.connect(name: guest.name)
                try client.copyOut(source: guest.path, to: destination)
            } else if let guest = Self.guestPath(destination) {
                let client = try endpoint.connect(name: guest.name)
                try client.copyIn(localPath: source, to: guest.path)
            }
        } catch let error as AgentClientError {
            printError("swiftlet: cp: \(error)")
            throw ExitCode.failure
        } catch let error as NamedVMLookup.Failure {
            printError("swiftlet: \(error)")
            throw ExitCode.failure
        }
    }
}
