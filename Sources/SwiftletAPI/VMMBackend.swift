import Swiftlet

/// What the API asks of the machine it controls: the one seam between the HTTP/JSON layer and the VMM.
///
/// The CLI implements it over `Machine` (`swiftlet serve`, `swiftlet run --api-sock`, Firecracker mode); the
/// API's tests implement it with a fake that records calls. Every method is called from the API's own thread
/// (never a vCPU's), one request at a time; a thrown error becomes a 400 with the error's description as
/// `fault_message`, and the API has then changed nothing.
public protocol VMMBackend: AnyObject, Sendable {
    /// The machine's lifecycle state; `.stopped` before `InstanceStart`.
    var machineState: MachineState { get }

    /// `InstanceStart`: builds the machine from `configuration` and starts its vCPUs. Returns once the guest
    /// runs (or throws, and nothing was started).
    func start(_ configuration: MachineConfiguration) async throws

    /// `PATCH /vm {"state": "Paused"}`: returns once every vCPU is parked and the devices are quiet.
    func pause() async throws

    /// `PATCH /vm {"state": "Resumed"}`.
    func resume() async throws

    /// `SendCtrlAltDel`: types Ctrl-Alt-Del on the i8042 keyboard (the guest reboots or stops; with
    /// `reboot=k` the VM then ends, as in Firecracker).
    func sendCtrlAltDel() throws

    /// `PATCH /drives/{drive_id}` after boot: the drive now reads and writes the file at `path` (opened and
    /// locked before the old one is let go); the guest is told of the new size by a configuration change.
    func replaceDrive(id: String, path: String) throws

    /// `FlushMetrics`: writes one metrics line now. Throws when no metrics destination is configured.
    func flushMetrics() throws

    /// `PUT /metrics` (`metrics_path`): where metrics lines go from now on (a file, appended, or a FIFO).
    func configureMetrics(path: String) throws

    /// `PUT /logger`: where log lines go and how they look.
    func configureLogger(_ logger: LoggerSettings) throws

    /// `PUT /snapshot/create`: saves the paused machine, its state to `statePath` and its RAM to `memoryPath`
    /// (`Machine.saveSnapshot(statePath:memoryPath:kind:)`; `Diff`: only the pages written since the previous
    /// snapshot). The machine stays paused.
    func createSnapshot(statePath: String, memoryPath: String, kind: SnapshotKind) async throws

    /// machine-config's `track_dirty_pages` at InstanceStart (called before `start` when it is set): the machine
    /// tracks the pages written, so that `Diff` snapshots can be taken.
    func trackDirtyPages() throws

    /// `PUT /snapshot/load`, in a process that has not booted: builds the machine from the snapshot and, with
    /// `request.resume`, starts it; otherwise it is reported `.paused` until `resume()` starts it. Returns the
    /// restored machine's configuration. A throw here is fatal to the process (Firecracker's rule): the API answers
    /// it, then `APIController`'s `onFatalError` tells the process to end.
    func loadSnapshot(_ request: SnapshotLoadRequest) async throws -> MachineConfiguration
}

/// What `PUT /snapshot/load` asks of the backend, in the library's terms.
public struct SnapshotLoadRequest: Sendable, Equatable {
    public var statePath: String
    public var memoryPath: String
    /// Network backends by interface id, the vsock socket, the clock advance (`clock_realtime`).
    public var overrides: SnapshotOverrides
    /// `resume_vm`: start the restored machine at once.
    public var resume: Bool
    /// `track_dirty_pages`: the restored machine tracks the pages written from the load on (for `Diff` snapshots).
    public var trackDirtyPages: Bool

    public init(statePath: String, memoryPath: String, overrides: SnapshotOverrides = SnapshotOverrides(), resume: Bool = false,
                trackDirtyPages: Bool = false) {
        self.statePath = statePath
        self.memoryPath = memoryPath
        self.overrides = overrides
        self.resume = resume
        self.trackDirtyPages = trackDirtyPages
    }
}

/// Backends without snapshots refuse them plainly.
extension VMMBackend {
    public func createSnapshot(statePath: String, memoryPath: String, kind: SnapshotKind) async throws {
        throw APIFault(message: "this VMM backend does not take snapshots")
    }

    public func trackDirtyPages() throws {
        throw APIFault(message: "this VMM backend does not track dirty pages")
    }

    public func loadSnapshot(_ request: SnapshotLoadRequest) async throws -> MachineConfiguration {
        throw APIFault(message: "this VMM backend does not load snapshots")
    }
}

/// `PUT /logger`'s settings as the backend receives them (field meanings as Firecracker documents them).
public struct LoggerSettings: Sendable, Equatable, Codable {
    /// A file (appended) or a named pipe; nil keeps the current destination.
    public var logPath: String?
    /// "Error", "Warning", "Info", "Debug", "Trace" or "Off" (Firecracker accepts any capitalisation).
    public var level: String?
    public var showLevel: Bool?
    public var showLogOrigin: Bool?
    /// Only log lines from this module (Firecracker's `module` filter).
    public var module: String?

    public init(logPath: String? = nil, level: String? = nil, showLevel: Bool? = nil, showLogOrigin: Bool? = nil, module: String? = nil) {
        self.logPath = logPath
        self.level = level
        self.showLevel = showLevel
        self.showLogOrigin = showLogOrigin
        self.module = module
    }
}
