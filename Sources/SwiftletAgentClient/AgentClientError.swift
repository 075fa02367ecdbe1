import AgentCore
import AgentProtocol

/// What went wrong talking to a guest's agent, each with a sentence for the person at the terminal.
public enum AgentClientError: Error, Sendable, CustomStringConvertible {
    /// The VM's vsock socket cannot be reached: no VM, or one without `--vsock`.
    case vmSocketUnavailable(path: String, SystemCallError)
    /// The VM is there but nothing accepted on the port (or answered hello) within the wait.
    case noAgent(port: UInt32, waited: Duration, lastProblem: String)
    /// The connection failed or closed mid-request (a guest that died mid-exec, an agent that crashed).
    case connection(ChannelError)
    /// The agent reported a failure (a missing path, a full disk, ...).
    case agent(AgentError)
    /// A failure on this side of a copy (a local path).
    case local(CopyFailure)
    case unexpectedMessage(String)

    public var description: String {
        switch self {
        case let .vmSocketUnavailable(path, error):
            "cannot connect to the VM's vsock socket \(path): \(SystemCallError.text(for: error.errno)) (is the VM running with --vsock?)"
        case let .noAgent(port, waited, lastProblem):
            "no agent answering on vsock port \(port): is swiftlet-agent in the guest? (waited \(waited.components.seconds) s; \(lastProblem))"
        case let .connection(error):
            error == .closed ? "the connection to the guest's agent was lost (did the guest stop?)" : "connection to the guest's agent: \(error)"
        case let .agent(error): error.message
        case let .local(failure): failure.message
        case let .unexpectedMessage(what): "the guest's agent sent an unexpected \(what) message"
        }
    }
}
