import AgentCore
import AgentProtocol
import Swiftlet
import SwiftletAgentClient
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The guest agent (swiftlet-agent, docs/agent.md) of a VM, reached through the VM's vsock Unix socket: run
/// commands and copy files. `VirtualMachine.agent` gives the one of a `VirtualMachine`; any other VM's works the
/// same (`GuestAgent(socketPath:)` with its `--vsock` socket, e.g. a named VM's `vsock.sock`).
///
/// Each request opens a connection of its own (so requests may run at the same time) and runs on a thread of
/// its own: a connection first waits up to `timeout` for the agent to answer (a guest still booting refuses the
/// connection; it is retried every 100 ms), then fails with `.noAgent`.
public struct GuestAgent: Sendable {
    public var socketPath: String
    public var port: UInt32
    /// How long a request waits for the agent to answer before `.noAgent`.
    public var timeout: Duration

    public static let defaultPort = AgentProtocol.defaultPort

    public init(socketPath: String, port: UInt32 = GuestAgent.defaultPort, timeout: Duration = .seconds(10)) {
        self.socketPath = socketPath
        self.port = port
        self.timeout = timeout
    }

    /// Waits until the agent answers (at most `timeout`, or this agent's), e.g. while the guest boots.
    public func waitUntilReady(timeout: Duration? = nil) async throws(GuestAgentError) {
        let agent = self
        try await OffThread.run("agent-wait", { () throws(GuestAgentError) in
            _ = try agent.connect(timeout: timeout ?? agent.timeout)
        }, threadFailure: Self.threadFailure)
    }

    /// Whether the agent answers within `timeout` (one short connection): readiness, as `swiftlet ps` shows it.
    public func isReady(timeout: Duration = .milliseconds(500)) async -> Bool {
        let agent = self
        return await OffThread.run("agent-probe") {
            AgentClient.isReady(socketPath: agent.socketPath, port: agent.port, timeout: timeout)
        }
    }

    /// Runs a command to its end and returns its status and output.
    ///
    /// Cancelling the calling task kills the command (SIGKILL to its process group) and throws `.cancelled`.
    public func exec(_ process: ProcessConfiguration) async throws(GuestAgentError) -> ExecResult {
        let request = ExecRequest(arguments: [process.executable] + process.arguments, environment: process.environmentStrings,
                                  workingDirectory: process.workingDirectory ?? "",
                                  user: process.user.map { ExecRequest.User(uid: $0.uid, gid: $0.gid) })
        let control: ExecControl
        do { control = try ExecControl() } catch { throw .localFailure(message: "\(error)", errno: error.errno) }
        var feeder: Task<Void, Never>?
        if case let .stream(stream) = process.standardInput {
            feeder = Task { await control.feed(from: stream) }
        }
        defer { feeder?.cancel() }
        let agent = self
        let input = process.standardInput
        let result: Result<ExecResult, GuestAgentError> = await withTaskCancellationHandler {
            do throws(GuestAgentError) {
                return .success(try await OffThread.run("agent-exec", { () throws(GuestAgentError) -> ExecResult in
                defer { control.finish() }
                let client = try agent.connect(timeout: agent.timeout)
                let outcome: (result: ExecResult, killed: Bool)
                do throws(AgentClientError) { outcome = try ExecPump(client: client, request: request, input: input, control: control).run() }
                catch { throw GuestAgentError(error) }
                if outcome.killed { throw .cancelled }
                return outcome.result
                }, threadFailure: Self.threadFailure))
            } catch {
                return .failure(error)
            }
        } onCancel: {
            control.cancel()
        }
        return try result.get()
    }

    /// `exec` with the parts given one by one.
    public func exec(_ executable: String, _ arguments: [String] = [], environment: [String: String] = [:],
                     workingDirectory: String? = nil, standardInput: StandardInput = .none) async throws(GuestAgentError) -> ExecResult {
        try await exec(ProcessConfiguration(executable: executable, arguments: arguments, environment: environment,
                                            workingDirectory: workingDirectory, standardInput: standardInput))
    }

