// virtio-net feature bits and configuration space (virtio 1.2 §5.1.3, §5.1.4).
//
//     struct virtio_net_config {
//         u8   mac[6];                // offset 0,  valid with VIRTIO_NET_F_MAC
//         le16 status;                // offset 6,  valid with VIRTIO_NET_F_STATUS
//         le16 max_virtqueue_pairs;   // offset 8,  valid with VIRTIO_NET_F_MQ (we always report 1)
//         le16 mtu;                   // offset 10, valid with VIRTIO_NET_F_MTU
//     };
//
// Fields after mtu (speed, duplex, RSS) belong to features we do not offer, so the space ends at 12 bytes.
// Everything is read-only for a modern driver (the MAC is only writable through the control queue, which we
// do not offer), so configuration writes are ignored.
//
// Offloads: CSUM / HOST_TSO4/6 / HOST_UFO let the guest send partially checksummed and oversized (GSO)
// frames, described by the vnet header in front of each frame; GUEST_CSUM / GUEST_TSO4/6 / GUEST_UFO let the
// device hand the guest such frames. The device itself never looks inside a frame: it passes the 12-byte
// header through in both directions. So when these are offered, the BACKEND must accept and produce frames
// with a `virtio_net_hdr_v1` in front that may ask for checksum completion or segmentation — a TAP opened with
// IFF_VNET_HDR, TUNSETVNETHDRSZ 12 and TUNSETOFFLOAD (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO) does.
// A backend that cannot (or whose peer is another guest that might not have negotiated the GUEST_ bits) must
// ask for `NetDevice(offloads: false)`: then only plain frames with an all-zero header cross it.

/// Feature bits of virtio-net (§5.1.3).
public enum VirtioNetFeature {
    /// VIRTIO_NET_F_CSUM (0): the device handles frames with a partial checksum (NEEDS_CSUM on TX).
    public static let checksum: UInt64 = 1 << 0
    /// VIRTIO_NET_F_GUEST_CSUM (1): the driver handles frames with a partial checksum (NEEDS_CSUM on RX).
    public static let guestChecksum: UInt64 = 1 << 1
    /// VIRTIO_NET_F_MTU (3): `mtu` in configuration space is the maximum the driver should use.
    public static let mtu: UInt64 = 1 << 3
    /// VIRTIO_NET_F_MAC (5): `mac` is valid.
    public static let mac: UInt64 = 1 << 5
    /// VIRTIO_NET_F_GUEST_TSO4 (7), GUEST_TSO6 (8): the driver takes TCP GSO frames on RX.
    public static let guestTSO4: UInt64 = 1 << 7
    public static let guestTSO6: UInt64 = 1 << 8
    /// VIRTIO_NET_F_GUEST_UFO (10): the driver takes UDP fragmentation-offload frames on RX.
    public static let guestUFO: UInt64 = 1 << 10
    /// VIRTIO_NET_F_HOST_TSO4 (11), HOST_TSO6 (12): the device takes TCP GSO frames on TX.
    public static let hostTSO4: UInt64 = 1 << 11
    public static let hostTSO6: UInt64 = 1 << 12
    /// VIRTIO_NET_F_HOST_UFO (14): the device takes UFO frames on TX.
    public static let hostUFO: UInt64 = 1 << 14
    /// VIRTIO_NET_F_MRG_RXBUF (15): one received frame may span several receive chains (§5.1.6.3.1).
    public static let mergeableReceiveBuffers: UInt64 = 1 << 15
    /// VIRTIO_NET_F_STATUS (16): `status` is valid.
    public static let status: UInt64 = 1 << 16

    /// The checksum and segmentation offloads, passed through the vnet header to the backend (see above).
    public static let offloads: UInt64 =
        checksum | guestChecksum | guestTSO4 | guestTSO6 | guestUFO | hostTSO4 | hostTSO6 | hostUFO
}

/// The configuration space of one virtio-net device, byte-exact (§5.1.4).
public struct VirtioNetConfig: Sendable, Equatable {
    public static let macOffset = 0
    public static let statusOffset = 6
    public static let maximumQueuePairsOffset = 8
    public static let mtuOffset = 10
    public static let size = 12

    /// VIRTIO_NET_S_LINK_UP (status bit 0). VIRTIO_NET_S_ANNOUNCE (bit 1) needs GUEST_ANNOUNCE, not offered.
    public static let statusLinkUp: UInt16 = 1

    public let mac: [UInt8]
    public let mtu: UInt16?
    /// `status`'s VIRTIO_NET_S_LINK_UP: false while the backend has nowhere to send (a socket link without a
    /// peer), as on a NIC whose cable is out. The driver rereads `status` on a configuration change notification.
    public var linkUp: Bool

    /// `mac` must be 6 bytes (a programmer error otherwise: the command line validates it first). `mtu`, when
    /// given, is offered with VIRTIO_NET_F_MTU; the spec asks for at least 68 (§5.1.4.1).
    public init(mac: [UInt8], mtu: UInt16? = nil, linkUp: Bool = true) {
        precondition(mac.count == 6, "a MAC address is 6 bytes")
        self.mac = mac
        self.mtu = mtu
        self.linkUp = linkUp
    }

    /// The 12 bytes the driver reads.
    public var bytes: ConfigurationSpace {
        var space = ConfigurationSpace(size: Self.size)
        for (index, byte) in mac.enumerated() { space.set(byte, at: Self.macOffset + index) }
        space.set(linkUp ? Self.statusLinkUp : 0, at: Self.statusOffset)
        space.set(UInt16(1), at: Self.maximumQueuePairsOffset)
        space.set(mtu ?? 0, at: Self.mtuOffset)
        return space
    }

    /// The device feature bits: MAC, STATUS and MRG_RXBUF always, MTU when an MTU is set, and the offloads when
    /// the backend passes vnet headers through (`offloads`). EVENT_IDX and VERSION_1 come from the core.
    public func offeredFeatures(offloads: Bool) -> UInt64 {
        var features = VirtioNetFeature.mac | VirtioNetFeature.status | VirtioNetFeature.mergeableReceiveBuffers
        if mtu != nil { features |= VirtioNetFeature.mtu }
        if offloads { features |= VirtioNetFeature.offloads }
        return features
    }

    public func read(offset: Int, width: Int) -> UInt64 { bytes.read(offset: offset, width: width) }
}
