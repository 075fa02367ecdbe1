import ArgumentParser
import Swiftlet

/// The seccomp flags `run`, `serve` and Firecracker mode share (docs/security.md). Firecracker's own spelling,
/// `--no-seccomp`, turns filtering off; `--seccomp-level` chooses what a refused call does.
struct SeccompOptions: ParsableArguments {
    /// On: every test, end-to-end scenarios included, passes with the filters on (docs/security.md: how that was checked).
    static let defaultLevel = Level.trap

    enum Level: String, ExpressibleByArgument, CaseIterable {
        /// No filters.
        case off
        /// A refused call prints which system call and which thread kind on stderr, then exits with status 159.
        case trap
        /// A refused call kills the process at once (SECCOMP_RET_KILL_PROCESS, Firecracker's default).
        case kill
    }

    @Option(name: .customLong("seccomp-level"),
            help: ArgumentHelp("Seccomp filters per thread: off, trap (a refused system call is named on stderr, exit 159) or kill (killed at once, as Firecracker). Default: \(defaultLevel.rawValue).",
                               valueName: "level"))
    var level: Level?

    @Flag(name: .customLong("no-seccomp"), help: "No seccomp filters (Firecracker's flag).")
    var noSeccomp = false

    /// Tests only: the first thread of this kind makes a forbidden call once its filter is on.
    @Option(name: .customLong("seccomp-probe"), help: .hidden)
    var probe: String?

    func validate() throws {
        if let probe, SeccompThreadKind(rawValue: probe) == nil {
            throw ValidationError("--seccomp-probe \(probe): one of \(SeccompThreadKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if noSeccomp, let level, level != .off { throw ValidationError("--no-seccomp and --seccomp-level \(level.rawValue) contradict each other") }
    }

    /// Sets the process's seccomp configuration before any machine starts.
    func apply() {
        Seccomp.probe(probe.flatMap(SeccompThreadKind.init(rawValue:)))
        Self.configure(noSeccomp ? .off : (level ?? Self.defaultLevel))
    }

    /// What `apply()` does when no seccomp option was given (`RestoreFastPath`).
    static func applyDefault() {
        configure(defaultLevel)
    }

    private static func configure(_ chosen: Level) {
        switch chosen {
        case .off: Seccomp.configure(nil)
        case .trap: Seccomp.configure(.trap)
        case .kill: Seccomp.configure(.kill)
        }
    }
}