    /// Copies a file or directory (recursively, with modes and modification times) between this host and the
    /// guest; one side must be `.host`, the other `.guest`. As with `docker cp`, a destination that is an existing
    /// directory receives the source under its own name. Returns the bytes of file data copied.
    @discardableResult
    public func copy(_ source: CopyLocation, to destination: CopyLocation) async throws(GuestAgentError) -> UInt64 {
        let agent = self
        switch (source, destination) {
        case let (.host(local), .guest(guest)):
            return try await OffThread.run("agent-copy-in", { () throws(GuestAgentError) -> UInt64 in
                let client = try agent.connect(timeout: agent.timeout)
                do throws(AgentClientError) { return try client.copyIn(localPath: local, to: guest) } catch { throw GuestAgentError(error) }
            }, threadFailure: Self.threadFailure)
        case let (.guest(guest), .host(local)):
            return try await OffThread.run("agent-copy-out", { () throws(GuestAgentError) -> UInt64 in
                let client = try agent.connect(timeout: agent.timeout)
                do throws(AgentClientError) { return try client.copyOut(source: guest, to: local) } catch { throw GuestAgentError(error) }
            }, threadFailure: Self.threadFailure)
        default:
            throw .localFailure(message: "a copy goes between this host and the guest: one side .host, the other .guest", errno: EINVAL)
        }
    }

    /// Sets the guest's clock to this host's (a restored or long-paused guest's clock lags).
    public func synchronizeClock() async throws(GuestAgentError) {
        let agent = self
        try await OffThread.run("agent-clock", { () throws(GuestAgentError) in
            let client = try agent.connect(timeout: agent.timeout)
            do throws(AgentClientError) { try client.setClock() } catch { throw GuestAgentError(error) }
        }, threadFailure: Self.threadFailure)
    }

    private func connect(timeout: Duration) throws(GuestAgentError) -> AgentClient {
        do { return try AgentClient.connect(socketPath: socketPath, port: port, timeout: timeout) } catch { throw GuestAgentError(error) }
    }

    @Sendable private static func threadFailure(_ error: MachineError) -> GuestAgentError {
        .localFailure(message: "cannot start a thread for the request: \(error)", errno: 0)
    }
}

/// Between an `exec`'s caller and its pump thread: stdin chunks from an async stream, end of input, and
/// cancellation, with a pipe that wakes the pump's poll.
final class ExecControl: Sendable {
    struct State {
        var chunks: [[UInt8]] = []
        var queued = 0
        var inputEnded = false
        var cancelled = false
        var finished = false
        /// The feeder, waiting for the pump to take what is queued.
        var spaceWaiter: CheckedContinuation<Void, Never>?
    }

    /// The feeder waits while this much stdin is queued here (beyond what the connection holds).
    static let queueLimit = 256 * 1024
    let state = Mutex(State())
    let wakeRead: Int32
    let wakeWrite: Int32

    init() throws(SystemCallError) {
        (wakeRead, wakeWrite) = try Descriptor.pipe()
        try Descriptor.setNonBlocking(wakeRead)
        try Descriptor.setNonBlocking(wakeWrite)
    }

    deinit {
        Descriptor.close(wakeRead)
        Descriptor.close(wakeWrite)
    }

