/// The host bridge at 00:00.0: the function that represents the root complex itself. It has no BARs and no
/// interrupt; Linux reads its class (0x060000, host bridge) in `pci_sanity_check` to confirm that configuration
/// mechanism #1 works before using it, and lists it as the first device of bus 0.
///
/// The IDs are those Cloud Hypervisor and Firecracker use for their host bridges (Intel 0x0D57): an ID no Linux
/// quirk matches (Intel's real chipset host bridges have quirks that read chipset registers this one lacks).

import Synchronization

public final class PCIHostBridge: PCIDevice {
    public static let identity = PCIIdentity(vendorID: 0x8086, deviceID: 0x0D57, classCode: .hostBridge)

    private let space = Mutex(PCIConfigurationSpace(identity: PCIHostBridge.identity))

    public init() {}

    public func readConfiguration(offset: Int, width: Int) -> UInt32 {
        space.withLock { $0.read(offset: offset, width: width) }
    }

    public func writeConfiguration(offset: Int, width: Int, value: UInt32) {
        space.withLock { _ = $0.write(offset: offset, width: width, value: value) }
    }

    public var decodedBARs: [PCIBARMapping] { [] }
    public func readBAR(_ index: Int, offset: UInt64, width: Int) -> UInt64 { .max }
    public func writeBAR(_ index: Int, offset: UInt64, width: Int, value: UInt64) {}
}
