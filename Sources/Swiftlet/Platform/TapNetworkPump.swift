import SystemPackage
import Virtio
#if canImport(Glibc)
import Glibc
#endif

/// A host TAP as a `NetworkPump`'s port: frames already carry the vnet header both ways (IFF_VNET_HDR), and the
/// fd stays the same for the machine's life.
extension TapDevice: FramePort {
    var receiveFD: Int32? { fd.rawValue }

    func receiveFrame(into buffer: inout [UInt8]) -> Int? {
        guard let count = try? read(into: &buffer), count > 0 else { return nil }
        return count
    }

    func send(_ packet: ArraySlice<UInt8>) throws {
        let bytes = Array(packet)
        // A full TAP queue is rare; wait for room briefly rather than drop at once (the guest's TCP would
        // retransmit, but later).
        for _ in 0..<100 {
            if try write(bytes) { return }
            var ready = pollfd(fd: fd.rawValue, events: Int16(POLLOUT), revents: 0)
            _ = poll(&ready, 1, 10)
        }
        throw Errno.resourceTemporarilyUnavailable
    }
}
