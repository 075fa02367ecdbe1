import ArgumentParser
import Logging
import Swiftlet
import SwiftletAPI
#if canImport(Glibc)
import Glibc
#endif

/// Firecracker compatibility mode: the `swiftlet` binary run under the name `firecracker` (a symlink) takes
/// Firecracker's command line, so tools that start `firecracker --api-sock ...` start Swiftlet unchanged.
///
/// Firecracker flags Swiftlet does not implement are accepted and ignored with a warning, so a launcher that
/// passes them still works; docs/api.md says which.
struct FirecrackerCommand: ParsableCommand {
    /// Firecracker's default socket when `--api-sock` is not given.
    static let defaultSocket = "/run/firecracker.socket"

    static let configuration = CommandConfiguration(
        commandName: "firecracker",
        abstract: "Swiftlet in Firecracker compatibility mode: Firecracker's flags and REST API.",
        version: versionText
    )

    /// First line: `Firecracker v<API version>` — clients parse the second word — and what really runs.
    static var versionText: String {
        "Firecracker v\(APIController.firecrackerAPIVersion) (Swiftlet \(SwiftletCommand.version), Firecracker-compatible mode)"
    }

    @OptionGroup var options: ControlPlaneOptions

    @Flag(name: .customLong("boot-timer"), help: "Print the boot timeline when the guest stops.")
    var bootTimer = false

    @Flag(name: .customLong("enable-pci"), help: "Attach the virtio devices as virtio-pci (MSI-X) instead of virtio-mmio, as Firecracker's flag does.")
    var enablePCI = false

    // Accepted and ignored, with a warning (see the type's comment). `--no-seccomp` is real (SeccompOptions);
    // a filter file in Firecracker's compiled format is not read.
    @Option(name: .customLong("seccomp-filter"), help: .hidden) var seccompFilter: String?
    @Option(name: .customLong("start-time-us"), help: .hidden) var startTimeMicroseconds: String?
    @Option(name: .customLong("start-time-cpu-us"), help: .hidden) var startTimeCPUMicroseconds: String?
    @Option(name: .customLong("parent-cpu-time-us"), help: .hidden) var parentCPUTimeMicroseconds: String?
    @Option(name: .customLong("http-api-max-payload-size"), help: .hidden) var maximumPayloadSize: String?
    @Option(name: .customLong("mmds-size-limit"), help: .hidden) var mmdsSizeLimit: String?
    @Option(name: .customLong("module"), help: .hidden) var module: String?

    func run() throws {
        let observability = Observability()
        bootstrapFirecrackerLogging(observability: observability, verbose: false)
        let logger = Logger(label: "firecracker")
        var ignored: [String] = []
        if seccompFilter != nil { ignored.append("--seccomp-filter") }
        if startTimeMicroseconds != nil { ignored.append("--start-time-us") }
        if startTimeCPUMicroseconds != nil { ignored.append("--start-time-cpu-us") }
        if parentCPUTimeMicroseconds != nil { ignored.append("--parent-cpu-time-us") }
        if maximumPayloadSize != nil { ignored.append("--http-api-max-payload-size") }
        if mmdsSizeLimit != nil { ignored.append("--mmds-size-limit") }
        if module != nil { ignored.append("--module") }
        for flag in ignored { logger.warning("\(flag) is accepted for compatibility and ignored by Swiftlet") }
        logger.info("Running Swiftlet \(SwiftletCommand.version) in Firecracker-compatible mode (API v\(APIController.firecrackerAPIVersion))")
        let timeline = BootTimeline(origin: processStart)
        let control = try options.makeRun(defaultSocket: Self.defaultSocket, vmmVersion: APIController.firecrackerAPIVersion,
                                          vcpuThreadPrefix: "fc_vcpu ", timeline: timeline, logger: logger, observability: observability,
                                          // As Firecracker: virtio-mmio devices unless --enable-pci.
                                          transport: enablePCI ? .pci : .mmio)
        let status = control.run()
        if bootTimer { printError(timeline.report) }
        Glibc.exit(status)
    }
}
