/// The read-only identification fields of a function's configuration header: who made it and what it is.
/// Drivers bind by vendor/device ID (virtio-pci: vendor 0x1AF4, device 0x1040 + virtio device ID) or by class.
public struct PCIIdentity: Sendable, Equatable {
    public var vendorID: UInt16
    public var deviceID: UInt16
    public var revisionID: UInt8
    public var classCode: PCIClassCode
    public var subsystemVendorID: UInt16
    public var subsystemID: UInt16
    /// Header type bit 7: functions 1-7 of this device exist too. Without it Linux probes function 0 only.
    public var isMultifunction: Bool

    public init(
        vendorID: UInt16, deviceID: UInt16, revisionID: UInt8 = 0, classCode: PCIClassCode,
        subsystemVendorID: UInt16 = 0, subsystemID: UInt16 = 0, isMultifunction: Bool = false
    ) {
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.revisionID = revisionID
        self.classCode = classCode
        self.subsystemVendorID = subsystemVendorID
        self.subsystemID = subsystemID
        self.isMultifunction = isMultifunction
    }
}

/// The 24-bit class code at 0x09-0x0B: base class, subclass, programming interface (PCI Code and ID Assignment
/// Specification §1).
public struct PCIClassCode: Sendable, Equatable, CustomStringConvertible {
    public var baseClass: UInt8
    public var subclass: UInt8
    public var programmingInterface: UInt8

    public init(baseClass: UInt8, subclass: UInt8, programmingInterface: UInt8 = 0) {
        self.baseClass = baseClass
        self.subclass = subclass
        self.programmingInterface = programmingInterface
    }

    /// 0x060000: bridge device, host bridge.
    public static let hostBridge = PCIClassCode(baseClass: 0x06, subclass: 0x00)
    /// 0x010000: mass storage, SCSI (virtio-blk's class in QEMU and Cloud Hypervisor).
    public static let massStorageSCSI = PCIClassCode(baseClass: 0x01, subclass: 0x00)
    /// 0x020000: network controller, Ethernet.
    public static let networkEthernet = PCIClassCode(baseClass: 0x02, subclass: 0x00)
    /// 0x078000: simple communication controller, other (virtio-console).
    public static let communicationOther = PCIClassCode(baseClass: 0x07, subclass: 0x80)
    /// 0x00FF00: unclassified, other (virtio-rng and the like).
    public static let unclassifiedOther = PCIClassCode(baseClass: 0x00, subclass: 0xFF)

    /// The register value, base class in the top byte: 0x060000.
    public var value: UInt32 {
        UInt32(baseClass) << 16 | UInt32(subclass) << 8 | UInt32(programmingInterface)
    }

    public var description: String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 6 - digits.count) + digits
    }
}
