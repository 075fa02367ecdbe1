import CKVM
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// An eventfd(2): a counter the kernel and the VMM use to signal each other (irqfd, ioeventfd, wake-ups).
public final class EventFD: Sendable {
    public let fd: FileDescriptor

    public init(nonBlocking: Bool = false) throws(KVMError) {
        let raw = eventfd(0, Int32(EFD_CLOEXEC) | (nonBlocking ? Int32(EFD_NONBLOCK) : 0))
        guard raw >= 0 else { throw .ioctlFailed(name: "eventfd", errno: Errno(rawValue: errno)) }
        fd = FileDescriptor(rawValue: raw)
    }

    deinit { try? fd.close() }

    /// Adds `value` to the counter, waking a reader.
    public func signal(_ value: UInt64 = 1) {
        var value = value
        _ = withUnsafeBytes(of: &value) { try? fd.write($0) }
    }

    /// Reads and resets the counter; nil if it was zero on a non-blocking eventfd.
    public func consume() -> UInt64? {
        var value: UInt64 = 0
        let count = withUnsafeMutableBytes(of: &value) { (try? fd.read(into: $0)) ?? 0 }
        return count == 8 ? value : nil
    }

    /// Waits until the counter is non-zero (without consuming it) or `milliseconds` pass (-1: no limit).
    /// Returns whether it became readable. EINTR is retried with the whole timeout, which only lengthens a wait.
    public func wait(milliseconds: Int32) -> Bool {
        var descriptor = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&descriptor, 1, milliseconds)
            if ready < 0, errno == EINTR { continue }
            return ready > 0
        }
    }
}
