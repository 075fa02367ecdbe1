/// Feature bits (virtio 1.2 §2.2; the transport- and ring-related "reserved" bits are listed in §6).
///
/// Bits 0–23 belong to the device type, 24–40 and 50–127 are reserved for queue and transport features.
/// Features are offered by the device and accepted by the driver as one 64-bit word; transports move it in
/// 32-bit halves (device_feature_select / driver_feature_select).
public enum VirtioFeature {
    /// VIRTIO_F_INDIRECT_DESC (28): descriptors may point at indirect descriptor tables (§2.7.5.3).
    public static let indirectDescriptors: UInt64 = 1 << 28
    /// VIRTIO_F_EVENT_IDX (29): used_event / avail_event replace the ring flags for notification
    /// suppression (§2.7.7, §2.7.10).
    public static let ringEventIndex: UInt64 = 1 << 29
    /// VIRTIO_F_VERSION_1 (32): the device is modern (no legacy layout, little-endian everywhere). We offer
    /// only modern devices, so a driver that does not accept this bit is refused at FEATURES_OK.
    public static let version1: UInt64 = 1 << 32
    /// VIRTIO_F_ACCESS_PLATFORM (33): guest addresses go through an IOMMU. Never offered: our queues
    /// hold guest-physical addresses.
    public static let accessPlatform: UInt64 = 1 << 33
    /// VIRTIO_F_RING_PACKED (34): packed virtqueues. Never offered: only split rings are implemented.
    public static let ringPacked: UInt64 = 1 << 34

    /// What the core adds to every device's own feature bits: the ring features it implements.
    public static let offeredByCore: UInt64 = version1 | ringEventIndex | indirectDescriptors

    /// Bits the core must never offer whatever a device model asks for, because it does not implement them.
    public static let neverOffered: UInt64 = accessPlatform | ringPacked
}
