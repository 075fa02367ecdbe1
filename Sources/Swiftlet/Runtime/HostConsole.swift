import Devices
import KVM
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The guest console's host side: guest output to a file descriptor (stdout), host input (stdin) to the UART.
///
/// Output never blocks the device that produces it. The UART calls `write` on a vCPU thread with its lock held
/// and the virtio-console on the device loop, so a reader that stops reading (`swiftlet run | sleep 20`, a
/// terminal held with Ctrl-S) must not stall either. Bytes go into a bounded ring (64 KiB) under a short lock and
/// a thread of its own ("console-out") writes them to the fd. When the ring is full, bytes are dropped and counted,
/// as a serial line with nobody listening loses them; the count is logged. The drain thread is woken only when
/// the ring goes from empty to non-empty, so a burst of output costs one wake-up, not one per byte.
///
/// `stop()` ends in bounded time whatever the drain thread is doing: it gives the thread `drainMilliseconds` to
/// write what is buffered (a crashing guest's last words), then interrupts a blocked write(2) with the kick signal
/// and discards the rest. EPIPE (the reader has gone; SIGPIPE is ignored by the CLI) is logged once and the
/// output is discarded from then on; the guest runs on.
///
/// Threads and locks: any thread may call `write` (the UART's and the virtio-console's locks are held then, so
/// the ring's lock comes after them); the drain thread takes the ring's lock only to copy bytes out, never while
/// in write(2). `start` and `stop` come from the machine's lifecycle.
final class ConsoleOutput: ConsoleSink {
    static let capacity = 64 * 1024
    /// How long `stop()` lets buffered output reach the fd before discarding it.
    static let drainMilliseconds: Int32 = 500

    private struct Ring {
        var bytes = [UInt8](repeating: 0, count: ConsoleOutput.capacity)
        var start = 0
        var count = 0
        /// Bytes dropped because the ring was full, in all / not yet logged.
        var dropped: UInt64 = 0
        var droppedUnreported: UInt64 = 0
    }

    private let fd: Int32
    private let logger: Logger
    private let ring = Mutex(Ring())
    /// Signalled when the ring goes from empty to non-empty, and by `stop()`.
    private let wakeup: EventFD
    /// Signalled by the drain thread as it ends.
    private let finished: EventFD
    /// Set by `stop()`: write out what is buffered, then end.
    private let stopping = Atomic<Bool>(false)
    /// Set when the drain time is up: a write interrupted by the kick gives up.
    private let abandon = Atomic<Bool>(false)
    private let thread = Mutex<HostThread?>(nil)

    init(fd: Int32 = STDOUT_FILENO, logger: Logger = Logger(label: "swiftlet.console")) throws(MachineError) {
        self.fd = fd
        self.logger = logger
        do {
            wakeup = try EventFD()
            finished = try EventFD()
        } catch { throw .kvm(error) }
    }

    /// Starts the drain thread. Bytes written before are kept (up to the ring's capacity) and written then.
    func start() throws(MachineError) {
        KickSignal.install()
        let started = try HostThread(name: "console-out") { [self] in self.drain() }
        thread.withLock { $0 = started }
        wakeup.signal()
    }

    func write(_ byte: UInt8) {
        let wake = ring.withLock { ring -> Bool in
            guard ring.count < Self.capacity else {
                ring.dropped &+= 1
                ring.droppedUnreported &+= 1
                return false
            }
            var end = ring.start + ring.count
            if end >= Self.capacity { end -= Self.capacity }
            ring.bytes[end] = byte
            ring.count += 1
            return ring.count == 1
        }
        if wake { wakeup.signal() }
    }

    /// Queues `bytes` in order (the virtio-console's transmit buffers).
    func write(contentsOf bytes: ArraySlice<UInt8>) {
        guard !bytes.isEmpty else { return }
        let wake = ring.withLock { ring -> Bool in
            let wasEmpty = ring.count == 0
            let taken = min(Self.capacity - ring.count, bytes.count)
            var end = ring.start + ring.count
            for byte in bytes.prefix(taken) {
                if end >= Self.capacity { end -= Self.capacity }
                ring.bytes[end] = byte
                end += 1
            }
            ring.count += taken
            let dropped = UInt64(bytes.count - taken)
            ring.dropped &+= dropped
            ring.droppedUnreported &+= dropped
            return wasEmpty && taken > 0
        }
        if wake { wakeup.signal() }
    }

