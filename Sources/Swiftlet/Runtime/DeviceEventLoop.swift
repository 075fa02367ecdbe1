import KVM
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The thread device work runs on, off the vCPU threads: it waits on file descriptors — eventfds that KVM
/// signals through ioeventfds when a guest kicks a queue, and backend fds such as a TAP — and calls each one's
/// handler.
///
/// Sources are added before `start()`. A source can be paused and resumed from any thread (e.g. a network
/// device stops reading its TAP while the guest has no receive buffers, instead of spinning), or change its fd (a
/// socket backend's peer); `reconsider()` wakes the loop so that a change takes effect at once.
final class DeviceEventLoop: @unchecked Sendable {
    // SAFETY of @unchecked Sendable: `sources` and `thread` are only mutated before start() / in stop(), on the
    // thread that owns the machine; the loop thread only reads `sources`.
    private struct Source {
        let events: Int16
        /// The fd to poll this round; nil sits the round out.
        let currentFD: @Sendable () -> Int32?
        let handler: @Sendable (_ revents: Int16) -> Void
    }
    private var sources: [Source] = []
    private let wakeup: EventFD
    private let stopping = Atomic<Bool>(false)
    private var thread: HostThread?

    init() throws(KVMError) { wakeup = try EventFD() }

    /// Calls `handler` on the loop's thread each time `fd` is signalled (several signals may merge into one call).
    func add(_ fd: EventFD, handler: @escaping @Sendable () -> Void) {
        add(fd: fd.fd.rawValue, events: Int16(POLLIN)) { _ in
            _ = fd.consume()
            handler()
        }
    }

    /// Calls `handler` with the poll events whenever `fd` is ready for `events`, unless `isPaused()` says so.
    func add(fd: Int32, events: Int16, isPaused: (@Sendable () -> Bool)? = nil, handler: @escaping @Sendable (_ revents: Int16) -> Void) {
        add(events: events, currentFD: { isPaused?() == true ? nil : fd }, handler: handler)
    }

    /// Calls `handler` with the poll events whenever the fd `currentFD()` names is ready for `events`; asked anew
    /// each round, so a backend whose connection comes and goes (or that pauses) says so by returning another fd
    /// or nil. A change made off the loop's thread takes effect after `reconsider()`.
    func add(events: Int16, currentFD: @escaping @Sendable () -> Int32?, handler: @escaping @Sendable (_ revents: Int16) -> Void) {
        precondition(thread == nil, "sources are added before the loop starts")
        sources.append(Source(events: events, currentFD: currentFD, handler: handler))
    }

    /// Makes the loop re-read the sources' paused state (call after changing one).
    func reconsider() { wakeup.signal() }

    func start() throws(MachineError) {
        guard !sources.isEmpty else { return }
        thread = try HostThread(name: "devices") { [self] in self.run() }
    }

    func stop() {
        guard let thread else { return }
        stopping.store(true, ordering: .releasing)
        wakeup.signal()
        thread.join()
        self.thread = nil
    }

    private func run() {
        var fds = [pollfd](repeating: pollfd(), count: sources.count + 1)
        while true {
            fds[0] = pollfd(fd: wakeup.fd.rawValue, events: Int16(POLLIN), revents: 0)
            for (index, source) in sources.enumerated() {
                // A negative fd is skipped by poll(2): that is how a paused source sits out a round.
                fds[index + 1] = pollfd(fd: source.currentFD() ?? -1, events: source.events, revents: 0)
            }
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 { if errno == EINTR { continue }; return }
            if fds[0].revents != 0 {
                _ = wakeup.consume()
                if stopping.load(ordering: .acquiring) { return }
            }
            for (index, source) in sources.enumerated() where fds[index + 1].revents != 0 {
                source.handler(fds[index + 1].revents)
            }
        }
    }
}
