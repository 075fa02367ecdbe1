import Virtio
#if canImport(Glibc)
import Glibc
#endif

/// A Unix socket to another VM as a `NetworkPump`'s port (`--net socket=PATH[,listen]`). Besides the receive fd
/// the pump watches, the link needs the event loop for its connection: the listening socket (a peer to accept)
/// and the peer's socket while frames wait for room in it.
extension SocketNetworkLink: FramePort {
    /// Watches the listening socket and the output queue; wakes the loop when the peer changes off its thread.
    func attachConnectionSources(to eventLoop: DeviceEventLoop) {
        setPeerChangeHandler { eventLoop.reconsider() }
        if listenerFD != nil {
            eventLoop.add(events: Int16(POLLIN), currentFD: { [self] in self.listenerFD }) { [self] _ in self.acceptPeers() }
        }
        eventLoop.add(events: Int16(POLLOUT), currentFD: { [self] in self.outputFD }) { [self] _ in self.flushOutput() }
    }
}
