/// The device status field (virtio 1.2 §2.1). The driver sets bits in order as it initialises the device
/// (§3.1.1): ACKNOWLEDGE → DRIVER → (feature negotiation) FEATURES_OK → (queue setup) DRIVER_OK. Writing 0
/// resets the device (§2.4). The device sets only DEVICE_NEEDS_RESET.
public struct DeviceStatus: OptionSet, Codable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The guest OS has noticed the device.
    public static let acknowledge = DeviceStatus(rawValue: 1)
    /// The guest OS knows how to drive the device.
    public static let driver = DeviceStatus(rawValue: 2)
    /// The driver is set up and ready to drive the device; queues may be used from now on.
    public static let driverOK = DeviceStatus(rawValue: 4)
    /// The driver has acknowledged the features it understands; feature negotiation is complete.
    public static let featuresOK = DeviceStatus(rawValue: 8)
    /// The device hit an error it cannot recover from; the driver must reset it.
    public static let deviceNeedsReset = DeviceStatus(rawValue: 0x40)
    /// The driver gave up on the device.
    public static let failed = DeviceStatus(rawValue: 0x80)

    public var description: String {
        let names: [(DeviceStatus, String)] = [
            (.acknowledge, "ACKNOWLEDGE"), (.driver, "DRIVER"), (.featuresOK, "FEATURES_OK"),
            (.driverOK, "DRIVER_OK"), (.deviceNeedsReset, "DEVICE_NEEDS_RESET"), (.failed, "FAILED"),
        ]
        let set = names.filter { contains($0.0) }.map(\.1)
        return set.isEmpty ? "0" : set.joined(separator: "|")
    }
}
