import Logging
import NIOCore
import NIOPosix
import Swiftlet

/// One API request as the metrics hook sees it: Firecracker counts requests and failures per method and
/// resource (`put_api_requests.drive_count`, `drive_fails`, ...).
public struct APIRequestRecord: Sendable, Equatable {
    /// "GET", "PUT", "PATCH", or whatever the client sent.
    public var method: String
    /// The first path segment: "drives", "actions", "" for `/`.
    public var resource: String
    public var failed: Bool

    public init(method: String, resource: String, failed: Bool) {
        self.method = method
        self.resource = resource
        self.failed = failed
    }
}

/// Executes API requests against the pre-boot store and the machine, one at a time in arrival order, as
/// Firecracker's VMM thread does (its API thread hands each request over and waits for the answer). A request
/// that waits on the machine (`InstanceStart`, pause) holds back the ones after it.
///
/// The actor runs on the API's own thread: its executor is a one-thread NIO event loop, which `APIServer`
/// also uses for the socket. Nothing of the API runs on a vCPU thread, and a busy Swift concurrency pool
/// (someone blocking in it) cannot stall the API.
///
/// Before `InstanceStart` the requests configure `resources` (Firecracker's `PrebootApiController`); after it
/// they act on the running machine (`RuntimeApiController`), and the PUTs that only make sense before boot
/// are refused with Firecracker's message.
public actor APIController {
    /// The API version this implements: the `info.version` of the Firecracker swagger it was written against.
    public static let firecrackerAPIVersion = "1.17.0-dev"
    /// Firecracker's default instance id (its `--id`).
    public static let defaultInstanceID = "anonymous-instance"

    public let backend: any VMMBackend
    public private(set) var resources: VMResources
    /// What the last `InstanceStart` warned about (also logged).
    public private(set) var startWarnings: [String] = []

    private let instanceID: String
    private let vmmVersion: String
    private let appName: String
    private let logger: Logger
    private let onRequest: (@Sendable (APIRequestRecord) -> Void)?
    private var started = false
    /// A boot-specific resource was configured (Firecracker's `boot_path`): a snapshot can no longer be loaded.
    private var bootPath = false
    /// Set by a failed `PUT /snapshot/load`: the process is not fit to go on (Firecracker's rule) and every later
    /// request is refused while it ends.
    public private(set) var fatalLoadFailure: String?
    /// Told of `fatalLoadFailure` once its answer has been handed to the client's connection.
    private let onFatalError: (@Sendable (String) -> Void)?
    private var fatalFailureToReport: String?
    /// A request is running (possibly suspended in the backend); later ones wait in `waiting`, in order.
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// The API thread: the actor's executor, and the server's event loop.
    public nonisolated let eventLoop: any EventLoop
    /// Set when the controller made its own thread, so that it ends with the controller.
    private nonisolated let ownedGroup: MultiThreadedEventLoopGroup?

    public nonisolated var unownedExecutor: UnownedSerialExecutor { eventLoop.executor.asUnownedSerialExecutor() }

    /// How the VM's virtio devices reach the guest (virtio-mmio in Firecracker mode unless `--enable-pci`).
    public nonisolated let transport: VirtioTransport

    /// - Parameter eventLoop: the thread to run on; nil starts a thread of its own.
    public init(backend: any VMMBackend, resources: VMResources = VMResources(), instanceID: String = APIController.defaultInstanceID,
                vmmVersion: String = APIController.firecrackerAPIVersion, appName: String = "Swiftlet",
                logger: Logger = Logger(label: "swiftlet.api"), eventLoop: (any EventLoop)? = nil,
                onRequest: (@Sendable (APIRequestRecord) -> Void)? = nil, transport: VirtioTransport = .pci,
                onFatalError: (@Sendable (String) -> Void)? = nil) {
        self.transport = transport
        self.onFatalError = onFatalError
        if let eventLoop {
            self.eventLoop = eventLoop
            ownedGroup = nil
        } else {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            self.eventLoop = group.next()
            ownedGroup = group
        }
        self.backend = backend
        self.resources = resources
        self.instanceID = instanceID
        self.vmmVersion = vmmVersion
        self.appName = appName
        self.logger = logger
        self.onRequest = onRequest
    }

    deinit {
        ownedGroup?.shutdownGracefully { _ in }
    }

    /// For the server, already on the API thread: handles the request and calls `completion` with the answer
    /// on the same thread, without passing through the global concurrency pool.
    func submit(method: String, path: String, body: [UInt8], completion: @escaping @Sendable (APIResponse) -> Void) {
        Task {
            completion(await self.handle(method: method, path: path, body: body))
            // The answer is written and flushed (this is the socket's thread): only now may the process end.
            if let fatal = self.fatalFailureToReport {
                self.fatalFailureToReport = nil
                self.onFatalError?(fatal)
            }
        }
    }

    /// Handles one HTTP request: route, execute, answer. Called by `APIServer`, and by tests directly.
    public func handle(method: String, path: String, body: [UInt8]) async -> APIResponse {
        await serialised {
            let response: APIResponse
            do throws(APIFault) {
                if let fatal = $0.fatalLoadFailure {
                    throw APIFault(message: "The microVM is unusable after a failed snapshot load and the VMM is ending: \(fatal)")
                }
                if body.count > APIRouter.maximumBodySize {
                    throw APIFault.payloadTooLarge(size: body.count, limit: APIRouter.maximumBodySize)
                }
                let action = try APIRouter.route(method: method, path: path, body: body)
                response = await $0.perform(action)
            } catch {
                response = APIResponse(fault: error)
            }
            $0.record(method: method, path: path, response: response)
            return response
        }
    }

    /// Executes an action without HTTP (the CLI's Firecracker mode starts a config-file VM this way).
    public func execute(_ action: APIAction) async -> APIResponse {
        await serialised { await $0.perform(action) }
    }

    /// Firecracker's `--config-file`: replaces the pre-boot resources with the file's and applies its logger
    /// and metrics settings. The caller then executes `.instanceStart`.
    public func loadConfigFile(_ bytes: [UInt8]) async throws(APIFault) {
        let result: Result<Void, APIFault> = await serialised { controller in
            do throws(APIFault) {
                guard !controller.isBooted else { throw APIFault.notSupportedPostBoot }
                let loaded = try VMResources(configFile: bytes)
                if let logger = loaded.logger { try controller.call("Logger error") { try controller.backend.configureLogger(logger.settings) } }
                if let metrics = loaded.metrics {
                    try controller.call("Metrics error") { try controller.backend.configureMetrics(path: metrics.metricsPath) }
                }
                controller.resources = loaded
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// Runs `work` when every earlier request has finished. The queue lives on the actor, so handing over
    /// from one request to the next needs no other thread.
    private func serialised<T: Sendable>(_ work: @Sendable (isolated APIController) async -> T) async -> T {
        if busy {
            await withCheckedContinuation { waiting.append($0) }   // woken with `busy` still set: our turn
        } else {
            busy = true
        }
        let result = await work(self)
        if waiting.isEmpty {
            busy = false
        } else {
            waiting.removeFirst().resume()
        }
        return result
    }

    private func record(method: String, path: String, response: APIResponse) {
        if response.status >= 400 {
            logger.warning("API \(method) \(path) failed (\(response.status)): \(response.faultMessage ?? "")")
        } else {
            logger.debug("API \(method) \(path): \(response.status)")
        }
        onRequest?(APIRequestRecord(method: method, resource: APIRouter.resource(of: path), failed: response.status >= 400))
    }

    /// Booted: `InstanceStart` succeeded here, or the machine was started by the CLI before the API came up
    /// (`swiftlet run --api-sock`).
    private var isBooted: Bool { started || backend.machineState != .stopped }

    private var instanceState: InstanceInfo.State {
        switch backend.machineState {
        case .paused: return .paused
        case .stopped: return started ? .running : .notStarted
        default: return .running
        }
    }

    private func perform(_ action: APIAction) async -> APIResponse {
        do {
            return try await performOrThrow(action)
        } catch {
            return APIResponse(fault: error)
        }
    }

    /// Runs a backend call, turning its error into a 400 whose message is the error's description, prefixed
    /// the way Firecracker prefixes the error's kind.
    private func call(_ kind: String, _ body: () throws -> Void) throws(APIFault) {
        do {
            try body()
        } catch {
            throw APIFault(message: "\(kind): \(error)")
        }
    }

    private func performOrThrow(_ action: APIAction) async throws(APIFault) -> APIResponse {
        switch action {
        // Allowed at any time.
        case .getInstanceInfo:
            return .json(InstanceInfo(id: instanceID, state: instanceState, vmmVersion: vmmVersion, appName: appName))
        case .getVersion:
            return .json(VersionInfo(firecrackerVersion: vmmVersion))
        case .getMachineConfig:
            return .json(resources.machineConfig)
        case .getFullConfiguration:
            return .json(resources.fullConfiguration)
        case .getMMDS:
            // Firecracker answers an uninitialised store with an empty object.
            return .json(resources.mmds == .null ? JSONValue.object([:]) : resources.mmds)
        case let .putMMDS(value):
            try resources.putMMDS(value)
            return .noContent
        case let .patchMMDS(patch):
            try resources.patchMMDS(patch)
            return .noContent

        // Before boot only (Firecracker's OperationNotSupportedPostBoot otherwise).
        case let .putBootSource(source):
            try refuseAfterBoot()
            bootPath = true
            try resources.setBootSource(source)
        case let .putMachineConfig(config):
            try refuseAfterBoot()
            bootPath = true
            try resources.updateMachineConfig(config.asUpdate)
        case let .patchMachineConfig(update):
            try refuseAfterBoot()
            bootPath = true
            try resources.updateMachineConfig(update)
        case let .putDrive(drive):
            try refuseAfterBoot()
            bootPath = true
            try resources.insertDrive(drive)
        case let .putNetworkInterface(interface):
            try refuseAfterBoot()
            bootPath = true
            try resources.insertNetworkInterface(interface)
        case let .putVsock(vsock):
            try refuseAfterBoot()
            bootPath = true
            resources.vsock = vsock
        case let .putEntropy(entropy):
            try refuseAfterBoot()
            bootPath = true
            resources.entropy = entropy
        case let .putMMDSConfig(config):
            try refuseAfterBoot()
            bootPath = true
            try resources.setMmdsConfig(config)
        case let .putLogger(config):
            try refuseAfterBoot()
            try call("Logger error") { try backend.configureLogger(config.settings) }
            resources.logger = config
        case let .putMetrics(config):
            try refuseAfterBoot()
            try call("Metrics error") { try backend.configureMetrics(path: config.metricsPath) }
            resources.metrics = config
        case .instanceStart:
            try refuseAfterBoot()
            try await start()

        // After boot only (Firecracker's OperationNotSupportedPreBoot otherwise).
        case let .patchDrive(update):
            try refuseBeforeBoot()
            guard resources.drive(id: update.driveID) != nil else {
                try resources.updateDrive(update)   // throws the unknown-id fault
                return .noContent
            }
            // Even the same path is handed over: the file may have been replaced or resized behind it.
            if let path = update.pathOnHost {
                try call("Drive config error: Unable to patch the block device") { try backend.replaceDrive(id: update.driveID, path: path) }
            }
            try resources.updateDrive(update)
        case let .patchNetworkInterface(update):
            try refuseBeforeBoot()
            try resources.updateNetworkInterface(update)
        case .sendCtrlAltDel:
            try refuseBeforeBoot()
            try call("Internal VMM error") { try backend.sendCtrlAltDel() }
        case .flushMetrics:
            try refuseBeforeBoot()
            try call("Internal VMM error") { try backend.flushMetrics() }
        case .pause:
            try refuseBeforeBoot()
            do { try await backend.pause() } catch { throw APIFault(message: "Internal VMM error: \(error)") }
        case .resume:
            try refuseBeforeBoot()
            do { try await backend.resume() } catch { throw APIFault(message: "Internal VMM error: \(error)") }

        case let .createSnapshot(params):
            try refuseBeforeBoot()
            try await createSnapshot(params)
        case let .loadSnapshot(load):
            try refuseAfterBoot()
            try await loadSnapshot(load)
        }
        return .noContent
    }

    /// `PUT /snapshot/create`: Firecracker's rules (after boot, on a paused VM), and what Swiftlet cannot do yet
    /// refused before anything is written.
    private func createSnapshot(_ params: SnapshotCreateParams) async throws(APIFault) {
        let prefix = "Create snapshot error: "
        let state = backend.machineState
        guard state == .paused else {
            throw APIFault(message: prefix + "the microVM must be paused first (PATCH /vm {\"state\": \"Paused\"}); it is \(state)")
        }
        do {
            try await backend.createSnapshot(statePath: params.snapshotPath, memoryPath: params.memFilePath,
                                             kind: params.snapshotType == .diff ? .diff : .full)
        } catch {
            throw APIFault(message: prefix + "\(error)")
        }
    }

    /// `PUT /snapshot/load`: only in a VMM that has not booted and has no boot-specific resource configured. What
    /// Swiftlet cannot do (a Uffd backend, hugetlbfs pages) is refused before anything is built, and changes nothing;
    /// a restore that fails once begun is fatal, as in Firecracker.
    private func loadSnapshot(_ load: SnapshotLoad) async throws(APIFault) {
        let prefix = "Load snapshot error: "
        guard !bootPath else {
            throw APIFault(message: prefix + "Loading a microVM snapshot not allowed after configuring boot-specific resources.")
        }
        guard load.memBackend.backendType == .file else {
            throw APIFault(message: prefix + "the Uffd memory backend is not supported by Swiftlet: guest memory is always the "
                + "memory file, mapped copy-on-write so pages load on first touch (use backend_type File)")
        }
        guard load.hugePages == .snapshot || load.hugePages == .none else {
            throw APIFault(message: prefix + "huge_pages \(load.hugePages.rawValue) is not supported by Swiftlet: guest memory is "
                + "the memory file mapped with the host's page size (use Snapshot or None)")
        }
        var networks: [SnapshotOverrides.Network] = []
        for override in load.networkOverrides {
            guard !override.ifaceID.isEmpty, !override.hostDevName.isEmpty else {
                throw APIFault(message: prefix + "a network override needs a non-empty iface_id and host_dev_name")
            }
            guard !networks.contains(where: { $0.interfaceID == override.ifaceID }) else {
                throw APIFault(message: prefix + "network_overrides names iface_id \(override.ifaceID) twice")
            }
            networks.append(SnapshotOverrides.Network(interfaceID: override.ifaceID, backend: .tap(name: override.hostDevName)))
        }
        var drives: [SnapshotOverrides.Drive] = []
        for override in load.driveOverrides {
            guard !override.driveID.isEmpty, !override.pathOnHost.isEmpty else {
                throw APIFault(message: prefix + "a drive override needs a non-empty drive_id and path_on_host")
            }
            guard !drives.contains(where: { $0.driveID == override.driveID }) else {
                throw APIFault(message: prefix + "drive_overrides names drive_id \(override.driveID) twice")
            }
            drives.append(SnapshotOverrides.Drive(driveID: override.driveID, path: override.pathOnHost))
        }
        if let vsock = load.vsockOverride, vsock.udsPath.isEmpty {
            throw APIFault(message: prefix + "vsock_override.uds_path is empty")
        }
        if load.usedDeprecatedFields { logger.warning("\(SnapshotLoad.deprecation)") }
        let request = SnapshotLoadRequest(
            statePath: load.snapshotPath, memoryPath: load.memBackend.backendPath,
            overrides: SnapshotOverrides(networks: networks, drives: drives, vsockSocketPath: load.vsockOverride?.udsPath,
                                         advanceGuestClock: load.clockRealtime),
            resume: load.resumeVM, trackDirtyPages: load.trackDirtyPages)
        let restored: MachineConfiguration
        do {
            restored = try await backend.loadSnapshot(request)
        } catch {
            let message = prefix + "Failed to restore from snapshot: \(error)"
            // Firecracker: "If restore fails, we consider the process is too dirty to recover."
            fatalLoadFailure = message
            fatalFailureToReport = message
            throw APIFault(message: message)
        }
        started = true
        // GET /machine-config and /vm/config show what was restored (Firecracker fills its VmResources likewise).
        if let vcpus = UInt8(exactly: restored.vcpuCount) {
            _ = try? resources.updateMachineConfig(PartialMachineConfig(vcpuCount: vcpus, memSizeMib: restored.memory.bytes >> 20))
        }
    }

    private func refuseAfterBoot() throws(APIFault) {
        if isBooted { throw .notSupportedPostBoot }
    }

    private func refuseBeforeBoot() throws(APIFault) {
        if !isBooted { throw .notSupportedPreBoot }
    }

    private func start() async throws(APIFault) {
        let (configuration, warnings) = try resources.machineConfiguration(transport: transport)
        startWarnings = warnings
        for warning in warnings { logger.warning("InstanceStart: \(warning)") }
        do {
            if resources.machineConfig.trackDirtyPages { try backend.trackDirtyPages() }
            try await backend.start(configuration)
        } catch {
            throw APIFault(message: "Start microvm error: \(error)")
        }
        started = true
    }
}
