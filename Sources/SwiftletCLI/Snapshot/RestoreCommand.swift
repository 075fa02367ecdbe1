import ArgumentParser
import Logging
import Swiftlet
import SwiftletAPI
import SwiftletSandbox
#if canImport(Glibc)
import Glibc
#endif

/// `swiftlet restore DIR`: builds the machine saved in DIR (`swiftlet snapshot`, or `PUT /snapshot/create` with
/// DIR/state and DIR/memory) in this process and runs it as `swiftlet run` runs a booted one: the guest's console
/// on this terminal, Ctrl-A X, signals, `run`'s exit statuses, and the API beside it with --api-sock.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Run a VM from a snapshot directory, from where it was saved.",
        discussion: """
            DIR holds `state` and `memory` (swiftlet snapshot writes them). The guest continues from the instruction \
            where it was paused; its memory is the memory file mapped copy-on-write, so the files are never changed \
            and many restores of one snapshot can run at once. --net and --vsock-socket give a clone its own host \
            endpoints (Firecracker's network_overrides and vsock_override), --disk its own copy of a read-write disk \
            (drive_overrides; a disk is locked by the process using it). Exit statuses as for `swiftlet run`; a \
            snapshot that cannot be used is status 1, with a message naming the file and the problem.
            """
    )

    @Argument(help: ArgumentHelp("The snapshot directory.", valueName: "dir"))
    var directory: String

    @Option(help: ArgumentHelp("Attach the saved network interface ID (net0, net1, ... for interfaces given on the command line; the iface_id through the API) to another host backend; repeatable.",
                               valueName: "ID=tap:NAME|ID=socket:PATH[,listen]"))
    var net: [String] = []

    @Option(help: ArgumentHelp("Use another image for the saved disk ID (drive0, drive1, ... for disks given on the command line; the drive_id through the API): a copy of that disk as it was at the save; repeatable.",
                               valueName: "ID=PATH"))
    var disk: [String] = []

    @Option(name: .customLong("vsock-socket"), help: ArgumentHelp("The vsock device's new host socket path.", valueName: "path"))
    var vsockSocket: String?

    @Option(name: .customLong("api-sock"), help: ArgumentHelp("Also serve the Firecracker-compatible REST API on this Unix socket.", valueName: "path"))
    var apiSocket: String?

    @Flag(name: .customLong("advance-clock"), help: "Set the guest's clock forward by the time the snapshot spent saved (Firecracker's clock_realtime).")
    var advanceClock = false

    @Option(help: ArgumentHelp("Stop the guest after this many seconds (exit status 124).", valueName: "seconds"))
    var timeout: Double?

    @Flag(help: "Print, at exit, the time to the first guest instruction, first console byte and stop.")
    var bootTimeline = false

    @Flag(name: .shortAndLong, help: "Log what the VMM does.")
    var verbose = false

    @OptionGroup var seccomp: SeccompOptions

    @OptionGroup var background: BackgroundOptions

    func validate() throws {
        guard !directory.isEmpty else { throw ValidationError("the snapshot directory is empty") }
        var seen: Set<String> = []
        for spec in net {
            let override = try Self.networkOverride(parsing: spec)
            guard seen.insert(override.interfaceID).inserted else { throw ValidationError("--net names interface \(override.interfaceID) twice") }
        }
        var seenDisks: Set<String> = []
        for spec in disk {
            let override = try Self.driveOverride(parsing: spec)
            guard seenDisks.insert(override.driveID).inserted else { throw ValidationError("--disk names drive \(override.driveID) twice") }
        }
        if let vsockSocket, vsockSocket.isEmpty { throw ValidationError("--vsock-socket needs a path") }
        try background.validate(apiSocket: apiSocket)
        if let timeout, !(timeout > 0 && timeout <= RunCommand.maximumTimeout) {
            throw ValidationError("--timeout must be a positive number of seconds, at most \(Int(RunCommand.maximumTimeout)) (got \(timeout))")
        }
    }

    /// `ID=PATH`: the id as the snapshot names the disk, the path of the image to use instead.
    static func driveOverride(parsing spec: String) throws -> SnapshotOverrides.Drive {
        guard let equals = spec.firstIndex(of: "="), equals != spec.startIndex, spec.index(after: equals) != spec.endIndex else {
            throw ValidationError("--disk \(spec): use ID=PATH")
        }
        return SnapshotOverrides.Drive(driveID: String(spec[..<equals]), path: String(spec[spec.index(after: equals)...]))
    }

    /// `ID=tap:NAME` or `ID=socket:PATH[,listen]`.
    static func networkOverride(parsing spec: String) throws -> SnapshotOverrides.Network {
        let usage = "--net \(spec): use ID=tap:NAME or ID=socket:PATH[,listen]"
        guard let equals = spec.firstIndex(of: "=") else { throw ValidationError(usage) }
        let id = String(spec[..<equals]), backend = spec[spec.index(after: equals)...]
        guard !id.isEmpty, id.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }) else {
            throw ValidationError("--net \(spec): the interface id must be letters, digits and _")
        }
        if backend.hasPrefix("tap:") {
            let name = String(backend.dropFirst(4))
            // IFNAMSIZ is 16 with its NUL.
            guard !name.isEmpty, name.utf8.count <= 15, !name.contains("/") else {
                throw ValidationError("--net \(spec): a TAP name is 1 to 15 characters without '/'")
            }
            return SnapshotOverrides.Network(interfaceID: id, backend: .tap(name: name))
        }
        if backend.hasPrefix("socket:") {
            var path = String(backend.dropFirst(7))
            var listen = false
            if path.hasSuffix(",listen") {
                listen = true
                path.removeLast(7)
            }
            guard !path.isEmpty else { throw ValidationError(usage) }
            return SnapshotOverrides.Network(interfaceID: id, backend: .socket(path: path, listen: listen))
        }
        throw ValidationError(usage)
    }

    func run() throws {
        if background.detach { return try restoreDetached() }
        TerminationSignals.block()
        try background.adoptSandboxDirectory()
        seccomp.apply()
        let overrides = SnapshotOverrides(networks: try net.map(Self.networkOverride(parsing:)),
                                          drives: try disk.map(Self.driveOverride(parsing:)), vsockSocketPath: vsockSocket,
                                          advanceGuestClock: advanceClock)
        try Self.restoreInForeground(directory: directory, overrides: overrides, apiSocket: apiSocket, timeout: timeout,
                                     bootTimeline: bootTimeline, verbose: verbose)
    }

    /// The restore itself, once the options are known (also `RestoreFastPath`'s): builds the machine from the
    /// snapshot and runs it to its end in this process.
    static func restoreInForeground(directory: String, overrides: SnapshotOverrides, apiSocket: String?, timeout: Double?,
                                    bootTimeline: Bool, verbose: Bool) throws {
        let observability = Observability()
        MachineSession.bootstrapLogging(observability: observability, verbose: verbose)
        let logger = Logger(label: "swiftlet")
        let timeline = BootTimeline(origin: processStart)
        let machine: Machine
        do {
            machine = try Machine(restoringFromState: directory + "/" + Machine.snapshotStateFile,
                                  memoryPath: directory + "/" + Machine.snapshotMemoryFile,
                                  timeline: timeline, logger: logger, overrides: overrides)
        } catch {
            logger.error("\(error)")
            SandboxVMM.recordExit(status: ExitCode.failure.rawValue)
            throw ExitCode.failure
        }
        for line in machine.bootLog { logger.info("\(line)") }
        try MachineSession(apiSocket: apiSocket, timeout: timeout, printTimeline: bootTimeline, timeline: timeline, logger: logger,
                           observability: observability).runToEnd(machine)
    }
}
