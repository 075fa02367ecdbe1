// Numbers of the virtio socket device (virtio 1.2 §5.10), named as the spec and <linux/virtio_vsock.h> name them.
// The device itself (queues, config space, event loop) is wired by the VMM; these are the facts it needs.

public enum VirtioVsock {
    /// Queue indices (§5.10.2): the device puts packets for the guest on rx, takes the guest's packets from tx,
    /// and uses event for transport events (writable 4-byte `virtio_vsock_event`).
    public static let receiveQueue = 0
    public static let transmitQueue = 1
    public static let eventQueue = 2

    /// Device configuration (§5.10.4): `le64 guest_cid` at offset 0, read-only for the driver.
    public static let configSize = 8

    /// CIDs 0, 1 and 2 are reserved (hypervisor, local, host) and 0xFFFFFFFF is VMADDR_CID_ANY; the spec says
    /// the guest CID uses only the low 32 bits (the upper 32 are reserved and zeroed).
    public static func isValidGuestCID(_ cid: UInt64) -> Bool {
        cid >= 3 && cid < 0xFFFF_FFFF
    }

    /// The config space bytes for `guestCID`, little-endian.
    public static func configSpace(guestCID: UInt64) -> [UInt8] {
        (0..<configSize).map { UInt8(truncatingIfNeeded: guestCID >> (8 * $0)) }
    }

    /// `virtio_vsock_event.id` VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (§5.10.6.6): after it the driver drops every
    /// connection and re-reads guest_cid (used after a snapshot restore or a CID change).
    public static let transportResetEvent: UInt32 = 0
}

/// Device feature bits (§5.10.3). None is offered: without VIRTIO_VSOCK_F_SEQPACKET the device is stream-only,
/// which a 1.2 driver assumes (VIRTIO_VSOCK_F_STREAM exists only from virtio 1.3 and is implied when absent).
public enum VirtioVsockFeature {
    public static let stream: UInt64 = 1 << 0  // VIRTIO_VSOCK_F_STREAM (1.3; not offered)
    public static let seqpacket: UInt64 = 1 << 1  // VIRTIO_VSOCK_F_SEQPACKET (not offered)
}
