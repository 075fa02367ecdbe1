import KVM
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The thread device work runs on, off the vCPU threads: it waits on file descriptors — eventfds that KVM
/// signals through ioeventfds when a guest kicks a queue, and backend fds such as a TAP or vsock's Unix
/// sockets — and calls each one's handler.
///
/// Two kinds of source, both added before `start()`:
/// - a single fd (`add`), which can be paused and resumed from any thread (e.g. a network device stops reading
///   its TAP while the guest has no receive buffers, instead of spinning) or change (a socket backend's peer);
/// - a group (`addGroup`), whose fds come and go while the loop runs (vsock's host connections): the loop asks
///   it at the top of every round which fds to poll for what, and by when it wants to be called anyway (a
///   timeout), then hands it the ready ones.
/// A change made on another thread takes effect once that thread calls `reconsider()`; handlers running on the
/// loop's own thread need not, since every round starts by asking again.
final class DeviceEventLoop: @unchecked Sendable {
    // SAFETY of @unchecked Sendable: `sources`, `groups` and `thread` are only mutated before start() / in
    // stop(), on the thread that owns the machine; the loop thread only reads `sources` and `groups`.
    private struct Source {
        let events: Int16
        /// The fd to poll this round; nil sits the round out.
        let currentFD: @Sendable () -> Int32?
        let handler: @Sendable (_ revents: Int16) -> Void
    }

    /// One fd a group wants polled this round; after the poll, `revents` says what it is ready for.
    struct PolledDescriptor: Sendable, Equatable {
        var fd: Int32
        var events: Int16
        var revents: Int16 = 0
    }

    /// What a group wants this round: its fds, and a time by which it wants its handler called even if none is
    /// ready (nil: no timeout).
    struct Interest: Sendable {
        var descriptors: [PolledDescriptor]
        var deadline: ContinuousClock.Instant?

        init(descriptors: [PolledDescriptor] = [], deadline: ContinuousClock.Instant? = nil) {
            self.descriptors = descriptors
            self.deadline = deadline
        }
    }

    private struct Group {
        let interest: @Sendable () -> Interest
        let handler: @Sendable (_ ready: [PolledDescriptor]) -> Void
    }

    private var sources: [Source] = []
    private var groups: [Group] = []
    private let wakeup: EventFD
    private let stopping = Atomic<Bool>(false)
    /// Pause: the loop finishes the round it is in (so no device request is left half done: every handler runs
    /// to completion on this thread), acknowledges on `parked`, and waits for `resume()` or `stop()`.
    private let pauseRequested = Atomic<Bool>(false)
    /// Counts pause requests. A request that comes while the loop is still parked from an earlier one (a resume
    /// and a new pause, both before the loop thread ran again) consumed that earlier acknowledgement; the loop
    /// sees the count move and acknowledges again, or the new pause would wait in vain.
    private let pauseRequests = Atomic<UInt64>(0)
    private let parked: EventFD
    /// The loop thread's pthread_t once it runs (0 before), so `reconsider()` can tell its own calls apart.
    private let loopThread = Atomic<UInt>(0)
    private var thread: HostThread?
    /// The loop thread's name ("devices", "disk0", ...: `DeviceEventLoops`).
    let threadName: String

    init(threadName: String = "devices") throws(KVMError) {
        self.threadName = threadName
        wakeup = try EventFD()
        parked = try EventFD(nonBlocking: true)
    }

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

    /// Adds a group of fds that changes while the loop runs. Each round `interest()` says what to poll; `handler`
    /// gets the descriptors that were ready, or an empty list when only the deadline passed. Both run on the
    /// loop's thread, so the group needs no lock against itself; the fds it names must stay open until the
    /// handler has run (a group closes its own fds from its handler, or marks them for closing there).
    func addGroup(interest: @escaping @Sendable () -> Interest, handler: @escaping @Sendable (_ ready: [PolledDescriptor]) -> Void) {
        precondition(thread == nil, "groups are added before the loop starts")
        groups.append(Group(interest: interest, handler: handler))
    }

    /// Makes the loop re-read the sources' paused state and the groups' interest (call after changing one from
    /// another thread; on the loop's own thread it is a no-op, as the next round asks anyway).
    func reconsider() {
        if loopThread.load(ordering: .relaxed) == pthread_self() { return }
        wakeup.signal()
    }

    func start() throws(MachineError) {
        guard !sources.isEmpty || !groups.isEmpty else { return }
        thread = try HostThread(name: threadName) { [self] in self.run() }
    }

