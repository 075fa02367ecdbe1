import SystemPackage
import Synchronization
import Virtio
#if canImport(Glibc)
import Glibc
#endif

/// Moves frames between a host TAP and a virtio-net device.
///
/// Transmit (guest → host) is the device calling `send` on the queue-serving thread. Receive (host → guest)
/// runs on the device event loop: when the TAP is readable, frames are read and delivered; when the guest has
/// no receive buffers, the frame is kept and the TAP is no longer polled (no spinning, and no frame dropped by
/// us) until the device reports that the driver posted buffers.
final class TapNetworkPump: NetworkBackend {
    let tap: TapDevice
    private let pending = Mutex<[UInt8]?>(nil)
    /// Set once by `attach`. (Device and pump reference each other for the machine's lifetime.)
    private let attached = Mutex<NetDevice?>(nil)
    private var device: NetDevice? { attached.withLock { $0 } }

    init(tap: TapDevice) { self.tap = tap }

    /// Connects the pump to its device and the device event loop.
    func attach(to device: NetDevice, eventLoop: DeviceEventLoop) {
        attached.withLock { $0 = device }
        device.setReceiveBuffersAvailableHandler { [self] in
            if self.flushPending() { eventLoop.reconsider() }
        }
        eventLoop.add(fd: tap.fd.rawValue, events: Int16(POLLIN), isPaused: { [self] in self.pending.withLock { $0 != nil } }) {
            [self] _ in self.receiveAvailable()
        }
    }

    // MARK: Guest → host

    func send(_ frame: ArraySlice<UInt8>) throws {
        let bytes = Array(frame)
        // A full TAP queue is rare; wait for room briefly rather than drop at once (the guest's TCP would
        // retransmit, but later).
        for _ in 0..<100 {
            if try tap.write(bytes) { return }
            var ready = pollfd(fd: tap.fd.rawValue, events: Int16(POLLOUT), revents: 0)
            _ = poll(&ready, 1, 10)
        }
        throw Errno.resourceTemporarilyUnavailable
    }

    // MARK: Host → guest

    /// Reads and delivers frames until the TAP is empty or the guest is out of buffers.
    private func receiveAvailable() {
        guard let device, flushPending() else { return }
        var buffer = [UInt8](repeating: 0, count: NetDevice.maximumPacketLength)
        while true {
            guard let count = try? tap.read(into: &buffer), count > 0 else { return }
            if !device.deliver(frame: buffer[0..<count]) {
                pending.withLock { $0 = Array(buffer[0..<count]) }
                return
            }
        }
    }

    /// Offers the kept frame again; returns true when nothing is pending any more.
    private func flushPending() -> Bool {
        guard let device else { return false }
        return pending.withLock { frame in
            guard let kept = frame else { return true }
            if device.deliver(frame: kept[...]) { frame = nil; return true }
            return false
        }
    }
}
