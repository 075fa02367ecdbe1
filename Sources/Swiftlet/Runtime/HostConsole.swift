import Devices
import KVM
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The guest console's host side: guest output to a file descriptor (stdout), host input (stdin) to the UART.
final class ConsoleOutput: ConsoleSink {
    private let fd: Int32

    init(fd: Int32 = STDOUT_FILENO) { self.fd = fd }

    func write(_ byte: UInt8) {
        var byte = byte
        // One write per byte: the guest produces one byte per port exit anyway, and an unbuffered console
        // shows a crashing guest's last words. EINTR (a kick) is retried; other errors drop the byte.
        while Glibc.write(fd, &byte, 1) < 0 && errno == EINTR {}
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