    func stop() {
        guard let thread else { return }
        stopping.store(true, ordering: .releasing)
        wakeup.signal()
        thread.join()
        self.thread = nil
    }

    /// Quiesces the loop: returns true once it is parked between rounds (at once if it never started), false if
    /// it did not acknowledge within `milliseconds` (a handler stuck in a system call).
    func pause(milliseconds: Int32) -> Bool {
        requestPause()
        return waitUntilParked(milliseconds: milliseconds)
    }

    /// The first half of `pause`: asks the loop to park after the round it is in, without waiting.
    func requestPause() {
        guard thread != nil else { return }
        _ = parked.consume()
        pauseRequested.store(true, ordering: .releasing)
        pauseRequests.wrappingAdd(1, ordering: .releasing)
        wakeup.signal()
    }

    /// The second half of `pause`: true once the loop has parked (at once if it never started).
    func waitUntilParked(milliseconds: Int32) -> Bool {
        guard thread != nil else { return true }
        return parked.wait(milliseconds: milliseconds)
    }

    /// Lets a paused loop go on; its next round polls every source afresh.
    func resume() {
        pauseRequested.store(false, ordering: .releasing)
        wakeup.signal()
    }

    private func run() {
        Seccomp.enterThread(.devices)
        loopThread.store(pthread_self(), ordering: .relaxed)
        var fds: [pollfd] = []
        var groupRanges: [Range<Int>] = []
        var groupDeadlines: [ContinuousClock.Instant?] = []
        while true {
            fds.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wakeup.fd.rawValue, events: Int16(POLLIN), revents: 0))
            for source in sources {
                // A negative fd is skipped by poll(2): that is how a paused source sits out a round.
                fds.append(pollfd(fd: source.currentFD() ?? -1, events: source.events, revents: 0))
            }
            groupRanges.removeAll(keepingCapacity: true)
            groupDeadlines.removeAll(keepingCapacity: true)
            var earliest: ContinuousClock.Instant?
            for group in groups {
                let interest = group.interest()
                let start = fds.count
                for descriptor in interest.descriptors {
                    fds.append(pollfd(fd: descriptor.fd, events: descriptor.events, revents: 0))
                }
                groupRanges.append(start..<fds.count)
                groupDeadlines.append(interest.deadline)
                if let deadline = interest.deadline { earliest = min(earliest ?? deadline, deadline) }
            }

            let ready = poll(&fds, nfds_t(fds.count), earliest.map(Self.milliseconds(until:)) ?? -1)
            if ready < 0 { if errno == EINTR { continue }; return }
            if fds[0].revents != 0 {
                _ = wakeup.consume()
                if stopping.load(ordering: .acquiring) { return }
                if pauseRequested.load(ordering: .acquiring) {
                    // Sources that were ready stay ready (level-triggered poll): they are served after resume.
                    var acknowledged = pauseRequests.load(ordering: .acquiring)
                    parked.signal()
                    while pauseRequested.load(ordering: .acquiring), !stopping.load(ordering: .acquiring) {
                        if wakeup.wait(milliseconds: -1) { _ = wakeup.consume() }
                        let requests = pauseRequests.load(ordering: .acquiring)
                        if requests != acknowledged, pauseRequested.load(ordering: .acquiring) {
                            acknowledged = requests
                            parked.signal()
                        }
                    }
                    if stopping.load(ordering: .acquiring) { return }
                    continue
                }
            }
            for (index, source) in sources.enumerated() where fds[index + 1].revents != 0 {
                source.handler(fds[index + 1].revents)
            }
            let now = ContinuousClock.now
            for (index, group) in groups.enumerated() {
                let readyDescriptors = fds[groupRanges[index]].filter { $0.revents != 0 }.map {
                    PolledDescriptor(fd: $0.fd, events: $0.events, revents: $0.revents)
                }
                let due = groupDeadlines[index].map { $0 <= now } ?? false
                if !readyDescriptors.isEmpty || due { group.handler(readyDescriptors) }
            }
        }
    }

    /// poll(2)'s timeout for `deadline`: whole milliseconds, rounded up so that the loop does not wake just
    /// before the deadline and go round again with a zero timeout.
    static func milliseconds(until deadline: ContinuousClock.Instant) -> Int32 {
        let remaining = ContinuousClock.now.duration(to: deadline)
        guard remaining > .zero else { return 0 }
        let (seconds, attoseconds) = remaining.components
        let milliseconds = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: milliseconds)
    }
}
