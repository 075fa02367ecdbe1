/// Commands and files through the guest agent (swiftlet-agent in the guest, reached over the VM's vsock device):
/// the counterpart of apple/containerization's process API for a whole VM. Each call opens its own connection,
/// waits up to `GuestAgent.timeout` (10 s) for the agent to answer, and throws `.noAgent` ("no agent answering on
/// vsock port 1024: is swiftlet-agent in the guest?") after that. While the guest boots, `agent?.waitUntilReady`
/// waits longer.
extension VirtualMachine {
    /// The agent of this VM (through its socket device); nil when the configuration has none.
    public var agent: GuestAgent? {
        configuration.socketDevices.first.map { GuestAgent(socketPath: $0.socketPath) }
    }

    /// Runs a command in the guest to its end: its exit status and captured output.
    public func exec(_ process: ProcessConfiguration) async throws(GuestAgentError) -> ExecResult {
        try await runningAgent().exec(process)
    }

    /// Runs `executable` with `arguments` in the guest, e.g. `try await vm.exec("uname", ["-a"])`.
    public func exec(_ executable: String, _ arguments: [String] = [], environment: [String: String] = [:],
                     workingDirectory: String? = nil, standardInput: StandardInput = .none) async throws(GuestAgentError) -> ExecResult {
        try await runningAgent().exec(ProcessConfiguration(executable: executable, arguments: arguments, environment: environment,
                                                           workingDirectory: workingDirectory, standardInput: standardInput))
    }

    /// Copies a file or directory between this host and the guest:
    /// `try await vm.copy(.host("/tmp/data"), to: .guest("/root/"))`. Returns the bytes of file data copied.
    @discardableResult
    public func copy(_ source: CopyLocation, to destination: CopyLocation) async throws(GuestAgentError) -> UInt64 {
        try await runningAgent().copy(source, to: destination)
    }

    private func runningAgent() throws(GuestAgentError) -> GuestAgent {
        guard let agent else { throw .noSocketDevice }
        let state = state
        guard state == .running else { throw .notRunning(state) }
        return agent
    }
}
