import SystemPackage
import Synchronization
import Virtio
#if canImport(Glibc)
import Glibc
#endif

/// The host end of one vsock connection: a connected, non-blocking Unix stream socket (accepted on the device
/// socket, or connected to a `<socket>_<port>` listener). The device calls it under its lock from the event
/// loop, so a full socket answers "0 bytes" and an empty one "nothing yet" instead of blocking: the loop then
/// polls it, as the device asks (`VsockMuxer.hostStreamInterests`).
final class UnixSocketStream: VsockHostStream {
    /// The socket, -1 once closed: atomic so that a reset's close on a vCPU thread and the loop asking for the
    /// descriptor never tear (the device's lock already orders the reads and writes themselves).
    private let descriptor: Atomic<Int32>

    init(descriptor: Int32) { self.descriptor = Atomic(descriptor) }

    deinit { close() }

    /// Connects to the listener at `path`; a missing or refusing listener throws its errno (ENOENT, ECONNREFUSED,
    /// EAGAIN for a full backlog), and the device then refuses the guest's connection with RST.
    static func connect(to path: String) throws(Errno) -> UnixSocketStream {
        do {
            return UnixSocketStream(descriptor: try UnixSocket.connect(path: path).rawValue)
        } catch {
            if case let .failed(_, _, errno) = error { throw errno }
            throw .connectionRefused
        }
    }

    var pollDescriptor: Int32? {
        let fd = descriptor.load(ordering: .relaxed)
        return fd >= 0 ? fd : nil
    }

    /// The bytes read, `[]` at end of file, nil when none are waiting (UnixSocket.receive).
    func read(maximumCount: Int) throws -> [UInt8]? {
        let fd = try openDescriptor()
        var buffer = [UInt8](repeating: 0, count: maximumCount)
        guard let count = try UnixSocket.receive(fd, into: &buffer) else { return nil }
        buffer.removeLast(maximumCount - count)
        return buffer
    }

    /// What the socket takes now, 0 when its buffer is full; a host program that went away is an EPIPE error
    /// (the connection is reset), never a SIGPIPE that would kill the VMM (UnixSocket.send).
    func write(_ bytes: ArraySlice<UInt8>) throws -> Int {
        let fd = try openDescriptor()
        guard !bytes.isEmpty else { return 0 }
        return try UnixSocket.send(fd, bytes)
    }

    func shutdownWrite() {
        if let fd = pollDescriptor { _ = shutdown(fd, Int32(SHUT_WR)) }
    }

    func close() {
        let fd = descriptor.exchange(-1, ordering: .relaxed)
        if fd >= 0 { _ = Glibc.close(fd) }
    }

    private func openDescriptor() throws(Errno) -> FileDescriptor {
        guard let fd = pollDescriptor else { throw .badFileDescriptor }
        return FileDescriptor(rawValue: fd)
    }
}