    /// Bytes dropped so far because the ring was full (or still buffered when `stop()` gave up).
    var droppedBytes: UInt64 { ring.withLock { $0.dropped } }

    /// Bytes buffered and not yet written.
    var pendingBytes: Int { ring.withLock { $0.count } }

    /// Writes out what is buffered (for up to `drainMilliseconds`), then ends the drain thread and waits for it.
    /// Idempotent; returns at once if the thread never started.
    func stop(drainMilliseconds: Int32 = ConsoleOutput.drainMilliseconds) {
        guard let thread = thread.withLock({ current -> HostThread? in defer { current = nil }; return current }) else { return }
        stopping.store(true, ordering: .releasing)
        wakeup.signal()
        if !finished.wait(milliseconds: drainMilliseconds) {
            // Blocked in write(2) on a reader that does not read: interrupt it (the kick has no SA_RESTART, so
            // write returns EINTR or a short count) until the thread sees `abandon`. A kick that lands just before
            // the thread enters write is lost, hence the loop.
            abandon.store(true, ordering: .releasing)
            repeat { thread.kick() } while !finished.wait(milliseconds: 10)
        }
        thread.join()
        let unreported = ring.withLock { ring -> UInt64 in
            // What is still buffered was never written: count it with the rest.
            ring.dropped &+= UInt64(ring.count)
            ring.droppedUnreported &+= UInt64(ring.count)
            ring.count = 0
            defer { ring.droppedUnreported = 0 }
            return ring.droppedUnreported
        }
        if unreported > 0 { reportDropped(unreported) }
    }

    private func reportDropped(_ count: UInt64) {
        logger.warning("console output dropped \(count) bytes: nobody is reading")
    }

    // MARK: the drain thread

    private func drain() {
        // A library caller's thread may have every signal blocked; the kick must reach this one.
        KickSignal.unblockInCurrentThread()
        Seccomp.enterThread(.console)
        var chunk = [UInt8](repeating: 0, count: 4096)
        var discarding = false
        /// Bytes taken from the ring but never written because `stop()` gave up on the reader: counted as dropped
        /// when the thread ends, so that the stop's report includes them.
        var abandoned: UInt64 = 0
        while true {
            let (taken, unreported) = ring.withLock { ring -> (Int, UInt64) in
                let taken = min(ring.count, chunk.count, Self.capacity - ring.start)
                for index in 0..<taken { chunk[index] = ring.bytes[ring.start + index] }
                ring.start += taken
                if ring.start == Self.capacity { ring.start = 0 }
                ring.count -= taken
                defer { ring.droppedUnreported = 0 }
                return (taken, ring.droppedUnreported)
            }
            // Drops are reported from here, after a write returned: never on the device's path.
            if unreported > 0 { reportDropped(unreported) }
            if taken == 0 {
                if stopping.load(ordering: .acquiring) { break }
                if wakeup.wait(milliseconds: -1) { _ = wakeup.consume() }
                continue
            }
            if discarding { continue }
            if abandon.load(ordering: .acquiring) { abandoned &+= UInt64(taken); continue }
            switch writeAll(chunk[0..<taken]) {
            case .written: break
            case .abandoned(let unwritten): abandoned &+= UInt64(unwritten)
            case .failed: discarding = true
            }
        }
        if abandoned > 0 {
            ring.withLock { ring in
                ring.dropped &+= abandoned
                ring.droppedUnreported &+= abandoned
            }
        }
        finished.signal()
    }

    private enum WriteOutcome {
        case written
        /// `stop()` gave up while the fd took no more: this many bytes were not written.
        case abandoned(unwritten: Int)
        /// The fd cannot take output any more (said once in the log).
        case failed
    }

