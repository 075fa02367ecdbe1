/// The layout of virtio-pci's vendor-specific capabilities (virtio 1.2 §4.1.4, `struct virtio_pci_cap`), for the
/// transport to describe where its register blocks live:
///
///     +0 cap_vndr 0x09 | +1 cap_next | +2 cap_len | +3 cfg_type | +4 bar | +5 id | +6 padding[2]
///     +8 offset (le32) | +12 length (le32) | +16 type-specific: notify_off_multiplier (le32) for the notify
///     capability, pci_cfg_data[4] for the PCI configuration access capability
public struct VirtioPCICapability: Sendable, Equatable {
    /// `cfg_type` values (virtio 1.2 §4.1.4).
    public enum ConfigurationType: UInt8, Sendable {
        case common = 1, notify = 2, isr = 3, device = 4, pciConfiguration = 5, sharedMemory = 8, vendor = 9
    }

    public var type: ConfigurationType
    public var bar: UInt8
    public var id: UInt8
    public var offset: UInt32
    public var length: UInt32
    /// Bytes after the 16-byte common part (the notify multiplier, or 4 data bytes for `pciConfiguration`).
    public var extra: [UInt8]

    public init(type: ConfigurationType, bar: UInt8, id: UInt8 = 0, offset: UInt32, length: UInt32, extra: [UInt8] = []) {
        self.type = type
        self.bar = bar
        self.id = id
        self.offset = offset
        self.length = length
        self.extra = extra
    }

    /// The notify capability: `notify_off_multiplier` follows.
    public static func notify(bar: UInt8, offset: UInt32, length: UInt32, multiplier: UInt32) -> VirtioPCICapability {
        var extra: [UInt8] = []
        extra.appendLittleEndian(multiplier)
        return VirtioPCICapability(type: .notify, bar: bar, offset: offset, length: length, extra: extra)
    }

    /// Everything after cap_vndr, cap_next and cap_len.
    public var payload: [UInt8] {
        var bytes: [UInt8] = [type.rawValue, bar, id, 0, 0]
        bytes.appendLittleEndian(offset)
        bytes.appendLittleEndian(length)
        return bytes + extra
    }
}

extension PCIConfigurationSpace {
    /// Appends a virtio-pci capability and returns its offset. For the `pciConfiguration` capability pass a
    /// `writableMask` covering bar, offset, length and data, since the driver writes those.
    @discardableResult
    public mutating func addVirtioCapability(_ capability: VirtioPCICapability, writableMask: [UInt8] = []) -> Int {
        addVendorSpecificCapability(payload: capability.payload, writableMask: writableMask)
    }
}
