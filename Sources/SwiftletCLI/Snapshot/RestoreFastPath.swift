import ArgumentParser
import Swiftlet
import SwiftletAPI
#if canImport(Glibc)
import Glibc
#endif

/// `swiftlet restore DIR`, optionally with `--boot-timeline`, and nothing else: the common form of a restore,
/// started without swift-argument-parser.
///
/// Why: a restore is meant to take milliseconds, and the general parser was the largest part of them. Building
/// the command tree's definitions (reflection over every option, first protocol-conformance look-ups, the
/// completion-script check) took ~3 ms of a ~6.6 ms restore (docs/performance.md). This form has one value and
/// one flag, and every other option at its default, so it needs no parser: any other argument — an option, a
/// second directory, `--help`, a directory spelled with a leading `-` — sends the command line to
/// `SwiftletCommand` as before, which also gives its messages. The restore itself is the same function
/// (`RestoreCommand.restoreInForeground`), with `RestoreCommand`'s defaults: no overrides, no API socket, no
/// timeout, seccomp at its default level.
enum RestoreFastPath {
    struct Request: Equatable {
        var directory: String
        var bootTimeline: Bool
    }

    /// The request `arguments` (argv, program name first) spell, or nil when they are anything else.
    static func request(_ arguments: [String]) -> Request? {
        guard arguments.count >= 3, arguments.count <= 4, arguments[1] == "restore" else { return nil }
        var directory: String?
        var bootTimeline = false
        for argument in arguments.dropFirst(2) {
            if argument == "--boot-timeline", !bootTimeline {
                bootTimeline = true
            } else if directory == nil, !argument.isEmpty, !argument.hasPrefix("-") {
                directory = argument
            } else {
                return nil
            }
        }
        return directory.map { Request(directory: $0, bootTimeline: bootTimeline) }
    }

    /// Runs the restore and exits with its status, as `SwiftletCommand.main()` would.
    static func run(_ request: Request) -> Never {
        do {
            TerminationSignals.block()
            SeccompOptions.applyDefault()
            try RestoreCommand.restoreInForeground(directory: request.directory, overrides: SnapshotOverrides(), apiSocket: nil,
                                                   timeout: nil, bootTimeline: request.bootTimeline, verbose: false)
            exit(0)
        } catch {
            SwiftletCommand.exit(withError: error)
        }
    }
}