    /// Writes `bytes` whole, unless `stop()` gives up on the reader or the fd fails.
    private func writeAll(_ bytes: ArraySlice<UInt8>) -> WriteOutcome {
        var rest = bytes
        while !rest.isEmpty {
            let written = rest.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written > 0 { rest = rest.dropFirst(written); continue }
            let error = written < 0 ? errno : EIO
            if abandon.load(ordering: .acquiring) { return .abandoned(unwritten: rest.count) }
            switch error {
            case EINTR:
                continue
            case EAGAIN:
                // Someone made the fd non-blocking: wait for room instead of spinning.
                var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&entry, 1, 100)
            case EPIPE:
                logger.warning("console output: the reader has gone (EPIPE); the guest's output is discarded from now on")
                return .failed
            default:
                logger.warning("console output failed (errno \(error)); the guest's output is discarded from now on")
                return .failed
            }
        }
        return .written
    }
}

/// Reads the host's stdin on its own thread and feeds the guest's UART, watching for the escape sequence
/// Ctrl-A X (stop the VM) when stdin is a terminal. Ctrl-A Ctrl-A sends one Ctrl-A to the guest.
final class ConsoleInput: Sendable {
    static let escape: UInt8 = 0x01   // Ctrl-A

    /// Hands bytes to the guest; returns how many were taken (the UART's host-side queue is bounded).
    private let deliver: @Sendable (ArraySlice<UInt8>) -> Int
    private let onEscapeStop: @Sendable () -> Void
    private let watchEscape: Bool
    /// Signalled by `stop()` to end the input thread's poll.
    private let wakeup: EventFD
    private let thread = Mutex<HostThread?>(nil)

    init(watchEscape: Bool, deliver: @escaping @Sendable (ArraySlice<UInt8>) -> Int, onEscapeStop: @escaping @Sendable () -> Void) throws(MachineError) {
        self.watchEscape = watchEscape
        self.deliver = deliver
        self.onEscapeStop = onEscapeStop
        do { wakeup = try EventFD() } catch { throw .kvm(error) }
    }

    func start() throws(MachineError) {
        let started = try HostThread(name: "console-in") { [self] in self.run() }
        thread.withLock { $0 = started }
    }

    /// Ends the input thread and waits for it.
    func stop() {
        wakeup.signal()
        thread.withLock { $0 }?.join()
    }

    private func run() {
        Seccomp.enterThread(.console)
        var buffer = [UInt8](repeating: 0, count: 256)
        var pendingEscape = false
        var fds = [pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeup.fd.rawValue, events: Int16(POLLIN), revents: 0)]
        while true {
            fds[0].revents = 0; fds[1].revents = 0
            let ready = poll(&fds, 2, -1)
            if ready < 0 { if errno == EINTR { continue }; return }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { Glibc.read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count < 0 { if errno == EINTR || errno == EAGAIN { continue }; return }
            if count == 0 { return }   // EOF: the guest keeps running without input
            var out: [UInt8] = []
            out.reserveCapacity(count)
            for byte in buffer[0..<count] {
                guard watchEscape else { out.append(byte); continue }
                if pendingEscape {
                    pendingEscape = false
                    switch byte {
                    case UInt8(ascii: "x"), UInt8(ascii: "X"):
                        if !send(out) { return }
                        onEscapeStop()
                        return
                    case Self.escape: out.append(Self.escape)
                    default: out.append(Self.escape); out.append(byte)
                    }
                } else if byte == Self.escape {
                    pendingEscape = true
                } else {
                    out.append(byte)
                }
            }
            if !send(out) { return }
        }
    }

    /// Delivers all of `bytes`, waiting while the guest's input queue is full (a paste larger than the
    /// queue, a guest not reading). Returns false if asked to stop meanwhile.
    private func send(_ bytes: [UInt8]) -> Bool {
        var rest = bytes[...]
        while !rest.isEmpty {
            let taken = deliver(rest)
            rest = rest.dropFirst(taken)
            if !rest.isEmpty {
                var wake = pollfd(fd: wakeup.fd.rawValue, events: Int16(POLLIN), revents: 0)
                if poll(&wake, 1, 10) > 0 { return false }
            }
        }
        return true
    }
}
