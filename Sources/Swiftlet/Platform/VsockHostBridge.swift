import CHost
import Logging
import SystemPackage
import Synchronization
import Virtio
#if canImport(Glibc)
import Glibc
#endif

/// Connects a virtio-vsock device to host Unix sockets (Firecracker's convention, see `VsockConfiguration`):
/// listens on the device socket, hands each accepted stream to the device, and has the device event loop poll
/// the listener and the connections' streams as one group whose fds come and go with the connections.
///
/// Nothing here blocks or spins: streams are non-blocking, and the device names only the streams it can act
/// on (read when the guest has credit and RX buffers, write when the host is owed bytes), with a deadline when
/// a connection waits on the guest. The listener is polled only while the guest's driver is running, so a host
/// program that connects earlier waits in the listen backlog.
final class VsockHostBridge: Sendable {
    let device: VsockDevice
    let socketPath: String
    private let listener: Int32
    /// The socket file, removed when the machine stops (or at teardown) if it is still ours.
    let socketFile: OwnedSocketFile?
    /// After accept fails for a reason that persists (no fds left), the listener sits out a second rather than
    /// wake the loop at once again.
    private let acceptPausedUntil = Mutex<ContinuousClock.Instant?>(nil)
    private let logger: Logger

    static let listenBacklog: Int32 = 128

    /// Listens on `configuration.socketPath`, replacing a stale socket left there by an earlier run (a live
    /// listener's socket, or a path that is not a socket, is an error: it may be somebody else's).
    init(configuration: VsockConfiguration, logger: Logger) throws(MachineError) {
        let path = configuration.socketPath
        do {
            listener = try UnixSocket.listen(path: path, backlog: Self.listenBacklog).rawValue
        } catch {
            throw .configuration(.invalidVsock(path, reason: "\(error)"))
        }
        socketFile = OwnedSocketFile(path: path)
        socketPath = path
        self.logger = logger
        device = VsockDevice(guestCID: UInt64(configuration.guestCID), socketPath: path, openListener: { path in
            try UnixSocketStream.connect(to: path)
        }, logger: logger)
    }

    deinit {
        _ = close(listener)
        socketFile?.remove()
    }

    /// Has `eventLoop` poll the listener and the streams. Changes made on other threads (the driver starting
    /// or resetting the device) make the loop ask again.
    func attach(to eventLoop: DeviceEventLoop) {
        device.setInterestChangedHandler { eventLoop.reconsider() }
        eventLoop.addGroup(interest: { [self] in interest() }, handler: { [self] ready in handle(ready) })
    }

    private func interest() -> DeviceEventLoop.Interest {
        let (streams, deadline) = device.hostInterest()
        var interest = DeviceEventLoop.Interest(deadline: deadline)
        for stream in streams {
            let events = (stream.read ? Int16(POLLIN) : 0) | (stream.write ? Int16(POLLOUT) : 0)
            interest.descriptors.append(DeviceEventLoop.PolledDescriptor(fd: stream.descriptor, events: events))
        }
        guard device.acceptsHostStreams else { return interest }
        if let pausedUntil = acceptPausedUntil.withLock({ $0 }), pausedUntil > .now {
            interest.deadline = min(interest.deadline ?? pausedUntil, pausedUntil)
        } else {
            interest.descriptors.append(DeviceEventLoop.PolledDescriptor(fd: listener, events: Int16(POLLIN)))
        }
        return interest
    }

    private func handle(_ ready: [DeviceEventLoop.PolledDescriptor]) {
        if ready.contains(where: { $0.fd == listener }) { acceptConnections() }
        device.serviceHost()
    }

    /// Accepts every host program waiting in the backlog.
    private func acceptConnections() {
        while true {
            let fd = chost_accept_nonblocking(listener)
            if fd >= 0 {
                device.addHostStream(UnixSocketStream(descriptor: fd))
                continue
            }
            switch errno {
            case EINTR, ECONNABORTED:
                continue
            case EAGAIN, EWOULDBLOCK:
                return
            default:
                logger.warning("vsock: accept on \(socketPath): \(Errno(rawValue: errno)); not accepting for a second")
                acceptPausedUntil.withLock { $0 = .now + .seconds(1) }
                return
            }
        }
    }
}