    func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    func drainWakeups() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buffer, buffer.count) > 0 {}
    }

    /// The async side: moves the stream's chunks to the pump, waiting while too much is queued.
    func feed(from stream: AsyncStream<[UInt8]>) async {
        for await chunk in stream where !chunk.isEmpty {
            let stop = state.withLock { state -> Bool in
                guard !state.finished else { return true }
                state.chunks.append(chunk)
                state.queued += chunk.count
                return false
            }
            if stop { return }
            wake()
            await withCheckedContinuation { continuation in
                let proceed = state.withLock { state -> Bool in
                    if state.finished || state.queued < Self.queueLimit { return true }
                    state.spaceWaiter = continuation
                    return false
                }
                if proceed { continuation.resume() }
            }
        }
        state.withLock { $0.inputEnded = true }
        wake()
    }

    /// The pump's side: the chunks queued so far, and whether the input has ended.
    func take() -> (chunks: [[UInt8]], ended: Bool) {
        let (chunks, ended, waiter) = state.withLock { state -> ([[UInt8]], Bool, CheckedContinuation<Void, Never>?) in
            defer { state.chunks = []; state.queued = 0; state.spaceWaiter = nil }
            return (state.chunks, state.inputEnded, state.spaceWaiter)
        }
        waiter?.resume()
        return (chunks, ended)
    }

    func cancel() {
        state.withLock { $0.cancelled = true }
        wake()
    }

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// The exec is over: a waiting feeder goes on (and stops).
    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.finished = true
            defer { state.spaceWaiter = nil }
            return state.spaceWaiter
        }
        waiter?.resume()
    }
}

/// One exec on its own thread: stdin to the guest while little is queued on the connection, output collected,
/// the exit status returned. A cancelled caller's command gets SIGKILL; its exit then ends the pump.
struct ExecPump {
    let client: AgentClient
    let request: ExecRequest
    let input: StandardInput
    let control: ExecControl

    /// Stdin is written to the connection only while less than this waits in its queue.
    static let connectionQueueLimit = 256 * 1024

    /// The command's result, and whether it was killed because the caller cancelled.
    func run() throws(AgentClientError) -> (ExecResult, Bool) {
        let process = try client.exec(request)
        var result = ExecResult()
        var inputClosed = false
        var data: [UInt8] = []
        var dataOffset = 0
        var pending: [[UInt8]] = []
        var killed = false
        switch input {
        case .none:
            try process.closeInput()
            inputClosed = true
        case let .data(bytes): data = bytes
        case .stream: break
        }
        while true {
            if !killed, control.isCancelled {
                try process.signal(SIGKILL)
                killed = true
            }
            if !inputClosed {
                switch input {
                case .none: break
                case .data:
                    while dataOffset < data.count, process.queuedInput < Self.connectionQueueLimit {
                        let end = min(data.count, dataOffset + AgentProtocol.chunkSize)
                        try process.write(Array(data[dataOffset..<end]))
                        dataOffset = end
                    }
                    if dataOffset == data.count {
                        try process.closeInput()
                        inputClosed = true
                    }
                case .stream:
                    let (chunks, ended) = control.take()
                    pending += chunks
                    while !pending.isEmpty, process.queuedInput < Self.connectionQueueLimit {
                        try process.write(pending.removeFirst())
                    }
                    if ended, pending.isEmpty {
                        try process.closeInput()
                        inputClosed = true
                    }
                }
            }
            var descriptors = [pollfd(fd: process.descriptor, events: Int16(POLLIN) | (process.wantsWrite ? Int16(POLLOUT) : 0), revents: 0),
                               pollfd(fd: control.wakeRead, events: Int16(POLLIN), revents: 0)]
            do { _ = try Descriptor.poll(&descriptors, timeoutMilliseconds: -1) } catch { throw .connection(.io(error)) }
            if descriptors[1].revents != 0 { control.drainWakeups() }
            let revents = descriptors[0].revents
            guard revents != 0 else { continue }
            let events = try process.service(readable: revents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0,
                                             writable: revents & Int16(POLLOUT) != 0)
            for event in events {
                switch event {
                case let .stdout(bytes): result.standardOutput += bytes
                case let .stderr(bytes): result.standardError += bytes
                case let .failed(error): result.failureReason = error.message
                case let .exited(code, signal):
                    result.exitCode = code
                    result.signal = signal
                    return (result, killed)
                case .started: break
                }
            }
        }
    }
}
