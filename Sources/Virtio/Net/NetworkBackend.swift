// What a virtio-net device sends its guest's frames into: a TAP, a Unix socket to another VM, a test fake.

/// The host side of a virtio-net device.
///
/// Transmit is a call from the device; receive is driven by the VMM: its event loop reads frames from the
/// backend and hands them to `NetDevice.deliver(frame:)`, which says whether the guest had room (see there).
///
/// Every frame crossing this boundary, both ways, starts with the 12-byte `virtio_net_hdr_v1`. When the device
/// offers offloads (`NetDevice(offloads: true)`, the default), that header may ask for checksum completion
/// (NEEDS_CSUM) or segmentation (gso_type), and the backend must honour it — as a TAP with IFF_VNET_HDR,
/// TUNSETVNETHDRSZ 12 and TUNSETOFFLOAD does.
public protocol NetworkBackend: AnyObject, Sendable {
    /// Sends one frame: vnet header + Ethernet frame, already validated by the device. Called on the thread
    /// that serves the transmit queue, never concurrently with itself, in the guest's order; it must not call
    /// back into the device. Throwing drops this frame only (counted in `NetDevice.statistics`): like a NIC
    /// whose wire is down, the device carries on. A backend that cannot take the frame right now (a full TAP
    /// queue) should block briefly or drop it itself; the guest's TCP retransmits.
    func send(_ frame: ArraySlice<UInt8>) throws
}
