// How Ethernet frames travel over a byte stream between two VMs (`--net socket=PATH`): each frame is a 4-byte
// big-endian length followed by that many bytes of Ethernet frame (destination MAC first, no FCS, no virtio-net
// header). A length outside 14...65550 is not a frame: the stream is broken (or not ours) and is dropped.
//
// The vnet header stays out of the stream on purpose: the socket device offers no offloads, so every header the
// guest sends is all zero and every frame it receives is complete, checksummed and at most one MTU (which for a
// socket link defaults to 65520, so that one TCP segment of 64 KiB is one frame). The format
// is then the plain one QEMU's `-netdev stream`/`socket` also uses, and nothing on the wire depends on the
// virtio version.

/// Why a stream stopped making sense.
public enum FrameStreamError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A length field outside `FrameStream.frameLengths`.
    case badLength(UInt32)

    public var description: String {
        switch self {
        case let .badLength(length):
            let lengths = FrameStream.frameLengths
            return "frame length \(length) is outside \(lengths.lowerBound)...\(lengths.upperBound)"
        }
    }
}

public enum FrameStream {
    /// The big-endian length in front of each frame.
    public static let lengthFieldSize = 4
    /// An Ethernet header at least; at most a 64 KiB GSO frame plus Ethernet and VLAN headers, the largest frame a
    /// virtio-net device passes (`NetDevice.maximumPacketLength` without the vnet header).
    public static let frameLengths: ClosedRange<Int> = 14...(NetDevice.maximumPacketLength - VirtioNetHeader.size)

    /// `frame` with its length in front, ready to write. The caller checked its length against `frameLengths`.
    public static func encode(_ frame: ArraySlice<UInt8>) -> [UInt8] {
        let length = UInt32(frame.count)
        var bytes = [UInt8(truncatingIfNeeded: length >> 24), UInt8(truncatingIfNeeded: length >> 16),
                     UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
        bytes.reserveCapacity(lengthFieldSize + frame.count)
        bytes.append(contentsOf: frame)
        return bytes
    }
}

/// Cuts a byte stream, arriving in pieces of any size, back into frames.
///
/// It holds at most one incomplete frame plus what the caller appended since: callers read more only when `next()`
/// has nothing, so memory stays bounded whatever the peer sends.
public struct FrameStreamDecoder: Sendable {
    private var bytes: [UInt8] = []
    /// Where the first byte not yet returned is.
    private var start = 0

    public init() {}

    /// Bytes received and not yet returned as frames.
    public var bufferedByteCount: Int { bytes.count - start }

    /// Adds bytes read from the stream.
    public mutating func append(_ received: ArraySlice<UInt8>) {
        if start == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 0 {
            // Keep the incomplete frame only: the buffer never grows past one frame and one read.
            bytes.removeFirst(start)
            start = 0
        }
        bytes.append(contentsOf: received)
    }

    /// The next whole frame, or nil when more bytes are needed. Throws when the length field is not a frame's;
    /// the stream cannot be resynchronised after that (there is no marker to look for), so drop it.
    public mutating func next() throws(FrameStreamError) -> ArraySlice<UInt8>? {
        guard bufferedByteCount >= FrameStream.lengthFieldSize else { return nil }
        let length = bytes[start..<start + FrameStream.lengthFieldSize].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard FrameStream.frameLengths.contains(Int(length)) else { throw .badLength(length) }
        let frameStart = start + FrameStream.lengthFieldSize
        guard bytes.count - frameStart >= Int(length) else { return nil }
        start = frameStart + Int(length)
        return bytes[frameStart..<start]
    }

    /// Forgets everything (a new peer starts a new stream).
    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        start = 0
    }
}
