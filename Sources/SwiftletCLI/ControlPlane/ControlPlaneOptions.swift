import ArgumentParser
import Logging
import Swiftlet
import SwiftletAPI
#if canImport(Glibc)
import Glibc
#endif

/// Firecracker's own process flags, shared by `swiftlet serve` and Firecracker mode (the binary run as
/// `firecracker`), with Firecracker's names and meanings.
struct ControlPlaneOptions: ParsableArguments {
    @Option(name: .customLong("api-sock"), help: ArgumentHelp("Serve the Firecracker-compatible REST API on this Unix socket.", valueName: "path"))
    var apiSocket: String?

    @Option(name: .customLong("config-file"), help: ArgumentHelp("Boot from a Firecracker JSON configuration (boot-source, machine-config, drives, network-interfaces, vsock, ...) without API calls.", valueName: "path"))
    var configFile: String?

    @Flag(name: .customLong("no-api"), help: "Do not serve the API (needs --config-file).")
    var noAPI = false

    @Option(help: ArgumentHelp("Instance id, in GET / and in log lines.", valueName: "id"))
    var id: String = APIController.defaultInstanceID

    @Option(name: .customLong("log-path"), help: ArgumentHelp("Write Firecracker-format log lines to this file or FIFO.", valueName: "path"))
    var logPath: String?

    @Option(help: ArgumentHelp("Log level: Error, Warning, Info, Debug, Trace or Off.", valueName: "level"))
    var level: String?

    @Flag(name: .customLong("show-level"), help: "Put the level in each log line.")
    var showLevel = false

    @Flag(name: .customLong("show-log-origin"), help: "Put the source file and line in each log line.")
    var showLogOrigin = false

    @Option(name: .customLong("metrics-path"), help: ArgumentHelp("Write Firecracker-format metrics lines to this file or FIFO.", valueName: "path"))
    var metricsPath: String?

    @OptionGroup var seccomp: SeccompOptions

    func validate() throws {
        if noAPI, configFile == nil { throw ValidationError("--no-api needs --config-file: without the API nothing could configure the VM") }
        if let level { _ = try LogLevelFilter(parsing: level) }
    }

    /// The control-plane run these flags describe, with the logger configured from them.
    /// `transport`: how the VM's virtio devices reach the guest (virtio-mmio in Firecracker mode unless `--enable-pci`).
    func makeRun(defaultSocket: String?, vmmVersion: String, vcpuThreadPrefix: String, timeline: BootTimeline,
                 logger: Logger, observability: Observability, transport: VirtioTransport = .pci) throws -> ControlPlaneRun {
        observability.log.instanceID = id
        seccomp.apply()
        if logPath != nil || level != nil || showLevel || showLogOrigin {
            try observability.configureLogger(LoggerSettings(logPath: logPath, level: level, showLevel: showLevel ? true : nil,
                                                             showLogOrigin: showLogOrigin ? true : nil))
        }
        if let metricsPath { try observability.configureMetrics(path: metricsPath) }
        return ControlPlaneRun(apiSocket: noAPI ? nil : (apiSocket ?? defaultSocket), configFile: configFile, instanceID: id,
                               startOptions: StartOptions(attachConsoleInput: true, vcpuThreadPrefix: vcpuThreadPrefix),
                               vmmVersion: vmmVersion, observability: observability, logger: logger, timeline: timeline,
                               transport: transport)
    }
}

/// `swiftlet serve`: a VMM with no VM yet, configured and started through the API (or a config file).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Wait for a VM to be configured and started through the Firecracker-compatible API.",
        discussion: """
            Serves Firecracker's REST API on --api-sock: PUT /boot-source, /machine-config, /drives/ID, \
            /network-interfaces/ID, /vsock, then PUT /actions {"action_type": "InstanceStart"}. With --config-file \
            the VM boots at once from Firecracker's JSON format. The process ends with the VM (exit status as for \
            `swiftlet run`). docs/api.md lists every endpoint.
            """
    )

    @OptionGroup var options: ControlPlaneOptions

    @Flag(name: .shortAndLong, help: "Log what the VMM does.")
    var verbose = false

    @Option(help: ArgumentHelp("How virtio devices reach the guest: pci or mmio (as for `swiftlet run`).", valueName: "transport"))
    var transport: String = VirtioTransport.pci.rawValue

    func validate() throws {
        if options.apiSocket == nil, !options.noAPI { throw ValidationError("give --api-sock PATH (or --no-api with --config-file)") }
        guard VirtioTransport(rawValue: transport) != nil else { throw ValidationError("--transport must be pci or mmio") }
    }

    func run() throws {
        let observability = Observability()
        bootstrapFirecrackerLogging(observability: observability, verbose: verbose)
        let logger = Logger(label: "swiftlet")
        let timeline = BootTimeline(origin: processStart)
        let control = try options.makeRun(defaultSocket: nil, vmmVersion: APIController.firecrackerAPIVersion, vcpuThreadPrefix: "vcpu",
                                          timeline: timeline, logger: logger, observability: observability,
                                          transport: VirtioTransport(rawValue: transport)!)
        Glibc.exit(control.run())
    }
}

/// Log lines in Firecracker's format, on stderr until a log file is configured (Firecracker's behaviour).
func bootstrapFirecrackerLogging(observability: Observability, verbose: Bool) {
    if verbose, observability.log.level.minimumLevel.map({ $0 > .debug }) ?? true {
        observability.log.level = .debug
    }
    LoggingSystem.bootstrap { label in observability.log.makeHandler(label: label) }
}
