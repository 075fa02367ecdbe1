import ArgumentParser
import SwiftletAgentClient
#if canImport(SwiftletSandbox)
import SwiftletSandbox
#endif

/// Where `exec` and `cp` find a VM's agent: its vsock Unix socket, named directly (`--vsock-socket`) or looked up
/// by the VM's name in the state directory of named VMs (`swiftlet run -d --name`).
struct AgentEndpointOptions: ParsableArguments {
    @Option(name: .customLong("vsock-socket"), help: ArgumentHelp(
        "The VM's vsock Unix socket (its --vsock socket=PATH), instead of looking NAME up.", valueName: "path"))
    var vsockSocket: String?

    @Option(help: "The agent's vsock port.")
    var port: UInt32 = 1024

    @Option(name: .customLong("agent-timeout"), help: ArgumentHelp("Seconds to wait for the agent to answer.", valueName: "seconds"))
    var agentTimeout: Double = 10

    /// The vsock socket of the VM called `name`.
    func socketPath(name: String) throws -> String {
        if let vsockSocket { return vsockSocket }
        return try NamedVMLookup.vsockSocket(name: name)
    }

    func connect(name: String) throws -> AgentClient {
        let path = try socketPath(name: name)
        return try AgentClient.connect(socketPath: path, port: port, timeout: .milliseconds(Int64(agentTimeout * 1000)))
    }
}

/// The seam to the named VMs' state directory (`SwiftletSandbox`, `swiftlet run -d --name`): a VM's name → its
/// vsock socket. Built without that module, only `--vsock-socket` finds a VM.
enum NamedVMLookup {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func vsockSocket(name: String) throws -> String {
        #if canImport(SwiftletSandbox)
        let paths: SandboxPaths
        do { paths = try SandboxDirectory.standard().existing(name: name) } catch { throw Failure(description: "\(error)") }
        guard paths.isRunning else { throw Failure(description: "\(SandboxError.notRunning(name: name))") }
        guard let socket = paths.readRecord()?.vsockSocket else {
            throw Failure(description: "the VM '\(name)' has no vsock device, so no agent can be reached (start it with --vsock)")
        }
        return socket
        #else
        throw Failure(description: "no VM named '\(name)' (name its vsock socket with --vsock-socket PATH)")
        #endif
    }
}
