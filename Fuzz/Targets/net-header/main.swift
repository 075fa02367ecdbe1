// virtio-net headers on frames the guest transmits: parsing, the frame-length check and the offload check.
import FuzzSupport
import Virtio

runFuzzer { bytes in
    var input = FuzzInput(bytes)
    let features: UInt64 = input.integer()
    let frame = input.rest()
    if let header = try? VirtioNetHeader(parsing: frame) {
        _ = try? header.validate(frameLength: max(0, frame.count - 12))
        _ = try? header.checkTransmitOffloads(negotiated: features)
        _ = header.encoded()
    }
    _ = try? VirtioNetHeader.validated(packet: frame)
}
