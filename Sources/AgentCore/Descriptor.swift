import CAgent
#if canImport(Glibc)
import Glibc
#endif

/// Thin wrappers over read, write, poll and fcntl on raw descriptors. EINTR is retried here; EAGAIN is an
/// answer ("nothing now"), not an error. Buffers are Swift arrays passed for the one call.
public enum Descriptor {
    /// Up to `maximum` bytes; `[]` at end of file; nil when a non-blocking descriptor has nothing now.
    /// EIO from a pty master whose slave side is closed is end of file too.
    public static func read(_ fd: Int32, maximum: Int = 64 * 1024) throws(SystemCallError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: maximum)
        while true {
            let count = Glibc.read(fd, &buffer, maximum)
            if count >= 0 {
                buffer.removeLast(maximum - count)
                return buffer
            }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            case EIO: return []
            default: throw SystemCallError("read")
            }
        }
    }

    /// What a non-blocking descriptor took now (0 when full).
    public static func writeSome(_ fd: Int32, _ bytes: ArraySlice<UInt8>) throws(SystemCallError) -> Int {
        guard !bytes.isEmpty else { return 0 }
        while true {
            let count = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count >= 0 { return count }
            switch errno {
            case EINTR: continue
            case EAGAIN: return 0
            // Not a socket (a pipe, a pty, a file): write(2), with SIGPIPE ignored by whoever runs this.
            case ENOTSOCK: return try writePlain(fd, bytes)
            default: throw SystemCallError("write")
            }
        }
    }

    private static func writePlain(_ fd: Int32, _ bytes: ArraySlice<UInt8>) throws(SystemCallError) -> Int {
        while true {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count >= 0 { return count }
            switch errno {
            case EINTR: continue
            case EAGAIN: return 0
            default: throw SystemCallError("write")
            }
        }
    }

    /// Writes everything, waiting for a non-blocking descriptor to take more when it is full.
    public static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) throws(SystemCallError) {
        var rest = bytes
        while !rest.isEmpty {
            let count = try writeSome(fd, rest)
            if count == 0 { _ = try wait(fd, events: Int16(POLLOUT), timeoutMilliseconds: -1) }
            rest = rest.dropFirst(count)
        }
    }

    /// poll(2) over `descriptors` (their `revents` filled in); the number ready, 0 on timeout.
    @discardableResult
    public static func poll(_ descriptors: inout [pollfd], timeoutMilliseconds: Int32) throws(SystemCallError) -> Int {
        while true {
            let count = Glibc.poll(&descriptors, nfds_t(descriptors.count), timeoutMilliseconds)
            if count >= 0 { return Int(count) }
            if errno != EINTR { throw SystemCallError("poll") }
        }
    }

    /// Waits for `events` on one descriptor; its revents, 0 on timeout.
    public static func wait(_ fd: Int32, events: Int16, timeoutMilliseconds: Int32) throws(SystemCallError) -> Int16 {
        var descriptors = [pollfd(fd: fd, events: events, revents: 0)]
        try poll(&descriptors, timeoutMilliseconds: timeoutMilliseconds)
        return descriptors[0].revents
    }

    public static func setNonBlocking(_ fd: Int32, _ nonBlocking: Bool = true) throws(SystemCallError) {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { throw SystemCallError("fcntl F_GETFL") }
        let wanted = nonBlocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        guard fcntl(fd, F_SETFL, wanted) >= 0 else { throw SystemCallError("fcntl F_SETFL") }
    }

    /// A close-on-exec pipe: (read end, write end).
    public static func pipe() throws(SystemCallError) -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        guard cagent_pipe(&ends) == 0 else { throw SystemCallError("pipe") }
        return (ends[0], ends[1])
    }

    /// A connected pair of close-on-exec Unix stream sockets (tests run the agent's core over one).
    public static func socketPair() throws(SystemCallError) -> (Int32, Int32) {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw SystemCallError("socketpair")
        }
        return (ends[0], ends[1])
    }

    public static func close(_ fd: Int32) { if fd >= 0 { _ = Glibc.close(fd) } }
}
