// The header in front of every frame on both virtio-net queues (virtio 1.2 §5.1.6):
//
//     struct virtio_net_hdr_v1 {
//         u8   flags;         // NEEDS_CSUM 1, DATA_VALID 2, RSC_INFO 4
//         u8   gso_type;      // NONE 0, TCPV4 1, UDP 3, TCPV6 4, UDP_L4 5, | ECN 0x80
//         le16 hdr_len;
//         le16 gso_size;
//         le16 csum_start;
//         le16 csum_offset;
//         le16 num_buffers;   // RX: how many chains this frame spans (1 without MRG_RXBUF)
//     };
//
// With VERSION_1 the header is always these 12 bytes, whether or not MRG_RXBUF was negotiated (§5.1.6:
// num_buffers is only omitted by legacy devices). It is also the layout Linux's TAP uses with IFF_VNET_HDR and
// TUNSETVNETHDRSZ 12, so frames move between guest and TAP with the header untouched except num_buffers.

/// Why a vnet header (or the frame behind it) was refused.
public enum VirtioNetHeaderError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than the 12-byte header.
    case truncated(length: Int)
    /// flags has bits other than NEEDS_CSUM, DATA_VALID, RSC_INFO.
    case unknownFlags(UInt8)
    /// gso_type is not one the spec defines (§5.1.6), or is ECN without a GSO type.
    case unknownGSOType(UInt8)
    /// A GSO frame with gso_size 0: there is no segment size to cut it into.
    case gsoWithoutSegmentSize(gsoType: UInt8)
    /// NEEDS_CSUM with the 16-bit checksum field (at csum_start + csum_offset) not wholly inside the frame.
    case checksumOutsideFrame(start: UInt16, offset: UInt16, frameLength: Int)
    /// The guest asked for an offload (NEEDS_CSUM, or a gso_type) whose feature it did not negotiate.
    case offloadNotNegotiated(flags: UInt8, gsoType: UInt8)

    public var description: String {
        switch self {
        case let .truncated(length): return "\(length) bytes, shorter than the 12-byte virtio-net header"
        case let .unknownFlags(flags): return "unknown header flags 0x\(String(flags, radix: 16))"
        case let .unknownGSOType(type): return "unknown gso_type 0x\(String(type, radix: 16))"
        case let .gsoWithoutSegmentSize(type): return "gso_type \(type) with gso_size 0"
        case let .checksumOutsideFrame(start, offset, length):
            return "checksum at csum_start \(start) + csum_offset \(offset) is outside the \(length)-byte frame"
        case let .offloadNotNegotiated(flags, type):
            return "offload not negotiated (flags 0x\(String(flags, radix: 16)), gso_type 0x\(String(type, radix: 16)))"
        }
    }
}

/// `struct virtio_net_hdr_v1`, decoded.
public struct VirtioNetHeader: Equatable, Sendable {
    public static let size = 12

    /// VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum at csum_start + csum_offset is partial; whoever transmits the
    /// frame finishes it.
    public static let flagNeedsChecksum: UInt8 = 1
    /// VIRTIO_NET_HDR_F_DATA_VALID (RX only): the checksums were already verified.
    public static let flagDataValid: UInt8 = 2
    /// VIRTIO_NET_HDR_F_RSC_INFO (RX only, with GUEST_RSC).
    public static let flagRSCInfo: UInt8 = 4

    public static let gsoNone: UInt8 = 0
    public static let gsoTCPv4: UInt8 = 1
    public static let gsoUDP: UInt8 = 3
    public static let gsoTCPv6: UInt8 = 4
    public static let gsoUDPL4: UInt8 = 5
    /// Or-ed into gso_type: the TCP segments carry ECN's CWR.
    public static let gsoECN: UInt8 = 0x80

    public var flags: UInt8
    public var gsoType: UInt8
    public var headerLength: UInt16
    public var gsoSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16
    public var numBuffers: UInt16

