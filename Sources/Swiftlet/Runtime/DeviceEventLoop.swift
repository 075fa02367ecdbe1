import KVM
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The thread device work runs on, off the vCPU threads: it waits on eventfds (queue notifications that KVM
/// signals through ioeventfds without an exit) and calls each one's handler.
///
/// Sources are added before `start()`; the loop then polls them all. `stop()` ends and joins the thread.
final class DeviceEventLoop: @unchecked Sendable {
    // SAFETY of @unchecked Sendable: `sources` is only mutated before start(); the thread reads it afterwards.
    private var sources: [(fd: EventFD, handler: @Sendable () -> Void)] = []
    private let wakeup: EventFD
    private var thread: HostThread?

    init() throws(KVMError) { wakeup = try EventFD() }

    var isEmpty: Bool { sources.isEmpty }

    /// Calls `handler` on the loop's thread each time `fd` is signalled (several signals may merge into one call).
    func add(_ fd: EventFD, handler: @escaping @Sendable () -> Void) {
        precondition(thread == nil, "sources are added before the loop starts")
        sources.append((fd, handler))
    }

    func start() throws(MachineError) {
        guard !sources.isEmpty else { return }
        thread = try HostThread(name: "devices") { [self] in self.run() }
    }

    func stop() {
        guard let thread else { return }
        wakeup.signal()
        thread.join()
        self.thread = nil
    }

    private func run() {
        var fds = [pollfd(fd: wakeup.fd.rawValue, events: Int16(POLLIN), revents: 0)]
        fds += sources.map { pollfd(fd: $0.fd.fd.rawValue, events: Int16(POLLIN), revents: 0) }
        while true {
            for index in fds.indices { fds[index].revents = 0 }
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 { if errno == EINTR { continue }; return }
            if fds[0].revents != 0 { return }
            for (index, source) in sources.enumerated() where fds[index + 1].revents & Int16(POLLIN) != 0 {
                _ = source.fd.consume()
                source.handler()
            }
        }
    }
}
