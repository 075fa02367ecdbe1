import Virtio
#if canImport(Glibc)
import Glibc
#endif

/// A Unix socket to another VM as a `NetworkPump`'s port (`--net socket=PATH[,listen]`). Besides the receive fd
/// the pump watches, the link needs the event loop for its connection: the listening socket (a peer to accept),
/// the peer's socket while frames wait for room in it, and, on the connecting side without a peer, the time of
/// the next attempt to connect again. The guest sees the link up only while a peer is connected.
extension SocketNetworkLink: FramePort {
    /// Watches the listening socket, the output queue and the reconnection time; wakes the loop and updates the
    /// device's link state when the peer changes.
    func attachConnectionSources(to eventLoop: DeviceEventLoop, device: NetDevice) {
        device.setLinkUp(isConnected)
        setPeerChangeHandler { [weak self, weak device] in
            eventLoop.reconsider()
            if let self, let device { device.setLinkUp(self.isConnected) }
        }
        if listenerFD != nil {
            eventLoop.add(events: Int16(POLLIN), currentFD: { [self] in self.listenerFD }) { [self] _ in self.acceptPeers() }
        }
        eventLoop.add(events: Int16(POLLOUT), currentFD: { [self] in self.outputFD }) { [self] _ in self.flushOutput() }
        eventLoop.addGroup(interest: { [self] in DeviceEventLoop.Interest(deadline: self.nextReconnectAttempt) },
                           handler: { [self] _ in self.reconnectIfDue() })
    }
}
