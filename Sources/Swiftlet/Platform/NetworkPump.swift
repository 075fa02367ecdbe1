import Synchronization
import Virtio
#if canImport(Glibc)
import Glibc
#endif

/// A host endpoint that carries a guest NIC's frames: a TAP (`TapNetworkPump.swift`), a socket to another VM
/// (`SocketNetworkPump.swift`).
protocol FramePort: AnyObject, Sendable {
    /// The fd that becomes readable when frames for the guest may be waiting; nil when there is none now (a
    /// socket without a peer).
    var receiveFD: Int32? { get }
    /// Writes the next frame for the guest (vnet header + Ethernet frame) into `buffer`, which holds
    /// `NetDevice.maximumPacketLength` bytes, and returns its length; nil when none is waiting. Never blocks.
    func receiveFrame(into buffer: inout [UInt8]) -> Int?
    /// `NetworkBackend.send`: one frame from the guest.
    func send(_ packet: ArraySlice<UInt8>) throws
}

/// Moves frames between a `FramePort` and a virtio-net device.
///
/// Transmit (guest → host) is the device calling `send` on the queue-serving thread, passed straight to the port.
/// Receive (host → guest) runs on the device event loop: when the port's fd is readable, frames are read and
/// delivered; when the guest has no receive buffers, the frame is kept and the fd is no longer polled (no spinning,
/// and no frame dropped by us) until the device reports that the driver posted buffers.
final class NetworkPump: NetworkBackend {
    let port: any FramePort

    private struct Receiver {
        /// Set once by `attach`. (Device and pump reference each other for the machine's lifetime.)
        var device: NetDevice?
        /// The frame the guest had no room for.
        var pending: [UInt8]?
        var buffer = [UInt8](repeating: 0, count: NetDevice.maximumPacketLength)
    }
    /// Held for a whole receive pass, which can run on the event loop and, through the buffers-available handler,
    /// on a vCPU thread: frames reach the guest in the order the port gave them.
    private let receiver = Mutex(Receiver())

    init(port: any FramePort) { self.port = port }

    /// Connects the pump to its device and the device event loop.
    func attach(to device: NetDevice, eventLoop: DeviceEventLoop) {
        receiver.withLock { $0.device = device }
        device.setReceiveBuffersAvailableHandler { [self] in
            self.receiveAvailable()
            eventLoop.reconsider()
        }
        eventLoop.add(events: Int16(POLLIN), currentFD: { [self] in
            self.receiver.withLock { $0.pending != nil } ? nil : self.port.receiveFD
        }) { [self] _ in self.receiveAvailable() }
    }

    func send(_ frame: ArraySlice<UInt8>) throws { try port.send(frame) }

    /// Offers the kept frame again, then reads and delivers frames until the port has none or the guest is out of
    /// buffers (the frame it refused is kept, which pauses the polling).
    private func receiveAvailable() {
        receiver.withLock { receiver in
            guard let device = receiver.device else { return }
            if let kept = receiver.pending {
                guard device.deliver(frame: kept[...]) else { return }
                receiver.pending = nil
            }
            while let count = port.receiveFrame(into: &receiver.buffer) {
                if !device.deliver(frame: receiver.buffer[0..<count]) {
                    receiver.pending = Array(receiver.buffer[0..<count])
                    return
                }
            }
        }
    }
}

extension NetworkPump {
    /// The virtio-net device for one `--net`, with its backend opened and wired to the event loop.
    /// A listening socket link's file goes into `socketFiles`, for removal when the machine stops.
    static func makeDevice(for network: NetworkConfiguration, eventLoop: DeviceEventLoop,
                           socketFiles: inout [OwnedSocketFile]) throws(MachineError) -> NetDevice {
        switch network.backend {
        case let .tap(name):
            let tap: TapDevice
            do {
                // The offloads the guest's driver takes (GUEST_CSUM, GUEST_TSO4/6, GUEST_UFO): the host kernel
                // may then hand us partially checksummed and large segments for the guest.
                tap = try TapDevice(name: name, offloads: [.checksum, .tso4, .tso6, .tsoECN, .ufo])
            } catch {
                throw .configuration(.invalidNetwork("tap=\(name)", reason: "\(error)"))
            }
            let pump = NetworkPump(port: tap)
            let device = NetDevice(mac: network.mac.bytes, mtu: network.advisedMTU, backend: pump)
            pump.attach(to: device, eventLoop: eventLoop)
            return device
        case let .socket(path, listen):
            let link: SocketNetworkLink
            do {
                link = listen ? try SocketNetworkLink(listeningOn: path) : try SocketNetworkLink(connectingTo: path)
            } catch {
                throw .configuration(.invalidNetwork("socket=\(path)\(listen ? ",listen" : "")", reason: "\(error)"))
            }
            if let file = link.socketFile { socketFiles.append(file) }
            let pump = NetworkPump(port: link)
            // No offloads: the stream carries bare Ethernet frames, so every frame must be complete (see FrameStream).
            let device = NetDevice(mac: network.mac.bytes, mtu: network.advisedMTU, offloads: false, backend: pump)
            pump.attach(to: device, eventLoop: eventLoop)
            link.attachConnectionSources(to: eventLoop, device: device)
            return device
        }
    }
}
