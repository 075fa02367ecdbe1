/// Where a machine is in its life. Virtualization.framework's states are the model:
///
///     stopped ──start──▶ starting ──▶ running ──pause──▶ pausing ──▶ paused
///                                        ▲                              │
///                                        └──── running ◀── resuming ◀──resume
///     running / paused ──stop, or the guest ends──▶ stopping ──▶ stopped
///     any ──a host failure while changing state──▶ error
///
/// `stopped` is both "built, not started yet" and "ended"; `Machine.stopReason` tells them apart. What each
/// state allows is `Machine`'s table (docs/api.md repeats it).
public enum MachineState: String, Sendable, Equatable, Codable, CaseIterable, CustomStringConvertible {
    case stopped
    case starting
    case running
    case pausing
    case paused
    case resuming
    case stopping
    case error

    public var description: String { rawValue }
}

/// A lifecycle request the machine cannot honour in its current state, or that failed on the host.
public enum LifecycleError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `operation` is not allowed in `state` (e.g. pause while stopped).
    case invalidTransition(operation: String, state: MachineState)
    /// The vCPUs did not all park (or resume) within the time allowed; the machine is left in `.error`.
    case timedOut(operation: String, detail: String)
    /// A host call failed while changing state.
    case hostFailure(operation: String, detail: String)

    public var description: String {
        switch self {
        case let .invalidTransition(operation, state):
            return "cannot \(operation) a machine that is \(state)"
        case let .timedOut(operation, detail): return "\(operation) timed out: \(detail)"
        case let .hostFailure(operation, detail): return "\(operation) failed: \(detail)"
        }
    }
}