    public init(
        flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
        checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0, numBuffers: UInt16 = 0
    ) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
        self.numBuffers = numBuffers
    }

    /// Decodes the first 12 bytes of `bytes` (little-endian fields, §1.4). Does not validate; see `validate`.
    public init(parsing bytes: some Collection<UInt8>) throws(VirtioNetHeaderError) {
        guard bytes.count >= Self.size else { throw .truncated(length: bytes.count) }
        let b = Array(bytes.prefix(Self.size))
        func le16(_ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
        self.init(
            flags: b[0], gsoType: b[1], headerLength: le16(2), gsoSize: le16(4), checksumStart: le16(6),
            checksumOffset: le16(8), numBuffers: le16(10))
    }

    /// The 12 wire bytes.
    public func encoded() -> [UInt8] {
        var bytes = [flags, gsoType]
        for field in [headerLength, gsoSize, checksumStart, checksumOffset, numBuffers] {
            bytes.append(UInt8(truncatingIfNeeded: field))
            bytes.append(UInt8(truncatingIfNeeded: field >> 8))
        }
        return bytes
    }

    /// Checks the header against the rules a receiver of the frame relies on; `frameLength` is the length of
    /// the Ethernet frame behind the header. Linux's virtio_net_hdr_to_skb refuses the same things (a TAP
    /// would answer EINVAL), so checking here lets the device drop and count a bad frame itself.
    public func validate(frameLength: Int) throws(VirtioNetHeaderError) {
        let known = Self.flagNeedsChecksum | Self.flagDataValid | Self.flagRSCInfo
        guard flags & ~known == 0 else { throw .unknownFlags(flags) }
        let base = gsoType & ~Self.gsoECN
        switch base {
        case Self.gsoNone:
            guard gsoType == Self.gsoNone else { throw .unknownGSOType(gsoType) }
        case Self.gsoTCPv4, Self.gsoUDP, Self.gsoTCPv6, Self.gsoUDPL4:
            guard gsoSize > 0 else { throw .gsoWithoutSegmentSize(gsoType: gsoType) }
        default:
            throw .unknownGSOType(gsoType)
        }
        if flags & Self.flagNeedsChecksum != 0 {
            // The checksum is a 16-bit field at csum_start + csum_offset; both are u16, so no overflow in Int.
            guard Int(checksumStart) + Int(checksumOffset) + 2 <= frameLength else {
                throw .checksumOutsideFrame(start: checksumStart, offset: checksumOffset, frameLength: frameLength)
            }
        }
    }

    /// Checks a transmit header against the negotiated `features` (§5.1.6.2.1: the driver MUST NOT set
    /// NEEDS_CSUM without VIRTIO_NET_F_CSUM, nor a gso_type whose HOST_ feature it did not accept). The backend
    /// was set up for exactly those offloads, so anything else must not reach it. UDP_L4 needs HOST_USO, which
    /// is not offered, so it is always refused here; ECN needs HOST_ECN, likewise.
    public func checkTransmitOffloads(negotiated features: UInt64) throws(VirtioNetHeaderError) {
        let needed: UInt64
        switch gsoType {
        case Self.gsoNone: needed = 0
        case Self.gsoTCPv4: needed = VirtioNetFeature.hostTSO4
        case Self.gsoTCPv6: needed = VirtioNetFeature.hostTSO6
        case Self.gsoUDP: needed = VirtioNetFeature.hostUFO
        default: throw .offloadNotNegotiated(flags: flags, gsoType: gsoType)
        }
        let checksum = flags & Self.flagNeedsChecksum != 0 ? VirtioNetFeature.checksum : 0
        guard features & (needed | checksum) == needed | checksum else {
            throw .offloadNotNegotiated(flags: flags, gsoType: gsoType)
        }
    }

    /// Parses and validates the header at the front of `packet` (header + Ethernet frame).
    public static func validated(packet: some Collection<UInt8>) throws(VirtioNetHeaderError) -> VirtioNetHeader {
        let header = try VirtioNetHeader(parsing: packet)
        try header.validate(frameLength: packet.count - size)
        return header
    }
}
