import Synchronization
import Swiftlet
import SwiftletAPI

/// A `VMMBackend` that records what the API asked of it, so a test can check that a request reached the
/// machine (or did not), and can be told to fail.
final class FakeBackend: VMMBackend {
    enum Call: Equatable {
        case start(MachineConfiguration)
        case pause, resume, sendCtrlAltDel, flushMetrics
        case replaceDrive(id: String, path: String)
        case configureMetrics(path: String)
        case configureLogger(LoggerSettings)
        case createSnapshot(statePath: String, memoryPath: String, kind: SnapshotKind)
        case trackDirtyPages
        case loadSnapshot(SnapshotLoadRequest)
    }

    /// What `loadSnapshot` says it restored.
    static let restoredConfiguration = MachineConfiguration(payload: .rawImage(RawImagePayload(path: "/saved/guest.bin", mode: .userMode)),
                                                            vcpuCount: 2, memory: .mebibytes(64))

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let state = Mutex<(machineState: MachineState, calls: [Call], failure: String?)>((.stopped, [], nil))

    var machineState: MachineState { state.withLock { $0.machineState } }
    var calls: [Call] { state.withLock { $0.calls } }

    /// The next calls throw an error with this description (nil: they succeed).
    func failNextCalls(with message: String?) { state.withLock { $0.failure = message } }
    func setState(_ newState: MachineState) { state.withLock { $0.machineState = newState } }

    private func record(_ call: Call, then newState: MachineState? = nil) throws {
        try state.withLock {
            $0.calls.append(call)
            if let message = $0.failure { throw Failure(description: message) }
            if let newState { $0.machineState = newState }
        }
    }

    func start(_ configuration: MachineConfiguration) async throws { try record(.start(configuration), then: .running) }
    func pause() async throws { try record(.pause, then: .paused) }
    func resume() async throws { try record(.resume, then: .running) }
    func sendCtrlAltDel() throws { try record(.sendCtrlAltDel) }
    func replaceDrive(id: String, path: String) throws { try record(.replaceDrive(id: id, path: path)) }
    func flushMetrics() throws { try record(.flushMetrics) }
    func configureMetrics(path: String) throws { try record(.configureMetrics(path: path)) }
    func configureLogger(_ logger: LoggerSettings) throws { try record(.configureLogger(logger)) }
    func createSnapshot(statePath: String, memoryPath: String, kind: SnapshotKind) async throws {
        try record(.createSnapshot(statePath: statePath, memoryPath: memoryPath, kind: kind))
    }
    func trackDirtyPages() throws { try record(.trackDirtyPages) }
    func loadSnapshot(_ request: SnapshotLoadRequest) async throws -> MachineConfiguration {
        // A loaded VM is paused until resumed, as in Firecracker (resume_vm: running at once).
        try record(.loadSnapshot(request), then: request.resume ? .running : .paused)
        return Self.restoredConfiguration
    }
}
