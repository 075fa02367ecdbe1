// virtio-vsock packet headers from the guest, and the CONNECT line a host program sends.
import FuzzSupport
import Virtio

runFuzzer { bytes in
    if let header = try? VsockPacketHeader(parsing: bytes) {
        _ = header.shutdownFlags
        precondition(header.length <= VsockPacketHeader.defaultMaximumPayload, "a header past the payload limit was accepted")
    }
    _ = try? VsockHostProtocol.parseConnectLine(bytes)
}
